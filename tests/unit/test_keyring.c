#include "cunit_main.h"
#include "test_keys.h"

#include "ferry_fs.h"
#include "ferry_hex.h"
#include "ferry_keyring.h"

#include <cjson/cJSON.h>
#include <mbedtls/sha256.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PEM_BEGIN_TEXT "-----BEGIN PUBLIC KEY-----"
#define PEM_END_TEXT   "-----END PUBLIC KEY-----"

static const char msg[] = "release bytes";

/* {"keys":[...]} for keys[0..n), those in revoked_mask marked revoked. */
static cJSON *keyring_doc(const struct test_key *keys, size_t n, unsigned revoked_mask)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "keys");
    CU_ASSERT_FATAL(arr != NULL);
    for (size_t i = 0; i < n; i++) {
        char pem[TEST_PEM_MAX];
        test_key_pem(&keys[i], pem);
        cJSON *e = cJSON_CreateObject();
        CU_ASSERT_FATAL(e && cJSON_AddItemToArray(arr, e));
        CU_ASSERT_FATAL(cJSON_AddStringToObject(e, "kid", keys[i].kid) != NULL);
        CU_ASSERT_FATAL(cJSON_AddStringToObject(e, "public_key", pem) != NULL);
        CU_ASSERT_FATAL(cJSON_AddBoolToObject(e, "revoked", i < 32 && ((revoked_mask >> i) & 1)) !=
                        NULL);
    }
    return root;
}

/* Prints and frees doc, then parses it as a keyring. */
static enum ferry_err parse_doc(cJSON *doc, struct ferry_keyring **kr, struct ferry_diag *d)
{
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    CU_ASSERT_FATAL(text != NULL);
    struct ferry_keyring *scratch = NULL;
    enum ferry_err err =
        ferry_keyring_parse((const uint8_t *)text, strlen(text), kr ? kr : &scratch, d);
    ferry_keyring_free(scratch);
    free(text);
    return err;
}

static enum ferry_err parse_str(const char *text, struct ferry_diag *d)
{
    struct ferry_keyring *kr = NULL;
    enum ferry_err err = ferry_keyring_parse((const uint8_t *)text, strlen(text), &kr, d);
    CU_ASSERT_TRUE(err == FERRY_OK || kr == NULL);
    ferry_keyring_free(kr);
    return err;
}

static void keyring_kid_is_fingerprint(void)
{
    struct test_key k;
    test_key_init(&k, 1);
    uint8_t digest[32];
    char want[FERRY_KID_LEN + 1], got[FERRY_KID_LEN + 1];
    CU_ASSERT_FATAL(mbedtls_sha256_ret(k.point, sizeof(k.point), digest, 0) == 0);
    ferry_hex_encode(digest, 8, want);
    ferry_kid_of_point(k.point, got);
    CU_ASSERT_STRING_EQUAL(got, want);
    CU_ASSERT_EQUAL(strlen(got), FERRY_KID_LEN);
    test_key_free(&k);
}

static void keyring_single_pem(void)
{
    struct test_key k, other;
    test_key_init(&k, 2);
    test_key_init(&other, 3);
    char pem[TEST_PEM_MAX], padded[TEST_PEM_MAX + 8];
    uint8_t sig[FERRY_ES256_SIG_LEN];
    test_key_pem(&k, pem);
    snprintf(padded, sizeof(padded), "\n  %s\n\n", pem);
    test_key_sign(&k, msg, strlen(msg), sig);

    struct ferry_keyring *kr = NULL;
    CU_ASSERT_EQUAL_FATAL(ferry_keyring_parse((const uint8_t *)padded, strlen(padded), &kr, NULL),
                          FERRY_OK);
    CU_ASSERT_EQUAL(ferry_keyring_count(kr), 1);
    CU_ASSERT_EQUAL(ferry_keyring_verify(kr, k.kid, (const uint8_t *)msg, strlen(msg), sig),
                    FERRY_OK);
    CU_ASSERT_EQUAL(ferry_keyring_verify(kr, k.kid, (const uint8_t *)msg, strlen(msg) - 1, sig),
                    FERRY_E_BAD_SIGNATURE);
    CU_ASSERT_EQUAL(ferry_keyring_verify(kr, other.kid, (const uint8_t *)msg, strlen(msg), sig),
                    FERRY_E_UNKNOWN_KEY);
    ferry_keyring_free(kr);
    test_key_free(&other);
    test_key_free(&k);
}

