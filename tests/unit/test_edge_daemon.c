/* ferry-edge's daemon against the gateway's real CoAP server (gw_coap.h),
 * both in this process on one ferry_loop over 127.0.0.1, with fake gateway
 * hooks: the signed envelope and the artifact come from memory and status
 * records are collected. Restarts of the node are edge_daemon_free() and
 * edge_daemon_new() on the same state folder. */
#include "cunit_main.h"
#include "test_keys.h"

#include "edge_boot.h"
#include "edge_daemon.h"
#include "edge_slots.h"
#include "ferry_fs.h"
#include "ferry_log.h"
#include "ferry_loop.h"
#include "gw_coap.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HW        "mx-100"
#define PRODUCT   "meter" /* test_manifest_sample()'s */
#define NODE      "node-1"
#define VERSION   "2.0.0"
#define ART_SMALL (50 * 1024 + 77)
#define ART_BIG   (1024 * 1024 + 5)
#define MAX_RECS  512
#define WAIT_MS   30000

/* ---- the fake gateway behind gw_coap ---------------------------------------- */

static struct gw {
    uint8_t *art;
    uint8_t *old_art; /* the server may still serve from it: freed at teardown */
    size_t art_len;
    uint8_t sha[FERRY_SHA256_LEN];
    char *envelope; /* NULL: no release */
    size_t envelope_len;
    enum ferry_err status_ret; /* what the status hook answers */
    uint64_t taken_seq;        /* a forged record holds this seq: 4.09 for ours */
    struct ferry_status rec[MAX_RECS];
    size_t nrec;
    size_t stop_at_bytes;            /* stop the loop at a downloading record this far */
    char identity[FERRY_ID_MAX + 1]; /* DTLS identity of the last record */
} G;

static const uint8_t *gw_manifest(void *arg, const char *product,
                                  const struct gw_coap_requester *who, size_t *len)
{
    (void)arg;
    (void)who;
    if (!G.envelope || strcmp(product, PRODUCT) != 0)
        return NULL;
    *len = G.envelope_len;
    return (const uint8_t *)G.envelope;
}

static enum gw_artifact_state gw_artifact(void *arg, const uint8_t sha[FERRY_SHA256_LEN],
                                          const struct gw_coap_requester *who)
{
    (void)arg;
    (void)who;
    if (!G.art || memcmp(sha, G.sha, FERRY_SHA256_LEN) != 0)
        return GW_ARTIFACT_UNKNOWN;
    return GW_ARTIFACT_COMPLETE;
}

static enum ferry_err gw_artifact_map(void *arg, const uint8_t sha[FERRY_SHA256_LEN],
                                      const uint8_t **data, size_t *len, void **ref,
                                      struct ferry_diag *d)
{
    (void)arg;
    (void)sha;
    (void)d;
    *data = G.art;
    *len = G.art_len;
    *ref = &G;
    return FERRY_OK;
}

static void gw_release(void *arg, void *ref)
{
    (void)arg;
    (void)ref;
}

static struct ferry_loop *loop;
static struct gw_coap *srv;

static enum ferry_err gw_status(void *arg, const struct ferry_status *st,
                                const struct gw_coap_requester *who, struct ferry_diag *d)
{
    (void)arg;
    const char *identity = who->kind == GW_COAP_REQUESTER_PSK ? who->id : NULL;
    snprintf(G.identity, sizeof(G.identity), "%s", identity ? identity : "");
    if (G.status_ret != FERRY_OK)
        return ferry_fail(d, G.status_ret, "test: not now");
    if (G.taken_seq && st->seq <= G.taken_seq)
        return ferry_fail(d, FERRY_E_CONFLICT, "test: another record holds seq %llu",
                          (unsigned long long)st->seq);
    /* The gateway de-duplicates by (node, seq); so does this fake. */
    for (size_t i = 0; i < G.nrec; i++) {
        if (G.rec[i].seq == st->seq)
            return FERRY_OK;
    }
    CU_ASSERT_FATAL(G.nrec < MAX_RECS);
    G.rec[G.nrec++] = *st;
    if (G.stop_at_bytes && st->state == FERRY_STATE_DOWNLOADING && st->bytes >= G.stop_at_bytes) {
        G.stop_at_bytes = 0;
        ferry_loop_stop(loop);
    }
    return FERRY_OK;
}

/* ---- fixture -------------------------------------------------------------------- */

