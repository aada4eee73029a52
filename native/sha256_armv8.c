/* SHA-256 with the ARMv8 cryptography extension (SHA2 instructions).
 *
 * Compiled only on aarch64, with a function-level target so the module still loads on cores without the
 * extension; chosen at run time when getauxval(AT_HWCAP) reports HWCAP_SHA2. Not exercised by the x86 CI. */
#if defined(__aarch64__)

#include "sha256.h"

#include <arm_neon.h>
#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_SHA2
#define HWCAP_SHA2 (1 << 6)
#endif
#endif

int sp_cpu_has_armv8_sha2(void) {
#if defined(__linux__)
    return (getauxval(AT_HWCAP) & HWCAP_SHA2) != 0;
#elif defined(__APPLE__)
    return 1; /* every Apple arm64 core has the SHA2 instructions */
#else
    return 0;
#endif
}

#if defined(__clang__)
#define SP_ARMV8 __attribute__((target("sha2")))
#else
#define SP_ARMV8 __attribute__((target("+crypto")))
#endif

/* Four rounds: the SHA256H/SHA256H2 pair both need the old ABCD. */
#define FOUR_ROUNDS(abcd, efgh, wk)                        \
    do {                                                   \
        uint32x4_t abcd_old_ = (abcd);                     \
        (abcd) = vsha256hq_u32((abcd), (efgh), (wk));      \
        (efgh) = vsha256h2q_u32((efgh), abcd_old_, (wk));  \
    } while (0)

SP_ARMV8 void sp_compress_armv8(uint32_t state[8], const uint8_t *blocks, size_t nblocks) {
    uint32x4_t abcd = vld1q_u32(&state[0]);
    uint32x4_t efgh = vld1q_u32(&state[4]);
    for (size_t n = 0; n < nblocks; n++, blocks += 64) {
        const uint32x4_t abcd0 = abcd, efgh0 = efgh;
        uint32x4_t m[4];
        for (int i = 0; i < 4; i++)
            m[i] = vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(blocks + 16 * i)));
        for (int g = 0; g < 16; g++) {
            uint32x4_t wk = vaddq_u32(m[g & 3], vld1q_u32(sp_sha256_K + 4 * g));
            if (g < 12)
                m[g & 3] = vsha256su1q_u32(vsha256su0q_u32(m[g & 3], m[(g + 1) & 3]), m[(g + 2) & 3],
                                           m[(g + 3) & 3]);
            FOUR_ROUNDS(abcd, efgh, wk);
        }
        abcd = vaddq_u32(abcd, abcd0);
        efgh = vaddq_u32(efgh, efgh0);
    }
    vst1q_u32(&state[0], abcd);
    vst1q_u32(&state[4], efgh);
}

SP_ARMV8 void sp_compress_wk_armv8(uint32_t state[8], const uint32_t wk[64]) {
    uint32x4_t abcd = vld1q_u32(&state[0]);
    uint32x4_t efgh = vld1q_u32(&state[4]);
    const uint32x4_t abcd0 = abcd, efgh0 = efgh;
    for (int g = 0; g < 16; g++) FOUR_ROUNDS(abcd, efgh, vld1q_u32(wk + 4 * g));
    vst1q_u32(&state[0], vaddq_u32(abcd, abcd0));
    vst1q_u32(&state[4], vaddq_u32(efgh, efgh0));
}

#endif
