/* When a gateway installs its own update (gw_selfupd.h): after its nodes,
 * unless the release's deadline says otherwise. */
#include "cunit_main.h"

#include "gw_selfupd.h"

#include <stdio.h>
#include <string.h>

#define NOW 1795780800

static struct ferry_manifest release(uint64_t seq)
{
    struct ferry_manifest m;
    memset(&m, 0, sizeof(m));
    snprintf(m.release_id, sizeof(m.release_id), "gateway-fw-2.0.%llu-%llu",
             (unsigned long long)seq, (unsigned long long)seq);
    snprintf(m.product, sizeof(m.product), "gateway-fw");
    m.seq = seq;
    memset(m.sha256, (int)seq, sizeof(m.sha256));
    m.nhw = 1;
    snprintf(m.hw[0].model, sizeof(m.hw[0].model), "gw-m1");
    m.expires_at = NOW + 86400;
    return m;
}

static struct gw_selfupd_in input(const struct ferry_manifest *m)
{
    static const uint8_t running[FERRY_SHA256_LEN] = {1};
    struct gw_selfupd_in in = {
        .now = NOW,
        .m = m,
        .cached = true,
        .ready_since = NOW,
        .running_seq = 1,
        .floor_seq = 1,
        .running_sha = running,
        .hw_model = "gw-m1",
    };
    return in;
}

static struct gw_selfupd_out decide(const struct gw_selfupd_in *in)
{
    struct gw_selfupd_out out;
    gw_selfupd_decide(in, &out);
    return out;
}

static void nothing_to_install(void)
{
    struct ferry_manifest m = release(2);
    struct gw_selfupd_in in = input(NULL);
    CU_ASSERT_EQUAL(decide(&in).verdict, GW_SELFUPD_NOTHING);
    in = input(&m);
    in.cached = false;
    CU_ASSERT_EQUAL(decide(&in).verdict, GW_SELFUPD_NOTHING);
    in = input(&m);
    in.running_seq = 2;
    CU_ASSERT_EQUAL(decide(&in).verdict, GW_SELFUPD_NOTHING);
    in = input(&m);
    in.floor_seq = 5;
    CU_ASSERT_EQUAL(decide(&in).verdict, GW_SELFUPD_NOTHING);
    in = input(&m);
    in.running_sha = m.sha256;
    CU_ASSERT_EQUAL(decide(&in).verdict, GW_SELFUPD_NOTHING);
    in = input(&m);
    in.given_up = true;
    CU_ASSERT_EQUAL(decide(&in).verdict, GW_SELFUPD_NOTHING);
}

static void idle_installs_at_once(void)
{
    struct ferry_manifest m = release(2);
    struct gw_selfupd_in in = input(&m);
    struct gw_selfupd_out out = decide(&in);
    CU_ASSERT_EQUAL(out.verdict, GW_SELFUPD_INSTALL);
    CU_ASSERT_FALSE(out.forced);
    /* An unknown running image (seq 0) is replaced too. */
    in.running_seq = 0;
    in.floor_seq = 0;
    in.running_sha = NULL;
    CU_ASSERT_EQUAL(decide(&in).verdict, GW_SELFUPD_INSTALL);
}

static void waits_for_busy_nodes_without_a_deadline(void)
{
    struct ferry_manifest m = release(2);
    struct gw_selfupd_in in = input(&m);
    in.busy = 3;
    for (int64_t t = 0; t < 30 * 86400; t += 86400) {
        in.now = NOW + t;
        struct gw_selfupd_out out = decide(&in);
        CU_ASSERT_EQUAL(out.verdict, GW_SELFUPD_WAIT);
        CU_ASSERT_EQUAL(out.state, FERRY_STATE_DEFERRED);
        CU_ASSERT_EQUAL(out.retry_at, in.now + GW_SELFUPD_RECHECK_S);
        CU_ASSERT_PTR_NOT_NULL(strstr(out.why, "3 node(s)"));
    }
    in.busy = 0;
    CU_ASSERT_EQUAL(decide(&in).verdict, GW_SELFUPD_INSTALL);
}

static void a_deadline_installs_while_busy(void)
{
    struct ferry_manifest m = release(2);
    m.constraints.max_deferral = 60;
    struct gw_selfupd_in in = input(&m);
    in.busy = 1;
    in.ready_since = NOW - 58;
    struct gw_selfupd_out out = decide(&in);
    CU_ASSERT_EQUAL(out.verdict, GW_SELFUPD_WAIT);
    CU_ASSERT_EQUAL(out.retry_at, NOW + 2); /* the deadline comes before the recheck */
    in.now = NOW + 2;
    out = decide(&in);
    CU_ASSERT_EQUAL(out.verdict, GW_SELFUPD_INSTALL);
    CU_ASSERT(out.forced);
    CU_ASSERT_PTR_NOT_NULL(strstr(out.why, "longest allowed (60 s)"));
}

