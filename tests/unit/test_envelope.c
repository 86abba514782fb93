#include "cunit_main.h"
#include "test_keys.h"

#include "ferry_envelope.h"
#include "ferry_fs.h"

#include <cjson/cJSON.h>
#include <mbedtls/base64.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One signer, one stranger, a keyring trusting the signer, a sample release
 * and its envelope. */
struct fixture {
    struct test_key key, other;
    struct ferry_keyring *kr;
    struct ferry_manifest m;
    char *env;
    size_t env_len;
};

static void fixture_init(struct fixture *f)
{
    test_key_init(&f->key, 1);
    test_key_init(&f->other, 2);
    f->kr = test_keyring_of(&f->key, false);
    test_manifest_sample(&f->m, f->key.kid, NULL, 5000);
    f->env = test_envelope_of(&f->key, &f->m, &f->env_len);
}

static void fixture_free(struct fixture *f)
{
    free(f->env);
    ferry_keyring_free(f->kr);
    test_key_free(&f->other);
    test_key_free(&f->key);
}

/* A device the sample release is meant for, at a time it is valid. */
static struct ferry_verify_policy device_policy(const struct ferry_manifest *m)
{
    struct ferry_verify_policy pol = {
        .now = m->issued_at + 60,
        .clock_skew = 300,
        .hw_model = "mx-100",
        .hw_revision = "A",
        .min_seq = m->seq,
        .max_artifact_size = m->size,
    };
    return pol;
}

static enum ferry_err verify_text(const char *env, const struct ferry_keyring *kr,
                                  const struct ferry_verify_policy *pol, struct ferry_diag *d)
{
    struct ferry_manifest out;
    memset(&out, 0x5c, sizeof(out));
    enum ferry_err err = ferry_envelope_verify((const uint8_t *)env, strlen(env), kr, pol, &out, d);
    if (err != FERRY_OK)
        CU_ASSERT_EQUAL(out.format, 0x5c5c5c5c); /* untouched on failure */
    return err;
}

/* An envelope of m signed by `signer` but naming `kid`, over `signed_bytes`
 * (NULL: the manifest's own encoding). */
static char *envelope_custom(struct test_key *signer, const char *kid, const uint8_t *body,
                             size_t body_len, const uint8_t *signed_bytes, size_t signed_len)
{
    uint8_t sig[FERRY_ES256_SIG_LEN];
    char *env = NULL;
    size_t env_len = 0;
    if (signed_bytes)
        test_key_sign(signer, signed_bytes, signed_len, sig);
    else
        test_key_sign(signer, body, body_len, sig);
    CU_ASSERT_FATAL(ferry_envelope_encode(body, body_len, kid, sig, &env, &env_len, NULL) ==
                    FERRY_OK);
    return env;
}

static char *encode_manifest(const struct ferry_manifest *m, size_t *len)
{
    char *text = NULL;
    CU_ASSERT_FATAL(ferry_manifest_encode(m, &text, len, NULL) == FERRY_OK);
    return text;
}

static void envelope_round_trip(void)
{
    struct fixture f;
    fixture_init(&f);
    struct ferry_verify_policy pol = device_policy(&f.m);
    struct ferry_manifest out;
    struct ferry_diag d = {""};
    CU_ASSERT_EQUAL(ferry_envelope_verify((const uint8_t *)f.env, f.env_len, f.kr, &pol, &out, &d),
                    FERRY_OK);
    CU_ASSERT_TRUE(test_manifest_equal(&f.m, &out));
    CU_ASSERT_EQUAL(ferry_envelope_verify((const uint8_t *)f.env, f.env_len, f.kr, &pol, NULL, &d),
                    FERRY_OK);

    /* A gateway checks no hardware; the edge for mx-200 takes any revision. */
    pol.hw_model = NULL;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_OK);
    pol.hw_model = "mx-200";
    pol.hw_revision = NULL;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_OK);
    fixture_free(&f);
}

