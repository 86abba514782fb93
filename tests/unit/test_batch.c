#include "cunit_main.h"

#include "ferry_batch.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct ferry_status record(const char *node, uint64_t seq, enum ferry_state state)
{
    struct ferry_status st;
    memset(&st, 0, sizeof(st));
    snprintf(st.node, sizeof(st.node), "%s", node);
    snprintf(st.gateway, sizeof(st.gateway), "gw-1");
    snprintf(st.release_id, sizeof(st.release_id), "meter-fw-1.4.2-42");
    snprintf(st.version, sizeof(st.version), "1.4.2");
    st.state = state;
    st.bytes = 65536;
    st.total = 1048576;
    st.seq = seq;
    st.ts = 1795780790;
    return st;
}

static struct ferry_batch *new_batch(size_t n)
{
    struct ferry_batch *b = calloc(1, sizeof(*b));
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    snprintf(b->id, sizeof(b->id), "gw-1:1795780801:17");
    for (size_t i = 0; i < n; i++) {
        char node[32];
        snprintf(node, sizeof(node), "node-%zu", i);
        b->records[i] = record(node, 10 + i, FERRY_STATE_DOWNLOADING);
    }
    b->n = n;
    return b;
}

static enum ferry_err decode_text(const char *text, struct ferry_batch *out, struct ferry_diag *d)
{
    return ferry_batch_decode((const uint8_t *)text, strlen(text), out, d);
}

static enum ferry_err decode_ack_text(const char *text, struct ferry_batch_ack *out,
                                      struct ferry_diag *d)
{
    return ferry_batch_ack_decode((const uint8_t *)text, strlen(text), out, d);
}

#define REC                                                                                        \
    "{\"format\":1,\"node\":\"node-7\",\"gateway\":\"gw-1\",\"state\":\"idle\",\"bytes\":0,"       \
    "\"total\":0,\"seq\":12,\"ts\":1795780790}"

