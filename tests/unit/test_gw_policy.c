/* The gateway's policy, driven directly: releases held, rollout documents,
 * node records and time in; offers, admissions and effects out. */
#include "cunit_main.h"
#include "test_meta.h"

#include "gw_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WALL 1800000000 /* 2027-01-15T08:00:00Z, a Friday */
#define MONO 5000000

static const char ENV_CUR[] = "current-envelope";
static const char ENV_PREV[] = "previous-envelope";
static const char ENV_REL[] = "rollout-envelope";
static const char ENV_REV[] = "revert-envelope";

static struct ferry_manifest manifest(const char *id, uint8_t sha_byte, uint64_t seq)
{
    struct ferry_manifest m;
    memset(&m, 0, sizeof(m));
    snprintf(m.release_id, sizeof(m.release_id), "%s", id);
    snprintf(m.product, sizeof(m.product), "fw");
    memset(m.sha256, sha_byte, sizeof(m.sha256));
    m.seq = seq;
    return m;
}

static struct ferry_manifest m_cur, m_prev, m_rel, m_rev;

static void init_manifests(void)
{
    m_cur = manifest("fw-1", 0x11, 1);
    m_prev = manifest("fw-0", 0x10, 0);
    m_rel = manifest("fw-2", 0x22, 2);
    m_rev = manifest("fw-1r", 0x33, 3);
}

static struct gw_policy *make(bool cur_cached, bool prev_cached)
{
    init_manifests();
    struct gw_policy *p = NULL;
    CU_ASSERT_FATAL(gw_policy_new(7, &p, NULL) == FERRY_OK);
    struct gw_policy_release cur = {(const uint8_t *)ENV_CUR, sizeof(ENV_CUR), &m_cur, cur_cached};
    struct gw_policy_release prev = {(const uint8_t *)ENV_PREV, sizeof(ENV_PREV), &m_prev,
                                     prev_cached};
    struct gw_policy_effects fx = {0};
    CU_ASSERT_FATAL(gw_policy_held(p, "fw", &cur, &prev, &fx) == FERRY_OK);
    return p;
}

/* A document with targets n0..n(count-1): node i in wave i % nwaves, with
 * window 0 when windowed and i is odd. */
static struct ferry_rollout_doc *doc(uint64_t revision, enum ferry_rollout_state state,
                                     uint32_t nwaves, uint32_t open, size_t count, bool windowed)
{
    struct ferry_rollout_doc *d = calloc(1, sizeof(*d));
    d->rollout = 4;
    d->revision = revision;
    snprintf(d->gateway, sizeof(d->gateway), "gw1");
    snprintf(d->product, sizeof(d->product), "fw");
    d->state = state;
    d->release = (uint8_t *)strdup(ENV_REL);
    d->release_len = sizeof(ENV_REL);
    d->revert = (uint8_t *)strdup(ENV_REV);
    d->revert_len = sizeof(ENV_REV);
    d->halt_pct = 10;
    d->min_final = 3;
    d->nwaves = nwaves;
    d->open_waves = open;
    if (windowed) {
        /* Mon-Fri 01:00-04:00 UTC */
        struct ferry_window_range r = {0x3e, 60, 240};
        CU_ASSERT_FATAL(ferry_window_set(&d->windows[0], "UTC", "UTC0", &r, 1, NULL) == FERRY_OK);
        d->nwindows = 1;
    }
    d->targets = calloc(count ? count : 1, sizeof(*d->targets));
    d->ntargets = count;
    for (size_t i = 0; i < count; i++) {
        snprintf(d->targets[i].node, sizeof(d->targets[i].node), "n%zu", i);
        d->targets[i].wave = (uint8_t)(i % nwaves);
        d->targets[i].window = windowed && i % 2 ? 0 : -1;
        d->targets[i].state = -1;
    }
    return d;
}

static void set_doc(struct gw_policy *p, struct ferry_rollout_doc *d, bool cached,
                    struct gw_policy_effects *fx)
{
    struct gw_policy_effects local = {0};
    if (!fx)
        fx = &local;
    CU_ASSERT_FATAL(gw_policy_rollout(p, d, &m_rel, &m_rev, WALL, fx) == FERRY_OK);
    gw_policy_cached(p, m_rel.sha256, cached, fx);
    gw_policy_cached(p, m_rev.sha256, cached, fx);
}

static struct gw_offer offer(struct gw_policy *p, const char *node, int64_t wall, uint64_t mono)
{
    struct gw_offer o;
    gw_policy_offer(p, "fw", node, wall, mono, &o);
    return o;
}

