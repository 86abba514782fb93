#include "cunit_main.h"

#include "ferry_tzfile.h"
#include "ferry_tzrule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HOUR 3600

static struct ferry_tzrule parse_ok(const char *s)
{
    struct ferry_tzrule r;
    struct ferry_diag d = {{0}};
    enum ferry_err err = ferry_tzrule_parse(s, &r, &d);
    if (err != FERRY_OK)
        fprintf(stderr, "parse '%s': %s\n", s, d.msg);
    CU_ASSERT_FATAL(err == FERRY_OK);
    return r;
}

static int64_t utc(int y, unsigned mo, unsigned d, int h, int mi)
{
    return ferry_days_from_civil(y, mo, d) * 86400 + h * HOUR + mi * 60;
}

static void calendar_round_trips(void)
{
    CU_ASSERT_EQUAL(ferry_days_from_civil(1970, 1, 1), 0);
    CU_ASSERT_EQUAL(ferry_weekday_from_days(0), 4);  /* Thursday */
    CU_ASSERT_EQUAL(ferry_weekday_from_days(-1), 3); /* Wednesday */
    CU_ASSERT_EQUAL(ferry_weekday_from_days(ferry_days_from_civil(2026, 3, 29)), 0);
    for (int64_t z = -800000; z < 800000; z += 997) {
        int64_t y;
        unsigned m, d;
        ferry_civil_from_days(z, &y, &m, &d);
        CU_ASSERT_EQUAL(ferry_days_from_civil(y, m, d), z);
    }
}

static void berlin_switches_on_the_last_sundays(void)
{
    struct ferry_tzrule r = parse_ok("CET-1CEST,M3.5.0,M10.5.0/3");
    CU_ASSERT_EQUAL(r.std_off, HOUR);
    CU_ASSERT_EQUAL(r.dst_off, 2 * HOUR);
    /* 2026: forward at 01:00 UTC on 29 March, back at 01:00 UTC on 25 October. */
    CU_ASSERT_EQUAL(ferry_tzrule_offset(&r, utc(2026, 3, 29, 0, 59)), HOUR);
    CU_ASSERT_EQUAL(ferry_tzrule_offset(&r, utc(2026, 3, 29, 1, 0)), 2 * HOUR);
    CU_ASSERT_EQUAL(ferry_tzrule_offset(&r, utc(2026, 10, 25, 0, 59)), 2 * HOUR);
    CU_ASSERT_EQUAL(ferry_tzrule_offset(&r, utc(2026, 10, 25, 1, 0)), HOUR);
    CU_ASSERT_EQUAL(ferry_tzrule_next_transition(&r, utc(2026, 1, 1, 0, 0)),
                    utc(2026, 3, 29, 1, 0));
    CU_ASSERT_EQUAL(ferry_tzrule_next_transition(&r, utc(2026, 3, 29, 1, 0)),
                    utc(2026, 10, 25, 1, 0));
    CU_ASSERT_EQUAL(ferry_tzrule_next_transition(&r, utc(2026, 12, 1, 0, 0)),
                    utc(2027, 3, 28, 1, 0));
}

static void southern_rule_wraps_the_year(void)
{
    /* Sydney: daylight time from the first Sunday of October to the first
     * Sunday of April. */
    struct ferry_tzrule r = parse_ok("AEST-10AEDT,M10.1.0,M4.1.0/3");
    CU_ASSERT_EQUAL(ferry_tzrule_offset(&r, utc(2026, 1, 15, 0, 0)), 11 * HOUR);
    CU_ASSERT_EQUAL(ferry_tzrule_offset(&r, utc(2026, 6, 15, 0, 0)), 10 * HOUR);
    CU_ASSERT_EQUAL(ferry_tzrule_offset(&r, utc(2026, 12, 31, 23, 0)), 11 * HOUR);
}