static void keyring_json_with_revocation(void)
{
    struct test_key k[3];
    for (unsigned i = 0; i < 3; i++)
        test_key_init(&k[i], 10 + i);
    cJSON *doc = keyring_doc(k, 2, 1u << 1);
    CU_ASSERT_FATAL(cJSON_AddStringToObject(doc, "x-comment", "rotated in June") != NULL);
    CU_ASSERT_FATAL(cJSON_AddStringToObject(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "keys"), 0),
                                            "x-owner", "release team") != NULL);
    struct ferry_keyring *kr = NULL;
    CU_ASSERT_EQUAL_FATAL(parse_doc(doc, &kr, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_keyring_count(kr), 2);
    for (unsigned i = 0; i < 3; i++) {
        uint8_t sig[FERRY_ES256_SIG_LEN];
        test_key_sign(&k[i], msg, strlen(msg), sig);
        enum ferry_err want[] = {FERRY_OK, FERRY_E_REVOKED_KEY, FERRY_E_UNKNOWN_KEY};
        CU_ASSERT_EQUAL(ferry_keyring_verify(kr, k[i].kid, (const uint8_t *)msg, strlen(msg), sig),
                        want[i]);
    }
    ferry_keyring_free(kr);
    for (unsigned i = 0; i < 3; i++)
        test_key_free(&k[i]);
}

/* revoked is optional and means false. */
static void keyring_json_revoked_optional(void)
{
    struct test_key k;
    test_key_init(&k, 20);
    cJSON *doc = keyring_doc(&k, 1, 0);
    cJSON_DeleteItemFromObject(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "keys"), 0), "revoked");
    struct ferry_keyring *kr = NULL;
    uint8_t sig[FERRY_ES256_SIG_LEN];
    test_key_sign(&k, msg, strlen(msg), sig);
    CU_ASSERT_EQUAL_FATAL(parse_doc(doc, &kr, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_keyring_verify(kr, k.kid, (const uint8_t *)msg, strlen(msg), sig),
                    FERRY_OK);
    ferry_keyring_free(kr);
    test_key_free(&k);
}

enum entry_change {
    KID_OF_OTHER_KEY,
    KID_UPPER_CASE,
    KID_MISSING,
    PEM_MISSING,
    PEM_GARBAGE,
    PEM_P384,
    PEM_TWO_BLOCKS,
    REVOKED_NOT_BOOL,
    UNKNOWN_MEMBER,
    ENTRY_NOT_OBJECT,
};

static void change_entry(cJSON *doc, enum entry_change change, const struct test_key *other,
                         const char *p384_pem)
{
    cJSON *keys = cJSON_GetObjectItem(doc, "keys");
    cJSON *e = cJSON_GetArrayItem(keys, 0);
    const char *kid = cJSON_GetStringValue(cJSON_GetObjectItem(e, "kid"));
    const char *pem = cJSON_GetStringValue(cJSON_GetObjectItem(e, "public_key"));
    char buf[2 * TEST_PEM_MAX];
    switch (change) {
    case KID_OF_OTHER_KEY:
        cJSON_ReplaceItemInObject(e, "kid", cJSON_CreateString(other->kid));
        break;
    case KID_UPPER_CASE:
        for (size_t i = 0; kid[i] && i < sizeof(buf) - 1; i++)
            buf[i] = (char)(kid[i] >= 'a' && kid[i] <= 'f' ? kid[i] - 32 : kid[i]);
        buf[FERRY_KID_LEN] = 0;
        cJSON_ReplaceItemInObject(e, "kid", cJSON_CreateString(buf));
        break;
    case KID_MISSING:
        cJSON_DeleteItemFromObject(e, "kid");
        break;
    case PEM_MISSING:
        cJSON_DeleteItemFromObject(e, "public_key");
        break;
    case PEM_GARBAGE:
        cJSON_ReplaceItemInObject(
            e, "public_key", cJSON_CreateString(PEM_BEGIN_TEXT "\nnot base64!\n" PEM_END_TEXT));
        break;
    case PEM_P384:
        cJSON_ReplaceItemInObject(e, "public_key", cJSON_CreateString(p384_pem));
        break;
    case PEM_TWO_BLOCKS:
        snprintf(buf, sizeof(buf), "%s%s", pem, pem);
        cJSON_ReplaceItemInObject(e, "public_key", cJSON_CreateString(buf));
        break;
    case REVOKED_NOT_BOOL:
        cJSON_ReplaceItemInObject(e, "revoked", cJSON_CreateString("no"));
        break;
    case UNKNOWN_MEMBER:
        cJSON_AddNumberToObject(e, "expires", 5);
        break;
    case ENTRY_NOT_OBJECT:
        cJSON_ReplaceItemInArray(keys, 0, cJSON_CreateString(kid));
        break;
    }
}