static struct fixture {
    char dir[PATH_MAX / 2];
    char state[PATH_MAX];
    char trust[PATH_MAX];
    char art_path[PATH_MAX];
    char gateway[64];
    char node[FERRY_ID_MAX + 1];
    char hw[FERRY_ID_MAX + 1];
    char product[FERRY_ID_MAX + 1];
    char psk_file[PATH_MAX];
    char busy_cmd[PATH_MAX + 64];
    char health_cmd[2 * PATH_MAX + 128];
    struct test_key key;
    struct edge_config cfg;
    struct edge_daemon *dm;
} X;

static void make_artifact(size_t len)
{
    free(G.old_art);
    G.old_art = G.art;
    G.art = malloc(len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(G.art);
    G.art_len = len;
    for (size_t i = 0; i < len; i++)
        G.art[i] = (uint8_t)(i * 7 + (i >> 10) + 3);
    ferry_sha256(G.art, len, G.sha);
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(X.art_path, G.art, len, 0644, NULL), FERRY_OK);
}

/* Hardware entries that are not ours, each as long as allowed, to make an
 * envelope that needs several Block2 blocks. */
static void pad_hardware(struct ferry_manifest *m)
{
    for (size_t i = 1; i < FERRY_MAX_HW; i++) {
        struct ferry_hw *hw = &m->hw[i];
        memset(hw->model, 'a' + (int)i, FERRY_NAME_MAX);
        hw->model[FERRY_NAME_MAX] = '\0';
        for (size_t r = 0; r < FERRY_MAX_REVISIONS; r++) {
            memset(hw->revisions[r], 'A' + (int)r, FERRY_REVISION_MAX);
            hw->revisions[r][FERRY_REVISION_MAX] = '\0';
        }
        hw->nrevisions = FERRY_MAX_REVISIONS;
    }
    m->nhw = FERRY_MAX_HW;
}

static bool padded; /* publish_as() pads the manifest */

/* Signs a release of the current artifact for `model`, valid now. */
static void publish_as(const char *model, uint64_t seq, const char *version)
{
    struct ferry_manifest m;
    test_manifest_sample(&m, X.key.kid, G.sha, G.art_len);
    snprintf(m.version, sizeof(m.version), "%s", version);
    CU_ASSERT_FATAL(ferry_semver_parse(m.version, &m.semver) == FERRY_OK);
    m.seq = seq;
    snprintf(m.hw[0].model, sizeof(m.hw[0].model), "%s", model);
    m.hw[0].nrevisions = 0;
    m.nhw = 1;
    m.issued_at = (int64_t)time(NULL) - 60;
    m.expires_at = m.issued_at + 86400;
    memset(&m.constraints, 0, sizeof(m.constraints));
    if (padded)
        pad_hardware(&m);
    free(G.envelope);
    G.envelope = test_envelope_of(&X.key, &m, &G.envelope_len);
    CU_ASSERT_EQUAL(gw_coap_manifest_changed(srv, HW), FERRY_OK);
}

static void publish(const char *model)
{
    publish_as(model, 7, VERSION);
}

