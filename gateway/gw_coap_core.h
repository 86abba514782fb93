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
 *   gw_coap_meta.c      ferry/meta/<product>: the trust metadata bundle, GET
 *                       and Observe (only with hooks.meta);
 *   gw_coap_status.c    ferry/status: POST, Block1 reassembly, the hook's
 *                       answer mapped to a response code.
 *
 * Everything runs on the loop thread (ferry_coapglue.h drives libcoap).
 * Handlers run inside coap_io_process() (ferry_coapglue_io_in_pass()): a
 * resource must not be deleted there, so deletions wait for
 * gw_coap_artifact_sweep(), which the core calls after every pass. */
#ifndef FERRY_GW_COAP_CORE_H
#define FERRY_GW_COAP_CORE_H

#include "ferry_coapglue.h" /* first: it orders ferry_log.h before libcoap */
#include "ferry_err.h"
#include "ferry_log.h"
#include "ferry_loop.h"
#include "ferry_names.h"
#include "ferry_sha256.h"
#include "ferry_status.h"
#include "gw_budget.h"
#include "gw_coap.h"
#include "gw_pacer.h"

#include <coap3/coap.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest block served (SZX 6): 1024 bytes fit one datagram with room
 * for the header and options, also over DTLS. */
#define GW_COAP_BLOCK_SZX_MAX FERRY_COAPGLUE_SZX_MAX

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
    bool waiting;     /* made for a node's GET while nothing was offered */
    uint64_t last_ms; /* the last request for it */
};

/* The answer to a NON block request waiting for the link budget (ticket). */
struct pending_block {
    bool used;
    uint64_t ticket;
    coap_session_t *session; /* referenced while it waits */
    uint8_t token[8];
    size_t token_len;
    uint8_t sha[FERRY_SHA256_LEN];
    char key[GW_PACER_ID_MAX + 1]; /* whom admission counts it for */
    uint32_t num;
    unsigned szx;
    size_t off, len;
    bool more, block2;
};

/* An Observe registration the server counts (libcoap keeps the real one):
 * removed on a deregistration, when its session goes, or when it is ended
 * to make room. */
struct observer_entry {
    bool used;
    bool ending; /* its session is disconnected after the current pass */
    uint64_t session_id;
    coap_session_t *session; /* valid while the entry is: SESSION_DEL removes it */
    uint8_t token[8];
    size_t token_len;
    char key[GW_PACER_ID_MAX + 1]; /* whose (gw_coap_admission_key()) */
    bool anonymous;
    const void *owner; /* the resource entry observed (manifest_entry, meta_entry) */
    uint64_t since_ms;
};

/* One ferry/meta/<product> resource. */
struct meta_entry {
    struct meta_entry *next;
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
    struct ferry_coapglue_io io;
    uint16_t port;
    struct gw_coap_hooks hooks;
    uint32_t manifest_max_age, busy_max_age, fetching_max_age;
    struct gw_pacer *pacer;
    struct gw_budget *budget;      /* NULL: no link budget */
    struct pending_block *pending; /* GW_BUDGET_DEFAULT_QUEUED of them, by ticket slot */
    uint64_t budget_timer, budget_at;
    struct gw_psk *psk;
    coap_bin_const_t psk_reply;  /* what the identity callback returns */
    coap_resource_t *status_res; /* owned by the context */
    coap_resource_t *config_res; /* owned by the context */
    struct artifact_entry *arts;
    struct manifest_entry *mans;
    size_t waiting_products; /* manifests created for a node's GET with no release yet */
    uint64_t waiting_linger_ms;
    struct observer_entry *observers; /* max_observers of them */
    size_t max_observers, nobservers;
    bool observers_ending; /* some entries are `ending` */
    struct meta_entry *metas;
    size_t waiting_metas; /* meta resources for products without a timestamp */
    struct status_part parts[GW_COAP_STATUS_PARTS];
    uint64_t idle_ms; /* pacer idle time, also the life of an unused mapping */
    uint64_t expiry_timer, expiry_at;
    uint64_t last_session_id;
    bool closing;
};

/* ---- core helpers (gw_coap.c) ---------------------------------------------- */

/* A number for the session that no later session reuses, unlike its
 * address, which libcoap may give a new session once it freed the old. */
uint64_t gw_coap_session_id(struct gw_coap *s, coap_session_t *ses);

