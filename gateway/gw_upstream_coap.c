#include "gw_upstream_coap.h"

#include "ferry_batch.h"
#include "ferry_blockwin.h"
#include "ferry_coapglue.h"
#include "ferry_hex.h"
#include "ferry_log.h"
#include "ferry_meta.h"
#include "ferry_random.h"
#include "ferry_root.h"
#include "ferry_signed.h"
#include "ferry_stream.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_LEN 8
#define BLOCK     GW_UPSTREAM_COAP_BLOCK
#define BLOCK_SZX 6
/* A manifest envelope and a metadata bundle are at most this long. */
#define BODY_MAX FERRY_META_MAX_BYTES
/* A confirmable request is given up on after about 1 + 2 + 4 s (with
 * libcoap's random factor): a parent that is gone is noticed within
 * seconds, not after libcoap's default of about 90. */
#define ACK_TIMEOUT_S  1
#define MAX_RETRANSMIT 2
/* Silence for this many polls means the parent is gone. */
#define SILENT_POLLS 3
/* After an error answer to a status POST other than 5.03. */
#define STATUS_PAUSE_MS 5000u
#define BLOCKWIN_WINDOW 16

/* Tokens: kind, three bytes of this run's prefix (an answer to an earlier
 * run's request is not taken), then a 32-bit value. */
enum token_kind {
    TK_MANIFEST = 'M', /* value: product index */
    TK_MANBLK = 'm',   /* value: index << 24 | generation << 8 | block */
    TK_META = 'T',     /* value: index << 16 | generation */
    TK_METABLK = 't',  /* value: as TK_MANBLK */
    TK_BLOCK = 'B',    /* value: the window's request id */
    TK_STATUS = 'S',   /* value: a counter */
};

/* A body that came in blocks: the first in an answer (a notification or a
 * poll), the others asked for one by one. */
struct body {
    uint8_t *buf;
    size_t len;
    uint32_t next; /* the block asked for, while fetching */
    uint32_t gen;  /* of the token of the blocks: a new body, a new one */
    bool fetching;
    uint8_t etag[8];
    size_t etag_len;
    bool plain;    /* the parent refused the observation (4.29): poll only */
    uint32_t rgen; /* meta: generation of the registration's token */
    uint64_t r;    /* meta: the root version it was made with */
};

struct watch {
    char product[FERRY_ID_MAX + 1];
    struct body man, meta;
};

/* The artifact being fetched: from emit_off to the end, handed up a chunk
 * at a time, in order. buf holds the blocks from emit_off on (buf_lo) as
 * far as the window can ask (FERRY_BLOCKWIN_SPAN past its first hole). */
struct upstream_artifact {
    bool active;
    uint32_t gen; /* bumped whenever the job is replaced or stopped */
    uint8_t sha[FERRY_SHA256_LEN];
    char hex[FERRY_SHA256_HEX_LEN + 1];
    uint32_t chunk;
    uint64_t total; /* 0 until the parent said (Size2) */
    uint64_t emit_off;
    uint64_t buf_lo;
    size_t buf_blocks;
    uint8_t *buf;
    struct ferry_blockwin win;
    uint64_t timer;
};

struct status_job {
    bool active;
    struct ferry_batch *b;
    size_t next;
    uint32_t inflight; /* the token value of the POST out, 0: none */
    struct ferry_batch_ack ack;
    uint64_t not_before_ms;
    uint64_t timer;
};

struct up {
    struct ferry_loop *loop;
    gw_upstream_handlers h;
    char id[FERRY_ID_MAX + 1];
    uint32_t poll_ms;
    uint64_t (*root_version)(void *arg);
    void *root_arg;
    struct ferry_prng rng; /* jitter and token prefixes, nothing secret */
    uint8_t prefix[3];

    coap_context_t *ctx;
    coap_session_t *ses;
    struct ferry_coapglue_io io;
    coap_address_t dst;
    bool dtls;
    uint8_t psk[FERRY_COAPGLUE_PSK_MAX];
    size_t psk_len;

    bool up;
    bool reopen; /* the session is to be replaced before the next request */
    uint64_t last_answer_ms;
    uint64_t poll_timer;
    struct watch w[GW_UPSTREAM_COAP_PRODUCTS];
    size_t nw;
    struct upstream_artifact art;
    struct status_job st;
    uint32_t status_counter;
};

/* ---- the link ------------------------------------------------------------ */

static enum ferry_err open_session(struct up *u, struct ferry_diag *d)
{
    if (!u->dtls) {
        u->ses = coap_new_client_session(u->ctx, NULL, &u->dst, COAP_PROTO_UDP);
    } else {
        coap_dtls_cpsk_t setup;
        memset(&setup, 0, sizeof(setup));
        setup.version = COAP_DTLS_CPSK_SETUP_VERSION;
        setup.psk_info.identity.s = (const uint8_t *)u->id;
        setup.psk_info.identity.length = strlen(u->id);
        setup.psk_info.key.s = u->psk;
        setup.psk_info.key.length = u->psk_len;
        u->ses = coap_new_client_session_psk2(u->ctx, NULL, &u->dst, COAP_PROTO_DTLS, &setup);
    }
    if (!u->ses)
        return ferry_fail(d, FERRY_E_IO, "upstream: cannot open a CoAP session to the parent");
    coap_session_set_ack_timeout(u->ses, (coap_fixed_point_t){ACK_TIMEOUT_S, 0});
    coap_session_set_max_retransmit(u->ses, MAX_RETRANSMIT);
    return FERRY_OK;
}

