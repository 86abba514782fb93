#include "gw_coap.h"

#include "ferry_envelope.h"
#include "ferry_hex.h"
#include "ferry_log.h"
#include "ferry_names.h"
#include "gw_pacer.h"
#include "gw_psk.h"

#include <arpa/inet.h>
#include <errno.h>
#include <coap3/coap.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* The largest block served (SZX 6): 1024 bytes fit one datagram with room
 * for the header and options, also over DTLS. */
#define BLOCK_SZX_MAX 6

/* Status records arriving in Block1 pieces, reassembled one per session; the
 * oldest is dropped when more senders than this are half-way. */
#define STATUS_PARTS 8

/* One ferry/artifact/<hex> resource and, while nodes fetch it, the hooks'
 * answer for it (data, len, ref): taken on the first request, so a file is
 * mapped once however many blocks and nodes it serves, and released after
 * idle_ms without a request, on eviction and in gw_coap_free(). */
struct art {
    struct art *next;
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

struct man {
    struct man *next;
    struct gw_coap *srv;
    char product[FERRY_ID_MAX + 1];
    coap_resource_t *res;
};

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
    struct art *arts;
    struct man *mans;
    size_t waiting_products; /* mans created for a node's GET with no release yet */
    struct status_part parts[STATUS_PARTS];
    uint64_t idle_ms; /* pacer idle time, also the life of an unused mapping */
    uint64_t kick_timer;
    uint64_t expiry_timer, expiry_at;
    uint64_t last_session_id;
    bool processing; /* inside coap_io_process(): handlers, hooks may run */
    bool closing;
};

static unsigned coap_users; /* servers alive: coap_startup() once */

/* ---- libcoap plumbing ---------------------------------------------------- */

/* libcoap's levels are syslog's. Its LOG_ERR, LOG_INFO and LOG_DEBUG names
 * are taken by ferry_log.h's macros, hence the numbers. */
enum { SYSLOG_ERR = 3, SYSLOG_WARNING = 4, SYSLOG_INFO = 6 };

static void log_bridge(coap_log_t level, const char *message)
{
    enum ferry_log_level l = level <= SYSLOG_ERR       ? FERRY_LOG_ERROR
                             : level == SYSLOG_WARNING ? FERRY_LOG_WARN
                             : level <= SYSLOG_INFO    ? FERRY_LOG_INFO
                                                       : FERRY_LOG_DEBUG;
    size_t n = strlen(message);
    while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == '\r'))
        n--;
    ferry_log(l, "coap: %.*s", (int)n, message);
}

static void library_up(void)
{
    if (coap_users++ == 0) {
        coap_startup();
        coap_set_log_handler(log_bridge);
        coap_set_log_level(SYSLOG_WARNING);
    }
}

static void library_down(void)
{
    if (--coap_users == 0)
        coap_cleanup();
}

static struct gw_coap *srv_of(const coap_session_t *ses)
{
    return coap_get_app_data(coap_session_get_context(ses));
}

/* A number for the session that no later session reuses, unlike its
 * address, which libcoap may give a new session once it freed the old. */
static uint64_t session_id(struct gw_coap *s, coap_session_t *ses)
{
    uintptr_t id = (uintptr_t)coap_session_get_app_data(ses);
    if (id == 0) {
        id = (uintptr_t)++s->last_session_id;
        coap_session_set_app_data(ses, (void *)id);
    }
    return id;
}

static uint32_t jittered(uint32_t base_s)
{
    uint32_t rnd = 0;
    if (!coap_prng(&rnd, sizeof(rnd)))
        rnd = (uint32_t)ferry_now_ms();
    return gw_pacer_jitter(base_s, rnd);
}

static void add_uint_option(coap_pdu_t *pdu, coap_option_num_t num, uint64_t v)
{
    uint8_t buf[8];
    coap_add_option(pdu, num, coap_encode_var_safe8(buf, sizeof(buf), v), buf);
}

/* An answer without a body: the code and a diagnostic payload (RFC 7252
 * 5.5.2). max_age_s > 0 adds Max-Age first, options precede the payload. */
static void answer(coap_pdu_t *resp, coap_pdu_code_t code, uint32_t max_age_s, const char *diag)
{
    coap_pdu_set_code(resp, code);
    if (max_age_s > 0)
        add_uint_option(resp, COAP_OPTION_MAXAGE, max_age_s);
    if (diag && diag[0])
        coap_add_data(resp, strlen(diag), (const uint8_t *)diag);
}

static void answerf(coap_pdu_t *resp, coap_pdu_code_t code, uint32_t max_age_s, const char *fmt,
                    ...) FERRY_PRINTF(4, 5);
static void answerf(coap_pdu_t *resp, coap_pdu_code_t code, uint32_t max_age_s, const char *fmt,
                    ...)
{
    char diag[FERRY_DIAG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(diag, sizeof(diag), fmt, ap);
    va_end(ap);
    answer(resp, code, max_age_s, diag);
}

/* The stable ETag of a body: its first 8 SHA-256 bytes as a number, never 0
 * (libcoap takes 0 for "make one up per call"). */
static uint64_t etag_of(const uint8_t sha[FERRY_SHA256_LEN])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | sha[i];
    return v ? v : 1;
}

static coap_resource_t *new_resource(const char *path, uint16_t ct, const char *rt)
{
    coap_str_const_t *uri = coap_new_str_const((const uint8_t *)path, strlen(path));
    if (!uri)
        return NULL;
    coap_resource_t *r = coap_resource_init(uri, COAP_RESOURCE_FLAGS_RELEASE_URI);
    if (!r) {
        coap_delete_str_const(uri);
        return NULL;
    }
    char v[16];
    if (ct) {
        snprintf(v, sizeof(v), "%u", (unsigned)ct);
        coap_add_attr(r, coap_make_str_const("ct"), coap_make_str_const(v), 0);
    }
    coap_add_attr(r, coap_make_str_const("rt"), coap_make_str_const(rt), 0);
    return r;
}

/* ---- deferred work and expiry, from the loop ---------------------------- */

static void process(struct gw_coap *s);