/* base_s jittered by up to a quarter either way (gw_pacer_jitter()). */
uint32_t gw_coap_jittered(uint32_t base_s);

/* An answer without a body: the code and a diagnostic payload (RFC 7252
 * 5.5.2). max_age_s > 0 adds Max-Age first, options precede the payload. */
void gw_coap_answer(coap_pdu_t *resp, coap_pdu_code_t code, uint32_t max_age_s, const char *diag);
void gw_coap_answerf(coap_pdu_t *resp, coap_pdu_code_t code, uint32_t max_age_s, const char *fmt,
                     ...) FERRY_PRINTF(4, 5);

/* A resource for path with ct= (if not 0) and rt= attributes; the caller
 * registers handlers and adds it to the context. NULL when out of memory. */
coap_resource_t *gw_coap_new_resource(const char *path, uint16_t ct, const char *rt);

/* Keeps one timer armed for the next possible expiry (gw_pacer's transfers,
 * artifact mappings). */
void gw_coap_schedule_expiry(struct gw_coap *s);

/* Who sent req on ses (gw_coap.h, "Who is asking"), once per request at
 * the top of every handler. False when the request is refused for it; resp
 * then says why: 4.00 for a bad n= query, 4.03 for an n= that is not the
 * DTLS identity. */
bool gw_coap_who(const coap_session_t *ses, const coap_pdu_t *req, struct gw_coap_requester *who,
                 coap_pdu_t *resp);
/* Whom admission (gw_pacer.h) counts for `who`: a node by its id; an
 * anonymous client by its host, "@" and its address without the port, so
 * that one host's anonymous clients share one slot and one place in the
 * queue (a host must not take a slot per port, and a stock client, or a node
 * that restarted, asks again from a new port). */
void gw_coap_admission_key(const struct gw_coap_requester *who, char key[GW_PACER_ID_MAX + 1]);

/* ---- bodies in blocks (gw_coap.c) ------------------------------------------ */

/* What a request's Block2 option asks for. */
struct gw_coap_block2 {
    bool present;
    uint32_t num;
    unsigned szx;
};

/* False when the option is bad; resp then says why: 4.02 for a value longer
 * than 3 bytes, 4.00 for SZX 7 or a repeated option. */
bool gw_coap_parse_block2(const coap_pdu_t *req, struct gw_coap_block2 *b, coap_pdu_t *resp);

/* The bytes one answer carries. */
struct gw_coap_piece {
    bool block2; /* answer with a Block2 option */
    uint32_t num;
    unsigned szx;
    size_t off, len;
    bool more;
};

/* The block b asks for in a body of `size` bytes, at the size asked for, or
 * block 0 of the largest size when b is absent; then, if that is the whole
 * body, the answer carries no Block2 option at all, as RFC 7959 clients
 * expect. False when the block starts at or beyond the end. Every body is
 * served this way, a block per request, from the whole body at hand: the
 * server keeps no state per transfer and asks libcoap to keep none. */
bool gw_coap_pick_piece(const struct gw_coap_block2 *b, size_t size, struct gw_coap_piece *pc);

/* Adds Block2 (when pc says so), Size2 = size and the piece of body. */
bool gw_coap_add_piece(coap_pdu_t *resp, const struct gw_coap_piece *pc, const uint8_t *body,
                       size_t size);
/* The same, with one more uint option after Size2 (a number above 28,
 * Size2's: Ferry-Hold); opt 0 adds none. */
bool gw_coap_add_piece_with(coap_pdu_t *resp, const struct gw_coap_piece *pc, const uint8_t *body,
                            size_t size, coap_option_num_t opt, uint64_t v);

/* ---- ferry/artifact/<sha256> (gw_coap_artifact.c) --------------------------- */

struct artifact_entry *gw_coap_artifact_find(struct gw_coap *s,
                                             const uint8_t sha[FERRY_SHA256_LEN]);
/* A GET of ferry/artifact/<tail> with no resource yet. */
void gw_coap_artifact_unknown(struct gw_coap *s, const char *tail, coap_session_t *ses,
                              const coap_pdu_t *req, const struct gw_coap_requester *who,
                              coap_pdu_t *resp);
