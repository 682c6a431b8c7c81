/* DNS message parsing (queries from the guest) and response building.
 * Pure: no allocation, no I/O, no globals. Fuzzed by tests/fuzz/fuzz_dns_msg.c. */
#ifndef PROXY_DNS_MSG_H
#define PROXY_DNS_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_TYPE_A 1
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_PTR 12
#define DNS_TYPE_MX 15
#define DNS_TYPE_TXT 16
#define DNS_TYPE_AAAA 28
#define DNS_TYPE_SRV 33
#define DNS_TYPE_OPT 41
#define DNS_TYPE_SVCB 64
#define DNS_TYPE_HTTPS 65
#define DNS_TYPE_ANY 255
#define DNS_CLASS_IN 1

#define DNS_RCODE_NOERROR 0
#define DNS_RCODE_FORMERR 1
#define DNS_RCODE_SERVFAIL 2
#define DNS_RCODE_NXDOMAIN 3
#define DNS_RCODE_NOTIMP 4
#define DNS_RCODE_REFUSED 5

#define DNS_MSG_MAX 65535

enum dns_status {
	DNS_OK = 0,
	DNS_MALFORMED,   /* cannot even echo an error: drop (why says what) */
	DNS_FORMERR,     /* header readable, question not: answer FORMERR */
	DNS_NOTIMP,      /* not a standard query (opcode, QR set, qdcount != 1) */
};

struct dns_query {
	uint16_t id;
	uint16_t flags;    /* as received */
	bool rd;
	char qname[254];   /* dotted, lower-cased, no trailing dot; "" for the root */
	size_t qname_len;
	uint16_t qtype, qclass;
	bool has_opt;      /* EDNS(0) OPT record in the additional section */
	uint16_t udp_size; /* from OPT, else 512 */
	size_t question_end; /* offset just past the question section */
	const char *why;
};

/* Parse a query. Labels may contain only letters, digits, '-' and '_'
 * (anything else is DNS_FORMERR); compression pointers are not accepted in
 * a question. id/flags are filled whenever len >= 12 so that an error
 * response can be built even for FORMERR/NOTIMP. */
enum dns_status dns_query_parse(const uint8_t *msg, size_t len,
				struct dns_query *out);

/* Build a response to q into out: header with QR, RA, the query's RD and
 * id, rcode; the question echoed (when q->qname is valid: status was
 * DNS_OK); then n_a A records (4-byte addresses) for the question name with
 * ttl. Returns the length, or -ENOSPC. */
int dns_build_response(const struct dns_query *q, bool question_valid,
		       uint8_t rcode, const uint8_t (*a)[4], size_t n_a,
		       uint32_t ttl, uint8_t *out, size_t outsz);

#endif
