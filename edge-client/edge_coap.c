#include "edge_coap.h"

#include "ferry_backoff.h"
#include "ferry_bytes.h"
#include "ferry_coapglue.h"
#include "ferry_config_report.h"
#include "ferry_envelope.h"
#include "ferry_hex.h"
#include "ferry_log.h"
#include "ferry_meta.h"
#include "ferry_names.h"
#include "ferry_nodeinfo.h"
#include "ferry_random.h"
#include "ferry_status.h"

#include <coap3/coap.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define TOKEN_MAX        8
#define BLOCK_PREFIX_LEN 4 /* + 4 bytes of request id: an 8-byte token */
/* Tokens of the other requests: shorter than a block's, so never taken for
 * one, and counted here rather than by libcoap, whose count starts over
 * with every session (rehandshake()): a new session's first token would
 * be the manifest observation's. */
#define REQUEST_TOKEN_LEN 6
#define MAX_SZX           FERRY_COAPGLUE_SZX_MAX
#define PATH_MAX_LEN      (sizeof(FERRY_COAP_ARTIFACT) + FERRY_SHA256_HEX_LEN + 2)
#define MAX_RETRANSMIT    3
#define POLL_JITTER_PCT   20
/* After a 2.05 without Observe (the gateway did not register us), ask again
 * this soon rather than at the next poll. */
#define REOBSERVE_MS 1000

/* One request out: its token (to match the answer), message id (to match a
 * NACK) and deadline timer. */
struct request {
    bool out;
    uint8_t token[TOKEN_MAX];
    size_t token_len;
    coap_mid_t mid;
    uint64_t timer;
};

/* An envelope arriving in blocks. */
struct envelope_xfer {
    struct request req;
    uint8_t buf[FERRY_ENVELOPE_MAX_BYTES];
    size_t len;
    uint8_t etag[TOKEN_MAX];
    size_t etag_len;
    unsigned szx;
};

/* The trust metadata bundle: its own observation, and its blocks. */
struct meta_xfer {
    struct request observe; /* token kept while the query stays the same */
    struct request blk;
    char path[sizeof(FERRY_COAP_META) + FERRY_ID_MAX + 2];
    char query[32]; /* "r=<version>" */
    uint8_t buf[FERRY_META_MAX_BYTES];
    size_t len;
    uint8_t etag[TOKEN_MAX];
    size_t etag_len;
    unsigned szx;
};

struct edge_coap {
    struct ferry_loop *loop;
    struct edge_coap_hooks hooks;
    /* What a new session needs (edge_coap.h, "Silence"). */
    char *uri;
    uint8_t psk[EDGE_COAP_PSK_MAX];
    size_t psk_len;
    uint64_t ack_ms;
    uint64_t silence_ms;
    /* When the first request since the last datagram from the gateway
     * went out; 0 while nothing is unanswered. */
    uint64_t quiet_since;
    uint64_t silence_timer;
    unsigned sessions_opened;
    /* A session replaced a silent one: the new_session hook is owed once
     * it is up (over DTLS, when the handshake completes). */
    bool resend_owed;
    uint64_t opened_ms;                      /* when the current session was opened */
    uint64_t resend_timer;                   /* the hook's own turn of the loop */
    uint64_t next_token;                     /* REQUEST_TOKEN_LEN bytes of it make a token */
    char (*mquery)[FERRY_NODEINFO_ITEM_MAX]; /* manifest Uri-Query items */
    size_t nmquery;
    char manifest_path[sizeof(FERRY_COAP_MANIFEST) + FERRY_ID_MAX + 2];
    uint64_t poll_ms, timeout_ms;
    struct ferry_prng rng;
    coap_context_t *ctx;
    coap_session_t *session;
    struct ferry_coapglue_io io;
    bool glue_up; /* ferry_coapglue_up() called: one _down() owed */
    uint64_t poll_timer;

    struct request observe; /* token fixed for the process; never times out */
    uint64_t reobserve_timer;
    bool reobserved; /* once per poll period */
    struct envelope_xfer env;
    struct request status;
    /* Block requests are not tracked here: each token is this prefix and
     * the caller's request id, and every answer goes to the block hook. */
    uint8_t block_prefix[BLOCK_PREFIX_LEN];
    /* D1: the node names itself (n=) in its artifact requests; "" without an id. */
    char node_id[FERRY_ID_MAX + 1];
    struct meta_xfer meta;
    struct request config;
};

/* ---- small helpers ---------------------------------------------------------- */

static uint64_t jittered(struct edge_coap *c, uint64_t base)
{
    return ferry_jitter(base, POLL_JITTER_PCT, ferry_prng_next(&c->rng));
}

static unsigned code_of(const coap_pdu_t *pdu)
{
    unsigned raw = coap_pdu_get_code(pdu);
    return (raw >> 5) * 100 + (raw & 0x1f);
}

static bool token_is(const struct request *r, coap_bin_const_t tok)
{
    return r->out && tok.length == r->token_len &&
           (tok.length == 0 || memcmp(tok.s, r->token, tok.length) == 0);
}

static uint64_t opt_uint(const coap_pdu_t *pdu, coap_option_num_t num, bool *present)
{
    coap_opt_iterator_t it;
    coap_opt_t *opt = coap_check_option(pdu, num, &it);
    *present = opt != NULL;
    return opt ? coap_decode_var_bytes8(coap_opt_value(opt), coap_opt_length(opt)) : 0;
}

