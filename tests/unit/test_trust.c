/* The trust rules (ferry_trust.h): the root chain and its threshold, root
 * and timestamp rollback, expiry, withdrawal, the freeze attack with an old
 * but valid timestamp, the keyring as root version 0, and limits. */
#include "cunit_main.h"
#include "test_meta.h"

#include "ferry_envelope.h"
#include "ferry_trust.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW  INT64_C(1700000100)
#define SKEW 300
#define DAY  86400

/* Root keys r1..r3, release keys k1, k2, timestamp keys t1, t2. */
struct keys {
    struct test_key r1, r2, r3, k1, k2, t1, t2;
};

static void keys_init(struct keys *k)
{
    test_key_init(&k->r1, 101);
    test_key_init(&k->r2, 102);
    test_key_init(&k->r3, 103);
    test_key_init(&k->k1, 111);
    test_key_init(&k->k2, 112);
    test_key_init(&k->t1, 121);
    test_key_init(&k->t2, 122);
}

static void keys_free(struct keys *k)
{
    test_key_free(&k->r1);
    test_key_free(&k->r2);
    test_key_free(&k->r3);
    test_key_free(&k->k1);
    test_key_free(&k->k2);
    test_key_free(&k->t1);
    test_key_free(&k->t2);
}

/* Root v1: root r1, release k1, timestamp t1. */
static void root_v1(const struct keys *k, struct ferry_root *r)
{
    test_root_init(r, 1);
    test_root_add(r, &k->r1, FERRY_ROLE_ROOT);
    test_root_add(r, &k->k1, FERRY_ROLE_RELEASE);
    test_root_add(r, &k->t1, FERRY_ROLE_TIMESTAMP);
}

static struct ferry_trust *trust_of(const char *doc, size_t len, size_t products)
{
    struct ferry_trust *t = NULL;
    struct ferry_diag d = {{0}};
    enum ferry_err err = ferry_trust_new((const uint8_t *)doc, len, products, &t, &d);
    if (err != FERRY_OK)
        fprintf(stderr, "trust_of: %s\n", d.msg);
    CU_ASSERT_FATAL(err == FERRY_OK);
    return t;
}

/* Trust holding root v1, signed by r1. */
static struct ferry_trust *trust_v1(struct keys *k)
{
    struct ferry_root r;
    size_t blen = 0, len = 0;
    root_v1(k, &r);
    char *body = test_root_body(&r, &blen);
    char *doc = test_signed_doc(body, blen, &len, 1, &k->r1);
    struct ferry_trust *t = trust_of(doc, len, 4);
    free(doc);
    free(body);
    return t;
}

static enum ferry_err update_root(struct ferry_trust *t, const char *doc, size_t len, bool *changed,
                                  struct ferry_diag *d)
{
    return ferry_trust_update_root(t, (const uint8_t *)doc, len, changed, d);
}