static void must_be_idle_gives_up_at_the_deadline(void)
{
    struct ferry_manifest m = release(2);
    m.constraints.max_deferral = 60;
    m.constraints.must_be_idle = true;
    struct gw_selfupd_in in = input(&m);
    in.busy = 1;
    in.ready_since = NOW - 61;
    struct gw_selfupd_out out = decide(&in);
    CU_ASSERT_EQUAL(out.verdict, GW_SELFUPD_GIVE_UP);
    CU_ASSERT_EQUAL(out.state, FERRY_STATE_FAILED);
    CU_ASSERT_EQUAL(out.error, FERRY_E_BUSY);
    in.busy = 0; /* idle in time: installs */
    CU_ASSERT_EQUAL(decide(&in).verdict, GW_SELFUPD_INSTALL);
}

static void windows_and_hardware(void)
{
    struct ferry_manifest m = release(2);
    m.constraints.window_start = NOW + 100;
    m.constraints.window_end = NOW + 200;
    struct gw_selfupd_in in = input(&m);
    struct gw_selfupd_out out = decide(&in);
    CU_ASSERT_EQUAL(out.verdict, GW_SELFUPD_WAIT);
    CU_ASSERT_EQUAL(out.retry_at, NOW + 100);
    in.now = NOW + 150;
    CU_ASSERT_EQUAL(decide(&in).verdict, GW_SELFUPD_INSTALL);
    in.now = NOW + 200;
    out = decide(&in);
    CU_ASSERT_EQUAL(out.verdict, GW_SELFUPD_GIVE_UP);
    CU_ASSERT_EQUAL(out.error, FERRY_E_EXPIRED);
    in = input(&m);
    in.now = NOW + 150;
    in.hw_model = "gw-m2";
    out = decide(&in);
    CU_ASSERT_EQUAL(out.verdict, GW_SELFUPD_GIVE_UP);
    CU_ASSERT_EQUAL(out.state, FERRY_STATE_REJECTED);
    CU_ASSERT_EQUAL(out.error, FERRY_E_INCOMPATIBLE_HW);
    CU_ASSERT_PTR_NOT_NULL(strstr(out.why, "gw-m2"));
}

static void which_records_keep_the_gateway_waiting(void)
{
    struct ferry_status st;
    memset(&st, 0, sizeof(st));
    const uint64_t now = 50u * 60u * 1000u;
    CU_ASSERT_FALSE(gw_selfupd_node_busy(&st, now, now)); /* no record */
    st.seq = 4;
    static const enum ferry_state busy[] = {FERRY_STATE_DOWNLOADING, FERRY_STATE_VERIFYING,
                                            FERRY_STATE_INSTALLING, FERRY_STATE_PENDING_REBOOT};
    for (size_t i = 0; i < sizeof(busy) / sizeof(busy[0]); i++) {
        st.state = busy[i];
        CU_ASSERT(gw_selfupd_node_busy(&st, now - 1000, now));
        CU_ASSERT_FALSE(gw_selfupd_node_busy(&st, now - GW_SELFUPD_BUSY_STALE_MS - 1, now));
    }
    static const enum ferry_state quiet[] = {
        FERRY_STATE_IDLE,   FERRY_STATE_AVAILABLE,   FERRY_STATE_DEFERRED, FERRY_STATE_SUCCESS,
        FERRY_STATE_FAILED, FERRY_STATE_ROLLED_BACK, FERRY_STATE_REJECTED};
    for (size_t i = 0; i < sizeof(quiet) / sizeof(quiet[0]); i++) {
        st.state = quiet[i];
        CU_ASSERT_FALSE(gw_selfupd_node_busy(&st, now, now));
    }
}

const char *const ferry_suite_name = "gw_selfupd";
const struct ferry_test_case ferry_tests[] = {
    {"nothing to install", nothing_to_install},
    {"idle installs at once", idle_installs_at_once},
    {"waits for busy nodes without a deadline", waits_for_busy_nodes_without_a_deadline},
    {"a deadline installs while busy", a_deadline_installs_while_busy},
    {"must_be_idle gives up at the deadline", must_be_idle_gives_up_at_the_deadline},
    {"windows and hardware", windows_and_hardware},
    {"which records keep the gateway waiting", which_records_keep_the_gateway_waiting},
    {NULL, NULL},
};
