/* ferry-gateway's settings: the numbers that are converted later (MiB to
 * bytes, 64 to 32 bits) are refused when the conversion would wrap. */
#include "cunit_main.h"

#include "gw_config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define MAX_ARGS 24

/* Parses the required flags plus extra ones; cfg is the caller's to free. */
static enum ferry_err parse(struct gw_config *cfg, const char *const *extra, struct ferry_diag *d)
{
    char *argv[MAX_ARGS];
    int argc = 0;
    static const char *const base[] = {
        "ferry-gateway", "--broker",    "mqtt://127.0.0.1:1883",
        "--fleet",       "f1",          "--id",
        "gw-1",          "--cache-dir", "/tmp/c",
        "--state-dir",   "/tmp/s",      "--trust",
        "/tmp/k.pub",    NULL,
    };
    for (size_t i = 0; base[i]; i++)
        argv[argc++] = (char *)(uintptr_t)base[i];
    for (size_t i = 0; extra && extra[i] && argc < MAX_ARGS - 1; i++)
        argv[argc++] = (char *)(uintptr_t)extra[i];
    argv[argc] = NULL;
    bool help = false;
    memset(cfg, 0, sizeof(*cfg));
    return gw_config_parse(cfg, argc, argv, &help, d);
}

static enum ferry_err parse_one(const char *flag, const char *value, struct ferry_diag *d)
{
    struct gw_config cfg;
    const char *const extra[] = {flag, value, NULL};
    enum ferry_err err = parse(&cfg, extra, d);
    gw_config_free(&cfg);
    return err;
}

static void defaults_parse(void)
{
    struct gw_config cfg;
    struct ferry_diag d = {""};
    CU_ASSERT_EQUAL_FATAL(parse(&cfg, NULL, &d), FERRY_OK);
    CU_ASSERT_EQUAL(cfg.cache_quota_mb, 1024);
    CU_ASSERT_EQUAL(cfg.max_downloads, 8);
    gw_config_free(&cfg);
}

/* 2^44 MiB << 20 is 2^64: it wrapped to a zero-byte cache; 2^44 + 1 MiB to
 * a 1 MiB one. */
static void cache_quota_that_would_wrap_is_refused(void)
{
    struct ferry_diag d = {""};
    CU_ASSERT_EQUAL(parse_one("--cache-quota-mb", "17592186044416", &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "--cache-quota-mb"));
    CU_ASSERT_EQUAL(parse_one("--cache-quota-mb", "17592186044417", &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(parse_one("--cache-quota-mb", "18446744073709551615", &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(parse_one("--cache-quota-mb", "0", &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(parse_one("--cache-quota-mb", "16777216", &d), FERRY_OK);
    CU_ASSERT_EQUAL(parse_one("--cache-quota-mb", "16777217", &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(parse_one("--cache-quota-mb", "1", &d), FERRY_OK);
}

/* The CoAP server takes a 32-bit count: 2^32 + 1 became 1 download. */
static void max_downloads_that_would_wrap_is_refused(void)
{
    struct ferry_diag d = {""};
    CU_ASSERT_EQUAL(parse_one("--max-downloads", "4294967297", &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "--max-downloads"));
    CU_ASSERT_EQUAL(parse_one("--max-downloads", "4294967296", &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(parse_one("--max-downloads", "0", &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(parse_one("--max-downloads", "1024", &d), FERRY_OK);
    CU_ASSERT_EQUAL(parse_one("--max-downloads", "1025", &d), FERRY_E_INVALID_ARG);
}

/* Each of --max-nodes gets an equal share of the outbox: a share smaller
 * than one record is refused, naming the flags to change. */
static void max_nodes_must_leave_each_a_record(void)
{
    struct ferry_diag d = {""};
    CU_ASSERT_EQUAL(parse_one("--max-nodes", "0", &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(parse_one("--max-nodes", "100001", &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(parse_one("--max-nodes", "64000", &d), FERRY_OK);
    CU_ASSERT_EQUAL(parse_one("--max-nodes", "65000", &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "--outbox-max-mb"));
    struct gw_config cfg;
    const char *const small[] = {"--max-nodes", "50", "--outbox-max-records", "49", NULL};
    CU_ASSERT_EQUAL(parse(&cfg, small, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "--outbox-max-records"));
    gw_config_free(&cfg);
}

/* The gateway's own update: its product needs its hardware model, and its
 * device settings need its product. */
static void self_update_settings_go_together(void)
{
    struct ferry_diag d = {""};
    struct gw_config cfg;
    const char *const ok[] = {"--self-product", "gateway-fw", "--self-hw-model", "m1", NULL};
    CU_ASSERT_EQUAL_FATAL(parse(&cfg, ok, &d), FERRY_OK);
    CU_ASSERT_EQUAL(cfg.self_max_image_mb, 256);
    CU_ASSERT_EQUAL(cfg.self_health_timeout, 300);
    gw_config_free(&cfg);
    const char *const no_model[] = {"--self-product", "gateway-fw", NULL};
    CU_ASSERT_EQUAL(parse(&cfg, no_model, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "--self-hw-model"));
    gw_config_free(&cfg);
    const char *const bad_id[] = {"--self-product", "gw fw", "--self-hw-model", "m1", NULL};
    CU_ASSERT_EQUAL(parse(&cfg, bad_id, &d), FERRY_E_INVALID_ARG);
    gw_config_free(&cfg);
    CU_ASSERT_EQUAL(parse_one("--self-slot-b", "/dev/sda3", &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "--self-product"));
    CU_ASSERT_EQUAL(parse_one("--self-health-cmd", "true", &d), FERRY_E_INVALID_ARG);
}

const char *const ferry_suite_name = "gw_config";
const struct ferry_test_case ferry_tests[] = {
    {"defaults_parse", defaults_parse},
    {"self-update settings go together", self_update_settings_go_together},
    {"cache_quota_that_would_wrap_is_refused", cache_quota_that_would_wrap_is_refused},
    {"max_downloads_that_would_wrap_is_refused", max_downloads_that_would_wrap_is_refused},
    {"max_nodes_must_leave_each_a_record", max_nodes_must_leave_each_a_record},
    {NULL, NULL},
};
