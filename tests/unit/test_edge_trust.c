/* The node's state machine under trust metadata (edge_fsm.h, "Trust"):
 * withdrawn and stale releases, withdrawal before and after the install
 * began, a gate waiting for a fresh timestamp, a key revoked mid-download,
 * the seq step and lifetime caps, and the key id kept in the job record. */
#include "cunit_main.h"
#include "test_meta.h"

#include "edge_fsm.h"
#include "ferry_trust.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE      "node-7"
#define IN_WINDOW INT64_C(1700004000) /* inside test_manifest_sample()'s window */
#define ART_LEN   3000
#define OLD_SEQ   10
#define DAY       86400

struct world {
    struct test_key k1, k2, r1, t1;
    struct ferry_trust *trust;
    struct edge_fsm_config cfg;
    struct edge_fsm *f;
    struct edge_clock clk;
    struct edge_actions out;
    uint8_t art[ART_LEN];
    uint8_t sha[FERRY_SHA256_LEN];
    struct ferry_manifest m; /* signed by k1, seq 42 */
    char *env;
    size_t env_len;
    uint8_t digest[FERRY_SHA256_LEN]; /* of m's signed bytes */
    uint64_t ts_version;
    struct edge_action pend[128]; /* block requests not answered yet, oldest first */
    size_t npend;
};

static char *root_doc(struct world *w, uint64_t v, bool with_k2, bool revoke_k1, uint64_t max_step,
                      size_t *len)
{
    struct ferry_root r;
    size_t blen = 0;
    test_root_init(&r, v);
    test_root_add(&r, &w->r1, FERRY_ROLE_ROOT);
    if (!revoke_k1)
        test_root_add(&r, &w->k1, FERRY_ROLE_RELEASE);
    if (with_k2 || revoke_k1)
        test_root_add(&r, &w->k2, FERRY_ROLE_RELEASE);
    if (revoke_k1)
        memcpy(r.revoked[r.nrevoked++], w->k1.kid, sizeof(w->k1.kid));
    test_root_add(&r, &w->t1, FERRY_ROLE_TIMESTAMP);
    r.max_seq_step = max_step;
    char *body = test_root_body(&r, &blen);
    char *doc = test_signed_doc(body, blen, len, 1, &w->r1);
    free(body);
    return doc;
}

static void digest_of(const char *env, size_t len, uint8_t out[FERRY_SHA256_LEN])
{
    struct ferry_envelope *e = NULL;
    CU_ASSERT_FATAL(ferry_envelope_parse((const uint8_t *)env, len, &e, NULL) == FERRY_OK);
    ferry_sha256(e->manifest, e->manifest_len, out);
    ferry_envelope_free(e);
}

static void world_init(struct world *w)
{
    memset(w, 0, sizeof(*w));
    test_key_init(&w->k1, 41);
    test_key_init(&w->k2, 42);
    test_key_init(&w->r1, 43);
    test_key_init(&w->t1, 44);
    size_t len = 0;
    char *doc = root_doc(w, 1, false, false, 0, &len);
    CU_ASSERT_FATAL(ferry_trust_new((const uint8_t *)doc, len, 1, &w->trust, NULL) == FERRY_OK);
    free(doc);
    w->cfg = (struct edge_fsm_config){
        .node_id = NODE,
        .product = "meter",
        .hw_model = "mx-100",
        .hw_revision = "A",
        .keyring = ferry_trust_release_keys(w->trust),
        .trust = w->trust,
        .max_seq_step = 1000,
        .max_lifetime = 30 * DAY,
        .max_image_size = 1 << 20,
        .block_size = 1024,
        .trial_attempts = 1,
        .has_busy_cmd = true,
        .busy_retry_ms = 5000,
        .checkpoint_bytes = 8192,
        .progress_ms = 5000,
        .retry_min_ms = 1000,
        .retry_max_ms = 60000,
        .seed = 7,
    };
    CU_ASSERT_EQUAL_FATAL(edge_fsm_new(&w->cfg, &w->f, NULL), FERRY_OK);
    w->clk.wall = IN_WINDOW;
    w->clk.mono_ms = 1000000;
    for (size_t i = 0; i < ART_LEN; i++)
        w->art[i] = (uint8_t)(i * 7 + 3);
    ferry_sha256(w->art, ART_LEN, w->sha);
    test_manifest_sample(&w->m, w->k1.kid, w->sha, ART_LEN);
    w->env = test_envelope_of(&w->k1, &w->m, &w->env_len);
    digest_of(w->env, w->env_len, w->digest);
    w->ts_version = 100;
}

