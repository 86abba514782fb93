/* ferry/manifest/<product>: the signed envelope offered for a product line,
 * observable (gw_coap_core.h). */
#include "gw_coap_core.h"

#include "ferry_envelope.h"
#include "ferry_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct manifest_entry *find_man(struct gw_coap *s, const char *product)
{
    for (struct manifest_entry *m = s->mans; m; m = m->next)
        if (strcmp(m->product, product) == 0)
            return m;
    return NULL;
}

static void on_manifest_get(coap_resource_t *r, coap_session_t *ses, const coap_pdu_t *req,
                            const coap_string_t *q, coap_pdu_t *resp);

static struct manifest_entry *add_man(struct gw_coap *s, const char *product)
{
    struct manifest_entry *m = find_man(s, product);
    if (m)
        return m;
    m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    char path[sizeof(FERRY_COAP_MANIFEST) + 1 + FERRY_ID_MAX];
    snprintf(path, sizeof(path), "%s/%s", FERRY_COAP_MANIFEST, product);
    m->res = gw_coap_new_resource(path, COAP_MEDIATYPE_APPLICATION_JSON,
                                  "\"" FERRY_COAP_RT_MANIFEST "\"");
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

void gw_coap_manifest_free_all(struct gw_coap *s)
{
    while (s->mans) {
        struct manifest_entry *m = s->mans;
        s->mans = m->next;
        free(m);
    }
}

static void free_copy(coap_session_t *ses, void *app_ptr)
{
    (void)ses;
    free(app_ptr);
}

/* GET ferry/manifest/<product>. The envelope is copied: a new release may replace
 * the caller's bytes while libcoap still serves blocks of this one. */
static void serve_manifest(struct gw_coap *s, struct manifest_entry *m, coap_session_t *ses,
                           const coap_pdu_t *req, const coap_string_t *q, coap_pdu_t *resp)
{
    size_t len = 0;
    const uint8_t *env = NULL;
    uint32_t hold = 0;
    if (s->hooks.manifest_for) {
        struct gw_coap_peer who;
        struct gw_coap_peer_buf buf;
        if (!gw_coap_peer_of(ses, req, &who, &buf)) {
            gw_coap_answer(resp, COAP_RESPONSE_CODE_FORBIDDEN, 0, "n= is not your DTLS identity");
            return;
        }
        struct gw_coap_offer offer = {0};
        s->hooks.manifest_for(s->hooks.arg, m->product, &who, &offer);
        env = offer.env;
        len = offer.len;
        hold = offer.hold_s;
    } else {
        env = s->hooks.manifest(s->hooks.arg, m->product, &len);
    }
    if (!env) {
        /* "Nothing offered": a 2.05 keeps an observation alive (any error
         * would end it), so the node hears of the product's first release. */
        gw_coap_answer(resp, COAP_RESPONSE_CODE_CONTENT, s->manifest_max_age, NULL);
        return;
    }
    uint8_t *copy = len > 0 && len <= FERRY_ENVELOPE_MAX_BYTES ? malloc(len) : NULL;
    if (!copy) {
        LOG_ERR("coap: manifest for '%s' is %zu bytes, cannot serve it", m->product, len);
        gw_coap_answer(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR, 0, "manifest unavailable");
        return;
    }
    memcpy(copy, env, len);
    uint8_t sha[FERRY_SHA256_LEN];
    ferry_sha256(copy, len, sha);
    /* libcoap adds an ETag only to bodies that need blocks. */
    gw_coap_add_uint_option(resp, COAP_OPTION_ETAG, gw_coap_etag_of(sha));
    if (hold)
        gw_coap_add_uint_option(resp, FERRY_COAP_OPTION_HOLD, hold);
    coap_pdu_set_code(resp, COAP_RESPONSE_CODE_CONTENT);
    if (!coap_add_data_large_response(m->res, ses, req, resp, q, COAP_MEDIATYPE_APPLICATION_JSON,
                                      (int)s->manifest_max_age, gw_coap_etag_of(sha), len, copy,
                                      free_copy, copy))
        LOG_WARN("coap: could not queue the manifest for %s", coap_session_str(ses));
}

static void on_manifest_get(coap_resource_t *r, coap_session_t *ses, const coap_pdu_t *req,
                            const coap_string_t *q, coap_pdu_t *resp)
{
    struct manifest_entry *m = coap_resource_get_userdata(r);
    serve_manifest(m->srv, m, ses, req, q, resp);
}

void gw_coap_manifest_unknown(struct gw_coap *s, const char *product, coap_session_t *ses,
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
    size_t len = 0;
    bool released = s->hooks.manifest(s->hooks.arg, product, &len) != NULL;
    /* Any node may name any product: the resources made for those with no
     * release are capped, and beyond the cap such nodes poll. */
    if (!released && s->waiting_products >= GW_COAP_MAX_WAITING_PRODUCTS) {
        gw_coap_answerf(resp, COAP_RESPONSE_CODE_NOT_FOUND, s->manifest_max_age,
                        "no release for product '%s'", product);
        return;
    }
    /* Observable from now on; this answer itself registers no observer (the
     * request reached no resource), so it carries no Observe option. */
    struct manifest_entry *m = add_man(s, product);
    if (!m) {
        gw_coap_answer(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR, 0, "out of memory");
        return;
    }
    if (!released)
        s->waiting_products++;
    serve_manifest(s, m, ses, req, q, resp);
}

enum ferry_err gw_coap_manifest_changed(struct gw_coap *s, const char *product)
{
    if (!ferry_id_valid(product))
        return FERRY_E_INVALID_ARG;
    struct manifest_entry *m = add_man(s, product);
    if (!m)
        return FERRY_E_NOMEM;
    coap_resource_notify_observers(m->res, NULL);
    gw_coap_kick(s);
    return FERRY_OK;
}
