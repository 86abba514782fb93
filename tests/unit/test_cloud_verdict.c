/* The cloud's verdict on one status record (cloud_verdict.h), from made-up
 * facts: duplicates, conflicts, bindings along a path (a cascade of
 * gateways included), the sequence window. */
#include "cunit_main.h"

#include "cloud_verdict.h"

#include <stdio.h>
#include <string.h>

static struct ferry_status rec(uint64_t seq, enum ferry_state state, const char *gw)
{
    struct ferry_status st;
    memset(&st, 0, sizeof(st));
    snprintf(st.node, sizeof(st.node), "node-7");
    snprintf(st.gateway, sizeof(st.gateway), "%s", gw);
    st.state = state;
    st.seq = seq;
    st.ts = 1795780800;
    return st;
}

static struct cloud_judgement judge(const struct ferry_status *st, const char *const *path,
                                    size_t npath, const struct cloud_facts *f)
{
    struct cloud_judgement j;
    cloud_judge(st, path, npath, f, &j);
    return j;
}

static void new_node_is_stored_and_bound(void)
{
    struct ferry_status st = rec(1, FERRY_STATE_IDLE, "gw-1");
    const char *path[] = {"node-7", "gw-1"};
    struct cloud_facts f;
    memset(&f, 0, sizeof(f));
    struct cloud_judgement j = judge(&st, path, 2, &f);
    CU_ASSERT_EQUAL(j.verdict, CLOUD_STORE);
    CU_ASSERT_TRUE(j.bind[0]);
    snprintf(f.bound[0], sizeof(f.bound[0]), "gw-1");
    f.last_seq = 1;
    st.seq = 2;
    j = judge(&st, path, 2, &f);
    CU_ASSERT_EQUAL(j.verdict, CLOUD_STORE);
    CU_ASSERT_FALSE(j.bind[0]);
}

static void same_record_is_a_duplicate_whatever_the_gateway(void)
{
    struct ferry_status st = rec(5, FERRY_STATE_FAILED, "gw-2");
    const char *path[] = {"node-7", "gw-2"};
    struct cloud_facts f;
    memset(&f, 0, sizeof(f));
    f.have_seq = true;
    f.same = rec(5, FERRY_STATE_FAILED, "gw-1");
    f.last_seq = 5;
    snprintf(f.bound[0], sizeof(f.bound[0]), "gw-1");
    CU_ASSERT_EQUAL(judge(&st, path, 2, &f).verdict, CLOUD_DUPLICATE);
}

static void conflict_wrong_gateway_and_window(void)
{
    const char *path[] = {"node-7", "gw-1"};
    struct cloud_facts f;
    memset(&f, 0, sizeof(f));
    snprintf(f.bound[0], sizeof(f.bound[0]), "gw-1");
    f.last_seq = 12;
    f.have_seq = true;
    f.same = rec(12, FERRY_STATE_SUCCESS, "gw-1");
    struct ferry_status genuine = rec(12, FERRY_STATE_FAILED, "gw-1");
    struct cloud_judgement j = judge(&genuine, path, 2, &f);
    CU_ASSERT_EQUAL(j.verdict, CLOUD_REFUSE);
    CU_ASSERT_EQUAL(j.reason, FERRY_E_CONFLICT);
    CU_ASSERT_PTR_NOT_NULL(strstr(j.detail, "node-7"));

    f.have_seq = false;
    struct ferry_status far = rec(UINT64_C(1) << 53, FERRY_STATE_SUCCESS, "gw-1");
    j = judge(&far, path, 2, &f);
    CU_ASSERT_EQUAL(j.verdict, CLOUD_REFUSE);
    CU_ASSERT_EQUAL(j.reason, FERRY_E_SEQ_RANGE);
    far.seq = 12 + FERRY_STATUS_SEQ_WINDOW;
    CU_ASSERT_EQUAL(judge(&far, path, 2, &f).verdict, CLOUD_STORE);

    /* Through another gateway: refused, whatever else is wrong with it. */
    const char *other[] = {"node-7", "gw-9"};
    struct ferry_status via9 = rec(UINT64_C(1) << 53, FERRY_STATE_SUCCESS, "gw-9");
    j = judge(&via9, other, 2, &f);
    CU_ASSERT_EQUAL(j.verdict, CLOUD_REFUSE);
    CU_ASSERT_EQUAL(j.reason, FERRY_E_WRONG_GATEWAY);
    CU_ASSERT_PTR_NOT_NULL(strstr(j.detail, "ferry-cloud bind"));
    CU_ASSERT_FALSE(j.bind[0]);
}

/* The shape a cascade takes (issue 13): node -> sub-gateway -> parent. Each
 * hop is checked against its own binding; new hops are bound. */
static void a_cascade_checks_every_hop(void)
{
    struct ferry_status st = rec(3, FERRY_STATE_IDLE, "gw-sub");
    const char *path[] = {"node-7", "gw-sub", "gw-top"};
    struct cloud_facts f;
    memset(&f, 0, sizeof(f));
    f.last_seq = 2;
    snprintf(f.bound[0], sizeof(f.bound[0]), "gw-sub");
    struct cloud_judgement j = judge(&st, path, 3, &f);
    CU_ASSERT_EQUAL(j.verdict, CLOUD_STORE);
    CU_ASSERT_FALSE(j.bind[0]);
    CU_ASSERT_TRUE(j.bind[1]);
    snprintf(f.bound[1], sizeof(f.bound[1]), "gw-elsewhere");
    j = judge(&st, path, 3, &f);
    CU_ASSERT_EQUAL(j.verdict, CLOUD_REFUSE);
    CU_ASSERT_EQUAL(j.reason, FERRY_E_WRONG_GATEWAY);
    CU_ASSERT_PTR_NOT_NULL(strstr(j.detail, "gw-sub is bound to gateway gw-elsewhere"));
}

const char *const ferry_suite_name = "cloud_verdict";
const struct ferry_test_case ferry_tests[] = {
    {"new_node_is_stored_and_bound", new_node_is_stored_and_bound},
    {"same_record_is_a_duplicate_whatever_the_gateway",
     same_record_is_a_duplicate_whatever_the_gateway},
    {"conflict_wrong_gateway_and_window", conflict_wrong_gateway_and_window},
    {"a_cascade_checks_every_hop", a_cascade_checks_every_hop},
    {NULL, NULL},
};
