/* The trust metadata formats: the signed carrier, root and timestamp
 * documents, and the bundle a gateway serves (PROTOCOL.md, "Trust
 * metadata"). The rules that use them are in test_trust.c. */
#include "cunit_main.h"
#include "test_meta.h"

#include "ferry_meta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum ferry_err parse_root_text(const char *text, struct ferry_root *r, struct ferry_diag *d)
{
    return ferry_root_parse((const uint8_t *)text, strlen(text), r, d);
}

static void a_root_round_trips(void)
{
    struct test_key a, b, c;
    test_key_init(&a, 1);
    test_key_init(&b, 2);
    test_key_init(&c, 3);
    struct ferry_root r, back;
    test_root_init(&r, 7);
    test_root_add(&r, &a, FERRY_ROLE_ROOT);
    test_root_add(&r, &b, FERRY_ROLE_ROOT);
    r.roles[FERRY_ROLE_ROOT].threshold = 2;
    test_root_add(&r, &c, FERRY_ROLE_RELEASE);
    test_root_add(&r, &c, FERRY_ROLE_TIMESTAMP);
    strcpy(r.revoked[r.nrevoked++], "0123456789abcdef");
    r.max_seq_step = 1000;
    r.max_manifest_lifetime = 86400;
    size_t len = 0;
    char *text = test_root_body(&r, &len);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(ferry_root_parse((const uint8_t *)text, len, &back, &d), FERRY_OK);
    CU_ASSERT_EQUAL(back.version, 7);
    CU_ASSERT_EQUAL(back.nkeys, 3);
    CU_ASSERT_EQUAL(back.roles[FERRY_ROLE_ROOT].threshold, 2);
    CU_ASSERT_TRUE(ferry_root_role_equal(&back.roles[FERRY_ROLE_ROOT], &r.roles[FERRY_ROLE_ROOT]));
    CU_ASSERT_FALSE(
        ferry_root_role_equal(&back.roles[FERRY_ROLE_ROOT], &r.roles[FERRY_ROLE_RELEASE]));
    CU_ASSERT_EQUAL(back.nrevoked, 1);
    CU_ASSERT_EQUAL(back.max_seq_step, 1000);
    CU_ASSERT_EQUAL(back.max_manifest_lifetime, 86400);
    char *again = NULL;
    size_t again_len = 0;
    CU_ASSERT_EQUAL(ferry_root_encode(&back, &again, &again_len, &d), FERRY_OK);
    CU_ASSERT_TRUE(again_len == len && memcmp(again, text, len) == 0);

    struct ferry_keyring *kr = ferry_keyring_new();
    CU_ASSERT_EQUAL(ferry_root_role_keyring(&back, FERRY_ROLE_ROOT, kr, &d), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_keyring_lookup(kr, a.kid), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_keyring_lookup(kr, c.kid), FERRY_E_UNKNOWN_KEY);
    CU_ASSERT_EQUAL(ferry_keyring_lookup(kr, "0123456789abcdef"), FERRY_E_REVOKED_KEY);
    ferry_keyring_free(kr);
    free(again);
    free(text);
    test_key_free(&a);
    test_key_free(&b);
    test_key_free(&c);
}

