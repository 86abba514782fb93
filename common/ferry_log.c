#include "ferry_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_component = "ferry";
static enum ferry_log_level log_level = FERRY_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void ferry_log_init(const char *component, enum ferry_log_level level)
{
    log_component = component;
    log_level = level;
}

enum ferry_err ferry_log_level_parse(const char *s, enum ferry_log_level *out)
{
    for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum ferry_log_level)i;
            return FERRY_OK;
        }
    }
    return FERRY_E_INVALID_ARG;
}

bool ferry_log_enabled(enum ferry_log_level level)
{
    return level <= log_level;
}

FERRY_PRINTF(2, 0)
static void vlog(enum ferry_log_level level, const char *fmt, va_list ap)
{
    if (!ferry_log_enabled(level))
        return;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line),
                     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s: ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level], log_component);
    if (n < 0)
        return;
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    /* Control characters from peers must not forge log lines. */
    for (size_t i = (size_t)n; i < len; i++) {
        if ((unsigned char)line[i] < 0x20)
            line[i] = '?';
    }
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void ferry_log(enum ferry_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(level, fmt, ap);
    va_end(ap);
}

/* One per level: the variadic arguments cannot be passed on. */
#define LEVEL_FN(name, level)                                                                      \
    void name(const char *fmt, ...)                                                                \
    {                                                                                              \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        vlog(level, fmt, ap);                                                                      \
        va_end(ap);                                                                                \
    }
LEVEL_FN(ferry_log_err, FERRY_LOG_ERROR)
LEVEL_FN(ferry_log_warn, FERRY_LOG_WARN)
LEVEL_FN(ferry_log_info, FERRY_LOG_INFO)
LEVEL_FN(ferry_log_debug, FERRY_LOG_DEBUG)
