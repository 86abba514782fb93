#include "gw_policy.h"

#include "ferry_envelope.h"
#include "ferry_idmap.h"
#include "ferry_ratecap.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct held {
    uint8_t *env; /* NULL: none */
    size_t len;
    struct ferry_manifest m;
    bool cached;
};

/* What the gateway saw of one target itself. */
struct target_rt {
    int8_t state; /* its latest record for the release, -1: none relayed */
    bool started; /* offered the release, or reported on it */
    bool counted; /* its final state counts toward the local halt */
    bool fetched; /* it asked for a block of the release */
};

/* A window's state, valid from `from` until `until`. */
struct window_cache {
    int64_t from, until;
    bool open;
};

struct rollout {
    struct ferry_rollout_doc *doc;
    struct ferry_manifest rel, rev;
    bool has_rev, rel_cached, rev_cached;
    /* SHA-256 of each envelope's signed manifest bytes, and the trust's
     * verdict on it (gw_policy_trust()); FERRY_OK until told otherwise. */
    uint8_t rel_digest[FERRY_SHA256_LEN], rev_digest[FERRY_SHA256_LEN];
    enum ferry_err rel_verdict, rev_verdict;
    struct ferry_idmap *idx; /* node -> index into doc->targets and rt */
    struct target_rt *rt;
    struct ferry_ratecap *cap;
    bool cap_waiting; /* a target was made to wait: notify when it frees */
    struct window_cache win[FERRY_ROLLOUT_MAX_WINDOWS];
    uint32_t win_open; /* bit i: window i open at the last tick */
    /* The halt this gateway made, on the records it relayed since the
     * document's resume counter last changed. */
    uint64_t finals, failed;
    bool halted, offline;
    int64_t halted_at;
    char reason[FERRY_ROLLOUT_REASON_MAX + 1];
};

struct product {
    char name[FERRY_ID_MAX + 1];
    struct held cur, prev;
    struct rollout *ro;
};

struct gw_policy {
    struct product products[GW_POLICY_MAX_PRODUCTS];
    size_t n;
    bool link_up;
    uint64_t seed;
    struct ferry_idmap *descs; /* node -> index into desc */
    uint8_t (*desc)[FERRY_SHA256_LEN];
    size_t ndesc, cap_desc;
    struct gw_policy_stats stats;
};

/* ---- helpers ------------------------------------------------------------------------- */

static void notify(struct gw_policy_effects *fx, const char *product)
{
    for (size_t i = 0; i < fx->nnotify; i++)
        if (strcmp(fx->notify[i], product) == 0)
            return;
    if (fx->nnotify < GW_POLICY_MAX_PRODUCTS)
        snprintf(fx->notify[fx->nnotify++], FERRY_ID_MAX + 1, "%s", product);
}

static struct product *find_product(struct gw_policy *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->products[i].name, name) == 0)
            return &p->products[i];
    return NULL;
}

static struct product *add_product(struct gw_policy *p, const char *name)
{
    struct product *ps = find_product(p, name);
    if (ps || p->n == GW_POLICY_MAX_PRODUCTS)
        return ps;
    ps = &p->products[p->n++];
    memset(ps, 0, sizeof(*ps));
    snprintf(ps->name, sizeof(ps->name), "%s", name);
    return ps;
}

static void held_clear(struct held *h)
{
    free(h->env);
    memset(h, 0, sizeof(*h));
}

static void rollout_free(struct rollout *ro)
{
    if (!ro)
        return;
    ferry_rollout_doc_free(ro->doc);
    ferry_idmap_free(ro->idx);
    ferry_ratecap_free(ro->cap);
    free(ro->rt);
    free(ro);
}

static bool installed_state(int s)
{
    return s == FERRY_STATE_INSTALLING || s == FERRY_STATE_PENDING_REBOOT ||
           s == FERRY_STATE_SUCCESS;
}

static bool failed_state(int s)
{
    return s == FERRY_STATE_FAILED || s == FERRY_STATE_ROLLED_BACK;
}

/* The gateway's latest knowledge of a target's state for the release. */
static int target_state(const struct rollout *ro, uint32_t i)
{
    return ro->rt[i].state >= 0 ? ro->rt[i].state : ro->doc->targets[i].state;
}

