/* The rollout controller against a real SQLite inventory, with the MQTT
 * side replaced by a list of what it published. */
#include "cunit_main.h"

#include "cloud_inventory.h"
#include "cloud_inventory_rollout.h"
#include "cloud_rollout_assign.h"
#include "cloud_rollout_ctl.h"
#include "cloud_rollout_ops.h"
#include "cloud_timestamp.h"
#include "db_fixture.h"
#include "ferry_fs.h"
#include "ferry_rollout.h"
#include "test_meta.h"

#include <libpq-fe.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FLEET    "f1"
#define ENVELOPE "{\"format\":1,\"fake\":\"the controller never verifies\"}"

/* The inventory stamps records with the real clock, and the controller
 * compares those stamps with the time of its tick: the tests tick at the
 * real time (NOW), and wait for a soak to pass. */
static int64_t T0;
#define NOW ((int64_t)time(NULL))

struct sent {
    char topic[FERRY_TOPIC_MAX];
    char *payload;
    size_t len;
};

struct wire {
    struct sent v[4096];
    size_t n;
    bool down;
};

static enum ferry_err fake_publish(void *arg, const char *topic, const void *buf, size_t len,
                                   bool retain)
{
    struct wire *w = arg;
    CU_ASSERT_TRUE(retain);
    if (w->down)
        return FERRY_E_BUSY;
    CU_ASSERT_FATAL(w->n < sizeof(w->v) / sizeof(w->v[0]));
    struct sent *s = &w->v[w->n++];
    snprintf(s->topic, sizeof(s->topic), "%s", topic);
    s->payload = malloc(len + 1);
    memcpy(s->payload, buf, len);
    s->payload[len] = 0;
    s->len = len;
    return FERRY_OK;
}

static void wire_clear(struct wire *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->v[i].payload);
    w->n = 0;
}

/* The last document sent for gateway gw, decoded (free it). */
static struct ferry_rollout_doc *last_doc(const struct wire *w, const char *gw)
{
    char topic[FERRY_TOPIC_MAX];
    CU_ASSERT_FATAL(ferry_topic(topic, sizeof(topic), FERRY_TOPIC_ROLLOUT, FLEET, gw, "fw") ==
                    FERRY_OK);
    for (size_t i = w->n; i-- > 0;) {
        if (strcmp(w->v[i].topic, topic) != 0)
            continue;
        struct ferry_rollout_doc *doc = NULL;
        struct ferry_diag d = {{0}};
        enum ferry_err err =
            ferry_rollout_doc_from_json((uint8_t *)w->v[i].payload, w->v[i].len, &doc, &d);
        if (err != FERRY_OK)
            fprintf(stderr, "%s\n", d.msg);
        CU_ASSERT_FATAL(err == FERRY_OK);
        return doc;
    }
    return NULL;
}

struct world {
    char path[PATH_MAX + 128];
    char store[PATH_MAX]; /* "": the controller records nothing */
    struct cloud_inventory *inv;
    struct cloud_rollout_ctl *ctl;
    struct wire wire;
    uint64_t seq[64];
};

static void world_open(struct world *x, const char *name)
{
    T0 = (int64_t)time(NULL);
    snprintf(x->path, sizeof(x->path), "%s", ferry_test_db(name));
    struct ferry_diag d = {{0}};
    CU_ASSERT_FATAL(cloud_inventory_open(x->path, true, &x->inv, &d) == FERRY_OK);
    struct cloud_rollout_ctl_io io = {
        .arg = &x->wire, .publish = fake_publish, .store_dir = x->store[0] ? x->store : NULL};
    CU_ASSERT_FATAL(cloud_rollout_ctl_new(x->inv, FLEET, &io, &x->ctl, &d) == FERRY_OK);
}

static void world_close(struct world *x)
{
    cloud_rollout_ctl_free(x->ctl);
    cloud_inventory_close(x->inv);
    wire_clear(&x->wire);
}

/* Node n<i> on gateway gw<i % 2>, described as its gateway would. */
static void describe(struct world *x, int i, const char *tag)
{
    struct ferry_nodeinfo ni;
    memset(&ni, 0, sizeof(ni));
    snprintf(ni.node, sizeof(ni.node), "n%02d", i);
    snprintf(ni.product, sizeof(ni.product), "fw");
    snprintf(ni.hw_model, sizeof(ni.hw_model), "m1");
    if (tag)
        CU_ASSERT_FATAL(ferry_nodeinfo_set_tag(&ni, "ring", tag, NULL) == FERRY_OK);
    char *json = NULL, topic[FERRY_TOPIC_MAX], gw[8];
    size_t len = 0;
    snprintf(gw, sizeof(gw), "gw%d", i % 2);
    CU_ASSERT_FATAL(ferry_nodeinfo_to_json(&ni, &json, &len, NULL) == FERRY_OK);
    CU_ASSERT_FATAL(ferry_topic(topic, sizeof(topic), FERRY_TOPIC_NODE_INFO, FLEET, gw, ni.node) ==
                    FERRY_OK);
    CU_ASSERT_TRUE(cloud_rollout_ctl_message(x->ctl, topic, (uint8_t *)json, len));
    free(json);
}