static void art_kick(struct up *u);
static void status_pump(struct up *u);

static void went_up(struct up *u)
{
    u->last_answer_ms = ferry_now_ms();
    if (u->up)
        return;
    u->up = true;
    ferry_log_info("upstream: the parent gateway answers; link up");
    art_kick(u);
    if (u->h.on_up)
        u->h.on_up(u->h.arg);
}

static void status_end(struct up *u, uint64_t pause_ms);

static void went_down(struct up *u, const char *why)
{
    if (u->st.active)
        status_end(u, 0);
    if (!u->up)
        return;
    u->up = false;
    ferry_log_warn("upstream: the parent gateway does not answer (%s); link down, serving what is "
                   "held",
                   why);
    /* A DTLS session does not survive a restart of the parent: a new one
     * at the next poll (never from inside libcoap's handlers). */
    u->reopen = u->dtls;
    if (u->h.on_down)
        u->h.on_down(u->h.arg);
}

static bool ensure_session(struct up *u)
{
    if (u->ses)
        return true;
    struct ferry_diag d = {{0}};
    if (open_session(u, &d) != FERRY_OK) {
        ferry_log_warn("%s", d.msg);
        return false;
    }
    return true;
}

static void make_token(const struct up *u, enum token_kind kind, uint32_t value,
                       uint8_t tok[TOKEN_LEN])
{
    tok[0] = (uint8_t)kind;
    memcpy(tok + 1, u->prefix, sizeof(u->prefix));
    for (int i = 0; i < 4; i++)
        tok[4 + i] = (uint8_t)(value >> (24 - 8 * i));
}

static bool parse_token(const struct up *u, coap_bin_const_t t, enum token_kind *kind,
                        uint32_t *value)
{
    if (t.length != TOKEN_LEN || memcmp(t.s + 1, u->prefix, sizeof(u->prefix)) != 0)
        return false;
    *kind = (enum token_kind)t.s[0];
    *value = (uint32_t)t.s[4] << 24 | (uint32_t)t.s[5] << 16 | (uint32_t)t.s[6] << 8 | t.s[7];
    return true;
}

/* A request with a token, the path's segments and the query items (NULL
 * ended). */
static coap_pdu_t *new_request(struct up *u, coap_pdu_type_t type, coap_pdu_code_t code,
                               enum token_kind kind, uint32_t value, const char *path,
                               const char *const *query)
{
    if (!ensure_session(u))
        return NULL;
    coap_pdu_t *pdu =
        coap_pdu_init(type, code, coap_new_message_id(u->ses), coap_session_max_pdu_size(u->ses));
    uint8_t tok[TOKEN_LEN];
    make_token(u, kind, value, tok);
    if (!pdu || !coap_add_token(pdu, sizeof(tok), tok))
        goto fail;
    for (const char *seg = path; *seg;) {
        const char *end = strchr(seg, '/');
        size_t n = end ? (size_t)(end - seg) : strlen(seg);
        if (!coap_add_option(pdu, COAP_OPTION_URI_PATH, n, (const uint8_t *)seg))
            goto fail;
        seg += n + (end ? 1 : 0);
    }
    for (size_t i = 0; query && query[i]; i++)
        if (!coap_add_option(pdu, COAP_OPTION_URI_QUERY, strlen(query[i]),
                             (const uint8_t *)query[i]))
            goto fail;
    return pdu;
fail:
    coap_delete_pdu(pdu);
    return NULL;
}

static bool send_pdu(struct up *u, coap_pdu_t *pdu)
{
    if (!pdu)
        return false;
    return coap_send(u->ses, pdu) != COAP_INVALID_MID;
}

/* ---- manifests and trust metadata --------------------------------------- */

static void path_of(char *out, size_t cap, const char *resource, const char *product)
{
    snprintf(out, cap, "%s/%s", resource, product);
}

static void ask_resource(struct up *u, size_t i, bool meta)
{
    struct watch *w = &u->w[i];
    struct body *b = meta ? &w->meta : &w->man;
    char path[96], nq[8 + FERRY_ID_MAX], rq[32];
    path_of(path, sizeof(path), meta ? FERRY_COAP_META : FERRY_COAP_MANIFEST, w->product);
    snprintf(nq, sizeof(nq), "%s%s", FERRY_COAPGLUE_NODE_QUERY, u->id);
    uint32_t value = (uint32_t)i;
    if (meta) {
        uint64_t r = u->root_version ? u->root_version(u->root_arg) : 0;
        if (r != b->r) { /* a new query: a new registration, with a token of its own */
            b->r = r;
            b->rgen++;
        }
        snprintf(rq, sizeof(rq), "r=%" PRIu64, r);
        value = (uint32_t)i << 16 | (b->rgen & 0xffff);
    }
    const char *query[] = {nq, meta ? rq : NULL, NULL};
    coap_pdu_t *pdu = new_request(u, COAP_MESSAGE_CON, COAP_REQUEST_CODE_GET,
                                  meta ? TK_META : TK_MANIFEST, value, path, query);
    static const uint8_t zero = 0;
    if (pdu && !b->plain && !coap_add_option(pdu, COAP_OPTION_OBSERVE, 0, &zero)) {
        coap_delete_pdu(pdu);
        pdu = NULL;
    }
    if (!send_pdu(u, pdu))
        ferry_log_debug("upstream: %s of %s not asked for now", meta ? "metadata" : "manifest",
                        w->product);
}