static void envelope_parse_and_reencode(void)
{
    struct fixture f;
    fixture_init(&f);
    struct ferry_envelope *env = NULL;
    size_t mlen = 0;
    char *mtext = encode_manifest(&f.m, &mlen);
    CU_ASSERT_EQUAL_FATAL(ferry_envelope_parse((const uint8_t *)f.env, f.env_len, &env, NULL),
                          FERRY_OK);
    CU_ASSERT_STRING_EQUAL(env->kid, f.key.kid);
    CU_ASSERT_EQUAL(env->manifest_len, mlen);
    CU_ASSERT_EQUAL(memcmp(env->manifest, mtext, mlen), 0);
    CU_ASSERT_EQUAL(ferry_es256_verify(f.key.point, env->manifest, env->manifest_len, env->sig),
                    FERRY_OK);

    char *again = NULL;
    size_t again_len = 0;
    CU_ASSERT_EQUAL(ferry_envelope_encode(env->manifest, env->manifest_len, env->kid, env->sig,
                                          &again, &again_len, NULL),
                    FERRY_OK);
    CU_ASSERT_EQUAL(again_len, f.env_len);
    CU_ASSERT_STRING_EQUAL(again, f.env);
    CU_ASSERT_PTR_NOT_NULL(strstr(f.env, "{\"format\":1,\"alg\":\"ES256\",\"kid\":\""));
    free(again);
    free(mtext);
    ferry_envelope_free(env);
    ferry_envelope_free(NULL);
    fixture_free(&f);
}

static void envelope_trust_rejections(void)
{
    struct fixture f;
    fixture_init(&f);
    struct ferry_verify_policy pol = device_policy(&f.m);
    struct ferry_diag d = {""};

    struct ferry_keyring *strangers = test_keyring_of(&f.other, false);
    CU_ASSERT_EQUAL(verify_text(f.env, strangers, &pol, &d), FERRY_E_UNKNOWN_KEY);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, f.key.kid));
    ferry_keyring_free(strangers);

    struct ferry_keyring *revoked = test_keyring_of(&f.key, true);
    CU_ASSERT_EQUAL(verify_text(f.env, revoked, &pol, &d), FERRY_E_REVOKED_KEY);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "revoked"));
    ferry_keyring_free(revoked);

    /* Signed by the stranger while naming the trusted key. */
    size_t len = 0;
    char *text = encode_manifest(&f.m, &len);
    char *env = envelope_custom(&f.other, f.key.kid, (const uint8_t *)text, len, NULL, 0);
    CU_ASSERT_EQUAL(verify_text(env, f.kr, &pol, &d), FERRY_E_BAD_SIGNATURE);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "does not verify"));
    free(env);

    CU_ASSERT_EQUAL(ferry_envelope_verify((const uint8_t *)f.env, f.env_len, NULL, &pol, NULL, &d),
                    FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_envelope_verify((const uint8_t *)f.env, f.env_len, f.kr, NULL, NULL, &d),
                    FERRY_E_INVALID_ARG);
    free(text);
    fixture_free(&f);
}

/* A signature made over other bytes than the ones the envelope carries. */
static void envelope_signature_over_other_bytes(void)
{
    struct fixture f;
    fixture_init(&f);
    struct ferry_verify_policy pol = device_policy(&f.m);
    struct ferry_manifest newer = f.m;
    newer.seq++;
    size_t len = 0, newer_len = 0;
    char *text = encode_manifest(&f.m, &len);
    char *newer_text = encode_manifest(&newer, &newer_len);
    char *env = envelope_custom(&f.key, f.key.kid, (const uint8_t *)text, len,
                                (const uint8_t *)newer_text, newer_len);
    CU_ASSERT_EQUAL(verify_text(env, f.kr, &pol, NULL), FERRY_E_BAD_SIGNATURE);
    free(env);
    /* Over the same bytes with one more trailing space: still other bytes. */
    char *spaced = malloc(len + 2);
    CU_ASSERT_FATAL(spaced != NULL);
    memcpy(spaced, text, len);
    spaced[len] = ' ';
    env = envelope_custom(&f.key, f.key.kid, (const uint8_t *)text, len, (const uint8_t *)spaced,
                          len + 1);
    CU_ASSERT_EQUAL(verify_text(env, f.kr, &pol, NULL), FERRY_E_BAD_SIGNATURE);
    free(env);
    free(spaced);
    free(newer_text);
    free(text);
    fixture_free(&f);
}

