#include "cunit_main.h"

#include "gw_pacer.h"

#include <string.h>

#define IDLE 5000

static struct gw_pacer *make(uint32_t cap)
{
    struct gw_pacer *p = NULL;
    struct gw_pacer_opts o = {.max_transfers = cap, .idle_ms = IDLE};
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

static void cap_two_with_six_sessions_admits_two(void)
{
    struct gw_pacer *p = make(2);
    unsigned admitted = 0;
    for (uint64_t s = 1; s <= 6; s++) {
        struct gw_pacer_key k = key(s, 0xaa);
        enum ferry_err err = gw_pacer_admit(p, &k, true, 100 * s);
        CU_ASSERT(err == FERRY_OK || err == FERRY_E_BUSY);
        if (err == FERRY_OK)
            admitted++;
        /* First come, first served. */
        CU_ASSERT_EQUAL(err == FERRY_OK, s <= 2);
    }
    CU_ASSERT_EQUAL(admitted, 2);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 2);
    /* Held transfers never expire by idleness, however long. */
    CU_ASSERT_EQUAL(gw_pacer_expire(p, UINT64_C(1) << 40), 0);
    CU_ASSERT_EQUAL(gw_pacer_next_expiry(p), GW_PACER_NO_EXPIRY);
    gw_pacer_free(p);
}

static void release_frees_a_slot_for_the_next_session(void)
{
    struct gw_pacer *p = make(2);
    struct gw_pacer_key a = key(1, 1), b = key(2, 1), c = key(3, 1);
    CU_ASSERT(gw_pacer_admit(p, &a, true, 0) == FERRY_OK);
    CU_ASSERT(gw_pacer_admit(p, &b, true, 0) == FERRY_OK);
    CU_ASSERT(gw_pacer_admit(p, &c, true, 0) == FERRY_E_BUSY);
    gw_pacer_release(p, &a, false, 0);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 1);
    CU_ASSERT(gw_pacer_admit(p, &c, true, 1) == FERRY_OK);
    CU_ASSERT(gw_pacer_admit(p, &a, true, 2) == FERRY_E_BUSY);
    gw_pacer_free(p);
}

static void every_hold_must_be_released_before_the_transfer_ends(void)
{
    struct gw_pacer *p = make(1);
    struct gw_pacer_key a = key(1, 1), b = key(2, 1);
    /* A node asking for block 0 again: libcoap replaces its body, so a second
     * hold is taken before the first is released. */
    CU_ASSERT(gw_pacer_admit(p, &a, true, 0) == FERRY_OK);
    CU_ASSERT(gw_pacer_admit(p, &a, true, 10) == FERRY_OK);
    gw_pacer_release(p, &a, false, 0);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 1);
    CU_ASSERT(gw_pacer_admit(p, &b, true, 20) == FERRY_E_BUSY);
    gw_pacer_release(p, &a, false, 0);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 0);
    /* Extra releases (a session that already ended) change nothing. */
    gw_pacer_release(p, &a, false, 0);
    gw_pacer_release(p, &b, false, 0);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 0);
    CU_ASSERT(gw_pacer_admit(p, &b, true, 30) == FERRY_OK);
    gw_pacer_free(p);
}

static void same_session_continuing_is_served_at_the_cap(void)
{
    struct gw_pacer *p = make(1);
    struct gw_pacer_key a = key(7, 1), other_artifact = key(7, 2), other_session = key(8, 1);
    CU_ASSERT(gw_pacer_admit(p, &a, true, 0) == FERRY_OK);
    /* Later blocks of the same transfer, with or without a new hold. */
    CU_ASSERT(gw_pacer_admit(p, &a, false, 100) == FERRY_OK);
    CU_ASSERT(gw_pacer_admit(p, &a, false, 200) == FERRY_OK);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 1);
    /* The same node fetching another artifact is another transfer. */
    CU_ASSERT(gw_pacer_admit(p, &other_artifact, false, 300) == FERRY_E_BUSY);
    CU_ASSERT(gw_pacer_admit(p, &other_session, false, 300) == FERRY_E_BUSY);
    /* libcoap gave up on the body half-way (its 93 s limit): the slot is
     * kept for the node's next block, and lapses only if it stays silent. */
    gw_pacer_release(p, &a, true, 1000);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 1);
    CU_ASSERT_EQUAL(gw_pacer_next_expiry(p), 1000 + IDLE);
    CU_ASSERT(gw_pacer_admit(p, &other_session, false, 1000) == FERRY_E_BUSY);
    CU_ASSERT(gw_pacer_admit(p, &a, false, 1200) == FERRY_OK);
    CU_ASSERT_EQUAL(gw_pacer_expire(p, 1200 + IDLE - 1), 0);
    CU_ASSERT_EQUAL(gw_pacer_expire(p, 1200 + IDLE), 1);
    CU_ASSERT(gw_pacer_admit(p, &other_session, false, 1200 + IDLE) == FERRY_OK);
    gw_pacer_free(p);
}

