#include "ferry_window.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DAY_MINUTES 1440
#define MAX_WORDS   64
#define WORD_MAX    128

static const char *const DAY_NAMES[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

/* ---- parsing -------------------------------------------------------------- */

static int day_index(const char *s, size_t n)
{
    for (int i = 0; i < 7; i++)
        if (n == 3 && strncasecmp(s, DAY_NAMES[i], 3) == 0)
            return i;
    return -1;
}

/* "daily", "Mon", "Mon-Fri", "Sat,Sun", "Fri-Mon" -> mask; 0 if not days. */
static uint8_t parse_days(const char *w)
{
    if (strcasecmp(w, "daily") == 0 || strcmp(w, "*") == 0)
        return FERRY_WINDOW_ALL_DAYS;
    uint8_t mask = 0;
    const char *p = w;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *dash = memchr(p, '-', n);
        int a = day_index(p, dash ? (size_t)(dash - p) : n);
        int b = dash ? day_index(dash + 1, n - (size_t)(dash - p) - 1) : a;
        if (a < 0 || b < 0)
            return 0;
        for (int d = a;; d = (d + 1) % 7) {
            mask |= (uint8_t)(1u << d);
            if (d == b)
                break;
        }
        p += n;
        if (*p == ',' && *++p == 0)
            return 0;
    }
    return mask;
}

/* "HH:MM" -> minutes, 0..1440 (24:00 only as 24:00); -1 if not a time. */
static int parse_clock(const char *s, size_t n)
{
    if (n != 5 || !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || s[2] != ':' ||
        !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
        return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 24 || m > 59 || (h == 24 && m != 0))
        return -1;
    return h * 60 + m;
}

static enum ferry_err add_range(struct ferry_window *w, uint8_t days, const char *s, size_t n,
                                struct ferry_diag *d)
{
    const char *dash = memchr(s, '-', n);
    int from = dash ? parse_clock(s, (size_t)(dash - s)) : -1;
    int to = dash ? parse_clock(dash + 1, n - (size_t)(dash - s) - 1) : -1;
    if (from < 0 || to < 0 || from == DAY_MINUTES)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "window: '%.*s' is not a time range HH:MM-HH:MM (00:00..24:00)", (int)n,
                          s);
    if (to == 0)
        to = DAY_MINUTES; /* "22:00-00:00": until midnight */
    if (from == to)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "window: '%.*s' starts and ends at the same time",
                          (int)n, s);
    if (w->n == FERRY_WINDOW_MAX_RANGES)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "window: more than %d time ranges",
                          FERRY_WINDOW_MAX_RANGES);
    w->r[w->n++] = (struct ferry_window_range){days, (uint16_t)from, (uint16_t)to};
    return FERRY_OK;
}

static enum ferry_err lookup_zone(void *arg, const char *zone, char *rule, size_t cap,
                                  struct ferry_diag *d)
{
    (void)arg;
    return ferry_tzfile_rule(zone, rule, cap, d);
}

