#include "ferry_api.h"

#include "ferry_json.h"

#include <string.h>

#define WHAT "request body"

/* No byte below 0x20 and no DEL: the text reaches a terminal's table. */
static enum ferry_err printable(const char *s, const char *key, struct ferry_diag *d)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return ferry_fail(d, FERRY_E_MALFORMED,
                              WHAT ": field '%s' must not hold control characters", key);
    }
    return FERRY_OK;
}

enum ferry_err ferry_api_action_from_json(const uint8_t *buf, size_t len,
                                          struct ferry_api_action *out, struct ferry_diag *d)
{
    static const char *const known[] = {"reason", "by", NULL};
    struct ferry_api_action a;
    memset(&a, 0, sizeof(a));
    if (len == 0) {
        *out = a;
        return FERRY_OK;
    }
    cJSON *o = NULL;
    enum ferry_err err = ferry_json_parse(buf, len, FERRY_API_BODY_MAX, WHAT, &o, d);
    if (err == FERRY_OK)
        err = ferry_json_only_keys(o, known, false, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_str(o, "reason", false, FERRY_API_REASON_MAX, a.reason, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_str(o, "by", false, FERRY_API_BY_MAX, a.by, WHAT, d);
    if (err == FERRY_OK)
        err = printable(a.reason, "reason", d);
    if (err == FERRY_OK)
        err = printable(a.by, "by", d);
    cJSON_Delete(o);
    if (err == FERRY_OK)
        *out = a;
    return err;
}
