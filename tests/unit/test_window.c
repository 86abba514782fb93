#include "cunit_main.h"

#include "ferry_ratecap.h"
#include "ferry_window.h"

#include <stdio.h>
#include <string.h>

#define HOUR 3600

static const char *const BERLIN = "CET-1CEST,M3.5.0,M10.5.0/3";

/* The tests know their zones; the real lookup is tested in test_tzrule. */
static enum ferry_err fake_zone(void *arg, const char *zone, char *rule, size_t cap,
                                struct ferry_diag *d)
{
    (void)arg;
    const char *r = strcmp(zone, "Europe/Berlin") == 0 ? BERLIN
                    : strcmp(zone, "UTC") == 0         ? "UTC0"
                                                       : NULL;
    if (!r)
        return ferry_fail(d, FERRY_E_NOT_FOUND, "no zone %s", zone);
    snprintf(rule, cap, "%s", r);
    return FERRY_OK;
}

static struct ferry_window win(const char *text)
{
    struct ferry_window w;
    struct ferry_diag d = {{0}};
    enum ferry_err err = ferry_window_parse(text, fake_zone, NULL, &w, &d);
    if (err != FERRY_OK)
        fprintf(stderr, "'%s': %s\n", text, d.msg);
    CU_ASSERT_FATAL(err == FERRY_OK);
    return w;
}

static int64_t utc(int y, unsigned mo, unsigned d, int h, int mi)
{
    return ferry_days_from_civil(y, mo, d) * 86400 + h * HOUR + mi * 60;
}

static void weekday_ranges_in_local_time(void)
{
    struct ferry_window w = win("Mon-Fri 01:00-04:00 Europe/Berlin");
    /* Tuesday 2026-01-13, CET (UTC+1): open 00:00..03:00 UTC. */
    CU_ASSERT_FALSE(ferry_window_open(&w, utc(2026, 1, 12, 23, 59)));
    CU_ASSERT_TRUE(ferry_window_open(&w, utc(2026, 1, 13, 0, 0)));
    CU_ASSERT_TRUE(ferry_window_open(&w, utc(2026, 1, 13, 2, 59)));
    CU_ASSERT_FALSE(ferry_window_open(&w, utc(2026, 1, 13, 3, 0)));
    /* Saturday: closed all day. */
    CU_ASSERT_FALSE(ferry_window_open(&w, utc(2026, 1, 17, 1, 0)));
    /* Summer (CEST, UTC+2): open 23:00..02:00 UTC, from the evening before. */
    CU_ASSERT_TRUE(ferry_window_open(&w, utc(2026, 7, 6, 23, 30))); /* Tue 01:30 */
    CU_ASSERT_FALSE(ferry_window_open(&w, utc(2026, 7, 7, 2, 0)));
}

static void spring_forward_shortens_the_window(void)
{
    /* Sunday 29 March 2026: 02:00 CET does not exist, clocks jump to 03:00
     * CEST at 01:00 UTC. "daily 01:00-04:00" is then two hours long. */
    struct ferry_window w = win("daily 01:00-04:00 Europe/Berlin");
    CU_ASSERT_FALSE(ferry_window_open(&w, utc(2026, 3, 28, 23, 59))); /* 00:59 CET */
    CU_ASSERT_TRUE(ferry_window_open(&w, utc(2026, 3, 29, 0, 0)));    /* 01:00 CET */
    CU_ASSERT_TRUE(ferry_window_open(&w, utc(2026, 3, 29, 1, 30)));   /* 03:30 CEST */
    CU_ASSERT_FALSE(ferry_window_open(&w, utc(2026, 3, 29, 2, 0)));   /* 04:00 CEST */
    CU_ASSERT_EQUAL(ferry_window_next_change(&w, utc(2026, 3, 28, 12, 0)), utc(2026, 3, 29, 0, 0));
    CU_ASSERT_EQUAL(ferry_window_next_change(&w, utc(2026, 3, 29, 0, 0)), utc(2026, 3, 29, 2, 0));
    /* A window inside the missing hour opens at the jump and closes at once
     * after it: 02:15-02:45 never happens that day. */
    struct ferry_window gap = win("Sun 02:15-02:45 Europe/Berlin");
    for (int64_t t = utc(2026, 3, 28, 22, 0); t < utc(2026, 3, 29, 4, 0); t += 60)
        CU_ASSERT_FALSE(ferry_window_open(&gap, t));
    /* A window that straddles the jump opens at it. */
    struct ferry_window straddle = win("Sun 02:30-03:30 Europe/Berlin");
    CU_ASSERT_EQUAL(ferry_window_next_change(&straddle, utc(2026, 3, 28, 22, 0)),
                    utc(2026, 3, 29, 1, 0));
    CU_ASSERT_EQUAL(ferry_window_next_change(&straddle, utc(2026, 3, 29, 1, 0)),
                    utc(2026, 3, 29, 1, 30));
}