static void world_free(struct world *w)
{
    edge_fsm_free(w->f);
    ferry_trust_free(w->trust);
    free(w->env);
    test_key_free(&w->k1);
    test_key_free(&w->k2);
    test_key_free(&w->r1);
    test_key_free(&w->t1);
}

static size_t count(const struct world *w, enum edge_act_kind kind)
{
    size_t n = 0;
    for (size_t i = 0; i < w->out.n; i++)
        n += w->out.v[i].kind == kind;
    return n;
}

static bool has_status(const struct world *w, enum ferry_state state)
{
    for (size_t i = 0; i < w->out.n; i++) {
        if (w->out.v[i].kind == EDGE_ACT_STATUS && w->out.v[i].status.state == state)
            return true;
    }
    return false;
}

/* The first record of a state in the last batch; fatal when missing. */
static const struct ferry_status *status_of(const struct world *w, enum ferry_state state)
{
    for (size_t i = 0; i < w->out.n; i++) {
        if (w->out.v[i].kind == EDGE_ACT_STATUS && w->out.v[i].status.state == state)
            return &w->out.v[i].status;
    }
    static const struct ferry_status none;
    CU_FAIL_FATAL("expected status record missing");
    return &none;
}

/* The first action of a kind in the last batch; fatal when missing. */
static const struct edge_action *action(const struct world *w, enum edge_act_kind kind)
{
    for (size_t i = 0; i < w->out.n; i++)
        if (w->out.v[i].kind == kind)
            return &w->out.v[i];
    static const struct edge_action none;
    CU_FAIL_FATAL("expected action missing");
    return &none;
}