static void envelope_manifest_bit_flips(void)
{
    struct fixture f;
    fixture_init(&f);
    struct ferry_verify_policy pol = device_policy(&f.m);
    struct ferry_envelope *env = NULL;
    CU_ASSERT_FATAL(ferry_envelope_parse((const uint8_t *)f.env, f.env_len, &env, NULL) ==
                    FERRY_OK);
    size_t at[] = {0, env->manifest_len / 2, env->manifest_len - 1};
    for (size_t i = 0; i < 3; i++) {
        for (unsigned bit = 0; bit < 8; bit += 7) {
            uint8_t *copy = malloc(env->manifest_len);
            CU_ASSERT_FATAL(copy != NULL);
            memcpy(copy, env->manifest, env->manifest_len);
            copy[at[i]] ^= (uint8_t)(1u << bit);
            char *text = NULL;
            size_t len = 0;
            CU_ASSERT_FATAL(ferry_envelope_encode(copy, env->manifest_len, env->kid, env->sig,
                                                  &text, &len, NULL) == FERRY_OK);
            struct ferry_diag d = {""};
            CU_ASSERT_EQUAL(verify_text(text, f.kr, &pol, &d), FERRY_E_BAD_SIGNATURE);
            free(text);
            free(copy);
        }
    }
    ferry_envelope_free(env);
    fixture_free(&f);
}

/* The artifact is checked against the verified manifest's digest: one
 * flipped bit anywhere is a mismatch, in memory and on disk. */
static void artifact_bit_flips(void)
{
    struct test_key k;
    test_key_init(&k, 7);
    size_t len = 10007;
    uint8_t *art = malloc(len), digest[FERRY_SHA256_LEN], got[FERRY_SHA256_LEN];
    CU_ASSERT_FATAL(art != NULL);
    for (size_t i = 0; i < len; i++)
        art[i] = (uint8_t)(i * 131 + 7);
    ferry_sha256(art, len, digest);
    struct ferry_manifest m, out;
    test_manifest_sample(&m, k.kid, digest, len);
    size_t env_len = 0;
    char *env = test_envelope_of(&k, &m, &env_len);
    struct ferry_keyring *kr = test_keyring_of(&k, false);
    struct ferry_verify_policy pol = device_policy(&m);
    CU_ASSERT_EQUAL_FATAL(
        ferry_envelope_verify((const uint8_t *)env, env_len, kr, &pol, &out, NULL), FERRY_OK);

    char path[512];
    uint64_t size = 0;
    snprintf(path, sizeof(path), "%s/artifact.bin", ferry_test_tmpdir());
    CU_ASSERT_FATAL(ferry_write_atomic(path, art, len, 0644, NULL) == FERRY_OK);
    CU_ASSERT_EQUAL(ferry_sha256_file(path, got, &size, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(size, out.size);
    CU_ASSERT_EQUAL(memcmp(got, out.sha256, FERRY_SHA256_LEN), 0);

    size_t at[] = {0, len / 2, len - 1};
    for (size_t i = 0; i < 3; i++) {
        art[at[i]] ^= 0x01;
        ferry_sha256(art, len, got);
        CU_ASSERT_NOT_EQUAL(memcmp(got, out.sha256, FERRY_SHA256_LEN), 0);
        CU_ASSERT_FATAL(ferry_write_atomic(path, art, len, 0644, NULL) == FERRY_OK);
        CU_ASSERT_EQUAL(ferry_sha256_file(path, got, &size, NULL), FERRY_OK);
        CU_ASSERT_EQUAL(size, out.size);
        CU_ASSERT_NOT_EQUAL(memcmp(got, out.sha256, FERRY_SHA256_LEN), 0);
        art[at[i]] ^= 0x01;
    }
    ferry_keyring_free(kr);
    free(env);
    free(art);
    test_key_free(&k);
}

static void envelope_time_window(void)
{
    struct fixture f;
    fixture_init(&f);
    struct ferry_verify_policy pol = device_policy(&f.m);
    struct ferry_diag d = {""};

    pol.now = f.m.expires_at - 1;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_OK);
    pol.now = f.m.expires_at;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_E_EXPIRED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "expired"));
    pol.now = INT64_MAX;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_E_EXPIRED);

    /* Skew tolerates a device clock behind issued_at, never expires_at. */
    pol.now = f.m.issued_at - pol.clock_skew;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_OK);
    pol.now = f.m.issued_at - pol.clock_skew - 1;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_E_NOT_YET_VALID);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "issued at"));
    pol.clock_skew = 0;
    pol.now = f.m.issued_at;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_OK);
    pol.now = f.m.issued_at - 1;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_E_NOT_YET_VALID);
    pol.clock_skew = -1000; /* a negative skew counts as none */
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_E_NOT_YET_VALID);
    pol.now = INT64_MIN;
    pol.clock_skew = INT64_MAX;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_E_NOT_YET_VALID);
    fixture_free(&f);
}