static void batch_round_trips_every_field(void)
{
    struct ferry_batch *b = new_batch(3);
    b->records[1].error = FERRY_E_HASH_MISMATCH;
    b->records[1].state = FERRY_STATE_FAILED;
    snprintf(b->records[1].message, sizeof(b->records[1].message), "artifact: SHA-256 differs");
    b->records[2].gateway[0] = 0;
    b->records[2].release_id[0] = 0;
    char *json = NULL;
    size_t len = 0;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(ferry_batch_encode(b, &json, &len, &d), FERRY_OK);
    CU_ASSERT_EQUAL(len, strlen(json));
    CU_ASSERT_TRUE(len <= FERRY_BATCH_MAX_BYTES);

    struct ferry_batch *got = calloc(1, sizeof(*got));
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_EQUAL_FATAL(ferry_batch_decode((const uint8_t *)json, len, got, &d), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(got->id, b->id);
    CU_ASSERT_EQUAL_FATAL(got->n, b->n);
    for (size_t i = 0; i < b->n; i++) {
        const struct ferry_status *w = &b->records[i], *g = &got->records[i];
        CU_ASSERT_STRING_EQUAL(g->node, w->node);
        CU_ASSERT_STRING_EQUAL(g->gateway, w->gateway);
        CU_ASSERT_STRING_EQUAL(g->release_id, w->release_id);
        CU_ASSERT_STRING_EQUAL(g->version, w->version);
        CU_ASSERT_STRING_EQUAL(g->message, w->message);
        CU_ASSERT_EQUAL(g->state, w->state);
        CU_ASSERT_EQUAL(g->error, w->error);
        CU_ASSERT_EQUAL(g->bytes, w->bytes);
        CU_ASSERT_EQUAL(g->total, w->total);
        CU_ASSERT_EQUAL(g->seq, w->seq);
        CU_ASSERT_EQUAL(g->ts, w->ts);
    }
    free(got);
    free(json);
    free(b);
}

static void batch_accepts_the_documented_example(void)
{
    static const char text[] =
        "{\"format\":1,\"batch\":\"gw-1:1795780801:17\",\n"
        " \"records\":[{\"format\":1,\"node\":\"node-7\",\"gateway\":\"gw-1\","
        "\"release\":\"meter-fw-1.4.2-42\",\n"
        "             \"version\":\"1.4.2\",\"state\":\"downloading\",\"bytes\":65536,"
        "\"total\":1048576,\n"
        "             \"seq\":12,\"ts\":1795780790}]}";
    struct ferry_batch *b = calloc(1, sizeof(*b));
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(decode_text(text, b, &d), FERRY_OK);
    CU_ASSERT_EQUAL(b->n, 1);
    CU_ASSERT_STRING_EQUAL(b->records[0].node, "node-7");
    CU_ASSERT_EQUAL(b->records[0].state, FERRY_STATE_DOWNLOADING);
    CU_ASSERT_EQUAL(b->records[0].seq, 12);
    free(b);
}

static void batch_record_extensions_are_ignored(void)
{
    static const char text[] =
        "{\"format\":1,\"batch\":\"b1\",\"records\":[{\"format\":1,\"node\":\"n\",\"state\":"
        "\"idle\",\"bytes\":0,\"total\":0,\"seq\":1,\"ts\":0,\"x-battery\":77}]}";
    struct ferry_batch *b = calloc(1, sizeof(*b));
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(decode_text(text, b, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(b->n, 1);
    free(b);
}

/* Each case fails with MALFORMED, leaves out untouched and names `needle`. */
static void batch_refuses_bad_shapes(void)
{
    static const struct {
        const char *text, *needle;
    } cases[] = {
        {"{\"format\":1,\"batch\":\"b1\",\"records\":[" REC "],\"extra\":1}", "'extra'"},
        {"{\"format\":1,\"batch\":\"b1\",\"records\":[" REC "],\"x-ext\":1}", "'x-ext'"},
        {"{\"format\":2,\"batch\":\"b1\",\"records\":[" REC "]}", "'format'"},
        {"{\"batch\":\"b1\",\"records\":[" REC "]}", "'format'"},
        {"{\"format\":1,\"records\":[" REC "]}", "'batch'"},
        {"{\"format\":1,\"batch\":\"a/b\",\"records\":[" REC "]}", "'batch'"},
        {"{\"format\":1,\"batch\":\".hidden\",\"records\":[" REC "]}", "'batch'"},
        {"{\"format\":1,\"batch\":\"\",\"records\":[" REC "]}", "'batch'"},
        {"{\"format\":1,\"batch\":7,\"records\":[" REC "]}", "'batch'"},
        {"{\"format\":1,\"batch\":\"b1\"}", "'records'"},
        {"{\"format\":1,\"batch\":\"b1\",\"records\":[]}", "'records'"},
        {"{\"format\":1,\"batch\":\"b1\",\"records\":{}}", "'records'"},
        {"{\"format\":1,\"batch\":\"b1\",\"records\":[" REC ",7]}", "record 1"},
        {"{\"format\":1,\"batch\":\"b1\",\"records\":[{\"format\":1,\"node\":\"n\",\"state\":"
         "\"asleep\",\"bytes\":0,\"total\":0,\"seq\":1,\"ts\":0}]}",
         "record 0"},
        {"{\"format\":1,\"batch\":\"b1\",\"records\":[{\"format\":1,\"node\":\"../x\",\"state\":"
         "\"idle\",\"bytes\":0,\"total\":0,\"seq\":1,\"ts\":0}]}",
         "'node'"},
        {"{\"format\":1,\"batch\":\"b1\",\"batch\":\"b2\",\"records\":[" REC "]}", "duplicate"},
        {"{\"format\":1,\"batch\":\"b1\",\"records\":[" REC "]} x", "trailing"},
        {"[1,2]", "object"},
    };
    struct ferry_batch *b = calloc(1, sizeof(*b));
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ferry_diag d = {{0}};
        b->n = 99;
        CU_ASSERT_EQUAL(decode_text(cases[i].text, b, &d), FERRY_E_MALFORMED);
        if (!strstr(d.msg, cases[i].needle))
            fprintf(stderr, "case %zu: '%s' lacks '%s'\n", i, d.msg, cases[i].needle);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, cases[i].needle));
        CU_ASSERT_EQUAL(b->n, 99);
    }
    free(b);
}

