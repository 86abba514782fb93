/* The gateway's CoAP server for its edge nodes (libcoap 4.3.1), decoupled
 * from the rest of the gateway by hooks. proto/PROTOCOL.md, "CoAP
 * resources", is the contract towards the nodes:
 *
 *   ferry/manifest/<product>  GET, Observe. The signed envelope offered for
 *       that product line to the node asking (hooks.manifest; an observer's
 *       notification asks again for that observer), content-format 50, Max-Age
 *       manifest_max_age_s, ETag from the envelope's SHA-256. While there
 *       is none, an empty 2.05 with Max-Age, so observers stay registered
 *       (4.04 instead for products beyond GW_COAP_MAX_WAITING_PRODUCTS).
 *   ferry/artifact/<sha256-hex> GET, Block2. The artifact (hooks.artifact
 *       decides on every request, hooks.artifact_map gives the bytes),
 *       content-format 42, ETag = the first 8 bytes of the SHA-256, Size2 =
 *       its length, Block2 as asked (block 0 of 1024 bytes when not asked;
 *       no Block2 at all when that is the whole artifact). Every block is
 *       served by this server, one per request, copied from the caller's
 *       memory into the datagram; libcoap keeps no state per transfer. 5.03
 *       + Max-Age while it is still being fetched, or while the requester
 *       must wait for one of the max_downloads slots (gw_pacer.h: one slot
 *       per node, or per host for anonymous clients; a download starts on
 *       any block request and ends once every byte was served; while
 *       others wait, turns of turn_ms); 4.03 when the hooks withhold it
 *       from this node; 4.04 if unknown.
 *       Link budget (opts.link_rate, gw_budget.h): every block's datagram
 *       is counted (its payload and GW_COAP_BLOCK_OVERHEAD), the total and
 *       each node's fair share are kept. Beyond them, the answer to a NON
 *       block request waits in a queue and goes out as a NON 2.05 with the
 *       request's token when the budget allows (or is dropped after
 *       GW_BUDGET_DEFAULT_DELAY_MS: the node asks again on its own timer); a
 *       CON block request is never answered late (libcoap's own Block2
 *       client breaks on separate answers) and gets 5.03 with a Max-Age of
 *       the seconds until its share allows another block.
 *   ferry/meta/<product>      GET, Observe, with hooks.meta: the trust metadata
 *       bundle for a node holding root version r (query "r=<n>"), content-
 *       format 50, Max-Age manifest_max_age_s, ETag from the bundle
 *       (gw_coap_meta.c has the rules); observers are counted
 *       and capped with the manifest's.
 *   ferry/status               POST a status record, JSON (50) or CBOR (60),
 *       at most FERRY_STATUS_MAX_BYTES (Block1 is reassembled up to that).
 *       2.04 only once hooks.status stored it (see there for the others).
 *   ferry/config               POST a node's configuration report, JSON (50),
 *       in one datagram (hooks.config), answered as a status record is.
 *
 * .well-known/core lists the status and config resources and every
 * manifest, meta and artifact resource that exists, with rt="ferry.manifest"
 * / "ferry.meta" / "ferry.artifact" / "ferry.status" / "ferry.config" (and
 * sz= for artifacts). Manifest and artifact resources
 * are created by gw_coap_manifest_changed() and gw_coap_artifact_added(),
 * or on the first GET: a manifest resource for any product (up to
 * GW_COAP_MAX_WAITING_PRODUCTS without a release), an artifact resource
 * only for a digest the hooks know.
 *
 * Transport. Plain CoAP over UDP, or, when opts.psk_file is set, CoAP over
 * DTLS with a pre-shared key per node (gw_psk.h): the node's PSK identity is
 * its node id, an unknown identity or a wrong key fails the handshake, and
 * hooks.status learns the identity. One server speaks one of the two: DTLS
 * and plain CoAP cannot share a port, so a gateway serving both would run
 * two servers on two ports.
 *
 * Who is asking (struct gw_coap_requester), worked out once per request
 * before anything else and handed to the hooks and to admission:
 *   - over DTLS, the session's PSK identity (authenticated); a request whose
 *     n= query names another node is refused with 4.03;
 *   - over plain CoAP, the node the request names in its n=<node-id> query
 *     (ferry_coapglue.h): as strong as the link, anyone may claim any name;
 *   - else an anonymous client, named by its address and port (a stock
 *     coap-client), which is served like any other.
 * An n= that is not a node identifier, or given twice, is 4.00.
 *
 * Event loop. Everything runs on the loop thread: the server registers
 * libcoap's epoll fd with the loop (its timers, retransmissions and the
 * expiry of manifest bodies fire through that fd) and calls the hooks from
 * inside libcoap's request handling. Hooks must therefore not block and must
 * not call gw_coap_free(). They may call gw_coap_manifest_changed(),
 * gw_coap_artifact_added() and gw_coap_artifact_removed(): deletions and
 * notifications are deferred to the loop, right after the current request. */
