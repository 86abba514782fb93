#include "ferry_keyring.h"

#include "ferry_fs.h"
#include "ferry_hex.h"
#include "ferry_json.h"
#include "ferry_sha256.h"

#include <mbedtls/bignum.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHAT       "keyring"
#define PEM_MAX    1024 /* a P-256 SubjectPublicKeyInfo in PEM is 178 bytes */
#define PEM_BEGIN  "-----BEGIN PUBLIC KEY-----"
#define PEM_END    "-----END PUBLIC KEY-----"
#define SCALAR_LEN (FERRY_ES256_SIG_LEN / 2)

struct key {
    uint8_t point[FERRY_P256_POINT_LEN];
    char kid[FERRY_KID_LEN + 1];
    bool revoked;
};

struct ferry_keyring {
    size_t n;
    struct key keys[FERRY_KEYRING_MAX_KEYS];
};

struct ferry_keyring *ferry_keyring_new(void)
{
    return calloc(1, sizeof(struct ferry_keyring));
}

void ferry_keyring_free(struct ferry_keyring *kr)
{
    free(kr);
}

size_t ferry_keyring_count(const struct ferry_keyring *kr)
{
    return kr->n;
}

void ferry_keyring_clear(struct ferry_keyring *kr)
{
    memset(kr, 0, sizeof(*kr));
}

void ferry_keyring_copy(struct ferry_keyring *dst, const struct ferry_keyring *src)
{
    if (dst != src)
        memcpy(dst, src, sizeof(*dst));
}

bool ferry_kid_valid(const char *kid)
{
    if (strnlen(kid, FERRY_KID_LEN + 1) != FERRY_KID_LEN)
        return false;
    for (size_t i = 0; i < FERRY_KID_LEN; i++) {
        if (!(kid[i] >= '0' && kid[i] <= '9') && !(kid[i] >= 'a' && kid[i] <= 'f'))
            return false;
    }
    return true;
}

void ferry_kid_of_point(const uint8_t point[FERRY_P256_POINT_LEN], char kid[FERRY_KID_LEN + 1])
{
    uint8_t digest[FERRY_SHA256_LEN];
    ferry_sha256(point, FERRY_P256_POINT_LEN, digest);
    ferry_hex_encode(digest, FERRY_KID_LEN / 2, kid);
}

/* Loads P-256 and the point; FERRY_E_INVALID_ARG unless it is an
 * uncompressed point on the curve (not the point at infinity). */
static enum ferry_err load_point(mbedtls_ecp_group *grp, mbedtls_ecp_point *q,
                                 const uint8_t point[FERRY_P256_POINT_LEN])
{
    if (mbedtls_ecp_group_load(grp, MBEDTLS_ECP_DP_SECP256R1) != 0)
        return FERRY_E_CRYPTO;
    if (point[0] != 0x04 || mbedtls_ecp_point_read_binary(grp, q, point, FERRY_P256_POINT_LEN) ||
        mbedtls_ecp_check_pubkey(grp, q))
        return FERRY_E_INVALID_ARG;
    return FERRY_OK;
}

static bool scalar_in_range(const mbedtls_mpi *x, const mbedtls_mpi *n)
{
    return mbedtls_mpi_cmp_int(x, 1) >= 0 && mbedtls_mpi_cmp_mpi(x, n) < 0;
}

