/* scrypt(N=1024, r=1, p=1) of an 80-byte header, as Litecoin hashes its blocks.
 *
 * scrypt = PBKDF2-HMAC-SHA256(P, S, 1, 128) -> ROMix (salsa20/8 BlockMix, N = 1024) -> PBKDF2-HMAC-SHA256(P, B', 1, 32)
 * with P = S = header. Every length is fixed, so the HMAC/PBKDF2 steps are written out as the exact
 * compressions they need on top of the active SHA-256 backend (no generic buffering). */
#include "scrypt.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"

#define SCRYPT_N 1024
#define SCRYPT_WORDS 32 /* 128 * r bytes = 32 words per ROMix block */

static inline uint32_t load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline void store_le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void store_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void state_to_bytes(const uint32_t st[8], uint8_t out[32]) {
    for (int i = 0; i < 8; i++) store_be32(out + 4 * i, st[i]);
}

/* ---- HMAC-SHA256 keyed with the header ---- */

typedef struct {
    uint32_t inner[8]; /* state after compressing key ^ ipad */
    uint32_t outer[8]; /* state after compressing key ^ opad */
} hmac_key;

static void hmac_init(hmac_key *k, const uint8_t header[80]) {
    /* The 80-byte key is longer than a block, so HMAC uses sha256(key) zero-padded to 64 bytes. */
    uint8_t kh[32], pad[64];
    sp_sha256(header, 80, kh);
    memset(pad, 0x36, 64);
    for (int i = 0; i < 32; i++) pad[i] ^= kh[i];
    memcpy(k->inner, sp_sha256_IV, 32);
    sp_sha.compress(k->inner, pad, 1);
    memset(pad, 0x5c, 64);
    for (int i = 0; i < 32; i++) pad[i] ^= kh[i];
    memcpy(k->outer, sp_sha256_IV, 32);
    sp_sha.compress(k->outer, pad, 1);
}

/* Outer HMAC hash: opad state + the 32-byte inner digest; the message so far is 64 + 32 bytes = 768 bits. */
static void hmac_outer(const hmac_key *k, const uint32_t inner_digest[8], uint8_t out[32]) {
    uint8_t block[64];
    state_to_bytes(inner_digest, block);
    memset(block + 32, 0, 32);
    block[32] = 0x80;
    block[62] = 0x03; /* 768 = 0x0300 */
    uint32_t st[8];
    memcpy(st, k->outer, 32);
    sp_sha.compress(st, block, 1);
    state_to_bytes(st, out);
}

/* ---- salsa20/8 ---- */

/* Scalar on purpose: a single hash is one serial chain, and the four independent quarter-rounds of each
 * half-round give a superscalar core as much parallelism as a 4-lane SSE2 version (which measured slower
 * here because of its lane shuffles). */
#define ROTL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

/* b = salsa20/8(b ^ bx), the r = 1 BlockMix half-step. */
static inline void xor_salsa8(uint32_t b[16], const uint32_t bx[16]) {
    uint32_t x[16];
    for (int i = 0; i < 16; i++) x[i] = b[i] ^= bx[i];
    uint32_t x00 = x[0], x01 = x[1], x02 = x[2], x03 = x[3], x04 = x[4], x05 = x[5], x06 = x[6],
             x07 = x[7], x08 = x[8], x09 = x[9], x10 = x[10], x11 = x[11], x12 = x[12], x13 = x[13],
             x14 = x[14], x15 = x[15];
    for (int i = 0; i < 8; i += 2) {
        /* columns */
        x04 ^= ROTL(x00 + x12, 7);  x09 ^= ROTL(x05 + x01, 7);
        x14 ^= ROTL(x10 + x06, 7);  x03 ^= ROTL(x15 + x11, 7);
        x08 ^= ROTL(x04 + x00, 9);  x13 ^= ROTL(x09 + x05, 9);
        x02 ^= ROTL(x14 + x10, 9);  x07 ^= ROTL(x03 + x15, 9);
        x12 ^= ROTL(x08 + x04, 13); x01 ^= ROTL(x13 + x09, 13);
        x06 ^= ROTL(x02 + x14, 13); x11 ^= ROTL(x07 + x03, 13);
        x00 ^= ROTL(x12 + x08, 18); x05 ^= ROTL(x01 + x13, 18);
        x10 ^= ROTL(x06 + x02, 18); x15 ^= ROTL(x11 + x07, 18);
        /* rows */
        x01 ^= ROTL(x00 + x03, 7);  x06 ^= ROTL(x05 + x04, 7);
        x11 ^= ROTL(x10 + x09, 7);  x12 ^= ROTL(x15 + x14, 7);
        x02 ^= ROTL(x01 + x00, 9);  x07 ^= ROTL(x06 + x05, 9);
        x08 ^= ROTL(x11 + x10, 9);  x13 ^= ROTL(x12 + x15, 9);
        x03 ^= ROTL(x02 + x01, 13); x04 ^= ROTL(x07 + x06, 13);
        x09 ^= ROTL(x08 + x11, 13); x14 ^= ROTL(x13 + x12, 13);
        x00 ^= ROTL(x03 + x02, 18); x05 ^= ROTL(x04 + x07, 18);
        x10 ^= ROTL(x09 + x08, 18); x15 ^= ROTL(x14 + x13, 18);
    }
    b[0] += x00; b[1] += x01; b[2] += x02; b[3] += x03; b[4] += x04; b[5] += x05; b[6] += x06;
    b[7] += x07; b[8] += x08; b[9] += x09; b[10] += x10; b[11] += x11; b[12] += x12; b[13] += x13;
    b[14] += x14; b[15] += x15;
}