static void a_rotation_chains_when_old_and_new_root_keys_sign(void)
{
    struct keys k;
    keys_init(&k);
    struct ferry_trust *t = trust_v1(&k);
    CU_ASSERT_EQUAL(ferry_trust_version(t), 1);

    /* v2: root key r2 replaces r1, release key k2 replaces k1 (revoked). */
    struct ferry_root r;
    test_root_init(&r, 2);
    test_root_add(&r, &k.r2, FERRY_ROLE_ROOT);
    test_root_add(&r, &k.k2, FERRY_ROLE_RELEASE);
    test_root_add(&r, &k.t1, FERRY_ROLE_TIMESTAMP);
    memcpy(r.revoked[r.nrevoked++], k.k1.kid, sizeof(k.k1.kid));
    size_t blen = 0, len = 0;
    char *body = test_root_body(&r, &blen);
    struct ferry_diag d = {{0}};
    bool changed = true;

    /* Only the new root key: the keys trusted now never vouched for it. */
    char *doc = test_signed_doc(body, blen, &len, 1, &k.r2);
    CU_ASSERT_EQUAL(update_root(t, doc, len, &changed, &d), FERRY_E_THRESHOLD);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "current root"));
    CU_ASSERT_FALSE(changed);
    CU_ASSERT_EQUAL(ferry_trust_version(t), 1);
    free(doc);

    /* Only the old one: the new root's own keys must sign it too. */
    doc = test_signed_doc(body, blen, &len, 1, &k.r1);
    CU_ASSERT_EQUAL(update_root(t, doc, len, &changed, &d), FERRY_E_THRESHOLD);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "its own root keys"));
    CU_ASSERT_EQUAL(ferry_trust_version(t), 1);
    free(doc);

    /* Both. */
    doc = test_signed_doc(body, blen, &len, 2, &k.r1, &k.r2);
    CU_ASSERT_EQUAL(update_root(t, doc, len, &changed, &d), FERRY_OK);
    CU_ASSERT_TRUE(changed);
    CU_ASSERT_EQUAL(ferry_trust_version(t), 2);
    size_t held_len = 0;
    const uint8_t *held = ferry_trust_root_doc(t, &held_len);
    CU_ASSERT_TRUE(held_len == len && memcmp(held, doc, len) == 0);
    const struct ferry_keyring *rel = ferry_trust_release_keys(t);
    CU_ASSERT_EQUAL(ferry_keyring_lookup(rel, k.k2.kid), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_keyring_lookup(rel, k.k1.kid), FERRY_E_REVOKED_KEY);
    CU_ASSERT_EQUAL(ferry_keyring_lookup(rel, k.r1.kid), FERRY_E_UNKNOWN_KEY);

    /* The same document again changes nothing. */
    CU_ASSERT_EQUAL(update_root(t, doc, len, &changed, &d), FERRY_OK);
    CU_ASSERT_FALSE(changed);
    free(doc);

    /* From now on r1 alone vouches for nothing. */
    test_root_init(&r, 3);
    test_root_add(&r, &k.r1, FERRY_ROLE_ROOT);
    test_root_add(&r, &k.k1, FERRY_ROLE_RELEASE);
    free(body);
    body = test_root_body(&r, &blen);
    doc = test_signed_doc(body, blen, &len, 1, &k.r1);
    CU_ASSERT_EQUAL(update_root(t, doc, len, &changed, &d), FERRY_E_THRESHOLD);
    CU_ASSERT_EQUAL(ferry_trust_version(t), 2);
    free(doc);
    free(body);
    ferry_trust_free(t);
    keys_free(&k);
}

/* A manifest signed by a key the new root revoked is refused as such. */
static void releases_follow_the_root(void)
{
    struct keys k;
    keys_init(&k);
    struct ferry_trust *t = trust_v1(&k);
    struct ferry_manifest m;
    test_manifest_sample(&m, k.k1.kid, NULL, 100);
    size_t env_len = 0;
    char *env = test_envelope_of(&k.k1, &m, &env_len);
    struct ferry_verify_policy pol = {.now = m.issued_at + 10};
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(ferry_envelope_verify((const uint8_t *)env, env_len,
                                          ferry_trust_release_keys(t), &pol, NULL, &d),
                    FERRY_OK);

    struct ferry_root r;
    test_root_init(&r, 2);
    test_root_add(&r, &k.r1, FERRY_ROLE_ROOT);
    test_root_add(&r, &k.k2, FERRY_ROLE_RELEASE);
    memcpy(r.revoked[r.nrevoked++], k.k1.kid, sizeof(k.k1.kid));
    size_t blen = 0, len = 0;
    char *body = test_root_body(&r, &blen);
    char *doc = test_signed_doc(body, blen, &len, 1, &k.r1);
    bool changed = false;
    CU_ASSERT_EQUAL(update_root(t, doc, len, &changed, &d), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_envelope_verify((const uint8_t *)env, env_len,
                                          ferry_trust_release_keys(t), &pol, NULL, &d),
                    FERRY_E_REVOKED_KEY);
    CU_ASSERT_FALSE(ferry_trust_has_timestamp_role(t));
    free(doc);
    free(body);
    free(env);
    ferry_trust_free(t);
    keys_free(&k);
}

