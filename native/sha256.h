/* SHA-256 for stratum-pool: one portable C compression function plus CPU-specific ones (x86 SHA-NI,
 * ARMv8 SHA2) chosen at run time, and the double-SHA-256 shapes a pool hashes all day long. */
#ifndef STRATUM_POOL_SHA256_H
#define STRATUM_POOL_SHA256_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Backend ids, in order of preference (the best available one is picked at start-up). */
enum {
    SP_SHA_PORTABLE = 0,
    SP_SHA_SHANI = 1,
    SP_SHA_ARMV8 = 2,
};

/* Compress `nblocks` consecutive 64-byte blocks into `state`. */
typedef void (*sp_compress_fn)(uint32_t state[8], const uint8_t *blocks, size_t nblocks);
/* Compress one block whose message schedule plus round constants (W[t] + K[t], t = 0..63) is already known:
 * used for constant padding blocks so the schedule is computed once, not once per hash. */
typedef void (*sp_compress_wk_fn)(uint32_t state[8], const uint32_t wk[64]);

/* Whole sha256d of fixed-size inputs: a backend may keep the state in registers across all compressions. */
typedef void (*sp_hash_fixed_fn)(const uint8_t *in, uint8_t out[32]);

typedef struct {
    sp_compress_fn compress;
    sp_compress_wk_fn compress_wk;
    sp_hash_fixed_fn sha256d_64;
    sp_hash_fixed_fn sha256d_80;
} sp_sha_backend;

extern const uint32_t sp_sha256_K[64];
extern const uint32_t sp_sha256_IV[8];
/* W + K of the constant second block of a 64-byte message (0x80, zeros, bit length 512); filled by
 * sp_sha256_autodetect(). */
extern uint32_t sp_sha256_pad64_wk[64];

/* The backend in use; set once by sp_sha256_autodetect(), changed only by tests and benchmarks. */
extern sp_sha_backend sp_sha;

/* Whether backend `id` can run on this CPU. */
int sp_sha256_available(int id);
/* Switch to backend `id`; returns 0 on success, -1 if it is not available here. */
int sp_sha256_select(int id);
/* The id of the backend in use. */
int sp_sha256_current(void);
/* Pick the fastest available backend; returns its id. */
int sp_sha256_autodetect(void);

/* Backend compression functions (defined only where they can be compiled). */
void sp_compress_portable(uint32_t state[8], const uint8_t *blocks, size_t nblocks);
void sp_compress_wk_portable(uint32_t state[8], const uint32_t wk[64]);
#if defined(__x86_64__) || defined(__i386__)
void sp_compress_shani(uint32_t state[8], const uint8_t *blocks, size_t nblocks);
void sp_compress_wk_shani(uint32_t state[8], const uint32_t wk[64]);
void sp_sha256d_64_shani(const uint8_t *in, uint8_t out[32]);
void sp_sha256d_80_shani(const uint8_t *in, uint8_t out[32]);
int sp_cpu_has_shani(void);
#endif
#if defined(__aarch64__)
void sp_compress_armv8(uint32_t state[8], const uint8_t *blocks, size_t nblocks);
void sp_compress_wk_armv8(uint32_t state[8], const uint32_t wk[64]);
int sp_cpu_has_armv8_sha2(void);
#endif

/* Incremental SHA-256, for inputs of arbitrary length made of several pieces. */
typedef struct {
    uint32_t state[8];
    uint64_t total;      /* bytes hashed so far */
    uint8_t buf[64];
    size_t buflen;
} sp_sha256_ctx;

void sp_sha256_init(sp_sha256_ctx *ctx);
void sp_sha256_update(sp_sha256_ctx *ctx, const uint8_t *data, size_t len);
void sp_sha256_final(sp_sha256_ctx *ctx, uint8_t out[32]);
/* sha256(sha256(everything updated so far)): the double hash without a bytes round trip in between. */
void sp_sha256d_final(sp_sha256_ctx *ctx, uint8_t out[32]);

void sp_sha256(const uint8_t *data, size_t len, uint8_t out[32]);
/* sha256(sha256(data)) for any length. */
void sp_sha256d(const uint8_t *data, size_t len, uint8_t out[32]);
/* sha256d of exactly 64 bytes (a merkle pair): two compressions + the precomputed padding block. */
void sp_sha256d_64(const uint8_t in[64], uint8_t out[32]);
/* sha256d of exactly 80 bytes (a block header): three compressions, no buffering. */
void sp_sha256d_80(const uint8_t in[80], uint8_t out[32]);
/* Second half of every sha256d: hash the 32-byte digest held as state words (one compression). */
void sp_sha256_of_state(const uint32_t inner[8], uint8_t out[32]);

#ifdef __cplusplus
}
#endif

#endif
