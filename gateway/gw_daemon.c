#include "gw_daemon.h"

#include "ferry_hex.h"
#include "ferry_log.h"
#include "ferry_loop.h"
#include "ferry_nodeinfo.h"
#include "ferry_random.h"
#include "ferry_stream.h"
#include "gw_cache.h"
#include "gw_coap.h"
#include "gw_fetch.h"
#include "gw_meta.h"
#include "gw_policy.h"
#include "gw_relay.h"
#include "gw_releases.h"
#include "gw_rollouts.h"
#include "gw_self.h"
#include "gw_selfupd.h"
#include "gw_upstream.h"
#include "gw_upstream_coap.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLOCK_SKEW_S 300
/* Chunks in flight: 16 x 64 KiB keeps a loopback or LAN uplink busy while
 * staying far below mosquitto's default queue limits. */
#define FETCH_WINDOW 16
/* After a failed download (hash mismatch, disk full), wait before trying
 * the same artifact again, doubling up to the cap. When the cloud only
 * answered errors (gw_fetch_failed(): the file not in its store yet, say),
 * nothing is wrong with the artifact: the cap is much lower, and the first
 * chunk that arrives forgets the failure. */
#define RETRY_MIN_MS       5000u
#define RETRY_MAX_MS       600000u
#define RETRY_ERROR_MAX_MS 60000u
#define MAX_FAILURES       16
/* The rollouts' artifacts, besides the releases', that the cache keeps. */
#define MAX_ROLLOUT_REFS (2 * GW_POLICY_MAX_PRODUCTS)
/* Node descriptions waiting for the uplink. */
#define MAX_PENDING_DESCRIPTIONS 100000
/* The policy looks at the time at least this often (windows, rate cap). */
#define POLICY_TICK_MAX_MS 3600000u

struct fetch_failure {
    uint8_t sha256[FERRY_SHA256_LEN];
    uint64_t retry_at_ms;
    uint32_t delay_ms;
    bool errors_only; /* every failure so far was the cloud's error chunks */
};

struct gw {
    const struct gw_config *cfg;
    struct ferry_loop *loop;
    struct gw_meta *meta; /* the trust: roots, timestamps */
    struct gw_releases *releases;
    struct gw_cache *cache;
    struct gw_upstream *uplink; /* the cloud over MQTT, or a parent over CoAP */
    struct gw_relay *relay;
    struct gw_coap *coap;

    /* The one download in progress, if any. */
    struct gw_fetch *fetch;
    struct gw_cache_part *part;
    uint8_t fetch_sha[FERRY_SHA256_LEN];
    char fetch_hex[FERRY_SHA256_HEX_LEN + 1];
    uint64_t fetch_size;
    uint64_t fetch_timer;
    unsigned fetch_last_decile;

    uint64_t pick_timer;
    struct fetch_failure failures[MAX_FAILURES];
    size_t nfailures;

    /* Rollouts: what to offer whom (gw_policy.h), the documents on disk
     * (gw_rollouts.h), and node descriptions not yet sent upstream. */
    struct gw_policy *policy;
    struct gw_rollouts_opts ro;
    uint64_t policy_timer;
    struct ferry_nodeinfo *pending;
    size_t npending, cap_pending;

    /* Its own update (--self-product), and whether it asked to restart. */
    struct gw_self *self;
    bool restart;
};

static int64_t wall_now(void)
{
    return (int64_t)time(NULL);
}

static void schedule_pick(struct gw *g, uint64_t delay_ms);
static void apply_policy(struct gw *g, const struct gw_policy_effects *fx);
static void policy_cached(struct gw *g, const uint8_t sha[FERRY_SHA256_LEN], bool cached);

/* The trust's verdict on a held release (ferry_trust.h): withdrawn, stale
 * or fine. */
static enum ferry_err verdict_of(const struct gw *g, const struct gw_release *r,
                                 struct ferry_diag *d)
{
    return ferry_trust_verdict(gw_meta_trust(g->meta), r->manifest.product, r->manifest.release_id,
                               r->manifest_digest, wall_now(), d);
}

/* ---- failures: when may an artifact be tried again ---------------------- */

static struct fetch_failure *failure_find(struct gw *g, const uint8_t sha[FERRY_SHA256_LEN])
{
    for (size_t i = 0; i < g->nfailures; i++) {
        if (memcmp(g->failures[i].sha256, sha, FERRY_SHA256_LEN) == 0)
            return &g->failures[i];
    }
    return NULL;
}

static void failure_clear(struct gw *g, const uint8_t sha[FERRY_SHA256_LEN])
{
    struct fetch_failure *f = failure_find(g, sha);
    if (f)
        *f = g->failures[--g->nfailures];
}

/* errors_only: this failure is the cloud's error chunks, nothing else. */
static void failure_note(struct gw *g, const uint8_t sha[FERRY_SHA256_LEN], bool errors_only)
{
    struct fetch_failure *f = failure_find(g, sha);
    if (!f) {
        /* Full table: reuse the oldest slot; forgetting a failure only means
         * an earlier retry. */
        f = g->nfailures < MAX_FAILURES ? &g->failures[g->nfailures++] : &g->failures[0];
        memcpy(f->sha256, sha, FERRY_SHA256_LEN);
        f->delay_ms = RETRY_MIN_MS;
        f->errors_only = errors_only;
    } else {
        f->errors_only = f->errors_only && errors_only;
        uint32_t cap = f->errors_only ? RETRY_ERROR_MAX_MS : RETRY_MAX_MS;
        f->delay_ms = f->delay_ms >= cap / 2 ? cap : f->delay_ms * 2;
    }
    f->retry_at_ms = ferry_now_ms() + f->delay_ms;
    ferry_log_info("fetch: will try again in %u s", f->delay_ms / 1000);
}

/* A chunk arrived: whatever errors the cloud answered before are over. */
static void failure_progress(struct gw *g, const uint8_t sha[FERRY_SHA256_LEN])
{
    const struct fetch_failure *f = failure_find(g, sha);
    if (f && f->errors_only)
        failure_clear(g, sha);
}

/* ---- the download in progress ------------------------------------------ */

static void on_fetch_timer(void *arg);

static void apply_actions(struct gw *g, const struct gw_fetch_actions *act)
{
    if (act->send) {
        char *json = NULL;
        size_t len = 0;
        struct ferry_diag d = {{0}};
        if (ferry_stream_req_encode(&act->req, &json, &len, &d) != FERRY_OK) {
            ferry_log_err("fetch: %s", d.msg);
        } else {
            enum ferry_err err =
                gw_upstream_publish(g->uplink, FERRY_TOPIC_STREAM_REQ, NULL, json, len, false);
            if (err != FERRY_OK)
                ferry_log_debug("fetch: request not sent (%s); the timeout will ask again",
                                ferry_strerror(err));
            else
                ferry_log_debug("fetch: requested %u chunks from offset %llu", act->req.count,
                                (unsigned long long)act->req.offset);
        }
        free(json);
    }
    if (g->fetch_timer) {
        ferry_loop_cancel(g->loop, g->fetch_timer);
        g->fetch_timer = 0;
    }
    if (act->deadline_ms != GW_FETCH_NO_DEADLINE) {
        uint64_t now = ferry_now_ms();
        uint64_t delay = act->deadline_ms > now ? act->deadline_ms - now : 0;
        g->fetch_timer = ferry_loop_timer(g->loop, delay, on_fetch_timer, g);
    }
}

