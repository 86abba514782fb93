/* The gateway's trust store (gw_meta.h): roots taken by the chain rule in
 * whatever order they arrive, timestamps per product, both kept across a
 * restart, and the bundle nodes get. */
#include "cunit_main.h"
#include "test_meta.h"

#include "ferry_fs.h"
#include "ferry_meta.h"
#include "gw_meta.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW INT64_C(1700000100)
#define DAY 86400

struct world {
    struct test_key k1, r1, r2, t1;
    char dir[PATH_MAX];
    char trust[PATH_MAX + 16];
    char *v1, *v2, *v3; /* v1: root r1; v2 and v3: root r2 */
    size_t l1, l2, l3;
};

static char *root_doc(struct world *w, uint64_t v, struct test_key *root, size_t *len, size_t n,
                      struct test_key *a, struct test_key *b)
{
    struct ferry_root r;
    size_t blen = 0;
    test_root_init(&r, v);
    test_root_add(&r, root, FERRY_ROLE_ROOT);
    test_root_add(&r, &w->k1, FERRY_ROLE_RELEASE);
    test_root_add(&r, &w->t1, FERRY_ROLE_TIMESTAMP);
    char *body = test_root_body(&r, &blen);
    char *doc =
        n == 1 ? test_signed_doc(body, blen, len, 1, a) : test_signed_doc(body, blen, len, 2, a, b);
    free(body);
    return doc;
}

/* Devices start with k1's PEM; v1 is signed by k1 (root version 0) and r1;
 * v2 rotates the root key to r2; v3 follows v2. */
static void world_init(struct world *w, unsigned n)
{
    memset(w, 0, sizeof(*w));
    test_key_init(&w->k1, 31);
    test_key_init(&w->r1, 32);
    test_key_init(&w->r2, 33);
    test_key_init(&w->t1, 34);
    snprintf(w->dir, sizeof(w->dir), "%s/gw-%u", ferry_test_tmpdir(), n);
    CU_ASSERT_FATAL(ferry_mkdir_p(w->dir, 0755, NULL) == FERRY_OK);
    snprintf(w->trust, sizeof(w->trust), "%s/trust.pem", w->dir);
    char pem[TEST_PEM_MAX];
    test_key_pem(&w->k1, pem);
    CU_ASSERT_FATAL(ferry_write_atomic(w->trust, pem, strlen(pem), 0644, NULL) == FERRY_OK);
    w->v1 = root_doc(w, 1, &w->r1, &w->l1, 2, &w->k1, &w->r1);
    w->v2 = root_doc(w, 2, &w->r2, &w->l2, 2, &w->r1, &w->r2);
    w->v3 = root_doc(w, 3, &w->r2, &w->l3, 1, &w->r2, NULL);
}

static void world_free(struct world *w)
{
    free(w->v1);
    free(w->v2);
    free(w->v3);
    test_key_free(&w->k1);
    test_key_free(&w->r1);
    test_key_free(&w->r2);
    test_key_free(&w->t1);
}

static struct gw_meta *open_meta(const struct world *w)
{
    struct gw_meta_opts o = {.state_dir = w->dir, .trust_path = w->trust, .clock_skew = 300};
    struct gw_meta *m = NULL;
    struct ferry_diag d = {{0}};
    enum ferry_err err = gw_meta_open(&o, &m, &d);
    if (err != FERRY_OK)
        fprintf(stderr, "open_meta: %s\n", d.msg);
    CU_ASSERT_FATAL(err == FERRY_OK);
    return m;
}

static enum ferry_err root_in(struct gw_meta *m, const char *level, const char *doc, size_t len,
                              size_t *taken)
{
    struct ferry_diag d = {{0}};
    return gw_meta_root(m, level, (const uint8_t *)doc, len, NOW, taken, &d);
}

