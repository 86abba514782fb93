/* libFuzzer target for the trust metadata decoders: the same bytes go to
 * the signed-document, root, timestamp and bundle parsers, and to a trust
 * (root version 1 made at start-up with the fuzz key in every role) as a
 * root and as a timestamp. Whatever parses must survive an encode/parse
 * round trip unchanged, and a trust must never take something without
 * moving forward; a violation aborts, which libFuzzer reports as a crash. */
#include "ferry_meta.h"
#include "ferry_root.h"
#include "ferry_sha256.h"
#include "ferry_signed.h"
#include "ferry_timestamp.h"
#include "ferry_trust.h"

#include <mbedtls/ecdsa.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fuzz key of fuzz_envelope.c: private scalar SHA-256("ferry-fuzz"),
 * kid 4c1f802fbe657eb1. corpus/meta/ is signed with it. */
static const uint8_t fuzz_point[FERRY_P256_POINT_LEN] = {
    0x04, 0x25, 0xff, 0x47, 0xff, 0xaa, 0x10, 0x37, 0x25, 0x51, 0x49, 0xf0, 0xca,
    0xf3, 0x49, 0x76, 0x2f, 0x65, 0xfc, 0x32, 0x39, 0x38, 0xd6, 0x3f, 0x30, 0x8b,
    0x5c, 0xb9, 0x56, 0x11, 0xfb, 0x97, 0xc7, 0x16, 0x52, 0x45, 0x4a, 0x2d, 0x81,
    0x5b, 0x48, 0x9b, 0x19, 0x7f, 0x67, 0x5e, 0xef, 0x4d, 0xa2, 0x6d, 0xc6, 0x7e,
    0x0e, 0x05, 0x05, 0xbc, 0xde, 0x2f, 0x87, 0xf6, 0xe8, 0x25, 0x29, 0x2d, 0xf5,
};

static int fixed_rng(void *ctx, unsigned char *out, size_t len)
{
    (void)ctx;
    for (size_t i = 0; i < len; i++)
        out[i] = (unsigned char)(i * 13 + 7);
    return 0;
}

static void sign(const uint8_t *msg, size_t len, uint8_t sig[FERRY_ES256_SIG_LEN])
{
    mbedtls_ecp_group grp;
    mbedtls_mpi d, r, s;
    uint8_t scalar[FERRY_SHA256_LEN], digest[FERRY_SHA256_LEN];
    mbedtls_ecp_group_init(&grp);
    mbedtls_mpi_init(&d);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    ferry_sha256("ferry-fuzz", 10, scalar);
    ferry_sha256(msg, len, digest);
    if (mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1) ||
        mbedtls_mpi_read_binary(&d, scalar, sizeof(scalar)) ||
        mbedtls_ecdsa_sign(&grp, &r, &s, &d, digest, sizeof(digest), fixed_rng, NULL) ||
        mbedtls_mpi_write_binary(&r, sig, 32) || mbedtls_mpi_write_binary(&s, sig + 32, 32))
        abort();
    mbedtls_mpi_free(&s);
    mbedtls_mpi_free(&r);
    mbedtls_mpi_free(&d);
    mbedtls_ecp_group_free(&grp);
}

/* Root version 1: the fuzz key signs roots, releases and timestamps. */
static const char *root_v1(size_t *len)
{
    static char *doc;
    static size_t doc_len;
    if (doc) {
        *len = doc_len;
        return doc;
    }
    struct ferry_root r;
    memset(&r, 0, sizeof(r));
    r.version = 1;
    r.issued_at = 1700000000;
    r.nkeys = 1;
    memcpy(r.keys[0].point, fuzz_point, sizeof(fuzz_point));
    ferry_kid_of_point(fuzz_point, r.keys[0].kid);
    for (int role = 0; role < FERRY_ROLE__COUNT; role++) {
        r.roles[role].present = true;
        r.roles[role].threshold = 1;
        r.roles[role].nkids = 1;
        memcpy(r.roles[role].kids[0], r.keys[0].kid, sizeof(r.keys[0].kid));
    }
    char *body = NULL;
    size_t body_len = 0;
    struct ferry_signature sig;
    if (ferry_root_encode(&r, &body, &body_len, NULL) != FERRY_OK)
        abort();
    memcpy(sig.kid, r.keys[0].kid, sizeof(sig.kid));
    sign((const uint8_t *)body, body_len, sig.sig);
    if (ferry_signed_encode((const uint8_t *)body, body_len, &sig, 1, &doc, &doc_len, NULL) !=
        FERRY_OK)
        abort();
    free(body);
    *len = doc_len;
    return doc;
}

static void signed_round_trip(const uint8_t *data, size_t size)
{
    struct ferry_signed *s = NULL, *again = NULL;
    char *text = NULL;
    size_t len = 0;
    if (ferry_signed_parse(data, size, FERRY_SIGNED_MAX_BYTES, "fuzz", &s, NULL) != FERRY_OK)
        return;
    if (s->nsigs < 1 || s->nsigs > FERRY_SIGNED_MAX_SIGS ||
        ferry_signed_encode(s->body, s->body_len, s->sigs, s->nsigs, &text, &len, NULL) !=
            FERRY_OK ||
        ferry_signed_parse((const uint8_t *)text, len, FERRY_SIGNED_MAX_BYTES, "fuzz", &again,
                           NULL) != FERRY_OK ||
        again->body_len != s->body_len || memcmp(again->body, s->body, s->body_len) != 0 ||
        again->nsigs != s->nsigs || memcmp(again->sigs, s->sigs, s->nsigs * sizeof(s->sigs[0])))
        abort();
    ferry_signed_free(again);
    ferry_signed_free(s);
    free(text);
}

