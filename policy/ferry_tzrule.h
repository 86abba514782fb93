/* Local time from a POSIX TZ rule, with no tz database and no global state.
 *
 * A rollout's maintenance windows are wall-clock ranges in a named zone
 * ("Mon-Fri 01:00-04:00 Europe/Berlin"). The cloud looks the zone up once
 * (ferry_tzfile.h) and sends the zone's rule, the POSIX TZ string that ends
 * every TZif v2+ file ("CET-1CEST,M3.5.0,M10.5.0/3"), so a gateway computes
 * local time itself: no zoneinfo files on the gateway, no setenv("TZ") and
 * tzset() shared with other threads, and the same answer on both sides.
 *
 * The rule describes the zone's current and future behaviour (the TZif
 * table holds the past), which is all a rollout needs.
 *
 * Grammar (POSIX.1-2017 8.3 with RFC 8536's extension of hours to
 * -167..167): std offset [dst [offset] [,start[/time],end[/time]]], where
 * std and dst are 3..6 letters or <...> quoted (<+03>), offset is
 * [+-]hh[:mm[:ss]] *west* of UTC, and start/end are Jn (1..365, February 29
 * never counted), n (0..365, counted) or Mm.w.d (day d, 0 = Sunday, of week
 * w, 5 = the last, of month m). A dst without rules uses the US rules
 * (M3.2.0,M11.1.0), as glibc does. Offsets here are seconds *east* of UTC
 * (local = UTC + offset).
 *
 * Pure: no clock, no files, no locale. */
#ifndef FERRY_TZRULE_H
#define FERRY_TZRULE_H

#include "ferry_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FERRY_TZRULE_MAX 64 /* longest rule text accepted, without its NUL */

enum ferry_tztrans_kind {
    FERRY_TZTRANS_JULIAN1, /* Jn: day 1..365, February 29 never counted */
    FERRY_TZTRANS_JULIAN0, /* n: day 0..365, February 29 counted */
    FERRY_TZTRANS_MONTH,   /* Mm.w.d */
};

struct ferry_tztrans {
    enum ferry_tztrans_kind kind;
    int day;      /* JULIAN1, JULIAN0 */
    int month;    /* MONTH: 1..12 */
    int week;     /* MONTH: 1..5 (5 = the last) */
    int weekday;  /* MONTH: 0 = Sunday */
    int32_t time; /* seconds after local midnight, -167h..167h */
};

struct ferry_tzrule {
    int32_t std_off; /* seconds east of UTC */
    int32_t dst_off;
    bool has_dst;
    struct ferry_tztrans start, end; /* into and out of daylight time */
};

/* Parses text (NUL-terminated). FERRY_E_INVALID_ARG naming what is wrong. */
enum ferry_err ferry_tzrule_parse(const char *text, struct ferry_tzrule *out,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

/* Seconds east of UTC in effect at the UTC instant t. */
int32_t ferry_tzrule_offset(const struct ferry_tzrule *r, int64_t t);

/* The next UTC instant after t at which the offset changes, or INT64_MAX
 * when it never does. */
int64_t ferry_tzrule_next_transition(const struct ferry_tzrule *r, int64_t t);

/* Calendar helpers, proleptic Gregorian, shared with ferry_window. */
int64_t ferry_days_from_civil(int64_t y, unsigned m, unsigned d); /* days since 1970-01-01 */
void ferry_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);
unsigned ferry_weekday_from_days(int64_t days); /* 0 = Sunday */

#endif