static bool halted(const struct rollout *ro)
{
    return ro->doc->state == FERRY_ROLLOUT_HALTED || ro->halted;
}

/* ---- life ---------------------------------------------------------------------------------- */

enum ferry_err gw_policy_new(uint64_t seed, struct gw_policy **out, struct ferry_diag *d)
{
    struct gw_policy *p = calloc(1, sizeof(*p));
    if (!p)
        return ferry_fail(d, FERRY_E_NOMEM, "policy: out of memory");
    p->seed = seed;
    enum ferry_err err = ferry_idmap_new(1024, seed, &p->descs, d);
    if (err != FERRY_OK) {
        free(p);
        return err;
    }
    *out = p;
    return FERRY_OK;
}

void gw_policy_free(struct gw_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        held_clear(&p->products[i].cur);
        held_clear(&p->products[i].prev);
        rollout_free(p->products[i].ro);
    }
    ferry_idmap_free(p->descs);
    free(p->desc);
    free(p);
}

const struct gw_policy_stats *gw_policy_stats(const struct gw_policy *p)
{
    return &p->stats;
}

/* ---- held releases --------------------------------------------------------------------------- */

static enum ferry_err held_set(struct held *h, const struct gw_policy_release *r)
{
    if (!r || !r->env) {
        held_clear(h);
        return FERRY_OK;
    }
    if (h->env && h->len == r->len && memcmp(h->env, r->env, r->len) == 0) {
        h->cached = r->cached;
        return FERRY_OK;
    }
    uint8_t *env = malloc(r->len ? r->len : 1);
    if (!env)
        return FERRY_E_NOMEM;
    memcpy(env, r->env, r->len);
    held_clear(h);
    h->env = env;
    h->len = r->len;
    h->m = *r->m;
    h->cached = r->cached;
    return FERRY_OK;
}

enum ferry_err gw_policy_held(struct gw_policy *p, const char *product,
                              const struct gw_policy_release *current,
                              const struct gw_policy_release *previous,
                              struct gw_policy_effects *fx)
{
    struct product *ps = add_product(p, product);
    if (!ps)
        return FERRY_E_TOO_LARGE;
    enum ferry_err err = held_set(&ps->cur, current);
    if (err == FERRY_OK)
        err = held_set(&ps->prev, previous);
    notify(fx, product);
    return err;
}

/* Current when its artifact is cached, else previous when cached, else none:
 * a node offered a release can fetch it at once. */
static const struct held *baseline(const struct product *ps)
{
    if (ps->cur.env && ps->cur.cached)
        return &ps->cur;
    if (ps->prev.env && ps->prev.cached)
        return &ps->prev;
    return NULL;
}

/* ---- rollouts ----------------------------------------------------------------------------------
 */

/* The SHA-256 of an envelope's signed manifest bytes (what a timestamp
 * names); the envelope verified before it got here, so it parses. */
static void manifest_digest(const uint8_t *env, size_t len, uint8_t out[FERRY_SHA256_LEN])
{
    struct ferry_envelope *e = NULL;
    memset(out, 0, FERRY_SHA256_LEN);
    if (env && ferry_envelope_parse(env, len, &e, NULL) == FERRY_OK)
        ferry_sha256(e->manifest, e->manifest_len, out);
    ferry_envelope_free(e);
}

/* Runtime of a rollout that replaces `old` (the same rollout, older
 * revision): what the gateway saw of each target carries over, and so does
 * its halt, unless the operator resumed since. */
static void carry_over(struct rollout *ro, struct rollout *old, struct gw_policy_effects *fx)
{
    bool same_resume = old->doc->resume == ro->doc->resume;
    for (size_t i = 0; i < ro->doc->ntargets; i++) {
        uint32_t k;
        if (!ferry_idmap_get(old->idx, ro->doc->targets[i].node, &k))
            continue;
        ro->rt[i] = old->rt[k];
        if (!same_resume)
            ro->rt[i].counted = false;
    }
    if (same_resume) {
        ro->finals = old->finals;
        ro->failed = old->failed;
        ro->halted = old->halted;
        ro->halted_at = old->halted_at;
        ro->offline = old->offline;
        memcpy(ro->reason, old->reason, sizeof(ro->reason));
    } else if (old->halted) {
        fx->report = true; /* the report drops the halt the operator handled */
    }
    if (old->cap && ferry_ratecap_limit(old->cap) == ro->doc->rate_per_min) {
        ferry_ratecap_free(ro->cap);
        ro->cap = old->cap;
        old->cap = NULL;
    }
    ro->rel_cached =
        old->rel_cached && memcmp(old->rel.sha256, ro->rel.sha256, FERRY_SHA256_LEN) == 0;
    ro->rev_cached = old->rev_cached && ro->has_rev && old->has_rev &&
                     memcmp(old->rev.sha256, ro->rev.sha256, FERRY_SHA256_LEN) == 0;
}

