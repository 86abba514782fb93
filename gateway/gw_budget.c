#include "gw_budget.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define NONE GW_IDMAP_NONE

/* Tokens are millibytes: a rate in bytes per second fills rate millibytes
 * per millisecond, so integer arithmetic loses nothing. */
#define MB(bytes) ((int64_t)(bytes)*1000)

/* One node. While it has answers queued it is in the round-robin ring and
 * not in the LRU list (it is active by definition); otherwise in the LRU
 * list, by its last request, until it has been quiet for active_ms. */
struct node {
    int64_t tokens; /* may be below 0: a debt from borrowing */
    int64_t capped; /* the node_rate bucket, when node_rate is set */
    uint64_t refill_ms, last_ms;
    uint32_t q_head, q_tail, q_n;
    uint32_t lru_prev, lru_next;
    uint32_t rr_prev, rr_next;
};

/* One queued answer: in its node's FIFO (next) and in the global list by
 * arrival, which is by time (g_prev, g_next). */
struct item {
    uint64_t ticket;
    uint64_t queued_ms;
    uint32_t cost_bytes;
    uint32_t node;
    uint32_t next, g_prev, g_next;
    bool used;
};

struct gw_budget {
    uint64_t link_rate, node_rate;
    uint32_t burst_ms, active_ms, max_delay_ms, max_queued, per_node;
    int64_t link_tokens, link_cap;
    uint64_t link_refill_ms;
    bool started;
    struct gw_idmap *ids;
    struct node *nodes;
    uint32_t lru_head, lru_tail;
    uint32_t rr_cursor; /* a node of the ring, or NONE when none is backlogged */
    size_t rr_n;
    struct item *items;
    uint32_t free_items, g_head, g_tail;
    size_t queued;
    uint32_t generation;
    uint64_t sent_bytes;
};

/* ---- set-up ------------------------------------------------------------------ */

enum ferry_err gw_budget_new(const struct gw_budget_opts *o, struct gw_budget **out,
                             struct ferry_diag *d)
{
    if (o->link_rate < GW_BUDGET_MIN_RATE || o->link_rate > GW_BUDGET_MAX_RATE)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "budget: link_rate must be %d..%" PRIu64 " bytes/s, got %" PRIu64,
                          GW_BUDGET_MIN_RATE, GW_BUDGET_MAX_RATE, o->link_rate);
    if (o->node_rate && (o->node_rate < GW_BUDGET_MIN_RATE || o->node_rate > o->link_rate))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "budget: node_rate must be %d..%" PRIu64 " bytes/s (the link rate), "
                          "got %" PRIu64,
                          GW_BUDGET_MIN_RATE, o->link_rate, o->node_rate);
    uint32_t queued = o->max_queued ? o->max_queued : GW_BUDGET_DEFAULT_QUEUED;
    uint32_t per_node =
        o->max_queued_per_node ? o->max_queued_per_node : GW_BUDGET_DEFAULT_PER_NODE;
    uint32_t nodes = o->max_nodes ? o->max_nodes : GW_BUDGET_DEFAULT_NODES;
    if (queued > GW_BUDGET_MAX_QUEUED || per_node > queued)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "budget: max_queued must be at most %d and max_queued_per_node at "
                          "most max_queued",
                          GW_BUDGET_MAX_QUEUED);
    if (nodes > GW_IDMAP_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "budget: max_nodes must be at most %u",
                          GW_IDMAP_MAX);
    struct gw_budget *b = calloc(1, sizeof(*b));
    if (!b)
        return ferry_fail(d, FERRY_E_NOMEM, "budget: out of memory");
    b->nodes = calloc(nodes, sizeof(b->nodes[0]));
    b->items = calloc(queued, sizeof(b->items[0]));
    if (!b->nodes || !b->items || gw_idmap_new(nodes, &b->ids) != FERRY_OK) {
        gw_budget_free(b);
        return ferry_fail(d, FERRY_E_NOMEM, "budget: out of memory");
    }
    b->link_rate = o->link_rate;
    b->node_rate = o->node_rate;
    b->burst_ms = o->burst_ms ? o->burst_ms : GW_BUDGET_DEFAULT_BURST_MS;
    b->active_ms = o->active_ms ? o->active_ms : GW_BUDGET_DEFAULT_ACTIVE_MS;
    b->max_delay_ms = o->max_delay_ms ? o->max_delay_ms : GW_BUDGET_DEFAULT_DELAY_MS;
    b->max_queued = queued;
    b->per_node = per_node;
    int64_t cap = (int64_t)b->link_rate * b->burst_ms;
    b->link_cap = cap > MB(GW_BUDGET_DATAGRAM_MAX) ? cap : MB(GW_BUDGET_DATAGRAM_MAX);
    b->link_tokens = b->link_cap;
    b->lru_head = b->lru_tail = NONE;
    b->rr_cursor = NONE;
    for (uint32_t i = 0; i < queued; i++)
        b->items[i].next = i + 1 < queued ? i + 1 : NONE;
    b->free_items = 0;
    b->g_head = b->g_tail = NONE;
    *out = b;
    return FERRY_OK;
}

