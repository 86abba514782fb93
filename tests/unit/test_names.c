#include "cunit_main.h"

#include "ferry_names.h"

#include <string.h>

static void id_valid_accepts_allowed_characters(void)
{
    CU_ASSERT_TRUE(ferry_id_valid("a"));
    CU_ASSERT_TRUE(ferry_id_valid("gw-01.site_A"));
    CU_ASSERT_TRUE(ferry_id_valid("0"));
    CU_ASSERT_TRUE(ferry_id_valid("a..b"));
    char max[FERRY_ID_MAX + 1];
    memset(max, 'x', FERRY_ID_MAX);
    max[FERRY_ID_MAX] = 0;
    CU_ASSERT_TRUE(ferry_id_valid(max));
}

static void id_valid_rejects_bad_ids(void)
{
    static const char *const bad[] = {
        "", ".", "..", ".hidden", "a/b", "a b", "+", "#", "a+", "$SYS", "é", "a\tb", "a\\b", "a:b",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_FALSE(ferry_id_valid(bad[i]));
    }
    CU_ASSERT_FALSE(ferry_id_valid(NULL));
    char over[FERRY_ID_MAX + 2];
    memset(over, 'x', FERRY_ID_MAX + 1);
    over[FERRY_ID_MAX + 1] = 0;
    CU_ASSERT_FALSE(ferry_id_valid(over));
}

