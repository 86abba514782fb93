/* ferry/meta/<product>: the trust metadata bundle for a product line's
 * nodes (PROTOCOL.md, "Trust metadata"), observable (gw_coap_core.h).
 *
 * The query names what the node holds: "r=<root version>" (absent: 0), so it
 * gets only the roots it lacks; other parameters are ignored. An observer's
 * notifications are built from its own registration's query (libcoap hands
 * the handler the stored request). Answers: 2.05 with Max-Age and an ETag
 * from the bundle; 4.00 for an "r=" that is not a version; 4.04 for a
 * product that is not an identifier; 4.05 for other methods. A resource is
 * made when a node first asks: always for a product the gateway holds a
 * timestamp of (at most GW_META_MAX_PRODUCTS, gw_meta.h), and for up to
 * GW_COAP_MAX_WAITING_METAS others; beyond that such a product gets 4.04
 * with Max-Age. */
#include "gw_coap_core.h"

#include "ferry_coapglue.h"
#include "ferry_log.h"
#include "ferry_opts.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct meta_entry *find_meta(struct gw_coap *s, const char *product)
{
    for (struct meta_entry *m = s->metas; m; m = m->next)
        if (strcmp(m->product, product) == 0)
            return m;
    return NULL;
}

static void on_meta_get(coap_resource_t *r, coap_session_t *ses, const coap_pdu_t *req,
                        const coap_string_t *q, coap_pdu_t *resp);

static struct meta_entry *add_meta(struct gw_coap *s, const char *product, bool known)
{
    struct meta_entry *m = find_meta(s, product);
    if (m || (!known && s->waiting_metas >= GW_COAP_MAX_WAITING_METAS))
        return m;
    m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    char path[sizeof(FERRY_COAP_META) + 2 + FERRY_ID_MAX];
    snprintf(path, sizeof(path), "%s/%.*s", FERRY_COAP_META, FERRY_ID_MAX, product);
    m->res =
        gw_coap_new_resource(path, COAP_MEDIATYPE_APPLICATION_JSON, "\"" FERRY_COAP_RT_META "\"");
    if (!m->res) {
        free(m);
        return NULL;
    }
    /* Confirmable: a node must not miss a withdrawal or a new root. */
    coap_resource_set_mode(m->res, COAP_RESOURCE_FLAGS_NOTIFY_CON);
    coap_resource_set_get_observable(m->res, 1);
    coap_register_request_handler(m->res, COAP_REQUEST_GET, on_meta_get);
    coap_resource_set_userdata(m->res, m);
    coap_add_resource(s->ctx, m->res);
    m->srv = s;
    snprintf(m->product, sizeof(m->product), "%.*s", FERRY_ID_MAX, product);
    m->next = s->metas;
    s->metas = m;
    s->waiting_metas += !known;
    return m;
}

void gw_coap_meta_free_all(struct gw_coap *s)
{
    while (s->metas) {
        struct meta_entry *m = s->metas;
        s->metas = m->next;
        free(m);
    }
}

/* "r=<version>" among the query's parameters; 0 when absent. */
static bool have_version(const coap_string_t *q, uint64_t *have)
{
    *have = 0;
    if (!q || q->length == 0)
        return true;
    const char *p = (const char *)q->s, *end = p + q->length;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        size_t n = amp ? (size_t)(amp - p) : (size_t)(end - p);
        if (n > 2 && p[0] == 'r' && p[1] == '=') {
            char num[24];
            if (n - 2 >= sizeof(num))
                return false;
            memcpy(num, p + 2, n - 2);
            num[n - 2] = '\0';
            return strspn(num, "0123456789") == n - 2 && ferry_parse_u64(num, have) == FERRY_OK;
        }
        p += n + 1;
    }
    return true;
}

/* The bundle for this node, a block per request like every body
 * (gw_coap_pick_piece()): the bundle is built again for each block, so the
 * server keeps nothing per transfer, and its ETag tells the node when the
 * blocks it put together came from different bundles. */
