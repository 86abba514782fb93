/* ferry-edge's CoAP client (libcoap 4.3.1): the three exchanges of
 * PROTOCOL.md, "CoAP resources", with the gateway.
 *
 *   Manifest  GET ferry/manifest/<product>?n=<node> with Observe, sent again
 *             every poll period +-20% (same token, so the gateway replaces
 *             the registration instead of adding one, and a gateway that
 *             restarted and lost it gets it back). An envelope too long for
 *             one datagram is fetched block by block (Block2, same ETag) up
 *             to FERRY_ENVELOPE_MAX_BYTES and handed over whole. An empty 2.05
 *             (observation kept) or 4.04 means there is no release in the
 *             product line. Every request carries the node's description
 *             as Uri-Query items (opts.manifest_query: n=, hw=, rev=, tag=),
 *             and every answer's Ferry-Hold option goes to hooks.hold.
 *   Artifact  GET ferry/artifact/<sha256-hex>?n=<node>, non-confirmable,
 *             with an explicit Block2 option for one block and a token of
 *             its own that carries the caller's request id: the caller
 *             (edge_fsm.h, ferry_blockwin.h) keeps several in flight, times
 *             and retransmits them itself, and gets every answer, the
 *             duplicated and late ones too, with the request id it named.
 *             libcoap's own block-wise client (COAP_BLOCK_USE_LIBCOAP) is
 *             never enabled: it aborts any transfer 93 s after it starts
 *             (field notes), and driving it here bounds memory by one block
 *             and lets a download resume at any offset.
 *   Status    POST ferry/status, one record as CBOR (content-format 60).
 *   Meta      GET ferry/meta/<product>?r=<root version held> with Observe,
 *             sent again every poll period and on edge_coap_meta_now(); the
 *             trust metadata bundle (ferry_meta.h), fetched block by block
 *             like a long envelope, up to FERRY_META_MAX_BYTES, and handed
 *             over whole. A new root version is a new query, so a new token.
 *
 * The node names itself (n=<node id>, PROTOCOL.md) in the query of its
 * manifest and artifact requests, the same on every one, so a gateway can
 * tell its nodes apart over plain CoAP; a status record names its node
 * itself. Manifest and status requests are confirmable (libcoap
 * retransmits them: ACK_TIMEOUT ack_timeout_ms, 2 s by default as in RFC
 * 7252, MAX_RETRANSMIT 3), and each also has its own deadline
 * (request_timeout_ms) after which it counts as unanswered. Block requests
 * are not: libcoap's NSTART (1) holds back confirmable requests only, so a
 * status POST never waits behind blocks, and blocks never wait behind a
 * lost status POST. One status request is out at a time; a new one
 * replaces the old, whose answer is then ignored (tokens are matched).
 * Plain CoAP, or CoAP over DTLS with a pre-shared key (coaps://, identity
 * = the node id) when this libcoap has DTLS.
 *
 * Silence. When requests have been out for EDGE_COAP_SILENCE_ACKS times
 * ACK_TIMEOUT (12 s by default) and no datagram of any kind came back from
 * the gateway meanwhile, the session is given up and a new one opened: a
 * new socket (so a new source port) and, over DTLS, a new handshake with
 * the same identity and key. That is what gets a node through a NAT that
 * renewed its mapping: the gateway keys a DTLS session by the peer's
 * address, libcoap 4.3.1 has no DTLS Connection ID, and records from the
 * new port are dropped there. Over the new session the manifest and
 * metadata registrations are sent again (the gateway ends the old
 * session's when the same node registers again), an unanswered status or
 * configuration report goes to its hook as unanswered (code 0) so the
 * caller sends it again, and once the new session is up the new_session
 * hook tells the caller to send its block window again at once, so the
 * download carries on where it stood without waiting for the window's
 * backed-off timer. Over DTLS "up" means the handshake completed: libcoap
 * 4.3.1 queues whatever is sent on a session still handshaking in one
 * queue, and when the handshake ends sends from it only up to the first
 * confirmable request NSTART holds back (the metadata registration, behind
 * the manifest's), so a block queued behind that would wait for the
 * manifest registration's ACK (a round trip, or its retransmissions). A
 * block sent once the session is up goes at once: NSTART holds back
 * confirmable requests only. A gateway that is simply down costs one new session
 * per silence period, nothing more.
 *
 * Threading: everything runs on the loop thread. libcoap's epoll fd is
 * registered with the loop; the hooks are called from inside libcoap's
 * receive processing and may call edge_coap_get_block() and
 * edge_coap_post_status(), but not edge_coap_free(). */