enum ferry_err ferry_es256_verify(const uint8_t point[FERRY_P256_POINT_LEN], const uint8_t *msg,
                                  size_t msg_len, const uint8_t sig[FERRY_ES256_SIG_LEN])
{
    mbedtls_ecp_group grp;
    mbedtls_ecp_point q;
    mbedtls_mpi r, s;
    uint8_t digest[FERRY_SHA256_LEN];
    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&q);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);

    enum ferry_err err = load_point(&grp, &q, point);
    if (err != FERRY_OK)
        goto out;
    if (mbedtls_mpi_read_binary(&r, sig, SCALAR_LEN) ||
        mbedtls_mpi_read_binary(&s, sig + SCALAR_LEN, SCALAR_LEN)) {
        err = FERRY_E_CRYPTO;
        goto out;
    }
    /* mbedtls_ecdsa_verify checks this too; doing it here keeps the rule
     * visible and independent of the library version. */
    if (!scalar_in_range(&r, &grp.N) || !scalar_in_range(&s, &grp.N)) {
        err = FERRY_E_BAD_SIGNATURE;
        goto out;
    }
    ferry_sha256(msg, msg_len, digest);
    int rc = mbedtls_ecdsa_verify(&grp, digest, sizeof(digest), &q, &r, &s);
    if (rc == MBEDTLS_ERR_ECP_VERIFY_FAILED)
        err = FERRY_E_BAD_SIGNATURE;
    else if (rc != 0)
        err = FERRY_E_CRYPTO;
out:
    mbedtls_mpi_free(&s);
    mbedtls_mpi_free(&r);
    mbedtls_ecp_point_free(&q);
    mbedtls_ecp_group_free(&grp);
    return err;
}

static const struct key *find_key(const struct ferry_keyring *kr, const char *kid)
{
    for (size_t i = 0; i < kr->n; i++) {
        if (strcmp(kr->keys[i].kid, kid) == 0)
            return &kr->keys[i];
    }
    return NULL;
}

enum ferry_err ferry_keyring_lookup(const struct ferry_keyring *kr, const char *kid)
{
    const struct key *k = find_key(kr, kid);
    if (!k)
        return FERRY_E_UNKNOWN_KEY;
    return k->revoked ? FERRY_E_REVOKED_KEY : FERRY_OK;
}

enum ferry_err ferry_keyring_revoke_id(struct ferry_keyring *kr, const char *kid,
                                       struct ferry_diag *d)
{
    if (!ferry_kid_valid(kid))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          WHAT ": key id must be %d lower-case hex digits, got '%.*s'",
                          FERRY_KID_LEN, FERRY_KID_LEN + 1, kid);
    for (size_t i = 0; i < kr->n; i++) {
        if (strcmp(kr->keys[i].kid, kid) == 0) {
            kr->keys[i].revoked = true;
            return FERRY_OK;
        }
    }
    if (kr->n >= FERRY_KEYRING_MAX_KEYS)
        return ferry_fail(d, FERRY_E_TOO_LARGE, WHAT ": more than %d keys", FERRY_KEYRING_MAX_KEYS);
    /* No point: a revoked entry is never used to verify. */
    struct key k = {.revoked = true};
    memcpy(k.kid, kid, FERRY_KID_LEN + 1);
    kr->keys[kr->n++] = k;
    return FERRY_OK;
}

enum ferry_err ferry_keyring_verify(const struct ferry_keyring *kr, const char *kid,
                                    const uint8_t *msg, size_t msg_len,
                                    const uint8_t sig[FERRY_ES256_SIG_LEN])
{
    const struct key *k = find_key(kr, kid);
    if (!k)
        return FERRY_E_UNKNOWN_KEY;
    if (k->revoked)
        return FERRY_E_REVOKED_KEY;
    return ferry_es256_verify(k->point, msg, msg_len, sig);
}