static void decode_answer(const coap_pdu_t *pdu, struct edge_coap_answer *a)
{
    memset(a, 0, sizeof(*a));
    a->code = code_of(pdu);
    uint64_t max_age = opt_uint(pdu, COAP_OPTION_MAXAGE, &a->has_max_age);
    a->max_age = max_age > UINT32_MAX ? UINT32_MAX : (uint32_t)max_age;
    a->size2 = opt_uint(pdu, COAP_OPTION_SIZE2, &a->has_size2);
    bool has_hold = false;
    uint64_t hold = opt_uint(pdu, FERRY_COAP_OPTION_HOLD, &has_hold);
    a->hold_s = hold > UINT32_MAX ? UINT32_MAX : (uint32_t)hold;
    coap_opt_iterator_t it;
    coap_opt_t *etag = coap_check_option(pdu, COAP_OPTION_ETAG, &it);
    if (etag && coap_opt_length(etag) <= TOKEN_MAX) {
        a->etag = coap_opt_value(etag);
        a->etag_len = coap_opt_length(etag);
    }
    /* The raw option, not coap_get_block_b(): that one reports SZX 7 and
     * numbers over 20 bits as "no Block2", which hides what the gateway
     * did wrong (the caller judges; libcoap's parser already drops a
     * Block2 longer than 3 bytes). */
    coap_opt_t *b2 = coap_check_option(pdu, COAP_OPTION_BLOCK2, &it);
    if (b2) {
        uint32_t v = (uint32_t)coap_decode_var_bytes(coap_opt_value(b2), coap_opt_length(b2));
        a->has_block = true;
        a->num = v >> 4;
        a->more = (v & 0x8) != 0;
        a->szx = v & 0x7;
    }
    if (!coap_get_data(pdu, &a->len, &a->data)) {
        a->data = NULL;
        a->len = 0;
    }
}

/* ---- sending ------------------------------------------------------------------ */

static void forget(struct edge_coap *c, struct request *r)
{
    if (r->timer)
        ferry_loop_cancel(c->loop, r->timer);
    r->timer = 0;
    r->out = false;
}

/* ---- silence: a new session when the gateway stops answering ---------------- */

static void silence_check(void *arg);

static void arm_silence(struct edge_coap *c, uint64_t ms)
{
    if (!c->silence_timer)
        c->silence_timer = ferry_loop_timer(c->loop, ms, silence_check, c);
}

/* A request went out: the silence clock starts unless it already runs. */
static void note_sent(struct edge_coap *c)
{
    if (c->quiet_since)
        return;
    c->quiet_since = ferry_now_ms();
    arm_silence(c, c->silence_ms);
}

/* A datagram of the current session came back: nothing is unanswered. */
static void note_heard(struct edge_coap *c)
{
    c->quiet_since = 0;
}

/* A new request of `type` with the given token, Uri-Path from path
 * ("a/b/c"), and the node's Uri-Query when `named`. */
static coap_pdu_t *new_pdu(struct edge_coap *c, coap_pdu_type_t type, coap_pdu_code_t code,
                           const uint8_t *token, size_t token_len, const char *path, bool named)
{
    coap_pdu_t *pdu = coap_pdu_init(type, code, coap_new_message_id(c->session),
                                    coap_session_max_pdu_size(c->session));
    if (!pdu)
        return NULL;
    if (!coap_add_token(pdu, token_len, token))
        goto fail;
    for (const char *seg = path; *seg;) {
        const char *end = strchr(seg, '/');
        size_t n = end ? (size_t)(end - seg) : strlen(seg);
        if (!coap_add_option(pdu, COAP_OPTION_URI_PATH, n, (const uint8_t *)seg))
            goto fail;
        seg += n + (end ? 1 : 0);
    }
    if (named && c->node_id[0] && !ferry_coapglue_add_node_query(pdu, c->node_id))
        goto fail;
    return pdu;
fail:
    coap_delete_pdu(pdu);
    return NULL;
}

/* A new CON request for r with a fresh token (or r's fixed one). */
static coap_pdu_t *new_request(struct edge_coap *c, struct request *r, coap_pdu_code_t code,
                               const char *path, bool fresh_token, bool named)
{
    if (fresh_token || r->token_len == 0) {
        r->token_len = REQUEST_TOKEN_LEN;
        ferry_put_le_n(r->token, c->next_token++, REQUEST_TOKEN_LEN);
    }
    return new_pdu(c, COAP_MESSAGE_CON, code, r->token, r->token_len, path, named);
}

static bool add_query(coap_pdu_t *pdu, const char *item)
{
    return !item[0] ||
           coap_add_option(pdu, COAP_OPTION_URI_QUERY, strlen(item), (const uint8_t *)item) != 0;
}

/* The node's description on a manifest request (its n= among the items:
 * such a request is built without the plain n= of new_pdu()). */
static bool add_manifest_query(const struct edge_coap *c, coap_pdu_t *pdu)
{
    for (size_t i = 0; i < c->nmquery; i++)
        if (!add_query(pdu, c->mquery[i]))
            return false;
    return true;
}

static bool add_block2(coap_pdu_t *pdu, uint32_t num, unsigned szx)
{
    struct ferry_coapglue_block b = {.num = num, .szx = szx};
    return ferry_coapglue_add_block(pdu, COAP_OPTION_BLOCK2, &b);
}

