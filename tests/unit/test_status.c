#include "cunit_main.h"

#include "ferry_status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------- */

static struct ferry_status sample(enum ferry_state state)
{
    struct ferry_status st;
    memset(&st, 0, sizeof(st));
    strcpy(st.node, "node-7");
    strcpy(st.gateway, "gw1");
    strcpy(st.release_id, "meter-2026.1");
    strcpy(st.version, "1.2.3-rc.1");
    st.state = state;
    st.bytes = 4096u * (unsigned)state;
    st.total = 65536;
    st.error = state == FERRY_STATE_FAILED ? FERRY_E_HASH_MISMATCH : FERRY_OK;
    strcpy(st.message, state == FERRY_STATE_FAILED ? "Prüfsumme falsch ✗" : "");
    st.seq = 17 + (uint64_t)state;
    st.ts = 1795780800 + (int64_t)state;
    return st;
}

static bool status_equal(const struct ferry_status *a, const struct ferry_status *b)
{
    return strcmp(a->node, b->node) == 0 && strcmp(a->gateway, b->gateway) == 0 &&
           strcmp(a->release_id, b->release_id) == 0 && strcmp(a->version, b->version) == 0 &&
           a->state == b->state && a->bytes == b->bytes && a->total == b->total &&
           a->error == b->error && strcmp(a->message, b->message) == 0 && a->seq == b->seq &&
           a->ts == b->ts;
}

/* A record that no decoder produces, to show out-params stay untouched. */
static struct ferry_status sentinel(void)
{
    struct ferry_status st;
    memset(&st, 0, sizeof(st));
    strcpy(st.node, "SENTINEL");
    st.seq = 999;
    return st;
}

static bool is_sentinel(const struct ferry_status *st)
{
    struct ferry_status s = sentinel();
    return status_equal(st, &s);
}

static enum ferry_err from_json_str(const char *json, struct ferry_status *out,
                                    struct ferry_diag *d)
{
    return ferry_status_from_json((const uint8_t *)json, strlen(json), out, d);
}

/* ---- states -------------------------------------------------------------- */