void gw_budget_free(struct gw_budget *b)
{
    if (!b)
        return;
    gw_idmap_free(b->ids);
    free(b->nodes);
    free(b->items);
    free(b);
}

/* ---- buckets ----------------------------------------------------------------- */

static uint64_t share(const struct gw_budget *b)
{
    size_t n = gw_idmap_count(b->ids);
    uint64_t s = b->link_rate / (n ? n : 1);
    if (b->node_rate && b->node_rate < s)
        s = b->node_rate;
    return s ? s : 1;
}

static int64_t node_cap(const struct gw_budget *b)
{
    int64_t cap = (int64_t)share(b) * b->burst_ms;
    return cap > MB(GW_BUDGET_DATAGRAM_MAX) ? cap : MB(GW_BUDGET_DATAGRAM_MAX);
}

/* Tokens after filling at `rate` from `since` to now, up to cap (a clock that
 * went back fills nothing). */
static int64_t filled(int64_t tokens, uint64_t rate, uint64_t since, uint64_t now_ms, int64_t cap)
{
    if (now_ms <= since || tokens >= cap)
        return tokens < cap ? tokens : cap;
    uint64_t span = now_ms - since;
    /* No overflow: rate <= 2^32 and a span past 2^31 ms fills any bucket. */
    if (span > (UINT64_C(1) << 31))
        return cap;
    int64_t t = tokens + (int64_t)(span * rate);
    return t < cap ? t : cap;
}

static void refill_link(struct gw_budget *b, uint64_t now_ms)
{
    if (!b->started) {
        b->started = true;
        b->link_refill_ms = now_ms;
    }
    b->link_tokens = filled(b->link_tokens, b->link_rate, b->link_refill_ms, now_ms, b->link_cap);
    if (now_ms > b->link_refill_ms) /* never back: a span is filled once */
        b->link_refill_ms = now_ms;
}

static int64_t capped_cap(const struct gw_budget *b)
{
    int64_t cap = (int64_t)b->node_rate * b->burst_ms;
    return cap > MB(GW_BUDGET_DATAGRAM_MAX) ? cap : MB(GW_BUDGET_DATAGRAM_MAX);
}

/* A node's two buckets as they are at now_ms. */
struct mine {
    int64_t tokens, capped;
};

static struct mine node_at(const struct gw_budget *b, uint32_t i, uint64_t now_ms)
{
    const struct node *n = &b->nodes[i];
    struct mine m = {filled(n->tokens, share(b), n->refill_ms, now_ms, node_cap(b)), 0};
    if (b->node_rate)
        m.capped = filled(n->capped, b->node_rate, n->refill_ms, now_ms, capped_cap(b));
    return m;
}

static void refill_node(struct gw_budget *b, uint32_t i, uint64_t now_ms)
{
    struct mine m = node_at(b, i, now_ms);
    b->nodes[i].tokens = m.tokens;
    b->nodes[i].capped = m.capped;
    if (now_ms > b->nodes[i].refill_ms)
        b->nodes[i].refill_ms = now_ms;
}