/* deadline: the timer callback for the request's own deadline, or NULL. */
static enum ferry_err send_request(struct edge_coap *c, struct request *r, coap_pdu_t *pdu,
                                   ferry_loop_timer_cb deadline, struct ferry_diag *d)
{
    forget(c, r);
    coap_mid_t mid = coap_send(c->session, pdu);
    if (mid == COAP_INVALID_MID)
        return ferry_fail(d, FERRY_E_IO, "coap: sending to the gateway failed");
    note_sent(c);
    r->out = true;
    r->mid = mid;
    if (deadline)
        r->timer = ferry_loop_timer(c->loop, c->timeout_ms, deadline, c);
    return FERRY_OK;
}

static void deliver_status(struct edge_coap *c, const struct edge_coap_answer *a);

static void status_deadline(void *arg)
{
    struct edge_coap *c = arg;
    struct edge_coap_answer none = {0};
    c->status.timer = 0;
    deliver_status(c, &none);
}

static void envelope_deadline(void *arg)
{
    struct edge_coap *c = arg;
    c->env.req.timer = 0;
    c->env.req.out = false;
}

static unsigned szx_of(uint32_t size)
{
    unsigned szx = 0;
    while ((UINT32_C(16) << szx) < size && szx < MAX_SZX)
        szx++;
    return szx;
}

enum ferry_err edge_coap_get_block(struct edge_coap *c, const uint8_t sha256[FERRY_SHA256_LEN],
                                   uint64_t off, uint32_t size, uint32_t req, struct ferry_diag *d)
{
    unsigned szx = szx_of(size);
    if ((UINT32_C(16) << szx) != size || off % size != 0 || off / size > 0xfffff)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "coap: no Block2 of %u bytes at %llu", size,
                          (unsigned long long)off);
    if (c->resend_owed && c->hooks.new_session) {
        /* A new session not up yet: the hook asks for this block again. */
        ferry_log_debug("coap: block request %u held until the new session is up", req);
        return FERRY_OK;
    }
    char path[PATH_MAX_LEN];
    char hex[FERRY_SHA256_HEX_LEN + 1];
    ferry_hex_encode(sha256, FERRY_SHA256_LEN, hex);
    snprintf(path, sizeof(path), "%s/%s", FERRY_COAP_ARTIFACT, hex);
    /* Non-confirmable (D2): the caller's window retransmits, libcoap's
     * NSTART never holds a block behind a status POST or the reverse. */
    uint8_t token[TOKEN_MAX];
    memcpy(token, c->block_prefix, BLOCK_PREFIX_LEN);
    ferry_put_be32(token + BLOCK_PREFIX_LEN, req);
    coap_pdu_t *pdu =
        new_pdu(c, COAP_MESSAGE_NON, COAP_REQUEST_CODE_GET, token, sizeof(token), path, true);
    if (!pdu || !add_block2(pdu, (uint32_t)(off / size), szx)) {
        coap_delete_pdu(pdu);
        return ferry_fail(d, FERRY_E_NOMEM, "coap: cannot build the block request");
    }
    if (coap_send(c->session, pdu) == COAP_INVALID_MID)
        return ferry_fail(d, FERRY_E_IO, "coap: sending the block request to the gateway failed");
    note_sent(c);
    return FERRY_OK;
}

enum ferry_err edge_coap_post_status(struct edge_coap *c, const uint8_t *cbor, size_t len,
                                     struct ferry_diag *d)
{
    if (len == 0 || len > FERRY_STATUS_MAX_BYTES)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "coap: status record of %zu bytes", len);
    coap_pdu_t *pdu =
        new_request(c, &c->status, COAP_REQUEST_CODE_POST, FERRY_COAP_STATUS, true, false);
    if (!pdu ||
        !ferry_coapglue_add_uint(pdu, COAP_OPTION_CONTENT_FORMAT,
                                 COAP_MEDIATYPE_APPLICATION_CBOR) ||
        !coap_add_data(pdu, len, cbor)) {
        coap_delete_pdu(pdu);
        return ferry_fail(d, FERRY_E_NOMEM, "coap: cannot build the status request");
    }
    return send_request(c, &c->status, pdu, status_deadline, d);
}

static void deliver_config(struct edge_coap *c, const struct edge_coap_answer *a);

static void config_deadline(void *arg)
{
    struct edge_coap *c = arg;
    struct edge_coap_answer none = {0};
    c->config.timer = 0;
    deliver_config(c, &none);
}

enum ferry_err edge_coap_post_config(struct edge_coap *c, const char *json, size_t len,
                                     struct ferry_diag *d)
{
    if (len == 0 || len > FERRY_CONFIG_REPORT_MAX_BYTES)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "coap: configuration report of %zu bytes", len);
    coap_pdu_t *pdu =
        new_request(c, &c->config, COAP_REQUEST_CODE_POST, FERRY_COAP_CONFIG, true, false);
    if (!pdu ||
        !ferry_coapglue_add_uint(pdu, COAP_OPTION_CONTENT_FORMAT,
                                 COAP_MEDIATYPE_APPLICATION_JSON) ||
        !coap_add_data(pdu, len, (const uint8_t *)json)) {
        coap_delete_pdu(pdu);
        return ferry_fail(d, FERRY_E_NOMEM, "coap: cannot build the configuration report");
    }
    return send_request(c, &c->config, pdu, config_deadline, d);
}

