/* Retry timing (ferry_backoff.h): no clock, no global random state. */
#include "ferry_backoff.h"

/* Above this many doublings any 32-bit minimum has reached any 32-bit cap,
 * so the shift below never needs more than 64 bits. */
#define BACKOFF_MAX_SHIFT 32u

uint32_t ferry_backoff_next(struct ferry_backoff *b, uint32_t random)
{
    /* A zero minimum would never grow; one millisecond is the least that
     * does. A cap below the minimum means "always the minimum". */
    uint64_t lo_ms = b->min_ms ? b->min_ms : 1;
    uint64_t hi_ms = b->max_ms > lo_ms ? b->max_ms : lo_ms;

    uint32_t shift = b->attempt < BACKOFF_MAX_SHIFT ? b->attempt : BACKOFF_MAX_SHIFT;
    uint64_t base = lo_ms << shift;
    if (base > hi_ms)
        base = hi_ms;

    /* Uniform in [base/2, base]: scale random by the span instead of taking
     * a modulo, so random == 0 gives base/2 and UINT32_MAX gives base. */
    uint64_t floor_ms = base / 2;
    uint64_t span = base - floor_ms + 1;
    uint64_t delay = floor_ms + (((uint64_t)random * span) >> 32);

    if (b->attempt < UINT32_MAX)
        b->attempt++;
    return (uint32_t)delay;
}

void ferry_backoff_reset(struct ferry_backoff *b)
{
    b->attempt = 0;
}

uint64_t ferry_jitter(uint64_t base, unsigned pct, uint64_t random)
{
    uint64_t p = pct > 100 ? 100 : pct;
    /* base * p / 100 without overflowing the product. */
    uint64_t spread = base / 100 * p + base % 100 * p / 100;
    return base - spread + random % (2 * spread + 1);
}
