#include "ferry_signed.h"

#include "ferry_b64.h"
#include "ferry_json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_WHAT_MAX 48

static enum ferry_err read_signature(const cJSON *e, size_t i, const char *what,
                                     struct ferry_signed *s, struct ferry_diag *d)
{
    static const char *const keys[] = {"kid", "sig", NULL};
    char ewhat[KEY_WHAT_MAX];
    snprintf(ewhat, sizeof(ewhat), "%.16s: signatures[%zu]", what, i);
    struct ferry_signature *sig = &s->sigs[i];
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    if (!cJSON_IsObject(e))
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: must be an object", ewhat);
    enum ferry_err err = ferry_json_only_keys(e, keys, false, ewhat, d);
    if (err == FERRY_OK)
        err = ferry_json_str(e, "kid", true, FERRY_KID_LEN, sig->kid, ewhat, d);
    if (err == FERRY_OK && !ferry_kid_valid(sig->kid))
        err = ferry_fail(d, FERRY_E_MALFORMED, "%s: field 'kid' must be %d lower-case hex digits",
                         ewhat, FERRY_KID_LEN);
    if (err == FERRY_OK)
        err = ferry_b64_decode(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "sig")),
                               FERRY_ES256_SIG_LEN, FERRY_E_MALFORMED, ewhat, "sig", &raw, &raw_len,
                               d);
    if (err == FERRY_OK && raw_len != FERRY_ES256_SIG_LEN)
        err = ferry_fail(d, FERRY_E_MALFORMED, "%s: field 'sig' must hold %d bytes, got %zu", ewhat,
                         FERRY_ES256_SIG_LEN, raw_len);
    if (err == FERRY_OK)
        memcpy(sig->sig, raw, FERRY_ES256_SIG_LEN);
    free(raw);
    for (size_t j = 0; err == FERRY_OK && j < i; j++) {
        if (strcmp(s->sigs[j].kid, sig->kid) == 0)
            err = ferry_fail(d, FERRY_E_MALFORMED, "%s: key %s signs twice", ewhat, sig->kid);
    }
    return err;
}

static enum ferry_err read_doc(const cJSON *root, size_t max_body, const char *what,
                               struct ferry_signed *s, struct ferry_diag *d)
{
    static const char *const keys[] = {"format", "signed", "signatures", NULL};
    int64_t format = 0;
    enum ferry_err err = ferry_json_only_keys(root, keys, false, what, d);
    if (err == FERRY_OK)
        err = ferry_json_int(root, "format", true, 0, INT32_MAX, &format, what, d);
    if (err == FERRY_OK && format != FERRY_SIGNED_FORMAT)
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: field 'format' must be %d, got %" PRId64, what,
                          FERRY_SIGNED_FORMAT, format);
    const cJSON *body = cJSON_GetObjectItemCaseSensitive(root, "signed");
    if (err == FERRY_OK && !body)
        err = ferry_fail(d, FERRY_E_MALFORMED, "%s: missing field 'signed'", what);
    if (err == FERRY_OK)
        err = ferry_b64_decode(cJSON_GetStringValue(body), max_body, FERRY_E_TOO_LARGE, what,
                               "signed", &s->body, &s->body_len, d);
    if (err != FERRY_OK)
        return err;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "signatures");
    int n = cJSON_GetArraySize(arr);
    if (!cJSON_IsArray(arr) || n < 1 || n > FERRY_SIGNED_MAX_SIGS)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          "%s: field 'signatures' must be an array of 1..%d signatures", what,
                          FERRY_SIGNED_MAX_SIGS);
    for (const cJSON *e = arr->child; e && err == FERRY_OK; e = e->next) {
        err = read_signature(e, s->nsigs, what, s, d);
        s->nsigs++;
    }
    return err;
}

enum ferry_err ferry_signed_parse(const uint8_t *buf, size_t len, size_t max_body, const char *what,
                                  struct ferry_signed **out, struct ferry_diag *d)
{
    cJSON *root = NULL;
    enum ferry_err err = ferry_json_parse(buf, len, FERRY_SIGNED_MAX_BYTES, what, &root, d);
    if (err != FERRY_OK)
        return err;
    struct ferry_signed *s = calloc(1, sizeof(*s));
    if (!s) {
        cJSON_Delete(root);
        return ferry_fail(d, FERRY_E_NOMEM, "%s: out of memory", what);
    }
    err = read_doc(root, max_body, what, s, d);
    cJSON_Delete(root);
    if (err != FERRY_OK) {
        ferry_signed_free(s);
        return err;
    }
    *out = s;
    return FERRY_OK;
}

