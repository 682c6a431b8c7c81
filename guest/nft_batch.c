/* The capture rules as a netlink batch (see nft_batch.h). The rule behind
 * every chain is in netcap.c; the expressions below are what nft 1.0.6
 * sends for NFT_CAPTURE_RULESET (`nft --debug=netlink -f`), so the kernel
 * holds the same rules whichever of the two loaded them. */
#include "nft_batch.h"

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <stdbool.h>
#include <string.h>

#include "guest.h"

#define STR_(x) #x
#define STR(x) STR_(x)

const char NFT_CAPTURE_RULESET[] =
	"flush ruleset\n"
	"table ip sandbox_nat {\n"
	"  chain output {\n"
	"    type nat hook output priority -100; policy accept;\n"
	"    oifname \"lo\" return\n"
	"    ip daddr 127.0.0.0/8 return\n"
	"    meta l4proto tcp th dport 53 dnat to " FWD_DNS_ADDR ":53\n"
	"    meta l4proto udp th dport 53 dnat to " FWD_DNS_ADDR ":53\n"
	"    oifname != \"eth0\" return\n"
	"    meta l4proto tcp redirect to :" STR(FWD_TCP_PORT) "\n"
	"  }\n"
	"  chain prerouting {\n"
	"    type nat hook prerouting priority -100; policy accept;\n"
	"    iifname \"lo\" return\n"
	"    meta l4proto tcp th dport 53 dnat to " FWD_DNS_ADDR ":53\n"
	"    meta l4proto udp th dport 53 dnat to " FWD_DNS_ADDR ":53\n"
	"    fib daddr oifname != \"eth0\" return\n"
	"    meta l4proto tcp redirect to :" STR(FWD_TCP_PORT) "\n"
	"  }\n"
	"}\n"
	"table inet sandbox_filter {\n"
	"  chain output {\n"
	"    type filter hook output priority 0; policy drop;\n"
	"    oifname \"lo\" accept\n"
	"    meta nfproto ipv6 drop\n"
	"    ip daddr 127.0.0.0/8 accept\n"
	"    oifname != \"eth0\" accept\n"
	"  }\n"
	"  chain input {\n"
	"    type filter hook input priority 0; policy accept;\n"
	"    iifname != \"lo\" meta nfproto ipv6 drop\n"
	"  }\n"
	"  chain forward {\n"
	"    type filter hook forward priority 0; policy drop;\n"
	"    meta nfproto ipv6 drop\n"
	"    oifname \"eth0\" drop\n"
	"    iifname \"eth0\" drop\n"
	"    accept\n"
	"  }\n"
	"}\n";

/* ---- a bounded netlink writer ---- */

struct nlb {
	uint8_t *buf;
	size_t cap, len;
	bool overflow;
	uint32_t seq;
	unsigned nacks;
	size_t msg;       /* offset of the open message's header */
	size_t nest[8];   /* offsets of open nested attributes */
	int depth;
};

static void *nlb_put(struct nlb *b, const void *p, size_t n)
{
	size_t pad = NLMSG_ALIGN(n);
	if (b->overflow || pad > b->cap - b->len) {
		b->overflow = true;
		return NULL;
	}
	uint8_t *dst = b->buf + b->len;
	memset(dst, 0, pad);
	if (p)
		memcpy(dst, p, n);
	b->len += pad;
	return dst;
}

static void msg_begin(struct nlb *b, uint16_t type, uint16_t flags,
		      uint8_t family, uint16_t res_id)
{
	b->msg = b->len;
	struct nlmsghdr h = {.nlmsg_type = type,
			     .nlmsg_flags = NLM_F_REQUEST | flags,
			     .nlmsg_seq = b->seq++};
	struct nfgenmsg g = {.nfgen_family = family,
			     .version = NFNETLINK_V0,
			     .res_id = htons(res_id)};
	nlb_put(b, &h, sizeof(h));
	nlb_put(b, &g, sizeof(g));
	if (flags & NLM_F_ACK)
		b->nacks++;
}

static void msg_end(struct nlb *b)
{
	if (b->overflow)
		return;
	struct nlmsghdr *h = (struct nlmsghdr *)(b->buf + b->msg);
	h->nlmsg_len = (uint32_t)(b->len - b->msg);
}

static void attr(struct nlb *b, uint16_t type, const void *p, size_t n)
{
	struct nlattr a = {.nla_len = (uint16_t)(NLA_HDRLEN + n),
			   .nla_type = type};
	nlb_put(b, &a, sizeof(a));
	nlb_put(b, p, n);
}