/* Verdicts carry over to a document naming the same manifests: a withdrawn
 * release stays withdrawn until the next gw_policy_trust(). */
static void carry_verdicts(struct rollout *ro, const struct rollout *old)
{
    const uint8_t *rel[2] = {old->rel_digest, old->has_rev ? old->rev_digest : NULL};
    const enum ferry_err v[2] = {old->rel_verdict, old->rev_verdict};
    for (int k = 0; k < 2; k++) {
        if (!rel[k])
            continue;
        if (memcmp(rel[k], ro->rel_digest, FERRY_SHA256_LEN) == 0)
            ro->rel_verdict = v[k];
        if (ro->has_rev && memcmp(rel[k], ro->rev_digest, FERRY_SHA256_LEN) == 0)
            ro->rev_verdict = v[k];
    }
}

enum ferry_err gw_policy_rollout(struct gw_policy *p, struct ferry_rollout_doc *doc,
                                 const struct ferry_manifest *rel, const struct ferry_manifest *rev,
                                 int64_t wall, struct gw_policy_effects *fx)
{
    struct product *ps = add_product(p, doc->product);
    if (!ps) {
        ferry_rollout_doc_free(doc);
        return FERRY_E_TOO_LARGE;
    }
    struct rollout *old = ps->ro;
    if (old && (doc->rollout < old->doc->rollout ||
                (doc->rollout == old->doc->rollout && doc->revision < old->doc->revision))) {
        ferry_rollout_doc_free(doc);
        return FERRY_E_DOWNGRADE;
    }
    struct rollout *ro = calloc(1, sizeof(*ro));
    enum ferry_err err = ro ? FERRY_OK : FERRY_E_NOMEM;
    if (err == FERRY_OK) {
        ro->doc = doc;
        doc = NULL;
        ro->rel = *rel;
        ro->has_rev = rev != NULL;
        if (rev)
            ro->rev = *rev;
        manifest_digest(ro->doc->release, ro->doc->release_len, ro->rel_digest);
        if (rev)
            manifest_digest(ro->doc->revert, ro->doc->revert_len, ro->rev_digest);
        ro->rt = calloc(ro->doc->ntargets ? ro->doc->ntargets : 1, sizeof(*ro->rt));
        err = ro->rt ? ferry_idmap_new(ro->doc->ntargets, p->seed, &ro->idx, NULL) : FERRY_E_NOMEM;
    }
    if (err == FERRY_OK)
        err = ferry_ratecap_new(ro->doc->rate_per_min, &ro->cap, NULL);
    for (size_t i = 0; err == FERRY_OK && i < ro->doc->ntargets; i++) {
        ro->rt[i].state = -1;
        err = ferry_idmap_put(ro->idx, ro->doc->targets[i].node, (uint32_t)i);
    }
    if (err != FERRY_OK) {
        ferry_rollout_doc_free(doc);
        rollout_free(ro);
        return err;
    }
    if (old)
        carry_verdicts(ro, old);
    if (old && old->doc->rollout == ro->doc->rollout)
        carry_over(ro, old, fx);
    else if (old && old->halted)
        fx->report = true;
    for (size_t i = 0; i < ro->doc->nwindows; i++)
        if (ferry_window_open(&ro->doc->windows[i], wall))
            ro->win_open |= 1u << i;
    rollout_free(old);
    ps->ro = ro;
    notify(fx, ps->name);
    return FERRY_OK;
}