/* psk: NULL for plain CoAP, else the node's key in hex for CoAP over DTLS. */
static void setup_with(size_t art_len, const char *psk)
{
    static unsigned counter;
    memset(&G, 0, sizeof(G));
    memset(&X, 0, sizeof(X));
    ferry_log_init("test_edge_daemon", FERRY_LOG_WARN);
    snprintf(X.dir, sizeof(X.dir), "%s/d%u", ferry_test_tmpdir(), counter++);
    CU_ASSERT_EQUAL_FATAL(mkdir(X.dir, 0700), 0);
    snprintf(X.state, sizeof(X.state), "%s/state", X.dir);
    snprintf(X.trust, sizeof(X.trust), "%s/trust.pem", X.dir);
    snprintf(X.art_path, sizeof(X.art_path), "%s/artifact.bin", X.dir);
    snprintf(X.node, sizeof(X.node), NODE);
    snprintf(X.hw, sizeof(X.hw), HW);
    snprintf(X.product, sizeof(X.product), PRODUCT);
    test_key_init(&X.key, 11);
    char pem[TEST_PEM_MAX];
    test_key_pem(&X.key, pem);
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(X.trust, pem, strlen(pem), 0644, NULL), FERRY_OK);
    make_artifact(art_len);

    char gw_keys[PATH_MAX];
    char node_key[PATH_MAX];
    if (psk) {
        char line[256];
        snprintf(gw_keys, sizeof(gw_keys), "%s/gw-keys.txt", X.dir);
        snprintf(node_key, sizeof(node_key), "%s/node.psk", X.dir);
        snprintf(line, sizeof(line), "%s %s\n", NODE, psk);
        CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(gw_keys, line, strlen(line), 0600, NULL),
                              FERRY_OK);
        snprintf(line, sizeof(line), "%s\n", psk);
        CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(node_key, line, strlen(line), 0600, NULL),
                              FERRY_OK);
    }
    CU_ASSERT_EQUAL_FATAL(ferry_loop_new(&loop, NULL), FERRY_OK);
    struct gw_coap_opts o = {.addr = "127.0.0.1",
                             .max_downloads = 4,
                             .busy_max_age_s = 1,
                             .fetching_max_age_s = 1,
                             .psk_file = psk ? gw_keys : NULL};
    struct gw_coap_hooks h = {.arg = &G,
                              .manifest = gw_manifest,
                              .artifact = gw_artifact,
                              .artifact_map = gw_artifact_map,
                              .artifact_release = gw_release,
                              .status = gw_status};
    /* A port below the ephemeral range (cunit_main.h says why), tried again
     * when another process took it first. */
    enum ferry_err err = FERRY_E_IO;
    for (int i = 0; i < 5 && err == FERRY_E_IO; i++) {
        o.port = ferry_test_udp_port();
        CU_ASSERT_FATAL(o.port != 0);
        err = gw_coap_new(loop, &o, &h, &srv, NULL);
    }
    CU_ASSERT_EQUAL_FATAL(err, FERRY_OK);
    snprintf(X.gateway, sizeof(X.gateway), "%s://127.0.0.1:%u", psk ? "coaps" : "coap",
             (unsigned)gw_coap_port(srv));
    snprintf(X.psk_file, sizeof(X.psk_file), "%s", psk ? node_key : "");
    /* The health check sees the new version and the slot it booted. */
    snprintf(X.health_cmd, sizeof(X.health_cmd),
             "test \"$FERRY_VERSION\" = %s && test \"$FERRY_NODE\" = %s && cmp -s \"$FERRY_SLOT\" "
             "'%s'",
             VERSION, NODE, X.art_path);
    X.cfg = (struct edge_config){
        .gateway = X.gateway,
        .id = X.node,
        .product = X.product,
        .hw_model = X.hw,
        .state_dir = X.state,
        .trust = X.trust,
        .health_cmd = X.health_cmd,
        .max_image_mb = 2,
        .poll_interval = 1,
        .busy_retry = 1,
        .cmd_timeout = 5,
        .request_timeout = 5,
        .block_size = 1024,
        .trial_attempts = 1,
        .psk_file = psk ? X.psk_file : NULL,
        .log_level = FERRY_LOG_WARN,
    };
}

static void setup(size_t art_len)
{
    setup_with(art_len, NULL);
}

static void start_node(void)
{
    struct ferry_diag d = {{0}};
    enum ferry_err err = edge_daemon_new(loop, &X.cfg, &X.dm, &d);
    if (err != FERRY_OK)
        fprintf(stderr, "edge_daemon_new: %s\n", ferry_diag_str(&d, err));
    CU_ASSERT_EQUAL_FATAL(err, FERRY_OK);
}

static void stop_node(void)
{
    edge_daemon_free(X.dm);
    X.dm = NULL;
}

static void teardown(void)
{
    stop_node();
    gw_coap_free(srv);
    srv = NULL;
    ferry_loop_free(loop);
    loop = NULL;
    free(G.art);
    free(G.old_art);
    free(G.envelope);
    G.art = NULL;
    G.old_art = NULL;
    G.envelope = NULL;
    test_key_free(&X.key);
}

struct waiter {
    bool (*done)(void);
    uint64_t deadline;
    bool met;
};

static void tick(void *arg)
{
    struct waiter *w = arg;
    if (w->done()) {
        w->met = true;
        ferry_loop_stop(loop);
    } else if (ferry_now_ms() >= w->deadline) {
        ferry_loop_stop(loop);
    } else {
        CU_ASSERT_FATAL(ferry_loop_timer(loop, 10, tick, w) != 0);
    }
}

