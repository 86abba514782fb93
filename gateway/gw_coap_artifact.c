/* ferry/artifact/<sha256>: every block served by this server, one per
 * request, from the hooks' answer for the artifact (gw_coap_core.h). */
#include "gw_coap_core.h"

#include "ferry_hex.h"
#include "ferry_log.h"
#include "gw_pacer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Gives the hooks' answer for an artifact back (artifact_release()). */
static void unmap(struct gw_coap *s, struct artifact_entry *a)
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

uint64_t gw_coap_artifact_next_expiry(const struct gw_coap *s)
{
    uint64_t next = GW_PACER_NO_EXPIRY;
    for (const struct artifact_entry *a = s->arts; a; a = a->next) {
        if (!a->mapped)
            continue;
        uint64_t at = a->last_ms > UINT64_MAX - s->idle_ms ? UINT64_MAX : a->last_ms + s->idle_ms;
        if (at < next)
            next = at;
    }
    return next;
}

void gw_coap_artifact_expire(struct gw_coap *s, uint64_t now_ms)
{
    for (struct artifact_entry *a = s->arts; a; a = a->next)
        if (a->mapped && idle_for(a->last_ms, s->idle_ms, now_ms))
            unmap(s, a);
}

void gw_coap_artifact_sweep(struct gw_coap *s)
{
    for (struct artifact_entry **p = &s->arts; *p;) {
        struct artifact_entry *a = *p;
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

void gw_coap_artifact_free_all(struct gw_coap *s)
{
    while (s->arts) {
        struct artifact_entry *a = s->arts;
        s->arts = a->next;
        unmap(s, a);
        free(a);
    }
}

struct artifact_entry *gw_coap_artifact_find(struct gw_coap *s, const uint8_t sha[FERRY_SHA256_LEN])
{
    for (struct artifact_entry *a = s->arts; a; a = a->next)
        if (memcmp(a->sha, sha, FERRY_SHA256_LEN) == 0)
            return a;
    return NULL;
}

static void on_artifact_get(coap_resource_t *r, coap_session_t *ses, const coap_pdu_t *req,
                            const coap_string_t *q, coap_pdu_t *resp);

static struct artifact_entry *add_art(struct gw_coap *s, const uint8_t sha[FERRY_SHA256_LEN],
                                      uint64_t size)
{
    struct artifact_entry *a = gw_coap_artifact_find(s, sha);
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
    a->res = gw_coap_new_resource(path, COAP_MEDIATYPE_APPLICATION_OCTET_STREAM,
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
        gw_coap_answer(resp, COAP_RESPONSE_CODE_BAD_OPTION, 0, "Block2: longer than 3 bytes");
        return false;
    }
    unsigned v = coap_decode_var_bytes(coap_opt_value(o), len);
    b->present = true;
    b->num = v >> 4;
    b->szx = v & 7;
    if (b->szx == 7) {
        gw_coap_answer(resp, COAP_RESPONSE_CODE_BAD_REQUEST, 0,
                       "Block2: SZX 7 (BERT) is for TCP only");
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

/* 2.05 with one piece of the artifact: the only copy of its bytes the
 * server makes, into the datagram. The ETag and Size2 come with every
 * block, so a node may start or resume anywhere. */
static bool add_piece(const struct artifact_entry *a, const struct piece *pc, coap_pdu_t *resp)
{
    coap_pdu_set_code(resp, COAP_RESPONSE_CODE_CONTENT);
    gw_coap_add_uint_option(resp, COAP_OPTION_ETAG, gw_coap_etag_of(a->sha));
    gw_coap_add_uint_option(resp, COAP_OPTION_CONTENT_FORMAT,
                            COAP_MEDIATYPE_APPLICATION_OCTET_STREAM);
    if (pc->block2)
        gw_coap_add_uint_option(resp, COAP_OPTION_BLOCK2,
                                (uint64_t)pc->num << 4 | (pc->more ? 8u : 0u) | pc->szx);
    gw_coap_add_uint_option(resp, COAP_OPTION_SIZE2, a->len);
    return pc->len == 0 || coap_add_data(resp, pc->len, a->data + pc->off);
}

/* The artifact with the hooks' answer at hand: `a` as it is when it holds
 * one, else whatever the hooks answer now. NULL when there is nothing to
 * serve; resp then says why. */
static struct artifact_entry *mapped_art(struct gw_coap *s, const uint8_t sha[FERRY_SHA256_LEN],
                                         struct artifact_entry *a, coap_pdu_t *resp)
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
        gw_coap_answer(resp, COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE,
                       gw_coap_jittered(s->fetching_max_age), "artifact is still being fetched");
        return NULL;
    default:
        gw_coap_answer(resp, COAP_RESPONSE_CODE_NOT_FOUND, 0, "no such artifact on this gateway");
        return NULL;
    }
    /* Also brings back one evicted during this pass, with the new answer. */
    a = add_art(s, sha, len);
    if (!a) {
        s->hooks.artifact_release(s->hooks.arg, ref);
        gw_coap_answer(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR, 0, "out of memory");
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
static void serve_block(struct gw_coap *s, struct artifact_entry *a, const struct block2 *b,
                        coap_session_t *ses, coap_pdu_t *resp)
{
    struct piece pc;
    if (!pick_piece(b, a->len, &pc)) {
        gw_coap_answerf(resp, COAP_RESPONSE_CODE_BAD_OPTION, 0,
                        "Block2: block %" PRIu32 " of size %u starts beyond the %zu bytes", b->num,
                        1u << (b->szx + 4), a->len);
        return;
    }
    struct gw_pacer_key key = {.session = gw_coap_session_id(s, ses)};
    memcpy(key.sha256, a->sha, FERRY_SHA256_LEN);
    enum gw_pacer_admission how = GW_PACER_CONTINUED;
    if (gw_pacer_admit(s->pacer, &key, a->last_ms, &how) != FERRY_OK) {
        gw_coap_answer(resp, COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE,
                       gw_coap_jittered(s->busy_max_age), "too many downloads, retry later");
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
        gw_coap_answer(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR, 0,
                       "block does not fit, ask smaller");
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
static void serve_artifact(struct gw_coap *s, const uint8_t sha[FERRY_SHA256_LEN],
                           struct artifact_entry *a, coap_session_t *ses, const coap_pdu_t *req,
                           coap_pdu_t *resp)
{
    struct block2 b;
    if (!parse_block2(req, &b, resp))
        return;
    if (s->hooks.admit) {
        struct gw_coap_peer who;
        struct gw_coap_peer_buf buf;
        uint32_t max_age = 0;
        char why[128] = "";
        if (!gw_coap_peer_of(ses, req, &who, &buf)) {
            gw_coap_answer(resp, COAP_RESPONSE_CODE_FORBIDDEN, 0, "n= is not your DTLS identity");
            return;
        }
        switch (s->hooks.admit(s->hooks.arg, sha, &who, &max_age, why, sizeof(why))) {
        case GW_COAP_ADMIT_SERVE:
            break;
        case GW_COAP_ADMIT_STALL:
            gw_coap_answer(resp, COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE, max_age, why);
            return;
        case GW_COAP_ADMIT_REFUSE:
            gw_coap_answer(resp, COAP_RESPONSE_CODE_FORBIDDEN, 0, why);
            return;
        }
    }
    a = mapped_art(s, sha, a, resp);
    if (!a)
        return;
    a->last_ms = ferry_now_ms();
    serve_block(s, a, &b, ses, resp);
    gw_coap_schedule_expiry(s);
}

static void on_artifact_get(coap_resource_t *r, coap_session_t *ses, const coap_pdu_t *req,
                            const coap_string_t *q, coap_pdu_t *resp)
{
    (void)q;
    struct artifact_entry *a = coap_resource_get_userdata(r);
    serve_artifact(a->srv, a->sha, a, ses, req, resp);
}

static bool lower_hex_digest(const char *hex, uint8_t sha[FERRY_SHA256_LEN])
{
    if (strlen(hex) != FERRY_SHA256_HEX_LEN || strspn(hex, "0123456789abcdef") != strlen(hex))
        return false;
    return ferry_hex_decode(hex, sha, FERRY_SHA256_LEN) == FERRY_OK;
}

void gw_coap_artifact_unknown(struct gw_coap *s, const char *tail, coap_session_t *ses,
                              const coap_pdu_t *req, coap_pdu_t *resp)
{
    uint8_t sha[FERRY_SHA256_LEN];
    if (!lower_hex_digest(tail, sha)) {
        gw_coap_answer(resp, COAP_RESPONSE_CODE_NOT_FOUND, 0,
                       "artifacts are named by their SHA-256 in 64 lower-case hex digits");
        return;
    }
    if (coap_pdu_get_code(req) != COAP_REQUEST_CODE_GET) {
        gw_coap_answer(resp, COAP_RESPONSE_CODE_NOT_ALLOWED, 0, NULL);
        return;
    }
    serve_artifact(s, sha, gw_coap_artifact_find(s, sha), ses, req, resp);
}

enum ferry_err gw_coap_artifact_added(struct gw_coap *s, const uint8_t sha256[FERRY_SHA256_LEN],
                                      uint64_t size)
{
    return add_art(s, sha256, size) ? FERRY_OK : FERRY_E_NOMEM;
}

void gw_coap_artifact_removed(struct gw_coap *s, const uint8_t sha256[FERRY_SHA256_LEN])
{
    struct artifact_entry *a = gw_coap_artifact_find(s, sha256);
    if (!a)
        return;
    a->removed = true;
    /* From a hook, libcoap may be inside this very resource: after the pass. */
    if (!s->processing)
        gw_coap_artifact_sweep(s);
}