static void state_names_round_trip(void)
{
    static const char *const names[] = {
        "idle",           "available", "deferred", "downloading", "verifying", "installing",
        "pending-reboot", "success",   "failed",   "rolled-back", "rejected",
    };
    CU_ASSERT_EQUAL_FATAL(sizeof(names) / sizeof(names[0]), FERRY_STATE__COUNT);
    for (unsigned i = 0; i < FERRY_STATE__COUNT; i++) {
        CU_ASSERT_STRING_EQUAL(ferry_state_name((enum ferry_state)i), names[i]);
        enum ferry_state s = FERRY_STATE__COUNT;
        CU_ASSERT_EQUAL(ferry_state_from_name(names[i], &s), FERRY_OK);
        CU_ASSERT_EQUAL(s, (enum ferry_state)i);
    }
    enum ferry_state s = FERRY_STATE_IDLE;
    CU_ASSERT_EQUAL(ferry_state_from_name("Idle", &s), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_state_from_name("", &s), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(s, FERRY_STATE_IDLE);
    CU_ASSERT_STRING_EQUAL(ferry_state_name(FERRY_STATE__COUNT), "unknown");
}

static void final_states_are_the_four_outcomes(void)
{
    for (unsigned i = 0; i < FERRY_STATE__COUNT; i++) {
        enum ferry_state s = (enum ferry_state)i;
        bool want = s == FERRY_STATE_SUCCESS || s == FERRY_STATE_FAILED ||
                    s == FERRY_STATE_ROLLED_BACK || s == FERRY_STATE_REJECTED;
        CU_ASSERT_EQUAL(ferry_state_is_final(s), want);
    }
}

/* ---- JSON ---------------------------------------------------------------- */

static void json_round_trip_every_state(void)
{
    for (unsigned i = 0; i < FERRY_STATE__COUNT; i++) {
        struct ferry_status st = sample((enum ferry_state)i), back = sentinel();
        struct ferry_diag d = {""};
        char *json = NULL;
        size_t len = 0;
        CU_ASSERT_EQUAL_FATAL(ferry_status_to_json(&st, &json, &len, &d), FERRY_OK);
        CU_ASSERT_EQUAL(len, strlen(json));
        char want[64];
        snprintf(want, sizeof(want), "\"state\":\"%s\"", ferry_state_name(st.state));
        CU_ASSERT_PTR_NOT_NULL(strstr(json, want));
        CU_ASSERT_EQUAL(strstr(json, "\"error\"") != NULL, st.error != FERRY_OK);
        CU_ASSERT_EQUAL(ferry_status_from_json((const uint8_t *)json, len, &back, &d), FERRY_OK);
        CU_ASSERT_TRUE(status_equal(&st, &back));
        free(json);
    }
}

static void json_known_text(void)
{
    struct ferry_status st;
    memset(&st, 0, sizeof(st));
    strcpy(st.node, "n1");
    strcpy(st.release_id, "r1");
    strcpy(st.version, "1.2.3");
    st.state = FERRY_STATE_DOWNLOADING;
    st.bytes = 123;
    st.total = 456;
    st.seq = 17;
    st.ts = 1795780800;
    char *json = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(ferry_status_to_json(&st, &json, &len, NULL), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(json, "{\"format\":1,\"node\":\"n1\",\"release\":\"r1\",\"version\":"
                                 "\"1.2.3\",\"state\":\"downloading\",\"bytes\":123,\"total\":"
                                 "456,\"seq\":17,\"ts\":1795780800}");
    free(json);
}

static void json_large_integers_stay_exact(void)
{
    struct ferry_status st = sample(FERRY_STATE_DOWNLOADING), back = sentinel();
    st.total = UINT64_C(1) << 53;
    st.bytes = st.total - 1;
    st.seq = UINT64_C(1) << 53;
    st.ts = -(INT64_C(1) << 53);
    char *json = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(ferry_status_to_json(&st, &json, &len, NULL), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"bytes\":9007199254740991"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"ts\":-9007199254740992"));
    CU_ASSERT_EQUAL(ferry_status_from_json((const uint8_t *)json, len, &back, NULL), FERRY_OK);
    CU_ASSERT_TRUE(status_equal(&st, &back));
    free(json);
}

static void json_accepts_node_record_and_extensions(void)
{
    /* From a node: gateway empty, nothing installed yet, a future "x-" key. */
    const char *json = "{\"format\":1,\"node\":\"n1\",\"gateway\":\"\",\"state\":\"idle\","
                       "\"bytes\":0,\"total\":0,\"seq\":1,\"ts\":0,\"x-battery\":{\"mv\":3300}}";
    struct ferry_status st = sentinel();
    struct ferry_diag d = {""};
    CU_ASSERT_EQUAL_FATAL(from_json_str(json, &st, &d), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(st.node, "n1");
    CU_ASSERT_STRING_EQUAL(st.gateway, "");
    CU_ASSERT_STRING_EQUAL(st.release_id, "");
    CU_ASSERT_STRING_EQUAL(st.version, "");
    CU_ASSERT_STRING_EQUAL(st.message, "");
    CU_ASSERT_EQUAL(st.state, FERRY_STATE_IDLE);
    CU_ASSERT_EQUAL(st.error, FERRY_OK);
    CU_ASSERT_EQUAL(st.seq, 1);
    /* Unknown total: bytes alone is fine. */
    const char *progress = "{\"format\":1,\"node\":\"n1\",\"state\":\"downloading\","
                           "\"bytes\":500,\"total\":0,\"seq\":2,\"ts\":-5}";
    CU_ASSERT_EQUAL(from_json_str(progress, &st, &d), FERRY_OK);
    CU_ASSERT_EQUAL(st.bytes, 500);
    CU_ASSERT_EQUAL(st.ts, -5);
}

struct json_case {
    const char *json;
    enum ferry_err want_err;
    const char *want_msg; /* must appear in the diagnostic */
};

#define JF(extra) "{\"format\":1,\"node\":\"n1\",\"state\":\"idle\",\"bytes\":0," extra "}"
#define JB        "\"total\":0,\"seq\":1,\"ts\":0"
#define M         FERRY_E_MALFORMED

static const struct json_case json_cases[] = {
    {"{\"format\":1,\"state\":\"idle\",\"bytes\":0," JB "}", M, "missing field 'node'"},
    {JF("\"total\":0,\"seq\":1"), M, "missing field 'ts'"},
    {JF("\"total\":0,\"ts\":0"), M, "missing field 'seq'"},
    {"{\"format\":1,\"node\":\"n1\",\"bytes\":0," JB "}", M, "missing field 'state'"},
    {"{\"node\":\"n1\",\"state\":\"idle\",\"bytes\":0," JB "}", M, "missing field 'format'"},
    {"{\"format\":2,\"node\":\"n1\",\"state\":\"idle\",\"bytes\":0," JB "}", M, "'format'"},
    {"{\"format\":1,\"node\":\"n1\",\"state\":\"x\",\"bytes\":0," JB "}", M,
     "field 'state' must be one of idle, available, deferred, downloading, verifying, "
     "installing, pending-reboot, success, failed, rolled-back, rejected, got 'x'"},
    {"{\"format\":1,\"node\":\"n1\",\"state\":3,\"bytes\":0," JB "}", M,
     "field 'state' must be a string"},
    {JF(JB ",\"foo\":1"), M, "unknown field 'foo'"},
    {JF(JB ",\"Seq\":1"), M, "unknown field 'Seq'"},
    {JF("\"total\":0,\"seq\":0,\"ts\":0"), M, "'seq'"},
    {JF("\"total\":0,\"seq\":1.5,\"ts\":0"), M, "'seq'"},
    {JF("\"total\":0,\"seq\":\"1\",\"ts\":0"), M, "'seq'"},
    {JF("\"total\":0,\"seq\":1,\"ts\":1.5"), M, "'ts'"},
    {JF("\"total\":0,\"seq\":1,\"ts\":1e300"), M, "'ts'"},
    {JF("\"total\":0,\"seq\":9007199254740994,\"ts\":0"), M, "'seq'"},
    {"{\"format\":1,\"node\":\"n1\",\"state\":\"idle\",\"bytes\":-1," JB "}", M, "'bytes'"},
    {"{\"format\":1,\"node\":\"n1\",\"state\":\"idle\",\"bytes\":5,\"total\":4,\"seq\":1,"
     "\"ts\":0}",
     M, "field 'bytes' (5) must not exceed 'total' (4)"},
    {JF(JB ",\"node\":\"n2\""), M, "duplicate key 'node'"},
    {"{\"format\":1,\"node\":\"../x\",\"state\":\"idle\",\"bytes\":0," JB "}", M, "'node'"},
    {"{\"format\":1,\"node\":\"\",\"state\":\"idle\",\"bytes\":0," JB "}", M, "'node'"},
    {"{\"format\":1,\"node\":\"n1\",\"gateway\":\"g/1\",\"state\":\"idle\",\"bytes\":0," JB "}", M,
     "'gateway'"},
    {"{\"format\":1,\"node\":\"n1\",\"gateway\":null,\"state\":\"idle\",\"bytes\":0," JB "}", M,
     "'gateway'"},
    {JF(JB ",\"release\":\"a b\""), M, "'release'"},
    {JF(JB ",\"release\":\"\""), M, "'release'"},
    {JF(JB ",\"version\":\"\""), M, "'version'"},
    {JF(JB ",\"version\":\"1.2.3-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\""), M,
     "'version'"},
    {JF(JB ",\"error\":\"ok\""), M, "field 'error'"},
    {JF(JB ",\"error\":\"nope\""), M, "field 'error'"},
    {JF(JB ",\"error\":7"), M, "field 'error'"},
    {JF(JB ",\"message\":7"), M, "field 'message'"},
    {JF(JB ",\"message\":\"\""), M, "field 'message'"},
    {JF(JB ",\"message\":\"bad \xff byte\""), M, "UTF-8"},
    {JF(JB ",\"message\":\"a\\u0000b\""), M, "\\u0000"},
    {JF(JB) " x", M, "trailing"},
    {"[1]", M, "expected a JSON object"},
    {"", M, "empty"},
    {"{\"format\":1,", M, "invalid JSON"},
};

static void json_rejects_each_rule(void)
{
    for (size_t i = 0; i < sizeof(json_cases) / sizeof(json_cases[0]); i++) {
        const struct json_case *c = &json_cases[i];
        struct ferry_status st = sentinel();
        struct ferry_diag d = {""};
        enum ferry_err err = from_json_str(c->json, &st, &d);
        if (err != c->want_err || !strstr(d.msg, c->want_msg))
            fprintf(stderr, "\ncase %zu: %s\n  got %d '%s'\n", i, c->json, err, d.msg);
        CU_ASSERT_EQUAL(err, c->want_err);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, c->want_msg));
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "status: "));
        CU_ASSERT_TRUE(is_sentinel(&st));
    }
}

