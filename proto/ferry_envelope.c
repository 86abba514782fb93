#include "ferry_envelope.h"

#include "ferry_b64.h"
#include "ferry_json.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define WHAT    "envelope"
#define ALG     "ES256"
#define ALG_MAX 32

/* A base64 member of the envelope; *out (malloc'd) is written only on
 * success. */
static enum ferry_err decode_b64(const cJSON *obj, const char *key, size_t max, enum ferry_err over,
                                 uint8_t **out, size_t *out_len, struct ferry_diag *d)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!f)
        return ferry_fail(d, FERRY_E_MALFORMED, WHAT ": missing field '%s'", key);
    return ferry_b64_decode(cJSON_GetStringValue(f), max, over, WHAT, key, out, out_len, d);
}

static enum ferry_err read_header(const cJSON *root, struct ferry_envelope *env,
                                  struct ferry_diag *d)
{
    static const char *const keys[] = {"format", "alg", "kid", "manifest", "sig", NULL};
    int64_t format = 0;
    char alg[ALG_MAX + 1];
    /* No "x-" extensions here: the envelope is the part nobody signs. */
    enum ferry_err err = ferry_json_only_keys(root, keys, false, WHAT, d);
    if (err == FERRY_OK)
        err = ferry_json_int(root, "format", true, 0, INT32_MAX, &format, WHAT, d);
    if (err == FERRY_OK && format != FERRY_ENVELOPE_FORMAT)
        err = ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field 'format' must be %d, got %" PRId64,
                         FERRY_ENVELOPE_FORMAT, format);
    if (err == FERRY_OK)
        err = ferry_json_str(root, "alg", true, ALG_MAX, alg, WHAT, d);
    if (err == FERRY_OK && strcmp(alg, ALG) != 0)
        err =
            ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field 'alg' must be '" ALG "', got '%s'", alg);
    if (err == FERRY_OK)
        err = ferry_json_str(root, "kid", true, FERRY_KID_LEN, env->kid, WHAT, d);
    if (err == FERRY_OK && !ferry_kid_valid(env->kid))
        err = ferry_fail(d, FERRY_E_MALFORMED,
                         WHAT ": field 'kid' must be %d lower-case hex digits, got '%s'",
                         FERRY_KID_LEN, env->kid);
    return err;
}

static enum ferry_err read_payload(const cJSON *root, struct ferry_envelope *env,
                                   struct ferry_diag *d)
{
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    enum ferry_err err = decode_b64(root, "manifest", FERRY_MANIFEST_MAX_BYTES, FERRY_E_TOO_LARGE,
                                    &env->manifest, &env->manifest_len, d);
    if (err == FERRY_OK)
        err = decode_b64(root, "sig", FERRY_ES256_SIG_LEN, FERRY_E_MALFORMED, &sig, &sig_len, d);
    if (err == FERRY_OK && sig_len != FERRY_ES256_SIG_LEN)
        err = ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field 'sig' must hold %d bytes, got %zu",
                         FERRY_ES256_SIG_LEN, sig_len);
    if (err == FERRY_OK)
        memcpy(env->sig, sig, FERRY_ES256_SIG_LEN);
    free(sig);
    return err;
}

enum ferry_err ferry_envelope_parse(const uint8_t *buf, size_t len, struct ferry_envelope **out,
                                    struct ferry_diag *d)
{
    cJSON *root = NULL;
    struct ferry_envelope *env = NULL;
    enum ferry_err err = ferry_json_parse(buf, len, FERRY_ENVELOPE_MAX_BYTES, WHAT, &root, d);
    if (err != FERRY_OK)
        goto out;
    env = calloc(1, sizeof(*env));
    if (!env) {
        err = ferry_fail(d, FERRY_E_NOMEM, WHAT ": out of memory");
        goto out;
    }
    err = read_header(root, env, d);
    if (err == FERRY_OK)
        err = read_payload(root, env, d);
    if (err == FERRY_OK) {
        *out = env;
        env = NULL;
    }
out:
    ferry_envelope_free(env);
    cJSON_Delete(root);
    return err;
}

void ferry_envelope_free(struct ferry_envelope *env)
{
    if (env) {
        free(env->manifest);
        free(env);
    }
}

enum ferry_err ferry_envelope_encode(const uint8_t *manifest, size_t manifest_len, const char *kid,
                                     const uint8_t sig[FERRY_ES256_SIG_LEN], char **out,
                                     size_t *out_len, struct ferry_diag *d)
{
    if (manifest_len == 0 || manifest_len > FERRY_MANIFEST_MAX_BYTES)
        return ferry_fail(d, manifest_len ? FERRY_E_TOO_LARGE : FERRY_E_INVALID_ARG,
                          WHAT ": manifest of %zu bytes, it must hold 1..%d", manifest_len,
                          FERRY_MANIFEST_MAX_BYTES);
    if (!ferry_kid_valid(kid))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          WHAT ": kid must be %d lower-case hex digits, got '%.*s'", FERRY_KID_LEN,
                          FERRY_NAME_MAX, kid);
    enum ferry_err err = FERRY_OK;
    char *m64 = ferry_b64_encode(manifest, manifest_len);
    char *s64 = ferry_b64_encode(sig, FERRY_ES256_SIG_LEN);
    cJSON *root = cJSON_CreateObject();
    if (!m64 || !s64 || !root || !cJSON_AddRawToObject(root, "format", "1") ||
        !cJSON_AddStringToObject(root, "alg", ALG) || !cJSON_AddStringToObject(root, "kid", kid) ||
        !cJSON_AddStringToObject(root, "manifest", m64) ||
        !cJSON_AddStringToObject(root, "sig", s64)) {
        err = ferry_fail(d, FERRY_E_NOMEM, WHAT ": out of memory while encoding");
        goto out;
    }
    err = ferry_json_print(root, out, out_len, d);
