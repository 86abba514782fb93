/* Builders of trust metadata for tests: root and timestamp documents signed
 * by test keys (test_keys.h). Static inline, like test_keys.h. */
#ifndef FERRY_TEST_META_H
#define FERRY_TEST_META_H

#include "test_keys.h"

#include "ferry_root.h"
#include "ferry_signed.h"
#include "ferry_timestamp.h"

#include <stdarg.h>

/* An empty root of `version`, issued at 1700000000. */
static inline void test_root_init(struct ferry_root *r, uint64_t version)
{
    memset(r, 0, sizeof(*r));
    r->version = version;
    r->issued_at = 1700000000;
}

/* Adds k to the root's keys (once) and to role's key ids; a role gets
 * threshold 1 when it first appears. */
static inline void test_root_add(struct ferry_root *r, const struct test_key *k,
                                 enum ferry_role role)
{
    size_t i = 0;
    while (i < r->nkeys && strcmp(r->keys[i].kid, k->kid) != 0)
        i++;
    if (i == r->nkeys) {
        CU_ASSERT_FATAL(r->nkeys < FERRY_ROOT_MAX_KEYS);
        memcpy(r->keys[i].kid, k->kid, sizeof(k->kid));
        memcpy(r->keys[i].point, k->point, FERRY_P256_POINT_LEN);
        r->nkeys++;
    }
    struct ferry_root_role *ro = &r->roles[role];
    CU_ASSERT_FATAL(ro->nkids < FERRY_ROLE_MAX_KEYS);
    memcpy(ro->kids[ro->nkids++], k->kid, sizeof(k->kid));
    if (!ro->present) {
        ro->present = true;
        ro->threshold = 1;
    }
}

/* body signed by each of the n keys that follow (struct test_key *), as a
 * signed document; the caller frees it. */
static inline char *test_signed_doc(const void *body, size_t body_len, size_t *len, size_t n, ...)
{
    struct ferry_signature sigs[FERRY_SIGNED_MAX_SIGS];
    va_list ap;
    CU_ASSERT_FATAL(n >= 1 && n <= FERRY_SIGNED_MAX_SIGS);
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        struct test_key *k = va_arg(ap, struct test_key *);
        memcpy(sigs[i].kid, k->kid, sizeof(k->kid));
        test_key_sign(k, body, body_len, sigs[i].sig);
    }
    va_end(ap);
    char *out = NULL;
    CU_ASSERT_FATAL(ferry_signed_encode(body, body_len, sigs, n, &out, len, NULL) == FERRY_OK);
    return out;
}

/* The root's encoding, for test_signed_doc(); the caller frees it. */
static inline char *test_root_body(const struct ferry_root *r, size_t *len)
{
    char *body = NULL;
    struct ferry_diag d = {{0}};
    enum ferry_err err = ferry_root_encode(r, &body, len, &d);
    if (err != FERRY_OK)
        fprintf(stderr, "test_root_body: %s\n", d.msg);
    CU_ASSERT_FATAL(err == FERRY_OK);
    return body;
}

/* A signed envelope of release (product, seq) by k; the caller frees it. */
static inline char *test_release_env(struct test_key *k, const char *product, const char *release,
                                     uint64_t seq, size_t *len)
{
    struct ferry_manifest m;
    test_manifest_sample(&m, k->kid, NULL, 100);
    snprintf(m.product, sizeof(m.product), "%s", product);
    snprintf(m.release_id, sizeof(m.release_id), "%s", release);
    m.seq = seq;
    return test_envelope_of(k, &m, len);
}

/* A timestamp for product, version v, valid [issued, issued + life). */
static inline void test_ts_init(struct ferry_timestamp *ts, const char *product, uint64_t v,
                                int64_t issued, int64_t life)
{
    memset(ts, 0, sizeof(*ts));
    snprintf(ts->product, sizeof(ts->product), "%s", product);
    ts->version = v;
    ts->issued_at = issued;
    ts->expires_at = issued + life;
}

/* Adds release (seq, signed manifest digest) to the current list. */
static inline void test_ts_current(struct ferry_timestamp *ts, const char *release, uint64_t seq,
                                   const uint8_t digest[FERRY_SHA256_LEN])
{
    struct ferry_ts_release *r = &ts->current[ts->ncurrent++];
    snprintf(r->release, sizeof(r->release), "%s", release);
    r->seq = seq;
    memcpy(r->sha256, digest, FERRY_SHA256_LEN);
}

/* ts signed by k; the caller frees it. */
static inline char *test_ts_doc(const struct ferry_timestamp *ts, struct test_key *k, size_t *len)
{
    char *body = NULL;
    size_t body_len = 0;
    CU_ASSERT_FATAL(ferry_timestamp_encode(ts, &body, &body_len, NULL) == FERRY_OK);
    char *doc = test_signed_doc(body, body_len, len, 1, k);
    free(body);
    return doc;
}

#endif