/* Gives the hooks' answer for an artifact back (artifact_release()). */
static void unmap(struct gw_coap *s, struct art *a)
{
    if (!a->mapped)
        return;
    s->hooks.artifact_release(s->hooks.arg, a->ref);
    a->mapped = false;
    a->data = NULL;
    a->len = 0;
    a->ref = NULL;
}

static bool idle_for(uint64_t since, uint64_t span, uint64_t now)
{
    return now >= since && now - since >= span;
}

/* The first moment something may age out: a transfer in the pacer or an
 * artifact's mapping. GW_PACER_NO_EXPIRY when nothing can. */
static uint64_t next_expiry(const struct gw_coap *s)
{
    uint64_t next = gw_pacer_next_expiry(s->pacer);
    for (const struct art *a = s->arts; a; a = a->next) {
        if (!a->mapped)
            continue;
        uint64_t at = a->last_ms > UINT64_MAX - s->idle_ms ? UINT64_MAX : a->last_ms + s->idle_ms;
        if (at < next)
            next = at;
    }
    return next;
}

static void schedule_expiry(struct gw_coap *s);

static void on_expiry(void *arg)
{
    struct gw_coap *s = arg;
    s->expiry_timer = 0;
    uint64_t now = ferry_now_ms();
    size_t n = gw_pacer_expire(s->pacer, now);
    if (n)
        LOG_DEBUG("coap: %zu idle download(s) ended", n);
    /* From a timer, never inside a request: no answer is using a mapping. */
    for (struct art *a = s->arts; a; a = a->next)
        if (a->mapped && idle_for(a->last_ms, s->idle_ms, now))
            unmap(s, a);
    schedule_expiry(s);
}

/* Keeps one timer armed for the next possible expiry. */
static void schedule_expiry(struct gw_coap *s)
{
    if (s->closing)
        return;
    uint64_t next = next_expiry(s);
    if (s->expiry_timer && next >= s->expiry_at)
        return; /* the armed timer comes first; it re-arms */
    if (s->expiry_timer)
        ferry_loop_cancel(s->loop, s->expiry_timer);
    s->expiry_timer = 0;
    if (next == GW_PACER_NO_EXPIRY)
        return;
    uint64_t now = ferry_now_ms();
    s->expiry_at = next;
    s->expiry_timer = ferry_loop_timer(s->loop, next > now ? next - now : 0, on_expiry, s);
}

/* Evicted artifacts: their mapping and their resource go, outside any
 * request (libcoap may be inside the resource's handler during a pass). */
static void sweep_removed(struct gw_coap *s)
{
    for (struct art **p = &s->arts; *p;) {
        struct art *a = *p;
        if (a->removed) {
            *p = a->next;
            unmap(s, a);
            coap_delete_resource(s->ctx, a->res);
            free(a);
        } else {
            p = &a->next;
        }
    }
}

/* A pass of libcoap soon, so that notifications go out now rather than at
 * the next packet. */
static void on_kick(void *arg)
{
    struct gw_coap *s = arg;
    s->kick_timer = 0;
    process(s);
}

static void kick(struct gw_coap *s)
{
    if (!s->closing && !s->kick_timer)
        s->kick_timer = ferry_loop_timer(s->loop, 0, on_kick, s);
}

static void process(struct gw_coap *s)
{
    s->processing = true;
    coap_io_process(s->ctx, COAP_IO_NO_WAIT);
    s->processing = false;
    sweep_removed(s);
}

static void on_coap_fd(void *arg, uint32_t events)
{
    (void)events;
    process(arg);
}

/* ---- artifacts ------------------------------------------------------------ */

static struct art *find_art(struct gw_coap *s, const uint8_t sha[FERRY_SHA256_LEN])
{
    for (struct art *a = s->arts; a; a = a->next)
        if (memcmp(a->sha, sha, FERRY_SHA256_LEN) == 0)
            return a;
    return NULL;
}

static void on_artifact_get(coap_resource_t *r, coap_session_t *ses, const coap_pdu_t *req,
                            const coap_string_t *q, coap_pdu_t *resp);

static struct art *add_art(struct gw_coap *s, const uint8_t sha[FERRY_SHA256_LEN], uint64_t size)
{
    struct art *a = find_art(s, sha);
    if (a) {
        a->removed = false;
        return a;
    }
    a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    char path[sizeof(FERRY_COAP_ARTIFACT) + 1 + FERRY_SHA256_HEX_LEN];
    memcpy(path, FERRY_COAP_ARTIFACT "/", sizeof(FERRY_COAP_ARTIFACT));
    ferry_hex_encode(sha, FERRY_SHA256_LEN, path + sizeof(FERRY_COAP_ARTIFACT));
    a->res = new_resource(path, COAP_MEDIATYPE_APPLICATION_OCTET_STREAM,
                          "\"" FERRY_COAP_RT_ARTIFACT "\"");
    if (!a->res) {
        free(a);
        return NULL;
    }
    char sz[24];
    snprintf(sz, sizeof(sz), "%" PRIu64, size);
    coap_add_attr(a->res, coap_make_str_const("sz"), coap_make_str_const(sz), 0);
    coap_register_request_handler(a->res, COAP_REQUEST_GET, on_artifact_get);
    coap_resource_set_userdata(a->res, a);
    coap_add_resource(s->ctx, a->res);
    a->srv = s;
    memcpy(a->sha, sha, FERRY_SHA256_LEN);
    a->next = s->arts;
    s->arts = a;
    return a;
}

/* What a request's Block2 option asks for, checked on the raw option:
 * libcoap 4.3.1 would read SZX 7 over UDP, or a block number over 20 bits,
 * as something else. */
struct block2 {
    bool present;
    uint32_t num;
    unsigned szx;
};