out:
    cJSON_Delete(root);
    free(s64);
    free(m64);
    return err;
}

static enum ferry_err check_signature(const struct ferry_envelope *env,
                                      const struct ferry_keyring *kr, struct ferry_diag *d)
{
    enum ferry_err err =
        ferry_keyring_verify(kr, env->kid, env->manifest, env->manifest_len, env->sig);
    switch (err) {
    case FERRY_OK:
        return FERRY_OK;
    case FERRY_E_UNKNOWN_KEY:
        return ferry_fail(d, err, WHAT ": signed by key %s, which is not in the keyring", env->kid);
    case FERRY_E_REVOKED_KEY:
        return ferry_fail(d, err, WHAT ": signed by key %s, which is revoked", env->kid);
    case FERRY_E_BAD_SIGNATURE:
        return ferry_fail(d, err, WHAT ": signature by key %s does not verify", env->kid);
    default:
        return ferry_fail(d, err, WHAT ": cannot check the signature: %s", ferry_strerror(err));
    }
}

static enum ferry_err check_policy(const struct ferry_manifest *m,
                                   const struct ferry_verify_policy *pol, struct ferry_diag *d)
{
    uint64_t skew = pol->clock_skew > 0 ? (uint64_t)pol->clock_skew : 0;
    uint64_t cap = pol->max_artifact_size && pol->max_artifact_size < FERRY_ARTIFACT_MAX_SIZE
                       ? pol->max_artifact_size
                       : FERRY_ARTIFACT_MAX_SIZE;
    /* Unsigned difference: exact whenever issued_at > now, for any now. */
    if (m->issued_at > pol->now && (uint64_t)m->issued_at - (uint64_t)pol->now > skew)
        return ferry_fail(d, FERRY_E_NOT_YET_VALID,
                          "manifest: issued at %" PRId64 ", after now (%" PRId64 ") + %" PRIu64
                          " s of clock skew",
                          m->issued_at, pol->now, skew);
    if (pol->now >= m->expires_at)
        return ferry_fail(d, FERRY_E_EXPIRED, "manifest: expired at %" PRId64 ", now is %" PRId64,
                          m->expires_at, pol->now);
    if (pol->max_lifetime > 0 && m->expires_at - m->issued_at > pol->max_lifetime)
        return ferry_fail(d, FERRY_E_LIFETIME,
                          "manifest: valid for %" PRId64 " s (issued %" PRId64 ", expires %" PRId64
                          "), this device takes at most %" PRId64 " s",
                          m->expires_at - m->issued_at, m->issued_at, m->expires_at,
                          pol->max_lifetime);
    if (pol->product && strcmp(m->product, pol->product) != 0)
        return ferry_fail(d, FERRY_E_WRONG_PRODUCT,
                          "manifest: release %s is for product '%s', this device runs '%s'",
                          m->release_id, m->product, pol->product);
    if (pol->hw_model && !ferry_manifest_matches_hw(m, pol->hw_model, pol->hw_revision))
        return ferry_fail(d, FERRY_E_INCOMPATIBLE_HW,
                          "manifest: release %s is not for hardware '%s' %s%s%s", m->release_id,
                          pol->hw_model, pol->hw_revision ? "revision '" : "without a revision",
                          pol->hw_revision ? pol->hw_revision : "", pol->hw_revision ? "'" : "");
    if (m->seq < pol->min_seq)
        return ferry_fail(d, FERRY_E_DOWNGRADE,
                          "manifest: seq %" PRIu64 " is below the minimum %" PRIu64, m->seq,
                          pol->min_seq);
    /* Subtraction, not seq_base + step: no overflow whatever the two are. */
    if (pol->max_seq_step > 0 && m->seq > pol->seq_base &&
        m->seq - pol->seq_base > pol->max_seq_step)
        return ferry_fail(d, FERRY_E_SEQ_JUMP,
                          "manifest: seq %" PRIu64 " is more than %" PRIu64 " above %" PRIu64,
                          m->seq, pol->max_seq_step, pol->seq_base);
    if (m->size > cap)
        return ferry_fail(d, FERRY_E_ARTIFACT_TOO_LARGE,
                          "manifest: artifact of %" PRIu64
                          " bytes, this device takes at most %" PRIu64,
                          m->size, cap);
    return FERRY_OK;
}

enum ferry_err ferry_envelope_verify(const uint8_t *buf, size_t len, const struct ferry_keyring *kr,
                                     const struct ferry_verify_policy *pol,
                                     struct ferry_manifest *out, struct ferry_diag *d)
{
    struct ferry_envelope *env = NULL;
    struct ferry_manifest m;
    if (!kr || !pol)
        return ferry_fail(d, FERRY_E_INVALID_ARG, WHAT ": verify needs a keyring and a policy");
    enum ferry_err err = ferry_envelope_parse(buf, len, &env, d);
    if (err == FERRY_OK)
        err = check_signature(env, kr, d);
    if (err == FERRY_OK)
        err = ferry_manifest_parse(env->manifest, env->manifest_len, &m, d);
    if (err == FERRY_OK && strcmp(m.key_id, env->kid) != 0)
        err = ferry_fail(d, FERRY_E_MALFORMED,
                         "manifest: field 'key_id' is %s but the envelope was signed by %s",
                         m.key_id, env->kid);
    if (err == FERRY_OK)
        err = check_policy(&m, pol, d);
    if (err == FERRY_OK && out)
        *out = m;
    ferry_envelope_free(env);
    return err;
}
