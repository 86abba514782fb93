#include "cloud_http_share.h"

#include <stdio.h>
#include <string.h>

void cloud_http_share_init(struct cloud_http_share *s, unsigned permille, uint64_t burst_us)
{
    memset(s, 0, sizeof(*s));
    s->permille = permille < 1 ? 1 : permille > 1000 ? 1000 : permille;
    s->burst_us = burst_us;
}

/* The client's debt drained up to now_ms (a clock that went back drains
 * nothing). */
static uint64_t debt_now(const struct cloud_http_share *s, const struct cloud_http_share_client *c,
                         uint64_t now_ms)
{
    uint64_t passed = now_ms > c->at_ms ? now_ms - c->at_ms : 0;
    /* ms * permille = us drained; capped before it can overflow */
    uint64_t drained = passed > UINT64_MAX / 1000 ? UINT64_MAX : passed * s->permille;
    return c->debt_us > drained ? c->debt_us - drained : 0;
}

static struct cloud_http_share_client *find(struct cloud_http_share *s, const char *who)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strncmp(s->c[i].who, who, CLOUD_HTTP_SHARE_WHO_MAX) == 0)
            return &s->c[i];
    }
    return NULL;
}

/* who's entry, made when missing (in a free place, or the one with the
 * smallest debt now). */
static struct cloud_http_share_client *entry(struct cloud_http_share *s, const char *who,
                                             uint64_t now_ms)
{
    struct cloud_http_share_client *c = find(s, who);
    if (c)
        return c;
    if (s->n < CLOUD_HTTP_SHARE_CLIENTS) {
        c = &s->c[s->n++];
    } else {
        c = &s->c[0];
        uint64_t least = debt_now(s, c, now_ms);
        for (size_t i = 1; i < s->n && least > 0; i++) {
            uint64_t d = debt_now(s, &s->c[i], now_ms);
            if (d < least) {
                least = d;
                c = &s->c[i];
            }
        }
    }
    snprintf(c->who, sizeof(c->who), "%s", who);
    c->debt_us = 0;
    c->at_ms = now_ms;
    return c;
}

uint64_t cloud_http_share_wait(struct cloud_http_share *s, const char *who, uint64_t now_ms)
{
    const struct cloud_http_share_client *c = find(s, who);
    uint64_t debt = c ? debt_now(s, c, now_ms) : 0;
    if (debt <= s->burst_us)
        return 0;
    /* (debt - burst) us drain in that many ms / permille, rounded up */
    uint64_t over = debt - s->burst_us;
    return over / s->permille + (over % s->permille != 0);
}

void cloud_http_share_charge(struct cloud_http_share *s, const char *who, uint64_t now_ms,
                             uint64_t cost_us)
{
    struct cloud_http_share_client *c = entry(s, who, now_ms);
    uint64_t debt = debt_now(s, c, now_ms);
    c->debt_us = debt > UINT64_MAX - cost_us ? UINT64_MAX : debt + cost_us;
    if (now_ms > c->at_ms)
        c->at_ms = now_ms;
}
