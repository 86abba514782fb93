/* The link budget, driven in simulated time: nodes with windows of NON
 * requests, lockstep CON nodes, and the checks that the total stays within
 * the budget and that each node gets its share. */
#include "cunit_main.h"

#include "gw_budget.h"

#include <stdio.h>
#include <string.h>

#define BLOCK 1064 /* a 1024-byte block and its headers */

static struct gw_budget *make(uint64_t rate, uint64_t node_rate)
{
    struct gw_budget *b = NULL;
    struct gw_budget_opts o = {.link_rate = rate, .node_rate = node_rate};
    struct ferry_diag d = {{0}};
    enum ferry_err err = gw_budget_new(&o, &b, &d);
    if (err != FERRY_OK)
        fprintf(stderr, "%s\n", d.msg);
    CU_ASSERT_FATAL(err == FERRY_OK);
    return b;
}

static const char *name(unsigned n)
{
    static char names[4][16];
    static unsigned next;
    char *s = names[next++ % 4];
    snprintf(s, 16, "node-%u", n);
    return s;
}

/* A small world: nodes of two kinds asking for blocks.
 *   window > 0: keeps `window` NON requests in flight; a new one each time
 *               an answer is sent (or dropped);
 *   window = 0: lockstep CON: one request, the next when the answer came,
 *               or after retry_ms when refused. */
#define MAX_NODES  16
#define MAX_TICKET 4096

struct sim {
    struct gw_budget *b;
    unsigned n;
    unsigned window[MAX_NODES];
    uint64_t bytes[MAX_NODES]; /* sent to each */
    uint64_t refused[MAX_NODES], dropped[MAX_NODES];
    uint64_t next_con[MAX_NODES];
    unsigned inflight[MAX_NODES];
    uint64_t tickets[MAX_TICKET];
    unsigned owner[MAX_TICKET];
    size_t ntickets;
};

static void ask(struct sim *s, unsigned i, uint64_t now)
{
    uint64_t t = 0, retry = 0;
    enum gw_budget_verdict v =
        gw_budget_ask(s->b, name(i), BLOCK, s->window[i] > 0, now, &t, &retry);
    if (v == GW_BUDGET_SEND) {
        s->bytes[i] += BLOCK;
        if (s->window[i] == 0)
            s->next_con[i] = now + 1; /* a round trip of 1 ms */
    } else if (v == GW_BUDGET_QUEUED) {
        CU_ASSERT_FATAL(s->ntickets < MAX_TICKET);
        s->tickets[s->ntickets] = t;
        s->owner[s->ntickets++] = i;
        s->inflight[i]++;
    } else {
        s->refused[i]++;
        CU_ASSERT(retry >= 1);
        if (s->window[i] == 0)
            s->next_con[i] = now + retry;
    }
}

static unsigned owner_of(struct sim *s, uint64_t ticket)
{
    for (size_t k = 0; k < s->ntickets; k++) {
        if (s->tickets[k] == ticket) {
            unsigned o = s->owner[k];
            s->tickets[k] = s->tickets[--s->ntickets];
            s->owner[k] = s->owner[s->ntickets];
            return o;
        }
    }
    CU_FAIL("an event for a ticket nobody holds");
    return 0;
}

/* Runs the world from t0 to t1, 1 ms at a time. */
static void run(struct sim *s, uint64_t t0, uint64_t t1)
{
    struct gw_budget_event ev[64];
    for (uint64_t now = t0; now < t1; now++) {
        for (unsigned i = 0; i < s->n; i++) {
            if (s->window[i] == 0 && now >= s->next_con[i])
                ask(s, i, now);
            while (s->window[i] > 0 && s->inflight[i] < s->window[i]) {
                size_t before = s->ntickets;
                ask(s, i, now);
                if (s->ntickets == before)
                    break; /* sent at once, or refused: next ms */
            }
        }
        if (gw_budget_next_ms(s->b, now) > now)
            continue;
        size_t n;
        while ((n = gw_budget_poll(s->b, now, ev, 64)) > 0) {
            for (size_t k = 0; k < n; k++) {
                unsigned o = owner_of(s, ev[k].ticket);
                s->inflight[o]--;
                if (ev[k].send)
                    s->bytes[o] += BLOCK;
                else
                    s->dropped[o]++;
            }
        }
    }
}

