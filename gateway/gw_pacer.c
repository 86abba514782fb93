#include "gw_pacer.h"

#include "gw_idmap.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define NONE GW_IDMAP_NONE

enum rec_state { REC_FREE, REC_HOLDER, REC_WAITER, REC_GRACE };

/* One requester the pacer remembers. Each state keeps its records in lists
 * ordered by time, so the next thing due is always at a head:
 *   holder  list A: holders by last request (idle), list B: by turn start;
 *   waiter  list A: waiters by last request (silence), list B: the queue;
 *   grace   list A: graces by the time they were done. */
struct rec {
    uint8_t state;
    uint8_t sha[FERRY_SHA256_LEN];
    uint64_t size;
    uint64_t served;   /* holder: bytes served; grace: bytes served since done */
    uint64_t since_ms; /* holder: turn start; waiter: queued; grace: done */
    uint64_t last_ms;  /* holder, waiter: last request */
    uint32_t grace_left;
    uint32_t a_prev, a_next, b_prev, b_next;
};

struct list {
    uint32_t head, tail;
    size_t n;
};

struct gw_pacer {
    uint32_t cap;
    uint64_t idle_ms, grace_ms, turn_ms, wait_ms;
    uint32_t grace_requests;
    struct gw_idmap *ids; /* identity -> index in recs */
    struct rec *recs;
    struct list holders_idle, holders_turn, waiters_lru, queue, graces;
};

/* ---- lists ------------------------------------------------------------------ */

static void list_init(struct list *l)
{
    l->head = l->tail = NONE;
    l->n = 0;
}

/* Lists A and B differ only in the links they use. */
static uint32_t *prev_of(struct rec *r, bool b)
{
    return b ? &r->b_prev : &r->a_prev;
}

static uint32_t *next_of(struct rec *r, bool b)
{
    return b ? &r->b_next : &r->a_next;
}

static void list_append(struct gw_pacer *p, struct list *l, bool b, uint32_t i)
{
    struct rec *r = &p->recs[i];
    *prev_of(r, b) = l->tail;
    *next_of(r, b) = NONE;
    if (l->tail != NONE)
        *next_of(&p->recs[l->tail], b) = i;
    else
        l->head = i;
    l->tail = i;
    l->n++;
}

static void list_remove(struct gw_pacer *p, struct list *l, bool b, uint32_t i)
{
    struct rec *r = &p->recs[i];
    uint32_t prev = *prev_of(r, b), next = *next_of(r, b);
    if (prev != NONE)
        *next_of(&p->recs[prev], b) = next;
    else
        l->head = next;
    if (next != NONE)
        *prev_of(&p->recs[next], b) = prev;
    else
        l->tail = prev;
    l->n--;
}

/* To the tail: the most recent. */
static void list_touch(struct gw_pacer *p, struct list *l, bool b, uint32_t i)
{
    list_remove(p, l, b, i);
    list_append(p, l, b, i);
}

/* ---- the table -------------------------------------------------------------- */

/* Takes the record out of its state's lists; it keeps its place in the
 * table. */
static void detach(struct gw_pacer *p, uint32_t i)
{
    struct rec *r = &p->recs[i];
    switch (r->state) {
    case REC_HOLDER:
        list_remove(p, &p->holders_idle, false, i);
        list_remove(p, &p->holders_turn, true, i);
        break;
    case REC_WAITER:
        list_remove(p, &p->waiters_lru, false, i);
        list_remove(p, &p->queue, true, i);
        break;
    case REC_GRACE:
        list_remove(p, &p->graces, false, i);
        break;
    default:
        break;
    }
    r->state = REC_FREE;
}

static void release(struct gw_pacer *p, uint32_t i)
{
    detach(p, i);
    gw_idmap_remove(p->ids, i);
}

/* A record for a new identity: a free one, else the oldest grace's, else the
 * waiter asked least recently; NONE when every record holds a slot. */
static uint32_t alloc(struct gw_pacer *p, const char *id)
{
    uint32_t i = gw_idmap_add(p->ids, id);
    if (i == NONE) {
        uint32_t victim = p->graces.head != NONE ? p->graces.head : p->waiters_lru.head;
        if (victim == NONE)
            return NONE;
        release(p, victim);
        i = gw_idmap_add(p->ids, id);
    }
    if (i != NONE)
        memset(&p->recs[i], 0, sizeof(p->recs[i]));
    return i;
}

/* ---- set-up ----------------------------------------------------------------- */