static void attr_str(struct nlb *b, uint16_t type, const char *s)
{
	attr(b, type, s, strlen(s) + 1);
}

static void attr_be32(struct nlb *b, uint16_t type, uint32_t v)
{
	uint32_t be = htonl(v);
	attr(b, type, &be, sizeof(be));
}

static void nest_begin(struct nlb *b, uint16_t type)
{
	if (b->depth >= (int)(sizeof(b->nest) / sizeof(b->nest[0]))) {
		b->overflow = true;
		return;
	}
	b->nest[b->depth++] = b->len;
	struct nlattr a = {.nla_type = type | NLA_F_NESTED};
	nlb_put(b, &a, sizeof(a));
}

static void nest_end(struct nlb *b)
{
	if (b->depth <= 0) {
		b->overflow = true;
		return;
	}
	size_t at = b->nest[--b->depth];
	if (b->overflow)
		return;
	((struct nlattr *)(b->buf + at))->nla_len = (uint16_t)(b->len - at);
}

/* ---- tables, chains, rules ---- */

#define NFT_MSG(t) ((NFNL_SUBSYS_NFTABLES << 8) | (t))

static void table(struct nlb *b, uint8_t family, const char *name)
{
	msg_begin(b, NFT_MSG(NFT_MSG_NEWTABLE), NLM_F_CREATE | NLM_F_ACK,
		  family, 0);
	attr_str(b, NFTA_TABLE_NAME, name);
	attr_be32(b, NFTA_TABLE_FLAGS, 0);
	msg_end(b);
}

static void chain(struct nlb *b, uint8_t family, const char *tab,
		  const char *name, const char *type, uint32_t hook,
		  int32_t prio, uint32_t policy)
{
	msg_begin(b, NFT_MSG(NFT_MSG_NEWCHAIN), NLM_F_CREATE | NLM_F_ACK,
		  family, 0);
	attr_str(b, NFTA_CHAIN_TABLE, tab);
	attr_str(b, NFTA_CHAIN_NAME, name);
	nest_begin(b, NFTA_CHAIN_HOOK);
	attr_be32(b, NFTA_HOOK_HOOKNUM, hook);
	attr_be32(b, NFTA_HOOK_PRIORITY, (uint32_t)prio);
	nest_end(b);
	attr_be32(b, NFTA_CHAIN_POLICY, policy);
	attr_str(b, NFTA_CHAIN_TYPE, type);
	msg_end(b);
}

static void rule_begin(struct nlb *b, uint8_t family, const char *tab,
		       const char *ch)
{
	msg_begin(b, NFT_MSG(NFT_MSG_NEWRULE),
		  NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK, family, 0);
	attr_str(b, NFTA_RULE_TABLE, tab);
	attr_str(b, NFTA_RULE_CHAIN, ch);
	nest_begin(b, NFTA_RULE_EXPRESSIONS);
}

static void rule_end(struct nlb *b)
{
	nest_end(b);
	msg_end(b);
}

static void expr_begin(struct nlb *b, const char *name)
{
	nest_begin(b, NFTA_LIST_ELEM);
	attr_str(b, NFTA_EXPR_NAME, name);
	nest_begin(b, NFTA_EXPR_DATA);
}

static void expr_end(struct nlb *b)
{
	nest_end(b); /* data */
	nest_end(b); /* element */
}

/* [ meta load KEY => reg 1 ] */
static void e_meta(struct nlb *b, uint32_t key)
{
	expr_begin(b, "meta");
	attr_be32(b, NFTA_META_DREG, NFT_REG_1);
	attr_be32(b, NFTA_META_KEY, key);
	expr_end(b);
}

static void data_value(struct nlb *b, uint16_t type, const void *p, size_t n)
{
	nest_begin(b, type);
	attr(b, NFTA_DATA_VALUE, p, n);
	nest_end(b);
}

/* [ cmp OP reg 1 DATA ] */
static void e_cmp(struct nlb *b, uint32_t op, const void *p, size_t n)
{
	expr_begin(b, "cmp");
	attr_be32(b, NFTA_CMP_SREG, NFT_REG_1);
	attr_be32(b, NFTA_CMP_OP, op);
	data_value(b, NFTA_CMP_DATA, p, n);
	expr_end(b);
}

/* An interface name compares as the whole IFNAMSIZ buffer. */
static void e_cmp_ifname(struct nlb *b, uint32_t op, const char *name)
{
	char n[16] = {0};
	memcpy(n, name, strnlen(name, sizeof(n) - 1));
	e_cmp(b, op, n, sizeof(n));
}

static void e_cmp_u8(struct nlb *b, uint8_t v)
{
	e_cmp(b, NFT_CMP_EQ, &v, 1);
}