static void ask_body_block(struct up *u, size_t i, bool meta)
{
    struct watch *w = &u->w[i];
    struct body *b = meta ? &w->meta : &w->man;
    char path[96], nq[8 + FERRY_ID_MAX], rq[32];
    path_of(path, sizeof(path), meta ? FERRY_COAP_META : FERRY_COAP_MANIFEST, w->product);
    snprintf(nq, sizeof(nq), "%s%s", FERRY_COAPGLUE_NODE_QUERY, u->id);
    snprintf(rq, sizeof(rq), "r=%" PRIu64, b->r);
    const char *query[] = {nq, meta ? rq : NULL, NULL};
    uint32_t value = (uint32_t)i << 24 | (b->gen & 0xffff) << 8 | (b->next & 0xff);
    coap_pdu_t *pdu = new_request(u, COAP_MESSAGE_CON, COAP_REQUEST_CODE_GET,
                                  meta ? TK_METABLK : TK_MANBLK, value, path, query);
    struct ferry_coapglue_block blk = {.num = b->next, .szx = BLOCK_SZX};
    if (pdu && !ferry_coapglue_add_block(pdu, COAP_OPTION_BLOCK2, &blk)) {
        coap_delete_pdu(pdu);
        pdu = NULL;
    }
    if (!send_pdu(u, pdu))
        b->fetching = false; /* the next poll starts over */
}

/* A bundle's documents go to the gateway as the broker's topics would
 * bring them: each root under its version, then the timestamp. */
static void deliver_meta(struct up *u, const char *product, const uint8_t *buf, size_t len)
{
    struct ferry_meta *m = NULL;
    struct ferry_diag d = {{0}};
    if (ferry_meta_parse(buf, len, &m, &d) != FERRY_OK) {
        ferry_log_warn("upstream: metadata of %s from the parent refused: %s", product, d.msg);
        return;
    }
    for (size_t i = 0; i < m->nroots; i++) {
        struct ferry_signed *s = NULL;
        struct ferry_root root;
        char level[24];
        if (ferry_signed_parse(m->roots[i].buf, m->roots[i].len, FERRY_ROOT_MAX_BYTES, "root", &s,
                               &d) != FERRY_OK ||
            ferry_root_parse(s->body, s->body_len, &root, &d) != FERRY_OK) {
            ferry_log_warn("upstream: a root from the parent refused: %s", d.msg);
            ferry_signed_free(s);
            break; /* later roots chain from this one */
        }
        ferry_signed_free(s);
        snprintf(level, sizeof(level), "%" PRIu64, root.version);
        if (u->h.on_root)
            u->h.on_root(u->h.arg, level, m->roots[i].buf, m->roots[i].len);
    }
    if (m->timestamp.buf && u->h.on_timestamp)
        u->h.on_timestamp(u->h.arg, product, m->timestamp.buf, m->timestamp.len);
    ferry_meta_free(m);
}

static void deliver_body(struct up *u, size_t i, bool meta, const uint8_t *buf, size_t len)
{
    char product[FERRY_ID_MAX + 1];
    snprintf(product, sizeof(product), "%s", u->w[i].product);
    if (len == 0)
        return; /* the parent holds nothing for the line yet */
    if (meta)
        deliver_meta(u, product, buf, len);
    else if (u->h.on_release)
        u->h.on_release(u->h.arg, product, buf, len);
}

struct answer {
    coap_pdu_code_t code;
    const uint8_t *data;
    size_t len;
    bool has_block;
    struct ferry_coapglue_block block;
    uint64_t max_age; /* seconds; 60 when absent (RFC 7252) */
    uint64_t size2;   /* 0 when absent */
    const uint8_t *etag;
    size_t etag_len;
};

static bool read_answer(const coap_pdu_t *pdu, struct answer *a)
{
    memset(a, 0, sizeof(*a));
    a->code = coap_pdu_get_code(pdu);
    if (!coap_get_data(pdu, &a->len, &a->data)) {
        a->data = NULL;
        a->len = 0;
    }
    bool present = false;
    struct ferry_diag d = {{0}};
    if (ferry_coapglue_get_block(pdu, COAP_OPTION_BLOCK2, &a->has_block, &a->block, &d) != FERRY_OK)
        return false;
    if (ferry_coapglue_get_uint(pdu, COAP_OPTION_MAXAGE, FERRY_COAPGLUE_MAX_AGE_BYTES, &present,
                                &a->max_age, &d) != FERRY_OK)
        return false;
    if (!present)
        a->max_age = 60;
    if (ferry_coapglue_get_uint(pdu, COAP_OPTION_SIZE2, FERRY_COAPGLUE_SIZE2_BYTES, &present,
                                &a->size2, &d) != FERRY_OK)
        return false;
    coap_opt_iterator_t it;
    coap_opt_t *opt = coap_check_option(pdu, COAP_OPTION_ETAG, &it);
    if (opt) {
        a->etag = coap_opt_value(opt);
        a->etag_len = coap_opt_length(opt);
        if (a->etag_len > 8)
            return false;
    }
    return true;
}

/* The first answer of a body (an observation's, a poll's): whole, or its
 * first block with more to come. */