static void fetch_log_stats(const struct gw *g, const char *what)
{
    struct gw_fetch_stats st;
    gw_fetch_stats(g->fetch, &st);
    ferry_log_info("fetch: %s %s: received %llu bytes this run (%llu kept, %llu requests, %llu "
                   "timeouts, %llu duplicates, %llu out of order)",
                   what, g->fetch_hex, (unsigned long long)st.bytes_received,
                   (unsigned long long)st.bytes_kept, (unsigned long long)st.requests,
                   (unsigned long long)st.timeouts, (unsigned long long)st.duplicates,
                   (unsigned long long)st.out_of_order);
}

/* Ends the download in progress, keeping the partial for a later resume. */
static void fetch_stop(struct gw *g)
{
    if (g->fetch_timer) {
        ferry_loop_cancel(g->loop, g->fetch_timer);
        g->fetch_timer = 0;
    }
    gw_cache_part_close(g->part);
    g->part = NULL;
    gw_fetch_free(g->fetch);
    g->fetch = NULL;
}

static void fetch_finish(struct gw *g)
{
    struct ferry_diag d = {{0}};
    fetch_log_stats(g, "complete");
    struct gw_cache_part *part = g->part;
    g->part = NULL; /* gw_cache_part_finish frees it whatever the outcome */
    enum ferry_err err = gw_cache_part_finish(part, &d);
    uint8_t sha[FERRY_SHA256_LEN];
    memcpy(sha, g->fetch_sha, sizeof(sha));
    fetch_stop(g);
    if (err == FERRY_OK) {
        ferry_log_info("cache: artifact %s verified and cached (%llu bytes)", g->fetch_hex,
                       (unsigned long long)g->fetch_size);
        failure_clear(g, sha);
        if (gw_coap_artifact_added(g->coap, sha, g->fetch_size) != FERRY_OK)
            ferry_log_warn("coap: could not list artifact %s", g->fetch_hex);
        policy_cached(g, sha, true);
        gw_self_kick(g->self);
    } else {
        ferry_log_err("cache: artifact %s rejected: %s", g->fetch_hex, ferry_diag_str(&d, err));
        failure_note(g, sha, false);
    }
    schedule_pick(g, 0);
}

static void on_fetch_timer(void *arg)
{
    struct gw *g = arg;
    g->fetch_timer = 0;
    if (!g->fetch)
        return;
    struct gw_fetch_actions act;
    gw_fetch_tick(g->fetch, ferry_now_ms(), &act);
    apply_actions(g, &act);
}

static void log_progress(struct gw *g)
{
    uint64_t end = gw_fetch_end(g->fetch);
    unsigned decile = (unsigned)(end * 10 / g->fetch_size);
    if (decile > g->fetch_last_decile) {
        g->fetch_last_decile = decile;
        ferry_log_info("fetch: %s %llu/%llu bytes (%u%%)", g->fetch_hex, (unsigned long long)end,
                       (unsigned long long)g->fetch_size, decile * 10);
    }
}

static void on_chunk(void *arg, const uint8_t *buf, size_t len)
{
    struct gw *g = arg;
    struct ferry_chunk c;
    struct ferry_diag d = {{0}};
    enum ferry_err err = ferry_chunk_decode(buf, len, &c, &d);
    if (err != FERRY_OK) {
        ferry_log_warn("fetch: chunk dropped: %s", d.msg);
        return;
    }
    if (!g->fetch) {
        ferry_log_debug("fetch: chunk at %llu arrived with no download in progress",
                        (unsigned long long)c.offset);
        return;
    }
    struct gw_fetch_actions act;
    enum gw_fetch_verdict v = gw_fetch_chunk(g->fetch, &c, ferry_now_ms(), &act);
    ferry_log_debug("fetch: received chunk offset=%llu len=%u verdict=%d",
                    (unsigned long long)c.offset, c.len, (int)v);
    if (v == GW_FETCH_ERROR) {
        /* An answer, not a verdict on the artifact: asked again shortly
         * (gw_fetch.h); only errors that go on stop this fetch, and not for
         * long. */
        if (gw_fetch_error_busy(&c))
            ferry_log_info("fetch: %s at %llu: asking again shortly: %.*s", g->fetch_hex,
                           (unsigned long long)c.offset, (int)c.len, (const char *)c.payload);
        else
            ferry_log_warn("fetch: the cloud could not serve %s at %llu: %.*s", g->fetch_hex,
                           (unsigned long long)c.offset, (int)c.len, (const char *)c.payload);
        if (gw_fetch_failed(g->fetch)) {
            ferry_log_err(
                "fetch: %s: the cloud keeps answering errors; trying other artifacts first",
                g->fetch_hex);
            failure_note(g, g->fetch_sha, true);
            fetch_stop(g);
            schedule_pick(g, 0);
            return;
        }
    }
    if (v == GW_FETCH_NEXT) {
        failure_progress(g, g->fetch_sha);
        bool written = false;
        err = gw_cache_part_write(g->part, c.offset, c.payload, c.len, &written, &d);
        if (err != FERRY_OK || !written) {
            ferry_log_err("cache: writing %s at %llu failed: %s", g->fetch_hex,
                          (unsigned long long)c.offset,
                          err != FERRY_OK ? ferry_diag_str(&d, err) : "cache and fetcher disagree");
            failure_note(g, g->fetch_sha, false);
            fetch_stop(g);
            schedule_pick(g, 0);
            return;
        }
        log_progress(g);
    }
    if (gw_fetch_done(g->fetch)) {
        fetch_finish(g);
        return;
    }
    apply_actions(g, &act);
}

static enum ferry_err fetch_start(struct gw *g, const struct ferry_manifest *m)
{
    struct ferry_diag d = {{0}};
    uint8_t refs_buf[GW_RELEASES_MAX_REFS][FERRY_SHA256_LEN];
    size_t nrefs = 0;
    enum ferry_err err = gw_releases_refs(g->releases, refs_buf, GW_RELEASES_MAX_REFS, &nrefs);
    if (err != FERRY_OK)
        return err;
    /* The rollouts' artifacts are kept too: a node outside the open waves
     * may be offered them later. */
    const struct ferry_manifest *rels[MAX_ROLLOUT_REFS];
    size_t nrels = gw_policy_rollout_releases(g->policy, rels, MAX_ROLLOUT_REFS);
    uint8_t all[GW_RELEASES_MAX_REFS + MAX_ROLLOUT_REFS][FERRY_SHA256_LEN];
    memcpy(all, refs_buf, nrefs * FERRY_SHA256_LEN);
    for (size_t i = 0; i < nrels; i++)
        memcpy(all[nrefs + i], rels[i]->sha256, FERRY_SHA256_LEN);
    struct gw_cache_refs refs = {.sha256 = (const uint8_t(*)[FERRY_SHA256_LEN])all,
                                 .n = nrefs + nrels};
    memcpy(g->fetch_sha, m->sha256, FERRY_SHA256_LEN);
    ferry_hex_encode(m->sha256, FERRY_SHA256_LEN, g->fetch_hex);
    g->fetch_size = m->size;
    err = gw_cache_part_open(g->cache, m->sha256, m->size, (uint32_t)g->cfg->chunk_size, &refs,
                             &g->part, &d);
    if (err != FERRY_OK) {
        ferry_log_err("cache: cannot start %s for release %s: %s", g->fetch_hex, m->release_id,
                      ferry_diag_str(&d, err));
        failure_note(g, m->sha256, false);
        return err;
    }
    struct gw_fetch_params p = {
        .total = m->size,
        .chunk = (uint32_t)g->cfg->chunk_size,
        .resume = gw_cache_part_end(g->part),
        .window = FETCH_WINDOW,
        .seed = ferry_random_u64(),
    };
    memcpy(p.sha256, m->sha256, FERRY_SHA256_LEN);
    struct gw_fetch_actions act;
    err = gw_fetch_start(&p, ferry_now_ms(), gw_upstream_is_up(g->uplink), &g->fetch, &act, &d);
    if (err != FERRY_OK) {
        ferry_log_err("fetch: %s", d.msg);
        gw_cache_part_close(g->part);
        g->part = NULL;
        return err;
    }
    g->fetch_last_decile = (unsigned)(p.resume * 10 / m->size);
    ferry_log_info("fetch: %s for release %s: %llu bytes, resuming at %llu", g->fetch_hex,
                   m->release_id, (unsigned long long)m->size, (unsigned long long)p.resume);
    if (gw_fetch_done(g->fetch)) {
        fetch_finish(g);
        return FERRY_OK;
    }
    apply_actions(g, &act);
    return FERRY_OK;
}

