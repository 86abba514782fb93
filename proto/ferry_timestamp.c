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

/* A current list: bounded, each entry well-formed, no release id or
 * manifest digest twice. */
static enum ferry_err validate_current(const struct ferry_ts_release *c, size_t n,
                                       struct ferry_diag *d)
{
    if (n > FERRY_TIMESTAMP_MAX_CURRENT)
        return bad(d, "current", "holds too many releases");
    for (size_t i = 0; i < n; i++) {
        if (!ferry_id_valid(c[i].release) || c[i].seq > (uint64_t)JSON_INT_MAX)
            return ferry_fail(d, FERRY_E_MALFORMED,
                              WHAT ": current[%zu] must name a release id and a seq in 0..2^53", i);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c[i].release, c[j].release) == 0 ||
                memcmp(c[i].sha256, c[j].sha256, FERRY_SHA256_LEN) == 0)
                return ferry_fail(d, FERRY_E_MALFORMED,
                                  WHAT ": current[%zu] names release %s again (by id or digest)", i,
                                  c[i].release);
        }
    }
    return FERRY_OK;
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
    enum ferry_err err = validate_current(t->current, t->ncurrent, d);
    if (err != FERRY_OK)
        return err;
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
    for (size_t i = 0; i < t->ncurrent; i++) {
        if (ferry_timestamp_withdraws(t, t->current[i].release))
            return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": current release %s is also withdrawn",
                              t->current[i].release);
    }
    return FERRY_OK;
}

static enum ferry_err read_entry(const cJSON *o, const char *what, struct ferry_ts_release *r,
                                 struct ferry_diag *d)
{
    static const char *const keys[] = {"release", "seq", "manifest_sha256", NULL};
    char hex[FERRY_SHA256_HEX_LEN + 1];
    int64_t seq = 0;
    if (!cJSON_IsObject(o))
        return ferry_fail(d, FERRY_E_MALFORMED, "%s must be an object", what);
    enum ferry_err err = ferry_json_only_keys(o, keys, true, what, d);
    if (err == FERRY_OK)
        err = ferry_json_str(o, "release", true, FERRY_NAME_MAX, r->release, what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(o, "seq", true, 0, JSON_INT_MAX, &seq, what, d);
    if (err == FERRY_OK)
        err = ferry_json_str(o, "manifest_sha256", true, FERRY_SHA256_HEX_LEN, hex, what, d);
    if (err != FERRY_OK)
        return err;
    if (strlen(hex) != FERRY_SHA256_HEX_LEN ||
        strspn(hex, "0123456789abcdef") != FERRY_SHA256_HEX_LEN ||
        ferry_hex_decode(hex, r->sha256, FERRY_SHA256_LEN) != FERRY_OK)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          "%s: field 'manifest_sha256' must be 64 lower-case hex digits", what);
    r->seq = (uint64_t)seq;
    return FERRY_OK;
}

/* `current`: one object (format 1) or an array of them (format 2 and the
 * offered record); absent: none. `doc` names the document in errors. */
static enum ferry_err read_current(const cJSON *root, bool as_array, const char *doc,
                                   struct ferry_ts_release *c, size_t *n, struct ferry_diag *d)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, "current");
    char what[48];
    *n = 0;
    if (!o)
        return FERRY_OK;
    if (!as_array) {
        snprintf(what, sizeof(what), "%s: current", doc);
        enum ferry_err err = read_entry(o, what, &c[0], d);
        *n = err == FERRY_OK;
        return err;
    }
    int count = cJSON_GetArraySize(o);
    if (!cJSON_IsArray(o) || count > FERRY_TIMESTAMP_MAX_CURRENT)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          "%s: field 'current' must be an array of at most %d releases", doc,
                          FERRY_TIMESTAMP_MAX_CURRENT);
    for (const cJSON *e = o->child; e; e = e->next) {
        snprintf(what, sizeof(what), "%s: current[%zu]", doc, *n);
        enum ferry_err err = read_entry(e, what, &c[*n], d);
        if (err != FERRY_OK)
            return err;
        (*n)++;
    }
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
    if (err == FERRY_OK && format != FERRY_TIMESTAMP_FORMAT && format != FERRY_TIMESTAMP_FORMAT_ONE)
        err =
            ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field 'format' must be %d or %d, got %" PRId64,
                       FERRY_TIMESTAMP_FORMAT_ONE, FERRY_TIMESTAMP_FORMAT, format);
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
        err =
            read_current(root, format == FERRY_TIMESTAMP_FORMAT, WHAT, t->current, &t->ncurrent, d);
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

