/* The manifest's update-module fields (ferry_module.h): a module release
 * round-trips with its parameters, and the media type and the `module`
 * object only ever come together, which is what makes a node that predates
 * modules refuse a module's release instead of installing it as an image.
 * And its target nodes (ferry_targets.h). */
#include "cunit_main.h"
#include "test_keys.h"

#include "ferry_manifest.h"
#include "ferry_module.h"

#include <stdlib.h>
#include <string.h>

#define KID "0123456789abcdef"

static void module_release(struct ferry_manifest *m)
{
    test_manifest_sample(m, KID, NULL, 4096);
    strcpy(m->media_type, FERRY_MODULE_MEDIA_PREFIX "file");
    CU_ASSERT_EQUAL_FATAL(ferry_module_add_arg(&m->module, "path=/etc/app/app.conf", NULL),
                          FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(ferry_module_add_arg(&m->module, "mode=0640", NULL), FERRY_OK);
}

static enum ferry_err parse_text(const char *text, struct ferry_manifest *out, struct ferry_diag *d)
{
    return ferry_manifest_parse((const uint8_t *)text, strlen(text), out, d);
}

static void module_release_round_trips(void)
{
    struct ferry_manifest m, back;
    module_release(&m);
    char *text = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(ferry_manifest_encode(&m, &text, &len, NULL), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(text, "\"module\":{\"path\":\"/etc/app/app.conf\",\"mode\":\"0640\"}"));
    CU_ASSERT_EQUAL(parse_text(text, &back, NULL), FERRY_OK);
    CU_ASSERT_TRUE(test_manifest_equal(&m, &back));
    CU_ASSERT_TRUE(back.module.present);
    CU_ASSERT_STRING_EQUAL(ferry_module_arg(&back.module, "path"), "/etc/app/app.conf");
    CU_ASSERT_STRING_EQUAL(ferry_module_arg(&back.module, "mode"), "0640");
    CU_ASSERT_PTR_NULL(ferry_module_arg(&back.module, "owner"));
    char name[FERRY_MODULE_NAME_MAX + 1];
    CU_ASSERT_TRUE(ferry_module_name(back.media_type, name));
    CU_ASSERT_STRING_EQUAL(name, "file");
    free(text);
    /* An image release says nothing of modules. */
    test_manifest_sample(&m, KID, NULL, 4096);
    CU_ASSERT_EQUAL_FATAL(ferry_manifest_encode(&m, &text, &len, NULL), FERRY_OK);
    CU_ASSERT_PTR_NULL(strstr(text, "module"));
    CU_ASSERT_EQUAL(parse_text(text, &back, NULL), FERRY_OK);
    CU_ASSERT_FALSE(back.module.present);
    CU_ASSERT_FALSE(ferry_module_name(back.media_type, name));
    free(text);
    /* A module without parameters still carries an (empty) object. */
    test_manifest_sample(&m, KID, NULL, 4096);
    strcpy(m.media_type, FERRY_MODULE_MEDIA_PREFIX "script");
    m.module.present = true;
    CU_ASSERT_EQUAL_FATAL(ferry_manifest_encode(&m, &text, &len, NULL), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"module\":{}"));
    CU_ASSERT_EQUAL(parse_text(text, &back, NULL), FERRY_OK);
    CU_ASSERT_TRUE(back.module.present);
    CU_ASSERT_EQUAL(back.module.n, 0);
    free(text);
}

/* The encoded module release with `from` replaced by `to`. */
static char *edited(const char *from, const char *to)
{
    struct ferry_manifest m;
    module_release(&m);
    char *text = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(ferry_manifest_encode(&m, &text, &len, NULL), FERRY_OK);
    char *at = strstr(text, from);
    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    char *out = malloc(len + strlen(to) + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    memcpy(out, text, (size_t)(at - text));
    strcpy(out + (at - text), to);
    strcat(out, at + strlen(from));
    free(text);
    return out;
}

static void expect_malformed(const char *from, const char *to, const char *says)
{
    struct ferry_manifest m;
    struct ferry_diag d = {{0}};
    char *text = edited(from, to);
    CU_ASSERT_EQUAL(parse_text(text, &m, &d), FERRY_E_MALFORMED);
    if (!strstr(d.msg, says))
        fprintf(stderr, "message '%s' lacks '%s'\n", d.msg, says);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, says));
    free(text);
}

