#include "ferry_module.h"

#include "ferry_manifest.h"
#include "ferry_module_json.h"

#include <stdio.h>
#include <string.h>

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (!first && (c == '_' || c == '-'));
}

bool ferry_module_name(const char *media_type, char out[FERRY_MODULE_NAME_MAX + 1])
{
    const size_t plen = sizeof(FERRY_MODULE_MEDIA_PREFIX) - 1;
    if (strncmp(media_type, FERRY_MODULE_MEDIA_PREFIX, plen) != 0)
        return false;
    const char *n = media_type + plen;
    size_t len = strlen(n);
    if (len == 0 || len > FERRY_MODULE_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!name_char(n[i], i == 0))
            return false;
    }
    memcpy(out, n, len + 1);
    return true;
}

const char *ferry_module_arg(const struct ferry_module_args *a, const char *key)
{
    for (size_t i = 0; i < a->n && i < FERRY_MODULE_ARGS_MAX; i++) {
        if (strcmp(a->key[i], key) == 0)
            return a->value[i];
    }
    return NULL;
}

static bool key_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > FERRY_MODULE_KEY_MAX || k[0] < 'a' || k[0] > 'z')
        return false;
    for (size_t i = 1; i < n; i++) {
        if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
            return false;
    }
    return true;
}

static bool value_ok(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > FERRY_MODULE_VALUE_MAX || !ferry_utf8_valid((const uint8_t *)v, n))
        return false;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return false;
    }
    return true;
}

enum ferry_err ferry_module_check(const char *media_type, const struct ferry_module_args *a,
                                  struct ferry_diag *d)
{
    char name[FERRY_MODULE_NAME_MAX + 1];
    bool is_module = ferry_module_name(media_type, name);
    if (strncmp(media_type, FERRY_MODULE_MEDIA_PREFIX, sizeof(FERRY_MODULE_MEDIA_PREFIX) - 1) ==
            0 &&
        !is_module)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          "manifest: field 'artifact.media_type' names a module, which must be "
                          "[a-z0-9][a-z0-9_-]* of at most %d bytes",
                          FERRY_MODULE_NAME_MAX);
    if (is_module && !a->present)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          "manifest: a release for module '%s' needs a 'module' object", name);
    if (!is_module && a->present)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          "manifest: field 'module' needs artifact.media_type "
                          "'" FERRY_MODULE_MEDIA_PREFIX "<name>'");
    if (a->n > FERRY_MODULE_ARGS_MAX)
        return ferry_fail(d, FERRY_E_MALFORMED, "manifest: field 'module' holds at most %d members",
                          FERRY_MODULE_ARGS_MAX);
    for (size_t i = 0; i < a->n; i++) {
        if (!key_ok(a->key[i]))
            return ferry_fail(d, FERRY_E_MALFORMED,
                              "manifest: field 'module': key '%.*s' must be [a-z][a-z0-9_]*, "
                              "at most %d bytes",
                              FERRY_MODULE_KEY_MAX, a->key[i], FERRY_MODULE_KEY_MAX);
        if (!value_ok(a->value[i]))
            return ferry_fail(d, FERRY_E_MALFORMED,
                              "manifest: field 'module.%s' must be 1..%d bytes of text without "
                              "control characters",
                              a->key[i], FERRY_MODULE_VALUE_MAX);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(a->key[i], a->key[j]) == 0)
                return ferry_fail(d, FERRY_E_MALFORMED, "manifest: field 'module.%s' twice",
                                  a->key[i]);
        }
    }
    return FERRY_OK;
}

enum ferry_err ferry_module_add_arg(struct ferry_module_args *a, const char *key_eq_value,
                                    struct ferry_diag *d)
{
    const char *eq = strchr(key_eq_value, '=');
    size_t klen = eq ? (size_t)(eq - key_eq_value) : 0;
    if (!eq || klen == 0 || klen > FERRY_MODULE_KEY_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "module argument '%s': expected KEY=VALUE",
                          key_eq_value);
    if (a->n >= FERRY_MODULE_ARGS_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "at most %d module arguments",
                          FERRY_MODULE_ARGS_MAX);
    if (strlen(eq + 1) > FERRY_MODULE_VALUE_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "module argument '%.*s': value above %d bytes",
                          (int)klen, key_eq_value, FERRY_MODULE_VALUE_MAX);
    memcpy(a->key[a->n], key_eq_value, klen);
    a->key[a->n][klen] = '\0';
    snprintf(a->value[a->n], sizeof(a->value[a->n]), "%s", eq + 1);
    if (!key_ok(a->key[a->n]) || !value_ok(a->value[a->n]))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "module argument '%.*s': key [a-z][a-z0-9_]*, value 1..%d bytes of text",
                          (int)klen, key_eq_value, FERRY_MODULE_VALUE_MAX);
    a->n++;
    a->present = true;
    return FERRY_OK;
}

enum ferry_err ferry_module_read(const cJSON *root, struct ferry_module_args *out,
                                 struct ferry_diag *d)
{
    memset(out, 0, sizeof(*out));
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, "module");
    if (!o)
        return FERRY_OK;
    if (!cJSON_IsObject(o))
        return ferry_fail(d, FERRY_E_MALFORMED, "manifest: field 'module' must be an object");
    out->present = true;
    const cJSON *m;
    cJSON_ArrayForEach(m, o)
    {
        if (out->n >= FERRY_MODULE_ARGS_MAX)
            return ferry_fail(d, FERRY_E_MALFORMED,
                              "manifest: field 'module' holds at most %d members",
                              FERRY_MODULE_ARGS_MAX);
        const char *v = cJSON_GetStringValue(m);
        if (!v || strlen(m->string) > FERRY_MODULE_KEY_MAX || strlen(v) > FERRY_MODULE_VALUE_MAX)
            return ferry_fail(d, FERRY_E_MALFORMED,
                              "manifest: field 'module.%.32s' must be a string of at most %d bytes",
                              m->string, FERRY_MODULE_VALUE_MAX);
        snprintf(out->key[out->n], sizeof(out->key[out->n]), "%s", m->string);
        snprintf(out->value[out->n], sizeof(out->value[out->n]), "%s", v);
        out->n++;
    }
    return FERRY_OK;
}

bool ferry_module_write(cJSON *root, const struct ferry_module_args *a)
{
    if (!a->present)
        return true;
    cJSON *o = cJSON_AddObjectToObject(root, "module");
    for (size_t i = 0; o && i < a->n; i++) {
        if (!cJSON_AddStringToObject(o, a->key[i], a->value[i]))
            return false;
    }
    return o != NULL;
}