static bool build_entry(cJSON *o, const struct ferry_ts_release *r)
{
    char hex[FERRY_SHA256_HEX_LEN + 1];
    ferry_hex_encode(r->sha256, FERRY_SHA256_LEN, hex);
    return o && cJSON_AddStringToObject(o, "release", r->release) &&
           add_int(o, "seq", (int64_t)r->seq) && cJSON_AddStringToObject(o, "manifest_sha256", hex);
}

static bool build_current_array(cJSON *root, const struct ferry_ts_release *c, size_t n)
{
    cJSON *arr = cJSON_AddArrayToObject(root, "current");
    bool ok = arr != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        ok = o && build_entry(o, &c[i]) && cJSON_AddItemToArray(arr, o);
        if (!ok)
            cJSON_Delete(o);
    }
    return ok;
}

/* Format 1 while at most one release is current (readable by verifiers
 * built before format 2), format 2 beyond. */
static bool build(cJSON *root, const struct ferry_timestamp *t)
{
    bool several = t->ncurrent > 1;
    bool ok =
        add_int(root, "format", several ? FERRY_TIMESTAMP_FORMAT : FERRY_TIMESTAMP_FORMAT_ONE) &&
        cJSON_AddStringToObject(root, "type", "timestamp") &&
        cJSON_AddStringToObject(root, "product", t->product) &&
        add_int(root, "version", (int64_t)t->version) && add_int(root, "issued_at", t->issued_at) &&
        add_int(root, "expires_at", t->expires_at);
    if (ok && several)
        ok = build_current_array(root, t->current, t->ncurrent);
    else if (ok && t->ncurrent == 1)
        ok = build_entry(cJSON_AddObjectToObject(root, "current"), &t->current[0]);
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

const struct ferry_ts_release *ferry_timestamp_current(const struct ferry_timestamp *t,
                                                       const uint8_t digest[FERRY_SHA256_LEN])
{
    for (size_t i = 0; i < t->ncurrent && i < FERRY_TIMESTAMP_MAX_CURRENT; i++) {
        if (memcmp(t->current[i].sha256, digest, FERRY_SHA256_LEN) == 0)
            return &t->current[i];
    }
    return NULL;
}

const char *ferry_timestamp_current_str(const struct ferry_timestamp *t, char *buf, size_t cap)
{
    size_t used = 0;
    if (cap == 0)
        return buf;
    snprintf(buf, cap, "%s", t->ncurrent ? "" : "(none)");
    for (size_t i = 0; i < t->ncurrent && i < FERRY_TIMESTAMP_MAX_CURRENT && used < cap; i++) {
        int n = snprintf(buf + used, cap - used, "%s%s", i ? "," : "", t->current[i].release);
        used += n > 0 ? (size_t)n : 0;
    }
    return buf;
}

enum ferry_err ferry_timestamp_add_current(struct ferry_timestamp *t,
                                           const struct ferry_ts_release *r, struct ferry_diag *d)
{
    for (size_t i = 0; i < t->ncurrent; i++) {
        if (strcmp(t->current[i].release, r->release) == 0 ||
            memcmp(t->current[i].sha256, r->sha256, FERRY_SHA256_LEN) == 0)
            return FERRY_OK;
    }
    if (t->ncurrent >= FERRY_TIMESTAMP_MAX_CURRENT)
        return ferry_fail(d, FERRY_E_TOO_LARGE,
                          WHAT ": more than %d releases of '%s' would be current (%s left out)",
                          FERRY_TIMESTAMP_MAX_CURRENT, t->product, r->release);
    t->current[t->ncurrent++] = *r;
    return FERRY_OK;
}

/* ---- the offered record ---------------------------------------------------- */

#define OFFERED "offered record"

enum ferry_err ferry_offered_parse(const uint8_t *buf, size_t len, struct ferry_offered *out,
                                   struct ferry_diag *d)
{
    static const char *const keys[] = {"format", "type",    "product", "rollout",
                                       "state",  "current", NULL};
    struct ferry_offered *o = calloc(1, sizeof(*o));
    cJSON *root = NULL;
    int64_t format = 0, rollout = 0;
    char type[16];
    if (!o)
        return ferry_fail(d, FERRY_E_NOMEM, OFFERED ": out of memory");
    enum ferry_err err = ferry_json_parse(buf, len, FERRY_TIMESTAMP_MAX_BYTES, OFFERED, &root, d);
    if (err == FERRY_OK)
        err = ferry_json_only_keys(root, keys, false, OFFERED, d);
    if (err == FERRY_OK)
        err = ferry_json_int(root, "format", true, FERRY_OFFERED_FORMAT, FERRY_OFFERED_FORMAT,
                             &format, OFFERED, d);
    if (err == FERRY_OK)
        err = ferry_json_str(root, "type", true, sizeof(type) - 1, type, OFFERED, d);
    if (err == FERRY_OK && strcmp(type, "offered") != 0)
        err = ferry_fail(d, FERRY_E_MALFORMED, OFFERED ": field 'type' must be 'offered'");
    if (err == FERRY_OK)
        err = ferry_json_str(root, "product", true, FERRY_NAME_MAX, o->product, OFFERED, d);
    if (err == FERRY_OK && !ferry_id_valid(o->product))
        err = ferry_fail(d, FERRY_E_MALFORMED, OFFERED ": field 'product' must be an identifier");
    if (err == FERRY_OK)
        err = ferry_json_int(root, "rollout", true, 0, JSON_INT_MAX, &rollout, OFFERED, d);
    if (err == FERRY_OK)
        err = ferry_json_str(root, "state", true, sizeof(o->state) - 1, o->state, OFFERED, d);
    if (err == FERRY_OK)
        err = read_current(root, true, OFFERED, o->r, &o->n, d);
    if (err == FERRY_OK)
        err = validate_current(o->r, o->n, d);
    o->rollout = (uint64_t)rollout;
    if (err == FERRY_OK)
        *out = *o;
    cJSON_Delete(root);
    free(o);
    return err;
}

enum ferry_err ferry_offered_encode(const struct ferry_offered *o, char **out, size_t *len,
                                    struct ferry_diag *d)
{
    if (!ferry_id_valid(o->product) || o->rollout > (uint64_t)JSON_INT_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, OFFERED ": bad product or rollout id");
    enum ferry_err err = validate_current(o->r, o->n, d);
    if (err != FERRY_OK)
        return err;
    cJSON *root = cJSON_CreateObject();
    bool ok = root && add_int(root, "format", FERRY_OFFERED_FORMAT) &&
              cJSON_AddStringToObject(root, "type", "offered") &&
              cJSON_AddStringToObject(root, "product", o->product) &&
              add_int(root, "rollout", (int64_t)o->rollout) &&
              cJSON_AddStringToObject(root, "state", o->state) &&
              build_current_array(root, o->r, o->n);
    if (!ok) {
        cJSON_Delete(root);
        return ferry_fail(d, FERRY_E_NOMEM, OFFERED ": out of memory while encoding");
    }
    err = ferry_json_print(root, out, len, d);
    cJSON_Delete(root);
    return err;
}