static void batch_refuses_too_many_records_and_too_many_bytes(void)
{
    size_t cap = FERRY_BATCH_MAX_BYTES + 2048;
    char *text = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    size_t used = (size_t)snprintf(text, cap, "{\"format\":1,\"batch\":\"b1\",\"records\":[");
    for (int i = 0; i <= FERRY_BATCH_MAX_RECORDS; i++)
        used += (size_t)snprintf(text + used, cap - used, "%s" REC, i ? "," : "");
    snprintf(text + used, cap - used, "]}");
    struct ferry_batch *b = calloc(1, sizeof(*b));
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(decode_text(text, b, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "'records'"));

    memset(text, ' ', cap - 1);
    text[cap - 1] = 0;
    memcpy(text, "{}", 2);
    CU_ASSERT_EQUAL(decode_text(text, b, &d), FERRY_E_TOO_LARGE);
    free(b);
    free(text);
}

static void batch_encode_refuses_what_decode_would(void)
{
    struct ferry_batch *b = new_batch(1);
    char *json = NULL;
    size_t len;
    struct ferry_diag d = {{0}};
    snprintf(b->id, sizeof(b->id), "has space");
    CU_ASSERT_EQUAL(ferry_batch_encode(b, &json, &len, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "'batch'"));
    snprintf(b->id, sizeof(b->id), "ok");
    b->n = 0;
    CU_ASSERT_EQUAL(ferry_batch_encode(b, &json, &len, &d), FERRY_E_INVALID_ARG);
    b->n = FERRY_BATCH_MAX_RECORDS + 1;
    CU_ASSERT_EQUAL(ferry_batch_encode(b, &json, &len, &d), FERRY_E_INVALID_ARG);
    b->n = 1;
    b->records[0].seq = 0;
    CU_ASSERT_EQUAL(ferry_batch_encode(b, &json, &len, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "record 0"));
    CU_ASSERT_PTR_NULL(json);
    free(b);
}

static void batch_id_rule(void)
{
    CU_ASSERT_TRUE(ferry_batch_id_valid("gw-1:1795780801:17"));
    CU_ASSERT_TRUE(ferry_batch_id_valid("a.b_c"));
    CU_ASSERT_FALSE(ferry_batch_id_valid(NULL));
    CU_ASSERT_FALSE(ferry_batch_id_valid(""));
    CU_ASSERT_FALSE(ferry_batch_id_valid(".x"));
    CU_ASSERT_FALSE(ferry_batch_id_valid("a/b"));
    CU_ASSERT_FALSE(ferry_batch_id_valid("a+"));
    char id[FERRY_BATCH_ID_MAX + 2];
    memset(id, 'x', sizeof(id));
    id[FERRY_BATCH_ID_MAX] = 0;
    CU_ASSERT_TRUE(ferry_batch_id_valid(id));
    id[FERRY_BATCH_ID_MAX] = 'x';
    id[FERRY_BATCH_ID_MAX + 1] = 0;
    CU_ASSERT_FALSE(ferry_batch_id_valid(id));
}

