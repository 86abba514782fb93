/* ferry/status: status records POSTed by nodes, put together from Block1
 * pieces here, handed to hooks.status (gw_coap_core.h). */
#include "gw_coap_core.h"

#include "ferry_log.h"

#include <stdio.h>
#include <string.h>

static void drop_part(struct gw_coap *s, const coap_session_t *ses)
{
    for (size_t i = 0; i < GW_COAP_STATUS_PARTS; i++)
        if (s->parts[i].session == ses)
            s->parts[i].session = NULL;
}

void gw_coap_status_session_gone(struct gw_coap *s, const coap_session_t *ses)
{
    drop_part(s, ses);
}

void gw_coap_status_free_all(struct gw_coap *s)
{
    explicit_bzero(s->parts, sizeof(s->parts));
}

/* The slot for a record that starts now: this session's, a free one, or the
 * oldest one. */
static struct status_part *start_part(struct gw_coap *s, coap_session_t *ses, uint16_t cf)
{
    struct status_part *p = &s->parts[0];
    for (size_t i = 0; i < GW_COAP_STATUS_PARTS; i++) {
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
    for (size_t i = 0; i < GW_COAP_STATUS_PARTS; i++)
        if (s->parts[i].session == ses)
            return &s->parts[i];
    return NULL;
}

static coap_pdu_code_t status_code_for(enum ferry_err err)
{
    switch (err) {
    case FERRY_OK:
        return COAP_RESPONSE_CODE_CHANGED;
    case FERRY_E_NOSPACE:
    case FERRY_E_BUSY:
    case FERRY_E_SEQ_RANGE:
        return COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE;
    case FERRY_E_PROTOCOL:
        return COAP_RESPONSE_CODE_FORBIDDEN;
    case FERRY_E_CONFLICT:
        return COAP_RESPONSE_CODE_CONFLICT;
    case FERRY_E_MALFORMED:
    case FERRY_E_INVALID_ARG:
    case FERRY_E_TOO_LARGE:
        return COAP_RESPONSE_CODE_BAD_REQUEST;
    default:
        return COAP_RESPONSE_CODE_INTERNAL_ERROR;
    }
}

static void store_status(struct gw_coap *s, const struct gw_coap_requester *who, uint16_t cf,
                         const uint8_t *buf, size_t len, coap_pdu_t *resp)
{
    struct ferry_status st;
    struct ferry_diag d = {{0}};
    enum ferry_err err = cf == COAP_MEDIATYPE_APPLICATION_JSON
                             ? ferry_status_from_json(buf, len, &st, &d)
                             : ferry_status_from_cbor(buf, len, &st, &d);
    if (err != FERRY_OK) {
        gw_coap_answer(resp, COAP_RESPONSE_CODE_BAD_REQUEST, 0, ferry_diag_str(&d, err));
        return;
    }
    d.msg[0] = '\0';
    err = s->hooks.status(s->hooks.arg, &st, who, &d);
    coap_pdu_code_t code = status_code_for(err);
    if (err == FERRY_OK)
        coap_pdu_set_code(resp, code);
    else
        gw_coap_answer(
            resp, code,
            code == COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE ? gw_coap_jittered(s->busy_max_age) : 0,
            d.msg[0] ? d.msg : ferry_strerror(err));
}

static void too_large(coap_pdu_t *resp)
{
    coap_pdu_set_code(resp, COAP_RESPONSE_CODE_REQUEST_TOO_LARGE);
    ferry_coapglue_add_uint(resp, COAP_OPTION_SIZE1, FERRY_STATUS_MAX_BYTES);
    char diag[64];
    snprintf(diag, sizeof(diag), "status records are at most %d bytes", FERRY_STATUS_MAX_BYTES);
    coap_add_data(resp, strlen(diag), (const uint8_t *)diag);
}

static bool content_format(const coap_pdu_t *req, uint16_t *cf)
{
    bool present = false;
    uint64_t v = 0;
    if (ferry_coapglue_get_uint(req, COAP_OPTION_CONTENT_FORMAT, 2, &present, &v, NULL) !=
            FERRY_OK ||
        !present)
        return false;
    *cf = (uint16_t)v;
    return *cf == COAP_MEDIATYPE_APPLICATION_JSON || *cf == COAP_MEDIATYPE_APPLICATION_CBOR;
}

/* Where a piece of a record goes: its Block1 option, checked (Block1 is
 * read here, not by libcoap, so libcoap keeps no state for it, whatever
 * Request-Tags a peer sends). False when the answer is an error (in resp). */
static bool read_block1(const coap_pdu_t *req, size_t len, bool *present,
                        struct ferry_coapglue_block *b, size_t *offset, coap_pdu_t *resp)
{
    struct ferry_diag d = {{0}};
    enum ferry_err err = ferry_coapglue_get_block(req, COAP_OPTION_BLOCK1, present, b, &d);
    if (err != FERRY_OK) {
        gw_coap_answer(resp,
                       err == FERRY_E_TOO_LARGE ? COAP_RESPONSE_CODE_BAD_OPTION
                                                : COAP_RESPONSE_CODE_BAD_REQUEST,
                       0, d.msg);
        return false;
    }
    *offset = *present ? (size_t)b->num << (b->szx + 4) : 0;
    if (*present && b->more && len != (size_t)1 << (b->szx + 4)) {
        gw_coap_answer(resp, COAP_RESPONSE_CODE_BAD_REQUEST, 0,
                       "Block1: a piece with more to come must fill its block");
        return false;
    }
    return true;
}

/* The answer to a piece: Block1 as received with M as given (RFC 7959). */
static void echo_block1(coap_pdu_t *resp, const struct ferry_coapglue_block *b, bool more)
{
    struct ferry_coapglue_block e = {.num = b->num, .szx = b->szx, .more = more};
    ferry_coapglue_add_block(resp, COAP_OPTION_BLOCK1, &e);
}

/* POST ferry/status, in one datagram or in Block1 pieces sent in order, put
 * together here (one record per session, GW_COAP_STATUS_PARTS at most in
 * all), never beyond the cap. */
static void on_status_post(coap_resource_t *r, coap_session_t *ses, const coap_pdu_t *req,
                           const coap_string_t *q, coap_pdu_t *resp)
{
    (void)q;
    struct gw_coap *s = coap_resource_get_userdata(r);
    struct gw_coap_requester who;
    if (!gw_coap_who(ses, req, &who, resp))
        return;
    uint16_t cf = 0;
    if (!content_format(req, &cf)) {
        gw_coap_answer(resp, COAP_RESPONSE_CODE_UNSUPPORTED_CONTENT_FORMAT, 0,
                       "status records are JSON (50) or CBOR (60)");
        return;
    }
    size_t len = 0, offset = 0;
    const uint8_t *data = NULL;
    if (!coap_get_data(req, &len, &data) || len == 0) {
        gw_coap_answer(resp, COAP_RESPONSE_CODE_BAD_REQUEST, 0, "empty status record");
        return;
    }
    bool blocks = false, announced = false;
    struct ferry_coapglue_block b = {0};
    uint64_t size1 = 0;
    if (!read_block1(req, len, &blocks, &b, &offset, resp))
        return;
    if (ferry_coapglue_get_uint(req, COAP_OPTION_SIZE1, 4, &announced, &size1, NULL) != FERRY_OK ||
        size1 > FERRY_STATUS_MAX_BYTES || offset > FERRY_STATUS_MAX_BYTES ||
        len > FERRY_STATUS_MAX_BYTES - offset) {
        drop_part(s, ses);
        too_large(resp);
        return;
    }
    if (!blocks || (offset == 0 && !b.more)) {
        drop_part(s, ses);
        store_status(s, &who, cf, data, len, resp);
        if (blocks && coap_pdu_get_code(resp) == COAP_RESPONSE_CODE_CHANGED)
            echo_block1(resp, &b, false);
        return;
    }
    struct status_part *p = offset == 0 ? start_part(s, ses, cf) : find_part(s, ses);
    if (!p || p->cf != cf || offset > p->len) {
        drop_part(s, ses);
        gw_coap_answer(resp, COAP_RESPONSE_CODE_INCOMPLETE, 0,
                       "Block1: a piece before this one is missing");
        return;
    }
    memcpy(p->buf + offset, data, len);
    if (offset + len > p->len)
        p->len = offset + len;
    if (b.more) {
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE_CONTINUE);
        echo_block1(resp, &b, true);
        return;
    }
    p->session = NULL;
    store_status(s, &who, cf, p->buf, p->len, resp);
    if (coap_pdu_get_code(resp) == COAP_RESPONSE_CODE_CHANGED)
        echo_block1(resp, &b, false);
}