enum ferry_err ferry_keyring_add(struct ferry_keyring *kr,
                                 const uint8_t point[FERRY_P256_POINT_LEN], bool revoked,
                                 struct ferry_diag *d)
{
    mbedtls_ecp_group grp;
    mbedtls_ecp_point q;
    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&q);
    enum ferry_err err = load_point(&grp, &q, point);
    mbedtls_ecp_point_free(&q);
    mbedtls_ecp_group_free(&grp);
    if (err != FERRY_OK)
        return ferry_fail(d, err, WHAT ": %s",
                          err == FERRY_E_INVALID_ARG ? "public key is not a point on P-256"
                                                     : "cannot load the P-256 curve");

    struct key k = {.revoked = revoked};
    memcpy(k.point, point, FERRY_P256_POINT_LEN);
    ferry_kid_of_point(point, k.kid);
    /* A key listed twice could be both revoked and not: refuse the doubt. */
    if (find_key(kr, k.kid))
        return ferry_fail(d, FERRY_E_INVALID_ARG, WHAT ": key %s is listed twice", k.kid);
    if (kr->n >= FERRY_KEYRING_MAX_KEYS)
        return ferry_fail(d, FERRY_E_TOO_LARGE, WHAT ": more than %d keys", FERRY_KEYRING_MAX_KEYS);
    kr->keys[kr->n++] = k;
    return FERRY_OK;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Exactly one PEM block, nothing but white space around it: mbedTLS would
 * read the first of several blocks and ignore the rest, which would silently
 * drop keys an operator meant to trust. */
static bool one_pem_block(const char *s, size_t len)
{
    while (len > 0 && is_space(s[len - 1]))
        len--;
    while (len > 0 && is_space(*s))
        s++, len--;
    size_t blen = strlen(PEM_BEGIN), elen = strlen(PEM_END);
    if (len < blen + elen || memcmp(s, PEM_BEGIN, blen) != 0 ||
        memcmp(s + len - elen, PEM_END, elen) != 0)
        return false;
    return strstr(s + blen, "-----BEGIN") == NULL;
}

enum ferry_err ferry_pem_to_point(const uint8_t *buf, size_t len, const char *what,
                                  uint8_t point[FERRY_P256_POINT_LEN], struct ferry_diag *d)
{
    enum ferry_err err = FERRY_OK;
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    /* mbedTLS wants PEM NUL-terminated, with the NUL counted in the length. */
    char *text = malloc(len + 1);
    if (!text) {
        err = ferry_fail(d, FERRY_E_NOMEM, "%s: out of memory", what);
        goto out;
    }
    memcpy(text, buf, len);
    text[len] = 0;
    if (memchr(buf, 0, len) || !one_pem_block(text, len)) {
        err = ferry_fail(d, FERRY_E_MALFORMED, "%s: expected one PEM '%s' block", what, PEM_BEGIN);
        goto out;
    }
    int rc = mbedtls_pk_parse_public_key(&pk, (const unsigned char *)text, len + 1);
    if (rc != 0) {
        err = ferry_fail(d, FERRY_E_MALFORMED, "%s: unreadable public key (mbedTLS -0x%04x)", what,
                         (unsigned)-rc);
        goto out;
    }
    /* mbedtls_pk_ec() is NULL for anything but an EC key. */
    const mbedtls_ecp_keypair *ec =
        mbedtls_pk_get_type(&pk) == MBEDTLS_PK_ECKEY ? mbedtls_pk_ec(pk) : NULL;
    size_t olen = 0;
    if (!ec || ec->grp.id != MBEDTLS_ECP_DP_SECP256R1 ||
        mbedtls_ecp_point_write_binary(&ec->grp, &ec->Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &olen, point,
                                       FERRY_P256_POINT_LEN) != 0 ||
        olen != FERRY_P256_POINT_LEN) {
        err = ferry_fail(d, FERRY_E_MALFORMED, "%s: must be an EC P-256 public key", what);
        goto out;
    }
out:
    mbedtls_pk_free(&pk);
    free(text);
    return err;
}