static void body_first(struct up *u, size_t i, bool meta, const struct answer *a)
{
    struct body *b = meta ? &u->w[i].meta : &u->w[i].man;
    if (a->code == COAP_RESPONSE_CODE_TOO_MANY_REQUESTS && !b->plain) {
        /* Beyond the parent's Observe cap: ask without observing, at once
         * and at every poll. */
        b->plain = true;
        ask_resource(u, i, meta);
        return;
    }
    if (a->code != COAP_RESPONSE_CODE_CONTENT) {
        ferry_log_debug("upstream: %s of %s: the parent answers %d.%02d",
                        meta ? "metadata" : "manifest", u->w[i].product, a->code >> 5,
                        a->code & 31);
        return;
    }
    if (!a->has_block || !a->block.more) {
        b->fetching = false;
        deliver_body(u, i, meta, a->data, a->len);
        return;
    }
    if (a->block.num != 0 || a->len != BLOCK || !a->etag_len)
        return; /* not a first block of 1 KiB with its ETag: the next poll tries again */
    if (!b->buf && !(b->buf = malloc(BODY_MAX)))
        return;
    memcpy(b->buf, a->data, a->len);
    b->len = a->len;
    memcpy(b->etag, a->etag, a->etag_len);
    b->etag_len = a->etag_len;
    b->next = 1;
    b->gen++;
    b->fetching = true;
    ask_body_block(u, i, meta);
}

static void body_block(struct up *u, uint32_t value, bool meta, const struct answer *a)
{
    size_t i = value >> 24;
    if (i >= u->nw)
        return;
    struct body *b = meta ? &u->w[i].meta : &u->w[i].man;
    if (!b->fetching || ((value >> 8) & 0xffff) != (b->gen & 0xffff) || (value & 0xff) != b->next)
        return; /* a late answer to a body given up */
    bool ok = a->code == COAP_RESPONSE_CODE_CONTENT && a->has_block && a->block.num == b->next &&
              a->block.szx == BLOCK_SZX && a->etag_len == b->etag_len &&
              memcmp(a->etag, b->etag, b->etag_len) == 0 && b->len + a->len <= BODY_MAX &&
              (!a->block.more || a->len == BLOCK);
    if (!ok) {
        b->fetching = false; /* changed under us, or refused: the next poll starts over */
        return;
    }
    memcpy(b->buf + b->len, a->data, a->len);
    b->len += a->len;
    if (a->block.more && b->next < 0xff) {
        b->next++;
        ask_body_block(u, i, meta);
        return;
    }
    b->fetching = false;
    if (!a->block.more)
        deliver_body(u, i, meta, b->buf, b->len);
}

static void poll_all(struct up *u)
{
    for (size_t i = 0; i < u->nw; i++) {
        ask_resource(u, i, false);
        ask_resource(u, i, true);
    }
}

static void on_poll(void *arg)
{
    struct up *u = arg;
    uint64_t now = ferry_now_ms();
    if (u->up && now - u->last_answer_ms > (uint64_t)SILENT_POLLS * u->poll_ms)
        went_down(u, "no answer for three poll periods");
    if (u->reopen && u->ses) {
        coap_session_release(u->ses);
        u->ses = NULL;
    }
    u->reopen = false;
    poll_all(u);
    /* Without anything to observe, a probe keeps the link's state known. */
    if (u->nw == 0) {
        const char *query[] = {NULL};
        send_pdu(u, new_request(u, COAP_MESSAGE_CON, COAP_REQUEST_CODE_GET, TK_MANIFEST, UINT32_MAX,
                                ".well-known/core", query));
    }
    uint32_t jitter = (uint32_t)(ferry_prng_next(&u->rng) % (u->poll_ms / 5 + 1));
    u->poll_timer = ferry_loop_timer(u->loop, u->poll_ms - u->poll_ms / 10 + jitter, on_poll, u);
}

static void coap_want(void *impl, const char *product)
{
    struct up *u = impl;
    if (!ferry_id_valid(product))
        return;
    for (size_t i = 0; i < u->nw; i++)
        if (strcmp(u->w[i].product, product) == 0)
            return;
    if (u->nw == GW_UPSTREAM_COAP_PRODUCTS) {
        ferry_log_warn("upstream: already following %d product lines; %s is not asked for",
                       GW_UPSTREAM_COAP_PRODUCTS, product);
        return;
    }
    struct watch *w = &u->w[u->nw++];
    memset(w, 0, sizeof(*w));
    snprintf(w->product, sizeof(w->product), "%s", product);
    w->meta.r = UINT64_MAX; /* the first ask makes the registration */
    ferry_log_info("upstream: following product %s from the parent", product);
    ask_resource(u, u->nw - 1, false);
    ask_resource(u, u->nw - 1, true);
}

/* ---- artifacts ------------------------------------------------------------- */

static void art_timer(void *arg);

static void art_stop(struct up *u)
{
    struct upstream_artifact *a = &u->art;
    if (a->timer)
        ferry_loop_cancel(u->loop, a->timer);
    a->timer = 0;
    a->active = false;
    a->gen++;
}

static void art_arm(struct up *u, uint64_t now)
{
    struct upstream_artifact *a = &u->art;
    if (a->timer)
        ferry_loop_cancel(u->loop, a->timer);
    a->timer = 0;
    uint64_t due = ferry_blockwin_due(&a->win, now);
    if (due != FERRY_BLOCKWIN_NEVER)
        a->timer = ferry_loop_timer(u->loop, due > now ? due - now : 0, art_timer, u);
}