/* POST ferry/config: a node's configuration report (its properties file),
 * JSON in one datagram, answered as a status record is. */
static void on_config_post(coap_resource_t *r, coap_session_t *ses, const coap_pdu_t *req,
                           const coap_string_t *q, coap_pdu_t *resp)
{
    (void)q;
    struct gw_coap *s = coap_resource_get_userdata(r);
    struct gw_coap_requester who;
    if (!gw_coap_who(ses, req, &who, resp))
        return;
    uint16_t cf = 0;
    if (!content_format(req, &cf) || cf != COAP_MEDIATYPE_APPLICATION_JSON) {
        gw_coap_answer(resp, COAP_RESPONSE_CODE_UNSUPPORTED_CONTENT_FORMAT, 0,
                       "configuration reports are JSON (50)");
        return;
    }
    size_t len = 0;
    const uint8_t *data = NULL;
    coap_opt_iterator_t it;
    if (coap_check_option(req, COAP_OPTION_BLOCK1, &it) || !coap_get_data(req, &len, &data) ||
        len == 0) {
        gw_coap_answer(resp, COAP_RESPONSE_CODE_BAD_REQUEST, 0,
                       "a configuration report comes whole, in one datagram");
        return;
    }
    struct ferry_config_report rep;
    struct ferry_diag d = {{0}};
    enum ferry_err err = ferry_config_report_decode(data, len, &rep, &d);
    if (err != FERRY_OK) {
        gw_coap_answer(resp,
                       err == FERRY_E_TOO_LARGE ? COAP_RESPONSE_CODE_REQUEST_TOO_LARGE
                                                : COAP_RESPONSE_CODE_BAD_REQUEST,
                       0, ferry_diag_str(&d, err));
        return;
    }
    d.msg[0] = '\0';
    err = s->hooks.config ? s->hooks.config(s->hooks.arg, &rep,
                                            who.kind == GW_COAP_REQUESTER_PSK ? who.id : NULL, &d)
                          : FERRY_E_BUSY;
    coap_pdu_code_t code = status_code_for(err);
    if (err == FERRY_OK)
        coap_pdu_set_code(resp, code);
    else
        gw_coap_answer(
            resp, code,
            code == COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE ? gw_coap_jittered(s->busy_max_age) : 0,
            d.msg[0] ? d.msg : ferry_strerror(err));
}

enum ferry_err gw_coap_status_register(struct gw_coap *s, struct ferry_diag *d)
{
    /* Handed to the context at once, which frees it in the end. */
    coap_resource_t *st =
        gw_coap_new_resource(FERRY_COAP_STATUS, 0, "\"" FERRY_COAP_RT_STATUS "\"");
    if (!st)
        return ferry_fail(d, FERRY_E_NOMEM, "coap: out of memory");
    coap_register_request_handler(st, COAP_REQUEST_POST, on_status_post);
    coap_resource_set_userdata(st, s);
    coap_add_resource(s->ctx, st);
    s->status_res = st;
    coap_resource_t *cfg =
        gw_coap_new_resource(FERRY_COAP_CONFIG, 0, "\"" FERRY_COAP_RT_CONFIG "\"");
    if (!cfg)
        return ferry_fail(d, FERRY_E_NOMEM, "coap: out of memory");
    coap_register_request_handler(cfg, COAP_REQUEST_POST, on_config_post);
    coap_resource_set_userdata(cfg, s);
    coap_add_resource(s->ctx, cfg);
    s->config_res = cfg;
    return FERRY_OK;
}