static enum gw_offer_kind kind(struct gw_policy *p, const char *node)
{
    return offer(p, node, WALL, MONO).kind;
}

static void record(struct gw_policy *p, const char *node, const char *release, enum ferry_state s,
                   struct gw_policy_effects *fx)
{
    struct ferry_status st;
    memset(&st, 0, sizeof(st));
    snprintf(st.node, sizeof(st.node), "%s", node);
    snprintf(st.release_id, sizeof(st.release_id), "%s", release);
    st.state = s;
    gw_policy_status(p, &st, WALL, fx);
}

static bool notified(const struct gw_policy_effects *fx, const char *product)
{
    for (size_t i = 0; i < fx->nnotify; i++)
        if (strcmp(fx->notify[i], product) == 0)
            return true;
    return false;
}

/* ---- baseline: the rules that moved here from gw_daemon.c ----------------------------- */

static void baseline_is_the_cached_current_else_the_cached_previous(void)
{
    struct gw_policy *p = make(true, true);
    struct gw_offer o = offer(p, "anyone", WALL, MONO);
    CU_ASSERT_EQUAL(o.kind, GW_OFFER_BASELINE);
    CU_ASSERT_STRING_EQUAL((const char *)o.env, ENV_CUR);
    struct gw_policy_effects fx = {0};
    gw_policy_cached(p, m_cur.sha256, false, &fx); /* evicted, or still arriving */
    CU_ASSERT_TRUE(notified(&fx, "fw"));
    o = offer(p, NULL, WALL, MONO);
    CU_ASSERT_STRING_EQUAL((const char *)o.env, ENV_PREV);
    gw_policy_cached(p, m_prev.sha256, false, &fx);
    CU_ASSERT_EQUAL(kind(p, NULL), GW_OFFER_NONE);
    gw_policy_offer(p, "other-product", NULL, WALL, MONO, &o);
    CU_ASSERT_EQUAL(o.kind, GW_OFFER_NONE);
    CU_ASSERT_TRUE(gw_policy_wants(p, m_prev.sha256));
    CU_ASSERT_FALSE(gw_policy_wants(p, m_rel.sha256));
    gw_policy_free(p);
}

/* ---- waves, starts and windows ------------------------------------------------------------ */

static void only_open_waves_are_offered_the_release(void)
{
    struct gw_policy *p = make(true, false);
    set_doc(p, doc(1, FERRY_ROLLOUT_RUNNING, 3, 1, 9, false), false, NULL);
    /* Not cached yet: nobody gets it. */
    CU_ASSERT_EQUAL(kind(p, "n0"), GW_OFFER_BASELINE);
    struct gw_policy_effects fx = {0};
    gw_policy_cached(p, m_rel.sha256, true, &fx);
    CU_ASSERT_TRUE(notified(&fx, "fw"));
    CU_ASSERT_EQUAL(kind(p, "n0"), GW_OFFER_ROLLOUT); /* wave 1 */
    CU_ASSERT_EQUAL(kind(p, "n3"), GW_OFFER_ROLLOUT);
    CU_ASSERT_EQUAL(kind(p, "n1"), GW_OFFER_BASELINE); /* wave 2: keeps what it runs */
    CU_ASSERT_EQUAL(kind(p, "stranger"), GW_OFFER_BASELINE);
    CU_ASSERT_EQUAL(kind(p, NULL), GW_OFFER_BASELINE);
    /* Blocks: targets in the open wave, and anonymous clients, may fetch. */
    uint32_t age;
    char why[96];
    bool first = false;
    CU_ASSERT_EQUAL(gw_policy_admit(p, m_rel.sha256, "n0", &age, why, &first), GW_ADMIT_SERVE);
    CU_ASSERT_TRUE(first);
    CU_ASSERT_EQUAL(gw_policy_admit(p, m_rel.sha256, "n0", &age, why, &first), GW_ADMIT_SERVE);
    CU_ASSERT_FALSE(first);
    CU_ASSERT_EQUAL(gw_policy_admit(p, m_rel.sha256, "n1", &age, why, NULL), GW_ADMIT_REFUSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "not in an open wave"));
    CU_ASSERT_EQUAL(gw_policy_admit(p, m_rel.sha256, "stranger", &age, why, NULL), GW_ADMIT_REFUSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "not a target"));
    CU_ASSERT_EQUAL(gw_policy_admit(p, m_rel.sha256, NULL, &age, why, NULL), GW_ADMIT_SERVE);
    CU_ASSERT_EQUAL(gw_policy_admit(p, m_cur.sha256, "stranger", &age, why, NULL), GW_ADMIT_SERVE);
    CU_ASSERT_TRUE(gw_policy_wants(p, m_rel.sha256));
    const struct ferry_manifest *rels[4];
    CU_ASSERT_EQUAL(gw_policy_rollout_releases(p, rels, 4), 2); /* release and revert */
    CU_ASSERT_STRING_EQUAL(rels[0]->release_id, "fw-2");
    /* Wave 2 opens (revision 2): n1 gets it. */
    set_doc(p, doc(2, FERRY_ROLLOUT_RUNNING, 3, 2, 9, false), true, NULL);
    CU_ASSERT_EQUAL(kind(p, "n1"), GW_OFFER_ROLLOUT);
    CU_ASSERT_EQUAL(kind(p, "n2"), GW_OFFER_BASELINE);
    /* An older revision, or an older rollout, is ignored. */
    struct ferry_rollout_doc *old = doc(1, FERRY_ROLLOUT_RUNNING, 3, 1, 9, false);
    struct gw_policy_effects fx2 = {0};
    CU_ASSERT_EQUAL(gw_policy_rollout(p, old, &m_rel, &m_rev, WALL, &fx2), FERRY_E_DOWNGRADE);
    old = doc(9, FERRY_ROLLOUT_RUNNING, 3, 3, 9, false);
    old->rollout = 3;
    CU_ASSERT_EQUAL(gw_policy_rollout(p, old, &m_rel, &m_rev, WALL, &fx2), FERRY_E_DOWNGRADE);
    CU_ASSERT_EQUAL(kind(p, "n2"), GW_OFFER_BASELINE);
    gw_policy_free(p);
}

