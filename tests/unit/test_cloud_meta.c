/* The cloud's side of trust metadata: the next timestamp (cloud_timestamp.h)
 * and signing root documents (cloud_root.h). */
#include "cunit_main.h"
#include "test_meta.h"

#include "cloud_keys.h"
#include "cloud_root.h"
#include "cloud_timestamp.h"
#include "ferry_fs.h"
#include "ferry_trust.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW INT64_C(1700000000)

/* A one-entry list of a copy of s (ferry_strlist holds mutable strings). */
struct one {
    char text[FERRY_NAME_MAX + 1];
    char *v[1];
    struct ferry_strlist l;
};

static const struct ferry_strlist *one_of(struct one *o, const char *s)
{
    snprintf(o->text, sizeof(o->text), "%s", s);
    o->v[0] = o->text;
    o->l.v = o->v;
    o->l.n = 1;
    return &o->l;
}

static void the_next_timestamp_carries_state_forward(void)
{
    struct test_key k;
    test_key_init(&k, 1);
    struct ferry_timestamp t1, t2, t3;
    struct ferry_diag d = {{0}};
    size_t len = 0;
    char *env = test_release_env(&k, "meter", "meter-2", 2, &len);

    CU_ASSERT_EQUAL_FATAL(cloud_timestamp_next("meter", NULL, (const uint8_t *)env, len, NULL, NULL,
                                               NOW, 3600, &t1, &d),
                          FERRY_OK);
    CU_ASSERT_EQUAL(t1.version, (uint64_t)NOW);
    CU_ASSERT_EQUAL(t1.expires_at, NOW + 3600);
    CU_ASSERT_EQUAL(t1.ncurrent, 1);
    CU_ASSERT_STRING_EQUAL(t1.current[0].release, "meter-2");
    CU_ASSERT_EQUAL(t1.current[0].seq, 2);
    CU_ASSERT_EQUAL(t1.nwithdrawn, 0);

    /* Same second, or a clock behind: the version still grows. */
    struct one o;
    CU_ASSERT_EQUAL_FATAL(cloud_timestamp_next("meter", &t1, (const uint8_t *)env, len, NULL,
                                               one_of(&o, "meter-1"), NOW - 5, 3600, &t2, &d),
                          FERRY_OK);
    CU_ASSERT_EQUAL(t2.version, (uint64_t)NOW + 1);
    CU_ASSERT_TRUE(ferry_timestamp_withdraws(&t2, "meter-1"));
    CU_ASSERT_EQUAL(t2.ncurrent, 1);

    /* Withdrawing the current release leaves nothing current; the list
     * carries over. */
    CU_ASSERT_EQUAL_FATAL(cloud_timestamp_next("meter", &t2, (const uint8_t *)env, len, NULL,
                                               one_of(&o, "meter-2"), NOW + 60, 3600, &t3, &d),
                          FERRY_OK);
    CU_ASSERT_EQUAL(t3.ncurrent, 0);
    CU_ASSERT_TRUE(ferry_timestamp_withdraws(&t3, "meter-1"));
    CU_ASSERT_TRUE(ferry_timestamp_withdraws(&t3, "meter-2"));
    CU_ASSERT_EQUAL(t3.version, (uint64_t)NOW + 60);
    free(env);

    /* The recorded release must be of the product. */
    env = test_release_env(&k, "valve", "valve-1", 1, &len);
    CU_ASSERT_EQUAL(cloud_timestamp_next("meter", NULL, (const uint8_t *)env, len, NULL, NULL, NOW,
                                         3600, &t1, &d),
                    FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "valve"));
    free(env);
    CU_ASSERT_EQUAL(
        cloud_timestamp_next("meter", NULL, NULL, 0, NULL, one_of(&o, "../x"), NOW, 3600, &t1, &d),
        FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(cloud_timestamp_next("meter", NULL, NULL, 0, NULL, NULL, NOW, 0, &t1, &d),
                    FERRY_E_INVALID_ARG);
    test_key_free(&k);
}