static void e_payload(struct nlb *b, uint32_t base, uint32_t off,
		      uint32_t len)
{
	expr_begin(b, "payload");
	attr_be32(b, NFTA_PAYLOAD_DREG, NFT_REG_1);
	attr_be32(b, NFTA_PAYLOAD_BASE, base);
	attr_be32(b, NFTA_PAYLOAD_OFFSET, off);
	attr_be32(b, NFTA_PAYLOAD_LEN, len);
	expr_end(b);
}

static void e_imm(struct nlb *b, uint32_t reg, const void *p, size_t n)
{
	expr_begin(b, "immediate");
	attr_be32(b, NFTA_IMMEDIATE_DREG, reg);
	data_value(b, NFTA_IMMEDIATE_DATA, p, n);
	expr_end(b);
}

/* [ immediate reg 0 VERDICT ] */
static void e_verdict(struct nlb *b, int32_t code)
{
	expr_begin(b, "immediate");
	attr_be32(b, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
	nest_begin(b, NFTA_IMMEDIATE_DATA);
	nest_begin(b, NFTA_DATA_VERDICT);
	attr_be32(b, NFTA_VERDICT_CODE, (uint32_t)code);
	nest_end(b);
	nest_end(b);
	expr_end(b);
}

/* ---- the rules of NFT_CAPTURE_RULESET ---- */

static void r_ifname_verdict(struct nlb *b, uint8_t fam, const char *tab,
			     const char *ch, uint32_t key, uint32_t op,
			     const char *ifname, int32_t verdict)
{
	rule_begin(b, fam, tab, ch);
	e_meta(b, key);
	e_cmp_ifname(b, op, ifname);
	e_verdict(b, verdict);
	rule_end(b);
}

/* [ (meta nfproto ipv4) payload 1b @ network + 16 ; cmp 127 ] VERDICT:
 * `ip daddr 127.0.0.0/8` */
static void r_loopback_dst(struct nlb *b, uint8_t fam, const char *tab,
			   const char *ch, int32_t verdict)
{
	rule_begin(b, fam, tab, ch);
	if (fam == NFPROTO_INET) {
		e_meta(b, NFT_META_NFPROTO);
		e_cmp_u8(b, NFPROTO_IPV4);
	}
	e_payload(b, NFT_PAYLOAD_NETWORK_HEADER, 16, 1);
	e_cmp_u8(b, 127);
	e_verdict(b, verdict);
	rule_end(b);
}

/* meta l4proto PROTO th dport 53 dnat to FWD_DNS_ADDR:53 */
static void r_dns_dnat(struct nlb *b, const char *ch, uint8_t proto)
{
	uint16_t port = htons(53);
	struct in_addr addr;
	inet_pton(AF_INET, FWD_DNS_ADDR, &addr);
	rule_begin(b, NFPROTO_IPV4, "sandbox_nat", ch);
	e_meta(b, NFT_META_L4PROTO);
	e_cmp_u8(b, proto);
	e_payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
	e_cmp(b, NFT_CMP_EQ, &port, sizeof(port));
	e_imm(b, NFT_REG_1, &addr, sizeof(addr));
	e_imm(b, NFT_REG_2, &port, sizeof(port));
	expr_begin(b, "nat");
	attr_be32(b, NFTA_NAT_TYPE, NFT_NAT_DNAT);
	attr_be32(b, NFTA_NAT_FAMILY, NFPROTO_IPV4);
	attr_be32(b, NFTA_NAT_REG_ADDR_MIN, NFT_REG_1);
	attr_be32(b, NFTA_NAT_REG_PROTO_MIN, NFT_REG_2);
	attr_be32(b, NFTA_NAT_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
	expr_end(b);
	rule_end(b);
}

/* meta l4proto tcp redirect to :FWD_TCP_PORT */
static void r_redirect(struct nlb *b, const char *ch)
{
	uint16_t port = htons(FWD_TCP_PORT);
	rule_begin(b, NFPROTO_IPV4, "sandbox_nat", ch);
	e_meta(b, NFT_META_L4PROTO);
	e_cmp_u8(b, IPPROTO_TCP);
	e_imm(b, NFT_REG_1, &port, sizeof(port));
	expr_begin(b, "redir");
	attr_be32(b, NFTA_REDIR_REG_PROTO_MIN, NFT_REG_1);
	attr_be32(b, NFTA_REDIR_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
	expr_end(b);
	rule_end(b);
}

static void nat_table(struct nlb *b)
{
	const uint8_t F = NFPROTO_IPV4;
	const char *T = "sandbox_nat";
	table(b, F, T);
	chain(b, F, T, "output", "nat", NF_INET_LOCAL_OUT, -100, NF_ACCEPT);
	chain(b, F, T, "prerouting", "nat", NF_INET_PRE_ROUTING, -100,
	      NF_ACCEPT);

	r_ifname_verdict(b, F, T, "output", NFT_META_OIFNAME, NFT_CMP_EQ, "lo",
			 NFT_RETURN);
	r_loopback_dst(b, F, T, "output", NFT_RETURN);
	r_dns_dnat(b, "output", IPPROTO_TCP);
	r_dns_dnat(b, "output", IPPROTO_UDP);
	r_ifname_verdict(b, F, T, "output", NFT_META_OIFNAME, NFT_CMP_NEQ,
			 "eth0", NFT_RETURN);
	r_redirect(b, "output");

	r_ifname_verdict(b, F, T, "prerouting", NFT_META_IIFNAME, NFT_CMP_EQ,
			 "lo", NFT_RETURN);
	r_dns_dnat(b, "prerouting", IPPROTO_TCP);
	r_dns_dnat(b, "prerouting", IPPROTO_UDP);
	/* fib daddr oifname != "eth0" return */
	rule_begin(b, F, T, "prerouting");
	expr_begin(b, "fib");
	attr_be32(b, NFTA_FIB_DREG, NFT_REG_1);
	attr_be32(b, NFTA_FIB_RESULT, NFT_FIB_RESULT_OIFNAME);
	attr_be32(b, NFTA_FIB_FLAGS, NFTA_FIB_F_DADDR);
	expr_end(b);
	e_cmp_ifname(b, NFT_CMP_NEQ, "eth0");
	e_verdict(b, NFT_RETURN);
	rule_end(b);
	r_redirect(b, "prerouting");
}

static void r_nfproto_v6(struct nlb *b, const char *ch, int iif_not_lo)
{
	rule_begin(b, NFPROTO_INET, "sandbox_filter", ch);
	if (iif_not_lo) {
		e_meta(b, NFT_META_IIFNAME);
		e_cmp_ifname(b, NFT_CMP_NEQ, "lo");
	}
	e_meta(b, NFT_META_NFPROTO);
	e_cmp_u8(b, NFPROTO_IPV6);
	e_verdict(b, NF_DROP);
	rule_end(b);
}

static void filter_table(struct nlb *b)
{
	const uint8_t F = NFPROTO_INET;
	const char *T = "sandbox_filter";
	table(b, F, T);
	chain(b, F, T, "output", "filter", NF_INET_LOCAL_OUT, 0, NF_DROP);
	chain(b, F, T, "input", "filter", NF_INET_LOCAL_IN, 0, NF_ACCEPT);
	chain(b, F, T, "forward", "filter", NF_INET_FORWARD, 0, NF_DROP);

	r_ifname_verdict(b, F, T, "output", NFT_META_OIFNAME, NFT_CMP_EQ, "lo",
			 NF_ACCEPT);
	r_nfproto_v6(b, "output", 0);
	r_loopback_dst(b, F, T, "output", NF_ACCEPT);
	r_ifname_verdict(b, F, T, "output", NFT_META_OIFNAME, NFT_CMP_NEQ,
			 "eth0", NF_ACCEPT);

	r_nfproto_v6(b, "input", 1);

	r_nfproto_v6(b, "forward", 0);
	r_ifname_verdict(b, F, T, "forward", NFT_META_OIFNAME, NFT_CMP_EQ,
			 "eth0", NF_DROP);
	r_ifname_verdict(b, F, T, "forward", NFT_META_IIFNAME, NFT_CMP_EQ,
			 "eth0", NF_DROP);
	rule_begin(b, F, T, "forward");
	e_verdict(b, NF_ACCEPT);
	rule_end(b);
}

size_t nft_capture_batch(uint8_t *buf, size_t cap, uint32_t seq,
			 unsigned *nacks)
{
	struct nlb b = {.buf = buf, .cap = cap, .seq = seq};
	msg_begin(&b, NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
	msg_end(&b);
	/* flush ruleset: delete every table of every family */
	msg_begin(&b, NFT_MSG(NFT_MSG_DELTABLE), NLM_F_ACK, NFPROTO_UNSPEC, 0);
	msg_end(&b);
	nat_table(&b);
	filter_table(&b);
	msg_begin(&b, NFNL_MSG_BATCH_END, 0, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
	msg_end(&b);
	if (b.overflow || b.depth != 0)
		return 0;
	*nacks = b.nacks;
	return b.len;
}