/* Runs the loop until done() or timeout_ms; a stop from elsewhere (the
 * status hook) ends it too. */
static bool run_until(bool (*done)(void), uint64_t timeout_ms)
{
    struct waiter w = {.done = done, .deadline = ferry_now_ms() + timeout_ms};
    uint64_t t = ferry_loop_timer(loop, 0, tick, &w);
    CU_ASSERT_FATAL(t != 0);
    ferry_loop_run(loop);
    ferry_loop_cancel(loop, t);
    return w.met;
}

static size_t count_state(enum ferry_state s)
{
    size_t n = 0;
    for (size_t i = 0; i < G.nrec; i++)
        n += G.rec[i].state == s;
    return n;
}

static bool got_final(void)
{
    return count_state(FERRY_STATE_SUCCESS) + count_state(FERRY_STATE_ROLLED_BACK) +
               count_state(FERRY_STATE_FAILED) >
           0;
}

static bool got_deferred(void)
{
    return count_state(FERRY_STATE_DEFERRED) > 0;
}

static bool got_pending_reboot(void)
{
    return count_state(FERRY_STATE_PENDING_REBOOT) > 0 && X.dm &&
           edge_daemon_phase(X.dm) == EDGE_PHASE_HEALTH;
}

static bool got_rejected(void)
{
    return count_state(FERRY_STATE_REJECTED) > 0;
}

static bool got_idle(void)
{
    return count_state(FERRY_STATE_IDLE) > 0;
}

static bool journal_empty(void)
{
    return X.dm && edge_daemon_unsent(X.dm) == 0;
}

/* Records reached the gateway once each, in seq order, none missing. */
static void expect_ordered_records(void)
{
    for (size_t i = 0; i < G.nrec; i++) {
        CU_ASSERT_STRING_EQUAL(G.rec[i].node, NODE);
        CU_ASSERT_EQUAL(G.rec[i].seq, i + 1);
    }
}

/* The boot state on disk, as the next boot would load it. */
static struct edge_boot_state stored_state(void)
{
    struct edge_slots_backend *be = NULL;
    struct edge_slots *s = NULL;
    CU_ASSERT_EQUAL_FATAL(edge_slots_file_new(X.state, 2u << 20, &be, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_slots_open(be, &s, NULL), FERRY_OK);
    struct edge_boot_state st = *edge_slots_state(s);
    edge_slots_free(s);
    edge_slots_file_free(be);
    return st;
}

static bool slot_holds_artifact(const char *name)
{
    char path[PATH_MAX + 16];
    uint8_t *buf = NULL;
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/%s", X.state, name);
    if (ferry_read_file(path, G.art_len + 1, &buf, &len, NULL) != FERRY_OK)
        return false;
    bool same = len == G.art_len && memcmp(buf, G.art, len) == 0;
    free(buf);
    return same;
}

/* ---- tests ------------------------------------------------------------------------ */

static void release_is_installed_and_confirmed(void)
{
    setup(ART_SMALL);
    start_node();
    CU_ASSERT_TRUE(run_until(got_idle, WAIT_MS));
    publish(HW);
    CU_ASSERT_TRUE_FATAL(run_until(got_final, WAIT_MS));
    CU_ASSERT_TRUE(run_until(journal_empty, WAIT_MS));
    static const enum ferry_state order[] = {FERRY_STATE_IDLE,        FERRY_STATE_AVAILABLE,
                                             FERRY_STATE_DOWNLOADING, FERRY_STATE_VERIFYING,
                                             FERRY_STATE_INSTALLING,  FERRY_STATE_PENDING_REBOOT,
                                             FERRY_STATE_SUCCESS};
    size_t k = 0;
    for (size_t i = 0; i < G.nrec; i++) {
        if (k > 0 && G.rec[i].state == order[k - 1])
            continue; /* repeated downloading records */
        CU_ASSERT_FATAL(k < sizeof(order) / sizeof(order[0]));
        CU_ASSERT_STRING_EQUAL(ferry_state_name(G.rec[i].state), ferry_state_name(order[k]));
        k++;
    }
    CU_ASSERT_EQUAL(k, sizeof(order) / sizeof(order[0]));
    expect_ordered_records();
    CU_ASSERT_STRING_EQUAL(G.rec[G.nrec - 1].version, VERSION);
    CU_ASSERT_TRUE(slot_holds_artifact("slot-b.img"));
    teardown();
    struct edge_boot_state st = stored_state();
    CU_ASSERT_EQUAL(st.active, EDGE_SLOT_B);
    CU_ASSERT_TRUE(st.confirmed);
    CU_ASSERT_EQUAL(st.rollback_seq, 7);
}

static void unhealthy_image_is_rolled_back(void)
{
    setup(ART_SMALL);
    snprintf(X.health_cmd, sizeof(X.health_cmd), "test \"$FERRY_VERSION\" != %s", VERSION);
    start_node();
    publish(HW);
    CU_ASSERT_TRUE_FATAL(run_until(got_final, WAIT_MS));
    CU_ASSERT_EQUAL(count_state(FERRY_STATE_ROLLED_BACK), 1);
    CU_ASSERT_EQUAL(count_state(FERRY_STATE_SUCCESS), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(G.rec[G.nrec - 1].message, "exit 1"));
    teardown();
    struct edge_boot_state st = stored_state();
    CU_ASSERT_EQUAL(st.active, EDGE_SLOT_A);
    CU_ASSERT_EQUAL(st.trial, EDGE_SLOT_NONE);
    CU_ASSERT_FALSE(st.slot[EDGE_SLOT_B].valid);
}

static void busy_device_installs_once_idle(void)
{
    setup(ART_SMALL);
    char flag[PATH_MAX + 8];
    snprintf(flag, sizeof(flag), "%s/busy", X.dir);
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(flag, "1", 1, 0644, NULL), FERRY_OK);
    snprintf(X.busy_cmd, sizeof(X.busy_cmd), "test -e '%s'", flag);
    X.cfg.busy_cmd = X.busy_cmd;
    start_node();
    publish(HW);
    CU_ASSERT_TRUE_FATAL(run_until(got_deferred, WAIT_MS));
    /* Downloaded and verified before the install was held back. */
    CU_ASSERT_EQUAL(count_state(FERRY_STATE_VERIFYING), 1);
    CU_ASSERT_FALSE(run_until(got_final, 2500)); /* asked again, still busy */
    CU_ASSERT_EQUAL(count_state(FERRY_STATE_DEFERRED), 1);
    CU_ASSERT_EQUAL(unlink(flag), 0);
    CU_ASSERT_TRUE(run_until(got_final, WAIT_MS));
    CU_ASSERT_EQUAL(count_state(FERRY_STATE_SUCCESS), 1);
    teardown();
}

