/* The node's trust store (edge_meta.h): bundles from the gateway, what is
 * kept in STATE/trust, and what a restart gets back. */
#include "cunit_main.h"
#include "test_meta.h"

#include "edge_meta.h"
#include "ferry_fs.h"
#include "ferry_meta.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOW INT64_C(1700000100)
#define DAY 86400

struct world {
    struct test_key k1, r1, t1;
    char state[PATH_MAX];
    char trust[PATH_MAX + 16];
    char *v1, *v2;
    size_t l1, l2;
};

static char *root_v(struct world *w, uint64_t v, size_t *len)
{
    struct ferry_root r;
    size_t blen = 0;
    test_root_init(&r, v);
    test_root_add(&r, &w->r1, FERRY_ROLE_ROOT);
    test_root_add(&r, &w->k1, FERRY_ROLE_RELEASE);
    test_root_add(&r, &w->t1, FERRY_ROLE_TIMESTAMP);
    char *body = test_root_body(&r, &blen);
    char *doc = test_signed_doc(body, blen, len, 2, &w->k1, &w->r1);
    free(body);
    return doc;
}

static void world_init(struct world *w, unsigned n)
{
    memset(w, 0, sizeof(*w));
    test_key_init(&w->k1, 51);
    test_key_init(&w->r1, 52);
    test_key_init(&w->t1, 53);
    snprintf(w->state, sizeof(w->state), "%s/node-%u", ferry_test_tmpdir(), n);
    CU_ASSERT_FATAL(ferry_mkdir_p(w->state, 0700, NULL) == FERRY_OK);
    snprintf(w->trust, sizeof(w->trust), "%s/trust.pem", w->state);
    char pem[TEST_PEM_MAX];
    test_key_pem(&w->k1, pem);
    CU_ASSERT_FATAL(ferry_write_atomic(w->trust, pem, strlen(pem), 0644, NULL) == FERRY_OK);
    w->v1 = root_v(w, 1, &w->l1);
    w->v2 = root_v(w, 2, &w->l2);
}

static void world_free(struct world *w)
{
    free(w->v1);
    free(w->v2);
    test_key_free(&w->k1);
    test_key_free(&w->r1);
    test_key_free(&w->t1);
}

static struct edge_meta *open_meta(const struct world *w)
{
    struct edge_meta *m = NULL;
    struct ferry_diag d = {{0}};
    enum ferry_err err = edge_meta_open(w->state, w->trust, "meter", 300, &m, &d);
    if (err != FERRY_OK)
        fprintf(stderr, "open_meta: %s\n", d.msg);
    CU_ASSERT_FATAL(err == FERRY_OK);
    return m;
}

static char *ts_for(struct world *w, const char *product, uint64_t v, size_t *len)
{
    struct ferry_timestamp ts;
    test_ts_init(&ts, product, v, NOW - 10, DAY);
    return test_ts_doc(&ts, &w->t1, len);
}

/* A bundle of the given roots (NULL-terminated pairs) and timestamp. */
static uint8_t *bundle(const char *r1, size_t l1, const char *r2, size_t l2, const char *ts,
                       size_t tl, size_t *len)
{
    struct ferry_meta_doc roots[2];
    size_t n = 0, used = 0;
    if (r1)
        roots[n++] = (struct ferry_meta_doc){.buf = (uint8_t *)(uintptr_t)r1, .len = l1};
    if (r2)
        roots[n++] = (struct ferry_meta_doc){.buf = (uint8_t *)(uintptr_t)r2, .len = l2};
    struct ferry_meta_doc tsd = {.buf = (uint8_t *)(uintptr_t)ts, .len = tl};
    uint8_t *out = NULL;
    CU_ASSERT_FATAL(ferry_meta_encode(roots, n, ts ? &tsd : NULL, &out, len, &used, NULL) ==
                    FERRY_OK);
    return out;
}

static enum ferry_err apply(struct edge_meta *m, const uint8_t *b, size_t len, bool *changed)
{
    struct ferry_diag d = {{0}};
    return edge_meta_apply(m, b, len, NOW, changed, &d);
}

