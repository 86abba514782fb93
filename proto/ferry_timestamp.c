#include "ferry_timestamp.h"

#include "ferry_hex.h"
#include "ferry_json.h"
#include "ferry_names.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHAT         "timestamp"
#define JSON_INT_MAX (INT64_C(1) << 53)

static enum ferry_err bad(struct ferry_diag *d, const char *field, const char *why)
{
    return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field '%s' %s", field, why);
}

static enum ferry_err validate(const struct ferry_timestamp *t, struct ferry_diag *d)
{
    if (!ferry_id_valid(t->product))
        return bad(d, "product", "must be an identifier");
    if (t->version < 1 || t->version > (uint64_t)JSON_INT_MAX)
        return bad(d, "version", "must be in 1..2^53");
    if (t->issued_at < 0 || t->issued_at > JSON_INT_MAX || t->expires_at > JSON_INT_MAX)
        return bad(d, "issued_at", "out of range");
    if (t->expires_at <= t->issued_at)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          WHAT ": field 'expires_at' must be after issued_at (%" PRId64
                               "), got %" PRId64,
                          t->issued_at, t->expires_at);
    if (t->has_current &&
        (!ferry_id_valid(t->current_release) || t->current_seq > (uint64_t)JSON_INT_MAX))
        return bad(d, "current", "must name a release id and a seq in 0..2^53");
    if (t->nwithdrawn > FERRY_TIMESTAMP_MAX_WITHDRAWN)
        return bad(d, "withdrawn", "holds too many release ids");
    for (size_t i = 0; i < t->nwithdrawn; i++) {
        if (!ferry_id_valid(t->withdrawn[i]))
            return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": withdrawn[%zu] must be a release id",
                              i);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(t->withdrawn[i], t->withdrawn[j]) == 0)
                return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": release %s is withdrawn twice",
                                  t->withdrawn[i]);
        }
    }
    if (t->has_current && ferry_timestamp_withdraws(t, t->current_release))
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": current release %s is also withdrawn",
                          t->current_release);
    return FERRY_OK;
}

static enum ferry_err read_current(const cJSON *root, struct ferry_timestamp *t,
                                   struct ferry_diag *d)
{
    static const char *const keys[] = {"release", "seq", "manifest_sha256", NULL};
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, "current");
    if (!o)
        return FERRY_OK;
    if (!cJSON_IsObject(o))
        return bad(d, "current", "must be an object");
    char hex[FERRY_SHA256_HEX_LEN + 1];
    int64_t seq = 0;
    const char *what = WHAT ": current";
    enum ferry_err err = ferry_json_only_keys(o, keys, true, what, d);
    if (err == FERRY_OK)
        err = ferry_json_str(o, "release", true, FERRY_NAME_MAX, t->current_release, what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(o, "seq", true, 0, JSON_INT_MAX, &seq, what, d);
    if (err == FERRY_OK)
        err = ferry_json_str(o, "manifest_sha256", true, FERRY_SHA256_HEX_LEN, hex, what, d);
    if (err != FERRY_OK)
        return err;
    if (strlen(hex) != FERRY_SHA256_HEX_LEN ||
        strspn(hex, "0123456789abcdef") != FERRY_SHA256_HEX_LEN ||
        ferry_hex_decode(hex, t->current_sha256, FERRY_SHA256_LEN) != FERRY_OK)
        return bad(d, "current.manifest_sha256", "must be 64 lower-case hex digits");
    t->current_seq = (uint64_t)seq;
    t->has_current = true;
    return FERRY_OK;
}

static enum ferry_err read_withdrawn(const cJSON *root, struct ferry_timestamp *t,
                                     struct ferry_diag *d)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "withdrawn");
    if (!arr)
        return FERRY_OK;
    int n = cJSON_GetArraySize(arr);
    if (!cJSON_IsArray(arr) || n > FERRY_TIMESTAMP_MAX_WITHDRAWN)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          WHAT ": field 'withdrawn' must be an array of at most %d release ids",
                          FERRY_TIMESTAMP_MAX_WITHDRAWN);
    for (const cJSON *e = arr->child; e; e = e->next) {
        const char *s = cJSON_GetStringValue(e);
        if (!s || strlen(s) > FERRY_NAME_MAX)
            return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": withdrawn[%zu] must be a release id",
                              t->nwithdrawn);
        snprintf(t->withdrawn[t->nwithdrawn++], FERRY_NAME_MAX + 1, "%s", s);
    }
    return FERRY_OK;
}