/* The observing GET (block 0), always with the process's one observe token. */
static void send_observe(struct edge_coap *c)
{
    coap_pdu_t *pdu = new_request(c, &c->observe, COAP_REQUEST_CODE_GET, c->manifest_path, false,
                                  c->nmquery == 0);
    uint8_t zero = 0;
    if (!pdu || !add_manifest_query(c, pdu) ||
        !coap_add_option(pdu, COAP_OPTION_OBSERVE, 0, &zero)) {
        coap_delete_pdu(pdu);
        ferry_log_warn("coap: cannot build the manifest request");
        return;
    }
    struct ferry_diag d = {{0}};
    if (send_request(c, &c->observe, pdu, NULL, &d) != FERRY_OK)
        ferry_log_warn("%s", d.msg);
}

static void send_envelope_block(struct edge_coap *c, uint32_t num)
{
    struct envelope_xfer *x = &c->env;
    ferry_log_debug("coap: asking for block %u of the manifest", num);
    coap_pdu_t *pdu =
        new_request(c, &x->req, COAP_REQUEST_CODE_GET, c->manifest_path, true, c->nmquery == 0);
    if (!pdu || !add_manifest_query(c, pdu) || !add_block2(pdu, num, x->szx)) {
        coap_delete_pdu(pdu);
        forget(c, &x->req);
        return;
    }
    struct ferry_diag d = {{0}};
    if (send_request(c, &x->req, pdu, envelope_deadline, &d) != FERRY_OK) {
        ferry_log_warn("%s", d.msg);
        forget(c, &x->req);
    }
}

/* ---- trust metadata: GET ferry/meta/<product>?r=<v>, Observe, Block2 ---- */

static coap_pdu_t *meta_request(struct edge_coap *c, struct request *r, bool fresh_token)
{
    struct meta_xfer *x = &c->meta;
    coap_pdu_t *pdu = new_request(c, r, COAP_REQUEST_CODE_GET, x->path, fresh_token, true);
    if (pdu &&
        !coap_add_option(pdu, COAP_OPTION_URI_QUERY, strlen(x->query), (const uint8_t *)x->query)) {
        coap_delete_pdu(pdu);
        pdu = NULL;
    }
    return pdu;
}

static void send_meta_observe(struct edge_coap *c, bool fresh_token)
{
    if (!c->hooks.meta)
        return;
    coap_pdu_t *pdu = meta_request(c, &c->meta.observe, fresh_token);
    uint8_t zero = 0;
    struct ferry_diag d = {{0}};
    if (!pdu || !coap_add_option(pdu, COAP_OPTION_OBSERVE, 0, &zero)) {
        coap_delete_pdu(pdu);
        ferry_log_warn("coap: cannot build the trust metadata request");
        return;
    }
    if (send_request(c, &c->meta.observe, pdu, NULL, &d) != FERRY_OK)
        ferry_log_warn("%s", d.msg);
}

static void meta_deadline(void *arg)
{
    struct edge_coap *c = arg;
    c->meta.blk.timer = 0;
    c->meta.blk.out = false;
}

static void send_meta_block(struct edge_coap *c, uint32_t num)
{
    struct meta_xfer *x = &c->meta;
    coap_pdu_t *pdu = meta_request(c, &x->blk, true);
    struct ferry_diag d = {{0}};
    if (!pdu || !add_block2(pdu, num, x->szx)) {
        coap_delete_pdu(pdu);
        forget(c, &x->blk);
        return;
    }
    if (send_request(c, &x->blk, pdu, meta_deadline, &d) != FERRY_OK) {
        ferry_log_warn("%s", d.msg);
        forget(c, &x->blk);
    }
}

/* Ends the registration under the current token and query (Observe: 1),
 * best effort: the gateway counts registrations per session, and a lost
 * deregistration costs only a reset at the old one's next notification. */
static void end_meta_observe(struct edge_coap *c)
{
    struct request *r = &c->meta.observe;
    if (r->token_len == 0)
        return;
    coap_pdu_t *pdu = new_pdu(c, COAP_MESSAGE_NON, COAP_REQUEST_CODE_GET, r->token, r->token_len,
                              c->meta.path, true);
    uint8_t one = 1;
    if (!pdu || !coap_add_option(pdu, COAP_OPTION_OBSERVE, 1, &one) ||
        !coap_add_option(pdu, COAP_OPTION_URI_QUERY, strlen(c->meta.query),
                         (const uint8_t *)c->meta.query)) {
        coap_delete_pdu(pdu);
        return;
    }
    if (coap_send(c->session, pdu) == COAP_INVALID_MID)
        ferry_log_debug("coap: could not end the trust metadata observation");
}

void edge_coap_meta_now(struct edge_coap *c, uint64_t have)
{
    char query[sizeof(c->meta.query)];
    snprintf(query, sizeof(query), "r=%llu", (unsigned long long)have);
    bool changed = strcmp(query, c->meta.query) != 0;
    /* Another query is another registration: the old one is ended first and
     * the new one gets a fresh token. */
    if (changed)
        end_meta_observe(c);
    memcpy(c->meta.query, query, sizeof(query));
    send_meta_observe(c, changed);
}

