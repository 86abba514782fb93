/* Test signing keys and sample releases, made with mbedTLS directly so proto
 * tests need no cloud code. Keys come from a seeded DRBG: every run makes the
 * same keys, so a failure replays exactly. Static inline: each test program
 * is one .c file and uses only some of these. */
#ifndef FERRY_TEST_KEYS_H
#define FERRY_TEST_KEYS_H

#include "cunit_main.h"
#include "ferry_envelope.h"
#include "ferry_keyring.h"
#include "ferry_manifest.h"
#include "ferry_sha256.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/pk.h>
#include <stdlib.h>
#include <string.h>

#define TEST_PEM_MAX 512

struct test_key {
    mbedtls_ecdsa_context ec;
    mbedtls_ctr_drbg_context drbg;
    unsigned seed;
    uint8_t point[FERRY_P256_POINT_LEN];
    char kid[FERRY_KID_LEN + 1];
};

/* Deterministic stand-in for an entropy source, varied by the key's seed. */
static inline int test_entropy(void *ctx, unsigned char *out, size_t len)
{
    const unsigned *seed = ctx;
    for (size_t i = 0; i < len; i++)
        out[i] = (unsigned char)(*seed * 131u + i * 7u + 1u);
    return 0;
}

/* A key on `curve` (MBEDTLS_ECP_DP_SECP256R1 unless a test wants another). */
static inline void test_key_init_curve(struct test_key *k, unsigned seed,
                                       mbedtls_ecp_group_id curve)
{
    size_t olen = 0;
    memset(k, 0, sizeof(*k));
    k->seed = seed;
    mbedtls_ecdsa_init(&k->ec);
    mbedtls_ctr_drbg_init(&k->drbg);
    CU_ASSERT_FATAL(mbedtls_ctr_drbg_seed(&k->drbg, test_entropy, &k->seed, NULL, 0) == 0);
    CU_ASSERT_FATAL(mbedtls_ecdsa_genkey(&k->ec, curve, mbedtls_ctr_drbg_random, &k->drbg) == 0);
    if (curve == MBEDTLS_ECP_DP_SECP256R1) {
        CU_ASSERT_FATAL(mbedtls_ecp_point_write_binary(&k->ec.grp, &k->ec.Q,
                                                       MBEDTLS_ECP_PF_UNCOMPRESSED, &olen, k->point,
                                                       sizeof(k->point)) == 0);
        CU_ASSERT_FATAL(olen == FERRY_P256_POINT_LEN);
        ferry_kid_of_point(k->point, k->kid);
    }
}

static inline void test_key_init(struct test_key *k, unsigned seed)
{
    test_key_init_curve(k, seed, MBEDTLS_ECP_DP_SECP256R1);
}

static inline void test_key_free(struct test_key *k)
{
    mbedtls_ctr_drbg_free(&k->drbg);
    mbedtls_ecdsa_free(&k->ec);
}

/* ES256 over msg as raw r || s. */
static inline void test_key_sign(struct test_key *k, const void *msg, size_t len,
                                 uint8_t sig[FERRY_ES256_SIG_LEN])
{
    uint8_t digest[FERRY_SHA256_LEN];
    mbedtls_mpi r, s;
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    ferry_sha256(msg, len, digest);
    CU_ASSERT_FATAL(mbedtls_ecdsa_sign(&k->ec.grp, &r, &s, &k->ec.d, digest, sizeof(digest),
                                       mbedtls_ctr_drbg_random, &k->drbg) == 0);
    CU_ASSERT_FATAL(mbedtls_mpi_write_binary(&r, sig, FERRY_ES256_SIG_LEN / 2) == 0);
    CU_ASSERT_FATAL(
        mbedtls_mpi_write_binary(&s, sig + FERRY_ES256_SIG_LEN / 2, FERRY_ES256_SIG_LEN / 2) == 0);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&s);
}

/* The public key as PEM SubjectPublicKeyInfo into pem (TEST_PEM_MAX). */
static inline void test_key_pem(const struct test_key *k, char pem[TEST_PEM_MAX])
{
    mbedtls_pk_context pk;
    mbedtls_pk_init(&pk);
    CU_ASSERT_FATAL(mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) == 0);
    mbedtls_ecp_keypair *ec = mbedtls_pk_ec(pk);
    CU_ASSERT_FATAL(ec != NULL);
    CU_ASSERT_FATAL(mbedtls_ecp_group_copy(&ec->grp, &k->ec.grp) == 0);
    CU_ASSERT_FATAL(mbedtls_ecp_copy(&ec->Q, &k->ec.Q) == 0);
    CU_ASSERT_FATAL(mbedtls_pk_write_pubkey_pem(&pk, (unsigned char *)pem, TEST_PEM_MAX) == 0);
    mbedtls_pk_free(&pk);
}

