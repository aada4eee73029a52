/* SHA-256 with the x86 SHA extensions (SHA-NI).
 *
 * Only these functions are compiled for the SHA/SSE4.1/SSSE3 instruction sets (function-level target
 * attributes, no global -msha), so the module still loads on CPUs without them; sha256.c calls them only
 * after sp_cpu_has_shani() said yes. */
#if defined(__x86_64__) || defined(__i386__)

#include "sha256.h"

#include <cpuid.h>
#include <immintrin.h>

int sp_cpu_has_shani(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    /* The code below also uses SSSE3 (pshufb) and SSE4.1 (pblendw). */
    int ssse3 = (ecx >> 9) & 1, sse41 = (ecx >> 19) & 1;
    if (!ssse3 || !sse41) return 0;
    /* Structured extended features, leaf 7 subleaf 0: EBX bit 29 = SHA. (gcc 12's
     * __builtin_cpu_supports has no reliable "sha" test.) */
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    return (ebx >> 29) & 1;
}

#define SP_SHANI __attribute__((target("sha,sse4.1,ssse3")))

/* The SHA-NI state layout is two registers, ABEF and CDGH; convert from/to the plain a..h words. */
SP_SHANI static inline void load_state(const uint32_t state[8], __m128i *abef, __m128i *cdgh) {
    __m128i dcba = _mm_loadu_si128((const __m128i *)&state[0]);
    __m128i hgfe = _mm_loadu_si128((const __m128i *)&state[4]);
    __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
    __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);
    *abef = _mm_alignr_epi8(cdab, efgh, 8);
    *cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);
}

SP_SHANI static inline void store_state(uint32_t state[8], __m128i abef, __m128i cdgh) {
    __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    __m128i dcba = _mm_blend_epi16(feba, dchg, 0xF0);
    __m128i hgfe = _mm_alignr_epi8(dchg, feba, 8);
    _mm_storeu_si128((__m128i *)&state[0], dcba);
    _mm_storeu_si128((__m128i *)&state[4], hgfe);
}

/* Four rounds with message+constant words `wk` (4 x uint32 in one register). */
#define FOUR_ROUNDS(abef, cdgh, wk)                                   \
    do {                                                              \
        (cdgh) = _mm_sha256rnds2_epu32((cdgh), (abef), (wk));          \
        (abef) = _mm_sha256rnds2_epu32((abef), (cdgh),                 \
                                       _mm_shuffle_epi32((wk), 0x0E)); \
    } while (0)

/* 64 rounds over one block given as four message vectors (words in lanes, already byte-swapped);
 * feeds the result forward into abef/cdgh. */
SP_SHANI static inline void block_rounds(__m128i *abef, __m128i *cdgh, __m128i m0, __m128i m1, __m128i m2,
                                         __m128i m3) {
    const __m128i *K = (const __m128i *)sp_sha256_K;
    __m128i a = *abef, c = *cdgh;
    /* m[g % 4] holds message words 4g..4g+3 for the group of four rounds g. */
    __m128i m[4] = {m0, m1, m2, m3};
#pragma GCC unroll 16
    for (int g = 0; g < 16; g++) {
        __m128i wk = _mm_add_epi32(m[g & 3], _mm_loadu_si128(K + g));
        FOUR_ROUNDS(a, c, wk);
        if (g < 12) {
            /* Words 4(g+4).. from the previous 16: sha256msg1 adds the sigma0 terms, the alignr supplies
             * w[t-7], sha256msg2 adds the sigma1 terms (which depend on the new words themselves). */
            __m128i t = _mm_sha256msg1_epu32(m[g & 3], m[(g + 1) & 3]);
            t = _mm_add_epi32(t, _mm_alignr_epi8(m[(g + 3) & 3], m[(g + 2) & 3], 4));
            m[g & 3] = _mm_sha256msg2_epu32(t, m[(g + 3) & 3]);
        }
    }
    *abef = _mm_add_epi32(a, *abef);
    *cdgh = _mm_add_epi32(c, *cdgh);
}

/* pshufb mask turning each big-endian message word into a native little-endian lane (and back). */
#define BSWAP32_MASK() _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL)