static bool parse_block2(const coap_pdu_t *req, struct block2 *b, coap_pdu_t *resp)
{
    coap_opt_iterator_t it;
    coap_opt_t *o = coap_check_option(req, COAP_OPTION_BLOCK2, &it);
    memset(b, 0, sizeof(*b));
    if (!o)
        return true;
    uint32_t len = coap_opt_length(o);
    if (len > 3) {
        answer(resp, COAP_RESPONSE_CODE_BAD_OPTION, 0, "Block2: longer than 3 bytes");
        return false;
    }
    unsigned v = coap_decode_var_bytes(coap_opt_value(o), len);
    b->present = true;
    b->num = v >> 4;
    b->szx = v & 7;
    if (b->szx == 7) {
        answer(resp, COAP_RESPONSE_CODE_BAD_REQUEST, 0, "Block2: SZX 7 (BERT) is for TCP only");
        return false;
    }
    return true;
}

/* The bytes one answer carries. */
struct piece {
    bool block2; /* answer with a Block2 option */
    uint32_t num;
    unsigned szx;
    size_t off, len;
    bool more;
};

/* The block request b asks for in an artifact of `size` bytes, at the size
 * asked for (SZX 7 was refused, so every size asked for is one we serve), or
 * block 0 of the largest size when b is absent; then, if that is the whole
 * artifact, the answer carries no Block2 option at all, as RFC 7959 clients
 * expect. False when the block starts at or beyond the end. */
static bool pick_piece(const struct block2 *b, size_t size, struct piece *pc)
{
    pc->szx = b->present ? b->szx : BLOCK_SZX_MAX;
    uint64_t off = (uint64_t)b->num << (pc->szx + 4);
    if (b->num > 0 && off >= size)
        return false;
    size_t block = (size_t)1 << (pc->szx + 4);
    pc->num = b->num;
    pc->off = (size_t)off;
    pc->len = size - pc->off < block ? size - pc->off : block;
    pc->more = pc->off + pc->len < size;
    pc->block2 = b->present || pc->more;
    return true;
}

/* 2.05 with one piece of the artifact: the only copy of its bytes the
 * server makes, into the datagram. The ETag and Size2 come with every
 * block, so a node may start or resume anywhere. */
static bool add_piece(const struct art *a, const struct piece *pc, coap_pdu_t *resp)
{
    coap_pdu_set_code(resp, COAP_RESPONSE_CODE_CONTENT);
    add_uint_option(resp, COAP_OPTION_ETAG, etag_of(a->sha));
    add_uint_option(resp, COAP_OPTION_CONTENT_FORMAT, COAP_MEDIATYPE_APPLICATION_OCTET_STREAM);
    if (pc->block2)
        add_uint_option(resp, COAP_OPTION_BLOCK2,
                        (uint64_t)pc->num << 4 | (pc->more ? 8u : 0u) | pc->szx);
    add_uint_option(resp, COAP_OPTION_SIZE2, a->len);
    return pc->len == 0 || coap_add_data(resp, pc->len, a->data + pc->off);
}

/* The artifact with the hooks' answer at hand: `a` as it is when it holds
 * one, else whatever the hooks answer now. NULL when there is nothing to
 * serve; resp then says why. */
static struct art *mapped_art(struct gw_coap *s, const uint8_t sha[FERRY_SHA256_LEN], struct art *a,
                              coap_pdu_t *resp)
{
    if (a && a->mapped && !a->removed)
        return a;
    const uint8_t *data = NULL;
    size_t len = 0;
    void *ref = NULL;
    switch (s->hooks.artifact(s->hooks.arg, sha, &data, &len, &ref)) {
    case GW_ARTIFACT_COMPLETE:
        break;
    case GW_ARTIFACT_FETCHING:
        answer(resp, COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE, jittered(s->fetching_max_age),
               "artifact is still being fetched");
        return NULL;
    default:
        answer(resp, COAP_RESPONSE_CODE_NOT_FOUND, 0, "no such artifact on this gateway");
        return NULL;
    }
    /* Also brings back one evicted during this pass, with the new answer. */
    a = add_art(s, sha, len);
    if (!a) {
        s->hooks.artifact_release(s->hooks.arg, ref);
        answer(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR, 0, "out of memory");
        return NULL;
    }
    unmap(s, a);
    a->mapped = true;
    a->data = data;
    a->len = len;
    a->ref = ref;
    return a;
}

/* One block for one node, if the pacer lets its transfer run. */
static void serve_block(struct gw_coap *s, struct art *a, const struct block2 *b,
                        coap_session_t *ses, coap_pdu_t *resp)
{
    struct piece pc;
    if (!pick_piece(b, a->len, &pc)) {
        answerf(resp, COAP_RESPONSE_CODE_BAD_OPTION, 0,
                "Block2: block %" PRIu32 " of size %u starts beyond the %zu bytes", b->num,
                1u << (b->szx + 4), a->len);
        return;
    }
    struct gw_pacer_key key = {.session = session_id(s, ses)};
    memcpy(key.sha256, a->sha, FERRY_SHA256_LEN);
    enum gw_pacer_admission how = GW_PACER_CONTINUED;
    if (gw_pacer_admit(s->pacer, &key, a->last_ms, &how) != FERRY_OK) {
        answer(resp, COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE, jittered(s->busy_max_age),
               "too many downloads, retry later");
        LOG_DEBUG("coap: %s: download refused, %zu running", coap_session_str(ses),
                  gw_pacer_active(s->pacer));
        return;
    }
    if (how == GW_PACER_STARTED)
        LOG_DEBUG("coap: %s: download admitted, %zu running", coap_session_str(ses),
                  gw_pacer_active(s->pacer));
    if (!add_piece(a, &pc, resp)) {
        LOG_WARN("coap: %s: a block of %zu bytes does not fit the datagram", coap_session_str(ses),
                 pc.len);
        answer(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR, 0, "block does not fit, ask smaller");
        return;
    }
    if (!pc.more && how != GW_PACER_GRACE) {
        gw_pacer_finish(s->pacer, &key, a->last_ms);
        LOG_DEBUG("coap: %s: download finished, %zu running", coap_session_str(ses),
                  gw_pacer_active(s->pacer));
    }
}

/* GET ferry/artifact/<hex>, one block per request; `a` is NULL when the
 * resource does not exist yet. */
