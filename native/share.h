/* The sha256d half of a share check: coinbase -> merkle root -> 80-byte block header. */
#ifndef STRATUM_POOL_SHARE_H
#define STRATUM_POOL_SHARE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* header = <I version | prevhash (32) | merkle root | <I ntime | <I nbits | <I nonce, where the root is
 * sha256d(coinb1 + extranonce1 + extranonce2 + coinb2) folded with each of the `nbranch` 32-byte hashes
 * of `branch` (root = sha256d(root + branch[i])). */
void sp_build_header(const uint8_t *coinb1, size_t coinb1_len, const uint8_t *extranonce1, size_t extranonce1_len,
                     const uint8_t *extranonce2, size_t extranonce2_len, const uint8_t *coinb2, size_t coinb2_len,
                     const uint8_t *branch, size_t nbranch, uint32_t version, const uint8_t prevhash[32],
                     uint32_t ntime, uint32_t nbits, uint32_t nonce, uint8_t header[80]);

#ifdef __cplusplus
}
#endif

#endif