static void ack_round_trips_with_exact_large_seq(void)
{
    struct ferry_batch_ack *a = calloc(1, sizeof(*a));
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    snprintf(a->id, sizeof(a->id), "gw-1:9:3");
    snprintf(a->acked[0].node, sizeof(a->acked[0].node), "node-7");
    a->acked[0].seq = 12;
    snprintf(a->acked[1].node, sizeof(a->acked[1].node), "node-8");
    a->acked[1].seq = UINT64_C(1) << 53;
    a->n = 2;
    char *json = NULL;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(ferry_batch_ack_encode(a, &json, &len, NULL), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "9007199254740992"));
    struct ferry_batch_ack *got = calloc(1, sizeof(*got));
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_EQUAL_FATAL(ferry_batch_ack_decode((const uint8_t *)json, len, got, NULL), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(got->id, a->id);
    CU_ASSERT_EQUAL_FATAL(got->n, 2);
    CU_ASSERT_STRING_EQUAL(got->acked[1].node, "node-8");
    CU_ASSERT_EQUAL(got->acked[1].seq, a->acked[1].seq);
    CU_ASSERT_EQUAL(got->acked[0].seq, 12);
    free(got);
    free(json);
    free(a);
}

static void ack_refuses_bad_shapes(void)
{
    static const struct {
        const char *text, *needle;
    } cases[] = {
        {"{\"format\":1,\"batch\":\"b\",\"acked\":[]}", "'acked'"},
        {"{\"format\":1,\"batch\":\"b\"}", "'acked'"},
        {"{\"format\":1,\"batch\":\"b\",\"acked\":[{\"node\":\"n\",\"seq\":0}]}", "'seq'"},
        {"{\"format\":1,\"batch\":\"b\",\"acked\":[{\"node\":\"n\",\"seq\":9007199254740994}]}",
         "'seq'"},
        {"{\"format\":1,\"batch\":\"b\",\"acked\":[{\"node\":\"n\",\"seq\":1.5}]}", "'seq'"},
        {"{\"format\":1,\"batch\":\"b\",\"acked\":[{\"node\":\"n/1\",\"seq\":1}]}", "'node'"},
        {"{\"format\":1,\"batch\":\"b\",\"acked\":[{\"node\":\"n\",\"seq\":1,\"x-a\":1}]}",
         "'x-a'"},
        {"{\"format\":1,\"batch\":\"b\",\"acked\":[{\"node\":\"n\",\"seq\":1}],\"more\":1}",
         "'more'"},
        {"{\"format\":1,\"batch\":\"b\",\"acked\":[\"n\"]}", "acked 0"},
        {"{\"format\":1,\"batch\":\"b c\",\"acked\":[{\"node\":\"n\",\"seq\":1}]}", "'batch'"},
    };
    struct ferry_batch_ack *a = calloc(1, sizeof(*a));
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ferry_diag d = {{0}};
        a->n = 77;
        CU_ASSERT_EQUAL(decode_ack_text(cases[i].text, a, &d), FERRY_E_MALFORMED);
        if (!strstr(d.msg, cases[i].needle))
            fprintf(stderr, "case %zu: '%s' lacks '%s'\n", i, d.msg, cases[i].needle);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, cases[i].needle));
        CU_ASSERT_EQUAL(a->n, 77);
    }
    free(a);
}

static void ack_encode_refuses_bad_entries(void)
{
    struct ferry_batch_ack *a = calloc(1, sizeof(*a));
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    snprintf(a->id, sizeof(a->id), "b");
    snprintf(a->acked[0].node, sizeof(a->acked[0].node), "..");
    a->acked[0].seq = 1;
    a->n = 1;
    char *json = NULL;
    size_t len;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(ferry_batch_ack_encode(a, &json, &len, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "'node'"));
    snprintf(a->acked[0].node, sizeof(a->acked[0].node), "n");
    a->acked[0].seq = 0;
    CU_ASSERT_EQUAL(ferry_batch_ack_encode(a, &json, &len, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "'seq'"));
    CU_ASSERT_PTR_NULL(json);
    free(a);
}