void gw_policy_cached(struct gw_policy *p, const uint8_t sha[FERRY_SHA256_LEN], bool cached,
                      struct gw_policy_effects *fx)
{
    for (size_t i = 0; i < p->n; i++) {
        struct product *ps = &p->products[i];
        bool hit = false;
        struct held *h[2] = {&ps->cur, &ps->prev};
        for (int k = 0; k < 2; k++)
            if (h[k]->env && memcmp(h[k]->m.sha256, sha, FERRY_SHA256_LEN) == 0 &&
                h[k]->cached != cached) {
                h[k]->cached = cached;
                hit = true;
            }
        struct rollout *ro = ps->ro;
        if (ro && memcmp(ro->rel.sha256, sha, FERRY_SHA256_LEN) == 0 && ro->rel_cached != cached) {
            ro->rel_cached = cached;
            hit = true;
        }
        if (ro && ro->has_rev && memcmp(ro->rev.sha256, sha, FERRY_SHA256_LEN) == 0 &&
            ro->rev_cached != cached) {
            ro->rev_cached = cached;
            hit = true;
        }
        if (hit)
            notify(fx, ps->name);
    }
}

/* ---- the trust's verdicts ------------------------------------------------------------------ */

static bool may_offer(enum ferry_err v)
{
    return v == FERRY_OK;
}

static bool may_fetch(enum ferry_err v)
{
    return v != FERRY_E_WITHDRAWN;
}

static const char *verdict_effect(enum ferry_err v)
{
    if (v == FERRY_OK)
        return "offered";
    if (v == FERRY_E_WITHDRAWN)
        return "withdrawn: neither fetched nor offered";
    return "not named current: fetched, not offered";
}

bool gw_policy_trust(struct gw_policy *p, const char *product, const struct ferry_trust *t,
                     int64_t wall, struct gw_policy_effects *fx, char why[GW_POLICY_WHY_MAX])
{
    why[0] = 0;
    struct product *ps = find_product(p, product);
    struct rollout *ro = ps ? ps->ro : NULL;
    if (!ro)
        return false;
    enum ferry_err rel =
        ferry_trust_verdict(t, product, ro->rel.release_id, ro->rel_digest, wall, NULL);
    enum ferry_err rev = ro->has_rev ? ferry_trust_verdict(t, product, ro->rev.release_id,
                                                           ro->rev_digest, wall, NULL)
                                     : FERRY_OK;
    if (rel == ro->rel_verdict && rev == ro->rev_verdict)
        return false;
    ro->rel_verdict = rel;
    ro->rev_verdict = rev;
    int n = snprintf(why, GW_POLICY_WHY_MAX, "rollout %" PRIu64 "'s release %s is %s",
                     ro->doc->rollout, ro->rel.release_id, verdict_effect(rel));
    if (ro->has_rev && n > 0 && n < GW_POLICY_WHY_MAX)
        snprintf(why + n, GW_POLICY_WHY_MAX - (size_t)n, "; its revert %s is %s",
                 ro->rev.release_id, verdict_effect(rev));
    notify(fx, ps->name);
    return true;
}

/* ---- status and halts ------------------------------------------------------------------------ */

static void check_halt(struct gw_policy *p, struct product *ps, int64_t wall,
                       struct gw_policy_effects *fx)
{
    struct rollout *ro = ps->ro;
    enum ferry_rollout_state s = ro->doc->state;
    if (ro->halted || (s != FERRY_ROLLOUT_RUNNING && s != FERRY_ROLLOUT_PAUSED))
        return;
    if (ro->finals < ro->doc->min_final ||
        ro->failed * 100 <= (uint64_t)ro->doc->halt_pct * ro->finals)
        return;
    ro->halted = true;
    ro->halted_at = wall;
    ro->offline = !p->link_up;
    snprintf(ro->reason, sizeof(ro->reason),
             "%" PRIu64 " of %" PRIu64 " final states of this gateway's nodes failed or rolled "
             "back (more than %u%% of at least %u)",
             ro->failed, ro->finals, ro->doc->halt_pct, ro->doc->min_final);
    fx->report = true;
    notify(fx, ps->name);
}