static void envelope_device_policy(void)
{
    struct fixture f;
    fixture_init(&f);
    struct ferry_verify_policy pol = device_policy(&f.m);
    struct ferry_diag d = {""};
    static const struct {
        const char *model, *revision;
        bool ok;
    } hw[] = {
        {"mx-100", "A", true},   {"mx-100", "B2", true}, {"mx-100", "C", false},
        {"mx-100", NULL, false}, {"mx-200", "Q", true},  {"mx-300", NULL, false},
        {"MX-100", "A", false},
    };
    for (size_t i = 0; i < sizeof(hw) / sizeof(hw[0]); i++) {
        pol.hw_model = hw[i].model;
        pol.hw_revision = hw[i].revision;
        CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d),
                        hw[i].ok ? FERRY_OK : FERRY_E_INCOMPATIBLE_HW);
    }
    pol = device_policy(&f.m);

    pol.min_seq = f.m.seq + 1;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_E_DOWNGRADE);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "seq"));
    pol.min_seq = UINT64_MAX;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_E_DOWNGRADE);
    pol.min_seq = 0;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_OK);

    pol.max_artifact_size = f.m.size - 1;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_E_ARTIFACT_TOO_LARGE);
    pol.max_artifact_size = f.m.size;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_OK);
    pol.max_artifact_size = 0; /* only the protocol's cap */
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_OK);
    fixture_free(&f);
}

/* The first failing check in the documented order wins, and nothing in the
 * manifest is read before the signature holds. */
static void envelope_check_order(void)
{
    struct fixture f;
    fixture_init(&f);
    struct ferry_verify_policy pol = device_policy(&f.m);
    struct ferry_diag d = {""};
    static const char garbage[] = "{\"format\":\"not a manifest\"";

    /* Unknown key and bad signature come before any manifest check. */
    char *env =
        envelope_custom(&f.other, f.other.kid, (const uint8_t *)garbage, strlen(garbage), NULL, 0);
    CU_ASSERT_EQUAL(verify_text(env, f.kr, &pol, &d), FERRY_E_UNKNOWN_KEY);
    free(env);
    env = envelope_custom(&f.other, f.key.kid, (const uint8_t *)garbage, strlen(garbage), NULL, 0);
    CU_ASSERT_EQUAL(verify_text(env, f.kr, &pol, &d), FERRY_E_BAD_SIGNATURE);
    free(env);
    /* Validly signed garbage is a malformed manifest. */
    env = envelope_custom(&f.key, f.key.kid, (const uint8_t *)garbage, strlen(garbage), NULL, 0);
    CU_ASSERT_EQUAL(verify_text(env, f.kr, &pol, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "manifest"));
    free(env);

    /* A manifest naming another key than the one that signed it. */
    struct ferry_manifest m = f.m;
    strcpy(m.key_id, f.other.kid);
    size_t len = 0;
    char *text = encode_manifest(&m, &len);
    env = envelope_custom(&f.key, f.key.kid, (const uint8_t *)text, len, NULL, 0);
    CU_ASSERT_EQUAL(verify_text(env, f.kr, &pol, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "key_id"));
    free(env);
    free(text);

    /* Expired, wrong product, wrong hardware, downgrade and too large all at once. */
    pol.now = f.m.expires_at;
    pol.product = "valve";
    pol.hw_model = "mx-999";
    pol.min_seq = f.m.seq + 1;
    pol.max_artifact_size = 1;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_E_EXPIRED);
    pol.now = f.m.issued_at;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_E_WRONG_PRODUCT);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "'valve'"));
    pol.product = f.m.product;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_E_INCOMPATIBLE_HW);
    pol.hw_model = NULL;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_E_DOWNGRADE);
    pol.min_seq = 0;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_E_ARTIFACT_TOO_LARGE);
    fixture_free(&f);
}

