#include "gw_pacer.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct transfer {
    struct gw_pacer_key key;
    uint32_t holds;
    uint64_t last_ms; /* last admission */
};

struct gw_pacer {
    uint32_t cap;
    uint64_t idle_ms;
    size_t n;
    struct transfer t[]; /* cap slots, the first n in use, unordered */
};

enum ferry_err gw_pacer_new(const struct gw_pacer_opts *o, struct gw_pacer **out,
                            struct ferry_diag *d)
{
    if (o->max_transfers < 1 || o->max_transfers > GW_PACER_MAX_TRANSFERS)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "pacer: max_transfers must be 1..%d, got %" PRIu32,
                          GW_PACER_MAX_TRANSFERS, o->max_transfers);
    struct gw_pacer *p = calloc(1, sizeof(*p) + (size_t)o->max_transfers * sizeof(p->t[0]));
    if (!p)
        return ferry_fail(d, FERRY_E_NOMEM, "pacer: out of memory");
    p->cap = o->max_transfers;
    p->idle_ms = o->idle_ms ? o->idle_ms : GW_PACER_DEFAULT_IDLE_MS;
    *out = p;
    return FERRY_OK;
}

void gw_pacer_free(struct gw_pacer *p)
{
    free(p);
}

static bool same_key(const struct gw_pacer_key *a, const struct gw_pacer_key *b)
{
    return a->session == b->session && memcmp(a->sha256, b->sha256, sizeof(a->sha256)) == 0;
}

static struct transfer *find(struct gw_pacer *p, const struct gw_pacer_key *k)
{
    for (size_t i = 0; i < p->n; i++)
        if (same_key(&p->t[i].key, k))
            return &p->t[i];
    return NULL;
}

/* Order does not matter, so the last slot fills the hole. */
static void drop(struct gw_pacer *p, size_t i)
{
    p->t[i] = p->t[--p->n];
}

enum ferry_err gw_pacer_admit(struct gw_pacer *p, const struct gw_pacer_key *k, bool hold,
                              uint64_t now_ms)
{
    struct transfer *t = find(p, k);
    if (!t) {
        if (p->n >= p->cap)
            return FERRY_E_BUSY;
        t = &p->t[p->n++];
        t->key = *k;
        t->holds = 0;
    }
    t->last_ms = now_ms;
    if (hold)
        t->holds++;
    return FERRY_OK;
}

void gw_pacer_release(struct gw_pacer *p, const struct gw_pacer_key *k, bool keep, uint64_t now_ms)
{
    struct transfer *t = find(p, k);
    if (!t || t->holds == 0)
        return;
    if (--t->holds > 0)
        return;
    if (keep)
        t->last_ms = now_ms;
    else
        drop(p, (size_t)(t - p->t));
}

void gw_pacer_end_session(struct gw_pacer *p, uint64_t session)
{
    for (size_t i = p->n; i-- > 0;)
        if (p->t[i].key.session == session)
            drop(p, i);
}

static bool idle_since(const struct gw_pacer *p, const struct transfer *t, uint64_t now_ms)
{
    return t->holds == 0 && now_ms >= t->last_ms && now_ms - t->last_ms >= p->idle_ms;
}

size_t gw_pacer_expire(struct gw_pacer *p, uint64_t now_ms)
{
    size_t ended = 0;
    for (size_t i = p->n; i-- > 0;) {
        if (idle_since(p, &p->t[i], now_ms)) {
            drop(p, i);
            ended++;
        }
    }
    return ended;
}

uint64_t gw_pacer_next_expiry(const struct gw_pacer *p)
{
    uint64_t next = GW_PACER_NO_EXPIRY;
    for (size_t i = 0; i < p->n; i++) {
        const struct transfer *t = &p->t[i];
        if (t->holds > 0)
            continue;
        uint64_t at = t->last_ms > UINT64_MAX - p->idle_ms ? UINT64_MAX : t->last_ms + p->idle_ms;
        if (at < next)
            next = at;
    }
    return next;
}

size_t gw_pacer_active(const struct gw_pacer *p)
{
    return p->n;
}

uint32_t gw_pacer_jitter(uint32_t base_s, uint32_t rnd)
{
    uint32_t spread = base_s / 4;
    /* base - spread .. base + spread, both ends included. */
    uint64_t v = (uint64_t)base_s - spread + rnd % ((uint64_t)spread * 2 + 1);
    if (v < 1)
        v = 1;
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}