/* A keyring holding k (revoked or not). */
static inline struct ferry_keyring *test_keyring_of(const struct test_key *k, bool revoked)
{
    struct ferry_keyring *kr = ferry_keyring_new();
    CU_ASSERT_FATAL(kr != NULL);
    CU_ASSERT_FATAL(ferry_keyring_add(kr, k->point, revoked, NULL) == FERRY_OK);
    return kr;
}

/* A valid manifest signed by key_id, for an artifact of `size` bytes whose
 * digest is `digest` (NULL: a fixed made-up digest). */
static inline void test_manifest_sample(struct ferry_manifest *m, const char *key_id,
                                        const uint8_t *digest, uint64_t size)
{
    memset(m, 0, sizeof(*m));
    m->format = FERRY_MANIFEST_FORMAT;
    strcpy(m->release_id, "meter-fw-2024.06");
    strcpy(m->product, "meter");
    strcpy(m->component, "firmware");
    strcpy(m->version, "1.4.0-rc.2+build.77");
    CU_ASSERT_FATAL(ferry_semver_parse(m->version, &m->semver) == FERRY_OK);
    m->seq = 42;
    strcpy(m->hw[0].model, "mx-100");
    strcpy(m->hw[0].revisions[0], "A");
    strcpy(m->hw[0].revisions[1], "B2");
    m->hw[0].nrevisions = 2;
    strcpy(m->hw[1].model, "mx-200");
    m->nhw = 2;
    for (size_t i = 0; i < FERRY_SHA256_LEN; i++)
        m->sha256[i] = digest ? digest[i] : (uint8_t)(0xa0 + i);
    m->size = size;
    strcpy(m->media_type, "application/vnd.ferry.image");
    m->issued_at = 1700000000;
    m->expires_at = 1700000000 + 30 * 86400;
    m->constraints.must_be_idle = true;
    m->constraints.window_start = 1700003600;
    m->constraints.window_end = 1700007200;
    m->constraints.max_deferral = 86400;
    strcpy(m->key_id, key_id);
}

/* Encodes m, signs the bytes with k and wraps them: a ready envelope that
 * the caller frees with free(). */
static inline char *test_envelope_of(struct test_key *k, const struct ferry_manifest *m,
                                     size_t *len)
{
    char *text = NULL, *env = NULL;
    size_t text_len = 0;
    uint8_t sig[FERRY_ES256_SIG_LEN];
    CU_ASSERT_FATAL(ferry_manifest_encode(m, &text, &text_len, NULL) == FERRY_OK);
    test_key_sign(k, text, text_len, sig);
    CU_ASSERT_FATAL(ferry_envelope_encode((const uint8_t *)text, text_len, k->kid, sig, &env, len,
                                          NULL) == FERRY_OK);
    free(text);
    return env;
}

/* Field-by-field equality (the structs may differ in padding). */
static inline bool test_manifest_equal(const struct ferry_manifest *a,
                                       const struct ferry_manifest *b)
{
    bool eq = a->format == b->format && !strcmp(a->release_id, b->release_id) &&
              !strcmp(a->product, b->product) && !strcmp(a->component, b->component) &&
              !strcmp(a->version, b->version) && ferry_semver_cmp(&a->semver, &b->semver) == 0 &&
              a->seq == b->seq && a->nhw == b->nhw && !memcmp(a->sha256, b->sha256, 32) &&
              a->size == b->size && !strcmp(a->media_type, b->media_type) &&
              a->issued_at == b->issued_at && a->expires_at == b->expires_at &&
              a->constraints.must_be_idle == b->constraints.must_be_idle &&
              a->constraints.window_start == b->constraints.window_start &&
              a->constraints.window_end == b->constraints.window_end &&
              a->constraints.max_deferral == b->constraints.max_deferral &&
              !strcmp(a->key_id, b->key_id);
    for (size_t i = 0; eq && i < a->nhw; i++) {
        eq = !strcmp(a->hw[i].model, b->hw[i].model) && a->hw[i].nrevisions == b->hw[i].nrevisions;
        for (size_t j = 0; eq && j < a->hw[i].nrevisions; j++)
            eq = !strcmp(a->hw[i].revisions[j], b->hw[i].revisions[j]);
    }
    return eq;
}

#endif
