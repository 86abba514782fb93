#include "gw_daemon.h"

#include "ferry_hex.h"
#include "ferry_log.h"
#include "ferry_loop.h"
#include "ferry_stream.h"
#include "gw_cache.h"
#include "gw_coap.h"
#include "gw_fetch.h"
#include "gw_meta.h"
#include "gw_relay.h"
#include "gw_releases.h"
#include "gw_uplink.h"

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
    struct gw_uplink *uplink;
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
};

static int64_t wall_now(void)
{
    return (int64_t)time(NULL);
}

static void schedule_pick(struct gw *g, uint64_t delay_ms);

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
    LOG_INFO("fetch: will try again in %u s", f->delay_ms / 1000);
}

/* A chunk arrived: whatever errors the cloud answered before are over. */
static void failure_progress(struct gw *g, const uint8_t sha[FERRY_SHA256_LEN])
{
    const struct fetch_failure *f = failure_find(g, sha);
    if (f && f->errors_only)
        failure_clear(g, sha);
}

static void notify_releases_of(struct gw *g, const uint8_t sha[FERRY_SHA256_LEN]);

/* ---- the download in progress ------------------------------------------ */

static void on_fetch_timer(void *arg);

static void apply_actions(struct gw *g, const struct gw_fetch_actions *act)
{
    if (act->send) {
        char *json = NULL;
        size_t len = 0;
        struct ferry_diag d = {{0}};
        if (ferry_stream_req_encode(&act->req, &json, &len, &d) != FERRY_OK) {
            LOG_ERR("fetch: %s", d.msg);
        } else {
            enum ferry_err err = gw_uplink_publish(g->uplink, FERRY_TOPIC_STREAM_REQ, NULL, json,
                                                   len, 1, false, NULL);
            if (err != FERRY_OK)
                LOG_DEBUG("fetch: request not sent (%s); the timeout will ask again",
                          ferry_strerror(err));
            else
                LOG_DEBUG("fetch: requested %u chunks from offset %llu", act->req.count,
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
    LOG_INFO("fetch: %s %s: received %llu bytes this run (%llu kept, %llu requests, %llu "
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
        LOG_INFO("cache: artifact %s verified and cached (%llu bytes)", g->fetch_hex,
                 (unsigned long long)g->fetch_size);
        failure_clear(g, sha);
        if (gw_coap_artifact_added(g->coap, sha, g->fetch_size) != FERRY_OK)
            LOG_WARN("coap: could not list artifact %s", g->fetch_hex);
        notify_releases_of(g, sha);
    } else {
        LOG_ERR("cache: artifact %s rejected: %s", g->fetch_hex, ferry_diag_str(&d, err));
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
        LOG_INFO("fetch: %s %llu/%llu bytes (%u%%)", g->fetch_hex, (unsigned long long)end,
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
        LOG_WARN("fetch: chunk dropped: %s", d.msg);
        return;
    }
    if (!g->fetch) {
        LOG_DEBUG("fetch: chunk at %llu arrived with no download in progress",
                  (unsigned long long)c.offset);
        return;
    }
    struct gw_fetch_actions act;
    enum gw_fetch_verdict v = gw_fetch_chunk(g->fetch, &c, ferry_now_ms(), &act);
    LOG_DEBUG("fetch: received chunk offset=%llu len=%u verdict=%d", (unsigned long long)c.offset,
              c.len, (int)v);
    if (v == GW_FETCH_ERROR) {
        /* An answer, not a verdict on the artifact: asked again shortly
         * (gw_fetch.h); only errors that go on stop this fetch, and not for
         * long. */
        LOG_WARN("fetch: the cloud could not serve %s at %llu: %.*s", g->fetch_hex,
                 (unsigned long long)c.offset, (int)c.len, (const char *)c.payload);
        if (gw_fetch_failed(g->fetch)) {
            LOG_ERR("fetch: %s: the cloud keeps answering errors; trying other artifacts first",
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
            LOG_ERR("cache: writing %s at %llu failed: %s", g->fetch_hex,
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
    struct gw_cache_refs refs = {.sha256 = (const uint8_t(*)[FERRY_SHA256_LEN])refs_buf,
                                 .n = nrefs};
    memcpy(g->fetch_sha, m->sha256, FERRY_SHA256_LEN);
    ferry_hex_encode(m->sha256, FERRY_SHA256_LEN, g->fetch_hex);
    g->fetch_size = m->size;
    err = gw_cache_part_open(g->cache, m->sha256, m->size, (uint32_t)g->cfg->chunk_size, &refs,
                             &g->part, &d);
    if (err != FERRY_OK) {
        LOG_ERR("cache: cannot start %s for release %s: %s", g->fetch_hex, m->release_id,
                ferry_diag_str(&d, err));
        failure_note(g, m->sha256, false);
        return err;
    }
    struct gw_fetch_params p = {
        .total = m->size,
        .chunk = (uint32_t)g->cfg->chunk_size,
        .resume = gw_cache_part_end(g->part),
        .window = FETCH_WINDOW,
    };
    memcpy(p.sha256, m->sha256, FERRY_SHA256_LEN);
    struct gw_fetch_actions act;
    err = gw_fetch_start(&p, ferry_now_ms(), gw_uplink_is_up(g->uplink), &g->fetch, &act, &d);
    if (err != FERRY_OK) {
        LOG_ERR("fetch: %s", d.msg);
        gw_cache_part_close(g->part);
        g->part = NULL;
        return err;
    }
    g->fetch_last_decile = (unsigned)(p.resume * 10 / m->size);
    LOG_INFO("fetch: %s for release %s: %llu bytes, resuming at %llu", g->fetch_hex, m->release_id,
             (unsigned long long)m->size, (unsigned long long)p.resume);
    if (gw_fetch_done(g->fetch)) {
        fetch_finish(g);
        return FERRY_OK;
    }
    apply_actions(g, &act);
    return FERRY_OK;
}

/* Starts the next download a held release needs, if none is running. */
static void pick_next(struct gw *g)
{
    if (g->fetch)
        return;
    uint64_t now = ferry_now_ms();
    uint64_t soonest = UINT64_MAX;
    for (size_t i = 0; i < gw_releases_count(g->releases); i++) {
        const struct gw_release *rel = gw_releases_at(g->releases, i);
        const struct ferry_manifest *m = &rel->manifest;
        if (gw_cache_has(g->cache, m->sha256, NULL) ||
            verdict_of(g, rel, NULL) == FERRY_E_WITHDRAWN)
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
    schedule_pick(g, 0);
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
}

/* Tells the observers of a release's product that their manifest changed. */
static void notify_product(struct gw *g, const struct ferry_manifest *m)
{
    if (gw_coap_manifest_changed(g->coap, m->product) != FERRY_OK)
        LOG_WARN("coap: cannot notify observers of product %s", m->product);
}

/* An artifact became servable: every release that uses it can be offered. */
static void notify_releases_of(struct gw *g, const uint8_t sha[FERRY_SHA256_LEN])
{
    for (size_t i = 0; i < gw_releases_count(g->releases); i++) {
        const struct ferry_manifest *m = &gw_releases_at(g->releases, i)->manifest;
        if (memcmp(m->sha256, sha, FERRY_SHA256_LEN) == 0)
            notify_product(g, m);
    }
}

static void on_release(void *arg, const char *product, const uint8_t *buf, size_t len)
{
    struct gw *g = arg;
    struct ferry_diag d = {{0}};
    enum gw_release_outcome outcome;
    enum ferry_err err =
        gw_releases_accept(g->releases, product, buf, len, wall_now(), &outcome, &d);
    if (err != FERRY_OK) {
        LOG_WARN("release: rejected on product '%s': %s (%s); keeping what is held", product,
                 ferry_diag_str(&d, err), ferry_err_name(err));
        return;
    }
    const struct gw_release *r = gw_releases_current(g->releases, product);
    if (outcome == GW_RELEASE_ALREADY_HELD) {
        LOG_DEBUG("release: %s already held", r->manifest.release_id);
        return;
    }
    char hex[FERRY_SHA256_HEX_LEN + 1];
    ferry_hex_encode(r->manifest.sha256, FERRY_SHA256_LEN, hex);
    LOG_INFO("release: accepted %s (product %s, version %s, seq %llu, artifact %s, %llu bytes)",
             r->manifest.release_id, product, r->manifest.version,
             (unsigned long long)r->manifest.seq, hex, (unsigned long long)r->manifest.size);
    /* Observers hear of it once its artifact is cached (fetch_finish), or
     * now if it already is. */
    if (gw_cache_has(g->cache, r->manifest.sha256, NULL))
        notify_product(g, &r->manifest);
    schedule_pick(g, 0);
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
        LOG_WARN("root: version %s refused: %s (%s); keeping version %llu", level,
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
    LOG_INFO("root: now at version %llu; %zu release(s) no longer trusted",
             (unsigned long long)ferry_trust_version(gw_meta_trust(g->meta)), dropped);
    for (size_t i = 0; i < n; i++)
        if (gw_coap_manifest_changed(g->coap, products[i]) != FERRY_OK)
            LOG_WARN("coap: cannot notify observers of product %s", products[i]);
    gw_coap_meta_changed(g->coap, NULL);
    schedule_pick(g, 0);
}

static void on_timestamp(void *arg, const char *product, const uint8_t *buf, size_t len)
{
    struct gw *g = arg;
    struct ferry_diag d = {{0}};
    bool changed = false;
    enum ferry_err err = gw_meta_timestamp(g->meta, product, buf, len, wall_now(), &changed, &d);
    if (err != FERRY_OK) {
        LOG_WARN("timestamp: refused on product '%s': %s (%s)", product, ferry_diag_str(&d, err),
                 ferry_err_name(err));
        return;
    }
    if (!changed)
        return;
    const struct ferry_timestamp *ts =
        ferry_trust_timestamp(gw_meta_trust(g->meta), product, NULL, NULL);
    LOG_INFO("timestamp: product %s at version %llu, current %s, %zu withdrawn", product,
             (unsigned long long)ts->version, ts->has_current ? ts->current_release : "(none)",
             ts->nwithdrawn);
    /* What is offered may have changed (a withdrawal, a new current one). */
    gw_coap_meta_changed(g->coap, product);
    if (gw_coap_manifest_changed(g->coap, product) != FERRY_OK)
        LOG_WARN("coap: cannot notify observers of product %s", product);
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
    return gw_uplink_publish(g->uplink, twin ? FERRY_TOPIC_NODE : FERRY_TOPIC_STATUS, node, buf,
                             len, 1, retain, NULL);
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
        err = gw_uplink_publish(g->uplink, FERRY_TOPIC_CONFIG, r->node, json, len, 1, true, NULL);
    free(json);
    if (err == FERRY_OK)
        LOG_INFO("config: node %s reported its properties (%s)", r->node,
                 r->healthy ? "healthy" : "not healthy");
    else
        LOG_WARN("config: node %s's report not relayed: %s", r->node, ferry_diag_str(d, err));
    return err;
}

/* Nodes are offered a release only once its artifact is cached: offered
 * earlier, a node would ask for the artifact, get 5.03 and wait out a
 * Max-Age while the file was ready moments later. Meanwhile they keep the
 * product's previous release, if it is still cached. And only a release
 * the trust has nothing against: with a timestamp role, the one the
 * product's fresh timestamp names current (never a withdrawn one). */
static const uint8_t *hook_manifest(void *arg, const char *product,
                                    const struct gw_coap_requester *who, size_t *len)
{
    (void)who; /* every node of a product line is offered the same release */
    struct gw *g = arg;
    const struct gw_release *cands[] = {gw_releases_current(g->releases, product),
                                        gw_releases_previous(g->releases, product)};
    for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++) {
        const struct gw_release *r = cands[i];
        if (!r || !gw_cache_has(g->cache, r->manifest.sha256, NULL) ||
            verdict_of(g, r, NULL) != FERRY_OK)
            continue;
        *len = r->envelope_len;
        return r->envelope;
    }
    return NULL;
}

static enum ferry_err hook_meta(void *arg, const char *product, uint64_t have, uint8_t **out,
                                size_t *len, bool *known)
{
    struct gw *g = arg;
    struct ferry_diag d = {{0}};
    *known = ferry_trust_timestamp(gw_meta_trust(g->meta), product, NULL, NULL) != NULL;
    enum ferry_err err = gw_meta_bundle(g->meta, product, have, out, len, &d);
    if (err != FERRY_OK)
        LOG_ERR("meta: no bundle for product %s: %s", product, ferry_diag_str(&d, err));
    return err;
}

static bool release_refers_to(const struct gw *g, const uint8_t sha[FERRY_SHA256_LEN])
{
    for (size_t i = 0; i < gw_releases_count(g->releases); i++) {
        if (memcmp(gw_releases_at(g->releases, i)->manifest.sha256, sha, FERRY_SHA256_LEN) == 0)
            return true;
    }
    return false;
}

static enum gw_artifact_state hook_artifact(void *arg, const uint8_t sha[FERRY_SHA256_LEN],
                                            const struct gw_coap_requester *who)
{
    (void)who; /* every node may fetch whatever the gateway holds */
    struct gw *g = arg;
    if (gw_cache_has(g->cache, sha, NULL))
        return GW_ARTIFACT_COMPLETE;
    /* Only complete, verified files are served: anything a held release
     * still waits for is "come back later". */
    return release_refers_to(g, sha) ? GW_ARTIFACT_FETCHING : GW_ARTIFACT_UNKNOWN;
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

static enum ferry_err hook_status(void *arg, const struct ferry_status *st,
                                  const char *psk_identity, struct ferry_diag *d)
{
    struct gw *g = arg;
    if (psk_identity && strcmp(psk_identity, st->node) != 0)
        return ferry_fail(d, FERRY_E_PROTOCOL, "status: node '%s' may not report for '%s'",
                          psk_identity, st->node);
    enum ferry_err err = gw_relay_submit(g->relay, st, d);
    if (err == FERRY_OK)
        LOG_DEBUG("status: node %s seq %llu %s", st->node, (unsigned long long)st->seq,
                  ferry_state_name(st->state));
    else if (err == FERRY_E_BUSY)
        /* A node over its rate, or no place for a new one: expected under
         * a flood, and each would be a line. */
        LOG_DEBUG("status: node %s seq %llu not now: %s", st->node, (unsigned long long)st->seq,
                  ferry_diag_str(d, err));
    else
        LOG_WARN("status: node %s seq %llu not stored: %s", st->node, (unsigned long long)st->seq,
                 ferry_diag_str(d, err));
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
    };
    enum ferry_err err = gw_coap_new(g->loop, &co, &hooks, &g->coap, d);
    if (err != FERRY_OK) {
        ferry_diag_prefix(d, "coap");
        return err;
    }
    /* List what is already cached and tell (future) observers what is held. */
    for (size_t i = 0; i < gw_releases_count(g->releases); i++) {
        const struct ferry_manifest *m = &gw_releases_at(g->releases, i)->manifest;
        uint64_t size = 0;
        if (gw_cache_has(g->cache, m->sha256, &size) &&
            gw_coap_artifact_added(g->coap, m->sha256, size) != FERRY_OK)
            LOG_WARN("coap: could not list a cached artifact");
        notify_product(g, m);
    }
    return FERRY_OK;
}

static void on_evict(void *arg, const uint8_t sha[FERRY_SHA256_LEN])
{
    struct gw *g = arg;
    if (g->coap)
        gw_coap_artifact_removed(g->coap, sha);
}

/* ---- start-up and shut-down -------------------------------------------- */

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
                LOG_WARN("cache: %s", ferry_diag_str(&vd, verr));
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
    err = start_coap(g, d);
    if (err != FERRY_OK)
        return err;
    struct gw_uplink_opts uo = {
        .broker = cfg->broker,
        .fleet = cfg->fleet,
        .gateway_id = cfg->id,
        .ca_file = cfg->ca_file,
        .cert_file = cfg->cert_file,
        .key_file = cfg->key_file,
    };
    struct gw_uplink_handlers h = {
        .arg = g,
        .on_up = on_up,
        .on_down = on_down,
        .on_release = on_release,
        .on_root = on_root,
        .on_timestamp = on_timestamp,
        .on_chunk = on_chunk,
        .on_status_ack = on_status_ack,
    };
    err = gw_uplink_new(g->loop, &uo, &h, &g->uplink, d);
    if (err != FERRY_OK)
        return err;
    LOG_INFO("gateway %s of fleet %s started: %zu releases held, cache %llu of %llu bytes used",
             cfg->id, cfg->fleet, gw_releases_count(g->releases),
             (unsigned long long)gw_cache_used(g->cache), (unsigned long long)quota);
    schedule_pick(g, 0);
    return FERRY_OK;
}

static void gw_stop(struct gw *g)
{
    if (g->fetch)
        fetch_log_stats(g, "paused");
    fetch_stop(g);
    /* CoAP first: it releases its mappings back into the cache. */
    gw_coap_free(g->coap);
    gw_uplink_free(g->uplink);
    gw_relay_free(g->relay);
    gw_cache_free(g->cache);
    gw_releases_free(g->releases);
    gw_meta_free(g->meta);
    ferry_loop_free(g->loop);
}

enum ferry_err gw_daemon_run(const struct gw_config *cfg, struct ferry_diag *d)
{
    struct gw g = {.cfg = cfg};
    enum ferry_err err = gw_start(&g, d);
    if (err == FERRY_OK) {
        int sig = ferry_loop_run(g.loop);
        LOG_INFO("stopping on signal %d", sig);
    }
    gw_stop(&g);
    return err;
}
