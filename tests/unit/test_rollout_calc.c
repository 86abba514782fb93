#include "cunit_main.h"

#include "cloud_rollout_assign.h"
#include "cloud_rollout_calc.h"

#include <stdio.h>
#include <string.h>

#define NOW 1795780800

static const struct cloud_rollout_rules RULES = {
    .success_pct = 95, .min_final = 5, .halt_pct = 10, .soak_s = 1800};

/* A rollout of three waves, running, with wave 1 open since an hour. */
struct world {
    struct cloud_wave_tally w[3];
    struct cloud_rollout_view v;
};

static void world_init(struct world *x)
{
    memset(x, 0, sizeof(*x));
    x->v.state = FERRY_ROLLOUT_RUNNING;
    x->v.nwaves = 3;
    x->v.open_waves = 1;
    x->v.waves = x->w;
    x->w[0].targets = 10;
    x->w[1].targets = 40;
    x->w[2].targets = 50;
    x->w[0].opened_at = NOW - 3600;
}

static struct cloud_decision decide(const struct world *x, int64_t now)
{
    struct cloud_decision d;
    cloud_rollout_decide(&RULES, &x->v, now, &d);
    return d;
}

static void report(struct world *x, unsigned wave, enum ferry_state s, uint64_t n)
{
    x->w[wave].by_state[s] += n;
    if (ferry_state_is_final(s)) {
        x->v.halt.finals += n;
        if (s == FERRY_STATE_FAILED || s == FERRY_STATE_ROLLED_BACK)
            x->v.halt.failed += n;
    }
}

static void gate_needs_finals_then_success_then_soak(void)
{
    struct world x;
    world_init(&x);
    report(&x, 0, FERRY_STATE_DOWNLOADING, 6);
    report(&x, 0, FERRY_STATE_SUCCESS, 4);
    struct cloud_decision d = decide(&x, NOW);
    CU_ASSERT_EQUAL(d.step, CLOUD_STEP_NONE);
    CU_ASSERT_EQUAL(d.wait, CLOUD_WAIT_FINALS);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.reason, "4 of 10 targets final, the gate needs 5"));

    /* Five final, but one of them rejected: 80 % < 95 %. */
    report(&x, 0, FERRY_STATE_REJECTED, 1);
    x.w[0].by_state[FERRY_STATE_DOWNLOADING]--;
    d = decide(&x, NOW);
    CU_ASSERT_EQUAL(d.wait, CLOUD_WAIT_SUCCESS);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.reason, "4 of 5 final states are success (80%)"));

    /* 19 of 20: exactly 95 % passes, but the soak counts from the last success. */
    x.w[0].targets = 20;
    report(&x, 0, FERRY_STATE_SUCCESS, 15);
    x.w[0].last_success_at = NOW - 60;
    d = decide(&x, NOW);
    CU_ASSERT_EQUAL(d.wait, CLOUD_WAIT_SOAK);
    CU_ASSERT_EQUAL(d.wake_at, NOW - 60 + 1800);
    d = decide(&x, NOW - 60 + 1800);
    CU_ASSERT_EQUAL(d.step, CLOUD_STEP_OPEN_WAVE);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.reason, "wave 1: 19 of 20 final states success (95%"));
}

static void small_waves_need_all_their_targets(void)
{
    struct world x;
    world_init(&x);
    x.w[0].targets = 2; /* fewer than min_final */
    report(&x, 0, FERRY_STATE_SUCCESS, 1);
    x.w[0].last_success_at = NOW - 7200;
    CU_ASSERT_EQUAL(decide(&x, NOW).wait, CLOUD_WAIT_FINALS);
    report(&x, 0, FERRY_STATE_SUCCESS, 1);
    CU_ASSERT_EQUAL(decide(&x, NOW).step, CLOUD_STEP_OPEN_WAVE);
}

