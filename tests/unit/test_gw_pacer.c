#include "cunit_main.h"

#include "gw_pacer.h"

#include <string.h>

#define IDLE  5000
#define GRACE 2000

static struct gw_pacer *make(uint32_t cap)
{
    struct gw_pacer *p = NULL;
    struct gw_pacer_opts o = {.max_transfers = cap, .idle_ms = IDLE, .grace_ms = GRACE};
    CU_ASSERT_FATAL(gw_pacer_new(&o, &p, NULL) == FERRY_OK);
    return p;
}

static struct gw_pacer_key key(uint64_t session, uint8_t artifact)
{
    struct gw_pacer_key k;
    memset(&k, 0, sizeof(k));
    k.session = session;
    memset(k.sha256, artifact, sizeof(k.sha256));
    return k;
}

/* gw_pacer_admit() as one value: -1 for FERRY_E_BUSY, else how. */
static int admit(struct gw_pacer *p, uint64_t session, uint8_t artifact, uint64_t now)
{
    struct gw_pacer_key k = key(session, artifact);
    enum gw_pacer_admission how = GW_PACER_STARTED;
    enum ferry_err err = gw_pacer_admit(p, &k, now, &how);
    CU_ASSERT(err == FERRY_OK || err == FERRY_E_BUSY);
    return err == FERRY_OK ? (int)how : -1;
}

static void finish(struct gw_pacer *p, uint64_t session, uint8_t artifact, uint64_t now)
{
    struct gw_pacer_key k = key(session, artifact);
    gw_pacer_finish(p, &k, now);
}

static void cap_two_with_six_sessions_admits_two(void)
{
    struct gw_pacer *p = make(2);
    for (uint64_t s = 1; s <= 6; s++) {
        /* First come, first served. */
        CU_ASSERT_EQUAL(admit(p, s, 0xaa, 100 * s), s <= 2 ? GW_PACER_STARTED : -1);
    }
    CU_ASSERT_EQUAL(gw_pacer_active(p), 2);
    /* The two admitted go on at the cap, block after block; the others wait. */
    for (uint64_t t = 1000; t < 1100; t += 10) {
        CU_ASSERT_EQUAL(admit(p, 1, 0xaa, t), GW_PACER_CONTINUED);
        CU_ASSERT_EQUAL(admit(p, 2, 0xaa, t + 5), GW_PACER_CONTINUED);
        CU_ASSERT_EQUAL(admit(p, 3 + t % 4, 0xaa, t + 5), -1);
    }
    CU_ASSERT_EQUAL(gw_pacer_active(p), 2);
    /* The same node fetching another artifact is another transfer. */
    CU_ASSERT_EQUAL(admit(p, 1, 0xbb, 1100), -1);
    gw_pacer_free(p);
}

static void finishing_frees_a_slot_at_once(void)
{
    struct gw_pacer *p = make(2);
    CU_ASSERT_EQUAL(admit(p, 1, 1, 0), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(admit(p, 2, 1, 0), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(admit(p, 3, 1, 10), -1);
    finish(p, 1, 1, 20);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 1);
    /* The next node does not wait for any timeout. */
    CU_ASSERT_EQUAL(admit(p, 3, 1, 21), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 2);
    CU_ASSERT_EQUAL(admit(p, 4, 1, 22), -1);
    /* Finishing what is not admitted changes nothing. */
    finish(p, 4, 1, 23);
    finish(p, 2, 9, 23);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 2);
    finish(p, 2, 1, 30);
    finish(p, 3, 1, 30);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 0);
    CU_ASSERT_EQUAL(gw_pacer_next_expiry(p), GW_PACER_NO_EXPIRY);
    gw_pacer_free(p);
}

