#include "gw_relay.h"

#include "ferry_batch.h"
#include "ferry_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct node_entry {
    struct gw_node_info info;
    bool twin_dirty; /* the retained twin lags the record */
};

struct gw_relay {
    struct ferry_loop *loop;
    struct gw_outbox *outbox;
    gw_relay_publish_fn publish;
    void *publish_arg;
    bool up;
    /* The batch in flight, if any. */
    bool in_flight;
    char batch_id[FERRY_BATCH_ID_MAX + 1];
    uint64_t batch_counter;
    uint64_t ack_timer;
    uint64_t drain_timer;
    /* Inventory: a plain array, searched linearly; bounded by
     * GW_RELAY_MAX_NODES and small on real gateways. */
    struct node_entry *nodes;
    size_t nnodes, cap_nodes;
};

static void drain(struct gw_relay *r);

static void on_ack_timeout(void *arg)
{
    struct gw_relay *r = arg;
    r->ack_timer = 0;
    if (r->in_flight) {
        LOG_WARN("relay: batch %s not acknowledged in %u s; sending again", r->batch_id,
                 GW_RELAY_ACK_TIMEOUT_MS / 1000);
        r->in_flight = false;
    }
    drain(r);
}

static void on_drain_timer(void *arg)
{
    struct gw_relay *r = arg;
    r->drain_timer = 0;
    drain(r);
}

/* Defers draining to the loop, so a burst of POSTs becomes one batch and
 * the CoAP handler returns at once. */
static void schedule_drain(struct gw_relay *r)
{
    if (!r->drain_timer && !r->in_flight && r->up)
        r->drain_timer = ferry_loop_timer(r->loop, 0, on_drain_timer, r);
}

static void flush_twins(struct gw_relay *r)
{
    for (size_t i = 0; i < r->nnodes && r->up; i++) {
        struct node_entry *e = &r->nodes[i];
        if (!e->twin_dirty)
            continue;
        char *json = NULL;
        size_t len = 0;
        if (ferry_status_to_json(&e->info.last, &json, &len, NULL) != FERRY_OK)
            continue;
        if (r->publish(r->publish_arg, true, e->info.last.node, json, len, true) == FERRY_OK)
            e->twin_dirty = false;
        free(json);
    }
}

static void drain(struct gw_relay *r)
{
    if (!r->up || r->in_flight || gw_outbox_count(r->outbox) == 0)
        return;
    struct ferry_diag d = {{0}};
    struct gw_outbox_item *items = calloc(FERRY_BATCH_MAX_RECORDS, sizeof(*items));
    struct ferry_batch *b = calloc(1, sizeof(*b));
    char *json = NULL;
    size_t n = 0, len = 0;
    if (!items || !b) {
        LOG_ERR("relay: out of memory for a batch");
        goto out;
    }
    enum ferry_err err = gw_outbox_peek(r->outbox, items, FERRY_BATCH_MAX_RECORDS, &n, &d);
    if (err != FERRY_OK || n == 0) {
        if (err != FERRY_OK)
            LOG_ERR("relay: %s", ferry_diag_str(&d, err));
        goto out;
    }
    snprintf(b->id, sizeof(b->id), "%llu-%llu", (unsigned long long)time(NULL),
             (unsigned long long)++r->batch_counter);
    for (size_t i = 0; i < n; i++)
        b->records[i] = items[i].st;
    b->n = n;
    err = ferry_batch_encode(b, &json, &len, &d);
    if (err != FERRY_OK) {
        LOG_ERR("relay: %s", ferry_diag_str(&d, err));
        goto out;
    }
    err = r->publish(r->publish_arg, false, NULL, json, len, false);
    if (err != FERRY_OK) {
        LOG_DEBUG("relay: batch not sent (%s); retrying on the next connection",
                  ferry_strerror(err));
        goto out;
    }
    memcpy(r->batch_id, b->id, sizeof(r->batch_id));
    r->in_flight = true;
    r->ack_timer = ferry_loop_timer(r->loop, GW_RELAY_ACK_TIMEOUT_MS, on_ack_timeout, r);
    LOG_DEBUG("relay: batch %s sent with %zu records, %zu pending", b->id, n,
              gw_outbox_count(r->outbox));
out:
    free(json);
    free(b);
    free(items);
}