/* Slot A runs seq 10, confirmed. */
static void start(struct world *w)
{
    struct edge_boot_state st;
    struct edge_image img;
    memset(&img, 0, sizeof(img));
    img.seq = OLD_SEQ;
    img.size = 4096;
    memset(img.sha256, 0x5a, sizeof(img.sha256));
    snprintf(img.version, sizeof(img.version), "1.0.0");
    edge_boot_factory(&st);
    CU_ASSERT_EQUAL_FATAL(edge_boot_adopt(&st, EDGE_SLOT_A, &img, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_boot_confirm(&st, EDGE_SLOT_A, NULL), FERRY_OK);
    struct edge_fsm_boot b = {.before = st};
    edge_boot_decide(&st, &b.after, &b.booted);
    edge_fsm_start(w->f, &w->clk, &b, NULL, &w->out);
}

static void offer(struct world *w, const char *env, size_t len)
{
    edge_fsm_manifest(w->f, &w->clk, (const uint8_t *)env, len, &w->out);
}

/* A timestamp for "meter" at the next version: current `cur` (NULL: none),
 * withdrawing `gone` (NULL: none), valid a day from `issued`. */
static void timestamp(struct world *w, const uint8_t *cur, const char *gone, int64_t issued)
{
    struct ferry_timestamp ts;
    test_ts_init(&ts, "meter", ++w->ts_version, issued, DAY);
    if (cur)
        test_ts_current(&ts, w->m.release_id, w->m.seq, cur);
    if (gone)
        strcpy(ts.withdrawn[ts.nwithdrawn++], gone);
    size_t len = 0;
    char *doc = test_ts_doc(&ts, &w->t1, &len);
    bool changed = false;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(ferry_trust_update_timestamp(w->trust, (const uint8_t *)doc, len,
                                                       w->clk.wall, 300, false, &changed, &d),
                          FERRY_OK);
    free(doc);
    edge_fsm_trust_changed(w->f, &w->clk, &w->out);
}

static void new_root(struct world *w, uint64_t v, bool with_k2, bool revoke_k1, uint64_t max_step)
{
    size_t len = 0;
    char *doc = root_doc(w, v, with_k2, revoke_k1, max_step, &len);
    bool changed = false;
    CU_ASSERT_EQUAL_FATAL(
        ferry_trust_update_root(w->trust, (const uint8_t *)doc, len, &changed, NULL), FERRY_OK);
    free(doc);
    edge_fsm_trust_changed(w->f, &w->clk, &w->out);
}

/* Answers GET_BLOCKs, oldest first (the FSM keeps a window of them out),
 * until none is left or `stop_after` blocks were answered. */
static void download(struct world *w, size_t stop_after)
{
    for (size_t n = 0; n < stop_after; n++) {
        for (size_t i = 0; i < w->out.n; i++)
            if (w->out.v[i].kind == EDGE_ACT_GET_BLOCK) {
                CU_ASSERT_FATAL(w->npend < sizeof(w->pend) / sizeof(w->pend[0]));
                w->pend[w->npend++] = w->out.v[i];
            }
        if (w->npend == 0)
            return;
        struct edge_action get = w->pend[0];
        memmove(w->pend, w->pend + 1, (w->npend - 1) * sizeof(w->pend[0]));
        w->npend--;
        uint64_t off = get.off;
        size_t len = ART_LEN - off < get.len ? ART_LEN - off : get.len;
        struct edge_block b = {.req = get.req,
                               .code = 205,
                               .has_block = true,
                               .num = (uint32_t)(off / get.len),
                               .szx = 6,
                               .more = off + len < ART_LEN,
                               .data = w->art + off,
                               .len = len};
        edge_fsm_block(w->f, &w->clk, &b, &w->out);
        if (edge_fsm_phase(w->f) != EDGE_PHASE_DOWNLOADING) {
            w->npend = 0; /* the download is over: the rest are never answered */
            return;
        }
    }
}

static void stale_metadata_is_no_verdict_and_asks_for_more(void)
{
    struct world w;
    world_init(&w);
    start(&w);
    offer(&w, w.env, w.env_len);
    /* No timestamp yet: nothing recorded, nothing remembered; ask. */
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_STATUS), 0);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_FETCH_META), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(action(&w, EDGE_ACT_FETCH_META)->status.message, "meter"));
    offer(&w, w.env, w.env_len);
    CU_ASSERT_EQUAL(w.out.n, 0); /* asked less than 10 s ago */
    w.clk.mono_ms += EDGE_FSM_META_RETRY_MS;
    offer(&w, w.env, w.env_len);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_FETCH_META), 1);

    /* The freeze attack: a fresh timestamp names another release current;
     * this one is not installed. */
    uint8_t other[FERRY_SHA256_LEN];
    memset(other, 0x77, sizeof(other));
    timestamp(&w, other, NULL, IN_WINDOW - 10);
    offer(&w, w.env, w.env_len);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_STATUS), 0);
    CU_ASSERT_EQUAL(edge_fsm_phase(w.f), EDGE_PHASE_IDLE);

    /* Once the timestamp names it, it goes. */
    timestamp(&w, w.digest, NULL, IN_WINDOW - 10);
    offer(&w, w.env, w.env_len);
    CU_ASSERT_TRUE(has_status(&w, FERRY_STATE_AVAILABLE));
    CU_ASSERT_EQUAL(edge_fsm_phase(w.f), EDGE_PHASE_DOWNLOADING);
    CU_ASSERT_STRING_EQUAL(edge_fsm_saved(w.f)->job.kid, w.k1.kid);
    world_free(&w);
}

