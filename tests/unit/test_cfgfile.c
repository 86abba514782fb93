#include "cunit_main.h"

#include "ferry_cfgfile.h"
#include "ferry_fs.h"
#include "ferry_log.h"
#include "ferry_opts.h"

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes text to a fresh file under the test folder; returns its path
 * (static storage, overwritten by the next call). */
static const char *write_cfg(const char *name, const char *text)
{
    static char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", ferry_test_tmpdir(), name);
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(path, text, strlen(text), 0600, NULL), FERRY_OK);
    return path;
}

static const struct ferry_kv *find_kv(const struct ferry_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(kv[i].key, key) == 0)
            return &kv[i];
    }
    return NULL;
}

/* ---- ferry_cfgfile_load -------------------------------------------------- */

static void load_reads_every_allowed_type(void)
{
    const char *path = write_cfg("types.json", "{\"url\":\"mqtt://h:1883\",\"topic\":[\"a\",\"b\"],"
                                               "\"port\":1883,\"on\":true,\"off\":false,"
                                               "\"big\":9007199254740992,\"none\":[],"
                                               "\"zero\":0,\"blank\":\"\"}");
    struct ferry_kv *kv = NULL;
    size_t n = 0;
    struct ferry_diag d = {""};
    CU_ASSERT_EQUAL_FATAL(ferry_cfgfile_load(path, &kv, &n, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(n, 9);
    /* File order is kept. */
    CU_ASSERT_STRING_EQUAL(kv[0].key, "url");
    CU_ASSERT_STRING_EQUAL(kv[8].key, "blank");
    static const struct {
        const char *key;
        size_t nvals;
        const char *v0, *v1;
    } want[] = {
        {"url", 1, "mqtt://h:1883", NULL},
        {"topic", 2, "a", "b"},
        {"port", 1, "1883", NULL},
        {"on", 1, "true", NULL},
        {"off", 1, "false", NULL},
        {"big", 1, "9007199254740992", NULL},
        {"none", 0, NULL, NULL},
        {"zero", 1, "0", NULL},
        {"blank", 1, "", NULL},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const struct ferry_kv *e = find_kv(kv, n, want[i].key);
        CU_ASSERT_PTR_NOT_NULL(e);
        if (!e)
            continue;
        CU_ASSERT_EQUAL_FATAL(e->nvals, want[i].nvals);
        if (want[i].v0)
            CU_ASSERT_STRING_EQUAL(e->vals[0], want[i].v0);
        if (want[i].v1)
            CU_ASSERT_STRING_EQUAL(e->vals[1], want[i].v1);
    }
    ferry_kv_free(kv, n);
}

static void load_empty_object(void)
{
    const char *path = write_cfg("empty.json", " { } \n");
    struct ferry_kv *kv = NULL;
    size_t n = 7;
    CU_ASSERT_EQUAL_FATAL(ferry_cfgfile_load(path, &kv, &n, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(n, 0);
    ferry_kv_free(kv, n);
}

struct bad_value {
    const char *json;
    const char *key;
    const char *why;
};

static void load_refuses_bad_values_naming_key(void)
{
    static const struct bad_value cases[] = {
        {"{\"a\":\"ok\",\"nul\":null}", "nul", "got null"},
        {"{\"obj\":{\"x\":1}}", "obj", "got an object"},
        {"{\"nums\":[1,2]}", "nums", "array of strings, item 0 is a number"},
        {"{\"mixed\":[\"a\",null]}", "mixed", "array of strings, item 1 is null"},
        {"{\"nested\":[[\"a\"]]}", "nested", "item 0 is an array"},
        {"{\"bools\":[true]}", "bools", "item 0 is a boolean"},
        {"{\"objs\":[{}]}", "objs", "item 0 is an object"},
        {"{\"frac\":1.5}", "frac", "integer"},
        {"{\"neg\":-1}", "neg", "integer"},
        {"{\"huge\":1e300}", "huge", "integer"},
        {"{\"over\":9007199254740994}", "over", "integer"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *path = write_cfg("bad.json", cases[i].json);
        struct ferry_kv untouched;
        struct ferry_kv *kv = &untouched;
        size_t n = 4242;
        struct ferry_diag d = {""};
        CU_ASSERT_EQUAL(ferry_cfgfile_load(path, &kv, &n, &d), FERRY_E_INVALID_ARG);
        char want[PATH_MAX + 64];
        snprintf(want, sizeof(want), "config %s: key '%s': ", path, cases[i].key);
        CU_ASSERT_EQUAL(strncmp(d.msg, want, strlen(want)), 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, cases[i].why));
        CU_ASSERT_PTR_EQUAL(kv, &untouched);
        CU_ASSERT_EQUAL(n, 4242);
    }
}

static void load_refuses_bad_files(void)
{
    struct ferry_kv *kv = NULL;
    size_t n = 0;
    struct ferry_diag d = {""};
    char missing[PATH_MAX];
    snprintf(missing, sizeof(missing), "%s/no-such.json", ferry_test_tmpdir());
    CU_ASSERT_EQUAL(ferry_cfgfile_load(missing, &kv, &n, &d), FERRY_E_NOT_FOUND);
    CU_ASSERT_EQUAL(strncmp(d.msg, "config: ", 8), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, missing));

    CU_ASSERT_EQUAL(ferry_cfgfile_load(ferry_test_tmpdir(), &kv, &n, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "not a regular file"));

    const char *path = write_cfg("dup.json", "{\"a\":1,\"a\":2}");
    CU_ASSERT_EQUAL(ferry_cfgfile_load(path, &kv, &n, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "duplicate key 'a'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, path));

    path = write_cfg("array.json", "[\"a\"]");
    CU_ASSERT_EQUAL(ferry_cfgfile_load(path, &kv, &n, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "expected a JSON object"));

    path = write_cfg("broken.json", "{\"a\":");
    CU_ASSERT_EQUAL(ferry_cfgfile_load(path, &kv, &n, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "invalid JSON"));

    size_t big_len = FERRY_CFGFILE_MAX_BYTES + 1;
    char *big = malloc(big_len + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    memset(big, ' ', big_len);
    big[0] = '{';
    big[big_len - 1] = '}';
    big[big_len] = 0;
    path = write_cfg("big.json", big);
    CU_ASSERT_EQUAL(ferry_cfgfile_load(path, &kv, &n, &d), FERRY_E_TOO_LARGE);
    /* One byte less is within the cap. */
    big[big_len - 2] = '}';
    big[big_len - 1] = 0;
    path = write_cfg("big.json", big);
    CU_ASSERT_EQUAL(ferry_cfgfile_load(path, &kv, &n, &d), FERRY_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_PTR_NOT_NULL(kv);
    ferry_kv_free(kv, n);
    free(big);
}

/* ---- end to end through ferry_opts_parse -------------------------------- */

struct demo_cfg {
    char *url;
    char *name;
    struct ferry_strlist topics;
    uint64_t port;
    bool verbose;
    int64_t interval;
    enum ferry_log_level level;
};

static const struct ferry_opt demo_opts[] = {
    {"url", FERRY_OPT_STR, offsetof(struct demo_cfg, url), "URL", "broker", 0},
    {"name", FERRY_OPT_STR, offsetof(struct demo_cfg, name), "ID", "instance", FERRY_OPT_REQUIRED},
    {"topic", FERRY_OPT_STRLIST, offsetof(struct demo_cfg, topics), "T", "topics", 0},
    {"port", FERRY_OPT_U64, offsetof(struct demo_cfg, port), "N", "port", 0},
    {"verbose", FERRY_OPT_BOOL, offsetof(struct demo_cfg, verbose), NULL, "chatty", 0},
    {"interval", FERRY_OPT_DURATION, offsetof(struct demo_cfg, interval), "DUR", "poll", 0},
    {"log-level", FERRY_OPT_LOGLEVEL, offsetof(struct demo_cfg, level), "LEVEL", "logs", 0},
};
#define NOPTS (sizeof(demo_opts) / sizeof(demo_opts[0]))

static void demo_defaults(struct demo_cfg *c)
{
    memset(c, 0, sizeof(*c));
    c->port = 1883;
    c->interval = 60;
    c->level = FERRY_LOG_INFO;
}

/* Runs ferry_opts_parse over a NULL-terminated argument list, copied into
 * writable strings as a real argv would be. */
static enum ferry_err parse_args(struct demo_cfg *c, bool *help, struct ferry_diag *d,
                                 const char *const *args)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = strdup("prog");
    for (; *args && argc < 31; args++)
        argv[argc++] = strdup(*args);
    argv[argc] = NULL;
    for (int i = 0; i < argc; i++)
        CU_ASSERT_PTR_NOT_NULL_FATAL(argv[i]);
    enum ferry_err err =
        ferry_opts_parse(demo_opts, NOPTS, c, argc, argv, 1, ferry_cfgfile_load, help, d);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    return err;
}

static void opts_file_then_flags_override(void)
{
    const char *path = write_cfg("demo.json", "{\"url\":\"mqtt://file\",\"name\":\"from-file\","
                                              "\"port\":1,\"verbose\":true,\"interval\":\"30m\","
                                              "\"log-level\":\"debug\",\"topic\":[\"a\",\"b\"]}");
    struct demo_cfg c;
    demo_defaults(&c);
    bool help = true;
    struct ferry_diag d = {""};
    const char *args[] = {"--port", "2", "--config", path, "--verbose=false", NULL};
    CU_ASSERT_EQUAL_FATAL(parse_args(&c, &help, &d, args), FERRY_OK);
    CU_ASSERT_FALSE(help);
    CU_ASSERT_STRING_EQUAL(c.url, "mqtt://file");
    CU_ASSERT_STRING_EQUAL(c.name, "from-file");
    CU_ASSERT_EQUAL(c.port, 2);
    CU_ASSERT_FALSE(c.verbose);
    CU_ASSERT_EQUAL(c.interval, 1800);
    CU_ASSERT_EQUAL(c.level, FERRY_LOG_DEBUG);
    CU_ASSERT_EQUAL_FATAL(c.topics.n, 2);
    CU_ASSERT_STRING_EQUAL(c.topics.v[0], "a");
    CU_ASSERT_STRING_EQUAL(c.topics.v[1], "b");
    ferry_opts_free(demo_opts, NOPTS, &c);
    CU_ASSERT_PTR_NULL(c.url);
}

static void opts_list_flag_replaces_file_list(void)
{
    const char *path = write_cfg("list.json", "{\"name\":\"n\",\"topic\":[\"a\",\"b\"]}");
    struct demo_cfg c;
    demo_defaults(&c);
    bool help = false;
    struct ferry_diag d = {""};
    char config_arg[PATH_MAX + 16];
    snprintf(config_arg, sizeof(config_arg), "--config=%s", path);
    const char *args[] = {config_arg, "--topic", "c", "--topic=d", NULL};
    CU_ASSERT_EQUAL_FATAL(parse_args(&c, &help, &d, args), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(c.topics.n, 2);
    CU_ASSERT_STRING_EQUAL(c.topics.v[0], "c");
    CU_ASSERT_STRING_EQUAL(c.topics.v[1], "d");
    ferry_opts_free(demo_opts, NOPTS, &c);
}

static void opts_integer_durations_from_file(void)
{
    const char *path = write_cfg("dur.json", "{\"name\":\"n\",\"interval\":90}");
    struct demo_cfg c;
    demo_defaults(&c);
    bool help = false;
    const char *args[] = {"--config", path, NULL};
    CU_ASSERT_EQUAL_FATAL(parse_args(&c, &help, NULL, args), FERRY_OK);
    CU_ASSERT_EQUAL(c.interval, 90);
    CU_ASSERT_EQUAL(c.port, 1883); /* default kept */
    ferry_opts_free(demo_opts, NOPTS, &c);
}

static void opts_unknown_key_named(void)
{
    const char *path = write_cfg("unknown.json", "{\"name\":\"n\",\"prot\":1}");
    struct demo_cfg c;
    demo_defaults(&c);
    bool help = false;
    struct ferry_diag d = {""};
    const char *args[] = {"--config", path, NULL};
    CU_ASSERT_EQUAL(parse_args(&c, &help, &d, args), FERRY_E_INVALID_ARG);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof(want), "config %s: key 'prot': unknown key", path);
    CU_ASSERT_STRING_EQUAL(d.msg, want);
    ferry_opts_free(demo_opts, NOPTS, &c);
}

static void opts_missing_required(void)
{
    const char *path = write_cfg("noname.json", "{\"url\":\"u\"}");
    struct demo_cfg c;
    demo_defaults(&c);
    bool help = false;
    struct ferry_diag d = {""};
    const char *args[] = {"--config", path, NULL};
    CU_ASSERT_EQUAL(parse_args(&c, &help, &d, args), FERRY_E_INVALID_ARG);
    CU_ASSERT_STRING_EQUAL(d.msg, "missing required option --name");
    ferry_opts_free(demo_opts, NOPTS, &c);
    /* Given by flag instead: fine. */
    demo_defaults(&c);
    const char *args2[] = {"--config", path, "--name", "x", NULL};
    CU_ASSERT_EQUAL(parse_args(&c, &help, &d, args2), FERRY_OK);
    ferry_opts_free(demo_opts, NOPTS, &c);
}

struct bad_opt {
    const char *file; /* NULL: no --config */
    const char *flag, *value;
    const char *want;
};

static void opts_bad_values_per_type(void)
{
    static const struct bad_opt cases[] = {
        {"{\"port\":\"x\"}", NULL, NULL, "key 'port': expected a non-negative integer, got 'x'"},
        {"{\"port\":true}", NULL, NULL, "key 'port': expected a non-negative integer"},
        {"{\"verbose\":\"yes\"}", NULL, NULL, "key 'verbose': expected true or false"},
        {"{\"verbose\":1}", NULL, NULL, "key 'verbose': expected true or false, got '1'"},
        {"{\"interval\":\"5y\"}", NULL, NULL, "key 'interval': expected a duration"},
        {"{\"log-level\":\"loud\"}", NULL, NULL, "key 'log-level': expected error, warn"},
        {"{\"url\":[\"a\",\"b\"]}", NULL, NULL, "key 'url': expected a single value"},
        {"{\"port\":-5}", NULL, NULL, "key 'port': must be an integer"},
        {NULL, "--port", "-1", "--port: expected a non-negative integer, got '-1'"},
        {NULL, "--port", "18446744073709551616", "--port: expected a non-negative integer"},
        {NULL, "--interval", "10y", "--interval: expected a duration"},
        {NULL, "--log-level", "trace", "--log-level: expected error, warn, info or debug"},
        {NULL, "--verbose=maybe", NULL, "--verbose: expected true or false, got 'maybe'"},
        {NULL, "--bogus", "1", "unknown option '--bogus'"},
        {NULL, "--url", NULL, "--url: expected a URL"},
        {NULL, "stray", NULL, "unexpected argument 'stray'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct demo_cfg c;
        demo_defaults(&c);
        bool help = false;
        struct ferry_diag d = {""};
        const char *args[8];
        size_t n = 0;
        args[n++] = "--name";
        args[n++] = "n";
        if (cases[i].file) {
            args[n++] = "--config";
            args[n++] = write_cfg("badval.json", cases[i].file);
        }
        if (cases[i].flag)
            args[n++] = cases[i].flag;
        if (cases[i].value)
            args[n++] = cases[i].value;
        args[n] = NULL;
        CU_ASSERT_EQUAL(parse_args(&c, &help, &d, args), FERRY_E_INVALID_ARG);
        if (!strstr(d.msg, cases[i].want))
            fprintf(stderr, "\ncase %zu: got '%s'\n", i, d.msg);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, cases[i].want));
        ferry_opts_free(demo_opts, NOPTS, &c);
    }
}

static void opts_help_skips_everything_else(void)
{
    struct demo_cfg c;
    demo_defaults(&c);
    bool help = false;
    struct ferry_diag d = {""};
    /* No --name, a bad port, a missing config file: --help still wins. */
    const char *args[] = {"--port", "x", "--config", "/nonexistent/ferry.json", "--help", NULL};
    CU_ASSERT_EQUAL(parse_args(&c, &help, &d, args), FERRY_OK);
    CU_ASSERT_TRUE(help);
    CU_ASSERT_EQUAL(c.port, 1883);
    ferry_opts_free(demo_opts, NOPTS, &c);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    ferry_opts_usage(f, demo_opts, NOPTS);
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "--url URL"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "(required)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "(repeatable)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "--config FILE"));
    free(text);
}

static void opts_config_missing_file(void)
{
    struct demo_cfg c;
    demo_defaults(&c);
    bool help = false;
    struct ferry_diag d = {""};
    char missing[PATH_MAX];
    snprintf(missing, sizeof(missing), "%s/absent.json", ferry_test_tmpdir());
    const char *args[] = {"--name", "n", "--config", missing, NULL};
    CU_ASSERT_EQUAL(parse_args(&c, &help, &d, args), FERRY_E_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, missing));
    ferry_opts_free(demo_opts, NOPTS, &c);

    const char *args2[] = {"--name", "n", "--config", NULL};
    demo_defaults(&c);
    CU_ASSERT_EQUAL(parse_args(&c, &help, &d, args2), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "--config: expected a FILE"));
    ferry_opts_free(demo_opts, NOPTS, &c);
}

const char *const ferry_suite_name = "cfgfile";
const struct ferry_test_case ferry_tests[] = {
    {"load_reads_every_allowed_type", load_reads_every_allowed_type},
    {"load_empty_object", load_empty_object},
    {"load_refuses_bad_values_naming_key", load_refuses_bad_values_naming_key},
    {"load_refuses_bad_files", load_refuses_bad_files},
    {"opts_file_then_flags_override", opts_file_then_flags_override},
    {"opts_list_flag_replaces_file_list", opts_list_flag_replaces_file_list},
    {"opts_integer_durations_from_file", opts_integer_durations_from_file},
    {"opts_unknown_key_named", opts_unknown_key_named},
    {"opts_missing_required", opts_missing_required},
    {"opts_bad_values_per_type", opts_bad_values_per_type},
    {"opts_help_skips_everything_else", opts_help_skips_everything_else},
    {"opts_config_missing_file", opts_config_missing_file},
    {NULL, NULL},
};
