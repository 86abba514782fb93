/* The core of the gateway's CoAP server (gw_coap_core.h): libcoap's context
 * and the loop, session numbering, DTLS, paths without a resource, expiry,
 * set-up and tear-down. The resources live in gw_coap_artifact.c,
 * gw_coap_manifest.c and gw_coap_status.c. */
#include "gw_coap_core.h"

#include "ferry_log.h"
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

uint64_t gw_coap_session_id(struct gw_coap *s, coap_session_t *ses)
{
    uintptr_t id = (uintptr_t)coap_session_get_app_data(ses);
    if (id == 0) {
        id = (uintptr_t)++s->last_session_id;
        coap_session_set_app_data(ses, (void *)id);
    }
    return id;
}

uint32_t gw_coap_jittered(uint32_t base_s)
{
    uint32_t rnd = 0;
    if (!coap_prng(&rnd, sizeof(rnd)))
        rnd = (uint32_t)ferry_now_ms();
    return gw_pacer_jitter(base_s, rnd);
}

void gw_coap_add_uint_option(coap_pdu_t *pdu, coap_option_num_t num, uint64_t v)
{
    uint8_t buf[8];
    coap_add_option(pdu, num, coap_encode_var_safe8(buf, sizeof(buf), v), buf);
}

void gw_coap_answer(coap_pdu_t *resp, coap_pdu_code_t code, uint32_t max_age_s, const char *diag)
{
    coap_pdu_set_code(resp, code);
    if (max_age_s > 0)
        gw_coap_add_uint_option(resp, COAP_OPTION_MAXAGE, max_age_s);
    if (diag && diag[0])
        coap_add_data(resp, strlen(diag), (const uint8_t *)diag);
}

void gw_coap_answerf(coap_pdu_t *resp, coap_pdu_code_t code, uint32_t max_age_s, const char *fmt,
                     ...)
{
    char diag[FERRY_DIAG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(diag, sizeof(diag), fmt, ap);
    va_end(ap);
    gw_coap_answer(resp, code, max_age_s, diag);
}

uint64_t gw_coap_etag_of(const uint8_t sha[FERRY_SHA256_LEN])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | sha[i];
    return v ? v : 1;
}

coap_resource_t *gw_coap_new_resource(const char *path, uint16_t ct, const char *rt)
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

/* The first moment something may age out: a transfer in the pacer or an
 * artifact's mapping. GW_PACER_NO_EXPIRY when nothing can. */
static uint64_t next_expiry(const struct gw_coap *s)
{
    uint64_t next = gw_pacer_next_expiry(s->pacer);
    uint64_t art = gw_coap_artifact_next_expiry(s);
    return art < next ? art : next;
}

static void on_expiry(void *arg)
{
    struct gw_coap *s = arg;
    s->expiry_timer = 0;
    uint64_t now = ferry_now_ms();
    size_t n = gw_pacer_expire(s->pacer, now);
    if (n)
        LOG_DEBUG("coap: %zu idle download(s) ended", n);
    /* From a timer, never inside a request: no answer is using a mapping. */
    gw_coap_artifact_expire(s, now);
    gw_coap_schedule_expiry(s);
}

void gw_coap_schedule_expiry(struct gw_coap *s)
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

static void on_kick(void *arg)
{
    struct gw_coap *s = arg;
    s->kick_timer = 0;
    process(s);
}