#ifndef FERRY_GW_COAP_H
#define FERRY_GW_COAP_H

#include "ferry_config_report.h"
#include "ferry_err.h"
#include "ferry_loop.h"
#include "ferry_sha256.h"
#include "ferry_status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_COAP_DEFAULT_MANIFEST_MAX_AGE_S 60
#define GW_COAP_DEFAULT_BUSY_MAX_AGE_S     10
#define GW_COAP_DEFAULT_FETCHING_MAX_AGE_S 30
/* Manifest resources the gateway creates for products it has no release for,
 * because a node asked (so that node's observation can stay registered). */
#define GW_COAP_MAX_WAITING_PRODUCTS 64
/* UDP sessions libcoap keeps for idle nodes; beyond that it drops the oldest. */
#define GW_COAP_MAX_IDLE_SESSIONS 1000
/* Observe registrations (on manifests) the server lets libcoap keep: in all
 * (opts.max_observers), per session, per node and per host of anonymous
 * clients. A registration beyond a session's or the total's cap gets 4.29
 * Too Many Requests with Max-Age (RFC 8516), which ends it: that node polls.
 * A node's registration beyond its cap ends its oldest one from another
 * session (a node that restarted leaves one behind), whose session is
 * disconnected: libcoap keeps a session with observers forever otherwise. */
#define GW_COAP_DEFAULT_MAX_OBSERVERS   4096
#define GW_COAP_OBSERVERS_PER_SESSION   2
#define GW_COAP_OBSERVERS_PER_NODE      2
#define GW_COAP_OBSERVERS_PER_ANON_HOST 64
/* A manifest resource made for a product nobody released (a node asked)
 * goes once it has had no observer and no request for this long. */
#define GW_COAP_DEFAULT_WAITING_LINGER_MS (10 * 60 * 1000)
/* What a block's datagram costs the link budget beyond its payload: IPv4 and
 * UDP headers (28), the CoAP header, token and options (about 36). */
#define GW_COAP_BLOCK_OVERHEAD 64

/* What a node is offered on ferry/manifest/<product>. */
struct gw_coap_offer {
    const uint8_t *env; /* NULL: nothing (an empty 2.05); valid during the call */
    size_t len;
    uint32_t hold_s; /* > 0: sent as Ferry-Hold (PROTOCOL.md): do not install yet */
};

enum gw_coap_admit {
    GW_COAP_ADMIT_SERVE,
    GW_COAP_ADMIT_STALL,  /* 5.03 with the Max-Age given */
    GW_COAP_ADMIT_REFUSE, /* 4.03 with the reason given */
};

enum gw_artifact_state {
    GW_ARTIFACT_UNKNOWN = 0, /* not held and not being fetched: 4.04 */
    GW_ARTIFACT_FETCHING,    /* on its way from the cloud: 5.03 + Max-Age */
    GW_ARTIFACT_COMPLETE,    /* complete and verified: served */
    GW_ARTIFACT_WITHHELD,    /* held, but not offered to this node now: 4.03 */
};

enum gw_coap_requester_kind {
    GW_COAP_REQUESTER_PSK,       /* id: the DTLS session's PSK identity, authenticated */
    GW_COAP_REQUESTER_DECLARED,  /* id: the n= query over plain CoAP, not authenticated */
    GW_COAP_REQUESTER_ANONYMOUS, /* id: the peer's "address:port" ("[v6]:port") */
};

/* Longest id: a node id (FERRY_ID_MAX) or an anonymous address and port. */
#define GW_COAP_REQUESTER_MAX 64

/* Who sent a request. Node ids (PSK, DECLARED) are ferry_id_valid(); an
 * anonymous id contains a ':' and so never equals a node id. */
/* Uri-Query items a hook sees, at most; further ones are ignored. */
#define GW_COAP_QUERY_MAX 32

struct gw_coap_requester {
    enum gw_coap_requester_kind kind;
    char id[GW_COAP_REQUESTER_MAX + 1];
    /* The request's Uri-Query items (n=, and what a node says of itself for
     * a rollout's selection: hw=, rev=, tag=; PROTOCOL.md), query_len[i]
     * bytes each, pointing into the request: valid during the hook call. */
    const char *query[GW_COAP_QUERY_MAX];
    size_t query_len[GW_COAP_QUERY_MAX];
    size_t nquery;
};