static void root_round_trip(const uint8_t *data, size_t size)
{
    struct ferry_root r, again;
    char *text = NULL, *text2 = NULL;
    size_t len = 0, len2 = 0;
    if (ferry_root_parse(data, size, &r, NULL) != FERRY_OK)
        return;
    /* Keys come out in one PEM layout, which may be longer than the one
     * that came in: a root near the cap may not encode again. */
    enum ferry_err err = ferry_root_encode(&r, &text, &len, NULL);
    if (err == FERRY_E_TOO_LARGE)
        return;
    if (err != FERRY_OK || ferry_root_parse((const uint8_t *)text, len, &again, NULL) != FERRY_OK ||
        ferry_root_encode(&again, &text2, &len2, NULL) != FERRY_OK || len != len2 ||
        memcmp(text, text2, len) != 0 || again.version != r.version)
        abort();
    free(text2);
    free(text);
}

static void timestamp_round_trip(const uint8_t *data, size_t size)
{
    struct ferry_timestamp t, again;
    char *text = NULL, *text2 = NULL;
    size_t len = 0, len2 = 0;
    if (ferry_timestamp_parse(data, size, &t, NULL) != FERRY_OK)
        return;
    if (ferry_timestamp_encode(&t, &text, &len, NULL) != FERRY_OK ||
        ferry_timestamp_parse((const uint8_t *)text, len, &again, NULL) != FERRY_OK ||
        ferry_timestamp_encode(&again, &text2, &len2, NULL) != FERRY_OK || len != len2 ||
        memcmp(text, text2, len) != 0 || again.ncurrent != t.ncurrent)
        abort();
    for (size_t i = 0; i < t.ncurrent; i++) {
        if (ferry_timestamp_withdraws(&t, t.current[i].release) ||
            !ferry_timestamp_current(&again, t.current[i].sha256))
            abort();
    }
    free(text2);
    free(text);
}

/* The cloud's record of what a rollout offers (a file serve writes and
 * `ferry-cloud timestamp` reads). */
static void offered_round_trip(const uint8_t *data, size_t size)
{
    struct ferry_offered o, again;
    char *text = NULL, *text2 = NULL;
    size_t len = 0, len2 = 0;
    if (ferry_offered_parse(data, size, &o, NULL) != FERRY_OK)
        return;
    if (o.n > FERRY_TIMESTAMP_MAX_CURRENT ||
        ferry_offered_encode(&o, &text, &len, NULL) != FERRY_OK ||
        ferry_offered_parse((const uint8_t *)text, len, &again, NULL) != FERRY_OK ||
        ferry_offered_encode(&again, &text2, &len2, NULL) != FERRY_OK || len != len2 ||
        memcmp(text, text2, len) != 0)
        abort();
    free(text2);
    free(text);
}

static void bundle_round_trip(const uint8_t *data, size_t size)
{
    struct ferry_meta *m = NULL, *again = NULL;
    uint8_t *out = NULL;
    size_t len = 0, n = 0;
    if (ferry_meta_parse(data, size, &m, NULL) != FERRY_OK)
        return;
    if (m->nroots > FERRY_META_MAX_ROOTS ||
        ferry_meta_encode(m->roots, m->nroots, m->timestamp.buf ? &m->timestamp : NULL, &out, &len,
                          &n, NULL) != FERRY_OK ||
        ferry_meta_parse(out, len, &again, NULL) != FERRY_OK || again->nroots != n ||
        n > m->nroots || (m->timestamp.buf == NULL) != (again->timestamp.buf == NULL))
        abort();
    ferry_meta_free(again);
    ferry_meta_free(m);
    free(out);
}

/* A trust at root version 1 with no timestamp; made again only after an
 * input changed it (building one checks a signature, which is slow). */
static struct ferry_trust *fresh_trust(struct ferry_trust **t)
{
    if (!*t || ferry_trust_version(*t) != 1 || ferry_trust_timestamp_count(*t) != 0) {
        size_t len = 0;
        const char *v1 = root_v1(&len);
        ferry_trust_free(*t);
        *t = NULL;
        if (ferry_trust_new((const uint8_t *)v1, len, 2, t, NULL) != FERRY_OK)
            abort();
    }
    return *t;
}

/* The input as a root and as a timestamp, against root version 1. */
static void trust_rules(const uint8_t *data, size_t size)
{
    static struct ferry_trust *for_roots, *for_timestamps;
    struct ferry_trust *t = fresh_trust(&for_roots);
    bool changed = false;
    enum ferry_err err = ferry_trust_update_root(t, data, size, &changed, NULL);
    if (err == FERRY_OK && changed && ferry_trust_version(t) <= 1)
        abort();
    if (err != FERRY_OK && (changed || ferry_trust_version(t) != 1))
        abort();

    t = fresh_trust(&for_timestamps);
    err = ferry_trust_update_timestamp(t, data, size, 1700000100, 300, false, &changed, NULL);
    if ((err == FERRY_OK) != changed || (err != FERRY_OK && ferry_trust_timestamp_count(t) != 0))
        abort();
    /* A document taken once is not taken again. */
    if (err == FERRY_OK && (ferry_trust_update_timestamp(t, data, size, 1700000100, 300, false,
                                                         &changed, NULL) != FERRY_OK ||
                            changed))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    signed_round_trip(data, size);
    root_round_trip(data, size);
    timestamp_round_trip(data, size);
    offered_round_trip(data, size);
    bundle_round_trip(data, size);
    trust_rules(data, size);
    return 0;
}