static void a_threshold_counts_distinct_valid_root_keys(void)
{
    struct keys k;
    keys_init(&k);
    /* v1 wants 2 of r1, r2, r3. */
    struct ferry_root r;
    test_root_init(&r, 1);
    test_root_add(&r, &k.r1, FERRY_ROLE_ROOT);
    test_root_add(&r, &k.r2, FERRY_ROLE_ROOT);
    test_root_add(&r, &k.r3, FERRY_ROLE_ROOT);
    r.roles[FERRY_ROLE_ROOT].threshold = 2;
    test_root_add(&r, &k.k1, FERRY_ROLE_RELEASE);
    size_t blen = 0, len = 0;
    char *body = test_root_body(&r, &blen);
    struct ferry_trust *t = NULL;
    struct ferry_diag d = {{0}};

    char *doc = test_signed_doc(body, blen, &len, 1, &k.r1);
    CU_ASSERT_EQUAL(ferry_trust_new((const uint8_t *)doc, len, 1, &t, &d), FERRY_E_THRESHOLD);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "1 valid signature(s) of the 2"));
    free(doc);
    /* A signature by a key outside the role does not count. */
    doc = test_signed_doc(body, blen, &len, 2, &k.r1, &k.k1);
    CU_ASSERT_EQUAL(ferry_trust_new((const uint8_t *)doc, len, 1, &t, &d), FERRY_E_THRESHOLD);
    free(doc);
    /* One key twice is refused outright (written by hand: the encoder
     * refuses it too). */
    doc = test_signed_doc(body, blen, &len, 1, &k.r1);
    char *sig = strstr(doc, "[{");
    CU_ASSERT_FATAL(sig != NULL);
    size_t sig_len = strlen(sig + 1) - 2; /* the object, without "]}" */
    char *twice = malloc(len + sig_len + 2);
    int n =
        sprintf(twice, "%.*s%.*s,%s", (int)(sig + 1 - doc), doc, (int)sig_len, sig + 1, sig + 1);
    CU_ASSERT_EQUAL(ferry_trust_new((const uint8_t *)twice, (size_t)n, 1, &t, &d),
                    FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "twice"));
    free(twice);
    free(doc);
    /* A signature that does not verify does not count. */
    char *other_body = strdup(body);
    other_body[blen - 2] = other_body[blen - 2] == '1' ? '2' : '1';
    doc = test_signed_doc(body, blen, &len, 1, &k.r1);
    size_t len2 = 0;
    char *bad = test_signed_doc(other_body, blen, &len2, 1, &k.r2);
    /* Splice r2's signature over other bytes next to r1's good one. */
    struct ferry_signed *a = NULL, *b = NULL;
    CU_ASSERT_FATAL(ferry_signed_parse((const uint8_t *)doc, len, 8192, "x", &a, NULL) == FERRY_OK);
    CU_ASSERT_FATAL(ferry_signed_parse((const uint8_t *)bad, len2, 8192, "x", &b, NULL) ==
                    FERRY_OK);
    struct ferry_signature both[2] = {a->sigs[0], b->sigs[0]};
    char *spliced = NULL;
    size_t slen = 0;
    CU_ASSERT_FATAL(ferry_signed_encode(a->body, a->body_len, both, 2, &spliced, &slen, NULL) ==
                    FERRY_OK);
    CU_ASSERT_EQUAL(ferry_trust_new((const uint8_t *)spliced, slen, 1, &t, &d), FERRY_E_THRESHOLD);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "does not verify"));
    free(spliced);
    ferry_signed_free(a);
    ferry_signed_free(b);
    free(bad);
    free(doc);
    free(other_body);

    doc = test_signed_doc(body, blen, &len, 2, &k.r3, &k.r1);
    t = trust_of(doc, len, 1);
    CU_ASSERT_EQUAL(ferry_trust_version(t), 1);
    free(doc);

    /* v2 keeps the 2-of-3 rule: one old key is not enough to move on. */
    r.version = 2;
    free(body);
    body = test_root_body(&r, &blen);
    doc = test_signed_doc(body, blen, &len, 1, &k.r2);
    bool changed = false;
    CU_ASSERT_EQUAL(update_root(t, doc, len, &changed, &d), FERRY_E_THRESHOLD);
    free(doc);
    doc = test_signed_doc(body, blen, &len, 2, &k.r2, &k.r3);
    CU_ASSERT_EQUAL(update_root(t, doc, len, &changed, &d), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_trust_version(t), 2);
    free(doc);
    free(body);
    ferry_trust_free(t);
    keys_free(&k);
}