/* The releases whose artifacts the gateway fetches: the held ones first
 * (but not a withdrawn one), then the rollouts' (release and revert, but not
 * a withdrawn one: gw_policy.h). Returns how many. */
static size_t
wanted_releases(struct gw *g,
                const struct ferry_manifest *want[GW_RELEASES_MAX_PRODUCTS + MAX_ROLLOUT_REFS])
{
    size_t n = 0;
    for (size_t i = 0; i < gw_releases_count(g->releases); i++) {
        const struct gw_release *rel = gw_releases_at(g->releases, i);
        if (verdict_of(g, rel, NULL) != FERRY_E_WITHDRAWN)
            want[n++] = &rel->manifest;
    }
    return n + gw_policy_rollout_releases(g->policy, want + n, MAX_ROLLOUT_REFS);
}

/* Stops the download in progress when no release wants its artifact any
 * more (the product's timestamp withdrew it); the partial stays for the
 * cache's eviction. */
static void stop_unwanted_fetch(struct gw *g)
{
    if (!g->fetch)
        return;
    const struct ferry_manifest *want[GW_RELEASES_MAX_PRODUCTS + MAX_ROLLOUT_REFS];
    size_t n = wanted_releases(g, want);
    for (size_t i = 0; i < n; i++)
        if (memcmp(want[i]->sha256, g->fetch_sha, FERRY_SHA256_LEN) == 0)
            return;
    fetch_log_stats(g, "stopped (no release wants it: withdrawn)");
    fetch_stop(g);
    schedule_pick(g, 0);
}

/* Starts the next download a held release needs, if none is running. */
static void pick_next(struct gw *g)
{
    if (g->fetch)
        return;
    uint64_t now = ferry_now_ms();
    uint64_t soonest = UINT64_MAX;
    const struct ferry_manifest *want[GW_RELEASES_MAX_PRODUCTS + MAX_ROLLOUT_REFS];
    size_t n = wanted_releases(g, want);
    for (size_t i = 0; i < n; i++) {
        const struct ferry_manifest *m = want[i];
        if (gw_cache_has(g->cache, m->sha256, NULL))
            continue;
        const struct fetch_failure *f = failure_find(g, m->sha256);
        if (f && f->retry_at_ms > now) {
            if (f->retry_at_ms < soonest)
                soonest = f->retry_at_ms;
            continue;
        }
        if (fetch_start(g, m) == FERRY_OK)
            return;
    }
    if (soonest != UINT64_MAX)
        schedule_pick(g, soonest - now);
}

static void on_pick_timer(void *arg)
{
    struct gw *g = arg;
    g->pick_timer = 0;
    pick_next(g);
}

static void schedule_pick(struct gw *g, uint64_t delay_ms)
{
    if (g->pick_timer)
        ferry_loop_cancel(g->loop, g->pick_timer);
    g->pick_timer = ferry_loop_timer(g->loop, delay_ms, on_pick_timer, g);
}

/* ---- rollouts: the policy's effects ----------------------------------- */

static void publish_description(struct gw *g, const struct ferry_nodeinfo *ni);

/* Node descriptions that could not go upstream (the link was down). */
static void pending_add(struct gw *g, const struct ferry_nodeinfo *ni)
{
    for (size_t i = 0; i < g->npending; i++)
        if (strcmp(g->pending[i].node, ni->node) == 0) {
            g->pending[i] = *ni;
            return;
        }
    if (g->npending == MAX_PENDING_DESCRIPTIONS)
        return; /* the node describes itself again at its next poll */
    if (g->npending == g->cap_pending) {
        size_t cap = g->cap_pending ? g->cap_pending * 2 : 64;
        struct ferry_nodeinfo *v = realloc(g->pending, cap * sizeof(*v));
        if (!v)
            return;
        g->pending = v;
        g->cap_pending = cap;
    }
    g->pending[g->npending++] = *ni;
}

static void pending_flush(struct gw *g)
{
    size_t n = g->npending;
    g->npending = 0;
    for (size_t i = 0; i < n; i++)
        publish_description(g, &g->pending[i]);
}

/* Retained on ferry/v1/<fleet>/node-info/<gw>/<node>: what a rollout may
 * select the node by. */
static void publish_description(struct gw *g, const struct ferry_nodeinfo *ni)
{
    char *json = NULL;
    size_t len = 0;
    struct ferry_diag d = {{0}};
    enum ferry_err err = ferry_nodeinfo_to_json(ni, &json, &len, &d);
    if (err == FERRY_OK)
        err = g->uplink
                  ? gw_upstream_publish(g->uplink, FERRY_TOPIC_NODE_INFO, ni->node, json, len, true)
                  : FERRY_E_BUSY;
    free(json);
    if (err == FERRY_E_BUSY)
        pending_add(g, ni);
    else if (err != FERRY_OK)
        ferry_log_warn("rollouts: description of node %s not sent: %s", ni->node,
                       ferry_diag_str(&d, err));
}

/* The gateway's own halts, kept on disk and retained upstream. */
static void publish_report(struct gw *g)
{
    struct ferry_rollout_report rep;
    struct ferry_diag d = {{0}};
    char *json = NULL;
    size_t len = 0;
    gw_policy_report(g->policy, g->cfg->id, wall_now(), &rep);
    for (size_t i = 0; i < rep.n; i++)
        if (rep.items[i].halted)
            ferry_log_warn("rollouts: rollout %llu is halted on this gateway%s: %s",
                           (unsigned long long)rep.items[i].rollout,
                           rep.items[i].offline ? " (decided while the uplink was down)" : "",
                           rep.items[i].reason);
    enum ferry_err err = gw_rollouts_store_report(&g->ro, &rep, &d);
    if (err != FERRY_OK)
        ferry_log_err("rollouts: report not kept: %s", ferry_diag_str(&d, err));
    err = ferry_rollout_report_to_json(&rep, &json, &len, &d);
    if (err == FERRY_OK)
        err = g->uplink ? gw_upstream_publish(g->uplink, FERRY_TOPIC_ROLLOUT_REPORT, NULL, json,
                                              len, true)
                        : FERRY_E_BUSY;
    free(json);
    if (err == FERRY_OK)
        ferry_log_info("rollouts: report sent to the cloud");
    else /* sent again when the link comes up (gw_policy_link) */
        ferry_log_info("rollouts: report not sent now (%s)", ferry_strerror(err));
}

static void on_policy_timer(void *arg)
{
    struct gw *g = arg;
    struct gw_policy_effects fx = {0};
    g->policy_timer = 0;
    gw_policy_tick(g->policy, wall_now(), ferry_now_ms(), &fx);
    apply_policy(g, &fx);
}

