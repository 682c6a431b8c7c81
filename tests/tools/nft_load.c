/* Test helper: sandbox-init's network set-up outside the guest.
 *   nft_load --rules    load the nftables capture batch (nft_batch.c)
 *   nft_load --ifaces   set up lo and eth0 over rtnetlink (netif.c)
 *   nft_load --ruleset  print the capture rules as nft(8) text
 * tests/integration/test_nft_batch.py runs them in fresh network
 * namespaces and compares what the kernel holds with what nft(8) and
 * ip(8) leave there. */
#include <stdio.h>
#include <string.h>

#include "../../guest/netif.c"
#include "../../guest/nft_batch.c"
#include "../../guest/nft_send.c"

int main(int argc, char **argv)
{
	const char *why = "";
	int r;
	if (argc == 2 && !strcmp(argv[1], "--ruleset")) {
		fputs(NFT_CAPTURE_RULESET, stdout);
		return 0;
	} else if (argc == 2 && !strcmp(argv[1], "--rules")) {
		r = nft_capture_load(&why);
	} else if (argc == 2 && !strcmp(argv[1], "--ifaces")) {
		r = netif_setup(&why);
	} else {
		fputs("usage: nft_load --rules | --ifaces | --ruleset\n", stderr);
		return 2;
	}
	if (r) {
		fprintf(stderr, "nft_load: %s: %s\n", why, strerror(-r));
		return 1;
	}
	return 0;
}
