/* The shared core of the gateway's CoAP server (gw_coap.h), for the files
 * that implement it and for nothing else: the server's state, the helpers
 * every resource uses, and what each resource file offers the core.
 *
 *   gw_coap.c           the core: libcoap's context and the loop, session
 *                       numbering, DTLS, the handler for paths without a
 *                       resource (it hands them to the resource they name),
 *                       expiry, set-up and tear-down;
 *   gw_coap_artifact.c  ferry/artifact/<sha256>: Block2 served from the
 *                       hooks' answer, admission (gw_pacer.h);
 *   gw_coap_manifest.c  ferry/manifest/<product>: GET and Observe;
 *   gw_coap_status.c    ferry/status: POST, Block1 reassembly, the hook's
 *                       answer mapped to a response code.
 *
 * Everything runs on the loop thread. Handlers run inside coap_io_process()
 * (s->processing is true then): a resource must not be deleted there, so
 * deletions wait for gw_coap_artifact_sweep(), which the core calls after
 * every pass. */
#ifndef FERRY_GW_COAP_CORE_H
#define FERRY_GW_COAP_CORE_H

#include "ferry_err.h"
#include "ferry_log.h" /* before libcoap's syslog.h: its LOG_ERR etc. are ferry_log's */
#include "ferry_loop.h"
#include "ferry_names.h"
#include "ferry_sha256.h"
#include "ferry_status.h"
#include "gw_coap.h"

#include <coap3/coap.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest block served (SZX 6): 1024 bytes fit one datagram with room
 * for the header and options, also over DTLS. */
#define GW_COAP_BLOCK_SZX_MAX 6

/* Status records arriving in Block1 pieces, reassembled one per session; the
 * oldest is dropped when more senders than this are half-way. */
#define GW_COAP_STATUS_PARTS 8

/* One ferry/artifact/<hex> resource and, while nodes fetch it, the hooks'
 * answer for it (data, len, ref): taken on the first request, so a file is
 * mapped once however many blocks and nodes it serves, and released after
 * idle_ms without a request, on eviction and in gw_coap_free(). */
struct artifact_entry {
    struct artifact_entry *next;
    struct gw_coap *srv;
    uint8_t sha[FERRY_SHA256_LEN];
    coap_resource_t *res;
    bool mapped;
    const uint8_t *data;
    size_t len;
    void *ref;
    uint64_t last_ms; /* the last request that used the mapping */
    bool removed;     /* evicted: resource and mapping go after the pass */
};

/* One ferry/manifest/<product> resource. */
struct manifest_entry {
    struct manifest_entry *next;
    struct gw_coap *srv;
    char product[FERRY_ID_MAX + 1];
    coap_resource_t *res;
};

/* A status record put together from Block1 pieces. */
struct status_part {
    coap_session_t *session; /* NULL: slot free */
    uint64_t started_ms;
    uint16_t cf;
    size_t len;
    uint8_t buf[FERRY_STATUS_MAX_BYTES];
};

struct gw_coap {
    struct ferry_loop *loop;
    coap_context_t *ctx;
    int fd;
    uint16_t port;
    struct gw_coap_hooks hooks;
    uint32_t manifest_max_age, busy_max_age, fetching_max_age;
    struct gw_pacer *pacer;
    struct gw_psk *psk;
    coap_bin_const_t psk_reply; /* what the identity callback returns */
    struct artifact_entry *arts;
    struct manifest_entry *mans;
    size_t waiting_products; /* manifests created for a node's GET with no release yet */
    struct status_part parts[GW_COAP_STATUS_PARTS];
    uint64_t idle_ms; /* pacer idle time, also the life of an unused mapping */
    uint64_t kick_timer;
    uint64_t expiry_timer, expiry_at;
    uint64_t last_session_id;
    bool processing; /* inside coap_io_process(): handlers, hooks may run */
    bool closing;
};

/* ---- core helpers (gw_coap.c) ---------------------------------------------- */

/* A number for the session that no later session reuses, unlike its
 * address, which libcoap may give a new session once it freed the old. */
uint64_t gw_coap_session_id(struct gw_coap *s, coap_session_t *ses);

/* base_s jittered by up to a quarter either way (gw_pacer_jitter()). */
uint32_t gw_coap_jittered(uint32_t base_s);

