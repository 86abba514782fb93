/* The gateway's status relay with a real outbox and event loop, and a
 * publish function that records what would go to the broker: which batch
 * an ack may retire, refusals, and floods that must not displace anyone. */
#include "cunit_main.h"

#include "gw_relay.h"

#include "ferry_batch.h"
#include "ferry_log.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_SENT 64

/* What the relay published. */
struct sent {
    struct ferry_batch *batches[MAX_SENT];
    size_t nbatches;
    size_t twins, twin_clears;
    char last_cleared[FERRY_ID_MAX + 1];
};

static struct sent sent;

static enum ferry_err fake_publish(void *arg, bool twin, const char *node, const void *buf,
                                   size_t len, bool retain)
{
    (void)arg;
    (void)retain;
    if (twin) {
        if (len == 0) {
            sent.twin_clears++;
            snprintf(sent.last_cleared, sizeof(sent.last_cleared), "%s", node);
        } else {
            sent.twins++;
        }
        return FERRY_OK;
    }
    if (sent.nbatches == MAX_SENT)
        return FERRY_E_BUSY;
    struct ferry_batch *b = calloc(1, sizeof(*b));
    if (!b || ferry_batch_decode(buf, len, b, NULL) != FERRY_OK) {
        free(b);
        return FERRY_E_IO;
    }
    sent.batches[sent.nbatches++] = b;
    return FERRY_OK;
}

static void sent_reset(void)
{
    for (size_t i = 0; i < sent.nbatches; i++)
        free(sent.batches[i]);
    memset(&sent, 0, sizeof(sent));
}

static void stop_loop(void *arg)
{
    ferry_loop_stop(arg);
}

/* Lets the relay's zero-delay timers (batch drain) run. */
static void run_loop(struct ferry_loop *l)
{
    CU_ASSERT_FATAL(ferry_loop_timer(l, 20, stop_loop, l) != 0);
    ferry_loop_run(l);
}

struct fixture {
    struct ferry_loop *loop;
    struct gw_relay *relay;
    char dir[PATH_MAX];
};

static void setup(struct fixture *f, size_t max_nodes, size_t max_records, uint32_t rate,
                  uint32_t burst)
{
    static unsigned counter;
    ferry_log_init("test_gw_relay", FERRY_LOG_ERROR);
    sent_reset();
    snprintf(f->dir, sizeof(f->dir), "%s/r%u", ferry_test_tmpdir(), counter++);
    CU_ASSERT_EQUAL_FATAL(mkdir(f->dir, 0700), 0);
    CU_ASSERT_EQUAL_FATAL(ferry_loop_new(&f->loop, NULL), FERRY_OK);
    struct gw_outbox_opts oo = {
        .state_dir = f->dir,
        .gateway_id = "gw-1",
        .max_records = max_records,
        .max_bytes = UINT64_C(16) << 20,
    };
    struct gw_relay_opts ro = {
        .outbox = &oo,
        .max_nodes = max_nodes,
        .node_rate_per_s = rate,
        .node_burst = burst,
        .publish = fake_publish,
    };
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(gw_relay_new(f->loop, &ro, &f->relay, &d), FERRY_OK);
}

static void teardown(struct fixture *f)
{
    gw_relay_free(f->relay);
    ferry_loop_free(f->loop);
    sent_reset();
}

static struct ferry_status rec(const char *node, uint64_t seq, enum ferry_state state)
{
    struct ferry_status st;
    memset(&st, 0, sizeof(st));
    snprintf(st.node, sizeof(st.node), "%s", node);
    snprintf(st.release_id, sizeof(st.release_id), "fw-1");
    snprintf(st.version, sizeof(st.version), "1.0.0");
    st.state = state;
    st.seq = seq;
    st.ts = 1795780800 + (int64_t)seq;
    return st;
}

static enum ferry_err submit(struct fixture *f, const char *node, uint64_t seq,
                             enum ferry_state state)
{
    struct ferry_status st = rec(node, seq, state);
    struct ferry_diag d = {{0}};
    return gw_relay_submit(f->relay, &st, &d);
}

/* An ack of batch id naming every record of batch b, the first nrefused of
 * them refused as conflicts. */
