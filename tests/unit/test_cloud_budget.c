/* How serve shares its streaming among gateways (cloud_budget.h), with
 * made-up times: turns in round robin, the newest request only, a rate per
 * gateway, a bounded number of gateways. */
#include "cunit_main.h"

#include "cloud_budget.h"

#include <stdio.h>
#include <string.h>

#define CHUNK 65536u

static struct ferry_stream_req req(uint8_t art, uint64_t first_chunk, uint32_t count)
{
    struct ferry_stream_req r;
    memset(&r, 0, sizeof(r));
    memset(r.sha256, art, sizeof(r.sha256));
    r.offset = first_chunk * CHUNK;
    r.count = count;
    r.chunk = CHUNK;
    return r;
}

static struct cloud_budget *budget(uint64_t rate, uint64_t burst, uint32_t quantum, size_t max)
{
    struct cloud_budget_opts o = {
        .rate = rate, .burst = burst, .quantum = quantum, .max_gateways = max};
    struct cloud_budget *b = NULL;
    CU_ASSERT_EQUAL_FATAL(cloud_budget_new(&o, &b, NULL), FERRY_OK);
    return b;
}

static void ask(struct cloud_budget *b, const char *gw, struct ferry_stream_req r, uint64_t now)
{
    CU_ASSERT_EQUAL(cloud_budget_request(b, gw, &r, now, NULL), FERRY_OK);
}

/* Two gateways asking for 32 chunks each take turns of 4. */
static void gateways_take_turns(void)
{
    struct cloud_budget *b = budget(0, 0, 4, 16);
    ask(b, "gw-a", req(1, 0, 32), 0);
    ask(b, "gw-b", req(2, 0, 32), 0);
    struct cloud_turn t;
    uint64_t wake = 0;
    char order[64] = "";
    uint64_t next_a = 0;
    for (int i = 0; i < 16; i++) {
        CU_ASSERT_FATAL(cloud_budget_next(b, 0, &t, &wake));
        CU_ASSERT_EQUAL(t.req.count, 4);
        strcat(order, t.gateway[3] == 'a' ? "a" : "b");
        if (t.gateway[3] == 'a') {
            CU_ASSERT_EQUAL(t.req.offset, next_a);
            next_a += 4 * CHUNK;
        }
    }
    CU_ASSERT_STRING_EQUAL(order, "abababababababab");
    CU_ASSERT_FALSE(cloud_budget_next(b, 0, &t, &wake));
    CU_ASSERT_EQUAL(wake, CLOUD_BUDGET_NEVER);
    CU_ASSERT_EQUAL(cloud_budget_waiting(b), 0);
    cloud_budget_free(b);
}

/* A gateway keeps several requests out (its window): they are served in
 * order, each chunk once. */
static void pipelined_requests_are_served_in_order(void)
{
    struct cloud_budget *b = budget(0, 0, 4, 16);
    ask(b, "gw-a", req(1, 0, 16), 0);
    ask(b, "gw-a", req(1, 16, 8), 0);
    ask(b, "gw-a", req(1, 24, 8), 0);
    struct cloud_turn t;
    uint64_t wake = 0, next = 0;
    while (cloud_budget_next(b, 0, &t, &wake)) {
        CU_ASSERT_EQUAL(t.req.offset, next * CHUNK);
        next += t.req.count;
    }
    CU_ASSERT_EQUAL(next, 32);
    cloud_budget_free(b);
}

/* A gateway flooding requests gets no more than its turns: only its
 * newest window's worth waits, and the other gateway is served in
 * between. */
static void a_flood_of_requests_buys_one_request(void)
{
    struct cloud_budget *b = budget(0, 0, 4, 16);
    ask(b, "gw-quiet", req(2, 0, 8), 0);
    for (int i = 0; i < 1000; i++)
        ask(b, "gw-loud", req(1, (uint64_t)i, 32), 0);
    struct cloud_turn t;
    uint64_t wake = 0, loud_chunks = 0, quiet_chunks = 0;
    while (cloud_budget_next(b, 0, &t, &wake)) {
        if (strcmp(t.gateway, "gw-loud") == 0) {
            CU_ASSERT(t.req.offset >= 999 * (uint64_t)CHUNK);
            loud_chunks += t.req.count;
        } else {
            quiet_chunks += t.req.count;
        }
    }
    CU_ASSERT_EQUAL(loud_chunks, 32);
    CU_ASSERT_EQUAL(quiet_chunks, 8);
    cloud_budget_free(b);
}