static void records_wait_out_an_outage_and_a_restart(void)
{
    setup(ART_SMALL);
    G.status_ret = FERRY_E_BUSY; /* 5.03 for every record */
    start_node();
    publish(HW);
    CU_ASSERT_FALSE(run_until(got_final, 3000));
    CU_ASSERT_EQUAL(G.nrec, 0);
    CU_ASSERT(edge_daemon_unsent(X.dm) >= 3);
    stop_node();
    G.status_ret = FERRY_OK;
    start_node();
    CU_ASSERT_TRUE_FATAL(run_until(got_final, WAIT_MS));
    CU_ASSERT_TRUE(run_until(journal_empty, WAIT_MS));
    expect_ordered_records();
    CU_ASSERT_EQUAL(count_state(FERRY_STATE_SUCCESS), 1);
    /* The restart reported idle once more, after the records of the first run. */
    CU_ASSERT_EQUAL(count_state(FERRY_STATE_IDLE), 2);
    teardown();
}

/* Forged records took the node's next seqs at the gateway first (4.09 for
 * its own): the node renumbers its pending records and every one of them
 * arrives, in order; before, it resent the same seq for ever. */
static void conflicting_seq_is_renumbered_and_nothing_lost(void)
{
    setup(ART_SMALL);
    G.taken_seq = 3;
    start_node();
    publish(HW);
    CU_ASSERT_TRUE_FATAL(run_until(got_final, WAIT_MS));
    CU_ASSERT_TRUE(run_until(journal_empty, WAIT_MS));
    CU_ASSERT_EQUAL(count_state(FERRY_STATE_SUCCESS), 1);
    CU_ASSERT_EQUAL(count_state(FERRY_STATE_IDLE), 1);
    CU_ASSERT_FATAL(G.nrec >= 3);
    CU_ASSERT(G.rec[0].seq > 3);
    CU_ASSERT_EQUAL(G.rec[0].state, FERRY_STATE_IDLE);
    for (size_t i = 1; i < G.nrec; i++)
        CU_ASSERT(G.rec[i].seq > G.rec[i - 1].seq);
    CU_ASSERT_EQUAL(G.rec[G.nrec - 1].state, FERRY_STATE_SUCCESS);
    teardown();
}