#ifndef FERRY_EDGE_COAP_H
#define FERRY_EDGE_COAP_H

#include "ferry_err.h"
#include "ferry_loop.h"
#include "ferry_sha256.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EDGE_COAP_DEFAULT_TIMEOUT_MS 60000
/* RFC 7252's ACK_TIMEOUT. Each datagram lost costs a node this long (up to
 * 1.5 times, the random factor) with one request in flight, so on a lossy
 * link with a short round trip a smaller value speeds a download. libcoap
 * 4.3.1 silently keeps its old value when asked for less than 1 s. */
#define EDGE_COAP_DEFAULT_ACK_TIMEOUT_MS 2000
#define EDGE_COAP_MIN_ACK_TIMEOUT_MS     1000
#define EDGE_COAP_MAX_ACK_TIMEOUT_MS     60000
#define EDGE_COAP_PSK_MAX                64
/* Silence that ends a session, in ACK_TIMEOUTs: a confirmable request's
 * first two retransmissions (at most 1.5 + 3 ACK_TIMEOUTs) and the third's
 * round trip, all unanswered. */
#define EDGE_COAP_SILENCE_ACKS 6

/* One answer, decoded. Pointers are valid during the hook call only. The
 * Block2 option is passed as it came: SZX 7 and any number included. */
struct edge_coap_answer {
    unsigned code; /* class * 100 + detail (205, 404, 503); 0: no answer */
    bool has_max_age;
    uint32_t max_age;
    const uint8_t *etag;
    size_t etag_len; /* 0: no ETag */
    bool has_block;
    uint32_t num;
    unsigned szx;
    bool more;
    bool has_size2;
    uint64_t size2;
    uint32_t hold_s; /* Ferry-Hold, 0 when absent */
    const uint8_t *data;
    size_t len;
};

struct edge_coap_hooks {
    void *arg; /* passed to every hook */
    /* A whole envelope for our product (from a GET or a notification). The
     * same envelope comes again at every poll: the caller de-duplicates. */
    void (*manifest)(void *arg, const uint8_t *env, size_t len);
    /* The gateway offers no release for our product (an empty 2.05, or 4.04). */
    void (*no_manifest)(void *arg);
    /* Before manifest or no_manifest: the answer's Ferry-Hold (0 when it
     * has none). May be NULL. */
    void (*hold)(void *arg, uint32_t seconds);
    /* An answer to the block request with id req (every copy that
     * arrives; code is never 0 here: a request nobody answers just gets no
     * call). */
    void (*block)(void *arg, uint32_t req, const struct edge_coap_answer *a);
    /* The answer to the latest edge_coap_post_status(); 204 means stored. */
    void (*status)(void *arg, const struct edge_coap_answer *a);
    /* Optional (NULL: no Meta exchange): a whole trust metadata bundle. The
     * same bundle comes again at every poll: the caller de-duplicates. */
    void (*meta)(void *arg, const uint8_t *buf, size_t len);
    /* The answer to the latest edge_coap_post_config(); may be NULL. */
    void (*config)(void *arg, const struct edge_coap_answer *a);
    /* A new session replaced one the gateway stopped answering ("Silence")
     * and is up: over DTLS its handshake completed. The registrations have
     * gone out on it; block requests the caller has out were sent on the
     * old one and will never be answered: send them again now (fresh
     * tokens: new request ids). Runs on a turn of the loop of its own, not
     * inside libcoap. May be NULL. */
    void (*new_session)(void *arg);
};

