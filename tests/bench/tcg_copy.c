/* How fast the guest's CPU copies with each x86 copy idiom: rep movsb
 * (what the guest kernel uses when the CPU has ERMS/FSRM), rep movsq,
 * and a loop of 8-byte moves. tests/bench/vsock_dl.py builds it static and
 * runs it in the guest, because under QEMU's TCG the three differ by 10x
 * (docs/vsock.md, "Copies under TCG"). Prints one line per idiom. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#define LEN 4096
#define ROUNDS 4096 /* 16 MiB per idiom */

static char src[LEN] __attribute__((aligned(64)));
static char dst[LEN] __attribute__((aligned(64)));

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void movsb(void *d, const void *s, size_t n)
{
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
}

static void movsq(void *d, const void *s, size_t n)
{
	n /= 8;
	__asm__ volatile("rep movsq" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
}

static void loop8(void *d, const void *s, size_t n)
{
	unsigned long *x = d;
	const unsigned long *y = s;
	for (size_t i = 0; i < n / 8; i++) {
		x[i] = y[i];
		/* Keep the compiler from turning the loop into memcpy. */
		__asm__ volatile("" : : "r"(x) : "memory");
	}
}

int main(void)
{
	static const struct {
		const char *name;
		void (*fn)(void *, const void *, size_t);
	} idiom[] = {{"rep_movsb", movsb}, {"rep_movsq", movsq},
		     {"loop_8byte", loop8}};
	memset(src, 'x', sizeof(src));
	for (size_t k = 0; k < sizeof(idiom) / sizeof(idiom[0]); k++) {
		double t = now();
		for (int i = 0; i < ROUNDS; i++)
			idiom[k].fn(dst, src, LEN);
		t = now() - t;
		printf("COPY %s %.1f MiB/s\n", idiom[k].name,
		       (double)LEN * ROUNDS / 1048576.0 / t);
	}
	return dst[LEN - 1] == 'x' ? 0 : 1;
}