/* A refusal needs format 2; an ack with none stays format 1, readable by a
 * gateway that knows only that one. */
static void ack_with_refusals_round_trips_as_format_2(void)
{
    struct ferry_batch_ack *a = calloc(1, sizeof(*a));
    struct ferry_batch_ack *got = calloc(1, sizeof(*got));
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    snprintf(a->id, sizeof(a->id), "gw-1:9:4");
    snprintf(a->acked[0].node, sizeof(a->acked[0].node), "node-7");
    a->acked[0].seq = 12;
    a->n = 1;
    snprintf(a->refused[0].id.node, sizeof(a->refused[0].id.node), "node-8");
    a->refused[0].id.seq = 3;
    a->refused[0].reason = FERRY_E_CONFLICT;
    snprintf(a->refused[1].id.node, sizeof(a->refused[1].id.node), "node-9");
    a->refused[1].id.seq = 9007199254740992u;
    a->refused[1].reason = FERRY_E_SEQ_RANGE;
    a->nrefused = 2;
    char *json = NULL;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(ferry_batch_ack_encode(a, &json, &len, NULL), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"format\":2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"error\":\"conflict\""));
    CU_ASSERT_EQUAL_FATAL(ferry_batch_ack_decode((const uint8_t *)json, len, got, NULL), FERRY_OK);
    free(json);
    CU_ASSERT_EQUAL(got->n, 1);
    CU_ASSERT_EQUAL_FATAL(got->nrefused, 2);
    CU_ASSERT_STRING_EQUAL(got->refused[0].id.node, "node-8");
    CU_ASSERT_EQUAL(got->refused[0].id.seq, 3);
    CU_ASSERT_EQUAL(got->refused[0].reason, FERRY_E_CONFLICT);
    CU_ASSERT_EQUAL(got->refused[1].reason, FERRY_E_SEQ_RANGE);
    CU_ASSERT_EQUAL(got->refused[1].id.seq, 9007199254740992u);

    /* Only refusals. */
    a->n = 0;
    CU_ASSERT_EQUAL_FATAL(ferry_batch_ack_encode(a, &json, &len, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(ferry_batch_ack_decode((const uint8_t *)json, len, got, NULL), FERRY_OK);
    free(json);
    CU_ASSERT_EQUAL(got->n, 0);
    CU_ASSERT_EQUAL(got->nrefused, 2);

    /* Nothing refused: format 1. */
    a->n = 1;
    a->nrefused = 0;
    CU_ASSERT_EQUAL_FATAL(ferry_batch_ack_encode(a, &json, &len, NULL), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"format\":1"));
    CU_ASSERT_PTR_NULL(strstr(json, "refused"));
    free(json);

    /* 64 entries in all, refused ones with the longest names, fit the cap. */
    a->n = 0;
    a->nrefused = FERRY_BATCH_MAX_RECORDS;
    for (size_t i = 0; i < a->nrefused; i++) {
        memset(a->refused[i].id.node, 'n', FERRY_ID_MAX);
        a->refused[i].id.node[FERRY_ID_MAX] = 0;
        a->refused[i].id.seq = 9007199254740992u;
        a->refused[i].reason = FERRY_E_ARTIFACT_TOO_LARGE;
    }
    CU_ASSERT_EQUAL_FATAL(ferry_batch_ack_encode(a, &json, &len, NULL), FERRY_OK);
    CU_ASSERT(len <= FERRY_BATCH_ACK_MAX_BYTES);
    CU_ASSERT_EQUAL(ferry_batch_ack_decode((const uint8_t *)json, len, got, NULL), FERRY_OK);
    free(json);
    a->n = 1;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(ferry_batch_ack_encode(a, &json, &len, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "together"));
    a->n = 0;
    a->nrefused = 1;
    a->refused[0].reason = FERRY_OK;
    CU_ASSERT_EQUAL(ferry_batch_ack_encode(a, &json, &len, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "'error'"));
    free(got);
    free(a);
}