static void a_root_cannot_be_rolled_back(void)
{
    struct keys k;
    keys_init(&k);
    struct ferry_trust *t = trust_v1(&k);
    struct ferry_root r;
    root_v1(&k, &r);
    size_t blen = 0, len3 = 0, len2 = 0, len = 0;
    bool changed = false;
    struct ferry_diag d = {{0}};

    /* Versions may be skipped when the chain holds: 1 -> 3. */
    r.version = 3;
    char *body = test_root_body(&r, &blen);
    char *v3 = test_signed_doc(body, blen, &len3, 1, &k.r1);
    free(body);
    CU_ASSERT_EQUAL(update_root(t, v3, len3, &changed, &d), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_trust_version(t), 3);

    /* A validly signed older version is refused. */
    r.version = 2;
    body = test_root_body(&r, &blen);
    char *v2 = test_signed_doc(body, blen, &len2, 1, &k.r1);
    free(body);
    CU_ASSERT_EQUAL(update_root(t, v2, len2, &changed, &d), FERRY_E_STALE);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "version 2"));
    CU_ASSERT_EQUAL(ferry_trust_version(t), 3);

    /* So is another document of the same version. */
    r.version = 3;
    r.issued_at++;
    body = test_root_body(&r, &blen);
    char *v3b = test_signed_doc(body, blen, &len, 1, &k.r1);
    free(body);
    CU_ASSERT_EQUAL(update_root(t, v3b, len, &changed, &d), FERRY_E_STALE);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "differ"));

    /* Restoring from storage follows the same version rule. */
    CU_ASSERT_EQUAL(ferry_trust_restore_root(t, (const uint8_t *)v2, len2, &d), FERRY_E_STALE);
    CU_ASSERT_EQUAL(ferry_trust_restore_root(t, (const uint8_t *)v3, len3, &d), FERRY_OK);
    struct ferry_trust *fresh = trust_v1(&k);
    CU_ASSERT_EQUAL(ferry_trust_restore_root(fresh, (const uint8_t *)v3, len3, &d), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_trust_version(fresh), 3);
    /* A stored document whose bytes changed no longer carries its own keys. */
    char *tampered = strdup(v3b);
    char *sig = strstr(tampered, "\"sig\":\"");
    CU_ASSERT_FATAL(sig != NULL);
    sig[10] = sig[10] == 'A' ? 'B' : 'A';
    struct ferry_trust *other = trust_v1(&k);
    CU_ASSERT_NOT_EQUAL(ferry_trust_restore_root(other, (const uint8_t *)tampered, len, &d),
                        FERRY_OK);
    CU_ASSERT_EQUAL(ferry_trust_version(other), 1);
    free(tampered);
    ferry_trust_free(other);
    ferry_trust_free(fresh);
    free(v3b);
    free(v2);
    free(v3);
    ferry_trust_free(t);
    keys_free(&k);
}

/* A keyring (PEM or JSON) is root version 0: a release key of it signs the
 * first root, a revoked one cannot. */
static void a_keyring_is_root_version_zero(void)
{
    struct keys k;
    keys_init(&k);
    char pem[TEST_PEM_MAX];
    test_key_pem(&k.k1, pem);
    struct ferry_trust *t = trust_of(pem, strlen(pem), 1);
    CU_ASSERT_EQUAL(ferry_trust_version(t), 0);
    CU_ASSERT_PTR_NULL(ferry_trust_root(t));
    CU_ASSERT_FALSE(ferry_trust_has_timestamp_role(t));
    CU_ASSERT_EQUAL(ferry_keyring_lookup(ferry_trust_release_keys(t), k.k1.kid), FERRY_OK);
    uint8_t digest[FERRY_SHA256_LEN] = {0};
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(ferry_trust_verdict(t, "meter", "meter-1", digest, NOW, &d), FERRY_OK);

    struct ferry_root r;
    root_v1(&k, &r);
    size_t blen = 0, len = 0;
    char *body = test_root_body(&r, &blen);
    bool changed = false;
    char *doc = test_signed_doc(body, blen, &len, 1, &k.r1);
    CU_ASSERT_EQUAL(update_root(t, doc, len, &changed, &d), FERRY_E_THRESHOLD);
    free(doc);
    doc = test_signed_doc(body, blen, &len, 2, &k.k1, &k.r1);
    CU_ASSERT_EQUAL(update_root(t, doc, len, &changed, &d), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_trust_version(t), 1);
    CU_ASSERT_TRUE(ferry_trust_has_timestamp_role(t));
    free(doc);
    ferry_trust_free(t);

    /* A JSON keyring with k1 revoked: k1 vouches for nothing. */
    char json[2048], esc[2 * TEST_PEM_MAX];
    size_t n = 0;
    for (const char *p = pem; *p; p++) {
        if (*p == '\n') {
            esc[n++] = '\\';
            esc[n++] = 'n';
        } else {
            esc[n++] = *p;
        }
    }
    esc[n] = '\0';
    snprintf(json, sizeof(json),
             "{\"keys\":[{\"kid\":\"%s\",\"public_key\":\"%s\",\"revoked\":true}]}", k.k1.kid, esc);
    t = trust_of(json, strlen(json), 1);
    doc = test_signed_doc(body, blen, &len, 2, &k.k1, &k.r1);
    CU_ASSERT_EQUAL(update_root(t, doc, len, &changed, &d), FERRY_E_THRESHOLD);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "revoked"));
    CU_ASSERT_EQUAL(ferry_trust_version(t), 0);
    free(doc);
    free(body);
    ferry_trust_free(t);
    keys_free(&k);
}