/* The earliest moment a mapping could be released, or GW_PACER_NO_EXPIRY. */
uint64_t gw_coap_artifact_next_expiry(const struct gw_coap *s);
/* Releases the mappings idle since idle_ms at now_ms (never inside a pass). */
void gw_coap_artifact_expire(struct gw_coap *s, uint64_t now_ms);
/* Deletes evicted artifacts' resources and mappings (never inside a pass). */
void gw_coap_artifact_sweep(struct gw_coap *s);
/* Releases every mapping and frees the entries (the context freed the
 * resources already). */
void gw_coap_artifact_free_all(struct gw_coap *s);
/* Drops every answer waiting for the link budget, releasing its session;
 * before the context goes. */
void gw_coap_artifact_drop_pending(struct gw_coap *s);

/* ---- Observe registrations (gw_coap_observe.c) -------------------------------- */

/* Counts the registration (Observe: 0) libcoap has just made for this GET of
 * the resource entry `owner`; a registration already counted (same session
 * and token: a notification, or a re-registration) is fine. False when it
 * must end: resp is then 4.29 with Max-Age, which ends it (the node polls). */
bool gw_coap_observer_count(struct gw_coap *s, const void *owner, coap_session_t *ses,
                            const coap_pdu_t *req, const struct gw_coap_requester *who,
                            coap_pdu_t *resp);
/* A deregistration (Observe: 1), or a registration answered with an error. */
void gw_coap_observer_uncount(struct gw_coap *s, coap_session_t *ses, const coap_pdu_t *req);

/* The two around an observable GET's answer. Before: reads the request's
 * Observe and counts a registration or uncounts a deregistration; false
 * when the answer is made already (4.29, as gw_coap_observer_count()).
 * *registering tells after() whether to look at the answer: an error ends
 * the registration (RFC 7641; libcoap drops it), so it is uncounted. */
bool gw_coap_observe_before(struct gw_coap *s, const void *owner, coap_session_t *ses,
                            const coap_pdu_t *req, const struct gw_coap_requester *who,
                            coap_pdu_t *resp, bool *registering);
void gw_coap_observe_after(struct gw_coap *s, coap_session_t *ses, const coap_pdu_t *req,
                           bool registering, const coap_pdu_t *resp);
/* The session is gone: its observer entries go. */
void gw_coap_observer_session_gone(struct gw_coap *s, const coap_session_t *ses);
/* After a pass: disconnects the sessions of the registrations ended to make
 * room (their observers go with them). */
void gw_coap_observer_after_pass(struct gw_coap *s);

/* ---- ferry/manifest/<product> (gw_coap_manifest.c) -------------------------- */

/* A request for ferry/manifest/<product> with no resource yet. */
void gw_coap_manifest_unknown(struct gw_coap *s, const char *product, coap_session_t *ses,
                              const coap_pdu_t *req, const coap_string_t *q,
                              const struct gw_coap_requester *who, coap_pdu_t *resp);
void gw_coap_manifest_free_all(struct gw_coap *s);
/* Deletes the resources of waiting products nobody observes or asked for
 * since waiting_linger_ms (never inside a pass). */
void gw_coap_manifest_expire(struct gw_coap *s, uint64_t now_ms);
/* When gw_coap_manifest_expire() could next delete one, or
 * GW_PACER_NO_EXPIRY. */
uint64_t gw_coap_manifest_next_expiry(const struct gw_coap *s);

/* ---- ferry/meta/<product> (gw_coap_meta.c) ---------------------------------- */

/* Meta resources made for products the gateway holds no timestamp of,
 * because a node asked (any node may name any product). */
#define GW_COAP_MAX_WAITING_METAS 16

/* A request for ferry/meta/<product> with no resource yet (hooks.meta set). */
void gw_coap_meta_unknown(struct gw_coap *s, const char *product, coap_session_t *ses,
                          const coap_pdu_t *req, const coap_string_t *q, coap_pdu_t *resp);
void gw_coap_meta_free_all(struct gw_coap *s);

/* ---- ferry/status (gw_coap_status.c) ---------------------------------------- */

/* Creates the status resource and hands it to the context. */
enum ferry_err gw_coap_status_register(struct gw_coap *s, struct ferry_diag *d) FERRY_MUST_CHECK;
/* The session is gone: its half-reassembled record goes too. */
void gw_coap_status_session_gone(struct gw_coap *s, const coap_session_t *ses);
/* Wipes every partial record. */
void gw_coap_status_free_all(struct gw_coap *s);

#endif