static void scheduled_and_paused(void)
{
    struct gw_policy *p = make(true, false);
    set_doc(p, doc(1, FERRY_ROLLOUT_SCHEDULED, 1, 0, 4, false), true, NULL);
    CU_ASSERT_EQUAL(kind(p, "n0"), GW_OFFER_BASELINE);
    uint32_t age;
    CU_ASSERT_EQUAL(gw_policy_admit(p, m_rel.sha256, "n0", &age, NULL, NULL), GW_ADMIT_REFUSE);
    set_doc(p, doc(2, FERRY_ROLLOUT_RUNNING, 1, 1, 4, false), true, NULL);
    CU_ASSERT_EQUAL(kind(p, "n0"), GW_OFFER_ROLLOUT); /* n0 starts */
    set_doc(p, doc(3, FERRY_ROLLOUT_PAUSED, 1, 1, 4, false), true, NULL);
    CU_ASSERT_EQUAL(kind(p, "n0"), GW_OFFER_ROLLOUT);  /* it goes on */
    CU_ASSERT_EQUAL(kind(p, "n1"), GW_OFFER_BASELINE); /* nobody new starts */
    CU_ASSERT_EQUAL(gw_policy_admit(p, m_rel.sha256, "n0", &age, NULL, NULL), GW_ADMIT_SERVE);
    CU_ASSERT_EQUAL(gw_policy_admit(p, m_rel.sha256, "n1", &age, NULL, NULL), GW_ADMIT_REFUSE);
    set_doc(p, doc(4, FERRY_ROLLOUT_RUNNING, 1, 1, 4, false), true, NULL);
    CU_ASSERT_EQUAL(kind(p, "n1"), GW_OFFER_ROLLOUT);
    gw_policy_free(p);
}

static void rate_cap_lets_k_nodes_start_a_minute(void)
{
    struct gw_policy *p = make(true, false);
    struct ferry_rollout_doc *d = doc(1, FERRY_ROLLOUT_RUNNING, 1, 1, 5, false);
    d->rate_per_min = 2;
    set_doc(p, d, true, NULL);
    CU_ASSERT_EQUAL(offer(p, "n0", WALL, MONO).kind, GW_OFFER_ROLLOUT);
    CU_ASSERT_EQUAL(offer(p, "n1", WALL, MONO + 1000).kind, GW_OFFER_ROLLOUT);
    CU_ASSERT_EQUAL(offer(p, "n2", WALL, MONO + 2000).kind, GW_OFFER_BASELINE);
    CU_ASSERT_EQUAL(gw_policy_stats(p)->capped, 1);
    /* Asking again is no new start: n0 keeps its offer. */
    CU_ASSERT_EQUAL(offer(p, "n0", WALL, MONO + 3000).kind, GW_OFFER_ROLLOUT);
    int64_t wall_at;
    uint64_t mono_at;
    gw_policy_next(p, WALL, MONO + 3000, &wall_at, &mono_at);
    CU_ASSERT_EQUAL(mono_at, MONO + 60000);
    struct gw_policy_effects fx = {0};
    gw_policy_tick(p, WALL, MONO + 59999, &fx);
    CU_ASSERT_FALSE(notified(&fx, "fw"));
    gw_policy_tick(p, WALL, MONO + 60000, &fx);
    CU_ASSERT_TRUE(notified(&fx, "fw"));
    CU_ASSERT_EQUAL(offer(p, "n2", WALL, MONO + 60000).kind, GW_OFFER_ROLLOUT);
    CU_ASSERT_EQUAL(offer(p, "n3", WALL, MONO + 60001).kind, GW_OFFER_BASELINE);
    gw_policy_free(p);
}