static void keyring_json_entry_rules(void)
{
    static const struct {
        enum entry_change change;
        const char *needle;
    } cases[] = {
        {KID_OF_OTHER_KEY, "keys[0]: field 'kid' must be the fingerprint"},
        {KID_UPPER_CASE, "keys[0]: field 'kid' must be the fingerprint"},
        {KID_MISSING, "keys[0]: missing field 'kid'"},
        {PEM_MISSING, "keys[0]: missing field 'public_key'"},
        {PEM_GARBAGE, "keys[0]: unreadable public key"},
        {PEM_P384, "keys[0]: must be an EC P-256"},
        {PEM_TWO_BLOCKS, "keys[0]: expected one PEM"},
        {REVOKED_NOT_BOOL, "keys[0]: field 'revoked' must be true or false"},
        {UNKNOWN_MEMBER, "keys[0]: unknown field 'expires'"},
        {ENTRY_NOT_OBJECT, "keys[0]: must be an object"},
    };
    struct test_key k, other, p384;
    char p384_pem[TEST_PEM_MAX];
    test_key_init(&k, 30);
    test_key_init(&other, 31);
    test_key_init_curve(&p384, 32, MBEDTLS_ECP_DP_SECP384R1);
    test_key_pem(&p384, p384_pem);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ferry_diag d = {""};
        cJSON *doc = keyring_doc(&k, 1, 0);
        change_entry(doc, cases[i].change, &other, p384_pem);
        CU_ASSERT_EQUAL(parse_doc(doc, NULL, &d), FERRY_E_MALFORMED);
        if (!strstr(d.msg, cases[i].needle)) {
            fprintf(stderr, "\n    diag '%s' lacks '%s'\n", d.msg, cases[i].needle);
            CU_FAIL("keyring diagnostic");
        }
    }
    test_key_free(&p384);
    test_key_free(&other);
    test_key_free(&k);
}

static void keyring_json_shape_rules(void)
{
    struct test_key k;
    test_key_init(&k, 40);
    struct ferry_diag d = {""};

    CU_ASSERT_EQUAL(parse_str("{\"keys\":[]}", &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "field 'keys'"));
    CU_ASSERT_EQUAL(parse_str("{\"keys\":{}}", &d), FERRY_E_MALFORMED);
    CU_ASSERT_EQUAL(parse_str("{}", &d), FERRY_E_MALFORMED);
    CU_ASSERT_EQUAL(parse_str("{\"keys\":[],\"keyz\":1}", &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "unknown field 'keyz'"));
    CU_ASSERT_EQUAL(parse_str("{\"keys\":[]} trailing", &d), FERRY_E_MALFORMED);

    /* The same key twice: one entry could say revoked, the other not. */
    cJSON *doc = keyring_doc(&k, 1, 0);
    cJSON *keys = cJSON_GetObjectItem(doc, "keys");
    cJSON *copy = cJSON_Duplicate(cJSON_GetArrayItem(keys, 0), true);
    CU_ASSERT_FATAL(copy && cJSON_AddItemToArray(keys, copy));
    cJSON_ReplaceItemInObject(copy, "revoked", cJSON_CreateTrue());
    CU_ASSERT_EQUAL(parse_doc(doc, NULL, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "twice"));

    /* A duplicate member inside an entry. */
    char pem[TEST_PEM_MAX], text[2 * TEST_PEM_MAX];
    test_key_pem(&k, pem);
    cJSON *str = cJSON_CreateString(pem);
    char *quoted = cJSON_PrintUnformatted(str);
    cJSON_Delete(str);
    CU_ASSERT_FATAL(quoted != NULL);
    snprintf(text, sizeof(text),
             "{\"keys\":[{\"kid\":\"%s\",\"public_key\":%s,\"revoked\":true,\"revoked\":false}]}",
             k.kid, quoted);
    CU_ASSERT_EQUAL(parse_str(text, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "duplicate key 'revoked'"));
    free(quoted);
    test_key_free(&k);
}