/* One timer for the next moment something changes by itself. */
static void schedule_policy(struct gw *g)
{
    int64_t wall = wall_now(), wall_at;
    uint64_t mono = ferry_now_ms(), mono_at, delay = POLICY_TICK_MAX_MS;
    gw_policy_next(g->policy, wall, mono, &wall_at, &mono_at);
    if (wall_at != INT64_MAX && (uint64_t)(wall_at - wall) * 1000 < delay)
        delay = wall_at > wall ? (uint64_t)(wall_at - wall) * 1000 : 0;
    if (mono_at != UINT64_MAX && mono_at - mono < delay)
        delay = mono_at > mono ? mono_at - mono : 0;
    if (g->policy_timer)
        ferry_loop_cancel(g->loop, g->policy_timer);
    g->policy_timer = ferry_loop_timer(g->loop, delay, on_policy_timer, g);
}

static void apply_policy(struct gw *g, const struct gw_policy_effects *fx)
{
    for (size_t i = 0; g->coap && i < fx->nnotify; i++)
        if (gw_coap_manifest_changed(g->coap, fx->notify[i]) != FERRY_OK)
            ferry_log_warn("coap: cannot notify observers of product %s", fx->notify[i]);
    if (fx->report)
        publish_report(g);
    if (g->loop)
        schedule_policy(g);
}

/* What the policy may offer of a held release: nothing when the trust has
 * something against it (with a timestamp role, a release the product's
 * fresh timestamp does not name current, or withdraws). */
static struct gw_policy_release held_of(struct gw *g, const struct gw_release *r)
{
    struct gw_policy_release out = {0};
    if (r && verdict_of(g, r, NULL) == FERRY_OK) {
        out.env = r->envelope;
        out.len = r->envelope_len;
        out.m = &r->manifest;
        out.cached = gw_cache_has(g->cache, r->manifest.sha256, NULL);
    }
    return out;
}

/* The policy learns what the gateway holds for product. */
static void sync_held(struct gw *g, const char *product, struct gw_policy_effects *fx)
{
    struct gw_policy_release cur = held_of(g, gw_releases_current(g->releases, product));
    struct gw_policy_release prev = held_of(g, gw_releases_previous(g->releases, product));
    if (gw_policy_held(g->policy, product, &cur, &prev, fx) != FERRY_OK)
        ferry_log_err("rollouts: cannot hold product %s's releases (out of memory or products)",
                      product);
}

/* The policy learns the trust's verdict on product's rollout release and
 * revert (gw_policy_trust()), and says in the log what it does with them. */
static void sync_rollout_trust(struct gw *g, const char *product, struct gw_policy_effects *fx)
{
    char why[GW_POLICY_WHY_MAX];
    if (gw_policy_trust(g->policy, product, gw_meta_trust(g->meta), wall_now(), fx, why))
        ferry_log_info("rollouts: %s", why);
}

/* An artifact became servable (or went): every release or rollout that
 * uses it may be offered now (or no longer). */
static void policy_cached(struct gw *g, const uint8_t sha[FERRY_SHA256_LEN], bool cached)
{
    struct gw_policy_effects fx = {0};
    gw_policy_cached(g->policy, sha, cached, &fx);
    apply_policy(g, &fx);
}

/* A verified document goes to the policy, with its artifacts' state. */
static enum ferry_err take_rollout(struct gw *g, struct gw_rollout_in *in)
{
    struct gw_policy_effects fx = {0};
    const struct ferry_rollout_doc *doc = in->doc;
    ferry_log_info(
        "rollouts: rollout %llu revision %llu for product %s: %s, %u of %u waves open, %zu "
        "targets here",
        (unsigned long long)doc->rollout, (unsigned long long)doc->revision, doc->product,
        ferry_rollout_state_name(doc->state), doc->open_waves, doc->nwaves, doc->ntargets);
    uint8_t rel[FERRY_SHA256_LEN], rev[FERRY_SHA256_LEN];
    memcpy(rel, in->rel.sha256, sizeof(rel));
    memcpy(rev, in->rev.sha256, sizeof(rev));
    bool has_rev = in->has_rev;
    char doc_product[FERRY_ID_MAX + 1];
    snprintf(doc_product, sizeof(doc_product), "%s", doc->product);
    enum ferry_err err = gw_policy_rollout(g->policy, in->doc, &in->rel,
                                           in->has_rev ? &in->rev : NULL, wall_now(), &fx);
    in->doc = NULL; /* the policy's now, also on error */
    if (err != FERRY_OK)
        return err;
    sync_rollout_trust(g, doc_product, &fx);
    gw_policy_cached(g->policy, rel, gw_cache_has(g->cache, rel, NULL), &fx);
    if (has_rev)
        gw_policy_cached(g->policy, rev, gw_cache_has(g->cache, rev, NULL), &fx);
    apply_policy(g, &fx);
    return FERRY_OK;
}

static void on_rollout(void *arg, const char *product, const uint8_t *buf, size_t len)
{
    struct gw *g = arg;
    struct ferry_diag d = {{0}};
    struct gw_rollout_in in;
    if (len == 0)
        return; /* a retained document being cleared: keep enforcing what is held */
    enum ferry_err err = gw_rollouts_accept(&g->ro, product, buf, len, wall_now(), &in, &d);
    if (err != FERRY_OK) {
        ferry_log_warn("rollouts: %s (%s); keeping what is held", ferry_diag_str(&d, err),
                       ferry_err_name(err));
        return;
    }
    /* Kept before it takes effect: a gateway that restarts without its
     * uplink enforces it all the same. */
    err = gw_rollouts_store(&g->ro, product, buf, len, &d);
    if (err != FERRY_OK)
        ferry_log_err("rollouts: document for product %s not kept: %s", product,
                      ferry_diag_str(&d, err));
    err = take_rollout(g, &in);
    if (err == FERRY_E_DOWNGRADE)
        ferry_log_info("rollouts: an older document for product %s ignored", product);
    else if (err != FERRY_OK)
        ferry_log_err("rollouts: document for product %s not taken: %s", product,
                      ferry_strerror(err));
    stop_unwanted_fetch(g);
    schedule_pick(g, 0);
}

/* ---- uplink events ------------------------------------------------------ */

static void on_up(void *arg)
{
    struct gw *g = arg;
    gw_relay_link(g->relay, true);
    if (g->fetch) {
        struct gw_fetch_actions act;
        gw_fetch_link(g->fetch, true, ferry_now_ms(), &act);
        apply_actions(g, &act);
    }
    struct gw_policy_effects fx = {0};
    gw_policy_link(g->policy, true, &fx);
    apply_policy(g, &fx);
    pending_flush(g);
    schedule_pick(g, 0);
    gw_self_kick(g->self);
}

static void on_down(void *arg)
{
    struct gw *g = arg;
    gw_relay_link(g->relay, false);
    if (g->fetch) {
        struct gw_fetch_actions act;
        gw_fetch_link(g->fetch, false, ferry_now_ms(), &act);
        apply_actions(g, &act);
    }
    struct gw_policy_effects fx = {0};
    gw_policy_link(g->policy, false, &fx);
    apply_policy(g, &fx);
}

