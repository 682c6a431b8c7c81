/* Fuzz-corpus files for the parser unit tests (corpus.h). */
#include <stdlib.h>
#include <string.h>

#include "../../common/util.h"
#include "corpus.h"
#include "tap.h"

size_t corpus_load(const char *dir, const char *name, uint8_t *buf,
		   size_t size)
{
	char path[256], *data = NULL;
	size_t len = 0;
	if (fmt_buf(path, sizeof(path), "tests/fuzz/corpus/%s/%s", dir,
		    name) < 0 ||
	    read_file(path, size, &data, &len) < 0) {
		ok(false, "read %s (run from the repository root)", path);
		free(data);
		return 0;
	}
	memcpy(buf, data, len);
	free(data);
	return len;
}

size_t corpus_load_str(const char *dir, const char *name, char *buf,
		       size_t size)
{
	if (size == 0)
		return 0;
	size_t len = corpus_load(dir, name, (uint8_t *)buf, size - 1);
	buf[len] = '\0';
	return len;
}
