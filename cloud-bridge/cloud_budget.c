#include "cloud_budget.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Requests a gateway may have waiting: a window's worth is at most this
 * many (the gateway refills its window half at a time), with room for a
 * re-request after a timeout. */
#define QUEUE_MAX 8

struct entry {
    char id[FERRY_ID_MAX + 1];
    bool waiting;                         /* qn > 0 */
    struct ferry_stream_req q[QUEUE_MAX]; /* waiting, oldest first, from qhead */
    size_t qhead, qn;
    uint32_t chunks; /* waiting in all */
    uint64_t tokens; /* bytes */
    uint64_t refilled_ms;
};

struct cloud_budget {
    struct cloud_budget_opts o;
    struct entry *v;
    size_t n;
    size_t cursor; /* where the next round-robin scan starts */
    size_t waiting;
};

enum ferry_err cloud_budget_new(const struct cloud_budget_opts *o, struct cloud_budget **out,
                                struct ferry_diag *d)
{
    if (o->quantum < 1 || o->max_gateways < 1 || (o->rate && o->burst < FERRY_STREAM_MAX_CHUNK))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "budget: quantum and max_gateways must be at least 1, and the burst at "
                          "least one chunk (%d bytes)",
                          FERRY_STREAM_MAX_CHUNK);
    struct cloud_budget *b = calloc(1, sizeof(*b));
    if (b)
        b->v = calloc(o->max_gateways, sizeof(*b->v));
    if (!b || !b->v) {
        free(b);
        return ferry_fail(d, FERRY_E_NOMEM, "budget: out of memory");
    }
    b->o = *o;
    *out = b;
    return FERRY_OK;
}

void cloud_budget_free(struct cloud_budget *b)
{
    if (!b)
        return;
    free(b->v);
    free(b);
}

static void refill(const struct cloud_budget *b, struct entry *e, uint64_t now_ms)
{
    if (!b->o.rate)
        return;
    if (now_ms > e->refilled_ms) {
        uint64_t elapsed = now_ms - e->refilled_ms;
        /* rate * elapsed / 1000 without overflow for any sane rate. */
        uint64_t add = elapsed >= 1000 * (b->o.burst / b->o.rate + 1)
                           ? b->o.burst
                           : b->o.rate / 1000 * elapsed + b->o.rate % 1000 * elapsed / 1000;
        e->tokens = b->o.burst - e->tokens < add ? b->o.burst : e->tokens + add;
    }
    e->refilled_ms = now_ms;
}

static struct entry *find(struct cloud_budget *b, const char *id)
{
    for (size_t i = 0; i < b->n; i++) {
        if (strcmp(b->v[i].id, id) == 0)
            return &b->v[i];
    }
    return NULL;
}

/* A place for a new gateway: a free one, or an idle gateway's. */
static struct entry *place(struct cloud_budget *b, uint64_t now_ms)
{
    if (b->n < b->o.max_gateways)
        return &b->v[b->n++];
    for (size_t i = 0; i < b->n; i++) {
        struct entry *e = &b->v[i];
        refill(b, e, now_ms);
        if (!e->waiting && (!b->o.rate || e->tokens == b->o.burst))
            return e;
    }
    return NULL;
}

static struct ferry_stream_req *front(struct entry *e)
{
    return &e->q[e->qhead];
}

static void drop_front(struct cloud_budget *b, struct entry *e)
{
    e->chunks -= front(e)->count;
    e->qhead = (e->qhead + 1) % QUEUE_MAX;
    if (--e->qn == 0) {
        e->waiting = false;
        b->waiting--;
    }
}

static void push_back(struct cloud_budget *b, struct entry *e, const struct ferry_stream_req *r)
{
    if (!e->waiting) {
        e->waiting = true;
        b->waiting++;
    }
    e->q[(e->qhead + e->qn) % QUEUE_MAX] = *r;
    e->qn++;
    e->chunks += r->count;
}