/* Beyond the cap the oldest withdrawal falls off. */
static void the_withdrawn_list_keeps_the_newest(void)
{
    struct ferry_timestamp t, next;
    struct ferry_diag d = {{0}};
    test_ts_init(&t, "meter", 1, NOW, 60);
    for (size_t i = 0; i < FERRY_TIMESTAMP_MAX_WITHDRAWN; i++)
        snprintf(t.withdrawn[t.nwithdrawn++], sizeof(t.withdrawn[0]), "old-%zu", i);
    struct one o;
    CU_ASSERT_EQUAL_FATAL(
        cloud_timestamp_next("meter", &t, NULL, 0, NULL, one_of(&o, "newest"), NOW, 60, &next, &d),
        FERRY_OK);
    CU_ASSERT_EQUAL(next.nwithdrawn, FERRY_TIMESTAMP_MAX_WITHDRAWN);
    CU_ASSERT_FALSE(ferry_timestamp_withdraws(&next, "old-0"));
    CU_ASSERT_TRUE(ferry_timestamp_withdraws(&next, "old-1"));
    CU_ASSERT_TRUE(ferry_timestamp_withdraws(&next, "newest"));
    char *text = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL(ferry_timestamp_encode(&next, &text, &len, &d), FERRY_OK);
    free(text);
}

/* What a product's latest rollout offers, by its state. */
static void a_rollout_offers_by_its_state(void)
{
    struct test_key k;
    test_key_init(&k, 1);
    struct ferry_diag d = {{0}};
    size_t len = 0, rlen = 0;
    char *env = test_release_env(&k, "meter", "meter-4", 4, &len);
    char *rev = test_release_env(&k, "meter", "meter-3r", 5, &rlen);
    const uint8_t *e = (const uint8_t *)env, *r = (const uint8_t *)rev;
    struct ferry_offered o;
    static const enum ferry_rollout_state offer_release[] = {
        FERRY_ROLLOUT_SCHEDULED, FERRY_ROLLOUT_RUNNING, FERRY_ROLLOUT_PAUSED,
        FERRY_ROLLOUT_COMPLETED};
    for (size_t i = 0; i < sizeof(offer_release) / sizeof(offer_release[0]); i++) {
        CU_ASSERT_EQUAL_FATAL(
            cloud_offered_of("meter", 7, offer_release[i], e, len, r, rlen, &o, &d), FERRY_OK);
        CU_ASSERT_EQUAL(o.n, 1);
        CU_ASSERT_STRING_EQUAL(o.r[0].release, "meter-4");
        CU_ASSERT_EQUAL(o.r[0].seq, 4);
        CU_ASSERT_EQUAL(o.rollout, 7);
    }
    CU_ASSERT_EQUAL(cloud_offered_of("meter", 7, FERRY_ROLLOUT_HALTED, e, len, r, rlen, &o, &d),
                    FERRY_OK);
    CU_ASSERT_EQUAL(o.n, 1);
    CU_ASSERT_STRING_EQUAL(o.r[0].release, "meter-3r");
    CU_ASSERT_STRING_EQUAL(o.state, "halted");
    CU_ASSERT_EQUAL(cloud_offered_of("meter", 7, FERRY_ROLLOUT_HALTED, e, len, NULL, 0, &o, &d),
                    FERRY_OK);
    CU_ASSERT_EQUAL(o.n, 0);
    CU_ASSERT_EQUAL(cloud_offered_of("meter", 7, FERRY_ROLLOUT_CANCELLED, e, len, r, rlen, &o, &d),
                    FERRY_OK);
    CU_ASSERT_EQUAL(o.n, 0);
    CU_ASSERT_EQUAL(cloud_offered_of("valve", 7, FERRY_ROLLOUT_RUNNING, e, len, r, rlen, &o, &d),
                    FERRY_E_INVALID_ARG);
    free(env);
    free(rev);
    test_key_free(&k);
}

/* The next timestamp: the line's release, then what the rollout offers,
 * each once, none withdrawn. */
