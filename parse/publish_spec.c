/* The publish spec "[HOST_IP:]HOST_PORT:GUEST_PORT" (parse/inbound.h). */
#include "inbound.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "../common/ipaddr.h"
#include "../common/util.h"

/* A decimal port 1-65535 in s[0..len), no sign, no leading zero. */
static bool port_parse(const char *s, size_t len, uint16_t *out)
{
	if (len == 0 || len > 5 || (s[0] == '0'))
		return false;
	unsigned v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

int publish_spec_parse(const char *s, struct publish_spec *out,
		       const char **why)
{
	memset(out, 0, sizeof(*out));
	size_t n = strlen(s);
	const char *gp = memrchr(s, ':', n);
	if (!gp) {
		*why = "expected [HOST_IP:]HOST_PORT:GUEST_PORT";
		return -EINVAL;
	}
	if (!port_parse(gp + 1, (size_t)(s + n - gp - 1), &out->guest_port)) {
		*why = "GUEST_PORT is not a port number 1-65535";
		return -EINVAL;
	}
	const char *hp = memrchr(s, ':', (size_t)(gp - s));
	const char *hp_start = hp ? hp + 1 : s;
	if (!port_parse(hp_start, (size_t)(gp - hp_start), &out->host_port)) {
		*why = "HOST_PORT is not a port number 1-65535";
		return -EINVAL;
	}
	if (!hp)
		return 0;
	const char *a = s;
	size_t alen = (size_t)(hp - s);
	if (alen > 0 && a[0] == '[') {
		if (alen < 2 || a[alen - 1] != ']') {
			*why = "HOST_IP: an IPv6 address needs [brackets]";
			return -EINVAL;
		}
		a++;
		alen -= 2;
		if (!memchr(a, ':', alen)) {
			*why = "HOST_IP: only an IPv6 address goes in brackets";
			return -EINVAL;
		}
	} else if (memchr(a, ':', alen)) {
		*why = "HOST_IP: an IPv6 address needs [brackets]";
		return -EINVAL;
	}
	struct ip_addr ip;
	if (!ip_parse_strict(a, alen, &ip)) {
		*why = "HOST_IP is not an IP address (names are not taken)";
		return -EINVAL;
	}
	out->has_addr = true;
	out->family = ip.family;
	memcpy(out->addr, ip.b, 16);
	char t[IP_STR_MAX];
	ip_format(&ip, t);
	fmt_buf(out->addr_text, sizeof(out->addr_text), "%s", t);
	return 0;
}

bool publish_spec_is_loopback(const struct publish_spec *p)
{
	if (!p->has_addr)
		return true;
	if (p->family == AF_INET)
		return p->addr[0] == 127;
	static const uint8_t v6_loop[16] = {[15] = 1};
	return memcmp(p->addr, v6_loop, 16) == 0;
}

int publish_spec_format(const struct publish_spec *p, char *buf, size_t size)
{
	if (!p->has_addr)
		return fmt_buf(buf, size, "%u:%u", p->host_port,
			       p->guest_port);
	if (p->family == AF_INET6)
		return fmt_buf(buf, size, "[%s]:%u:%u", p->addr_text,
			       p->host_port, p->guest_port);
	return fmt_buf(buf, size, "%s:%u:%u", p->addr_text, p->host_port,
		       p->guest_port);
}
