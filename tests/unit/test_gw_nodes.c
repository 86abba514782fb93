/* The gateway's node table and status admission (gw_nodes.h), driven with
 * made-up times: a retry, a conflict, a seq jump, a node over its rate,
 * invented node ids filling the table. */
#include "cunit_main.h"

#include "gw_nodes.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

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

static struct gw_nodes *table(size_t max, uint32_t rate, uint32_t burst)
{
    struct gw_nodes_opts o = {.max_nodes = max, .rate_per_s = rate, .burst = burst};
    struct gw_nodes *t = NULL;
    CU_ASSERT_EQUAL_FATAL(gw_nodes_new(&o, &t, NULL), FERRY_OK);
    return t;
}

/* Admits and stores st at now; the verdict. */
static enum gw_nodes_verdict put(struct gw_nodes *t, const struct ferry_status *st, uint64_t now)
{
    enum gw_nodes_verdict v = gw_nodes_admit(t, st, now, NULL, NULL);
    if (v == GW_NODES_ADMIT)
        gw_nodes_stored(t, st, now);
    return v;
}

static void retry_is_stored_and_conflict_is_refused(void)
{
    struct gw_nodes *t = table(10, 0, 0);
    struct ferry_status ok = rec("node-7", 13, FERRY_STATE_FAILED);
    CU_ASSERT_EQUAL(put(t, &ok, 0), GW_NODES_ADMIT);
    /* The 2.04 was lost and the node sends it again. */
    CU_ASSERT_EQUAL(gw_nodes_admit(t, &ok, 10, NULL, NULL), GW_NODES_STORED);
    /* A record naming another gateway is the same record. */
    struct ferry_status relayed = ok;
    snprintf(relayed.gateway, sizeof(relayed.gateway), "gw-1");
    CU_ASSERT_EQUAL(gw_nodes_admit(t, &relayed, 10, NULL, NULL), GW_NODES_STORED);
    struct ferry_status forged = rec("node-7", 13, FERRY_STATE_SUCCESS);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(gw_nodes_admit(t, &forged, 20, NULL, &d), GW_NODES_CONFLICT);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "node-7"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "conflict"));
    CU_ASSERT_EQUAL(gw_nodes_err(GW_NODES_CONFLICT), FERRY_E_CONFLICT);
    CU_ASSERT_EQUAL(gw_nodes_find(t, "node-7")->last.state, FERRY_STATE_FAILED);
    /* Older records are admitted (they may arrive late), and do not move
     * the node's latest. */
    struct ferry_status old = rec("node-7", 4, FERRY_STATE_DOWNLOADING);
    CU_ASSERT_EQUAL(put(t, &old, 30), GW_NODES_ADMIT);
    CU_ASSERT_EQUAL(gw_nodes_find(t, "node-7")->last.seq, 13);
    gw_nodes_free(t);
}

static void seq_jump_is_refused_while_remembered(void)
{
    struct gw_nodes *t = table(10, 0, 0);
    struct ferry_status st = rec("node-7", 12, FERRY_STATE_DOWNLOADING);
    CU_ASSERT_EQUAL(put(t, &st, 1000), GW_NODES_ADMIT);
    struct ferry_status far = rec("node-7", UINT64_C(1) << 53, FERRY_STATE_SUCCESS);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(gw_nodes_admit(t, &far, 2000, NULL, &d), GW_NODES_SEQ_RANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "seq-range"));
    CU_ASSERT_EQUAL(gw_nodes_err(GW_NODES_SEQ_RANGE), FERRY_E_SEQ_RANGE);
    struct ferry_status edge = rec("node-7", 12 + FERRY_STATUS_SEQ_WINDOW + 1, FERRY_STATE_IDLE);
    CU_ASSERT_EQUAL(gw_nodes_admit(t, &edge, 2000, NULL, NULL), GW_NODES_SEQ_RANGE);
    edge.seq--;
    CU_ASSERT_EQUAL(put(t, &edge, 2000), GW_NODES_ADMIT);
    /* Knowledge older than memory_ms does not judge a jump: the node may
     * have reported elsewhere since. The cloud decides then. */
    CU_ASSERT_EQUAL(gw_nodes_admit(t, &far, 2000 + GW_NODES_MEMORY_MS, NULL, NULL), GW_NODES_ADMIT);
    /* A node never heard of cannot be judged either. */
    struct ferry_status fresh = rec("node-8", UINT64_C(1) << 40, FERRY_STATE_IDLE);
    CU_ASSERT_EQUAL(gw_nodes_admit(t, &fresh, 3000, NULL, NULL), GW_NODES_ADMIT);
    gw_nodes_free(t);
}

