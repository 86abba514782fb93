#include "ferry_nodeinfo.h"

#include "ferry_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const RESERVED[] = {"node",        "gateway", "product",  "hw-model",
                                       "hw-revision", "version", "hw_model", "hw_revision"};

bool ferry_tag_key_reserved(const char *key)
{
    for (size_t i = 0; i < sizeof(RESERVED) / sizeof(RESERVED[0]); i++)
        if (strcmp(key, RESERVED[i]) == 0)
            return true;
    return false;
}

bool ferry_tag_key_valid(const char *key)
{
    size_t n = key ? strlen(key) : 0;
    if (n == 0 || n > FERRY_TAG_KEY_MAX || key[0] == '.' ||
        strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789_.-") != n)
        return false;
    return !ferry_tag_key_reserved(key);
}

enum ferry_err ferry_tag_parse(const char *kv, struct ferry_tag *out, struct ferry_diag *d)
{
    const char *eq = kv ? strchr(kv, '=') : NULL;
    size_t kn = eq ? (size_t)(eq - kv) : 0;
    if (!eq || kn == 0 || kn > FERRY_TAG_KEY_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "tag '%.100s': expected key=value", kv ? kv : "");
    struct ferry_tag t;
    memset(&t, 0, sizeof(t));
    memcpy(t.key, kv, kn);
    t.key[kn] = 0;
    if (!ferry_tag_key_valid(t.key))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "tag '%.100s': the key must be 1..%d of [a-z0-9_.-], and not one of "
                          "node, gateway, product, hw-model, hw-revision, version",
                          kv, FERRY_TAG_KEY_MAX);
    if (strlen(eq + 1) > FERRY_TAG_VALUE_MAX || (eq[1] && !ferry_id_valid(eq + 1)))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "tag '%.100s': the value must be 1..%d of [A-Za-z0-9._-], not starting "
                          "with '.'",
                          kv, FERRY_TAG_VALUE_MAX);
    snprintf(t.value, sizeof(t.value), "%s", eq + 1);
    *out = t;
    return FERRY_OK;
}

enum ferry_err ferry_nodeinfo_set_tag(struct ferry_nodeinfo *ni, const char *key, const char *value,
                                      struct ferry_diag *d)
{
    size_t i = 0;
    while (i < ni->ntags && strcmp(ni->tags[i].key, key) < 0)
        i++;
    bool present = i < ni->ntags && strcmp(ni->tags[i].key, key) == 0;
    if (!value[0]) {
        if (present) {
            memmove(&ni->tags[i], &ni->tags[i + 1], (ni->ntags - i - 1) * sizeof(ni->tags[0]));
            ni->ntags--;
        }
        return FERRY_OK;
    }
    if (!ferry_tag_key_valid(key) || strlen(value) > FERRY_TAG_VALUE_MAX || !ferry_id_valid(value))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "tag %.40s=%.80s is not valid", key, value);
    if (!present) {
        if (ni->ntags == FERRY_NODE_MAX_TAGS)
            return ferry_fail(d, FERRY_E_TOO_LARGE, "more than %d tags", FERRY_NODE_MAX_TAGS);
        memmove(&ni->tags[i + 1], &ni->tags[i], (ni->ntags - i) * sizeof(ni->tags[0]));
        ni->ntags++;
        snprintf(ni->tags[i].key, sizeof(ni->tags[i].key), "%s", key);
    }
    snprintf(ni->tags[i].value, sizeof(ni->tags[i].value), "%s", value);
    return FERRY_OK;
}

const char *ferry_nodeinfo_tag(const struct ferry_nodeinfo *ni, const char *key)
{
    for (size_t i = 0; i < ni->ntags; i++)
        if (strcmp(ni->tags[i].key, key) == 0)
            return ni->tags[i].value;
    return NULL;
}

#define FITS(ni, f) (strnlen((ni)->f, sizeof((ni)->f)) < sizeof((ni)->f))

enum ferry_err ferry_nodeinfo_check(const struct ferry_nodeinfo *ni, struct ferry_diag *d)
{
    if (!FITS(ni, node) || !ferry_id_valid(ni->node))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "node description: invalid node id");
    if (!FITS(ni, product) || !ferry_id_valid(ni->product))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "node description of %s: invalid product",
                          ni->node);
    if (!FITS(ni, hw_model) || !ferry_id_valid(ni->hw_model))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "node description of %s: invalid hw_model",
                          ni->node);
    if (!FITS(ni, hw_revision) || (ni->hw_revision[0] && !ferry_id_valid(ni->hw_revision)))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "node description of %s: invalid hw_revision",
                          ni->node);
    if (ni->ntags > FERRY_NODE_MAX_TAGS)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "node description of %s: too many tags",
                          ni->node);
    for (size_t i = 0; i < ni->ntags; i++) {
        const struct ferry_tag *t = &ni->tags[i];
        if (!FITS(t, key) || !FITS(t, value) || !ferry_tag_key_valid(t->key) ||
            !ferry_id_valid(t->value) || (i > 0 && strcmp(ni->tags[i - 1].key, t->key) >= 0))
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "node description of %s: tag %zu is invalid, repeated or out of "
                              "order",
                              ni->node, i);
    }
    return FERRY_OK;
}