struct edge_coap_opts {
    const char *uri;     /* coap://HOST:PORT or coaps://HOST:PORT (HOST may be a name) */
    const char *product; /* for the manifest path */
    const char *node_id; /* n=<node_id> in requests; the PSK identity over DTLS */
    /* Uri-Query items of every manifest request (copied), in place of the
     * plain n=: the node's description, proto/ferry_nodeinfo.h. */
    const char *const *manifest_query;
    size_t nmanifest_query;
    const uint8_t *psk; /* coaps:// only: 16..EDGE_COAP_PSK_MAX bytes */
    size_t psk_len;
    uint64_t poll_ms;            /* manifest poll period (jittered +-20%), >= 1 */
    uint64_t request_timeout_ms; /* 0: EDGE_COAP_DEFAULT_TIMEOUT_MS */
    uint64_t ack_timeout_ms;     /* CoAP ACK_TIMEOUT; 0: EDGE_COAP_DEFAULT_ACK_TIMEOUT_MS */
    uint64_t meta_have;          /* root version held, for the first Meta GET */
    uint64_t seed;               /* poll jitter */
};

struct edge_coap;

/* Resolves the gateway, creates the session, registers with the loop and
 * sends the first manifest GET from the loop right away. Errors:
 * FERRY_E_INVALID_ARG (a URI that is not coap:// or coaps:// with a host,
 * coaps:// without a key or without DTLS in this libcoap), FERRY_E_NOT_FOUND
 * (the host does not resolve), FERRY_E_IO, FERRY_E_NOMEM. opts and hooks are
 * copied. */
enum ferry_err edge_coap_new(struct ferry_loop *loop, const struct edge_coap_opts *opts,
                             const struct edge_coap_hooks *hooks, struct edge_coap **out,
                             struct ferry_diag *d) FERRY_MUST_CHECK;

/* Cancels what is out (no hook runs any more) and unregisters. NULL is fine. */
void edge_coap_free(struct edge_coap *c);

/* Sends one non-confirmable request for `size` bytes (16..1024, a power of
 * two) of artifact sha256 at offset off (a multiple of size), whose answers
 * reach the block hook with `req`. Nothing is retransmitted or timed here.
 * Between the opening of a new session and its new_session hook nothing is
 * sent (FERRY_OK): the hook is the caller's cue to ask again.
 * FERRY_E_INVALID_ARG for a block Block2 cannot name, FERRY_E_IO when it
 * cannot be sent. */
enum ferry_err edge_coap_get_block(struct edge_coap *c, const uint8_t sha256[FERRY_SHA256_LEN],
                                   uint64_t off, uint32_t size, uint32_t req,
                                   struct ferry_diag *d) FERRY_MUST_CHECK;

/* Posts one CBOR status record (at most FERRY_STATUS_MAX_BYTES). FERRY_E_IO
 * when it cannot be sent; the status hook does not run then. */
enum ferry_err edge_coap_post_status(struct edge_coap *c, const uint8_t *cbor, size_t len,
                                     struct ferry_diag *d) FERRY_MUST_CHECK;

/* Posts one configuration report (JSON, at most
 * FERRY_CONFIG_REPORT_MAX_BYTES), confirmable, to ferry/config. As
 * edge_coap_post_status(), with the config hook. */
enum ferry_err edge_coap_post_config(struct edge_coap *c, const char *json, size_t len,
                                     struct ferry_diag *d) FERRY_MUST_CHECK;

/* Sends the manifest GET now instead of at the next poll. */
void edge_coap_poll_now(struct edge_coap *c);

/* Sends the Meta GET (and registration) now, for a node that holds root
 * version `have` from now on. Nothing without a meta hook. */
void edge_coap_meta_now(struct edge_coap *c, uint64_t have);

#endif
