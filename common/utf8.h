/* Strict UTF-8 decoding, shared by the terminal escaper and the policy's
 * IDN handling so that both agree on what a character is. */
#ifndef COMMON_UTF8_H
#define COMMON_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decode one sequence at s (len > 0 bytes available): its length, or 0
 * when it is not well-formed UTF-8 (truncated, a stray continuation byte,
 * an overlong form, a surrogate, above U+10FFFF). */
size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);

#endif