/* Whether a node may send `cost` now: the link's tokens, its node_rate's,
 * and its own or a link idle enough to lend. */
static bool can_send(const struct gw_budget *b, int64_t link, struct mine m, int64_t cost)
{
    return link >= cost && (!b->node_rate || m.capped >= cost) &&
           (m.tokens >= cost || link >= b->link_cap / 2);
}

static void charge(struct gw_budget *b, uint32_t i, int64_t cost)
{
    b->link_tokens -= cost;
    struct node *n = &b->nodes[i];
    if (b->node_rate)
        n->capped -= cost;
    n->tokens -= cost;
    int64_t floor = -node_cap(b);
    if (n->tokens < floor)
        n->tokens = floor;
    b->sent_bytes += (uint64_t)(cost / 1000);
}

static uint64_t ms_to_fill(int64_t have, int64_t want, uint64_t rate)
{
    if (have >= want)
        return 0;
    uint64_t missing = (uint64_t)(want - have);
    return (missing + rate - 1) / rate;
}

/* How long until a node could send `cost`, given the tokens now. */
static uint64_t wait_for(const struct gw_budget *b, int64_t link, struct mine m, int64_t cost)
{
    uint64_t own = ms_to_fill(m.tokens, cost, share(b));
    uint64_t lend = ms_to_fill(link, b->link_cap / 2, b->link_rate);
    uint64_t w = own < lend ? own : lend;
    uint64_t l = ms_to_fill(link, cost, b->link_rate);
    if (l > w)
        w = l;
    uint64_t c = b->node_rate ? ms_to_fill(m.capped, cost, b->node_rate) : 0;
    return c > w ? c : w;
}

/* ---- nodes --------------------------------------------------------------------- */

static void lru_remove(struct gw_budget *b, uint32_t i)
{
    struct node *n = &b->nodes[i];
    if (n->lru_prev != NONE)
        b->nodes[n->lru_prev].lru_next = n->lru_next;
    else
        b->lru_head = n->lru_next;
    if (n->lru_next != NONE)
        b->nodes[n->lru_next].lru_prev = n->lru_prev;
    else
        b->lru_tail = n->lru_prev;
    n->lru_prev = n->lru_next = NONE;
}

static void lru_append(struct gw_budget *b, uint32_t i)
{
    struct node *n = &b->nodes[i];
    n->lru_prev = b->lru_tail;
    n->lru_next = NONE;
    if (b->lru_tail != NONE)
        b->nodes[b->lru_tail].lru_next = i;
    else
        b->lru_head = i;
    b->lru_tail = i;
}

static void ring_add(struct gw_budget *b, uint32_t i)
{
    struct node *n = &b->nodes[i];
    if (b->rr_cursor == NONE) {
        n->rr_prev = n->rr_next = i;
        b->rr_cursor = i;
    } else {
        /* Just before the cursor: last in the current round. */
        uint32_t next = b->rr_cursor, prev = b->nodes[next].rr_prev;
        n->rr_prev = prev;
        n->rr_next = next;
        b->nodes[prev].rr_next = i;
        b->nodes[next].rr_prev = i;
    }
    b->rr_n++;
}

static void ring_remove(struct gw_budget *b, uint32_t i)
{
    struct node *n = &b->nodes[i];
    if (n->rr_next == i) {
        b->rr_cursor = NONE;
    } else {
        b->nodes[n->rr_prev].rr_next = n->rr_next;
        b->nodes[n->rr_next].rr_prev = n->rr_prev;
        if (b->rr_cursor == i)
            b->rr_cursor = n->rr_next;
    }
    n->rr_prev = n->rr_next = NONE;
    b->rr_n--;
}

/* Forgets nodes quiet for active_ms (none of them has answers queued). */
static void sweep(struct gw_budget *b, uint64_t now_ms)
{
    while (b->lru_head != NONE) {
        uint32_t i = b->lru_head;
        uint64_t last = b->nodes[i].last_ms;
        if (now_ms < last || now_ms - last < b->active_ms)
            break;
        lru_remove(b, i);
        gw_idmap_remove(b->ids, i);
    }
}