static void serve_artifact(struct gw_coap *s, const uint8_t sha[FERRY_SHA256_LEN], struct art *a,
                           coap_session_t *ses, const coap_pdu_t *req, coap_pdu_t *resp)
{
    struct block2 b;
    if (!parse_block2(req, &b, resp))
        return;
    a = mapped_art(s, sha, a, resp);
    if (!a)
        return;
    a->last_ms = ferry_now_ms();
    serve_block(s, a, &b, ses, resp);
    schedule_expiry(s);
}

static void on_artifact_get(coap_resource_t *r, coap_session_t *ses, const coap_pdu_t *req,
                            const coap_string_t *q, coap_pdu_t *resp)
{
    (void)q;
    struct art *a = coap_resource_get_userdata(r);
    serve_artifact(a->srv, a->sha, a, ses, req, resp);
}

/* ---- manifests ------------------------------------------------------------ */

static struct man *find_man(struct gw_coap *s, const char *product)
{
    for (struct man *m = s->mans; m; m = m->next)
        if (strcmp(m->product, product) == 0)
            return m;
    return NULL;
}

static void on_manifest_get(coap_resource_t *r, coap_session_t *ses, const coap_pdu_t *req,
                            const coap_string_t *q, coap_pdu_t *resp);

static struct man *add_man(struct gw_coap *s, const char *product)
{
    struct man *m = find_man(s, product);
    if (m)
        return m;
    m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    char path[sizeof(FERRY_COAP_MANIFEST) + 1 + FERRY_ID_MAX];
    snprintf(path, sizeof(path), "%s/%s", FERRY_COAP_MANIFEST, product);
    m->res = new_resource(path, COAP_MEDIATYPE_APPLICATION_JSON, "\"" FERRY_COAP_RT_MANIFEST "\"");
    if (!m->res) {
        free(m);
        return NULL;
    }
    /* Confirmable notifications: a node must not miss a new release, and
     * libcoap drops observers that stop acknowledging. */
    coap_resource_set_mode(m->res, COAP_RESOURCE_FLAGS_NOTIFY_CON);
    coap_resource_set_get_observable(m->res, 1);
    coap_register_request_handler(m->res, COAP_REQUEST_GET, on_manifest_get);
    coap_resource_set_userdata(m->res, m);
    coap_add_resource(s->ctx, m->res);
    m->srv = s;
    snprintf(m->product, sizeof(m->product), "%s", product);
    m->next = s->mans;
    s->mans = m;
    return m;
}

static void free_copy(coap_session_t *ses, void *app_ptr)
{
    (void)ses;
    free(app_ptr);
}

/* GET ferry/manifest/<product>. The envelope is copied: a new release may replace
 * the caller's bytes while libcoap still serves blocks of this one. */
static void serve_manifest(struct gw_coap *s, struct man *m, coap_session_t *ses,
                           const coap_pdu_t *req, const coap_string_t *q, coap_pdu_t *resp)
{
    size_t len = 0;
    const uint8_t *env = s->hooks.manifest(s->hooks.arg, m->product, &len);
    if (!env) {
        /* "Nothing offered": a 2.05 keeps an observation alive (any error
         * would end it), so the node hears of the product's first release. */
        answer(resp, COAP_RESPONSE_CODE_CONTENT, s->manifest_max_age, NULL);
        return;
    }
    uint8_t *copy = len > 0 && len <= FERRY_ENVELOPE_MAX_BYTES ? malloc(len) : NULL;
    if (!copy) {
        LOG_ERR("coap: manifest for '%s' is %zu bytes, cannot serve it", m->product, len);
        answer(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR, 0, "manifest unavailable");
        return;
    }
    memcpy(copy, env, len);
    uint8_t sha[FERRY_SHA256_LEN];
    ferry_sha256(copy, len, sha);
    /* libcoap adds an ETag only to bodies that need blocks. */
    add_uint_option(resp, COAP_OPTION_ETAG, etag_of(sha));
    coap_pdu_set_code(resp, COAP_RESPONSE_CODE_CONTENT);
    if (!coap_add_data_large_response(m->res, ses, req, resp, q, COAP_MEDIATYPE_APPLICATION_JSON,
                                      (int)s->manifest_max_age, etag_of(sha), len, copy, free_copy,
                                      copy))
        LOG_WARN("coap: could not queue the manifest for %s", coap_session_str(ses));
}

static void on_manifest_get(coap_resource_t *r, coap_session_t *ses, const coap_pdu_t *req,
                            const coap_string_t *q, coap_pdu_t *resp)
{
    struct man *m = coap_resource_get_userdata(r);
    serve_manifest(m->srv, m, ses, req, q, resp);
}

/* ---- status records ------------------------------------------------------- */

static void drop_part(struct gw_coap *s, const coap_session_t *ses)
{
    for (size_t i = 0; i < STATUS_PARTS; i++)
        if (s->parts[i].session == ses)
            s->parts[i].session = NULL;
}

/* The slot for a record that starts now: this session's, a free one, or the
 * oldest one. */
static struct status_part *start_part(struct gw_coap *s, coap_session_t *ses, uint16_t cf)
{
    struct status_part *p = &s->parts[0];
    for (size_t i = 0; i < STATUS_PARTS; i++) {
        struct status_part *c = &s->parts[i];
        if (c->session == ses || !c->session) {
            p = c;
            break;
        }
        if (c->started_ms < p->started_ms)
            p = c;
    }
    p->session = ses;
    p->started_ms = ferry_now_ms();
    p->cf = cf;
    p->len = 0;
    return p;
}

static struct status_part *find_part(struct gw_coap *s, const coap_session_t *ses)
{
    for (size_t i = 0; i < STATUS_PARTS; i++)
        if (s->parts[i].session == ses)
            return &s->parts[i];
    return NULL;
}

/* The authenticated identity of a DTLS session, or NULL over plain CoAP. */
static const char *identity_of(const coap_session_t *ses, char out[FERRY_ID_MAX + 1])
{
    if (coap_session_get_proto(ses) != COAP_PROTO_DTLS)
        return NULL;
    const coap_bin_const_t *id = coap_session_get_psk_identity(ses);
    if (!id || id->length == 0 || id->length > FERRY_ID_MAX)
        return "";
    memcpy(out, id->s, id->length);
    out[id->length] = '\0';
    return out;
}

