#include "cunit_main.h"

#include "edge_nodecfg.h"
#include "ferry_crc32.h"
#include "ferry_io_faulty.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Appends the crc32 line to body, as a writer would. */
static char *with_crc(const char *body)
{
    size_t n = strlen(body);
    char *out = malloc(n + 32);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    snprintf(out, n + 32, "%scrc32=%08x\n", body, (unsigned)ferry_crc32(0, body, n));
    return out;
}

static enum ferry_err parse_body(const char *body, struct edge_nodecfg **cfg, struct ferry_diag *d)
{
    char *text = with_crc(body);
    enum ferry_err err = edge_nodecfg_parse(text, strlen(text), cfg, d);
    free(text);
    return err;
}

static const char GOOD[] = "format=1\n"
                           "id=node-7\n"
                           "hw_model=meter-v2\n"
                           "gateway=coap://[fd00::1]:5683\n"
                           "trust=/etc/ferry/trust.json\n";

static void reads_a_written_file(void)
{
    struct edge_nodecfg *cfg = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(parse_body(GOOD, &cfg, &d), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(cfg->id, "node-7");
    CU_ASSERT_STRING_EQUAL(cfg->hw_model, "meter-v2");
    CU_ASSERT_STRING_EQUAL(cfg->hw_revision, "");
    CU_ASSERT_STRING_EQUAL(cfg->product, ""); /* absent: the default line */
    CU_ASSERT_STRING_EQUAL(cfg->gateway, "coap://[fd00::1]:5683");
    CU_ASSERT_STRING_EQUAL(cfg->trust, "/etc/ferry/trust.json");
    CU_ASSERT_EQUAL(cfg->nextra, 0);
    edge_nodecfg_free(cfg);
}

static void saves_and_loads_back_with_unknown_keys_kept(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/node.cfg", ferry_test_tmpdir());
    /* A file from a newer version: a newer format, two keys this one lacks,
     * comments and blank lines. */
    static const char newer[] = "# written by ferry 9\n"
                                "format=3\n"
                                "x-radio=lora;sf=7\n"
                                "id=node-7\n"
                                "\n"
                                "product=meter-fw\n"
                                "hw_model=meter-v2\n"
                                "hw_revision=B\n"
                                "gateway=coaps://gw.example:5684\n"
                                "trust=/etc/ferry/trust.json\n"
                                "tz=Europe/Paris\n";
    struct edge_nodecfg *cfg = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(parse_body(newer, &cfg, &d), FERRY_OK);
    CU_ASSERT_EQUAL(cfg->nextra, 2);
    CU_ASSERT_STRING_EQUAL(edge_nodecfg_extra(cfg, "x-radio"), "lora;sf=7");
    CU_ASSERT_PTR_NULL(edge_nodecfg_extra(cfg, "id"));

    snprintf(cfg->gateway, sizeof(cfg->gateway), "coap://10.0.0.1:5683");
    CU_ASSERT_EQUAL_FATAL(edge_nodecfg_save(cfg, path, &d), FERRY_OK);
    edge_nodecfg_free(cfg);
    cfg = NULL;

    CU_ASSERT_EQUAL_FATAL(edge_nodecfg_load(path, &cfg, &d), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(cfg->gateway, "coap://10.0.0.1:5683");
    CU_ASSERT_STRING_EQUAL(cfg->hw_revision, "B");
    CU_ASSERT_STRING_EQUAL(cfg->product, "meter-fw");
    CU_ASSERT_EQUAL_FATAL(cfg->nextra, 2);
    CU_ASSERT_STRING_EQUAL(cfg->extra[0].key, "x-radio");
    CU_ASSERT_STRING_EQUAL(cfg->extra[1].key, "tz");
    CU_ASSERT_STRING_EQUAL(cfg->extra[1].value, "Europe/Paris");
    edge_nodecfg_free(cfg);
}

static void damage_is_detected_by_the_crc_line(void)
{
    char *text = with_crc(GOOD);
    size_t len = strlen(text);
    struct edge_nodecfg *cfg = NULL;
    struct ferry_diag d = {{0}};
    for (size_t i = 0; i < len; i++) {
        text[i] ^= 0x01;
        CU_ASSERT_NOT_EQUAL(edge_nodecfg_parse(text, len, &cfg, NULL), FERRY_OK);
        text[i] ^= 0x01;
    }
    for (size_t cut = 0; cut < len; cut++)
        CU_ASSERT_EQUAL(edge_nodecfg_parse(text, cut, &cfg, NULL), FERRY_E_CORRUPT);
    CU_ASSERT_EQUAL(edge_nodecfg_parse(GOOD, strlen(GOOD), &cfg, &d), FERRY_E_CORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "crc32"));
    free(text);
}

static void line_after_the_crc_makes_the_file_corrupt(void)
{
    char *text = with_crc(GOOD);
    char more[1024];
    snprintf(more, sizeof(more), "%sid=other\n", text);
    struct edge_nodecfg *cfg = NULL;
    CU_ASSERT_EQUAL(edge_nodecfg_parse(more, strlen(more), &cfg, NULL), FERRY_E_CORRUPT);
    /* and a crc32 key before the end is refused too */
    char body[1024];
    snprintf(body, sizeof(body), "%s%s", text, "tz=UTC\n");
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(parse_body(body, &cfg, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "last line"));
    free(text);
}

static void bad_contents_name_the_key_or_line(void)
{
    static const struct {
        const char *body, *needle;
    } cases[] = {
        {"format=1\nid=node-7\nhw_model=m\ngateway=coap://g\n", "'trust' is missing"},
        {"id=node-7\nhw_model=m\ngateway=coap://g\ntrust=t\n", "'format' is missing"},
        {"format=1\nid=a/b\nhw_model=m\ngateway=coap://g\ntrust=t\n", "'id'"},
        {"format=1\nid=n\nid=n\nhw_model=m\ngateway=coap://g\ntrust=t\n", "'id' appears twice"},
        {"format=1\nid=n\nhw_model=m\ngateway=http://g\ntrust=t\n", "'gateway'"},
        {"format=1\nid=n\nhw_model=m\ngateway=coap://g\ntrust=\n", "'trust'"},
        {"format=0\nid=n\nhw_model=m\ngateway=coap://g\ntrust=t\n", "'format'"},
        {"format=1x\nid=n\nhw_model=m\ngateway=coap://g\ntrust=t\n", "'format'"},
        {"format=1\nid=n\nhw_model=m\ngateway=coap://g\ntrust=t\nnot a pair\n", "line 6"},
        {"format=1\nId=n\n", "line 2: key"},
        {"format=1\nid=n\nhw_model=m\ngateway=coap://g\ntrust=t\tx\n", "line 5: value"},
        {"format=1\nid=n\nhw_model=m\ngateway=coap://g\ntrust=t\nx=1\nx=2\n", "'x' appears twice"},
        {"format=1\nid=n\nhw_model=m\nhw_revision=ABCDEFGHIJKLMNOPQ\ngateway=coap://g\ntrust=t\n",
         "'hw_revision' is longer"},
        {"format=1\nid=n\nproduct=a b\nhw_model=m\ngateway=coap://g\ntrust=t\n", "'product'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct edge_nodecfg *cfg = NULL;
        struct ferry_diag d = {{0}};
        CU_ASSERT_EQUAL(parse_body(cases[i].body, &cfg, &d), FERRY_E_MALFORMED);
        CU_ASSERT_PTR_NULL(cfg);
        if (!strstr(d.msg, cases[i].needle)) {
            fprintf(stderr, "case %zu: message '%s' lacks '%s'\n", i, d.msg, cases[i].needle);
            CU_FAIL("diagnostic does not name the fault");
        }
    }
}

static void size_caps_hold(void)
{
    struct edge_nodecfg *cfg = NULL;
    char *big = malloc(EDGE_NODECFG_MAX_BYTES + 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    memset(big, '#', EDGE_NODECFG_MAX_BYTES + 1);
    big[EDGE_NODECFG_MAX_BYTES + 1] = 0;
    CU_ASSERT_EQUAL(edge_nodecfg_parse(big, EDGE_NODECFG_MAX_BYTES + 1, &cfg, NULL),
                    FERRY_E_TOO_LARGE);
    free(big);

    char body[EDGE_NODECFG_MAX_BYTES];
    size_t n = (size_t)snprintf(body, sizeof(body), "%s", GOOD);
    for (int i = 0; i <= EDGE_NODECFG_MAX_EXTRA; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n, "k%d=v\n", i);
    CU_ASSERT_EQUAL(parse_body(body, &cfg, NULL), FERRY_E_TOO_LARGE);
}

static void save_refuses_what_load_would_refuse(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/refused.cfg", ferry_test_tmpdir());
    struct edge_nodecfg *cfg = edge_nodecfg_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(edge_nodecfg_save(cfg, path, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "'id'"));
    snprintf(cfg->id, sizeof(cfg->id), "n1");
    snprintf(cfg->hw_model, sizeof(cfg->hw_model), "m1");
    snprintf(cfg->gateway, sizeof(cfg->gateway), "coap://gw");
    snprintf(cfg->trust, sizeof(cfg->trust), "keys.json");
    char *text = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(edge_nodecfg_format(cfg, &text, &len, &d), FERRY_OK);
    CU_ASSERT_EQUAL(strlen(text), len);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "format=1\n"));
    free(text);

    /* An extra key may not shadow a known one. */
    cfg->extra = calloc(1, sizeof(*cfg->extra));
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg->extra);
    cfg->extra[0].key = strdup("id");
    cfg->extra[0].value = strdup("other");
    cfg->nextra = 1;
    CU_ASSERT_EQUAL(edge_nodecfg_save(cfg, path, &d), FERRY_E_MALFORMED);
    edge_nodecfg_free(cfg);

    cfg = NULL;
    CU_ASSERT_EQUAL(edge_nodecfg_load(path, &cfg, &d), FERRY_E_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "refused.cfg"));
    edge_nodecfg_free(NULL);
}