enum ferry_err cloud_budget_request(struct cloud_budget *b, const char *gateway,
                                    const struct ferry_stream_req *req, uint64_t now_ms,
                                    struct ferry_diag *d)
{
    struct entry *e = find(b, gateway);
    if (!e) {
        e = place(b, now_ms);
        if (!e)
            return ferry_fail(d, FERRY_E_BUSY,
                              "budget: %zu gateways have requests waiting; %s must wait",
                              b->o.max_gateways, gateway);
        memset(e, 0, sizeof(*e));
        snprintf(e->id, sizeof(e->id), "%s", gateway);
        e->tokens = b->o.burst;
        e->refilled_ms = now_ms;
    }
    if (req->count == 0)
        return FERRY_OK;
    /* The newest requests say what the gateway lacks now: the oldest go. */
    while (e->qn > 0 && (e->qn == QUEUE_MAX || e->chunks + req->count > FERRY_STREAM_MAX_WINDOW))
        drop_front(b, e);
    push_back(b, e, req);
    return FERRY_OK;
}

/* Chunks e may send now of the request r at its front: what r asks, the
 * quantum, and its tokens. */
static uint32_t affordable(const struct cloud_budget *b, const struct entry *e,
                           const struct ferry_stream_req *r)
{
    uint32_t n = r->count < b->o.quantum ? r->count : b->o.quantum;
    if (b->o.rate && e->tokens / r->chunk < n)
        n = (uint32_t)(e->tokens / r->chunk);
    return n;
}

bool cloud_budget_next(struct cloud_budget *b, uint64_t now_ms, struct cloud_turn *turn,
                       uint64_t *wake_ms)
{
    uint64_t wake = CLOUD_BUDGET_NEVER;
    for (size_t k = 0; k < b->n; k++) {
        size_t i = (b->cursor + k) % b->n;
        struct entry *e = &b->v[i];
        if (!e->waiting)
            continue;
        refill(b, e, now_ms);
        struct ferry_stream_req *r = front(e);
        uint32_t n = affordable(b, e, r);
        if (n == 0) {
            /* b->o.rate is set: tokens are short of one chunk. */
            uint64_t need = r->chunk - e->tokens;
            uint64_t at = now_ms + (need * 1000 + b->o.rate - 1) / b->o.rate;
            if (at < wake)
                wake = at;
            continue;
        }
        snprintf(turn->gateway, sizeof(turn->gateway), "%s", e->id);
        turn->req = *r;
        turn->req.count = n;
        if (b->o.rate)
            e->tokens -= (uint64_t)n * r->chunk;
        r->offset += (uint64_t)n * r->chunk;
        r->count -= n;
        e->chunks -= n;
        if (r->count == 0)
            drop_front(b, e);
        b->cursor = (i + 1) % b->n;
        return true;
    }
    *wake_ms = wake;
    return false;
}

void cloud_budget_unsent(struct cloud_budget *b, const struct cloud_turn *turn, uint32_t sent,
                         bool done)
{
    struct entry *e = find(b, turn->gateway);
    if (!e || sent >= turn->req.count)
        return;
    uint32_t unsent = turn->req.count - sent;
    if (b->o.rate) {
        uint64_t back = (uint64_t)unsent * turn->req.chunk;
        e->tokens = b->o.burst - e->tokens < back ? b->o.burst : e->tokens + back;
    }
    if (done || e->qn == QUEUE_MAX)
        return; /* a full queue: the gateway asks again on its timeout */
    struct ferry_stream_req rest = turn->req;
    rest.offset += (uint64_t)sent * turn->req.chunk;
    rest.count = unsent;
    if (!e->waiting) {
        e->waiting = true;
        b->waiting++;
    }
    e->qhead = (e->qhead + QUEUE_MAX - 1) % QUEUE_MAX;
    e->q[e->qhead] = rest;
    e->qn++;
    e->chunks += unsent;
}

size_t cloud_budget_waiting(const struct cloud_budget *b)
{
    return b->waiting;
}