enum ferry_err gw_pacer_new(const struct gw_pacer_opts *o, struct gw_pacer **out,
                            struct ferry_diag *d)
{
    if (o->max_transfers < 1 || o->max_transfers > GW_PACER_MAX_TRANSFERS)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "pacer: max_transfers must be 1..%d, got %" PRIu32,
                          GW_PACER_MAX_TRANSFERS, o->max_transfers);
    uint32_t nrecs = o->max_requesters ? o->max_requesters : GW_PACER_DEFAULT_REQUESTERS;
    if (nrecs < 2 * o->max_transfers || nrecs > GW_PACER_MAX_REQUESTERS)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "pacer: max_requesters must be %" PRIu32 "..%u, got %" PRIu32,
                          2 * o->max_transfers, GW_PACER_MAX_REQUESTERS, nrecs);
    struct gw_pacer *p = calloc(1, sizeof(*p));
    if (!p)
        return ferry_fail(d, FERRY_E_NOMEM, "pacer: out of memory");
    p->recs = calloc(nrecs, sizeof(p->recs[0]));
    if (!p->recs || gw_idmap_new(nrecs, &p->ids) != FERRY_OK) {
        gw_pacer_free(p);
        return ferry_fail(d, FERRY_E_NOMEM, "pacer: out of memory");
    }
    p->cap = o->max_transfers;
    p->idle_ms = o->idle_ms ? o->idle_ms : GW_PACER_DEFAULT_IDLE_MS;
    p->grace_ms = o->grace_ms ? o->grace_ms : GW_PACER_DEFAULT_GRACE_MS;
    p->grace_requests = o->grace_requests ? o->grace_requests : GW_PACER_DEFAULT_GRACE_REQUESTS;
    p->turn_ms = o->turn_ms ? o->turn_ms : GW_PACER_DEFAULT_TURN_IDLES * p->idle_ms;
    p->wait_ms = o->wait_ms ? o->wait_ms : GW_PACER_DEFAULT_WAIT_MS;
    list_init(&p->holders_idle);
    list_init(&p->holders_turn);
    list_init(&p->waiters_lru);
    list_init(&p->queue);
    list_init(&p->graces);
    *out = p;
    return FERRY_OK;
}

void gw_pacer_free(struct gw_pacer *p)
{
    if (!p)
        return;
    free(p->recs);
    gw_idmap_free(p->ids);
    free(p);
}

/* ---- decisions -------------------------------------------------------------- */

/* Whether `since` is `span` or more before now (a clock that went back
 * counts as no time passed). */
static bool elapsed(uint64_t since, uint64_t span, uint64_t now_ms)
{
    return now_ms >= since && now_ms - since >= span;
}

static uint64_t at(uint64_t since, uint64_t span)
{
    return since > UINT64_MAX - span ? UINT64_MAX : since + span;
}

static size_t free_slots(const struct gw_pacer *p)
{
    return p->cap - p->holders_idle.n;
}

/* How many more slots the queue needs than are free. */
static size_t shortfall(const struct gw_pacer *p)
{
    size_t f = free_slots(p);
    return p->queue.n > f ? p->queue.n - f : 0;
}

static void become_holder(struct gw_pacer *p, uint32_t i, const uint8_t sha[FERRY_SHA256_LEN],
                          uint64_t size, uint64_t now_ms)
{
    struct rec *r = &p->recs[i];
    /* Starting the artifact again after its grace: what the grace served
     * counts for the new download. */
    bool again = r->state == REC_GRACE && memcmp(r->sha, sha, FERRY_SHA256_LEN) == 0;
    detach(p, i);
    r->state = REC_HOLDER;
    memcpy(r->sha, sha, FERRY_SHA256_LEN);
    r->size = size;
    r->served = again ? r->served : 0;
    r->since_ms = r->last_ms = now_ms;
    list_append(p, &p->holders_idle, false, i);
    list_append(p, &p->holders_turn, true, i);
}

/* To the end of the queue (a holder whose turn is over, or a newcomer). */
static void become_waiter(struct gw_pacer *p, uint32_t i, uint64_t now_ms)
{
    struct rec *r = &p->recs[i];
    detach(p, i);
    r->state = REC_WAITER;
    r->since_ms = r->last_ms = now_ms;
    list_append(p, &p->waiters_lru, false, i);
    list_append(p, &p->queue, true, i);
}

/* Whether waiter i is among the first `free` of the queue. */
static bool at_the_front(const struct gw_pacer *p, uint32_t i, size_t free)
{
    uint32_t q = p->queue.head;
    for (size_t k = 0; k < free && q != NONE; k++, q = p->recs[q].b_next)
        if (q == i)
            return true;
    return false;
}

