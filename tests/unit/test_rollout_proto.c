#include "cunit_main.h"

#include "ferry_nodeinfo.h"
#include "ferry_rollout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char ENV[] = "{\"format\":1,\"alg\":\"ES256\",\"kid\":\"00\",\"manifest\":\"e30=\","
                          "\"sig\":\"AA==\"}";

/* ---- node descriptions ---------------------------------------------------------- */

static struct ferry_nodeinfo sample_info(void)
{
    struct ferry_nodeinfo ni;
    memset(&ni, 0, sizeof(ni));
    snprintf(ni.node, sizeof(ni.node), "n-7");
    snprintf(ni.product, sizeof(ni.product), "firmware");
    snprintf(ni.hw_model, sizeof(ni.hw_model), "m1");
    snprintf(ni.hw_revision, sizeof(ni.hw_revision), "B");
    CU_ASSERT_FATAL(ferry_nodeinfo_set_tag(&ni, "site", "depot-7", NULL) == FERRY_OK);
    CU_ASSERT_FATAL(ferry_nodeinfo_set_tag(&ni, "ring", "canary", NULL) == FERRY_OK);
    return ni;
}

static void nodeinfo_round_trips(void)
{
    struct ferry_nodeinfo ni = sample_info(), back;
    CU_ASSERT_STRING_EQUAL(ni.tags[0].key, "ring"); /* kept sorted */
    char *json = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(ferry_nodeinfo_to_json(&ni, &json, &len, NULL) == FERRY_OK);
    CU_ASSERT_STRING_EQUAL(json, "{\"format\":1,\"node\":\"n-7\",\"product\":\"firmware\","
                                 "\"hw_model\":\"m1\",\"hw_revision\":\"B\",\"tags\":"
                                 "{\"ring\":\"canary\",\"site\":\"depot-7\"}}");
    CU_ASSERT_FATAL(ferry_nodeinfo_from_json((uint8_t *)json, len, &back, NULL) == FERRY_OK);
    CU_ASSERT_EQUAL(memcmp(&ni, &back, sizeof(ni)), 0);
    free(json);

    char items[FERRY_NODEINFO_QUERY_MAX][FERRY_NODEINFO_ITEM_MAX];
    size_t n = 0;
    CU_ASSERT_FATAL(ferry_nodeinfo_to_query(&ni, items, &n, NULL) == FERRY_OK);
    CU_ASSERT_EQUAL(n, 5);
    CU_ASSERT_STRING_EQUAL(items[0], "n=n-7");
    CU_ASSERT_STRING_EQUAL(items[3], "tag=ring=canary");
    const char *ptrs[8];
    size_t lens[8];
    for (size_t i = 0; i < n; i++) {
        ptrs[i] = items[i];
        lens[i] = strlen(items[i]);
    }
    ptrs[n] = "x-other=1"; /* not ours: skipped */
    lens[n] = strlen(ptrs[n]);
    CU_ASSERT_FATAL(ferry_nodeinfo_from_query(ptrs, lens, n + 1, &back, NULL) == FERRY_OK);
    snprintf(back.product, sizeof(back.product), "firmware");
    CU_ASSERT_EQUAL(memcmp(&ni, &back, sizeof(ni)), 0);
}

