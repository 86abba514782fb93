/* The gateway's hold on installs (Ferry-Hold), in the edge's FSM: a node
 * outside its rollout window downloads, reports deferred, and installs once
 * the hold is lifted or runs out. */
#include "cunit_main.h"
#include "test_keys.h"

#include "edge_fsm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IN_WINDOW 1700004000 /* inside test_manifest_sample()'s own window */
#define ART_LEN   3000

struct world {
    struct test_key key;
    struct ferry_keyring *kr;
    struct edge_fsm *f;
    struct edge_clock clk;
    struct edge_actions out;
    uint8_t art[ART_LEN];
    uint8_t sha[FERRY_SHA256_LEN];
    struct ferry_manifest m;
};

static void world_init(struct world *w, bool await_hold)
{
    memset(w, 0, sizeof(*w));
    test_key_init(&w->key, 7);
    w->kr = test_keyring_of(&w->key, false);
    struct edge_fsm_config cfg = {
        .node_id = "node-7",
        .product = "meter",
        .hw_model = "mx-100",
        .hw_revision = "A",
        .keyring = w->kr,
        .max_image_size = 1u << 20,
        .block_size = 1024,
        .trial_attempts = 1,
        .has_busy_cmd = true,
        .busy_retry_ms = 5000,
        .checkpoint_bytes = 8192,
        .progress_ms = 5000,
        .retry_min_ms = 1000,
        .retry_max_ms = 60000,
        .seed = 42,
        .await_hold = await_hold,
    };
    CU_ASSERT_EQUAL_FATAL(edge_fsm_new(&cfg, &w->f, NULL), FERRY_OK);
    w->clk.wall = IN_WINDOW;
    w->clk.mono_ms = 1000000;
    for (size_t i = 0; i < ART_LEN; i++)
        w->art[i] = (uint8_t)(i * 7 + 3);
    ferry_sha256(w->art, ART_LEN, w->sha);
    test_manifest_sample(&w->m, w->key.kid, w->sha, ART_LEN);
}

static void world_free(struct world *w)
{
    edge_fsm_free(w->f);
    ferry_keyring_free(w->kr);
    test_key_free(&w->key);
}

static const struct edge_action *find(const struct world *w, enum edge_act_kind kind)
{
    for (size_t i = 0; i < w->out.n; i++)
        if (w->out.v[i].kind == kind)
            return &w->out.v[i];
    return NULL;
}

static const struct ferry_status *status_of(const struct world *w, enum ferry_state s)
{
    for (size_t i = 0; i < w->out.n; i++)
        if (w->out.v[i].kind == EDGE_ACT_STATUS && w->out.v[i].status.state == s)
            return &w->out.v[i].status;
    return NULL;
}

/* Runs from a confirmed old image through the download of the sample
 * release; the last batch is the one the download ended with. */