void gw_policy_status(struct gw_policy *p, const struct ferry_status *st, int64_t wall,
                      struct gw_policy_effects *fx)
{
    for (size_t i = 0; i < p->n; i++) {
        struct product *ps = &p->products[i];
        struct rollout *ro = ps->ro;
        uint32_t k;
        if (!ro || strcmp(st->release_id, ro->rel.release_id) != 0 ||
            !ferry_idmap_get(ro->idx, st->node, &k))
            continue;
        struct target_rt *rt = &ro->rt[k];
        rt->state = (int8_t)st->state;
        rt->started = true;
        if (ferry_state_is_final(st->state) && !rt->counted) {
            rt->counted = true;
            ro->finals++;
            ro->failed += failed_state(st->state);
            check_halt(p, ps, wall, fx);
        }
        /* A node that installed a release that is now halted: offer it the
         * revert release at once. */
        if (halted(ro) && ro->has_rev && installed_state(st->state))
            notify(fx, ps->name);
    }
}

void gw_policy_link(struct gw_policy *p, bool up, struct gw_policy_effects *fx)
{
    p->link_up = up;
    if (!up)
        return;
    for (size_t i = 0; i < p->n; i++)
        if (p->products[i].ro && p->products[i].ro->halted)
            fx->report = true;
}

/* ---- descriptions ---------------------------------------------------------------------------- */

enum ferry_err gw_policy_describe(struct gw_policy *p, const struct ferry_nodeinfo *info,
                                  bool *changed)
{
    /* Digest of the canonical form: equal descriptions, equal digests. */
    uint8_t digest[FERRY_SHA256_LEN];
    char *json = NULL;
    size_t len = 0;
    enum ferry_err jerr = ferry_nodeinfo_to_json(info, &json, &len, NULL);
    if (jerr != FERRY_OK)
        return jerr;
    ferry_sha256(json, len, digest);
    free(json);
    uint32_t k;
    if (ferry_idmap_get(p->descs, info->node, &k)) {
        *changed = memcmp(p->desc[k], digest, FERRY_SHA256_LEN) != 0;
        memcpy(p->desc[k], digest, FERRY_SHA256_LEN);
        return FERRY_OK;
    }
    if (p->ndesc == GW_POLICY_MAX_NODES)
        return FERRY_E_TOO_LARGE;
    if (p->ndesc == p->cap_desc) {
        size_t cap = p->cap_desc ? p->cap_desc * 2 : 256;
        uint8_t(*g)[FERRY_SHA256_LEN] = realloc(p->desc, cap * sizeof(*g));
        if (!g)
            return FERRY_E_NOMEM;
        p->desc = g;
        p->cap_desc = cap;
    }
    enum ferry_err err = ferry_idmap_put(p->descs, info->node, (uint32_t)p->ndesc);
    if (err != FERRY_OK)
        return err;
    memcpy(p->desc[p->ndesc++], digest, FERRY_SHA256_LEN);
    *changed = true;
    return FERRY_OK;
}

/* ---- offers
 * --------------------------------------------------------------------------------------- */

static bool window_open(struct rollout *ro, int w, int64_t wall, int64_t *until)
{
    struct window_cache *c = &ro->win[w];
    if (c->until == 0 || wall < c->from || wall >= c->until) {
        c->open = ferry_window_open(&ro->doc->windows[w], wall);
        c->from = wall;
        c->until = ferry_window_next_change(&ro->doc->windows[w], wall);
    }
    *until = c->until;
    return c->open;
}

/* Seconds a target must hold its install: until its window opens. */
static uint32_t window_hold(struct rollout *ro, const struct ferry_rollout_target *t, int64_t wall)
{
    int64_t until = 0;
    if (t->window < 0 || (size_t)t->window >= ro->doc->nwindows ||
        window_open(ro, t->window, wall, &until))
        return 0;
    if (until == INT64_MAX || until - wall > GW_POLICY_HALT_HOLD_S)
        return GW_POLICY_HALT_HOLD_S; /* asked again well before */
    return (uint32_t)(until - wall > 0 ? until - wall : 1);
}

static void set_offer(struct gw_offer *o, enum gw_offer_kind kind, const uint8_t *env, size_t len,
                      uint32_t hold)
{
    o->kind = env ? kind : GW_OFFER_NONE;
    o->env = env;
    o->len = env ? len : 0;
    o->hold_s = env ? hold : 0;
}

