/* DNS for wire_client's dns mode (dns_text.h): a query from a name and a
 * type, a response printed as text. The response is the proxy's, read as
 * untrusted: every offset is checked. */
#include "dns_text.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../../common/util.h"

static const struct {
	const char *name;
	uint16_t type;
} dns_types[] = {
	{"A", 1},    {"NS", 2},     {"CNAME", 5},  {"SOA", 6},
	{"PTR", 12}, {"MX", 15},    {"TXT", 16},   {"AAAA", 28},
	{"SRV", 33}, {"SVCB", 64},  {"HTTPS", 65}, {"ANY", 255},
};

static const char *const rcode_names[] = {
	"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
};

int dns_text_type(const char *s, uint16_t *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(dns_types); i++) {
		if (strcasecmp(s, dns_types[i].name) == 0) {
			*out = dns_types[i].type;
			return 0;
		}
	}
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10); /* a number 0..65535 */
	if (errno || *end || end == s || v < 0 || v > 65535)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

static const char *type_name(uint16_t t)
{
	for (size_t i = 0; i < ARRAY_SIZE(dns_types); i++)
		if (dns_types[i].type == t)
			return dns_types[i].name;
	return NULL;
}

static int encode_name(const char *name, uint8_t *out, size_t outsz,
		       size_t *len)
{
	size_t at = 0;
	const char *p = name;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		if (l == 0 || l > 63 || at + 1 + l + 1 > outsz)
			return -EINVAL;
		out[at++] = (uint8_t)l;
		memcpy(out + at, p, l);
		at += l;
		p += l;
		if (*p == '.')
			p++;
	}
	out[at++] = 0;
	*len = at;
	return 0;
}

/* Decode a possibly compressed name at *off into text; advances *off
 * past the name as it appears at that place. */
static int decode_name(const uint8_t *msg, size_t len, size_t *off, char *out,
		       size_t outsz)
{
	size_t pos = *off, olen = 0;
	bool jumped = false;
	int hops = 0;
	out[0] = '\0';
	for (;;) {
		if (pos >= len)
			return -EINVAL;
		uint8_t l = msg[pos];
		if ((l & 0xc0) == 0xc0) {
			if (pos + 1 >= len || ++hops > 32)
				return -EINVAL;
			if (!jumped)
				*off = pos + 2;
			jumped = true;
			pos = (size_t)(l & 0x3f) << 8 | msg[pos + 1];
			continue;
		}
		if (l & 0xc0)
			return -EINVAL;
		if (l == 0) {
			if (!jumped)
				*off = pos + 1;
			return 0;
		}
		if (pos + 1 + l > len)
			return -EINVAL;
		if (fmt_append(out, outsz, &olen, "%s%.*s", olen ? "." : "",
			       (int)l, (const char *)msg + pos + 1) < 0)
			return -EINVAL;
		pos += 1 + (size_t)l;
	}
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

int dns_text_query(const char *name, uint16_t qtype, uint16_t id,
		   uint8_t *out, size_t cap, size_t *len)
{
	size_t nlen;
	if (cap < 2 + 12 + 4 ||
	    encode_name(name, out + 14, cap - 14 - 4, &nlen) < 0)
		return -EINVAL;
	uint8_t *m = out + 2;
	memset(m, 0, 12);
	m[0] = (uint8_t)(id >> 8);
	m[1] = (uint8_t)id;
	m[2] = 0x01; /* RD */
	m[5] = 1;    /* QDCOUNT */
	size_t at = 12 + nlen;
	m[at++] = (uint8_t)(qtype >> 8);
	m[at++] = (uint8_t)qtype;
	m[at++] = 0;
	m[at++] = 1; /* class IN */
	out[0] = (uint8_t)(at >> 8);
	out[1] = (uint8_t)at;
	*len = at + 2;
	return 0;
}

int dns_text_print_response(const uint8_t *msg, size_t len, uint16_t id)
{
	if (len < 12 || get16(msg) != id || !(msg[2] & 0x80)) {
		fprintf(stderr, "wire_client: reply is not a response to our query\n");
		return -EINVAL;
	}
	unsigned rcode = msg[3] & 0x0f;
	if (rcode < ARRAY_SIZE(rcode_names))
		printf("rcode %s\n", rcode_names[rcode]);
	else
		printf("rcode %u\n", rcode);
	uint16_t qd = get16(msg + 4), an = get16(msg + 6);
	size_t off = 12;
	char name[1024];
	for (uint16_t i = 0; i < qd; i++) {
		if (decode_name(msg, len, &off, name, sizeof(name)) < 0 ||
		    off + 4 > len)
			goto bad;
		off += 4;
	}
	for (uint16_t i = 0; i < an; i++) {
		if (decode_name(msg, len, &off, name, sizeof(name)) < 0 ||
		    off + 10 > len)
			goto bad;
		uint16_t type = get16(msg + off);
		uint16_t rdlen = get16(msg + off + 8);
		off += 10;
		if (off + rdlen > len)
			goto bad;
		char text[1024];
		size_t rd = off;
		if (type == 1 && rdlen == 4) {
			inet_ntop(AF_INET, msg + off, text, sizeof(text));
			printf("A %s\n", text);
		} else if (type == 28 && rdlen == 16) {
			inet_ntop(AF_INET6, msg + off, text, sizeof(text));
			printf("AAAA %s\n", text);
		} else if ((type == 5 || type == 12) &&
			   decode_name(msg, len, &rd, text, sizeof(text)) == 0) {
			printf("%s %s\n", type_name(type), text);
		} else {
			printf("TYPE%u %u bytes\n", type, rdlen);
		}
		off += rdlen;
	}
	return 0;
bad:
	fprintf(stderr, "wire_client: malformed DNS response (%zu bytes)\n", len);
	return -EINVAL;
}