static void closed_window_offers_with_a_hold(void)
{
    struct gw_policy *p = make(true, false);
    set_doc(p, doc(1, FERRY_ROLLOUT_RUNNING, 1, 1, 4, true), true, NULL);
    /* Friday 08:00 UTC: the window (Mon-Fri 01:00-04:00) opens Monday 01:00. */
    struct gw_offer o = offer(p, "n1", WALL, MONO);
    CU_ASSERT_EQUAL(o.kind, GW_OFFER_ROLLOUT);
    CU_ASSERT_EQUAL(o.hold_s, GW_POLICY_HALT_HOLD_S); /* more than a day away */
    int64_t monday = WALL + 2 * 86400 + 17 * 3600;    /* Monday 01:00 */
    o = offer(p, "n1", monday - 3600, MONO);
    CU_ASSERT_EQUAL(o.hold_s, 3600);
    o = offer(p, "n0", monday - 3600, MONO); /* no window: installs whenever */
    CU_ASSERT_EQUAL(o.hold_s, 0);
    int64_t wall_at;
    uint64_t mono_at;
    gw_policy_next(p, monday - 3600, MONO, &wall_at, &mono_at);
    CU_ASSERT_EQUAL(wall_at, monday);
    struct gw_policy_effects fx = {0};
    gw_policy_tick(p, monday - 10, MONO, &fx);
    gw_policy_tick(p, monday, MONO, &fx); /* it opens: observers hear of it */
    CU_ASSERT_TRUE(notified(&fx, "fw"));
    CU_ASSERT_EQUAL(offer(p, "n1", monday, MONO).hold_s, 0);
    gw_policy_free(p);
}

/* ---- halts -------------------------------------------------------------------------------------
 */

static void own_failures_halt_and_revert_those_that_installed(void)
{
    struct gw_policy *p = make(true, false);
    struct gw_policy_effects fx = {0};
    gw_policy_link(p, false, &fx); /* the uplink is cut */
    set_doc(p, doc(1, FERRY_ROLLOUT_RUNNING, 1, 1, 8, false), true, NULL);
    for (int i = 0; i < 6; i++) /* n0..n5 start */
        CU_ASSERT_EQUAL(kind(p, (char[4]){'n', (char)('0' + i), 0}), GW_OFFER_ROLLOUT);
    record(p, "n0", "fw-2", FERRY_STATE_SUCCESS, &fx);
    record(p, "n1", "fw-2", FERRY_STATE_FAILED, &fx);
    record(p, "n2", "fw-2", FERRY_STATE_DOWNLOADING, &fx);
    record(p, "n3", "fw-other", FERRY_STATE_FAILED, &fx); /* another release: not counted */
    record(p, "n5", "fw-2", FERRY_STATE_INSTALLING, &fx);
    CU_ASSERT_FALSE(fx.report);
    record(p, "n4", "fw-2", FERRY_STATE_ROLLED_BACK, &fx);
    /* 2 of 3 final failed: above 10 % of at least 3. */
    CU_ASSERT_TRUE(fx.report);
    CU_ASSERT_TRUE(notified(&fx, "fw"));
    struct ferry_rollout_report rep;
    gw_policy_report(p, "gw1", WALL, &rep);
    CU_ASSERT_EQUAL(rep.n, 1);
    CU_ASSERT_TRUE(rep.items[0].halted);
    CU_ASSERT_TRUE(rep.items[0].offline);
    CU_ASSERT_EQUAL(rep.items[0].finals, 3);
    CU_ASSERT_EQUAL(rep.items[0].failed, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(rep.items[0].reason, "2 of 3"));
    /* Installed: revert. Under way: kept from installing, blocks stalled.
     * Failed, or never started: the baseline. */
    CU_ASSERT_EQUAL(kind(p, "n0"), GW_OFFER_REVERT);
    CU_ASSERT_EQUAL(kind(p, "n5"), GW_OFFER_REVERT);
    struct gw_offer o = offer(p, "n2", WALL, MONO);
    CU_ASSERT_EQUAL(o.kind, GW_OFFER_ROLLOUT);
    CU_ASSERT_EQUAL(o.hold_s, GW_POLICY_HALT_HOLD_S);
    CU_ASSERT_EQUAL(kind(p, "n1"), GW_OFFER_BASELINE);
    CU_ASSERT_EQUAL(kind(p, "n7"), GW_OFFER_BASELINE);
    uint32_t age = 0;
    char why[96];
    CU_ASSERT_EQUAL(gw_policy_admit(p, m_rel.sha256, "n2", &age, why, NULL), GW_ADMIT_STALL);
    CU_ASSERT_EQUAL(age, GW_POLICY_STALL_S);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "halted"));
    CU_ASSERT_EQUAL(gw_policy_admit(p, m_rel.sha256, NULL, &age, why, NULL), GW_ADMIT_STALL);
    CU_ASSERT_EQUAL(gw_policy_admit(p, m_rev.sha256, "n0", &age, why, NULL), GW_ADMIT_SERVE);
    /* Back online: it says so again. */
    memset(&fx, 0, sizeof(fx));
    gw_policy_link(p, true, &fx);
    CU_ASSERT_TRUE(fx.report);
    /* The cloud's next revision (same resume) keeps the halt... */
    set_doc(p, doc(2, FERRY_ROLLOUT_RUNNING, 1, 1, 8, false), true, NULL);
    CU_ASSERT_EQUAL(kind(p, "n0"), GW_OFFER_REVERT);
    /* ...until the operator retries (resume 1): the halt goes, counts restart,
     * and the stalled download goes on. */
    struct ferry_rollout_doc *d = doc(3, FERRY_ROLLOUT_RUNNING, 1, 1, 8, false);
    d->resume = 1;
    memset(&fx, 0, sizeof(fx));
    set_doc(p, d, true, &fx);
    CU_ASSERT_TRUE(fx.report);
    CU_ASSERT_EQUAL(gw_policy_admit(p, m_rel.sha256, "n2", &age, why, NULL), GW_ADMIT_SERVE);
    CU_ASSERT_EQUAL(offer(p, "n2", WALL, MONO).hold_s, 0);
    gw_policy_report(p, "gw1", WALL, &rep);
    CU_ASSERT_FALSE(rep.items[0].halted);
    gw_policy_free(p);
}

