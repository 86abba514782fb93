#include "gw_relay.h"

#include "ferry_batch.h"
#include "ferry_log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct gw_relay {
    struct ferry_loop *loop;
    struct gw_outbox *outbox;
    struct gw_nodes *nodes;
    gw_relay_publish_fn publish;
    void *publish_arg;
    bool up;
    /* The batch in flight, if any, and the records it carried. */
    bool in_flight;
    char batch_id[FERRY_BATCH_ID_MAX + 1];
    struct ferry_record_id carried[FERRY_BATCH_MAX_RECORDS];
    size_t ncarried;
    uint64_t batch_counter;
    uint64_t ack_timer;
    uint64_t drain_timer;
};

static void drain(struct gw_relay *r);

static void on_ack_timeout(void *arg)
{
    struct gw_relay *r = arg;
    r->ack_timer = 0;
    if (r->in_flight) {
        ferry_log_warn("relay: batch %s not acknowledged in %u s; sending again", r->batch_id,
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

static void flush_twin(struct gw_relay *r, struct gw_node_info *in)
{
    char *json = NULL;
    size_t len = 0;
    if (!r->up || !in->twin_dirty || ferry_status_to_json(&in->last, &json, &len, NULL) != FERRY_OK)
        return;
    if (r->publish(r->publish_arg, true, in->last.node, json, len, true) == FERRY_OK)
        in->twin_dirty = false;
    free(json);
}

/* Every twin that lags (after a reconnect). */
static void flush_twins(struct gw_relay *r)
{
    for (size_t i = 0; i < gw_nodes_count(r->nodes) && r->up; i++)
        flush_twin(r, gw_nodes_at(r->nodes, i));
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
        ferry_log_err("relay: out of memory for a batch");
        goto out;
    }
    enum ferry_err err = gw_outbox_peek(r->outbox, items, FERRY_BATCH_MAX_RECORDS, &n, &d);
    if (err != FERRY_OK || n == 0) {
        if (err != FERRY_OK)
            ferry_log_err("relay: %s", ferry_diag_str(&d, err));
        goto out;
    }
    snprintf(b->id, sizeof(b->id), "%llu-%llu", (unsigned long long)time(NULL),
             (unsigned long long)++r->batch_counter);
    for (size_t i = 0; i < n; i++)
        b->records[i] = items[i].st;
    b->n = n;
    err = ferry_batch_encode(b, &json, &len, &d);
    if (err != FERRY_OK) {
        ferry_log_err("relay: %s", ferry_diag_str(&d, err));
        goto out;
    }
    err = r->publish(r->publish_arg, false, NULL, json, len, false);
    if (err != FERRY_OK) {
        ferry_log_debug("relay: batch not sent (%s); retrying on the next connection",
                        ferry_strerror(err));
        goto out;
    }
    memcpy(r->batch_id, b->id, sizeof(r->batch_id));
    for (size_t i = 0; i < n; i++) {
        memcpy(r->carried[i].node, items[i].st.node, sizeof(r->carried[i].node));
        r->carried[i].seq = items[i].st.seq;
    }
    r->ncarried = n;
    r->in_flight = true;
    r->ack_timer = ferry_loop_timer(r->loop, GW_RELAY_ACK_TIMEOUT_MS, on_ack_timeout, r);
    ferry_log_debug("relay: batch %s sent with %zu records, %zu pending", b->id, n,
                    gw_outbox_count(r->outbox));
out:
    free(json);
    free(b);
    free(items);
}

static bool carried(const struct gw_relay *r, const struct ferry_record_id *id)
{
    for (size_t i = 0; i < r->ncarried; i++) {
        if (r->carried[i].seq == id->seq && strcmp(r->carried[i].node, id->node) == 0)
            return true;
    }
    return false;
}

/* Appends id to out if the batch in flight carried it; warns otherwise. */
static void keep_if_carried(const struct gw_relay *r, const char *batch,
                            const struct ferry_record_id *id, struct ferry_record_id *out,
                            size_t *n)
{
    if (carried(r, id))
        out[(*n)++] = *id;
    else
        ferry_log_warn("relay: the ack of batch %s names node %s seq %" PRIu64
                       ", which that batch did not carry: ignored",
                       batch, id->node, id->seq);
}

void gw_relay_ack(struct gw_relay *r, const uint8_t *buf, size_t len)
{
    struct ferry_diag d = {{0}};
    struct ferry_batch_ack *a = calloc(1, sizeof(*a));
    struct ferry_record_id *done = calloc(2 * FERRY_BATCH_MAX_RECORDS, sizeof(*done));
    if (!a || !done) {
        ferry_log_err("relay: out of memory for an ack");
        goto out;
    }
    enum ferry_err err = ferry_batch_ack_decode(buf, len, a, &d);
    if (err != FERRY_OK) {
        ferry_log_warn("relay: ack dropped: %s", ferry_diag_str(&d, err));
        goto out;
    }
    /* Which batch first: an ack retires only what the batch in flight
     * carried. */
    if (!r->in_flight || strcmp(a->id, r->batch_id) != 0) {
        ferry_log_debug("relay: ack of batch %s ignored: %s%s in flight", a->id,
                        r->in_flight ? "batch " : "nothing", r->in_flight ? r->batch_id : "");
        goto out;
    }
    size_t n = 0;
    for (size_t i = 0; i < a->n; i++)
        keep_if_carried(r, a->id, &a->acked[i], done, &n);
    size_t stored = n;
    for (size_t i = 0; i < a->nrefused; i++) {
        const struct ferry_record_refusal *f = &a->refused[i];
        size_t before = n;
        keep_if_carried(r, a->id, &f->id, done, &n);
        if (n > before)
            ferry_log_warn("relay: the cloud refused node %s seq %" PRIu64
                           " for good (%s): dropped here, kept aside by the cloud",
                           f->id.node, f->id.seq, ferry_err_name(f->reason));
    }
    size_t retired = 0;
    err = gw_outbox_ack(r->outbox, done, n, &retired, &d);
    if (err != FERRY_OK) {
        /* Not durable: the records stay pending and are sent again. */
        ferry_log_err("relay: recording the ack of batch %s failed: %s", a->id,
                      ferry_diag_str(&d, err));
        goto out;
    }
    ferry_log_debug("relay: batch %s acknowledged, %zu stored, %zu refused, %zu pending", a->id,
                    stored, n - stored, gw_outbox_count(r->outbox));
    r->in_flight = false;
    if (r->ack_timer)
        ferry_loop_cancel(r->loop, r->ack_timer);
    r->ack_timer = 0;
    drain(r);
out:
    free(done);
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

/* A node forgotten to make room: its retained twin goes too. Best effort:
 * with the link down the twin stays until the node's id is used again. */
static void clear_twin(struct gw_relay *r, const char *node)
{
    ferry_log_info("relay: node %s forgotten to make room for another (idle, nothing waiting)",
                   node);
    if (r->up && r->publish(r->publish_arg, true, node, "", 0, true) != FERRY_OK)
        ferry_log_debug("relay: the twin of node %s could not be cleared", node);
}

enum ferry_err gw_relay_submit(struct gw_relay *r, const struct ferry_status *st,
                               struct ferry_diag *d)
{
    char evicted[FERRY_ID_MAX + 1];
    uint64_t now = ferry_now_ms();
    enum gw_nodes_verdict v = gw_nodes_admit(r->nodes, st, now, evicted, d);
    if (evicted[0])
        clear_twin(r, evicted);
    if (v == GW_NODES_STORED)
        return FERRY_OK;
    if (v != GW_NODES_ADMIT)
        return gw_nodes_err(v);
    bool duplicate = false;
    enum ferry_err err = gw_outbox_append(r->outbox, st, &duplicate, d);
    if (err != FERRY_OK)
        return err;
    gw_nodes_stored(r->nodes, st, now);
    struct gw_node_info *in = gw_nodes_find(r->nodes, st->node);
    if (in)
        flush_twin(r, in);
    schedule_drain(r);
    return FERRY_OK;
}

size_t gw_relay_pending(const struct gw_relay *r)
{
    return gw_outbox_count(r->outbox);
}

const char *gw_relay_in_flight(const struct gw_relay *r)
{
    return r->in_flight ? r->batch_id : NULL;
}

const struct gw_node_info *gw_relay_node(const struct gw_relay *r, const char *node)
{
    return gw_nodes_find(r->nodes, node);
}

size_t gw_relay_nodes(const struct gw_relay *r)
{
    return gw_nodes_count(r->nodes);
}

const struct gw_node_info *gw_relay_node_at(const struct gw_relay *r, size_t i)
{
    return gw_nodes_at(r->nodes, i);
}

bool gw_relay_share_ok(size_t max_nodes, size_t max_records, uint64_t max_bytes)
{
    return max_nodes >= 1 && max_records / max_nodes >= 1 &&
           max_bytes / max_nodes >= GW_OUTBOX_RECORD_MAX;
}

/* A node with records waiting is never forgotten. */
static bool has_pending(void *arg, const char *node)
{
    const struct gw_relay *r = arg;
    return gw_outbox_node_pending(r->outbox, node, NULL) > 0;
}

static void recover_node(void *arg, const char *node, size_t records)
{
    struct gw_relay *r = arg;
    (void)records;
    if (!gw_nodes_recover(r->nodes, node, ferry_now_ms()))
        ferry_log_warn("relay: out of memory: node %s, which has records waiting, is not tracked",
                       node);
}

enum ferry_err gw_relay_new(struct ferry_loop *loop, const struct gw_relay_opts *o,
                            struct gw_relay **out, struct ferry_diag *d)
{
    if (!gw_relay_share_ok(o->max_nodes, o->outbox->max_records, o->outbox->max_bytes))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "relay: an outbox of %zu records and %" PRIu64 " bytes shared by %zu "
                          "nodes leaves a node less than one record (%u bytes)",
                          o->outbox->max_records, o->outbox->max_bytes, o->max_nodes,
                          GW_OUTBOX_RECORD_MAX);
    struct gw_relay *r = calloc(1, sizeof(*r));
    if (!r)
        return ferry_fail(d, FERRY_E_NOMEM, "relay: out of memory");
    r->loop = loop;
    r->publish = o->publish;
    r->publish_arg = o->publish_arg;
    struct gw_nodes_opts no = {
        .max_nodes = o->max_nodes,
        .rate_per_s = o->node_rate_per_s,
        .burst = o->node_burst,
        .idle_ms = o->node_idle_ms,
        .pinned = has_pending,
        .pinned_arg = r,
    };
    struct gw_outbox_opts oo = *o->outbox;
    oo.max_node_records = oo.max_records / o->max_nodes;
    oo.max_node_bytes = oo.max_bytes / o->max_nodes;
    enum ferry_err err = gw_nodes_new(&no, &r->nodes, d);
    if (err == FERRY_OK)
        err = gw_outbox_open(&oo, &r->outbox, d);
    if (err != FERRY_OK) {
        gw_nodes_free(r->nodes);
        free(r);
        return err;
    }
    gw_outbox_each_node(r->outbox, recover_node, r);
    if (gw_outbox_count(r->outbox))
        ferry_log_info("relay: %zu status records of %zu nodes pending from before the restart",
                       gw_outbox_count(r->outbox), gw_nodes_count(r->nodes));
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
    gw_nodes_free(r->nodes);
    free(r);
}