/* A burst of 5, then one record a second: a node costs a bounded number
 * of fsyncs whatever it sends; another node has its own bucket. */
static void rate_bounds_one_node_only(void)
{
    struct gw_nodes *t = table(10, 1, 5);
    uint64_t seq = 1;
    for (int i = 0; i < 5; i++) {
        struct ferry_status st = rec("loud", seq++, FERRY_STATE_DOWNLOADING);
        CU_ASSERT_EQUAL(put(t, &st, 0), GW_NODES_ADMIT);
    }
    struct ferry_status st = rec("loud", seq, FERRY_STATE_DOWNLOADING);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(gw_nodes_admit(t, &st, 0, NULL, &d), GW_NODES_RATE);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "loud"));
    CU_ASSERT_EQUAL(gw_nodes_err(GW_NODES_RATE), FERRY_E_BUSY);
    CU_ASSERT_EQUAL(gw_nodes_admit(t, &st, 999, NULL, NULL), GW_NODES_RATE);
    CU_ASSERT_EQUAL(put(t, &st, 1000), GW_NODES_ADMIT);
    st.seq++;
    CU_ASSERT_EQUAL(gw_nodes_admit(t, &st, 1000, NULL, NULL), GW_NODES_RATE);
    /* A retry of what is stored costs no token. */
    st.seq--;
    CU_ASSERT_EQUAL(gw_nodes_admit(t, &st, 1000, NULL, NULL), GW_NODES_STORED);
    struct ferry_status quiet = rec("quiet", 1, FERRY_STATE_IDLE);
    CU_ASSERT_EQUAL(put(t, &quiet, 1000), GW_NODES_ADMIT);
    /* A long pause refills to the burst, no more. */
    int admitted = 0;
    for (int i = 0; i < 20; i++) {
        struct ferry_status more = rec("loud", 100 + (uint64_t)i, FERRY_STATE_DOWNLOADING);
        admitted += put(t, &more, 1000000) == GW_NODES_ADMIT;
    }
    CU_ASSERT_EQUAL(admitted, 5);
    gw_nodes_free(t);
}

static bool pin_a(void *arg, const char *node)
{
    (void)arg;
    return strcmp(node, "a") == 0;
}

/* Invented ids never grow the table past max_nodes; a known node keeps its
 * place while it is active or has records waiting; idle ones make room. */
static void full_table_forgets_only_idle_unpinned_nodes(void)
{
    struct gw_nodes_opts o = {.max_nodes = 3, .pinned = pin_a, .idle_ms = 1000};
    struct gw_nodes *t = NULL;
    CU_ASSERT_EQUAL_FATAL(gw_nodes_new(&o, &t, NULL), FERRY_OK);
    struct ferry_status a = rec("a", 1, FERRY_STATE_IDLE), b = rec("b", 1, FERRY_STATE_IDLE),
                        c = rec("c", 1, FERRY_STATE_IDLE);
    CU_ASSERT_EQUAL(put(t, &a, 0), GW_NODES_ADMIT);
    CU_ASSERT_EQUAL(put(t, &b, 100), GW_NODES_ADMIT);
    CU_ASSERT_EQUAL(put(t, &c, 200), GW_NODES_ADMIT);
    char evicted[FERRY_ID_MAX + 1] = "x";
    struct ferry_diag d = {{0}};
    int full = 0;
    for (int i = 0; i < 1000; i++) {
        char id[16];
        snprintf(id, sizeof(id), "fake-%d", i);
        struct ferry_status f = rec(id, 1, FERRY_STATE_SUCCESS);
        full += gw_nodes_admit(t, &f, 500, evicted, &d) == GW_NODES_FULL;
        CU_ASSERT_STRING_EQUAL(evicted, "");
    }
    CU_ASSERT_EQUAL(full, 1000);
    CU_ASSERT_EQUAL(gw_nodes_count(t), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "fake-999"));
    /* Later, a is idle but pinned: b, idle the longest after it, goes. */
    struct ferry_status n = rec("new", 1, FERRY_STATE_IDLE);
    CU_ASSERT_EQUAL(gw_nodes_admit(t, &n, 1150, evicted, NULL), GW_NODES_ADMIT);
    CU_ASSERT_STRING_EQUAL(evicted, "b");
    gw_nodes_stored(t, &n, 1150);
    CU_ASSERT_PTR_NOT_NULL(gw_nodes_find(t, "a"));
    CU_ASSERT_PTR_NULL(gw_nodes_find(t, "b"));
    CU_ASSERT_PTR_NOT_NULL(gw_nodes_find(t, "c"));
    CU_ASSERT_EQUAL(gw_nodes_count(t), 3);
    /* A place taken by a record that was never stored is free at once. */
    struct ferry_status g1 = rec("ghost-1", 1, FERRY_STATE_IDLE);
    CU_ASSERT_EQUAL(gw_nodes_admit(t, &g1, 1300, evicted, NULL), GW_NODES_ADMIT);
    CU_ASSERT_STRING_EQUAL(evicted, "c");
    struct ferry_status g2 = rec("ghost-2", 1, FERRY_STATE_IDLE);
    CU_ASSERT_EQUAL(gw_nodes_admit(t, &g2, 1301, evicted, NULL), GW_NODES_ADMIT);
    CU_ASSERT_STRING_EQUAL(evicted, "ghost-1");
    gw_nodes_free(t);
}

