/* What a connection stands for: the wire header of a transparent stream
 * (a synthetic address maps back to the name the proxy's DNS handed out;
 * anything else is an IP literal), or the host text of an explicit proxy
 * request. */
#include "conn_internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <string.h>
#include <sys/socket.h>

#include "../common/util.h"
#include "../parse/wire.h"
#include "synth.h"

bool conn_by_name(const struct conn *c)
{
	return !(c->literal && !c->name_from_peek);
}

bool conn_set_target(struct conn *c, const char *host, size_t len,
		     uint16_t port, char *why, size_t whysz)
{
	c->port = port;
	struct ip_addr a;
	if (ip_parse_strict(host, len, &a)) {
		c->literal = true;
		c->literal_addr = a;
		ip_format(&a, c->name);
		return true;
	}
	if (ip_looks_numeric(host, len)) {
		fmt_buf(why, whysz,
			"'%.*s' is neither a host name nor a strict IP address",
			(int)(len > 80 ? 80 : len), host);
		return false;
	}
	if (policy_normalize_name(host, len, c->name, sizeof(c->name)) < 0) {
		c->name[0] = '\0';
		fmt_buf(why, whysz, "'%.*s' is not a valid host name",
			(int)(len > 80 ? 80 : len), host);
		return false;
	}
	return true;
}

static void set_src(struct conn *c, const struct wire_header *h)
{
	if (!h->src_family)
		return;
	struct ip_addr a = {.family = h->src_family == 4 ? AF_INET : AF_INET6};
	memcpy(a.b, h->src_addr, h->src_family == 4 ? 4 : 16);
	char ip[IP_STR_MAX];
	ip_format(&a, ip);
	fmt_buf(c->src_str, sizeof(c->src_str),
		h->src_family == 4 ? "%s:%u" : "[%s]:%u", ip,
		(unsigned)h->src_port);
	/* Checked by the parser: Docker's name alphabet, hex ids. */
	fmt_buf(c->ctr_name, sizeof(c->ctr_name), "%s", h->ctr_name);
	fmt_buf(c->ctr_id, sizeof(c->ctr_id), "%s", h->ctr_id);
}

enum conn_next conn_read_header(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->client);
	size_t have = evbuffer_get_length(in);
	if (have < WIRE_HEADER_LEN)
		return CONN_NEXT_WAIT;
	if (have > WIRE_HEADER_MAX)
		have = WIRE_HEADER_MAX;
	struct wire_header h;
	enum wire_status st =
		wire_header_parse(evbuffer_pullup(in, (ev_ssize_t)have), have, &h);
	if (st == WIRE_INCOMPLETE) /* the source extension is on its way */
		return CONN_NEXT_WAIT;
	if (st != WIRE_OK) {
		char why[120];
		fmt_buf(why, sizeof(why), "bad wire header: %s",
			wire_status_str(st));
		return conn_end(c, why);
	}
	evbuffer_drain(in, h.len);
	set_src(c, &h);
	if (h.kind == WIRE_DNS)
		return CONN_NEXT_DNS;
	if (h.kind != WIRE_TCP)
		return conn_end(c, "control streams are not accepted by the "
				   "proxy");
	struct ip_addr dst = {.family = h.family == 4 ? AF_INET : AF_INET6};
	memcpy(dst.b, h.addr, h.family == 4 ? 4 : 16);
	c->port = h.port;
	if (synth_contains(c->px->synth, &dst)) {
		if (!proxy_synth_name(c->px, &dst, c->name,
				      sizeof(c->name))) {
			/* Denied with the decision (conn_decide_target); the
			 * refusal speaks the client's protocol when its first
			 * bytes are there (or come within the grace). */
			c->synthetic_unknown = true;
			ip_format(&dst, c->name);
		}
	} else {
		c->literal = true;
		c->literal_addr = dst;
		ip_format(&dst, c->name);
	}
	return CONN_NEXT_PEEK;
}
