#include "ferry_targets.h"

#include "ferry_targets_json.h"

#include <stdio.h>
#include <string.h>

bool ferry_targets_include(const struct ferry_targets *t, const char *node)
{
    if (t->n == 0)
        return true;
    for (size_t i = 0; i < t->n && i < FERRY_MAX_TARGETS; i++) {
        if (strcmp(t->node[i], node) == 0)
            return true;
    }
    return false;
}

enum ferry_err ferry_targets_check(const struct ferry_targets *t, struct ferry_diag *d)
{
    if (t->n > FERRY_MAX_TARGETS)
        return ferry_fail(d, FERRY_E_MALFORMED, "manifest: field 'nodes' holds at most %d ids",
                          FERRY_MAX_TARGETS);
    for (size_t i = 0; i < t->n; i++) {
        if (!ferry_id_valid(t->node[i]))
            return ferry_fail(d, FERRY_E_MALFORMED,
                              "manifest: field 'nodes[%zu]' must be a node id", i);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(t->node[i], t->node[j]) == 0)
                return ferry_fail(d, FERRY_E_MALFORMED, "manifest: field 'nodes' names '%s' twice",
                                  t->node[i]);
        }
    }
    return FERRY_OK;
}

enum ferry_err ferry_targets_add(struct ferry_targets *t, const char *node, struct ferry_diag *d)
{
    if (t->n >= FERRY_MAX_TARGETS)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "at most %d nodes per release",
                          FERRY_MAX_TARGETS);
    if (!node || !ferry_id_valid(node))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "'%.64s' is not a node id", node ? node : "");
    snprintf(t->node[t->n++], FERRY_ID_MAX + 1, "%s", node);
    return FERRY_OK;
}

enum ferry_err ferry_targets_read(const cJSON *root, struct ferry_targets *out,
                                  struct ferry_diag *d)
{
    memset(out, 0, sizeof(*out));
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "nodes");
    if (!a)
        return FERRY_OK;
    int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;
    if (n < 1 || n > FERRY_MAX_TARGETS)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          "manifest: field 'nodes' must be an array of 1..%d node ids",
                          FERRY_MAX_TARGETS);
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        const char *v = cJSON_GetStringValue(e);
        if (!v || strlen(v) > FERRY_ID_MAX)
            return ferry_fail(d, FERRY_E_MALFORMED,
                              "manifest: field 'nodes[%zu]' must be a node id", out->n);
        snprintf(out->node[out->n++], FERRY_ID_MAX + 1, "%s", v);
    }
    return FERRY_OK;
}

bool ferry_targets_write(cJSON *root, const struct ferry_targets *t)
{
    if (t->n == 0)
        return true;
    cJSON *a = cJSON_AddArrayToObject(root, "nodes");
    for (size_t i = 0; a && i < t->n; i++) {
        cJSON *s = cJSON_CreateString(t->node[i]);
        if (!s || !cJSON_AddItemToArray(a, s)) {
            cJSON_Delete(s);
            return false;
        }
    }
    return a != NULL;
}
