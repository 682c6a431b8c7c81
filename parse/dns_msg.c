/* DNS query parsing and response building (RFC 1035 4.1, RFC 6891 6).
 *
 * Status choices, so that the proxy can always answer something sensible:
 *   - shorter than a header: MALFORMED (no id to echo; drop it).
 *   - QR set, opcode other than QUERY, or QDCOUNT != 1: NOTIMP. QDCOUNT 0
 *     and >1 are both "a kind of query we do not implement" (RFC 1035 never
 *     defined more than one question), and NOTIMP tells a client not to
 *     retry the same thing, where FORMERR would suggest its bytes were bad.
 *   - ANCOUNT or NSCOUNT non-zero, ARCOUNT > 1, a bad question name, a
 *     truncated question, a non-OPT additional record, a bad OPT, or bytes
 *     after the message: FORMERR. */
#include <errno.h>
#include <string.h>

#include "dns_msg.h"

#define HDR_LEN 12
#define NAME_MAX_PRES 253
#define LABEL_MAX 63
#define FLAG_QR 0x8000
#define FLAG_RD 0x0100
#define FLAG_RA 0x0080
#define OPCODE_MASK 0x7800
#define EDNS_ADVERTISE 1232 /* DNS flag day 2020: avoids IP fragmentation */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static enum dns_status fail(struct dns_query *q, enum dns_status st,
			    const char *why)
{
	q->why = why;
	return st;
}

