/* The nodes whose status this gateway relays, and the admission of their
 * records: which record may cost the gateway an fsync and a place in its
 * outbox, and which must be refused, so that no node (or whoever speaks
 * for node ids over plain CoAP) can crowd out the others or plant a record
 * that hides a node's real ones.
 *
 * Pure: no clock (every call takes now_ms, one monotonic clock), no I/O.
 * The relay (gw_relay.h) asks before it writes and reports what it stored.
 *
 * Model. At most max_nodes nodes are known at once; each has its newest
 * stored record (`last`, also what the gateway mirrors as the node's
 * retained twin), when that was stored, and a token bucket of records.
 *
 * Policy, in the order gw_nodes_admit() applies it:
 *   1. A node not known yet takes a free place. With none free, the node
 *      that has stored nothing for the longest time, at least idle_ms ago,
 *      and has nothing waiting in the outbox (opts.pinned) is forgotten to
 *      make room (reported in *evicted, so its twin can be cleared). With
 *      nobody to forget: GW_NODES_FULL. So invented node ids never grow the
 *      table, nor the broker's retained twins, past max_nodes, and a node
 *      with records waiting is never forgotten.
 *   2. The same (node, seq) as `last`: the same record is GW_NODES_STORED
 *      (a retry after a lost 2.04: answer it again, write nothing); a
 *      different one is GW_NODES_CONFLICT.
 *   3. A seq more than FERRY_STATUS_SEQ_WINDOW beyond `last`, stored less
 *      than memory_ms ago, is GW_NODES_SEQ_RANGE. Older knowledge is not
 *      trusted to judge a jump (the node may have reported through another
 *      gateway since): the cloud, which sees every gateway, decides then.
 *   4. Each record that will be written takes a token; a bucket holds
 *      `burst` and refills at rate_per_s. Empty: GW_NODES_RATE. One node
 *      therefore costs at most burst + rate_per_s * t fsyncs over t seconds
 *      whatever it sends.
 * Otherwise GW_NODES_ADMIT: write the record, then gw_nodes_stored().
 * Records behind `last` are admitted (they may arrive late); the outbox
 * itself refuses a conflict with a record still waiting in it.
 *
 * Not thread-safe; the relay owns it. */
#ifndef FERRY_GW_NODES_H
#define FERRY_GW_NODES_H

#include "ferry_err.h"
#include "ferry_status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_NODES_LIMIT       100000
#define GW_NODES_DEFAULT_MAX 1000
#define GW_NODES_RATE_PER_S  10
#define GW_NODES_BURST       256
#define GW_NODES_IDLE_MS     600000u /* 10 min */
#define GW_NODES_MEMORY_MS   600000u

struct gw_nodes_opts {
    size_t max_nodes;    /* 1..GW_NODES_LIMIT */
    uint32_t rate_per_s; /* 0: GW_NODES_RATE_PER_S */
    uint32_t burst;      /* 0: GW_NODES_BURST */
    uint64_t idle_ms;    /* 0: GW_NODES_IDLE_MS */
    uint64_t memory_ms;  /* 0: GW_NODES_MEMORY_MS */
    /* True when node must not be forgotten (records of it wait in the
     * outbox). May be NULL: then any idle node may be. */
    bool (*pinned)(void *arg, const char *node);
    void *pinned_arg;
};

/* What the gateway knows of one node. */
struct gw_node_info {
    struct ferry_status last; /* newest stored record by seq (seq 0: none yet) */
    uint64_t stored_ms;       /* when `last` was stored */
    bool twin_dirty;          /* the retained twin lags `last` */
};

enum gw_nodes_verdict {
    GW_NODES_ADMIT,     /* write it, then call gw_nodes_stored() */
    GW_NODES_STORED,    /* the very record is stored already: answer 2.04 */
    GW_NODES_CONFLICT,  /* another record holds this (node, seq) */
    GW_NODES_SEQ_RANGE, /* seq jumps past the window */
    GW_NODES_RATE,      /* the node's bucket is empty: later */
    GW_NODES_FULL,      /* max_nodes known, none may be forgotten: later */
};

struct gw_nodes;

enum ferry_err gw_nodes_new(const struct gw_nodes_opts *o, struct gw_nodes **out,
                            struct ferry_diag *d) FERRY_MUST_CHECK;
void gw_nodes_free(struct gw_nodes *t); /* NULL is fine */

/* Decides on st (its node id valid, as decoding ensures) as described
 * above. When a node was forgotten to make room, evicted (FERRY_ID_MAX + 1
 * bytes, may be NULL) gets its id, else "". d gets a line naming the node
 * for every verdict but GW_NODES_ADMIT and GW_NODES_STORED. */
enum gw_nodes_verdict gw_nodes_admit(struct gw_nodes *t, const struct ferry_status *st,
                                     uint64_t now_ms, char *evicted, struct ferry_diag *d);

/* st (admitted just before) is durably stored: it becomes `last` when its
 * seq is newer, and the twin is marked dirty. */
void gw_nodes_stored(struct gw_nodes *t, const struct ferry_status *st, uint64_t now_ms);

/* A node with records waiting in the outbox after a restart: takes a place
 * without a token, beyond max_nodes if need be (such places are never
 * forgotten while the records wait). Its `last` is unknown (seq 0) until
 * it stores again. false when out of memory. */
bool gw_nodes_recover(struct gw_nodes *t, const char *node, uint64_t now_ms);

/* The entry of node, or NULL; valid until the next call that may add or
 * forget one. */
struct gw_node_info *gw_nodes_find(struct gw_nodes *t, const char *node);

/* Known nodes, and the i-th of them (0 <= i < count), in no order. */
size_t gw_nodes_count(const struct gw_nodes *t);
struct gw_node_info *gw_nodes_at(struct gw_nodes *t, size_t i);

/* The verdict as the error a CoAP answer maps (gw_coap.h): STORED and
 * ADMIT are FERRY_OK, CONFLICT FERRY_E_CONFLICT (4.09), SEQ_RANGE
 * FERRY_E_SEQ_RANGE (5.03), RATE and FULL FERRY_E_BUSY (5.03). */
enum ferry_err gw_nodes_err(enum gw_nodes_verdict v);

#endif
