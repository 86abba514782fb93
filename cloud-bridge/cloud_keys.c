#include "cloud_keys.h"

#include "ferry_fs.h"
#include "ferry_log.h"
#include "ferry_sha256.h"

#include <errno.h>
#include <limits.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A PEM-encoded P-256 key is a few hundred bytes; this leaves room to spare. */
#define PEM_BUF_LEN 2048

struct cloud_key {
    mbedtls_pk_context pk;
    uint8_t point[FERRY_P256_POINT_LEN];
    char kid[FERRY_KID_LEN + 1];
};

static enum ferry_err mbed_fail(struct ferry_diag *d, const char *what, int rc)
{
    char buf[128];
    mbedtls_strerror(rc, buf, sizeof(buf));
    return ferry_fail(d, FERRY_E_CRYPTO, "%s: %s (mbedtls -0x%04x)", what, buf, (unsigned)-rc);
}

/* One DRBG per operation: signing is rare, and a key shared by const
 * pointer then needs no mutable state. */
static enum ferry_err drbg_seed(mbedtls_entropy_context *ent, mbedtls_ctr_drbg_context *drbg,
                                const char *pers, struct ferry_diag *d)
{
    mbedtls_entropy_init(ent);
    mbedtls_ctr_drbg_init(drbg);
    int rc = mbedtls_ctr_drbg_seed(drbg, mbedtls_entropy_func, ent, (const unsigned char *)pers,
                                   strlen(pers));
    if (rc != 0)
        return mbed_fail(d, "seeding the random generator", rc);
    return FERRY_OK;
}

static void drbg_free(mbedtls_entropy_context *ent, mbedtls_ctr_drbg_context *drbg)
{
    mbedtls_ctr_drbg_free(drbg);
    mbedtls_entropy_free(ent);
}

static struct cloud_key *key_alloc(void)
{
    struct cloud_key *k = calloc(1, sizeof(*k));
    if (k)
        mbedtls_pk_init(&k->pk);
    return k;
}

/* Fills the point and kid from the key pair in k->pk. */
static enum ferry_err key_finish(struct cloud_key *k, struct ferry_diag *d)
{
    mbedtls_ecp_keypair *ec = mbedtls_pk_ec(k->pk);
    size_t olen = 0;
    int rc = mbedtls_ecp_point_write_binary(&ec->grp, &ec->Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &olen,
                                            k->point, sizeof(k->point));
    if (rc != 0)
        return mbed_fail(d, "encoding the public key", rc);
    if (olen != FERRY_P256_POINT_LEN)
        return ferry_fail(d, FERRY_E_CRYPTO, "public key point is %zu bytes, expected %d", olen,
                          FERRY_P256_POINT_LEN);
    ferry_kid_of_point(k->point, k->kid);
    return FERRY_OK;
}

void cloud_key_free(struct cloud_key *k)
{
    if (!k)
        return;
    mbedtls_pk_free(&k->pk);
    mbedtls_platform_zeroize(k, sizeof(*k));
    free(k);
}

const char *cloud_key_kid(const struct cloud_key *k)
{
    return k->kid;
}

void cloud_key_point(const struct cloud_key *k, uint8_t point[FERRY_P256_POINT_LEN])
{
    memcpy(point, k->point, FERRY_P256_POINT_LEN);
}

enum ferry_err cloud_key_generate(struct cloud_key **out, struct ferry_diag *d)
{
    mbedtls_entropy_context ent;
    mbedtls_ctr_drbg_context drbg;
    struct cloud_key *k = key_alloc();
    enum ferry_err err = drbg_seed(&ent, &drbg, "ferry-cloud keygen", d);
    if (err != FERRY_OK)
        goto out;
    if (!k) {
        err = ferry_fail(d, FERRY_E_NOMEM, "keygen: out of memory");
        goto out;
    }
    int rc = mbedtls_pk_setup(&k->pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
    if (rc != 0) {
        err = mbed_fail(d, "keygen", rc);
        goto out;
    }
    rc = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(k->pk),
                             mbedtls_ctr_drbg_random, &drbg);
    if (rc != 0) {
        err = mbed_fail(d, "keygen: generating a P-256 key", rc);
        goto out;
    }
    err = key_finish(k, d);
    if (err != FERRY_OK)
        goto out;
    *out = k;
    k = NULL;
out:
    cloud_key_free(k);
    drbg_free(&ent, &drbg);
    return err;
}