static uint64_t total(const struct sim *s)
{
    uint64_t t = 0;
    for (unsigned i = 0; i < s->n; i++)
        t += s->bytes[i];
    return t;
}

static void ten_windows_share_the_link_and_stay_within_it(void)
{
    const uint64_t rate = 100000, span = 30000;
    struct sim s = {.b = make(rate, 0), .n = 10};
    for (unsigned i = 0; i < 10; i++)
        s.window[i] = i == 0 ? 32 : 4; /* node 0 asks eight times as much */
    run(&s, 0, span);
    uint64_t t = total(&s);
    /* Within the budget: rate x span plus the link's bucket (200 ms). */
    CU_ASSERT(t <= rate * span / 1000 + rate / 5);
    /* And it is used: at least 95 %. */
    CU_ASSERT(t >= rate * span / 1000 * 95 / 100);
    for (unsigned i = 0; i < 10; i++) {
        /* Each within 10 % of a tenth, the big window included. */
        CU_ASSERT(s.bytes[i] >= t / 10 * 90 / 100 && s.bytes[i] <= t / 10 * 110 / 100);
        if (s.bytes[i] < t / 10 * 90 / 100 || s.bytes[i] > t / 10 * 110 / 100)
            fprintf(stderr, "node %u: %llu of %llu\n", i, (unsigned long long)s.bytes[i],
                    (unsigned long long)t);
    }
    CU_ASSERT_EQUAL(gw_budget_sent_bytes(s.b), t + gw_budget_queued(s.b) * 0);
    gw_budget_free(s.b);
}

static void a_lockstep_node_keeps_its_share_beside_a_big_window(void)
{
    const uint64_t rate = 50000, span = 20000;
    struct sim s = {.b = make(rate, 0), .n = 2};
    s.window[0] = 64; /* NON, a big window */
    s.window[1] = 0;  /* CON, one at a time, retries after Max-Age */
    run(&s, 0, span);
    uint64_t t = total(&s);
    CU_ASSERT(t <= rate * span / 1000 + rate / 5);
    /* The CON node is refused while over its half, but gets it. */
    CU_ASSERT(s.bytes[1] >= t * 40 / 100);
    CU_ASSERT(s.bytes[0] >= t * 40 / 100);
    CU_ASSERT(s.refused[1] > 0);
    gw_budget_free(s.b);
}

static void a_lone_node_gets_the_whole_link_or_its_cap(void)
{
    const uint64_t rate = 80000, span = 10000;
    struct sim s = {.b = make(rate, 0), .n = 1, .window = {8}};
    run(&s, 0, span);
    CU_ASSERT(s.bytes[0] >= rate * span / 1000 * 95 / 100);
    CU_ASSERT(s.bytes[0] <= rate * span / 1000 + rate / 5);
    gw_budget_free(s.b);

    struct sim c = {.b = make(rate, 20000), .n = 1, .window = {8}};
    run(&c, 0, span);
    CU_ASSERT(c.bytes[0] >= 20000 * span / 1000 * 95 / 100);
    CU_ASSERT(c.bytes[0] <= 20000 * span / 1000 + 20000 / 5 + BLOCK);
    gw_budget_free(c.b);
}

/* Capacity a light node leaves unused goes to the others. */
static void unused_share_is_lent(void)
{
    const uint64_t rate = 100000, span = 20000;
    struct sim s = {.b = make(rate, 0), .n = 3};
    s.window[0] = 16;
    s.window[1] = 16;
    s.window[2] = 0; /* lockstep: asks again only after 1 ms, tiny demand */
    run(&s, 0, span);
    uint64_t t = total(&s);
    CU_ASSERT(t >= rate * span / 1000 * 90 / 100);
    CU_ASSERT(t <= rate * span / 1000 + rate / 5);
    gw_budget_free(s.b);
}

