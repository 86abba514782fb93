#include "cunit_main.h"

#include "cloud_keys.h"
#include "cloud_sign.h"
#include "ferry_envelope.h"
#include "ferry_fs.h"
#include "ferry_hex.h"
#include "ferry_keyring.h"
#include "ferry_sha256.h"

#include <limits.h>
#include <stdarg.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const uint8_t message[] = "release manifest bytes";

/* snprintf into a PATH_MAX buffer, failing the test if it does not fit. */
static void pathf(char *out, const char *fmt, ...) FERRY_PRINTF(2, 3);
static void pathf(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, PATH_MAX, fmt, ap);
    va_end(ap);
    CU_ASSERT_FATAL(n > 0 && n < PATH_MAX);
}

/* A fresh folder per test so saved keys never collide. */
static const char *fresh_dir(void)
{
    static char dir[PATH_MAX];
    static unsigned counter;
    pathf(dir, "%s/keys-%u", ferry_test_tmpdir(), counter++);
    return dir;
}

static struct cloud_key *generate(void)
{
    struct cloud_key *k = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(cloud_key_generate(&k, &d), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    return k;
}

static void key_file(char *out, const char *dir, const struct cloud_key *k, const char *ext)
{
    pathf(out, "%s/release-%s.%s", dir, cloud_key_kid(k), ext);
}

static void kid_is_truncated_sha256_of_point(void)
{
    struct cloud_key *k = generate();
    uint8_t point[FERRY_P256_POINT_LEN];
    uint8_t digest[FERRY_SHA256_LEN];
    char want[FERRY_KID_LEN + 1];
    cloud_key_point(k, point);
    CU_ASSERT_EQUAL(point[0], 0x04);
    ferry_sha256(point, sizeof(point), digest);
    ferry_hex_encode(digest, FERRY_KID_LEN / 2, want);
    CU_ASSERT_STRING_EQUAL(cloud_key_kid(k), want);
    cloud_key_free(k);
}

static void saved_key_loads_signs_and_verifies(void)
{
    const char *dir = fresh_dir();
    struct ferry_diag d = {{0}};
    struct cloud_key *k = generate();
    struct cloud_key *loaded = NULL;
    char path[PATH_MAX];
    uint8_t point[FERRY_P256_POINT_LEN];
    uint8_t sig[FERRY_ES256_SIG_LEN];

    CU_ASSERT_EQUAL_FATAL(cloud_key_save(k, dir, &d), FERRY_OK);
    key_file(path, dir, k, "key");
    CU_ASSERT_EQUAL_FATAL(cloud_key_load(path, &loaded, &d), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(cloud_key_kid(loaded), cloud_key_kid(k));
    CU_ASSERT_EQUAL_FATAL(cloud_key_sign(loaded, message, sizeof(message), sig, &d), FERRY_OK);

    struct ferry_keyring *kr = ferry_keyring_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(kr);
    cloud_key_point(k, point);
    CU_ASSERT_EQUAL_FATAL(ferry_keyring_add(kr, point, false, &d), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_keyring_verify(kr, cloud_key_kid(k), message, sizeof(message), sig),
                    FERRY_OK);
    uint8_t altered[sizeof(message)];
    memcpy(altered, message, sizeof(message));
    altered[0] ^= 1;
    CU_ASSERT_EQUAL(ferry_keyring_verify(kr, cloud_key_kid(k), altered, sizeof(altered), sig),
                    FERRY_E_BAD_SIGNATURE);
    ferry_keyring_free(kr);
    cloud_key_free(loaded);
    cloud_key_free(k);
}

static void public_file_is_a_keyring(void)
{
    const char *dir = fresh_dir();
    struct ferry_diag d = {{0}};
    struct cloud_key *k = generate();
    struct ferry_keyring *kr = NULL;
    char path[PATH_MAX];
    uint8_t sig[FERRY_ES256_SIG_LEN];

    CU_ASSERT_EQUAL_FATAL(cloud_key_save(k, dir, &d), FERRY_OK);
    key_file(path, dir, k, "pub");
    CU_ASSERT_EQUAL_FATAL(ferry_keyring_load(path, &kr, &d), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_keyring_count(kr), 1);
    CU_ASSERT_EQUAL_FATAL(cloud_key_sign(k, message, sizeof(message), sig, &d), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_keyring_verify(kr, cloud_key_kid(k), message, sizeof(message), sig),
                    FERRY_OK);
    ferry_keyring_free(kr);
    cloud_key_free(k);
}

static void other_key_does_not_verify(void)
{
    struct ferry_diag d = {{0}};
    struct cloud_key *signer = generate();
    struct cloud_key *other = generate();
    uint8_t point[FERRY_P256_POINT_LEN];
    uint8_t sig[FERRY_ES256_SIG_LEN];
    CU_ASSERT_STRING_NOT_EQUAL(cloud_key_kid(signer), cloud_key_kid(other));
    CU_ASSERT_EQUAL_FATAL(cloud_key_sign(signer, message, sizeof(message), sig, &d), FERRY_OK);

    struct ferry_keyring *kr = ferry_keyring_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(kr);
    cloud_key_point(other, point);
    CU_ASSERT_EQUAL_FATAL(ferry_keyring_add(kr, point, false, &d), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_keyring_verify(kr, cloud_key_kid(signer), message, sizeof(message), sig),
                    FERRY_E_UNKNOWN_KEY);
    CU_ASSERT_EQUAL(ferry_keyring_verify(kr, cloud_key_kid(other), message, sizeof(message), sig),
                    FERRY_E_BAD_SIGNATURE);
    ferry_keyring_free(kr);
    cloud_key_free(signer);
    cloud_key_free(other);
}

static void signatures_are_deterministic(void)
{
    struct ferry_diag d = {{0}};
    struct cloud_key *k = generate();
    uint8_t a[FERRY_ES256_SIG_LEN], b[FERRY_ES256_SIG_LEN], c[FERRY_ES256_SIG_LEN];
    CU_ASSERT_EQUAL_FATAL(cloud_key_sign(k, message, sizeof(message), a, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(cloud_key_sign(k, message, sizeof(message), b, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(cloud_key_sign(k, message, sizeof(message) - 1, c, &d), FERRY_OK);
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof(a)), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(a, c, sizeof(a)), 0);
    cloud_key_free(k);
}

static void file_modes(void)
{
    const char *dir = fresh_dir();
    struct ferry_diag d = {{0}};
    struct cloud_key *k = generate();
    char path[PATH_MAX];
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(cloud_key_save(k, dir, &d), FERRY_OK);
    key_file(path, dir, k, "key");
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    key_file(path, dir, k, "pub");
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0644);
    cloud_key_free(k);
}

static void save_refuses_to_overwrite(void)
{
    const char *dir = fresh_dir();
    struct ferry_diag d = {{0}};
    struct cloud_key *k = generate();
    char path[PATH_MAX];
    uint8_t *before = NULL, *after = NULL;
    size_t before_len = 0, after_len = 0;
    CU_ASSERT_EQUAL_FATAL(cloud_key_save(k, dir, &d), FERRY_OK);
    key_file(path, dir, k, "key");
    CU_ASSERT_EQUAL_FATAL(ferry_read_file(path, 65536, &before, &before_len, &d), FERRY_OK);
    CU_ASSERT_EQUAL(cloud_key_save(k, dir, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "already exists"));
    CU_ASSERT_EQUAL_FATAL(ferry_read_file(path, 65536, &after, &after_len, &d), FERRY_OK);
    CU_ASSERT_EQUAL(before_len, after_len);
    CU_ASSERT_EQUAL(memcmp(before, after, before_len), 0);
    free(before);
    free(after);
    cloud_key_free(k);
}

static void write_text(const char *path, const char *text)
{
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(path, text, strlen(text), 0600, &d), FERRY_OK);
}

/* Loading must fail with err, leave *out alone and say `needle`. */
static void expect_load_failure(const char *path, enum ferry_err err, const char *needle)
{
    static char sentinel_storage;
    struct ferry_diag d = {{0}};
    struct cloud_key *sentinel = (struct cloud_key *)(void *)&sentinel_storage;
    struct cloud_key *k = sentinel;
    CU_ASSERT_EQUAL(cloud_key_load(path, &k, &d), err);
    CU_ASSERT_PTR_EQUAL(k, sentinel);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, needle));
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, path));
}