static void report(struct world *x, int i, const char *release, enum ferry_state s)
{
    struct ferry_status st;
    memset(&st, 0, sizeof(st));
    snprintf(st.node, sizeof(st.node), "n%02d", i);
    snprintf(st.gateway, sizeof(st.gateway), "gw%d", i % 2);
    snprintf(st.release_id, sizeof(st.release_id), "%s", release);
    snprintf(st.version, sizeof(st.version), "2.0.0");
    st.state = s;
    st.seq = ++x->seq[i];
    st.ts = T0;
    struct ferry_record_id ids[1];
    struct ferry_record_refusal refused[1];
    struct cloud_ingest_out out = {.stored = ids, .refused = refused};
    CU_ASSERT_FATAL(cloud_inventory_ingest(x->inv, &st, 1, true, &out, NULL) == FERRY_OK);
    CU_ASSERT_EQUAL(out.nstored, 1);
}

/* A rollout of fw-2 (envelope env, ENVELOPE if NULL), with revert release
 * fw-1r (envelope rev, ENVELOPE if NULL) when revert is set. */
static int64_t create_with(struct world *x, const char *waves, uint32_t min_final, int64_t soak,
                           bool revert, const char *env, const char *rev)
{
    struct cloud_rollout r;
    memset(&r, 0, sizeof(r));
    snprintf(r.product, sizeof(r.product), "fw");
    snprintf(r.release, sizeof(r.release), "fw-2");
    snprintf(r.version, sizeof(r.version), "2.0.0");
    r.seq = 2;
    r.envelope = (uint8_t *)strdup(env ? env : ENVELOPE);
    r.envelope_len = strlen((char *)r.envelope);
    if (revert) {
        snprintf(r.revert_release, sizeof(r.revert_release), "fw-1r");
        r.revert_seq = 3;
        r.revert_envelope = (uint8_t *)strdup(rev ? rev : ENVELOPE);
        r.revert_len = strlen((char *)r.revert_envelope);
    }
    CU_ASSERT_FATAL(ferry_waves_parse(waves, &r.plan, NULL) == FERRY_OK);
    r.plan.success_pct = 100;
    r.plan.min_final = min_final;
    r.plan.soak_s = soak;
    r.plan.halt_pct = 30;
    r.state = FERRY_ROLLOUT_SCHEDULED;
    r.created_at = r.state_at = r.start_at = T0;
    r.revision = 1;
    snprintf(r.created_by, sizeof(r.created_by), "operator:test");
    struct ferry_diag d = {{0}};
    CU_ASSERT_FATAL(cloud_rollouts_begin(x->inv, &d) == FERRY_OK);
    CU_ASSERT_FATAL(cloud_rollout_insert(x->inv, &r, "operator:test", &d) == FERRY_OK);
    CU_ASSERT_FATAL(cloud_rollouts_commit(x->inv, &d) == FERRY_OK);
    int64_t id = r.id;
    cloud_rollout_clear(&r);
    return id;
}

static int64_t create(struct world *x, const char *waves, uint32_t min_final, int64_t soak,
                      bool revert)
{
    return create_with(x, waves, min_final, soak, revert, NULL, NULL);
}

/* What the controller recorded for product fw (n = 99 when nothing). */
static struct ferry_offered recorded(const struct world *x)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/meta/offered/fw.json", x->store);
    struct ferry_offered o = {.n = 99};
    uint8_t *buf = NULL;
    size_t len = 0;
    if (ferry_read_file(path, 1 << 16, &buf, &len, NULL) == FERRY_OK)
        CU_ASSERT_FATAL(ferry_offered_parse(buf, len, &o, NULL) == FERRY_OK);
    free(buf);
    return o;
}

static struct cloud_rollout load(struct world *x, int64_t id)
{
    struct cloud_rollout r;
    CU_ASSERT_FATAL(cloud_rollout_load(x->inv, id, &r, NULL) == FERRY_OK);
    return r;
}

static unsigned wave_of(int64_t id, int i, const char *waves)
{
    struct ferry_rollout_plan p;
    memset(&p, 0, sizeof(p));
    CU_ASSERT_FATAL(ferry_waves_parse(waves, &p, NULL) == FERRY_OK);
    char node[16];
    snprintf(node, sizeof(node), "n%02d", i);
    struct ferry_sel_subject who = {.node = node};
    return cloud_rollout_wave(&p, (uint64_t)id, &who);
}