/* The sample is valid for 30 days: a device that takes at most that accepts
 * it, one that takes a second less refuses it, after the signature and the
 * time checks and before the product. */
static void envelope_lifetime_cap(void)
{
    struct fixture f;
    fixture_init(&f);
    struct ferry_verify_policy pol = device_policy(&f.m);
    struct ferry_diag d = {""};
    int64_t lifetime = f.m.expires_at - f.m.issued_at;
    pol.max_lifetime = lifetime;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_OK);
    pol.max_lifetime = lifetime - 1;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_E_LIFETIME);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "2592000"));
    pol.product = "valve";
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_E_LIFETIME);
    pol.now = f.m.expires_at;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_E_EXPIRED);
    pol = device_policy(&f.m);
    pol.max_lifetime = 0; /* no cap */
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_OK);
    fixture_free(&f);
}

/* seq 42 against an installed seq: at most max_seq_step above it. */
static void envelope_seq_step_cap(void)
{
    struct fixture f;
    fixture_init(&f);
    struct ferry_verify_policy pol = device_policy(&f.m);
    struct ferry_diag d = {""};
    pol.min_seq = 11;
    pol.seq_base = 10;
    pol.max_seq_step = 32;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_OK);
    pol.max_seq_step = 31;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_E_SEQ_JUMP);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "42"));
    /* A downgrade is named as such, before the step. */
    pol.min_seq = 43;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_E_DOWNGRADE);
    /* No overflow near the top of the range. */
    pol.min_seq = 0;
    pol.seq_base = UINT64_MAX - 1;
    pol.max_seq_step = UINT64_MAX;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_OK);
    pol.seq_base = 0;
    pol.max_seq_step = 1;
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_E_SEQ_JUMP);
    pol.max_seq_step = 0; /* no cap */
    CU_ASSERT_EQUAL(verify_text(f.env, f.kr, &pol, &d), FERRY_OK);
    fixture_free(&f);
}

/* f's envelope with `key` set to raw JSON (removed when raw is NULL). */
static char *env_mutated(const struct fixture *f, const char *key, const char *raw)
{
    cJSON *root = cJSON_Parse(f->env);
    CU_ASSERT_FATAL(root != NULL);
    cJSON *item = raw ? cJSON_CreateRaw(raw) : NULL;
    bool ok = true;
    if (!raw)
        cJSON_DeleteItemFromObjectCaseSensitive(root, key);
    else if (!cJSON_GetObjectItemCaseSensitive(root, key))
        ok = cJSON_AddItemToObject(root, key, item);
    else
        ok = cJSON_ReplaceItemInObjectCaseSensitive(root, key, item);
    CU_ASSERT_FATAL(ok);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    CU_ASSERT_FATAL(text != NULL);
    return text;
}

