/* The gateway's MQTT session with the cloud, on the session keeper
 * (ferry_keeper.h, whose policy applies: brokers in turn with back-off, a
 * refused subscription retried while the rest works, every subscription
 * made again on every connection): a persistent session, a retained
 * online/offline presence with a last will, the gateway's subscriptions,
 * and each message handed to the handler of its kind. A broker must offer
 * QoS 1, retained messages and wildcard subscriptions, and take a status
 * batch of FERRY_BATCH_MAX_BYTES. No decisions about releases or artifacts
 * are made here. */
#ifndef FERRY_GW_UPLINK_H
#define FERRY_GW_UPLINK_H

#include "ferry_err.h"
#include "ferry_keeper.h"
#include "ferry_loop.h"
#include "ferry_names.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gw_uplink_handlers {
    void *arg;
    /* The link is up and subscribed (called after every reconnect). The
     * broker may have lost what it queued for us meanwhile: ask again for
     * what is awaited. */
    void (*on_up)(void *arg);
    /* The link went down. */
    void (*on_down)(void *arg);
    /* A message on ferry/v1/<fleet>/release/<product>. */
    void (*on_release)(void *arg, const char *product, const uint8_t *buf, size_t len);
    /* A message on ferry/v1/<fleet>/root/<version> (level: the version text). */
    void (*on_root)(void *arg, const char *level, const uint8_t *buf, size_t len);
    /* A message on ferry/v1/<fleet>/timestamp/<product>. */
    void (*on_timestamp)(void *arg, const char *product, const uint8_t *buf, size_t len);
    /* A message on this gateway's stream data topic. */
    void (*on_chunk)(void *arg, const uint8_t *buf, size_t len);
    /* A message on this gateway's status-ack topic. */
    void (*on_status_ack)(void *arg, const uint8_t *buf, size_t len);
    /* A message on ferry/v1/<fleet>/rollout/<this gateway>/<product>. */
    void (*on_rollout)(void *arg, const char *product, const uint8_t *buf, size_t len);
    /* A QoS 1 publish finished: ok, or failed (the caller retries). */
    void (*on_published)(void *arg, int token, bool ok);
};

struct gw_uplink_opts {
    const struct ferry_keeper_conf *mqtt; /* brokers, TLS, credentials */
    const char *fleet;
    const char *gateway_id;
};

struct gw_uplink;

/* Creates the session and starts connecting. Strings are copied. */
enum ferry_err gw_uplink_new(struct ferry_loop *loop, const struct gw_uplink_opts *opts,
                             const struct gw_uplink_handlers *h, struct gw_uplink **out,
                             struct ferry_diag *d) FERRY_MUST_CHECK;
/* Publishes "offline" (best effort), disconnects and frees; NULL is fine. */
void gw_uplink_free(struct gw_uplink *u);

bool gw_uplink_is_up(const struct gw_uplink *u);

/* Publishes on one of this gateway's topics (stream request, status batch,
 * node state, node description, rollout report). FERRY_E_BUSY when the link
 * is down or Paho's buffer is full. */
enum ferry_err gw_uplink_publish(struct gw_uplink *u, enum ferry_topic which, const char *node,
                                 const void *buf, size_t len, int qos, bool retain,
                                 int *token) FERRY_MUST_CHECK;

#endif
