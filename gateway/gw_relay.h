/* The gateway's status relay: node -> outbox -> cloud, and the per-node
 * inventory the gateway keeps and mirrors upstream as retained "reported
 * state" (a device twin).
 *
 * A record is accepted only once it is durable in the outbox
 * (gw_outbox_append fsyncs). The relay then sends the oldest pending
 * records as one batch (proto/ferry_batch.h) at QoS 1 and drops them from
 * the outbox only when the cloud's application-level ack names them. One
 * batch is in flight at a time; a batch not acknowledged within
 * GW_RELAY_ACK_TIMEOUT_MS is sent again (the cloud de-duplicates by
 * (node, seq)), and a new connection resends at once.
 *
 * The inventory (last record, last seen, per node) lives in memory: after
 * a restart it is rebuilt from the nodes' next records, and the broker
 * still holds the retained twins meanwhile. Twins are best effort; the
 * outbox is the durable path.
 *
 * Not thread-safe: the event loop owns it. */
#ifndef FERRY_GW_RELAY_H
#define FERRY_GW_RELAY_H

#include "ferry_err.h"
#include "ferry_loop.h"
#include "ferry_status.h"
#include "gw_outbox.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_RELAY_ACK_TIMEOUT_MS 10000u
#define GW_RELAY_MAX_NODES      100000

/* How the relay publishes: topic is FERRY_TOPIC_STATUS (node NULL) or
 * FERRY_TOPIC_NODE (node set). Returns FERRY_E_BUSY when the link is down. */
typedef enum ferry_err (*gw_relay_publish_fn)(void *arg, bool twin, const char *node,
                                              const void *buf, size_t len, bool retain);

struct gw_relay_opts {
    const struct gw_outbox_opts *outbox;
    gw_relay_publish_fn publish;
    void *publish_arg;
};

/* What the gateway knows of one node. */
struct gw_node_info {
    struct ferry_status last; /* newest record by seq */
    int64_t last_seen;        /* unix seconds when it last reported */
};

struct gw_relay;

enum ferry_err gw_relay_new(struct ferry_loop *loop, const struct gw_relay_opts *o,
                            struct gw_relay **out, struct ferry_diag *d) FERRY_MUST_CHECK;
void gw_relay_free(struct gw_relay *r); /* NULL is fine */

/* Takes a record from a node. FERRY_OK once durable (answer 2.04);
 * FERRY_E_NOSPACE when the outbox or the disk is full (answer 5.03); other
 * errors mean the record is unacceptable (4.00). */
enum ferry_err gw_relay_submit(struct gw_relay *r, const struct ferry_status *st,
                               struct ferry_diag *d) FERRY_MUST_CHECK;

/* The uplink came up or went down. */
void gw_relay_link(struct gw_relay *r, bool up);

/* A message on this gateway's status-ack topic. */
void gw_relay_ack(struct gw_relay *r, const uint8_t *buf, size_t len);

size_t gw_relay_pending(const struct gw_relay *r);

/* The inventory entry of a node, or NULL. Valid until the next submit. */
const struct gw_node_info *gw_relay_node(const struct gw_relay *r, const char *node);

#endif