static void offer_baseline(struct gw_policy *p, const struct product *ps, struct gw_offer *out)
{
    const struct held *b = baseline(ps);
    set_offer(out, GW_OFFER_BASELINE, b ? b->env : NULL, b ? b->len : 0, 0);
    p->stats.offers_baseline++;
}

/* A target of a halted or cancelled rollout. */
static void offer_stopped(struct gw_policy *p, struct product *ps, uint32_t i, struct gw_offer *out)
{
    struct rollout *ro = ps->ro;
    int s = target_state(ro, i);
    bool started = ro->rt[i].started || s >= 0;
    const struct ferry_rollout_doc *doc = ro->doc;
    bool rel_ok = may_offer(ro->rel_verdict);
    if (installed_state(s) && doc->state != FERRY_ROLLOUT_CANCELLED && ro->has_rev &&
        ro->rev_cached && may_offer(ro->rev_verdict)) {
        set_offer(out, GW_OFFER_REVERT, doc->revert, doc->revert_len, 0);
        p->stats.offers_revert++;
    } else if (installed_state(s) && rel_ok) { /* the release it runs: passed over in silence */
        set_offer(out, GW_OFFER_ROLLOUT, doc->release, doc->release_len, 0);
        p->stats.offers_rollout++;
    } else if (rel_ok && started && !ferry_state_is_final((enum ferry_state)(s < 0 ? 0 : s))) {
        /* Under way: keep it, and keep it from installing. */
        set_offer(out, GW_OFFER_ROLLOUT, doc->release, doc->release_len, GW_POLICY_HALT_HOLD_S);
        p->stats.offers_held++;
    } else {
        offer_baseline(p, ps, out);
    }
}

void gw_policy_offer(struct gw_policy *p, const char *product, const char *node, int64_t wall,
                     uint64_t mono_ms, struct gw_offer *out)
{
    memset(out, 0, sizeof(*out));
    struct product *ps = find_product(p, product);
    if (!ps)
        return;
    struct rollout *ro = ps->ro;
    uint32_t i;
    if (!ro || !node || !ferry_idmap_get(ro->idx, node, &i)) {
        offer_baseline(p, ps, out);
        return;
    }
    const struct ferry_rollout_doc *doc = ro->doc;
    const struct ferry_rollout_target *t = &doc->targets[i];
    if (halted(ro) || doc->state == FERRY_ROLLOUT_CANCELLED) {
        offer_stopped(p, ps, i, out);
        return;
    }
    int s = target_state(ro, i);
    bool started = ro->rt[i].started || s >= 0;
    bool open = t->wave < doc->open_waves || doc->state == FERRY_ROLLOUT_COMPLETED;
    bool may_start =
        open && (doc->state == FERRY_ROLLOUT_RUNNING || doc->state == FERRY_ROLLOUT_COMPLETED);
    if (!ro->rel_cached || !may_offer(ro->rel_verdict) || doc->state == FERRY_ROLLOUT_SCHEDULED ||
        (!started && !may_start)) {
        offer_baseline(p, ps, out);
        return;
    }
    if (!started) {
        if (!ferry_ratecap_take(ro->cap, mono_ms)) {
            ro->cap_waiting = true;
            p->stats.capped++;
            offer_baseline(p, ps, out);
            return;
        }
        ro->rt[i].started = true;
    }
    uint32_t hold = ferry_state_is_final((enum ferry_state)(s < 0 ? 0 : s)) || installed_state(s)
                        ? 0
                        : window_hold(ro, t, wall);
    set_offer(out, GW_OFFER_ROLLOUT, doc->release, doc->release_len, hold);
    if (hold)
        p->stats.offers_held++;
    else
        p->stats.offers_rollout++;
}

/* ---- artifacts
 * ------------------------------------------------------------------------------------ */

static bool held_refers(const struct gw_policy *p, const uint8_t sha[FERRY_SHA256_LEN])
{
    for (size_t i = 0; i < p->n; i++) {
        const struct product *ps = &p->products[i];
        if ((ps->cur.env && memcmp(ps->cur.m.sha256, sha, FERRY_SHA256_LEN) == 0) ||
            (ps->prev.env && memcmp(ps->prev.m.sha256, sha, FERRY_SHA256_LEN) == 0))
            return true;
    }
    return false;
}

