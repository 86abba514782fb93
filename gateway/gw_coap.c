/* The core of the gateway's CoAP server (gw_coap_core.h): libcoap's context
 * and the loop, session numbering, DTLS, paths without a resource, expiry,
 * set-up and tear-down. The resources live in gw_coap_artifact.c,
 * gw_coap_manifest.c and gw_coap_status.c. */
#include "gw_coap_core.h"

#include "ferry_random.h"
#include "gw_pacer.h"
#include "gw_psk.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

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
    return gw_pacer_jitter(base_s, ferry_random_u32());
}

void gw_coap_answer(coap_pdu_t *resp, coap_pdu_code_t code, uint32_t max_age_s, const char *diag)
{
    coap_pdu_set_code(resp, code);
    if (max_age_s > 0)
        ferry_coapglue_add_uint(resp, COAP_OPTION_MAXAGE, max_age_s);
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

/* ---- bodies in blocks ------------------------------------------------------ */

bool gw_coap_parse_block2(const coap_pdu_t *req, struct gw_coap_block2 *b, coap_pdu_t *resp)
{
    struct ferry_coapglue_block blk = {0};
    struct ferry_diag d = {{0}};
    memset(b, 0, sizeof(*b));
    enum ferry_err err = ferry_coapglue_get_block(req, COAP_OPTION_BLOCK2, &b->present, &blk, &d);
    if (err != FERRY_OK) {
        gw_coap_answer(resp,
                       err == FERRY_E_TOO_LARGE ? COAP_RESPONSE_CODE_BAD_OPTION
                                                : COAP_RESPONSE_CODE_BAD_REQUEST,
                       0, d.msg);
        return false;
    }
    b->num = blk.num;
    b->szx = blk.szx;
    return true;
}

bool gw_coap_pick_piece(const struct gw_coap_block2 *b, size_t size, struct gw_coap_piece *pc)
{
    pc->szx = b->present ? b->szx : GW_COAP_BLOCK_SZX_MAX;
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

bool gw_coap_add_piece(coap_pdu_t *resp, const struct gw_coap_piece *pc, const uint8_t *body,
                       size_t size)
{
    return gw_coap_add_piece_with(resp, pc, body, size, 0, 0);
}

bool gw_coap_add_piece_with(coap_pdu_t *resp, const struct gw_coap_piece *pc, const uint8_t *body,
                            size_t size, coap_option_num_t opt, uint64_t v)
{
    struct ferry_coapglue_block blk = {.num = pc->num, .szx = pc->szx, .more = pc->more};
    return (!pc->block2 || ferry_coapglue_add_block(resp, COAP_OPTION_BLOCK2, &blk)) &&
           ferry_coapglue_add_uint(resp, COAP_OPTION_SIZE2, size) &&
           (opt == 0 || ferry_coapglue_add_uint(resp, opt, v)) &&
           (pc->len == 0 || coap_add_data(resp, pc->len, body + pc->off));
}

/* ---- who is asking ---------------------------------------------------------- */

bool gw_coap_who(const coap_session_t *ses, const coap_pdu_t *req, struct gw_coap_requester *who,
                 coap_pdu_t *resp)
{
    char named[FERRY_ID_MAX + 1] = "";
    bool has_n = false;
    struct ferry_diag d = {{0}};
    if (ferry_coapglue_get_node_query(req, named, &has_n, &d) != FERRY_OK) {
        gw_coap_answer(resp, COAP_RESPONSE_CODE_BAD_REQUEST, 0, d.msg);
        return false;
    }
    memset(who, 0, sizeof(*who));
    coap_opt_iterator_t it;
    coap_opt_filter_t f;
    coap_option_filter_clear(&f);
    coap_option_filter_set(&f, COAP_OPTION_URI_QUERY);
    coap_option_iterator_init(req, &it, &f);
    coap_opt_t *o;
    while (who->nquery < GW_COAP_QUERY_MAX && (o = coap_option_next(&it))) {
        who->query[who->nquery] = (const char *)coap_opt_value(o);
        who->query_len[who->nquery++] = coap_opt_length(o);
    }
    if (coap_session_get_proto(ses) == COAP_PROTO_DTLS) {
        /* The handshake checked the identity against the key file, so it is
         * a known node id (gw_psk.h). */
        const coap_bin_const_t *id = coap_session_get_psk_identity(ses);
        if (!id || id->length == 0 || id->length > FERRY_ID_MAX) {
            gw_coap_answer(resp, COAP_RESPONSE_CODE_FORBIDDEN, 0, "no PSK identity");
            return false;
        }
        who->kind = GW_COAP_REQUESTER_PSK;
        memcpy(who->id, id->s, id->length);
        who->id[id->length] = '\0';
        if (has_n && strcmp(named, who->id) != 0) {
            gw_coap_answerf(resp, COAP_RESPONSE_CODE_FORBIDDEN, 0,
                            "n=%s is not this session's identity", named);
            ferry_log_warn("coap: %s: node '%s' asked as n=%s", coap_session_str(ses), who->id,
                           named);
            return false;
        }
        return true;
    }
    if (has_n) {
        who->kind = GW_COAP_REQUESTER_DECLARED;
        memcpy(who->id, named, strlen(named) + 1);
        return true;
    }
    who->kind = GW_COAP_REQUESTER_ANONYMOUS;
    size_t n = coap_print_addr(coap_session_get_addr_remote(ses), (unsigned char *)who->id,
                               sizeof(who->id) - 1);
    who->id[n < sizeof(who->id) ? n : sizeof(who->id) - 1] = '\0';
    return true;
}

void gw_coap_admission_key(const struct gw_coap_requester *who, char key[GW_PACER_ID_MAX + 1])
{
    if (who->kind != GW_COAP_REQUESTER_ANONYMOUS) {
        memcpy(key, who->id, strlen(who->id) + 1);
        return;
    }
    /* "@" and the address without its port; '@' is in no node id. */
    const char *colon = strrchr(who->id, ':');
    size_t n = colon ? (size_t)(colon - who->id) : strlen(who->id);
    if (n > GW_PACER_ID_MAX - 1)
        n = GW_PACER_ID_MAX - 1;
    key[0] = '@';
    memcpy(key + 1, who->id, n);
    key[n + 1] = '\0';
}

/* ---- deferred work and expiry, from the loop ---------------------------- */

/* The first moment something may age out: a transfer in the pacer or an
 * artifact's mapping. GW_PACER_NO_EXPIRY when nothing can. */
static uint64_t next_expiry(const struct gw_coap *s)
{
    uint64_t next = gw_pacer_next_expiry(s->pacer);
    uint64_t art = gw_coap_artifact_next_expiry(s);
    uint64_t man = gw_coap_manifest_next_expiry(s);
    if (art < next)
        next = art;
    return man < next ? man : next;
}

static void on_expiry(void *arg)
{
    struct gw_coap *s = arg;
    s->expiry_timer = 0;
    uint64_t now = ferry_now_ms();
    size_t n = gw_pacer_expire(s->pacer, now);
    if (n)
        ferry_log_debug("coap: %zu idle download(s) ended", n);
    /* From a timer, never inside a request: no answer is using a mapping,
     * no handler is inside a resource. */
    gw_coap_artifact_expire(s, now);
    gw_coap_manifest_expire(s, now);
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

/* After every pass of libcoap, outside its handlers. */
static void after_pass(void *arg)
{
    gw_coap_artifact_sweep(arg);
    gw_coap_observer_after_pass(arg);
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
    struct gw_coap_requester who;
    bool artifact = path && tail_after(path, FERRY_COAP_ARTIFACT, tail, sizeof(tail));
    bool manifest = !artifact && path && tail_after(path, FERRY_COAP_MANIFEST, tail, sizeof(tail));
    bool meta = !artifact && !manifest && path && s->hooks.meta &&
                tail_after(path, FERRY_COAP_META, tail, sizeof(tail));
    if (meta) {
        gw_coap_meta_unknown(s, tail, ses, req, q, resp);
    } else if (!artifact && !manifest) {
        gw_coap_answer(resp, COAP_RESPONSE_CODE_NOT_FOUND, 0, NULL);
    } else if (gw_coap_who(ses, req, &who, resp)) {
        if (artifact)
            gw_coap_artifact_unknown(s, tail, ses, req, &who, resp);
        else
            gw_coap_manifest_unknown(s, tail, ses, req, q, &who, resp);
    }
    coap_delete_string(path);
}

/* ---- sessions and DTLS ---------------------------------------------------- */

static int on_event(coap_session_t *ses, const coap_event_t ev)
{
    struct gw_coap *s = srv_of(ses);
    if (!s)
        return 0;
    if (ev == COAP_EVENT_SERVER_SESSION_DEL) {
        gw_coap_status_session_gone(s, ses);
        gw_coap_observer_session_gone(s, ses);
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
        ferry_log_warn("coap: %s: handshake refused, unknown PSK identity '%s'",
                       coap_session_str(ses),
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
    ferry_log_info("coap: DTLS with %zu node keys from %s", gw_psk_count(s->psk), psk_file);
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

/* ---- .well-known/core ----------------------------------------------------------- */

/* Whether resource r passes a query filter of RFC 6690 on rt= (a value, or
 * a prefix ending in '*'); other filters are not supported and pass all. */
static bool passes(coap_resource_t *r, const coap_string_t *q)
{
    if (!q || q->length < 3 || memcmp(q->s, "rt=", 3) != 0)
        return true;
    coap_attr_t *a = coap_find_attr(r, coap_make_str_const("rt"));
    coap_str_const_t *v = a ? coap_attr_get_value(a) : NULL;
    if (!v)
        return false;
    /* The attribute is quoted: "ferry.status". */
    const uint8_t *rt = v->s;
    size_t n = v->length;
    if (n >= 2 && rt[0] == '"' && rt[n - 1] == '"') {
        rt++;
        n -= 2;
    }
    const uint8_t *want = q->s + 3;
    size_t w = q->length - 3;
    if (w > 0 && want[w - 1] == '*')
        return w - 1 <= n && memcmp(rt, want, w - 1) == 0;
    return w == n && memcmp(rt, want, w) == 0;
}

/* Appends r's link to the listing in *buf (grown as needed). */
static bool append_link(const coap_resource_t *r, uint8_t **buf, size_t *len, size_t *cap)
{
    uint8_t link[512];
    size_t n = sizeof(link), offset = 0;
    coap_print_status_t st = coap_print_link(r, link, &n, &offset);
    if (st & (COAP_PRINT_STATUS_ERROR | COAP_PRINT_STATUS_TRUNC))
        return false;
    n = COAP_PRINT_OUTPUT_LENGTH(st);
    if (*len + n + 1 > *cap) {
        size_t c = (*cap ? *cap * 2 : 1024) + n + 1;
        uint8_t *grown = realloc(*buf, c);
        if (!grown)
            return false;
        *buf = grown;
        *cap = c;
    }
    if (*len > 0)
        (*buf)[(*len)++] = ',';
    memcpy(*buf + *len, link, n);
    *len += n;
    return true;
}

/* GET .well-known/core: every resource in link-format (RFC 6690), built on
 * each request and served a block per request like every body (libcoap's
 * own listing is cut at one datagram without its block mode). */
static void on_wellknown(coap_resource_t *r, coap_session_t *ses, const coap_pdu_t *req,
                         const coap_string_t *q, coap_pdu_t *resp)
{
    (void)ses;
    struct gw_coap *s = coap_resource_get_userdata(r);
    struct gw_coap_block2 b;
    if (!gw_coap_parse_block2(req, &b, resp))
        return;
    uint8_t *doc = NULL;
    size_t len = 0, cap = 0;
    bool ok = true;
    if (passes(s->status_res, q))
        ok = append_link(s->status_res, &doc, &len, &cap);
    if (ok && passes(s->config_res, q))
        ok = append_link(s->config_res, &doc, &len, &cap);
    for (const struct manifest_entry *m = s->mans; ok && m; m = m->next)
        if (passes(m->res, q))
            ok = append_link(m->res, &doc, &len, &cap);
    for (const struct meta_entry *m = s->metas; ok && m; m = m->next)
        if (passes(m->res, q))
            ok = append_link(m->res, &doc, &len, &cap);
    for (const struct artifact_entry *a = s->arts; ok && a; a = a->next)
        if (!a->removed && passes(a->res, q))
            ok = append_link(a->res, &doc, &len, &cap);
    struct gw_coap_piece pc;
    if (!ok) {
        gw_coap_answer(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR, 0, "out of memory");
    } else if (!gw_coap_pick_piece(&b, len, &pc)) {
        gw_coap_answer(resp, COAP_RESPONSE_CODE_BAD_OPTION, 0,
                       "Block2: block starts beyond the listing");
    } else {
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE_CONTENT);
        if (!ferry_coapglue_add_uint(resp, COAP_OPTION_CONTENT_FORMAT,
                                     COAP_MEDIATYPE_APPLICATION_LINK_FORMAT) ||
            !gw_coap_add_piece(resp, &pc, doc, len))
            gw_coap_answer(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR, 0, "listing does not fit");
    }
    free(doc);
}

static enum ferry_err add_fixed_resources(struct gw_coap *s, struct ferry_diag *d)
{
    enum ferry_err err = gw_coap_status_register(s, d);
    if (err != FERRY_OK)
        return err;
    /* Each is handed to the context at once, which frees it in the end. */
    coap_resource_t *wk = coap_resource_init(coap_make_str_const(COAP_DEFAULT_URI_WELLKNOWN), 0);
    if (!wk)
        return ferry_fail(d, FERRY_E_NOMEM, "coap: out of memory");
    coap_register_request_handler(wk, COAP_REQUEST_GET, on_wellknown);
    coap_resource_set_userdata(wk, s);
    coap_add_resource(s->ctx, wk);
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
    if (!h->manifest || !h->artifact || !h->artifact_map || !h->artifact_release || !h->status)
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
    /* A node told 5.03 comes back after Max-Age (jittered by up to a
     * quarter): it keeps its place in the queue for twice that. */
    struct gw_pacer_opts po = {.max_transfers = o->max_downloads,
                               .idle_ms = o->idle_ms,
                               .turn_ms = o->turn_ms,
                               .wait_ms = (uint64_t)s->busy_max_age * 2000 + 5000};
    err = gw_pacer_new(&po, &s->pacer, d);
    if (err != FERRY_OK)
        return err;
    s->max_observers = o->max_observers ? o->max_observers : GW_COAP_DEFAULT_MAX_OBSERVERS;
    s->observers = calloc(s->max_observers, sizeof(s->observers[0]));
    if (!s->observers)
        return ferry_fail(d, FERRY_E_NOMEM, "coap: out of memory");
    s->waiting_linger_ms =
        o->waiting_linger_ms ? o->waiting_linger_ms : GW_COAP_DEFAULT_WAITING_LINGER_MS;
    if (o->link_rate) {
        struct gw_budget_opts bo = {.link_rate = o->link_rate, .node_rate = o->node_rate};
        if ((err = gw_budget_new(&bo, &s->budget, d)) != FERRY_OK)
            return err;
        s->pending = calloc(GW_BUDGET_DEFAULT_QUEUED, sizeof(s->pending[0]));
        if (!s->pending)
            return ferry_fail(d, FERRY_E_NOMEM, "coap: out of memory");
    }
    s->idle_ms = o->idle_ms ? o->idle_ms : GW_PACER_DEFAULT_IDLE_MS;
    s->ctx = coap_new_context(NULL);
    if (!s->ctx)
        return ferry_fail(d, FERRY_E_NOMEM, "coap: cannot create a context");
    coap_set_app_data(s->ctx, s);
    /* No COAP_BLOCK_USE_LIBCOAP: libcoap 4.3.1 would keep state per
     * Block1 Request-Tag and per Block2 body and session, as much as peers
     * care to make it keep. Every body is served here a block per request
     * (gw_coap_pick_piece()) and status records are put together here, in
     * bounded slots, so one peer can make the server keep almost nothing. */
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
    return ferry_coapglue_io_start(&s->io, s->loop, s->ctx, after_pass, s, d);
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
    ferry_coapglue_up();
    s->loop = loop;
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
    ferry_log_info("coap: serving on %s port %u (%s), at most %" PRIu32 " downloads at once",
                   opts->addr, (unsigned)s->port, opts->psk_file ? "DTLS" : "UDP",
                   opts->max_downloads);
    if (opts->link_rate)
        ferry_log_info("coap: link budget %" PRIu64 " bytes/s, %s per node", opts->link_rate,
                       opts->node_rate ? "capped" : "a fair share");
    *out = s;
    return FERRY_OK;
}

void gw_coap_free(struct gw_coap *s)
{
    if (!s)
        return;
    s->closing = true;
    ferry_coapglue_io_stop(&s->io);
    if (s->expiry_timer)
        ferry_loop_cancel(s->loop, s->expiry_timer);
    if (s->budget_timer)
        ferry_loop_cancel(s->loop, s->budget_timer);
    gw_coap_artifact_drop_pending(s);
    /* Frees every session and every resource (and the manifest copies). */
    if (s->ctx)
        coap_free_context(s->ctx);
    gw_coap_artifact_free_all(s);
    gw_coap_manifest_free_all(s);
    gw_coap_meta_free_all(s);
    gw_pacer_free(s->pacer);
    gw_budget_free(s->budget);
    free(s->pending);
    free(s->observers);
    gw_psk_free(s->psk);
    gw_coap_status_free_all(s);
    free(s);
    ferry_coapglue_down();
}

uint16_t gw_coap_port(const struct gw_coap *s)
{
    return s->port;
}

void gw_coap_process_now(struct gw_coap *s)
{
    ferry_coapglue_io_process(&s->io);
}

size_t gw_coap_active_downloads(const struct gw_coap *s)
{
    return gw_pacer_active(s->pacer);
}

void gw_coap_get_stats(const struct gw_coap *s, struct gw_coap_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->downloads = gw_pacer_active(s->pacer);
    out->waiting = gw_pacer_waiting(s->pacer);
    out->observers = s->nobservers;
    out->waiting_products = s->waiting_products;
    for (size_t i = 0; i < GW_COAP_STATUS_PARTS; i++)
        out->partial_records += s->parts[i].session != NULL;
    out->queued_answers = s->budget ? gw_budget_queued(s->budget) : 0;
}