static void keyring_capacity(void)
{
    struct test_key keys[FERRY_KEYRING_MAX_KEYS + 1];
    for (unsigned i = 0; i <= FERRY_KEYRING_MAX_KEYS; i++)
        test_key_init(&keys[i], 100 + i);
    struct ferry_keyring *kr = NULL;
    struct ferry_diag d = {""};
    CU_ASSERT_EQUAL(parse_doc(keyring_doc(keys, FERRY_KEYRING_MAX_KEYS, 0), &kr, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_keyring_count(kr), FERRY_KEYRING_MAX_KEYS);
    /* Full: adding fails and the keyring is unchanged. */
    CU_ASSERT_EQUAL(ferry_keyring_add(kr, keys[FERRY_KEYRING_MAX_KEYS].point, false, &d),
                    FERRY_E_TOO_LARGE);
    CU_ASSERT_EQUAL(ferry_keyring_count(kr), FERRY_KEYRING_MAX_KEYS);
    ferry_keyring_free(kr);
    CU_ASSERT_EQUAL(parse_doc(keyring_doc(keys, FERRY_KEYRING_MAX_KEYS + 1, 0), NULL, &d),
                    FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "field 'keys'"));
    for (unsigned i = 0; i <= FERRY_KEYRING_MAX_KEYS; i++)
        test_key_free(&keys[i]);
}

static void keyring_pem_rules(void)
{
    struct test_key k, p384;
    char pem[TEST_PEM_MAX], p384_pem[TEST_PEM_MAX], buf[4 * TEST_PEM_MAX];
    struct ferry_diag d = {""};
    test_key_init(&k, 50);
    test_key_init_curve(&p384, 51, MBEDTLS_ECP_DP_SECP384R1);
    test_key_pem(&k, pem);
    test_key_pem(&p384, p384_pem);

    CU_ASSERT_EQUAL(parse_str(p384_pem, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "P-256"));
    snprintf(buf, sizeof(buf), "%s%s", pem, pem);
    CU_ASSERT_EQUAL(parse_str(buf, &d), FERRY_E_MALFORMED);
    snprintf(buf, sizeof(buf), "junk\n%s", pem);
    CU_ASSERT_EQUAL(parse_str(buf, &d), FERRY_E_MALFORMED);
    snprintf(buf, sizeof(buf), "%sjunk\n", pem);
    CU_ASSERT_EQUAL(parse_str(buf, &d), FERRY_E_MALFORMED);
    CU_ASSERT_EQUAL(parse_str("", &d), FERRY_E_MALFORMED);
    CU_ASSERT_EQUAL(parse_str("   \n", &d), FERRY_E_MALFORMED);
    CU_ASSERT_EQUAL(parse_str("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", &d),
                    FERRY_E_MALFORMED);
    /* Every truncation of the PEM fails cleanly. */
    size_t len = strlen(pem);
    for (size_t cut = 0; cut + 1 < len; cut++) {
        struct ferry_keyring *kr = NULL;
        CU_ASSERT_NOT_EQUAL(ferry_keyring_parse((const uint8_t *)pem, cut, &kr, NULL), FERRY_OK);
        CU_ASSERT_PTR_NULL(kr);
    }
    /* The same key as DER is not accepted as a keyring file. */
    unsigned char der[256];
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    CU_ASSERT_FATAL(mbedtls_pk_parse_public_key(&pk, (const unsigned char *)pem, len + 1) == 0);
    int der_len = mbedtls_pk_write_pubkey_der(&pk, der, sizeof(der));
    CU_ASSERT_FATAL(der_len > 0);
    struct ferry_keyring *kr = NULL;
    CU_ASSERT_EQUAL(ferry_keyring_parse(der + sizeof(der) - der_len, (size_t)der_len, &kr, NULL),
                    FERRY_E_MALFORMED);
    mbedtls_pk_free(&pk);

    uint8_t *big = calloc(1, FERRY_KEYRING_MAX_BYTES + 1);
    CU_ASSERT_FATAL(big != NULL);
    memset(big, ' ', FERRY_KEYRING_MAX_BYTES + 1);
    memcpy(big, pem, len);
    CU_ASSERT_EQUAL(ferry_keyring_parse(big, FERRY_KEYRING_MAX_BYTES + 1, &kr, &d),
                    FERRY_E_TOO_LARGE);
    CU_ASSERT_EQUAL(ferry_keyring_parse(big, FERRY_KEYRING_MAX_BYTES, &kr, &d), FERRY_OK);
    ferry_keyring_free(kr);
    free(big);
    test_key_free(&p384);
    test_key_free(&k);
}