/* The job record cannot be saved (job.rec is a folder): the node used to
 * log it and install anyway, a job it could not have resumed or
 * recognised after a restart. Now the job fails with io, and nothing is
 * installed. */
static void unsaved_job_fails_instead_of_installing(void)
{
    setup(ART_SMALL);
    start_node();
    CU_ASSERT_TRUE_FATAL(run_until(got_idle, WAIT_MS));
    char job[PATH_MAX + 16];
    snprintf(job, sizeof(job), "%s/" EDGE_JOB_FILE, X.state);
    unlink(job);
    CU_ASSERT_EQUAL_FATAL(mkdir(job, 0700), 0);
    publish(HW);
    CU_ASSERT_TRUE_FATAL(run_until(got_final, WAIT_MS));
    CU_ASSERT_EQUAL(count_state(FERRY_STATE_SUCCESS), 0);
    CU_ASSERT_EQUAL(count_state(FERRY_STATE_INSTALLING), 0);
    CU_ASSERT_EQUAL_FATAL(count_state(FERRY_STATE_FAILED), 1);
    const struct ferry_status *last = &G.rec[G.nrec - 1];
    CU_ASSERT_EQUAL(last->state, FERRY_STATE_FAILED);
    CU_ASSERT_EQUAL(last->error, FERRY_E_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(last->message, "job record"));
    struct edge_boot_state st = stored_state();
    CU_ASSERT_EQUAL(st.active, EDGE_SLOT_A);
    CU_ASSERT_EQUAL(st.trial, EDGE_SLOT_NONE);
    CU_ASSERT_EQUAL(edge_daemon_phase(X.dm), EDGE_PHASE_IDLE);
    teardown();
}

static void restart_resumes_the_download(void)
{
    setup(ART_BIG);
    start_node();
    publish(HW);
    G.stop_at_bytes = 200 * 1024;
    run_until(got_final, WAIT_MS);
    CU_ASSERT_EQUAL_FATAL(count_state(FERRY_STATE_SUCCESS), 0);
    stop_node(); /* as ferry-edge being killed mid-download */
    size_t before = G.nrec;
    start_node();
    CU_ASSERT_TRUE_FATAL(run_until(got_final, WAIT_MS));
    CU_ASSERT_EQUAL(count_state(FERRY_STATE_SUCCESS), 1);
    /* The first record of the new run is the resumed download, past 0. */
    CU_ASSERT_FATAL(G.nrec > before);
    CU_ASSERT_EQUAL(G.rec[before].state, FERRY_STATE_DOWNLOADING);
    CU_ASSERT(G.rec[before].bytes >= 64 * 1024);
    CU_ASSERT(G.rec[before].bytes < G.art_len);
    CU_ASSERT_TRUE(slot_holds_artifact("slot-b.img"));
    teardown();
}

static void crash_during_the_trial_rolls_back(void)
{
    setup(ART_SMALL);
    snprintf(X.health_cmd, sizeof(X.health_cmd), "sleep 30");
    X.cfg.cmd_timeout = 60;
    start_node();
    publish(HW);
    CU_ASSERT_TRUE_FATAL(run_until(got_pending_reboot, WAIT_MS));
    stop_node(); /* dies during the trial boot's health check */
    start_node();
    CU_ASSERT_TRUE_FATAL(run_until(got_final, WAIT_MS));
    CU_ASSERT_EQUAL_FATAL(count_state(FERRY_STATE_ROLLED_BACK), 1);
    const struct ferry_status *rb = &G.rec[G.nrec - 1];
    while (rb->state != FERRY_STATE_ROLLED_BACK)
        rb--;
    CU_ASSERT_PTR_NOT_NULL(strstr(rb->message, "attempts"));
    CU_ASSERT_STRING_EQUAL(rb->version, VERSION);
    CU_ASSERT_STRING_EQUAL(rb->release_id, "meter-fw-2024.06");
    /* Then idle, on the old image. */
    CU_ASSERT_TRUE(run_until(journal_empty, WAIT_MS));
    CU_ASSERT_EQUAL(G.rec[G.nrec - 1].state, FERRY_STATE_IDLE);
    CU_ASSERT_STRING_EQUAL(G.rec[G.nrec - 1].version, "");
    teardown();
    struct edge_boot_state st = stored_state();
    CU_ASSERT_EQUAL(st.active, EDGE_SLOT_A);
    CU_ASSERT_EQUAL(st.trial, EDGE_SLOT_NONE);
}