static void json_length_limits(void)
{
    char msg[FERRY_STATUS_MESSAGE_MAX + 2];
    memset(msg, 'm', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = 0;
    char json[FERRY_STATUS_MAX_BYTES + 64];
    struct ferry_status st = sentinel();
    struct ferry_diag d = {""};
    /* 201 bytes: one over. */
    snprintf(json, sizeof(json), JF(JB ",\"message\":\"%s\""), msg);
    CU_ASSERT_EQUAL(from_json_str(json, &st, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "'message'"));
    CU_ASSERT_TRUE(is_sentinel(&st));
    /* 200 bytes: accepted. */
    msg[FERRY_STATUS_MESSAGE_MAX] = 0;
    snprintf(json, sizeof(json), JF(JB ",\"message\":\"%s\""), msg);
    CU_ASSERT_EQUAL(from_json_str(json, &st, &d), FERRY_OK);
    CU_ASSERT_EQUAL(strlen(st.message), FERRY_STATUS_MESSAGE_MAX);
    /* Above the record cap, even with valid content. */
    memset(json, ' ', sizeof(json));
    memcpy(json, JF(JB), strlen(JF(JB)));
    CU_ASSERT_EQUAL(
        ferry_status_from_json((const uint8_t *)json, FERRY_STATUS_MAX_BYTES + 1, &st, &d),
        FERRY_E_TOO_LARGE);
    CU_ASSERT_EQUAL(ferry_status_from_json((const uint8_t *)json, FERRY_STATUS_MAX_BYTES, &st, &d),
                    FERRY_OK);
}

/* ---- encoders refuse what decoders would ---------------------------------- */

typedef void (*mutate_fn)(struct ferry_status *st);

static void bad_seq(struct ferry_status *st)
{
    st->seq = 0;
}
static void bad_bytes(struct ferry_status *st)
{
    st->bytes = st->total + 1;
}
static void bad_total(struct ferry_status *st)
{
    st->total = (UINT64_C(1) << 53) + 1;
}
static void bad_node(struct ferry_status *st)
{
    st->node[0] = 0;
}
static void bad_node_unterminated(struct ferry_status *st)
{
    memset(st->node, 'a', sizeof(st->node));
}
static void bad_gateway(struct ferry_status *st)
{
    strcpy(st->gateway, ".gw");
}
static void bad_release(struct ferry_status *st)
{
    strcpy(st->release_id, "r 1");
}
static void bad_state(struct ferry_status *st)
{
    st->state = FERRY_STATE__COUNT;
}
static void bad_error(struct ferry_status *st)
{
    st->error = FERRY_E__COUNT;
}
static void bad_version_utf8(struct ferry_status *st)
{
    strcpy(st->version, "1.0\xc0\xaf");
}
static void bad_message_utf8(struct ferry_status *st)
{
    strcpy(st->message, "\xed\xa0\x80");
}
static void bad_ts(struct ferry_status *st)
{
    st->ts = (INT64_C(1) << 53) + 1;
}

static void encoders_refuse_invalid_records(void)
{
    static const struct {
        mutate_fn fn;
        const char *field;
    } cases[] = {
        {bad_seq, "'seq'"},
        {bad_bytes, "'bytes'"},
        {bad_total, "'total'"},
        {bad_node, "'node'"},
        {bad_node_unterminated, "'node'"},
        {bad_gateway, "'gateway'"},
        {bad_release, "'release'"},
        {bad_state, "'state'"},
        {bad_error, "'error'"},
        {bad_version_utf8, "'version'"},
        {bad_message_utf8, "'message'"},
        {bad_ts, "'ts'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ferry_status st = sample(FERRY_STATE_DOWNLOADING);
        cases[i].fn(&st);
        struct ferry_diag d = {""};
        char *json = NULL;
        size_t len = 12345;
        CU_ASSERT_EQUAL(ferry_status_to_json(&st, &json, &len, &d), FERRY_E_INVALID_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, cases[i].field));
        CU_ASSERT_PTR_NULL(json);
        uint8_t buf[FERRY_STATUS_MAX_BYTES];
        memset(buf, 0xAA, sizeof(buf));
        d.msg[0] = 0;
        CU_ASSERT_EQUAL(ferry_status_to_cbor(&st, buf, sizeof(buf), &len, &d), FERRY_E_INVALID_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, cases[i].field));
        CU_ASSERT_EQUAL(len, 12345);
        CU_ASSERT_EQUAL(buf[0], 0xAA);
    }
}

/* ---- CBOR ---------------------------------------------------------------- */

static void cbor_round_trip_every_state(void)
{
    for (unsigned i = 0; i < FERRY_STATE__COUNT; i++) {
        struct ferry_status st = sample((enum ferry_state)i), back = sentinel();
        struct ferry_diag d = {""};
        uint8_t buf[FERRY_STATUS_MAX_BYTES], again[FERRY_STATUS_MAX_BYTES];
        size_t len = 0, len2 = 0;
        CU_ASSERT_EQUAL_FATAL(ferry_status_to_cbor(&st, buf, sizeof(buf), &len, &d), FERRY_OK);
        CU_ASSERT_EQUAL(ferry_status_from_cbor(buf, len, &back, &d), FERRY_OK);
        CU_ASSERT_TRUE(status_equal(&st, &back));
        CU_ASSERT_EQUAL_FATAL(ferry_status_to_cbor(&back, again, sizeof(again), &len2, &d),
                              FERRY_OK);
        CU_ASSERT_EQUAL(len, len2);
        CU_ASSERT_EQUAL(memcmp(buf, again, len), 0);
    }
}

