#include "ferry_cfgfile.h"

#include "ferry_fs.h"
#include "ferry_json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Integers above 2^53 cannot be told apart as JSON numbers (doubles). */
#define CFG_INT_MAX 9007199254740992.0

static const char *json_type(const cJSON *v)
{
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsObject(v))
        return "an object";
    if (cJSON_IsArray(v))
        return "an array";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsString(v))
        return "a string";
    return "a boolean";
}

/* A new copy of one scalar value as text; *why says what is wrong when it
 * is not allowed. */
static enum ferry_err scalar_text(const cJSON *v, char **out, const char **why)
{
    char num[24];
    const char *text;
    if (cJSON_IsString(v)) {
        text = v->valuestring;
    } else if (cJSON_IsBool(v)) {
        text = cJSON_IsTrue(v) ? "true" : "false";
    } else if (cJSON_IsNumber(v)) {
        /* cJSON keeps only the double, so 1.0 and 1e3 count as the integers
         * they denote; 1.5 and -1 are refused. */
        double x = v->valuedouble;
        if (!isfinite(x) || x != floor(x) || x < 0 || x > CFG_INT_MAX) {
            *why = "must be an integer in 0..2^53";
            return FERRY_E_INVALID_ARG;
        }
        snprintf(num, sizeof(num), "%" PRIu64, (uint64_t)x);
        text = num;
    } else {
        *why = "must be a string, a non-negative integer, true/false or an array of strings";
        return FERRY_E_INVALID_ARG;
    }
    *out = strdup(text);
    if (!*out) {
        *why = "out of memory";
        return FERRY_E_NOMEM;
    }
    return FERRY_OK;
}

/* Fills one kv from one member of the top-level object. On failure kv holds
 * what was built so far, which ferry_kv_free() releases. */
static enum ferry_err load_value(const cJSON *v, struct ferry_kv *kv, const char *what,
                                 struct ferry_diag *d)
{
    kv->key = strdup(v->string);
    size_t n = cJSON_IsArray(v) ? (size_t)cJSON_GetArraySize(v) : 1;
    kv->vals = calloc(n ? n : 1, sizeof(char *));
    if (!kv->key || !kv->vals)
        return ferry_fail(d, FERRY_E_NOMEM, "%s: key '%s': out of memory", what, v->string);
    const char *why = NULL;
    if (!cJSON_IsArray(v)) {
        enum ferry_err err = scalar_text(v, &kv->vals[0], &why);
        if (err != FERRY_OK)
            return ferry_fail(d, err, "%s: key '%s': %s, got %s", what, v->string, why,
                              json_type(v));
        kv->nvals = 1;
        return FERRY_OK;
    }
    for (const cJSON *e = v->child; e; e = e->next) {
        /* Lists are lists of strings: numbers or booleans in one would be
         * a typo that a flag could never produce. */
        if (!cJSON_IsString(e))
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "%s: key '%s': must be an array of strings, item %zu is %s", what,
                              v->string, kv->nvals, json_type(e));
        enum ferry_err err = scalar_text(e, &kv->vals[kv->nvals], &why);
        if (err != FERRY_OK)
            return ferry_fail(d, err, "%s: key '%s': %s", what, v->string, why);
        kv->nvals++;
    }
    return FERRY_OK;
}

enum ferry_err ferry_cfgfile_load(const char *path, struct ferry_kv **out, size_t *n,
                                  struct ferry_diag *d)
{
    char what[200];
    snprintf(what, sizeof(what), "config %s", path);
    uint8_t *buf = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    struct ferry_kv *kv = NULL;
    size_t count = 0;
    enum ferry_err err = ferry_read_file(path, FERRY_CFGFILE_MAX_BYTES, &buf, &len, d);
    if (err != FERRY_OK) {
        /* ferry_read_file() already names the path. */
        ferry_diag_prefix(d, "config");
        goto out;
    }
    err = ferry_json_parse(buf, len, FERRY_CFGFILE_MAX_BYTES, what, &root, d);
    if (err != FERRY_OK)
        goto out;
    count = (size_t)cJSON_GetArraySize(root);
    kv = calloc(count ? count : 1, sizeof(*kv));
    if (!kv) {
        err = ferry_fail(d, FERRY_E_NOMEM, "%s: out of memory", what);
        goto out;
    }
    size_t i = 0;
    for (const cJSON *v = root->child; v && err == FERRY_OK; v = v->next)
        err = load_value(v, &kv[i++], what, d);
    if (err != FERRY_OK)
        goto out;
    *out = kv;
    *n = count;
    kv = NULL;
out:
    ferry_kv_free(kv, count);
    cJSON_Delete(root);
    free(buf);
    return err;
}