struct log_count {
    const char *action;
    int n;
};

static enum ferry_err count_log(void *arg, const struct cloud_rollout_log_entry *e)
{
    struct log_count *c = arg;
    if (strcmp(e->action, c->action) == 0)
        c->n++;
    return FERRY_OK;
}

static int logged(struct world *x, int64_t id, const char *action)
{
    struct log_count c = {action, 0};
    CU_ASSERT_FATAL(cloud_rollout_each_log(x->inv, id, count_log, &c, NULL) == FERRY_OK);
    return c.n;
}

/* ---- the tests ----------------------------------------------------------------------- */

static void waves_open_as_gates_pass_and_docs_follow(void)
{
    struct world x;
    memset(&x, 0, sizeof(x));
    world_open(&x, "waves");
    const char *waves = "ring=canary,50,100";
    int64_t id = create(&x, waves, 2, 2, false);
    /* Nothing described yet: it starts, but waits for targets. */
    cloud_rollout_ctl_tick(x.ctl, NOW);
    cloud_rollout_ctl_tick(x.ctl, NOW);
    struct cloud_rollout r = load(&x, id);
    CU_ASSERT_EQUAL(r.state, FERRY_ROLLOUT_RUNNING);
    CU_ASSERT_EQUAL(r.open_waves, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.reason, "no node matches"));
    cloud_rollout_clear(&r);
    /* Twenty nodes, two of them canaries. */
    for (int i = 0; i < 20; i++)
        describe(&x, i, i < 2 ? "canary" : NULL);
    cloud_rollout_ctl_tick(x.ctl, NOW);
    struct ferry_rollout_doc *doc = last_doc(&x.wire, "gw0");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(doc->ntargets, 10);
    CU_ASSERT_EQUAL(doc->open_waves, 1);
    CU_ASSERT_EQUAL(doc->state, FERRY_ROLLOUT_RUNNING);
    CU_ASSERT_EQUAL(doc->targets[0].wave, 0); /* n00, a canary */
    CU_ASSERT_STRING_EQUAL(doc->targets[0].node, "n00");
    ferry_rollout_doc_free(doc);
    /* One canary succeeds: the gate needs both (min_final 2). */
    report(&x, 0, "fw-2", FERRY_STATE_SUCCESS);
    cloud_rollout_ctl_tick(x.ctl, NOW);
    r = load(&x, id);
    CU_ASSERT_EQUAL(r.open_waves, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.reason, "1 of 2 targets final"));
    cloud_rollout_clear(&r);
    /* A record of another release does not count. */
    report(&x, 1, "fw-other", FERRY_STATE_SUCCESS);
    cloud_rollout_ctl_tick(x.ctl, NOW);
    r = load(&x, id);
    CU_ASSERT_EQUAL(r.open_waves, 1);
    cloud_rollout_clear(&r);
    report(&x, 1, "fw-2", FERRY_STATE_SUCCESS);
    cloud_rollout_ctl_tick(x.ctl, NOW);
    r = load(&x, id);
    CU_ASSERT_EQUAL(r.open_waves, 1); /* soaking */
    CU_ASSERT_PTR_NOT_NULL(strstr(r.reason, "soaking"));
    cloud_rollout_clear(&r);
    size_t sent = x.wire.n;
    sleep(3); /* the soak */
    cloud_rollout_ctl_tick(x.ctl, NOW);
    r = load(&x, id);
    CU_ASSERT_EQUAL(r.open_waves, 2);
    cloud_rollout_clear(&r);
    CU_ASSERT(x.wire.n > sent); /* both gateways hear of the open wave */
    doc = last_doc(&x.wire, "gw1");
    CU_ASSERT_EQUAL(doc->open_waves, 2);
    ferry_rollout_doc_free(doc);
    /* Nothing changes: nothing is sent again. */
    sent = x.wire.n;
    cloud_rollout_ctl_tick(x.ctl, NOW);
    CU_ASSERT_EQUAL(x.wire.n, sent);
    /* Every target of wave 2 succeeds; then wave 3 opens and, once all are
     * final, the rollout completes and the release becomes the product's. */
    for (int i = 2; i < 20; i++)
        if (wave_of(id, i, waves) == 1)
            report(&x, i, "fw-2", FERRY_STATE_SUCCESS);
    cloud_rollout_ctl_tick(x.ctl, NOW);
    sleep(3);
    cloud_rollout_ctl_tick(x.ctl, NOW);
    r = load(&x, id);
    CU_ASSERT_EQUAL(r.open_waves, 3);
    cloud_rollout_clear(&r);
    for (int i = 2; i < 20; i++)
        if (wave_of(id, i, waves) == 2)
            report(&x, i, "fw-2", FERRY_STATE_SUCCESS);
    cloud_rollout_ctl_tick(x.ctl, NOW);
    r = load(&x, id);
    CU_ASSERT_EQUAL(r.state, FERRY_ROLLOUT_COMPLETED);
    CU_ASSERT_TRUE(r.promoted);
    cloud_rollout_clear(&r);
    CU_ASSERT_STRING_EQUAL(x.wire.v[x.wire.n - 1].topic, "ferry/v1/f1/release/fw");
    CU_ASSERT_STRING_EQUAL(x.wire.v[x.wire.n - 1].payload, ENVELOPE);
    CU_ASSERT_EQUAL(logged(&x, id, "started"), 1);
    CU_ASSERT_EQUAL(logged(&x, id, "wave-opened"), 2);
    CU_ASSERT_EQUAL(logged(&x, id, "completed"), 1);
    world_close(&x);
}