static void the_next_timestamp_names_what_the_rollout_offers(void)
{
    struct test_key k;
    test_key_init(&k, 1);
    struct ferry_diag d = {{0}};
    size_t len3 = 0, len4 = 0;
    char *env3 = test_release_env(&k, "meter", "meter-3", 3, &len3);
    char *env4 = test_release_env(&k, "meter", "meter-4", 4, &len4);
    struct ferry_offered o;
    struct ferry_timestamp t, t2;
    CU_ASSERT_EQUAL_FATAL(cloud_offered_of("meter", 1, FERRY_ROLLOUT_RUNNING, (const uint8_t *)env4,
                                           len4, NULL, 0, &o, &d),
                          FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(
        cloud_timestamp_next("meter", NULL, (const uint8_t *)env3, len3, &o, NULL, NOW, 60, &t, &d),
        FERRY_OK);
    CU_ASSERT_EQUAL(t.ncurrent, 2);
    CU_ASSERT_STRING_EQUAL(t.current[0].release, "meter-3");
    CU_ASSERT_STRING_EQUAL(t.current[1].release, "meter-4");
    /* Without a line release (the first release of a line goes out by a
     * rollout), the rollout's alone. */
    CU_ASSERT_EQUAL_FATAL(cloud_timestamp_next("meter", NULL, NULL, 0, &o, NULL, NOW, 60, &t, &d),
                          FERRY_OK);
    CU_ASSERT_EQUAL(t.ncurrent, 1);
    CU_ASSERT_STRING_EQUAL(t.current[0].release, "meter-4");
    /* Completed and promoted: the line's release is the rollout's, named once. */
    CU_ASSERT_EQUAL_FATAL(
        cloud_timestamp_next("meter", NULL, (const uint8_t *)env4, len4, &o, NULL, NOW, 60, &t, &d),
        FERRY_OK);
    CU_ASSERT_EQUAL(t.ncurrent, 1);
    /* Withdrawn mid-rollout: left out, and it stays out. */
    struct one w;
    CU_ASSERT_EQUAL_FATAL(cloud_timestamp_next("meter", NULL, (const uint8_t *)env3, len3, &o,
                                               one_of(&w, "meter-4"), NOW, 60, &t, &d),
                          FERRY_OK);
    CU_ASSERT_EQUAL(t.ncurrent, 1);
    CU_ASSERT_STRING_EQUAL(t.current[0].release, "meter-3");
    CU_ASSERT_EQUAL_FATAL(cloud_timestamp_next("meter", &t, (const uint8_t *)env3, len3, &o, NULL,
                                               NOW + 1, 60, &t2, &d),
                          FERRY_OK);
    CU_ASSERT_EQUAL(t2.ncurrent, 1);
    CU_ASSERT_TRUE(ferry_timestamp_withdraws(&t2, "meter-4"));
    /* A record of another product is refused. */
    snprintf(o.product, sizeof(o.product), "valve");
    CU_ASSERT_EQUAL(
        cloud_timestamp_next("meter", NULL, (const uint8_t *)env3, len3, &o, NULL, NOW, 60, &t, &d),
        FERRY_E_INVALID_ARG);
    free(env3);
    free(env4);
    test_key_free(&k);
}

/* serve records what the rollout offers; `timestamp` reads it back. */
static void the_offered_record_reaches_the_next_timestamp(void)
{
    struct cloud_key *ts_key = NULL;
    struct test_key rel;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(cloud_key_generate(&ts_key, &d), FERRY_OK);
    test_key_init(&rel, 2);
    char store[PATH_MAX];
    snprintf(store, sizeof(store), "%s/store-offered", ferry_test_tmpdir());
    size_t len3 = 0, len4 = 0;
    char *env3 = test_release_env(&rel, "meter", "meter-3", 3, &len3);
    char *env4 = test_release_env(&rel, "meter", "meter-4", 4, &len4);
    CU_ASSERT_EQUAL_FATAL(cloud_release_record(store, "meter", (const uint8_t *)env3, len3, &d),
                          FERRY_OK);
    struct ferry_offered o;
    bool changed = false;
    CU_ASSERT_EQUAL_FATAL(cloud_offered_of("meter", 1, FERRY_ROLLOUT_RUNNING, (const uint8_t *)env4,
                                           len4, NULL, 0, &o, &d),
                          FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(cloud_offered_record(store, &o, &changed, &d), FERRY_OK);
    CU_ASSERT_TRUE(changed);
    CU_ASSERT_EQUAL_FATAL(cloud_offered_record(store, &o, &changed, &d), FERRY_OK);
    CU_ASSERT_FALSE(changed);

    struct cloud_key *keys[] = {ts_key};
    char *doc = NULL;
    size_t len = 0;
    struct ferry_timestamp ts;
    CU_ASSERT_EQUAL_FATAL(
        cloud_timestamp_issue(store, "meter", keys, 1, NULL, NOW, 600, &doc, &len, &ts, &d),
        FERRY_OK);
    CU_ASSERT_EQUAL(ts.ncurrent, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, "\"signed\""));
    free(doc);

    /* Cancelled: the line's release alone again. */
    CU_ASSERT_EQUAL_FATAL(cloud_offered_of("meter", 1, FERRY_ROLLOUT_CANCELLED,
                                           (const uint8_t *)env4, len4, NULL, 0, &o, &d),
                          FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(cloud_offered_record(store, &o, &changed, &d), FERRY_OK);
    CU_ASSERT_TRUE(changed);
    CU_ASSERT_EQUAL_FATAL(
        cloud_timestamp_issue(store, "meter", keys, 1, NULL, NOW, 600, &doc, &len, &ts, &d),
        FERRY_OK);
    CU_ASSERT_EQUAL(ts.ncurrent, 1);
    CU_ASSERT_STRING_EQUAL(ts.current[0].release, "meter-3");
    free(doc);
    doc = NULL;

    /* A corrupt record stops the timestamp, naming it. */
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/meta/offered/meter.json", store);
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(path, "[]", 2, 0644, NULL), FERRY_OK);
    CU_ASSERT_NOT_EQUAL(
        cloud_timestamp_issue(store, "meter", keys, 1, NULL, NOW, 600, &doc, &len, &ts, &d),
        FERRY_OK);
    CU_ASSERT_PTR_NULL(doc);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "what the rollout offers"));
    free(env3);
    free(env4);
    test_key_free(&rel);
    cloud_key_free(ts_key);
}

