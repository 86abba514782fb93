#include "gw_pacer.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* An admitted transfer (last_ms: its last request) or a finished one in its
 * grace (last_ms: when it finished). */
struct entry {
    struct gw_pacer_key key;
    uint64_t last_ms;
};

/* Both tables hold `cap` entries, the first n (nf) in use, unordered. */
struct gw_pacer {
    uint32_t cap;
    uint64_t idle_ms, grace_ms;
    size_t n, nf;
    struct entry *active;
    struct entry *finished;
    struct entry slots[]; /* 2 * cap: active, then finished */
};

enum ferry_err gw_pacer_new(const struct gw_pacer_opts *o, struct gw_pacer **out,
                            struct ferry_diag *d)
{
    if (o->max_transfers < 1 || o->max_transfers > GW_PACER_MAX_TRANSFERS)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "pacer: max_transfers must be 1..%d, got %" PRIu32,
                          GW_PACER_MAX_TRANSFERS, o->max_transfers);
    struct gw_pacer *p = calloc(1, sizeof(*p) + 2 * (size_t)o->max_transfers * sizeof(p->slots[0]));
    if (!p)
        return ferry_fail(d, FERRY_E_NOMEM, "pacer: out of memory");
    p->cap = o->max_transfers;
    p->idle_ms = o->idle_ms ? o->idle_ms : GW_PACER_DEFAULT_IDLE_MS;
    p->grace_ms = o->grace_ms ? o->grace_ms : GW_PACER_DEFAULT_GRACE_MS;
    p->active = p->slots;
    p->finished = p->slots + p->cap;
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

static struct entry *find(struct entry *tab, size_t n, const struct gw_pacer_key *k)
{
    for (size_t i = 0; i < n; i++)
        if (same_key(&tab[i].key, k))
            return &tab[i];
    return NULL;
}

/* Order does not matter, so the last entry fills the hole. */
static void drop(struct entry *tab, size_t *n, size_t i)
{
    tab[i] = tab[--*n];
}

/* Whether `since` is `span` or more before now (a clock that went back
 * counts as no time passed). */
static bool elapsed(uint64_t since, uint64_t span, uint64_t now_ms)
{
    return now_ms >= since && now_ms - since >= span;
}

static bool in_grace(const struct gw_pacer *p, const struct gw_pacer_key *k, uint64_t now_ms)
{
    const struct entry *f = find(p->finished, p->nf, k);
    return f && !elapsed(f->last_ms, p->grace_ms, now_ms);
}

enum ferry_err gw_pacer_admit(struct gw_pacer *p, const struct gw_pacer_key *k, uint64_t now_ms,
                              enum gw_pacer_admission *how)
{
    enum gw_pacer_admission h = GW_PACER_CONTINUED;
    struct entry *t = find(p->active, p->n, k);
    if (!t && in_grace(p, k, now_ms)) {
        h = GW_PACER_GRACE;
    } else if (!t) {
        if (p->n >= p->cap)
            return FERRY_E_BUSY;
        t = &p->active[p->n++];
        t->key = *k;
        h = GW_PACER_STARTED;
    }
    if (t)
        t->last_ms = now_ms;
    if (how)
        *how = h;
    return FERRY_OK;
}

/* Remembers `k` as finished at now_ms, in place of its own older entry, a
 * free one, or the oldest one. */
static void remember_finished(struct gw_pacer *p, const struct gw_pacer_key *k, uint64_t now_ms)
{
    struct entry *f = find(p->finished, p->nf, k);
    if (!f && p->nf < p->cap)
        f = &p->finished[p->nf++];
    if (!f) {
        f = &p->finished[0];
        for (size_t i = 1; i < p->nf; i++)
            if (p->finished[i].last_ms < f->last_ms)
                f = &p->finished[i];
    }
    f->key = *k;
    f->last_ms = now_ms;
}

void gw_pacer_finish(struct gw_pacer *p, const struct gw_pacer_key *k, uint64_t now_ms)
{
    struct entry *t = find(p->active, p->n, k);
    if (!t)
        return;
    drop(p->active, &p->n, (size_t)(t - p->active));
    remember_finished(p, k, now_ms);
}

void gw_pacer_end_session(struct gw_pacer *p, uint64_t session)
{
    for (size_t i = p->n; i-- > 0;)
        if (p->active[i].key.session == session)
            drop(p->active, &p->n, i);
    for (size_t i = p->nf; i-- > 0;)
        if (p->finished[i].key.session == session)
            drop(p->finished, &p->nf, i);
}

size_t gw_pacer_expire(struct gw_pacer *p, uint64_t now_ms)
{
    size_t ended = 0;
    for (size_t i = p->n; i-- > 0;) {
        if (elapsed(p->active[i].last_ms, p->idle_ms, now_ms)) {
            drop(p->active, &p->n, i);
            ended++;
        }
    }
    for (size_t i = p->nf; i-- > 0;)
        if (elapsed(p->finished[i].last_ms, p->grace_ms, now_ms))
            drop(p->finished, &p->nf, i);
    return ended;
}

uint64_t gw_pacer_next_expiry(const struct gw_pacer *p)
{
    uint64_t next = GW_PACER_NO_EXPIRY;
    for (size_t i = 0; i < p->n; i++) {
        uint64_t last = p->active[i].last_ms;
        uint64_t at = last > UINT64_MAX - p->idle_ms ? UINT64_MAX : last + p->idle_ms;
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