static coap_pdu_code_t status_code_for(enum ferry_err err)
{
    switch (err) {
    case FERRY_OK:
        return COAP_RESPONSE_CODE_CHANGED;
    case FERRY_E_NOSPACE:
    case FERRY_E_BUSY:
        return COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE;
    case FERRY_E_PROTOCOL:
        return COAP_RESPONSE_CODE_FORBIDDEN;
    case FERRY_E_MALFORMED:
    case FERRY_E_INVALID_ARG:
    case FERRY_E_TOO_LARGE:
        return COAP_RESPONSE_CODE_BAD_REQUEST;
    default:
        return COAP_RESPONSE_CODE_INTERNAL_ERROR;
    }
}

static void store_status(struct gw_coap *s, coap_session_t *ses, uint16_t cf, const uint8_t *buf,
                         size_t len, coap_pdu_t *resp)
{
    struct ferry_status st;
    struct ferry_diag d = {{0}};
    enum ferry_err err = cf == COAP_MEDIATYPE_APPLICATION_JSON
                             ? ferry_status_from_json(buf, len, &st, &d)
                             : ferry_status_from_cbor(buf, len, &st, &d);
    if (err != FERRY_OK) {
        answer(resp, COAP_RESPONSE_CODE_BAD_REQUEST, 0, ferry_diag_str(&d, err));
        return;
    }
    char idbuf[FERRY_ID_MAX + 1];
    d.msg[0] = '\0';
    err = s->hooks.status(s->hooks.arg, &st, identity_of(ses, idbuf), &d);
    coap_pdu_code_t code = status_code_for(err);
    if (err == FERRY_OK)
        coap_pdu_set_code(resp, code);
    else
        answer(resp, code,
               code == COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE ? jittered(s->busy_max_age) : 0,
               d.msg[0] ? d.msg : ferry_strerror(err));
}

static void too_large(coap_pdu_t *resp)
{
    coap_pdu_set_code(resp, COAP_RESPONSE_CODE_REQUEST_TOO_LARGE);
    add_uint_option(resp, COAP_OPTION_SIZE1, FERRY_STATUS_MAX_BYTES);
    char diag[64];
    snprintf(diag, sizeof(diag), "status records are at most %d bytes", FERRY_STATUS_MAX_BYTES);
    coap_add_data(resp, strlen(diag), (const uint8_t *)diag);
}

static bool content_format(const coap_pdu_t *req, uint16_t *cf)
{
    coap_opt_iterator_t it;
    coap_opt_t *o = coap_check_option(req, COAP_OPTION_CONTENT_FORMAT, &it);
    if (!o || coap_opt_length(o) > 2)
        return false;
    *cf = (uint16_t)coap_decode_var_bytes(coap_opt_value(o), coap_opt_length(o));
    return *cf == COAP_MEDIATYPE_APPLICATION_JSON || *cf == COAP_MEDIATYPE_APPLICATION_CBOR;
}

/* POST ferry/status. Without COAP_BLOCK_SINGLE_BODY libcoap hands over each
 * Block1 piece as it comes (with it, it would allocate whatever Size1 a peer
 * claims), so pieces are put together here, never beyond the cap. */
static void on_status_post(coap_resource_t *r, coap_session_t *ses, const coap_pdu_t *req,
                           const coap_string_t *q, coap_pdu_t *resp)
{
    (void)q;
    struct gw_coap *s = coap_resource_get_userdata(r);
    uint16_t cf = 0;
    if (!content_format(req, &cf)) {
        answer(resp, COAP_RESPONSE_CODE_UNSUPPORTED_CONTENT_FORMAT, 0,
               "status records are JSON (50) or CBOR (60)");
        return;
    }
    size_t len = 0, offset = 0, total = 0;
    const uint8_t *data = NULL;
    if (!coap_get_data_large(req, &len, &data, &offset, &total) || len == 0) {
        answer(resp, COAP_RESPONSE_CODE_BAD_REQUEST, 0, "empty status record");
        return;
    }
    if (offset > FERRY_STATUS_MAX_BYTES || len > FERRY_STATUS_MAX_BYTES - offset ||
        total > FERRY_STATUS_MAX_BYTES) {
        drop_part(s, ses);
        too_large(resp);
        return;
    }
    if (offset == 0 && total == len) {
        drop_part(s, ses);
        store_status(s, ses, cf, data, len, resp);
        return;
    }
    struct status_part *p = offset == 0 ? start_part(s, ses, cf) : find_part(s, ses);
    if (!p || p->cf != cf || offset > p->len) {
        drop_part(s, ses);
        answer(resp, COAP_RESPONSE_CODE_INCOMPLETE, 0,
               "Block1: a piece before this one is missing");
        return;
    }
    memcpy(p->buf + offset, data, len);
    if (offset + len > p->len)
        p->len = offset + len;
    if (offset + len < total) {
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE_CONTINUE);
        return;
    }
    p->session = NULL;
    store_status(s, ses, cf, p->buf, p->len, resp);
}

/* POST ferry/config: a node's configuration report, in one datagram. */
static void on_config_post(coap_resource_t *r, coap_session_t *ses, const coap_pdu_t *req,
                           const coap_string_t *q, coap_pdu_t *resp)
{
    (void)q;
    struct gw_coap *s = coap_resource_get_userdata(r);
    uint16_t cf = 0;
    if (!content_format(req, &cf) || cf != COAP_MEDIATYPE_APPLICATION_JSON) {
        answer(resp, COAP_RESPONSE_CODE_UNSUPPORTED_CONTENT_FORMAT, 0,
               "configuration reports are JSON (50)");
        return;
    }
    size_t len = 0, offset = 0, total = 0;
    const uint8_t *data = NULL;
    if (!coap_get_data_large(req, &len, &data, &offset, &total) || len == 0 || offset != 0 ||
        total != len) {
        answer(resp, COAP_RESPONSE_CODE_BAD_REQUEST, 0,
               "a configuration report comes whole, in one datagram");
        return;
    }
    struct ferry_config_report rep;
    struct ferry_diag d = {{0}};
    enum ferry_err err = ferry_config_report_decode(data, len, &rep, &d);
    if (err != FERRY_OK) {
        answer(resp,
               err == FERRY_E_TOO_LARGE ? COAP_RESPONSE_CODE_REQUEST_TOO_LARGE
                                        : COAP_RESPONSE_CODE_BAD_REQUEST,
               0, ferry_diag_str(&d, err));
        return;
    }
    char idbuf[FERRY_ID_MAX + 1];
    d.msg[0] = '\0';
    err = s->hooks.config ? s->hooks.config(s->hooks.arg, &rep, identity_of(ses, idbuf), &d)
                          : FERRY_E_BUSY;
    coap_pdu_code_t code = status_code_for(err);
    if (err == FERRY_OK)
        coap_pdu_set_code(resp, code);
    else
        answer(resp, code,
               code == COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE ? jittered(s->busy_max_age) : 0,
               d.msg[0] ? d.msg : ferry_strerror(err));
}