bool gw_coap_peer_of(const coap_session_t *ses, const coap_pdu_t *req, struct gw_coap_peer *who,
                     struct gw_coap_peer_buf *buf)
{
    memset(who, 0, sizeof(*who));
    coap_opt_iterator_t it;
    coap_opt_filter_t f;
    coap_option_filter_clear(&f);
    coap_option_filter_set(&f, COAP_OPTION_URI_QUERY);
    coap_option_iterator_init(req, &it, &f);
    coap_opt_t *o;
    size_t n = 0;
    buf->declared[0] = 0;
    while ((o = coap_option_next(&it)) && n < GW_COAP_PEER_QUERY_MAX) {
        const char *v = (const char *)coap_opt_value(o);
        size_t len = coap_opt_length(o);
        buf->items[n] = v;
        buf->lens[n++] = len;
        if (len > 2 && len - 2 <= FERRY_ID_MAX && memcmp(v, "n=", 2) == 0 && !buf->declared[0]) {
            memcpy(buf->declared, v + 2, len - 2);
            buf->declared[len - 2] = 0;
        }
    }
    who->query = buf->items;
    who->query_len = buf->lens;
    who->nquery = n;
    if (buf->declared[0] && !ferry_id_valid(buf->declared))
        buf->declared[0] = 0;
    const coap_bin_const_t *id =
        coap_session_get_proto(ses) == COAP_PROTO_DTLS ? coap_session_get_psk_identity(ses) : NULL;
    if (id && id->length > 0 && id->length <= FERRY_ID_MAX) {
        memcpy(buf->id, id->s, id->length);
        buf->id[id->length] = 0;
        who->node = buf->id;
        who->authenticated = true;
        return !buf->declared[0] || strcmp(buf->declared, buf->id) == 0;
    }
    who->node = buf->declared[0] ? buf->declared : NULL;
    return true;
}

void gw_coap_kick(struct gw_coap *s)
{
    if (!s->closing && !s->kick_timer)
        s->kick_timer = ferry_loop_timer(s->loop, 0, on_kick, s);
}

static void process(struct gw_coap *s)
{
    s->processing = true;
    coap_io_process(s->ctx, COAP_IO_NO_WAIT);
    s->processing = false;
    gw_coap_artifact_sweep(s);
}

static void on_coap_fd(void *arg, uint32_t events)
{
    (void)events;
    process(arg);
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

/* Every method on every path that has no resource. Registered for all of
 * them because libcoap would otherwise answer DELETE with 2.02. */
static void on_unknown(coap_resource_t *r, coap_session_t *ses, const coap_pdu_t *req,
                       const coap_string_t *q, coap_pdu_t *resp)
{
    struct gw_coap *s = coap_resource_get_userdata(r);
    coap_string_t *path = coap_get_uri_path(req);
    char tail[FERRY_SHA256_HEX_LEN + 2];
    if (path && tail_after(path, FERRY_COAP_ARTIFACT, tail, sizeof(tail)))
        gw_coap_artifact_unknown(s, tail, ses, req, resp);
    else if (path && tail_after(path, FERRY_COAP_MANIFEST, tail, sizeof(tail)))
        gw_coap_manifest_unknown(s, tail, ses, req, q, resp);
    else
        gw_coap_answer(resp, COAP_RESPONSE_CODE_NOT_FOUND, 0, NULL);
    coap_delete_string(path);
}

/* ---- sessions and DTLS ---------------------------------------------------- */

static int on_event(coap_session_t *ses, const coap_event_t ev)
{
    struct gw_coap *s = srv_of(ses);
    if (!s)
        return 0;
    if (ev == COAP_EVENT_SERVER_SESSION_DEL) {
        gw_pacer_end_session(s->pacer, gw_coap_session_id(s, ses));
        gw_coap_status_session_gone(s, ses);
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
    enum ferry_err err = gw_coap_status_register(s, d);
    if (err != FERRY_OK)
        return err;
    /* Handed to the context at once, which frees it in the end. */
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
    gw_coap_artifact_free_all(s);
    gw_coap_manifest_free_all(s);
    gw_pacer_free(s->pacer);
    gw_psk_free(s->psk);
    gw_coap_status_free_all(s);
    free(s);
    library_down();
}

uint16_t gw_coap_port(const struct gw_coap *s)
{
    return s->port;
}

size_t gw_coap_active_downloads(const struct gw_coap *s)
{
    return gw_pacer_active(s->pacer);
}