enum ferry_err ferry_window_parse(const char *text, ferry_window_zone_fn lookup, void *arg,
                                  struct ferry_window *out, struct ferry_diag *d)
{
    char words[MAX_WORDS][WORD_MAX];
    size_t nw = 0;
    for (const char *p = text ? text : ""; *p;) {
        p += strspn(p, " \t");
        size_t n = strcspn(p, " \t");
        if (n == 0)
            break;
        if (nw == MAX_WORDS || n >= WORD_MAX)
            return ferry_fail(d, FERRY_E_INVALID_ARG, "window: too long");
        memcpy(words[nw], p, n);
        words[nw++][n] = 0;
        p += n;
    }
    if (nw < 3)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "window '%.80s': expected days, times and a zone, e.g. "
                          "'Mon-Fri 01:00-04:00 Europe/Berlin'",
                          text ? text : "");
    struct ferry_window *w = calloc(1, sizeof(*w));
    if (!w)
        return ferry_fail(d, FERRY_E_NOMEM, "window: out of memory");
    enum ferry_err err = FERRY_OK;
    uint8_t days = 0;
    bool times_for_days = true;
    for (size_t i = 0; i + 1 < nw && err == FERRY_OK; i++) {
        if (isdigit((unsigned char)words[i][0])) {
            if (!days) {
                err = ferry_fail(d, FERRY_E_INVALID_ARG,
                                 "window: '%s' comes before any days (e.g. daily, Mon-Fri)",
                                 words[i]);
                break;
            }
            for (const char *p = words[i]; *p && err == FERRY_OK;) {
                size_t n = strcspn(p, ",");
                err = add_range(w, days, p, n, d);
                p += n + (p[n] == ',');
            }
            times_for_days = true;
        } else if (!times_for_days) {
            err = ferry_fail(d, FERRY_E_INVALID_ARG, "window: days '%s' have no time range",
                             words[i - 1]);
        } else if (!(days = parse_days(words[i]))) {
            err = ferry_fail(d, FERRY_E_INVALID_ARG,
                             "window: '%s' is neither days (daily, Mon-Fri, Sat,Sun) nor a time "
                             "range",
                             words[i]);
        } else {
            times_for_days = false;
        }
    }
    if (err == FERRY_OK && !times_for_days)
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "window: days '%s' have no time range",
                         words[nw - 2]);
    const char *zone = words[nw - 1];
    char rule[FERRY_TZRULE_MAX + 1];
    if (err == FERRY_OK && !ferry_zone_name_valid(zone))
        err = ferry_fail(d, FERRY_E_INVALID_ARG,
                         "window: the last word '%s' must be a time zone such as Europe/Berlin "
                         "or UTC",
                         zone);
    if (err == FERRY_OK)
        err = (lookup ? lookup : lookup_zone)(arg, zone, rule, sizeof(rule), d);
    if (err == FERRY_OK)
        err = ferry_window_set(out, zone, rule, w->r, w->n, d);
    free(w);
    return err;
}

enum ferry_err ferry_window_set(struct ferry_window *w, const char *zone, const char *rule,
                                const struct ferry_window_range *r, size_t n, struct ferry_diag *d)
{
    if (!ferry_zone_name_valid(zone))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "window: '%.80s' is not a zone name",
                          zone ? zone : "");
    if (n == 0 || n > FERRY_WINDOW_MAX_RANGES)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "window: %zu ranges, must be 1..%d", n,
                          FERRY_WINDOW_MAX_RANGES);
    for (size_t i = 0; i < n; i++) {
        if (!r[i].days || r[i].days > FERRY_WINDOW_ALL_DAYS || r[i].from >= DAY_MINUTES ||
            r[i].to == 0 || r[i].to > DAY_MINUTES || r[i].to == r[i].from)
            return ferry_fail(d, FERRY_E_INVALID_ARG, "window: range %zu is out of range", i);
    }
    struct ferry_tzrule tz;
    enum ferry_err err = ferry_tzrule_parse(rule, &tz, d);
    if (err != FERRY_OK)
        return err;
    memset(w, 0, sizeof(*w));
    snprintf(w->zone, sizeof(w->zone), "%s", zone);
    snprintf(w->rule, sizeof(w->rule), "%s", rule);
    w->tz = tz;
    memcpy(w->r, r, n * sizeof(*r));
    w->n = n;
    return FERRY_OK;
}

/* ---- formatting ------------------------------------------------------------- */

static void format_days(uint8_t mask, char *out, size_t cap)
{
    if (mask == FERRY_WINDOW_ALL_DAYS) {
        snprintf(out, cap, "daily");
        return;
    }
    /* Monday first: runs of three or more become "Mon-Fri". */
    static const int order[7] = {1, 2, 3, 4, 5, 6, 0};
    size_t used = 0;
    out[0] = 0;
    for (int i = 0; i < 7;) {
        if (!(mask & (1u << order[i]))) {
            i++;
            continue;
        }
        int j = i;
        while (j + 1 < 7 && (mask & (1u << order[j + 1])))
            j++;
        const char *sep = used ? "," : "";
        if (j - i >= 2)
            used += (size_t)snprintf(out + used, cap - used, "%s%s-%s", sep, DAY_NAMES[order[i]],
                                     DAY_NAMES[order[j]]);
        else
            for (int k = i; k <= j; k++, sep = ",")
                used += (size_t)snprintf(out + used, cap - used, "%s%s", sep, DAY_NAMES[order[k]]);
        i = j + 1;
    }
}

