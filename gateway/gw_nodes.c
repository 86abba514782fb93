#include "gw_nodes.h"

#include "ferry_names.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHAT "status"

struct node {
    struct gw_node_info info; /* info.last.node is the key */
    uint64_t tokens_milli;    /* thousandths of a record */
    uint64_t refilled_ms;
};

struct gw_nodes {
    struct gw_nodes_opts o;
    struct node *v; /* dense: v[0..n) */
    size_t n, cap;
    /* node id -> index + 1 (0: empty), open addressing, linear probing;
     * capacity a power of two at least twice n. */
    uint32_t *slots;
    size_t nslots;
};

static uint64_t id_hash(const char *id)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * UINT64_C(1099511628211);
    return h;
}

static size_t ix_find(const struct gw_nodes *t, const char *id)
{
    if (t->nslots == 0)
        return SIZE_MAX;
    size_t mask = t->nslots - 1;
    for (size_t s = id_hash(id) & mask; t->slots[s]; s = (s + 1) & mask) {
        size_t i = t->slots[s] - 1;
        if (strcmp(t->v[i].info.last.node, id) == 0)
            return i;
    }
    return SIZE_MAX;
}

static void ix_put(struct gw_nodes *t, size_t i)
{
    size_t mask = t->nslots - 1;
    size_t s = id_hash(t->v[i].info.last.node) & mask;
    while (t->slots[s])
        s = (s + 1) & mask;
    t->slots[s] = (uint32_t)(i + 1);
}

/* The slot holding index i. */
static size_t ix_slot_of(const struct gw_nodes *t, size_t i)
{
    size_t mask = t->nslots - 1;
    size_t s = id_hash(t->v[i].info.last.node) & mask;
    while (t->slots[s] != i + 1)
        s = (s + 1) & mask;
    return s;
}

/* Backward-shift deletion of the slot holding index i: no tombstones. */
static void ix_del(struct gw_nodes *t, size_t i)
{
    size_t mask = t->nslots - 1;
    size_t hole = ix_slot_of(t, i);
    for (size_t j = (hole + 1) & mask; t->slots[j]; j = (j + 1) & mask) {
        size_t home = id_hash(t->v[t->slots[j] - 1].info.last.node) & mask;
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            t->slots[hole] = t->slots[j];
            hole = j;
        }
    }
    t->slots[hole] = 0;
}

/* Room for one more node in v and the index; false when out of memory. */
static bool reserve_one(struct gw_nodes *t)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        struct node *v = realloc(t->v, cap * sizeof(*v));
        if (!v)
            return false;
        t->v = v;
        t->cap = cap;
    }
    if (t->nslots >= 2 * (t->n + 1))
        return true;
    size_t nslots = t->nslots ? t->nslots * 2 : 128;
    while (nslots < 2 * (t->n + 1))
        nslots *= 2;
    uint32_t *slots = calloc(nslots, sizeof(*slots));
    if (!slots)
        return false;
    free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
    for (size_t i = 0; i < t->n; i++)
        ix_put(t, i);
    return true;
}

static struct node *add(struct gw_nodes *t, const char *id)
{
    if (!reserve_one(t))
        return NULL;
    struct node *e = &t->v[t->n];
    memset(e, 0, sizeof(*e));
    snprintf(e->info.last.node, sizeof(e->info.last.node), "%s", id);
    e->tokens_milli = (uint64_t)t->o.burst * 1000u;
    ix_put(t, t->n);
    t->n++;
    return e;
}

/* Removes v[i]; the last entry takes its place. */
static void forget(struct gw_nodes *t, size_t i)
{
    ix_del(t, i);
    size_t last = t->n - 1;
    if (i != last) {
        size_t s = ix_slot_of(t, last);
        t->v[i] = t->v[last];
        t->slots[s] = (uint32_t)(i + 1);
    }
    t->n--;
}

static bool pinned(const struct gw_nodes *t, const char *id)
{
    return t->o.pinned && t->o.pinned(t->o.pinned_arg, id);
}

/* The node to forget for a newcomer, or SIZE_MAX: of those idle for at
 * least idle_ms (a node that never stored anything counts as idle since
 * forever) and with nothing waiting in the outbox, the one idle longest. */
static size_t victim(const struct gw_nodes *t, uint64_t now_ms)
{
    size_t best = SIZE_MAX;
    uint64_t best_since = 0;
    for (size_t i = 0; i < t->n; i++) {
        const struct gw_node_info *in = &t->v[i].info;
        uint64_t since = in->last.seq ? in->stored_ms : 0;
        if (in->last.seq && now_ms - since < t->o.idle_ms)
            continue;
        if (best != SIZE_MAX && since >= best_since)
            continue;
        if (pinned(t, in->last.node))
            continue;
        best = i;
        best_since = since;
    }
    return best;
}

static void refill(struct gw_nodes *t, struct node *e, uint64_t now_ms)
{
    uint64_t cap = (uint64_t)t->o.burst * 1000u;
    if (now_ms > e->refilled_ms) {
        uint64_t add = (now_ms - e->refilled_ms) * t->o.rate_per_s;
        e->tokens_milli = cap - e->tokens_milli < add ? cap : e->tokens_milli + add;
    }
    e->refilled_ms = now_ms;
}

