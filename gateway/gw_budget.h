/* The link budget of the gateway's CoAP server: how many bytes per second it
 * may send to its nodes in total, shared fairly between them. Pure: no I/O,
 * no clock (time is an argument, milliseconds of one monotonic clock); what
 * to send when comes back as data.
 *
 * Model. Two kinds of token bucket, each as deep as burst_ms of its rate
 * (and never less than one datagram of GW_BUDGET_DATAGRAM_MAX bytes):
 *   - the link's, filled at link_rate: nothing is sent without its tokens,
 *     so over any span the gateway sends at most link_rate x span plus one
 *     bucket;
 *   - one per node (a requester, gw_pacer.h), filled at the node's share:
 *     link_rate divided by the nodes active now (asked within active_ms, or
 *     with answers queued), and at most node_rate when that is set. A node
 *     sends on its own tokens, so a node with a big window of requests gets
 *     its share and no more while others want theirs.
 * A node may borrow beyond its own tokens (its bucket going into debt, at
 * most one bucket deep) while the link's bucket is at least half full: the
 * link is idle enough that nobody's share is taken. So capacity a light
 * node leaves unused goes to the others.
 *
 * gw_budget_ask() for every answer of `bytes`:
 *   - GW_BUDGET_SEND: send it now; the tokens are taken.
 *   - GW_BUDGET_QUEUED (only when the caller may wait, a NON request, D2):
 *     hold the answer; gw_budget_poll() says when to send it, in round-robin
 *     order between nodes, FIFO within one, or that it waited max_delay_ms
 *     and is dropped (the node retransmits on its own timer, and a drop reads
 *     as congestion to it). At most max_queued in all, max_queued_per_node
 *     per node.
 *   - GW_BUDGET_REFUSED: no tokens and the caller may not wait (a CON
 *     request, answered 5.03), or the queues are full; *retry_ms says when
 *     the tokens should be there.
 * The caller polls at gw_budget_next_ms() and cancels the tickets of answers
 * it no longer holds (gw_budget_cancel()).
 *
 * Cost: ask is a hash lookup and O(1) list work; poll and next_ms walk the
 * nodes with queued answers (at most max_queued). Not thread-safe. */
#ifndef FERRY_GW_BUDGET_H
#define FERRY_GW_BUDGET_H

#include "ferry_err.h"
#include "gw_idmap.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest datagram counted; buckets are never shallower. */
#define GW_BUDGET_DATAGRAM_MAX      1280
#define GW_BUDGET_MIN_RATE          1024
#define GW_BUDGET_MAX_RATE          (UINT64_C(1) << 32)
#define GW_BUDGET_DEFAULT_BURST_MS  200
#define GW_BUDGET_DEFAULT_ACTIVE_MS 2000
#define GW_BUDGET_DEFAULT_DELAY_MS  4000
#define GW_BUDGET_DEFAULT_QUEUED    1024
#define GW_BUDGET_DEFAULT_PER_NODE  64
#define GW_BUDGET_DEFAULT_NODES     4096
#define GW_BUDGET_MAX_QUEUED        65536
/* gw_budget_next_ms() when nothing is queued. */
#define GW_BUDGET_NEVER UINT64_MAX

struct gw_budget_opts {
    uint64_t link_rate;           /* bytes/s, GW_BUDGET_MIN_RATE..GW_BUDGET_MAX_RATE */
    uint64_t node_rate;           /* bytes/s cap for one node; 0: none (else >= MIN_RATE) */
    uint32_t burst_ms;            /* 0: GW_BUDGET_DEFAULT_BURST_MS */
    uint32_t active_ms;           /* 0: GW_BUDGET_DEFAULT_ACTIVE_MS */
    uint32_t max_delay_ms;        /* 0: GW_BUDGET_DEFAULT_DELAY_MS */
    uint32_t max_queued;          /* 0: GW_BUDGET_DEFAULT_QUEUED; at most GW_BUDGET_MAX_QUEUED */
    uint32_t max_queued_per_node; /* 0: GW_BUDGET_DEFAULT_PER_NODE; at most max_queued */
    uint32_t max_nodes;           /* 0: GW_BUDGET_DEFAULT_NODES; at most GW_IDMAP_MAX */
};

enum gw_budget_verdict {
    GW_BUDGET_SEND,
    GW_BUDGET_QUEUED,
    GW_BUDGET_REFUSED,
};

/* A ticket names one queued answer. Its low 32 bits (its slot) are below
 * max_queued and unique among the answers queued at one time, so a caller
 * may keep what it holds for each in an array of max_queued entries. */
struct gw_budget_event {
    uint64_t ticket;
    bool send; /* true: send the answer now; false: it waited too long, drop it */
};

struct gw_budget;

/* FERRY_E_INVALID_ARG naming the field when an option is out of range,
 * FERRY_E_NOMEM. Free with gw_budget_free(). */
enum ferry_err gw_budget_new(const struct gw_budget_opts *o, struct gw_budget **out,
                             struct ferry_diag *d) FERRY_MUST_CHECK;
void gw_budget_free(struct gw_budget *b); /* NULL is fine */

/* An answer of `bytes` (1..GW_BUDGET_DATAGRAM_MAX; more is counted as that)
 * to node `who` (a valid gw_idmap identity) at now_ms (see Model). *ticket is
 * set for GW_BUDGET_QUEUED, *retry_ms (>= 1) for GW_BUDGET_REFUSED. An
 * invalid identity is refused. When the node table is full, the node heard
 * from least recently without queued answers is forgotten; if every node
 * has some, the new one is refused. */
enum gw_budget_verdict gw_budget_ask(struct gw_budget *b, const char *who, uint32_t bytes,
                                     bool may_wait, uint64_t now_ms, uint64_t *ticket,
                                     uint64_t *retry_ms);

/* What is due at now_ms, at most max events, in the order to act on them
 * (see Model). Returns how many it wrote. */
size_t gw_budget_poll(struct gw_budget *b, uint64_t now_ms, struct gw_budget_event *ev, size_t max);

/* When gw_budget_poll() will next have something to say, or GW_BUDGET_NEVER
 * when nothing is queued. */
uint64_t gw_budget_next_ms(const struct gw_budget *b, uint64_t now_ms);

/* Forgets a queued answer (its session went). Unknown tickets are ignored. */
void gw_budget_cancel(struct gw_budget *b, uint64_t ticket);

/* Answers queued now; nodes remembered now; bytes let through so far. */
size_t gw_budget_queued(const struct gw_budget *b);
size_t gw_budget_nodes(const struct gw_budget *b);
uint64_t gw_budget_sent_bytes(const struct gw_budget *b);

#endif
