#include "cloud_budget.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    char id[FERRY_ID_MAX + 1];
    bool waiting;
    struct ferry_stream_req req; /* what is still to send, when waiting */
    uint64_t tokens;             /* bytes */
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
    if (!e->waiting)
        b->waiting++;
    e->waiting = req->count > 0;
    if (!e->waiting)
        b->waiting--;
    e->req = *req;
    return FERRY_OK;
}

/* Chunks e may send now: what it asks, the quantum, and its tokens. */
static uint32_t affordable(const struct cloud_budget *b, const struct entry *e)
{
    uint32_t n = e->req.count < b->o.quantum ? e->req.count : b->o.quantum;
    if (b->o.rate && e->tokens / e->req.chunk < n)
        n = (uint32_t)(e->tokens / e->req.chunk);
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
        uint32_t n = affordable(b, e);
        if (n == 0) {
            /* b->o.rate is set: tokens are short of one chunk. */
            uint64_t need = e->req.chunk - e->tokens;
            uint64_t at = now_ms + (need * 1000 + b->o.rate - 1) / b->o.rate;
            if (at < wake)
                wake = at;
            continue;
        }
        snprintf(turn->gateway, sizeof(turn->gateway), "%s", e->id);
        turn->req = e->req;
        turn->req.count = n;
        if (b->o.rate)
            e->tokens -= (uint64_t)n * e->req.chunk;
        e->req.offset += (uint64_t)n * e->req.chunk;
        e->req.count -= n;
        if (e->req.count == 0) {
            e->waiting = false;
            b->waiting--;
        }
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
    if (done)
        return;
    uint64_t resume = turn->req.offset + (uint64_t)sent * turn->req.chunk;
    uint64_t after = turn->req.offset + (uint64_t)turn->req.count * turn->req.chunk;
    if (!e->waiting) {
        e->req = turn->req;
        e->req.offset = resume;
        e->req.count = unsent;
        e->waiting = true;
        b->waiting++;
    } else if (memcmp(e->req.sha256, turn->req.sha256, sizeof(e->req.sha256)) == 0 &&
               e->req.chunk == turn->req.chunk && e->req.offset == after) {
        /* The rest of the same request: the unsent chunks go in front. */
        e->req.offset = resume;
        e->req.count += unsent;
    }
    /* Otherwise a newer request replaced it: that one is what the gateway
     * wants now. */
}

size_t cloud_budget_waiting(const struct cloud_budget *b)
{
    return b->waiting;
}