static enum ferry_err update_ts(struct ferry_trust *t, const char *doc, size_t len, int64_t now,
                                bool restore, bool *changed, struct ferry_diag *d)
{
    return ferry_trust_update_timestamp(t, (const uint8_t *)doc, len, now, SKEW, restore, changed,
                                        d);
}

static void timestamps_must_be_signed_fresh_and_newer(void)
{
    struct keys k;
    keys_init(&k);
    struct ferry_trust *t = trust_v1(&k);
    struct ferry_timestamp ts;
    struct ferry_diag d = {{0}};
    bool changed = false;
    size_t len = 0;

    test_ts_init(&ts, "meter", 10, NOW - 10, DAY);
    char *doc = test_ts_doc(&ts, &k.k1, &len); /* a release key, not a timestamp key */
    CU_ASSERT_EQUAL(update_ts(t, doc, len, NOW, false, &changed, &d), FERRY_E_THRESHOLD);
    free(doc);

    test_ts_init(&ts, "meter", 10, NOW - DAY - 1, DAY);
    doc = test_ts_doc(&ts, &k.t1, &len);
    CU_ASSERT_EQUAL(update_ts(t, doc, len, NOW, false, &changed, &d), FERRY_E_EXPIRED);
    CU_ASSERT_PTR_NULL(ferry_trust_timestamp(t, "meter", NULL, NULL));
    free(doc);

    test_ts_init(&ts, "meter", 10, NOW + SKEW + 1, DAY);
    doc = test_ts_doc(&ts, &k.t1, &len);
    CU_ASSERT_EQUAL(update_ts(t, doc, len, NOW, false, &changed, &d), FERRY_E_NOT_YET_VALID);
    free(doc);

    test_ts_init(&ts, "meter", 10, NOW - 10, DAY);
    char *v10 = test_ts_doc(&ts, &k.t1, &len);
    CU_ASSERT_EQUAL(update_ts(t, v10, len, NOW, false, &changed, &d), FERRY_OK);
    CU_ASSERT_TRUE(changed);
    const uint8_t *held = NULL;
    size_t held_len = 0;
    CU_ASSERT_EQUAL(ferry_trust_timestamp(t, "meter", &held, &held_len)->version, 10);
    CU_ASSERT_TRUE(held_len == len && memcmp(held, v10, len) == 0);
    CU_ASSERT_EQUAL(update_ts(t, v10, len, NOW, false, &changed, &d), FERRY_OK);
    CU_ASSERT_FALSE(changed);

    /* Same version, other bytes. */
    ts.expires_at += 5;
    doc = test_ts_doc(&ts, &k.t1, &len);
    CU_ASSERT_EQUAL(update_ts(t, doc, len, NOW, false, &changed, &d), FERRY_E_STALE);
    free(doc);

    /* Products are kept apart, up to the capacity given (4). */
    const char *products[] = {"valve", "pump", "gauge", "extra"};
    for (size_t i = 0; i < 4; i++) {
        test_ts_init(&ts, products[i], 1, NOW - 10, DAY);
        doc = test_ts_doc(&ts, &k.t1, &len);
        CU_ASSERT_EQUAL(update_ts(t, doc, len, NOW, false, &changed, &d),
                        i < 3 ? FERRY_OK : FERRY_E_TOO_LARGE);
        free(doc);
    }
    CU_ASSERT_EQUAL(ferry_trust_timestamp_count(t), 4);
    CU_ASSERT_EQUAL(ferry_trust_timestamp(t, "meter", NULL, NULL)->version, 10);
    free(v10);
    ferry_trust_free(t);

    /* A root without a timestamp role takes none. */
    char pem[TEST_PEM_MAX];
    test_key_pem(&k.k1, pem);
    t = trust_of(pem, strlen(pem), 1);
    test_ts_init(&ts, "meter", 11, NOW - 10, DAY);
    doc = test_ts_doc(&ts, &k.t1, &len);
    CU_ASSERT_EQUAL(update_ts(t, doc, len, NOW, false, &changed, &d), FERRY_E_UNKNOWN_KEY);
    free(doc);
    ferry_trust_free(t);
    keys_free(&k);
}