static void json_and_cbor_carry_the_same_record(void)
{
    for (unsigned i = 0; i < FERRY_STATE__COUNT; i++) {
        struct ferry_status st = sample((enum ferry_state)i), via_json = sentinel(),
                            via_cbor = sentinel();
        char *json = NULL;
        size_t jlen = 0, clen = 0;
        uint8_t cbor[FERRY_STATUS_MAX_BYTES];
        CU_ASSERT_EQUAL_FATAL(ferry_status_to_json(&st, &json, &jlen, NULL), FERRY_OK);
        CU_ASSERT_EQUAL(ferry_status_from_json((const uint8_t *)json, jlen, &via_json, NULL),
                        FERRY_OK);
        CU_ASSERT_EQUAL_FATAL(ferry_status_to_cbor(&via_json, cbor, sizeof(cbor), &clen, NULL),
                              FERRY_OK);
        CU_ASSERT_EQUAL(ferry_status_from_cbor(cbor, clen, &via_cbor, NULL), FERRY_OK);
        CU_ASSERT_TRUE(status_equal(&st, &via_cbor));
        /* The compact leg is worth having only if it is smaller. */
        CU_ASSERT_TRUE(clen < jlen);
        free(json);
    }
}

/* Hand-encoded per RFC 8949 (shortest heads, keys ascending): pins the wire
 * format, independent of the encoder under test. */
static const uint8_t known_a[] = {
    0xA9,                                    /* map, 9 pairs */
    0x00, 0x01,                              /* 0 format: 1 */
    0x01, 0x62, 'n',  '1',                   /* 1 node: "n1" */
    0x03, 0x62, 'r',  '1',                   /* 3 release: "r1" */
    0x04, 0x65, '1',  '.',  '2',  '.',  '3', /* 4 version: "1.2.3" */
    0x05, 0x03,                              /* 5 state: downloading */
    0x06, 0x18, 0x7B,                        /* 6 bytes: 123 (1-byte argument) */
    0x07, 0x19, 0x01, 0xC8,                  /* 7 total: 456 (2-byte argument) */
    0x0A, 0x11,                              /* 10 seq: 17 */
    0x0B, 0x1A, 0x6B, 0x09, 0x70, 0xC0,      /* 11 ts: 1795780800 (4-byte argument) */
};

static const uint8_t known_b[] = {
    0xAA,                                     /* map, 10 pairs */
    0x00, 0x01,                               /* 0 format: 1 */
    0x01, 0x66, 'e', 'd', 'g', 'e', '-', '9', /* 1 node: "edge-9" */
    0x02, 0x63, 'g', 'w', '1',                /* 2 gateway: "gw1" */
    0x05, 0x08,                               /* 5 state: failed */
    0x06, 0x1A, 0x00, 0x01, 0x11, 0x70,       /* 6 bytes: 70000 */
    0x07, 0x1A, 0x00, 0x01, 0x11, 0x70,       /* 7 total: 70000 */
    0x08, 0x6D, 'h', 'a', 's', 'h', '-', 'm', 'i', 's', 'm', 'a', 't', 'c', 'h',
    /* 8 error: "hash-mismatch" */
    0x09, 0x62, 'a', 'b',                                       /* 9 message: "ab" */
    0x0A, 0x1B, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, /* 10 seq: 2^32 */
    0x0B, 0x20,                                                 /* 11 ts: -1 */
};

static struct ferry_status known_a_record(void)
{
    struct ferry_status st;
    memset(&st, 0, sizeof(st));
    strcpy(st.node, "n1");
    strcpy(st.release_id, "r1");
    strcpy(st.version, "1.2.3");
    st.state = FERRY_STATE_DOWNLOADING;
    st.bytes = 123;
    st.total = 456;
    st.seq = 17;
    st.ts = 1795780800;
    return st;
}

static struct ferry_status known_b_record(void)
{
    struct ferry_status st;
    memset(&st, 0, sizeof(st));
    strcpy(st.node, "edge-9");
    strcpy(st.gateway, "gw1");
    st.state = FERRY_STATE_FAILED;
    st.bytes = 70000;
    st.total = 70000;
    st.error = FERRY_E_HASH_MISMATCH;
    strcpy(st.message, "ab");
    st.seq = UINT64_C(1) << 32;
    st.ts = -1;
    return st;
}

static void check_known(const struct ferry_status *st, const uint8_t *want, size_t want_len)
{
    uint8_t buf[FERRY_STATUS_MAX_BYTES];
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(ferry_status_to_cbor(st, buf, sizeof(buf), &len, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(len, want_len);
    CU_ASSERT_EQUAL(memcmp(buf, want, want_len < len ? want_len : len), 0);
    struct ferry_status back = sentinel();
    CU_ASSERT_EQUAL(ferry_status_from_cbor(want, want_len, &back, NULL), FERRY_OK);
    CU_ASSERT_TRUE(status_equal(st, &back));
}

static void cbor_known_bytes(void)
{
    struct ferry_status a = known_a_record(), b = known_b_record();
    check_known(&a, known_a, sizeof(known_a));
    check_known(&b, known_b, sizeof(known_b));
}

static void cbor_small_buffer_is_untouched(void)
{
    struct ferry_status st = known_a_record();
    uint8_t buf[sizeof(known_a)];
    size_t len = 7;
    struct ferry_diag d = {""};
    memset(buf, 0xEE, sizeof(buf));
    CU_ASSERT_EQUAL(ferry_status_to_cbor(&st, buf, sizeof(buf) - 1, &len, &d), FERRY_E_TOO_LARGE);
    CU_ASSERT_EQUAL(len, 7);
    for (size_t i = 0; i < sizeof(buf); i++)
        CU_ASSERT_EQUAL(buf[i], 0xEE);
    CU_ASSERT_EQUAL(ferry_status_to_cbor(&st, buf, sizeof(buf), &len, &d), FERRY_OK);
    CU_ASSERT_EQUAL(len, sizeof(known_a));
}

static void cbor_truncation_at_every_cut(void)
{
    const uint8_t *recs[] = {known_a, known_b};
    const size_t lens[] = {sizeof(known_a), sizeof(known_b)};
    for (size_t r = 0; r < 2; r++) {
        for (size_t cut = 0; cut < lens[r]; cut++) {
            /* A heap copy of exactly `cut` bytes, so reading past it is an
             * error the sanitizers see. */
            uint8_t *copy = malloc(cut ? cut : 1);
            CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
            memcpy(copy, recs[r], cut);
            struct ferry_status st = sentinel();
            struct ferry_diag d = {""};
            CU_ASSERT_EQUAL(ferry_status_from_cbor(copy, cut, &st, &d), FERRY_E_MALFORMED);
            CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "status: "));
            CU_ASSERT_TRUE(is_sentinel(&st));
            free(copy);
        }
    }
}