static void a_body_sent_in_full_ends_the_transfer_at_once(void)
{
    struct gw_pacer *p = make(1);
    struct gw_pacer_key a = key(7, 1), b = key(8, 1);
    CU_ASSERT(gw_pacer_admit(p, &a, true, 0) == FERRY_OK);
    gw_pacer_release(p, &a, false, 50);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 0);
    CU_ASSERT_EQUAL(gw_pacer_next_expiry(p), GW_PACER_NO_EXPIRY);
    /* A straggling request of the same node is a transfer like any other. */
    CU_ASSERT(gw_pacer_admit(p, &b, true, 60) == FERRY_OK);
    CU_ASSERT(gw_pacer_admit(p, &a, false, 70) == FERRY_E_BUSY);
    gw_pacer_free(p);
}

static void idle_transfers_without_holds_expire(void)
{
    struct gw_pacer *p = make(2);
    struct gw_pacer_key a = key(1, 1), b = key(2, 1), c = key(3, 1);
    CU_ASSERT(gw_pacer_admit(p, &a, false, 1000) == FERRY_OK);
    CU_ASSERT(gw_pacer_admit(p, &b, false, 3000) == FERRY_OK);
    CU_ASSERT_EQUAL(gw_pacer_next_expiry(p), 1000 + IDLE);
    /* Just before the deadline nothing goes. */
    CU_ASSERT_EQUAL(gw_pacer_expire(p, 1000 + IDLE - 1), 0);
    CU_ASSERT(gw_pacer_admit(p, &c, false, 1000 + IDLE - 1) == FERRY_E_BUSY);
    /* A request restarts the idle clock. */
    CU_ASSERT(gw_pacer_admit(p, &a, false, 2000) == FERRY_OK);
    CU_ASSERT_EQUAL(gw_pacer_next_expiry(p), 2000 + IDLE);
    CU_ASSERT_EQUAL(gw_pacer_expire(p, 2000 + IDLE), 1);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 1);
    CU_ASSERT(gw_pacer_admit(p, &c, false, 2000 + IDLE) == FERRY_OK);
    CU_ASSERT_EQUAL(gw_pacer_next_expiry(p), 3000 + IDLE);
    CU_ASSERT_EQUAL(gw_pacer_expire(p, 10 * IDLE), 2);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 0);
    CU_ASSERT_EQUAL(gw_pacer_next_expiry(p), GW_PACER_NO_EXPIRY);
    gw_pacer_free(p);
}

static void a_hold_protects_from_expiry_until_released(void)
{
    struct gw_pacer *p = make(1);
    struct gw_pacer_key a = key(1, 1);
    CU_ASSERT(gw_pacer_admit(p, &a, false, 0) == FERRY_OK);
    CU_ASSERT(gw_pacer_admit(p, &a, true, 0) == FERRY_OK);
    CU_ASSERT_EQUAL(gw_pacer_expire(p, 100 * IDLE), 0);
    gw_pacer_release(p, &a, false, 0);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 0);
    gw_pacer_free(p);
}

static void ending_a_session_ends_all_its_transfers(void)
{
    struct gw_pacer *p = make(4);
    struct gw_pacer_key a1 = key(1, 1), a2 = key(1, 2), b1 = key(2, 1);
    CU_ASSERT(gw_pacer_admit(p, &a1, true, 0) == FERRY_OK);
    CU_ASSERT(gw_pacer_admit(p, &a2, false, 0) == FERRY_OK);
    CU_ASSERT(gw_pacer_admit(p, &b1, true, 0) == FERRY_OK);
    gw_pacer_end_session(p, 1);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 1);
    /* libcoap's release for the dead session comes afterwards. */
    gw_pacer_release(p, &a1, false, 0);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 1);
    gw_pacer_release(p, &b1, false, 0);
    CU_ASSERT_EQUAL(gw_pacer_active(p), 0);
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
    {"release_frees_a_slot_for_the_next_session", release_frees_a_slot_for_the_next_session},
    {"every_hold_must_be_released_before_the_transfer_ends",
     every_hold_must_be_released_before_the_transfer_ends},
    {"same_session_continuing_is_served_at_the_cap", same_session_continuing_is_served_at_the_cap},
    {"a_body_sent_in_full_ends_the_transfer_at_once",
     a_body_sent_in_full_ends_the_transfer_at_once},
    {"idle_transfers_without_holds_expire", idle_transfers_without_holds_expire},
    {"a_hold_protects_from_expiry_until_released", a_hold_protects_from_expiry_until_released},
    {"ending_a_session_ends_all_its_transfers", ending_a_session_ends_all_its_transfers},
    {"jitter_stays_within_a_quarter_and_spreads", jitter_stays_within_a_quarter_and_spreads},
    {"bad_options_are_refused_by_name", bad_options_are_refused_by_name},
    {NULL, NULL},
};

const char *const ferry_suite_name = "gw_pacer";
