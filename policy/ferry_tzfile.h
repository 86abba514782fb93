/* A named time zone's current rule, read from the system tz database.
 *
 * Every TZif file of version 2 or later (RFC 8536) ends with a POSIX TZ
 * string describing the zone after the last transition of its table, e.g.
 * "CET-1CEST,M3.5.0,M10.5.0/3" for Europe/Berlin. That string is what the
 * cloud puts in a rollout's windows (ferry_tzrule.h), so only the cloud host
 * needs the tz database (Debian: tzdata).
 *
 * Zones are looked up under $TZDIR, else /usr/share/zoneinfo. A zone name is
 * 1..63 characters of [A-Za-z0-9/_+-], never starting with '/' and with no
 * empty, "." or ".." component, so it cannot leave that folder. */
#ifndef FERRY_TZFILE_H
#define FERRY_TZFILE_H

#include "ferry_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FERRY_TZFILE_MAX_BYTES (256u * 1024u) /* larger files are refused */
#define FERRY_ZONE_MAX         63

bool ferry_zone_name_valid(const char *zone);

/* The footer rule of the TZif bytes buf (len bytes), NUL-terminated into
 * out (cap bytes). FERRY_E_MALFORMED for anything that is not a TZif file
 * with a footer (version 1 files have none), FERRY_E_TOO_LARGE when the rule
 * does not fit cap. */
enum ferry_err ferry_tzfile_footer(const uint8_t *buf, size_t len, char *out, size_t cap,
                                   struct ferry_diag *d) FERRY_MUST_CHECK;

/* Reads zone's file and returns its footer rule, checked to parse
 * (ferry_tzrule_parse). FERRY_E_INVALID_ARG for a bad name,
 * FERRY_E_NOT_FOUND for a zone the database lacks, the errors above. */
enum ferry_err ferry_tzfile_rule(const char *zone, char *out, size_t cap,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
