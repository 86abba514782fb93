/* A gateway's upstream over CoAP: its parent gateway in a cascade
 * (PROTOCOL.md, "Cascaded gateways"). The child is a client of its parent
 * like any node, named by its gateway id (its PSK identity over DTLS, its
 * n= query over plain CoAP), so the parent's admission, link budget and
 * Observe caps treat it as one node.
 *
 * What the gateway's calls become (gw_upstream.h's contract holds):
 *   want(product)        Observe ferry/manifest/<product>?n=<id> and
 *                        ferry/meta/<product>?n=<id>&r=<root held>; every
 *                        poll period both are asked again (an Observe
 *                        re-registration, which also brings back what a
 *                        parent restart lost). An envelope or bundle
 *                        larger than a block comes in blocks (Block2,
 *                        ETag checked). An envelope goes to on_release, a
 *                        bundle's roots (oldest first) to on_root and its
 *                        timestamp to on_timestamp: the gateway verifies
 *                        each as it would from the broker.
 *   publish(STREAM_REQ)  the artifact is fetched from the parent's cache
 *                        in 1 KiB blocks with non-confirmable GETs, a
 *                        window of them driven by ferry_blockwin (CoCoA
 *                        timer, AIMD window), from the requested offset to
 *                        the end; each complete chunk goes to on_chunk as
 *                        the cloud's stream would send it, in order. 5.03
 *                        (the parent still fetches, or admission) holds
 *                        the window for its Max-Age; 4.04 or 4.03 become an
 *                        error chunk, which the fetch treats as the
 *                        cloud's (it asks again later). A request for
 *                        another artifact, or from an offset already
 *                        passed, starts over there.
 *   publish(STATUS)      the batch's records are POSTed to ferry/status
 *                        one at a time (confirmable, JSON, n=<id>); the
 *                        parent answers 2.04 only once its outbox holds
 *                        the record durably. The answers become the ack
 *                        the cloud would send: 2.04 acked; 4.09 refused
 *                        (conflict) and 4.00/4.13 refused (malformed): the
 *                        parent will never take them. 5.03, 4.03, a lost
 *                        exchange or a parent that stops answering end the
 *                        batch: the records done so far are acknowledged,
 *                        the rest stay in the outbox, and nothing more is
 *                        posted before the Max-Age (or the poll period).
 *   publish(others)      node twins, descriptions, configuration reports
 *                        and rollout reports have no resource on a
 *                        parent: taken (FERRY_OK) and dropped.
 * The link is up from the first answer from the parent and down when a
 * confirmable request is given up on (after libcoap's retransmissions) or
 * nothing has answered for three poll periods; every poll sends a request,
 * so it comes back up by itself. While down, publish answers FERRY_E_BUSY
 * and the gateway serves what it holds.
 *
 * Rollout documents are not carried: the parent enforces its rollouts on
 * the child as on any node (the child is offered what the child's id may
 * install), and the child's own nodes are offered the child's releases. */
#ifndef FERRY_GW_UPSTREAM_COAP_H
#define FERRY_GW_UPSTREAM_COAP_H

#include "gw_upstream.h"

#include <stdint.h>

#define GW_UPSTREAM_COAP_PRODUCTS       64 /* product lines observed at most */
#define GW_UPSTREAM_COAP_DEFAULT_POLL_S 60
#define GW_UPSTREAM_COAP_BLOCK          1024 /* bytes per artifact block */

struct gw_upstream_coap_opts {
    const char *uri;        /* coap://HOST:PORT or coaps://HOST:PORT */
    const char *gateway_id; /* this gateway: the n= and PSK identity */
    const char *psk_file;   /* coaps: this gateway's key in hex */
    uint32_t poll_s;        /* 0: GW_UPSTREAM_COAP_DEFAULT_POLL_S */
    /* The root version the gateway holds (the r= of its meta requests). */
    uint64_t (*root_version)(void *arg);
    void *root_arg;
    uint64_t seed; /* tokens and jitter */
};

/* Starts the session (nothing is asked before the first want() or
 * publish()). Strings are copied; h as gw_upstream.h says. */
enum ferry_err gw_upstream_coap_new(struct ferry_loop *loop, const struct gw_upstream_coap_opts *o,
                                    const gw_upstream_handlers *h, struct gw_upstream **out,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
