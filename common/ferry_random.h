/* Randomness for timing: seeds, jitter, back-off spread, unpredictable
 * temporary names. Never for keys or signatures (those take mbedTLS's
 * CTR-DRBG, cloud_keys.c).
 *
 * ferry_random_*() ask the kernel (getrandom, never blocking); should it
 * have nothing to give (early boot, a seccomp filter), the clock, the pid
 * and a counter are mixed instead: values still differ between processes
 * and calls, which is all jitter needs, but resist nobody.
 *
 * struct ferry_prng is xorshift64*: a pure module (edge_fsm.h,
 * edge_window.h) is handed a seed and draws from its own generator, so a
 * test replays it exactly. Plain value; one owner; not thread-safe. */
#ifndef FERRY_RANDOM_H
#define FERRY_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/* len bytes from the kernel, or the fallback above. Never fails. */
void ferry_random_fill(void *buf, size_t len);
uint64_t ferry_random_u64(void);
uint32_t ferry_random_u32(void);

struct ferry_prng {
    uint64_t s; /* never 0 */
};

/* Any seed; 0 is taken as a fixed non-zero one. */
void ferry_prng_seed(struct ferry_prng *p, uint64_t seed);
uint64_t ferry_prng_next(struct ferry_prng *p);

#endif