/* The freeze attack: a gateway replays an older timestamp that is still
 * valid, to keep a node on an old "current" release. */
static void an_old_but_valid_timestamp_cannot_freeze_a_node(void)
{
    struct keys k;
    keys_init(&k);
    struct ferry_trust *t = trust_v1(&k);
    uint8_t old_release[FERRY_SHA256_LEN], new_release[FERRY_SHA256_LEN];
    memset(old_release, 0x11, sizeof(old_release));
    memset(new_release, 0x22, sizeof(new_release));
    struct ferry_timestamp ts;
    struct ferry_diag d = {{0}};
    bool changed = false;
    size_t len9 = 0, len10 = 0;
    test_ts_init(&ts, "meter", 9, NOW - 100, 7 * DAY);
    test_ts_current(&ts, "meter-1", 1, old_release);
    char *v9 = test_ts_doc(&ts, &k.t1, &len9);
    test_ts_init(&ts, "meter", 10, NOW - 50, 7 * DAY);
    test_ts_current(&ts, "meter-2", 2, new_release);
    char *v10 = test_ts_doc(&ts, &k.t1, &len10);

    CU_ASSERT_EQUAL(update_ts(t, v10, len10, NOW, false, &changed, &d), FERRY_OK);
    CU_ASSERT_EQUAL(update_ts(t, v9, len9, NOW, false, &changed, &d), FERRY_E_STALE);
    CU_ASSERT_FALSE(changed);
    CU_ASSERT_EQUAL(ferry_trust_verdict(t, "meter", "meter-2", new_release, NOW, &d), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_trust_verdict(t, "meter", "meter-1", old_release, NOW, &d),
                    FERRY_E_STALE);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "meter-2"));

    /* After a restart: v10 comes back from storage even once expired, and
     * v9 still cannot take its place. */
    struct ferry_trust *again = trust_v1(&k);
    int64_t later = NOW + 8 * DAY;
    CU_ASSERT_EQUAL(update_ts(again, v10, len10, later, false, &changed, &d), FERRY_E_EXPIRED);
    CU_ASSERT_EQUAL(update_ts(again, v10, len10, later, true, &changed, &d), FERRY_OK);
    CU_ASSERT_EQUAL(update_ts(again, v9, len9, NOW, false, &changed, &d), FERRY_E_STALE);
    /* The expired timestamp vouches for nothing. */
    CU_ASSERT_EQUAL(ferry_trust_verdict(again, "meter", "meter-2", new_release, later, &d),
                    FERRY_E_STALE);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "expired"));
    ferry_trust_free(again);
    free(v9);
    free(v10);
    ferry_trust_free(t);
    keys_free(&k);
}

