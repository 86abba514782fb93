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
        gw_coap_answer(resp, COAP_RESPONSE_CODE_BAD_REQUEST, 0, ferry_diag_str(&d, err));
        return;
    }
    char idbuf[FERRY_ID_MAX + 1];
    d.msg[0] = '\0';
    err = s->hooks.status(s->hooks.arg, &st, identity_of(ses, idbuf), &d);
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
    gw_coap_add_uint_option(resp, COAP_OPTION_SIZE1, FERRY_STATUS_MAX_BYTES);
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
        gw_coap_answer(resp, COAP_RESPONSE_CODE_UNSUPPORTED_CONTENT_FORMAT, 0,
                       "status records are JSON (50) or CBOR (60)");
        return;
    }
    size_t len = 0, offset = 0, total = 0;
    const uint8_t *data = NULL;
    if (!coap_get_data_large(req, &len, &data, &offset, &total) || len == 0) {
        gw_coap_answer(resp, COAP_RESPONSE_CODE_BAD_REQUEST, 0, "empty status record");
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
        gw_coap_answer(resp, COAP_RESPONSE_CODE_INCOMPLETE, 0,
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
    return FERRY_OK;
}
