/* Hex digits to bytes for stratum-pool's new-block path: a template's transactions and txids. */
#ifndef STRATUM_POOL_HEX_H
#define STRATUM_POOL_HEX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* `nbytes` bytes into `out` from the `2 * nbytes` hex digits at `in` (either case). Returns 0, or -1 when any
 * of them is not a hex digit (`out` then holds garbage). Branch-free, so the compiler vectorizes it. */
int sp_unhex(const uint8_t *in, size_t nbytes, uint8_t *out);

#ifdef __cplusplus
}
#endif

#endif