static void a_withdrawn_release_is_rejected_once(void)
{
    struct world w;
    world_init(&w);
    start(&w);
    timestamp(&w, NULL, w.m.release_id, IN_WINDOW - 10);
    offer(&w, w.env, w.env_len);
    const struct ferry_status *st = status_of(&w, FERRY_STATE_REJECTED);
    CU_ASSERT_EQUAL(st->error, FERRY_E_WITHDRAWN);
    CU_ASSERT_STRING_EQUAL(st->release_id, w.m.release_id);
    offer(&w, w.env, w.env_len);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_STATUS), 0);
    world_free(&w);
}

static void a_withdrawal_stops_a_download_and_a_waiting_install(void)
{
    /* Mid-download. */
    struct world w;
    world_init(&w);
    start(&w);
    timestamp(&w, w.digest, NULL, IN_WINDOW - 10);
    offer(&w, w.env, w.env_len);
    download(&w, 1);
    CU_ASSERT_EQUAL_FATAL(edge_fsm_phase(w.f), EDGE_PHASE_DOWNLOADING);
    timestamp(&w, NULL, w.m.release_id, IN_WINDOW - 5);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_ABORT), 1);
    const struct ferry_status *st = status_of(&w, FERRY_STATE_FAILED);
    CU_ASSERT_EQUAL(st->error, FERRY_E_WITHDRAWN);
    CU_ASSERT_EQUAL(edge_fsm_phase(w.f), EDGE_PHASE_IDLE);
    CU_ASSERT_EQUAL(edge_fsm_saved(w.f)->job.outcome, FERRY_STATE_FAILED);
    world_free(&w);

    /* Downloaded, deferred at the gate because the device is busy. */
    world_init(&w);
    start(&w);
    timestamp(&w, w.digest, NULL, IN_WINDOW - 10);
    offer(&w, w.env, w.env_len);
    download(&w, 100);
    CU_ASSERT_EQUAL_FATAL(count(&w, EDGE_ACT_RUN_BUSY), 1);
    edge_fsm_busy(w.f, &w.clk, true, &w.out);
    CU_ASSERT_TRUE(has_status(&w, FERRY_STATE_DEFERRED));
    timestamp(&w, NULL, w.m.release_id, IN_WINDOW - 5);
    st = status_of(&w, FERRY_STATE_FAILED);
    CU_ASSERT_EQUAL(st->error, FERRY_E_WITHDRAWN);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_TRIAL), 0);
    /* The retry timer finds nothing to do. */
    edge_fsm_timer(w.f, &w.clk, &w.out);
    CU_ASSERT_EQUAL(w.out.n, 0);
    world_free(&w);
}

/* Once the trial is set, a withdrawal lets the health check decide. */
static void an_install_under_way_finishes_on_its_own_terms(void)
{
    struct world w;
    world_init(&w);
    start(&w);
    timestamp(&w, w.digest, NULL, IN_WINDOW - 10);
    offer(&w, w.env, w.env_len);
    download(&w, 100);
    edge_fsm_busy(w.f, &w.clk, false, &w.out);
    CU_ASSERT_EQUAL_FATAL(count(&w, EDGE_ACT_REBOOT), 1);
    timestamp(&w, NULL, w.m.release_id, IN_WINDOW - 5);
    CU_ASSERT_EQUAL(w.out.n, 0);
    edge_fsm_booted(w.f, &w.clk, EDGE_SLOT_B, &w.out);
    timestamp(&w, NULL, w.m.release_id, IN_WINDOW - 4);
    CU_ASSERT_EQUAL(w.out.n, 0);
    edge_fsm_health(w.f, &w.clk, true, NULL, &w.out);
    CU_ASSERT_TRUE(has_status(&w, FERRY_STATE_SUCCESS));
    world_free(&w);
}

