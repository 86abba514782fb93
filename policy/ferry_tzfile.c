#include "ferry_tzfile.h"

#include "ferry_bytes.h"
#include "ferry_fs.h"
#include "ferry_tzrule.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_LEN 44

bool ferry_zone_name_valid(const char *zone)
{
    size_t n = zone ? strlen(zone) : 0;
    if (n == 0 || n > FERRY_ZONE_MAX || zone[0] == '/' || zone[n - 1] == '/')
        return false;
    if (strspn(zone, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-") != n)
        return false;
    /* No empty, "." or ".." component ("." is not in the set, so only "//"). */
    return strstr(zone, "//") == NULL;
}

/* The length of the data block after a header, with time values of
 * time_size bytes; false if it overflows what any real file holds. */
static bool block_len(const uint8_t *h, size_t time_size, size_t *out)
{
    uint64_t isut = ferry_get_be32(h + 20), isstd = ferry_get_be32(h + 24),
             leap = ferry_get_be32(h + 28), timecnt = ferry_get_be32(h + 32),
             typecnt = ferry_get_be32(h + 36), charcnt = ferry_get_be32(h + 40);
    if (isut > 1000 || isstd > 1000 || leap > 10000 || timecnt > 100000 || typecnt > 1000 ||
        charcnt > 100000)
        return false;
    *out = (size_t)(timecnt * time_size + timecnt + typecnt * 6 + charcnt + leap * (time_size + 4) +
                    isstd + isut);
    return true;
}

enum ferry_err ferry_tzfile_footer(const uint8_t *buf, size_t len, char *out, size_t cap,
                                   struct ferry_diag *d)
{
    if (len < HEADER_LEN || memcmp(buf, "TZif", 4) != 0)
        return ferry_fail(d, FERRY_E_MALFORMED, "not a TZif file");
    if (buf[4] < '2')
        return ferry_fail(d, FERRY_E_MALFORMED, "TZif version 1 has no POSIX rule");
    size_t v1 = 0, v2 = 0;
    if (!block_len(buf, 4, &v1) || HEADER_LEN + v1 + HEADER_LEN > len)
        return ferry_fail(d, FERRY_E_MALFORMED, "TZif file is truncated");
    const uint8_t *h2 = buf + HEADER_LEN + v1;
    if (memcmp(h2, "TZif", 4) != 0 || !block_len(h2, 8, &v2))
        return ferry_fail(d, FERRY_E_MALFORMED, "TZif file lacks its 64-bit part");
    size_t pos = (size_t)(h2 - buf) + HEADER_LEN + v2;
    if (pos >= len || buf[pos] != '\n')
        return ferry_fail(d, FERRY_E_MALFORMED, "TZif file lacks its footer");
    const uint8_t *start = buf + pos + 1;
    const uint8_t *nl = memchr(start, '\n', len - pos - 1);
    if (!nl)
        return ferry_fail(d, FERRY_E_MALFORMED, "TZif footer is not terminated");
    size_t n = (size_t)(nl - start);
    if (n == 0)
        return ferry_fail(d, FERRY_E_MALFORMED, "TZif footer is empty (no rule for the future)");
    if (n >= cap)
        return ferry_fail(d, FERRY_E_TOO_LARGE, "TZif footer of %zu bytes is too long", n);
    memcpy(out, start, n);
    out[n] = 0;
    return FERRY_OK;
}

enum ferry_err ferry_tzfile_rule(const char *zone, char *out, size_t cap, struct ferry_diag *d)
{
    if (!ferry_zone_name_valid(zone))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "time zone '%.80s' is not a zone name such as Europe/Berlin or UTC",
                          zone ? zone : "");
    const char *dir = getenv("TZDIR");
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir && dir[0] ? dir : "/usr/share/zoneinfo", zone);
    uint8_t *buf = NULL;
    size_t len = 0;
    struct ferry_diag rd = {{0}};
    enum ferry_err err = ferry_read_file(path, FERRY_TZFILE_MAX_BYTES, &buf, &len, &rd);
    if (err == FERRY_E_NOT_FOUND) {
        free(buf);
        return ferry_fail(d, err, "time zone '%s' is not in the tz database (%s)", zone, path);
    }
    char rule[FERRY_TZRULE_MAX + 1];
    if (err == FERRY_OK)
        err = ferry_tzfile_footer(buf, len, rule, sizeof(rule), &rd);
    free(buf);
    struct ferry_tzrule r;
    if (err == FERRY_OK)
        err = ferry_tzrule_parse(rule, &r, &rd);
    if (err == FERRY_OK && strlen(rule) >= cap)
        err = ferry_fail(&rd, FERRY_E_TOO_LARGE, "rule '%s' is too long", rule);
    if (err != FERRY_OK)
        return ferry_fail(d, err, "time zone '%s' (%s): %s", zone, path, rd.msg);
    memcpy(out, rule, strlen(rule) + 1);
    return FERRY_OK;
}
