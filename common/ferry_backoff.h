/* Retry timing shared by every component: exponential backoff with jitter,
 * and a symmetric jitter for periodic timers. Both are pure: the caller keeps
 * the state and supplies the random value, so tests drive them directly, and
 * a fleet started together does not retry in lockstep. */
#ifndef FERRY_BACKOFF_H
#define FERRY_BACKOFF_H

#include <stdint.h>

/* Exponential from min_ms to max_ms with "full jitter": each delay is a
 * uniform draw in [base/2, base], base = min_ms << attempt capped at max_ms.
 * A zero min_ms counts as 1; a max_ms below min_ms means always min_ms. */
struct ferry_backoff {
    uint32_t min_ms, max_ms;
    uint32_t attempt; /* failures since the last success */
};

/* The next delay in ms; counts one more attempt. random: any 32-bit value
 * (0 gives base/2, UINT32_MAX gives base). */
uint32_t ferry_backoff_next(struct ferry_backoff *b, uint32_t random);

/* After a success: the next delay is min_ms-sized again. */
void ferry_backoff_reset(struct ferry_backoff *b);

/* base +- pct % of base, spread evenly by random (any 64-bit value). base
 * must be below 2^62 (any timer in ms is); pct above 100 counts as 100. */
uint64_t ferry_jitter(uint64_t base, unsigned pct, uint64_t random);

#endif