static void a_node_back_after_its_grace_is_counted_again(void)
{
    struct gw_pacer *p = make(1);
    /* A node that downloaded, finished, and comes back after its grace (say
     * to fetch again what its flash lost) is counted like any other. */
    CU_ASSERT_EQUAL(admit(p, 1, 1, 0), GW_PACER_STARTED);
    finish(p, 1, 1, 100);
    CU_ASSERT_EQUAL(admit(p, 2, 1, 200), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(admit(p, 1, 1, 100 + GRACE), -1);
    finish(p, 2, 1, 300 + GRACE);
    CU_ASSERT_EQUAL(admit(p, 1, 1, 400 + GRACE), GW_PACER_STARTED);
    gw_pacer_free(p);
}

static void idle_transfers_expire(void)
{
    struct gw_pacer *p = make(2);
    CU_ASSERT_EQUAL(admit(p, 1, 1, 1000), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(admit(p, 2, 1, 3000), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(gw_pacer_next_expiry(p), 1000 + IDLE);
    /* Just before the deadline nothing goes. */
    CU_ASSERT_EQUAL(gw_pacer_expire(p, 1000 + IDLE - 1), 0);
    CU_ASSERT_EQUAL(admit(p, 3, 1, 1000 + IDLE - 1), -1);
    /* A request restarts the idle clock. */
    CU_ASSERT_EQUAL(admit(p, 1, 1, 2000), GW_PACER_CONTINUED);
    CU_ASSERT_EQUAL(gw_pacer_next_expiry(p), 2000 + IDLE);
    CU_ASSERT_EQUAL(gw_pacer_expire(p, 2000 + IDLE), 1);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 1);
    CU_ASSERT_EQUAL(admit(p, 3, 1, 2000 + IDLE), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(gw_pacer_next_expiry(p), 3000 + IDLE);
    /* The one that expired is new again, and waits its turn. */
    CU_ASSERT_EQUAL(admit(p, 1, 1, 2000 + IDLE), -1);
    CU_ASSERT_EQUAL(gw_pacer_expire(p, 10 * IDLE), 2);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 0);
    CU_ASSERT_EQUAL(gw_pacer_next_expiry(p), GW_PACER_NO_EXPIRY);
    gw_pacer_free(p);
}

static void the_last_block_asked_again_is_served_within_the_grace(void)
{
    struct gw_pacer *p = make(1);
    CU_ASSERT_EQUAL(admit(p, 1, 1, 0), GW_PACER_STARTED);
    finish(p, 1, 1, 1000);
    CU_ASSERT_EQUAL(admit(p, 2, 1, 1001), GW_PACER_STARTED);
    /* Node 1's acknowledgement was lost: its retransmissions are served at
     * the cap, without taking node 2's slot or a second one. */
    CU_ASSERT_EQUAL(admit(p, 1, 1, 1002), GW_PACER_GRACE);
    CU_ASSERT_EQUAL(admit(p, 1, 1, 1000 + GRACE - 1), GW_PACER_GRACE);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 1);
    CU_ASSERT_EQUAL(admit(p, 3, 1, 1003), -1);
    /* Serving the last block again does not stretch the grace. */
    finish(p, 1, 1, 1500);
    CU_ASSERT_EQUAL(admit(p, 1, 1, 1000 + GRACE), -1);
    /* Only admitted transfers have an idle deadline. */
    CU_ASSERT_EQUAL(gw_pacer_next_expiry(p), 1001 + IDLE);
    gw_pacer_free(p);
}

static void finished_transfers_are_remembered_up_to_the_cap(void)
{
    struct gw_pacer *p = make(2);
    for (uint64_t s = 1; s <= 3; s++) {
        CU_ASSERT_EQUAL(admit(p, s, 1, s), GW_PACER_STARTED);
        finish(p, s, 1, 10 + s);
    }
    CU_ASSERT_EQUAL(admit(p, 8, 1, 20), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(admit(p, 9, 1, 20), GW_PACER_STARTED);
    /* Two are remembered: the oldest was forgotten early. */
    CU_ASSERT_EQUAL(admit(p, 1, 1, 30), -1);
    CU_ASSERT_EQUAL(admit(p, 2, 1, 30), GW_PACER_GRACE);
    CU_ASSERT_EQUAL(admit(p, 3, 1, 30), GW_PACER_GRACE);
    /* Expiry forgets them once their grace is over. */
    CU_ASSERT_EQUAL(gw_pacer_expire(p, 13 + GRACE), 0);
    CU_ASSERT_EQUAL(admit(p, 3, 1, 13 + GRACE), -1);
    gw_pacer_free(p);
}

static void ending_a_session_ends_all_its_transfers(void)
{
    struct gw_pacer *p = make(4);
    CU_ASSERT_EQUAL(admit(p, 1, 1, 0), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(admit(p, 1, 2, 0), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(admit(p, 1, 3, 0), GW_PACER_STARTED);
    finish(p, 1, 3, 5);
    CU_ASSERT_EQUAL(admit(p, 2, 1, 0), GW_PACER_STARTED);
    gw_pacer_end_session(p, 1);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 1);
    CU_ASSERT_EQUAL(gw_pacer_next_expiry(p), IDLE);
    /* Its finished ones are forgotten too: at the cap they wait. */
    for (uint8_t a = 4; a <= 6; a++)
        CU_ASSERT_EQUAL(admit(p, 3, a, 10), GW_PACER_STARTED);
    CU_ASSERT_EQUAL(admit(p, 1, 3, 10), -1);
    /* Ending a session that has nothing changes nothing. */
    gw_pacer_end_session(p, 77);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 4);
    gw_pacer_free(p);
}

static void admission_without_asking_how(void)
{
    struct gw_pacer *p = make(1);
    struct gw_pacer_key a = key(1, 1), b = key(2, 1);
    CU_ASSERT(gw_pacer_admit(p, &a, 0, NULL) == FERRY_OK);
    CU_ASSERT(gw_pacer_admit(p, &b, 0, NULL) == FERRY_E_BUSY);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 1);
    gw_pacer_free(p);
}

static void jitter_stays_within_a_quarter_and_spreads(void)
{
    const uint32_t bases[] = {0, 1, 3, 4, 10, 30, 3600, UINT32_MAX};
    for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
        uint32_t base = bases[i];
        uint64_t lo = base - base / 4, hi = (uint64_t)base + base / 4;
        if (lo < 1)
            lo = 1;
        if (hi > UINT32_MAX)
            hi = UINT32_MAX;
        if (hi < 1)
            hi = 1;
        uint32_t min = UINT32_MAX, max = 0;
        uint32_t rnd = 12345;
        for (int n = 0; n < 4000; n++) {
            rnd = rnd * 1103515245u + 12345u;
            uint32_t v = gw_pacer_jitter(base, rnd);
            CU_ASSERT(v >= lo && v <= hi);
            if (v < min)
                min = v;
            if (v > max)
                max = v;
        }
        /* Both ends are reachable, so retries really spread. */
        CU_ASSERT_EQUAL(gw_pacer_jitter(base, 0), lo);
        if (base >= 4 && base < UINT32_MAX) {
            CU_ASSERT(min < base && max > base);
            CU_ASSERT_EQUAL(gw_pacer_jitter(base, 2 * (base / 4)), hi);
        }
    }
}

