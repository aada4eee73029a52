/* Coinbase -> merkle root -> header in one C call, so a share check crosses into Python only once. */
#include "share.h"

#include <string.h>

#include "sha256.h"

static inline void store_le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

void sp_build_header(const uint8_t *coinb1, size_t coinb1_len, const uint8_t *extranonce1, size_t extranonce1_len,
                     const uint8_t *extranonce2, size_t extranonce2_len, const uint8_t *coinb2, size_t coinb2_len,
                     const uint8_t *branch, size_t nbranch, uint32_t version, const uint8_t prevhash[32],
                     uint32_t ntime, uint32_t nbits, uint32_t nonce, uint8_t header[80]) {
    /* pair[0:32] is the running hash, pair[32:64] the next branch hash: each level is one sha256d of 64
     * bytes, written back over pair[0:32]. The coinbase is streamed in its four pieces, never joined. */
    uint8_t pair[64];
    sp_sha256_ctx ctx;
    sp_sha256_init(&ctx);
    sp_sha256_update(&ctx, coinb1, coinb1_len);
    sp_sha256_update(&ctx, extranonce1, extranonce1_len);
    sp_sha256_update(&ctx, extranonce2, extranonce2_len);
    sp_sha256_update(&ctx, coinb2, coinb2_len);
    sp_sha256d_final(&ctx, pair);
    for (size_t i = 0; i < nbranch; i++) {
        memcpy(pair + 32, branch + 32 * i, 32);
        sp_sha256d_64(pair, pair);
    }
    store_le32(header, version);
    memcpy(header + 4, prevhash, 32);
    memcpy(header + 36, pair, 32);
    store_le32(header + 68, ntime);
    store_le32(header + 72, nbits);
    store_le32(header + 76, nonce);
}