static void deliver_ack(struct fixture *f, const char *id, const struct ferry_batch *b,
                        size_t nrefused)
{
    struct ferry_batch_ack *a = calloc(1, sizeof(*a));
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    snprintf(a->id, sizeof(a->id), "%s", id);
    for (size_t i = 0; i < b->n; i++) {
        struct ferry_record_id r = {{0}, b->records[i].seq};
        snprintf(r.node, sizeof(r.node), "%s", b->records[i].node);
        if (i < nrefused)
            a->refused[a->nrefused++] = (struct ferry_record_refusal){r, FERRY_E_CONFLICT};
        else
            a->acked[a->n++] = r;
    }
    char *json = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(ferry_batch_ack_encode(a, &json, &len, NULL), FERRY_OK);
    gw_relay_ack(f->relay, (const uint8_t *)json, len);
    free(json);
    free(a);
}

/* An ack used to retire whatever (node, seq) it named before looking at
 * which batch it cited. Now an ack of another batch retires nothing, and
 * an ack of the batch in flight retires only what that batch carried. */
static void ack_of_another_batch_retires_nothing(void)
{
    struct fixture f;
    setup(&f, 100, 1000, 0, 0);
    gw_relay_link(f.relay, true);
    for (uint64_t seq = 1; seq <= 3; seq++)
        CU_ASSERT_EQUAL(submit(&f, "node-7", seq, FERRY_STATE_DOWNLOADING), FERRY_OK);
    run_loop(f.loop);
    CU_ASSERT_EQUAL_FATAL(sent.nbatches, 1);
    const struct ferry_batch *b = sent.batches[0];
    CU_ASSERT_EQUAL(b->n, 3);
    CU_ASSERT_STRING_EQUAL(gw_relay_in_flight(f.relay), b->id);

    deliver_ack(&f, "some-other-batch", b, 0);
    CU_ASSERT_EQUAL(gw_relay_pending(f.relay), 3);
    CU_ASSERT_PTR_NOT_NULL(gw_relay_in_flight(f.relay));

    /* The right batch, but also naming a record it did not carry (one
     * waiting in the outbox, sent in no batch yet). */
    CU_ASSERT_EQUAL(submit(&f, "node-8", 1, FERRY_STATE_IDLE), FERRY_OK);
    struct ferry_batch *more = calloc(1, sizeof(*more));
    CU_ASSERT_PTR_NOT_NULL_FATAL(more);
    *more = *b;
    more->records[more->n++] = rec("node-8", 1, FERRY_STATE_IDLE);
    deliver_ack(&f, b->id, more, 0);
    free(more);
    CU_ASSERT_EQUAL(gw_relay_pending(f.relay), 1);
    run_loop(f.loop);
    CU_ASSERT_EQUAL_FATAL(sent.nbatches, 2);
    CU_ASSERT_EQUAL(sent.batches[1]->n, 1);
    CU_ASSERT_STRING_EQUAL(sent.batches[1]->records[0].node, "node-8");
    teardown(&f);
}

/* Refused records leave the outbox too: the cloud keeps them aside, and a
 * record that can never be stored must not be resent for ever. */
static void refused_records_leave_the_outbox(void)
{
    struct fixture f;
    setup(&f, 100, 1000, 0, 0);
    gw_relay_link(f.relay, true);
    for (uint64_t seq = 1; seq <= 4; seq++)
        CU_ASSERT_EQUAL(submit(&f, "node-7", seq, FERRY_STATE_DOWNLOADING), FERRY_OK);
    run_loop(f.loop);
    CU_ASSERT_EQUAL_FATAL(sent.nbatches, 1);
    deliver_ack(&f, sent.batches[0]->id, sent.batches[0], 2);
    CU_ASSERT_EQUAL(gw_relay_pending(f.relay), 0);
    CU_ASSERT_PTR_NULL(gw_relay_in_flight(f.relay));
    teardown(&f);
}

/* The genuine record of a (node, seq) a forged one took first is refused
 * with a conflict (4.09), whether the first is still waiting in the outbox
 * or already gone upstream; the same record again is answered as stored. */
