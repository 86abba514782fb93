/* ferry_log.h before libcoap: its LOG_* macros would otherwise meet
 * libcoap's syslog level names (libcoap defines them only when missing). */
#include "ferry_log.h"

#include "gw_coap_meta.h"

#include "ferry_names.h"
#include "ferry_opts.h"
#include "ferry_sha256.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct meta_res {
    struct meta_res *next;
    struct gw_coap_meta *owner;
    char product[FERRY_ID_MAX + 1];
    coap_resource_t *res;
};

struct gw_coap_meta {
    coap_context_t *ctx;
    gw_coap_meta_source source;
    void *arg;
    uint32_t max_age_s;
    struct meta_res *list;
    size_t waiting; /* resources made for products without a timestamp */
};

struct gw_coap_meta *gw_coap_meta_new(coap_context_t *ctx, gw_coap_meta_source source, void *arg,
                                      uint32_t max_age_s)
{
    struct gw_coap_meta *m = calloc(1, sizeof(*m));
    if (m) {
        m->ctx = ctx;
        m->source = source;
        m->arg = arg;
        m->max_age_s = max_age_s;
    }
    return m;
}

void gw_coap_meta_free(struct gw_coap_meta *m)
{
    if (!m)
        return;
    while (m->list) {
        struct meta_res *r = m->list;
        m->list = r->next;
        free(r);
    }
    free(m);
}

static void answer(coap_pdu_t *resp, coap_pdu_code_t code, const char *diag)
{
    coap_pdu_set_code(resp, code);
    if (diag)
        coap_add_data(resp, strlen(diag), (const uint8_t *)diag);
}

/* "r=<version>" among the query's parameters; 0 when absent. */
static bool have_version(const coap_string_t *q, uint64_t *have)
{
    *have = 0;
    if (!q || q->length == 0)
        return true;
    const char *s = (const char *)q->s, *end = s + q->length;
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        size_t n = amp ? (size_t)(amp - s) : (size_t)(end - s);
        if (n > 2 && s[0] == 'r' && s[1] == '=') {
            char num[24];
            if (n - 2 >= sizeof(num))
                return false;
            memcpy(num, s + 2, n - 2);
            num[n - 2] = '\0';
            return strspn(num, "0123456789") == n - 2 && ferry_parse_u64(num, have) == FERRY_OK;
        }
        s += n + 1;
    }
    return true;
}

static void free_bundle(coap_session_t *ses, void *app_ptr)
{
    (void)ses;
    free(app_ptr);
}

/* The bundle for this node, answered in as many blocks as it needs. */
static void serve(struct gw_coap_meta *m, coap_resource_t *res, const char *product,
                  coap_session_t *ses, const coap_pdu_t *req, const coap_string_t *q,
                  coap_pdu_t *resp)
{
    uint64_t have = 0;
    if (!have_version(q, &have)) {
        answer(resp, COAP_RESPONSE_CODE_BAD_REQUEST, "query r= must be a root version");
        return;
    }
    uint8_t *bundle = NULL;
    size_t len = 0;
    bool known = false;
    if (m->source(m->arg, product, have, &bundle, &len, &known) != FERRY_OK || !bundle) {
        answer(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR, "trust metadata unavailable");
        return;
    }
    uint8_t sha[FERRY_SHA256_LEN];
    ferry_sha256(bundle, len, sha);
    uint64_t etag = 0;
    for (int i = 0; i < 8; i++)
        etag = etag << 8 | sha[i];
    coap_pdu_set_code(resp, COAP_RESPONSE_CODE_CONTENT);
    if (!coap_add_data_large_response(res, ses, req, resp, q, COAP_MEDIATYPE_APPLICATION_JSON,
                                      (int)m->max_age_s, etag ? etag : 1, len, bundle, free_bundle,
                                      bundle))
        LOG_WARN("coap: could not queue the trust metadata for %s", coap_session_str(ses));
}

static void on_get(coap_resource_t *res, coap_session_t *ses, const coap_pdu_t *req,
                   const coap_string_t *q, coap_pdu_t *resp)
{
    struct meta_res *r = coap_resource_get_userdata(res);
    serve(r->owner, res, r->product, ses, req, q, resp);
}

static struct meta_res *find(struct gw_coap_meta *m, const char *product)
{
    for (struct meta_res *r = m->list; r; r = r->next)
        if (strcmp(r->product, product) == 0)
            return r;
    return NULL;
}