const char *const ferry_suite_name = "edge_nodecfg";
/* ---- a power cut at every file operation ------------------------------------ */

/* The node's life: its first start writes node.cfg, then the operator
 * changes its tags twice (each a save). Version v of the file has v tags. */
static int cut_life(const char *path, const struct ferry_io *io)
{
    struct edge_nodecfg *cfg = edge_nodecfg_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    snprintf(cfg->id, sizeof(cfg->id), "node-7");
    snprintf(cfg->hw_model, sizeof(cfg->hw_model), "meter-v2");
    snprintf(cfg->gateway, sizeof(cfg->gateway), "coap://[fd00::1]:5683");
    snprintf(cfg->trust, sizeof(cfg->trust), "/etc/ferry/trust.json");
    static const char *const keys[] = {"ring", "site"};
    int saved = -1; /* the newest version whose save returned FERRY_OK */
    for (int v = 0; v <= 2; v++) {
        if (v > 0) {
            snprintf(cfg->tags[v - 1].key, sizeof(cfg->tags[v - 1].key), "%s", keys[v - 1]);
            snprintf(cfg->tags[v - 1].value, sizeof(cfg->tags[v - 1].value), "v%d", v);
            cfg->ntags = (size_t)v;
        }
        if (edge_nodecfg_save_io(io, cfg, path, NULL) != FERRY_OK)
            break;
        saved = v;
    }
    edge_nodecfg_free(cfg);
    return saved;
}