static void on_release(void *arg, const char *product, const uint8_t *buf, size_t len)
{
    struct gw *g = arg;
    struct ferry_diag d = {{0}};
    enum gw_release_outcome outcome;
    enum ferry_err err =
        gw_releases_accept(g->releases, product, buf, len, wall_now(), &outcome, &d);
    if (err != FERRY_OK) {
        ferry_log_warn("release: rejected on product '%s': %s (%s); keeping what is held", product,
                       ferry_diag_str(&d, err), ferry_err_name(err));
        return;
    }
    const struct gw_release *r = gw_releases_current(g->releases, product);
    if (outcome == GW_RELEASE_ALREADY_HELD) {
        ferry_log_debug("release: %s already held", r->manifest.release_id);
        return;
    }
    char hex[FERRY_SHA256_HEX_LEN + 1];
    ferry_hex_encode(r->manifest.sha256, FERRY_SHA256_LEN, hex);
    ferry_log_info(
        "release: accepted %s (product %s, version %s, seq %llu, artifact %s, %llu bytes)",
        r->manifest.release_id, product, r->manifest.version, (unsigned long long)r->manifest.seq,
        hex, (unsigned long long)r->manifest.size);
    /* Observers hear of it once its artifact is cached (fetch_finish), or
     * now if it already is (the policy decides: gw_policy.h). */
    struct gw_policy_effects fx = {0};
    sync_held(g, product, &fx);
    apply_policy(g, &fx);
    schedule_pick(g, 0);
    gw_self_kick(g->self);
}

/* The limits that apply now: the root's policy, else the flags. */
static void apply_limits(struct gw *g)
{
    struct ferry_trust_limits local = {.max_seq_step = g->cfg->max_seq_step,
                                       .max_manifest_lifetime = g->cfg->max_manifest_lifetime};
    struct ferry_trust_limits tl;
    ferry_trust_limits(gw_meta_trust(g->meta), &local, &tl);
    struct gw_releases_limits rl = {.max_lifetime = tl.max_manifest_lifetime,
                                    .max_seq_step = tl.max_seq_step};
    gw_releases_set_limits(g->releases, &rl);
}

static void on_root(void *arg, const char *level, const uint8_t *buf, size_t len)
{
    struct gw *g = arg;
    struct ferry_diag d = {{0}};
    size_t taken = 0;
    enum ferry_err err = gw_meta_root(g->meta, level, buf, len, wall_now(), &taken, &d);
    if (err != FERRY_OK) {
        ferry_log_warn("root: version %s refused: %s (%s); keeping version %llu", level,
                       ferry_diag_str(&d, err), ferry_err_name(err),
                       (unsigned long long)ferry_trust_version(gw_meta_trust(g->meta)));
        return;
    }
    if (!taken)
        return;
    /* New release keys, revoked ones, new limits: what is held is checked
     * again, and every product's observers hear of it. */
    char products[GW_RELEASES_MAX_PRODUCTS][FERRY_ID_MAX + 1];
    size_t n = 0;
    for (size_t i = 0; i < gw_releases_count(g->releases) && n < GW_RELEASES_MAX_PRODUCTS; i++)
        snprintf(products[n++], sizeof(products[0]), "%s",
                 gw_releases_at(g->releases, i)->manifest.product);
    apply_limits(g);
    size_t dropped = gw_releases_recheck(g->releases, wall_now());
    ferry_log_info("root: now at version %llu; %zu release(s) no longer trusted",
                   (unsigned long long)ferry_trust_version(gw_meta_trust(g->meta)), dropped);
    /* The policy offers only what the trust has nothing against (held_of());
     * it notifies the products whose offer changed. */
    struct gw_policy_effects fx = {0};
    for (size_t i = 0; i < n; i++) {
        sync_held(g, products[i], &fx);
        sync_rollout_trust(g, products[i], &fx);
    }
    apply_policy(g, &fx);
    gw_coap_meta_changed(g->coap, NULL);
    stop_unwanted_fetch(g);
    schedule_pick(g, 0);
}

static void on_timestamp(void *arg, const char *product, const uint8_t *buf, size_t len)
{
    struct gw *g = arg;
    struct ferry_diag d = {{0}};
    bool changed = false;
    enum ferry_err err = gw_meta_timestamp(g->meta, product, buf, len, wall_now(), &changed, &d);
    if (err != FERRY_OK) {
        ferry_log_warn("timestamp: refused on product '%s': %s (%s)", product,
                       ferry_diag_str(&d, err), ferry_err_name(err));
        return;
    }
    if (!changed)
        return;
    const struct ferry_timestamp *ts =
        ferry_trust_timestamp(gw_meta_trust(g->meta), product, NULL, NULL);
    char cur[FERRY_TIMESTAMP_MAX_CURRENT * (FERRY_NAME_MAX + 1) + 8];
    ferry_log_info("timestamp: product %s at version %llu, current %s, %zu withdrawn", product,
                   (unsigned long long)ts->version,
                   ferry_timestamp_current_str(ts, cur, sizeof(cur)), ts->nwithdrawn);
    /* What is offered may have changed (a withdrawal, a new current one). */
    gw_coap_meta_changed(g->coap, product);
    struct gw_policy_effects fx = {0};
    sync_held(g, product, &fx);
    sync_rollout_trust(g, product, &fx);
    apply_policy(g, &fx);
    if (gw_coap_manifest_changed(g->coap, product) != FERRY_OK)
        ferry_log_warn("coap: cannot notify observers of product %s", product);
    stop_unwanted_fetch(g);
    schedule_pick(g, 0);
}

static void on_status_ack(void *arg, const uint8_t *buf, size_t len)
{
    struct gw *g = arg;
    gw_relay_ack(g->relay, buf, len);
}

static enum ferry_err relay_publish(void *arg, bool twin, const char *node, const void *buf,
                                    size_t len, bool retain)
{
    struct gw *g = arg;
    if (!g->uplink) /* not started yet: the relay sends again once it is up */
        return FERRY_E_BUSY;
    return gw_upstream_publish(g->uplink, twin ? FERRY_TOPIC_NODE : FERRY_TOPIC_STATUS, node, buf,
                               len, retain);
}

/* ---- CoAP hooks: what nodes see ----------------------------------------- */

/* A node's configuration report goes up retained, as part of its twin
 * (ferry_config_report.h); like a twin it is best effort: the node sends
 * it again at its next start or change, and until the broker has it the
 * answer is 5.03. */
static enum ferry_err hook_config(void *arg, const struct ferry_config_report *r,
                                  const char *psk_identity, struct ferry_diag *d)
{
    struct gw *g = arg;
    if (psk_identity && strcmp(psk_identity, r->node) != 0)
        return ferry_fail(d, FERRY_E_PROTOCOL, "config: node '%s' may not report for '%s'",
                          psk_identity, r->node);
    struct ferry_config_report up = *r;
    snprintf(up.gateway, sizeof(up.gateway), "%s", g->cfg->id);
    char *json = NULL;
    size_t len = 0;
    enum ferry_err err = ferry_config_report_encode(&up, &json, &len, d);
    if (err == FERRY_OK)
        err = g->uplink
                  ? gw_upstream_publish(g->uplink, FERRY_TOPIC_CONFIG, r->node, json, len, true)
                  : FERRY_E_BUSY;
    free(json);
    if (err == FERRY_OK)
        ferry_log_info("config: node %s reported its properties (%s)", r->node,
                       r->healthy ? "healthy" : "not healthy");
    else
        ferry_log_warn("config: node %s's report not relayed: %s", r->node, ferry_diag_str(d, err));
    return err;
}

/* The product's baseline, for anyone (gw_policy.h): its current release once
 * the artifact is cached, else the previous one if cached; a release the
 * trust has something against is not held (held_of()). */
static const uint8_t *hook_manifest(void *arg, const char *product,
                                    const struct gw_coap_requester *who, size_t *len)
{
    (void)who; /* the baseline is the same for every node; manifest_for is per node */
    struct gw *g = arg;
    if (g->uplink) /* a parent is asked for the lines the nodes follow */
        gw_upstream_want(g->uplink, product);
    struct gw_offer o;
    gw_policy_offer(g->policy, product, NULL, wall_now(), ferry_now_ms(), &o);
    *len = o.len;
    return o.env;
}