static void what_is_learned_is_kept(void)
{
    struct world w;
    world_init(&w, 1);
    struct edge_meta *m = open_meta(&w);
    CU_ASSERT_EQUAL(ferry_trust_version(edge_meta_trust(m)), 0);
    size_t tl = 0, bl = 0;
    bool changed = false;
    char *ts5 = ts_for(&w, "meter", 5, &tl);
    uint8_t *b = bundle(w.v1, w.l1, w.v2, w.l2, ts5, tl, &bl);
    CU_ASSERT_EQUAL(apply(m, b, bl, &changed), FERRY_OK);
    CU_ASSERT_TRUE(changed);
    CU_ASSERT_EQUAL(ferry_trust_version(edge_meta_trust(m)), 2);
    CU_ASSERT_PTR_NOT_NULL(ferry_trust_timestamp(edge_meta_trust(m), "meter", NULL, NULL));
    /* The same again: nothing changes. */
    CU_ASSERT_EQUAL(apply(m, b, bl, &changed), FERRY_OK);
    CU_ASSERT_FALSE(changed);
    free(b);
    edge_meta_free(m);

    /* After a restart the root and the timestamp are back, and an older
     * timestamp, or one of another product, changes nothing. */
    m = open_meta(&w);
    CU_ASSERT_EQUAL(ferry_trust_version(edge_meta_trust(m)), 2);
    CU_ASSERT_EQUAL(ferry_trust_timestamp(edge_meta_trust(m), "meter", NULL, NULL)->version, 5);
    size_t tl4 = 0, tlv = 0;
    char *ts4 = ts_for(&w, "meter", 4, &tl4);
    char *tsv = ts_for(&w, "valve", 9, &tlv);
    b = bundle(NULL, 0, NULL, 0, ts4, tl4, &bl);
    CU_ASSERT_EQUAL(apply(m, b, bl, &changed), FERRY_OK);
    CU_ASSERT_FALSE(changed);
    free(b);
    b = bundle(NULL, 0, NULL, 0, tsv, tlv, &bl);
    CU_ASSERT_EQUAL(apply(m, b, bl, &changed), FERRY_OK);
    CU_ASSERT_FALSE(changed);
    CU_ASSERT_PTR_NULL(ferry_trust_timestamp(edge_meta_trust(m), "valve", NULL, NULL));
    free(b);
    CU_ASSERT_EQUAL(apply(m, (const uint8_t *)"{", 1, &changed), FERRY_E_MALFORMED);
    edge_meta_free(m);

    /* A damaged stored root is left; --trust stands. */
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/" EDGE_META_DIR "/root.json", w.state);
    CU_ASSERT_FATAL(ferry_write_atomic(path, "{\"x\":1}", 7, 0600, NULL) == FERRY_OK);
    m = open_meta(&w);
    CU_ASSERT_EQUAL(ferry_trust_version(edge_meta_trust(m)), 0);
    edge_meta_free(m);

    /* A --trust newer than what is stored wins. */
    CU_ASSERT_FATAL(ferry_write_atomic(path, w.v1, w.l1, 0600, NULL) == FERRY_OK);
    CU_ASSERT_FATAL(ferry_write_atomic(w.trust, w.v2, w.l2, 0644, NULL) == FERRY_OK);
    m = open_meta(&w);
    CU_ASSERT_EQUAL(ferry_trust_version(edge_meta_trust(m)), 2);
    edge_meta_free(m);
    free(ts4);
    free(tsv);
    free(ts5);
    world_free(&w);
}

static void an_unreadable_trust_file_is_named(void)
{
    struct world w;
    world_init(&w, 2);
    CU_ASSERT_FATAL(ferry_write_atomic(w.trust, "not a key", 9, 0644, NULL) == FERRY_OK);
    struct edge_meta *m = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_NOT_EQUAL(edge_meta_open(w.state, w.trust, "meter", 300, &m, &d), FERRY_OK);
    CU_ASSERT_PTR_NULL(m);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "trust.pem"));
    world_free(&w);
}

const char *const ferry_suite_name = "edge_meta";
const struct ferry_test_case ferry_tests[] = {
    {"what_is_learned_is_kept", what_is_learned_is_kept},
    {"an_unreadable_trust_file_is_named", an_unreadable_trust_file_is_named},
    {NULL, NULL},
};