static void a_con_request_beyond_the_budget_is_refused_with_a_wait(void)
{
    struct gw_budget *b = make(10240, 0); /* ten blocks a second, bucket of two */
    uint64_t t = 0, retry = 0;
    int sent = 0;
    for (int k = 0; k < 10; k++)
        sent += gw_budget_ask(b, "node-1", 1024, false, 0, &t, &retry) == GW_BUDGET_SEND;
    CU_ASSERT_EQUAL(sent, 2);
    CU_ASSERT_EQUAL(gw_budget_ask(b, "node-1", 1024, false, 0, &t, &retry), GW_BUDGET_REFUSED);
    CU_ASSERT(retry >= 50 && retry <= 150); /* one block at ten a second */
    CU_ASSERT_EQUAL(gw_budget_ask(b, "node-1", 1024, false, retry, &t, &retry), GW_BUDGET_SEND);
    CU_ASSERT_EQUAL(gw_budget_queued(b), 0);
    gw_budget_free(b);
}

static void queues_are_bounded_and_old_answers_dropped(void)
{
    struct gw_budget *b = NULL;
    struct gw_budget_opts o = {
        .link_rate = 1024, .max_queued = 6, .max_queued_per_node = 4, .max_delay_ms = 3000};
    CU_ASSERT_FATAL(gw_budget_new(&o, &b, NULL) == FERRY_OK);
    uint64_t t = 0, retry = 0, tickets[8];
    int queued = 0;
    CU_ASSERT_EQUAL(gw_budget_ask(b, "a", 1024, true, 0, &t, &retry), GW_BUDGET_SEND);
    for (int k = 0; k < 5; k++) {
        enum gw_budget_verdict v = gw_budget_ask(b, "a", 1024, true, 0, &t, &retry);
        if (v == GW_BUDGET_QUEUED)
            tickets[queued++] = t;
        else
            CU_ASSERT_EQUAL(v, GW_BUDGET_REFUSED);
    }
    CU_ASSERT_EQUAL(queued, 4); /* per node */
    for (int k = 0; k < 3; k++)
        if (gw_budget_ask(b, "b", 1024, true, 0, &t, &retry) == GW_BUDGET_QUEUED)
            tickets[queued++] = t;
    CU_ASSERT_EQUAL(queued, 6); /* in all (b's first went at once, lent by the idle link) */
    CU_ASSERT_EQUAL(gw_budget_queued(b), 6);
    /* Cancel one; the rest come out sent or dropped, each exactly once. */
    gw_budget_cancel(b, tickets[2]);
    gw_budget_cancel(b, tickets[2]);
    gw_budget_cancel(b, 12345);
    CU_ASSERT_EQUAL(gw_budget_queued(b), 5);
    struct gw_budget_event ev[8];
    int sent = 0, dropped = 0;
    for (uint64_t now = 1; now <= 10000 && gw_budget_queued(b) > 0; now++) {
        if (gw_budget_next_ms(b, now) > now)
            continue;
        size_t n = gw_budget_poll(b, now, ev, 8);
        for (size_t k = 0; k < n; k++) {
            CU_ASSERT(ev[k].ticket != tickets[2]);
            if (ev[k].send)
                sent++;
            else
                dropped++;
            CU_ASSERT(!ev[k].send || now < 3000);
        }
    }
    CU_ASSERT_EQUAL(sent + dropped, 5);
    CU_ASSERT(sent >= 2 && dropped >= 1); /* a block a second for 3 s */
    CU_ASSERT_EQUAL(gw_budget_next_ms(b, 10000), GW_BUDGET_NEVER);
    gw_budget_free(b);
}