static void recovered_nodes_have_places_beyond_the_cap(void)
{
    struct gw_nodes *t = table(2, 0, 0);
    CU_ASSERT_TRUE(gw_nodes_recover(t, "r1", 0));
    CU_ASSERT_TRUE(gw_nodes_recover(t, "r2", 0));
    CU_ASSERT_TRUE(gw_nodes_recover(t, "r3", 0));
    CU_ASSERT_TRUE(gw_nodes_recover(t, "r3", 0));
    CU_ASSERT_EQUAL(gw_nodes_count(t), 3);
    const struct gw_node_info *in = gw_nodes_find(t, "r2");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    CU_ASSERT_EQUAL(in->last.seq, 0);
    /* Their next record is judged like any. */
    struct ferry_status st = rec("r2", 40, FERRY_STATE_IDLE);
    CU_ASSERT_EQUAL(put(t, &st, 10), GW_NODES_ADMIT);
    CU_ASSERT_EQUAL(gw_nodes_find(t, "r2")->last.seq, 40);
    CU_ASSERT_TRUE(gw_nodes_find(t, "r2")->twin_dirty);
    gw_nodes_free(t);
}

/* The index survives many insertions and removals (backward-shift
 * deletion, the last entry moved into a hole). */
static void many_nodes_churn(void)
{
    struct gw_nodes_opts o = {.max_nodes = 500, .idle_ms = 1};
    struct gw_nodes *t = NULL;
    CU_ASSERT_EQUAL_FATAL(gw_nodes_new(&o, &t, NULL), FERRY_OK);
    uint64_t now = 10;
    for (int i = 0; i < 5000; i++) {
        char id[16];
        snprintf(id, sizeof(id), "n%d", i);
        struct ferry_status st = rec(id, 1, FERRY_STATE_IDLE);
        CU_ASSERT_EQUAL_FATAL(put(t, &st, now), GW_NODES_ADMIT);
        now += 2;
    }
    CU_ASSERT_EQUAL(gw_nodes_count(t), 500);
    for (int i = 4500; i < 5000; i++) {
        char id[16];
        snprintf(id, sizeof(id), "n%d", i);
        const struct gw_node_info *in = gw_nodes_find(t, id);
        CU_ASSERT_PTR_NOT_NULL(in);
        if (in)
            CU_ASSERT_STRING_EQUAL(in->last.node, id);
    }
    CU_ASSERT_PTR_NULL(gw_nodes_find(t, "n4499"));
    gw_nodes_free(t);
}

static void options_are_checked(void)
{
    struct gw_nodes_opts o = {.max_nodes = 0};
    struct gw_nodes *t = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(gw_nodes_new(&o, &t, &d), FERRY_E_INVALID_ARG);
    o.max_nodes = GW_NODES_LIMIT + 1;
    CU_ASSERT_EQUAL(gw_nodes_new(&o, &t, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "max_nodes"));
}

const char *const ferry_suite_name = "gw_nodes";
const struct ferry_test_case ferry_tests[] = {
    {"retry_is_stored_and_conflict_is_refused", retry_is_stored_and_conflict_is_refused},
    {"seq_jump_is_refused_while_remembered", seq_jump_is_refused_while_remembered},
    {"rate_bounds_one_node_only", rate_bounds_one_node_only},
    {"full_table_forgets_only_idle_unpinned_nodes", full_table_forgets_only_idle_unpinned_nodes},
    {"recovered_nodes_have_places_beyond_the_cap", recovered_nodes_have_places_beyond_the_cap},
    {"many_nodes_churn", many_nodes_churn},
    {"options_are_checked", options_are_checked},
    {NULL, NULL},
};