static enum ferry_err read_entry(const cJSON *e, const char *what, struct ferry_keyring *kr,
                                 struct ferry_diag *d)
{
    static const char *const keys[] = {"kid", "public_key", "revoked", NULL};
    char kid[FERRY_KID_LEN + 1], actual[FERRY_KID_LEN + 1], pem[PEM_MAX + 1];
    uint8_t point[FERRY_P256_POINT_LEN];
    bool revoked = false;
    if (!cJSON_IsObject(e))
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: must be an object", what);
    enum ferry_err err = ferry_json_only_keys(e, keys, true, what, d);
    if (err == FERRY_OK)
        err = ferry_json_str(e, "kid", true, FERRY_KID_LEN, kid, what, d);
    if (err == FERRY_OK)
        err = ferry_json_str(e, "public_key", true, PEM_MAX, pem, what, d);
    if (err == FERRY_OK)
        err = ferry_json_bool(e, "revoked", false, &revoked, what, d);
    if (err == FERRY_OK)
        err = ferry_pem_to_point((const uint8_t *)pem, strlen(pem), what, point, d);
    if (err != FERRY_OK)
        return err;
    ferry_kid_of_point(point, actual);
    if (strcmp(kid, actual) != 0)
        return ferry_fail(d, FERRY_E_MALFORMED,
                          "%s: field 'kid' must be the fingerprint of public_key (%s), got '%s'",
                          what, actual, kid);
    return ferry_keyring_add(kr, point, revoked, d);
}

static enum ferry_err parse_json(const uint8_t *buf, size_t len, struct ferry_keyring *kr,
                                 struct ferry_diag *d)
{
    static const char *const keys[] = {"keys", NULL};
    cJSON *root = NULL;
    enum ferry_err err = ferry_json_parse(buf, len, FERRY_KEYRING_MAX_BYTES, WHAT, &root, d);
    if (err == FERRY_OK)
        err = ferry_json_only_keys(root, keys, true, WHAT, d);
    if (err != FERRY_OK)
        goto out;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "keys");
    int n = cJSON_GetArraySize(arr);
    if (!cJSON_IsArray(arr) || n < 1 || n > FERRY_KEYRING_MAX_KEYS) {
        err = ferry_fail(d, FERRY_E_MALFORMED, WHAT ": field 'keys' must be an array of 1..%d keys",
                         FERRY_KEYRING_MAX_KEYS);
        goto out;
    }
    size_t i = 0;
    for (const cJSON *e = arr->child; e && err == FERRY_OK; e = e->next, i++) {
        char what[32];
        snprintf(what, sizeof(what), WHAT ": keys[%zu]", i);
        err = read_entry(e, what, kr, d);
    }
out:
    cJSON_Delete(root);
    return err;
}

enum ferry_err ferry_keyring_parse(const uint8_t *buf, size_t len, struct ferry_keyring **out,
                                   struct ferry_diag *d)
{
    uint8_t point[FERRY_P256_POINT_LEN];
    if (len > FERRY_KEYRING_MAX_BYTES)
        return ferry_fail(d, FERRY_E_TOO_LARGE, WHAT ": %zu bytes, the limit is %d", len,
                          FERRY_KEYRING_MAX_BYTES);
    struct ferry_keyring *kr = ferry_keyring_new();
    if (!kr)
        return ferry_fail(d, FERRY_E_NOMEM, WHAT ": out of memory");
    size_t i = 0;
    while (i < len && is_space((char)buf[i]))
        i++;
    enum ferry_err err;
    if (i < len && buf[i] == '{') {
        err = parse_json(buf, len, kr, d);
    } else {
        err = ferry_pem_to_point(buf, len, WHAT, point, d);
        if (err == FERRY_OK)
            err = ferry_keyring_add(kr, point, false, d);
    }
    if (err != FERRY_OK) {
        ferry_keyring_free(kr);
        return err == FERRY_E_INVALID_ARG ? FERRY_E_MALFORMED : err;
    }
    *out = kr;
    return FERRY_OK;
}

enum ferry_err ferry_keyring_load(const char *path, struct ferry_keyring **out,
                                  struct ferry_diag *d)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    enum ferry_err err = ferry_read_file(path, FERRY_KEYRING_MAX_BYTES, &buf, &len, d);
    if (err != FERRY_OK)
        return err;
    err = ferry_keyring_parse(buf, len, out, d);
    if (err != FERRY_OK)
        ferry_diag_prefix(d, path);
    free(buf);
    return err;
}