static void art_pump(struct up *u)
{
    struct upstream_artifact *a = &u->art;
    if (!a->active)
        return;
    uint64_t now = ferry_now_ms();
    struct ferry_blockwin_send s;
    char path[96], nq[8 + FERRY_ID_MAX];
    snprintf(path, sizeof(path), "%s/%s", FERRY_COAP_ARTIFACT, a->hex);
    snprintf(nq, sizeof(nq), "%s%s", FERRY_COAPGLUE_NODE_QUERY, u->id);
    const char *query[] = {nq, NULL};
    while (ferry_blockwin_next(&a->win, now, &s)) {
        /* Non-confirmable (D2): the window times and resends them. */
        coap_pdu_t *pdu =
            new_request(u, COAP_MESSAGE_NON, COAP_REQUEST_CODE_GET, TK_BLOCK, s.req, path, query);
        struct ferry_coapglue_block blk = {.num = (uint32_t)s.block, .szx = BLOCK_SZX};
        if (pdu && !ferry_coapglue_add_block(pdu, COAP_OPTION_BLOCK2, &blk)) {
            coap_delete_pdu(pdu);
            pdu = NULL;
        }
        if (!send_pdu(u, pdu))
            break; /* its deadline passes and it goes again */
    }
    art_arm(u, now);
}

static void art_timer(void *arg)
{
    struct up *u = arg;
    u->art.timer = 0;
    if (!u->art.active)
        return;
    ferry_blockwin_expire(&u->art.win, ferry_now_ms());
    art_pump(u);
}

static void art_kick(struct up *u)
{
    if (!u->art.active)
        return;
    ferry_blockwin_kick(&u->art.win, ferry_now_ms());
    art_pump(u);
}

/* The job hands up an error chunk (the fetch asks again later) and stops. */
static void art_fail(struct up *u, const char *msg)
{
    struct upstream_artifact *a = &u->art;
    ferry_log_warn("upstream: artifact %.16s: %s", a->hex, msg);
    size_t len = strlen(msg);
    uint8_t *buf = malloc(FERRY_STREAM_HEADER_LEN + len);
    uint8_t sha[FERRY_SHA256_LEN];
    memcpy(sha, a->sha, sizeof(sha));
    uint64_t off = a->emit_off;
    art_stop(u);
    if (!buf)
        return;
    memcpy(buf + FERRY_STREAM_HEADER_LEN, msg, len);
    ferry_chunk_header(buf, FERRY_CHUNK_ERROR, sha, off, 0, buf + FERRY_STREAM_HEADER_LEN,
                       (uint32_t)len);
    if (u->h.on_chunk)
        u->h.on_chunk(u->h.arg, buf, FERRY_STREAM_HEADER_LEN + len);
    free(buf);
}

static uint64_t blocks_of(uint64_t bytes)
{
    return (bytes + BLOCK - 1) / BLOCK;
}

/* Hands up every complete chunk at emit_off, in order. False when the job
 * changed meanwhile (the gateway asked for something else from inside
 * on_chunk). */
static bool art_emit(struct up *u)
{
    struct upstream_artifact *a = &u->art;
    uint32_t gen = a->gen;
    uint64_t cblocks = a->chunk / BLOCK;
    while (a->active && a->total && a->emit_off < a->total) {
        uint64_t end = a->emit_off + a->chunk < a->total ? a->emit_off + a->chunk : a->total;
        for (uint64_t b = a->emit_off / BLOCK; b < blocks_of(end); b++)
            if (!ferry_blockwin_has(&a->win, b))
                return true;
        uint32_t len = (uint32_t)(end - a->emit_off);
        uint8_t *msg = malloc(FERRY_STREAM_HEADER_LEN + len);
        if (!msg)
            return true; /* asked again later */
        memcpy(msg + FERRY_STREAM_HEADER_LEN, a->buf, len);
        ferry_chunk_header(msg, FERRY_CHUNK_DATA, a->sha, a->emit_off, a->total,
                           msg + FERRY_STREAM_HEADER_LEN, len);
        memmove(a->buf, a->buf + cblocks * BLOCK, (a->buf_blocks - cblocks) * BLOCK);
        a->buf_lo += cblocks;
        a->emit_off = end;
        if (a->emit_off >= a->total) {
            ferry_log_debug("upstream: artifact %.16s fetched from the parent", a->hex);
            art_stop(u);
        }
        if (u->h.on_chunk)
            u->h.on_chunk(u->h.arg, msg, FERRY_STREAM_HEADER_LEN + len);
        free(msg);
        if (a->gen != gen)
            return false;
    }
    return true;
}

static void art_answer(struct up *u, uint32_t req, const struct answer *ans)
{
    struct upstream_artifact *a = &u->art;
    uint64_t block = 0;
    if (!a->active || !ferry_blockwin_lookup(&a->win, req, &block))
        return; /* a duplicate, or of a job given up */
    uint64_t now = ferry_now_ms();
    if (ans->code == COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE) {
        ferry_blockwin_hold(&a->win, req, now, now + ans->max_age * 1000, false);
        art_pump(u);
        return;
    }
    if (ans->code == COAP_RESPONSE_CODE_NOT_FOUND) {
        art_fail(u, "not-found: the parent gateway has no such artifact");
        return;
    }
    if (ans->code == COAP_RESPONSE_CODE_FORBIDDEN) {
        art_fail(u, "busy: the parent gateway withholds the artifact from this gateway");
        return;
    }
    bool whole = !ans->has_block && block == 0;
    bool ok = ans->code == COAP_RESPONSE_CODE_CONTENT &&
              (whole || (ans->block.num == block && ans->block.szx == BLOCK_SZX)) &&
              ans->len <= BLOCK && (ans->len == BLOCK || !ans->has_block || !ans->block.more);
    uint64_t total = ans->size2 ? ans->size2 : (whole ? ans->len : 0);
    if (!ok || !total || (a->total && total != a->total) || block * BLOCK + ans->len > total) {
        ferry_blockwin_retry(&a->win, req, now);
        art_pump(u);
        return;
    }
    uint64_t slot = block - a->buf_lo;
    if (block >= a->buf_lo && slot < a->buf_blocks)
        memcpy(a->buf + slot * BLOCK, ans->data, ans->len);
    ferry_blockwin_got(&a->win, req, now);
    if (!a->total) {
        /* The size is known now: the window covers the artifact's end. */
        a->total = total;
        uint8_t have[FERRY_BLOCKWIN_BITMAP_BYTES];
        ferry_blockwin_bitmap(&a->win, have);
        ferry_blockwin_begin(&a->win, blocks_of(total), ferry_blockwin_base(&a->win), have);
    }
    if (art_emit(u))
        art_pump(u);
}