static enum gw_admit admit_one(struct gw_policy *p, struct rollout *ro, const char *node,
                               uint32_t *max_age, char why[96], bool *first)
{
    const struct ferry_rollout_doc *doc = ro->doc;
    enum ferry_rollout_state s = doc->state;
    uint32_t i;
    bool stopped = halted(ro) && s != FERRY_ROLLOUT_CANCELLED;
    if (node && !ferry_idmap_get(ro->idx, node, &i)) {
        snprintf(why, 96, "node %.40s is not a target of rollout %" PRIu64, node, doc->rollout);
        return GW_ADMIT_REFUSE;
    }
    if (ro->rel_verdict == FERRY_E_WITHDRAWN) {
        snprintf(why, 96, "release %.60s is withdrawn", ro->rel.release_id);
        return GW_ADMIT_REFUSE;
    }
    if (s == FERRY_ROLLOUT_CANCELLED || s == FERRY_ROLLOUT_SCHEDULED) {
        snprintf(why, 96, "rollout %" PRIu64 " is %s", doc->rollout, ferry_rollout_state_name(s));
        return GW_ADMIT_REFUSE;
    }
    if (stopped) {
        *max_age = GW_POLICY_STALL_S;
        snprintf(why, 96, "rollout %" PRIu64 " is halted", doc->rollout);
        return GW_ADMIT_STALL;
    }
    if (!node)
        return GW_ADMIT_SERVE;
    const struct ferry_rollout_target *t = &doc->targets[i];
    /* In an open wave, asking before its offer was counted (the gateway
     * restarted under it): let it go on. */
    bool may = ro->rt[i].started || target_state(ro, i) >= 0 ||
               (t->wave < doc->open_waves && s != FERRY_ROLLOUT_PAUSED);
    if (may) {
        ro->rt[i].started = true;
        *first = !ro->rt[i].fetched;
        ro->rt[i].fetched = true;
        return GW_ADMIT_SERVE;
    }
    snprintf(why, 96, "node %.40s is not in an open wave of rollout %" PRIu64, node, doc->rollout);
    (void)p;
    return GW_ADMIT_REFUSE;
}

enum gw_admit gw_policy_admit(struct gw_policy *p, const uint8_t sha[FERRY_SHA256_LEN],
                              const char *node, uint32_t *max_age_s, char why[96], bool *first)
{
    char scratch[96];
    bool first_scratch = false;
    if (!why)
        why = scratch;
    if (!first)
        first = &first_scratch;
    *first = false;
    why[0] = 0;
    *max_age_s = 0;
    enum gw_admit verdict = GW_ADMIT_SERVE;
    bool any = false;
    if (!held_refers(p, sha)) {
        for (size_t k = 0; k < p->n; k++) {
            struct rollout *ro = p->products[k].ro;
            if (!ro)
                continue;
            if (ro->has_rev && memcmp(ro->rev.sha256, sha, FERRY_SHA256_LEN) == 0) {
                if (may_fetch(ro->rev_verdict))
                    return GW_ADMIT_SERVE; /* the old image: harmless to anyone */
                snprintf(why, 96, "release %.60s is withdrawn", ro->rev.release_id);
                verdict = GW_ADMIT_REFUSE;
                any = true;
                continue;
            }
            if (memcmp(ro->rel.sha256, sha, FERRY_SHA256_LEN) != 0)
                continue;
            enum gw_admit v = admit_one(p, ro, node, max_age_s, why, first);
            if (!any || v < verdict)
                verdict = v;
            any = true;
        }
    }
    if (verdict == GW_ADMIT_SERVE)
        p->stats.admits++;
    else if (verdict == GW_ADMIT_STALL)
        p->stats.stalls++;
    else
        p->stats.refusals++;
    return verdict;
}

bool gw_policy_wants(const struct gw_policy *p, const uint8_t sha[FERRY_SHA256_LEN])
{
    if (held_refers(p, sha))
        return true;
    for (size_t i = 0; i < p->n; i++) {
        const struct rollout *ro = p->products[i].ro;
        if (ro &&
            ((may_fetch(ro->rel_verdict) && memcmp(ro->rel.sha256, sha, FERRY_SHA256_LEN) == 0) ||
             (ro->has_rev && may_fetch(ro->rev_verdict) &&
              memcmp(ro->rev.sha256, sha, FERRY_SHA256_LEN) == 0)))
            return true;
    }
    return false;
}