static void load_rejects_other_curves(void)
{
    mbedtls_entropy_context ent;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_pk_context pk;
    unsigned char pem[4096];
    char path[PATH_MAX];
    mbedtls_entropy_init(&ent);
    mbedtls_ctr_drbg_init(&drbg);
    mbedtls_pk_init(&pk);
    CU_ASSERT_EQUAL_FATAL(
        mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent, (const unsigned char *)"t", 1), 0);
    CU_ASSERT_EQUAL_FATAL(mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
    CU_ASSERT_EQUAL_FATAL(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP384R1, mbedtls_pk_ec(pk),
                                              mbedtls_ctr_drbg_random, &drbg),
                          0);
    CU_ASSERT_EQUAL_FATAL(mbedtls_pk_write_key_pem(&pk, pem, sizeof(pem)), 0);
    pathf(path, "%s/p384.key", ferry_test_tmpdir());
    write_text(path, (const char *)pem);
    expect_load_failure(path, FERRY_E_INVALID_ARG, "P-256");
    mbedtls_pk_free(&pk);
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&ent);
}

static void load_rejects_garbage(void)
{
    char path[PATH_MAX];
    pathf(path, "%s/garbage.key", ferry_test_tmpdir());
    write_text(path, "this is not a key\n");
    expect_load_failure(path, FERRY_E_MALFORMED, "not a PEM private key");
    write_text(path, "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n");
    expect_load_failure(path, FERRY_E_MALFORMED, "not a PEM private key");
}