/* ROMix, r = 1: X = (X0, X1) of 16 words each; BlockMix = X0 = salsa(X0 ^ X1); X1 = salsa(X1 ^ X0). */
static void romix(uint8_t B[128], uint32_t *V) {
    uint32_t X[SCRYPT_WORDS];
    for (int i = 0; i < SCRYPT_WORDS; i++) X[i] = load_le32(B + 4 * i);
    for (int i = 0; i < SCRYPT_N; i++) {
        memcpy(V + (size_t)i * SCRYPT_WORDS, X, sizeof X);
        xor_salsa8(X, X + 16);
        xor_salsa8(X + 16, X);
    }
    for (int i = 0; i < SCRYPT_N; i++) {
        const uint32_t *v = V + (size_t)(X[16] & (SCRYPT_N - 1)) * SCRYPT_WORDS;
        for (int k = 0; k < SCRYPT_WORDS; k++) X[k] ^= v[k];
        xor_salsa8(X, X + 16);
        xor_salsa8(X + 16, X);
    }
    for (int i = 0; i < SCRYPT_WORDS; i++) store_le32(B + 4 * i, X[i]);
}

/* ---- per-thread scratchpad ---- */

/* ROMix needs N * 128 bytes = 128 KiB. Too big for the stack of every thread that may call us, and
 * malloc'ing it per call would hit mmap (glibc's default mmap threshold is 128 KiB), so each thread keeps
 * one buffer, freed when the thread exits. */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_key_ok;

static void scratch_make_key(void) { scratch_key_ok = pthread_key_create(&scratch_key, free) == 0; }

static uint32_t *scratch_get(void) {
    pthread_once(&scratch_once, scratch_make_key);
    if (!scratch_key_ok) return NULL;
    uint32_t *v = pthread_getspecific(scratch_key);
    if (!v) {
        v = malloc((size_t)SCRYPT_N * SCRYPT_WORDS * sizeof(uint32_t));
        if (v && pthread_setspecific(scratch_key, v) != 0) {
            free(v);
            v = NULL;
        }
    }
    return v;
}

int sp_scrypt_1024_1_1(const uint8_t header[80], uint8_t out[32]) {
    uint32_t *V = scratch_get();
    if (!V) return -1;

    hmac_key key;
    hmac_init(&key, header);

    /* PBKDF2 #1: salt = header, 4 output blocks of 32 bytes. The first 64 salt bytes are the same for all
     * four, so their compression is shared. */
    uint32_t mid[8];
    memcpy(mid, key.inner, 32);
    sp_sha.compress(mid, header, 1);
    uint8_t tail[64];
    memcpy(tail, header + 64, 16);
    memset(tail + 16, 0, 48);
    tail[20] = 0x80;
    tail[62] = 0x04; /* (64 + 80 + 4) * 8 = 1184 bits = 0x04a0 */
    tail[63] = 0xa0;
    uint8_t B[128];
    for (uint32_t i = 0; i < 4; i++) {
        store_be32(tail + 16, i + 1);
        uint32_t st[8];
        memcpy(st, mid, 32);
        sp_sha.compress(st, tail, 1);
        hmac_outer(&key, st, B + 32 * i);
    }

    romix(B, V);

    /* PBKDF2 #2: salt = B' (128 bytes), one 32-byte output block. */
    uint32_t st[8];
    memcpy(st, key.inner, 32);
    sp_sha.compress(st, B, 2);
    memset(tail, 0, 64);
    store_be32(tail, 1);
    tail[4] = 0x80;
    tail[62] = 0x06; /* (64 + 128 + 4) * 8 = 1568 bits = 0x0620 */
    tail[63] = 0x20;
    sp_sha.compress(st, tail, 1);
    hmac_outer(&key, st, out);
    return 0;
}