static void topic_builds_every_kind(void)
{
    static const struct {
        enum ferry_topic which;
        const char *sub, *node, *want;
    } cases[] = {
        {FERRY_TOPIC_RELEASE, "meter", NULL, "ferry/v1/f1/release/meter"},
        {FERRY_TOPIC_STREAM_REQ, "gw1", NULL, "ferry/v1/f1/stream/req/gw1"},
        {FERRY_TOPIC_STREAM_DATA, "gw1", NULL, "ferry/v1/f1/stream/data/gw1"},
        {FERRY_TOPIC_STATUS, "gw1", NULL, "ferry/v1/f1/status/gw1"},
        {FERRY_TOPIC_STATUS_ACK, "gw1", NULL, "ferry/v1/f1/status-ack/gw1"},
        {FERRY_TOPIC_PRESENCE, "gw1", NULL, "ferry/v1/f1/presence/gw1"},
        {FERRY_TOPIC_NODE, "gw1", "n1", "ferry/v1/f1/node/gw1/n1"},
        {FERRY_TOPIC_STATUS, "+", NULL, "ferry/v1/f1/status/+"},
        {FERRY_TOPIC_NODE, "+", "+", "ferry/v1/f1/node/+/+"},
        {FERRY_TOPIC_NODE, "gw1", "+", "ferry/v1/f1/node/gw1/+"},
        {FERRY_TOPIC_META_ROOT, "3", NULL, "ferry/v1/f1/root/3"},
        {FERRY_TOPIC_META_TIMESTAMP, "meter", NULL, "ferry/v1/f1/timestamp/meter"},
        {FERRY_TOPIC_META_TIMESTAMP, "+", NULL, "ferry/v1/f1/timestamp/+"},
        {FERRY_TOPIC_NODE_INFO, "gw1", "n1", "ferry/v1/f1/node-info/gw1/n1"},
        {FERRY_TOPIC_ROLLOUT, "gw1", "firmware", "ferry/v1/f1/rollout/gw1/firmware"},
        {FERRY_TOPIC_ROLLOUT, "gw1", "+", "ferry/v1/f1/rollout/gw1/+"},
        {FERRY_TOPIC_ROLLOUT_REPORT, "gw1", NULL, "ferry/v1/f1/rollout-report/gw1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[FERRY_TOPIC_MAX];
        CU_ASSERT_EQUAL_FATAL(
            ferry_topic(out, sizeof(out), cases[i].which, "f1", cases[i].sub, cases[i].node),
            FERRY_OK);
        CU_ASSERT_STRING_EQUAL(out, cases[i].want);
    }
}

static void topic_rejects_bad_levels_and_leaves_out_alone(void)
{
    char out[FERRY_TOPIC_MAX];
    strcpy(out, "untouched");
    CU_ASSERT_EQUAL(ferry_topic(out, sizeof(out), FERRY_TOPIC_STATUS, "+", "gw1", NULL),
                    FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_topic(out, sizeof(out), FERRY_TOPIC_STATUS, "f/1", "gw1", NULL),
                    FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_topic(out, sizeof(out), FERRY_TOPIC_STATUS, "f1", "#", NULL),
                    FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_topic(out, sizeof(out), FERRY_TOPIC_STATUS, "f1", "a/b", NULL),
                    FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_topic(out, sizeof(out), FERRY_TOPIC_STATUS, "f1", NULL, NULL),
                    FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_topic(out, sizeof(out), FERRY_TOPIC_NODE, "f1", "gw1", NULL),
                    FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_topic(out, sizeof(out), FERRY_TOPIC_NODE, "f1", "gw1", ".."),
                    FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_topic(out, sizeof(out), (enum ferry_topic)99, "f1", "gw1", NULL),
                    FERRY_E_INVALID_ARG);
    CU_ASSERT_STRING_EQUAL(out, "untouched");
}

static void topic_reports_small_buffer(void)
{
    const char *want = "ferry/v1/f1/status/gw1";
    size_t need = strlen(want) + 1;
    char out[FERRY_TOPIC_MAX];
    strcpy(out, "untouched");
    CU_ASSERT_EQUAL(ferry_topic(out, need - 1, FERRY_TOPIC_STATUS, "f1", "gw1", NULL),
                    FERRY_E_TOO_LARGE);
    CU_ASSERT_STRING_EQUAL(out, "untouched");
    CU_ASSERT_EQUAL(ferry_topic(out, need, FERRY_TOPIC_STATUS, "f1", "gw1", NULL), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(out, want);
}

static void longest_topic_fits_topic_max(void)
{
    char id[FERRY_ID_MAX + 1];
    memset(id, 'z', FERRY_ID_MAX);
    id[FERRY_ID_MAX] = 0;
    char out[FERRY_TOPIC_MAX];
    CU_ASSERT_EQUAL_FATAL(ferry_topic(out, sizeof(out), FERRY_TOPIC_NODE, id, id, id), FERRY_OK);
    CU_ASSERT_EQUAL(strlen(out), strlen("ferry/v1//node//") + 3 * FERRY_ID_MAX);
    CU_ASSERT_EQUAL_FATAL(ferry_topic(out, sizeof(out), FERRY_TOPIC_STREAM_DATA, id, id, NULL),
                          FERRY_OK);
    CU_ASSERT_EQUAL(strlen(out), strlen("ferry/v1//stream/data/") + 2 * FERRY_ID_MAX);
}

static void shared_prefixes_group(void)
{
    char filter[FERRY_TOPIC_MAX], out[FERRY_TOPIC_MAX];
    CU_ASSERT_EQUAL_FATAL(ferry_topic(filter, sizeof(filter), FERRY_TOPIC_STATUS, "f1", "+", NULL),
                          FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(ferry_topic_shared(out, sizeof(out), filter), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(out, "$share/" FERRY_SHARE_GROUP "/ferry/v1/f1/status/+");
}

static void shared_rejects_foreign_filters_and_small_buffers(void)
{
    char out[FERRY_TOPIC_MAX];
    strcpy(out, "untouched");
    CU_ASSERT_EQUAL(ferry_topic_shared(out, sizeof(out), ""), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_topic_shared(out, sizeof(out), "other/topic"), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_topic_shared(out, sizeof(out), "$share/g/ferry/v1/f1/status/+"),
                    FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_topic_shared(out, sizeof(out), "ferry/v10/x"), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_topic_shared(out, 10, "ferry/v1/f1/status/+"), FERRY_E_TOO_LARGE);
    CU_ASSERT_STRING_EQUAL(out, "untouched");
}

static void last_level_extracts_id(void)
{
    char topic[FERRY_TOPIC_MAX], out[FERRY_ID_MAX + 1];
    CU_ASSERT_EQUAL_FATAL(ferry_topic(topic, sizeof(topic), FERRY_TOPIC_STATUS, "f1", "gw-7", NULL),
                          FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(ferry_topic_last_level(topic, out, sizeof(out)), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(out, "gw-7");
    CU_ASSERT_EQUAL_FATAL(ferry_topic_last_level("single", out, sizeof(out)), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(out, "single");
}

static void last_level_rejects_non_ids(void)
{
    static const char *const bad[] = {
        "ferry/v1/f1/status/", "ferry/v1/f1/status/+", "ferry/v1/f1/status/..", "", "a/#",
    };
    char out[FERRY_ID_MAX + 1];
    strcpy(out, "untouched");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_EQUAL(ferry_topic_last_level(bad[i], out, sizeof(out)), FERRY_E_INVALID_ARG);
    }
    CU_ASSERT_EQUAL(ferry_topic_last_level("a/gw1", out, 3), FERRY_E_TOO_LARGE);
    CU_ASSERT_STRING_EQUAL(out, "untouched");
    CU_ASSERT_EQUAL(ferry_topic_last_level("a/gw1", out, 4), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(out, "gw1");
}

const char *const ferry_suite_name = "names";
const struct ferry_test_case ferry_tests[] = {
    {"id_valid_accepts_allowed_characters", id_valid_accepts_allowed_characters},
    {"id_valid_rejects_bad_ids", id_valid_rejects_bad_ids},
    {"topic_builds_every_kind", topic_builds_every_kind},
    {"topic_rejects_bad_levels_and_leaves_out_alone",
     topic_rejects_bad_levels_and_leaves_out_alone},
    {"topic_reports_small_buffer", topic_reports_small_buffer},
    {"longest_topic_fits_topic_max", longest_topic_fits_topic_max},
    {"shared_prefixes_group", shared_prefixes_group},
    {"shared_rejects_foreign_filters_and_small_buffers",
     shared_rejects_foreign_filters_and_small_buffers},
    {"last_level_extracts_id", last_level_extracts_id},
    {"last_level_rejects_non_ids", last_level_rejects_non_ids},
    {NULL, NULL},
};