static void halts_on_failures_and_gateways_learn_who_installed(void)
{
    struct world x;
    memset(&x, 0, sizeof(x));
    world_open(&x, "halt");
    int64_t id = create(&x, "100", 3, 0, true);
    for (int i = 0; i < 10; i++)
        describe(&x, i, NULL);
    cloud_rollout_ctl_tick(x.ctl, NOW);
    report(&x, 0, "fw-2", FERRY_STATE_SUCCESS);
    report(&x, 2, "fw-2", FERRY_STATE_ROLLED_BACK);
    report(&x, 4, "fw-2", FERRY_STATE_DOWNLOADING);
    cloud_rollout_ctl_tick(x.ctl, NOW);
    struct cloud_rollout r = load(&x, id);
    CU_ASSERT_EQUAL(r.state, FERRY_ROLLOUT_RUNNING); /* 2 final < min_final 3 */
    cloud_rollout_clear(&r);
    report(&x, 6, "fw-2", FERRY_STATE_FAILED);
    cloud_rollout_ctl_tick(x.ctl, NOW);
    r = load(&x, id);
    CU_ASSERT_EQUAL(r.state, FERRY_ROLLOUT_HALTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.reason, "2 of 3 final states failed or rolled back"));
    cloud_rollout_clear(&r);
    struct ferry_rollout_doc *doc = last_doc(&x.wire, "gw0");
    CU_ASSERT_EQUAL(doc->state, FERRY_ROLLOUT_HALTED);
    CU_ASSERT_EQUAL(doc->revert_len, strlen(ENVELOPE));
    CU_ASSERT_EQUAL(doc->targets[0].state, FERRY_STATE_SUCCESS);     /* n00 */
    CU_ASSERT_EQUAL(doc->targets[1].state, FERRY_STATE_ROLLED_BACK); /* n02 */
    CU_ASSERT_EQUAL(doc->targets[2].state, FERRY_STATE_DOWNLOADING); /* n04 */
    CU_ASSERT_EQUAL(doc->targets[4].state, -1);                      /* n08 */
    uint64_t rev = doc->revision;
    ferry_rollout_doc_free(doc);
    /* While halted, every state change reaches the gateways. */
    report(&x, 4, "fw-2", FERRY_STATE_SUCCESS);
    cloud_rollout_ctl_tick(x.ctl, NOW);
    doc = last_doc(&x.wire, "gw0");
    CU_ASSERT(doc->revision > rev);
    CU_ASSERT_EQUAL(doc->targets[2].state, FERRY_STATE_SUCCESS);
    ferry_rollout_doc_free(doc);
    /* The revert release's records are kept apart. */
    report(&x, 0, "fw-1r", FERRY_STATE_SUCCESS);
    cloud_rollout_ctl_tick(x.ctl, NOW);
    r = load(&x, id);
    CU_ASSERT_EQUAL(r.state, FERRY_ROLLOUT_HALTED);
    cloud_rollout_clear(&r);
    CU_ASSERT_EQUAL(logged(&x, id, "halted"), 1);
    world_close(&x);
}

/* With a store, the controller records what the rollout offers for the
 * next timestamp: its release while it runs, its revert release once it
 * halts, nothing once cancelled. */