static void the_clouds_halt_and_cancel(void)
{
    struct gw_policy *p = make(true, false);
    struct ferry_rollout_doc *d = doc(1, FERRY_ROLLOUT_HALTED, 1, 1, 6, false);
    d->targets[0].state = FERRY_STATE_SUCCESS; /* what the cloud saw */
    d->targets[1].state = FERRY_STATE_DEFERRED;
    set_doc(p, d, false, NULL);
    /* The revert artifact is not cached yet: keep the release it runs. */
    CU_ASSERT_EQUAL(kind(p, "n0"), GW_OFFER_ROLLOUT);
    CU_ASSERT_EQUAL(offer(p, "n0", WALL, MONO).hold_s, 0);
    struct gw_policy_effects fx = {0};
    gw_policy_cached(p, m_rev.sha256, true, &fx);
    CU_ASSERT_TRUE(notified(&fx, "fw"));
    CU_ASSERT_EQUAL(kind(p, "n0"), GW_OFFER_REVERT);
    CU_ASSERT_EQUAL(offer(p, "n1", WALL, MONO).hold_s, GW_POLICY_HALT_HOLD_S);
    /* Cancelled: no revert; downloads end. */
    d = doc(2, FERRY_ROLLOUT_CANCELLED, 1, 1, 6, false);
    d->targets[0].state = FERRY_STATE_SUCCESS;
    d->targets[1].state = FERRY_STATE_DOWNLOADING;
    set_doc(p, d, true, NULL);
    struct gw_offer o = offer(p, "n0", WALL, MONO);
    CU_ASSERT_EQUAL(o.kind, GW_OFFER_ROLLOUT);
    CU_ASSERT_EQUAL(o.hold_s, 0);
    CU_ASSERT_EQUAL(offer(p, "n1", WALL, MONO).hold_s, GW_POLICY_HALT_HOLD_S);
    CU_ASSERT_EQUAL(kind(p, "n2"), GW_OFFER_BASELINE);
    uint32_t age;
    CU_ASSERT_EQUAL(gw_policy_admit(p, m_rel.sha256, "n1", &age, NULL, NULL), GW_ADMIT_REFUSE);
    CU_ASSERT_EQUAL(gw_policy_admit(p, m_rel.sha256, NULL, &age, NULL, NULL), GW_ADMIT_REFUSE);
    /* A cancelled rollout's artifacts need no fetching. */
    const struct ferry_manifest *rels[4];
    CU_ASSERT_EQUAL(gw_policy_rollout_releases(p, rels, 4), 0);
    gw_policy_free(p);
}