void ferry_window_format(const struct ferry_window *w, char out[FERRY_WINDOW_TEXT_MAX])
{
    size_t used = 0, cap = FERRY_WINDOW_TEXT_MAX;
    out[0] = 0;
    for (size_t i = 0; i < w->n && used < cap; i++) {
        const struct ferry_window_range *r = &w->r[i];
        char days[48];
        format_days(r->days, days, sizeof(days));
        bool same = i > 0 && w->r[i - 1].days == r->days;
        used += (size_t)snprintf(out + used, cap - used, "%s%s%s%02u:%02u-%02u:%02u",
                                 same ? "," : (i ? " " : ""), same ? "" : days, same ? "" : " ",
                                 r->from / 60, r->from % 60, r->to / 60, r->to % 60);
    }
    if (used < cap)
        snprintf(out + used, cap - used, " %s", w->zone);
}

/* ---- evaluation ------------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

bool ferry_window_open(const struct ferry_window *w, int64_t t)
{
    int64_t local = t + ferry_tzrule_offset(&w->tz, t);
    int64_t day = floor_div(local, 86400);
    int64_t sec = local - day * 86400;
    unsigned wd = ferry_weekday_from_days(day), prev = (wd + 6) % 7;
    for (size_t i = 0; i < w->n; i++) {
        const struct ferry_window_range *r = &w->r[i];
        int64_t from = (int64_t)r->from * 60, to = (int64_t)r->to * 60;
        if (r->to > r->from) {
            if ((r->days & (1u << wd)) && sec >= from && sec < to)
                return true;
        } else if (((r->days & (1u << wd)) && sec >= from) ||
                   ((r->days & (1u << prev)) && sec < to)) {
            return true;
        }
    }
    return false;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int64_t ferry_window_next_change(const struct ferry_window *w, int64_t t)
{
    /* Candidates: every range boundary of the days around t, read as local
     * time under either offset (one of the two is the real instant; the
     * other is checked and passed over), and the zone's transitions. The
     * state is constant between consecutive candidates, so the first one
     * whose state differs from t's is the change. */
    enum { DAYS_BEFORE = 1, DAYS_AFTER = 9 };
    int64_t c[(DAYS_BEFORE + DAYS_AFTER) * FERRY_WINDOW_MAX_RANGES * 4 + 4];
    size_t nc = 0;
    int64_t today = floor_div(t + ferry_tzrule_offset(&w->tz, t), 86400);
    int32_t offs[2] = {w->tz.std_off, w->tz.has_dst ? w->tz.dst_off : w->tz.std_off};
    for (int64_t k = today - DAYS_BEFORE; k < today + DAYS_AFTER; k++) {
        for (size_t i = 0; i < w->n; i++) {
            int64_t from = k * 86400 + (int64_t)w->r[i].from * 60;
            int64_t to =
                k * 86400 + (int64_t)w->r[i].to * 60 + (w->r[i].to <= w->r[i].from ? 86400 : 0);
            for (int o = 0; o < 2; o++) {
                c[nc++] = from - offs[o];
                c[nc++] = to - offs[o];
            }
        }
    }
    int64_t tr = t;
    for (int i = 0; i < 4 && (tr = ferry_tzrule_next_transition(&w->tz, tr)) != INT64_MAX; i++)
        c[nc++] = tr;
    qsort(c, nc, sizeof(c[0]), cmp_i64);
    bool now = ferry_window_open(w, t);
    for (size_t i = 0; i < nc; i++)
        if (c[i] > t && ferry_window_open(w, c[i]) != now)
            return c[i];
    return INT64_MAX;
}
