/* The gateway's status relay: node -> outbox -> cloud, and the per-node
 * state the gateway keeps and mirrors upstream as retained "reported
 * state" (a device twin).
 *
 * A record is first judged by the node table (gw_nodes.h: the same record
 * again, a conflicting one, a seq that jumps past the window, a node over
 * its rate, a new node with no place left) and by the outbox (the node's
 * share, a conflict with a record still waiting), and accepted only once
 * it is durable there (gw_outbox_append fsyncs). The outbox is shared out
 * evenly: each of the max_nodes nodes may hold max_records / max_nodes
 * records and max_bytes / max_nodes bytes of it, so no node, and no number
 * of invented node ids, can take the room another node needs.
 *
 * The relay sends the oldest pending records as one batch
 * (proto/ferry_batch.h) at QoS 1 and remembers which (node, seq) it
 * carried. An ack is taken only for the batch in flight and only for
 * records that batch carried; then its "acked" records (stored by the
 * cloud) and "refused" ones (never to be stored; the cloud keeps them for
 * the operator, and they are logged here) leave the outbox. One batch is
 * in flight at a time; a batch not acknowledged within
 * GW_RELAY_ACK_TIMEOUT_MS is sent again under a new id (the cloud
 * de-duplicates by (node, seq)), and a new connection resends at once. A
 * late ack of an earlier batch is ignored: the ack of the batch in flight
 * names the same records again.
 *
 * The node table lives in memory: after a restart the nodes with records
 * still waiting in the outbox get their places back, the others come back
 * with their next record, and the broker holds the retained twins
 * meanwhile. A node forgotten to make room for another has its twin
 * cleared (an empty retained message), so invented ids leave no trace on
 * the broker either. Twins are best effort; the outbox is the durable path.
 *
 * Not thread-safe: the event loop owns it. */
#ifndef FERRY_GW_RELAY_H
#define FERRY_GW_RELAY_H

#include "ferry_err.h"
#include "ferry_loop.h"
#include "ferry_status.h"
#include "gw_nodes.h"
#include "gw_outbox.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_RELAY_ACK_TIMEOUT_MS 10000u

/* How the relay publishes: topic is FERRY_TOPIC_STATUS (node NULL) or
 * FERRY_TOPIC_NODE (node set; len 0 clears the retained twin). Returns
 * FERRY_E_BUSY when the link is down. */
typedef enum ferry_err (*gw_relay_publish_fn)(void *arg, bool twin, const char *node,
                                              const void *buf, size_t len, bool retain);

struct gw_relay_opts {
    /* The outbox's own limits; its per-node shares are set here from
     * max_nodes (any given in it are replaced). */
    const struct gw_outbox_opts *outbox;
    size_t max_nodes; /* 1..GW_NODES_LIMIT, and at most outbox->max_records */
    /* Per-node rate and burst, and how long a node must be idle before it
     * may be forgotten (gw_nodes.h); 0: the defaults. */
    uint32_t node_rate_per_s;
    uint32_t node_burst;
    uint64_t node_idle_ms;
    gw_relay_publish_fn publish;
    void *publish_arg;
};

struct gw_relay;

/* FERRY_E_INVALID_ARG when max_nodes leaves a node less than one record of
 * the outbox (see gw_relay_share_ok()). */
enum ferry_err gw_relay_new(struct ferry_loop *loop, const struct gw_relay_opts *o,
                            struct gw_relay **out, struct ferry_diag *d) FERRY_MUST_CHECK;
void gw_relay_free(struct gw_relay *r); /* NULL is fine */

/* Whether an outbox of max_records and max_bytes shared by max_nodes gives
 * each node room for at least one record of the largest size. */
bool gw_relay_share_ok(size_t max_nodes, size_t max_records, uint64_t max_bytes);

/* Takes a record from a node. FERRY_OK once durable, or when the very
 * record was stored before (answer 2.04). FERRY_E_CONFLICT when another
 * record holds its (node, seq) (4.09: the node renumbers);
 * FERRY_E_SEQ_RANGE (seq past the window), FERRY_E_BUSY (the node's rate,
 * or no place for a new node) and FERRY_E_NOSPACE (the node's share, the
 * outbox or the disk is full) mean "not now" (5.03); other errors mean the
 * record is unacceptable (4.00). d names the node and the reason. */
enum ferry_err gw_relay_submit(struct gw_relay *r, const struct ferry_status *st,
                               struct ferry_diag *d) FERRY_MUST_CHECK;

/* The uplink came up or went down. */
void gw_relay_link(struct gw_relay *r, bool up);

/* A message on this gateway's status-ack topic. */
void gw_relay_ack(struct gw_relay *r, const uint8_t *buf, size_t len);

size_t gw_relay_pending(const struct gw_relay *r);

/* The id of the batch in flight, or NULL. */
const char *gw_relay_in_flight(const struct gw_relay *r);

/* The nodes the table knows, and the i-th (0 <= i < count), in no order:
 * valid until the next submit. */
size_t gw_relay_nodes(const struct gw_relay *r);
const struct gw_node_info *gw_relay_node_at(const struct gw_relay *r, size_t i);

/* The node table's entry of a node, or NULL. Valid until the next submit. */
const struct gw_node_info *gw_relay_node(const struct gw_relay *r, const char *node);

#endif
