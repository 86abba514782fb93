/* The rollout controller inside `ferry-cloud serve`.
 *
 * Once a tick (serve calls it every second), in one write transaction on
 * the inventory (cloud_inventory_rollout.h), so several serve instances
 * take turns and one decision is made once:
 *   1. stores the node descriptions and gateway reports that arrived since
 *      the last tick (a gateway's own halt halts the rollout, logged with
 *      the gateway as the actor);
 *   2. for every rollout not cancelled or completed: targets the product's
 *      nodes that match its selection and are not targets yet (wave and
 *      window from cloud_rollout_assign.h), follows nodes that moved to
 *      another gateway, takes in the records that arrived since the last
 *      tick, then lets cloud_rollout_decide() start it, open its next wave,
 *      halt it or complete it, logging each step with its reason;
 * and then, outside the transaction, publishes every rollout whose
 * revision moved as one retained document per gateway and product
 * (ferry/v1/<fleet>/rollout/<gw>/<product>, proto/ferry_rollout.h). A
 * completed rollout that targeted the whole product line is published once
 * as the product's release (retained on release/<product>), so nodes that
 * appear later get it as they would any release.
 *
 * What is offered, for the timestamp (cloud_timestamp.h): with a store,
 * each time a product's latest rollout changed (and for every product on
 * the first tick), what it offers now is recorded in the store
 * (cloud_offered_record()), and a promoted release is recorded as the
 * line's current release before it is published, so the next
 * `ferry-cloud timestamp` names what the gateways offer. The records are
 * written after the transaction, from what it committed; each is one
 * atomic file, and one written twice with the same content is unchanged.
 *
 * Watermarks: each tick reads only nodes and descriptions that changed
 * since the previous one (the tables' updated_at), except the first tick
 * after start or after a lost connection, which reads everything and
 * publishes every rollout again. Whatever a restart interrupts, the next
 * tick takes up from the inventory: the controller keeps nothing that
 * matters in memory.
 *
 * One thread: serve's loop. */
#ifndef FERRY_CLOUD_ROLLOUT_CTL_H
#define FERRY_CLOUD_ROLLOUT_CTL_H

#include "cloud_inventory.h"
#include "ferry_err.h"
#include "ferry_names.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLOUD_ROLLOUT_CTL_FILTERS 2
/* Node descriptions kept between ticks before the oldest are dropped (the
 * gateway's retained copy brings them back on the next connect). */
#define CLOUD_ROLLOUT_CTL_QUEUE 100000

struct cloud_rollout_ctl_io {
    void *arg;
    /* QoS 1 publish on topic; FERRY_E_BUSY when it cannot be sent now. */
    enum ferry_err (*publish)(void *arg, const char *topic, const void *buf, size_t len,
                              bool retain);
    /* The store to record what is offered in (see above); NULL: none. */
    const char *store_dir;
};

/* Statistics of the last tick, for logs and the benchmark. */
struct cloud_rollout_ctl_stats {
    size_t rollouts;     /* active rollouts decided on */
    size_t targeted;     /* new targets */
    uint64_t refreshed;  /* targets whose state changed */
    size_t steps;        /* starts, waves opened, halts, completions */
    size_t docs;         /* documents published */
    uint64_t decide_us;  /* the transaction */
    uint64_t publish_us; /* building and publishing documents */
    bool committed;      /* the tick's transaction committed (else it is retried) */
};

struct cloud_rollout_ctl;

/* inv and io are borrowed; fleet is copied. */
enum ferry_err cloud_rollout_ctl_new(struct cloud_inventory *inv, const char *fleet,
                                     const struct cloud_rollout_ctl_io *io,
                                     struct cloud_rollout_ctl **out,
                                     struct ferry_diag *d) FERRY_MUST_CHECK;
void cloud_rollout_ctl_free(struct cloud_rollout_ctl *c); /* NULL is fine */

/* The topic filters to subscribe to, not shared (the messages are retained,
 * and every instance needs them): node-info/+/+ and rollout-report/+. */
const char *cloud_rollout_ctl_filter(const struct cloud_rollout_ctl *c, size_t i);

/* A message on one of those topics: queued for the next tick. False when
 * the topic is not the controller's. Malformed payloads are logged and
 * dropped. */
bool cloud_rollout_ctl_message(struct cloud_rollout_ctl *c, const char *topic,
                               const uint8_t *payload, size_t len);

/* The connection came up: publish everything again at the next tick. */
void cloud_rollout_ctl_connected(struct cloud_rollout_ctl *c);

/* One tick at unix time now. Errors are logged; the next tick retries. */
void cloud_rollout_ctl_tick(struct cloud_rollout_ctl *c, int64_t now);

const struct cloud_rollout_ctl_stats *cloud_rollout_ctl_stats(const struct cloud_rollout_ctl *c);

#endif