/* The timer's --if-changed: the same names and more than half the life
 * left leave the last timestamp in place. */
static void an_unchanged_fresh_timestamp_is_left_in_place(void)
{
    struct ferry_timestamp prev, next;
    uint8_t a[FERRY_SHA256_LEN], b[FERRY_SHA256_LEN];
    memset(a, 1, sizeof(a));
    memset(b, 2, sizeof(b));
    test_ts_init(&prev, "meter", 5, NOW, 1000);
    test_ts_current(&prev, "meter-3", 3, a);
    strcpy(prev.withdrawn[prev.nwithdrawn++], "meter-2");
    next = prev;
    next.version = 6;
    next.issued_at = NOW + 100;
    next.expires_at = NOW + 1100;
    CU_ASSERT_TRUE(cloud_timestamp_unchanged(&prev, &next, NOW + 100));
    CU_ASSERT_FALSE(cloud_timestamp_unchanged(&prev, &next, NOW + 500)); /* half its life gone */
    struct ferry_timestamp other = next;
    test_ts_current(&other, "meter-4", 4, b); /* a rollout now offers meter-4 */
    CU_ASSERT_FALSE(cloud_timestamp_unchanged(&prev, &other, NOW + 100));
    other = next;
    other.current[0].sha256[0] ^= 1;
    CU_ASSERT_FALSE(cloud_timestamp_unchanged(&prev, &other, NOW + 100));
    other = next;
    strcpy(other.withdrawn[0], "meter-1");
    CU_ASSERT_FALSE(cloud_timestamp_unchanged(&prev, &other, NOW + 100));
    other = next;
    other.ncurrent = 0;
    CU_ASSERT_FALSE(cloud_timestamp_unchanged(&prev, &other, NOW + 100));
}