enum ferry_err ferry_timestamp_parse(const uint8_t *buf, size_t len, struct ferry_timestamp *out,
                                     struct ferry_diag *d)
{
    static const char *const keys[] = {"format",     "type",    "product",   "version", "issued_at",
                                       "expires_at", "current", "withdrawn", NULL};
    struct ferry_timestamp *t = calloc(1, sizeof(*t));
    cJSON *root = NULL;
    int64_t format = 0, version = 0;
    char type[16];
    if (!t)
        return ferry_fail(d, FERRY_E_NOMEM, WHAT ": out of memory");
    enum ferry_err err = ferry_json_parse(buf, len, FERRY_TIMESTAMP_MAX_BYTES, WHAT, &root, d);
    if (err == FERRY_OK)
        err = ferry_json_only_keys(root, keys, true, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_int(root, "format", true, 0, JSON_INT_MAX, &format, WHAT, d);
    if (err == FERRY_OK && format != FERRY_TIMESTAMP_FORMAT)
        err = ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field 'format' must be %d, got %" PRId64,
                         FERRY_TIMESTAMP_FORMAT, format);
    if (err == FERRY_OK)
        err = ferry_json_str(root, "type", true, sizeof(type) - 1, type, WHAT, d);
    if (err == FERRY_OK && strcmp(type, "timestamp") != 0)
        err = ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field 'type' must be 'timestamp', got '%s'",
                         type);
    if (err == FERRY_OK)
        err = ferry_json_str(root, "product", true, FERRY_NAME_MAX, t->product, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_int(root, "version", true, 1, JSON_INT_MAX, &version, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_int(root, "issued_at", true, 0, JSON_INT_MAX, &t->issued_at, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_int(root, "expires_at", true, 0, JSON_INT_MAX, &t->expires_at, WHAT, d);
    if (err == FERRY_OK)
        err = read_current(root, t, d);
    if (err == FERRY_OK)
        err = read_withdrawn(root, t, d);
    t->version = (uint64_t)version;
    if (err == FERRY_OK)
        err = validate(t, d);
    if (err == FERRY_OK)
        *out = *t;
    cJSON_Delete(root);
    free(t);
    return err;
}

static bool add_int(cJSON *obj, const char *key, int64_t v)
{
    char num[24];
    snprintf(num, sizeof(num), "%" PRId64, v);
    return cJSON_AddRawToObject(obj, key, num) != NULL;
}

static bool build(cJSON *root, const struct ferry_timestamp *t)
{
    bool ok = add_int(root, "format", FERRY_TIMESTAMP_FORMAT) &&
              cJSON_AddStringToObject(root, "type", "timestamp") &&
              cJSON_AddStringToObject(root, "product", t->product) &&
              add_int(root, "version", (int64_t)t->version) &&
              add_int(root, "issued_at", t->issued_at) &&
              add_int(root, "expires_at", t->expires_at);
    if (ok && t->has_current) {
        char hex[FERRY_SHA256_HEX_LEN + 1];
        ferry_hex_encode(t->current_sha256, FERRY_SHA256_LEN, hex);
        cJSON *c = cJSON_AddObjectToObject(root, "current");
        ok = c && cJSON_AddStringToObject(c, "release", t->current_release) &&
             add_int(c, "seq", (int64_t)t->current_seq) &&
             cJSON_AddStringToObject(c, "manifest_sha256", hex);
    }
    if (ok && t->nwithdrawn) {
        cJSON *arr = cJSON_AddArrayToObject(root, "withdrawn");
        for (size_t i = 0; ok && i < t->nwithdrawn; i++) {
            cJSON *s = arr ? cJSON_CreateString(t->withdrawn[i]) : NULL;
            ok = s && cJSON_AddItemToArray(arr, s);
            if (!ok)
                cJSON_Delete(s);
        }
    }
    return ok;
}

enum ferry_err ferry_timestamp_encode(const struct ferry_timestamp *t, char **out, size_t *len,
                                      struct ferry_diag *d)
{
    enum ferry_err err = validate(t, d);
    if (err != FERRY_OK)
        return err;
    cJSON *root = cJSON_CreateObject();
    if (!root || !build(root, t)) {
        cJSON_Delete(root);
        return ferry_fail(d, FERRY_E_NOMEM, WHAT ": out of memory while encoding");
    }
    err = ferry_json_print(root, out, len, d);
    cJSON_Delete(root);
    if (err == FERRY_OK && *len > FERRY_TIMESTAMP_MAX_BYTES) {
        free(*out);
        *out = NULL;
        return ferry_fail(d, FERRY_E_TOO_LARGE, WHAT ": encodes to %zu bytes, the limit is %d",
                          *len, FERRY_TIMESTAMP_MAX_BYTES);
    }
    return err;
}

bool ferry_timestamp_withdraws(const struct ferry_timestamp *t, const char *release_id)
{
    for (size_t i = 0; i < t->nwithdrawn && i < FERRY_TIMESTAMP_MAX_WITHDRAWN; i++) {
        if (strcmp(t->withdrawn[i], release_id) == 0)
            return true;
    }
    return false;
}