static void empty_wave_passes_after_the_soak(void)
{
    struct world x;
    world_init(&x);
    x.w[0].targets = 0;
    x.w[0].opened_at = NOW - 100;
    struct cloud_decision d = decide(&x, NOW);
    CU_ASSERT_EQUAL(d.wait, CLOUD_WAIT_SOAK);
    CU_ASSERT_EQUAL(d.wake_at, NOW - 100 + 1800);
    CU_ASSERT_EQUAL(decide(&x, NOW + 1700).step, CLOUD_STEP_OPEN_WAVE);
    /* No target anywhere: wait, do not race through the waves. */
    x.w[1].targets = x.w[2].targets = 0;
    d = decide(&x, NOW + 1700);
    CU_ASSERT_EQUAL(d.wait, CLOUD_WAIT_NO_TARGETS);
}

static void halt_is_more_than_the_share_of_enough_finals(void)
{
    struct world x;
    world_init(&x);
    report(&x, 0, FERRY_STATE_FAILED, 2);
    report(&x, 0, FERRY_STATE_ROLLED_BACK, 1);
    /* 3 of 3 failed, but fewer than min_final: no halt yet. */
    CU_ASSERT_EQUAL(decide(&x, NOW).wait, CLOUD_WAIT_FINALS);
    report(&x, 0, FERRY_STATE_SUCCESS, 2);
    struct cloud_decision d = decide(&x, NOW);
    CU_ASSERT_EQUAL(d.step, CLOUD_STEP_HALT);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.reason, "3 of 5 final states failed or rolled back (60%)"));
    /* Exactly the share is not more than it. */
    struct cloud_halt_tally h = {.finals = 10, .failed = 1};
    CU_ASSERT_FALSE(cloud_rollout_should_halt(&RULES, &h, NULL));
    h.failed = 2;
    CU_ASSERT_TRUE(cloud_rollout_should_halt(&RULES, &h, NULL));
    struct cloud_rollout_rules never = RULES;
    never.halt_pct = 100;
    h.failed = 10;
    CU_ASSERT_FALSE(cloud_rollout_should_halt(&never, &h, NULL));
    /* Paused rollouts halt too; halted ones wait for the operator. */
    x.v.state = FERRY_ROLLOUT_PAUSED;
    CU_ASSERT_EQUAL(decide(&x, NOW).step, CLOUD_STEP_HALT);
    x.v.state = FERRY_ROLLOUT_HALTED;
    CU_ASSERT_EQUAL(decide(&x, NOW).wait, CLOUD_WAIT_HALTED);
    /* After a retry the old finals no longer count. */
    x.v.state = FERRY_ROLLOUT_RUNNING;
    x.v.halt = (struct cloud_halt_tally){0, 0};
    CU_ASSERT_EQUAL(decide(&x, NOW).wait, CLOUD_WAIT_SUCCESS);
}

static void paused_opens_nothing(void)
{
    struct world x;
    world_init(&x);
    report(&x, 0, FERRY_STATE_SUCCESS, 10);
    x.w[0].last_success_at = NOW - 7200;
    x.v.state = FERRY_ROLLOUT_PAUSED;
    CU_ASSERT_EQUAL(decide(&x, NOW).wait, CLOUD_WAIT_PAUSED);
    x.v.state = FERRY_ROLLOUT_RUNNING;
    CU_ASSERT_EQUAL(decide(&x, NOW).step, CLOUD_STEP_OPEN_WAVE);
}

static void completes_when_every_wave_is_open_and_final(void)
{
    struct world x;
    world_init(&x);
    x.v.open_waves = 3;
    report(&x, 0, FERRY_STATE_SUCCESS, 10);
    report(&x, 1, FERRY_STATE_SUCCESS, 40);
    report(&x, 2, FERRY_STATE_SUCCESS, 48);
    report(&x, 2, FERRY_STATE_INSTALLING, 1);
    struct cloud_decision d = decide(&x, NOW);
    CU_ASSERT_EQUAL(d.wait, CLOUD_WAIT_FINISH);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.reason, "2 of 100 targets not final"));
    x.w[2].by_state[FERRY_STATE_INSTALLING]--;
    report(&x, 2, FERRY_STATE_SUCCESS, 1);
    report(&x, 2, FERRY_STATE_REJECTED, 1);
    CU_ASSERT_EQUAL(decide(&x, NOW).step, CLOUD_STEP_COMPLETE);
    x.v.state = FERRY_ROLLOUT_COMPLETED;
    CU_ASSERT_EQUAL(decide(&x, NOW).wait, CLOUD_WAIT_ENDED);
}

