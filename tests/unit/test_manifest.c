#include "cunit_main.h"
#include "test_keys.h"

#include "ferry_manifest.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KID "0123456789abcdef"

static char *sample_text(size_t *len)
{
    struct ferry_manifest m;
    char *text = NULL;
    size_t n = 0;
    test_manifest_sample(&m, KID, NULL, 123456);
    CU_ASSERT_FATAL(ferry_manifest_encode(&m, &text, &n, NULL) == FERRY_OK);
    if (len)
        *len = n;
    return text;
}

static enum ferry_err parse_str(const char *text, struct ferry_manifest *m, struct ferry_diag *d)
{
    struct ferry_manifest scratch;
    return ferry_manifest_parse((const uint8_t *)text, strlen(text), m ? m : &scratch, d);
}

/* The sample with `key` inside the object at `parent` ("" for the top,
 * "artifact", "hardware[0]") set to the raw JSON `raw`, or removed when raw
 * is NULL. The caller frees the text. */
static char *mutated(const char *parent, const char *key, const char *raw)
{
    char *text = sample_text(NULL);
    cJSON *root = cJSON_Parse(text);
    free(text);
    CU_ASSERT_FATAL(root != NULL);
    cJSON *obj = root;
    if (strcmp(parent, "hardware[0]") == 0)
        obj = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "hardware"), 0);
    else if (parent[0])
        obj = cJSON_GetObjectItemCaseSensitive(root, parent);
    CU_ASSERT_FATAL(obj != NULL);
    cJSON *item = raw ? cJSON_CreateRaw(raw) : NULL;
    bool ok = true;
    if (!raw)
        cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
    else if (!cJSON_GetObjectItemCaseSensitive(obj, key))
        ok = cJSON_AddItemToObject(obj, key, item);
    else
        ok = cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item);
    CU_ASSERT_FATAL(ok);
    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    CU_ASSERT_FATAL(text != NULL);
    return text;
}

/* text with the first `from` replaced by `to`; the caller frees it. */
static char *replaced(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    CU_ASSERT_FATAL(at != NULL);
    size_t head = (size_t)(at - text), flen = strlen(from), tlen = strlen(to);
    char *out = malloc(strlen(text) - flen + tlen + 1);
    CU_ASSERT_FATAL(out != NULL);
    memcpy(out, text, head);
    memcpy(out + head, to, tlen);
    strcpy(out + head + tlen, at + flen);
    return out;
}

/* The sample with extra top-level JSON text inserted right after '{'. */
static char *with_prefix_member(const char *member)
{
    char *text = sample_text(NULL);
    char *out = replaced(text, "{", member);
    free(text);
    return out;
}

static void expect_rejected(const char *text, enum ferry_err want, const char *needle)
{
    struct ferry_diag d = {""};
    enum ferry_err err = parse_str(text, NULL, &d);
    CU_ASSERT_EQUAL(err, want);
    if (needle && !strstr(d.msg, needle)) {
        fprintf(stderr, "\n    diag '%s' lacks '%s'\n", d.msg, needle);
        CU_FAIL("diagnostic does not name the field");
    }
}

