/* One line per event on stderr: "<ISO-8601 UTC> <level> <component>: <message>".
 * The level is process-wide and set once at start-up, before any thread runs,
 * so reading it needs no lock; each line is written with one write(2), so
 * lines from Paho's threads and the event loop do not interleave. */
#ifndef FERRY_LOG_H
#define FERRY_LOG_H

#include "ferry_err.h"

#include <stdbool.h>

enum ferry_log_level {
    FERRY_LOG_ERROR = 0,
    FERRY_LOG_WARN,
    FERRY_LOG_INFO,
    FERRY_LOG_DEBUG,
};

/* Sets the component name (static string, not copied) and the level. */
void ferry_log_init(const char *component, enum ferry_log_level level);

/* Parses "error", "warn", "info" or "debug". */
enum ferry_err ferry_log_level_parse(const char *s, enum ferry_log_level *out) FERRY_MUST_CHECK;

bool ferry_log_enabled(enum ferry_log_level level);

void ferry_log(enum ferry_log_level level, const char *fmt, ...) FERRY_PRINTF(2, 3);

/* ferry_log() at one level. (Not LOG_ERR and the like: those are syslog's
 * level numbers, which libcoap's headers bring in.) */
void ferry_log_err(const char *fmt, ...) FERRY_PRINTF(1, 2);
void ferry_log_warn(const char *fmt, ...) FERRY_PRINTF(1, 2);
void ferry_log_info(const char *fmt, ...) FERRY_PRINTF(1, 2);
void ferry_log_debug(const char *fmt, ...) FERRY_PRINTF(1, 2);

#endif