static void restore_takes_back_a_halt_across_a_restart(void)
{
    struct gw_policy *p = make(true, false);
    set_doc(p, doc(5, FERRY_ROLLOUT_RUNNING, 1, 1, 4, false), true, NULL);
    struct ferry_rollout_report rep;
    memset(&rep, 0, sizeof(rep));
    rep.n = 2;
    rep.items[0] = (struct ferry_rollout_report_item){
        .rollout = 4, .revision = 5, .resume = 0, .halted = true, .finals = 3, .failed = 3};
    snprintf(rep.items[0].product, sizeof(rep.items[0].product), "fw");
    rep.items[1] = rep.items[0];
    snprintf(rep.items[1].product, sizeof(rep.items[1].product), "nothing-here");
    CU_ASSERT_EQUAL(kind(p, "n0"), GW_OFFER_ROLLOUT);
    gw_policy_restore(p, &rep);
    CU_ASSERT_EQUAL(offer(p, "n0", WALL, MONO).hold_s, GW_POLICY_HALT_HOLD_S);
    CU_ASSERT_EQUAL(kind(p, "n1"), GW_OFFER_BASELINE);
    /* A halt of an older resume is history. */
    struct gw_policy *q = make(true, false);
    struct ferry_rollout_doc *d = doc(5, FERRY_ROLLOUT_RUNNING, 1, 1, 4, false);
    d->resume = 2;
    set_doc(q, d, true, NULL);
    gw_policy_restore(q, &rep);
    CU_ASSERT_EQUAL(kind(q, "n1"), GW_OFFER_ROLLOUT);
    gw_policy_free(q);
    gw_policy_free(p);
}

static void descriptions_change_only_when_they_do(void)
{
    struct gw_policy *p = make(true, false);
    struct ferry_nodeinfo ni;
    memset(&ni, 0, sizeof(ni));
    snprintf(ni.node, sizeof(ni.node), "n0");
    snprintf(ni.product, sizeof(ni.product), "fw");
    snprintf(ni.hw_model, sizeof(ni.hw_model), "m1");
    bool changed = false;
    CU_ASSERT_EQUAL(gw_policy_describe(p, &ni, &changed), FERRY_OK);
    CU_ASSERT_TRUE(changed);
    CU_ASSERT_EQUAL(gw_policy_describe(p, &ni, &changed), FERRY_OK);
    CU_ASSERT_FALSE(changed);
    CU_ASSERT_FATAL(ferry_nodeinfo_set_tag(&ni, "ring", "canary", NULL) == FERRY_OK);
    CU_ASSERT_EQUAL(gw_policy_describe(p, &ni, &changed), FERRY_OK);
    CU_ASSERT_TRUE(changed);
    gw_policy_free(p);
}

/* ---- the trust's verdicts on a rollout's release -------------------------------------- */

/* A trust with a timestamp role (root r, releases k, timestamps t). */
struct trust_world {
    struct test_key r, k, t;
    struct ferry_trust *trust;
    uint64_t ts_version;
    uint8_t digest[FERRY_SHA256_LEN]; /* of the rollout envelope's signed manifest */
};

static void trust_world_init(struct trust_world *w)
{
    memset(w, 0, sizeof(*w));
    test_key_init(&w->r, 61);
    test_key_init(&w->k, 62);
    test_key_init(&w->t, 63);
    struct ferry_root root;
    size_t blen = 0, len = 0;
    test_root_init(&root, 1);
    test_root_add(&root, &w->r, FERRY_ROLE_ROOT);
    test_root_add(&root, &w->k, FERRY_ROLE_RELEASE);
    test_root_add(&root, &w->t, FERRY_ROLE_TIMESTAMP);
    char *body = test_root_body(&root, &blen);
    char *doc = test_signed_doc(body, blen, &len, 1, &w->r);
    CU_ASSERT_FATAL(ferry_trust_new((const uint8_t *)doc, len, 4, &w->trust, NULL) == FERRY_OK);
    free(body);
    free(doc);
}

static void trust_world_free(struct trust_world *w)
{
    ferry_trust_free(w->trust);
    test_key_free(&w->r);
    test_key_free(&w->k);
    test_key_free(&w->t);
}

/* The next timestamp of "fw": the rollout's release current or not, and
 * withdrawn or not. */