static void fall_back_repeats_the_hour(void)
{
    /* Sunday 25 October 2026: 03:00 CEST becomes 02:00 CET at 01:00 UTC, so
     * 02:00-03:00 local happens twice, and "Sun 02:00-03:00" lasts two hours. */
    struct ferry_window w = win("Sun 02:00-03:00 Europe/Berlin");
    CU_ASSERT_FALSE(ferry_window_open(&w, utc(2026, 10, 24, 23, 59)));
    CU_ASSERT_TRUE(ferry_window_open(&w, utc(2026, 10, 25, 0, 0)));  /* 02:00 CEST */
    CU_ASSERT_TRUE(ferry_window_open(&w, utc(2026, 10, 25, 0, 59))); /* 02:59 CEST */
    CU_ASSERT_TRUE(ferry_window_open(&w, utc(2026, 10, 25, 1, 0)));  /* 02:00 CET */
    CU_ASSERT_TRUE(ferry_window_open(&w, utc(2026, 10, 25, 1, 59))); /* 02:59 CET */
    CU_ASSERT_FALSE(ferry_window_open(&w, utc(2026, 10, 25, 2, 0))); /* 03:00 CET */
    CU_ASSERT_EQUAL(ferry_window_next_change(&w, utc(2026, 10, 24, 20, 0)),
                    utc(2026, 10, 25, 0, 0));
    CU_ASSERT_EQUAL(ferry_window_next_change(&w, utc(2026, 10, 25, 0, 0)), utc(2026, 10, 25, 2, 0));
}

static void ranges_past_midnight_belong_to_their_start_day(void)
{
    struct ferry_window w = win("Fri 22:00-02:00 UTC");
    CU_ASSERT_TRUE(ferry_window_open(&w, utc(2026, 1, 16, 23, 0))); /* Fri 23:00 */
    CU_ASSERT_TRUE(ferry_window_open(&w, utc(2026, 1, 17, 1, 59))); /* Sat 01:59 */
    CU_ASSERT_FALSE(ferry_window_open(&w, utc(2026, 1, 17, 2, 0)));
    CU_ASSERT_FALSE(ferry_window_open(&w, utc(2026, 1, 16, 1, 0))); /* Fri 01:00: Thu was off */
    struct ferry_window midnight = win("daily 22:00-00:00 UTC");
    CU_ASSERT_TRUE(ferry_window_open(&midnight, utc(2026, 1, 16, 23, 59)));
    CU_ASSERT_FALSE(ferry_window_open(&midnight, utc(2026, 1, 17, 0, 0)));
}

