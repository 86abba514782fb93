#include "ferry_ratecap.h"

#include <stdlib.h>

struct ferry_ratecap {
    uint32_t limit;
    uint32_t n;    /* starts held, <= limit */
    uint32_t head; /* index of the oldest */
    uint64_t at[]; /* ring of start times */
};

enum ferry_err ferry_ratecap_new(uint32_t per_minute, struct ferry_ratecap **out,
                                 struct ferry_diag *d)
{
    if (per_minute > FERRY_RATECAP_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "rate cap: %u per minute, the limit is %d",
                          per_minute, FERRY_RATECAP_MAX);
    struct ferry_ratecap *c = calloc(1, sizeof(*c) + (size_t)per_minute * sizeof(uint64_t));
    if (!c)
        return ferry_fail(d, FERRY_E_NOMEM, "rate cap: out of memory");
    c->limit = per_minute;
    *out = c;
    return FERRY_OK;
}

void ferry_ratecap_free(struct ferry_ratecap *c)
{
    free(c);
}

/* Drops starts that left the window. */
static void expire(struct ferry_ratecap *c, uint64_t now)
{
    while (c->n > 0 && c->at[c->head] + FERRY_RATECAP_PERIOD <= now) {
        c->head = (c->head + 1) % c->limit;
        c->n--;
    }
}

bool ferry_ratecap_take(struct ferry_ratecap *c, uint64_t now)
{
    if (c->limit == 0)
        return true;
    expire(c, now);
    if (c->n == c->limit)
        return false;
    c->at[(c->head + c->n) % c->limit] = now;
    c->n++;
    return true;
}

uint64_t ferry_ratecap_next(const struct ferry_ratecap *c, uint64_t now)
{
    if (c->limit == 0 || c->n < c->limit)
        return now;
    uint64_t free_at = c->at[c->head] + FERRY_RATECAP_PERIOD;
    return free_at > now ? free_at : now;
}

uint32_t ferry_ratecap_limit(const struct ferry_ratecap *c)
{
    return c->limit;
}