struct gw_coap_hooks {
    void *arg; /* passed to every hook */

    /* The signed envelope offered for product (a valid identifier) to `who`,
     * or NULL if there is none. Asked on every GET and for every observer's
     * notification. The bytes need only stay valid during the call (the
     * server copies them); at most FERRY_ENVELOPE_MAX_BYTES. */
    const uint8_t *(*manifest)(void *arg, const char *product, const struct gw_coap_requester *who,
                               size_t *len);

    /* What the gateway offers `who` of artifact sha256, asked on every block
     * request before admission, so it must be cheap (no I/O):
     * GW_ARTIFACT_COMPLETE serves it, GW_ARTIFACT_WITHHELD refuses it to this
     * node (4.03), the others as their names say. */
    enum gw_artifact_state (*artifact)(void *arg, const uint8_t sha256[FERRY_SHA256_LEN],
                                       const struct gw_coap_requester *who);

    /* The bytes of an artifact artifact() called COMPLETE: sets *data and
     * *len to the whole artifact and *ref to anything the caller needs to
     * find the memory again; the memory must stay valid and unchanged until
     * artifact_release(arg, ref), which the server calls exactly once for
     * every successful call. The server keeps one mapping per artifact and
     * serves every block and node from it: it maps again only once it
     * released it, which it does when idle_ms pass without a request for
     * that artifact, on gw_coap_artifact_removed() and in gw_coap_free().
     * An error (named in d) is answered 5.00 and sets nothing. */
    enum ferry_err (*artifact_map)(void *arg, const uint8_t sha256[FERRY_SHA256_LEN],
                                   const uint8_t **data, size_t *len, void **ref,
                                   struct ferry_diag *d);
    void (*artifact_release)(void *arg, void *ref);

    /* A status record from a node, or relayed by a child gateway in a
     * cascade, decoded and schema-checked (its gateway field is whatever
     * the sender wrote: "" from a node, the record's path from a child).
     * who is the requester (a PSK identity, a declared n= or anonymous);
     * the hook should refuse a record whose sender may not speak for it
     * (over DTLS a node's record from another identity, a relayed record
     * from anyone but its last hop). The answer to
     * the node follows the return value:
     *   FERRY_OK                          2.04 Changed: only once the record
     *                                     is stored durably (or was already);
     *   FERRY_E_NOSPACE, FERRY_E_BUSY,
     *   FERRY_E_SEQ_RANGE                 5.03 + Max-Age: retry later;
     *   FERRY_E_PROTOCOL                  4.03 Forbidden (not this node's);
     *   FERRY_E_CONFLICT                  4.09 Conflict (another record has
     *                                     this node and seq: renumber);
     *   FERRY_E_MALFORMED, FERRY_E_INVALID_ARG, FERRY_E_TOO_LARGE
     *                                     4.00 Bad Request;
     *   anything else                     5.00.
     * A message the hook writes into d becomes the diagnostic payload of an
     * error answer. */
    enum ferry_err (*status)(void *arg, const struct ferry_status *st,
                             const struct gw_coap_requester *who, struct ferry_diag *d);

    /* Optional (NULL: no ferry/meta resource, gw_coap_meta.c): the trust
     * metadata bundle of product for a node holding root version `have`,
     * in a new buffer the server frees; *known says whether the gateway
     * holds a timestamp of the product. */
    enum ferry_err (*meta)(void *arg, const char *product, uint64_t have, uint8_t **out,
                           size_t *len, bool *known);

    /* A node's configuration report (POST ferry/config, JSON, decoded and
     * checked; its gateway field as the node sent it). Answered as status
     * records are: FERRY_OK 2.04 once it is on its way upstream. May be
     * NULL: the resource then answers 5.03. */
    enum ferry_err (*config)(void *arg, const struct ferry_config_report *r,
                             const char *psk_identity, struct ferry_diag *d);

    /* Optional, per node (a rollout's policy). When set, manifest_for
     * answers every GET and notification of ferry/manifest/<product> in
     * place of manifest (which still says whether a product has a release
     * at all), and may hold the node back (Ferry-Hold); admit is asked
     * before every artifact block is served, after artifact(). Both run
     * once per request, inside libcoap's handling. */
    void (*manifest_for)(void *arg, const char *product, const struct gw_coap_requester *who,
                         struct gw_coap_offer *out);
    enum gw_coap_admit (*admit)(void *arg, const uint8_t sha256[FERRY_SHA256_LEN],
                                const struct gw_coap_requester *who, uint32_t *max_age_s, char *why,
                                size_t why_cap);
};