/* `"<base64 of n bytes of value fill>"`, quoted, to stand in a JSON field. */
static char *quoted_b64(size_t n, uint8_t fill)
{
    uint8_t *bin = malloc(n + 1);
    size_t cap = 4 * (n + 2) / 3 + 8, olen = 0;
    char *out = malloc(cap);
    CU_ASSERT_FATAL(bin && out);
    memset(bin, fill, n + 1);
    out[0] = '"';
    CU_ASSERT_FATAL(mbedtls_base64_encode((unsigned char *)out + 1, cap - 2, &olen, bin, n) == 0);
    strcpy(out + 1 + olen, "\"");
    free(bin);
    return out;
}

/* The sig field with its last significant base64 digit's lowest bit set:
 * those bits are padding, so it decodes to the same bytes but is not the
 * canonical spelling. */
static char *sig_with_pad_bits(const struct fixture *f)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    cJSON *root = cJSON_Parse(f->env);
    char sig[128];
    snprintf(sig, sizeof(sig), "%s", cJSON_GetStringValue(cJSON_GetObjectItem(root, "sig")));
    cJSON_Delete(root);
    size_t len = strlen(sig); /* 64 bytes: 86 digits and "==" */
    CU_ASSERT_FATAL(len == 88 && sig[86] == '=');
    const char *pos = strchr(alphabet, sig[85]);
    CU_ASSERT_FATAL(pos != NULL);
    sig[85] = alphabet[(pos - alphabet) ^ 1];
    char *out = malloc(len + 3);
    CU_ASSERT_FATAL(out != NULL);
    sprintf(out, "\"%s\"", sig);
    return out;
}

static void envelope_shape_rules(void)
{
    struct fixture f;
    fixture_init(&f);
    char *sig63 = quoted_b64(63, 7), *sig65 = quoted_b64(65, 7), *padbits = sig_with_pad_bits(&f);
    char *big = quoted_b64(FERRY_MANIFEST_MAX_BYTES + 1, '{');
    const struct {
        const char *key, *raw, *needle;
        enum ferry_err want;
    } cases[] = {
        {"foo", "1", "unknown field 'foo'", FERRY_E_MALFORMED},
        {"x-note", "\"hi\"", "unknown field 'x-note'", FERRY_E_MALFORMED},
        {"format", "2", "field 'format' must be 1", FERRY_E_MALFORMED},
        {"format", "\"1\"", "field 'format'", FERRY_E_MALFORMED},
        {"format", NULL, "missing field 'format'", FERRY_E_MALFORMED},
        {"alg", "\"ES384\"", "field 'alg' must be 'ES256'", FERRY_E_MALFORMED},
        {"alg", "\"none\"", "field 'alg'", FERRY_E_MALFORMED},
        {"alg", NULL, "missing field 'alg'", FERRY_E_MALFORMED},
        {"kid", "\"0123456789ABCDEF\"", "field 'kid'", FERRY_E_MALFORMED},
        {"kid", "\"0123456789abcde\"", "field 'kid'", FERRY_E_MALFORMED},
        {"kid", "\"0123456789abcdef0\"", "field 'kid'", FERRY_E_MALFORMED},
        {"kid", "\"0123456789abcdeg\"", "field 'kid'", FERRY_E_MALFORMED},
        {"kid", "\"0123456789\\u0000bcdef\"", "\\u0000", FERRY_E_MALFORMED},
        {"manifest", NULL, "missing field 'manifest'", FERRY_E_MALFORMED},
        {"manifest", "\"\"", "field 'manifest'", FERRY_E_MALFORMED},
        {"manifest", "\"!!!!\"", "field 'manifest' must be a base64", FERRY_E_MALFORMED},
        {"manifest", "\"e30\"", "field 'manifest'", FERRY_E_MALFORMED},     /* no padding */
        {"manifest", "\"e3\\n0=\"", "field 'manifest'", FERRY_E_MALFORMED}, /* line break */
        {"manifest", "{}", "field 'manifest'", FERRY_E_MALFORMED},
        {"manifest", big, "field 'manifest'", FERRY_E_TOO_LARGE},
        {"sig", sig63, "field 'sig' must hold 64 bytes", FERRY_E_MALFORMED},
        {"sig", sig65, "field 'sig'", FERRY_E_MALFORMED},
        {"sig", padbits, "field 'sig' must be canonical base64", FERRY_E_MALFORMED},
        {"sig", "64", "field 'sig'", FERRY_E_MALFORMED},
        {"sig", NULL, "missing field 'sig'", FERRY_E_MALFORMED},
    };
    struct ferry_verify_policy pol = device_policy(&f.m);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *text = env_mutated(&f, cases[i].key, cases[i].raw);
        struct ferry_envelope *env = NULL;
        struct ferry_diag d = {""};
        CU_ASSERT_EQUAL(ferry_envelope_parse((const uint8_t *)text, strlen(text), &env, &d),
                        cases[i].want);
        CU_ASSERT_PTR_NULL(env);
        if (!strstr(d.msg, cases[i].needle)) {
            fprintf(stderr, "\n    diag '%s' lacks '%s'\n", d.msg, cases[i].needle);
            CU_FAIL("envelope diagnostic");
        }
        CU_ASSERT_EQUAL(verify_text(text, f.kr, &pol, NULL), cases[i].want);
        free(text);
    }
    free(big);
    free(padbits);
    free(sig65);
    free(sig63);
    fixture_free(&f);
}