static void load_explains_public_key(void)
{
    const char *dir = fresh_dir();
    struct ferry_diag d = {{0}};
    struct cloud_key *k = generate();
    char path[PATH_MAX];
    CU_ASSERT_EQUAL_FATAL(cloud_key_save(k, dir, &d), FERRY_OK);
    key_file(path, dir, k, "pub");
    expect_load_failure(path, FERRY_E_INVALID_ARG, "public key");
    cloud_key_free(k);
}

static void load_missing_file(void)
{
    char path[PATH_MAX];
    pathf(path, "%s/absent.key", ferry_test_tmpdir());
    expect_load_failure(path, FERRY_E_NOT_FOUND, "absent.key");
}

static void load_rejects_oversized_file(void)
{
    char path[PATH_MAX];
    char *big = malloc(CLOUD_KEY_MAX_BYTES + 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    memset(big, 'A', CLOUD_KEY_MAX_BYTES + 1);
    big[CLOUD_KEY_MAX_BYTES + 1] = 0;
    pathf(path, "%s/big.key", ferry_test_tmpdir());
    write_text(path, big);
    free(big);
    expect_load_failure(path, FERRY_E_TOO_LARGE, "limit");
}

/* The key's signature passes the gate every consumer uses. */
static void signed_envelope_verifies(void)
{
    struct ferry_diag d = {{0}};
    struct cloud_key *k = generate();
    char artifact[PATH_MAX];
    pathf(artifact, "%s/artifact.bin", ferry_test_tmpdir());
    write_text(artifact, "firmware image bytes");
    char model[] = "board-a";
    char *models_v[] = {model};
    struct ferry_strlist models = {models_v, 1};
    int64_t now = (int64_t)time(NULL);
    struct cloud_release rel = {.artifact = artifact,
                                .version = "1.2.3",
                                .seq = 7,
                                .hw_models = &models,
                                .issued_at = now,
                                .lifetime = 3600};
    struct ferry_manifest m;
    char *env = NULL;
    size_t env_len = 0;
    CU_ASSERT_EQUAL_FATAL(cloud_manifest_build(&rel, cloud_key_kid(k), &m, &d), FERRY_OK);
    CU_ASSERT_EQUAL(m.size, strlen("firmware image bytes"));
    CU_ASSERT_EQUAL(m.expires_at, now + 3600);
    CU_ASSERT_STRING_EQUAL(m.product, FERRY_DEFAULT_PRODUCT);
    CU_ASSERT_STRING_EQUAL(m.release_id, FERRY_DEFAULT_PRODUCT "-1.2.3-7");
    CU_ASSERT_EQUAL_FATAL(cloud_envelope_sign(&m, k, &env, &env_len, &d), FERRY_OK);

    uint8_t point[FERRY_P256_POINT_LEN];
    struct ferry_keyring *kr = ferry_keyring_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(kr);
    cloud_key_point(k, point);
    CU_ASSERT_EQUAL_FATAL(ferry_keyring_add(kr, point, false, &d), FERRY_OK);
    struct ferry_verify_policy pol = {.now = now, .hw_model = "board-a"};
    struct ferry_manifest got;
    CU_ASSERT_EQUAL(ferry_envelope_verify((const uint8_t *)env, env_len, kr, &pol, &got, &d),
                    FERRY_OK);
    CU_ASSERT_EQUAL(got.seq, 7);
    CU_ASSERT_EQUAL(memcmp(got.sha256, m.sha256, sizeof(m.sha256)), 0);
    pol.hw_model = "board-b";
    CU_ASSERT_EQUAL(ferry_envelope_verify((const uint8_t *)env, env_len, kr, &pol, NULL, &d),
                    FERRY_E_INCOMPATIBLE_HW);
    ferry_keyring_free(kr);
    free(env);
    cloud_key_free(k);
}

static void default_release_id_is_an_id(void)
{
    char id[FERRY_NAME_MAX + 1];
    cloud_default_release_id("fw", "1.0.0-rc.1+build.5", 12, id);
    CU_ASSERT_STRING_EQUAL(id, "fw-1.0.0-rc.1-build.5-12");

    char long_version[FERRY_VERSION_MAX + 1];
    memset(long_version, '9', FERRY_VERSION_MAX);
    long_version[FERRY_VERSION_MAX] = 0;
    cloud_default_release_id("product", long_version, 123456, id);
    CU_ASSERT_EQUAL(strlen(id), FERRY_NAME_MAX);
    size_t len = strlen(id);
    CU_ASSERT_STRING_EQUAL(id + len - strlen("-123456"), "-123456");
    CU_ASSERT_EQUAL(strncmp(id, "product-999", 11), 0);
}

const char *const ferry_suite_name = "cloud_keys";
const struct ferry_test_case ferry_tests[] = {
    {"kid_is_truncated_sha256_of_point", kid_is_truncated_sha256_of_point},
    {"saved_key_loads_signs_and_verifies", saved_key_loads_signs_and_verifies},
    {"public_file_is_a_keyring", public_file_is_a_keyring},
    {"other_key_does_not_verify", other_key_does_not_verify},
    {"signatures_are_deterministic", signatures_are_deterministic},
    {"file_modes", file_modes},
    {"save_refuses_to_overwrite", save_refuses_to_overwrite},
    {"load_rejects_other_curves", load_rejects_other_curves},
    {"load_rejects_garbage", load_rejects_garbage},
    {"load_explains_public_key", load_explains_public_key},
    {"load_missing_file", load_missing_file},
    {"load_rejects_oversized_file", load_rejects_oversized_file},
    {"signed_envelope_verifies", signed_envelope_verifies},
    {"default_release_id_is_an_id", default_release_id_is_an_id},
    {NULL, NULL},
};