/* ---- JSON ------------------------------------------------------------------- */

enum ferry_err ferry_nodeinfo_to_json(const struct ferry_nodeinfo *ni, char **out, size_t *len,
                                      struct ferry_diag *d)
{
    enum ferry_err err = ferry_nodeinfo_check(ni, d);
    if (err != FERRY_OK)
        return err;
    cJSON *o = cJSON_CreateObject(), *tags = NULL;
    bool ok = o && cJSON_AddNumberToObject(o, "format", FERRY_NODEINFO_FORMAT) &&
              cJSON_AddStringToObject(o, "node", ni->node) &&
              cJSON_AddStringToObject(o, "product", ni->product) &&
              cJSON_AddStringToObject(o, "hw_model", ni->hw_model) &&
              (!ni->hw_revision[0] || cJSON_AddStringToObject(o, "hw_revision", ni->hw_revision)) &&
              (tags = cJSON_AddObjectToObject(o, "tags")) != NULL;
    for (size_t i = 0; ok && i < ni->ntags; i++)
        ok = cJSON_AddStringToObject(tags, ni->tags[i].key, ni->tags[i].value) != NULL;
    err = ok ? ferry_json_print(o, out, len, d)
             : ferry_fail(d, FERRY_E_NOMEM, "node description: out of memory");
    cJSON_Delete(o);
    return err;
}

