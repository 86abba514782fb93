#include "cunit_main.h"

#include "ferry_idmap.h"

#include <stdio.h>
#include <string.h>

static void puts_gets_and_grows(void)
{
    struct ferry_idmap *m = NULL;
    CU_ASSERT_FATAL(ferry_idmap_new(4, 42, &m, NULL) == FERRY_OK);
    char key[32];
    for (uint32_t i = 0; i < 50000; i++) {
        snprintf(key, sizeof(key), "node-%u", i);
        CU_ASSERT_EQUAL_FATAL(ferry_idmap_put(m, key, i * 3), FERRY_OK);
    }
    CU_ASSERT_EQUAL(ferry_idmap_count(m), 50000);
    for (uint32_t i = 0; i < 50000; i += 7) {
        uint32_t v = 0;
        snprintf(key, sizeof(key), "node-%u", i);
        CU_ASSERT_TRUE(ferry_idmap_get(m, key, &v));
        CU_ASSERT_EQUAL(v, i * 3);
    }
    CU_ASSERT_FALSE(ferry_idmap_get(m, "node-50000", NULL));
    CU_ASSERT_FALSE(ferry_idmap_get(m, "node-", NULL)); /* a prefix is not a key */
    /* Setting again replaces, and counts once. */
    CU_ASSERT_EQUAL(ferry_idmap_put(m, "node-7", 1), FERRY_OK);
    uint32_t v = 0;
    CU_ASSERT_TRUE(ferry_idmap_get(m, "node-7", &v));
    CU_ASSERT_EQUAL(v, 1);
    CU_ASSERT_EQUAL(ferry_idmap_count(m), 50000);
    ferry_idmap_free(m);
}

static void refuses_bad_keys(void)
{
    struct ferry_idmap *m = NULL;
    CU_ASSERT_FATAL(ferry_idmap_new(0, 1, &m, NULL) == FERRY_OK);
    char long_key[80];
    memset(long_key, 'a', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = 0;
    CU_ASSERT_EQUAL(ferry_idmap_put(m, "", 1), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_idmap_put(m, NULL, 1), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_idmap_put(m, long_key, 1), FERRY_E_INVALID_ARG);
    CU_ASSERT_FALSE(ferry_idmap_get(m, long_key, NULL));
    long_key[64] = 0; /* exactly the longest */
    CU_ASSERT_EQUAL(ferry_idmap_put(m, long_key, 9), FERRY_OK);
    CU_ASSERT_TRUE(ferry_idmap_get(m, long_key, NULL));
    ferry_idmap_free(m);
}

const char *const ferry_suite_name = "idmap";
const struct ferry_test_case ferry_tests[] = {
    {"puts_gets_and_grows", puts_gets_and_grows},
    {"refuses_bad_keys", refuses_bad_keys},
    {NULL, NULL},
};