static void nodeinfo_refuses_bad_input(void)
{
    const char *bad_json[] = {
        "{\"format\":1,\"node\":\"n\",\"product\":\"p\"}",
        "{\"format\":2,\"node\":\"n\",\"product\":\"p\",\"hw_model\":\"m\"}",
        "{\"format\":1,\"node\":\"n\",\"product\":\"p\",\"hw_model\":\"m\",\"tags\":{\"Ring\":"
        "\"x\"}}",
        "{\"format\":1,\"node\":\"n\",\"product\":\"p\",\"hw_model\":\"m\",\"tags\":{\"ring\":\"\"}"
        "}",
        "{\"format\":1,\"node\":\"n\",\"product\":\"p\",\"hw_model\":\"m\",\"tags\":{\"gateway\":"
        "\"x\"}}",
        "{\"format\":1,\"node\":\"../x\",\"product\":\"p\",\"hw_model\":\"m\"}",
        "{\"format\":1,\"node\":\"n\",\"product\":\"p\",\"hw_model\":\"m\",\"tags\":[]}",
        "{\"format\":1,\"node\":\"n\",\"product\":\"p\",\"hw_model\":\"m\",\"extra\":1}",
    };
    for (size_t i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++) {
        struct ferry_nodeinfo ni;
        struct ferry_diag d = {{0}};
        CU_ASSERT_EQUAL(
            ferry_nodeinfo_from_json((const uint8_t *)bad_json[i], strlen(bad_json[i]), &ni, &d),
            FERRY_E_MALFORMED);
        CU_ASSERT(strlen(d.msg) > 0);
    }
    struct {
        const char *items[3];
        size_t n;
        enum ferry_err want;
    } q[] = {
        {{"n=a", "x=1"}, 2, FERRY_E_NOT_FOUND},
        {{"hw=a", "hw=b"}, 2, FERRY_E_INVALID_ARG},
        {{"hw=a", "tag=ring"}, 2, FERRY_E_INVALID_ARG},
        {{"hw=a", "tag=ring=x", "tag=ring=y"}, 3, FERRY_E_INVALID_ARG},
        {{"hw=", "n=a"}, 2, FERRY_E_INVALID_ARG},
        {{"hw=a/b"}, 1, FERRY_E_INVALID_ARG},
        {{"hw=a", "tag=node=x"}, 2, FERRY_E_INVALID_ARG},
    };
    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
        size_t lens[3];
        for (size_t k = 0; k < q[i].n; k++)
            lens[k] = strlen(q[i].items[k]);
        struct ferry_nodeinfo ni;
        CU_ASSERT_EQUAL(ferry_nodeinfo_from_query(q[i].items, lens, q[i].n, &ni, NULL), q[i].want);
    }
    struct ferry_tag t;
    CU_ASSERT_EQUAL(ferry_tag_parse("ring=canary", &t, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_tag_parse("ring=", &t, NULL), FERRY_OK); /* removes the tag */
    CU_ASSERT_EQUAL(ferry_tag_parse("=x", &t, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_tag_parse("ring=a b", &t, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_tag_parse("version=1", &t, NULL), FERRY_E_INVALID_ARG);
    struct ferry_nodeinfo ni = sample_info();
    CU_ASSERT_EQUAL(ferry_nodeinfo_set_tag(&ni, "ring", "", NULL), FERRY_OK);
    CU_ASSERT_EQUAL(ni.ntags, 1);
    CU_ASSERT_PTR_NULL(ferry_nodeinfo_tag(&ni, "ring"));
    for (int i = 0; i < FERRY_NODE_MAX_TAGS - 1; i++) {
        char key[8];
        snprintf(key, sizeof(key), "k%d", i);
        CU_ASSERT_EQUAL(ferry_nodeinfo_set_tag(&ni, key, "v", NULL), FERRY_OK);
    }
    CU_ASSERT_EQUAL(ferry_nodeinfo_set_tag(&ni, "one-more", "v", NULL), FERRY_E_TOO_LARGE);
}

/* ---- selections and waves ---------------------------------------------------------- */

static void selections_and_within_or_across(void)
{
    struct ferry_nodeinfo ni = sample_info();
    struct ferry_sel_subject who = {"n-7", "gw-1", "m1", "B", "1.4.2", &ni};
    struct ferry_sel s;
    memset(&s, 0, sizeof(s));
    CU_ASSERT_TRUE(ferry_sel_match(&s, &who)); /* empty: everyone */
    CU_ASSERT_EQUAL(ferry_sel_add(&s, "site=depot-1", NULL), FERRY_OK);
    CU_ASSERT_FALSE(ferry_sel_match(&s, &who));
    CU_ASSERT_EQUAL(ferry_sel_add(&s, "site=depot-7", NULL), FERRY_OK); /* same key: OR */
    CU_ASSERT_TRUE(ferry_sel_match(&s, &who));
    CU_ASSERT_EQUAL(ferry_sel_add(&s, "hw-model=m2", NULL), FERRY_OK); /* new key: AND */
    CU_ASSERT_FALSE(ferry_sel_match(&s, &who));
    CU_ASSERT_EQUAL(ferry_sel_add(&s, "hw-model=m1", NULL), FERRY_OK);
    CU_ASSERT_TRUE(ferry_sel_match(&s, &who));
    CU_ASSERT_EQUAL(ferry_sel_add(&s, "version=1.4.2", NULL), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_sel_add(&s, "gateway=gw-1", NULL), FERRY_OK);
    CU_ASSERT_TRUE(ferry_sel_match(&s, &who));
    char text[FERRY_SEL_TEXT_MAX];
    ferry_sel_format(&s, text);
    CU_ASSERT_STRING_EQUAL(text, "site=depot-1,site=depot-7,hw-model=m2,hw-model=m1,version=1.4.2,"
                                 "gateway=gw-1");
    who.info = NULL; /* a node that never described itself has no tags */
    CU_ASSERT_FALSE(ferry_sel_match(&s, &who));
    CU_ASSERT_EQUAL(ferry_sel_add(&s, "x=1", NULL), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_sel_add(&s, "x=2", NULL), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_sel_add(&s, "x=3", NULL), FERRY_E_TOO_LARGE);
    struct ferry_sel_term t;
    CU_ASSERT_EQUAL(ferry_sel_term_parse("Ring=x", &t, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_sel_term_parse("ring", &t, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_sel_term_parse("ring=", &t, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_sel_term_parse("version=1.0.0+b.1", &t, NULL), FERRY_OK);
}

static void waves_parse_and_format(void)
{
    struct ferry_rollout_plan p;
    memset(&p, 0, sizeof(p));
    CU_ASSERT_EQUAL(ferry_waves_parse("ring=canary,0.5,10,12.25,50%,100", &p, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(p.nwaves, 6);
    CU_ASSERT_TRUE(p.waves[0].group);
    CU_ASSERT_EQUAL(p.waves[1].share_bp, 50);
    CU_ASSERT_EQUAL(p.waves[3].share_bp, 1225);
    char text[256];
    ferry_waves_format(&p, text, sizeof(text));
    CU_ASSERT_STRING_EQUAL(text, "ring=canary,0.5,10,12.25,50,100");
    const char *bad[] = {
        "",      "10,50",   "50,10,100", "10,10,100", "ring=x", "10,ring=x,100", "101",
        "0,100", "10,,100", "10,100,",   "1.234,100", "x,100",  "Ring=x,100"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct ferry_diag d = {{0}};
        CU_ASSERT_EQUAL(ferry_waves_parse(bad[i], &p, &d), FERRY_E_INVALID_ARG);
        CU_ASSERT(strlen(d.msg) > 0);
    }
    CU_ASSERT_EQUAL(p.nwaves, 6); /* failures leave it */
}

static struct ferry_rollout_plan sample_plan(void)
{
    struct ferry_rollout_plan p;
    memset(&p, 0, sizeof(p));
    CU_ASSERT_FATAL(ferry_waves_parse("ring=canary,10,50,100", &p, NULL) == FERRY_OK);
    CU_ASSERT_FATAL(ferry_sel_add(&p.select, "hw-model=m1", NULL) == FERRY_OK);
    p.success_pct = 95;
    p.min_final = 5;
    p.soak_s = 1800;
    p.halt_pct = 10;
    p.rate_per_min = 20;
    struct ferry_window_range r = {0x3e, 60, 240};
    CU_ASSERT_FATAL(ferry_window_set(&p.windows[0].w, "Europe/Berlin", "CET-1CEST,M3.5.0,M10.5.0/3",
                                     &r, 1, NULL) == FERRY_OK);
    CU_ASSERT_FATAL(ferry_sel_add(&p.windows[0].sel, "site=depot-7", NULL) == FERRY_OK);
    CU_ASSERT_FATAL(ferry_window_set(&p.windows[1].w, "UTC", "UTC0", &r, 1, NULL) == FERRY_OK);
    p.nwindows = 2;
    return p;
}

static void plan_round_trips(void)
{
    struct ferry_rollout_plan p = sample_plan(), back;
    char *json = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(ferry_rollout_plan_to_json(&p, &json, &len, NULL) == FERRY_OK);
    CU_ASSERT_FATAL(ferry_rollout_plan_from_json((uint8_t *)json, len, &back, NULL) == FERRY_OK);
    CU_ASSERT_EQUAL(memcmp(&p, &back, sizeof(p)), 0);
    free(json);
    p.success_pct = 101;
    CU_ASSERT_EQUAL(ferry_rollout_plan_to_json(&p, &json, &len, NULL), FERRY_E_INVALID_ARG);
    p.success_pct = 95;
    p.min_final = 0;
    CU_ASSERT_EQUAL(ferry_rollout_plan_to_json(&p, &json, &len, NULL), FERRY_E_INVALID_ARG);
    const char *bad = "{\"format\":1,\"select\":[],\"waves\":[\"10\"],\"success\":1,"
                      "\"min_final\":1,\"soak\":0,\"halt\":1,\"rate\":0,\"windows\":[]}";
    CU_ASSERT_EQUAL(ferry_rollout_plan_from_json((const uint8_t *)bad, strlen(bad), &back, NULL),
                    FERRY_E_MALFORMED);
}

/* ---- doc and report ---------------------------------------------------------------------- */

static struct ferry_rollout_doc *sample_doc(size_t ntargets)
{
    struct ferry_rollout_doc *doc = calloc(1, sizeof(*doc));
    CU_ASSERT_FATAL(doc != NULL);
    doc->rollout = 3;
    doc->revision = 12;
    doc->resume = 1;
    snprintf(doc->gateway, sizeof(doc->gateway), "gw-1");
    snprintf(doc->product, sizeof(doc->product), "firmware");
    doc->state = FERRY_ROLLOUT_RUNNING;
    doc->release = (uint8_t *)strdup(ENV);
    doc->release_len = strlen(ENV);
    doc->halt_pct = 10;
    doc->min_final = 5;
    doc->rate_per_min = 20;
    doc->nwaves = 3;
    doc->open_waves = 1;
    struct ferry_window_range r = {0x3e, 60, 240};
    CU_ASSERT_FATAL(ferry_window_set(&doc->windows[0], "Europe/Berlin",
                                     "CET-1CEST,M3.5.0,M10.5.0/3", &r, 1, NULL) == FERRY_OK);
    doc->nwindows = 1;
    doc->targets = calloc(ntargets ? ntargets : 1, sizeof(*doc->targets));
    doc->ntargets = ntargets;
    for (size_t i = 0; i < ntargets; i++) {
        snprintf(doc->targets[i].node, sizeof(doc->targets[i].node), "node-%06zu", i);
        doc->targets[i].wave = (uint8_t)(i % 3);
        doc->targets[i].window = i % 2 ? 0 : -1;
        doc->targets[i].state = i % 5 == 0 ? FERRY_STATE_SUCCESS : -1;
    }
    return doc;
}

static void doc_round_trips(void)
{
    struct ferry_rollout_doc *doc = sample_doc(1000), *back = NULL;
    doc->revert = (uint8_t *)strdup(ENV);
    doc->revert_len = strlen(ENV);
    char *json = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(ferry_rollout_doc_to_json(doc, &json, &len, NULL) == FERRY_OK);
    struct ferry_diag d = {{0}};
    enum ferry_err err = ferry_rollout_doc_from_json((uint8_t *)json, len, &back, &d);
    if (err != FERRY_OK)
        fprintf(stderr, "%s\n", d.msg);
    CU_ASSERT_FATAL(err == FERRY_OK);
    CU_ASSERT_EQUAL(back->revision, 12);
    CU_ASSERT_EQUAL(back->state, FERRY_ROLLOUT_RUNNING);
    CU_ASSERT_EQUAL(back->release_len, doc->release_len);
    CU_ASSERT_EQUAL(memcmp(back->release, ENV, strlen(ENV)), 0);
    CU_ASSERT_EQUAL(back->revert_len, strlen(ENV));
    CU_ASSERT_EQUAL(back->ntargets, 1000);
    CU_ASSERT_EQUAL(memcmp(back->targets, doc->targets, 1000 * sizeof(*doc->targets)), 0);
    CU_ASSERT_EQUAL(memcmp(&back->windows[0], &doc->windows[0], sizeof(doc->windows[0])), 0);
    ferry_rollout_doc_free(back);
    free(json);
    ferry_rollout_doc_free(doc);
}

static void doc_refuses_what_it_cannot_enforce(void)
{
    struct ferry_rollout_doc *doc = sample_doc(2), *back = NULL;
    char *json = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(ferry_rollout_doc_to_json(doc, &json, &len, NULL) == FERRY_OK);
    const char *swaps[][2] = {
        {"\"open_waves\":1", "\"open_waves\":4"},                     /* more than there are */
        {"[\"node-000001\",1,0,\"\"]", "[\"node-000001\",3,0,\"\"]"}, /* no such wave */
        {"[\"node-000001\",1,0,\"\"]", "[\"node-000001\",1,1,\"\"]"}, /* no such window */
        {"[\"node-000001\",1,0,\"\"]", "[\"../x\",1,0,\"\"]"},
        {"[\"node-000001\",1,0,\"\"]", "[\"node-000001\",1,0,\"done\"]"},
        {"[\"node-000001\",1,0,\"\"]", "[\"node-000001\",1,0]"},
        {"\"state\":\"running\"", "\"state\":\"sleeping\""},
        {"\"halt\":10", "\"halt\":101"},
        {"\"revision\":12", "\"revision\":0"},
        {"\"days\":62", "\"days\":0"},
        {"\"rule\":\"CET-1CEST,M3.5.0,M10.5.0/3\"", "\"rule\":\"nonsense\""},
    };
    for (size_t i = 0; i < sizeof(swaps) / sizeof(swaps[0]); i++) {
        const char *at = strstr(json, swaps[i][0]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(at);
        char *bad = malloc(len + 64);
        size_t pre = (size_t)(at - json);
        memcpy(bad, json, pre);
        strcpy(bad + pre, swaps[i][1]);
        strcat(bad, at + strlen(swaps[i][0]));
        struct ferry_diag d = {{0}};
        CU_ASSERT_NOT_EQUAL(ferry_rollout_doc_from_json((uint8_t *)bad, strlen(bad), &back, &d),
                            FERRY_OK);
        CU_ASSERT(strlen(d.msg) > 0);
        free(bad);
    }
    free(json);
    ferry_rollout_doc_free(doc);
}

static void report_round_trips(void)
{
    struct ferry_rollout_report r, back;
    memset(&r, 0, sizeof(r));
    snprintf(r.gateway, sizeof(r.gateway), "gw-2");
    r.at = 1795780800;
    r.n = 2;
    r.items[0] = (struct ferry_rollout_report_item){.rollout = 3,
                                                    .revision = 9,
                                                    .resume = 1,
                                                    .halted = true,
                                                    .halted_at = 1795780700,
                                                    .offline = true,
                                                    .finals = 4,
                                                    .failed = 3};
    snprintf(r.items[0].product, sizeof(r.items[0].product), "firmware");
    snprintf(r.items[0].reason, sizeof(r.items[0].reason), "3 of 4 final states failed");
    r.items[1] = (struct ferry_rollout_report_item){.rollout = 4, .revision = 1};
    snprintf(r.items[1].product, sizeof(r.items[1].product), "sensor");
    char *json = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(ferry_rollout_report_to_json(&r, &json, &len, NULL) == FERRY_OK);
    CU_ASSERT_FATAL(ferry_rollout_report_from_json((uint8_t *)json, len, &back, NULL) == FERRY_OK);
    CU_ASSERT_EQUAL(memcmp(&r, &back, sizeof(r)), 0);
    free(json);
    const char *bad = "{\"format\":1,\"gateway\":\"gw\",\"at\":1,\"rollouts\":[{\"rollout\":1,"
                      "\"revision\":1,\"resume\":0,\"product\":\"p\",\"halted\":true}]}";
    CU_ASSERT_EQUAL(ferry_rollout_report_from_json((const uint8_t *)bad, strlen(bad), &back, NULL),
                    FERRY_E_MALFORMED);
}

static void state_names(void)
{
    for (int s = 0; s < FERRY_ROLLOUT__COUNT; s++) {
        enum ferry_rollout_state back;
        CU_ASSERT_EQUAL(ferry_rollout_state_from_name(ferry_rollout_state_name(s), &back),
                        FERRY_OK);
        CU_ASSERT_EQUAL(back, s);
    }
    CU_ASSERT_TRUE(ferry_rollout_state_is_final(FERRY_ROLLOUT_CANCELLED));
    CU_ASSERT_FALSE(ferry_rollout_state_is_final(FERRY_ROLLOUT_HALTED));
}

const char *const ferry_suite_name = "rollout_proto";
const struct ferry_test_case ferry_tests[] = {
    {"nodeinfo_round_trips", nodeinfo_round_trips},
    {"nodeinfo_refuses_bad_input", nodeinfo_refuses_bad_input},
    {"selections_and_within_or_across", selections_and_within_or_across},
    {"waves_parse_and_format", waves_parse_and_format},
    {"plan_round_trips", plan_round_trips},
    {"doc_round_trips", doc_round_trips},
    {"doc_refuses_what_it_cannot_enforce", doc_refuses_what_it_cannot_enforce},
    {"report_round_trips", report_round_trips},
    {"state_names", state_names},
    {NULL, NULL},
};