static void bad_options_are_refused_by_name(void)
{
    struct gw_pacer *p = NULL;
    struct ferry_diag d = {{0}};
    struct gw_pacer_opts o = {.max_transfers = 0};
    CU_ASSERT(gw_pacer_new(&o, &p, &d) == FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "max_transfers"));
    CU_ASSERT_PTR_NULL(p);
    o.max_transfers = GW_PACER_MAX_TRANSFERS + 1;
    CU_ASSERT(gw_pacer_new(&o, &p, &d) == FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NULL(p);
    o.max_transfers = GW_PACER_MAX_TRANSFERS;
    CU_ASSERT(gw_pacer_new(&o, &p, &d) == FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(p);
    gw_pacer_free(p);
    gw_pacer_free(NULL);
}

const struct ferry_test_case ferry_tests[] = {
    {"cap_two_with_six_sessions_admits_two", cap_two_with_six_sessions_admits_two},
    {"finishing_frees_a_slot_at_once", finishing_frees_a_slot_at_once},
    {"a_node_back_after_its_grace_is_counted_again", a_node_back_after_its_grace_is_counted_again},
    {"idle_transfers_expire", idle_transfers_expire},
    {"the_last_block_asked_again_is_served_within_the_grace",
     the_last_block_asked_again_is_served_within_the_grace},
    {"finished_transfers_are_remembered_up_to_the_cap",
     finished_transfers_are_remembered_up_to_the_cap},
    {"ending_a_session_ends_all_its_transfers", ending_a_session_ends_all_its_transfers},
    {"admission_without_asking_how", admission_without_asking_how},
    {"jitter_stays_within_a_quarter_and_spreads", jitter_stays_within_a_quarter_and_spreads},
    {"bad_options_are_refused_by_name", bad_options_are_refused_by_name},
    {NULL, NULL},
};

const char *const ferry_suite_name = "gw_pacer";