/* The first answer for the metadata (to a GET or as a notification), or the
 * next block of a long bundle. */
static void meta_answer(struct edge_coap *c, const struct edge_coap_answer *a, bool first)
{
    struct meta_xfer *x = &c->meta;
    if (!first)
        forget(c, &x->blk);
    if (first && a->code == 429) {
        /* The gateway keeps no more observations for us: fetch the bundle
         * with plain GETs, block by block, and observe again at the next
         * poll. */
        x->len = 0;
        x->szx = MAX_SZX;
        x->etag_len = 0;
        send_meta_block(c, 0);
        return;
    }
    if (a->code != 205) {
        ferry_log_debug("coap: trust metadata answered %u.%02u", a->code / 100, a->code % 100);
        return;
    }
    if (first) {
        if (!a->has_block || !a->more) {
            if (a->len > 0 && a->len <= FERRY_META_MAX_BYTES)
                c->hooks.meta(c->hooks.arg, a->data, a->len);
            return;
        }
        if (a->num != 0 || a->szx > MAX_SZX || a->len != (16u << a->szx))
            return;
        x->len = 0;
        x->szx = a->szx;
        x->etag_len = a->etag_len;
        if (a->etag_len)
            memcpy(x->etag, a->etag, a->etag_len);
    } else {
        if (x->len == 0 && x->etag_len == 0 && a->etag_len <= sizeof(x->etag)) {
            /* The first block of a plain GET (after a 4.29): its ETag is
             * the one the other blocks must carry. */
            x->etag_len = a->etag_len;
            if (a->etag_len)
                memcpy(x->etag, a->etag, a->etag_len);
        }
        bool same_etag = a->etag_len == 0 ||
                         (a->etag_len == x->etag_len && !memcmp(a->etag, x->etag, a->etag_len));
        if (!a->has_block || a->szx != x->szx || (uint64_t)a->num * (16u << x->szx) != x->len ||
            !same_etag || (a->more && a->len != (16u << x->szx))) {
            ferry_log_debug("coap: trust metadata broke off at %zu bytes; next poll retries",
                            x->len);
            return;
        }
    }
    if (a->len > FERRY_META_MAX_BYTES - x->len)
        return;
    memcpy(x->buf + x->len, a->data, a->len);
    x->len += a->len;
    if (a->more)
        send_meta_block(c, a->num + 1);
    else
        c->hooks.meta(c->hooks.arg, x->buf, x->len);
}

static void poll_timer(void *arg)
{
    struct edge_coap *c = arg;
    c->poll_timer = ferry_loop_timer(c->loop, jittered(c, c->poll_ms), poll_timer, c);
    c->reobserved = false;
    send_observe(c);
    send_meta_observe(c, false);
}

static void reobserve_timer(void *arg)
{
    struct edge_coap *c = arg;
    c->reobserve_timer = 0;
    send_observe(c);
}

void edge_coap_poll_now(struct edge_coap *c)
{
    if (c->poll_timer)
        ferry_loop_cancel(c->loop, c->poll_timer);
    poll_timer(c);
}

/* ---- receiving ---------------------------------------------------------------- */

static void deliver_status(struct edge_coap *c, const struct edge_coap_answer *a)
{
    forget(c, &c->status);
    c->hooks.status(c->hooks.arg, a);
}

static void deliver_config(struct edge_coap *c, const struct edge_coap_answer *a)
{
    forget(c, &c->config);
    if (c->hooks.config)
        c->hooks.config(c->hooks.arg, a);
}

/* The first answer for the manifest (to a GET or as a notification). */
static void manifest_answer(struct edge_coap *c, const struct edge_coap_answer *a, bool observed)
{
    if (c->hooks.hold && (a->code == 205 || a->code == 404))
        c->hooks.hold(c->hooks.arg, a->hold_s);
    if (a->code == 205 && !observed && !c->reobserved && !c->reobserve_timer) {
        /* Not registered (the product was new to the gateway): once more soon. */
        c->reobserved = true;
        c->reobserve_timer =
            ferry_loop_timer(c->loop, jittered(c, REOBSERVE_MS), reobserve_timer, c);
    }
    /* An empty 2.05 (the observation stays) or, from a gateway that cannot
     * keep one for this product, 4.04 (it ends; the poll timer asks again). */
    if (a->code == 404 || (a->code == 205 && !a->has_block && a->len == 0)) {
        c->hooks.no_manifest(c->hooks.arg);
        return;
    }
    if (a->code != 205) {
        ferry_log_debug("coap: manifest answered %u.%02u", a->code / 100, a->code % 100);
        return;
    }
    if (!a->has_block || !a->more) {
        if (a->len > 0 && a->len <= FERRY_ENVELOPE_MAX_BYTES)
            c->hooks.manifest(c->hooks.arg, a->data, a->len);
        return;
    }
    /* A long envelope: fetch the rest, from the start of a new transfer. */
    struct envelope_xfer *x = &c->env;
    if (a->num != 0 || a->szx > MAX_SZX || a->len != (16u << a->szx))
        return;
    memcpy(x->buf, a->data, a->len);
    x->len = a->len;
    x->szx = a->szx;
    x->etag_len = a->etag_len;
    if (a->etag_len)
        memcpy(x->etag, a->etag, a->etag_len);
    send_envelope_block(c, 1);
}