struct gw_coap_opts {
    const char *addr;            /* numeric IPv4 or IPv6 address to listen on ("::", "0.0.0.0") */
    uint16_t port;               /* 0: any free port (see gw_coap_port()) */
    uint32_t max_downloads;      /* artifact transfers at once, 1..GW_PACER_MAX_TRANSFERS */
    const char *psk_file;        /* NULL: plain CoAP; else CoAP over DTLS with these keys */
    uint64_t idle_ms;            /* pacer idle timeout (gw_pacer.h), also how long an
                                    artifact's mapping is kept unused; 0: its default */
    uint64_t turn_ms;            /* a download's turn while others wait (gw_pacer.h);
                                    0: its default, 4 x idle_ms */
    uint32_t manifest_max_age_s; /* 0: GW_COAP_DEFAULT_MANIFEST_MAX_AGE_S */
    uint32_t busy_max_age_s;     /* 5.03 when at max_downloads; 0: default; jittered */
    uint32_t fetching_max_age_s; /* 5.03 while fetching; 0: default; jittered */
    uint64_t link_rate;          /* bytes/s the server may send its nodes' blocks in all
                                    (gw_budget.h); 0: no budget */
    uint64_t node_rate;          /* bytes/s for one node at most; 0: its fair share only */
    uint32_t max_observers;      /* 0: GW_COAP_DEFAULT_MAX_OBSERVERS */
    uint64_t waiting_linger_ms;  /* 0: GW_COAP_DEFAULT_WAITING_LINGER_MS */
};

struct gw_coap;

/* Starts listening and registers with the loop. Every hook must be set;
 * opts and hooks are copied (the strings are not needed afterwards).
 * Errors: FERRY_E_INVALID_ARG (a bad option, an address that is not
 * numeric, DTLS asked for but this libcoap has no DTLS), the PSK file's
 * errors (gw_psk_load()), FERRY_E_IO when the port cannot be bound,
 * FERRY_E_NOMEM. Free with gw_coap_free(). */
enum ferry_err gw_coap_new(struct ferry_loop *loop, const struct gw_coap_opts *opts,
                           const struct gw_coap_hooks *hooks, struct gw_coap **out,
                           struct ferry_diag *d) FERRY_MUST_CHECK;

/* Stops serving: drops every session, releases every artifact answer it
 * holds (artifact_release() runs for each before this returns) and
 * unregisters from the loop. Call it before freeing whatever the hooks use
 * and never from a hook. NULL is fine. */
void gw_coap_free(struct gw_coap *s);

/* The UDP port the server listens on. */
uint16_t gw_coap_port(const struct gw_coap *s);

/* A new envelope for product is available through hooks.manifest (or it
 * was withdrawn): creates the manifest resource if needed and notifies its
 * observers. FERRY_E_INVALID_ARG if product is not an identifier. */
enum ferry_err gw_coap_manifest_changed(struct gw_coap *s, const char *product) FERRY_MUST_CHECK;

/* The trust metadata of product (NULL: of every product) changed: notifies
 * the observers of ferry/meta/<product>. */
void gw_coap_meta_changed(struct gw_coap *s, const char *product);

/* An artifact became complete: creates its resource so .well-known/core
 * lists it (sz = size). Adding one that exists changes nothing. */
enum ferry_err gw_coap_artifact_added(struct gw_coap *s, const uint8_t sha256[FERRY_SHA256_LEN],
                                      uint64_t size) FERRY_MUST_CHECK;

/* The artifact was evicted: its resource goes and its answer is released
 * (right after the current request when called from a hook). Later requests,
 * also those of nodes in the middle of that download, are answered from the
 * hooks again. Unknown digests are ignored. */
void gw_coap_artifact_removed(struct gw_coap *s, const uint8_t sha256[FERRY_SHA256_LEN]);

/* One pass of libcoap now, as the loop runs when libcoap's fd is readable:
 * for a caller that drives the server without turning the loop (the fuzz
 * harness). Never from a hook. */
void gw_coap_process_now(struct gw_coap *s);

/* Download slots held now (gw_pacer_active()). */
size_t gw_coap_active_downloads(const struct gw_coap *s);

/* What the server holds now, for tests, logs and benchmarks. */
struct gw_coap_stats {
    size_t downloads;        /* download slots held */
    size_t waiting;          /* requesters queued for a slot */
    size_t observers;        /* Observe registrations it counts */
    size_t waiting_products; /* manifest resources made for products with no release */
    size_t partial_records;  /* status records half put together */
    size_t queued_answers;   /* answers waiting for the link budget */
};
void gw_coap_get_stats(const struct gw_coap *s, struct gw_coap_stats *out);

#endif
