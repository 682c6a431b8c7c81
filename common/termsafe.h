/* Text from a less trusted source (a repository's policy file, a guest's
 * names and requests) made safe to print on a terminal.
 *
 * Control characters (C0, DEL), ESC and with it every CSI/OSC sequence,
 * C1 controls (U+0080..U+009F), the bidirectional and invisible formatting
 * characters (U+061C, U+200B..U+200F, U+202A..U+202E, U+2060..U+2069,
 * U+FEFF) and bytes that are not valid UTF-8 are written as visible
 * escapes: \x1b, \u{202e}. A backslash is doubled, so an escape in the
 * output always means the byte was there. Other UTF-8 text is kept. */
#ifndef COMMON_TERMSAFE_H
#define COMMON_TERMSAFE_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

/* Escape len bytes of s into out (always NUL-terminated when outsz > 0).
 * keep_newlines: '\n' passes through (multi-line messages). Returns 0, or
 * -ENAMETOOLONG when the result was cut (at a character boundary). */
/* Characters that steer a terminal or reorder what it shows: C0, DEL, C1,
 * bidi controls and overrides, zero-width and invisible format characters. */
bool term_hidden(uint32_t cp);

int term_escape(const char *s, size_t len, char *out, size_t outsz,
		bool keep_newlines);

/* The same, malloc'd; NULL on allocation failure. */
char *term_escape_dup(const char *s, size_t len, bool keep_newlines);

/* Write s escaped to f. */
void term_fputs(const char *s, FILE *f, bool keep_newlines);

/* s as a JSON string literal, quotes included, that is also safe on a
 * terminal: the characters above as \uXXXX, bytes that are not UTF-8 as
 * \ufffd. */
void term_put_json_str(FILE *f, const char *s);

#endif
