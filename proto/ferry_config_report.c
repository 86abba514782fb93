#include "ferry_config_report.h"

#include "ferry_json.h"
#include "ferry_manifest.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHAT         "configuration report"
#define JSON_INT_MAX ((int64_t)1 << 53)

static enum ferry_err check(const struct ferry_config_report *r, struct ferry_diag *d)
{
    if (!ferry_id_valid(r->node))
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field 'node' must be an identifier");
    if (r->gateway[0] && !ferry_id_valid(r->gateway))
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field 'gateway' must be an identifier");
    if (r->ts < 0 || r->ts > JSON_INT_MAX)
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field 'ts' out of range");
    if (r->path[0] != '/' || strnlen(r->path, sizeof(r->path)) > FERRY_CONFIG_PATH_MAX)
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field 'path' must be an absolute path");
    size_t n = strnlen(r->properties, sizeof(r->properties));
    if (n == 0 || n > FERRY_CONFIG_PROPERTIES_MAX ||
        !ferry_utf8_valid((const uint8_t *)r->properties, n))
        return ferry_fail(d, FERRY_E_MALFORMED,
                          WHAT ": field 'properties' must be 1..%d bytes of UTF-8",
                          FERRY_CONFIG_PROPERTIES_MAX);
    return FERRY_OK;
}

enum ferry_err ferry_config_report_encode(const struct ferry_config_report *r, char **out,
                                          size_t *len, struct ferry_diag *d)
{
    if (strnlen(r->properties, sizeof(r->properties)) > FERRY_CONFIG_PROPERTIES_MAX)
        return ferry_fail(d, FERRY_E_TOO_LARGE, WHAT ": the properties exceed %d bytes",
                          FERRY_CONFIG_PROPERTIES_MAX);
    enum ferry_err err = check(r, d);
    if (err != FERRY_OK)
        return err == FERRY_E_MALFORMED ? FERRY_E_INVALID_ARG : err;
    cJSON *root = cJSON_CreateObject();
    char ts[24];
    snprintf(ts, sizeof(ts), "%" PRId64, r->ts);
    bool ok = root && cJSON_AddRawToObject(root, "format", "1") &&
              cJSON_AddStringToObject(root, "node", r->node) &&
              (!r->gateway[0] || cJSON_AddStringToObject(root, "gateway", r->gateway)) &&
              cJSON_AddBoolToObject(root, "healthy", r->healthy) &&
              cJSON_AddRawToObject(root, "ts", ts) &&
              cJSON_AddStringToObject(root, "path", r->path) &&
              cJSON_AddStringToObject(root, "properties", r->properties);
    char *text = NULL;
    size_t n = 0;
    err = ok ? ferry_json_print(root, &text, &n, d)
             : ferry_fail(d, FERRY_E_NOMEM, WHAT ": out of memory");
    cJSON_Delete(root);
    if (err == FERRY_OK && n > FERRY_CONFIG_REPORT_MAX_BYTES) {
        free(text);
        return ferry_fail(d, FERRY_E_TOO_LARGE, WHAT ": %zu bytes encoded, the cap is %d", n,
                          FERRY_CONFIG_REPORT_MAX_BYTES);
    }
    if (err != FERRY_OK)
        return err;
    *out = text;
    *len = n;
    return FERRY_OK;
}

enum ferry_err ferry_config_report_decode(const uint8_t *buf, size_t len,
                                          struct ferry_config_report *out, struct ferry_diag *d)
{
    static const char *const keys[] = {"format", "node", "gateway",    "healthy",
                                       "ts",     "path", "properties", NULL};
    struct ferry_config_report r;
    memset(&r, 0, sizeof(r));
    cJSON *root = NULL;
    int64_t format = 0;
    enum ferry_err err = ferry_json_parse(buf, len, FERRY_CONFIG_REPORT_MAX_BYTES, WHAT, &root, d);
    if (err == FERRY_OK)
        err = ferry_json_only_keys(root, keys, true, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_int(root, "format", true, 0, JSON_INT_MAX, &format, WHAT, d);
    if (err == FERRY_OK && format != FERRY_CONFIG_REPORT_FORMAT)
        err = ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field 'format' must be %d",
                         FERRY_CONFIG_REPORT_FORMAT);
    if (err == FERRY_OK)
        err = ferry_json_str(root, "node", true, FERRY_ID_MAX, r.node, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_str(root, "gateway", false, FERRY_ID_MAX, r.gateway, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_bool(root, "healthy", true, &r.healthy, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_int(root, "ts", true, 0, JSON_INT_MAX, &r.ts, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_str(root, "path", true, FERRY_CONFIG_PATH_MAX, r.path, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_str(root, "properties", true, FERRY_CONFIG_PROPERTIES_MAX, r.properties,
                             WHAT, d);
    if (err == FERRY_OK)
        err = check(&r, d);
    cJSON_Delete(root);
    if (err == FERRY_OK)
        *out = r;
    return err;
}