/* issue: reads the store, signs, saves; a node's trust takes the result. */
static void issued_timestamps_verify_and_are_saved(void)
{
    struct cloud_key *ts_key = NULL, *root_key = NULL;
    struct test_key rel;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(cloud_key_generate(&ts_key, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(cloud_key_generate(&root_key, &d), FERRY_OK);
    test_key_init(&rel, 2);
    char store[PATH_MAX];
    snprintf(store, sizeof(store), "%s/store", ferry_test_tmpdir());

    size_t env_len = 0;
    char *env = test_release_env(&rel, "meter", "meter-7", 7, &env_len);
    CU_ASSERT_EQUAL_FATAL(cloud_release_record(store, "meter", (const uint8_t *)env, env_len, &d),
                          FERRY_OK);
    char *doc = NULL;
    size_t len = 0;
    struct ferry_timestamp ts;
    struct cloud_key *keys[] = {ts_key};
    CU_ASSERT_EQUAL_FATAL(
        cloud_timestamp_issue(store, "meter", keys, 1, NULL, NOW, 600, &doc, &len, &ts, &d),
        FERRY_OK);
    CU_ASSERT_STRING_EQUAL(ts.current[0].release, "meter-7");
    CU_ASSERT_EQUAL_FATAL(cloud_timestamp_record(store, "meter", doc, len, &d), FERRY_OK);

    /* What a root naming this key as the timestamp key accepts. */
    struct ferry_root r;
    test_root_init(&r, 1);
    struct test_key as_test;
    memset(&as_test, 0, sizeof(as_test));
    cloud_key_point(root_key, as_test.point);
    snprintf(as_test.kid, sizeof(as_test.kid), "%s", cloud_key_kid(root_key));
    test_root_add(&r, &as_test, FERRY_ROLE_ROOT);
    test_root_add(&r, &rel, FERRY_ROLE_RELEASE);
    cloud_key_point(ts_key, as_test.point);
    snprintf(as_test.kid, sizeof(as_test.kid), "%s", cloud_key_kid(ts_key));
    test_root_add(&r, &as_test, FERRY_ROLE_TIMESTAMP);
    size_t blen = 0, root_len = 0;
    char *body = test_root_body(&r, &blen);
    char *signed_root = NULL;
    CU_ASSERT_EQUAL_FATAL(
        cloud_root_sign((const uint8_t *)body, blen, root_key, &signed_root, &root_len, &d),
        FERRY_OK);
    struct ferry_trust *t = NULL;
    CU_ASSERT_EQUAL_FATAL(ferry_trust_new((const uint8_t *)signed_root, root_len, 1, &t, &d),
                          FERRY_OK);
    bool changed = false;
    CU_ASSERT_EQUAL(
        ferry_trust_update_timestamp(t, (const uint8_t *)doc, len, NOW + 1, 0, false, &changed, &d),
        FERRY_OK);
    struct ferry_envelope *e = NULL;
    CU_ASSERT_FATAL(ferry_envelope_parse((const uint8_t *)env, env_len, &e, NULL) == FERRY_OK);
    uint8_t digest[FERRY_SHA256_LEN];
    ferry_sha256(e->manifest, e->manifest_len, digest);
    ferry_envelope_free(e);
    CU_ASSERT_EQUAL(ferry_trust_verdict(t, "meter", "meter-7", digest, NOW + 1, &d), FERRY_OK);

    /* The state was saved: a withdrawal after a restart builds on it. */
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/meta/timestamp/meter.json", store);
    uint8_t *saved = NULL;
    size_t saved_len = 0;
    CU_ASSERT_EQUAL_FATAL(ferry_read_file(path, 1 << 16, &saved, &saved_len, NULL), FERRY_OK);
    CU_ASSERT_TRUE(saved_len == len && memcmp(saved, doc, len) == 0);
    free(saved);
    free(doc);
    struct one o;
    CU_ASSERT_EQUAL_FATAL(cloud_timestamp_issue(store, "meter", keys, 1, one_of(&o, "meter-7"), NOW,
                                                600, &doc, &len, &ts, &d),
                          FERRY_OK);
    CU_ASSERT_EQUAL(ts.version, (uint64_t)NOW + 1);
    CU_ASSERT_EQUAL(ts.ncurrent, 0);
    CU_ASSERT_EQUAL(
        ferry_trust_update_timestamp(t, (const uint8_t *)doc, len, NOW + 1, 0, false, &changed, &d),
        FERRY_OK);
    CU_ASSERT_EQUAL(ferry_trust_verdict(t, "meter", "meter-7", digest, NOW + 1, &d),
                    FERRY_E_WITHDRAWN);
    free(doc);
    /* Not recorded, it is not what the next one builds on. */
    CU_ASSERT_EQUAL_FATAL(
        cloud_timestamp_issue(store, "meter", keys, 1, NULL, NOW, 600, &doc, &len, &ts, &d),
        FERRY_OK);
    CU_ASSERT_EQUAL(ts.version, (uint64_t)NOW + 1);
    CU_ASSERT_EQUAL(ts.ncurrent, 1);
    free(doc);
    doc = NULL;
    /* A corrupt state file stops it, naming the file. */
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(path, "{", 1, 0644, NULL), FERRY_OK);
    CU_ASSERT_NOT_EQUAL(
        cloud_timestamp_issue(store, "meter", keys, 1, NULL, NOW, 600, &doc, &len, &ts, &d),
        FERRY_OK);
    CU_ASSERT_PTR_NULL(doc);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "last timestamp"));

    ferry_trust_free(t);
    free(signed_root);
    free(body);
    free(env);
    cloud_key_free(ts_key);
    cloud_key_free(root_key);
    test_key_free(&rel);
}