size_t gw_policy_rollout_releases(const struct gw_policy *p, const struct ferry_manifest **out,
                                  size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++) {
        const struct rollout *ro = p->products[i].ro;
        if (!ro || ferry_rollout_state_is_final(ro->doc->state))
            continue;
        if (may_fetch(ro->rel_verdict) && n < cap)
            out[n++] = &ro->rel;
        if (ro->has_rev && may_fetch(ro->rev_verdict) && n < cap)
            out[n++] = &ro->rev;
    }
    return n;
}

/* ---- time
 * ----------------------------------------------------------------------------------------- */

void gw_policy_next(const struct gw_policy *p, int64_t wall, uint64_t mono_ms, int64_t *wall_at,
                    uint64_t *mono_at)
{
    *wall_at = INT64_MAX;
    *mono_at = UINT64_MAX;
    for (size_t i = 0; i < p->n; i++) {
        const struct rollout *ro = p->products[i].ro;
        if (!ro || ferry_rollout_state_is_final(ro->doc->state))
            continue;
        for (size_t w = 0; w < ro->doc->nwindows; w++) {
            int64_t at = ferry_window_next_change(&ro->doc->windows[w], wall);
            if (at < *wall_at)
                *wall_at = at;
        }
        if (ro->cap_waiting) {
            uint64_t at = ferry_ratecap_next(ro->cap, mono_ms);
            if (at < *mono_at)
                *mono_at = at;
        }
    }
}

void gw_policy_tick(struct gw_policy *p, int64_t wall, uint64_t mono_ms,
                    struct gw_policy_effects *fx)
{
    for (size_t i = 0; i < p->n; i++) {
        struct rollout *ro = p->products[i].ro;
        if (!ro)
            continue;
        uint32_t open = 0;
        for (size_t w = 0; w < ro->doc->nwindows; w++)
            if (ferry_window_open(&ro->doc->windows[w], wall))
                open |= 1u << w;
        if (open != ro->win_open)
            notify(fx, p->products[i].name);
        ro->win_open = open;
        if (ro->cap_waiting && ferry_ratecap_next(ro->cap, mono_ms) <= mono_ms) {
            ro->cap_waiting = false;
            notify(fx, p->products[i].name);
        }
    }
}

/* ---- reports
 * ---------------------------------------------------------------------------------------- */

void gw_policy_report(const struct gw_policy *p, const char *gateway, int64_t wall,
                      struct ferry_rollout_report *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->gateway, sizeof(out->gateway), "%s", gateway);
    out->at = wall;
    for (size_t i = 0; i < p->n && out->n < FERRY_ROLLOUT_REPORT_ITEMS; i++) {
        const struct rollout *ro = p->products[i].ro;
        if (!ro)
            continue;
        struct ferry_rollout_report_item *it = &out->items[out->n++];
        it->rollout = ro->doc->rollout;
        it->revision = ro->doc->revision;
        it->resume = ro->doc->resume;
        snprintf(it->product, sizeof(it->product), "%s", p->products[i].name);
        it->halted = ro->halted;
        if (ro->halted) {
            it->halted_at = ro->halted_at;
            it->offline = ro->offline;
            it->finals = ro->finals;
            it->failed = ro->failed;
            memcpy(it->reason, ro->reason, sizeof(it->reason));
        }
    }
}

void gw_policy_restore(struct gw_policy *p, const struct ferry_rollout_report *r)
{
    for (size_t k = 0; k < r->n; k++) {
        const struct ferry_rollout_report_item *it = &r->items[k];
        struct product *ps = find_product(p, it->product);
        struct rollout *ro = ps ? ps->ro : NULL;
        if (!it->halted || !ro || ro->doc->rollout != it->rollout || ro->doc->resume != it->resume)
            continue;
        ro->halted = true;
        ro->halted_at = it->halted_at;
        ro->offline = it->offline;
        ro->finals = it->finals;
        ro->failed = it->failed;
        memcpy(ro->reason, it->reason, sizeof(ro->reason));
    }
}