enum ferry_err ferry_nodeinfo_from_json(const uint8_t *buf, size_t len, struct ferry_nodeinfo *out,
                                        struct ferry_diag *d)
{
    static const char *const keys[] = {"format",      "node", "product", "hw_model",
                                       "hw_revision", "tags", NULL};
    static const char what[] = "node description";
    cJSON *o = NULL;
    struct ferry_nodeinfo ni;
    memset(&ni, 0, sizeof(ni));
    int64_t format = 0;
    enum ferry_err err = ferry_json_parse(buf, len, FERRY_NODEINFO_MAX_BYTES, what, &o, d);
    if (err == FERRY_OK)
        err = ferry_json_only_keys(o, keys, true, what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(o, "format", true, 1, 1 << 20, &format, what, d);
    if (err == FERRY_OK && format != FERRY_NODEINFO_FORMAT)
        err = ferry_fail(d, FERRY_E_MALFORMED, "%s: format %lld, this Ferry reads %d", what,
                         (long long)format, FERRY_NODEINFO_FORMAT);
    if (err == FERRY_OK)
        err = ferry_json_str(o, "node", true, FERRY_ID_MAX, ni.node, what, d);
    if (err == FERRY_OK)
        err = ferry_json_str(o, "product", true, FERRY_ID_MAX, ni.product, what, d);
    if (err == FERRY_OK)
        err = ferry_json_str(o, "hw_model", true, FERRY_ID_MAX, ni.hw_model, what, d);
    if (err == FERRY_OK)
        err = ferry_json_str(o, "hw_revision", false, FERRY_REVISION_MAX, ni.hw_revision, what, d);
    const cJSON *tags = o ? cJSON_GetObjectItemCaseSensitive(o, "tags") : NULL;
    if (err == FERRY_OK && tags && !cJSON_IsObject(tags))
        err = ferry_fail(d, FERRY_E_MALFORMED, "%s: field 'tags' must be an object", what);
    for (const cJSON *t = tags ? tags->child : NULL; err == FERRY_OK && t; t = t->next) {
        if (!cJSON_IsString(t))
            err = ferry_fail(d, FERRY_E_MALFORMED, "%s: tag '%.40s' must be a string", what,
                             t->string);
        else if (ferry_nodeinfo_tag(&ni, t->string))
            err = ferry_fail(d, FERRY_E_MALFORMED, "%s: tag '%.40s' twice", what, t->string);
        else if (ferry_nodeinfo_set_tag(&ni, t->string, t->valuestring, d) != FERRY_OK ||
                 !t->valuestring[0])
            err = ferry_fail(d, FERRY_E_MALFORMED, "%s: tag '%.40s' is not valid", what, t->string);
    }
    if (err == FERRY_OK && ferry_nodeinfo_check(&ni, d) != FERRY_OK)
        err = FERRY_E_MALFORMED;
    cJSON_Delete(o);
    if (err == FERRY_OK)
        *out = ni;
    return err;
}

/* ---- query form --------------------------------------------------------------- */

enum ferry_err
ferry_nodeinfo_to_query(const struct ferry_nodeinfo *ni,
                        char items[FERRY_NODEINFO_QUERY_MAX][FERRY_NODEINFO_ITEM_MAX], size_t *n,
                        struct ferry_diag *d)
{
    /* The product is not carried here: check the rest with a stand-in. */
    struct ferry_nodeinfo c = *ni;
    if (!c.product[0])
        snprintf(c.product, sizeof(c.product), "%s", FERRY_DEFAULT_PRODUCT);
    enum ferry_err err = ferry_nodeinfo_check(&c, d);
    if (err != FERRY_OK)
        return err;
    size_t k = 0;
    snprintf(items[k++], FERRY_NODEINFO_ITEM_MAX, "n=%s", ni->node);
    snprintf(items[k++], FERRY_NODEINFO_ITEM_MAX, "hw=%s", ni->hw_model);
    if (ni->hw_revision[0])
        snprintf(items[k++], FERRY_NODEINFO_ITEM_MAX, "rev=%s", ni->hw_revision);
    for (size_t i = 0; i < ni->ntags; i++)
        snprintf(items[k++], FERRY_NODEINFO_ITEM_MAX, "tag=%s=%s", ni->tags[i].key,
                 ni->tags[i].value);
    *n = k;
    return FERRY_OK;
}

/* Copies item value (after "name=") into out when it fits and holds no NUL. */
static bool item_value(const char *item, size_t len, size_t name_len, char *out, size_t cap)
{
    size_t vn = len - name_len;
    if (vn == 0 || vn >= cap || memchr(item + name_len, 0, vn))
        return false;
    memcpy(out, item + name_len, vn);
    out[vn] = 0;
    return true;
}

enum ferry_err ferry_nodeinfo_from_query(const char *const *items, const size_t *lens, size_t n,
                                         struct ferry_nodeinfo *out, struct ferry_diag *d)
{
    struct ferry_nodeinfo ni;
    memset(&ni, 0, sizeof(ni));
    bool seen_n = false, seen_hw = false, seen_rev = false;
    for (size_t i = 0; i < n; i++) {
        const char *it = items[i];
        size_t len = lens[i];
        char value[FERRY_TAG_KEY_MAX + FERRY_TAG_VALUE_MAX + 2];
        bool *seen = NULL;
        char *field = NULL;
        size_t cap = 0, name = 0;
        if (len >= 2 && memcmp(it, "n=", 2) == 0) {
            seen = &seen_n, field = ni.node, cap = sizeof(ni.node), name = 2;
        } else if (len >= 3 && memcmp(it, "hw=", 3) == 0) {
            seen = &seen_hw, field = ni.hw_model, cap = sizeof(ni.hw_model), name = 3;
        } else if (len >= 4 && memcmp(it, "rev=", 4) == 0) {
            seen = &seen_rev, field = ni.hw_revision, cap = sizeof(ni.hw_revision), name = 4;
        } else if (len >= 4 && memcmp(it, "tag=", 4) == 0) {
            struct ferry_tag t;
            if (!item_value(it, len, 4, value, sizeof(value)) ||
                ferry_tag_parse(value, &t, d) != FERRY_OK || !t.value[0])
                return ferry_fail(d, FERRY_E_INVALID_ARG, "query: '%.*s' is not tag=key=value",
                                  (int)(len > 100 ? 100 : len), it);
            if (ferry_nodeinfo_tag(&ni, t.key))
                return ferry_fail(d, FERRY_E_INVALID_ARG, "query: tag '%s' given twice", t.key);
            if (ferry_nodeinfo_set_tag(&ni, t.key, t.value, NULL) != FERRY_OK)
                return ferry_fail(d, FERRY_E_INVALID_ARG, "query: more than %d tags",
                                  FERRY_NODE_MAX_TAGS);
            continue;
        } else {
            continue;
        }
        if (*seen)
            return ferry_fail(d, FERRY_E_INVALID_ARG, "query: '%.*s' given twice", (int)name, it);
        *seen = true;
        if (!item_value(it, len, name, field, cap) || !ferry_id_valid(field))
            return ferry_fail(d, FERRY_E_INVALID_ARG, "query: '%.*s' does not hold an identifier",
                              (int)(len > 100 ? 100 : len), it);
    }
    if (!seen_hw)
        return ferry_fail(d, FERRY_E_NOT_FOUND,
                          "query: no hw= (the client does not describe "
                          "itself)");
    *out = ni;
    return FERRY_OK;
}