static void manifest_round_trip(void)
{
    struct ferry_manifest want, got;
    char *text = NULL, *again = NULL;
    size_t len = 0, again_len = 0;
    test_manifest_sample(&want, KID, NULL, 123456);
    CU_ASSERT_FATAL(ferry_manifest_encode(&want, &text, &len, NULL) == FERRY_OK);
    CU_ASSERT_EQUAL(strlen(text), len);
    CU_ASSERT_EQUAL(ferry_manifest_parse((const uint8_t *)text, len, &got, NULL), FERRY_OK);
    CU_ASSERT_TRUE(test_manifest_equal(&want, &got));
    CU_ASSERT_STRING_EQUAL(got.semver.prerelease, "rc.2");
    CU_ASSERT_EQUAL(got.semver.minor, 4);
    /* Encoding what was parsed gives the same bytes back. */
    CU_ASSERT_EQUAL(ferry_manifest_encode(&got, &again, &again_len, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(again_len, len);
    CU_ASSERT_STRING_EQUAL(again, text);
    free(again);
    free(text);
}

static void manifest_encode_is_compact_and_ordered(void)
{
    static const char *const order[] = {
        "{\"format\":1,",
        "\"release\":",
        "\"product\":",
        "\"component\":",
        "\"version\":",
        "\"seq\":42,",
        "\"hardware\":",
        "\"artifact\":{\"sha256\":",
        "\"size\":",
        "\"media_type\":",
        "\"issued_at\":",
        "\"expires_at\":",
        "\"constraints\":{\"must_be_idle\":true,\"window_start\":",
        "\"key_id\":",
    };
    char *text = sample_text(NULL);
    const char *prev = text;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        const char *at = strstr(text, order[i]);
        CU_ASSERT_PTR_NOT_NULL(at);
        CU_ASSERT_TRUE(at >= prev);
        prev = at ? at : prev;
    }
    CU_ASSERT_PTR_NULL(strchr(text, ' '));
    CU_ASSERT_PTR_NULL(strchr(text, '\n'));
    free(text);
}

static void manifest_encode_omits_empty_optionals(void)
{
    struct ferry_manifest m, got;
    char *text = NULL;
    size_t len = 0;
    test_manifest_sample(&m, KID, NULL, 1);
    memset(&m.constraints, 0, sizeof(m.constraints));
    m.hw[0].nrevisions = 0;
    CU_ASSERT_FATAL(ferry_manifest_encode(&m, &text, &len, NULL) == FERRY_OK);
    CU_ASSERT_PTR_NULL(strstr(text, "constraints"));
    CU_ASSERT_PTR_NULL(strstr(text, "revisions"));
    CU_ASSERT_EQUAL(ferry_manifest_parse((const uint8_t *)text, len, &got, NULL), FERRY_OK);
    CU_ASSERT_TRUE(test_manifest_equal(&m, &got));
    free(text);
}

static void manifest_encode_validates_first(void)
{
    struct ferry_manifest m;
    struct ferry_diag d = {""};
    char *text = NULL;
    size_t len = 0;

    test_manifest_sample(&m, KID, NULL, 0);
    CU_ASSERT_EQUAL(ferry_manifest_encode(&m, &text, &len, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "'artifact.size'"));
    CU_ASSERT_PTR_NULL(text);

    test_manifest_sample(&m, KID, NULL, 10);
    strcpy(m.version, "1.2");
    CU_ASSERT_EQUAL(ferry_manifest_encode(&m, &text, &len, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "field 'version' must be semver, got '1.2'"));

    test_manifest_sample(&m, KID, NULL, 10);
    m.nhw = 0;
    CU_ASSERT_EQUAL(ferry_manifest_encode(&m, &text, &len, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "'hardware'"));

    test_manifest_sample(&m, KID, NULL, 10);
    strcpy(m.hw[1].model, "../etc");
    CU_ASSERT_EQUAL(ferry_manifest_encode(&m, &text, &len, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "'hardware[1].model'"));

    test_manifest_sample(&m, "ABCDEF0123456789", NULL, 10);
    CU_ASSERT_EQUAL(ferry_manifest_encode(&m, &text, &len, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "'key_id'"));
    CU_ASSERT_PTR_NULL(text);
}

struct field_case {
    const char *parent, *key, *raw, *needle;
};

/* One wrong value per rule; each must be refused naming its field. */
static void manifest_field_rules(void)
{
    static const struct field_case cases[] = {
        {"", "format", "2", "field 'format' must be 1, got 2"},
        {"", "format", "\"1\"", "field 'format' must be an integer"},
        {"", "format", NULL, "missing field 'format'"},
        {"", "release", "\".hidden\"", "field 'release'"},
        {"", "release", NULL, "missing field 'release'"},
        {"", "product", "\"a/b\"", "field 'product'"},
        {"", "product", "7", "field 'product' must be a string"},
        {"", "component", "\"\"", "field 'component'"},
        {"", "component", "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"",
         "field 'component'"},
        {"", "version", "\"1.x\"", "field 'version' must be semver, got '1.x'"},
        {"", "version", "\"01.2.3\"", "field 'version'"},
        {"", "seq", "-1", "field 'seq'"},
        {"", "seq", "7.5", "field 'seq'"},
        {"", "seq", "9007199254740994", "field 'seq'"},
        {"", "seq", "\"7\"", "field 'seq' must be an integer"},
        {"", "hardware", "[]", "field 'hardware' must hold 1..8"},
        {"", "hardware", "{}", "field 'hardware' must be an array"},
        {"", "hardware",
         "[{\"model\":\"a\"},{\"model\":\"b\"},{\"model\":\"c\"},{\"model\":\"d\"},"
         "{\"model\":\"e\"},{\"model\":\"f\"},{\"model\":\"g\"},{\"model\":\"h\"},{\"model\":\"i\"}"
         "]",
         "field 'hardware' must hold 1..8"},
        {"", "hardware", "[1]", "field 'hardware[0]' must be an object"},
        {"", "hardware", "[{\"model\":\"a\"},{\"revisions\":[\"A\"]}]",
         "missing field 'hardware[1].model'"},
        {"", "hardware", "[{\"model\":\"m m\"}]", "field 'hardware[0].model'"},
        {"", "hardware", "[{\"model\":\"m\",\"revisions\":\"A\"}]", "'hardware[0].revisions'"},
        {"", "hardware",
         "[{\"model\":\"m\",\"revisions\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\","
         "\"8\",\"9\"]}]",
         "field 'hardware[0].revisions' must hold 0..8"},
        {"", "hardware", "[{\"model\":\"m\",\"revisions\":[\"A\",\"12345678901234567\"]}]",
         "field 'hardware[0].revisions[1]' must be 1..16"},
        {"", "hardware", "[{\"model\":\"m\",\"revisions\":[\"\"]}]",
         "field 'hardware[0].revisions[0]'"},
        {"", "hardware", "[{\"model\":\"m\",\"revisions\":[1]}]",
         "field 'hardware[0].revisions[0]' must be a string"},
        {"", "hardware", "[{\"model\":\"m\",\"revisions\":[\"A/B\"]}]",
         "field 'hardware[0].revisions[0]'"},
        {"", "artifact", "[]", "field 'artifact' must be an object"},
        {"", "artifact", NULL, "missing field 'artifact'"},
        {"artifact", "sha256",
         "\"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855\"",
         "field 'artifact.sha256'"},
        {"artifact", "sha256",
         "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85\"",
         "field 'artifact.sha256'"},
        {"artifact", "sha256",
         "\"g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"",
         "field 'artifact.sha256'"},
        {"artifact", "sha256", NULL, "missing field 'artifact.sha256'"},
        {"artifact", "size", "0", "field 'artifact.size'"},
        {"artifact", "size", "\"5\"", "field 'artifact.size' must be an integer"},
        {"artifact", "size", "1e300", "field 'artifact.size'"},
        {"artifact", "media_type", "\"octet\"", "field 'artifact.media_type'"},
        {"artifact", "media_type", "\"a/b/c\"", "field 'artifact.media_type'"},
        {"artifact", "media_type", "\"/b\"", "field 'artifact.media_type'"},
        {"", "issued_at", "1800000000", "field 'expires_at' must be after issued_at"},
        {"", "expires_at", "1700000000", "field 'expires_at' must be after issued_at"},
        {"", "issued_at", "-5", "field 'issued_at'"},
        {"", "expires_at", NULL, "missing field 'expires_at'"},
        {"", "constraints", "true", "field 'constraints' must be an object"},
        {"constraints", "window_end", "1700003600", "field 'constraints.window_end' must be after"},
        {"constraints", "must_be_idle", "1", "field 'constraints.must_be_idle' must be true or"},
        {"constraints", "max_deferral", "-1", "field 'constraints.max_deferral'"},
        {"", "key_id", "\"0123456789ABCDEF\"", "field 'key_id'"},
        {"", "key_id", "\"0123456789abcde\"", "field 'key_id'"},
        {"", "key_id", NULL, "missing field 'key_id'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct field_case *c = &cases[i];
        char *text = mutated(c->parent, c->key, c->raw);
        expect_rejected(text, FERRY_E_MALFORMED, c->needle);
        free(text);
    }
}

static void manifest_optional_members(void)
{
    static const struct field_case cases[] = {
        {"", "constraints", NULL, NULL},
        {"", "constraints", "{}", NULL},
        {"", "constraints", "{\"window_end\":5}", NULL},
        {"", "hardware", "[{\"model\":\"m\",\"revisions\":[]}]", NULL},
        {"hardware[0]", "revisions", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ferry_manifest m;
        struct ferry_diag d = {""};
        char *text = mutated(cases[i].parent, cases[i].key, cases[i].raw);
        CU_ASSERT_EQUAL(parse_str(text, &m, &d), FERRY_OK);
        if (strcmp(cases[i].key, "constraints") == 0) {
            CU_ASSERT_FALSE(m.constraints.must_be_idle);
            CU_ASSERT_EQUAL(m.constraints.window_start, 0);
            CU_ASSERT_EQUAL(m.constraints.max_deferral, 0);
        } else {
            CU_ASSERT_EQUAL(m.hw[0].nrevisions, 0); /* every revision */
        }
        free(text);
    }
}

static void manifest_unknown_fields_rejected(void)
{
    static const struct field_case cases[] = {
        {"", "foo", "1", "unknown field 'foo'"},
        {"", "Seq", "1", "unknown field 'Seq'"},
        {"", "xnote", "1", "unknown field 'xnote'"},
        {"artifact", "url", "\"http://x\"", "unknown field 'artifact.url'"},
        {"hardware[0]", "vendor", "\"acme\"", "unknown field 'hardware[0].vendor'"},
        {"constraints", "battery", "50", "unknown field 'constraints.battery'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *text = mutated(cases[i].parent, cases[i].key, cases[i].raw);
        expect_rejected(text, FERRY_E_MALFORMED, cases[i].needle);
        free(text);
    }
}

static void manifest_extension_fields_ignored(void)
{
    static const struct field_case cases[] = {
        {"", "x-note", "\"built by CI \\u00e9\"", NULL},
        {"", "x-obj", "{\"a\":[1,2,{\"b\":null}]}", NULL},
        {"artifact", "x-url", "\"http://x\"", NULL},
        {"hardware[0]", "x-vendor", "\"acme\"", NULL},
        {"constraints", "x-battery", "50", NULL},
    };
    struct ferry_manifest want, got;
    test_manifest_sample(&want, KID, NULL, 123456);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ferry_diag d = {""};
        char *text = mutated(cases[i].parent, cases[i].key, cases[i].raw);
        CU_ASSERT_EQUAL(parse_str(text, &got, &d), FERRY_OK);
        CU_ASSERT_TRUE(test_manifest_equal(&want, &got));
        free(text);
    }
}

static void manifest_duplicate_keys_rejected(void)
{
    static const struct {
        const char *from, *to;
    } cases[] = {
        {"\"seq\":42", "\"seq\":42,\"seq\":43"},
        {"\"seq\":42", "\"seq\":42,\"x-a\":1,\"x-a\":1"},
        {"\"size\":", "\"size\":1,\"size\":"},
        {"\"model\":\"mx-100\"", "\"model\":\"mx-100\",\"model\":\"mx-100\""},
        {"\"must_be_idle\":true", "\"must_be_idle\":true,\"must_be_idle\":false"},
    };
    char *text = sample_text(NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *dup = replaced(text, cases[i].from, cases[i].to);
        expect_rejected(dup, FERRY_E_MALFORMED, "duplicate key");
        free(dup);
    }
    free(text);
}

static void manifest_declared_sizes(void)
{
    static const struct {
        const char *raw;
        uint64_t want; /* 0: rejected */
    } cases[] = {
        {"0", 0},
        {"1", 1},
        {"2147483648", UINT64_C(1) << 31},
        {"4294967301", (UINT64_C(1) << 32) + 5},
        {"1099511627776", UINT64_C(1) << 40},
        {"1099511627777", 0},
        {"18446744073709551616", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ferry_manifest m;
        struct ferry_diag d = {""};
        char *text = mutated("artifact", "size", cases[i].raw);
        enum ferry_err err = parse_str(text, &m, &d);
        if (cases[i].want) {
            CU_ASSERT_EQUAL(err, FERRY_OK);
            CU_ASSERT_EQUAL(m.size, cases[i].want);
        } else {
            CU_ASSERT_EQUAL(err, FERRY_E_MALFORMED);
            CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "'artifact.size'"));
        }
        free(text);
    }
}

static void utf8_validator(void)
{
    static const struct {
        const char *bytes;
        bool valid;
    } cases[] = {
        {"plain ascii", true},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", true}, /* é € 😀 */
        {"\xf4\x8f\xbf\xbf", true},                          /* U+10FFFF */
        {"\xed\x9f\xbf", true},                              /* U+D7FF */
        {"\xc0\xaf", false},                                 /* overlong '/' */
        {"\xc1\xbf", false},                                 /* overlong */
        {"\xe0\x80\xaf", false},                             /* overlong, 3 bytes */
        {"\xf0\x80\x80\xaf", false},                         /* overlong, 4 bytes */
        {"\xed\xa0\x80", false},                             /* U+D800 surrogate */
        {"\xed\xbf\xbf", false},                             /* U+DFFF surrogate */
        {"\xf4\x90\x80\x80", false},                         /* U+110000 */
        {"\xf5\x80\x80\x80", false},                         /* lead byte above F4 */
        {"\xff", false},
        {"\x80", false},         /* lone continuation */
        {"ab\xe2\x82", false},   /* truncated at the end */
        {"\xe2\x82x", false},    /* truncated mid-string */
        {"\xc3", false},         /* truncated two-byte */
        {"\xf0\x9f\x98", false}, /* truncated four-byte */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *b = cases[i].bytes;
        CU_ASSERT_EQUAL(ferry_utf8_valid((const uint8_t *)b, strlen(b)), cases[i].valid);
    }
}

static void manifest_invalid_utf8_rejected(void)
{
    static const char *const bad[] = {
        "\xc0\xaf",         /* overlong */
        "\xe0\x80\xaf",     /* overlong */
        "\xed\xa0\x80",     /* surrogate */
        "abc\xe2\x82",      /* truncated sequence before the closing quote */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\x80",             /* lone continuation */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char member[64];
        snprintf(member, sizeof(member), "{\"x-note\":\"%s\",", bad[i]);
        char *text = with_prefix_member(member);
        expect_rejected(text, FERRY_E_MALFORMED, "UTF-8");
        free(text);
        /* In a key, too. */
        snprintf(member, sizeof(member), "{\"x-%s\":1,", bad[i]);
        text = with_prefix_member(member);
        expect_rejected(text, FERRY_E_MALFORMED, "UTF-8");
        free(text);
    }
    /* Well-formed non-ASCII is fine where any text is allowed... */
    char *text = with_prefix_member("{\"x-note\":\"caf\xc3\xa9\",");
    CU_ASSERT_EQUAL(parse_str(text, NULL, NULL), FERRY_OK);
    free(text);
    /* ...but not in an identifier. */
    text = mutated("", "product", "\"caf\xc3\xa9\"");
    expect_rejected(text, FERRY_E_MALFORMED, "field 'product'");
    free(text);
}

/* Builds {"x-deep":[[...]], <sample members>} with `depth` brackets. */
static char *nested(size_t depth, bool closed)
{
    char *text = sample_text(NULL);
    size_t len = strlen(text);
    char *out = malloc(len + 2 * depth + 16);
    CU_ASSERT_FATAL(out != NULL);
    size_t n = (size_t)sprintf(out, "{\"x-deep\":");
    memset(out + n, '[', depth);
    n += depth;
    if (closed) {
        memset(out + n, ']', depth);
        n += depth;
    }
    out[n++] = ',';
    strcpy(out + n, text + 1);
    free(text);
    return out;
}

static void manifest_nesting_limit(void)
{
    /* The top-level object is one level: 7 brackets make 8, the most allowed. */
    char *text = nested(7, true);
    CU_ASSERT_EQUAL(parse_str(text, NULL, NULL), FERRY_OK);
    free(text);
    text = nested(8, true);
    expect_rejected(text, FERRY_E_MALFORMED, "nested");
    free(text);
    /* Deep enough to matter, small enough for the size cap. */
    text = nested(3500, true);
    expect_rejected(text, FERRY_E_MALFORMED, "nested");
    free(text);
    text = nested(3500, false);
    expect_rejected(text, FERRY_E_MALFORMED, "nested");
    free(text);
    /* 10,000 levels do not fit in a manifest at all: refused before parsing. */
    text = nested(10000, true);
    expect_rejected(text, FERRY_E_TOO_LARGE, NULL);
    free(text);
}

static void manifest_truncated_everywhere(void)
{
    size_t len = 0;
    char *text = sample_text(&len);
    struct ferry_manifest m;
    memset(&m, 0x77, sizeof(m));
    /* Every proper prefix of one compact JSON object is invalid. */
    for (size_t cut = 0; cut < len; cut++) {
        enum ferry_err err = ferry_manifest_parse((const uint8_t *)text, cut, &m, NULL);
        CU_ASSERT_NOT_EQUAL(err, FERRY_OK);
    }
    CU_ASSERT_EQUAL(m.format, 0x77777777); /* never written on failure */
    free(text);
}

static void manifest_nul_rejected(void)
{
    char *text = with_prefix_member("{\"x-note\":\"a\\u0000b\",");
    expect_rejected(text, FERRY_E_MALFORMED, "\\u0000");
    free(text);
    text = mutated("", "release", "\"r1\\u0000evil\"");
    expect_rejected(text, FERRY_E_MALFORMED, NULL);
    free(text);

    size_t len = 0;
    text = sample_text(&len);
    text[len / 2] = '\0';
    struct ferry_diag d = {""};
    CU_ASSERT_EQUAL(
        ferry_manifest_parse((const uint8_t *)text, len, &(struct ferry_manifest){0}, &d),
        FERRY_E_MALFORMED);
    free(text);
}

/* Pads the sample with an x- member to exactly `total` bytes. */
static char *padded_to(size_t total)
{
    size_t len = 0;
    char *text = sample_text(&len);
    const size_t overhead = strlen("\"x-pad\":\"\",");
    CU_ASSERT_FATAL(total >= len + overhead);
    size_t fill = total - len - overhead;
    char *out = malloc(total + 1);
    CU_ASSERT_FATAL(out != NULL);
    size_t n = (size_t)sprintf(out, "{\"x-pad\":\"");
    memset(out + n, 'p', fill);
    n += fill;
    sprintf(out + n, "\",%s", text + 1);
    CU_ASSERT_EQUAL(strlen(out), total);
    free(text);
    return out;
}

static void manifest_size_cap(void)
{
    char *text = padded_to(FERRY_MANIFEST_MAX_BYTES);
    CU_ASSERT_EQUAL(parse_str(text, NULL, NULL), FERRY_OK);
    free(text);
    text = padded_to(FERRY_MANIFEST_MAX_BYTES + 1);
    expect_rejected(text, FERRY_E_TOO_LARGE, "limit");
    free(text);
    text = padded_to(1 << 20);
    expect_rejected(text, FERRY_E_TOO_LARGE, "limit");
    free(text);
}

static void manifest_shape_errors(void)
{
    char *text = sample_text(NULL);
    size_t len = strlen(text);
    char *more = malloc(len + 8);
    CU_ASSERT_FATAL(more != NULL);
    sprintf(more, "%s x", text);
    expect_rejected(more, FERRY_E_MALFORMED, "trailing");
    sprintf(more, "%s{}", text);
    expect_rejected(more, FERRY_E_MALFORMED, "trailing");
    sprintf(more, "%s \n", text);
    CU_ASSERT_EQUAL(parse_str(more, NULL, NULL), FERRY_OK);
    sprintf(more, "[%s]", text);
    expect_rejected(more, FERRY_E_MALFORMED, "object");
    expect_rejected("", FERRY_E_MALFORMED, "empty");
    expect_rejected("null", FERRY_E_MALFORMED, NULL);
    expect_rejected("{}", FERRY_E_MALFORMED, "missing field 'format'");
    free(more);
    free(text);
}

static void semver_parse_accepts(void)
{
    static const struct {
        const char *text;
        uint64_t major, minor, patch;
        const char *pre;
    } cases[] = {
        {"0.0.0", 0, 0, 0, ""},
        {"1.2.3", 1, 2, 3, ""},
        {"10.20.30", 10, 20, 30, ""},
        {"1.0.0-alpha", 1, 0, 0, "alpha"},
        {"1.0.0-alpha.1", 1, 0, 0, "alpha.1"},
        {"1.0.0-0.3.7", 1, 0, 0, "0.3.7"},
        {"1.0.0-x.7.z.92", 1, 0, 0, "x.7.z.92"},
        {"1.0.0-x-y-z.--", 1, 0, 0, "x-y-z.--"},
        {"1.0.0+20130313144700", 1, 0, 0, ""},
        {"1.0.0-beta+exp.sha.5114f85", 1, 0, 0, "beta"},
        {"1.0.0+21AF26D3----117B344092BD", 1, 0, 0, ""},
        {"1.0.0+001", 1, 0, 0, ""},
        {"18446744073709551615.0.1", UINT64_MAX, 0, 1, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ferry_semver v;
        CU_ASSERT_EQUAL_FATAL(ferry_semver_parse(cases[i].text, &v), FERRY_OK);
        CU_ASSERT_EQUAL(v.major, cases[i].major);
        CU_ASSERT_EQUAL(v.minor, cases[i].minor);
        CU_ASSERT_EQUAL(v.patch, cases[i].patch);
        CU_ASSERT_STRING_EQUAL(v.prerelease, cases[i].pre);
    }
}

static void semver_parse_rejects(void)
{
    static const char *const bad[] = {
        "",
        "1",
        "1.2",
        "1.2.3.4",
        "v1.2.3",
        " 1.2.3",
        "1.2.3 ",
        "01.2.3",
        "1.02.3",
        "1.2.03",
        "1.2.3-",
        "1.2.3+",
        "1.2.3-01",
        "1.2.3-a..b",
        "1.2.3-a.",
        "1.2.3-a_b",
        "1.2.3+a..b",
        "1.2.3+a+b",
        "1.2.-3",
        "-1.2.3",
        "1.2.3-\xc3\xa9",
        "18446744073709551616.0.0",
        "1.0.0-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 65 bytes */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ferry_semver v;
        memset(&v, 0x33, sizeof(v));
        CU_ASSERT_EQUAL(ferry_semver_parse(bad[i], &v), FERRY_E_MALFORMED);
        CU_ASSERT_EQUAL(v.major, 0x3333333333333333u);
    }
}

static void semver_precedence(void)
{
    /* The ordering example of semver 2.0.0, section 11, plus a few more. */
    static const char *const ordered[] = {
        "0.9.99",
        "1.0.0-0",
        "1.0.0-2",
        "1.0.0-10",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.1.0",
        "1.10.0",
        "2.0.0",
        "18446744073709551615.0.0",
    };
    size_t n = sizeof(ordered) / sizeof(ordered[0]);
    struct ferry_semver v[sizeof(ordered) / sizeof(ordered[0])];
    for (size_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL_FATAL(ferry_semver_parse(ordered[i], &v[i]), FERRY_OK);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            int c = ferry_semver_cmp(&v[i], &v[j]);
            if ((i < j && c >= 0) || (i > j && c <= 0) || (i == j && c != 0)) {
                fprintf(stderr, "\n    cmp(%s, %s) = %d\n", ordered[i], ordered[j], c);
                CU_FAIL("semver precedence");
            }
        }
    }
}

static void semver_build_metadata_ignored(void)
{
    struct ferry_semver a, b, c;
    CU_ASSERT_FATAL(ferry_semver_parse("1.0.0-rc.1+build.1", &a) == FERRY_OK);
    CU_ASSERT_FATAL(ferry_semver_parse("1.0.0-rc.1+build.2", &b) == FERRY_OK);
    CU_ASSERT_FATAL(ferry_semver_parse("1.0.0-rc.1", &c) == FERRY_OK);
    CU_ASSERT_EQUAL(ferry_semver_cmp(&a, &b), 0);
    CU_ASSERT_EQUAL(ferry_semver_cmp(&a, &c), 0);
    CU_ASSERT_STRING_EQUAL(a.prerelease, "rc.1");
}

static void manifest_hardware_matching(void)
{
    struct ferry_manifest m;
    test_manifest_sample(&m, KID, NULL, 1); /* mx-100 rev A, B2; mx-200 any */
    CU_ASSERT_TRUE(ferry_manifest_matches_hw(&m, "mx-100", "A"));
    CU_ASSERT_TRUE(ferry_manifest_matches_hw(&m, "mx-100", "B2"));
    CU_ASSERT_FALSE(ferry_manifest_matches_hw(&m, "mx-100", "C"));
    CU_ASSERT_FALSE(ferry_manifest_matches_hw(&m, "mx-100", "a"));
    CU_ASSERT_FALSE(ferry_manifest_matches_hw(&m, "mx-100", NULL));
    CU_ASSERT_TRUE(ferry_manifest_matches_hw(&m, "mx-200", "Z"));
    CU_ASSERT_TRUE(ferry_manifest_matches_hw(&m, "mx-200", NULL));
    CU_ASSERT_FALSE(ferry_manifest_matches_hw(&m, "MX-200", NULL));
    CU_ASSERT_FALSE(ferry_manifest_matches_hw(&m, "mx-300", NULL));
    CU_ASSERT_FALSE(ferry_manifest_matches_hw(&m, "mx-10", "A"));
}

const char *const ferry_suite_name = "manifest";
const struct ferry_test_case ferry_tests[] = {
    {"manifest_round_trip", manifest_round_trip},
    {"manifest_encode_is_compact_and_ordered", manifest_encode_is_compact_and_ordered},
    {"manifest_encode_omits_empty_optionals", manifest_encode_omits_empty_optionals},
    {"manifest_encode_validates_first", manifest_encode_validates_first},
    {"manifest_field_rules", manifest_field_rules},
    {"manifest_optional_members", manifest_optional_members},
    {"manifest_unknown_fields_rejected", manifest_unknown_fields_rejected},
    {"manifest_extension_fields_ignored", manifest_extension_fields_ignored},
    {"manifest_duplicate_keys_rejected", manifest_duplicate_keys_rejected},
    {"manifest_declared_sizes", manifest_declared_sizes},
    {"utf8_validator", utf8_validator},
    {"manifest_invalid_utf8_rejected", manifest_invalid_utf8_rejected},
    {"manifest_nesting_limit", manifest_nesting_limit},
    {"manifest_truncated_everywhere", manifest_truncated_everywhere},
    {"manifest_nul_rejected", manifest_nul_rejected},
    {"manifest_size_cap", manifest_size_cap},
    {"manifest_shape_errors", manifest_shape_errors},
    {"semver_parse_accepts", semver_parse_accepts},
    {"semver_parse_rejects", semver_parse_rejects},
    {"semver_precedence", semver_precedence},
    {"semver_build_metadata_ignored", semver_build_metadata_ignored},
    {"manifest_hardware_matching", manifest_hardware_matching},
    {NULL, NULL},
};