static void fw_timestamp(struct trust_world *w, bool current, bool withdrawn)
{
    struct ferry_timestamp ts;
    test_ts_init(&ts, "fw", ++w->ts_version, WALL - 10, 86400);
    if (current)
        test_ts_current(&ts, m_rel.release_id, m_rel.seq, w->digest);
    if (withdrawn)
        snprintf(ts.withdrawn[ts.nwithdrawn++], sizeof(ts.withdrawn[0]), "%s", m_rel.release_id);
    size_t len = 0;
    char *doc = test_ts_doc(&ts, &w->t, &len);
    bool changed = false;
    CU_ASSERT_EQUAL_FATAL(ferry_trust_update_timestamp(w->trust, (const uint8_t *)doc, len, WALL,
                                                       300, false, &changed, NULL),
                          FERRY_OK);
    free(doc);
}

/* A running rollout over two waves, open of them open, whose release
 * envelope is signed by w's release key (w->digest set from it). */
static struct ferry_rollout_doc *signed_doc(struct trust_world *w, uint64_t revision, uint32_t open)
{
    struct ferry_rollout_doc *d = doc(revision, FERRY_ROLLOUT_RUNNING, 2, open, 4, false);
    free(d->release);
    d->release =
        (uint8_t *)test_release_env(&w->k, "fw", m_rel.release_id, m_rel.seq, &d->release_len);
    struct ferry_envelope *e = NULL;
    CU_ASSERT_FATAL(ferry_envelope_parse(d->release, d->release_len, &e, NULL) == FERRY_OK);
    ferry_sha256(e->manifest, e->manifest_len, w->digest);
    ferry_envelope_free(e);
    return d;
}

static bool rollout_release_fetched(struct gw_policy *p)
{
    const struct ferry_manifest *rels[4];
    size_t n = gw_policy_rollout_releases(p, rels, 4);
    for (size_t i = 0; i < n; i++)
        if (memcmp(rels[i]->sha256, m_rel.sha256, FERRY_SHA256_LEN) == 0)
            return true;
    return false;
}

/* A fresh timestamp naming the release: offered as usual. Named no more
 * (stale): fetched, not offered. Withdrawn: neither fetched nor offered,
 * also to a target that started, its blocks are refused, and a wave that
 * opens after the withdrawal is not offered it either. */
static void a_withdrawn_rollout_release_is_neither_fetched_nor_offered(void)
{
    struct trust_world w;
    trust_world_init(&w);
    struct gw_policy *p = make(true, false);
    set_doc(p, signed_doc(&w, 1, 1), true, NULL);

    struct gw_policy_effects fx = {0};
    char why[GW_POLICY_WHY_MAX];
    fw_timestamp(&w, true, false);
    /* The revert is named nowhere: stale, which this test leaves alone. */
    CU_ASSERT_TRUE(gw_policy_trust(p, "fw", w.trust, WALL, &fx, why));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "release fw-2 is offered"));
    CU_ASSERT_EQUAL(kind(p, "n0"), GW_OFFER_ROLLOUT); /* wave 0: open */
    CU_ASSERT_EQUAL(kind(p, "n1"), GW_OFFER_BASELINE);
    uint32_t age = 0;
    CU_ASSERT_EQUAL(gw_policy_admit(p, m_rel.sha256, "n0", &age, NULL, NULL), GW_ADMIT_SERVE);
    CU_ASSERT_TRUE(rollout_release_fetched(p));

    /* Stale: kept and fetched (a fresh timestamp may name it), not offered. */
    fw_timestamp(&w, false, false);
    CU_ASSERT_TRUE(gw_policy_trust(p, "fw", w.trust, WALL, &fx, why));
    CU_ASSERT_TRUE(notified(&fx, "fw"));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "fetched, not offered"));
    CU_ASSERT_EQUAL(kind(p, "n0"), GW_OFFER_BASELINE);
    CU_ASSERT_EQUAL(kind(p, "n2"), GW_OFFER_BASELINE);
    CU_ASSERT_TRUE(rollout_release_fetched(p));
    CU_ASSERT_TRUE(gw_policy_wants(p, m_rel.sha256));

    /* Withdrawn. */
    struct gw_policy_effects fx2 = {0};
    fw_timestamp(&w, false, true);
    CU_ASSERT_TRUE(gw_policy_trust(p, "fw", w.trust, WALL, &fx2, why));
    CU_ASSERT_TRUE(notified(&fx2, "fw"));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "withdrawn: neither fetched nor offered"));
    CU_ASSERT_FALSE(rollout_release_fetched(p));
    CU_ASSERT_FALSE(gw_policy_wants(p, m_rel.sha256));
    CU_ASSERT_EQUAL(kind(p, "n0"), GW_OFFER_BASELINE);
    char reason[96];
    CU_ASSERT_EQUAL(gw_policy_admit(p, m_rel.sha256, "n0", &age, reason, NULL), GW_ADMIT_REFUSE);
    CU_ASSERT_PTR_NOT_NULL(strstr(reason, "withdrawn"));
    /* Unchanged verdict: nothing to say. */
    CU_ASSERT_FALSE(gw_policy_trust(p, "fw", w.trust, WALL, &fx2, why));

    /* The next wave opens (a new revision): still withdrawn, not offered. */
    set_doc(p, signed_doc(&w, 2, 2), true, NULL);
    CU_ASSERT_EQUAL(kind(p, "n1"), GW_OFFER_BASELINE);
    CU_ASSERT_FALSE(rollout_release_fetched(p));
    CU_ASSERT_FALSE(gw_policy_trust(p, "fw", w.trust, WALL, &fx2, why));
    CU_ASSERT_EQUAL(kind(p, "n1"), GW_OFFER_BASELINE);
    CU_ASSERT_EQUAL(kind(p, "n3"), GW_OFFER_BASELINE);
    gw_policy_free(p);
    trust_world_free(&w);
}

