#include "ferry_names.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define WILDCARD "+"

bool ferry_id_valid(const char *id)
{
    if (!id || !id[0] || id[0] == '.')
        return false;
    size_t n = 0;
    for (const char *p = id; *p; p++, n++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok || n >= FERRY_ID_MAX)
            return false;
    }
    return true;
}

/* One topic level that may also be the single-level wildcard, so the same
 * builder gives both a publish topic and a subscription filter. */
static bool level_valid(const char *s)
{
    return s && (strcmp(s, WILDCARD) == 0 || ferry_id_valid(s));
}

/* The fixed middle of each topic, between the fleet and the variable level. */
static const char *topic_kind(enum ferry_topic which)
{
    switch (which) {
    case FERRY_TOPIC_RELEASE:
        return "release";
    case FERRY_TOPIC_STREAM_REQ:
        return "stream/req";
    case FERRY_TOPIC_STREAM_DATA:
        return "stream/data";
    case FERRY_TOPIC_STATUS:
        return "status";
    case FERRY_TOPIC_STATUS_ACK:
        return "status-ack";
    case FERRY_TOPIC_PRESENCE:
        return "presence";
    case FERRY_TOPIC_NODE:
        return "node";
    case FERRY_TOPIC_META_ROOT:
        return "root";
    case FERRY_TOPIC_META_TIMESTAMP:
        return "timestamp";
    case FERRY_TOPIC_CONFIG:
        return "config";
    case FERRY_TOPIC_NODE_INFO:
        return "node-info";
    case FERRY_TOPIC_ROLLOUT:
        return "rollout";
    case FERRY_TOPIC_ROLLOUT_REPORT:
        return "rollout-report";
    }
    return NULL;
}

/* snprintf into out only when the whole result fits, so out stays untouched
 * on failure as the header promises. */
static enum ferry_err emit(char *out, size_t cap, const char *fmt, ...) FERRY_PRINTF(3, 4);

static enum ferry_err emit(char *out, size_t cap, const char *fmt, ...)
{
    char tmp[FERRY_TOPIC_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp) || (size_t)n >= cap)
        return FERRY_E_TOO_LARGE;
    memcpy(out, tmp, (size_t)n + 1);
    return FERRY_OK;
}

enum ferry_err ferry_topic(char *out, size_t cap, enum ferry_topic which, const char *fleet,
                           const char *sub, const char *node)
{
    const char *kind = topic_kind(which);
    if (!out || !kind || !ferry_id_valid(fleet) || !level_valid(sub))
        return FERRY_E_INVALID_ARG;
    if (which != FERRY_TOPIC_NODE && which != FERRY_TOPIC_CONFIG &&
        which != FERRY_TOPIC_NODE_INFO && which != FERRY_TOPIC_ROLLOUT)
        return emit(out, cap, FERRY_TOPIC_ROOT "/%s/%s/%s", fleet, kind, sub);
    if (!level_valid(node))
        return FERRY_E_INVALID_ARG;
    return emit(out, cap, FERRY_TOPIC_ROOT "/%s/%s/%s/%s", fleet, kind, sub, node);
}

enum ferry_err ferry_topic_shared(char *out, size_t cap, const char *filter)
{
    /* Only Ferry's own filters are shared; this also keeps a "$share/..."
     * filter from being nested inside another. */
    if (!out || !filter || strncmp(filter, FERRY_TOPIC_ROOT "/", strlen(FERRY_TOPIC_ROOT) + 1) != 0)
        return FERRY_E_INVALID_ARG;
    return emit(out, cap, "$share/" FERRY_SHARE_GROUP "/%s", filter);
}

enum ferry_err ferry_topic_last_level(const char *topic, char *out, size_t cap)
{
    if (!topic || !out)
        return FERRY_E_INVALID_ARG;
    const char *slash = strrchr(topic, '/');
    const char *last = slash ? slash + 1 : topic;
    /* The last level names a gateway or node that callers use as a file name
     * and a key: a wildcard or a forged "..", from a peer, must not pass. */
    if (!ferry_id_valid(last))
        return FERRY_E_INVALID_ARG;
    return emit(out, cap, "%s", last);
}