static void keyring_load_files(void)
{
    struct test_key k;
    char pem[TEST_PEM_MAX], path[512];
    struct ferry_keyring *kr = NULL;
    struct ferry_diag d = {""};
    test_key_init(&k, 60);
    test_key_pem(&k, pem);

    snprintf(path, sizeof(path), "%s/release.pem", ferry_test_tmpdir());
    CU_ASSERT_FATAL(ferry_write_atomic(path, pem, strlen(pem), 0644, NULL) == FERRY_OK);
    CU_ASSERT_EQUAL(ferry_keyring_load(path, &kr, &d), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_keyring_count(kr), 1);
    ferry_keyring_free(kr);

    cJSON *doc = keyring_doc(&k, 1, 0);
    char *json = cJSON_Print(doc); /* indented, as an operator would keep it */
    cJSON_Delete(doc);
    snprintf(path, sizeof(path), "%s/keyring.json", ferry_test_tmpdir());
    CU_ASSERT_FATAL(ferry_write_atomic(path, json, strlen(json), 0644, NULL) == FERRY_OK);
    CU_ASSERT_EQUAL(ferry_keyring_load(path, &kr, &d), FERRY_OK);
    ferry_keyring_free(kr);
    free(json);

    snprintf(path, sizeof(path), "%s/bad.json", ferry_test_tmpdir());
    CU_ASSERT_FATAL(ferry_write_atomic(path, "{\"keys\":5}", 10, 0644, NULL) == FERRY_OK);
    kr = NULL;
    CU_ASSERT_EQUAL(ferry_keyring_load(path, &kr, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NULL(kr);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "bad.json"));

    snprintf(path, sizeof(path), "%s/absent.pem", ferry_test_tmpdir());
    CU_ASSERT_EQUAL(ferry_keyring_load(path, &kr, &d), FERRY_E_NOT_FOUND);
    test_key_free(&k);
}