static void envelope_block(struct edge_coap *c, const struct edge_coap_answer *a)
{
    struct envelope_xfer *x = &c->env;
    forget(c, &x->req);
    uint32_t size = 16u << x->szx;
    bool same_etag =
        a->etag_len == 0 || (a->etag_len == x->etag_len && !memcmp(a->etag, x->etag, a->etag_len));
    if (a->code != 205 || !a->has_block || a->szx != x->szx || (uint64_t)a->num * size != x->len ||
        !same_etag || a->len > FERRY_ENVELOPE_MAX_BYTES - x->len || (a->more && a->len != size)) {
        ferry_log_debug("coap: manifest transfer broke off at %zu bytes; next poll retries",
                        x->len);
        return;
    }
    memcpy(x->buf + x->len, a->data, a->len);
    x->len += a->len;
    if (a->more)
        send_envelope_block(c, a->num + 1);
    else
        c->hooks.manifest(c->hooks.arg, x->buf, x->len);
}

/* The request id of a block answer's token, or false. */
static bool block_req(const struct edge_coap *c, coap_bin_const_t tok, uint32_t *req)
{
    if (tok.length != TOKEN_MAX || memcmp(tok.s, c->block_prefix, BLOCK_PREFIX_LEN) != 0)
        return false;
    *req = ferry_get_be32(tok.s + BLOCK_PREFIX_LEN);
    return true;
}

static coap_response_t on_response(coap_session_t *session, const coap_pdu_t *sent,
                                   const coap_pdu_t *received, const coap_mid_t mid)
{
    (void)sent;
    (void)mid;
    struct edge_coap *c = coap_get_app_data(coap_session_get_context(session));
    coap_bin_const_t tok = coap_pdu_get_token(received);
    uint32_t req = 0;
    if (session == c->session)
        note_heard(c);
    struct edge_coap_answer a;
    decode_answer(received, &a);
    if (token_is(&c->observe, tok)) {
        /* Stays "out": notifications keep coming with this token. */
        coap_opt_iterator_t it;
        manifest_answer(c, &a, coap_check_option(received, COAP_OPTION_OBSERVE, &it) != NULL);
    } else if (token_is(&c->env.req, tok)) {
        envelope_block(c, &a);
    } else if (token_is(&c->status, tok)) {
        deliver_status(c, &a);
    } else if (token_is(&c->config, tok)) {
        deliver_config(c, &a);
    } else if (token_is(&c->meta.observe, tok)) {
        meta_answer(c, &a, true);
    } else if (token_is(&c->meta.blk, tok)) {
        meta_answer(c, &a, false);
    } else if (block_req(c, tok, &req)) {
        /* Every answer, duplicates and late ones too: the caller's window
         * tells them apart. */
        c->hooks.block(c->hooks.arg, req, &a);
    } else {
        /* A late answer to a request replaced since: a reset tells the
         * gateway to stop (and ends a stale observation). */
        return COAP_RESPONSE_FAIL;
    }
    return COAP_RESPONSE_OK;
}

static void on_nack(coap_session_t *session, const coap_pdu_t *sent,
                    const coap_nack_reason_t reason, const coap_mid_t mid)
{
    (void)sent;
    struct edge_coap *c = coap_get_app_data(coap_session_get_context(session));
    struct edge_coap_answer none = {0};
    ferry_log_debug("coap: message %d undelivered (reason %d)", (int)mid, (int)reason);
    if (session != c->session)
        return; /* a session given up (rehandshake()): its message ids mean nothing now */
    if (c->status.out && c->status.mid == mid)
        deliver_status(c, &none);
    else if (c->config.out && c->config.mid == mid)
        deliver_config(c, &none);
    else if (c->env.req.out && c->env.req.mid == mid)
        forget(c, &c->env.req);
    else if (c->meta.blk.out && c->meta.blk.mid == mid)
        forget(c, &c->meta.blk);
}

/* ---- set-up ---------------------------------------------------------------------- */

static enum ferry_err resolve(const coap_uri_t *uri, coap_address_t *dst, struct ferry_diag *d)
{
    char host[256];
    char port[8];
    if (uri->host.length == 0 || uri->host.length >= sizeof(host))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "gateway: URI has no usable host");
    memcpy(host, uri->host.s, uri->host.length);
    host[uri->host.length] = '\0';
    snprintf(port, sizeof(port), "%u", (unsigned)uri->port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || !res)
        return ferry_fail(d, FERRY_E_NOT_FOUND, "gateway: cannot resolve '%s': %s", host,
                          gai_strerror(rc));
    coap_address_init(dst);
    dst->size = res->ai_addrlen;
    memcpy(&dst->addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return FERRY_OK;
}

/* Opens c->session to c->uri: a new socket, so a new source port, and over
 * DTLS a new handshake with the node's identity and key. The name is
 * resolved again each time (a gateway in the cloud may move). */