static enum ferry_err hook_meta(void *arg, const char *product, uint64_t have, uint8_t **out,
                                size_t *len, bool *known)
{
    struct gw *g = arg;
    struct ferry_diag d = {{0}};
    *known = ferry_trust_timestamp(gw_meta_trust(g->meta), product, NULL, NULL) != NULL;
    enum ferry_err err = gw_meta_bundle(g->meta, product, have, out, len, &d);
    if (err != FERRY_OK)
        ferry_log_err("meta: no bundle for product %s: %s", product, ferry_diag_str(&d, err));
    return err;
}

/* What this node is offered, and who it says it is. */
/* The node a request names, or NULL for an anonymous client. */
static const char *node_of(const struct gw_coap_requester *who)
{
    return who->kind == GW_COAP_REQUESTER_ANONYMOUS ? NULL : who->id;
}

static void hook_manifest_for(void *arg, const char *product,
                              const struct gw_coap_requester *requester, struct gw_coap_offer *out)
{
    struct gw *g = arg;
    const char *node = node_of(requester);
    struct ferry_nodeinfo ni;
    struct ferry_diag d = {{0}};
    enum ferry_err err = ferry_nodeinfo_from_query(requester->query, requester->query_len,
                                                   requester->nquery, &ni, &d);
    if (err == FERRY_OK && node) {
        bool changed = false;
        snprintf(ni.node, sizeof(ni.node), "%s", node);
        snprintf(ni.product, sizeof(ni.product), "%s", product);
        if (gw_policy_describe(g->policy, &ni, &changed) == FERRY_OK && changed)
            publish_description(g, &ni);
    } else if (err == FERRY_E_INVALID_ARG) {
        ferry_log_debug("coap: node %s: %s", node ? node : "(anonymous)", d.msg);
    }
    struct gw_offer o;
    gw_policy_offer(g->policy, product, node, wall_now(), ferry_now_ms(), &o);
    out->env = o.env;
    out->len = o.len;
    out->hold_s = o.hold_s;
    if (o.kind == GW_OFFER_ROLLOUT || o.kind == GW_OFFER_REVERT)
        ferry_log_debug("rollouts: node %s offered the %s release%s", node,
                        o.kind == GW_OFFER_REVERT ? "revert" : "rollout's",
                        o.hold_s ? " with a hold" : "");
}

static enum gw_coap_admit hook_admit(void *arg, const uint8_t sha[FERRY_SHA256_LEN],
                                     const struct gw_coap_requester *who, uint32_t *max_age_s,
                                     char *why, size_t why_cap)
{
    struct gw *g = arg;
    const char *node = node_of(who);
    char reason[96] = "";
    bool first = false;
    enum gw_admit v = gw_policy_admit(g->policy, sha, node, max_age_s, reason, &first);
    snprintf(why, why_cap, "%s", reason);
    switch (v) {
    case GW_ADMIT_SERVE:
        if (first) /* which nodes fetch a rollout's release, once each */
            ferry_log_info("rollouts: node %s fetches the rollout's release", node);
        return GW_COAP_ADMIT_SERVE;
    case GW_ADMIT_STALL:
        ferry_log_debug("rollouts: block for %s stalled: %s", node ? node : "(anonymous)", reason);
        return GW_COAP_ADMIT_STALL;
    case GW_ADMIT_REFUSE:
        break;
    }
    ferry_log_info("rollouts: block refused to %s: %s", node ? node : "(anonymous)", reason);
    return GW_COAP_ADMIT_REFUSE;
}

static enum gw_artifact_state hook_artifact(void *arg, const uint8_t sha[FERRY_SHA256_LEN],
                                            const struct gw_coap_requester *who)
{
    (void)who; /* every node may fetch whatever the gateway holds */
    struct gw *g = arg;
    if (gw_cache_has(g->cache, sha, NULL))
        return GW_ARTIFACT_COMPLETE;
    /* Only complete, verified files are served: anything a held release
     * or a rollout still waits for is "come back later". */
    return gw_policy_wants(g->policy, sha) ? GW_ARTIFACT_FETCHING : GW_ARTIFACT_UNKNOWN;
}

static enum ferry_err hook_artifact_map(void *arg, const uint8_t sha[FERRY_SHA256_LEN],
                                        const uint8_t **data, size_t *len, void **ref,
                                        struct ferry_diag *d)
{
    struct gw *g = arg;
    struct gw_cache_map *m = NULL;
    enum ferry_err err = gw_cache_map(g->cache, sha, &m, d);
    if (err != FERRY_OK)
        return err;
    *data = gw_cache_map_data(m);
    *len = (size_t)gw_cache_map_size(m);
    *ref = m;
    return FERRY_OK;
}

static void hook_artifact_release(void *arg, void *ref)
{
    (void)arg;
    gw_cache_unmap(ref);
}

/* Who may send st: a node's own record (no gateway yet, or this one) comes
 * from that node (over DTLS, its identity); a record a child gateway
 * relays (its last hop another gateway) comes from that child, named by
 * its PSK identity or its n= (PROTOCOL.md, "Cascaded gateways"). */
static enum ferry_err may_send(const struct gw *g, const struct ferry_status *st,
                               const struct gw_coap_requester *who, struct ferry_diag *d)
{
    const char *hop = ferry_status_last_hop(st);
    if (hop[0] && strcmp(hop, g->cfg->id) != 0) {
        if (who->kind == GW_COAP_REQUESTER_ANONYMOUS || strcmp(who->id, hop) != 0)
            return ferry_fail(
                d, FERRY_E_PROTOCOL,
                "status: a record relayed by gateway '%s' may come only from it, "
                "not from '%s'",
                hop, who->kind == GW_COAP_REQUESTER_ANONYMOUS ? "an anonymous client" : who->id);
        return FERRY_OK;
    }
    if (who->kind == GW_COAP_REQUESTER_PSK && strcmp(who->id, st->node) != 0)
        return ferry_fail(d, FERRY_E_PROTOCOL, "status: node '%s' may not report for '%s'", who->id,
                          st->node);
    return FERRY_OK;
}

static enum ferry_err hook_status(void *arg, const struct ferry_status *st,
                                  const struct gw_coap_requester *who, struct ferry_diag *d)
{
    struct gw *g = arg;
    enum ferry_err perr = may_send(g, st, who, d);
    if (perr != FERRY_OK)
        return perr;
    enum ferry_err err = gw_relay_submit(g->relay, st, d);
    if (err == FERRY_OK)
        ferry_log_debug("status: node %s seq %llu %s", st->node, (unsigned long long)st->seq,
                        ferry_state_name(st->state));
    else if (err == FERRY_E_BUSY)
        /* A node over its rate, or no place for a new one: expected under
         * a flood, and each would be a line. */
        ferry_log_debug("status: node %s seq %llu not now: %s", st->node,
                        (unsigned long long)st->seq, ferry_diag_str(d, err));
    else
        ferry_log_warn("status: node %s seq %llu not stored: %s", st->node,
                       (unsigned long long)st->seq, ferry_diag_str(d, err));
    if (err == FERRY_OK) /* a node's step may be what its gateway waits for */
        gw_self_kick(g->self);
    if (err == FERRY_OK) { /* the rollout's halt rule counts what it relayed */
        struct gw_policy_effects fx = {0};
        gw_policy_status(g->policy, st, wall_now(), &fx);
        apply_policy(g, &fx);
    }
    return err;
}