/* ---- paths without a resource yet ----------------------------------------- */

/* Copies the path segment after `prefix/` into out if the path has that
 * prefix; false otherwise. A segment too long for out is cut (and then fails
 * the callers' identifier or digest checks). */
static bool tail_after(const coap_string_t *path, const char *prefix, char *out, size_t cap)
{
    size_t n = strlen(prefix);
    if (path->length <= n + 1 || memcmp(path->s, prefix, n) != 0 || path->s[n] != '/')
        return false;
    size_t t = path->length - n - 1;
    if (t >= cap)
        t = cap - 1;
    memcpy(out, path->s + n + 1, t);
    out[t] = '\0';
    return true;
}

static bool lower_hex_digest(const char *hex, uint8_t sha[FERRY_SHA256_LEN])
{
    if (strlen(hex) != FERRY_SHA256_HEX_LEN || strspn(hex, "0123456789abcdef") != strlen(hex))
        return false;
    return ferry_hex_decode(hex, sha, FERRY_SHA256_LEN) == FERRY_OK;
}

static void unknown_artifact(struct gw_coap *s, const char *tail, coap_session_t *ses,
                             const coap_pdu_t *req, coap_pdu_t *resp)
{
    uint8_t sha[FERRY_SHA256_LEN];
    if (!lower_hex_digest(tail, sha)) {
        answer(resp, COAP_RESPONSE_CODE_NOT_FOUND, 0,
               "artifacts are named by their SHA-256 in 64 lower-case hex digits");
        return;
    }
    if (coap_pdu_get_code(req) != COAP_REQUEST_CODE_GET) {
        answer(resp, COAP_RESPONSE_CODE_NOT_ALLOWED, 0, NULL);
        return;
    }
    serve_artifact(s, sha, find_art(s, sha), ses, req, resp);
}

static void unknown_manifest(struct gw_coap *s, const char *product, coap_session_t *ses,
                             const coap_pdu_t *req, const coap_string_t *q, coap_pdu_t *resp)
{
    if (!ferry_id_valid(product)) {
        answer(resp, COAP_RESPONSE_CODE_NOT_FOUND, 0, "not a product identifier");
        return;
    }
    if (coap_pdu_get_code(req) != COAP_REQUEST_CODE_GET) {
        answer(resp, COAP_RESPONSE_CODE_NOT_ALLOWED, 0, NULL);
        return;
    }
    size_t len = 0;
    bool released = s->hooks.manifest(s->hooks.arg, product, &len) != NULL;
    /* Any node may name any product: the resources made for those with no
     * release are capped, and beyond the cap such nodes poll. */
    if (!released && s->waiting_products >= GW_COAP_MAX_WAITING_PRODUCTS) {
        answerf(resp, COAP_RESPONSE_CODE_NOT_FOUND, s->manifest_max_age,
                "no release for product '%s'", product);
        return;
    }
    /* Observable from now on; this answer itself registers no observer (the
     * request reached no resource), so it carries no Observe option. */
    struct man *m = add_man(s, product);
    if (!m) {
        answer(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR, 0, "out of memory");
        return;
    }
    if (!released)
        s->waiting_products++;
    serve_manifest(s, m, ses, req, q, resp);
}

/* Every method on every path that has no resource. Registered for all of
 * them because libcoap would otherwise answer DELETE with 2.02. */
static void on_unknown(coap_resource_t *r, coap_session_t *ses, const coap_pdu_t *req,
                       const coap_string_t *q, coap_pdu_t *resp)
{
    struct gw_coap *s = coap_resource_get_userdata(r);
    coap_string_t *path = coap_get_uri_path(req);
    char tail[FERRY_SHA256_HEX_LEN + 2];
    if (path && tail_after(path, FERRY_COAP_ARTIFACT, tail, sizeof(tail)))
        unknown_artifact(s, tail, ses, req, resp);
    else if (path && tail_after(path, FERRY_COAP_MANIFEST, tail, sizeof(tail)))
        unknown_manifest(s, tail, ses, req, q, resp);
    else
        answer(resp, COAP_RESPONSE_CODE_NOT_FOUND, 0, NULL);
    coap_delete_string(path);
}

/* ---- sessions and DTLS ---------------------------------------------------- */

static int on_event(coap_session_t *ses, const coap_event_t ev)
{
    struct gw_coap *s = srv_of(ses);
    if (!s)
        return 0;
    if (ev == COAP_EVENT_SERVER_SESSION_DEL) {
        gw_pacer_end_session(s->pacer, session_id(s, ses));
        drop_part(s, ses);
    }
    return 0;
}

static const coap_bin_const_t *on_psk_identity(coap_bin_const_t *identity, coap_session_t *ses,
                                               void *arg)
{
    struct gw_coap *s = arg;
    size_t key_len = 0;
    const uint8_t *key =
        identity ? gw_psk_find(s->psk, identity->s, identity->length, &key_len) : NULL;
    if (!key) {
        char shown[FERRY_ID_MAX + 1] = "";
        if (identity && identity->s && identity->length <= FERRY_ID_MAX) {
            memcpy(shown, identity->s, identity->length);
            shown[identity->length] = '\0';
        }
        LOG_WARN("coap: %s: handshake refused, unknown PSK identity '%s'", coap_session_str(ses),
                 ferry_id_valid(shown) ? shown : "(not an identifier)");
        return NULL;
    }
    s->psk_reply.s = key;
    s->psk_reply.length = key_len;
    return &s->psk_reply;
}