/* Any byte flipped any way: refused, or accepted only as a record whose own
 * encoding is exactly those bytes (a deterministic codec has one encoding per
 * record, so nothing non-canonical slips through). */
static void cbor_flipped_bytes(void)
{
    const uint8_t *recs[] = {known_a, known_b};
    const size_t lens[] = {sizeof(known_a), sizeof(known_b)};
    size_t refused = 0, accepted = 0;
    for (size_t r = 0; r < 2; r++) {
        for (size_t pos = 0; pos < lens[r]; pos++) {
            for (unsigned v = 0; v < 256; v++) {
                if (v == recs[r][pos])
                    continue;
                uint8_t buf[FERRY_STATUS_MAX_BYTES];
                memcpy(buf, recs[r], lens[r]);
                buf[pos] = (uint8_t)v;
                struct ferry_status st = sentinel();
                if (ferry_status_from_cbor(buf, lens[r], &st, NULL) != FERRY_OK) {
                    CU_ASSERT_TRUE(is_sentinel(&st));
                    refused++;
                    continue;
                }
                accepted++;
                uint8_t again[FERRY_STATUS_MAX_BYTES];
                size_t len = 0;
                CU_ASSERT_EQUAL_FATAL(ferry_status_to_cbor(&st, again, sizeof(again), &len, NULL),
                                      FERRY_OK);
                CU_ASSERT_EQUAL(len, lens[r]);
                CU_ASSERT_EQUAL(memcmp(again, buf, lens[r]), 0);
            }
        }
    }
    /* Text and small integers do change meaningfully; heads mostly break. */
    CU_ASSERT_TRUE(refused > 0);
    CU_ASSERT_TRUE(accepted > 0);
}

/* ---- CBOR rejections, built by a small test-side writer -------------------- */

enum ent_kind { ENT_END = 0, ENT_UINT, ENT_TEXT, ENT_RAW };

struct ent {
    enum ent_kind kind;
    uint64_t key;
    uint64_t u;    /* ENT_UINT value, ENT_RAW length */
    const char *s; /* ENT_TEXT text, ENT_RAW bytes */
};

#define U(k, v)                                                                                    \
    {                                                                                              \
        ENT_UINT, k, v, NULL                                                                       \
    }
#define T(k, s)                                                                                    \
    {                                                                                              \
        ENT_TEXT, k, 0, s                                                                          \
    }
#define RAW(k, s)                                                                                  \
    {                                                                                              \
        ENT_RAW, k, sizeof(s) - 1, s                                                               \
    }
#define BASE_HEAD U(0, 1), T(1, "n1")
#define BASE_TAIL U(5, 3), U(6, 1), U(7, 2), U(10, 1), U(11, 5)
#define BASE      BASE_HEAD, BASE_TAIL
#define MAX_ENTS  16

struct wbuf {
    uint8_t b[2048];
    size_t n;
};

