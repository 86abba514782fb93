/* The gateway's CoAP server for its edge nodes (libcoap 4.3.1), decoupled
 * from the rest of the gateway by hooks. proto/PROTOCOL.md, "CoAP
 * resources", is the contract towards the nodes:
 *
 *   ferry/manifest/<product>  GET, Observe. The signed envelope offered for
 *       that product line (hooks.manifest), content-format 50, Max-Age
 *       manifest_max_age_s, ETag from the envelope's SHA-256. While there
 *       is none, an empty 2.05 with Max-Age, so observers stay registered
 *       (4.04 instead for products beyond GW_COAP_MAX_WAITING_PRODUCTS).
 *   ferry/artifact/<sha256-hex> GET, Block2. The artifact (hooks.artifact),
 *       content-format 42, ETag = the first 8 bytes of the SHA-256, Size2 =
 *       its length, Block2 as asked (block 0 of 1024 bytes when not asked;
 *       no Block2 at all when that is the whole artifact). Every block is
 *       served by this server, one per request, copied from the caller's
 *       memory into the datagram; libcoap keeps no state per transfer. 5.03
 *       + Max-Age while it is still being fetched or while max_downloads
 *       transfers run (gw_pacer.h: a transfer starts on its first block
 *       request and ends when its last block is served); 4.04 if unknown.
 *   ferry/status               POST a status record, JSON (50) or CBOR (60),
 *       at most FERRY_STATUS_MAX_BYTES (Block1 is reassembled up to that).
 *       2.04 only once hooks.status stored it (see there for the others).
 *
 * .well-known/core lists the status resource and every manifest and artifact
 * resource that exists, with rt="ferry.manifest" / "ferry.artifact" /
 * "ferry.status" (and sz= for artifacts). Manifest and artifact resources
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
 * Event loop. Everything runs on the loop thread: the server registers
 * libcoap's epoll fd with the loop (its timers, retransmissions and the
 * expiry of manifest bodies fire through that fd) and calls the hooks from
 * inside libcoap's request handling. Hooks must therefore not block and must
 * not call gw_coap_free(). They may call gw_coap_manifest_changed(),
 * gw_coap_artifact_added() and gw_coap_artifact_removed(): deletions and
 * notifications are deferred to the loop, right after the current request. */
#ifndef FERRY_GW_COAP_H
#define FERRY_GW_COAP_H

#include "ferry_err.h"
#include "ferry_loop.h"
#include "ferry_sha256.h"
#include "ferry_status.h"

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

/* Who asks (DECISIONS D1), as the server tells it for one request: over DTLS
 * the PSK identity (authenticated; an n= query that names another node is
 * refused with 4.03 before any hook runs); over plain CoAP the node id the
 * request declares in its n= query, which is only as strong as the link;
 * without either, nobody (an anonymous client, still served). */
struct gw_coap_peer {
    const char *node; /* NULL: anonymous */
    bool authenticated;
    const char *const *query; /* the Uri-Query items, query_len[i] bytes each */
    const size_t *query_len;
    size_t nquery;
};

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
};

struct gw_coap_hooks {
    void *arg; /* passed to every hook */

    /* The signed envelope offered for product (a valid identifier), or NULL
     * if there is none. The bytes need only stay valid during the call (the
     * server copies them); at most FERRY_ENVELOPE_MAX_BYTES. */
    const uint8_t *(*manifest)(void *arg, const char *product, size_t *len);

    /* What the gateway has of artifact sha256. On GW_ARTIFACT_COMPLETE it
     * sets *data and *len to the whole artifact and *ref to anything the
     * caller needs to find the memory again; the memory must stay valid and
     * unchanged until artifact_release(arg, ref), which the server calls
     * exactly once for every COMPLETE answer. The server keeps one answer
     * per artifact and serves every block and node from it: it asks again
     * only once it released it, which it does when idle_ms pass without a
     * request for that artifact, on gw_coap_artifact_removed() and in
     * gw_coap_free(). Other answers set nothing. */
    enum gw_artifact_state (*artifact)(void *arg, const uint8_t sha256[FERRY_SHA256_LEN],
                                       const uint8_t **data, size_t *len, void **ref);
    void (*artifact_release)(void *arg, void *ref);

    /* A status record from a node, decoded and schema-checked (its gateway
     * field is whatever the node sent, usually ""). psk_identity is the
     * node id the DTLS session authenticated, or NULL over plain CoAP; the
     * hook should refuse a record whose node differs from it. The answer to
     * the node follows the return value:
     *   FERRY_OK                          2.04 Changed: only once the record
     *                                     is stored durably (or was already);
     *   FERRY_E_NOSPACE, FERRY_E_BUSY     5.03 + Max-Age: retry later;
     *   FERRY_E_PROTOCOL                  4.03 Forbidden (not this node's);
     *   FERRY_E_MALFORMED, FERRY_E_INVALID_ARG, FERRY_E_TOO_LARGE
     *                                     4.00 Bad Request;
     *   anything else                     5.00.
     * A message the hook writes into d becomes the diagnostic payload of an
     * error answer. */
    enum ferry_err (*status)(void *arg, const struct ferry_status *st, const char *psk_identity,
                             struct ferry_diag *d);

    /* Optional, per node (a rollout's policy). When set, manifest_for
     * answers every GET and notification of ferry/manifest/<product> in
     * place of manifest (which still says whether a product has a release
     * at all), knowing who asks; admit is asked before every artifact block
     * is served. Both run once per request, inside libcoap's handling. */
    void (*manifest_for)(void *arg, const char *product, const struct gw_coap_peer *who,
                         struct gw_coap_offer *out);
    enum gw_coap_admit (*admit)(void *arg, const uint8_t sha256[FERRY_SHA256_LEN],
                                const struct gw_coap_peer *who, uint32_t *max_age_s, char *why,
                                size_t why_cap);
};

struct gw_coap_opts {
    const char *addr;            /* numeric IPv4 or IPv6 address to listen on ("::", "0.0.0.0") */
    uint16_t port;               /* 0: any free port (see gw_coap_port()) */
    uint32_t max_downloads;      /* artifact transfers at once, 1..GW_PACER_MAX_TRANSFERS */
    const char *psk_file;        /* NULL: plain CoAP; else CoAP over DTLS with these keys */
    uint64_t idle_ms;            /* pacer idle timeout (gw_pacer.h), also how long an
                                    artifact's answer is kept unused; 0: its default */
    uint32_t manifest_max_age_s; /* 0: GW_COAP_DEFAULT_MANIFEST_MAX_AGE_S */
    uint32_t busy_max_age_s;     /* 5.03 when at max_downloads; 0: default; jittered */
    uint32_t fetching_max_age_s; /* 5.03 while fetching; 0: default; jittered */
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

/* An artifact became complete: creates its resource so .well-known/core
 * lists it (sz = size). Adding one that exists changes nothing. */
enum ferry_err gw_coap_artifact_added(struct gw_coap *s, const uint8_t sha256[FERRY_SHA256_LEN],
                                      uint64_t size) FERRY_MUST_CHECK;

/* The artifact was evicted: its resource goes and its answer is released
 * (right after the current request when called from a hook). Later requests,
 * also those of nodes in the middle of that download, are answered from the
 * hooks again. Unknown digests are ignored. */
void gw_coap_artifact_removed(struct gw_coap *s, const uint8_t sha256[FERRY_SHA256_LEN]);

/* Artifact transfers admitted now (gw_pacer_active()). */
size_t gw_coap_active_downloads(const struct gw_coap *s);

#endif