static void several_groups_and_format(void)
{
    struct ferry_window w = win("sat,SUN 00:00-24:00 Mon-Fri 22:00-02:00,12:00-13:00 UTC");
    CU_ASSERT_EQUAL(w.n, 3);
    char text[FERRY_WINDOW_TEXT_MAX];
    ferry_window_format(&w, text);
    CU_ASSERT_STRING_EQUAL(text, "Sat,Sun 00:00-24:00 Mon-Fri 22:00-02:00,12:00-13:00 UTC");
    struct ferry_window again = win(text);
    CU_ASSERT_EQUAL(memcmp(again.r, w.r, sizeof(w.r)), 0);
    CU_ASSERT_TRUE(ferry_window_open(&w, utc(2026, 1, 14, 12, 30))); /* Wed noon */
    CU_ASSERT_FALSE(ferry_window_open(&w, utc(2026, 1, 14, 14, 0)));
    struct ferry_window daily = win("daily 01:00-02:00 08:00-09:00 Europe/Berlin");
    ferry_window_format(&daily, text);
    CU_ASSERT_STRING_EQUAL(text, "daily 01:00-02:00,08:00-09:00 Europe/Berlin");
    struct ferry_window wrap = win("Fri-Mon 01:00-02:00 UTC");
    ferry_window_format(&wrap, text);
    CU_ASSERT_STRING_EQUAL(text, "Mon,Fri-Sun 01:00-02:00 UTC");
}

static void always_and_never(void)
{
    struct ferry_window w = win("daily 00:00-24:00 UTC");
    CU_ASSERT_TRUE(ferry_window_open(&w, 0));
    CU_ASSERT_EQUAL(ferry_window_next_change(&w, 0), INT64_MAX);
}

static void bad_windows_name_the_word(void)
{
    struct {
        const char *text, *word;
    } bad[] = {
        {"Mon-Fri 01:00-04:00", "zone"},
        {"01:00-04:00 Mon 02:00-03:00 Europe/Berlin", "before any days"},
        {"Mon-Fri Europe/Berlin", "days, times"},
        {"Mon-Fri 01:00-25:00 Europe/Berlin", "01:00-25:00"},
        {"Mon-Fri 01:00 Europe/Berlin", "01:00"},
        {"Mon-Fri 01:00-01:00 Europe/Berlin", "same time"},
        {"Mon-Fry 01:00-04:00 Europe/Berlin", "Mon-Fry"},
        {"Mon Tue 01:00-04:00 Europe/Berlin", "'Mon' have no time"},
        {"Mon 01:00-04:00 Sat Europe/Berlin", "'Sat' have no time"},
        {"Mon 01:00-04:00 ../etc/passwd", "time zone"},
        {"Mon 01:00-04:00 Mars/Base", "no zone"},
        {"", "expected days"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ferry_window w;
        struct ferry_diag d = {{0}};
        CU_ASSERT_NOT_EQUAL(ferry_window_parse(bad[i].text, fake_zone, NULL, &w, &d), FERRY_OK);
        if (!strstr(d.msg, bad[i].word))
            fprintf(stderr, "'%s' gave '%s', expected it to name '%s'\n", bad[i].text, d.msg,
                    bad[i].word);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, bad[i].word));
    }
}

