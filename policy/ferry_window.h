/* Maintenance windows: when a rollout lets a node install, as weekday and
 * wall-clock ranges in a named time zone, like AWS IoT Jobs' cron windows:
 *
 *   "Mon-Fri 01:00-04:00 Europe/Berlin"
 *   "Sat,Sun 00:00-24:00 Mon-Fri 22:00-02:00,12:00-13:00 UTC"
 *
 * Text form: one or more groups of DAYS followed by one or more TIME
 * ranges, then the zone. DAYS is "daily" or a comma list of days (Mon..Sun,
 * any case) and spans ("Mon-Fri", "Fri-Mon" wraps); TIME is HH:MM-HH:MM
 * (00:00..24:00), several joined by commas or given as separate words. A
 * range whose end is not after its start runs past midnight into the next
 * day, and belongs to the day it starts on ("Fri 22:00-02:00" is Friday
 * 22:00 to Saturday 02:00).
 *
 * Meaning: the window is open at an instant when the local wall-clock time
 * there (from the zone's rule, ferry_tzrule.h) falls in a range of its day,
 * start included, end excluded. So a range names wall-clock times: on the
 * day clocks go forward the hour that does not exist is simply not in it,
 * and on the day they go back the repeated hour is in it twice.
 *
 * The struct is what travels to gateways (proto/ferry_rollout.h): the zone's
 * name for people, its rule, and the ranges. Pure. */
#ifndef FERRY_WINDOW_H
#define FERRY_WINDOW_H

#include "ferry_err.h"
#include "ferry_tzfile.h"
#include "ferry_tzrule.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FERRY_WINDOW_MAX_RANGES 16
#define FERRY_WINDOW_TEXT_MAX   512 /* ferry_window_format() output, NUL included */
#define FERRY_WINDOW_ALL_DAYS   0x7f

struct ferry_window_range {
    uint8_t days;  /* bit d set: open on weekday d (0 = Sunday) */
    uint16_t from; /* minutes after local midnight, 0..1439 */
    uint16_t to;   /* 1..1440; <= from: runs into the next day */
};

struct ferry_window {
    char zone[FERRY_ZONE_MAX + 1];
    char rule[FERRY_TZRULE_MAX + 1];
    struct ferry_tzrule tz; /* rule, parsed */
    struct ferry_window_range r[FERRY_WINDOW_MAX_RANGES];
    size_t n; /* 1..FERRY_WINDOW_MAX_RANGES */
};

/* Looks up the zone's rule: ferry_tzfile_rule() on the cloud, a stub in tests. */
typedef enum ferry_err (*ferry_window_zone_fn)(void *arg, const char *zone, char *rule, size_t cap,
                                               struct ferry_diag *d);

/* Parses the text form (above). The zone is resolved through lookup (pass
 * NULL for ferry_tzfile_rule). FERRY_E_INVALID_ARG naming the word at fault,
 * or the lookup's error. */
enum ferry_err ferry_window_parse(const char *text, ferry_window_zone_fn lookup, void *arg,
                                  struct ferry_window *out, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Fills w from parts received on the wire (zone, rule, ranges), checking
 * them as parse would. FERRY_E_INVALID_ARG naming what is wrong. */
enum ferry_err ferry_window_set(struct ferry_window *w, const char *zone, const char *rule,
                                const struct ferry_window_range *r, size_t n,
                                struct ferry_diag *d) FERRY_MUST_CHECK;

/* The canonical text form ("Mon-Fri 01:00-04:00 Europe/Berlin"). */
void ferry_window_format(const struct ferry_window *w, char out[FERRY_WINDOW_TEXT_MAX]);

/* Whether the window is open at UTC instant t. */
bool ferry_window_open(const struct ferry_window *w, int64_t t);

/* The first UTC instant after t at which ferry_window_open() changes, or
 * INT64_MAX when it does not within the next eight days (a window that is
 * always open, or never). */
int64_t ferry_window_next_change(const struct ferry_window *w, int64_t t);

#endif