static void scheduled_starts_at_its_time(void)
{
    struct world x;
    world_init(&x);
    x.v.state = FERRY_ROLLOUT_SCHEDULED;
    x.v.open_waves = 0;
    x.v.start_at = NOW + 60;
    struct cloud_decision d = decide(&x, NOW);
    CU_ASSERT_EQUAL(d.wait, CLOUD_WAIT_START);
    CU_ASSERT_EQUAL(d.wake_at, NOW + 60);
    CU_ASSERT_EQUAL(decide(&x, NOW + 60).step, CLOUD_STEP_START);
}

static void settle_verdicts(void)
{
    CU_ASSERT_EQUAL(cloud_settle_nodes(0, 0, 0, 0), CLOUD_SETTLE_PENDING);
    CU_ASSERT_EQUAL(cloud_settle_nodes(3, 2, 2, 1), CLOUD_SETTLE_PENDING);
    CU_ASSERT_EQUAL(cloud_settle_nodes(3, 3, 3, 1), CLOUD_SETTLE_SUCCESS);
    CU_ASSERT_EQUAL(cloud_settle_nodes(3, 3, 3, 4), CLOUD_SETTLE_PENDING);
    CU_ASSERT_EQUAL(cloud_settle_nodes(3, 3, 2, 1), CLOUD_SETTLE_UNSUCCESSFUL);
    CU_ASSERT_EQUAL(cloud_settle_rollout(FERRY_ROLLOUT_RUNNING, 3, 3), CLOUD_SETTLE_PENDING);
    CU_ASSERT_EQUAL(cloud_settle_rollout(FERRY_ROLLOUT_PAUSED, 3, 0), CLOUD_SETTLE_PENDING);
    CU_ASSERT_EQUAL(cloud_settle_rollout(FERRY_ROLLOUT_COMPLETED, 3, 3), CLOUD_SETTLE_SUCCESS);
    CU_ASSERT_EQUAL(cloud_settle_rollout(FERRY_ROLLOUT_COMPLETED, 3, 2), CLOUD_SETTLE_UNSUCCESSFUL);
    CU_ASSERT_EQUAL(cloud_settle_rollout(FERRY_ROLLOUT_HALTED, 3, 1), CLOUD_SETTLE_UNSUCCESSFUL);
    CU_ASSERT_EQUAL(cloud_settle_rollout(FERRY_ROLLOUT_CANCELLED, 0, 0), CLOUD_SETTLE_UNSUCCESSFUL);
}

/* ---- assignment ------------------------------------------------------------------------- */

static struct ferry_rollout_plan plan(const char *waves)
{
    struct ferry_rollout_plan p;
    memset(&p, 0, sizeof(p));
    CU_ASSERT_FATAL(ferry_waves_parse(waves, &p, NULL) == FERRY_OK);
    return p;
}

static void buckets_are_stable_and_spread(void)
{
    /* Fixed values (PROTOCOL.md's formula, also computed with Python's
     * hashlib): a change here would move every node of every rollout. */
    CU_ASSERT_EQUAL(cloud_rollout_bucket(1, "node-1"), 9370);
    CU_ASSERT_EQUAL(cloud_rollout_bucket(42, "n01"), 1365);
    CU_ASSERT_NOT_EQUAL(cloud_rollout_bucket(1, "node-1"), cloud_rollout_bucket(2, "node-1"));
    CU_ASSERT_NOT_EQUAL(cloud_rollout_bucket(1, "2node"), cloud_rollout_bucket(12, "node"));
    struct ferry_rollout_plan p = plan("1,10,50,100");
    uint64_t count[4] = {0};
    for (int i = 0; i < 100000; i++) {
        char id[32];
        snprintf(id, sizeof(id), "n%06d", i);
        struct ferry_sel_subject who = {.node = id};
        count[cloud_rollout_wave(&p, 7, &who)]++;
    }
    /* Within half a percent of the 100 000: 1 %, 9 %, 40 %, 50 %. */
    CU_ASSERT(count[0] > 500 && count[0] < 1500);
    CU_ASSERT(count[1] > 8500 && count[1] < 9500);
    CU_ASSERT(count[2] > 39500 && count[2] < 40500);
    CU_ASSERT(count[3] > 49500 && count[3] < 50500);
}