/* Each broken root names what is wrong. */
static void root_rules(void)
{
    struct test_key a, b;
    test_key_init(&a, 4);
    test_key_init(&b, 5);
    struct ferry_root good;
    test_root_init(&good, 1);
    test_root_add(&good, &a, FERRY_ROLE_ROOT);
    test_root_add(&good, &b, FERRY_ROLE_RELEASE);
    struct ferry_diag d = {{0}};
    struct ferry_root r;
    char *text = NULL;
    size_t len = 0;

    r = good;
    r.roles[FERRY_ROLE_RELEASE].present = false;
    CU_ASSERT_EQUAL(ferry_root_encode(&r, &text, &len, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "missing role 'release'"));
    r = good;
    r.roles[FERRY_ROLE_ROOT].threshold = 2;
    CU_ASSERT_EQUAL(ferry_root_encode(&r, &text, &len, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "threshold"));
    r = good;
    test_root_add(&r, &a, FERRY_ROLE_RELEASE);
    r.roles[FERRY_ROLE_RELEASE].threshold = 2;
    CU_ASSERT_EQUAL(ferry_root_encode(&r, &text, &len, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "one signature"));
    r = good;
    strcpy(r.revoked[r.nrevoked++], a.kid);
    CU_ASSERT_EQUAL(ferry_root_encode(&r, &text, &len, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "revoked but role 'root'"));
    r = good;
    r.keys[0].kid[0] = r.keys[0].kid[0] == 'a' ? 'b' : 'a';
    CU_ASSERT_EQUAL(ferry_root_encode(&r, &text, &len, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "fingerprint"));
    r = good;
    strcpy(r.roles[FERRY_ROLE_ROOT].kids[0], "00112233445566ff");
    CU_ASSERT_EQUAL(ferry_root_encode(&r, &text, &len, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "not in 'keys'"));
    r = good;
    r.version = 0;
    CU_ASSERT_EQUAL(ferry_root_encode(&r, &text, &len, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NULL(text);

    /* Text-level rules. */
    CU_ASSERT_FATAL(ferry_root_encode(&good, &text, &len, &d) == FERRY_OK);
    struct {
        const char *from, *to, *msg;
    } edits[] = {
        {"\"type\":\"root\"", "\"type\":\"timestamp\"", "'type' must be 'root'"},
        {"\"format\":1", "\"format\":2", "'format' must be 1"},
        {"\"version\":1", "\"version\":1.5", "version"},
        {"\"roles\":{", "\"roles\":{\"admin\":{\"kids\":[],\"threshold\":1},", "admin"},
        {"\"roles\":{", "\"x-note\":\"ok\",\"roles\":{", NULL},
        {"\"issued_at\":", "\"nonsense\":1,\"issued_at\":", "nonsense"},
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        const char *at = strstr(text, edits[i].from);
        CU_ASSERT_PTR_NOT_NULL_FATAL(at);
        char edited[8192];
        snprintf(edited, sizeof(edited), "%.*s%s%s", (int)(at - text), text, edits[i].to,
                 at + strlen(edits[i].from));
        d.msg[0] = '\0';
        enum ferry_err err = parse_root_text(edited, &r, &d);
        if (!edits[i].msg) {
            CU_ASSERT_EQUAL(err, FERRY_OK);
        } else {
            CU_ASSERT_EQUAL(err, FERRY_E_MALFORMED);
            CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, edits[i].msg));
        }
    }
    free(text);
    test_key_free(&a);
    test_key_free(&b);
}