static void what_a_rollout_offers_is_recorded(void)
{
    struct world x;
    memset(&x, 0, sizeof(x));
    snprintf(x.store, sizeof(x.store), "%s/offered-store", ferry_test_tmpdir());
    world_open(&x, "offered");
    struct test_key k;
    test_key_init(&k, 1);
    size_t len = 0, rlen = 0;
    char *env = test_release_env(&k, "fw", "fw-2", 2, &len);
    char *rev = test_release_env(&k, "fw", "fw-1r", 3, &rlen);
    int64_t id = create_with(&x, "100", 3, 0, true, env, rev);
    for (int i = 0; i < 10; i++)
        describe(&x, i, NULL);
    cloud_rollout_ctl_tick(x.ctl, NOW);
    struct ferry_offered o = recorded(&x);
    CU_ASSERT_EQUAL_FATAL(o.n, 1);
    CU_ASSERT_STRING_EQUAL(o.r[0].release, "fw-2");
    CU_ASSERT_STRING_EQUAL(o.state, "running");
    CU_ASSERT_EQUAL(o.rollout, (uint64_t)id);
    report(&x, 0, "fw-2", FERRY_STATE_SUCCESS);
    report(&x, 2, "fw-2", FERRY_STATE_ROLLED_BACK);
    report(&x, 6, "fw-2", FERRY_STATE_FAILED);
    cloud_rollout_ctl_tick(x.ctl, NOW);
    struct cloud_rollout r = load(&x, id);
    CU_ASSERT_EQUAL(r.state, FERRY_ROLLOUT_HALTED);
    cloud_rollout_clear(&r);
    o = recorded(&x);
    CU_ASSERT_EQUAL_FATAL(o.n, 1);
    CU_ASSERT_STRING_EQUAL(o.r[0].release, "fw-1r");
    CU_ASSERT_STRING_EQUAL(o.state, "halted");
    /* The next timestamp names the line's release and the revert release. */
    size_t llen = 0;
    char *line = test_release_env(&k, "fw", "fw-1", 1, &llen);
    struct ferry_timestamp ts;
    CU_ASSERT_EQUAL(
        cloud_timestamp_next("fw", NULL, (const uint8_t *)line, llen, &o, NULL, NOW, 60, &ts, NULL),
        FERRY_OK);
    CU_ASSERT_EQUAL(ts.ncurrent, 2);
    free(line);
    /* Cancelled by the operator: nothing of it is offered any more. */
    char what[CLOUD_ACT_WHAT_MAX];
    CU_ASSERT_EQUAL_FATAL(
        cloud_rollout_act(x.inv, id, CLOUD_ACT_CANCEL, "operator:test", "", NOW, what, NULL),
        FERRY_OK);
    cloud_rollout_ctl_tick(x.ctl, NOW);
    o = recorded(&x);
    CU_ASSERT_EQUAL(o.n, 0);
    CU_ASSERT_STRING_EQUAL(o.state, "cancelled");
    world_close(&x);
    free(env);
    free(rev);
    test_key_free(&k);
}

