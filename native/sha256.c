/* Portable SHA-256, the run-time backend switch, and the sha256d shapes built on the active backend. */
#include "sha256.h"

#include <string.h>

const uint32_t sp_sha256_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

const uint32_t sp_sha256_IV[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

static inline uint32_t load_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline void store_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void store_be64(uint8_t *p, uint64_t v) {
    store_be32(p, (uint32_t)(v >> 32));
    store_be32(p + 4, (uint32_t)v);
}

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define CH(x, y, z) ((z) ^ ((x) & ((y) ^ (z))))
#define MAJ(x, y, z) (((x) & (y)) | ((z) & ((x) | (y))))
#define BSIG0(x) (ROTR(x, 2) ^ ROTR(x, 13) ^ ROTR(x, 22))
#define BSIG1(x) (ROTR(x, 6) ^ ROTR(x, 11) ^ ROTR(x, 25))
#define SSIG0(x) (ROTR(x, 7) ^ ROTR(x, 18) ^ ((x) >> 3))
#define SSIG1(x) (ROTR(x, 17) ^ ROTR(x, 19) ^ ((x) >> 10))

/* One round; the caller rotates the variable names instead of moving eight values each round. */
#define ROUND(a, b, c, d, e, f, g, h, wk)                      \
    do {                                                       \
        uint32_t t1_ = (h) + BSIG1(e) + CH(e, f, g) + (wk);    \
        uint32_t t2_ = BSIG0(a) + MAJ(a, b, c);                \
        (d) += t1_;                                            \
        (h) = t1_ + t2_;                                       \
    } while (0)

void sp_compress_wk_portable(uint32_t state[8], const uint32_t wk[64]) {
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int i = 0; i < 64; i += 8) {
        ROUND(a, b, c, d, e, f, g, h, wk[i + 0]);
        ROUND(h, a, b, c, d, e, f, g, wk[i + 1]);
        ROUND(g, h, a, b, c, d, e, f, wk[i + 2]);
        ROUND(f, g, h, a, b, c, d, e, wk[i + 3]);
        ROUND(e, f, g, h, a, b, c, d, wk[i + 4]);
        ROUND(d, e, f, g, h, a, b, c, wk[i + 5]);
        ROUND(c, d, e, f, g, h, a, b, wk[i + 6]);
        ROUND(b, c, d, e, f, g, h, a, wk[i + 7]);
    }
    state[0] += a; state[1] += b; state[2] += c; state[3] += d;
    state[4] += e; state[5] += f; state[6] += g; state[7] += h;
}

/* Message schedule of one block, with the round constants already added (what the rounds consume). */
static void schedule_wk(const uint8_t *block, uint32_t wk[64]) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++) w[i] = load_be32(block + 4 * i);
    for (int i = 16; i < 64; i++) w[i] = SSIG1(w[i - 2]) + w[i - 7] + SSIG0(w[i - 15]) + w[i - 16];
    for (int i = 0; i < 64; i++) wk[i] = w[i] + sp_sha256_K[i];
}

void sp_compress_portable(uint32_t state[8], const uint8_t *blocks, size_t nblocks) {
    uint32_t wk[64];
    for (size_t n = 0; n < nblocks; n++) {
        schedule_wk(blocks + 64 * n, wk);
        sp_compress_wk_portable(state, wk);
    }
}

/* ---- backend selection ---- */

static void sha256d_64_generic(const uint8_t *in, uint8_t out[32]);
static void sha256d_80_generic(const uint8_t *in, uint8_t out[32]);

sp_sha_backend sp_sha = {sp_compress_portable, sp_compress_wk_portable, sha256d_64_generic, sha256d_80_generic};
static int current_backend = SP_SHA_PORTABLE;

int sp_sha256_available(int id) {
    switch (id) {
    case SP_SHA_PORTABLE:
        return 1;
#if defined(__x86_64__) || defined(__i386__)
    case SP_SHA_SHANI:
        return sp_cpu_has_shani();
#endif
#if defined(__aarch64__)
    case SP_SHA_ARMV8:
        return sp_cpu_has_armv8_sha2();
#endif
    default:
        return 0;
    }
}

int sp_sha256_select(int id) {
    if (!sp_sha256_available(id)) return -1;
    switch (id) {
#if defined(__x86_64__) || defined(__i386__)
    case SP_SHA_SHANI:
        sp_sha.compress = sp_compress_shani;
        sp_sha.compress_wk = sp_compress_wk_shani;
        sp_sha.sha256d_64 = sp_sha256d_64_shani;
        sp_sha.sha256d_80 = sp_sha256d_80_shani;
        break;
#endif
#if defined(__aarch64__)
    case SP_SHA_ARMV8:
        sp_sha.compress = sp_compress_armv8;
        sp_sha.compress_wk = sp_compress_wk_armv8;
        sp_sha.sha256d_64 = sha256d_64_generic;
        sp_sha.sha256d_80 = sha256d_80_generic;
        break;
#endif
    default:
        sp_sha.compress = sp_compress_portable;
        sp_sha.compress_wk = sp_compress_wk_portable;
        sp_sha.sha256d_64 = sha256d_64_generic;
        sp_sha.sha256d_80 = sha256d_80_generic;
        break;
    }
    current_backend = id;
    return 0;
}