static void timestamp_rules(void)
{
    struct ferry_timestamp ts, back;
    uint8_t digest[FERRY_SHA256_LEN];
    memset(digest, 0xab, sizeof(digest));
    test_ts_init(&ts, "meter", 5, 1700000000, 3600);
    test_ts_current(&ts, "meter-2", 2, digest);
    strcpy(ts.withdrawn[ts.nwithdrawn++], "meter-1");
    char *text = NULL;
    size_t len = 0;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(ferry_timestamp_encode(&ts, &text, &len, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(ferry_timestamp_parse((const uint8_t *)text, len, &back, &d), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(back.product, "meter");
    CU_ASSERT_EQUAL(back.version, 5);
    CU_ASSERT_EQUAL(back.ncurrent, 1);
    CU_ASSERT_EQUAL(back.current[0].seq, 2);
    CU_ASSERT_EQUAL(memcmp(back.current[0].sha256, digest, sizeof(digest)), 0);
    CU_ASSERT_TRUE(ferry_timestamp_withdraws(&back, "meter-1"));
    CU_ASSERT_FALSE(ferry_timestamp_withdraws(&back, "meter-2"));
    free(text);

    struct ferry_timestamp bad = ts;
    strcpy(bad.withdrawn[bad.nwithdrawn++], "meter-2");
    CU_ASSERT_EQUAL(ferry_timestamp_encode(&bad, &text, &len, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "also withdrawn"));
    bad = ts;
    strcpy(bad.withdrawn[bad.nwithdrawn++], "meter-1");
    CU_ASSERT_EQUAL(ferry_timestamp_encode(&bad, &text, &len, &d), FERRY_E_MALFORMED);
    bad = ts;
    bad.expires_at = bad.issued_at;
    CU_ASSERT_EQUAL(ferry_timestamp_encode(&bad, &text, &len, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "expires_at"));
    bad = ts;
    strcpy(bad.product, "../x");
    CU_ASSERT_EQUAL(ferry_timestamp_encode(&bad, &text, &len, &d), FERRY_E_MALFORMED);

    static const char *const broken[] = {
        "{\"format\":1,\"type\":\"root\",\"product\":\"p\",\"version\":1,\"issued_at\":1,"
        "\"expires_at\":2}",
        "{\"format\":1,\"type\":\"timestamp\",\"product\":\"p\",\"version\":0,\"issued_at\":1,"
        "\"expires_at\":2}",
        "{\"format\":1,\"type\":\"timestamp\",\"product\":\"p\",\"version\":1,\"issued_at\":1,"
        "\"expires_at\":2,\"current\":{\"release\":\"r\",\"seq\":1,\"manifest_sha256\":\"AB\"}}",
        "{\"format\":1,\"type\":\"timestamp\",\"product\":\"p\",\"version\":1,\"issued_at\":1,"
        "\"expires_at\":2,\"withdrawn\":[3]}",
        "{\"format\":1,\"type\":\"timestamp\",\"product\":\"p\",\"version\":1,\"issued_at\":1,"
        "\"expires_at\":2,\"extra\":true}",
    };
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++)
        CU_ASSERT_EQUAL(
            ferry_timestamp_parse((const uint8_t *)broken[i], strlen(broken[i]), &back, &d),
            FERRY_E_MALFORMED);
}

/* Format 2: several current releases; format 1 is still written while at
 * most one is current, and still read. */
static void a_timestamp_names_a_bounded_list_of_current_releases(void)
{
    struct ferry_timestamp ts, back;
    struct ferry_diag d = {{0}};
    uint8_t a[FERRY_SHA256_LEN], b[FERRY_SHA256_LEN];
    memset(a, 0xaa, sizeof(a));
    memset(b, 0xbb, sizeof(b));
    char *text = NULL;
    size_t len = 0;

    test_ts_init(&ts, "meter", 7, 1700000000, 3600);
    test_ts_current(&ts, "meter-3", 3, a);
    CU_ASSERT_EQUAL_FATAL(ferry_timestamp_encode(&ts, &text, &len, &d), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"format\":1,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"current\":{"));
    free(text);

    test_ts_current(&ts, "meter-4", 4, b);
    strcpy(ts.withdrawn[ts.nwithdrawn++], "meter-2");
    CU_ASSERT_EQUAL_FATAL(ferry_timestamp_encode(&ts, &text, &len, &d), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"format\":2,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"current\":[{"));
    CU_ASSERT_EQUAL_FATAL(ferry_timestamp_parse((const uint8_t *)text, len, &back, &d), FERRY_OK);
    free(text);
    CU_ASSERT_EQUAL(back.ncurrent, 2);
    CU_ASSERT_STRING_EQUAL(back.current[1].release, "meter-4");
    CU_ASSERT_EQUAL(back.current[1].seq, 4);
    CU_ASSERT_PTR_EQUAL(ferry_timestamp_current(&back, b), &back.current[1]);
    CU_ASSERT_PTR_EQUAL(ferry_timestamp_current(&back, a), &back.current[0]);
    uint8_t c[FERRY_SHA256_LEN];
    memset(c, 0xcc, sizeof(c));
    CU_ASSERT_PTR_NULL(ferry_timestamp_current(&back, c));
    char list[256];
    CU_ASSERT_STRING_EQUAL(ferry_timestamp_current_str(&back, list, sizeof(list)),
                           "meter-3,meter-4");

    /* add_current: no release twice (by id or digest), at most the cap. */
    struct ferry_ts_release r = back.current[0];
    CU_ASSERT_EQUAL(ferry_timestamp_add_current(&back, &r, &d), FERRY_OK);
    snprintf(r.release, sizeof(r.release), "meter-9");
    CU_ASSERT_EQUAL(ferry_timestamp_add_current(&back, &r, &d), FERRY_OK);
    CU_ASSERT_EQUAL(back.ncurrent, 2);
    for (int i = 0; back.ncurrent < FERRY_TIMESTAMP_MAX_CURRENT; i++) {
        snprintf(r.release, sizeof(r.release), "meter-x%d", i);
        memset(r.sha256, i + 1, sizeof(r.sha256));
        CU_ASSERT_EQUAL_FATAL(ferry_timestamp_add_current(&back, &r, &d), FERRY_OK);
    }
    memset(r.sha256, 0x77, sizeof(r.sha256));
    snprintf(r.release, sizeof(r.release), "meter-over");
    CU_ASSERT_EQUAL(ferry_timestamp_add_current(&back, &r, &d), FERRY_E_TOO_LARGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "meter-over"));
    /* A full list with a full withdrawn list of long ids stays within the cap. */
    for (size_t i = 0; i < FERRY_TIMESTAMP_MAX_CURRENT; i++)
        snprintf(back.current[i].release, sizeof(back.current[i].release), "%.*s%02zu",
                 FERRY_NAME_MAX - 2,
                 "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc", i);
    back.nwithdrawn = 0;
    for (size_t i = 0; i < FERRY_TIMESTAMP_MAX_WITHDRAWN; i++)
        snprintf(back.withdrawn[back.nwithdrawn++], sizeof(back.withdrawn[0]), "%.*s%02zu",
                 FERRY_NAME_MAX - 2,
                 "wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww", i);
    CU_ASSERT_EQUAL(ferry_timestamp_encode(&back, &text, &len, &d), FERRY_OK);
    free(text);

    /* The same release twice, by id or by digest, is refused. */
    struct ferry_timestamp bad = ts;
    bad.current[1] = bad.current[0];
    snprintf(bad.current[1].release, sizeof(bad.current[1].release), "meter-5");
    CU_ASSERT_EQUAL(ferry_timestamp_encode(&bad, &text, &len, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "again"));
    bad = ts;
    snprintf(bad.current[1].release, sizeof(bad.current[1].release), "meter-3");
    CU_ASSERT_EQUAL(ferry_timestamp_encode(&bad, &text, &len, &d), FERRY_E_MALFORMED);
    /* A withdrawn release is never current, wherever it is in the list. */
    bad = ts;
    strcpy(bad.withdrawn[bad.nwithdrawn++], "meter-4");
    CU_ASSERT_EQUAL(ferry_timestamp_encode(&bad, &text, &len, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "also withdrawn"));