static void a_gateways_own_halt_halts_once(void)
{
    struct world x;
    memset(&x, 0, sizeof(x));
    world_open(&x, "gwhalt");
    int64_t id = create(&x, "100", 3, 0, false);
    describe(&x, 1, NULL);
    cloud_rollout_ctl_tick(x.ctl, NOW);
    struct ferry_rollout_report rep;
    memset(&rep, 0, sizeof(rep));
    snprintf(rep.gateway, sizeof(rep.gateway), "gw1");
    rep.at = T0 + 5;
    rep.n = 1;
    rep.items[0] = (struct ferry_rollout_report_item){.rollout = (uint64_t)id,
                                                      .revision = 2,
                                                      .resume = 0,
                                                      .halted = true,
                                                      .halted_at = T0 + 4,
                                                      .offline = true,
                                                      .finals = 3,
                                                      .failed = 2};
    snprintf(rep.items[0].product, sizeof(rep.items[0].product), "fw");
    snprintf(rep.items[0].reason, sizeof(rep.items[0].reason), "2 of 3 failed");
    char *json = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(ferry_rollout_report_to_json(&rep, &json, &len, NULL) == FERRY_OK);
    /* A report on another gateway's topic is not taken. */
    CU_ASSERT_TRUE(
        cloud_rollout_ctl_message(x.ctl, "ferry/v1/f1/rollout-report/gw0", (uint8_t *)json, len));
    cloud_rollout_ctl_tick(x.ctl, NOW);
    struct cloud_rollout r = load(&x, id);
    CU_ASSERT_EQUAL(r.state, FERRY_ROLLOUT_RUNNING);
    cloud_rollout_clear(&r);
    for (int k = 0; k < 2; k++) { /* the retained report arrives twice */
        CU_ASSERT_TRUE(cloud_rollout_ctl_message(x.ctl, "ferry/v1/f1/rollout-report/gw1",
                                                 (uint8_t *)json, len));
        cloud_rollout_ctl_tick(x.ctl, NOW);
    }
    r = load(&x, id);
    CU_ASSERT_EQUAL(r.state, FERRY_ROLLOUT_HALTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.reason, "gw1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.reason, "uplink was down"));
    cloud_rollout_clear(&r);
    CU_ASSERT_EQUAL(logged(&x, id, "halted"), 1);
    /* After a retry (resume 1) the same old report changes nothing. */
    r = load(&x, id);
    r.state = FERRY_ROLLOUT_RUNNING;
    r.resume = 1;
    CU_ASSERT_FATAL(cloud_rollout_save(x.inv, &r, NULL) == FERRY_OK);
    cloud_rollout_clear(&r);
    CU_ASSERT_TRUE(
        cloud_rollout_ctl_message(x.ctl, "ferry/v1/f1/rollout-report/gw1", (uint8_t *)json, len));
    cloud_rollout_ctl_tick(x.ctl, NOW);
    r = load(&x, id);
    CU_ASSERT_EQUAL(r.state, FERRY_ROLLOUT_RUNNING);
    cloud_rollout_clear(&r);
    free(json);
    world_close(&x);
}

/* Two serve instances on one inventory: each tick is one transaction, so a
 * wave opens once, whoever ticks. */
static void two_instances_decide_once(void)
{
    struct world a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    world_open(&a, "shared");
    world_open(&b, "shared");
    int64_t id = create(&a, "50,100", 1, 0, false);
    for (int i = 0; i < 10; i++)
        describe(&a, i, NULL);
    cloud_rollout_ctl_tick(b.ctl, NOW);
    cloud_rollout_ctl_tick(a.ctl, NOW);
    for (int i = 0; i < 10; i++)
        if (wave_of(id, i, "50,100") == 0)
            report(&a, i, "fw-2", FERRY_STATE_SUCCESS);
    for (int k = 0; k < 3; k++) {
        cloud_rollout_ctl_tick(a.ctl, NOW);
        cloud_rollout_ctl_tick(b.ctl, NOW);
    }
    struct cloud_rollout r = load(&a, id);
    CU_ASSERT_EQUAL(r.open_waves, 2);
    cloud_rollout_clear(&r);
    CU_ASSERT_EQUAL(logged(&a, id, "started"), 1);
    CU_ASSERT_EQUAL(logged(&a, id, "wave-opened"), 1);
    /* Both publish the same latest revision. */
    struct ferry_rollout_doc *da = last_doc(&a.wire, "gw0"), *db = last_doc(&b.wire, "gw0");
    CU_ASSERT_EQUAL(da->revision, db->revision);
    CU_ASSERT_EQUAL(da->open_waves, 2);
    ferry_rollout_doc_free(da);
    ferry_rollout_doc_free(db);
    world_close(&b);
    world_close(&a);
}

/* Two controllers (two serve instances, on PostgreSQL possibly on two
 * hosts) ticking at the same moment, each on its own thread and
 * connection: each decision is still made once. */
struct ticker {
    struct world *w;
    pthread_barrier_t *start;
};

static void *tick_many(void *arg)
{
    struct ticker *t = arg;
    pthread_barrier_wait(t->start);
    for (int k = 0; k < 15; k++)
        cloud_rollout_ctl_tick(t->w->ctl, NOW);
    return NULL;
}

static void tick_both_at_once(struct world *a, struct world *b)
{
    pthread_barrier_t start;
    CU_ASSERT_EQUAL_FATAL(pthread_barrier_init(&start, NULL, 2), 0);
    struct ticker ta = {a, &start}, tb = {b, &start};
    pthread_t t1, t2;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t1, NULL, tick_many, &ta), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t2, NULL, tick_many, &tb), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    pthread_barrier_destroy(&start);
}

static void two_instances_ticking_at_once_decide_once(void)
{
    struct world a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    world_open(&a, "race");
    world_open(&b, "race");
    int64_t id = create(&a, "50,100", 1, 0, false);
    for (int i = 0; i < 10; i++)
        describe(&a, i, NULL);
    tick_both_at_once(&a, &b);
    for (int i = 0; i < 10; i++)
        if (wave_of(id, i, "50,100") == 0)
            report(&a, i, "fw-2", FERRY_STATE_SUCCESS);
    tick_both_at_once(&a, &b);
    struct cloud_rollout r = load(&a, id);
    CU_ASSERT_EQUAL(r.open_waves, 2);
    cloud_rollout_clear(&r);
    CU_ASSERT_EQUAL(logged(&a, id, "started"), 1);
    CU_ASSERT_EQUAL(logged(&a, id, "wave-opened"), 1);
    world_close(&b);
    world_close(&a);
}

