#include "ferry_tzrule.h"

#include <ctype.h>
#include <string.h>

#define HOUR (INT32_C(3600))

/* ---- calendar ------------------------------------------------------------- */

/* Howard Hinnant's algorithms (public domain), exact for every int64 year
 * this code meets. */
int64_t ferry_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void ferry_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

unsigned ferry_weekday_from_days(int64_t z)
{
    /* 1970-01-01 was a Thursday (4). */
    return (unsigned)((z % 7 + 7 + 4) % 7);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* ---- parsing -------------------------------------------------------------- */

struct cursor {
    const char *p;
    const char *text;
    struct ferry_diag *d;
};

static enum ferry_err bad(struct cursor *c, const char *what)
{
    return ferry_fail(c->d, FERRY_E_INVALID_ARG, "time zone rule '%.64s': %s at offset %d", c->text,
                      what, (int)(c->p - c->text));
}

static enum ferry_err parse_name(struct cursor *c)
{
    size_t n = 0;
    if (*c->p == '<') {
        c->p++;
        while (c->p[n] && c->p[n] != '>') {
            if (!isalnum((unsigned char)c->p[n]) && c->p[n] != '+' && c->p[n] != '-')
                return bad(c, "a quoted name holds a character other than a letter, digit, + or -");
            n++;
        }
        if (c->p[n] != '>' || n < 3 || n > 10)
            return bad(c, "a quoted name must be 3..10 characters inside < >");
        c->p += n + 1;
        return FERRY_OK;
    }
    while (isalpha((unsigned char)c->p[n]))
        n++;
    if (n < 3 || n > 10)
        return bad(c, "a zone abbreviation must be 3..10 letters");
    c->p += n;
    return FERRY_OK;
}

/* [+-]hh[:mm[:ss]] with hh <= max_h; *out in seconds with the sign given. */
static enum ferry_err parse_hms(struct cursor *c, int max_h, int32_t *out)
{
    int sign = 1;
    if (*c->p == '+' || *c->p == '-')
        sign = *c->p++ == '-' ? -1 : 1;
    int32_t parts[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            if (*c->p != ':')
                break;
            c->p++;
        }
        if (!isdigit((unsigned char)*c->p))
            return bad(c, "expected a number");
        int32_t v = 0;
        int digits = 0;
        while (isdigit((unsigned char)*c->p) && digits < 3) {
            v = v * 10 + (*c->p++ - '0');
            digits++;
        }
        if (isdigit((unsigned char)*c->p))
            return bad(c, "a number is too long");
        parts[i] = v;
    }
    if (parts[0] > max_h || parts[1] > 59 || parts[2] > 59)
        return bad(c, "hours, minutes or seconds out of range");
    *out = sign * (parts[0] * HOUR + parts[1] * 60 + parts[2]);
    return FERRY_OK;
}

static enum ferry_err parse_int(struct cursor *c, int lo, int hi, int *out)
{
    if (!isdigit((unsigned char)*c->p))
        return bad(c, "expected a number");
    int v = 0, digits = 0;
    while (isdigit((unsigned char)*c->p) && digits < 4) {
        v = v * 10 + (*c->p++ - '0');
        digits++;
    }
    if (v < lo || v > hi || isdigit((unsigned char)*c->p))
        return bad(c, "a day, week or month is out of range");
    *out = v;
    return FERRY_OK;
}

static enum ferry_err parse_trans(struct cursor *c, struct ferry_tztrans *t)
{
    enum ferry_err err;
    memset(t, 0, sizeof(*t));
    t->time = 2 * HOUR;
    if (*c->p == 'J') {
        c->p++;
        t->kind = FERRY_TZTRANS_JULIAN1;
        err = parse_int(c, 1, 365, &t->day);
    } else if (*c->p == 'M') {
        c->p++;
        t->kind = FERRY_TZTRANS_MONTH;
        err = parse_int(c, 1, 12, &t->month);
        if (err == FERRY_OK && *c->p++ != '.')
            err = bad(c, "expected '.' in Mm.w.d");
        if (err == FERRY_OK)
            err = parse_int(c, 1, 5, &t->week);
        if (err == FERRY_OK && *c->p++ != '.')
            err = bad(c, "expected '.' in Mm.w.d");
        if (err == FERRY_OK)
            err = parse_int(c, 0, 6, &t->weekday);
    } else {
        t->kind = FERRY_TZTRANS_JULIAN0;
        err = parse_int(c, 0, 365, &t->day);
    }
    if (err == FERRY_OK && *c->p == '/') {
        c->p++;
        err = parse_hms(c, 167, &t->time);
    }
    return err;
}