static void roots_chain_in_any_order_and_survive_a_restart(void)
{
    struct world w;
    world_init(&w, 1);
    struct gw_meta *m = open_meta(&w);
    CU_ASSERT_EQUAL(ferry_trust_version(gw_meta_trust(m)), 0);
    size_t taken = 9;

    /* v3 first: it cannot chain from the keyring yet, so it waits. */
    CU_ASSERT_EQUAL(root_in(m, "3", w.v3, w.l3, &taken), FERRY_OK);
    CU_ASSERT_EQUAL(taken, 0);
    CU_ASSERT_EQUAL(ferry_trust_version(gw_meta_trust(m)), 0);
    /* v2 next: still no chain (its signer r1 is not trusted yet). */
    CU_ASSERT_EQUAL(root_in(m, "2", w.v2, w.l2, &taken), FERRY_OK);
    CU_ASSERT_EQUAL(taken, 0);
    /* v1 brings the whole chain in. */
    CU_ASSERT_EQUAL(root_in(m, "1", w.v1, w.l1, &taken), FERRY_OK);
    CU_ASSERT_EQUAL(taken, 3);
    CU_ASSERT_EQUAL(ferry_trust_version(gw_meta_trust(m)), 3);
    /* Again: nothing changes. */
    CU_ASSERT_EQUAL(root_in(m, "2", w.v2, w.l2, &taken), FERRY_OK);
    CU_ASSERT_EQUAL(root_in(m, "3", w.v3, w.l3, &taken), FERRY_OK);
    CU_ASSERT_EQUAL(taken, 0);
    gw_meta_free(m);

    m = open_meta(&w);
    CU_ASSERT_EQUAL(ferry_trust_version(gw_meta_trust(m)), 3);
    CU_ASSERT_TRUE(ferry_trust_has_timestamp_role(gw_meta_trust(m)));
    gw_meta_free(m);

    /* A stored file that no longer chains is skipped, and the chain stops
     * there. */
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/meta/root-2.json", w.dir);
    CU_ASSERT_FATAL(ferry_write_atomic(path, w.v3, w.l3, 0644, NULL) == FERRY_OK);
    m = open_meta(&w);
    CU_ASSERT_EQUAL(ferry_trust_version(gw_meta_trust(m)), 1);
    gw_meta_free(m);
    world_free(&w);
}

static void wrong_levels_and_old_roots_are_refused(void)
{
    struct world w;
    world_init(&w, 2);
    struct gw_meta *m = open_meta(&w);
    size_t taken = 0;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(gw_meta_root(m, "x", (const uint8_t *)w.v1, w.l1, NOW, &taken, &d),
                    FERRY_E_PROTOCOL);
    CU_ASSERT_EQUAL(gw_meta_root(m, "01", (const uint8_t *)w.v1, w.l1, NOW, &taken, &d),
                    FERRY_E_PROTOCOL);
    CU_ASSERT_EQUAL(root_in(m, "1", w.v1, w.l1, &taken), FERRY_OK);
    CU_ASSERT_EQUAL(root_in(m, "2", w.v2, w.l2, &taken), FERRY_OK);
    /* A document of version 1 on another topic level of the past. */
    CU_ASSERT_EQUAL(gw_meta_root(m, "1", (const uint8_t *)w.v3, w.l3, NOW, &taken, &d),
                    FERRY_E_STALE);
    /* Garbage on the topic of the next version. */
    CU_ASSERT_NOT_EQUAL(gw_meta_root(m, "3", (const uint8_t *)"{}", 2, NOW, &taken, &d), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_trust_version(gw_meta_trust(m)), 2);
    gw_meta_free(m);
    world_free(&w);
}

static char *ts_doc(struct world *w, const char *product, uint64_t v, int64_t issued, size_t *len)
{
    struct ferry_timestamp ts;
    test_ts_init(&ts, product, v, issued, DAY);
    return test_ts_doc(&ts, &w->t1, len);
}

static void timestamps_are_kept_per_product_and_never_go_back(void)
{
    struct world w;
    world_init(&w, 3);
    struct gw_meta *m = open_meta(&w);
    size_t taken = 0, len = 0;
    bool changed = false;
    struct ferry_diag d = {{0}};
    char *doc = ts_doc(&w, "meter", 5, NOW - 10, &len);
    /* No timestamp role yet (a keyring): it waits for the root that brings
     * one, as its retained message will not come again. */
    CU_ASSERT_EQUAL(gw_meta_timestamp(m, "meter", (const uint8_t *)doc, len, NOW, &changed, &d),
                    FERRY_E_UNKNOWN_KEY);
    CU_ASSERT_PTR_NULL(ferry_trust_timestamp(gw_meta_trust(m), "meter", NULL, NULL));
    CU_ASSERT_EQUAL(root_in(m, "1", w.v1, w.l1, &taken), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(ferry_trust_timestamp(gw_meta_trust(m), "meter", NULL, NULL));
    CU_ASSERT_EQUAL(gw_meta_timestamp(m, "valve", (const uint8_t *)doc, len, NOW, &changed, &d),
                    FERRY_E_PROTOCOL);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "'meter'"));
    CU_ASSERT_FALSE(changed);
    /* The retained message again: held already, stored already. */
    CU_ASSERT_EQUAL(gw_meta_timestamp(m, "meter", (const uint8_t *)doc, len, NOW, &changed, &d),
                    FERRY_OK);
    CU_ASSERT_FALSE(changed);
    free(doc);
    gw_meta_free(m);

    /* A day later it has expired; after a restart it still bars v4. */
    m = open_meta(&w);
    CU_ASSERT_PTR_NOT_NULL(ferry_trust_timestamp(gw_meta_trust(m), "meter", NULL, NULL));
    doc = ts_doc(&w, "meter", 4, NOW + DAY, &len);
    CU_ASSERT_EQUAL(
        gw_meta_timestamp(m, "meter", (const uint8_t *)doc, len, NOW + DAY, &changed, &d),
        FERRY_E_STALE);
    free(doc);
    doc = ts_doc(&w, "meter", 6, NOW + DAY, &len);
    CU_ASSERT_EQUAL(
        gw_meta_timestamp(m, "meter", (const uint8_t *)doc, len, NOW + DAY, &changed, &d),
        FERRY_OK);
    free(doc);
    gw_meta_free(m);
    world_free(&w);
}