static void a_power_cut_at_every_file_operation(void)
{
    static const char *const names[] = {"kill -9", "power cut", "torn power cut"};
    for (int how = FERRY_IO_KILL; how <= FERRY_IO_POWER_TORN; how++) {
        uint64_t total = UINT64_MAX;
        for (uint64_t n = 0; n <= total; n++) {
            char dir[PATH_MAX], path[PATH_MAX + 16];
            snprintf(dir, sizeof(dir), "%s/cut-%d-%llu", ferry_test_tmpdir(), how,
                     (unsigned long long)(total == UINT64_MAX ? 999999 : n));
            CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0755), 0);
            snprintf(path, sizeof(path), "%s/node.cfg", dir);
            struct ferry_io_faulty *f = NULL;
            CU_ASSERT_EQUAL_FATAL(ferry_io_faulty_new(&f, NULL), FERRY_OK);
            bool counting = total == UINT64_MAX;
            ferry_io_faulty_stop_at(f, counting ? FERRY_IO_NO_STOP : n, (enum ferry_io_stop)how);
            int saved = cut_life(path, ferry_io_faulty_io(f));
            if (counting) {
                CU_ASSERT_EQUAL_FATAL(saved, 2);
                total = ferry_io_faulty_calls(f);
                CU_ASSERT_TRUE(total >= 12);
            }
            ferry_io_faulty_stop(f, (enum ferry_io_stop)how);
            ferry_io_faulty_free(f);
            /* After the reboot: the version last saved or the one being
             * saved, whole; nothing at all only if no save had returned. */
            struct edge_nodecfg *cfg = NULL;
            struct ferry_diag d = {{0}};
            enum ferry_err err = edge_nodecfg_load(path, &cfg, &d);
            int found = err == FERRY_OK ? (int)cfg->ntags : -1;
            bool ok = (err == FERRY_OK && (found == saved || found == saved + 1)) ||
                      (err == FERRY_E_NOT_FOUND && saved < 0);
            if (!ok)
                fprintf(stderr, "node.cfg, %s at %llu: saved v%d, found v%d (%s)\n", names[how],
                        (unsigned long long)n, saved, found, d.msg);
            CU_ASSERT_TRUE(ok);
            CU_ASSERT_TRUE(err != FERRY_OK || strcmp(cfg->id, "node-7") == 0);
            edge_nodecfg_free(cfg);
            if (counting)
                n = UINT64_MAX; /* the next round is 0 */
        }
    }
}

const struct ferry_test_case ferry_tests[] = {
    {"reads_a_written_file", reads_a_written_file},
    {"saves_and_loads_back_with_unknown_keys_kept", saves_and_loads_back_with_unknown_keys_kept},
    {"damage_is_detected_by_the_crc_line", damage_is_detected_by_the_crc_line},
    {"line_after_the_crc_makes_the_file_corrupt", line_after_the_crc_makes_the_file_corrupt},
    {"bad_contents_name_the_key_or_line", bad_contents_name_the_key_or_line},
    {"size_caps_hold", size_caps_hold},
    {"save_refuses_what_load_would_refuse", save_refuses_what_load_would_refuse},
    {"a power cut at every file operation", a_power_cut_at_every_file_operation},
    {NULL, NULL},
};