static bool label_char_ok(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Parse the question name at msg[*off], lower-casing it into q->qname. */
static enum dns_status parse_qname(const uint8_t *msg, size_t len,
				   size_t *off, struct dns_query *q)
{
	size_t o = *off, n = 0;

	for (;;) {
		if (o >= len)
			return fail(q, DNS_FORMERR, "question name truncated");
		uint8_t l = msg[o++];
		if (l == 0)
			break;
		if ((l & 0xc0) == 0xc0)
			return fail(q, DNS_FORMERR,
				    "compression pointer in the question");
		if (l & 0xc0)
			return fail(q, DNS_FORMERR, "reserved label type");
		if (len - o < l)
			return fail(q, DNS_FORMERR, "label runs past the message");
		/* Presentation length: labels plus the dots between them. */
		if (n + (n ? 1 : 0) + l > NAME_MAX_PRES)
			return fail(q, DNS_FORMERR, "name longer than 253 characters");
		if (n)
			q->qname[n++] = '.';
		for (size_t i = 0; i < l; i++) {
			uint8_t c = msg[o + i];
			if (!label_char_ok(c))
				return fail(q, DNS_FORMERR,
					    "label character outside [A-Za-z0-9_-]");
			q->qname[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		o += l;
	}
	q->qname[n] = '\0';
	q->qname_len = n;
	*off = o;
	return DNS_OK;
}

/* The one additional record we accept: OPT (RFC 6891 6.1.2). */
static enum dns_status parse_opt(const uint8_t *msg, size_t len, size_t *off,
				 struct dns_query *q)
{
	size_t o = *off;

	if (len - o < 11)
		return fail(q, DNS_FORMERR, "additional record truncated");
	if (msg[o] != 0)
		return fail(q, DNS_FORMERR, "additional record is not an OPT "
					    "with the root name");
	if (get16(msg + o + 1) != DNS_TYPE_OPT)
		return fail(q, DNS_FORMERR, "additional record is not OPT");
	uint16_t size = get16(msg + o + 3);
	uint16_t rdlen = get16(msg + o + 9);
	o += 11;
	if (len - o < rdlen)
		return fail(q, DNS_FORMERR, "OPT data runs past the message");
	/* The options must tile the RDATA exactly. */
	for (size_t p = o, end = o + rdlen; p < end;) {
		if (end - p < 4)
			return fail(q, DNS_FORMERR, "OPT option header truncated");
		uint16_t olen = get16(msg + p + 2);
		p += 4;
		if (end - p < olen)
			return fail(q, DNS_FORMERR, "OPT option overruns the record");
		p += olen;
	}
	q->has_opt = true;
	q->udp_size = size < 512 ? 512 : size; /* RFC 6891 6.2.3 */
	*off = o + rdlen;
	return DNS_OK;
}

enum dns_status dns_query_parse(const uint8_t *msg, size_t len,
				struct dns_query *q)
{
	enum dns_status st;

	memset(q, 0, sizeof(*q));
	q->udp_size = 512;
	if (len < HDR_LEN)
		return fail(q, DNS_MALFORMED, "shorter than a DNS header");
	if (len > DNS_MSG_MAX)
		return fail(q, DNS_MALFORMED, "longer than a DNS message can be");
	q->id = get16(msg);
	q->flags = get16(msg + 2);
	q->rd = q->flags & FLAG_RD;
	uint16_t qd = get16(msg + 4), an = get16(msg + 6), ns = get16(msg + 8),
		 ar = get16(msg + 10);

	if (q->flags & FLAG_QR)
		return fail(q, DNS_NOTIMP, "QR set: a response, not a query");
	if (q->flags & OPCODE_MASK)
		return fail(q, DNS_NOTIMP, "opcode is not QUERY");
	if (qd != 1)
		return fail(q, DNS_NOTIMP, "QDCOUNT is not 1");
	if (an || ns)
		return fail(q, DNS_FORMERR, "query has answer or authority records");
	if (ar > 1)
		return fail(q, DNS_FORMERR, "more than one additional record");

	size_t off = HDR_LEN;
	st = parse_qname(msg, len, &off, q);
	if (st != DNS_OK)
		return st;
	if (len - off < 4)
		return fail(q, DNS_FORMERR, "question truncated before type/class");
	q->qtype = get16(msg + off);
	q->qclass = get16(msg + off + 2);
	off += 4;
	q->question_end = off;
	if (ar == 1) {
		st = parse_opt(msg, len, &off, q);
		if (st != DNS_OK)
			return st;
	}
	if (off != len)
		return fail(q, DNS_FORMERR, "bytes after the end of the message");
	return DNS_OK;
}

/* A bounded writer: every put checks room first. */
struct wr {
	uint8_t *p;
	size_t size, off;
	bool full;
};

static void put(struct wr *w, const void *src, size_t n)
{
	if (w->full || w->size - w->off < n) {
		w->full = true;
		return;
	}
	memcpy(w->p + w->off, src, n);
	w->off += n;
}

static void put16(struct wr *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	put(w, b, 2);
}

static void put32(struct wr *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16),
			(uint8_t)(v >> 8), (uint8_t)v};
	put(w, b, 4);
}

/* Encode q->qname as labels; -EINVAL if it is not a name we would have
 * produced (the caller may have filled the query by hand). */
static int put_name(struct wr *w, const struct dns_query *q)
{
	size_t n = q->qname_len;

	if (n > NAME_MAX_PRES || n >= sizeof(q->qname) ||
	    memchr(q->qname, '\0', n))
		return -EINVAL;
	for (size_t s = 0; s < n;) {
		const char *dot = memchr(q->qname + s, '.', n - s);
		size_t e = dot ? (size_t)(dot - q->qname) : n;
		if (e == s || e - s > LABEL_MAX || (dot && e + 1 == n))
			return -EINVAL;
		uint8_t l = (uint8_t)(e - s);
		put(w, &l, 1);
		put(w, q->qname + s, l);
		s = dot ? e + 1 : n;
	}
	put(w, "", 1);
	return 0;
}

int dns_build_response(const struct dns_query *q, bool question_valid,
		       uint8_t rcode, const uint8_t (*a)[4], size_t n_a,
		       uint32_t ttl, uint8_t *out, size_t outsz)
{
	struct wr w = {out, outsz, 0, false};

	/* Extended rcodes would need the OPT TTL bits; we never send them. */
	if (rcode > 15)
		return -EINVAL;
	if (!question_valid)
		n_a = 0;
	if (n_a > (DNS_MSG_MAX - HDR_LEN) / 16 || (n_a && !a))
		return -EINVAL;
	uint16_t flags = (uint16_t)(FLAG_QR | (q->flags & OPCODE_MASK) |
				    (q->rd ? FLAG_RD : 0) | FLAG_RA | rcode);
	put16(&w, q->id);
	put16(&w, flags);
	put16(&w, question_valid ? 1 : 0);
	put16(&w, (uint16_t)n_a);
	put16(&w, 0);
	put16(&w, q->has_opt ? 1 : 0);
	if (question_valid) {
		if (put_name(&w, q) < 0)
			return -EINVAL;
		put16(&w, q->qtype);
		put16(&w, q->qclass);
	}
	for (size_t i = 0; i < n_a; i++) {
		put16(&w, 0xc00c); /* pointer to the question name at 12 */
		put16(&w, DNS_TYPE_A);
		put16(&w, DNS_CLASS_IN);
		put32(&w, ttl);
		put16(&w, 4);
		put(&w, a[i], 4);
	}
	if (q->has_opt) {
		put(&w, "", 1); /* root name */
		put16(&w, DNS_TYPE_OPT);
		put16(&w, EDNS_ADVERTISE);
		put32(&w, 0); /* extended rcode 0, version 0, no DO bit */
		put16(&w, 0);
	}
	if (w.full)
		return -ENOSPC;
	if (w.off > DNS_MSG_MAX)
		return -EINVAL;
	return (int)w.off;
}
