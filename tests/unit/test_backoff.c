#include "cunit_main.h"

#include "ferry_backoff.h"
#include "ferry_random.h"

#include <stdint.h>

/* The upper end of the jitter range is the exponential base itself, so
 * random == UINT32_MAX walks the bare schedule. */
static void backoff_doubles_from_min_to_max(void)
{
    struct ferry_backoff b = {.min_ms = 100, .max_ms = 5000};
    uint32_t want = 100;
    for (int i = 0; i < 12; i++) {
        CU_ASSERT_EQUAL(ferry_backoff_next(&b, UINT32_MAX), want);
        want = want * 2 > 5000 ? 5000 : want * 2;
    }
    CU_ASSERT_EQUAL(b.attempt, 12);
}

static void backoff_jitter_spans_half_to_full_base(void)
{
    struct ferry_backoff b = {.min_ms = 1000, .max_ms = 64000};
    for (uint32_t attempt = 0; attempt < 10; attempt++) {
        uint64_t base = (uint64_t)1000 << attempt;
        if (base > 64000)
            base = 64000;
        b.attempt = attempt;
        CU_ASSERT_EQUAL(ferry_backoff_next(&b, 0), base / 2);
        b.attempt = attempt;
        CU_ASSERT_EQUAL(ferry_backoff_next(&b, UINT32_MAX), base);
        b.attempt = attempt;
        uint32_t mid = ferry_backoff_next(&b, UINT32_MAX / 2);
        CU_ASSERT_TRUE(mid > base / 2 && mid < base);
    }
}

static void backoff_every_draw_stays_in_bounds(void)
{
    struct ferry_backoff b = {.min_ms = 250, .max_ms = 30000};
    struct ferry_prng rng; /* many distinct draws, reproducible */
    ferry_prng_seed(&rng, 2463534242u);
    for (int i = 0; i < 10000; i++) {
        uint32_t x = (uint32_t)(ferry_prng_next(&rng) >> 32);
        if (i % 20 == 0)
            ferry_backoff_reset(&b);
        uint32_t attempt = b.attempt;
        uint64_t base = attempt >= 32 ? 30000 : (uint64_t)250 << attempt;
        if (base > 30000)
            base = 30000;
        uint32_t d = ferry_backoff_next(&b, x);
        CU_ASSERT_TRUE(d >= base / 2 && d <= base);
        CU_ASSERT_TRUE(d >= 125 && d <= 30000);
    }
}

static void backoff_saturates_on_huge_attempt_counts(void)
{
    struct ferry_backoff b = {.min_ms = UINT32_MAX / 3, .max_ms = UINT32_MAX};
    b.attempt = UINT32_MAX - 2;
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(ferry_backoff_next(&b, UINT32_MAX), UINT32_MAX);
        CU_ASSERT_EQUAL(ferry_backoff_next(&b, 0), UINT32_MAX / 2);
    }
    CU_ASSERT_EQUAL(b.attempt, UINT32_MAX);

    /* Every shift count around the width of the types, large minimums. */
    for (uint32_t attempt = 28; attempt < 70; attempt++) {
        struct ferry_backoff c = {.min_ms = 3000000000u, .max_ms = 4000000000u, .attempt = attempt};
        CU_ASSERT_EQUAL(ferry_backoff_next(&c, UINT32_MAX), 4000000000u);
    }
}

static void backoff_reset_returns_to_min(void)
{
    struct ferry_backoff b = {.min_ms = 500, .max_ms = 60000};
    for (int i = 0; i < 8; i++)
        (void)ferry_backoff_next(&b, 12345);
    CU_ASSERT_EQUAL(ferry_backoff_next(&b, UINT32_MAX), 60000);
    ferry_backoff_reset(&b);
    CU_ASSERT_EQUAL(b.attempt, 0);
    CU_ASSERT_EQUAL(ferry_backoff_next(&b, UINT32_MAX), 500);
    CU_ASSERT_EQUAL(ferry_backoff_next(&b, UINT32_MAX), 1000);
}

static void backoff_degenerate_limits(void)
{
    /* A zero minimum still grows, from one millisecond. */
    struct ferry_backoff z = {.min_ms = 0, .max_ms = 8};
    CU_ASSERT_EQUAL(ferry_backoff_next(&z, UINT32_MAX), 1);
    CU_ASSERT_EQUAL(ferry_backoff_next(&z, UINT32_MAX), 2);
    CU_ASSERT_EQUAL(ferry_backoff_next(&z, UINT32_MAX), 4);
    CU_ASSERT_EQUAL(ferry_backoff_next(&z, UINT32_MAX), 8);
    CU_ASSERT_EQUAL(ferry_backoff_next(&z, UINT32_MAX), 8);

    /* A cap below the minimum pins the delay at the minimum. */
    struct ferry_backoff inv = {.min_ms = 700, .max_ms = 10};
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(ferry_backoff_next(&inv, UINT32_MAX), 700);
        CU_ASSERT_EQUAL(ferry_backoff_next(&inv, 0), 350);
    }
}

static void jitter_covers_the_band_and_no_more(void)
{
    /* 1000 +- 20 %: random 0 is the bottom, 400 the top, 401 wraps. */
    CU_ASSERT_EQUAL(ferry_jitter(1000, 20, 0), 800);
    CU_ASSERT_EQUAL(ferry_jitter(1000, 20, 200), 1000);
    CU_ASSERT_EQUAL(ferry_jitter(1000, 20, 400), 1200);
    CU_ASSERT_EQUAL(ferry_jitter(1000, 20, 401), 800);
    uint64_t x = 88172645463325252u, lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < 10000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t v = ferry_jitter(60000, 20, x);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    CU_ASSERT_TRUE(lo >= 48000 && lo < 48100);
    CU_ASSERT_TRUE(hi <= 72000 && hi > 71900);
}

static void jitter_edges_neither_wrap_nor_overflow(void)
{
    CU_ASSERT_EQUAL(ferry_jitter(0, 20, 12345), 0);
    CU_ASSERT_EQUAL(ferry_jitter(1000, 0, UINT64_MAX), 1000);
    CU_ASSERT_EQUAL(ferry_jitter(1000, 250, 0), 0); /* pct capped at 100 */
    CU_ASSERT_EQUAL(ferry_jitter(1000, 250, 2000), 2000);
    /* Near the documented limit the product base * pct would overflow. */
    uint64_t big = (UINT64_C(1) << 62) - 1;
    CU_ASSERT_EQUAL(ferry_jitter(big, 100, 0), 0);
    CU_ASSERT_EQUAL(ferry_jitter(big, 100, 2 * big), 2 * big);
    CU_ASSERT_EQUAL(ferry_jitter(big, 50, 0), big - big / 2);
}

const char *const ferry_suite_name = "backoff";
const struct ferry_test_case ferry_tests[] = {
    {"backoff_doubles_from_min_to_max", backoff_doubles_from_min_to_max},
    {"backoff_jitter_spans_half_to_full_base", backoff_jitter_spans_half_to_full_base},
    {"backoff_every_draw_stays_in_bounds", backoff_every_draw_stays_in_bounds},
    {"backoff_saturates_on_huge_attempt_counts", backoff_saturates_on_huge_attempt_counts},
    {"backoff_reset_returns_to_min", backoff_reset_returns_to_min},
    {"backoff_degenerate_limits", backoff_degenerate_limits},
    {"jitter_covers_the_band_and_no_more", jitter_covers_the_band_and_no_more},
    {"jitter_edges_neither_wrap_nor_overflow", jitter_edges_neither_wrap_nor_overflow},
    {NULL, NULL},
};
