#include "cunit_main.h"

#include "cloud_http_share.h"

#include <stdio.h>

/* 100 permille: a tenth of the time; burst 1 s. */
static void a_client_within_its_burst_never_waits(void)
{
    struct cloud_http_share s;
    cloud_http_share_init(&s, 100, 1000000);
    CU_ASSERT_EQUAL(cloud_http_share_wait(&s, "10.0.0.1", 0), 0);
    for (int i = 0; i < 10; i++)
        cloud_http_share_charge(&s, "10.0.0.1", 0, 100000); /* 1 s in all */
    CU_ASSERT_EQUAL(cloud_http_share_wait(&s, "10.0.0.1", 0), 0);
    /* A page's pace: 5 ms of reads every 2 s, for an hour. */
    for (uint64_t t = 0; t < 3600000; t += 2000) {
        CU_ASSERT_EQUAL(cloud_http_share_wait(&s, "10.0.0.2", t), 0);
        cloud_http_share_charge(&s, "10.0.0.2", t, 5000);
    }
}

static void past_the_burst_a_client_waits_for_its_debt_to_drain(void)
{
    struct cloud_http_share s;
    cloud_http_share_init(&s, 100, 1000000);
    cloud_http_share_charge(&s, "a", 1000, 1500000); /* 0.5 s past the burst */
    /* 0.5 s of debt drains at 100 us a ms: 5 s */
    CU_ASSERT_EQUAL(cloud_http_share_wait(&s, "a", 1000), 5000);
    CU_ASSERT_EQUAL(cloud_http_share_wait(&s, "a", 3000), 3000);
    CU_ASSERT_EQUAL(cloud_http_share_wait(&s, "a", 6000), 0);
    /* The others are not touched. */
    CU_ASSERT_EQUAL(cloud_http_share_wait(&s, "b", 1000), 0);
    /* A time that goes back drains nothing. */
    CU_ASSERT_EQUAL(cloud_http_share_wait(&s, "a", 0), 5000);
}

static void a_client_reading_back_to_back_gets_its_share(void)
{
    struct cloud_http_share s;
    cloud_http_share_init(&s, 50, 2000000);
    /* Reads of 3 ms each, one after another as soon as allowed, for a
     * minute: the time used is the burst plus 5 % of the minute. */
    uint64_t t = 0, used = 0;
    while (t < 60000) {
        t += cloud_http_share_wait(&s, "poller", t);
        cloud_http_share_charge(&s, "poller", t, 3000);
        used += 3000;
        t += 3;
    }
    uint64_t want = 2000000 + 60000 * 50;
    CU_ASSERT(used >= want - 10000 && used <= want + 10000);
    if (used < want - 10000 || used > want + 10000)
        fprintf(stderr, "\nused %llu us, want about %llu\n", (unsigned long long)used,
                (unsigned long long)want);
}

static void clients_beyond_the_table_take_the_least_indebted_place(void)
{
    struct cloud_http_share s;
    char who[32];
    cloud_http_share_init(&s, 100, 0);
    for (int i = 0; i < CLOUD_HTTP_SHARE_CLIENTS; i++) {
        snprintf(who, sizeof(who), "10.0.0.%d", i);
        cloud_http_share_charge(&s, who, 0, 1000000 + (uint64_t)i);
    }
    CU_ASSERT_EQUAL(s.n, CLOUD_HTTP_SHARE_CLIENTS);
    cloud_http_share_charge(&s, "10.9.9.9", 0, 10);
    CU_ASSERT_EQUAL(s.n, CLOUD_HTTP_SHARE_CLIENTS);
    CU_ASSERT_EQUAL(cloud_http_share_wait(&s, "10.0.0.0", 0), 0); /* forgotten: the least */
    CU_ASSERT(cloud_http_share_wait(&s, "10.0.0.1", 0) > 0);      /* still owing */
    CU_ASSERT(cloud_http_share_wait(&s, "10.9.9.9", 1) == 0);
}

static void huge_costs_and_times_do_not_wrap(void)
{
    struct cloud_http_share s;
    cloud_http_share_init(&s, 5000, 0); /* clamped to 1000 */
    CU_ASSERT_EQUAL(s.permille, 1000);
    cloud_http_share_charge(&s, "x", 0, UINT64_MAX);
    cloud_http_share_charge(&s, "x", 0, UINT64_MAX);
    CU_ASSERT(cloud_http_share_wait(&s, "x", 0) > 0);
    CU_ASSERT_EQUAL(cloud_http_share_wait(&s, "x", UINT64_MAX), 0);
}

const char *const ferry_suite_name = "http_share";
const struct ferry_test_case ferry_tests[] = {
    {"a client within its burst never waits", a_client_within_its_burst_never_waits},
    {"past the burst a client waits for its debt to drain",
     past_the_burst_a_client_waits_for_its_debt_to_drain},
    {"a client reading back to back gets its share", a_client_reading_back_to_back_gets_its_share},
    {"clients beyond the table take the least indebted place",
     clients_beyond_the_table_take_the_least_indebted_place},
    {"huge costs and times do not wrap", huge_costs_and_times_do_not_wrap},
    {NULL, NULL},
};