static void quiet_nodes_are_forgotten_and_the_table_is_bounded(void)
{
    struct gw_budget *b = NULL;
    struct gw_budget_opts o = {.link_rate = 100000, .max_nodes = 4, .active_ms = 1000};
    CU_ASSERT_FATAL(gw_budget_new(&o, &b, NULL) == FERRY_OK);
    uint64_t t = 0, retry = 0;
    for (unsigned i = 0; i < 100; i++)
        CU_ASSERT_NOT_EQUAL(gw_budget_ask(b, name(i), 100, false, i, &t, &retry), GW_BUDGET_QUEUED);
    CU_ASSERT_EQUAL(gw_budget_nodes(b), 4);
    /* A second later, the quiet ones go: the share is the whole link again. */
    CU_ASSERT_EQUAL(gw_budget_ask(b, "late", 100, false, 5000, &t, &retry), GW_BUDGET_SEND);
    CU_ASSERT_EQUAL(gw_budget_nodes(b), 1);
    /* Invalid identities are refused. */
    CU_ASSERT_EQUAL(gw_budget_ask(b, "", 100, true, 5000, &t, &retry), GW_BUDGET_REFUSED);
    gw_budget_free(b);
}

static void a_clock_that_goes_back_fills_nothing(void)
{
    struct gw_budget *b = make(10240, 0);
    uint64_t t = 0, retry = 0;
    CU_ASSERT_EQUAL(gw_budget_ask(b, "a", 1024, false, 100000, &t, &retry), GW_BUDGET_SEND);
    CU_ASSERT_EQUAL(gw_budget_ask(b, "a", 1024, false, 100000, &t, &retry), GW_BUDGET_SEND);
    CU_ASSERT_EQUAL(gw_budget_ask(b, "a", 1024, false, 5, &t, &retry), GW_BUDGET_REFUSED);
    /* Forward again: the span since 100000 is filled once, not from 5. */
    CU_ASSERT_EQUAL(gw_budget_ask(b, "a", 1024, false, 100100, &t, &retry), GW_BUDGET_SEND);
    CU_ASSERT_EQUAL(gw_budget_ask(b, "a", 1024, false, 100100, &t, &retry), GW_BUDGET_REFUSED);
    gw_budget_free(b);
}

static void bad_options_are_refused_by_name(void)
{
    struct gw_budget *b = NULL;
    struct ferry_diag d = {{0}};
    struct gw_budget_opts o = {.link_rate = 100};
    CU_ASSERT_EQUAL(gw_budget_new(&o, &b, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "link_rate"));
    o.link_rate = 100000;
    o.node_rate = 200000;
    CU_ASSERT_EQUAL(gw_budget_new(&o, &b, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "node_rate"));
    o.node_rate = 0;
    o.max_queued = 4;
    o.max_queued_per_node = 5;
    CU_ASSERT_EQUAL(gw_budget_new(&o, &b, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "max_queued"));
    CU_ASSERT_PTR_NULL(b);
    gw_budget_free(NULL);
}

const struct ferry_test_case ferry_tests[] = {
    {"ten_windows_share_the_link_and_stay_within_it",
     ten_windows_share_the_link_and_stay_within_it},
    {"a_lockstep_node_keeps_its_share_beside_a_big_window",
     a_lockstep_node_keeps_its_share_beside_a_big_window},
    {"a_lone_node_gets_the_whole_link_or_its_cap", a_lone_node_gets_the_whole_link_or_its_cap},
    {"unused_share_is_lent", unused_share_is_lent},
    {"a_con_request_beyond_the_budget_is_refused_with_a_wait",
     a_con_request_beyond_the_budget_is_refused_with_a_wait},
    {"queues_are_bounded_and_old_answers_dropped", queues_are_bounded_and_old_answers_dropped},
    {"quiet_nodes_are_forgotten_and_the_table_is_bounded",
     quiet_nodes_are_forgotten_and_the_table_is_bounded},
    {"a_clock_that_goes_back_fills_nothing", a_clock_that_goes_back_fills_nothing},
    {"bad_options_are_refused_by_name", bad_options_are_refused_by_name},
    {NULL, NULL},
};

const char *const ferry_suite_name = "gw_budget";
