/* Configuration reports (ferry_config_report.h) and what the cloud keeps of
 * them (cloud_config.h): the last report of a healthy node, never an older
 * one, never an unhealthy one. */
#include "cunit_main.h"

#include "cloud_config.h"
#include "db_fixture.h"
#include "ferry_config_report.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct ferry_config_report report(const char *node, int64_t ts, bool healthy,
                                         const char *props)
{
    struct ferry_config_report r;
    memset(&r, 0, sizeof(r));
    snprintf(r.node, sizeof(r.node), "%s", node);
    snprintf(r.gateway, sizeof(r.gateway), "gw-1");
    snprintf(r.path, sizeof(r.path), "/var/lib/ferry-edge/node.cfg");
    snprintf(r.properties, sizeof(r.properties), "%s", props);
    r.ts = ts;
    r.healthy = healthy;
    return r;
}

static void report_round_trips_and_is_checked(void)
{
    struct ferry_config_report r = report("node-7", 1795780800, true, "id=node-7\nx=\"q\"\n"), back;
    char *json = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(ferry_config_report_encode(&r, &json, &len, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_config_report_decode((const uint8_t *)json, len, &back, NULL), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(back.properties, r.properties);
    CU_ASSERT_STRING_EQUAL(back.path, r.path);
    CU_ASSERT_STRING_EQUAL(back.gateway, "gw-1");
    CU_ASSERT_TRUE(back.healthy);
    CU_ASSERT_EQUAL(back.ts, r.ts);
    free(json);
    struct ferry_diag d = {{0}};
    r.path[0] = 'x';
    CU_ASSERT_EQUAL(ferry_config_report_encode(&r, &json, &len, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "path"));
    r = report("node-7", 1, true, "");
    CU_ASSERT_EQUAL(ferry_config_report_encode(&r, &json, &len, &d), FERRY_E_INVALID_ARG);
    /* A properties file too large for one report. */
    r = report("node-7", 1, true, "");
    memset(r.properties, 'a', FERRY_CONFIG_PROPERTIES_MAX);
    r.properties[FERRY_CONFIG_PROPERTIES_MAX] = '\0';
    for (size_t i = 0; i < FERRY_CONFIG_PROPERTIES_MAX; i += 2)
        r.properties[i] = '\n'; /* escapes make it grow past the cap */
    CU_ASSERT_EQUAL(ferry_config_report_encode(&r, &json, &len, &d), FERRY_E_TOO_LARGE);
    static const char *const bad[] = {
        "{\"format\":2,\"node\":\"n\",\"healthy\":true,\"ts\":1,\"path\":\"/"
        "a\",\"properties\":\"x\"}",
        "{\"format\":1,\"node\":\"n "
        "n\",\"healthy\":true,\"ts\":1,\"path\":\"/a\",\"properties\":\"x\"}",
        "{\"format\":1,\"node\":\"n\",\"healthy\":1,\"ts\":1,\"path\":\"/a\",\"properties\":\"x\"}",
        "{\"format\":1,\"node\":\"n\",\"healthy\":true,\"ts\":1,\"path\":\"/"
        "a\",\"properties\":\"x\","
        "\"extra\":1}",
        "{\"format\":1,\"node\":\"n\",\"healthy\":true,\"ts\":1,\"path\":\"a\",\"properties\":"
        "\"x\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_EQUAL(
            ferry_config_report_decode((const uint8_t *)bad[i], strlen(bad[i]), &back, NULL),
            FERRY_E_MALFORMED);
    const char *ext = "{\"format\":1,\"node\":\"n\",\"healthy\":true,\"ts\":1,\"path\":\"/a\","
                      "\"properties\":\"x\",\"x-later\":1}";
    CU_ASSERT_EQUAL(ferry_config_report_decode((const uint8_t *)ext, strlen(ext), &back, NULL),
                    FERRY_OK);
}

static void cloud_keeps_the_last_healthy_copy(void)
{
    char db[PATH_MAX + 128];
    snprintf(db, sizeof(db), "%s", ferry_test_db("inventory"));
    struct cloud_config *c = NULL;
    struct ferry_diag d = {{0}};
    /* no file (SQLite), a database without Ferry's tables (PostgreSQL) */
    CU_ASSERT_EQUAL(cloud_config_open(db, false, &c, &d),
                    ferry_test_db_is_pg() ? FERRY_E_CORRUPT : FERRY_E_NOT_FOUND);
    CU_ASSERT_EQUAL_FATAL(cloud_config_open(db, true, &c, &d), FERRY_OK);
    struct ferry_config_report got;
    CU_ASSERT_EQUAL(cloud_config_get(c, "node-7", &got, &d), FERRY_E_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "never reported"));
    bool kept = false;
    struct ferry_config_report r = report("node-7", 100, true, "id=node-7\nv=1\n");
    CU_ASSERT_EQUAL(cloud_config_ingest(c, &r, &kept, NULL), FERRY_OK);
    CU_ASSERT_TRUE(kept);
    /* Not healthy: not kept. */
    r = report("node-7", 200, false, "id=node-7\nv=broken\n");
    CU_ASSERT_EQUAL(cloud_config_ingest(c, &r, &kept, NULL), FERRY_OK);
    CU_ASSERT_FALSE(kept);
    /* Older than the one kept (a late retained message): not kept. */
    r = report("node-7", 50, true, "id=node-7\nv=0\n");
    CU_ASSERT_EQUAL(cloud_config_ingest(c, &r, &kept, NULL), FERRY_OK);
    CU_ASSERT_FALSE(kept);
    CU_ASSERT_EQUAL(cloud_config_get(c, "node-7", &got, NULL), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(got.properties, "id=node-7\nv=1\n");
    r = report("node-7", 300, true, "id=node-7\nv=2\n");
    CU_ASSERT_EQUAL(cloud_config_ingest(c, &r, &kept, NULL), FERRY_OK);
    CU_ASSERT_TRUE(kept);
    cloud_config_close(c);
    /* Reopened (as `ferry-cloud config` does): the newest healthy copy. */
    CU_ASSERT_EQUAL_FATAL(cloud_config_open(db, false, &c, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(cloud_config_get(c, "node-7", &got, NULL), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(got.properties, "id=node-7\nv=2\n");
    CU_ASSERT_EQUAL(got.ts, 300);
    CU_ASSERT_STRING_EQUAL(got.path, "/var/lib/ferry-edge/node.cfg");
    cloud_config_close(c);
}

const char *const ferry_suite_name = "cloud_config";
const struct ferry_test_case ferry_tests[] = {
    {"report round trips and is checked", report_round_trips_and_is_checked},
    {"cloud keeps the last healthy copy", cloud_keeps_the_last_healthy_copy},
    {NULL, NULL},
};