static enum ferry_err open_session(struct edge_coap *c, struct ferry_diag *d)
{
    coap_uri_t uri;
    if (coap_split_uri((const uint8_t *)c->uri, strlen(c->uri), &uri) < 0 ||
        (uri.scheme != COAP_URI_SCHEME_COAP && uri.scheme != COAP_URI_SCHEME_COAPS))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "gateway: '%s' is not a coap:// or coaps:// URI",
                          c->uri);
    coap_address_t dst;
    enum ferry_err err = resolve(&uri, &dst, d);
    if (err != FERRY_OK)
        return err;
    if (uri.scheme == COAP_URI_SCHEME_COAP) {
        c->session = coap_new_client_session(c->ctx, NULL, &dst, COAP_PROTO_UDP);
    } else {
        if (!coap_dtls_is_supported())
            return ferry_fail(d, FERRY_E_INVALID_ARG, "gateway: this libcoap has no DTLS");
        if (c->psk_len < 16 || !c->node_id[0])
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "gateway: coaps:// needs a pre-shared key of 16..%d bytes",
                              EDGE_COAP_PSK_MAX);
        coap_dtls_cpsk_t setup;
        memset(&setup, 0, sizeof(setup));
        setup.version = COAP_DTLS_CPSK_SETUP_VERSION;
        setup.psk_info.identity.s = (const uint8_t *)c->node_id;
        setup.psk_info.identity.length = strlen(c->node_id);
        setup.psk_info.key.s = c->psk;
        setup.psk_info.key.length = c->psk_len;
        c->session = coap_new_client_session_psk2(c->ctx, NULL, &dst, COAP_PROTO_DTLS, &setup);
    }
    if (!c->session)
        return ferry_fail(d, FERRY_E_IO, "gateway: cannot open a CoAP session to '%s'", c->uri);
    coap_session_set_ack_timeout(c->session, (coap_fixed_point_t){(uint16_t)(c->ack_ms / 1000),
                                                                  (uint16_t)(c->ack_ms % 1000)});
    coap_session_set_max_retransmit(c->session, MAX_RETRANSMIT);
    c->sessions_opened++;
    c->opened_ms = ferry_now_ms();
    return FERRY_OK;
}

static void resend_now(void *arg)
{
    struct edge_coap *c = arg;
    c->resend_timer = 0;
    if (!c->resend_owed)
        return;
    c->resend_owed = false;
    if (c->hooks.new_session)
        c->hooks.new_session(c->hooks.arg);
}

/* The current session is up (plain CoAP: at once; DTLS: the handshake
 * completed). The new_session hook runs on the loop's next turn: libcoap
 * calls the event handler before it marks the session established and
 * sends what it queued (the registrations), and a block sent from inside
 * would be queued behind them (edge_coap.h, "Silence"). */
static void session_up(struct edge_coap *c)
{
    if (c->resend_owed)
        ferry_log_info("coap: the new session is up, %llu ms after it was opened",
                       (unsigned long long)(ferry_now_ms() - c->opened_ms));
    if (c->resend_owed && !c->resend_timer)
        c->resend_timer = ferry_loop_timer(c->loop, 0, resend_now, c);
}

static int on_event(coap_session_t *session, const coap_event_t event)
{
    struct edge_coap *c = coap_get_app_data(coap_session_get_context(session));
    if (event == COAP_EVENT_DTLS_CONNECTED && session == c->session)
        session_up(c);
    return 0;
}

/* The gateway has answered nothing for silence_ms while requests were out:
 * give the session up and open a new one. A NAT that renewed its mapping
 * (a new source port) leaves a DTLS session dead on the gateway's side,
 * which keys it by the old address (no Connection ID in libcoap 4.3.1);
 * only a new handshake from the new port gets through. What was out on the
 * old session is ended here: a status or configuration report counts as
 * unanswered now (its hook runs and the caller sends it again, on the new
 * session), the manifest and metadata registrations are sent again, and
 * block requests are the caller's: the new_session hook tells it to send
 * them again once the new session is up (session_up()). */
static void rehandshake(struct edge_coap *c)
{
    coap_session_t *old = c->session;
    uint64_t quiet = ferry_now_ms() - c->quiet_since;
    struct ferry_diag d = {{0}};
    c->session = NULL;
    if (open_session(c, &d) != FERRY_OK) {
        ferry_log_warn("coap: no answer from the gateway for %llu ms, and no new session: %s",
                       (unsigned long long)quiet, d.msg);
        c->session = old;
        c->quiet_since = ferry_now_ms();
        arm_silence(c, c->silence_ms);
        return;
    }
    ferry_log_info(
        "coap: no answer from the gateway for %llu ms: session %u given up, new session%s",
        (unsigned long long)quiet, c->sessions_opened,
        coap_session_get_proto(c->session) == COAP_PROTO_DTLS ? " (new DTLS handshake)" : "");
    /* Cancels what libcoap still retransmits on the old session (on_nack
     * ignores it: not c->session), then frees it with its socket. */
    coap_session_disconnected(old, COAP_NACK_NOT_DELIVERABLE);
    coap_session_release(old);
    c->quiet_since = 0;
    forget(c, &c->env.req);
    forget(c, &c->meta.blk);
    struct edge_coap_answer none = {0};
    if (c->status.out)
        deliver_status(c, &none);
    if (c->config.out)
        deliver_config(c, &none);
    send_observe(c);
    send_meta_observe(c, false);
    c->resend_owed = true;
    if (coap_session_get_proto(c->session) != COAP_PROTO_DTLS)
        session_up(c);
}

static void silence_check(void *arg)
{
    struct edge_coap *c = arg;
    c->silence_timer = 0;
    if (!c->quiet_since)
        return;
    uint64_t quiet = ferry_now_ms() - c->quiet_since;
    if (quiet < c->silence_ms)
        arm_silence(c, c->silence_ms - quiet);
    else
        rehandshake(c);
}