static void serve_meta(struct gw_coap *s, struct meta_entry *m, const coap_pdu_t *req,
                       const coap_string_t *q, coap_pdu_t *resp)
{
    uint64_t have = 0;
    if (!have_version(q, &have)) {
        gw_coap_answer(resp, COAP_RESPONSE_CODE_BAD_REQUEST, 0, "query r= must be a root version");
        return;
    }
    struct gw_coap_block2 b;
    if (!gw_coap_parse_block2(req, &b, resp))
        return;
    uint8_t *bundle = NULL;
    size_t len = 0;
    bool known = false;
    if (s->hooks.meta(s->hooks.arg, m->product, have, &bundle, &len, &known) != FERRY_OK ||
        !bundle) {
        gw_coap_answer(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR, 0, "trust metadata unavailable");
        return;
    }
    struct gw_coap_piece pc;
    if (!gw_coap_pick_piece(&b, len, &pc)) {
        gw_coap_answerf(resp, COAP_RESPONSE_CODE_BAD_OPTION, 0,
                        "Block2: block %" PRIu32 " starts beyond the %zu bytes", b.num, len);
        free(bundle);
        return;
    }
    uint8_t sha[FERRY_SHA256_LEN];
    ferry_sha256(bundle, len, sha);
    coap_pdu_set_code(resp, COAP_RESPONSE_CODE_CONTENT);
    if (!ferry_coapglue_add_etag(resp, sha) ||
        !ferry_coapglue_add_uint(resp, COAP_OPTION_CONTENT_FORMAT,
                                 COAP_MEDIATYPE_APPLICATION_JSON) ||
        !ferry_coapglue_add_uint(resp, COAP_OPTION_MAXAGE, s->manifest_max_age) ||
        !gw_coap_add_piece(resp, &pc, bundle, len))
        gw_coap_answer(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR, 0, "trust metadata does not fit");
    free(bundle);
}

/* An observable GET: the registration is counted against the server's caps
 * like a manifest's (gw_coap_observe.c). */
static void get_meta(struct gw_coap *s, struct meta_entry *m, coap_session_t *ses,
                     const coap_pdu_t *req, const coap_string_t *q, coap_pdu_t *resp)
{
    struct gw_coap_requester who;
    if (!gw_coap_who(ses, req, &who, resp))
        return;
    bool registering;
    if (!gw_coap_observe_before(s, m, ses, req, &who, resp, &registering))
        return;
    serve_meta(s, m, req, q, resp);
    gw_coap_observe_after(s, ses, req, registering, resp);
}

static void on_meta_get(coap_resource_t *r, coap_session_t *ses, const coap_pdu_t *req,
                        const coap_string_t *q, coap_pdu_t *resp)
{
    struct meta_entry *m = coap_resource_get_userdata(r);
    get_meta(m->srv, m, ses, req, q, resp);
}

void gw_coap_meta_unknown(struct gw_coap *s, const char *product, coap_session_t *ses,
                          const coap_pdu_t *req, const coap_string_t *q, coap_pdu_t *resp)
{
    if (!ferry_id_valid(product)) {
        gw_coap_answer(resp, COAP_RESPONSE_CODE_NOT_FOUND, 0, "not a product identifier");
        return;
    }
    if (coap_pdu_get_code(req) != COAP_REQUEST_CODE_GET) {
        gw_coap_answer(resp, COAP_RESPONSE_CODE_NOT_ALLOWED, 0, NULL);
        return;
    }
    uint8_t *probe = NULL;
    size_t len = 0;
    bool known = false;
    if (s->hooks.meta(s->hooks.arg, product, 0, &probe, &len, &known) != FERRY_OK) {
        gw_coap_answer(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR, 0, "trust metadata unavailable");
        return;
    }
    free(probe);
    /* Observable from now on; this answer itself registers no observer (the
     * request reached no resource). */
    struct meta_entry *m = add_meta(s, product, known);
    if (!m) {
        gw_coap_answerf(resp, COAP_RESPONSE_CODE_NOT_FOUND, s->manifest_max_age,
                        "no trust metadata for product '%s'", product);
        return;
    }
    get_meta(s, m, ses, req, q, resp);
}

void gw_coap_meta_changed(struct gw_coap *s, const char *product)
{
    for (struct meta_entry *m = s->metas; m; m = m->next) {
        if (!product || strcmp(m->product, product) == 0)
            coap_resource_notify_observers(m->res, NULL);
    }
    ferry_coapglue_io_kick(&s->io);
}
