/* Fuzz-corpus files for the parser unit tests: the captured inputs under
 * tests/fuzz/corpus/ are also the unit tests' real-world cases (corpus.c). */
#ifndef TESTS_CORPUS_H
#define TESTS_CORPUS_H

#include <stddef.h>
#include <stdint.h>

/* Read tests/fuzz/corpus/DIR/NAME (relative to the repository root, where
 * `make unit` runs) into buf, at most size bytes; returns its length. A
 * missing, unreadable or larger file is a failed test and returns 0. */
size_t corpus_load(const char *dir, const char *name, uint8_t *buf,
		   size_t size);

/* The same for a text parser: at most size - 1 bytes and a NUL after them
 * (buf is "" when the load failed). */
size_t corpus_load_str(const char *dir, const char *name, char *buf,
		       size_t size);

#endif