/* Decisions held back, then released at one instant: a third connection
 * (a third instance, or `ferry-cloud rollout pause` on another host) holds
 * the decision lock while two controllers, each on its own thread and
 * connection, are seen by the server itself waiting for it (pg_locks);
 * both are let go together, and each decision is still made once. The
 * database's default isolation is set to repeatable read first, as a
 * managed server may be configured: a decision must read what the
 * previous one committed, whatever that default. PostgreSQL only (SQLite's
 * writers exclude each other through the file's lock, which the test
 * above covers, and its waiters cannot be observed). */
struct held_tick {
    struct world *w;
};

static void *tick_once(void *arg)
{
    struct held_tick *t = arg;
    cloud_rollout_ctl_tick(t->w->ctl, NOW);
    return NULL;
}

static void pg_exec(const char *target, const char *sql)
{
    PGconn *c = PQconnectdb(target);
    CU_ASSERT_EQUAL_FATAL(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fprintf(stderr, "%s: %s\n", sql, PQerrorMessage(c));
    CU_ASSERT_EQUAL_FATAL(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(c);
}

/* Ticks a and b while holder holds the decision lock; returns once both
 * ticks are done, having seen both wait. */
static void tick_both_held(struct cloud_inventory *holder, struct world *a, struct world *b)
{
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(cloud_rollouts_begin(holder, &d), FERRY_OK);
    struct held_tick ta = {a}, tb = {b};
    pthread_t t1, t2;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t1, NULL, tick_once, &ta), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t2, NULL, tick_once, &tb), 0);
    /* Wait for the server to show both waiting (bounded: 60 s). */
    long long waiting = 0;
    for (int i = 0; i < 6000 && waiting < 2; i++) {
        waiting = ferry_test_db_scalar(a->path, "SELECT count(*) FROM pg_locks"
                                                " WHERE locktype = 'advisory' AND NOT granted");
        if (waiting < 2)
            nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    CU_ASSERT_EQUAL(waiting, 2);
    CU_ASSERT_EQUAL(cloud_rollouts_commit(holder, &d), FERRY_OK);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    /* Neither tick failed: the one that waited read what the other
     * committed, rather than a snapshot from before it. */
    CU_ASSERT_TRUE(cloud_rollout_ctl_stats(a->ctl)->committed);
    CU_ASSERT_TRUE(cloud_rollout_ctl_stats(b->ctl)->committed);
}

static void decisions_released_at_once_are_made_once(void)
{
    if (!ferry_test_db_is_pg()) {
        fprintf(stderr, "SKIP on SQLite: the decision lock's waiters are PostgreSQL's\n");
        return;
    }
    char target[PATH_MAX + 128];
    snprintf(target, sizeof(target), "%s", ferry_test_db("held"));
    pg_exec(target, "DO $$BEGIN EXECUTE format('ALTER DATABASE %I SET"
                    " default_transaction_isolation = %L', current_database(),"
                    " 'repeatable read'); END$$");
    struct world a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    world_open(&a, "held");
    world_open(&b, "held");
    struct cloud_inventory *holder = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(cloud_inventory_open(target, false, &holder, &d), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_test_db_scalar(target, "SELECT count(*) FROM pg_settings WHERE name ="
                                                 " 'default_transaction_isolation'"
                                                 " AND setting = 'repeatable read'"),
                    1);
    int64_t id = create(&a, "50,100", 1, 0, false);
    for (int i = 0; i < 10; i++) {
        describe(&a, i, NULL);
        describe(&b, i, NULL);
    }
    tick_both_held(holder, &a, &b);
    CU_ASSERT_EQUAL(logged(&a, id, "started"), 1);
    for (int i = 0; i < 10; i++)
        if (wave_of(id, i, "50,100") == 0)
            report(&a, i, "fw-2", FERRY_STATE_SUCCESS);
    /* The first wave's results are read in; then the next wave is decided
     * by both at once. */
    for (int k = 0; k < 3; k++)
        tick_both_held(holder, &a, &b);
    struct cloud_rollout r = load(&a, id);
    CU_ASSERT_EQUAL(r.open_waves, 2);
    cloud_rollout_clear(&r);
    CU_ASSERT_EQUAL(logged(&a, id, "started"), 1);
    CU_ASSERT_EQUAL(logged(&a, id, "wave-opened"), 1);
    /* Every target once, however both instances raced to add them. */
    CU_ASSERT_EQUAL(ferry_test_db_scalar(target, "SELECT count(*) FROM rollout_targets"), 10);
    cloud_inventory_close(holder);
    world_close(&b);
    world_close(&a);
}

/* A controller that starts fresh (serve restarted) publishes every
 * product's latest rollout again and goes on where the inventory says. */
