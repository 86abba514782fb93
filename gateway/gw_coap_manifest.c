/* ferry/manifest/<product>: the signed envelope offered for a product line,
 * observable (gw_coap_core.h). */
#include "gw_coap_core.h"

#include "ferry_envelope.h"
#include "ferry_log.h"

#include <inttypes.h>
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
    m->last_ms = ferry_now_ms();
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

/* GET ferry/manifest/<product>: the envelope offered now, a block per
 * request like every body (gw_coap_pick_piece()); an observer's
 * notification is block 0, and the node asks for the others. */
static void serve_manifest(struct gw_coap *s, struct manifest_entry *m, const coap_pdu_t *req,
                           const struct gw_coap_requester *who, coap_pdu_t *resp)
{
    struct gw_coap_block2 b;
    if (!gw_coap_parse_block2(req, &b, resp))
        return;
    m->last_ms = ferry_now_ms();
    size_t len = 0;
    const uint8_t *env = NULL;
    uint32_t hold = 0;
    if (s->hooks.manifest_for) {
        struct gw_coap_offer offer = {0};
        s->hooks.manifest_for(s->hooks.arg, m->product, who, &offer);
        env = offer.env;
        len = offer.len;
        hold = offer.hold_s;
    } else {
        env = s->hooks.manifest(s->hooks.arg, m->product, who, &len);
    }
    if (!env) {
        /* "Nothing offered": a 2.05 keeps an observation alive (any error
         * would end it), so the node hears of the product's first release. */
        gw_coap_answer(resp, COAP_RESPONSE_CODE_CONTENT, s->manifest_max_age, NULL);
        return;
    }
    if (m->waiting) {
        m->waiting = false;
        s->waiting_products--;
    }
    if (len == 0 || len > FERRY_ENVELOPE_MAX_BYTES) {
        ferry_log_err("coap: manifest for '%s' is %zu bytes, cannot serve it", m->product, len);
        gw_coap_answer(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR, 0, "manifest unavailable");
        return;
    }
    struct gw_coap_piece pc;
    if (!gw_coap_pick_piece(&b, len, &pc)) {
        gw_coap_answerf(resp, COAP_RESPONSE_CODE_BAD_OPTION, 0,
                        "Block2: block %" PRIu32 " starts beyond the %zu bytes", b.num, len);
        return;
    }
    uint8_t sha[FERRY_SHA256_LEN];
    ferry_sha256(env, len, sha);
    coap_pdu_set_code(resp, COAP_RESPONSE_CODE_CONTENT);
    if (!ferry_coapglue_add_etag(resp, sha) ||
        !ferry_coapglue_add_uint(resp, COAP_OPTION_CONTENT_FORMAT,
                                 COAP_MEDIATYPE_APPLICATION_JSON) ||
        !ferry_coapglue_add_uint(resp, COAP_OPTION_MAXAGE, s->manifest_max_age) ||
        !gw_coap_add_piece_with(resp, &pc, env, len, hold ? FERRY_COAP_OPTION_HOLD : 0, hold))
        gw_coap_answer(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR, 0, "manifest does not fit");
}

static bool has_observers(const struct gw_coap *s, const struct manifest_entry *m)
{
    for (size_t i = 0; i < s->max_observers; i++)
        if (s->observers[i].used && s->observers[i].owner == m)
            return true;
    return false;
}

uint64_t gw_coap_manifest_next_expiry(const struct gw_coap *s)
{
    uint64_t next = GW_PACER_NO_EXPIRY;
    for (const struct manifest_entry *m = s->mans; m; m = m->next) {
        if (!m->waiting)
            continue;
        uint64_t at = m->last_ms > UINT64_MAX - s->waiting_linger_ms
                          ? UINT64_MAX
                          : m->last_ms + s->waiting_linger_ms;
        if (at < next)
            next = at;
    }
    return next;
}

void gw_coap_manifest_expire(struct gw_coap *s, uint64_t now_ms)
{
    for (struct manifest_entry **p = &s->mans; *p;) {
        struct manifest_entry *m = *p;
        bool stale = m->waiting && now_ms >= m->last_ms &&
                     now_ms - m->last_ms >= s->waiting_linger_ms && !has_observers(s, m);
        if (!stale) {
            if (m->waiting && has_observers(s, m))
                m->last_ms = now_ms; /* observed: it lingers from now on */
            p = &m->next;
            continue;
        }
        ferry_log_debug("coap: no release and no observer for product '%s': resource dropped",
                        m->product);
        *p = m->next;
        s->waiting_products--;
        coap_delete_resource(s->ctx, m->res);
        free(m);
    }
}

static void on_manifest_get(coap_resource_t *r, coap_session_t *ses, const coap_pdu_t *req,
                            const coap_string_t *q, coap_pdu_t *resp)
{
    struct manifest_entry *m = coap_resource_get_userdata(r);
    struct gw_coap *s = m->srv;
    (void)q;
    struct gw_coap_requester who;
    if (!gw_coap_who(ses, req, &who, resp))
        return;
    bool registering;
    if (!gw_coap_observe_before(s, m, ses, req, &who, resp, &registering))
        return;
    serve_manifest(s, m, req, &who, resp);
    gw_coap_observe_after(s, ses, req, registering, resp);
}

void gw_coap_manifest_unknown(struct gw_coap *s, const char *product, coap_session_t *ses,
                              const coap_pdu_t *req, const coap_string_t *q,
                              const struct gw_coap_requester *who, coap_pdu_t *resp)
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
    bool released = s->hooks.manifest(s->hooks.arg, product, who, &len) != NULL;
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
    if (!released && !m->waiting) {
        m->waiting = true;
        s->waiting_products++;
    }
    if (m->waiting)
        gw_coap_schedule_expiry(s); /* it goes once unwanted for a while */
    (void)ses;
    (void)q;
    serve_manifest(s, m, req, who, resp);
}

enum ferry_err gw_coap_manifest_changed(struct gw_coap *s, const char *product)
{
    if (!ferry_id_valid(product))
        return FERRY_E_INVALID_ARG;
    struct manifest_entry *m = add_man(s, product);
    if (!m)
        return FERRY_E_NOMEM;
    /* The gateway announces it: no longer a product only a node asked for. */
    if (m->waiting) {
        m->waiting = false;
        s->waiting_products--;
    }
    coap_resource_notify_observers(m->res, NULL);
    ferry_coapglue_io_kick(&s->io);
    return FERRY_OK;
}