static void w_bytes(struct wbuf *w, const void *p, size_t n)
{
    CU_ASSERT_FATAL(w->n + n <= sizeof(w->b));
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void w_head(struct wbuf *w, unsigned major, uint64_t v)
{
    uint8_t h[9];
    size_t n = 1;
    if (v < 24) {
        h[0] = (uint8_t)(major << 5 | v);
    } else {
        unsigned width = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffu ? 4 : 8;
        h[0] = (uint8_t)(major << 5 | (width == 1   ? 24u
                                       : width == 2 ? 25u
                                       : width == 4 ? 26u
                                                    : 27u));
        for (unsigned i = 0; i < width; i++)
            h[n++] = (uint8_t)(v >> (8 * (width - 1 - i)));
    }
    w_bytes(w, h, n);
}

/* Writes a map of the entries; `head` (if given) replaces the map head and
 * `tail` is appended. */
static void w_record(struct wbuf *w, const struct ent *e, const char *head, size_t head_len,
                     const char *tail, size_t tail_len)
{
    size_t count = 0;
    while (count < MAX_ENTS && e[count].kind != ENT_END)
        count++;
    if (head)
        w_bytes(w, head, head_len);
    else
        w_head(w, 5, count);
    for (size_t i = 0; i < count; i++) {
        w_head(w, 0, e[i].key);
        if (e[i].kind == ENT_UINT) {
            w_head(w, 0, e[i].u);
        } else if (e[i].kind == ENT_TEXT) {
            w_head(w, 3, strlen(e[i].s));
            w_bytes(w, e[i].s, strlen(e[i].s));
        } else {
            w_bytes(w, e[i].s, (size_t)e[i].u);
        }
    }
    if (tail)
        w_bytes(w, tail, tail_len);
}

struct cbor_case {
    const char *want; /* in the diagnostic */
    struct ent e[MAX_ENTS];
    const char *head, *tail;
    size_t head_len, tail_len;
};

#define LONG65 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static const struct cbor_case cbor_cases[] = {
    {"duplicate CBOR key 1 ('node')", {BASE_HEAD, T(1, "n2"), BASE_TAIL}, NULL, NULL, 0, 0},
    {"duplicate CBOR key 10 ('seq')", {BASE, U(10, 2)}, NULL, NULL, 0, 0},
    {"out of order", {T(1, "n1"), U(0, 1), BASE_TAIL}, NULL, NULL, 0, 0},
    {"out of order", {BASE_HEAD, U(5, 3), U(7, 2), U(6, 1), U(10, 1), U(11, 5)}, NULL, NULL, 0, 0},
    {"unknown CBOR key 12", {BASE, U(12, 0)}, NULL, NULL, 0, 0},
    {"unknown CBOR key 1000", {BASE, U(1000, 0)}, NULL, NULL, 0, 0},
    {"missing field 'seq'", {BASE_HEAD, U(5, 3), U(6, 1), U(7, 2), U(11, 5)}, NULL, NULL, 0, 0},
    {"missing field 'node'", {U(0, 1), BASE_TAIL}, NULL, NULL, 0, 0},
    {"missing field 'format'", {T(1, "n1"), BASE_TAIL}, NULL, NULL, 0, 0},
    {"field 'format' must be 1", {U(0, 2), T(1, "n1"), BASE_TAIL}, NULL, NULL, 0, 0},
    {"field 'state' must be at most 10",
     {BASE_HEAD, U(5, 11), U(6, 1), U(7, 2), U(10, 1), U(11, 5)},
     NULL,
     NULL,
     0,
     0},
    {"field 'state' must be an unsigned integer",
     {BASE_HEAD, T(5, "idle"), U(6, 1), U(7, 2), U(10, 1), U(11, 5)},
     NULL,
     NULL,
     0,
     0},
    {"field 'seq' must be at most",
     {BASE_HEAD, U(5, 3), U(6, 1), U(7, 2), U(10, (UINT64_C(1) << 53) + 1), U(11, 5)},
     NULL,
     NULL,
     0,
     0},
    {"field 'seq' must be in 1..",
     {BASE_HEAD, U(5, 3), U(6, 1), U(7, 2), U(10, 0), U(11, 5)},
     NULL,
     NULL,
     0,
     0},
    {"field 'bytes' (3) must not exceed 'total' (2)",
     {BASE_HEAD, U(5, 3), U(6, 3), U(7, 2), U(10, 1), U(11, 5)},
     NULL,
     NULL,
     0,
     0},
    {"field 'node' must be 1..64 bytes", {U(0, 1), T(1, LONG65), BASE_TAIL}, NULL, NULL, 0, 0},
    {"field 'node' must be an id", {U(0, 1), T(1, ".."), BASE_TAIL}, NULL, NULL, 0, 0},
    {"field 'node' must be a text string",
     {U(0, 1), RAW(1, "\x42n1"), BASE_TAIL},
     NULL,
     NULL,
     0,
     0},
    {"field 'node' must be UTF-8 text without NUL",
     {U(0, 1), RAW(1, "\x63n\0001"), BASE_TAIL},
     NULL,
     NULL,
     0,
     0},
    {"field 'gateway' must be 1..64 bytes", {BASE_HEAD, T(2, ""), BASE_TAIL}, NULL, NULL, 0, 0},
    {"field 'gateway' must be empty or an id",
     {BASE_HEAD, T(2, "g w"), BASE_TAIL},
     NULL,
     NULL,
     0,
     0},
    {"field 'release' must be", {BASE_HEAD, T(3, "r/1"), BASE_TAIL}, NULL, NULL, 0, 0},
    {"field 'version' must be 1..64 bytes",
     {BASE_HEAD, T(4, "1" LONG65), BASE_TAIL},
     NULL,
     NULL,
     0,
     0},
    {"field 'message' must be 1..200 bytes",
     {BASE_HEAD, U(5, 3), U(6, 1), U(7, 2), RAW(9, "\x7b\xff\xff\xff\xff\xff\xff\xff\xff"),
      U(10, 1), U(11, 5)},
     NULL,
     NULL,
     0,
     0},
    {"field 'error' must name an error",
     {BASE_HEAD, U(5, 3), U(6, 1), U(7, 2), T(8, "ok"), U(10, 1), U(11, 5)},
     NULL,
     NULL,
     0,
     0},
    {"field 'error' must name an error",
     {BASE_HEAD, U(5, 3), U(6, 1), U(7, 2), T(8, "nope"), U(10, 1), U(11, 5)},
     NULL,
     NULL,
     0,
     0},
    {"field 'ts' must be within",
     {BASE_HEAD, U(5, 3), U(6, 1), U(7, 2), U(10, 1),
      RAW(11, "\x3b\x00\x20\x00\x00\x00\x00\x00\x00")},
     NULL,
     NULL,
     0,
     0},
    {"field 'ts' must be within",
     {BASE_HEAD, U(5, 3), U(6, 1), U(7, 2), U(10, 1), U(11, (UINT64_C(1) << 53) + 1)},
     NULL,
     NULL,
     0,
     0},
    {"field 'ts' must be an integer",
     {BASE_HEAD, U(5, 3), U(6, 1), U(7, 2), U(10, 1), T(11, "5")},
     NULL,
     NULL,
     0,
     0},
    {"tags, floats and simple values",
     {BASE_HEAD, U(5, 3), U(6, 1), U(7, 2), U(10, 1), RAW(11, "\xc1\x05")},
     NULL,
     NULL,
     0,
     0},
    {"tags, floats and simple values",
     {BASE_HEAD, U(5, 3), U(6, 1), U(7, 2), U(10, 1), RAW(11, "\xf9\x3c\x00")},
     NULL,
     NULL,
     0,
     0},
    {"tags, floats and simple values",
     {BASE_HEAD, U(5, 3), U(6, 1), U(7, 2), U(10, 1), RAW(11, "\xf5")},
     NULL,
     NULL,
     0,
     0},
    {"field 'message' must be a text string",
     {BASE_HEAD, U(5, 3), U(6, 1), U(7, 2), RAW(9, "\xa1\x00\x00"), U(10, 1), U(11, 5)},
     NULL,
     NULL,
     0,
     0},
    {"field 'message' must be a text string",
     {BASE_HEAD, U(5, 3), U(6, 1), U(7, 2), RAW(9, "\x81\x61x"), U(10, 1), U(11, 5)},
     NULL,
     NULL,
     0,
     0},
    {"indefinite lengths", {U(0, 1), RAW(1, "\x7f\x62n1\xff"), BASE_TAIL}, NULL, NULL, 0, 0},
    {"not in its shortest form",
     {BASE_HEAD, U(5, 3), U(6, 1), U(7, 2), RAW(10, "\x18\x01"), U(11, 5)},
     NULL,
     NULL,
     0,
     0},
    {"not in its shortest form",
     {BASE_HEAD, U(5, 3), U(6, 1), U(7, 2), U(10, 1), RAW(11, "\x1a\x00\x00\xff\xff")},
     NULL,
     NULL,
     0,
     0},
    {"not in its shortest form", {BASE}, "\xb8\x07", NULL, 2, 0},
    {"indefinite lengths", {BASE}, "\xbf", "\xff", 1, 1},
    {"reserved CBOR head", {BASE}, "\xbc", NULL, 1, 0},
    {"tags, floats and simple values", {BASE}, "\xd8\x20\xa7", NULL, 3, 0},
    {"must be a map", {BASE}, "\x87", NULL, 1, 0},
    {"CBOR map has 13 entries", {BASE}, "\xad", NULL, 1, 0},
    {"CBOR map keys must be unsigned integers", {BASE}, "\xa7\x61x", NULL, 3, 0},
    {"1 trailing bytes", {BASE}, NULL, "\x00", 0, 1},
    {"truncated", {BASE}, "\xa8", NULL, 1, 0},
};