static void groups_come_first_and_late_nodes_move_nobody(void)
{
    struct ferry_rollout_plan p = plan("ring=canary,10,100");
    struct ferry_nodeinfo canary;
    memset(&canary, 0, sizeof(canary));
    CU_ASSERT_FATAL(ferry_nodeinfo_set_tag(&canary, "ring", "canary", NULL) == FERRY_OK);
    unsigned before[200];
    for (int i = 0; i < 200; i++) {
        char id[16];
        snprintf(id, sizeof(id), "a%d", i);
        struct ferry_sel_subject who = {.node = id, .info = i % 20 == 0 ? &canary : NULL};
        before[i] = cloud_rollout_wave(&p, 3, &who);
        CU_ASSERT(i % 20 != 0 || before[i] == 0);
        CU_ASSERT(i % 20 == 0 || before[i] != 0);
    }
    /* A thousand nodes later, the first two hundred are where they were. */
    for (int i = 0; i < 200; i++) {
        char id[16];
        snprintf(id, sizeof(id), "a%d", i);
        struct ferry_sel_subject who = {.node = id, .info = i % 20 == 0 ? &canary : NULL};
        CU_ASSERT_EQUAL(cloud_rollout_wave(&p, 3, &who), before[i]);
    }
}

static void windows_first_match(void)
{
    struct ferry_rollout_plan p = plan("100");
    struct ferry_window_range r = {0x7f, 60, 120};
    CU_ASSERT_FATAL(ferry_window_set(&p.windows[0].w, "UTC", "UTC0", &r, 1, NULL) == FERRY_OK);
    CU_ASSERT_FATAL(ferry_sel_add(&p.windows[0].sel, "site=a", NULL) == FERRY_OK);
    CU_ASSERT_FATAL(ferry_window_set(&p.windows[1].w, "UTC", "UTC0", &r, 1, NULL) == FERRY_OK);
    p.nwindows = 1;
    struct ferry_nodeinfo a;
    memset(&a, 0, sizeof(a));
    CU_ASSERT_FATAL(ferry_nodeinfo_set_tag(&a, "site", "a", NULL) == FERRY_OK);
    struct ferry_sel_subject at_a = {.node = "x", .info = &a}, other = {.node = "y"};
    CU_ASSERT_EQUAL(cloud_rollout_window(&p, &at_a), 0);
    CU_ASSERT_EQUAL(cloud_rollout_window(&p, &other), -1);
    p.nwindows = 2; /* the second has no selection: everyone else */
    CU_ASSERT_EQUAL(cloud_rollout_window(&p, &at_a), 0);
    CU_ASSERT_EQUAL(cloud_rollout_window(&p, &other), 1);
}

const char *const ferry_suite_name = "rollout_calc";
const struct ferry_test_case ferry_tests[] = {
    {"gate_needs_finals_then_success_then_soak", gate_needs_finals_then_success_then_soak},
    {"small_waves_need_all_their_targets", small_waves_need_all_their_targets},
    {"empty_wave_passes_after_the_soak", empty_wave_passes_after_the_soak},
    {"halt_is_more_than_the_share_of_enough_finals", halt_is_more_than_the_share_of_enough_finals},
    {"paused_opens_nothing", paused_opens_nothing},
    {"completes_when_every_wave_is_open_and_final", completes_when_every_wave_is_open_and_final},
    {"scheduled_starts_at_its_time", scheduled_starts_at_its_time},
    {"settle_verdicts", settle_verdicts},
    {"buckets_are_stable_and_spread", buckets_are_stable_and_spread},
    {"groups_come_first_and_late_nodes_move_nobody", groups_come_first_and_late_nodes_move_nobody},
    {"windows_first_match", windows_first_match},
    {NULL, NULL},
};