static enum ferry_err setup_dtls(struct gw_coap *s, const char *psk_file, struct ferry_diag *d)
{
    if (!coap_dtls_is_supported())
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "coap: a PSK file was given but this libcoap has no DTLS support");
    enum ferry_err err = gw_psk_load(psk_file, &s->psk, d);
    if (err != FERRY_OK)
        return err;
    coap_dtls_spsk_t setup;
    memset(&setup, 0, sizeof(setup));
    setup.version = COAP_DTLS_SPSK_SETUP_VERSION;
    setup.validate_id_call_back = on_psk_identity;
    setup.id_call_back_arg = s;
    if (!coap_context_set_psk2(s->ctx, &setup))
        return ferry_fail(d, FERRY_E_CRYPTO, "coap: cannot set up DTLS-PSK");
    LOG_INFO("coap: DTLS with %zu node keys from %s", gw_psk_count(s->psk), psk_file);
    return FERRY_OK;
}

/* ---- set-up ----------------------------------------------------------------- */

static enum ferry_err listen_address(const char *addr, uint16_t port, coap_address_t *out,
                                     struct ferry_diag *d)
{
    coap_address_init(out);
    if (addr && inet_pton(AF_INET, addr, &out->addr.sin.sin_addr) == 1) {
        out->addr.sin.sin_family = AF_INET;
        out->addr.sin.sin_port = htons(port);
        out->size = sizeof(out->addr.sin);
        return FERRY_OK;
    }
    if (addr && inet_pton(AF_INET6, addr, &out->addr.sin6.sin6_addr) == 1) {
        out->addr.sin6.sin6_family = AF_INET6;
        out->addr.sin6.sin6_port = htons(port);
        out->size = sizeof(out->addr.sin6);
        return FERRY_OK;
    }
    return ferry_fail(d, FERRY_E_INVALID_ARG,
                      "coap: listen address '%s' is not a numeric IPv4 or IPv6 address",
                      addr ? addr : "(none)");
}

/* libcoap sets SO_REUSEADDR on its UDP sockets, so on Linux a second server
 * on a busy port would bind and silently take the traffic: try the port
 * first with a socket that does not share. */
static enum ferry_err port_free(const coap_address_t *a, const char *addr, struct ferry_diag *d)
{
    if (coap_address_get_port(a) == 0)
        return FERRY_OK;
    int fd = socket(a->addr.sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return ferry_fail(d, FERRY_E_IO, "coap: socket: %s", strerror(errno));
    int rc = bind(fd, &a->addr.sa, a->size);
    int e = errno;
    close(fd);
    if (rc != 0)
        return ferry_fail(d, FERRY_E_IO, "coap: cannot listen on %s port %u: %s", addr,
                          (unsigned)coap_address_get_port(a), strerror(e));
    return FERRY_OK;
}

/* libcoap 4.3.1 has no getter for an endpoint's port; its description, e.g.
 * "127.0.0.1:5683 UDP" or "[::]:5684 DTLS", carries the bound one. */
static uint16_t bound_port(const coap_endpoint_t *ep, uint16_t asked)
{
    char desc[128];
    snprintf(desc, sizeof(desc), "%s", coap_endpoint_str(ep));
    char *sp = strchr(desc, ' ');
    if (sp)
        *sp = '\0';
    char *colon = strrchr(desc, ':');
    unsigned long port = colon ? strtoul(colon + 1, NULL, 10) : 0;
    return port > 0 && port <= 65535 ? (uint16_t)port : asked;
}

static enum ferry_err add_fixed_resources(struct gw_coap *s, struct ferry_diag *d)
{
    /* Each is handed to the context at once, which frees it in the end. */
    coap_resource_t *st = new_resource(FERRY_COAP_STATUS, 0, "\"" FERRY_COAP_RT_STATUS "\"");
    if (!st)
        return ferry_fail(d, FERRY_E_NOMEM, "coap: out of memory");
    coap_register_request_handler(st, COAP_REQUEST_POST, on_status_post);
    coap_resource_set_userdata(st, s);
    coap_add_resource(s->ctx, st);
    coap_resource_t *cfg = new_resource(FERRY_COAP_CONFIG, 0, "\"" FERRY_COAP_RT_CONFIG "\"");
    if (!cfg)
        return ferry_fail(d, FERRY_E_NOMEM, "coap: out of memory");
    coap_register_request_handler(cfg, COAP_REQUEST_POST, on_config_post);
    coap_resource_set_userdata(cfg, s);
    coap_add_resource(s->ctx, cfg);
    coap_resource_t *unk = coap_resource_unknown_init2(on_unknown, 0);
    if (!unk)
        return ferry_fail(d, FERRY_E_NOMEM, "coap: out of memory");
    static const coap_request_t methods[] = {COAP_REQUEST_GET,    COAP_REQUEST_POST,
                                             COAP_REQUEST_DELETE, COAP_REQUEST_FETCH,
                                             COAP_REQUEST_PATCH,  COAP_REQUEST_IPATCH};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        coap_register_request_handler(unk, methods[i], on_unknown);
    coap_resource_set_userdata(unk, s);
    coap_add_resource(s->ctx, unk);
    return FERRY_OK;
}

static enum ferry_err check_opts(const struct gw_coap_opts *o, const struct gw_coap_hooks *h,
                                 struct ferry_diag *d)
{
    if (!h->manifest || !h->artifact || !h->artifact_release || !h->status)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "coap: every hook must be set");
    if (o->max_downloads < 1 || o->max_downloads > GW_PACER_MAX_TRANSFERS)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "coap: max_downloads must be 1..%d, got %" PRIu32,
                          GW_PACER_MAX_TRANSFERS, o->max_downloads);
    return FERRY_OK;
}