static enum ferry_err start_coap(struct gw *g, struct ferry_diag *d)
{
    const struct gw_config *cfg = g->cfg;
    struct gw_coap_opts co = {
        .addr = cfg->coap_addr ? cfg->coap_addr : "::",
        .port = (uint16_t)cfg->coap_port,
        .max_downloads = (uint32_t)cfg->max_downloads,
        .busy_max_age_s = (uint32_t)cfg->busy_max_age,
        .psk_file = cfg->psk_file,
        .link_rate = cfg->link_rate,
        .node_rate = cfg->node_rate,
    };
    struct gw_coap_hooks hooks = {
        .arg = g,
        .manifest = hook_manifest,
        .artifact = hook_artifact,
        .artifact_map = hook_artifact_map,
        .artifact_release = hook_artifact_release,
        .status = hook_status,
        .meta = hook_meta,
        .config = hook_config,
        .manifest_for = hook_manifest_for,
        .admit = hook_admit,
    };
    enum ferry_err err = gw_coap_new(g->loop, &co, &hooks, &g->coap, d);
    if (err != FERRY_OK) {
        ferry_diag_prefix(d, "coap");
        return err;
    }
    /* List what is already cached and tell (future) observers what is held. */
    const struct ferry_manifest *want[GW_RELEASES_MAX_PRODUCTS + MAX_ROLLOUT_REFS];
    size_t n = 0;
    for (size_t i = 0; i < gw_releases_count(g->releases); i++)
        want[n++] = &gw_releases_at(g->releases, i)->manifest;
    n += gw_policy_rollout_releases(g->policy, want + n, MAX_ROLLOUT_REFS);
    for (size_t i = 0; i < n; i++) {
        uint64_t size = 0;
        if (gw_cache_has(g->cache, want[i]->sha256, &size) &&
            gw_coap_artifact_added(g->coap, want[i]->sha256, size) != FERRY_OK)
            ferry_log_warn("coap: could not list a cached artifact");
        if (gw_coap_manifest_changed(g->coap, want[i]->product) != FERRY_OK)
            ferry_log_warn("coap: cannot notify observers of product %s", want[i]->product);
    }
    return FERRY_OK;
}

/* The policy at start: the held releases, then the rollout documents and
 * the halts kept on disk. */
static enum ferry_err load_rollout(void *arg, struct gw_rollout_in *in)
{
    struct gw *g = arg;
    enum ferry_err err = take_rollout(g, in);
    if (err != FERRY_OK && err != FERRY_E_DOWNGRADE)
        return err;
    return FERRY_OK;
}

static enum ferry_err start_policy(struct gw *g, uint64_t quota, struct ferry_diag *d)
{
    enum ferry_err err = gw_policy_new(ferry_random_u64(), &g->policy, d);
    if (err != FERRY_OK)
        return err;
    g->ro = (struct gw_rollouts_opts){.state_dir = g->cfg->state_dir,
                                      .gateway_id = g->cfg->id,
                                      .trust = gw_meta_trust(g->meta),
                                      .max_artifact_size = quota,
                                      .clock_skew = CLOCK_SKEW_S};
    struct gw_policy_effects fx = {0};
    for (size_t i = 0; i < gw_releases_count(g->releases); i++)
        sync_held(g, gw_releases_at(g->releases, i)->manifest.product, &fx);
    err = gw_rollouts_load(&g->ro, wall_now(), load_rollout, g, d);
    if (err != FERRY_OK)
        return err;
    struct ferry_rollout_report rep;
    struct ferry_diag rd = {{0}};
    enum ferry_err rerr = gw_rollouts_load_report(&g->ro, &rep, &rd);
    if (rerr == FERRY_OK)
        gw_policy_restore(g->policy, &rep);
    else if (rerr != FERRY_E_NOT_FOUND)
        ferry_log_warn("rollouts: %s", ferry_diag_str(&rd, rerr));
    return FERRY_OK;
}

static void on_evict(void *arg, const uint8_t sha[FERRY_SHA256_LEN])
{
    struct gw *g = arg;
    if (g->coap)
        gw_coap_artifact_removed(g->coap, sha);
    if (g->policy)
        policy_cached(g, sha, false);
}

/* ---- start-up and shut-down -------------------------------------------- */

/* ---- its own update (gw_self.h) ---------------------------------------- */

/* The self product's held release, unless the trust withdrew it or its
 * timestamp is stale: what the gateway would offer a node of its own. */
static const struct ferry_manifest *self_release(void *arg, bool *cached)
{
    struct gw *g = arg;
    const struct gw_release *r = gw_releases_current(g->releases, g->cfg->self_product);
    if (!r || verdict_of(g, r, NULL) != FERRY_OK)
        return NULL;
    *cached = gw_cache_has(g->cache, r->manifest.sha256, NULL);
    return &r->manifest;
}

/* Its nodes (and child gateways) busy downloading or installing, by their
 * newest records, plus whoever holds a download place now; its own records
 * (it is in its node table too) do not count. */
static size_t self_busy(void *arg, uint64_t now_ms)
{
    struct gw *g = arg;
    size_t busy = gw_coap_active_downloads(g->coap);
    for (size_t i = 0; i < gw_relay_nodes(g->relay); i++) {
        const struct gw_node_info *ni = gw_relay_node_at(g->relay, i);
        if (strcmp(ni->last.node, g->cfg->id) != 0 &&
            gw_selfupd_node_busy(&ni->last, ni->stored_ms, now_ms))
            busy++;
    }
    return busy;
}

static enum ferry_err self_report(void *arg, const struct ferry_status *st, struct ferry_diag *d)
{
    struct gw *g = arg;
    return gw_relay_submit(g->relay, st, d);
}

static void self_unmap(void *arg, void *ref)
{
    (void)arg;
    gw_cache_unmap(ref);
}

static bool self_link_up(void *arg)
{
    const struct gw *g = arg;
    return g->uplink && gw_upstream_is_up(g->uplink);
}

static void self_restart(void *arg)
{
    struct gw *g = arg;
    g->restart = true;
    ferry_loop_stop(g->loop);
}

static enum ferry_err start_self(struct gw *g, struct ferry_diag *d)
{
    const struct gw_config *cfg = g->cfg;
    if (!cfg->self_product)
        return FERRY_OK;
    char dir[4096];
    if ((size_t)snprintf(dir, sizeof(dir), "%s/self", cfg->state_dir) >= sizeof(dir))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--state-dir: path too long");
    struct gw_self_opts o = {
        .gateway_id = cfg->id,
        .product = cfg->self_product,
        .hw_model = cfg->self_hw_model,
        .hw_revision = cfg->self_hw_revision,
        .dir = dir,
        .device =
            {
                .slot = {cfg->self_slot_a, cfg->self_slot_b},
                .max_bytes = cfg->self_max_image_mb << 20,
                .uboot_env_config = cfg->self_uboot_env_config,
                .grub_env = cfg->self_grub_env,
                .bootloader_cmd = cfg->self_bootloader_cmd,
                .cmd_timeout_ms = 60000,
            },
        .health_cmd = cfg->self_health_cmd,
        .health_timeout_ms = (uint64_t)cfg->self_health_timeout * 1000u,
        .reboot_cmd = cfg->self_reboot_cmd,
    };
    enum ferry_err err = FERRY_OK;
    if (cfg->self_bootloader &&
        inst_bootloader_kind_parse(cfg->self_bootloader, &o.device.kind) != FERRY_OK)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--self-bootloader: '%.32s' is not sim, uboot, grub or custom",
                          cfg->self_bootloader);
    struct gw_self_hooks h = {
        .arg = g,
        .release = self_release,
        .busy = self_busy,
        .report = self_report,
        .map = hook_artifact_map,
        .unmap = self_unmap,
        .link_up = self_link_up,
        .restart = self_restart,
    };
    err = gw_self_open(g->loop, &o, &h, &g->self, d);
    if (err == FERRY_OK)
        ferry_log_info("self: following product %s as hardware %s, running %s", cfg->self_product,
                       cfg->self_hw_model,
                       gw_self_version(g->self)[0] ? gw_self_version(g->self) : "an unknown image");
    return err;
}