/* The timestamp expires during the download: the gate waits for a fresh
 * one, asks for it, and goes on when it comes. */
static void the_gate_waits_for_fresh_metadata(void)
{
    struct world w;
    world_init(&w);
    start(&w);
    timestamp(&w, w.digest, NULL, IN_WINDOW - DAY + 60);
    offer(&w, w.env, w.env_len);
    download(&w, 1);
    w.clk.wall += 120; /* the timestamp expired meanwhile */
    w.clk.mono_ms += 120000;
    download(&w, 100);
    const struct ferry_status *st = status_of(&w, FERRY_STATE_DEFERRED);
    CU_ASSERT_PTR_NOT_NULL(strstr(st->message, "fresh trust metadata"));
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_FETCH_META), 1);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_RUN_BUSY), 0);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_TIMER), 1);
    /* Its timer looks again: still stale, no second deferred record. */
    w.clk.mono_ms += 60000;
    edge_fsm_timer(w.f, &w.clk, &w.out);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_STATUS), 0);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_FETCH_META), 1);
    timestamp(&w, w.digest, NULL, w.clk.wall - 10);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_RUN_BUSY), 1);
    world_free(&w);

    /* The manifest expires before fresh metadata comes: failed, expired. */
    world_init(&w);
    start(&w);
    timestamp(&w, w.digest, NULL, IN_WINDOW - DAY + 60);
    offer(&w, w.env, w.env_len);
    w.clk.wall = w.m.expires_at;
    download(&w, 100);
    st = status_of(&w, FERRY_STATE_FAILED);
    CU_ASSERT_EQUAL(st->error, FERRY_E_EXPIRED);
    world_free(&w);
}

/* A root that revokes the signing key stops a download; a root that adds a
 * key makes an envelope refused before acceptable. */
static void roots_revoke_and_add_release_keys(void)
{
    struct world w;
    world_init(&w);
    start(&w);
    timestamp(&w, w.digest, NULL, IN_WINDOW - 10);
    offer(&w, w.env, w.env_len);
    download(&w, 1);
    new_root(&w, 2, true, true, 0);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_ABORT), 1);
    const struct ferry_status *st = status_of(&w, FERRY_STATE_FAILED);
    CU_ASSERT_EQUAL(st->error, FERRY_E_REVOKED_KEY);
    /* Offered again, the release the job ended with is passed over (its
     * final record went out); it is not taken up again. */
    offer(&w, w.env, w.env_len);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_STATUS), 0);
    CU_ASSERT_EQUAL(edge_fsm_phase(w.f), EDGE_PHASE_IDLE);
    world_free(&w);

    /* k2 is unknown at first: rejected, and metadata asked for. Root v2
     * adds it: the same envelope is judged anew and accepted. */
    world_init(&w);
    start(&w);
    struct ferry_manifest m2 = w.m;
    memcpy(m2.key_id, w.k2.kid, sizeof(w.k2.kid));
    size_t len = 0;
    char *env2 = test_envelope_of(&w.k2, &m2, &len);
    uint8_t d2[FERRY_SHA256_LEN];
    digest_of(env2, len, d2);
    timestamp(&w, d2, NULL, IN_WINDOW - 10);
    offer(&w, env2, len);
    st = status_of(&w, FERRY_STATE_REJECTED);
    CU_ASSERT_EQUAL(st->error, FERRY_E_UNKNOWN_KEY);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_FETCH_META), 1);
    offer(&w, env2, len);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_STATUS), 0);
    new_root(&w, 2, true, false, 0);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_SAVE), 1); /* the forgotten rejections */
    offer(&w, env2, len);
    CU_ASSERT_TRUE(has_status(&w, FERRY_STATE_AVAILABLE));
    free(env2);
    world_free(&w);
}