void ferry_signed_free(struct ferry_signed *s)
{
    if (s) {
        free(s->body);
        free(s);
    }
}

static bool add_signature(cJSON *arr, const struct ferry_signature *sig)
{
    char *b64 = ferry_b64_encode(sig->sig, FERRY_ES256_SIG_LEN);
    cJSON *e = cJSON_CreateObject();
    bool ok = b64 && e && cJSON_AddStringToObject(e, "kid", sig->kid) &&
              cJSON_AddStringToObject(e, "sig", b64) && cJSON_AddItemToArray(arr, e);
    if (!ok)
        cJSON_Delete(e);
    free(b64);
    return ok;
}

enum ferry_err ferry_signed_encode(const uint8_t *body, size_t body_len,
                                   const struct ferry_signature *sigs, size_t nsigs, char **out,
                                   size_t *out_len, struct ferry_diag *d)
{
    if (body_len == 0 || nsigs < 1 || nsigs > FERRY_SIGNED_MAX_SIGS)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "signed document: needs a body and 1..%d signatures, got %zu",
                          FERRY_SIGNED_MAX_SIGS, nsigs);
    for (size_t i = 0; i < nsigs; i++) {
        if (!ferry_kid_valid(sigs[i].kid))
            return ferry_fail(d, FERRY_E_INVALID_ARG, "signed document: signature %zu: bad key id",
                              i);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(sigs[i].kid, sigs[j].kid) == 0)
                return ferry_fail(d, FERRY_E_INVALID_ARG, "signed document: key %s signs twice",
                                  sigs[i].kid);
        }
    }
    enum ferry_err err = FERRY_OK;
    char *b64 = ferry_b64_encode(body, body_len);
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = NULL;
    if (!b64 || !root || !cJSON_AddRawToObject(root, "format", "1") ||
        !cJSON_AddStringToObject(root, "signed", b64) ||
        !(arr = cJSON_AddArrayToObject(root, "signatures"))) {
        err = ferry_fail(d, FERRY_E_NOMEM, "signed document: out of memory while encoding");
        goto out;
    }
    for (size_t i = 0; i < nsigs; i++) {
        if (!add_signature(arr, &sigs[i])) {
            err = ferry_fail(d, FERRY_E_NOMEM, "signed document: out of memory while encoding");
            goto out;
        }
    }
    err = ferry_json_print(root, out, out_len, d);
    if (err == FERRY_OK && *out_len > FERRY_SIGNED_MAX_BYTES) {
        free(*out);
        *out = NULL;
        err = ferry_fail(d, FERRY_E_TOO_LARGE, "signed document: %zu bytes, the limit is %d",
                         *out_len, FERRY_SIGNED_MAX_BYTES);
    }
out:
    cJSON_Delete(root);
    free(b64);
    return err;
}

enum ferry_err ferry_signed_check(const struct ferry_signed *s, const struct ferry_keyring *kr,
                                  unsigned threshold, const char *what, struct ferry_diag *d)
{
    unsigned good = 0;
    enum ferry_err first = FERRY_OK;
    const char *first_kid = "";
    if (threshold < 1)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "%s: a threshold is at least 1", what);
    /* Distinct key ids (parse refuses repeats), so each key counts once. */
    for (size_t i = 0; i < s->nsigs; i++) {
        enum ferry_err err =
            ferry_keyring_verify(kr, s->sigs[i].kid, s->body, s->body_len, s->sigs[i].sig);
        if (err == FERRY_OK) {
            good++;
        } else if (first == FERRY_OK) {
            first = err;
            first_kid = s->sigs[i].kid;
        }
    }
    if (good >= threshold)
        return FERRY_OK;
    if (first == FERRY_OK)
        return ferry_fail(d, FERRY_E_THRESHOLD,
                          "%s: %u valid signature(s) of the %u needed, no other signature", what,
                          good, threshold);
    return ferry_fail(d, FERRY_E_THRESHOLD,
                      "%s: %u valid signature(s) of the %u needed; key %s: %s", what, good,
                      threshold, first_kid, ferry_strerror(first));
}

bool ferry_signed_has_kid(const struct ferry_signed *s, const char *kid)
{
    for (size_t i = 0; i < s->nsigs; i++) {
        if (strcmp(s->sigs[i].kid, kid) == 0)
            return true;
    }
    return false;
}