/* Adds option num with the shortest encoding of v. */
void gw_coap_add_uint_option(coap_pdu_t *pdu, coap_option_num_t num, uint64_t v);

/* An answer without a body: the code and a diagnostic payload (RFC 7252
 * 5.5.2). max_age_s > 0 adds Max-Age first, options precede the payload. */
void gw_coap_answer(coap_pdu_t *resp, coap_pdu_code_t code, uint32_t max_age_s, const char *diag);
void gw_coap_answerf(coap_pdu_t *resp, coap_pdu_code_t code, uint32_t max_age_s, const char *fmt,
                     ...) FERRY_PRINTF(4, 5);

/* The stable ETag of a body: its first 8 SHA-256 bytes as a number, never 0
 * (libcoap takes 0 for "make one up per call"). */
uint64_t gw_coap_etag_of(const uint8_t sha[FERRY_SHA256_LEN]);

/* A resource for path with ct= (if not 0) and rt= attributes; the caller
 * registers handlers and adds it to the context. NULL when out of memory. */
coap_resource_t *gw_coap_new_resource(const char *path, uint16_t ct, const char *rt);

/* Who asks (gw_coap_peer): the request's Uri-Query items go into items/lens
 * (at most GW_COAP_PEER_QUERY_MAX), the DTLS identity into idbuf. False when
 * the request's n= names another node than its DTLS identity (answer 4.03). */
#define GW_COAP_PEER_QUERY_MAX 32
struct gw_coap_peer_buf {
    const char *items[GW_COAP_PEER_QUERY_MAX];
    size_t lens[GW_COAP_PEER_QUERY_MAX];
    char id[FERRY_ID_MAX + 1];
    char declared[FERRY_ID_MAX + 1];
};
bool gw_coap_peer_of(const coap_session_t *ses, const coap_pdu_t *req, struct gw_coap_peer *who,
                     struct gw_coap_peer_buf *buf);

/* A pass of libcoap soon, so that notifications go out now rather than at
 * the next packet. */
void gw_coap_kick(struct gw_coap *s);

/* Keeps one timer armed for the next possible expiry (gw_pacer's transfers,
 * artifact mappings). */
void gw_coap_schedule_expiry(struct gw_coap *s);

/* ---- ferry/artifact/<sha256> (gw_coap_artifact.c) --------------------------- */

struct artifact_entry *gw_coap_artifact_find(struct gw_coap *s,
                                             const uint8_t sha[FERRY_SHA256_LEN]);
/* A GET of ferry/artifact/<tail> with no resource yet. */
void gw_coap_artifact_unknown(struct gw_coap *s, const char *tail, coap_session_t *ses,
                              const coap_pdu_t *req, coap_pdu_t *resp);
/* The earliest moment a mapping could be released, or GW_PACER_NO_EXPIRY. */
uint64_t gw_coap_artifact_next_expiry(const struct gw_coap *s);
/* Releases the mappings idle since idle_ms at now_ms (never inside a pass). */
void gw_coap_artifact_expire(struct gw_coap *s, uint64_t now_ms);
/* Deletes evicted artifacts' resources and mappings (never inside a pass). */
void gw_coap_artifact_sweep(struct gw_coap *s);
/* Releases every mapping and frees the entries (the context freed the
 * resources already). */
void gw_coap_artifact_free_all(struct gw_coap *s);

/* ---- ferry/manifest/<product> (gw_coap_manifest.c) -------------------------- */

/* A request for ferry/manifest/<product> with no resource yet. */
void gw_coap_manifest_unknown(struct gw_coap *s, const char *product, coap_session_t *ses,
                              const coap_pdu_t *req, const coap_string_t *q, coap_pdu_t *resp);
void gw_coap_manifest_free_all(struct gw_coap *s);

/* ---- ferry/status (gw_coap_status.c) ---------------------------------------- */

/* Creates the status resource and hands it to the context. */
enum ferry_err gw_coap_status_register(struct gw_coap *s, struct ferry_diag *d) FERRY_MUST_CHECK;
/* The session is gone: its half-reassembled record goes too. */
void gw_coap_status_session_gone(struct gw_coap *s, const coap_session_t *ses);
/* Wipes every partial record. */
void gw_coap_status_free_all(struct gw_coap *s);

#endif