enum ferry_err edge_coap_new(struct ferry_loop *loop, const struct edge_coap_opts *opts,
                             const struct edge_coap_hooks *hooks, struct edge_coap **out,
                             struct ferry_diag *d)
{
    if (!opts->product || !ferry_id_valid(opts->product) || opts->poll_ms == 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "coap: bad product or poll period");
    if (opts->ack_timeout_ms && (opts->ack_timeout_ms < EDGE_COAP_MIN_ACK_TIMEOUT_MS ||
                                 opts->ack_timeout_ms > EDGE_COAP_MAX_ACK_TIMEOUT_MS))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "coap: ACK timeout of %llu ms is out of range",
                          (unsigned long long)opts->ack_timeout_ms);
    struct edge_coap *c = calloc(1, sizeof(*c));
    if (!c)
        return ferry_fail(d, FERRY_E_NOMEM, "coap: out of memory");
    c->loop = loop;
    c->hooks = *hooks;
    c->poll_ms = opts->poll_ms;
    c->ack_ms = opts->ack_timeout_ms ? opts->ack_timeout_ms : EDGE_COAP_DEFAULT_ACK_TIMEOUT_MS;
    c->silence_ms = EDGE_COAP_SILENCE_ACKS * c->ack_ms;
    if (opts->psk && opts->psk_len <= EDGE_COAP_PSK_MAX) {
        memcpy(c->psk, opts->psk, opts->psk_len);
        c->psk_len = opts->psk_len;
    }
    c->timeout_ms =
        opts->request_timeout_ms ? opts->request_timeout_ms : EDGE_COAP_DEFAULT_TIMEOUT_MS;
    ferry_prng_seed(&c->rng, opts->seed);
    snprintf(c->manifest_path, sizeof(c->manifest_path), "%s/%s", FERRY_COAP_MANIFEST,
             opts->product);
    if (opts->node_id && ferry_id_valid(opts->node_id))
        snprintf(c->node_id, sizeof(c->node_id), "%s", opts->node_id);
    /* A prefix of this run's own: answers to an earlier run's requests
     * (the seed differs) are not taken for blocks. */
    ferry_put_le_n(c->block_prefix, ferry_prng_next(&c->rng), BLOCK_PREFIX_LEN);
    c->next_token = ferry_prng_next(&c->rng);
    snprintf(c->meta.path, sizeof(c->meta.path), "%s/%s", FERRY_COAP_META, opts->product);
    snprintf(c->meta.query, sizeof(c->meta.query), "r=%llu", (unsigned long long)opts->meta_have);
    c->uri = strdup(opts->uri ? opts->uri : "");
    if (!c->uri || (opts->nmanifest_query &&
                    !(c->mquery = calloc(opts->nmanifest_query, sizeof(*c->mquery))))) {
        free(c->uri);
        free(c);
        return ferry_fail(d, FERRY_E_NOMEM, "coap: out of memory");
    }
    for (size_t i = 0; i < opts->nmanifest_query; i++)
        snprintf(c->mquery[c->nmquery++], FERRY_NODEINFO_ITEM_MAX, "%s", opts->manifest_query[i]);
    ferry_coapglue_up();
    c->glue_up = true;
    enum ferry_err err = FERRY_OK;
    c->ctx = coap_new_context(NULL);
    if (!c->ctx)
        err = ferry_fail(d, FERRY_E_NOMEM, "coap: cannot create a context");
    if (err == FERRY_OK) {
        coap_set_app_data(c->ctx, c);
        coap_register_response_handler(c->ctx, on_response);
        coap_register_nack_handler(c->ctx, on_nack);
        coap_register_event_handler(c->ctx, on_event);
        err = open_session(c, d);
    }
    if (err == FERRY_OK)
        err = ferry_coapglue_io_start(&c->io, loop, c->ctx, NULL, NULL, d);
    if (err == FERRY_OK) {
        c->poll_timer = ferry_loop_timer(loop, 0, poll_timer, c);
        if (!c->poll_timer)
            err = ferry_fail(d, FERRY_E_NOMEM, "coap: out of memory");
    }
    if (err != FERRY_OK) {
        edge_coap_free(c);
        return err;
    }
    *out = c;
    return FERRY_OK;
}

void edge_coap_free(struct edge_coap *c)
{
    if (!c)
        return;
    forget(c, &c->observe);
    forget(c, &c->env.req);
    forget(c, &c->status);
    forget(c, &c->meta.observe);
    forget(c, &c->meta.blk);
    forget(c, &c->config);
    if (c->poll_timer)
        ferry_loop_cancel(c->loop, c->poll_timer);
    if (c->reobserve_timer)
        ferry_loop_cancel(c->loop, c->reobserve_timer);
    if (c->silence_timer)
        ferry_loop_cancel(c->loop, c->silence_timer);
    if (c->resend_timer)
        ferry_loop_cancel(c->loop, c->resend_timer);
    ferry_coapglue_io_stop(&c->io);
    if (c->session)
        coap_session_release(c->session);
    if (c->ctx)
        coap_free_context(c->ctx);
    if (c->glue_up)
        ferry_coapglue_down();
    free(c->mquery);
    free(c->uri);
    free(c);
}