static bool got_two_successes(void)
{
    return count_state(FERRY_STATE_SUCCESS) == 2;
}

static void observed_release_starts_without_waiting_for_a_poll(void)
{
    setup(ART_SMALL);
    snprintf(X.health_cmd, sizeof(X.health_cmd), "cmp -s \"$FERRY_SLOT\" '%s'", X.art_path);
    X.cfg.poll_interval = 3600; /* only the GET at start, and notifications */
    publish(HW);
    start_node();
    CU_ASSERT_TRUE_FATAL(run_until(got_final, WAIT_MS));
    CU_ASSERT_EQUAL_FATAL(count_state(FERRY_STATE_SUCCESS), 1);
    make_artifact(ART_SMALL + 1000);
    publish_as(HW, 8, "2.1.0");
    CU_ASSERT_TRUE(run_until(got_two_successes, 10000));
    CU_ASSERT_STRING_EQUAL(G.rec[G.nrec - 1].version, "2.1.0");
    CU_ASSERT_TRUE(slot_holds_artifact("slot-a.img"));
    teardown();
    struct edge_boot_state st = stored_state();
    CU_ASSERT_EQUAL(st.active, EDGE_SLOT_A);
    CU_ASSERT_EQUAL(st.rollback_seq, 8);
}

static void long_envelope_arrives_in_blocks(void)
{
    setup(ART_SMALL);
    padded = true;
    publish(HW);
    padded = false;
    CU_ASSERT_FATAL(G.envelope_len > 2 * 1024);
    start_node();
    CU_ASSERT_TRUE_FATAL(run_until(got_final, WAIT_MS));
    CU_ASSERT_EQUAL(count_state(FERRY_STATE_SUCCESS), 1);
    teardown();
}

static void release_over_dtls_with_a_pre_shared_key(void)
{
    setup_with(ART_SMALL, "00112233445566778899aabbccddeeff");
    start_node();
    publish(HW);
    CU_ASSERT_TRUE_FATAL(run_until(got_final, WAIT_MS));
    CU_ASSERT_EQUAL(count_state(FERRY_STATE_SUCCESS), 1);
    CU_ASSERT_STRING_EQUAL(G.identity, NODE); /* the gateway knew who sent it */
    teardown();
}

static void wrong_hardware_is_rejected_once(void)
{
    setup(ART_SMALL);
    start_node();
    publish("mx-900");
    CU_ASSERT_TRUE_FATAL(run_until(got_rejected, WAIT_MS));
    run_until(got_final, 3000); /* three more polls */
    CU_ASSERT_EQUAL(count_state(FERRY_STATE_REJECTED), 1);
    CU_ASSERT_EQUAL(G.rec[G.nrec - 1].error, FERRY_E_INCOMPATIBLE_HW);
    CU_ASSERT_EQUAL(count_state(FERRY_STATE_DOWNLOADING), 0);
    teardown();
}

const char *const ferry_suite_name = "edge_daemon";
const struct ferry_test_case ferry_tests[] = {
    {"release is installed and confirmed", release_is_installed_and_confirmed},
    {"unhealthy image is rolled back", unhealthy_image_is_rolled_back},
    {"busy device installs once idle", busy_device_installs_once_idle},
    {"records wait out an outage and a restart", records_wait_out_an_outage_and_a_restart},
    {"conflicting seq is renumbered and nothing lost",
     conflicting_seq_is_renumbered_and_nothing_lost},
    {"unsaved job fails instead of installing", unsaved_job_fails_instead_of_installing},
    {"restart resumes the download", restart_resumes_the_download},
    {"crash during the trial rolls back", crash_during_the_trial_rolls_back},
    {"observed release starts without waiting for a poll",
     observed_release_starts_without_waiting_for_a_poll},
    {"long envelope arrives in blocks", long_envelope_arrives_in_blocks},
    {"release over DTLS with a pre-shared key", release_over_dtls_with_a_pre_shared_key},
    {"wrong hardware is rejected once", wrong_hardware_is_rejected_once},
    {NULL, NULL},
};