enum ferry_err gw_nodes_new(const struct gw_nodes_opts *o, struct gw_nodes **out,
                            struct ferry_diag *d)
{
    if (o->max_nodes < 1 || o->max_nodes > GW_NODES_LIMIT)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "nodes: max_nodes must be 1..%d, got %zu",
                          GW_NODES_LIMIT, o->max_nodes);
    struct gw_nodes *t = calloc(1, sizeof(*t));
    if (!t)
        return ferry_fail(d, FERRY_E_NOMEM, "nodes: out of memory");
    t->o = *o;
    if (!t->o.rate_per_s)
        t->o.rate_per_s = GW_NODES_RATE_PER_S;
    if (!t->o.burst)
        t->o.burst = GW_NODES_BURST;
    if (!t->o.idle_ms)
        t->o.idle_ms = GW_NODES_IDLE_MS;
    if (!t->o.memory_ms)
        t->o.memory_ms = GW_NODES_MEMORY_MS;
    *out = t;
    return FERRY_OK;
}

void gw_nodes_free(struct gw_nodes *t)
{
    if (!t)
        return;
    free(t->v);
    free(t->slots);
    free(t);
}

/* The entry of st's node, made room for if need be; NULL with *v set when
 * there is none. */
static struct node *entry_for(struct gw_nodes *t, const struct ferry_status *st, uint64_t now_ms,
                              char *evicted, enum gw_nodes_verdict *v, struct ferry_diag *d)
{
    size_t i = ix_find(t, st->node);
    if (i != SIZE_MAX)
        return &t->v[i];
    if (t->n >= t->o.max_nodes) {
        size_t old = victim(t, now_ms);
        if (old == SIZE_MAX) {
            *v = GW_NODES_FULL;
            ferry_fail(d, FERRY_E_BUSY,
                       WHAT ": node %s is new and this gateway already serves %zu nodes, none "
                            "idle for %" PRIu64 " s without records waiting; try again later",
                       st->node, t->n, t->o.idle_ms / 1000);
            return NULL;
        }
        if (evicted)
            snprintf(evicted, FERRY_ID_MAX + 1, "%s", t->v[old].info.last.node);
        forget(t, old);
    }
    struct node *e = add(t, st->node);
    if (!e) {
        *v = GW_NODES_FULL;
        ferry_fail(d, FERRY_E_BUSY, WHAT ": out of memory for node %s", st->node);
    }
    return e;
}

enum gw_nodes_verdict gw_nodes_admit(struct gw_nodes *t, const struct ferry_status *st,
                                     uint64_t now_ms, char *evicted, struct ferry_diag *d)
{
    enum gw_nodes_verdict v = GW_NODES_ADMIT;
    if (evicted)
        evicted[0] = 0;
    struct node *e = entry_for(t, st, now_ms, evicted, &v, d);
    if (!e)
        return v;
    const struct ferry_status *last = &e->info.last;
    if (last->seq && last->seq == st->seq) {
        if (ferry_status_same(last, st))
            return GW_NODES_STORED;
        ferry_fail(d, FERRY_E_CONFLICT,
                   WHAT ": node %s seq %" PRIu64 " differs from the record this gateway stored "
                        "under that seq (conflict); renumber it",
                   st->node, st->seq);
        return GW_NODES_CONFLICT;
    }
    if (last->seq && now_ms - e->info.stored_ms < t->o.memory_ms &&
        !ferry_status_seq_in_window(last->seq, st->seq)) {
        ferry_fail(d, FERRY_E_SEQ_RANGE,
                   WHAT ": node %s seq %" PRIu64 " is more than %d past seq %" PRIu64
                        ", the last this gateway stored for it (seq-range)",
                   st->node, st->seq, FERRY_STATUS_SEQ_WINDOW, last->seq);
        return GW_NODES_SEQ_RANGE;
    }
    refill(t, e, now_ms);
    if (e->tokens_milli < 1000) {
        ferry_fail(d, FERRY_E_BUSY,
                   WHAT ": node %s sends more than %" PRIu32 " records a second (burst %" PRIu32
                        "); try again later",
                   st->node, t->o.rate_per_s, t->o.burst);
        return GW_NODES_RATE;
    }
    e->tokens_milli -= 1000;
    return GW_NODES_ADMIT;
}

static void take(struct node *e, const struct ferry_status *st, uint64_t now_ms)
{
    if (st->seq > e->info.last.seq) {
        e->info.last = *st;
        e->info.twin_dirty = true;
    }
    e->info.stored_ms = now_ms;
}

void gw_nodes_stored(struct gw_nodes *t, const struct ferry_status *st, uint64_t now_ms)
{
    size_t i = ix_find(t, st->node);
    if (i != SIZE_MAX)
        take(&t->v[i], st, now_ms);
}

bool gw_nodes_recover(struct gw_nodes *t, const char *node, uint64_t now_ms)
{
    size_t i = ix_find(t, node);
    struct node *e = i != SIZE_MAX ? &t->v[i] : add(t, node);
    if (e)
        e->info.stored_ms = now_ms;
    return e != NULL;
}

struct gw_node_info *gw_nodes_find(struct gw_nodes *t, const char *node)
{
    size_t i = ix_find(t, node);
    return i == SIZE_MAX ? NULL : &t->v[i].info;
}

size_t gw_nodes_count(const struct gw_nodes *t)
{
    return t->n;
}

struct gw_node_info *gw_nodes_at(struct gw_nodes *t, size_t i)
{
    return i < t->n ? &t->v[i].info : NULL;
}

enum ferry_err gw_nodes_err(enum gw_nodes_verdict v)
{
    switch (v) {
    case GW_NODES_ADMIT:
    case GW_NODES_STORED:
        return FERRY_OK;
    case GW_NODES_CONFLICT:
        return FERRY_E_CONFLICT;
    case GW_NODES_SEQ_RANGE:
        return FERRY_E_SEQ_RANGE;
    default:
        return FERRY_E_BUSY;
    }
}
