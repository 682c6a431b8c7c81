/* The guest's nftables capture rules as one netlink batch, encoded by hand
 * (no nft, no libnftnl: sandbox-init is static and /usr is a 9p share).
 *
 * nft_capture_batch() is a pure function: it writes into buf the batch
 * that `nft -f` would send for the ruleset in NFT_CAPTURE_RULESET (same
 * expressions, same registers; tests/integration/test_nft_batch.py loads
 * both into the kernel and compares `nft --debug=netlink list ruleset`).
 * netcap.c sends it over NETLINK_NETFILTER and reads the acknowledgements.
 */
#ifndef GUEST_NFT_BATCH_H
#define GUEST_NFT_BATCH_H

#include <stddef.h>
#include <stdint.h>

/* Room for the whole batch (about 4 KiB today; checked by the encoder). */
#define NFT_BATCH_MAX 16384

/* Encode the batch: returns its length, or 0 if cap is too small. Every
 * message but the batch markers asks for an acknowledgement; *nacks is
 * how many the kernel will send. Sequence numbers start at seq. */
size_t nft_capture_batch(uint8_t *buf, size_t cap, uint32_t seq,
			 unsigned *nacks);

/* Load the batch into the kernel (nft_send.c): 0, or a negative errno with
 * *why saying which step failed. */
int nft_capture_load(const char **why);

/* The same rules as nft(8) text, for tests and for reading. */
extern const char NFT_CAPTURE_RULESET[];

#endif