static void verdicts_follow_the_timestamp(void)
{
    struct keys k;
    keys_init(&k);
    struct ferry_trust *t = trust_v1(&k);
    uint8_t cur[FERRY_SHA256_LEN], other[FERRY_SHA256_LEN];
    memset(cur, 0x33, sizeof(cur));
    memset(other, 0x44, sizeof(other));
    struct ferry_diag d = {{0}};
    bool changed = false;
    size_t len = 0;

    CU_ASSERT_EQUAL(ferry_trust_verdict(t, "meter", "meter-3", cur, NOW, &d), FERRY_E_STALE);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "no timestamp"));

    struct ferry_timestamp ts;
    test_ts_init(&ts, "meter", 1, NOW - 10, DAY);
    strcpy(ts.withdrawn[ts.nwithdrawn++], "meter-2");
    char *doc = test_ts_doc(&ts, &k.t1, &len);
    CU_ASSERT_EQUAL(update_ts(t, doc, len, NOW, false, &changed, &d), FERRY_OK);
    free(doc);
    CU_ASSERT_EQUAL(ferry_trust_verdict(t, "meter", "meter-3", cur, NOW, &d), FERRY_E_STALE);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "no current"));
    CU_ASSERT_EQUAL(ferry_trust_verdict(t, "meter", "meter-2", other, NOW, &d), FERRY_E_WITHDRAWN);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "meter-2"));

    test_ts_init(&ts, "meter", 2, NOW - 10, DAY);
    test_ts_current(&ts, "meter-3", 3, cur);
    strcpy(ts.withdrawn[ts.nwithdrawn++], "meter-2");
    doc = test_ts_doc(&ts, &k.t1, &len);
    CU_ASSERT_EQUAL(update_ts(t, doc, len, NOW, false, &changed, &d), FERRY_OK);
    free(doc);
    CU_ASSERT_EQUAL(ferry_trust_verdict(t, "meter", "meter-3", cur, NOW, &d), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_trust_verdict(t, "meter", "meter-3", other, NOW, &d), FERRY_E_STALE);
    CU_ASSERT_EQUAL(ferry_trust_verdict(t, "valve", "meter-3", cur, NOW, &d), FERRY_E_STALE);
    /* Expiry ends freshness, never a withdrawal. */
    int64_t after = NOW - 10 + DAY;
    CU_ASSERT_EQUAL(ferry_trust_verdict(t, "meter", "meter-3", cur, after, &d), FERRY_E_STALE);
    CU_ASSERT_EQUAL(ferry_trust_verdict(t, "meter", "meter-2", other, after, &d),
                    FERRY_E_WITHDRAWN);

    /* During a rollout: the line's release and the rollout's are both
     * current; a third is not. */
    uint8_t third[FERRY_SHA256_LEN];
    memset(third, 0x55, sizeof(third));
    test_ts_init(&ts, "meter", 3, NOW - 10, DAY);
    test_ts_current(&ts, "meter-3", 3, cur);
    test_ts_current(&ts, "meter-4", 4, other);
    doc = test_ts_doc(&ts, &k.t1, &len);
    CU_ASSERT_EQUAL(update_ts(t, doc, len, NOW, false, &changed, &d), FERRY_OK);
    free(doc);
    CU_ASSERT_EQUAL(ferry_trust_verdict(t, "meter", "meter-3", cur, NOW, &d), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_trust_verdict(t, "meter", "meter-4", other, NOW, &d), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_trust_verdict(t, "meter", "meter-5", third, NOW, &d), FERRY_E_STALE);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "2 release(s) current"));
    ferry_trust_free(t);
    keys_free(&k);
}

/* A root that changes the timestamp keys drops the timestamps held: one that
 * a leaked timestamp key pushed to a huge version must not bar the new
 * key's timestamps for ever. */