#define HEAD(f)                                                                                    \
    "{\"format\":" f ",\"type\":\"timestamp\",\"product\":\"p\",\"version\":1,\"issued_at\":1,"    \
    "\"expires_at\":2"
#define ENTRY(r, h)                                                                                \
    "{\"release\":\"" r "\",\"seq\":1,\"manifest_sha256\":\""                                      \
    "" h h h h h h h h h h h h h h h h h h h h h h h h h h h h h h h h "\"}"
    /* A format-1 document as nodes in the field saved it. */
    static const char old[] = HEAD("1") ",\"current\":" ENTRY("r", "ab") "}";
    CU_ASSERT_EQUAL(ferry_timestamp_parse((const uint8_t *)old, strlen(old), &back, &d), FERRY_OK);
    CU_ASSERT_EQUAL(back.ncurrent, 1);
    CU_ASSERT_STRING_EQUAL(back.current[0].release, "r");
    /* clang-format off */
    static const char *const broken[] = {
        /* a list in format 1 */
        HEAD("1") ",\"current\":[" ENTRY("r", "ab") "]}",
        /* an object in format 2 */
        HEAD("2") ",\"current\":" ENTRY("r", "ab") "}",
        /* an unknown format */
        HEAD("3") "}",
        /* one digest twice */
        HEAD("2") ",\"current\":[" ENTRY("r", "ab") "," ENTRY("s", "ab") "]}",
        /* one id twice */
        HEAD("2") ",\"current\":[" ENTRY("r", "01") "," ENTRY("r", "02") "]}",
        /* nine releases, one above the cap */
        HEAD("2") ",\"current\":[" ENTRY("a", "01") "," ENTRY("b", "02") "," ENTRY("c", "03")
            "," ENTRY("d", "04") "," ENTRY("e", "05") "," ENTRY("f", "06")
            "," ENTRY("g", "07") "," ENTRY("h", "08") "," ENTRY("i", "09") "]}",
        /* a withdrawn release named current */
        HEAD("2") ",\"current\":[" ENTRY("r", "ab") "],\"withdrawn\":[\"r\"]}",
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        CU_ASSERT_EQUAL(
            ferry_timestamp_parse((const uint8_t *)broken[i], strlen(broken[i]), &back, &d),
            FERRY_E_MALFORMED);
        if (i == 2) /* an unknown format names the ones known */
            CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "'format' must be 1 or 2"));
    }
    static const char two[] = HEAD("2") ",\"current\":[" ENTRY("r", "ab") "," ENTRY("s", "cd") "]}";
    CU_ASSERT_EQUAL(ferry_timestamp_parse((const uint8_t *)two, strlen(two), &back, &d), FERRY_OK);
    CU_ASSERT_EQUAL(back.ncurrent, 2);
#undef ENTRY
#undef HEAD
}