static void download(struct world *w)
{
    struct edge_boot_state st;
    uint8_t old[FERRY_SHA256_LEN];
    memset(old, 0x5a, sizeof(old));
    struct edge_image img;
    memset(&img, 0, sizeof(img));
    img.seq = 10;
    img.size = 4096;
    memcpy(img.sha256, old, sizeof(old));
    snprintf(img.version, sizeof(img.version), "1.0.0");
    edge_boot_factory(&st);
    CU_ASSERT_EQUAL_FATAL(edge_boot_adopt(&st, EDGE_SLOT_A, &img, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_boot_confirm(&st, EDGE_SLOT_A, NULL), FERRY_OK);
    struct edge_fsm_boot b = {.before = st};
    edge_boot_decide(&st, &b.after, &b.booted);
    edge_fsm_start(w->f, &w->clk, &b, NULL, &w->out);
    size_t len = 0;
    char *env = test_envelope_of(&w->key, &w->m, &len);
    edge_fsm_manifest(w->f, &w->clk, (const uint8_t *)env, len, &w->out);
    free(env);
    /* The state machine keeps a window of requests out: answer them oldest
     * first, collecting those each answer adds. */
    struct edge_action pend[64];
    size_t npend = 0;
    for (;;) {
        for (size_t i = 0; i < w->out.n; i++)
            if (w->out.v[i].kind == EDGE_ACT_GET_BLOCK) {
                CU_ASSERT_FATAL(npend < sizeof(pend) / sizeof(pend[0]));
                pend[npend++] = w->out.v[i];
            }
        if (npend == 0 || edge_fsm_phase(w->f) != EDGE_PHASE_DOWNLOADING)
            break;
        struct edge_action get = pend[0];
        memmove(pend, pend + 1, (npend - 1) * sizeof(pend[0]));
        npend--;
        uint64_t off = get.off;
        size_t n = ART_LEN - off < get.len ? ART_LEN - off : get.len;
        struct edge_block blk = {.req = get.req,
                                 .code = 205,
                                 .has_block = true,
                                 .num = (uint32_t)(off / get.len),
                                 .szx = 6,
                                 .more = off + n < ART_LEN,
                                 .data = w->art + off,
                                 .len = n,
                                 .etag = w->sha,
                                 .etag_len = 8,
                                 .has_size2 = true,
                                 .size2 = ART_LEN};
        edge_fsm_block(w->f, &w->clk, &blk, &w->out);
    }
    CU_ASSERT_EQUAL_FATAL(edge_fsm_phase(w->f), EDGE_PHASE_GATE);
}

static void hold(struct world *w, uint32_t seconds)
{
    edge_fsm_hold(w->f, &w->clk, seconds, &w->out);
}

static void a_hold_defers_the_install_until_lifted(void)
{
    struct world w;
    world_init(&w, true);
    hold(&w, 7200); /* the answer to the first manifest GET */
    download(&w);
    /* Verified, then deferred: no busy check, no install. */
    const struct ferry_status *st = status_of(&w, FERRY_STATE_DEFERRED);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_PTR_NOT_NULL(strstr(st->message, "holds the install for 7200 s"));
    CU_ASSERT_PTR_NULL(find(&w, EDGE_ACT_RUN_BUSY));
    const struct edge_action *t = find(&w, EDGE_ACT_TIMER);
    uint64_t delay = t ? t->delay_ms : 0;
    CU_ASSERT(delay >= 7200000 && delay <= 7200000 + 60000);
    /* The same hold at the next poll is no news: nothing happens. */
    w.clk.wall += 60;
    hold(&w, 7140);
    CU_ASSERT_EQUAL(w.out.n, 0);
    /* The window opens: the gateway lifts the hold, the gate goes on. */
    w.clk.wall += 60;
    hold(&w, 0);
    CU_ASSERT_PTR_NOT_NULL(find(&w, EDGE_ACT_RUN_BUSY));
    edge_fsm_busy(w.f, &w.clk, false, &w.out);
    CU_ASSERT_PTR_NOT_NULL(status_of(&w, FERRY_STATE_INSTALLING));
    world_free(&w);
}

static void a_hold_that_runs_out_lets_it_install(void)
{
    struct world w;
    world_init(&w, true);
    hold(&w, 600);
    download(&w);
    CU_ASSERT_PTR_NOT_NULL(status_of(&w, FERRY_STATE_DEFERRED));
    w.clk.wall += 300;
    edge_fsm_timer(w.f, &w.clk, &w.out); /* early: still held, no new record */
    CU_ASSERT_PTR_NULL(find(&w, EDGE_ACT_RUN_BUSY));
    CU_ASSERT_PTR_NULL(status_of(&w, FERRY_STATE_DEFERRED));
    w.clk.wall += 301;
    edge_fsm_timer(w.f, &w.clk, &w.out);
    CU_ASSERT_PTR_NOT_NULL(find(&w, EDGE_ACT_RUN_BUSY));
    world_free(&w);
}

/* After a restart the node does not install before the gateway said
 * whether it holds: until then it waits, silently. */
static void it_waits_for_the_gateways_first_answer(void)
{
    struct world w;
    world_init(&w, true);
    download(&w);
    CU_ASSERT_PTR_NULL(find(&w, EDGE_ACT_RUN_BUSY));
    CU_ASSERT_PTR_NULL(status_of(&w, FERRY_STATE_DEFERRED));
    CU_ASSERT_PTR_NOT_NULL(status_of(&w, FERRY_STATE_VERIFYING));
    hold(&w, 0);
    CU_ASSERT_PTR_NOT_NULL(find(&w, EDGE_ACT_RUN_BUSY));
    world_free(&w);
}

/* A hold that arrives while the node waits for a busy device takes over. */
static void a_hold_while_busy(void)
{
    struct world w;
    world_init(&w, true);
    hold(&w, 0);
    download(&w);
    CU_ASSERT_PTR_NOT_NULL(find(&w, EDGE_ACT_RUN_BUSY));
    edge_fsm_busy(w.f, &w.clk, true, &w.out); /* deferred: busy */
    CU_ASSERT_PTR_NOT_NULL(status_of(&w, FERRY_STATE_DEFERRED));
    hold(&w, 3600); /* the rollout halted */
    const struct ferry_status *st = status_of(&w, FERRY_STATE_DEFERRED);
    CU_ASSERT_PTR_NOT_NULL_FATAL(st);
    CU_ASSERT_PTR_NOT_NULL(strstr(st->message, "holds the install"));
    w.clk.wall += 10;
    edge_fsm_timer(w.f, &w.clk, &w.out); /* the busy retry: still held */
    CU_ASSERT_PTR_NULL(find(&w, EDGE_ACT_RUN_BUSY));
    world_free(&w);
}

/* Without await_hold (tests, tools) the FSM behaves as it always did. */
static void without_await_nothing_changes(void)
{
    struct world w;
    world_init(&w, false);
    download(&w);
    CU_ASSERT_PTR_NOT_NULL(find(&w, EDGE_ACT_RUN_BUSY));
    world_free(&w);
}

const char *const ferry_suite_name = "edge_hold";
const struct ferry_test_case ferry_tests[] = {
    {"a_hold_defers_the_install_until_lifted", a_hold_defers_the_install_until_lifted},
    {"a_hold_that_runs_out_lets_it_install", a_hold_that_runs_out_lets_it_install},
    {"it_waits_for_the_gateways_first_answer", it_waits_for_the_gateways_first_answer},
    {"a_hold_while_busy", a_hold_while_busy},
    {"without_await_nothing_changes", without_await_nothing_changes},
    {NULL, NULL},
};
