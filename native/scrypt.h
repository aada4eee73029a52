/* Litecoin's proof of work: scrypt(N=1024, r=1, p=1, dkLen=32) with the 80-byte header as password and salt. */
#ifndef STRATUM_POOL_SCRYPT_H
#define STRATUM_POOL_SCRYPT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Returns 0, or -1 if the per-thread 128 KiB scratchpad could not be allocated. Needs no Python (call it
 * without the GIL). */
int sp_scrypt_1024_1_1(const uint8_t header[80], uint8_t out[32]);

#ifdef __cplusplus
}
#endif

#endif