static void odd_forms_parse(void)
{
    struct ferry_tzrule r = parse_ok("UTC0");
    CU_ASSERT_FALSE(r.has_dst);
    CU_ASSERT_EQUAL(ferry_tzrule_next_transition(&r, 0), INT64_MAX);
    r = parse_ok("<+0530>-5:30");
    CU_ASSERT_EQUAL(r.std_off, 5 * HOUR + 30 * 60);
    r = parse_ok("<-03>3");
    CU_ASSERT_EQUAL(r.std_off, -3 * HOUR);
    r = parse_ok("NST3:30NDT,M3.2.0,M11.1.0");
    CU_ASSERT_EQUAL(r.std_off, -(3 * HOUR + 30 * 60));
    CU_ASSERT_EQUAL(r.dst_off, -(2 * HOUR + 30 * 60));
    r = parse_ok("EST5EDT");
    CU_ASSERT_EQUAL(r.start.month, 3); /* the US rules by default */
    r = parse_ok("<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45");
    CU_ASSERT_EQUAL(r.dst_off, 13 * HOUR + 45 * 60);
    r = parse_ok("IST-2IDT,M3.4.4/26,M10.5.0"); /* Israel: hour 26 of Thursday */
    CU_ASSERT_EQUAL(r.start.time, 26 * HOUR);
    r = parse_ok("XXX3EDT4,J60/0,300/25");
    CU_ASSERT_EQUAL(r.start.kind, FERRY_TZTRANS_JULIAN1);
    CU_ASSERT_EQUAL(r.end.kind, FERRY_TZTRANS_JULIAN0);
}

static void bad_rules_are_refused(void)
{
    const char *bad[] = {"",
                         "CE",
                         "CET",
                         "CET-1CEST,M3.5.0",
                         "CET-25",
                         "CET-1CEST,M13.5.0,M10.5.0",
                         "CET-1CEST,M3.6.0,M10.5.0",
                         "CET-1x",
                         "<+03",
                         "CET-1CEST,J0,J10",
                         "CET-1 ",
                         "CET-1CEST,M3.5.0/168,M10.5.0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ferry_tzrule r;
        struct ferry_diag d = {{0}};
        CU_ASSERT_EQUAL(ferry_tzrule_parse(bad[i], &r, &d), FERRY_E_INVALID_ARG);
        CU_ASSERT(strlen(d.msg) > 0);
    }
}

/* The system's zoneinfo files and glibc's localtime_r() agree with the
 * rule this code reads from the same files, hour by hour over five years,
 * across every transition. */
static void agrees_with_glibc_over_five_years(void)
{
    const char *zones[] = {"Europe/Berlin",    "America/New_York", "Australia/Sydney",
                           "America/St_Johns", "Asia/Kolkata",     "Pacific/Chatham",
                           "Europe/London",    "America/Santiago", "UTC"};
    const char *old_tz = getenv("TZ");
    char saved[128] = "";
    if (old_tz)
        snprintf(saved, sizeof(saved), "%s", old_tz);
    for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
        char rule[FERRY_TZRULE_MAX + 1];
        struct ferry_diag d = {{0}};
        enum ferry_err err = ferry_tzfile_rule(zones[z], rule, sizeof(rule), &d);
        if (err != FERRY_OK)
            fprintf(stderr, "%s: %s\n", zones[z], d.msg);
        CU_ASSERT_FATAL(err == FERRY_OK);
        struct ferry_tzrule r = parse_ok(rule);
        setenv("TZ", zones[z], 1); /* one thread: the test's own */
        tzset();
        unsigned mismatches = 0;
        for (int64_t t = utc(2026, 1, 1, 0, 30); t < utc(2031, 1, 1, 0, 0); t += HOUR) {
            time_t tt = (time_t)t;
            struct tm tm;
            localtime_r(&tt, &tm);
            if (tm.tm_gmtoff != ferry_tzrule_offset(&r, t) && mismatches++ < 3)
                fprintf(stderr, "%s at %lld: glibc %ld, rule %d\n", zones[z], (long long)t,
                        tm.tm_gmtoff, ferry_tzrule_offset(&r, t));
        }
        CU_ASSERT_EQUAL(mismatches, 0);
    }
    if (old_tz)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
}

/* A TZif v2 file made here: header, empty v1 block, header, empty v2 block
 * and the footer. */