static void keyring_add_checks_point(void)
{
    struct test_key k;
    test_key_init(&k, 70);
    struct ferry_keyring *kr = ferry_keyring_new();
    CU_ASSERT_FATAL(kr != NULL);
    uint8_t p[FERRY_P256_POINT_LEN];

    memcpy(p, k.point, sizeof(p));
    p[FERRY_P256_POINT_LEN - 1] ^= 1; /* off the curve */
    CU_ASSERT_EQUAL(ferry_keyring_add(kr, p, false, NULL), FERRY_E_INVALID_ARG);
    memcpy(p, k.point, sizeof(p));
    p[0] = 0x02; /* compressed marker on an uncompressed body */
    CU_ASSERT_EQUAL(ferry_keyring_add(kr, p, false, NULL), FERRY_E_INVALID_ARG);
    memset(p, 0, sizeof(p));
    CU_ASSERT_EQUAL(ferry_keyring_add(kr, p, false, NULL), FERRY_E_INVALID_ARG);
    memset(p, 0xff, sizeof(p));
    p[0] = 0x04; /* coordinates above the field prime */
    CU_ASSERT_EQUAL(ferry_keyring_add(kr, p, false, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_keyring_count(kr), 0);

    CU_ASSERT_EQUAL(ferry_keyring_add(kr, k.point, false, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_keyring_add(kr, k.point, true, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_keyring_count(kr), 1);
    ferry_keyring_free(kr);
    ferry_keyring_free(NULL);
    test_key_free(&k);
}

/* Writes x into 32 big-endian bytes. */
static void put_scalar(const mbedtls_mpi *x, uint8_t out[32])
{
    CU_ASSERT_FATAL(mbedtls_mpi_write_binary(x, out, 32) == 0);
}

static void es256_scalar_range(void)
{
    struct test_key k;
    test_key_init(&k, 80);
    uint8_t sig[FERRY_ES256_SIG_LEN], bad[FERRY_ES256_SIG_LEN];
    test_key_sign(&k, msg, strlen(msg), sig);
    const uint8_t *m = (const uint8_t *)msg;
    size_t mlen = strlen(msg);
    CU_ASSERT_EQUAL(ferry_es256_verify(k.point, m, mlen, sig), FERRY_OK);

    mbedtls_mpi s, x;
    mbedtls_mpi_init(&s);
    mbedtls_mpi_init(&x);
    const mbedtls_mpi *n = &k.ec.grp.N;
    CU_ASSERT_FATAL(mbedtls_mpi_read_binary(&s, sig + 32, 32) == 0);

    /* (r, n - s) is the other valid signature of the same message. */
    memcpy(bad, sig, sizeof(bad));
    CU_ASSERT_FATAL(mbedtls_mpi_sub_mpi(&x, n, &s) == 0);
    put_scalar(&x, bad + 32);
    CU_ASSERT_EQUAL(ferry_es256_verify(k.point, m, mlen, bad), FERRY_OK);

    /* r or s of 0, n or n + s never verify. */
    memcpy(bad, sig, sizeof(bad));
    memset(bad, 0, 32);
    CU_ASSERT_EQUAL(ferry_es256_verify(k.point, m, mlen, bad), FERRY_E_BAD_SIGNATURE);
    memcpy(bad, sig, sizeof(bad));
    memset(bad + 32, 0, 32);
    CU_ASSERT_EQUAL(ferry_es256_verify(k.point, m, mlen, bad), FERRY_E_BAD_SIGNATURE);
    memcpy(bad, sig, sizeof(bad));
    put_scalar(n, bad);
    CU_ASSERT_EQUAL(ferry_es256_verify(k.point, m, mlen, bad), FERRY_E_BAD_SIGNATURE);
    memcpy(bad, sig, sizeof(bad));
    put_scalar(n, bad + 32);
    CU_ASSERT_EQUAL(ferry_es256_verify(k.point, m, mlen, bad), FERRY_E_BAD_SIGNATURE);
    memcpy(bad, sig, sizeof(bad));
    CU_ASSERT_FATAL(mbedtls_mpi_add_mpi(&x, n, &s) == 0);
    if (mbedtls_mpi_size(&x) <= 32) {
        put_scalar(&x, bad + 32);
        CU_ASSERT_EQUAL(ferry_es256_verify(k.point, m, mlen, bad), FERRY_E_BAD_SIGNATURE);
    }
    memset(bad, 0xff, sizeof(bad));
    CU_ASSERT_EQUAL(ferry_es256_verify(k.point, m, mlen, bad), FERRY_E_BAD_SIGNATURE);

    /* A bad point is the caller's error, not a bad signature. */
    uint8_t p[FERRY_P256_POINT_LEN];
    memcpy(p, k.point, sizeof(p));
    p[40] ^= 0x10;
    CU_ASSERT_EQUAL(ferry_es256_verify(p, m, mlen, sig), FERRY_E_INVALID_ARG);
    mbedtls_mpi_free(&x);
    mbedtls_mpi_free(&s);
    test_key_free(&k);
}

static void es256_wrong_key_or_message(void)
{
    struct test_key k, other;
    test_key_init(&k, 90);
    test_key_init(&other, 91);
    uint8_t sig[FERRY_ES256_SIG_LEN];
    test_key_sign(&k, "", 0, sig);
    CU_ASSERT_EQUAL(ferry_es256_verify(k.point, NULL, 0, sig), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_es256_verify(other.point, NULL, 0, sig), FERRY_E_BAD_SIGNATURE);
    CU_ASSERT_EQUAL(ferry_es256_verify(k.point, (const uint8_t *)"x", 1, sig),
                    FERRY_E_BAD_SIGNATURE);
    for (size_t i = 0; i < FERRY_ES256_SIG_LEN; i += 21) {
        sig[i] ^= 0x01;
        CU_ASSERT_EQUAL(ferry_es256_verify(k.point, NULL, 0, sig), FERRY_E_BAD_SIGNATURE);
        sig[i] ^= 0x01;
    }
    test_key_free(&other);
    test_key_free(&k);
}

const char *const ferry_suite_name = "keyring";
const struct ferry_test_case ferry_tests[] = {
    {"keyring_kid_is_fingerprint", keyring_kid_is_fingerprint},
    {"keyring_single_pem", keyring_single_pem},
    {"keyring_json_with_revocation", keyring_json_with_revocation},
    {"keyring_json_revoked_optional", keyring_json_revoked_optional},
    {"keyring_json_entry_rules", keyring_json_entry_rules},
    {"keyring_json_shape_rules", keyring_json_shape_rules},
    {"keyring_capacity", keyring_capacity},
    {"keyring_pem_rules", keyring_pem_rules},
    {"keyring_load_files", keyring_load_files},
    {"keyring_add_checks_point", keyring_add_checks_point},
    {"es256_scalar_range", es256_scalar_range},
    {"es256_wrong_key_or_message", es256_wrong_key_or_message},
    {NULL, NULL},
};