/* A halted rollout whose revert is withdrawn: its installed targets are not
 * offered the revert, and the revert is not fetched. */
static void a_withdrawn_revert_is_not_offered(void)
{
    struct trust_world w;
    trust_world_init(&w);
    struct gw_policy *p = make(true, false);
    struct ferry_rollout_doc *d = doc(1, FERRY_ROLLOUT_HALTED, 1, 1, 4, false);
    free(d->revert);
    d->revert =
        (uint8_t *)test_release_env(&w.k, "fw", m_rev.release_id, m_rev.seq, &d->revert_len);
    d->targets[0].state = FERRY_STATE_SUCCESS;
    set_doc(p, d, true, NULL);
    CU_ASSERT_EQUAL(kind(p, "n0"), GW_OFFER_REVERT); /* no timestamp role verdict yet */
    struct ferry_timestamp ts;
    test_ts_init(&ts, "fw", ++w.ts_version, WALL - 10, 86400);
    snprintf(ts.withdrawn[ts.nwithdrawn++], sizeof(ts.withdrawn[0]), "%s", m_rev.release_id);
    size_t len = 0;
    char *tdoc = test_ts_doc(&ts, &w.t, &len);
    bool changed = false;
    CU_ASSERT_EQUAL_FATAL(ferry_trust_update_timestamp(w.trust, (const uint8_t *)tdoc, len, WALL,
                                                       300, false, &changed, NULL),
                          FERRY_OK);
    free(tdoc);
    struct gw_policy_effects fx = {0};
    char why[GW_POLICY_WHY_MAX];
    CU_ASSERT_TRUE(gw_policy_trust(p, "fw", w.trust, WALL, &fx, why));
    CU_ASSERT_EQUAL(kind(p, "n0"), GW_OFFER_BASELINE); /* the release is stale, the revert gone */
    CU_ASSERT_FALSE(gw_policy_wants(p, m_rev.sha256));
    uint32_t age = 0;
    CU_ASSERT_EQUAL(gw_policy_admit(p, m_rev.sha256, "n0", &age, NULL, NULL), GW_ADMIT_REFUSE);
    gw_policy_free(p);
    trust_world_free(&w);
}

const char *const ferry_suite_name = "gw_policy";
const struct ferry_test_case ferry_tests[] = {
    {"baseline_is_the_cached_current_else_the_cached_previous",
     baseline_is_the_cached_current_else_the_cached_previous},
    {"only_open_waves_are_offered_the_release", only_open_waves_are_offered_the_release},
    {"scheduled_and_paused", scheduled_and_paused},
    {"rate_cap_lets_k_nodes_start_a_minute", rate_cap_lets_k_nodes_start_a_minute},
    {"closed_window_offers_with_a_hold", closed_window_offers_with_a_hold},
    {"own_failures_halt_and_revert_those_that_installed",
     own_failures_halt_and_revert_those_that_installed},
    {"the_clouds_halt_and_cancel", the_clouds_halt_and_cancel},
    {"restore_takes_back_a_halt_across_a_restart", restore_takes_back_a_halt_across_a_restart},
    {"descriptions_change_only_when_they_do", descriptions_change_only_when_they_do},
    {"a_withdrawn_rollout_release_is_neither_fetched_nor_offered",
     a_withdrawn_rollout_release_is_neither_fetched_nor_offered},
    {"a_withdrawn_revert_is_not_offered", a_withdrawn_revert_is_not_offered},
    {NULL, NULL},
};
