/* ferry-edge --tag: kept in node.cfg as tag.<key>=<value> lines, merged
 * with the flags at start. */
#include "cunit_main.h"

#include "edge_config.h"
#include "edge_nodecfg.h"
#include "ferry_crc32.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum ferry_err parse_body(const char *body, struct edge_nodecfg **cfg, struct ferry_diag *d)
{
    size_t n = strlen(body);
    char *text = malloc(n + 32);
    snprintf(text, n + 32, "%scrc32=%08x\n", body, (unsigned)ferry_crc32(0, body, n));
    enum ferry_err err = edge_nodecfg_parse(text, strlen(text), cfg, d);
    free(text);
    return err;
}

#define BASE "format=1\nid=node-7\nhw_model=m1\ngateway=coap://127.0.0.1:5683\ntrust=/k.pub\n"

static void tags_are_read_sorted_and_written_back(void)
{
    struct edge_nodecfg *cfg = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(parse_body(BASE "tag.site=depot-7\ntag.ring=canary\nx-a=b\n", &cfg, &d),
                          FERRY_OK);
    CU_ASSERT_EQUAL(cfg->ntags, 2);
    CU_ASSERT_STRING_EQUAL(cfg->tags[0].key, "ring");
    CU_ASSERT_STRING_EQUAL(cfg->tags[1].value, "depot-7");
    CU_ASSERT_EQUAL(cfg->nextra, 1); /* tags are not unknown keys */
    char *text = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(edge_nodecfg_format(cfg, &text, &len, &d) == FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "tag.ring=canary\ntag.site=depot-7\nx-a=b\n"));
    struct edge_nodecfg *back = NULL;
    CU_ASSERT_FATAL(edge_nodecfg_parse(text, len, &back, &d) == FERRY_OK);
    CU_ASSERT_EQUAL(back->ntags, 2);
    free(text);
    edge_nodecfg_free(back);
    edge_nodecfg_free(cfg);
}

static void bad_tags_are_refused(void)
{
    const char *bad[] = {BASE "tag.ring=canary\ntag.ring=other\n", BASE "tag..x=y\n",
                         BASE "tag.ring=\n", BASE "tag.ring=a b\n", BASE "tag.version=1\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct edge_nodecfg *cfg = NULL;
        struct ferry_diag d = {{0}};
        CU_ASSERT_EQUAL(parse_body(bad[i], &cfg, &d), FERRY_E_MALFORMED);
        if (!strstr(d.msg, "tag"))
            fprintf(stderr, "%s\n", d.msg);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "tag"));
    }
}

static enum ferry_err run_config(const char *dir, const char *const *extra, size_t n,
                                 struct edge_config *cfg, struct ferry_diag *d)
{
    const char *base[] = {
        "ferry-edge", "--gateway", "coap://127.0.0.1:5683", "--id", "node-7", "--hw-model", "m1",
        "--trust",    "/k.pub",    "--state-dir",           dir};
    char *argv[32];
    int argc = 0;
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
        argv[argc++] = strdup(base[i]);
    for (size_t i = 0; i < n; i++)
        argv[argc++] = strdup(extra[i]);
    memset(cfg, 0, sizeof(*cfg));
    bool help = false;
    enum ferry_err err = edge_config_parse(cfg, argc, argv, &help, d);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    return err;
}

static void flags_set_and_remove_tags_and_node_cfg_keeps_them(void)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/state", ferry_test_tmpdir());
    struct edge_config cfg;
    struct ferry_diag d = {{0}};
    const char *first[] = {"--tag", "ring=canary", "--tag", "site=depot-7"};
    CU_ASSERT_EQUAL_FATAL(run_config(dir, first, 4, &cfg, &d), FERRY_OK);
    CU_ASSERT_EQUAL(cfg.ntags, 2);
    edge_config_free(&cfg);
    /* Started again without --tag: node.cfg still has them. */
    CU_ASSERT_EQUAL_FATAL(run_config(dir, NULL, 0, &cfg, &d), FERRY_OK);
    CU_ASSERT_EQUAL(cfg.ntags, 2);
    CU_ASSERT_STRING_EQUAL(cfg.tags[0].key, "ring");
    edge_config_free(&cfg);
    /* One changed, one removed. */
    const char *second[] = {"--tag", "ring=stable", "--tag", "site="};
    CU_ASSERT_EQUAL_FATAL(run_config(dir, second, 4, &cfg, &d), FERRY_OK);
    CU_ASSERT_EQUAL(cfg.ntags, 1);
    CU_ASSERT_STRING_EQUAL(cfg.tags[0].value, "stable");
    edge_config_free(&cfg);
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/node.cfg", dir);
    struct edge_nodecfg *nc = NULL;
    CU_ASSERT_FATAL(edge_nodecfg_load(path, &nc, &d) == FERRY_OK);
    CU_ASSERT_EQUAL(nc->ntags, 1);
    CU_ASSERT_STRING_EQUAL(nc->tags[0].value, "stable");
    edge_nodecfg_free(nc);
    /* A bad flag names itself. */
    const char *bad[] = {"--tag", "gateway=x"};
    CU_ASSERT_EQUAL(run_config(dir, bad, 2, &cfg, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "--tag"));
    edge_config_free(&cfg);
}

const char *const ferry_suite_name = "edge_tags";
const struct ferry_test_case ferry_tests[] = {
    {"tags_are_read_sorted_and_written_back", tags_are_read_sorted_and_written_back},
    {"bad_tags_are_refused", bad_tags_are_refused},
    {"flags_set_and_remove_tags_and_node_cfg_keeps_them",
     flags_set_and_remove_tags_and_node_cfg_keeps_them},
    {NULL, NULL},
};