static enum ferry_err start(struct gw_coap *s, const struct gw_coap_opts *o, struct ferry_diag *d)
{
    coap_address_t addr;
    enum ferry_err err = listen_address(o->addr, o->port, &addr, d);
    if (err != FERRY_OK)
        return err;
    struct gw_pacer_opts po = {.max_transfers = o->max_downloads, .idle_ms = o->idle_ms};
    err = gw_pacer_new(&po, &s->pacer, d);
    if (err != FERRY_OK)
        return err;
    s->idle_ms = o->idle_ms ? o->idle_ms : GW_PACER_DEFAULT_IDLE_MS;
    s->ctx = coap_new_context(NULL);
    if (!s->ctx)
        return ferry_fail(d, FERRY_E_NOMEM, "coap: cannot create a context");
    coap_set_app_data(s->ctx, s);
    /* For manifests and status records: libcoap serves a manifest's Block2
     * from a copy (serve_manifest()) and hands status Block1 pieces over one
     * by one (on_status_post()). It intercepts a block request only when it
     * holds a body for that resource, and artifacts never give it one, so
     * every artifact request reaches serve_artifact(). */
    coap_context_set_block_mode(s->ctx, COAP_BLOCK_USE_LIBCOAP);
    coap_context_set_max_idle_sessions(s->ctx, GW_COAP_MAX_IDLE_SESSIONS);
    coap_register_event_handler(s->ctx, on_event);
    if (o->psk_file && (err = setup_dtls(s, o->psk_file, d)) != FERRY_OK)
        return err;
    if ((err = port_free(&addr, o->addr, d)) != FERRY_OK)
        return err;
    coap_proto_t proto = o->psk_file ? COAP_PROTO_DTLS : COAP_PROTO_UDP;
    coap_endpoint_t *ep = coap_new_endpoint(s->ctx, &addr, proto);
    if (!ep)
        return ferry_fail(d, FERRY_E_IO, "coap: cannot listen on %s port %u (%s)", o->addr,
                          (unsigned)o->port, o->psk_file ? "DTLS" : "UDP");
    s->port = bound_port(ep, o->port);
    if ((err = add_fixed_resources(s, d)) != FERRY_OK)
        return err;
    s->fd = coap_context_get_coap_fd(s->ctx);
    if (s->fd < 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "coap: libcoap was built without epoll");
    if (ferry_loop_add_fd(s->loop, s->fd, EPOLLIN, on_coap_fd, s) != FERRY_OK) {
        s->fd = -1;
        return ferry_fail(d, FERRY_E_IO, "coap: cannot watch libcoap's fd");
    }
    return FERRY_OK;
}

enum ferry_err gw_coap_new(struct ferry_loop *loop, const struct gw_coap_opts *opts,
                           const struct gw_coap_hooks *hooks, struct gw_coap **out,
                           struct ferry_diag *d)
{
    enum ferry_err err = check_opts(opts, hooks, d);
    if (err != FERRY_OK)
        return err;
    struct gw_coap *s = calloc(1, sizeof(*s));
    if (!s)
        return ferry_fail(d, FERRY_E_NOMEM, "coap: out of memory");
    library_up();
    s->loop = loop;
    s->fd = -1;
    s->hooks = *hooks;
    s->manifest_max_age =
        opts->manifest_max_age_s ? opts->manifest_max_age_s : GW_COAP_DEFAULT_MANIFEST_MAX_AGE_S;
    s->busy_max_age = opts->busy_max_age_s ? opts->busy_max_age_s : GW_COAP_DEFAULT_BUSY_MAX_AGE_S;
    s->fetching_max_age =
        opts->fetching_max_age_s ? opts->fetching_max_age_s : GW_COAP_DEFAULT_FETCHING_MAX_AGE_S;
    err = start(s, opts, d);
    if (err != FERRY_OK) {
        gw_coap_free(s);
        return err;
    }
    LOG_INFO("coap: serving on %s port %u (%s), at most %" PRIu32 " downloads at once", opts->addr,
             (unsigned)s->port, opts->psk_file ? "DTLS" : "UDP", opts->max_downloads);
    *out = s;
    return FERRY_OK;
}

void gw_coap_free(struct gw_coap *s)
{
    if (!s)
        return;
    s->closing = true;
    if (s->fd >= 0)
        ferry_loop_del_fd(s->loop, s->fd);
    if (s->kick_timer)
        ferry_loop_cancel(s->loop, s->kick_timer);
    if (s->expiry_timer)
        ferry_loop_cancel(s->loop, s->expiry_timer);
    /* Frees every session and every resource (and the manifest copies). */
    if (s->ctx)
        coap_free_context(s->ctx);
    while (s->arts) {
        struct art *a = s->arts;
        s->arts = a->next;
        unmap(s, a);
        free(a);
    }
    while (s->mans) {
        struct man *m = s->mans;
        s->mans = m->next;
        free(m);
    }
    gw_pacer_free(s->pacer);
    gw_psk_free(s->psk);
    explicit_bzero(s->parts, sizeof(s->parts));
    free(s);
    library_down();
}

uint16_t gw_coap_port(const struct gw_coap *s)
{
    return s->port;
}

enum ferry_err gw_coap_manifest_changed(struct gw_coap *s, const char *product)
{
    if (!ferry_id_valid(product))
        return FERRY_E_INVALID_ARG;
    struct man *m = add_man(s, product);
    if (!m)
        return FERRY_E_NOMEM;
    coap_resource_notify_observers(m->res, NULL);
    kick(s);
    return FERRY_OK;
}

enum ferry_err gw_coap_artifact_added(struct gw_coap *s, const uint8_t sha256[FERRY_SHA256_LEN],
                                      uint64_t size)
{
    return add_art(s, sha256, size) ? FERRY_OK : FERRY_E_NOMEM;
}

void gw_coap_artifact_removed(struct gw_coap *s, const uint8_t sha256[FERRY_SHA256_LEN])
{
    struct art *a = find_art(s, sha256);
    if (!a)
        return;
    a->removed = true;
    /* From a hook, libcoap may be inside this very resource: after the pass. */
    if (!s->processing)
        sweep_removed(s);
}

size_t gw_coap_active_downloads(const struct gw_coap *s)
{
    return gw_pacer_active(s->pacer);
}