static void ack_format_2_refuses_bad_shapes(void)
{
    static const struct {
        const char *text, *needle;
    } cases[] = {
        /* A gateway of format 1 would not know what "refused" means. */
        {"{\"format\":1,\"batch\":\"b\",\"acked\":[{\"node\":\"n\",\"seq\":1}],"
         "\"refused\":[]}",
         "'refused'"},
        {"{\"format\":2,\"batch\":\"b\",\"acked\":[],\"refused\":[]}", "together"},
        {"{\"format\":2,\"batch\":\"b\"}", "together"},
        {"{\"format\":2,\"batch\":\"b\",\"refused\":[{\"node\":\"n\",\"seq\":1}]}", "'error'"},
        {"{\"format\":2,\"batch\":\"b\",\"refused\":[{\"node\":\"n\",\"seq\":1,"
         "\"error\":\"ok\"}]}",
         "'error'"},
        {"{\"format\":2,\"batch\":\"b\",\"refused\":[{\"node\":\"n\",\"seq\":1,"
         "\"error\":\"nope\"}]}",
         "'error'"},
        {"{\"format\":2,\"batch\":\"b\",\"acked\":[{\"node\":\"n\",\"seq\":1,"
         "\"error\":\"conflict\"}]}",
         "'error'"},
        {"{\"format\":2,\"batch\":\"b\",\"refused\":{}}", "'refused'"},
        {"{\"format\":3,\"batch\":\"b\",\"acked\":[{\"node\":\"n\",\"seq\":1}]}", "'format'"},
    };
    struct ferry_batch_ack *a = calloc(1, sizeof(*a));
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ferry_diag d = {{0}};
        CU_ASSERT_EQUAL(decode_ack_text(cases[i].text, a, &d), FERRY_E_MALFORMED);
        if (!strstr(d.msg, cases[i].needle))
            fprintf(stderr, "case %zu: '%s' lacks '%s'\n", i, d.msg, cases[i].needle);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, cases[i].needle));
    }
    /* More than 64 entries together. */
    char *text = malloc(16384);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    size_t used = (size_t)sprintf(text, "{\"format\":2,\"batch\":\"b\",\"acked\":[");
    for (int i = 0; i < 40; i++)
        used += (size_t)sprintf(text + used, "%s{\"node\":\"n\",\"seq\":%d}", i ? "," : "", i + 1);
    used += (size_t)sprintf(text + used, "],\"refused\":[");
    for (int i = 0; i < 40; i++)
        used += (size_t)sprintf(text + used, "%s{\"node\":\"m\",\"seq\":%d,\"error\":\"conflict\"}",
                                i ? "," : "", i + 1);
    sprintf(text + used, "]}");
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(decode_ack_text(text, a, &d), FERRY_E_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "together"));
    free(text);
    free(a);
}

/* A record's seq near 2^53 used to come back rounded (cJSON prints such a
 * number with 15 digits), which changes the record's identity. */
static void batch_records_keep_exact_large_seqs(void)
{
    static const char text[] =
        "{\"format\":1,\"batch\":\"b\",\"records\":["
        "{\"format\":1,\"node\":\"n\",\"state\":\"idle\",\"bytes\":0,\"total\":0,"
        "\"seq\":9007199254740992,\"ts\":1},"
        "{\"format\":1,\"node\":\"n\",\"state\":\"idle\",\"bytes\":9007199254740991,"
        "\"total\":9007199254740992,\"seq\":9007199254740991,\"ts\":-9007199254740991}]}";
    struct ferry_batch *b = calloc(1, sizeof(*b));
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(ferry_batch_decode((const uint8_t *)text, strlen(text), b, &d), FERRY_OK);
    CU_ASSERT_EQUAL(b->records[0].seq, UINT64_C(9007199254740992));
    CU_ASSERT_EQUAL(b->records[1].seq, UINT64_C(9007199254740991));
    CU_ASSERT_EQUAL(b->records[1].bytes, UINT64_C(9007199254740991));
    CU_ASSERT_EQUAL(b->records[1].ts, -INT64_C(9007199254740991));
    free(b);
}

