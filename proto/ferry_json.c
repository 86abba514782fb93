#include "ferry_json.h"

#include "ferry_manifest.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Checks what cJSON lets through, before it runs:
 * - nesting deeper than FERRY_JSON_MAX_DEPTH (cJSON recurses once per level,
 *   so this bounds its stack);
 * - raw control characters inside strings, which JSON forbids;
 * - the escape \u0000, which cJSON would decode into the C string, which then
 *   ends early, so "meter\u0000x" would be read as "meter".
 * Returns NULL when the text is acceptable, else what is wrong with it. */
static const char *prescan(const uint8_t *buf, size_t len)
{
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = buf[i];
        if (in_str) {
            if (c < 0x20)
                return "a raw control character inside a string";
            if (c == '\\') {
                if (i + 5 < len && memcmp(buf + i + 1, "u0000", 5) == 0)
                    return "the escape \\u0000 inside a string";
                i++;
            } else if (c == '"') {
                in_str = false;
            }
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > FERRY_JSON_MAX_DEPTH)
                return "nested deeper than " FERRY_JSON_MAX_DEPTH_TEXT " levels";
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return NULL;
}

static const char *duplicate_key(const cJSON *node)
{
    for (const cJSON *a = node ? node->child : NULL; a; a = a->next) {
        if (cJSON_IsObject(node)) {
            for (const cJSON *b = a->next; b; b = b->next) {
                if (strcmp(a->string, b->string) == 0)
                    return a->string;
            }
        }
        const char *dup = duplicate_key(a);
        if (dup)
            return dup;
    }
    return NULL;
}

enum ferry_err ferry_json_parse(const uint8_t *buf, size_t len, size_t max_len, const char *what,
                                cJSON **out, struct ferry_diag *d)
{
    if (len > max_len)
        return ferry_fail(d, FERRY_E_TOO_LARGE, "%s: %zu bytes, the limit is %zu", what, len,
                          max_len);
    if (len == 0)
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: empty input", what);
    if (!ferry_utf8_valid(buf, len))
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: not valid UTF-8", what);
    if (memchr(buf, 0, len))
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: contains a NUL byte", what);
    const char *bad = prescan(buf, len);
    if (bad)
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: %s", what, bad);

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)buf, len, &end, false);
    if (!root) {
        size_t at = end ? (size_t)(end - (const char *)buf) : 0;
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: invalid JSON near byte %zu", what, at);
    }
    enum ferry_err err = FERRY_OK;
    for (const char *p = end; p < (const char *)buf + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            err = ferry_fail(d, FERRY_E_MALFORMED, "%s: trailing bytes after the JSON value", what);
            goto out;
        }
    }
    if (!cJSON_IsObject(root)) {
        err = ferry_fail(d, FERRY_E_MALFORMED, "%s: expected a JSON object", what);
        goto out;
    }
    const char *dup = duplicate_key(root);
    if (dup) {
        err = ferry_fail(d, FERRY_E_MALFORMED, "%s: duplicate key '%s'", what, dup);
        goto out;
    }
    *out = root;
    root = NULL;
out:
    cJSON_Delete(root);
    return err;
}

enum ferry_err ferry_json_only_keys(const cJSON *obj, const char *const *known, bool allow_ext,
                                    const char *what, struct ferry_diag *d)
{
    for (const cJSON *c = obj->child; c; c = c->next) {
        bool ok = allow_ext && strncmp(c->string, "x-", 2) == 0;
        for (const char *const *k = known; !ok && *k; k++)
            ok = strcmp(*k, c->string) == 0;
        if (!ok)
            return ferry_fail(d, FERRY_E_MALFORMED, "%s: unknown field '%s'", what, c->string);
    }
    return FERRY_OK;
}

static const cJSON *field(const cJSON *obj, const char *key)
{
    /* Case-sensitive: "Version" is not "version". */
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

enum ferry_err ferry_json_str(const cJSON *obj, const char *key, bool required, size_t max_len,
                              char *out, const char *what, struct ferry_diag *d)
{
    const cJSON *f = field(obj, key);
    if (!f) {
        if (!required)
            return FERRY_OK;
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: missing field '%s'", what, key);
    }
    if (!cJSON_IsString(f))
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: field '%s' must be a string", what, key);
    size_t len = strlen(f->valuestring);
    if (len == 0 || len > max_len)
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: field '%s' must be 1..%zu bytes, got %zu",
                          what, key, max_len, len);
    memcpy(out, f->valuestring, len + 1);
    return FERRY_OK;
}

enum ferry_err ferry_json_int(const cJSON *obj, const char *key, bool required, int64_t min,
                              int64_t max, int64_t *out, const char *what, struct ferry_diag *d)
{
    const cJSON *f = field(obj, key);
    if (!f) {
        if (!required)
            return FERRY_OK;
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: missing field '%s'", what, key);
    }
    if (!cJSON_IsNumber(f))
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: field '%s' must be an integer", what, key);
    double v = f->valuedouble;
    /* Compare as doubles first: a huge value must not be cast to int64_t. */
    if (!isfinite(v) || v != floor(v) || v < (double)min || v > (double)max)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          "%s: field '%s' must be an integer in %lld..%lld, got %.17g", what, key,
                          (long long)min, (long long)max, v);
    *out = (int64_t)v;
    return FERRY_OK;
}

enum ferry_err ferry_json_bool(const cJSON *obj, const char *key, bool required, bool *out,
                               const char *what, struct ferry_diag *d)
{
    const cJSON *f = field(obj, key);
    if (!f) {
        if (!required)
            return FERRY_OK;
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: missing field '%s'", what, key);
    }
    if (!cJSON_IsBool(f))
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: field '%s' must be true or false", what, key);
    *out = cJSON_IsTrue(f);
    return FERRY_OK;
}

enum ferry_err ferry_json_print(const cJSON *obj, char **out, size_t *len, struct ferry_diag *d)
{
    char *s = cJSON_PrintUnformatted(obj);
    if (!s)
        return ferry_fail(d, FERRY_E_NOMEM, "json: out of memory while encoding");
    *out = s;
    *len = strlen(s);
    return FERRY_OK;
}