static enum ferry_err art_request(struct up *u, const uint8_t *buf, size_t len)
{
    struct ferry_stream_req r;
    struct ferry_diag d = {{0}};
    if (ferry_stream_req_decode(buf, len, &r, &d) != FERRY_OK)
        return ferry_fail(&d, FERRY_E_INVALID_ARG, "upstream: %s", d.msg);
    struct upstream_artifact *a = &u->art;
    if (a->active && memcmp(a->sha, r.sha256, FERRY_SHA256_LEN) == 0 && a->chunk == r.chunk &&
        r.offset >= a->emit_off)
        return FERRY_OK; /* under way: the job fetches to the end anyway */
    art_stop(u);
    size_t buf_blocks = FERRY_BLOCKWIN_SPAN + r.chunk / BLOCK;
    if (!a->buf && !(a->buf = malloc(buf_blocks * BLOCK)))
        return FERRY_E_NOMEM;
    a->buf_blocks = buf_blocks;
    bool same = memcmp(a->sha, r.sha256, FERRY_SHA256_LEN) == 0;
    memcpy(a->sha, r.sha256, FERRY_SHA256_LEN);
    ferry_hex_encode(a->sha, FERRY_SHA256_LEN, a->hex);
    a->chunk = r.chunk;
    a->total = same ? a->total : 0;
    a->emit_off = r.offset;
    a->buf_lo = r.offset / BLOCK;
    a->active = true;
    /* Until the size is known, the first block alone. */
    uint64_t nblocks = a->total ? blocks_of(a->total) : a->buf_lo + 1;
    ferry_blockwin_begin(&a->win, nblocks, a->buf_lo, NULL);
    ferry_log_debug("upstream: fetching %.16s from the parent from offset %" PRIu64, a->hex,
                    r.offset);
    art_pump(u);
    return FERRY_OK;
}

/* ---- status ---------------------------------------------------------------- */

static void status_timer(void *arg)
{
    struct up *u = arg;
    u->st.timer = 0;
    status_pump(u);
}

/* The batch ends: what was done is acknowledged as the cloud would; the
 * rest stays in the outbox and is not posted before pause_ms. */
static void status_end(struct up *u, uint64_t pause_ms)
{
    struct status_job *s = &u->st;
    s->active = false;
    s->inflight = 0;
    s->not_before_ms = ferry_now_ms() + pause_ms;
    if (s->ack.n + s->ack.nrefused == 0)
        return; /* nothing to say: the relay sends the batch again */
    char *json = NULL;
    size_t len = 0;
    struct ferry_diag d = {{0}};
    struct ferry_batch_ack ack = s->ack;
    s->ack.n = s->ack.nrefused = 0;
    if (ferry_batch_ack_encode(&ack, &json, &len, &d) != FERRY_OK) {
        ferry_log_err("upstream: %s", d.msg);
        return;
    }
    if (u->h.on_status_ack)
        u->h.on_status_ack(u->h.arg, (const uint8_t *)json, len);
    free(json);
}

static void status_pump(struct up *u)
{
    struct status_job *s = &u->st;
    if (!s->active || s->inflight)
        return;
    uint64_t now = ferry_now_ms();
    if (now < s->not_before_ms) {
        if (!s->timer)
            s->timer = ferry_loop_timer(u->loop, s->not_before_ms - now, status_timer, u);
        return;
    }
    if (s->next >= s->b->n) {
        status_end(u, 0);
        return;
    }
    char *json = NULL;
    size_t len = 0;
    struct ferry_diag d = {{0}};
    const struct ferry_status *rec = &s->b->records[s->next];
    if (ferry_status_to_json(rec, &json, &len, &d) != FERRY_OK) {
        ferry_log_err("upstream: record of node %s not sent: %s", rec->node, d.msg);
        struct ferry_record_refusal *f = &s->ack.refused[s->ack.nrefused++];
        snprintf(f->id.node, sizeof(f->id.node), "%s", rec->node);
        f->id.seq = rec->seq;
        f->reason = FERRY_E_MALFORMED;
        s->next++;
        status_pump(u);
        return;
    }
    char nq[8 + FERRY_ID_MAX];
    snprintf(nq, sizeof(nq), "%s%s", FERRY_COAPGLUE_NODE_QUERY, u->id);
    const char *query[] = {nq, NULL};
    uint32_t value = ++u->status_counter ? u->status_counter : ++u->status_counter;
    coap_pdu_t *pdu = new_request(u, COAP_MESSAGE_CON, COAP_REQUEST_CODE_POST, TK_STATUS, value,
                                  FERRY_COAP_STATUS, query);
    uint8_t cf = COAP_MEDIATYPE_APPLICATION_JSON;
    bool ok = pdu && coap_add_option(pdu, COAP_OPTION_CONTENT_FORMAT, 1, &cf) &&
              coap_add_data(pdu, len, (const uint8_t *)json);
    free(json);
    if (!ok) {
        coap_delete_pdu(pdu);
        ferry_log_warn("upstream: the record of node %s seq %" PRIu64 " cannot be posted now",
                       rec->node, rec->seq);
        status_end(u, STATUS_PAUSE_MS);
        return;
    }
    if (!send_pdu(u, pdu)) {
        status_end(u, STATUS_PAUSE_MS);
        return;
    }
    s->inflight = value;
}