static size_t make_tzif(uint8_t *buf, const char *footer, char version)
{
    size_t n = 0;
    for (int part = 0; part < 2; part++) {
        memset(buf + n, 0, 44);
        memcpy(buf + n, "TZif", 4);
        buf[n + 4] = (uint8_t)version;
        buf[n + 39] = 1; /* typecnt 1 */
        buf[n + 43] = 4; /* charcnt 4 */
        n += 44;
        memset(buf + n, 0, 6 + 4); /* one type (6 bytes), "UTC\0" */
        memcpy(buf + n + 6, "UTC", 4);
        n += 10;
    }
    n += (size_t)sprintf((char *)buf + n, "\n%s\n", footer);
    return n;
}

static void tzif_footer_is_read(void)
{
    uint8_t buf[256];
    char out[FERRY_TZRULE_MAX + 1];
    size_t n = make_tzif(buf, "CET-1CEST,M3.5.0,M10.5.0/3", '2');
    CU_ASSERT_EQUAL(ferry_tzfile_footer(buf, n, out, sizeof(out), NULL), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(out, "CET-1CEST,M3.5.0,M10.5.0/3");
    /* Version 1, truncation, a missing newline, an empty footer. */
    n = make_tzif(buf, "CET-1", '\0');
    CU_ASSERT_EQUAL(ferry_tzfile_footer(buf, n, out, sizeof(out), NULL), FERRY_E_MALFORMED);
    n = make_tzif(buf, "CET-1", '3');
    CU_ASSERT_EQUAL(ferry_tzfile_footer(buf, n - 1, out, sizeof(out), NULL), FERRY_E_MALFORMED);
    CU_ASSERT_EQUAL(ferry_tzfile_footer(buf, 50, out, sizeof(out), NULL), FERRY_E_MALFORMED);
    n = make_tzif(buf, "", '2');
    CU_ASSERT_EQUAL(ferry_tzfile_footer(buf, n, out, sizeof(out), NULL), FERRY_E_MALFORMED);
    n = make_tzif(buf, "CET-1CEST,M3.5.0,M10.5.0/3", '2');
    CU_ASSERT_EQUAL(ferry_tzfile_footer(buf, n, out, 8, NULL), FERRY_E_TOO_LARGE);
    /* A header whose counts point past the end. */
    n = make_tzif(buf, "CET-1", '2');
    buf[35] = 200;
    CU_ASSERT_EQUAL(ferry_tzfile_footer(buf, n, out, sizeof(out), NULL), FERRY_E_MALFORMED);
}

static void zone_names_cannot_escape(void)
{
    CU_ASSERT_TRUE(ferry_zone_name_valid("Europe/Berlin"));
    CU_ASSERT_TRUE(ferry_zone_name_valid("Etc/GMT+1"));
    CU_ASSERT_TRUE(ferry_zone_name_valid("UTC"));
    const char *bad[] = {
        "",        "/etc/passwd", "../etc",         "Europe/../../x", "Europe//Berlin",
        "Europe/", "a b",         "Europe/Berlin\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_FALSE(ferry_zone_name_valid(bad[i]));
    char rule[FERRY_TZRULE_MAX + 1];
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(ferry_tzfile_rule("../../etc/passwd", rule, sizeof(rule), &d),
                    FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_tzfile_rule("Mars/Olympus_Mons", rule, sizeof(rule), &d),
                    FERRY_E_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "Mars/Olympus_Mons"));
}

const char *const ferry_suite_name = "tzrule";
const struct ferry_test_case ferry_tests[] = {
    {"calendar_round_trips", calendar_round_trips},
    {"berlin_switches_on_the_last_sundays", berlin_switches_on_the_last_sundays},
    {"southern_rule_wraps_the_year", southern_rule_wraps_the_year},
    {"odd_forms_parse", odd_forms_parse},
    {"bad_rules_are_refused", bad_rules_are_refused},
    {"agrees_with_glibc_over_five_years", agrees_with_glibc_over_five_years},
    {"tzif_footer_is_read", tzif_footer_is_read},
    {"zone_names_cannot_escape", zone_names_cannot_escape},
    {NULL, NULL},
};