static void envelope_duplicate_keys(void)
{
    struct fixture f;
    fixture_init(&f);
    size_t len = strlen(f.env);
    char *text = malloc(len + 32);
    CU_ASSERT_FATAL(text != NULL);
    snprintf(text, len + 32, "{\"alg\":\"ES256\",%s", f.env + 1);
    struct ferry_diag d = {""};
    struct ferry_verify_policy pol = device_policy(&f.m);
    CU_ASSERT_EQUAL(verify_text(text, f.kr, &pol, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "duplicate key 'alg'"));
    free(text);
    fixture_free(&f);
}

static void envelope_truncated_everywhere(void)
{
    struct fixture f;
    fixture_init(&f);
    struct ferry_verify_policy pol = device_policy(&f.m);
    for (size_t cut = 0; cut < f.env_len; cut++) {
        struct ferry_envelope *env = NULL;
        CU_ASSERT_NOT_EQUAL(ferry_envelope_parse((const uint8_t *)f.env, cut, &env, NULL),
                            FERRY_OK);
        CU_ASSERT_PTR_NULL(env);
        CU_ASSERT_NOT_EQUAL(
            ferry_envelope_verify((const uint8_t *)f.env, cut, f.kr, &pol, NULL, NULL), FERRY_OK);
    }
    fixture_free(&f);
}

static void envelope_hostile_input(void)
{
    struct fixture f;
    fixture_init(&f);
    struct ferry_verify_policy pol = device_policy(&f.m);
    struct ferry_diag d = {""};

    /* 10,000 unclosed levels fit under the envelope cap; closed, 8,000 do. */
    char *deep = malloc(20016);
    CU_ASSERT_FATAL(deep != NULL);
    size_t n = (size_t)sprintf(deep, "{\"a\":");
    memset(deep + n, '[', 10000);
    deep[n + 10000] = 0;
    CU_ASSERT_EQUAL(verify_text(deep, f.kr, &pol, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "nested"));
    memset(deep + n + 8000, ']', 8000);
    strcpy(deep + n + 16000, "}");
    CU_ASSERT_EQUAL(verify_text(deep, f.kr, &pol, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "nested"));
    free(deep);

    /* Too large as a whole, even when only white space makes it so. */
    char *big = malloc(FERRY_ENVELOPE_MAX_BYTES + 2);
    CU_ASSERT_FATAL(big != NULL);
    memset(big, ' ', FERRY_ENVELOPE_MAX_BYTES + 1);
    memcpy(big, f.env, f.env_len);
    big[FERRY_ENVELOPE_MAX_BYTES + 1] = 0;
    CU_ASSERT_EQUAL(verify_text(big, f.kr, &pol, &d), FERRY_E_TOO_LARGE);
    big[FERRY_ENVELOPE_MAX_BYTES] = 0;
    CU_ASSERT_EQUAL(verify_text(big, f.kr, &pol, &d), FERRY_OK);
    free(big);

    /* Invalid UTF-8 and NUL bytes anywhere in the envelope. */
    static const char *const bad[] = {"\xc0\xaf", "\xed\xa0\x80", "\xe2\x82", "\xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[64];
        snprintf(text, sizeof(text), "{\"alg\":\"%s\"}", bad[i]);
        CU_ASSERT_EQUAL(verify_text(text, f.kr, &pol, &d), FERRY_E_MALFORMED);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "UTF-8"));
    }
    char *nul = strdup(f.env);
    CU_ASSERT_FATAL(nul != NULL);
    nul[f.env_len - 1] = 0; /* the closing brace */
    CU_ASSERT_EQUAL(ferry_envelope_verify((const uint8_t *)nul, f.env_len, f.kr, &pol, NULL, &d),
                    FERRY_E_MALFORMED);
    free(nul);
    CU_ASSERT_EQUAL(verify_text("[]", f.kr, &pol, &d), FERRY_E_MALFORMED);
    CU_ASSERT_EQUAL(ferry_envelope_verify((const uint8_t *)"", 0, f.kr, &pol, NULL, &d),
                    FERRY_E_MALFORMED);
    fixture_free(&f);
}