static void status_answer(struct up *u, uint32_t value, const struct answer *a)
{
    struct status_job *s = &u->st;
    if (!s->active || s->inflight != value)
        return; /* of a batch replaced since */
    s->inflight = 0;
    const struct ferry_status *rec = &s->b->records[s->next];
    struct ferry_record_id id;
    snprintf(id.node, sizeof(id.node), "%s", rec->node);
    id.seq = rec->seq;
    enum ferry_err refused = FERRY_OK;
    switch (a->code) {
    case COAP_RESPONSE_CODE_CHANGED:
        s->ack.acked[s->ack.n++] = id;
        s->next++;
        status_pump(u);
        return;
    case COAP_RESPONSE_CODE_CONFLICT:
        refused = FERRY_E_CONFLICT;
        break;
    case COAP_RESPONSE_CODE_BAD_REQUEST:
    case COAP_RESPONSE_CODE_REQUEST_TOO_LARGE:
        refused = FERRY_E_MALFORMED;
        break;
    case COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE:
        ferry_log_info(
            "upstream: the parent cannot store node %s's record now (%.*s); again in %" PRIu64 " s",
            rec->node, (int)(a->len < 120 ? a->len : 120), (const char *)a->data, a->max_age);
        status_end(u, a->max_age * 1000);
        return;
    default:
        ferry_log_err("upstream: the parent refuses node %s's record seq %" PRIu64
                      " with %d.%02d: %.*s",
                      rec->node, rec->seq, a->code >> 5, a->code & 31,
                      (int)(a->len < 120 ? a->len : 120), (const char *)a->data);
        status_end(u, STATUS_PAUSE_MS);
        return;
    }
    ferry_log_warn("upstream: the parent refuses node %s's record seq %" PRIu64
                   " for good (%s): %.*s",
                   rec->node, rec->seq, ferry_err_name(refused), (int)(a->len < 120 ? a->len : 120),
                   (const char *)a->data);
    struct ferry_record_refusal *f = &s->ack.refused[s->ack.nrefused++];
    f->id = id;
    f->reason = refused;
    s->next++;
    status_pump(u);
}

static enum ferry_err status_batch(struct up *u, const uint8_t *buf, size_t len)
{
    struct status_job *s = &u->st;
    struct ferry_diag d = {{0}};
    if (!s->b && !(s->b = malloc(sizeof(*s->b))))
        return FERRY_E_NOMEM;
    if (ferry_batch_decode(buf, len, s->b, &d) != FERRY_OK) {
        ferry_log_err("upstream: a status batch of this gateway does not decode: %s", d.msg);
        return FERRY_E_INVALID_ARG;
    }
    /* A batch sent again (under a new id) replaces the one under way: an
     * answer still out for it is ignored, and its record is posted again. */
    s->active = true;
    s->next = 0;
    s->inflight = 0;
    memset(&s->ack, 0, sizeof(s->ack));
    snprintf(s->ack.id, sizeof(s->ack.id), "%s", s->b->id);
    /* From the loop, not from inside this publish: its ack must not arrive
     * before the relay's call returns. */
    if (!s->timer)
        s->timer = ferry_loop_timer(u->loop, 0, status_timer, u);
    return FERRY_OK;
}

/* ---- libcoap's callbacks ------------------------------------------------------ */

static coap_response_t on_response(coap_session_t *session, const coap_pdu_t *sent,
                                   const coap_pdu_t *received, const coap_mid_t mid)
{
    (void)sent;
    (void)mid;
    struct up *u = coap_get_app_data(coap_session_get_context(session));
    enum token_kind kind;
    uint32_t value = 0;
    struct answer a;
    if (!parse_token(u, coap_pdu_get_token(received), &kind, &value))
        return COAP_RESPONSE_FAIL; /* not ours (an earlier run's): a reset ends it */
    if (!read_answer(received, &a))
        return COAP_RESPONSE_OK; /* a broken option: as if lost */
    went_up(u);
    switch (kind) {
    case TK_MANIFEST:
        if (value < u->nw)
            body_first(u, value, false, &a);
        break;
    case TK_META:
        if ((value >> 16) < u->nw)
            body_first(u, value >> 16, true, &a);
        break;
    case TK_MANBLK:
        body_block(u, value, false, &a);
        break;
    case TK_METABLK:
        body_block(u, value, true, &a);
        break;
    case TK_BLOCK:
        art_answer(u, value, &a);
        break;
    case TK_STATUS:
        status_answer(u, value, &a);
        break;
    }
    return COAP_RESPONSE_OK;
}

