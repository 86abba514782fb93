#include "ferry_meta.h"

#include "ferry_json.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define WHAT "meta"

void ferry_meta_free(struct ferry_meta *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nroots; i++)
        free(m->roots[i].buf);
    free(m->timestamp.buf);
    free(m);
}

/* A nested signed document back to JSON text of its own; its signed bytes
 * sit in base64 inside it, so printing it again changes nothing signed. */
static enum ferry_err doc_of(const cJSON *o, const char *name, struct ferry_meta_doc *out,
                             struct ferry_diag *d)
{
    if (!cJSON_IsObject(o))
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": %s must be a signed document (an object)",
                          name);
    char *text = NULL;
    size_t len = 0;
    enum ferry_err err = ferry_json_print(o, &text, &len, d);
    if (err != FERRY_OK)
        return err;
    out->buf = (uint8_t *)text;
    out->len = len;
    return FERRY_OK;
}

enum ferry_err ferry_meta_parse(const uint8_t *buf, size_t len, struct ferry_meta **out,
                                struct ferry_diag *d)
{
    static const char *const keys[] = {"format", "roots", "timestamp", NULL};
    cJSON *root = NULL;
    int64_t format = 0;
    struct ferry_meta *m = calloc(1, sizeof(*m));
    if (!m)
        return ferry_fail(d, FERRY_E_NOMEM, WHAT ": out of memory");
    enum ferry_err err = ferry_json_parse(buf, len, FERRY_META_MAX_BYTES, WHAT, &root, d);
    if (err == FERRY_OK)
        err = ferry_json_only_keys(root, keys, false, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_int(root, "format", true, 0, INT32_MAX, &format, WHAT, d);
    if (err == FERRY_OK && format != FERRY_META_FORMAT)
        err = ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field 'format' must be %d, got %" PRId64,
                         FERRY_META_FORMAT, format);
    const cJSON *roots = root ? cJSON_GetObjectItemCaseSensitive(root, "roots") : NULL;
    if (err == FERRY_OK && roots &&
        (!cJSON_IsArray(roots) || cJSON_GetArraySize(roots) > FERRY_META_MAX_ROOTS))
        err = ferry_fail(d, FERRY_E_MALFORMED,
                         WHAT ": field 'roots' must be an array of at most %d documents",
                         FERRY_META_MAX_ROOTS);
    for (const cJSON *e = roots ? roots->child : NULL; e && err == FERRY_OK; e = e->next)
        err = doc_of(e, "a root", &m->roots[m->nroots++], d);
    const cJSON *ts = root ? cJSON_GetObjectItemCaseSensitive(root, "timestamp") : NULL;
    if (err == FERRY_OK && ts)
        err = doc_of(ts, "the timestamp", &m->timestamp, d);
    cJSON_Delete(root);
    if (err != FERRY_OK) {
        ferry_meta_free(m);
        return err;
    }
    *out = m;
    return FERRY_OK;
}

static void append(uint8_t *dst, size_t *at, const void *src, size_t n)
{
    memcpy(dst + *at, src, n);
    *at += n;
}

enum ferry_err ferry_meta_encode(const struct ferry_meta_doc *roots, size_t nroots,
                                 const struct ferry_meta_doc *timestamp, uint8_t **out,
                                 size_t *out_len, size_t *nroots_out, struct ferry_diag *d)
{
    static const char head[] = "{\"format\":1,\"roots\":[", mid[] = "],\"timestamp\":";
    /* "]" and "}" at the end; the timestamp member only when there is one. */
    size_t fixed = sizeof(head) - 1 + 2 + (timestamp ? sizeof(mid) - 2 + timestamp->len : 0);
    if (fixed > FERRY_META_MAX_BYTES)
        return ferry_fail(d, FERRY_E_TOO_LARGE, WHAT ": the timestamp alone is too large");
    size_t n = 0, total = fixed;
    while (n < nroots && n < FERRY_META_MAX_ROOTS &&
           total + roots[n].len + (n ? 1 : 0) <= FERRY_META_MAX_BYTES) {
        total += roots[n].len + (n ? 1 : 0);
        n++;
    }
    uint8_t *buf = malloc(total + 1);
    if (!buf)
        return ferry_fail(d, FERRY_E_NOMEM, WHAT ": out of memory");
    size_t at = 0;
    append(buf, &at, head, sizeof(head) - 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            append(buf, &at, ",", 1);
        append(buf, &at, roots[i].buf, roots[i].len);
    }
    if (timestamp) {
        append(buf, &at, mid, sizeof(mid) - 1);
        append(buf, &at, timestamp->buf, timestamp->len);
    } else {
        append(buf, &at, "]", 1);
    }
    append(buf, &at, "}", 1);
    buf[at] = '\0';
    *out = buf;
    *out_len = at;
    *nroots_out = n;
    return FERRY_OK;
}