/* Explains why a file that is not a usable private key was refused. */
static enum ferry_err explain_parse_failure(const char *path, const uint8_t *buf, size_t len,
                                            int rc, struct ferry_diag *d)
{
    if (rc == MBEDTLS_ERR_PK_PASSWORD_REQUIRED)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "%s: the key is encrypted; ferry-cloud needs an unencrypted key", path);
    mbedtls_pk_context pub;
    mbedtls_pk_init(&pub);
    bool is_public = mbedtls_pk_parse_public_key(&pub, buf, len) == 0;
    mbedtls_pk_free(&pub);
    if (is_public)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "%s: this is a public key; signing needs the private key "
                          "(release-<kid>.key)",
                          path);
    char msg[128];
    mbedtls_strerror(rc, msg, sizeof(msg));
    return ferry_fail(d, FERRY_E_MALFORMED, "%s: not a PEM private key: %s", path, msg);
}

static void warn_if_exposed(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)))
        ferry_log_warn("%s: private key is accessible to group or others (mode %03o); chmod 600 it",
                       path, (unsigned)(st.st_mode & 0777));
}

enum ferry_err cloud_key_load(const char *path, struct cloud_key **out, struct ferry_diag *d)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    struct cloud_key *k = NULL;
    enum ferry_err err = ferry_read_file(path, CLOUD_KEY_MAX_BYTES, &buf, &len, d);
    if (err != FERRY_OK)
        return err;
    k = key_alloc();
    if (!k) {
        err = ferry_fail(d, FERRY_E_NOMEM, "%s: out of memory", path);
        goto out;
    }
    /* mbedTLS recognises PEM only when the length includes the NUL that
     * ferry_read_file() puts after the data. */
    int rc = mbedtls_pk_parse_key(&k->pk, buf, len + 1, NULL, 0);
    if (rc != 0) {
        err = explain_parse_failure(path, buf, len + 1, rc, d);
        goto out;
    }
    const mbedtls_ecp_keypair *ec =
        mbedtls_pk_can_do(&k->pk, MBEDTLS_PK_ECKEY) ? mbedtls_pk_ec(k->pk) : NULL;
    if (!ec) {
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "%s: a %s key; release keys are EC P-256", path,
                         mbedtls_pk_get_name(&k->pk));
        goto out;
    }
    if (ec->grp.id != MBEDTLS_ECP_DP_SECP256R1) {
        const mbedtls_ecp_curve_info *ci = mbedtls_ecp_curve_info_from_grp_id(ec->grp.id);
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "%s: EC key on curve %s; release keys are P-256",
                         path, ci ? ci->name : "unknown");
        goto out;
    }
    err = key_finish(k, d);
    if (err != FERRY_OK)
        goto out;
    warn_if_exposed(path);
    *out = k;
    k = NULL;
out:
    mbedtls_platform_zeroize(buf, len);
    free(buf);
    cloud_key_free(k);
    return err;
}

static enum ferry_err key_path(char *out, size_t cap, const char *dir, const char *role,
                               const char *kid, const char *ext, struct ferry_diag *d)
{
    int n = snprintf(out, cap, "%s/%s-%s.%s", dir, role, kid, ext);
    if (n < 0 || (size_t)n >= cap)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "%s: path too long", dir);
    return FERRY_OK;
}