void gw_relay_ack(struct gw_relay *r, const uint8_t *buf, size_t len)
{
    struct ferry_diag d = {{0}};
    struct ferry_batch_ack *a = calloc(1, sizeof(*a));
    if (!a) {
        LOG_ERR("relay: out of memory for an ack");
        return;
    }
    enum ferry_err err = ferry_batch_ack_decode(buf, len, a, &d);
    if (err != FERRY_OK) {
        LOG_WARN("relay: ack dropped: %s", ferry_diag_str(&d, err));
        goto out;
    }
    size_t acked = 0;
    err = gw_outbox_ack(r->outbox, a->acked, a->n, &acked, &d);
    if (err != FERRY_OK) {
        /* Not durable: the records stay pending and are sent again. */
        LOG_ERR("relay: recording the ack of batch %s failed: %s", a->id, ferry_diag_str(&d, err));
        goto out;
    }
    LOG_DEBUG("relay: batch %s acknowledged, %zu records done, %zu pending", a->id, acked,
              gw_outbox_count(r->outbox));
    if (r->in_flight && strcmp(a->id, r->batch_id) == 0) {
        r->in_flight = false;
        if (r->ack_timer)
            ferry_loop_cancel(r->loop, r->ack_timer);
        r->ack_timer = 0;
        drain(r);
    }
out:
    free(a);
}

void gw_relay_link(struct gw_relay *r, bool up)
{
    r->up = up;
    /* Whatever was in flight may never be acknowledged on a new connection:
     * send it again (the cloud drops the duplicates). */
    r->in_flight = false;
    if (r->ack_timer)
        ferry_loop_cancel(r->loop, r->ack_timer);
    r->ack_timer = 0;
    if (up) {
        flush_twins(r);
        schedule_drain(r);
    }
}

static struct node_entry *node_slot(struct gw_relay *r, const char *node)
{
    for (size_t i = 0; i < r->nnodes; i++) {
        if (strcmp(r->nodes[i].info.last.node, node) == 0)
            return &r->nodes[i];
    }
    if (r->nnodes == GW_RELAY_MAX_NODES)
        return NULL;
    if (r->nnodes == r->cap_nodes) {
        size_t cap = r->cap_nodes ? r->cap_nodes * 2 : 64;
        struct node_entry *n = realloc(r->nodes, cap * sizeof(*n));
        if (!n)
            return NULL;
        r->nodes = n;
        r->cap_nodes = cap;
    }
    struct node_entry *e = &r->nodes[r->nnodes++];
    memset(e, 0, sizeof(*e));
    return e;
}

enum ferry_err gw_relay_submit(struct gw_relay *r, const struct ferry_status *st,
                               struct ferry_diag *d)
{
    bool duplicate = false;
    enum ferry_err err = gw_outbox_append(r->outbox, st, &duplicate, d);
    if (err != FERRY_OK)
        return err;
    struct node_entry *e = node_slot(r, st->node);
    if (!e) {
        LOG_WARN("relay: inventory full or out of memory; node %s not tracked", st->node);
    } else if (e->info.last.seq < st->seq) {
        e->info.last = *st;
        e->info.last_seen = (int64_t)time(NULL);
        e->twin_dirty = true;
    } else {
        e->info.last_seen = (int64_t)time(NULL);
    }
    if (r->up)
        flush_twins(r);
    schedule_drain(r);
    return FERRY_OK;
}

size_t gw_relay_pending(const struct gw_relay *r)
{
    return gw_outbox_count(r->outbox);
}

const struct gw_node_info *gw_relay_node(const struct gw_relay *r, const char *node)
{
    for (size_t i = 0; i < r->nnodes; i++) {
        if (strcmp(r->nodes[i].info.last.node, node) == 0)
            return &r->nodes[i].info;
    }
    return NULL;
}

enum ferry_err gw_relay_new(struct ferry_loop *loop, const struct gw_relay_opts *o,
                            struct gw_relay **out, struct ferry_diag *d)
{
    struct gw_relay *r = calloc(1, sizeof(*r));
    if (!r)
        return ferry_fail(d, FERRY_E_NOMEM, "relay: out of memory");
    r->loop = loop;
    r->publish = o->publish;
    r->publish_arg = o->publish_arg;
    enum ferry_err err = gw_outbox_open(o->outbox, &r->outbox, d);
    if (err != FERRY_OK) {
        free(r);
        return err;
    }
    if (gw_outbox_count(r->outbox))
        LOG_INFO("relay: %zu status records pending from before the restart",
                 gw_outbox_count(r->outbox));
    *out = r;
    return FERRY_OK;
}

void gw_relay_free(struct gw_relay *r)
{
    if (!r)
        return;
    if (r->ack_timer)
        ferry_loop_cancel(r->loop, r->ack_timer);
    if (r->drain_timer)
        ferry_loop_cancel(r->loop, r->drain_timer);
    gw_outbox_close(r->outbox);
    free(r->nodes);
    free(r);
}