static struct meta_res *add(struct gw_coap_meta *m, const char *product, bool known)
{
    struct meta_res *r = find(m, product);
    if (r || (!known && m->waiting >= GW_COAP_META_MAX_WAITING))
        return r;
    char path[sizeof(FERRY_COAP_META) + 2 + FERRY_ID_MAX];
    snprintf(path, sizeof(path), "%s/%.*s", FERRY_COAP_META, FERRY_ID_MAX, product);
    coap_str_const_t *uri = coap_new_str_const((const uint8_t *)path, strlen(path));
    coap_resource_t *res = uri ? coap_resource_init(uri, COAP_RESOURCE_FLAGS_RELEASE_URI) : NULL;
    r = res ? calloc(1, sizeof(*r)) : NULL;
    if (!r) {
        if (res)
            coap_delete_resource(m->ctx, res);
        else
            coap_delete_str_const(uri);
        return NULL;
    }
    coap_add_attr(res, coap_make_str_const("ct"), coap_make_str_const("50"), 0);
    coap_add_attr(res, coap_make_str_const("rt"), coap_make_str_const("\"" FERRY_COAP_RT_META "\""),
                  0);
    /* Confirmable: a node must not miss a withdrawal or a new root. */
    coap_resource_set_mode(res, COAP_RESOURCE_FLAGS_NOTIFY_CON);
    coap_resource_set_get_observable(res, 1);
    coap_register_request_handler(res, COAP_REQUEST_GET, on_get);
    coap_resource_set_userdata(res, r);
    coap_add_resource(m->ctx, res);
    r->owner = m;
    r->res = res;
    snprintf(r->product, sizeof(r->product), "%.*s", FERRY_ID_MAX, product);
    r->next = m->list;
    m->list = r;
    m->waiting += !known;
    return r;
}

bool gw_coap_meta_unknown(struct gw_coap_meta *m, const coap_string_t *path, coap_session_t *ses,
                          const coap_pdu_t *req, const coap_string_t *q, coap_pdu_t *resp)
{
    size_t n = strlen(FERRY_COAP_META);
    if (!m || !path || path->length <= n + 1 || memcmp(path->s, FERRY_COAP_META, n) != 0 ||
        path->s[n] != '/')
        return false;
    char product[FERRY_ID_MAX + 2];
    size_t t = path->length - n - 1;
    if (t >= sizeof(product))
        t = sizeof(product) - 1; /* then not an identifier */
    memcpy(product, path->s + n + 1, t);
    product[t] = '\0';
    if (!ferry_id_valid(product)) {
        answer(resp, COAP_RESPONSE_CODE_NOT_FOUND, "not a product identifier");
        return true;
    }
    if (coap_pdu_get_code(req) != COAP_REQUEST_CODE_GET) {
        answer(resp, COAP_RESPONSE_CODE_NOT_ALLOWED, NULL);
        return true;
    }
    uint64_t have = 0;
    uint8_t *probe = NULL;
    size_t len = 0;
    bool known = false;
    if (!have_version(q, &have)) {
        answer(resp, COAP_RESPONSE_CODE_BAD_REQUEST, "query r= must be a root version");
        return true;
    }
    if (m->source(m->arg, product, have, &probe, &len, &known) != FERRY_OK) {
        answer(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR, "trust metadata unavailable");
        return true;
    }
    free(probe);
    /* Observable from now on; this answer registers no observer (the
     * request reached no resource). */
    struct meta_res *r = add(m, product, known);
    if (!r) {
        uint8_t age[4];
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE_NOT_FOUND);
        coap_add_option(resp, COAP_OPTION_MAXAGE,
                        coap_encode_var_safe(age, sizeof(age), m->max_age_s), age);
        coap_add_data(resp, strlen("no trust metadata for this product"),
                      (const uint8_t *)"no trust metadata for this product");
        return true;
    }
    serve(m, r->res, product, ses, req, q, resp);
    return true;
}

void gw_coap_meta_notify(struct gw_coap_meta *m, const char *product)
{
    for (struct meta_res *r = m ? m->list : NULL; r; r = r->next) {
        if (!product || strcmp(r->product, product) == 0)
            coap_resource_notify_observers(r->res, NULL);
    }
}