static uint32_t node_for(struct gw_budget *b, const char *who, uint64_t now_ms)
{
    uint32_t i = gw_idmap_find(b->ids, who);
    if (i != NONE)
        return i;
    i = gw_idmap_add(b->ids, who);
    if (i == NONE && b->lru_head != NONE) {
        uint32_t victim = b->lru_head;
        lru_remove(b, victim);
        gw_idmap_remove(b->ids, victim);
        i = gw_idmap_add(b->ids, who);
    }
    if (i == NONE)
        return NONE;
    struct node *n = &b->nodes[i];
    memset(n, 0, sizeof(*n));
    n->q_head = n->q_tail = NONE;
    n->rr_prev = n->rr_next = NONE;
    n->refill_ms = n->last_ms = now_ms;
    /* A newcomer's share starts empty (an idle link lends it what it may
     * need), so the first of many to ask gets no head start; its node_rate
     * bucket starts full. */
    n->tokens = 0;
    n->capped = capped_cap(b);
    lru_append(b, i);
    return i;
}

/* ---- queued answers ------------------------------------------------------------ */

static void unlink_item(struct gw_budget *b, uint32_t k, uint64_t now_ms)
{
    struct item *it = &b->items[k];
    struct node *n = &b->nodes[it->node];
    uint32_t prev = NONE;
    for (uint32_t q = n->q_head; q != NONE && q != k; q = b->items[q].next)
        prev = q;
    if (prev == NONE)
        n->q_head = it->next;
    else
        b->items[prev].next = it->next;
    if (n->q_tail == k)
        n->q_tail = prev;
    if (--n->q_n == 0) {
        ring_remove(b, it->node);
        n->last_ms = now_ms > n->last_ms ? now_ms : n->last_ms;
        lru_append(b, it->node);
    }
    if (it->g_prev != NONE)
        b->items[it->g_prev].g_next = it->g_next;
    else
        b->g_head = it->g_next;
    if (it->g_next != NONE)
        b->items[it->g_next].g_prev = it->g_prev;
    else
        b->g_tail = it->g_prev;
    it->used = false;
    it->next = b->free_items;
    b->free_items = k;
    b->queued--;
}

static uint64_t enqueue(struct gw_budget *b, uint32_t i, uint32_t cost_bytes, uint64_t now_ms)
{
    uint32_t k = b->free_items;
    struct item *it = &b->items[k];
    b->free_items = it->next;
    it->ticket = (uint64_t)++b->generation << 32 | k;
    it->queued_ms = now_ms;
    it->cost_bytes = cost_bytes;
    it->node = i;
    it->used = true;
    it->next = NONE;
    it->g_prev = b->g_tail;
    it->g_next = NONE;
    if (b->g_tail != NONE)
        b->items[b->g_tail].g_next = k;
    else
        b->g_head = k;
    b->g_tail = k;
    struct node *n = &b->nodes[i];
    if (n->q_n++ == 0) {
        lru_remove(b, i);
        ring_add(b, i);
        n->q_head = k;
    } else {
        b->items[n->q_tail].next = k;
    }
    n->q_tail = k;
    b->queued++;
    return it->ticket;
}

/* ---- decisions ----------------------------------------------------------------- */