SP_SHANI static inline __m128i load_words(const uint8_t *p) {
    return _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)p), BSWAP32_MASK());
}

SP_SHANI void sp_compress_shani(uint32_t state[8], const uint8_t *blocks, size_t nblocks) {
    __m128i abef, cdgh;
    load_state(state, &abef, &cdgh);
    for (size_t n = 0; n < nblocks; n++, blocks += 64)
        block_rounds(&abef, &cdgh, load_words(blocks), load_words(blocks + 16), load_words(blocks + 32),
                     load_words(blocks + 48));
    store_state(state, abef, cdgh);
}

SP_SHANI static inline void wk_rounds(__m128i *abef, __m128i *cdgh, const uint32_t wk[64]) {
    __m128i a = *abef, c = *cdgh;
#pragma GCC unroll 16
    for (int g = 0; g < 16; g++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(wk + 4 * g));
        FOUR_ROUNDS(a, c, v);
    }
    *abef = _mm_add_epi32(a, *abef);
    *cdgh = _mm_add_epi32(c, *cdgh);
}

SP_SHANI void sp_compress_wk_shani(uint32_t state[8], const uint32_t wk[64]) {
    __m128i abef, cdgh;
    load_state(state, &abef, &cdgh);
    wk_rounds(&abef, &cdgh, wk);
    store_state(state, abef, cdgh);
}

/* The initial state directly in the ABEF / CDGH lane layout (lane 0 first: F, E, B, A and H, G, D, C). */
#define IV_ABEF() _mm_set_epi32(0x6a09e667, 0xbb67ae85, 0x510e527f, 0x9b05688c)
#define IV_CDGH() _mm_set_epi32(0x3c6ef372, 0xa54ff53a, 0x1f83d9ab, 0x5be0cd19)

/* Second hash of a sha256d, all in registers: the first digest's words a..h are the message words 0..7
 * as they are (no byte round trip), followed by the constant padding of a 32-byte message. */
SP_SHANI static inline void second_hash(__m128i abef, __m128i cdgh, uint8_t out[32]) {
    __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    __m128i dcba = _mm_blend_epi16(feba, dchg, 0xF0);
    __m128i hgfe = _mm_alignr_epi8(dchg, feba, 8);
    __m128i a2 = IV_ABEF(), c2 = IV_CDGH();
    block_rounds(&a2, &c2, dcba, hgfe, _mm_set_epi32(0, 0, 0, (int)0x80000000), _mm_set_epi32(256, 0, 0, 0));
    feba = _mm_shuffle_epi32(a2, 0x1B);
    dchg = _mm_shuffle_epi32(c2, 0xB1);
    dcba = _mm_blend_epi16(feba, dchg, 0xF0);
    hgfe = _mm_alignr_epi8(dchg, feba, 8);
    _mm_storeu_si128((__m128i *)out, _mm_shuffle_epi8(dcba, BSWAP32_MASK()));
    _mm_storeu_si128((__m128i *)(out + 16), _mm_shuffle_epi8(hgfe, BSWAP32_MASK()));
}

SP_SHANI void sp_sha256d_64_shani(const uint8_t *in, uint8_t out[32]) {
    __m128i abef = IV_ABEF(), cdgh = IV_CDGH();
    block_rounds(&abef, &cdgh, load_words(in), load_words(in + 16), load_words(in + 32), load_words(in + 48));
    wk_rounds(&abef, &cdgh, sp_sha256_pad64_wk);
    second_hash(abef, cdgh, out);
}

SP_SHANI void sp_sha256d_80_shani(const uint8_t *in, uint8_t out[32]) {
    __m128i abef = IV_ABEF(), cdgh = IV_CDGH();
    block_rounds(&abef, &cdgh, load_words(in), load_words(in + 16), load_words(in + 32), load_words(in + 48));
    /* Second block: header bytes 64..79, then 0x80, zeros and the bit length 640. */
    block_rounds(&abef, &cdgh, load_words(in + 64), _mm_set_epi32(0, 0, 0, (int)0x80000000), _mm_setzero_si128(),
                 _mm_set_epi32(640, 0, 0, 0));
    second_hash(abef, cdgh, out);
}

#endif