static void set_checks_wire_values(void)
{
    struct ferry_window w;
    struct ferry_window_range r = {0x3e, 60, 240};
    CU_ASSERT_EQUAL(ferry_window_set(&w, "Europe/Berlin", BERLIN, &r, 1, NULL), FERRY_OK);
    struct ferry_window_range bad[] = {{0, 60, 240}, {0x80, 60, 240}, {1, 1440, 10},
                                       {1, 60, 0},   {1, 60, 1441},   {1, 60, 60}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_EQUAL(ferry_window_set(&w, "UTC", "UTC0", &bad[i], 1, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_window_set(&w, "UTC", "nonsense", &r, 1, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_window_set(&w, "UTC", "UTC0", &r, 0, NULL), FERRY_E_INVALID_ARG);
}

/* Every change next_change() reports is a real change, and none is skipped:
 * checked minute by minute over the two transition weeks. */
static void next_change_matches_a_minute_scan(void)
{
    const char *texts[] = {"daily 01:00-04:00 Europe/Berlin", "Sun 02:30-03:30 Europe/Berlin",
                           "Sat,Sun 23:00-02:30 Mon 12:00-12:01 Europe/Berlin"};
    int64_t weeks[] = {utc(2026, 3, 25, 0, 0), utc(2026, 10, 21, 0, 0)};
    for (size_t i = 0; i < 3; i++) {
        struct ferry_window w = win(texts[i]);
        for (size_t k = 0; k < 2; k++) {
            int64_t t = weeks[k], end = weeks[k] + 7 * 86400;
            while (t < end) {
                int64_t next = ferry_window_next_change(&w, t), scan = t + 60;
                bool now = ferry_window_open(&w, t);
                while (scan < end + 9 * 86400 && ferry_window_open(&w, scan) == now)
                    scan += 60;
                CU_ASSERT_EQUAL(next, scan);
                if (next != scan) {
                    fprintf(stderr, "%s from %lld: %lld vs scan %lld\n", texts[i], (long long)t,
                            (long long)next, (long long)scan);
                    break;
                }
                t = next;
            }
        }
    }
}

static void rate_cap_slides(void)
{
    struct ferry_ratecap *c = NULL;
    CU_ASSERT_FATAL(ferry_ratecap_new(3, &c, NULL) == FERRY_OK);
    CU_ASSERT_TRUE(ferry_ratecap_take(c, 1000));
    CU_ASSERT_TRUE(ferry_ratecap_take(c, 20000));
    CU_ASSERT_TRUE(ferry_ratecap_take(c, 40000));
    CU_ASSERT_FALSE(ferry_ratecap_take(c, 59000));
    CU_ASSERT_EQUAL(ferry_ratecap_next(c, 59000), 61000);
    /* A calendar minute would allow three more at 60.0 s; a sliding one
     * allows one. */
    CU_ASSERT_FALSE(ferry_ratecap_take(c, 60999));
    CU_ASSERT_TRUE(ferry_ratecap_take(c, 61000));
    CU_ASSERT_FALSE(ferry_ratecap_take(c, 61000));
    CU_ASSERT_EQUAL(ferry_ratecap_next(c, 61000), 80000);
    CU_ASSERT_TRUE(ferry_ratecap_take(c, 200000));
    CU_ASSERT_EQUAL(ferry_ratecap_next(c, 200000), 200000);
    ferry_ratecap_free(c);

    CU_ASSERT_FATAL(ferry_ratecap_new(0, &c, NULL) == FERRY_OK);
    for (int i = 0; i < 1000; i++)
        CU_ASSERT_TRUE(ferry_ratecap_take(c, 5));
    CU_ASSERT_EQUAL(ferry_ratecap_next(c, 5), 5);
    ferry_ratecap_free(c);
    CU_ASSERT_EQUAL(ferry_ratecap_new(FERRY_RATECAP_MAX + 1, &c, NULL), FERRY_E_INVALID_ARG);
}

const char *const ferry_suite_name = "window";
const struct ferry_test_case ferry_tests[] = {
    {"weekday_ranges_in_local_time", weekday_ranges_in_local_time},
    {"spring_forward_shortens_the_window", spring_forward_shortens_the_window},
    {"fall_back_repeats_the_hour", fall_back_repeats_the_hour},
    {"ranges_past_midnight_belong_to_their_start_day",
     ranges_past_midnight_belong_to_their_start_day},
    {"several_groups_and_format", several_groups_and_format},
    {"always_and_never", always_and_never},
    {"bad_windows_name_the_word", bad_windows_name_the_word},
    {"set_checks_wire_values", set_checks_wire_values},
    {"next_change_matches_a_minute_scan", next_change_matches_a_minute_scan},
    {"rate_cap_slides", rate_cap_slides},
    {NULL, NULL},
};