static const char *str_field(const cJSON *o, const char *key)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(f) ? f->valuestring : NULL;
}

static double num_field(const cJSON *o, const char *key)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(f) ? f->valuedouble : -1;
}

static void inventory_row_json_has_one_shape(void)
{
    struct ferry_inventory_row row = {.st = record("node-3", 44, FERRY_STATE_FAILED),
                                      .updated_at = 1795780999};
    row.st.error = FERRY_E_SIZE_MISMATCH;
    row.st.version[0] = 0;
    char *json = NULL;
    size_t len;
    CU_ASSERT_EQUAL_FATAL(ferry_inventory_row_json(&row, &json, &len, NULL), FERRY_OK);
    cJSON *o = cJSON_Parse(json);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_STRING_EQUAL(str_field(o, "node"), "node-3");
    CU_ASSERT_STRING_EQUAL(str_field(o, "gateway"), "gw-1");
    CU_ASSERT_STRING_EQUAL(str_field(o, "release"), "meter-fw-1.4.2-42");
    CU_ASSERT_STRING_EQUAL(str_field(o, "version"), "");
    CU_ASSERT_STRING_EQUAL(str_field(o, "state"), "failed");
    CU_ASSERT_STRING_EQUAL(str_field(o, "error"), "size-mismatch");
    CU_ASSERT_STRING_EQUAL(str_field(o, "message"), "");
    CU_ASSERT_EQUAL(num_field(o, "bytes"), 65536);
    CU_ASSERT_EQUAL(num_field(o, "total"), 1048576);
    CU_ASSERT_EQUAL(num_field(o, "seq"), 44);
    CU_ASSERT_EQUAL(num_field(o, "ts"), 1795780790);
    CU_ASSERT_EQUAL(num_field(o, "updated_at"), 1795780999);
    cJSON_Delete(o);
    free(json);

    row.st.error = FERRY_OK;
    CU_ASSERT_EQUAL_FATAL(ferry_inventory_row_json(&row, &json, &len, NULL), FERRY_OK);
    o = cJSON_Parse(json);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_STRING_EQUAL(str_field(o, "error"), "");
    cJSON_Delete(o);
    free(json);

    json = NULL;
    row.st.bytes = row.st.total + 1;
    CU_ASSERT_EQUAL(ferry_inventory_row_json(&row, &json, &len, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NULL(json);
}

const char *const ferry_suite_name = "batch";
const struct ferry_test_case ferry_tests[] = {
    {"batch round-trips every field", batch_round_trips_every_field},
    {"batch accepts the documented example", batch_accepts_the_documented_example},
    {"batch ignores record extensions", batch_record_extensions_are_ignored},
    {"batch refuses bad shapes and names the field", batch_refuses_bad_shapes},
    {"batch refuses too many records or bytes", batch_refuses_too_many_records_and_too_many_bytes},
    {"batch encode refuses what decode would", batch_encode_refuses_what_decode_would},
    {"batch id rule", batch_id_rule},
    {"ack round-trips with an exact 2^53 seq", ack_round_trips_with_exact_large_seq},
    {"ack refuses bad shapes and names the field", ack_refuses_bad_shapes},
    {"ack encode refuses bad entries", ack_encode_refuses_bad_entries},
    {"ack with refusals round-trips as format 2", ack_with_refusals_round_trips_as_format_2},
    {"ack format 2 refuses bad shapes", ack_format_2_refuses_bad_shapes},
    {"batch records keep exact large seqs", batch_records_keep_exact_large_seqs},
    {"inventory row JSON has one shape", inventory_row_json_has_one_shape},
    {NULL, NULL},
};