static uint64_t root_version(void *arg)
{
    const struct gw *g = arg;
    return ferry_trust_version(gw_meta_trust(g->meta));
}

/* The cloud over MQTT, or a parent gateway over CoAP (gw_upstream.h); a
 * parent is asked for the product lines held already and those named. */
static enum ferry_err start_upstream(struct gw *g, struct ferry_diag *d)
{
    const struct gw_config *cfg = g->cfg;
    gw_upstream_handlers h = {
        .arg = g,
        .on_up = on_up,
        .on_down = on_down,
        .on_release = on_release,
        .on_root = on_root,
        .on_timestamp = on_timestamp,
        .on_chunk = on_chunk,
        .on_status_ack = on_status_ack,
        .on_rollout = on_rollout,
    };
    enum ferry_err err;
    if (cfg->upstream) {
        struct gw_upstream_coap_opts co = {
            .uri = cfg->upstream,
            .gateway_id = cfg->id,
            .psk_file = cfg->upstream_psk_file,
            .poll_s = (uint32_t)cfg->upstream_poll,
            .root_version = root_version,
            .root_arg = g,
            .seed = (uint64_t)wall_now() ^ (ferry_now_ms() << 24) ^ (uint64_t)(uintptr_t)g,
        };
        err = gw_upstream_coap_new(g->loop, &co, &h, &g->uplink, d);
    } else {
        struct gw_uplink_opts uo = {
            .mqtt = &cfg->mqtt,
            .fleet = cfg->fleet,
            .gateway_id = cfg->id,
        };
        err = gw_upstream_mqtt_new(g->loop, &uo, &h, &g->uplink, d);
    }
    if (err != FERRY_OK)
        return err;
    for (size_t i = 0; i < cfg->upstream_products.n; i++)
        gw_upstream_want(g->uplink, cfg->upstream_products.v[i]);
    if (cfg->self_product)
        gw_upstream_want(g->uplink, cfg->self_product);
    for (size_t i = 0; i < gw_releases_count(g->releases); i++)
        gw_upstream_want(g->uplink, gw_releases_at(g->releases, i)->manifest.product);
    return FERRY_OK;
}

static enum ferry_err gw_start(struct gw *g, struct ferry_diag *d)
{
    const struct gw_config *cfg = g->cfg;
    enum ferry_err err = ferry_loop_new(&g->loop, d);
    if (err != FERRY_OK)
        return err;
    struct gw_meta_opts mo = {
        .state_dir = cfg->state_dir, .trust_path = cfg->trust, .clock_skew = CLOCK_SKEW_S};
    err = gw_meta_open(&mo, &g->meta, d);
    if (err != FERRY_OK) {
        ferry_diag_prefix(d, "--trust");
        return err;
    }
    uint64_t quota = cfg->cache_quota_mb << 20;
    struct ferry_trust_limits local = {.max_seq_step = cfg->max_seq_step,
                                       .max_manifest_lifetime = cfg->max_manifest_lifetime};
    struct ferry_trust_limits tl;
    ferry_trust_limits(gw_meta_trust(g->meta), &local, &tl);
    struct gw_releases_limits rl = {.max_lifetime = tl.max_manifest_lifetime,
                                    .max_seq_step = tl.max_seq_step};
    struct gw_releases_opts ro = {
        .limits = &rl,
        .state_dir = cfg->state_dir,
        .keyring = ferry_trust_release_keys(gw_meta_trust(g->meta)),
        .max_artifact_size = quota,
        .clock_skew = CLOCK_SKEW_S,
    };
    err = gw_releases_open(&ro, wall_now(), &g->releases, d);
    if (err != FERRY_OK)
        return err;
    struct gw_cache_opts co = {
        .dir = cfg->cache_dir, .quota = quota, .on_evict = on_evict, .evict_arg = g};
    err = gw_cache_open(&co, &g->cache, d);
    if (err != FERRY_OK)
        return err;
    /* An artifact whose cached length disagrees with its release was damaged
     * on disk: re-check it (gw_cache_verify deletes it if bad). */
    for (size_t i = 0; i < gw_releases_count(g->releases); i++) {
        const struct ferry_manifest *m = &gw_releases_at(g->releases, i)->manifest;
        uint64_t size = 0;
        if (gw_cache_has(g->cache, m->sha256, &size) && size != m->size) {
            struct ferry_diag vd = {{0}};
            enum ferry_err verr = gw_cache_verify(g->cache, m->sha256, m->size, &vd);
            if (verr != FERRY_OK)
                ferry_log_warn("cache: %s", ferry_diag_str(&vd, verr));
        }
    }
    struct gw_outbox_opts oo = {
        .state_dir = cfg->state_dir,
        .gateway_id = cfg->id,
        .max_records = (size_t)cfg->outbox_max_records,
        .max_bytes = cfg->outbox_max_mb << 20,
    };
    struct gw_relay_opts rlo = {
        .outbox = &oo,
        .max_nodes = (size_t)cfg->max_nodes,
        .publish = relay_publish,
        .publish_arg = g,
    };
    err = gw_relay_new(g->loop, &rlo, &g->relay, d);
    if (err != FERRY_OK)
        return err;
    err = start_policy(g, quota, d);
    if (err != FERRY_OK)
        return err;
    err = start_coap(g, d);
    if (err != FERRY_OK)
        return err;
    err = start_upstream(g, d);
    if (err != FERRY_OK)
        return err;
    err = start_self(g, d);
    if (err != FERRY_OK)
        return err;
    ferry_log_info(
        "gateway %s of fleet %s started (upstream: %s): %zu releases held, cache %llu of %llu "
        "bytes used",
        cfg->id, cfg->fleet, cfg->upstream ? cfg->upstream : cfg->mqtt.brokers.v[0],
        gw_releases_count(g->releases), (unsigned long long)gw_cache_used(g->cache),
        (unsigned long long)quota);
    schedule_pick(g, 0);
    return FERRY_OK;
}

static void gw_stop(struct gw *g)
{
    if (g->fetch)
        fetch_log_stats(g, "paused");
    fetch_stop(g);
    gw_self_free(g->self); /* it may hold a mapping of the cache */
    g->self = NULL;
    /* CoAP first: it releases its mappings back into the cache. */
    gw_coap_free(g->coap);
    g->coap = NULL;
    gw_upstream_free(g->uplink);
    g->uplink = NULL;
    gw_relay_free(g->relay);
    gw_policy_free(g->policy); /* before the cache: evictions ask nothing of it then */
    g->policy = NULL;
    gw_cache_free(g->cache);
    gw_releases_free(g->releases);
    gw_meta_free(g->meta);
    free(g->pending);
    ferry_loop_free(g->loop);
}

enum ferry_err gw_daemon_run(const struct gw_config *cfg, bool *restart, struct ferry_diag *d)
{
    struct gw g = {.cfg = cfg};
    enum ferry_err err = gw_start(&g, d);
    if (err == FERRY_OK) {
        int sig = ferry_loop_run(g.loop);
        if (g.restart)
            ferry_log_info("stopping to restart into the slot the boot step chooses");
        else
            ferry_log_info("stopping on signal %d", sig);
    }
    gw_stop(&g);
    *restart = err == FERRY_OK && g.restart;
    return err;
}