/* The cloud's record of what a rollout offers: round trip, strict. */
static void the_offered_record_round_trips_and_is_strict(void)
{
    struct ferry_offered o, back;
    struct ferry_diag d = {{0}};
    memset(&o, 0, sizeof(o));
    snprintf(o.product, sizeof(o.product), "meter");
    snprintf(o.state, sizeof(o.state), "halted");
    o.rollout = 12;
    o.n = 1;
    snprintf(o.r[0].release, sizeof(o.r[0].release), "meter-1-revert");
    o.r[0].seq = 9;
    memset(o.r[0].sha256, 0x5a, sizeof(o.r[0].sha256));
    char *text = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(ferry_offered_encode(&o, &text, &len, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(ferry_offered_parse((const uint8_t *)text, len, &back, &d), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(back.product, "meter");
    CU_ASSERT_STRING_EQUAL(back.state, "halted");
    CU_ASSERT_EQUAL(back.rollout, 12);
    CU_ASSERT_EQUAL(back.n, 1);
    CU_ASSERT_EQUAL(back.r[0].seq, 9);
    CU_ASSERT_EQUAL(memcmp(back.r[0].sha256, o.r[0].sha256, FERRY_SHA256_LEN), 0);
    free(text);
    o.n = 0; /* a cancelled rollout offers nothing */
    CU_ASSERT_EQUAL_FATAL(ferry_offered_encode(&o, &text, &len, &d), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_offered_parse((const uint8_t *)text, len, &back, &d), FERRY_OK);
    CU_ASSERT_EQUAL(back.n, 0);
    free(text);
    static const char *const broken[] = {
        "{\"format\":1,\"type\":\"timestamp\",\"product\":\"p\",\"rollout\":1,\"state\":\"x\","
        "\"current\":[]}",
        "{\"format\":2,\"type\":\"offered\",\"product\":\"p\",\"rollout\":1,\"state\":\"x\","
        "\"current\":[]}",
        "{\"format\":1,\"type\":\"offered\",\"product\":\"../p\",\"rollout\":1,\"state\":\"x\","
        "\"current\":[]}",
        "{\"format\":1,\"type\":\"offered\",\"product\":\"p\",\"rollout\":1,\"state\":\"x\","
        "\"current\":{}}",
        "{\"format\":1,\"type\":\"offered\",\"product\":\"p\",\"rollout\":1,\"state\":\"x\","
        "\"current\":[],\"x-extra\":1}",
    };
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++)
        CU_ASSERT_EQUAL(
            ferry_offered_parse((const uint8_t *)broken[i], strlen(broken[i]), &back, &d),
            FERRY_E_MALFORMED);
}

static void the_signed_carrier_is_strict(void)
{
    struct test_key a;
    test_key_init(&a, 6);
    static const char body[] = "{\"hello\":1}";
    size_t len = 0;
    char *doc = test_signed_doc(body, strlen(body), &len, 1, &a);
    struct ferry_signed *s = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(ferry_signed_parse((const uint8_t *)doc, len, 64, "doc", &s, &d),
                          FERRY_OK);
    CU_ASSERT_EQUAL(s->body_len, strlen(body));
    CU_ASSERT_TRUE(ferry_signed_has_kid(s, a.kid));
    CU_ASSERT_FALSE(ferry_signed_has_kid(s, "0000000000000000"));
    struct ferry_keyring *kr = test_keyring_of(&a, false);
    CU_ASSERT_EQUAL(ferry_signed_check(s, kr, 1, "doc", &d), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_signed_check(s, kr, 2, "doc", &d), FERRY_E_THRESHOLD);
    ferry_keyring_free(kr);
    kr = test_keyring_of(&a, true);
    CU_ASSERT_EQUAL(ferry_signed_check(s, kr, 1, "doc", &d), FERRY_E_THRESHOLD);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "revoked"));
    ferry_keyring_free(kr);
    ferry_signed_free(s);
    s = NULL;
    CU_ASSERT_EQUAL(ferry_signed_parse((const uint8_t *)doc, len, 4, "doc", &s, &d),
                    FERRY_E_TOO_LARGE);
    CU_ASSERT_PTR_NULL(s);
    free(doc);

    static const char *const broken[] = {
        "{\"format\":1,\"signed\":\"e30=\",\"signatures\":[]}",
        "{\"format\":1,\"signed\":\"e30\",\"signatures\":[{\"kid\":\"0011223344556677\","
        "\"sig\":\"" /* 64 zero bytes */
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="
        "\"}]}",
        "{\"format\":1,\"signed\":\"e30=\",\"signatures\":[{\"kid\":\"0011223344556677\","
        "\"sig\":\"AAAA\"}]}",
        "{\"format\":1,\"signed\":\"e30=\",\"signatures\":[{\"kid\":\"0011223344556677X\","
        "\"sig\":\"AAAA\"}]}",
        "{\"format\":2,\"signed\":\"e30=\",\"signatures\":[]}",
        "{\"format\":1,\"signed\":\"e30=\",\"signatures\":[],\"x-extra\":1}",
    };
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        CU_ASSERT_EQUAL(
            ferry_signed_parse((const uint8_t *)broken[i], strlen(broken[i]), 64, "doc", &s, &d),
            FERRY_E_MALFORMED);
    }
    test_key_free(&a);
}