static void root_signatures_accumulate(void)
{
    struct cloud_key *a = NULL, *b = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(cloud_key_generate(&a, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(cloud_key_generate(&b, &d), FERRY_OK);
    struct ferry_root r;
    test_root_init(&r, 1);
    struct test_key ka, kb;
    memset(&ka, 0, sizeof(ka));
    memset(&kb, 0, sizeof(kb));
    cloud_key_point(a, ka.point);
    snprintf(ka.kid, sizeof(ka.kid), "%s", cloud_key_kid(a));
    cloud_key_point(b, kb.point);
    snprintf(kb.kid, sizeof(kb.kid), "%s", cloud_key_kid(b));
    test_root_add(&r, &ka, FERRY_ROLE_ROOT);
    test_root_add(&r, &kb, FERRY_ROLE_ROOT);
    r.roles[FERRY_ROLE_ROOT].threshold = 2;
    test_root_add(&r, &ka, FERRY_ROLE_RELEASE);
    size_t blen = 0, l1 = 0, l2 = 0, l3 = 0;
    char *body = test_root_body(&r, &blen);
    char *one = NULL, *two = NULL, *again = NULL;
    CU_ASSERT_EQUAL_FATAL(cloud_root_sign((const uint8_t *)body, blen, a, &one, &l1, &d), FERRY_OK);
    struct ferry_trust *t = NULL;
    CU_ASSERT_EQUAL(ferry_trust_new((const uint8_t *)one, l1, 1, &t, &d), FERRY_E_THRESHOLD);
    CU_ASSERT_EQUAL(cloud_root_sign((const uint8_t *)one, l1, a, &again, &l3, &d),
                    FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NULL(again);
    CU_ASSERT_EQUAL_FATAL(cloud_root_sign((const uint8_t *)one, l1, b, &two, &l2, &d), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_trust_new((const uint8_t *)two, l2, 1, &t, &d), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_trust_version(t), 1);
    ferry_trust_free(t);
    /* Something that is not a root is not signed. */
    static const char not_root[] = "{\"format\":1,\"type\":\"timestamp\"}";
    CU_ASSERT_EQUAL(
        cloud_root_sign((const uint8_t *)not_root, strlen(not_root), a, &again, &l3, &d),
        FERRY_E_MALFORMED);
    free(one);
    free(two);
    free(body);
    cloud_key_free(a);
    cloud_key_free(b);
}

const char *const ferry_suite_name = "cloud_meta";
const struct ferry_test_case ferry_tests[] = {
    {"the_next_timestamp_carries_state_forward", the_next_timestamp_carries_state_forward},
    {"the_withdrawn_list_keeps_the_newest", the_withdrawn_list_keeps_the_newest},
    {"issued_timestamps_verify_and_are_saved", issued_timestamps_verify_and_are_saved},
    {"a_rollout_offers_by_its_state", a_rollout_offers_by_its_state},
    {"an_unchanged_fresh_timestamp_is_left_in_place",
     an_unchanged_fresh_timestamp_is_left_in_place},
    {"the_next_timestamp_names_what_the_rollout_offers",
     the_next_timestamp_names_what_the_rollout_offers},
    {"the_offered_record_reaches_the_next_timestamp",
     the_offered_record_reaches_the_next_timestamp},
    {"root_signatures_accumulate", root_signatures_accumulate},
    {NULL, NULL},
};
