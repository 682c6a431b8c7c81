"""The test names and the address they resolve to: the one place that says
which names dnsmasq answers for and which the test certificate covers."""

# The servers all live on this address; dnsmasq maps the test names to it.
UPSTREAM_IP = "127.0.0.2"

# dnsmasq answers for these names (A unless the address is IPv6). Every
# other name under .test is NXDOMAIN (--local=/test/).
DNS_RECORDS = {
    "allowed.test": "127.0.0.2",
    "www.allowed.test": "127.0.0.2",
    "other.test": "127.0.0.2",
    "denied.test": "127.0.0.2",
    "would.test": "127.0.0.2",
    "reload.test": "127.0.0.2",
    "git.test": "127.0.0.2",
    "loop.test": "127.0.0.2",
    "preset.test": "127.0.0.2",
    "one.sub.test": "127.0.0.2",
    # IPv4-mapped loopback: the proxy must unwrap it and refuse it as
    # loopback; if it did not, the connection still stays on loopback.
    "mapped.test": "::ffff:127.0.0.2",
}
CERT_NAMES = [n for n in DNS_RECORDS] + ["*.allowed.test"]