static void a_restart_goes_on_where_it_was(void)
{
    struct world x;
    memset(&x, 0, sizeof(x));
    world_open(&x, "restart");
    int64_t id = create(&x, "50,100", 1, 0, false);
    for (int i = 0; i < 6; i++)
        describe(&x, i, NULL);
    x.wire.down = true; /* nothing gets out before the "crash" */
    cloud_rollout_ctl_tick(x.ctl, NOW);
    cloud_rollout_ctl_free(x.ctl);
    x.wire.down = false;
    struct cloud_rollout_ctl_io io = {.arg = &x.wire, .publish = fake_publish};
    CU_ASSERT_FATAL(cloud_rollout_ctl_new(x.inv, FLEET, &io, &x.ctl, NULL) == FERRY_OK);
    cloud_rollout_ctl_tick(x.ctl, NOW);
    struct ferry_rollout_doc *doc = last_doc(&x.wire, "gw0");
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(doc->open_waves, 1);
    CU_ASSERT_EQUAL(doc->ntargets, 3);
    ferry_rollout_doc_free(doc);
    CU_ASSERT_EQUAL(logged(&x, id, "started"), 1);
    world_close(&x);
}

static void moved_and_late_nodes(void)
{
    struct world x;
    memset(&x, 0, sizeof(x));
    world_open(&x, "moves");
    create(&x, "100", 1, 0, false);
    describe(&x, 0, NULL);
    cloud_rollout_ctl_tick(x.ctl, NOW);
    struct ferry_rollout_doc *doc = last_doc(&x.wire, "gw0");
    CU_ASSERT_EQUAL(doc->ntargets, 1);
    ferry_rollout_doc_free(doc);
    /* n00 moves to gw1 (its description comes from there now). */
    struct ferry_nodeinfo ni;
    memset(&ni, 0, sizeof(ni));
    snprintf(ni.node, sizeof(ni.node), "n00");
    snprintf(ni.product, sizeof(ni.product), "fw");
    snprintf(ni.hw_model, sizeof(ni.hw_model), "m1");
    char *json = NULL;
    size_t len = 0;
    CU_ASSERT_FATAL(ferry_nodeinfo_to_json(&ni, &json, &len, NULL) == FERRY_OK);
    CU_ASSERT_TRUE(
        cloud_rollout_ctl_message(x.ctl, "ferry/v1/f1/node-info/gw1/n00", (uint8_t *)json, len));
    free(json);
    /* A late node appears. */
    describe(&x, 2, NULL);
    cloud_rollout_ctl_tick(x.ctl, NOW);
    doc = last_doc(&x.wire, "gw1");
    CU_ASSERT_EQUAL(doc->ntargets, 1);
    CU_ASSERT_STRING_EQUAL(doc->targets[0].node, "n00");
    ferry_rollout_doc_free(doc);
    doc = last_doc(&x.wire, "gw0");
    CU_ASSERT_EQUAL(doc->ntargets, 1);
    CU_ASSERT_STRING_EQUAL(doc->targets[0].node, "n02");
    ferry_rollout_doc_free(doc);
    /* Bad descriptions are dropped, not stored. */
    CU_ASSERT_TRUE(cloud_rollout_ctl_message(x.ctl, "ferry/v1/f1/node-info/gw1/n09",
                                             (const uint8_t *)"{}", 2));
    CU_ASSERT_TRUE(cloud_rollout_ctl_message(x.ctl, "ferry/v1/f1/node-info/gw1/n07",
                                             (const uint8_t *)"{\"format\":1}", 12));
    CU_ASSERT_FALSE(
        cloud_rollout_ctl_message(x.ctl, "ferry/v1/f1/status/gw1", (const uint8_t *)"{}", 2));
    cloud_rollout_ctl_tick(x.ctl, NOW);
    char gw[FERRY_ID_MAX + 1];
    CU_ASSERT_EQUAL(cloud_nodeinfo_get(x.inv, "n09", &ni, gw, NULL), FERRY_E_NOT_FOUND);
    world_close(&x);
}

const char *const ferry_suite_name = "cloud_rollout";
const struct ferry_test_case ferry_tests[] = {
    {"waves_open_as_gates_pass_and_docs_follow", waves_open_as_gates_pass_and_docs_follow},
    {"what_a_rollout_offers_is_recorded", what_a_rollout_offers_is_recorded},
    {"halts_on_failures_and_gateways_learn_who_installed",
     halts_on_failures_and_gateways_learn_who_installed},
    {"a_gateways_own_halt_halts_once", a_gateways_own_halt_halts_once},
    {"two_instances_decide_once", two_instances_decide_once},
    {"two_instances_ticking_at_once_decide_once", two_instances_ticking_at_once_decide_once},
    {"decisions_released_at_once_are_made_once", decisions_released_at_once_are_made_once},
    {"a_restart_goes_on_where_it_was", a_restart_goes_on_where_it_was},
    {"moved_and_late_nodes", moved_and_late_nodes},
    {NULL, NULL},
};