enum ferry_err gw_pacer_admit(struct gw_pacer *p, const char *who,
                              const uint8_t sha256[FERRY_SHA256_LEN], uint64_t size,
                              uint64_t now_ms, enum gw_pacer_admission *how)
{
    if (!gw_idmap_id_valid(who))
        return FERRY_E_INVALID_ARG;
    uint32_t i = gw_idmap_find(p->ids, who);
    struct rec *r = i != NONE ? &p->recs[i] : NULL;
    enum gw_pacer_admission result = GW_PACER_CONTINUED;
    if (r && r->state == REC_HOLDER) {
        if (elapsed(r->since_ms, p->turn_ms, now_ms) && shortfall(p) > 0) {
            become_waiter(p, i, now_ms); /* its turn is over: others first */
            return FERRY_E_BUSY;
        }
        if (memcmp(r->sha, sha256, FERRY_SHA256_LEN) != 0) {
            /* Another artifact (a newer release): the same slot, the same
             * turn, counted from zero. */
            memcpy(r->sha, sha256, FERRY_SHA256_LEN);
            r->size = size;
            r->served = 0;
        }
        r->last_ms = now_ms;
        list_touch(p, &p->holders_idle, false, i);
    } else if (r && r->state == REC_GRACE && r->grace_left > 0 &&
               memcmp(r->sha, sha256, FERRY_SHA256_LEN) == 0 &&
               !elapsed(r->since_ms, p->grace_ms, now_ms)) {
        r->grace_left--;
        result = GW_PACER_GRACE;
    } else {
        /* It needs a slot: one is free and nobody waits ahead of it. */
        if (!r) {
            i = alloc(p, who);
            if (i == NONE)
                return FERRY_E_BUSY;
            r = &p->recs[i];
        }
        size_t free = free_slots(p);
        bool admitted = r->state == REC_WAITER ? at_the_front(p, i, free) : p->queue.n < free;
        if (!admitted) {
            if (r->state == REC_WAITER) {
                r->last_ms = now_ms;
                list_touch(p, &p->waiters_lru, false, i);
            } else {
                become_waiter(p, i, now_ms);
            }
            return FERRY_E_BUSY;
        }
        become_holder(p, i, sha256, size, now_ms);
        result = GW_PACER_STARTED;
    }
    if (how)
        *how = result;
    return FERRY_OK;
}

bool gw_pacer_served(struct gw_pacer *p, const char *who, const uint8_t sha256[FERRY_SHA256_LEN],
                     uint64_t bytes, uint64_t now_ms)
{
    uint32_t i = gw_idmap_find(p->ids, who);
    if (i == NONE)
        return false;
    struct rec *r = &p->recs[i];
    if ((r->state != REC_HOLDER && r->state != REC_GRACE) ||
        memcmp(r->sha, sha256, FERRY_SHA256_LEN) != 0)
        return false;
    r->served = bytes > UINT64_MAX - r->served ? UINT64_MAX : r->served + bytes;
    if (r->state == REC_GRACE || r->served < r->size)
        return false;
    detach(p, i);
    r->state = REC_GRACE;
    r->since_ms = now_ms;
    r->served = 0;
    r->grace_left = p->grace_requests;
    list_append(p, &p->graces, false, i);
    return true;
}

size_t gw_pacer_expire(struct gw_pacer *p, uint64_t now_ms)
{
    size_t freed = 0;
    while (p->holders_idle.head != NONE &&
           elapsed(p->recs[p->holders_idle.head].last_ms, p->idle_ms, now_ms)) {
        release(p, p->holders_idle.head);
        freed++;
    }
    /* Silent waiters give up their place before turns are counted, so a
     * holder does not yield to nobody. */
    while (p->waiters_lru.head != NONE &&
           elapsed(p->recs[p->waiters_lru.head].last_ms, p->wait_ms, now_ms))
        release(p, p->waiters_lru.head);
    /* The oldest turns end first, as many as the queue lacks slots; each
     * goes to the back of the queue, behind those it yields to. */
    for (size_t need = shortfall(p); need > 0 && p->holders_turn.head != NONE; need--) {
        uint32_t i = p->holders_turn.head;
        if (!elapsed(p->recs[i].since_ms, p->turn_ms, now_ms))
            break;
        become_waiter(p, i, now_ms);
        freed++;
    }
    while (p->graces.head != NONE && elapsed(p->recs[p->graces.head].since_ms, p->grace_ms, now_ms))
        release(p, p->graces.head);
    return freed;
}

uint64_t gw_pacer_next_expiry(const struct gw_pacer *p)
{
    uint64_t next = GW_PACER_NO_EXPIRY, t;
    if (p->holders_idle.head != NONE &&
        (t = at(p->recs[p->holders_idle.head].last_ms, p->idle_ms)) < next)
        next = t;
    if (shortfall(p) > 0 && p->holders_turn.head != NONE &&
        (t = at(p->recs[p->holders_turn.head].since_ms, p->turn_ms)) < next)
        next = t;
    if (p->waiters_lru.head != NONE &&
        (t = at(p->recs[p->waiters_lru.head].last_ms, p->wait_ms)) < next)
        next = t;
    if (p->graces.head != NONE && (t = at(p->recs[p->graces.head].since_ms, p->grace_ms)) < next)
        next = t;
    return next;
}

size_t gw_pacer_active(const struct gw_pacer *p)
{
    return p->holders_idle.n;
}

size_t gw_pacer_waiting(const struct gw_pacer *p)
{
    return p->queue.n;
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