int sp_sha256_current(void) { return current_backend; }

uint32_t sp_sha256_pad64_wk[64];

int sp_sha256_autodetect(void) {
    uint8_t pad[64] = {0};
    pad[0] = 0x80;
    store_be64(pad + 56, 512);
    schedule_wk(pad, sp_sha256_pad64_wk);

    if (sp_sha256_select(SP_SHA_SHANI) == 0) return SP_SHA_SHANI;
    if (sp_sha256_select(SP_SHA_ARMV8) == 0) return SP_SHA_ARMV8;
    sp_sha256_select(SP_SHA_PORTABLE);
    return SP_SHA_PORTABLE;
}

/* ---- incremental hashing ---- */

void sp_sha256_init(sp_sha256_ctx *ctx) {
    memcpy(ctx->state, sp_sha256_IV, sizeof ctx->state);
    ctx->total = 0;
    ctx->buflen = 0;
}

void sp_sha256_update(sp_sha256_ctx *ctx, const uint8_t *data, size_t len) {
    ctx->total += len;
    if (ctx->buflen) {
        size_t take = 64 - ctx->buflen;
        if (take > len) take = len;
        memcpy(ctx->buf + ctx->buflen, data, take);
        ctx->buflen += take;
        data += take;
        len -= take;
        if (ctx->buflen < 64) return;
        sp_sha.compress(ctx->state, ctx->buf, 1);
        ctx->buflen = 0;
    }
    if (len >= 64) {
        /* Whole blocks straight from the caller's memory: one backend call for all of them. */
        size_t n = len / 64;
        sp_sha.compress(ctx->state, data, n);
        data += 64 * n;
        len -= 64 * n;
    }
    if (len) {
        memcpy(ctx->buf, data, len);
        ctx->buflen = len;
    }
}

/* Pad and compress the tail; leaves the digest as state words. */
static void finish_state(sp_sha256_ctx *ctx) {
    uint8_t *buf = ctx->buf;
    size_t n = ctx->buflen;
    buf[n++] = 0x80;
    if (n > 56) {
        memset(buf + n, 0, 64 - n);
        sp_sha.compress(ctx->state, buf, 1);
        n = 0;
    }
    memset(buf + n, 0, 56 - n);
    store_be64(buf + 56, ctx->total * 8);
    sp_sha.compress(ctx->state, buf, 1);
}

static inline void state_to_bytes(const uint32_t state[8], uint8_t out[32]) {
    for (int i = 0; i < 8; i++) store_be32(out + 4 * i, state[i]);
}

void sp_sha256_final(sp_sha256_ctx *ctx, uint8_t out[32]) {
    finish_state(ctx);
    state_to_bytes(ctx->state, out);
}

void sp_sha256(const uint8_t *data, size_t len, uint8_t out[32]) {
    sp_sha256_ctx ctx;
    sp_sha256_init(&ctx);
    sp_sha256_update(&ctx, data, len);
    sp_sha256_final(&ctx, out);
}

void sp_sha256_of_state(const uint32_t inner[8], uint8_t out[32]) {
    /* The 32-byte digest plus its padding fit one block: 0x80, zeros, bit length 256. */
    uint8_t block[64];
    state_to_bytes(inner, block);
    memset(block + 32, 0, 32);
    block[32] = 0x80;
    block[62] = 0x01; /* 256 = 0x0100, big-endian in the last 8 bytes */
    uint32_t st[8];
    memcpy(st, sp_sha256_IV, sizeof st);
    sp_sha.compress(st, block, 1);
    state_to_bytes(st, out);
}

void sp_sha256d_final(sp_sha256_ctx *ctx, uint8_t out[32]) {
    finish_state(ctx);
    sp_sha256_of_state(ctx->state, out);
}

void sp_sha256d(const uint8_t *data, size_t len, uint8_t out[32]) {
    sp_sha256_ctx ctx;
    sp_sha256_init(&ctx);
    sp_sha256_update(&ctx, data, len);
    sp_sha256d_final(&ctx, out);
}

/* The fixed-size shapes in terms of the backend's compression functions (portable, ARMv8). */
static void sha256d_64_generic(const uint8_t *in, uint8_t out[32]) {
    uint32_t st[8];
    memcpy(st, sp_sha256_IV, sizeof st);
    sp_sha.compress(st, in, 1);
    sp_sha.compress_wk(st, sp_sha256_pad64_wk);
    sp_sha256_of_state(st, out);
}

static void sha256d_80_generic(const uint8_t *in, uint8_t out[32]) {
    uint8_t blocks[128];
    memcpy(blocks, in, 80);
    memset(blocks + 80, 0, 48);
    blocks[80] = 0x80;
    blocks[126] = 0x02; /* 640 bits = 0x0280 */
    blocks[127] = 0x80;
    uint32_t st[8];
    memcpy(st, sp_sha256_IV, sizeof st);
    sp_sha.compress(st, blocks, 2);
    sp_sha256_of_state(st, out);
}

void sp_sha256d_64(const uint8_t in[64], uint8_t out[32]) { sp_sha.sha256d_64(in, out); }

void sp_sha256d_80(const uint8_t in[80], uint8_t out[32]) { sp_sha.sha256d_80(in, out); }