static void module_fields_come_together(void)
{
    /* A module's media type without `module`: an old node would take it for
     * an image, so a new one must not accept it either. */
    expect_malformed(",\"module\":{\"path\":\"/etc/app/app.conf\",\"mode\":\"0640\"}", "",
                     "needs a 'module' object");
    /* `module` with an image's media type. */
    expect_malformed(FERRY_MODULE_MEDIA_PREFIX "file", "application/vnd.ferry.image",
                     "field 'module' needs artifact.media_type");
    expect_malformed(FERRY_MODULE_MEDIA_PREFIX "file", FERRY_MODULE_MEDIA_PREFIX "Fi/le",
                     "media_type");
    expect_malformed(FERRY_MODULE_MEDIA_PREFIX "file", FERRY_MODULE_MEDIA_PREFIX "-file",
                     "names a module");
    expect_malformed("\"mode\":\"0640\"", "\"Mode\":\"0640\"", "key 'Mode'");
    expect_malformed("\"mode\":\"0640\"", "\"mode\":\"\"", "module.mode");
    expect_malformed("\"mode\":\"0640\"", "\"mode\":\"a\\nb\"", "module.mode");
    expect_malformed("\"mode\":\"0640\"", "\"mode\":640", "module.mode");
    expect_malformed("\"module\":{",
                     "\"module\":{\"a\":\"1\",\"b\":\"1\",\"c\":\"1\",\"d\":\"1\","
                     "\"e\":\"1\",\"f\":\"1\",\"g\":\"1\",",
                     "at most 8");
    expect_malformed("\"module\":{\"path\":\"/etc/app/app.conf\",\"mode\":\"0640\"}",
                     "\"module\":[]", "must be an object");
    /* The parameters a command line gives. */
    struct ferry_module_args a;
    memset(&a, 0, sizeof(a));
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(ferry_module_add_arg(&a, "path", &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_module_add_arg(&a, "=x", &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_module_add_arg(&a, "9x=y", &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_module_add_arg(&a, "x=a=b", &d), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(ferry_module_arg(&a, "x"), "a=b");
}

static void release_names_its_nodes(void)
{
    struct ferry_manifest m, back;
    module_release(&m);
    CU_ASSERT_EQUAL_FATAL(ferry_targets_add(&m.nodes, "node-7", NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(ferry_targets_add(&m.nodes, "node-9", NULL), FERRY_OK);
    char *text = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(ferry_manifest_encode(&m, &text, &len, NULL), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"nodes\":[\"node-7\",\"node-9\"]"));
    CU_ASSERT_EQUAL(parse_text(text, &back, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(back.nodes.n, 2);
    CU_ASSERT_TRUE(ferry_targets_include(&back.nodes, "node-9"));
    CU_ASSERT_FALSE(ferry_targets_include(&back.nodes, "node-8"));
    free(text);
    struct ferry_targets every = {0};
    CU_ASSERT_TRUE(ferry_targets_include(&every, "anyone"));
    /* Malformed target lists. */
    static const char *const bad[][2] = {
        {"\"nodes\":[\"node-7\",\"node-9\"]", "\"nodes\":[]"},
        {"\"nodes\":[\"node-7\",\"node-9\"]", "\"nodes\":\"node-7\""},
        {"\"nodes\":[\"node-7\",\"node-9\"]", "\"nodes\":[\"node-7\",\"node-7\"]"},
        {"\"nodes\":[\"node-7\",\"node-9\"]", "\"nodes\":[\"no de\"]"},
        {"\"nodes\":[\"node-7\",\"node-9\"]", "\"nodes\":[7]"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_EQUAL_FATAL(ferry_manifest_encode(&m, &text, &len, NULL), FERRY_OK);
        char *at = strstr(text, bad[i][0]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(at);
        char edited_text[8192];
        snprintf(edited_text, sizeof(edited_text), "%.*s%s%s", (int)(at - text), text, bad[i][1],
                 at + strlen(bad[i][0]));
        struct ferry_diag d = {{0}};
        CU_ASSERT_EQUAL(parse_text(edited_text, &back, &d), FERRY_E_MALFORMED);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "nodes"));
        free(text);
    }
    struct ferry_targets t = {0};
    CU_ASSERT_EQUAL(ferry_targets_add(&t, "bad id", NULL), FERRY_E_INVALID_ARG);
}

const char *const ferry_suite_name = "manifest_module";
const struct ferry_test_case ferry_tests[] = {
    {"module release round trips", module_release_round_trips},
    {"module fields come together", module_fields_come_together},
    {"release names its nodes", release_names_its_nodes},
    {NULL, NULL},
};