static void conflicting_record_is_refused(void)
{
    struct fixture f;
    setup(&f, 100, 1000, 0, 0);
    gw_relay_link(f.relay, true);
    CU_ASSERT_EQUAL(submit(&f, "node-7", 13, FERRY_STATE_SUCCESS), FERRY_OK);
    CU_ASSERT_EQUAL(submit(&f, "node-7", 13, FERRY_STATE_FAILED), FERRY_E_CONFLICT);
    CU_ASSERT_EQUAL(submit(&f, "node-7", 13, FERRY_STATE_SUCCESS), FERRY_OK);
    run_loop(f.loop);
    CU_ASSERT_EQUAL_FATAL(sent.nbatches, 1);
    CU_ASSERT_EQUAL(sent.batches[0]->n, 1);
    deliver_ack(&f, sent.batches[0]->id, sent.batches[0], 0);
    CU_ASSERT_EQUAL(gw_relay_pending(f.relay), 0);
    CU_ASSERT_EQUAL(submit(&f, "node-7", 13, FERRY_STATE_FAILED), FERRY_E_CONFLICT);
    CU_ASSERT_EQUAL(submit(&f, "node-7", 13, FERRY_STATE_SUCCESS), FERRY_OK);
    CU_ASSERT_EQUAL(gw_relay_pending(f.relay), 0);
    /* Renumbered by the node, the genuine record goes through. */
    CU_ASSERT_EQUAL(submit(&f, "node-7", 14, FERRY_STATE_FAILED), FERRY_OK);
    CU_ASSERT_EQUAL(gw_relay_pending(f.relay), 1);
    teardown(&f);
}

/* One record with a seq near 2^53 used to sit above every later real one. */
static void seq_jump_is_refused(void)
{
    struct fixture f;
    setup(&f, 100, 1000, 0, 0);
    CU_ASSERT_EQUAL(submit(&f, "node-7", 12, FERRY_STATE_DOWNLOADING), FERRY_OK);
    CU_ASSERT_EQUAL(submit(&f, "node-7", UINT64_C(1) << 53, FERRY_STATE_SUCCESS),
                    FERRY_E_SEQ_RANGE);
    CU_ASSERT_EQUAL(gw_relay_pending(f.relay), 1);
    CU_ASSERT_EQUAL(submit(&f, "node-7", 13, FERRY_STATE_FAILED), FERRY_OK);
    CU_ASSERT_EQUAL(gw_relay_node(f.relay, "node-7")->last.state, FERRY_STATE_FAILED);
    teardown(&f);
}

/* One node floods 10,000 records: it gets its burst and its share, the
 * others keep theirs. */
static void flooding_node_cannot_displace_another(void)
{
    struct fixture f;
    setup(&f, 10, 100, 1, 50); /* shares of 10 records */
    CU_ASSERT_EQUAL(submit(&f, "quiet", 1, FERRY_STATE_DOWNLOADING), FERRY_OK);
    size_t stored = 0, busy = 0, full = 0, range = 0;
    for (uint64_t seq = 1; seq <= 10000; seq++) {
        enum ferry_err err = submit(&f, "flood", seq, FERRY_STATE_DOWNLOADING);
        stored += err == FERRY_OK;
        busy += err == FERRY_E_BUSY;
        full += err == FERRY_E_NOSPACE;
        range += err == FERRY_E_SEQ_RANGE;
    }
    CU_ASSERT_EQUAL(stored, 10);
    /* The rest of its burst of 50 (and what a second of the loop refills)
     * met its share; seqs more than the window past its last stored one
     * (10) are refused as such; everything else met its rate. */
    CU_ASSERT(full >= 40 && full < 60);
    CU_ASSERT_EQUAL(range, 10000 - 10 - FERRY_STATUS_SEQ_WINDOW);
    CU_ASSERT_EQUAL(stored + full + busy + range, 10000);
    for (uint64_t seq = 2; seq <= 10; seq++)
        CU_ASSERT_EQUAL(submit(&f, "quiet", seq, FERRY_STATE_DOWNLOADING), FERRY_OK);
    CU_ASSERT_EQUAL(gw_relay_pending(f.relay), 20);
    teardown(&f);
}

