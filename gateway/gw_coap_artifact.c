/* ferry/artifact/<sha256>: every block served by this server, one per
 * request, from the hooks' answer for the artifact (gw_coap_core.h). */
#include "gw_coap_core.h"

#include "ferry_hex.h"
#include "ferry_log.h"

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

/* 2.05 with one piece of the artifact: the only copy of its bytes the
 * server makes, into the datagram. The ETag and Size2 come with every
 * block, so a node may start or resume anywhere. */
static bool add_piece(const struct artifact_entry *a, const struct gw_coap_piece *pc,
                      coap_pdu_t *resp)
{
    coap_pdu_set_code(resp, COAP_RESPONSE_CODE_CONTENT);
    return ferry_coapglue_add_etag(resp, a->sha) &&
           ferry_coapglue_add_uint(resp, COAP_OPTION_CONTENT_FORMAT,
                                   COAP_MEDIATYPE_APPLICATION_OCTET_STREAM) &&
           gw_coap_add_piece(resp, pc, a->data, a->len);
}

/* The artifact with its bytes at hand, if the hooks offer it to `who`:
 * `a` as it is when it holds a mapping, else mapped now. NULL when there is
 * nothing to serve; resp then says why. */
static struct artifact_entry *mapped_art(struct gw_coap *s, const uint8_t sha[FERRY_SHA256_LEN],
                                         struct artifact_entry *a,
                                         const struct gw_coap_requester *who, coap_pdu_t *resp)
{
    switch (s->hooks.artifact(s->hooks.arg, sha, who)) {
    case GW_ARTIFACT_COMPLETE:
        break;
    case GW_ARTIFACT_FETCHING:
        gw_coap_answer(resp, COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE,
                       gw_coap_jittered(s->fetching_max_age), "artifact is still being fetched");
        return NULL;
    case GW_ARTIFACT_WITHHELD:
        gw_coap_answer(resp, COAP_RESPONSE_CODE_FORBIDDEN, 0, "artifact not offered to this node");
        return NULL;
    default:
        gw_coap_answer(resp, COAP_RESPONSE_CODE_NOT_FOUND, 0, "no such artifact on this gateway");
        return NULL;
    }
    if (a && a->mapped && !a->removed)
        return a;
    const uint8_t *data = NULL;
    size_t len = 0;
    void *ref = NULL;
    struct ferry_diag d = {{0}};
    enum ferry_err err = s->hooks.artifact_map(s->hooks.arg, sha, &data, &len, &ref, &d);
    if (err != FERRY_OK) {
        ferry_log_err("coap: cannot serve an artifact: %s", ferry_diag_str(&d, err));
        gw_coap_answer(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR, 0, "artifact unavailable");
        return NULL;
    }
    /* Also brings back one evicted during this pass, with the new mapping. */
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

/* ---- the link budget: answers that wait --------------------------------------- */

static void release_pending(struct pending_block *p)
{
    if (p->session)
        coap_session_release(p->session);
    memset(p, 0, sizeof(*p));
}

void gw_coap_artifact_drop_pending(struct gw_coap *s)
{
    for (size_t i = 0; s->pending && i < GW_BUDGET_DEFAULT_QUEUED; i++)
        if (s->pending[i].used)
            release_pending(&s->pending[i]);
}

static void pump_budget(void *arg);

/* Keeps one timer armed for the budget's next event. */
static void schedule_budget(struct gw_coap *s)
{
    if (s->closing)
        return;
    uint64_t now = ferry_now_ms();
    uint64_t next = gw_budget_next_ms(s->budget, now);
    if (s->budget_timer && next >= s->budget_at)
        return;
    if (s->budget_timer)
        ferry_loop_cancel(s->loop, s->budget_timer);
    s->budget_timer = 0;
    if (next == GW_BUDGET_NEVER)
        return;
    s->budget_at = next;
    s->budget_timer = ferry_loop_timer(s->loop, next > now ? next - now : 0, pump_budget, s);
}

/* A waiting answer's turn: a NON 2.05 with the request's token, from the
 * mapping if the artifact is still served (else the node asks again). */
static void send_pending(struct gw_coap *s, struct pending_block *p, uint64_t now_ms)
{
    struct artifact_entry *a = gw_coap_artifact_find(s, p->sha);
    if (!a || !a->mapped || a->removed)
        return;
    coap_pdu_t *pdu =
        coap_pdu_init(COAP_MESSAGE_NON, COAP_RESPONSE_CODE_CONTENT, coap_new_message_id(p->session),
                      coap_session_max_pdu_size(p->session));
    if (!pdu)
        return;
    struct gw_coap_piece pc = {.block2 = p->block2,
                               .num = p->num,
                               .szx = p->szx,
                               .off = p->off,
                               .len = p->len,
                               .more = p->more};
    if (!coap_add_token(pdu, p->token_len, p->token) || !add_piece(a, &pc, pdu)) {
        coap_delete_pdu(pdu);
        return;
    }
    if (coap_send(p->session, pdu) == COAP_INVALID_MID)
        return;
    a->last_ms = now_ms;
    if (gw_pacer_served(s->pacer, p->key, p->sha, p->len, now_ms))
        ferry_log_debug("coap: %s: download finished, %zu running", p->key,
                        gw_pacer_active(s->pacer));
}

static void pump_budget(void *arg)
{
    struct gw_coap *s = arg;
    s->budget_timer = 0;
    struct gw_budget_event ev[32];
    size_t n;
    uint64_t now = ferry_now_ms();
    while ((n = gw_budget_poll(s->budget, now, ev, sizeof(ev) / sizeof(ev[0]))) > 0) {
        for (size_t i = 0; i < n; i++) {
            struct pending_block *p = &s->pending[(uint32_t)ev[i].ticket];
            if (!p->used || p->ticket != ev[i].ticket)
                continue;
            if (ev[i].send)
                send_pending(s, p, now);
            release_pending(p);
        }
    }
    schedule_budget(s);
    gw_coap_schedule_expiry(s);
}

/* Whether the link budget lets this block go now. False when it does not:
 * resp is then a 5.03, or empty (no answer now) for a NON request whose
 * answer waits. */
static bool within_budget(struct gw_coap *s, const struct artifact_entry *a,
                          const struct gw_coap_piece *pc, const char *key, coap_session_t *ses,
                          const coap_pdu_t *req, coap_pdu_t *resp)
{
    if (!s->budget)
        return true;
    bool non = coap_pdu_get_type(req) == COAP_MESSAGE_NON;
    uint64_t ticket = 0, retry_ms = 0;
    switch (gw_budget_ask(s->budget, key, (uint32_t)pc->len + GW_COAP_BLOCK_OVERHEAD, non,
                          a->last_ms, &ticket, &retry_ms)) {
    case GW_BUDGET_SEND:
        return true;
    case GW_BUDGET_QUEUED: {
        struct pending_block *p = &s->pending[(uint32_t)ticket];
        coap_bin_const_t token = coap_pdu_get_token(req);
        release_pending(p);
        p->used = true;
        p->ticket = ticket;
        p->session = coap_session_reference(ses);
        p->token_len = token.length <= sizeof(p->token) ? token.length : sizeof(p->token);
        memcpy(p->token, token.s, p->token_len);
        memcpy(p->sha, a->sha, FERRY_SHA256_LEN);
        memcpy(p->key, key, strlen(key) + 1);
        p->num = pc->num;
        p->szx = pc->szx;
        p->off = pc->off;
        p->len = pc->len;
        p->more = pc->more;
        p->block2 = pc->block2;
        schedule_budget(s);
        return false;
    }
    default:
        gw_coap_answer(resp, COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE,
                       (uint32_t)((retry_ms + 999) / 1000), "link budget spent, retry later");
        return false;
    }
}

/* One block for one node, if the pacer lets its transfer run. */
static void serve_block(struct gw_coap *s, struct artifact_entry *a, const struct gw_coap_block2 *b,
                        coap_session_t *ses, const coap_pdu_t *req,
                        const struct gw_coap_requester *who, coap_pdu_t *resp)
{
    struct gw_coap_piece pc;
    if (!gw_coap_pick_piece(b, a->len, &pc)) {
        gw_coap_answerf(resp, COAP_RESPONSE_CODE_BAD_OPTION, 0,
                        "Block2: block %" PRIu32 " of size %u starts beyond the %zu bytes", b->num,
                        1u << (b->szx + 4), a->len);
        return;
    }
    char key[GW_PACER_ID_MAX + 1];
    gw_coap_admission_key(who, key);
    enum gw_pacer_admission how = GW_PACER_CONTINUED;
    if (gw_pacer_admit(s->pacer, key, a->sha, a->len, a->last_ms, &how) != FERRY_OK) {
        gw_coap_answer(resp, COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE,
                       gw_coap_jittered(s->busy_max_age), "too many downloads, retry later");
        ferry_log_debug("coap: %s: download refused, %zu running, %zu waiting", key,
                        gw_pacer_active(s->pacer), gw_pacer_waiting(s->pacer));
        return;
    }
    if (how == GW_PACER_STARTED)
        ferry_log_debug("coap: %s: download admitted, %zu running", key, gw_pacer_active(s->pacer));
    if (!within_budget(s, a, &pc, key, ses, req, resp))
        return;
    if (!add_piece(a, &pc, resp)) {
        ferry_log_warn("coap: %s: a block of %zu bytes does not fit the datagram",
                       coap_session_str(ses), pc.len);
        gw_coap_answer(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR, 0,
                       "block does not fit, ask smaller");
        return;
    }
    if (gw_pacer_served(s->pacer, key, a->sha, pc.len, a->last_ms))
        ferry_log_debug("coap: %s: download finished, %zu running", key, gw_pacer_active(s->pacer));
}

/* GET ferry/artifact/<hex>, one block per request; `a` is NULL when the
 * resource does not exist yet. */
static void serve_artifact(struct gw_coap *s, const uint8_t sha[FERRY_SHA256_LEN],
                           struct artifact_entry *a, coap_session_t *ses, const coap_pdu_t *req,
                           const struct gw_coap_requester *who, coap_pdu_t *resp)
{
    struct gw_coap_block2 b;
    if (!gw_coap_parse_block2(req, &b, resp))
        return;
    a = mapped_art(s, sha, a, who, resp);
    if (a && s->hooks.admit) {
        uint32_t max_age = 0;
        char why[128] = "";
        switch (s->hooks.admit(s->hooks.arg, sha, who, &max_age, why, sizeof(why))) {
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
    if (!a)
        return;
    a->last_ms = ferry_now_ms();
    serve_block(s, a, &b, ses, req, who, resp);
    gw_coap_schedule_expiry(s);
}

static void on_artifact_get(coap_resource_t *r, coap_session_t *ses, const coap_pdu_t *req,
                            const coap_string_t *q, coap_pdu_t *resp)
{
    (void)q;
    struct artifact_entry *a = coap_resource_get_userdata(r);
    struct gw_coap_requester who;
    if (gw_coap_who(ses, req, &who, resp))
        serve_artifact(a->srv, a->sha, a, ses, req, &who, resp);
}

static bool lower_hex_digest(const char *hex, uint8_t sha[FERRY_SHA256_LEN])
{
    if (strlen(hex) != FERRY_SHA256_HEX_LEN || strspn(hex, "0123456789abcdef") != strlen(hex))
        return false;
    return ferry_hex_decode(hex, sha, FERRY_SHA256_LEN) == FERRY_OK;
}

void gw_coap_artifact_unknown(struct gw_coap *s, const char *tail, coap_session_t *ses,
                              const coap_pdu_t *req, const struct gw_coap_requester *who,
                              coap_pdu_t *resp)
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
    serve_artifact(s, sha, gw_coap_artifact_find(s, sha), ses, req, who, resp);
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
    if (!ferry_coapglue_io_in_pass(&s->io))
        gw_coap_artifact_sweep(s);
}