static void a_bundle_carries_documents_unchanged(void)
{
    struct test_key a;
    test_key_init(&a, 7);
    size_t l1 = 0, l2 = 0, lt = 0;
    char *r1 = test_signed_doc("{\"r\":1}", 7, &l1, 1, &a);
    char *r2 = test_signed_doc("{\"r\":2}", 7, &l2, 1, &a);
    char *ts = test_signed_doc("{\"t\":1}", 7, &lt, 1, &a);
    struct ferry_meta_doc roots[2] = {{(uint8_t *)r1, l1}, {(uint8_t *)r2, l2}};
    struct ferry_meta_doc tsd = {(uint8_t *)ts, lt};
    uint8_t *out = NULL;
    size_t out_len = 0, n = 0;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(ferry_meta_encode(roots, 2, &tsd, &out, &out_len, &n, &d), FERRY_OK);
    CU_ASSERT_EQUAL(n, 2);
    struct ferry_meta *m = NULL;
    CU_ASSERT_EQUAL_FATAL(ferry_meta_parse(out, out_len, &m, &d), FERRY_OK);
    CU_ASSERT_EQUAL(m->nroots, 2);
    CU_ASSERT_TRUE(m->roots[1].len == l2 && memcmp(m->roots[1].buf, r2, l2) == 0);
    CU_ASSERT_TRUE(m->timestamp.len == lt && memcmp(m->timestamp.buf, ts, lt) == 0);
    ferry_meta_free(m);
    free(out);

    /* No timestamp, no roots. */
    CU_ASSERT_EQUAL_FATAL(ferry_meta_encode(NULL, 0, NULL, &out, &out_len, &n, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(ferry_meta_parse(out, out_len, &m, &d), FERRY_OK);
    CU_ASSERT_EQUAL(m->nroots, 0);
    CU_ASSERT_PTR_NULL(m->timestamp.buf);
    ferry_meta_free(m);
    free(out);

    /* Roots that do not fit stay out, newest first. */
    static char big[10000];
    memset(big, ' ', sizeof(big) - 1);
    big[0] = '{';
    big[sizeof(big) - 2] = '}';
    struct ferry_meta_doc large[2] = {{(uint8_t *)big, sizeof(big) - 1},
                                      {(uint8_t *)big, sizeof(big) - 1}};
    CU_ASSERT_EQUAL(ferry_meta_encode(large, 2, &tsd, &out, &out_len, &n, &d), FERRY_OK);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_TRUE(out_len <= FERRY_META_MAX_BYTES);
    free(out);

    static const char *const broken[] = {"{\"format\":1,\"roots\":{}}",
                                         "{\"format\":1,\"roots\":[1]}",
                                         "{\"format\":1,\"timestamp\":null}",
                                         "{\"format\":2}",
                                         "{\"format\":1,\"x\":1}",
                                         "{\"format\":1,\"roots\":[{},{},{},{},{},{},{},{},{}]}"};
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        m = NULL;
        CU_ASSERT_EQUAL(ferry_meta_parse((const uint8_t *)broken[i], strlen(broken[i]), &m, &d),
                        FERRY_E_MALFORMED);
        CU_ASSERT_PTR_NULL(m);
    }
    free(r1);
    free(r2);
    free(ts);
    test_key_free(&a);
}

const char *const ferry_suite_name = "root";
const struct ferry_test_case ferry_tests[] = {
    {"a_root_round_trips", a_root_round_trips},
    {"root_rules", root_rules},
    {"timestamp_rules", timestamp_rules},
    {"a_timestamp_names_a_bounded_list_of_current_releases",
     a_timestamp_names_a_bounded_list_of_current_releases},
    {"the_offered_record_round_trips_and_is_strict", the_offered_record_round_trips_and_is_strict},
    {"the_signed_carrier_is_strict", the_signed_carrier_is_strict},
    {"a_bundle_carries_documents_unchanged", a_bundle_carries_documents_unchanged},
    {NULL, NULL},
};
