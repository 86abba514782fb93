/* Observe registrations, counted and capped for every observable resource
 * of the server (gw_coap_core.h, "Observe registrations"): libcoap keeps
 * the real registrations and caps nothing, so the server counts them per
 * session, per node (per host for anonymous clients) and in all, and ends
 * the oldest of a node that registers again from a new session. */
#include "gw_coap_core.h"

#include "ferry_coapglue.h"
#include "ferry_log.h"

#include <string.h>

static bool same_token(const struct observer_entry *e, coap_bin_const_t token)
{
    return e->token_len == token.length &&
           (token.length == 0 || memcmp(e->token, token.s, token.length) == 0);
}

static void drop_observer(struct gw_coap *s, struct observer_entry *e)
{
    memset(e, 0, sizeof(*e));
    s->nobservers--;
}

void gw_coap_observer_session_gone(struct gw_coap *s, const coap_session_t *ses)
{
    for (size_t i = 0; i < s->max_observers; i++)
        if (s->observers[i].used && s->observers[i].session == ses)
            drop_observer(s, &s->observers[i]);
}

/* Ends every registration of e's session: after the pass, libcoap's are
 * ended with the session (gw_coap_observer_after_pass()). */
static void end_session_of(struct gw_coap *s, const struct observer_entry *e)
{
    for (size_t i = 0; i < s->max_observers; i++)
        if (s->observers[i].used && s->observers[i].session_id == e->session_id)
            s->observers[i].ending = true;
    s->observers_ending = true;
}

void gw_coap_observer_after_pass(struct gw_coap *s)
{
    if (!s->observers_ending)
        return;
    s->observers_ending = false;
    for (size_t i = 0; i < s->max_observers; i++) {
        struct observer_entry *e = &s->observers[i];
        if (!e->used || !e->ending)
            continue;
        coap_session_t *ses = e->session;
        ferry_log_info("coap: %s: %s registered elsewhere, its older session is closed",
                       coap_session_str(ses), e->key);
        /* Frees the session's observers, so libcoap may let it go idle. */
        gw_coap_observer_session_gone(s, ses);
        coap_session_disconnected(ses, COAP_NACK_RST);
    }
}

bool gw_coap_observer_count(struct gw_coap *s, const void *owner, coap_session_t *ses,
                            const coap_pdu_t *req, const struct gw_coap_requester *who,
                            coap_pdu_t *resp)
{
    uint64_t id = gw_coap_session_id(s, ses);
    coap_bin_const_t token = coap_pdu_get_token(req);
    char key[GW_PACER_ID_MAX + 1];
    gw_coap_admission_key(who, key);
    bool anonymous = who->kind == GW_COAP_REQUESTER_ANONYMOUS;
    size_t per_key_cap = anonymous ? GW_COAP_OBSERVERS_PER_ANON_HOST : GW_COAP_OBSERVERS_PER_NODE;
    size_t in_session = 0, of_key = 0;
    struct observer_entry *oldest_elsewhere = NULL, *free_slot = NULL;
    for (size_t i = 0; i < s->max_observers; i++) {
        struct observer_entry *e = &s->observers[i];
        if (!e->used) {
            free_slot = free_slot ? free_slot : e;
            continue;
        }
        if (e->ending)
            continue;
        if (e->session_id == id && same_token(e, token))
            return true; /* known: a notification, or registered again */
        in_session += e->session_id == id;
        if (strcmp(e->key, key) == 0) {
            of_key++;
            if (e->session_id != id &&
                (!oldest_elsewhere || e->since_ms < oldest_elsewhere->since_ms))
                oldest_elsewhere = e;
        }
    }
    const char *refused = NULL;
    if (in_session >= GW_COAP_OBSERVERS_PER_SESSION)
        refused = "observations per session";
    else if (of_key >= per_key_cap && !oldest_elsewhere)
        refused = "observations per node";
    else if (!free_slot && !(of_key >= per_key_cap))
        refused = "observations on this gateway";
    if (refused) {
        gw_coap_answerf(resp, COAP_RESPONSE_CODE_TOO_MANY_REQUESTS, s->manifest_max_age,
                        "too many %s, poll instead", refused);
        ferry_log_debug("coap: %s: %s: observation refused, too many %s", coap_session_str(ses),
                        key, refused);
        return false;
    }
    if (of_key >= per_key_cap) {
        /* The node registered from another session (it restarted, or
         * moved): its oldest registration and that session end. */
        end_session_of(s, oldest_elsewhere);
        if (!free_slot)
            free_slot = oldest_elsewhere;
    }
    if (free_slot->used)
        drop_observer(s, free_slot);
    struct observer_entry *e = free_slot;
    e->used = true;
    e->session_id = id;
    e->session = ses;
    e->token_len = token.length <= sizeof(e->token) ? token.length : sizeof(e->token);
    memcpy(e->token, token.s, e->token_len);
    memcpy(e->key, key, strlen(key) + 1);
    e->anonymous = anonymous;
    e->owner = owner;
    e->since_ms = ferry_now_ms();
    s->nobservers++;
    return true;
}

void gw_coap_observer_uncount(struct gw_coap *s, coap_session_t *ses, const coap_pdu_t *req)
{
    uint64_t id = gw_coap_session_id(s, ses);
    coap_bin_const_t token = coap_pdu_get_token(req);
    for (size_t i = 0; i < s->max_observers; i++) {
        struct observer_entry *e = &s->observers[i];
        if (e->used && e->session_id == id && same_token(e, token))
            drop_observer(s, e);
    }
}

bool gw_coap_observe_before(struct gw_coap *s, const void *owner, coap_session_t *ses,
                            const coap_pdu_t *req, const struct gw_coap_requester *who,
                            coap_pdu_t *resp, bool *registering)
{
    bool present = false;
    uint64_t observe = 0;
    *registering = false;
    if (ferry_coapglue_get_uint(req, COAP_OPTION_OBSERVE, 3, &present, &observe, NULL) !=
            FERRY_OK ||
        !present)
        return true;
    if (observe == 1)
        gw_coap_observer_uncount(s, ses, req);
    if (observe != 0)
        return true;
    *registering = true;
    return gw_coap_observer_count(s, owner, ses, req, who, resp);
}

void gw_coap_observe_after(struct gw_coap *s, coap_session_t *ses, const coap_pdu_t *req,
                           bool registering, const coap_pdu_t *resp)
{
    if (registering && COAP_RESPONSE_CLASS(coap_pdu_get_code(resp)) > 2)
        gw_coap_observer_uncount(s, ses, req);
}