static void new_timestamp_keys_reset_the_timestamps(void)
{
    struct keys k;
    keys_init(&k);
    struct ferry_trust *t = trust_v1(&k);
    struct ferry_timestamp ts;
    struct ferry_diag d = {{0}};
    bool changed = false;
    size_t len = 0, blen = 0;
    test_ts_init(&ts, "meter", UINT64_C(1) << 52, NOW - 10, DAY);
    char *doc = test_ts_doc(&ts, &k.t1, &len);
    CU_ASSERT_EQUAL(update_ts(t, doc, len, NOW, false, &changed, &d), FERRY_OK);
    free(doc);

    /* Same timestamp keys: the timestamps stay. */
    struct ferry_root r;
    root_v1(&k, &r);
    r.version = 2;
    char *body = test_root_body(&r, &blen);
    doc = test_signed_doc(body, blen, &len, 1, &k.r1);
    CU_ASSERT_EQUAL(update_root(t, doc, len, &changed, &d), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(ferry_trust_timestamp(t, "meter", NULL, NULL));
    free(doc);
    free(body);

    test_root_init(&r, 3);
    test_root_add(&r, &k.r1, FERRY_ROLE_ROOT);
    test_root_add(&r, &k.k1, FERRY_ROLE_RELEASE);
    test_root_add(&r, &k.t2, FERRY_ROLE_TIMESTAMP);
    memcpy(r.revoked[r.nrevoked++], k.t1.kid, sizeof(k.t1.kid));
    body = test_root_body(&r, &blen);
    doc = test_signed_doc(body, blen, &len, 1, &k.r1);
    CU_ASSERT_EQUAL(update_root(t, doc, len, &changed, &d), FERRY_OK);
    CU_ASSERT_PTR_NULL(ferry_trust_timestamp(t, "meter", NULL, NULL));
    free(doc);
    free(body);

    test_ts_init(&ts, "meter", 1, NOW - 10, DAY);
    doc = test_ts_doc(&ts, &k.t2, &len);
    CU_ASSERT_EQUAL(update_ts(t, doc, len, NOW, false, &changed, &d), FERRY_OK);
    free(doc);
    doc = test_ts_doc(&ts, &k.t1, &len);
    test_ts_init(&ts, "meter", 2, NOW - 10, DAY);
    free(doc);
    doc = test_ts_doc(&ts, &k.t1, &len);
    CU_ASSERT_EQUAL(update_ts(t, doc, len, NOW, false, &changed, &d), FERRY_E_THRESHOLD);
    free(doc);
    ferry_trust_free(t);
    keys_free(&k);
}

static void the_root_policy_overrides_local_limits(void)
{
    struct keys k;
    keys_init(&k);
    struct ferry_trust *t = trust_v1(&k);
    struct ferry_trust_limits local = {.max_seq_step = 1000, .max_manifest_lifetime = 30 * DAY};
    struct ferry_trust_limits got;
    ferry_trust_limits(t, &local, &got);
    CU_ASSERT_EQUAL(got.max_seq_step, 1000);
    CU_ASSERT_EQUAL(got.max_manifest_lifetime, 30 * DAY);

    struct ferry_root r;
    root_v1(&k, &r);
    r.version = 2;
    r.max_seq_step = UINT64_C(5000000);
    size_t blen = 0, len = 0;
    char *body = test_root_body(&r, &blen);
    char *doc = test_signed_doc(body, blen, &len, 1, &k.r1);
    bool changed = false;
    CU_ASSERT_EQUAL(update_root(t, doc, len, &changed, NULL), FERRY_OK);
    ferry_trust_limits(t, &local, &got);
    CU_ASSERT_EQUAL(got.max_seq_step, 5000000);
    CU_ASSERT_EQUAL(got.max_manifest_lifetime, 30 * DAY);
    free(doc);
    free(body);
    ferry_trust_free(t);
    keys_free(&k);
}

/* Whatever fails leaves the trust as it was. */
static void garbage_changes_nothing(void)
{
    struct keys k;
    keys_init(&k);
    struct ferry_trust *t = trust_v1(&k);
    static const char *const junk[] = {
        "",
        "{}",
        "[]",
        "{\"format\":1}",
        "{\"format\":1,\"signed\":\"\",\"signatures\":[]}",
        "{\"format\":1,\"signed\":\"e30=\",\"signatures\":[{\"kid\":\"0011223344556677\","
        "\"sig\":\"AA==\"}]}",
        "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n"};
    struct ferry_diag d = {{0}};
    bool changed = true;
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        CU_ASSERT_NOT_EQUAL(update_root(t, junk[i], strlen(junk[i]), &changed, &d), FERRY_OK);
        CU_ASSERT_FALSE(changed);
        CU_ASSERT_NOT_EQUAL(update_ts(t, junk[i], strlen(junk[i]), NOW, false, &changed, &d),
                            FERRY_OK);
        CU_ASSERT_FALSE(changed);
        struct ferry_trust *none = NULL;
        CU_ASSERT_NOT_EQUAL(
            ferry_trust_new((const uint8_t *)junk[i], strlen(junk[i]), 1, &none, &d), FERRY_OK);
        CU_ASSERT_PTR_NULL(none);
    }
    CU_ASSERT_EQUAL(ferry_trust_version(t), 1);
    CU_ASSERT_EQUAL(ferry_trust_timestamp_count(t), 0);
    ferry_trust_free(t);
    ferry_trust_free(NULL);
    keys_free(&k);
}

const char *const ferry_suite_name = "trust";
const struct ferry_test_case ferry_tests[] = {
    {"a_rotation_chains_when_old_and_new_root_keys_sign",
     a_rotation_chains_when_old_and_new_root_keys_sign},
    {"releases_follow_the_root", releases_follow_the_root},
    {"a_threshold_counts_distinct_valid_root_keys", a_threshold_counts_distinct_valid_root_keys},
    {"a_root_cannot_be_rolled_back", a_root_cannot_be_rolled_back},
    {"a_keyring_is_root_version_zero", a_keyring_is_root_version_zero},
    {"timestamps_must_be_signed_fresh_and_newer", timestamps_must_be_signed_fresh_and_newer},
    {"an_old_but_valid_timestamp_cannot_freeze_a_node",
     an_old_but_valid_timestamp_cannot_freeze_a_node},
    {"verdicts_follow_the_timestamp", verdicts_follow_the_timestamp},
    {"new_timestamp_keys_reset_the_timestamps", new_timestamp_keys_reset_the_timestamps},
    {"the_root_policy_overrides_local_limits", the_root_policy_overrides_local_limits},
    {"garbage_changes_nothing", garbage_changes_nothing},
    {NULL, NULL},
};