static void cbor_builder_base_is_accepted(void)
{
    static const struct ent base[MAX_ENTS] = {BASE};
    struct wbuf w = {.n = 0};
    w_record(&w, base, NULL, 0, NULL, 0);
    struct ferry_status st = sentinel();
    struct ferry_diag d = {""};
    CU_ASSERT_EQUAL(ferry_status_from_cbor(w.b, w.n, &st, &d), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(st.node, "n1");
    CU_ASSERT_EQUAL(st.ts, 5);
    /* The lowest timestamp allowed, as a negative integer head. */
    static const struct ent low[MAX_ENTS] = {
        BASE_HEAD, U(5, 3),  U(6, 1),
        U(7, 2),   U(10, 1), RAW(11, "\x3b\x00\x1f\xff\xff\xff\xff\xff\xff")};
    w.n = 0;
    w_record(&w, low, NULL, 0, NULL, 0);
    CU_ASSERT_EQUAL(ferry_status_from_cbor(w.b, w.n, &st, &d), FERRY_OK);
    CU_ASSERT_EQUAL(st.ts, -(INT64_C(1) << 53));
}

static void cbor_rejects_each_rule(void)
{
    for (size_t i = 0; i < sizeof(cbor_cases) / sizeof(cbor_cases[0]); i++) {
        const struct cbor_case *c = &cbor_cases[i];
        struct wbuf w = {.n = 0};
        w_record(&w, c->e, c->head, c->head_len, c->tail, c->tail_len);
        struct ferry_status st = sentinel();
        struct ferry_diag d = {""};
        enum ferry_err err = ferry_status_from_cbor(w.b, w.n, &st, &d);
        if (err != FERRY_E_MALFORMED || !strstr(d.msg, c->want))
            fprintf(stderr, "\ncase %zu (%s): got %d '%s'\n", i, c->want, err, d.msg);
        CU_ASSERT_EQUAL(err, FERRY_E_MALFORMED);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, c->want));
        CU_ASSERT_TRUE(is_sentinel(&st));
    }
}

static void cbor_rejects_bad_utf8_and_size(void)
{
    static const struct ent bad[MAX_ENTS] = {BASE_HEAD,       U(5, 3),  U(6, 1), U(7, 2),
                                             T(9, "caf\xc3"), U(10, 1), U(11, 5)};
    struct wbuf w = {.n = 0};
    w_record(&w, bad, NULL, 0, NULL, 0);
    struct ferry_status st = sentinel();
    struct ferry_diag d = {""};
    CU_ASSERT_EQUAL(ferry_status_from_cbor(w.b, w.n, &st, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "field 'message' must be UTF-8"));
    CU_ASSERT_TRUE(is_sentinel(&st));

    uint8_t big[FERRY_STATUS_MAX_BYTES + 1];
    memset(big, 0, sizeof(big));
    CU_ASSERT_EQUAL(ferry_status_from_cbor(big, sizeof(big), &st, &d), FERRY_E_TOO_LARGE);
    CU_ASSERT_EQUAL(ferry_status_from_cbor(big, 0, &st, &d), FERRY_E_MALFORMED);
    CU_ASSERT_TRUE(is_sentinel(&st));
}

static void cbor_message_at_limit(void)
{
    struct ferry_status st = sample(FERRY_STATE_FAILED), back = sentinel();
    memset(st.message, 'x', FERRY_STATUS_MESSAGE_MAX);
    st.message[FERRY_STATUS_MESSAGE_MAX] = 0;
    uint8_t buf[FERRY_STATUS_MAX_BYTES];
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(ferry_status_to_cbor(&st, buf, sizeof(buf), &len, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_status_from_cbor(buf, len, &back, NULL), FERRY_OK);
    CU_ASSERT_TRUE(status_equal(&st, &back));
}

/* ---- sequence window and sameness ------------------------------------------ */

static void seq_window_bounds_a_jump_ahead_only(void)
{
    CU_ASSERT_TRUE(ferry_status_seq_in_window(0, 1));
    CU_ASSERT_TRUE(ferry_status_seq_in_window(0, FERRY_STATUS_SEQ_WINDOW));
    CU_ASSERT_FALSE(ferry_status_seq_in_window(0, FERRY_STATUS_SEQ_WINDOW + 1));
    CU_ASSERT_TRUE(ferry_status_seq_in_window(100, 100 + FERRY_STATUS_SEQ_WINDOW));
    CU_ASSERT_FALSE(ferry_status_seq_in_window(100, 101 + FERRY_STATUS_SEQ_WINDOW));
    /* The record that hid a node for good: seq 2^53 after seq 12. */
    CU_ASSERT_FALSE(ferry_status_seq_in_window(12, UINT64_C(1) << 53));
    /* Behind the last one is never a jump (records may arrive late). */
    CU_ASSERT_TRUE(ferry_status_seq_in_window(UINT64_C(1) << 53, 1));
    CU_ASSERT_TRUE(ferry_status_seq_in_window(7, 7));
}

static void same_ignores_gateway_and_bytes_past_the_nul(void)
{
    struct ferry_status a = sample(FERRY_STATE_FAILED), b = a;
    CU_ASSERT_TRUE(ferry_status_same(&a, &b));
    strcpy(b.gateway, "gw2");
    CU_ASSERT_TRUE(ferry_status_same(&a, &b));
    b.message[sizeof(b.message) - 1] = 'x'; /* after the NUL: not part of it */
    CU_ASSERT_TRUE(ferry_status_same(&a, &b));
    struct ferry_status c = a;
    c.state = FERRY_STATE_SUCCESS;
    CU_ASSERT_FALSE(ferry_status_same(&a, &c));
    c = a;
    strcpy(c.message, "other");
    CU_ASSERT_FALSE(ferry_status_same(&a, &c));
    c = a;
    c.ts++;
    CU_ASSERT_FALSE(ferry_status_same(&a, &c));
    c = a;
    c.error = FERRY_OK;
    CU_ASSERT_FALSE(ferry_status_same(&a, &c));
    c = a;
    strcpy(c.version, "9.9.9");
    CU_ASSERT_FALSE(ferry_status_same(&a, &c));
}

/* A cascade: each parent appends itself to via; the path survives JSON,
 * never CBOR, and a loop or a seventh parent is refused. */
static void via_records_the_path_through_parents(void)
{
    struct ferry_status st = sentinel();
    struct ferry_diag d = {""};
    st.gateway[0] = 0;
    st.nvia = 0;
    CU_ASSERT_STRING_EQUAL(ferry_status_last_hop(&st), "");
    CU_ASSERT_EQUAL(ferry_status_add_hop(&st, "gw-c", &d), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(st.gateway, "gw-c");
    CU_ASSERT_EQUAL(st.nvia, 0);
    CU_ASSERT_EQUAL(ferry_status_add_hop(&st, "gw-b", &d), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_status_add_hop(&st, "gw-a", &d), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(ferry_status_last_hop(&st), "gw-a");
    CU_ASSERT_EQUAL(ferry_status_add_hop(&st, "gw-b", &d), FERRY_E_PROTOCOL);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "loop"));
    CU_ASSERT_EQUAL(st.nvia, 2);
    char *json = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(ferry_status_to_json(&st, &json, &len, &d), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"via\":[\"gw-b\",\"gw-a\"]"));
    struct ferry_status back;
    CU_ASSERT_EQUAL(ferry_status_from_json((const uint8_t *)json, len, &back, &d), FERRY_OK);
    free(json);
    CU_ASSERT_EQUAL(back.nvia, 2);
    CU_ASSERT_STRING_EQUAL(back.via[0], "gw-b");
    CU_ASSERT_STRING_EQUAL(back.via[1], "gw-a");
    CU_ASSERT(ferry_status_same(&st, &back));
    uint8_t cbor[FERRY_STATUS_MAX_BYTES];
    CU_ASSERT_EQUAL(ferry_status_to_cbor(&st, cbor, sizeof(cbor), &len, &d), FERRY_E_INVALID_ARG);
    /* The same record by another path is still the same record. */
    struct ferry_status direct = st;
    direct.nvia = 0;
    CU_ASSERT(ferry_status_same(&st, &direct));
    char name[16];
    for (int i = 2; i < FERRY_STATUS_VIA_MAX; i++) {
        snprintf(name, sizeof(name), "gw-%d", i);
        CU_ASSERT_EQUAL(ferry_status_add_hop(&st, name, &d), FERRY_OK);
    }
    CU_ASSERT_EQUAL(ferry_status_add_hop(&st, "gw-top", &d), FERRY_E_TOO_LARGE);
    CU_ASSERT_EQUAL(st.nvia, FERRY_STATUS_VIA_MAX);
}

