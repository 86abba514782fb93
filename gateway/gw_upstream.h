/* Where a gateway's work comes from and where its nodes' status goes: its
 * upstream. Two implementations, and the rest of the gateway cannot tell
 * which one it has:
 *
 *   MQTT to the cloud (gw_upstream_mqtt_new(), around gw_uplink.h): the
 *   broker's retained releases, roots, timestamps and rollouts; artifacts
 *   streamed in chunks on request; status batches acknowledged by the
 *   cloud; twins, descriptions, configuration reports and rollout reports
 *   retained on the broker.
 *
 *   CoAP to a parent gateway (gw_upstream_coap.h): a cascade. The child is
 *   a client of its parent like any node (PROTOCOL.md, "Cascaded
 *   gateways"): it observes the manifests and trust metadata of the
 *   product lines it needs, fetches artifacts block-wise from the parent's
 *   cache and hands them up as the same chunks the cloud would stream, and
 *   posts its outbox's records one by one to the parent's ferry/status,
 *   turning the parent's answers into the acknowledgement the cloud would
 *   send. Retained topics with no CoAP resource (twins, descriptions,
 *   configuration reports, rollout reports) are taken and dropped: the
 *   parent reports its own view of the nodes it relays for.
 *
 * The contract both keep:
 *   - every handler runs on the loop thread, never inside the call that
 *     caused it (a publish never calls back before it returns);
 *   - on_up after the link is usable and every time it becomes usable
 *     again (resubscribed, or the parent answers again), on_down once when
 *     it is lost; publish answers FERRY_E_BUSY while it is down, and the
 *     callers retry on on_up (the fetch asks again, the relay resends);
 *   - an acknowledgement names only records the upstream now holds
 *     durably (the cloud's inventory, or the parent's outbox: each hop
 *     stores before it answers).
 *
 * Not thread-safe: the event loop owns it. */
#ifndef FERRY_GW_UPSTREAM_H
#define FERRY_GW_UPSTREAM_H

#include "ferry_err.h"
#include "ferry_loop.h"
#include "ferry_names.h"
#include "gw_uplink.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The events, as gw_uplink.h names them for the MQTT link: on_release,
 * on_root, on_timestamp, on_chunk (a stream chunk, proto/ferry_stream.h),
 * on_status_ack (a batch ack, proto/ferry_batch.h), on_rollout, on_up,
 * on_down. Any may be NULL. */
typedef struct gw_uplink_handlers gw_upstream_handlers;

struct gw_upstream_ops {
    bool (*is_up)(const void *impl);
    enum ferry_err (*publish)(void *impl, enum ferry_topic which, const char *node, const void *buf,
                              size_t len, bool retain);
    void (*want)(void *impl, const char *product);
    void (*free)(void *impl);
};

/* An upstream: an implementation behind its ops. */
struct gw_upstream {
    const struct gw_upstream_ops *ops;
    void *impl;
};

/* MQTT to the cloud: opts and h as gw_uplink_new() takes them. */
enum ferry_err gw_upstream_mqtt_new(struct ferry_loop *loop, const struct gw_uplink_opts *opts,
                                    const gw_upstream_handlers *h, struct gw_upstream **out,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

/* Disconnects and frees; NULL is fine. */
void gw_upstream_free(struct gw_upstream *u);

bool gw_upstream_is_up(const struct gw_upstream *u);

/* Sends one of this gateway's messages upstream (QoS 1 where that means
 * something): a stream request, a status batch, a node's twin, a node
 * description, a configuration report, a rollout report. FERRY_E_BUSY
 * while the link is down or its queue is full: the caller tries again. */
enum ferry_err gw_upstream_publish(struct gw_upstream *u, enum ferry_topic which, const char *node,
                                   const void *buf, size_t len, bool retain) FERRY_MUST_CHECK;

/* The gateway needs product's releases (a node asked for the line, or it
 * is the gateway's own). The MQTT link hears of every product anyway; a
 * parent is asked for each product named here, from now on. */
void gw_upstream_want(struct gw_upstream *u, const char *product);

#endif