enum gw_budget_verdict gw_budget_ask(struct gw_budget *b, const char *who, uint32_t bytes,
                                     bool may_wait, uint64_t now_ms, uint64_t *ticket,
                                     uint64_t *retry_ms)
{
    *retry_ms = 1000;
    if (!gw_idmap_id_valid(who))
        return GW_BUDGET_REFUSED;
    uint32_t cost_bytes = bytes == 0                       ? 1
                          : bytes > GW_BUDGET_DATAGRAM_MAX ? GW_BUDGET_DATAGRAM_MAX
                                                           : bytes;
    int64_t cost = MB(cost_bytes);
    refill_link(b, now_ms);
    sweep(b, now_ms);
    uint32_t i = node_for(b, who, now_ms);
    if (i == NONE)
        return GW_BUDGET_REFUSED;
    struct node *n = &b->nodes[i];
    if (now_ms > n->last_ms)
        n->last_ms = now_ms;
    if (n->q_n == 0) {
        lru_remove(b, i);
        lru_append(b, i);
    }
    refill_node(b, i, now_ms);
    /* Queued answers of this node go first, in order; a CON request cannot
     * wait, so it is decided on the tokens alone. */
    if ((n->q_n == 0 || !may_wait) &&
        can_send(b, b->link_tokens, (struct mine){n->tokens, n->capped}, cost)) {
        charge(b, i, cost);
        return GW_BUDGET_SEND;
    }
    if (may_wait && b->queued < b->max_queued && n->q_n < b->per_node) {
        *ticket = enqueue(b, i, cost_bytes, now_ms);
        return GW_BUDGET_QUEUED;
    }
    uint64_t w = wait_for(b, b->link_tokens, (struct mine){n->tokens, n->capped}, cost);
    if (n->q_n > 0) /* behind its own queue */
        w += (uint64_t)n->q_n * (uint64_t)MB(GW_BUDGET_DATAGRAM_MAX) / share(b);
    *retry_ms = w ? w : 1;
    return GW_BUDGET_REFUSED;
}

size_t gw_budget_poll(struct gw_budget *b, uint64_t now_ms, struct gw_budget_event *ev, size_t max)
{
    size_t out = 0;
    refill_link(b, now_ms);
    while (out < max && b->g_head != NONE) {
        struct item *it = &b->items[b->g_head];
        if (now_ms < it->queued_ms || now_ms - it->queued_ms < b->max_delay_ms)
            break;
        ev[out++] = (struct gw_budget_event){.ticket = it->ticket, .send = false};
        unlink_item(b, b->g_head, now_ms);
    }
    /* Round robin, one answer per node per turn, until a whole round sends
     * nothing. */
    size_t fails = 0;
    while (out < max && b->rr_cursor != NONE && fails < b->rr_n) {
        uint32_t i = b->rr_cursor;
        refill_node(b, i, now_ms);
        struct node *n = &b->nodes[i];
        uint32_t k = n->q_head;
        int64_t cost = MB(b->items[k].cost_bytes);
        if (!can_send(b, b->link_tokens, (struct mine){n->tokens, n->capped}, cost)) {
            fails++;
            b->rr_cursor = n->rr_next;
            continue;
        }
        fails = 0;
        charge(b, i, cost);
        ev[out++] = (struct gw_budget_event){.ticket = b->items[k].ticket, .send = true};
        uint32_t next = n->rr_next;
        bool last = n->q_n == 1;
        unlink_item(b, k, now_ms);
        if (!last)
            b->rr_cursor = next;
    }
    sweep(b, now_ms);
    return out;
}

uint64_t gw_budget_next_ms(const struct gw_budget *b, uint64_t now_ms)
{
    if (b->g_head == NONE)
        return GW_BUDGET_NEVER;
    uint64_t next = b->items[b->g_head].queued_ms + b->max_delay_ms;
    int64_t link =
        b->started ? filled(b->link_tokens, b->link_rate, b->link_refill_ms, now_ms, b->link_cap)
                   : b->link_cap;
    uint32_t i = b->rr_cursor;
    for (size_t k = 0; k < b->rr_n; k++, i = b->nodes[i].rr_next) {
        int64_t cost = MB(b->items[b->nodes[i].q_head].cost_bytes);
        uint64_t at = now_ms + wait_for(b, link, node_at(b, i, now_ms), cost);
        if (at < next)
            next = at;
    }
    return next;
}

void gw_budget_cancel(struct gw_budget *b, uint64_t ticket)
{
    uint32_t k = (uint32_t)ticket;
    if (k < b->max_queued && b->items[k].used && b->items[k].ticket == ticket)
        unlink_item(b, k, b->nodes[b->items[k].node].last_ms);
}

size_t gw_budget_queued(const struct gw_budget *b)
{
    return b->queued;
}

size_t gw_budget_nodes(const struct gw_budget *b)
{
    return gw_idmap_count(b->ids);
}

uint64_t gw_budget_sent_bytes(const struct gw_budget *b)
{
    return b->sent_bytes;
}