/* 1 MiB a second with a 2 MiB burst: 32 chunks at once, then 16 a second. */
static void rate_bounds_a_gateway(void)
{
    struct cloud_budget *b = budget(UINT64_C(1) << 20, UINT64_C(2) << 20, 32, 16);
    struct cloud_turn t;
    uint64_t wake = 0, sent = 0, now = 1000;
    ask(b, "gw-a", req(1, 0, 32), now);
    while (cloud_budget_next(b, now, &t, &wake))
        sent += t.req.count;
    CU_ASSERT_EQUAL(sent, 32);
    ask(b, "gw-a", req(1, 32, 32), now);
    CU_ASSERT_FALSE(cloud_budget_next(b, now, &t, &wake));
    CU_ASSERT_EQUAL(wake, now + 63); /* 64 KiB at 1 MiB/s: 62.5 ms, rounded up */
    now += 1000;
    sent = 0;
    while (cloud_budget_next(b, now, &t, &wake))
        sent += t.req.count;
    CU_ASSERT_EQUAL(sent, 16);
    /* Over ten seconds of asking, about ten times as much, no more. */
    for (int i = 0; i < 100; i++) {
        now += 100;
        ask(b, "gw-a", req(1, 64, 32), now);
        while (cloud_budget_next(b, now, &t, &wake))
            sent += t.req.count;
    }
    CU_ASSERT(sent >= 16 + 150 && sent <= 16 + 161);
    cloud_budget_free(b);
}

/* What the client could not send goes back in front, and its tokens back;
 * unless the artifact ended or a newer request came. */
static void unsent_chunks_come_back(void)
{
    struct cloud_budget *b = budget(UINT64_C(1) << 20, UINT64_C(2) << 20, 8, 16);
    struct cloud_turn t;
    uint64_t wake = 0;
    ask(b, "gw-a", req(1, 0, 16), 0);
    CU_ASSERT_FATAL(cloud_budget_next(b, 0, &t, &wake));
    CU_ASSERT_EQUAL(t.req.count, 8);
    cloud_budget_unsent(b, &t, 3, false); /* 5 not sent */
    CU_ASSERT_FATAL(cloud_budget_next(b, 0, &t, &wake));
    CU_ASSERT_EQUAL(t.req.offset, 3 * (uint64_t)CHUNK);
    CU_ASSERT_EQUAL(t.req.count, 5);
    CU_ASSERT_FATAL(cloud_budget_next(b, 0, &t, &wake));
    CU_ASSERT_EQUAL(t.req.offset, 8 * (uint64_t)CHUNK);
    CU_ASSERT_EQUAL(t.req.count, 8);
    /* 3 + 5 + 8 chunks spent: the burst's 32 pay for 16 more. */
    cloud_budget_unsent(b, &t, 0, true); /* the artifact ended: nothing back */
    CU_ASSERT_FALSE(cloud_budget_next(b, 0, &t, &wake));
    ask(b, "gw-a", req(1, 50, 32), 0);
    uint64_t paid = 0;
    while (cloud_budget_next(b, 0, &t, &wake))
        paid += t.req.count;
    CU_ASSERT_EQUAL(paid, 32 - 3 - 5); /* the 8 of the ended turn came back */
    cloud_budget_free(b);
    b = budget(UINT64_C(1) << 20, UINT64_C(2) << 20, 8, 16);
    /* Back in front of what was asked since. */
    ask(b, "gw-a", req(1, 100, 16), 0);
    CU_ASSERT_FATAL(cloud_budget_next(b, 0, &t, &wake));
    CU_ASSERT_EQUAL(t.req.count, 8);
    ask(b, "gw-a", req(1, 200, 2), 0);
    cloud_budget_unsent(b, &t, 0, false);
    uint64_t offsets[4] = {0}, n = 0;
    while (n < 4 && cloud_budget_next(b, 0, &t, &wake))
        offsets[n++] = t.req.offset / CHUNK;
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_EQUAL(offsets[0], 100);
    CU_ASSERT_EQUAL(offsets[1], 108);
    CU_ASSERT_EQUAL(offsets[2], 200);
    cloud_budget_free(b);
}

static void gateways_are_bounded(void)
{
    struct cloud_budget *b = budget(0, 0, 4, 2);
    ask(b, "gw-a", req(1, 0, 4), 0);
    ask(b, "gw-b", req(1, 0, 4), 0);
    struct ferry_stream_req r = req(1, 0, 4);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(cloud_budget_request(b, "gw-c", &r, 0, &d), FERRY_E_BUSY);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "gw-c"));
    struct cloud_turn t;
    uint64_t wake = 0;
    CU_ASSERT_TRUE(cloud_budget_next(b, 0, &t, &wake)); /* gw-a is served and idle */
    ask(b, "gw-c", r, 0);
    CU_ASSERT_EQUAL(cloud_budget_waiting(b), 2);
    struct cloud_budget_opts bad = {.rate = 1, .burst = 100, .quantum = 1, .max_gateways = 1};
    CU_ASSERT_EQUAL(cloud_budget_new(&bad, &b, NULL), FERRY_E_INVALID_ARG);
    cloud_budget_free(b);
}

const char *const ferry_suite_name = "cloud_budget";
const struct ferry_test_case ferry_tests[] = {
    {"gateways_take_turns", gateways_take_turns},
    {"pipelined_requests_are_served_in_order", pipelined_requests_are_served_in_order},
    {"a_flood_of_requests_buys_one_request", a_flood_of_requests_buys_one_request},
    {"rate_bounds_a_gateway", rate_bounds_a_gateway},
    {"unsent_chunks_come_back", unsent_chunks_come_back},
    {"gateways_are_bounded", gateways_are_bounded},
    {NULL, NULL},
};