/* The installed seq is 10: 42 is 32 above it. */
static void the_seq_step_and_the_lifetime_are_capped(void)
{
    struct world w;
    world_init(&w);
    w.cfg.max_seq_step = 31;
    edge_fsm_free(w.f);
    CU_ASSERT_EQUAL_FATAL(edge_fsm_new(&w.cfg, &w.f, NULL), FERRY_OK);
    start(&w);
    timestamp(&w, w.digest, NULL, IN_WINDOW - 10);
    offer(&w, w.env, w.env_len);
    const struct ferry_status *st = status_of(&w, FERRY_STATE_REJECTED);
    CU_ASSERT_EQUAL(st->error, FERRY_E_SEQ_JUMP);
    CU_ASSERT_STRING_EQUAL(st->release_id, w.m.release_id);
    /* The operator raises the step in the root: the release goes. */
    new_root(&w, 2, false, false, 1000);
    offer(&w, w.env, w.env_len);
    CU_ASSERT_TRUE(has_status(&w, FERRY_STATE_AVAILABLE));
    world_free(&w);

    world_init(&w);
    w.cfg.max_lifetime = 30 * DAY - 1;
    edge_fsm_free(w.f);
    CU_ASSERT_EQUAL_FATAL(edge_fsm_new(&w.cfg, &w.f, NULL), FERRY_OK);
    start(&w);
    timestamp(&w, w.digest, NULL, IN_WINDOW - 10);
    offer(&w, w.env, w.env_len);
    st = status_of(&w, FERRY_STATE_REJECTED);
    CU_ASSERT_EQUAL(st->error, FERRY_E_LIFETIME);
    world_free(&w);
}

static void the_job_record_keeps_the_key_id(void)
{
    struct edge_fsm_saved s, back;
    memset(&s, 0, sizeof(s));
    s.job.phase = EDGE_JOB_DOWNLOADING;
    s.job.img.size = 100;
    s.job.img.seq = 3;
    snprintf(s.job.img.version, sizeof(s.job.img.version), "1.2.3");
    snprintf(s.job.kid, sizeof(s.job.kid), "0123456789abcdef");
    uint8_t buf[EDGE_FSM_SAVED_LEN];
    CU_ASSERT_EQUAL_FATAL(edge_fsm_saved_encode(&s, buf, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_fsm_saved_decode(buf, sizeof(buf), &back, NULL), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(back.job.kid, "0123456789abcdef");
    /* A record from before the key id was kept reads as "" (unknown). */
    s.job.kid[0] = '\0';
    memset(s.job.kid, 0, sizeof(s.job.kid));
    CU_ASSERT_EQUAL_FATAL(edge_fsm_saved_encode(&s, buf, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_fsm_saved_decode(buf, sizeof(buf), &back, NULL), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(back.job.kid, "");
    CU_ASSERT_STRING_EQUAL(edge_act_name(EDGE_ACT_FETCH_META), "fetch-meta");
}

const char *const ferry_suite_name = "edge_trust";
const struct ferry_test_case ferry_tests[] = {
    {"stale_metadata_is_no_verdict_and_asks_for_more",
     stale_metadata_is_no_verdict_and_asks_for_more},
    {"a_withdrawn_release_is_rejected_once", a_withdrawn_release_is_rejected_once},
    {"a_withdrawal_stops_a_download_and_a_waiting_install",
     a_withdrawal_stops_a_download_and_a_waiting_install},
    {"an_install_under_way_finishes_on_its_own_terms",
     an_install_under_way_finishes_on_its_own_terms},
    {"the_gate_waits_for_fresh_metadata", the_gate_waits_for_fresh_metadata},
    {"roots_revoke_and_add_release_keys", roots_revoke_and_add_release_keys},
    {"the_seq_step_and_the_lifetime_are_capped", the_seq_step_and_the_lifetime_are_capped},
    {"the_job_record_keeps_the_key_id", the_job_record_keeps_the_key_id},
    {NULL, NULL},
};