static enum ferry_err refuse_existing(const char *path, struct ferry_diag *d)
{
    struct stat st;
    if (lstat(path, &st) == 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "%s: already exists; not overwriting a key",
                          path);
    if (errno != ENOENT)
        return ferry_fail(d, FERRY_E_IO, "%s: %s", path, strerror(errno));
    return FERRY_OK;
}

enum ferry_err cloud_key_save(const struct cloud_key *k, const char *dir, struct ferry_diag *d)
{
    return cloud_key_save_as(k, dir, "release", d);
}

enum ferry_err cloud_key_save_as(const struct cloud_key *k, const char *dir, const char *role,
                                 struct ferry_diag *d)
{
    char pub_path[PATH_MAX], key_path_buf[PATH_MAX];
    unsigned char pem[PEM_BUF_LEN];
    if (strcmp(role, "release") != 0 && strcmp(role, "root") != 0 && strcmp(role, "timestamp") != 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "key role must be release, root or timestamp, got '%.32s'", role);
    enum ferry_err err = key_path(pub_path, sizeof(pub_path), dir, role, k->kid, "pub", d);
    if (err == FERRY_OK)
        err = key_path(key_path_buf, sizeof(key_path_buf), dir, role, k->kid, "key", d);
    if (err == FERRY_OK)
        err = ferry_mkdir_p(dir, 0700, d);
    if (err == FERRY_OK)
        err = refuse_existing(pub_path, d);
    if (err == FERRY_OK)
        err = refuse_existing(key_path_buf, d);
    if (err != FERRY_OK)
        return err;

    /* mbedTLS 2.28's writers take a non-const context but only read it; a
     * shallow copy of the handle keeps this function's promise. */
    mbedtls_pk_context pk = k->pk;
    int rc = mbedtls_pk_write_pubkey_pem(&pk, pem, sizeof(pem));
    if (rc != 0)
        return mbed_fail(d, "encoding the public key as PEM", rc);
    err = ferry_write_atomic(pub_path, pem, strlen((char *)pem), 0644, d);
    if (err != FERRY_OK)
        return err;

    rc = mbedtls_pk_write_key_pem(&pk, pem, sizeof(pem));
    if (rc != 0) {
        err = mbed_fail(d, "encoding the private key as PEM", rc);
        goto out;
    }
    err = ferry_write_atomic(key_path_buf, pem, strlen((char *)pem), 0600, d);
out:
    mbedtls_platform_zeroize(pem, sizeof(pem));
    return err;
}

enum ferry_err cloud_key_sign(const struct cloud_key *k, const uint8_t *msg, size_t len,
                              uint8_t sig[FERRY_ES256_SIG_LEN], struct ferry_diag *d)
{
    mbedtls_entropy_context ent;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_mpi r, s;
    uint8_t hash[FERRY_SHA256_LEN];
    uint8_t raw[FERRY_ES256_SIG_LEN];
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    enum ferry_err err = drbg_seed(&ent, &drbg, "ferry-cloud sign", d);
    if (err != FERRY_OK)
        goto out;
    ferry_sha256(msg, len, hash);
    mbedtls_ecp_keypair *ec = mbedtls_pk_ec(k->pk);
    /* The DRBG only blinds the scalar multiplication; the nonce itself comes
     * from RFC 6979, so a weak generator cannot leak the key. */
    int rc = mbedtls_ecdsa_sign_det_ext(&ec->grp, &r, &s, &ec->d, hash, sizeof(hash),
                                        MBEDTLS_MD_SHA256, mbedtls_ctr_drbg_random, &drbg);
    if (rc == 0)
        rc = mbedtls_mpi_write_binary(&r, raw, 32);
    if (rc == 0)
        rc = mbedtls_mpi_write_binary(&s, raw + 32, 32);
    if (rc != 0) {
        err = mbed_fail(d, "signing", rc);
        goto out;
    }
    memcpy(sig, raw, sizeof(raw));
out:
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
    drbg_free(&ent, &drbg);
    return err;
}