enum ferry_err ferry_tzrule_parse(const char *text, struct ferry_tzrule *out, struct ferry_diag *d)
{
    struct ferry_tzrule r;
    memset(&r, 0, sizeof(r));
    if (!text || !text[0] || strlen(text) > FERRY_TZRULE_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "time zone rule: must be 1..%d characters",
                          FERRY_TZRULE_MAX);
    struct cursor c = {text, text, d};
    int32_t west = 0;
    enum ferry_err err = parse_name(&c);
    if (err == FERRY_OK)
        err = parse_hms(&c, 24, &west);
    if (err != FERRY_OK)
        return err;
    r.std_off = -west;
    if (*c.p) {
        r.has_dst = true;
        err = parse_name(&c);
        r.dst_off = r.std_off + HOUR;
        if (err == FERRY_OK && *c.p && *c.p != ',') {
            err = parse_hms(&c, 24, &west);
            r.dst_off = -west;
        }
        if (err != FERRY_OK)
            return err;
        if (*c.p == ',') {
            c.p++;
            err = parse_trans(&c, &r.start);
            if (err == FERRY_OK && *c.p++ != ',')
                err = bad(&c, "expected ',' before the end of daylight time");
            if (err == FERRY_OK)
                err = parse_trans(&c, &r.end);
            if (err != FERRY_OK)
                return err;
        } else {
            r.start = (struct ferry_tztrans){FERRY_TZTRANS_MONTH, 0, 3, 2, 0, 2 * HOUR};
            r.end = (struct ferry_tztrans){FERRY_TZTRANS_MONTH, 0, 11, 1, 0, 2 * HOUR};
        }
    }
    if (*c.p)
        return bad(&c, "unexpected text");
    *out = r;
    return FERRY_OK;
}

/* ---- evaluation ----------------------------------------------------------- */

static int64_t trans_day(const struct ferry_tztrans *t, int64_t y)
{
    int64_t jan1 = ferry_days_from_civil(y, 1, 1);
    switch (t->kind) {
    case FERRY_TZTRANS_JULIAN1:
        return jan1 + t->day - 1 + (is_leap(y) && t->day >= 60 ? 1 : 0);
    case FERRY_TZTRANS_JULIAN0:
        return jan1 + t->day;
    case FERRY_TZTRANS_MONTH:
        break;
    }
    int64_t first = ferry_days_from_civil(y, (unsigned)t->month, 1);
    int64_t next = t->month == 12 ? ferry_days_from_civil(y + 1, 1, 1)
                                  : ferry_days_from_civil(y, (unsigned)t->month + 1, 1);
    int64_t day =
        first + (int64_t)((unsigned)(t->weekday + 7) - ferry_weekday_from_days(first)) % 7;
    day += (int64_t)(t->week - 1) * 7;
    while (day >= next)
        day -= 7;
    return day;
}

/* The UTC instant of transition t in year y; `before` is the offset in
 * effect just before it, in which its local time is given. */
static int64_t trans_utc(const struct ferry_tztrans *t, int64_t y, int32_t before)
{
    return trans_day(t, y) * 86400 + t->time - before;
}

static int64_t year_of(int64_t t, int32_t off)
{
    int64_t y;
    unsigned m, d;
    ferry_civil_from_days(floor_div(t + off, 86400), &y, &m, &d);
    return y;
}

int32_t ferry_tzrule_offset(const struct ferry_tzrule *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_off;
    int64_t y = year_of(t, r->std_off);
    int64_t s = trans_utc(&r->start, y, r->std_off);
    int64_t e = trans_utc(&r->end, y, r->dst_off);
    bool dst = s < e ? (t >= s && t < e) : !(t >= e && t < s);
    return dst ? r->dst_off : r->std_off;
}

int64_t ferry_tzrule_next_transition(const struct ferry_tzrule *r, int64_t t)
{
    if (!r->has_dst || r->dst_off == r->std_off)
        return INT64_MAX;
    int64_t y = year_of(t, r->std_off), best = INT64_MAX;
    for (int64_t k = y - 1; k <= y + 1; k++) {
        int64_t c[2] = {trans_utc(&r->start, k, r->std_off), trans_utc(&r->end, k, r->dst_off)};
        for (int i = 0; i < 2; i++)
            if (c[i] > t && c[i] < best &&
                ferry_tzrule_offset(r, c[i]) != ferry_tzrule_offset(r, t))
                best = c[i];
    }
    return best;
}
