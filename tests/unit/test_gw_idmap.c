#include "cunit_main.h"

#include "gw_idmap.h"

#include <stdio.h>
#include <string.h>

static void ids_map_to_slots_and_back(void)
{
    struct gw_idmap *m = NULL;
    CU_ASSERT_FATAL(gw_idmap_new(3, &m) == FERRY_OK);
    CU_ASSERT_EQUAL(gw_idmap_cap(m), 3);
    uint32_t a = gw_idmap_add(m, "node-a"), b = gw_idmap_add(m, "@10.0.0.1");
    CU_ASSERT(a < 3 && b < 3 && a != b);
    CU_ASSERT_EQUAL(gw_idmap_find(m, "node-a"), a);
    CU_ASSERT_EQUAL(gw_idmap_find(m, "@10.0.0.1"), b);
    CU_ASSERT_EQUAL(gw_idmap_find(m, "node-b"), GW_IDMAP_NONE);
    CU_ASSERT_STRING_EQUAL(gw_idmap_id(m, a), "node-a");
    uint32_t c = gw_idmap_add(m, "node-c");
    CU_ASSERT(c < 3);
    CU_ASSERT_EQUAL(gw_idmap_count(m), 3);
    /* Full: the owner must make room. */
    CU_ASSERT_EQUAL(gw_idmap_add(m, "node-d"), GW_IDMAP_NONE);
    gw_idmap_remove(m, a);
    gw_idmap_remove(m, a); /* twice: nothing */
    CU_ASSERT_EQUAL(gw_idmap_count(m), 2);
    CU_ASSERT_EQUAL(gw_idmap_find(m, "node-a"), GW_IDMAP_NONE);
    CU_ASSERT_STRING_EQUAL(gw_idmap_id(m, a), "");
    CU_ASSERT_EQUAL(gw_idmap_add(m, "node-d"), a);
    CU_ASSERT_EQUAL(gw_idmap_find(m, "node-d"), a);
    CU_ASSERT_EQUAL(gw_idmap_find(m, "node-c"), c);
    gw_idmap_free(m);
    gw_idmap_free(NULL);
}

static void ids_are_bounded(void)
{
    struct gw_idmap *m = NULL;
    CU_ASSERT_EQUAL(gw_idmap_new(0, &m), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(gw_idmap_new(GW_IDMAP_MAX + 1, &m), FERRY_E_INVALID_ARG);
    CU_ASSERT_FATAL(gw_idmap_new(4, &m) == FERRY_OK);
    char longest[GW_IDMAP_ID_MAX + 2];
    memset(longest, 'x', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0';
    CU_ASSERT(!gw_idmap_id_valid(longest));
    CU_ASSERT_EQUAL(gw_idmap_add(m, longest), GW_IDMAP_NONE);
    CU_ASSERT_EQUAL(gw_idmap_find(m, longest), GW_IDMAP_NONE);
    longest[GW_IDMAP_ID_MAX] = '\0';
    CU_ASSERT(gw_idmap_id_valid(longest));
    CU_ASSERT(gw_idmap_add(m, longest) != GW_IDMAP_NONE);
    CU_ASSERT(!gw_idmap_id_valid(""));
    CU_ASSERT(!gw_idmap_id_valid(NULL));
    CU_ASSERT_EQUAL(gw_idmap_add(m, ""), GW_IDMAP_NONE);
    gw_idmap_free(m);
}

/* Many identities in and out, against a plain array as the model. */
static void churn_matches_a_model(void)
{
    enum { CAP = 1000, ROUNDS = 20000 };
    struct gw_idmap *m = NULL;
    CU_ASSERT_FATAL(gw_idmap_new(CAP, &m) == FERRY_OK);
    static uint32_t slot_of[4 * CAP];
    for (size_t i = 0; i < 4 * CAP; i++)
        slot_of[i] = GW_IDMAP_NONE;
    uint32_t rnd = 1;
    size_t live = 0;
    char id[32];
    for (int r = 0; r < ROUNDS; r++) {
        rnd = rnd * 1103515245u + 12345u;
        size_t k = (rnd >> 8) % (4 * CAP);
        snprintf(id, sizeof(id), "node-%zu", k);
        if (slot_of[k] != GW_IDMAP_NONE) {
            CU_ASSERT_EQUAL_FATAL(gw_idmap_find(m, id), slot_of[k]);
            gw_idmap_remove(m, slot_of[k]);
            slot_of[k] = GW_IDMAP_NONE;
            live--;
        } else if (live < CAP) {
            CU_ASSERT_EQUAL_FATAL(gw_idmap_find(m, id), GW_IDMAP_NONE);
            slot_of[k] = gw_idmap_add(m, id);
            CU_ASSERT_FATAL(slot_of[k] < CAP);
            live++;
        }
        CU_ASSERT_EQUAL_FATAL(gw_idmap_count(m), live);
    }
    for (size_t k = 0; k < 4 * CAP; k++) {
        snprintf(id, sizeof(id), "node-%zu", k);
        CU_ASSERT_EQUAL_FATAL(gw_idmap_find(m, id), slot_of[k]);
    }
    gw_idmap_free(m);
}

const struct ferry_test_case ferry_tests[] = {
    {"ids_map_to_slots_and_back", ids_map_to_slots_and_back},
    {"ids_are_bounded", ids_are_bounded},
    {"churn_matches_a_model", churn_matches_a_model},
    {NULL, NULL},
};

const char *const ferry_suite_name = "gw_idmap";