/* The largest manifest an envelope may carry still goes through. */
static void envelope_largest_manifest(void)
{
    struct fixture f;
    fixture_init(&f);
    size_t len = 0;
    char *text = encode_manifest(&f.m, &len);
    char *body = malloc(FERRY_MANIFEST_MAX_BYTES + 1);
    CU_ASSERT_FATAL(body != NULL);
    memcpy(body, text, len);
    memset(body + len, '\n', FERRY_MANIFEST_MAX_BYTES - len);
    char *env = envelope_custom(&f.key, f.key.kid, (const uint8_t *)body, FERRY_MANIFEST_MAX_BYTES,
                                NULL, 0);
    struct ferry_verify_policy pol = device_policy(&f.m);
    CU_ASSERT_EQUAL(verify_text(env, f.kr, &pol, NULL), FERRY_OK);
    free(env);

    uint8_t sig[FERRY_ES256_SIG_LEN] = {0};
    char *out = NULL;
    size_t out_len = 0;
    struct ferry_diag d = {""};
    CU_ASSERT_EQUAL(ferry_envelope_encode((const uint8_t *)body, FERRY_MANIFEST_MAX_BYTES + 1,
                                          f.key.kid, sig, &out, &out_len, &d),
                    FERRY_E_TOO_LARGE);
    CU_ASSERT_EQUAL(
        ferry_envelope_encode((const uint8_t *)body, 0, f.key.kid, sig, &out, &out_len, &d),
        FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_envelope_encode((const uint8_t *)body, len, "ABCDEF0123456789", sig, &out,
                                          &out_len, &d),
                    FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NULL(out);
    free(body);
    free(text);
    fixture_free(&f);
}

const char *const ferry_suite_name = "envelope";
const struct ferry_test_case ferry_tests[] = {
    {"envelope_round_trip", envelope_round_trip},
    {"envelope_parse_and_reencode", envelope_parse_and_reencode},
    {"envelope_trust_rejections", envelope_trust_rejections},
    {"envelope_signature_over_other_bytes", envelope_signature_over_other_bytes},
    {"envelope_manifest_bit_flips", envelope_manifest_bit_flips},
    {"artifact_bit_flips", artifact_bit_flips},
    {"envelope_time_window", envelope_time_window},
    {"envelope_device_policy", envelope_device_policy},
    {"envelope_check_order", envelope_check_order},
    {"envelope_lifetime_cap", envelope_lifetime_cap},
    {"envelope_seq_step_cap", envelope_seq_step_cap},
    {"envelope_shape_rules", envelope_shape_rules},
    {"envelope_duplicate_keys", envelope_duplicate_keys},
    {"envelope_truncated_everywhere", envelope_truncated_everywhere},
    {"envelope_hostile_input", envelope_hostile_input},
    {"envelope_largest_manifest", envelope_largest_manifest},
    {NULL, NULL},
};