static void on_nack(coap_session_t *session, const coap_pdu_t *sent,
                    const coap_nack_reason_t reason, const coap_mid_t mid)
{
    (void)mid;
    struct up *u = coap_get_app_data(coap_session_get_context(session));
    enum token_kind kind;
    uint32_t value = 0;
    if (reason == COAP_NACK_RST || !sent ||
        !parse_token(u, coap_pdu_get_token(sent), &kind, &value))
        return;
    if (kind == TK_STATUS && u->st.active && u->st.inflight == value)
        status_end(u, STATUS_PAUSE_MS);
    else if ((kind == TK_MANBLK || kind == TK_METABLK) && (value >> 24) < u->nw) {
        u->w[value >> 24].man.fetching = false;
        u->w[value >> 24].meta.fetching = false;
    }
    went_down(u, reason == COAP_NACK_TLS_FAILED ? "DTLS failed" : "a request went unanswered");
}

/* ---- the interface -------------------------------------------------------------- */

static bool coap_is_up(const void *impl)
{
    return ((const struct up *)impl)->up;
}

static enum ferry_err coap_publish(void *impl, enum ferry_topic which, const char *node,
                                   const void *buf, size_t len, bool retain)
{
    (void)node;
    (void)retain;
    struct up *u = impl;
    switch (which) {
    case FERRY_TOPIC_STREAM_REQ:
        return u->up ? art_request(u, buf, len) : FERRY_E_BUSY;
    case FERRY_TOPIC_STATUS:
        if (!u->up)
            return FERRY_E_BUSY;
        return status_batch(u, buf, len);
    default:
        /* Twins, descriptions, configuration and rollout reports: no
         * resource on a parent (gw_upstream_coap.h). */
        return FERRY_OK;
    }
}

static void coap_free_impl(void *impl)
{
    struct up *u = impl;
    if (!u)
        return;
    if (u->poll_timer)
        ferry_loop_cancel(u->loop, u->poll_timer);
    art_stop(u);
    if (u->st.timer)
        ferry_loop_cancel(u->loop, u->st.timer);
    ferry_coapglue_io_stop(&u->io);
    if (u->ses)
        coap_session_release(u->ses);
    if (u->ctx) {
        coap_free_context(u->ctx);
        ferry_coapglue_down();
    }
    for (size_t i = 0; i < u->nw; i++) {
        free(u->w[i].man.buf);
        free(u->w[i].meta.buf);
    }
    free(u->art.buf);
    free(u->st.b);
    explicit_bzero(u->psk, sizeof(u->psk));
    free(u);
}

static const struct gw_upstream_ops coap_ops = {
    .is_up = coap_is_up,
    .publish = coap_publish,
    .want = coap_want,
    .free = coap_free_impl,
};

enum ferry_err gw_upstream_coap_new(struct ferry_loop *loop, const struct gw_upstream_coap_opts *o,
                                    const gw_upstream_handlers *h, struct gw_upstream **out,
                                    struct ferry_diag *d)
{
    if (!o->gateway_id || !ferry_id_valid(o->gateway_id))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "upstream: the gateway id is not valid");
    struct gw_upstream *gu = calloc(1, sizeof(*gu));
    struct up *u = calloc(1, sizeof(*u));
    if (!gu || !u) {
        free(gu);
        free(u);
        return ferry_fail(d, FERRY_E_NOMEM, "upstream: out of memory");
    }
    u->loop = loop;
    u->h = *h;
    snprintf(u->id, sizeof(u->id), "%s", o->gateway_id);
    u->poll_ms = (o->poll_s ? o->poll_s : GW_UPSTREAM_COAP_DEFAULT_POLL_S) * 1000u;
    u->root_version = o->root_version;
    u->root_arg = o->root_arg;
    ferry_prng_seed(&u->rng, o->seed);
    uint64_t p = ferry_prng_next(&u->rng);
    memcpy(u->prefix, &p, sizeof(u->prefix));
    ferry_blockwin_init(&u->art.win, BLOCKWIN_WINDOW, ferry_prng_next(&u->rng));
    enum ferry_err err = ferry_coapglue_resolve(o->uri, "--upstream", &u->dst, &u->dtls, d);
    if (err == FERRY_OK && u->dtls && !coap_dtls_is_supported())
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "--upstream: this libcoap has no DTLS");
    if (err == FERRY_OK && u->dtls && !o->psk_file)
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "--upstream: coaps:// needs --upstream-psk-file");
    if (err == FERRY_OK && u->dtls)
        err = ferry_coapglue_read_psk(o->psk_file, u->psk, &u->psk_len, d);
    if (err != FERRY_OK) {
        free(gu);
        coap_free_impl(u);
        return err;
    }
    ferry_coapglue_up();
    u->ctx = coap_new_context(NULL);
    if (!u->ctx) {
        ferry_coapglue_down();
        err = ferry_fail(d, FERRY_E_NOMEM, "upstream: cannot create a CoAP context");
    }
    if (err == FERRY_OK) {
        coap_set_app_data(u->ctx, u);
        coap_register_response_handler(u->ctx, on_response);
        coap_register_nack_handler(u->ctx, on_nack);
        err = open_session(u, d);
    }
    if (err == FERRY_OK)
        err = ferry_coapglue_io_start(&u->io, loop, u->ctx, NULL, NULL, d);
    if (err == FERRY_OK && !(u->poll_timer = ferry_loop_timer(loop, 0, on_poll, u)))
        err = ferry_fail(d, FERRY_E_NOMEM, "upstream: out of memory");
    if (err != FERRY_OK) {
        free(gu);
        coap_free_impl(u);
        return err;
    }
    gu->ops = &coap_ops;
    gu->impl = u;
    *out = gu;
    ferry_log_info("upstream: parent gateway %s over %s, polled every %u s", o->uri,
                   u->dtls ? "DTLS" : "plain CoAP", u->poll_ms / 1000);
    return FERRY_OK;
}