/* 5,000 invented node ids, one record each: the table, the outbox and the
 * broker's twins stay bounded, and a node known before keeps its place. */
static void invented_node_ids_stay_bounded(void)
{
    struct fixture f;
    setup(&f, 20, 200, 0, 0);
    gw_relay_link(f.relay, true);
    CU_ASSERT_EQUAL(submit(&f, "known", 1, FERRY_STATE_IDLE), FERRY_OK);
    size_t stored = 0, busy = 0;
    for (int i = 0; i < 5000; i++) {
        char id[16];
        snprintf(id, sizeof(id), "fake-%d", i);
        enum ferry_err err = submit(&f, id, 1, FERRY_STATE_SUCCESS);
        stored += err == FERRY_OK;
        busy += err == FERRY_E_BUSY;
    }
    CU_ASSERT_EQUAL(stored, 19);
    CU_ASSERT_EQUAL(busy, 5000 - 19);
    CU_ASSERT(sent.twins <= 20);
    CU_ASSERT_EQUAL(gw_relay_pending(f.relay), 20);
    CU_ASSERT_EQUAL(submit(&f, "known", 2, FERRY_STATE_DOWNLOADING), FERRY_OK);
    CU_ASSERT_EQUAL(gw_relay_pending(f.relay), 21);
    teardown(&f);
}

/* After a restart the nodes with records waiting get their places back
 * before anyone else. */
static void waiting_nodes_keep_their_places_across_a_restart(void)
{
    struct fixture f;
    setup(&f, 2, 100, 0, 0);
    CU_ASSERT_EQUAL(submit(&f, "a", 1, FERRY_STATE_IDLE), FERRY_OK);
    CU_ASSERT_EQUAL(submit(&f, "b", 1, FERRY_STATE_IDLE), FERRY_OK);
    gw_relay_free(f.relay);
    struct gw_outbox_opts oo = {
        .state_dir = f.dir,
        .gateway_id = "gw-1",
        .max_records = 100,
        .max_bytes = UINT64_C(16) << 20,
    };
    struct gw_relay_opts ro = {.outbox = &oo, .max_nodes = 2, .publish = fake_publish};
    CU_ASSERT_EQUAL_FATAL(gw_relay_new(f.loop, &ro, &f.relay, NULL), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(gw_relay_node(f.relay, "a"));
    CU_ASSERT_PTR_NOT_NULL(gw_relay_node(f.relay, "b"));
    CU_ASSERT_EQUAL(submit(&f, "c", 1, FERRY_STATE_IDLE), FERRY_E_BUSY);
    CU_ASSERT_EQUAL(submit(&f, "a", 2, FERRY_STATE_IDLE), FERRY_OK);
    teardown(&f);
}

static void shares_must_hold_a_record(void)
{
    CU_ASSERT_TRUE(gw_relay_share_ok(1000, 100000, UINT64_C(64) << 20));
    CU_ASSERT_FALSE(gw_relay_share_ok(1000, 999, UINT64_C(64) << 20));
    CU_ASSERT_FALSE(gw_relay_share_ok(70000, 100000, UINT64_C(64) << 20));
    CU_ASSERT_FALSE(gw_relay_share_ok(0, 100, UINT64_C(1) << 20));
}

const char *const ferry_suite_name = "gw_relay";
const struct ferry_test_case ferry_tests[] = {
    {"ack_of_another_batch_retires_nothing", ack_of_another_batch_retires_nothing},
    {"refused_records_leave_the_outbox", refused_records_leave_the_outbox},
    {"conflicting_record_is_refused", conflicting_record_is_refused},
    {"seq_jump_is_refused", seq_jump_is_refused},
    {"flooding_node_cannot_displace_another", flooding_node_cannot_displace_another},
    {"invented_node_ids_stay_bounded", invented_node_ids_stay_bounded},
    {"waiting_nodes_keep_their_places_across_a_restart",
     waiting_nodes_keep_their_places_across_a_restart},
    {"shares_must_hold_a_record", shares_must_hold_a_record},
    {NULL, NULL},
};