static void via_rules_are_checked(void)
{
#define VB "\"state\":\"idle\",\"bytes\":0,\"total\":0,\"seq\":1,\"ts\":5"
    static const struct {
        const char *json, *needle;
    } bad[] = {
        {"{\"format\":1,\"node\":\"n1\",\"via\":[\"gw-a\"]," VB "}", "needs a 'gateway'"},
        {"{\"format\":1,\"node\":\"n1\",\"gateway\":\"g\",\"via\":[]," VB "}", "'via'"},
        {"{\"format\":1,\"node\":\"n1\",\"gateway\":\"g\",\"via\":\"a\"," VB "}", "'via'"},
        {"{\"format\":1,\"node\":\"n1\",\"gateway\":\"g\",\"via\":[\"a/b\"]," VB "}", "entry 0"},
        {"{\"format\":1,\"node\":\"n1\",\"gateway\":\"g\",\"via\":[\"a\",\"g\"]," VB "}", "twice"},
        {"{\"format\":1,\"node\":\"n1\",\"gateway\":\"g\",\"via\":[\"a\",\"b\",\"c\","
         "\"d\",\"e\",\"f\",\"h\"]," VB "}",
         "'via'"},
    };
#undef VB
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ferry_status st;
        struct ferry_diag d = {""};
        enum ferry_err err =
            ferry_status_from_json((const uint8_t *)bad[i].json, strlen(bad[i].json), &st, &d);
        CU_ASSERT_EQUAL(err, FERRY_E_MALFORMED);
        if (!strstr(d.msg, bad[i].needle))
            fprintf(stderr, "case %zu: '%s' lacks '%s'\n", i, d.msg, bad[i].needle);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, bad[i].needle));
    }
}

const char *const ferry_suite_name = "status";
const struct ferry_test_case ferry_tests[] = {
    {"state_names_round_trip", state_names_round_trip},
    {"final_states_are_the_four_outcomes", final_states_are_the_four_outcomes},
    {"json_round_trip_every_state", json_round_trip_every_state},
    {"json_known_text", json_known_text},
    {"json_large_integers_stay_exact", json_large_integers_stay_exact},
    {"json_accepts_node_record_and_extensions", json_accepts_node_record_and_extensions},
    {"json_rejects_each_rule", json_rejects_each_rule},
    {"json_length_limits", json_length_limits},
    {"encoders_refuse_invalid_records", encoders_refuse_invalid_records},
    {"cbor_round_trip_every_state", cbor_round_trip_every_state},
    {"json_and_cbor_carry_the_same_record", json_and_cbor_carry_the_same_record},
    {"cbor_known_bytes", cbor_known_bytes},
    {"cbor_small_buffer_is_untouched", cbor_small_buffer_is_untouched},
    {"cbor_truncation_at_every_cut", cbor_truncation_at_every_cut},
    {"cbor_flipped_bytes", cbor_flipped_bytes},
    {"cbor_builder_base_is_accepted", cbor_builder_base_is_accepted},
    {"cbor_rejects_each_rule", cbor_rejects_each_rule},
    {"cbor_rejects_bad_utf8_and_size", cbor_rejects_bad_utf8_and_size},
    {"cbor_message_at_limit", cbor_message_at_limit},
    {"seq_window_bounds_a_jump_ahead_only", seq_window_bounds_a_jump_ahead_only},
    {"same_ignores_gateway_and_bytes_past_the_nul", same_ignores_gateway_and_bytes_past_the_nul},
    {"via_records_the_path_through_parents", via_records_the_path_through_parents},
    {"via_rules_are_checked", via_rules_are_checked},
    {NULL, NULL},
};