static void a_node_gets_the_roots_it_lacks_and_the_timestamp(void)
{
    struct world w;
    world_init(&w, 4);
    struct gw_meta *m = open_meta(&w);
    size_t taken = 0, len = 0;
    bool changed = false;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(root_in(m, "1", w.v1, w.l1, &taken), FERRY_OK);
    CU_ASSERT_EQUAL(root_in(m, "2", w.v2, w.l2, &taken), FERRY_OK);
    char *doc = ts_doc(&w, "meter", 5, NOW - 10, &len);
    CU_ASSERT_EQUAL(gw_meta_timestamp(m, "meter", (const uint8_t *)doc, len, NOW, &changed, &d),
                    FERRY_OK);

    uint8_t *out = NULL;
    size_t out_len = 0;
    struct ferry_meta *b = NULL;
    CU_ASSERT_EQUAL_FATAL(gw_meta_bundle(m, "meter", 0, &out, &out_len, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(ferry_meta_parse(out, out_len, &b, &d), FERRY_OK);
    CU_ASSERT_EQUAL(b->nroots, 2);
    CU_ASSERT_TRUE(b->roots[0].len == w.l1 && memcmp(b->roots[0].buf, w.v1, w.l1) == 0);
    CU_ASSERT_TRUE(b->roots[1].len == w.l2 && memcmp(b->roots[1].buf, w.v2, w.l2) == 0);
    CU_ASSERT_TRUE(b->timestamp.len == len && memcmp(b->timestamp.buf, doc, len) == 0);
    ferry_meta_free(b);
    free(out);

    /* What a device holding v1 gets: v2 only. Another product: no timestamp. */
    CU_ASSERT_EQUAL_FATAL(gw_meta_bundle(m, "valve", 1, &out, &out_len, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(ferry_meta_parse(out, out_len, &b, &d), FERRY_OK);
    CU_ASSERT_EQUAL(b->nroots, 1);
    CU_ASSERT_PTR_NULL(b->timestamp.buf);
    ferry_meta_free(b);
    free(out);

    /* A device that feeds the bundle to its own trust ends where we are. */
    char pem[TEST_PEM_MAX];
    test_key_pem(&w.k1, pem);
    struct ferry_trust *node = NULL;
    CU_ASSERT_FATAL(ferry_trust_new((const uint8_t *)pem, strlen(pem), 1, &node, NULL) == FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(gw_meta_bundle(m, "meter", 0, &out, &out_len, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(ferry_meta_parse(out, out_len, &b, &d), FERRY_OK);
    for (size_t i = 0; i < b->nroots; i++)
        CU_ASSERT_EQUAL(
            ferry_trust_update_root(node, b->roots[i].buf, b->roots[i].len, &changed, &d),
            FERRY_OK);
    CU_ASSERT_EQUAL(ferry_trust_update_timestamp(node, b->timestamp.buf, b->timestamp.len, NOW, 300,
                                                 false, &changed, &d),
                    FERRY_OK);
    CU_ASSERT_EQUAL(ferry_trust_version(node), 2);
    ferry_meta_free(b);
    free(out);
    ferry_trust_free(node);
    free(doc);
    gw_meta_free(m);
    world_free(&w);
}

const char *const ferry_suite_name = "gw_meta";
const struct ferry_test_case ferry_tests[] = {
    {"roots_chain_in_any_order_and_survive_a_restart",
     roots_chain_in_any_order_and_survive_a_restart},
    {"wrong_levels_and_old_roots_are_refused", wrong_levels_and_old_roots_are_refused},
    {"timestamps_are_kept_per_product_and_never_go_back",
     timestamps_are_kept_per_product_and_never_go_back},
    {"a_node_gets_the_roots_it_lacks_and_the_timestamp",
     a_node_gets_the_roots_it_lacks_and_the_timestamp},
    {NULL, NULL},
};
