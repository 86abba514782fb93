#include "cunit_main.h"

#include "gw_outbox.h"

#include "ferry_io_faulty.h"
#include "ferry_log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GW         "gw-test"
#define BIG_BYTES  (UINT64_C(16) << 20)
#define BIG_COUNT  100000
#define REC_HEADER 20 /* journal record header, see gw_outbox.h */
#define ACK_BYTES  20 /* one ack record */

/* ---- helpers --------------------------------------------------------------- */

static struct ferry_status mk_status(const char *node, uint64_t seq)
{
    struct ferry_status st;
    memset(&st, 0, sizeof(st));
    snprintf(st.node, sizeof(st.node), "%s", node);
    snprintf(st.release_id, sizeof(st.release_id), "meter-fw-1.4.2-42");
    snprintf(st.version, sizeof(st.version), "1.4.%" PRIu64, seq % 7);
    st.state = (enum ferry_state)(seq % FERRY_STATE__COUNT);
    st.total = 1048576;
    st.bytes = (seq * 4096) % st.total;
    snprintf(st.message, sizeof(st.message), "step %" PRIu64 " of %s", seq, node);
    st.seq = seq;
    st.ts = 1795780790 + (int64_t)seq;
    return st;
}

/* Test keys: key k is (node-(k % 3), seq k + 1). */
static void key_node(int k, char *node, size_t cap)
{
    snprintf(node, cap, "node-%d", k % 3);
}

static struct ferry_status key_status(int k)
{
    char node[FERRY_ID_MAX + 1];
    key_node(k, node, sizeof(node));
    return mk_status(node, (uint64_t)k + 1);
}

static const char *fresh_dir(char *buf)
{
    static unsigned counter;
    /* Corruption found is still logged; the routine lines are not. */
    ferry_log_init("test_gw_outbox", FERRY_LOG_ERROR);
    snprintf(buf, PATH_MAX, "%s/s%u", ferry_test_tmpdir(), counter++);
    CU_ASSERT_EQUAL_FATAL(mkdir(buf, 0700), 0);
    return buf;
}

static void outbox_file(char *buf, const char *dir, const char *name)
{
    int n = snprintf(buf, PATH_MAX, "%s/outbox/%s", dir, name);
    CU_ASSERT_FATAL(n > 0 && n < PATH_MAX);
}

static long long file_size(const char *dir, const char *name)
{
    char path[PATH_MAX];
    struct stat st;
    outbox_file(path, dir, name);
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static struct gw_outbox *open_with(const char *dir, const struct ferry_io *io, size_t max_records,
                                   uint64_t max_bytes, enum ferry_err *errp)
{
    struct gw_outbox_opts o = {
        .state_dir = dir,
        .gateway_id = GW,
        .max_records = max_records,
        .max_bytes = max_bytes,
        .io = io,
    };
    struct gw_outbox *ob = NULL;
    struct ferry_diag d = {{0}};
    enum ferry_err err = gw_outbox_open(&o, &ob, &d);
    if (errp)
        *errp = err;
    return err == FERRY_OK ? ob : NULL;
}

static struct gw_outbox *open_dir(const char *dir)
{
    struct gw_outbox *ob = open_with(dir, NULL, BIG_COUNT, BIG_BYTES, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    return ob;
}

static enum ferry_err append_key(struct gw_outbox *ob, int k, bool *dup)
{
    struct ferry_status st = key_status(k);
    struct ferry_diag d = {{0}};
    return gw_outbox_append(ob, &st, dup, &d);
}

static enum ferry_err ack_keys(struct gw_outbox *ob, const int *keys, size_t n, size_t *acked)
{
    struct ferry_record_id ids[8];
    struct ferry_diag d = {{0}};
    CU_ASSERT_FATAL(n <= 8);
    for (size_t i = 0; i < n; i++) {
        key_node(keys[i], ids[i].node, sizeof(ids[i].node));
        ids[i].seq = (uint64_t)keys[i] + 1;
    }
    return gw_outbox_ack(ob, ids, n, acked, &d);
}

/* All pending records, oldest first; the caller frees. */
static struct gw_outbox_item *pending(struct gw_outbox *ob, size_t *n)
{
    size_t cap = gw_outbox_count(ob) + 1;
    struct gw_outbox_item *items = calloc(cap, sizeof(*items));
    struct ferry_diag d = {{0}};
    CU_ASSERT_PTR_NOT_NULL_FATAL(items);
    CU_ASSERT_EQUAL_FATAL(gw_outbox_peek(ob, items, cap, n, &d), FERRY_OK);
    CU_ASSERT_EQUAL(*n, gw_outbox_count(ob));
    for (size_t i = 1; i < *n; i++)
        CU_ASSERT(items[i - 1].id < items[i].id);
    return items;
}

/* Which test keys are pending (present[k]), each at most once. */
static void pending_keys(struct gw_outbox *ob, bool *present, int nkeys)
{
    size_t n = 0;
    struct gw_outbox_item *items = pending(ob, &n);
    memset(present, 0, (size_t)nkeys * sizeof(*present));
    for (size_t i = 0; i < n; i++) {
        int k = (int)items[i].st.seq - 1;
        char node[FERRY_ID_MAX + 1];
        CU_ASSERT_FATAL(k >= 0 && k < nkeys);
        key_node(k, node, sizeof(node));
        CU_ASSERT_STRING_EQUAL(items[i].st.node, node);
        CU_ASSERT(!present[k]);
        present[k] = true;
    }
    free(items);
}

static bool status_equal(const struct ferry_status *a, const struct ferry_status *b)
{
    return strcmp(a->node, b->node) == 0 && strcmp(a->gateway, b->gateway) == 0 &&
           strcmp(a->release_id, b->release_id) == 0 && strcmp(a->version, b->version) == 0 &&
           strcmp(a->message, b->message) == 0 && a->state == b->state && a->bytes == b->bytes &&
           a->total == b->total && a->error == b->error && a->seq == b->seq && a->ts == b->ts &&
           a->nvia == b->nvia && memcmp(a->via, b->via, a->nvia * sizeof(a->via[0])) == 0;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)size + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    CU_ASSERT_EQUAL_FATAL(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *len = (size_t)size;
    return buf;
}

static void spill(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL_FATAL(fwrite(buf, 1, len, f), len);
    CU_ASSERT_EQUAL_FATAL(fclose(f), 0);
}

/* ---- crash harness --------------------------------------------------------- */

#define NKEYS 32

enum step_kind { STEP_APPEND, STEP_ACK, STEP_COMPACT };

struct step {
    enum step_kind kind;
    int keys[4]; /* STEP_APPEND: keys[0] */
    size_t nkeys;
};

struct scenario {
    const char *name;
    struct step prep[16]; /* run with the real system calls */
    size_t nprep;
    struct step steps[8]; /* run under faults, after an open under faults */
    size_t nsteps;
};

/* What a key may be after the crash, from what the calls returned. */
enum kstate { K_NONE, K_MAYBE, K_IN, K_MAYBE_ACKED, K_ACKED };

static void run_step(struct gw_outbox *ob, const struct step *s, enum kstate *model)
{
    struct ferry_diag d = {{0}};
    if (s->kind == STEP_COMPACT) {
        (void)!gw_outbox_compact(ob, &d);
        return;
    }
    if (s->kind == STEP_APPEND) {
        int k = s->keys[0];
        bool dup = false;
        if (append_key(ob, k, &dup) == FERRY_OK)
            model[k] = K_IN;
        else if (model[k] != K_IN)
            model[k] = K_MAYBE;
        return;
    }
    size_t acked = 0;
    enum ferry_err err = ack_keys(ob, s->keys, s->nkeys, &acked);
    for (size_t i = 0; i < s->nkeys; i++) {
        enum kstate *m = &model[s->keys[i]];
        if (err == FERRY_OK && (*m == K_IN || *m == K_MAYBE_ACKED))
            *m = K_ACKED;
        else if (err != FERRY_OK && *m == K_IN)
            *m = K_MAYBE_ACKED;
    }
}

/* After the crash: every appended record is there unless acked, no acked
 * one came back, nothing appeared that was never sent, and the outbox
 * still takes and keeps records. */
static void check_after_crash(const char *dir, const enum kstate *model, const char *what,
                              long crash_at)
{
    bool present[NKEYS];
    struct gw_outbox *ob = open_dir(dir);
    char tmp[PATH_MAX];
    outbox_file(tmp, dir, "journal.tmp");
    CU_ASSERT_NOT_EQUAL(access(tmp, F_OK), 0);
    pending_keys(ob, present, NKEYS);
    for (int k = 0; k < NKEYS; k++) {
        bool ok = true;
        if (model[k] == K_IN)
            ok = present[k];
        else if (model[k] == K_NONE || model[k] == K_ACKED)
            ok = !present[k];
        if (!ok)
            fprintf(stderr, "%s, crash at operation %ld: key %d is %s, model %d\n", what, crash_at,
                    k, present[k] ? "pending" : "missing", model[k]);
        CU_ASSERT(ok);
    }
    CU_ASSERT_EQUAL(append_key(ob, NKEYS - 1, NULL), FERRY_OK);
    size_t before = gw_outbox_count(ob);
    gw_outbox_close(ob);
    ob = open_dir(dir);
    CU_ASSERT_EQUAL(gw_outbox_count(ob), before);
    gw_outbox_close(ob);
}

static struct ferry_io_faulty *new_driver(void)
{
    struct ferry_io_faulty *f = NULL;
    CU_ASSERT_EQUAL_FATAL(ferry_io_faulty_new(&f, NULL), FERRY_OK);
    return f;
}

static const char *const STOP_NAMES[] = {"kill -9", "power cut", "torn power cut"};

/* One run: prepare, then stop the program at file operation crash_at.
 * False when the steps finished before reaching it. */
static bool crash_run(const struct scenario *sc, long crash_at, enum ferry_io_stop how)
{
    enum kstate model[NKEYS] = {K_NONE};
    char dir[PATH_MAX], what[128];
    struct gw_outbox *ob = NULL;
    fresh_dir(dir);
    if (sc->nprep > 0) {
        ob = open_dir(dir);
        for (size_t i = 0; i < sc->nprep; i++)
            run_step(ob, &sc->prep[i], model);
        for (int k = 0; k < NKEYS; k++)
            CU_ASSERT(model[k] == K_NONE || model[k] == K_IN || model[k] == K_ACKED);
        gw_outbox_close(ob);
    }

    struct ferry_io_faulty *f = new_driver();
    ferry_io_faulty_stop_at(f, (uint64_t)crash_at, how);
    ob = open_with(dir, ferry_io_faulty_io(f), BIG_COUNT, BIG_BYTES, NULL);
    for (size_t i = 0; ob && i < sc->nsteps; i++)
        run_step(ob, &sc->steps[i], model);
    gw_outbox_close(ob);
    bool crashed = ferry_io_faulty_stopped(f);
    ferry_io_faulty_free(f);
    snprintf(what, sizeof(what), "%s (%s)", sc->name, STOP_NAMES[how]);
    check_after_crash(dir, model, what, crash_at);
    return crashed;
}

static void crash_everywhere(const struct scenario *sc)
{
    for (int how = FERRY_IO_KILL; how <= FERRY_IO_POWER_TORN; how++) {
        long k = 0;
        while (crash_run(sc, k, (enum ferry_io_stop)how))
            k++;
        /* Every scenario performs more than a handful of operations. */
        CU_ASSERT(k > 8);
    }
}

#define APPEND(k)                                                                                  \
    {                                                                                              \
        STEP_APPEND, {k}, 1                                                                        \
    }
#define ACK1(a)                                                                                    \
    {                                                                                              \
        STEP_ACK, {a}, 1                                                                           \
    }
#define ACK2(a, b)                                                                                 \
    {                                                                                              \
        STEP_ACK, {a, b}, 2                                                                        \
    }
#define COMPACT                                                                                    \
    {                                                                                              \
        STEP_COMPACT, {0}, 0                                                                       \
    }

static void crash_during_append(void)
{
    static const struct scenario sc = {
        .name = "append",
        .prep = {APPEND(0), APPEND(1), APPEND(2), APPEND(3), APPEND(4), ACK1(1)},
        .nprep = 6,
        .steps = {APPEND(5), APPEND(6), APPEND(3), APPEND(7)},
        .nsteps = 4,
    };
    crash_everywhere(&sc);
}

static void crash_on_first_open(void)
{
    static const struct scenario sc = {
        .name = "first open",
        .steps = {APPEND(0), APPEND(1), ACK1(0), APPEND(2)},
        .nsteps = 4,
    };
    crash_everywhere(&sc);
}

static void crash_during_ack(void)
{
    static const struct scenario sc = {
        .name = "ack",
        .prep = {APPEND(0), APPEND(1), APPEND(2), APPEND(3), APPEND(4), APPEND(5), APPEND(6),
                 APPEND(7)},
        .nprep = 8,
        .steps = {ACK1(2), ACK2(5, 0), ACK2(6, 20), ACK1(3)},
        .nsteps = 4,
    };
    crash_everywhere(&sc);
}

static void crash_during_compaction(void)
{
    static const struct scenario sc = {
        .name = "compaction",
        .prep = {APPEND(0), APPEND(1), APPEND(2), APPEND(3), APPEND(4), APPEND(5), APPEND(6),
                 APPEND(7), APPEND(8), APPEND(9), ACK2(1, 3), ACK2(5, 7), ACK1(8)},
        .nprep = 13,
        .steps = {COMPACT, APPEND(10), ACK1(0), COMPACT, APPEND(11)},
        .nsteps = 5,
    };
    crash_everywhere(&sc);
}

/* Acking the last pending records compacts on its own. */
static void crash_during_drain(void)
{
    static const struct scenario sc = {
        .name = "drain",
        .prep = {APPEND(0), APPEND(1), APPEND(2), APPEND(3)},
        .nprep = 4,
        .steps = {ACK2(0, 1), ACK2(2, 3), APPEND(4), APPEND(5), ACK2(5, 4)},
        .nsteps = 5,
    };
    crash_everywhere(&sc);
}

/* ---- behaviour -------------------------------------------------------------- */

static void round_trip(void)
{
    char dir[PATH_MAX];
    struct ferry_status in[3] = {mk_status("node-7", 12), mk_status("node-8", 1),
                                 mk_status("node-7", 13)};
    struct ferry_diag d = {{0}};
    snprintf(in[1].gateway, sizeof(in[1].gateway), "someone-else");
    in[2].error = FERRY_E_HASH_MISMATCH;
    in[2].state = FERRY_STATE_FAILED;
    struct gw_outbox *ob = open_dir(fresh_dir(dir));
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(gw_outbox_append(ob, &in[i], NULL, &d), FERRY_OK);
    CU_ASSERT_EQUAL(gw_outbox_count(ob), 3);
    CU_ASSERT_EQUAL(gw_outbox_bytes(ob) + 20, (uint64_t)file_size(dir, "journal"));
    for (int round = 0; round < 2; round++) {
        size_t n = 0;
        struct gw_outbox_item *items = pending(ob, &n);
        CU_ASSERT_EQUAL_FATAL(n, 3);
        for (int i = 0; i < 3; i++) {
            /* A node's record gets this gateway; one a child gateway
             * relayed ("someone-else") gets it on its path. */
            struct ferry_status want = in[i];
            if (want.gateway[0])
                snprintf(want.via[want.nvia++], sizeof(want.via[0]), GW);
            else
                snprintf(want.gateway, sizeof(want.gateway), GW);
            CU_ASSERT(status_equal(&items[i].st, &want));
        }
        free(items);
        gw_outbox_close(ob);
        ob = open_dir(dir);
    }
    gw_outbox_close(ob);
}

static void thousand_records_reopened(void)
{
    char dir[PATH_MAX];
    const int total = 1000;
    struct gw_outbox *ob = open_dir(fresh_dir(dir));
    struct ferry_diag d = {{0}};
    for (int i = 0; i < total; i++) {
        char node[16];
        snprintf(node, sizeof(node), "node-%d", i % 10);
        struct ferry_status st = mk_status(node, (uint64_t)(i / 10) + 1);
        CU_ASSERT_EQUAL_FATAL(gw_outbox_append(ob, &st, NULL, &d), FERRY_OK);
    }
    uint64_t bytes = gw_outbox_bytes(ob);
    gw_outbox_close(ob);
    ob = open_dir(dir);
    CU_ASSERT_EQUAL(gw_outbox_count(ob), (size_t)total);
    CU_ASSERT_EQUAL(gw_outbox_bytes(ob), bytes);
    /* Drain in batches, as the uplink would: oldest first, all intact. */
    struct gw_outbox_item items[FERRY_BATCH_MAX_RECORDS];
    struct ferry_record_id ids[FERRY_BATCH_MAX_RECORDS];
    int next = 0;
    size_t n = 0, acked = 0;
    while (gw_outbox_peek(ob, items, FERRY_BATCH_MAX_RECORDS, &n, &d) == FERRY_OK && n > 0) {
        for (size_t j = 0; j < n; j++, next++) {
            char node[16];
            snprintf(node, sizeof(node), "node-%d", next % 10);
            struct ferry_status want = mk_status(node, (uint64_t)(next / 10) + 1);
            snprintf(want.gateway, sizeof(want.gateway), GW);
            CU_ASSERT(status_equal(&items[j].st, &want));
            memcpy(ids[j].node, items[j].st.node, sizeof(ids[j].node));
            ids[j].seq = items[j].st.seq;
        }
        CU_ASSERT_EQUAL_FATAL(gw_outbox_ack(ob, ids, n, &acked, &d), FERRY_OK);
        CU_ASSERT_EQUAL(acked, n);
    }
    CU_ASSERT_EQUAL(next, total);
    CU_ASSERT_EQUAL(gw_outbox_count(ob), 0);
    /* Emptied: compacted down to the header, acks reset. */
    CU_ASSERT_EQUAL(file_size(dir, "journal"), 20);
    CU_ASSERT_EQUAL(file_size(dir, "acks"), 0);
    gw_outbox_close(ob);
}

static void acks_out_of_order(void)
{
    char dir[PATH_MAX];
    bool present[NKEYS];
    size_t acked = 99;
    struct gw_outbox *ob = open_dir(fresh_dir(dir));
    for (int k = 0; k < 10; k++)
        CU_ASSERT_EQUAL(append_key(ob, k, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(ack_keys(ob, (int[]){7}, 1, &acked), FERRY_OK);
    CU_ASSERT_EQUAL(acked, 1);
    CU_ASSERT_EQUAL(ack_keys(ob, (int[]){9, 2, 9}, 3, &acked), FERRY_OK);
    CU_ASSERT_EQUAL(acked, 2);
    /* Acked already, or never appended: ignored. */
    CU_ASSERT_EQUAL(ack_keys(ob, (int[]){2, 25}, 2, &acked), FERRY_OK);
    CU_ASSERT_EQUAL(acked, 0);
    CU_ASSERT_EQUAL(file_size(dir, "acks"), 3 * ACK_BYTES);
    for (int round = 0; round < 2; round++) {
        size_t n = 0;
        struct gw_outbox_item *items = pending(ob, &n);
        const int want[] = {0, 1, 3, 4, 5, 6, 8};
        CU_ASSERT_EQUAL_FATAL(n, 7);
        for (size_t i = 0; i < n; i++)
            CU_ASSERT_EQUAL(items[i].st.seq, (uint64_t)want[i] + 1);
        free(items);
        gw_outbox_close(ob);
        ob = open_dir(dir);
    }
    pending_keys(ob, present, NKEYS);
    CU_ASSERT(!present[2] && !present[7] && !present[9] && present[8]);
    gw_outbox_close(ob);
}

/* Acked bytes past half the journal and past 1 MiB trigger compaction. */
static void compaction_when_acks_dominate(void)
{
    char dir[PATH_MAX];
    struct gw_outbox *ob = open_dir(fresh_dir(dir));
    struct ferry_diag d = {{0}};
    int n = 0;
    while (gw_outbox_bytes(ob) < 3 * GW_OUTBOX_COMPACT_MIN_BYTES) {
        struct ferry_status st = mk_status("node-big", (uint64_t)n + 1);
        memset(st.message, 'm', FERRY_STATUS_MESSAGE_MAX);
        st.message[FERRY_STATUS_MESSAGE_MAX] = 0;
        CU_ASSERT_EQUAL_FATAL(gw_outbox_append(ob, &st, NULL, &d), FERRY_OK);
        n++;
    }
    long long full = file_size(dir, "journal");
    struct ferry_record_id id;
    snprintf(id.node, sizeof(id.node), "node-big");
    long long last = full;
    bool shrank = false;
    int i;
    for (i = 0; i < n && !shrank; i++) {
        id.seq = (uint64_t)i + 1;
        CU_ASSERT_EQUAL_FATAL(gw_outbox_ack(ob, &id, 1, NULL, &d), FERRY_OK);
        long long now = file_size(dir, "journal");
        shrank = now < last;
        last = now;
    }
    /* It waited for more than half to be acked, then kept only the rest. */
    CU_ASSERT(shrank);
    CU_ASSERT(i > n / 2);
    CU_ASSERT_EQUAL((uint64_t)last, gw_outbox_bytes(ob) + 20);
    CU_ASSERT_EQUAL(file_size(dir, "acks"), 0);
    CU_ASSERT_EQUAL(gw_outbox_count(ob), (size_t)(n - i));
    gw_outbox_close(ob);
    ob = open_dir(dir);
    CU_ASSERT_EQUAL(gw_outbox_count(ob), (size_t)(n - i));
    gw_outbox_close(ob);
}

/* The journal's size after each of five appends, and its bytes. */
static uint8_t *five_records(const char *dir, long long sizes[6], size_t *len)
{
    char path[PATH_MAX];
    struct gw_outbox *ob = open_dir(dir);
    sizes[0] = file_size(dir, "journal");
    for (int k = 0; k < 5; k++) {
        CU_ASSERT_EQUAL_FATAL(append_key(ob, k, NULL), FERRY_OK);
        sizes[k + 1] = file_size(dir, "journal");
    }
    gw_outbox_close(ob);
    outbox_file(path, dir, "journal");
    return slurp(path, len);
}

static void torn_tail_every_offset(void)
{
    char dir[PATH_MAX], path[PATH_MAX];
    long long sizes[6];
    size_t len = 0;
    uint8_t *full = five_records(fresh_dir(dir), sizes, &len);
    outbox_file(path, dir, "journal");
    for (long long cut = sizes[4]; cut < sizes[5]; cut++) {
        bool present[NKEYS];
        spill(path, full, (size_t)cut);
        struct gw_outbox *ob = open_dir(dir);
        CU_ASSERT_EQUAL(gw_outbox_count(ob), 4);
        CU_ASSERT_EQUAL(file_size(dir, "journal"), sizes[4]);
        pending_keys(ob, present, NKEYS);
        CU_ASSERT(present[3] && !present[4]);
        CU_ASSERT_EQUAL(append_key(ob, 4, NULL), FERRY_OK);
        gw_outbox_close(ob);
        ob = open_dir(dir);
        CU_ASSERT_EQUAL(gw_outbox_count(ob), 5);
        gw_outbox_close(ob);
    }
    free(full);
}

static void torn_ack_tail_every_offset(void)
{
    char dir[PATH_MAX], path[PATH_MAX];
    long long sizes[6];
    size_t len = 0;
    free(five_records(fresh_dir(dir), sizes, &len));
    struct gw_outbox *ob = open_dir(dir);
    CU_ASSERT_EQUAL(ack_keys(ob, (int[]){1}, 1, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(ack_keys(ob, (int[]){3}, 1, NULL), FERRY_OK);
    gw_outbox_close(ob);
    outbox_file(path, dir, "acks");
    uint8_t *acks = slurp(path, &len);
    CU_ASSERT_EQUAL_FATAL(len, 2 * ACK_BYTES);
    for (size_t cut = ACK_BYTES; cut < len; cut++) {
        bool present[NKEYS];
        spill(path, acks, cut);
        ob = open_dir(dir);
        CU_ASSERT_EQUAL(file_size(dir, "acks"), ACK_BYTES);
        pending_keys(ob, present, NKEYS);
        CU_ASSERT(!present[1] && present[3]);
        gw_outbox_close(ob);
    }
    /* A damaged ack before an intact one: skipped, its record sent again
     * (a duplicate the cloud drops), the other ack kept. */
    acks[5] ^= 0x01;
    spill(path, acks, len);
    bool present[NKEYS];
    ob = open_dir(dir);
    CU_ASSERT_EQUAL(file_size(dir, "acks"), (long long)len);
    pending_keys(ob, present, NKEYS);
    CU_ASSERT(present[1] && !present[3]);
    gw_outbox_close(ob);
    free(acks);
}

/* Bytes that change under an open outbox are caught when read back. */
static void corruption_after_open_is_dropped(void)
{
    char dir[PATH_MAX], path[PATH_MAX];
    long long sizes[6];
    size_t len = 0;
    bool present[NKEYS];
    free(five_records(fresh_dir(dir), sizes, &len));
    struct gw_outbox *ob = open_dir(dir);
    outbox_file(path, dir, "journal");
    int fd = open(path, O_WRONLY);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(pwrite(fd, "#", 1, sizes[1] + REC_HEADER + 3), 1);
    close(fd);
    pending_keys(ob, present, NKEYS);
    CU_ASSERT(present[0] && !present[1] && present[2]);
    CU_ASSERT_EQUAL(gw_outbox_count(ob), 4);
    gw_outbox_close(ob);
}

static void flipped_bit_in_the_middle(void)
{
    /* Bit 3 of: a payload byte, the CRC, the length field, the magic. */
    const long long where[] = {REC_HEADER + 10, 8, 4, 0};
    for (size_t w = 0; w < sizeof(where) / sizeof(where[0]); w++) {
        char dir[PATH_MAX], path[PATH_MAX];
        long long sizes[6];
        size_t len = 0;
        bool present[NKEYS];
        uint8_t *bytes = five_records(fresh_dir(dir), sizes, &len);
        bytes[sizes[2] + where[w]] ^= 0x08; /* the third record */
        outbox_file(path, dir, "journal");
        spill(path, bytes, len);
        struct gw_outbox *ob = open_dir(dir);
        pending_keys(ob, present, NKEYS);
        CU_ASSERT(present[0] && present[1] && !present[2] && present[3] && present[4]);
        CU_ASSERT_EQUAL(gw_outbox_count(ob), 4);
        /* Kept in place (the rest is not a torn tail), new records follow. */
        CU_ASSERT_EQUAL(file_size(dir, "journal"), (long long)len);
        CU_ASSERT_EQUAL(append_key(ob, 5, NULL), FERRY_OK);
        gw_outbox_close(ob);
        ob = open_dir(dir);
        CU_ASSERT_EQUAL(gw_outbox_count(ob), 5);
        /* Draining compacts the corrupt bytes away. */
        CU_ASSERT_EQUAL(ack_keys(ob, (int[]){0, 1, 3, 4, 5}, 5, NULL), FERRY_OK);
        CU_ASSERT_EQUAL(file_size(dir, "journal"), 20);
        gw_outbox_close(ob);
        free(bytes);
    }
}

/* An ack counts only for the record it was written for: same id, same CRC. */
static void stale_ack_names_another_record(void)
{
    char a[PATH_MAX], b[PATH_MAX], path[PATH_MAX];
    size_t len = 0;
    bool present[NKEYS];
    struct gw_outbox *ob = open_dir(fresh_dir(a));
    CU_ASSERT_EQUAL(append_key(ob, 0, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(append_key(ob, 1, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(ack_keys(ob, (int[]){0}, 1, NULL), FERRY_OK);
    gw_outbox_close(ob);
    outbox_file(path, a, "acks");
    uint8_t *acks = slurp(path, &len);
    CU_ASSERT_EQUAL_FATAL(len, ACK_BYTES);

    /* Another outbox whose first record has the same id, other bytes. */
    ob = open_dir(fresh_dir(b));
    CU_ASSERT_EQUAL(append_key(ob, 2, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(append_key(ob, 3, NULL), FERRY_OK);
    gw_outbox_close(ob);
    outbox_file(path, b, "acks");
    spill(path, acks, len);
    ob = open_dir(b);
    pending_keys(ob, present, NKEYS);
    CU_ASSERT(present[2] && present[3]);
    gw_outbox_close(ob);
    free(acks);
}

/* A damaged header costs nothing: the records carry their own ids. */
static void damaged_header_keeps_records(void)
{
    char dir[PATH_MAX], path[PATH_MAX];
    long long sizes[6];
    size_t len = 0;
    uint8_t *bytes = five_records(fresh_dir(dir), sizes, &len);
    bytes[9] ^= 0x40; /* the base id */
    outbox_file(path, dir, "journal");
    spill(path, bytes, len);
    struct gw_outbox *ob = open_dir(dir);
    CU_ASSERT_EQUAL(gw_outbox_count(ob), 5);
    CU_ASSERT_EQUAL(append_key(ob, 5, NULL), FERRY_OK);
    size_t n = 0;
    struct gw_outbox_item *items = pending(ob, &n); /* ids still increase */
    CU_ASSERT_EQUAL(n, 6);
    free(items);
    gw_outbox_close(ob);
    free(bytes);
}

/* If compaction keeps failing, acked records cannot grow the journal
 * without bound: appends are refused until a compaction succeeds. */
static void journal_bounded_when_compaction_fails(void)
{
    char dir[PATH_MAX];
    struct ferry_io_faulty *f = new_driver();
    const uint64_t max_bytes = REC_HEADER + FERRY_STATUS_MAX_BYTES;
    struct gw_outbox *ob =
        open_with(fresh_dir(dir), ferry_io_faulty_io(f), BIG_COUNT, max_bytes, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    struct ferry_io_fail renames = {.calls = FERRY_IO_CALL(FERRY_IO_RENAME),
                                    .count = FERRY_IO_FOR_EVER};
    ferry_io_faulty_fail(f, &renames);
    enum ferry_err err = FERRY_OK;
    int k = 0;
    while ((err = append_key(ob, k, NULL)) == FERRY_OK) {
        CU_ASSERT_EQUAL_FATAL(ack_keys(ob, &k, 1, NULL), FERRY_OK);
        k++;
    }
    CU_ASSERT_EQUAL(err, FERRY_E_NOSPACE);
    long long size = file_size(dir, "journal");
    CU_ASSERT(size > (long long)GW_OUTBOX_COMPACT_MIN_BYTES);
    CU_ASSERT(size <= (long long)(GW_OUTBOX_COMPACT_MIN_BYTES + 3 * max_bytes));
    ferry_io_faulty_fail(f, NULL);
    CU_ASSERT_EQUAL(append_key(ob, k, NULL), FERRY_OK);
    CU_ASSERT(file_size(dir, "journal") < 1000);
    gw_outbox_close(ob);
    ferry_io_faulty_free(f);
}

static void bound_then_recovery(void)
{
    char dir[PATH_MAX];
    bool dup = false;
    struct gw_outbox *ob = open_with(fresh_dir(dir), NULL, 3, BIG_BYTES, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    for (int k = 0; k < 3; k++)
        CU_ASSERT_EQUAL(append_key(ob, k, NULL), FERRY_OK);
    long long size = file_size(dir, "journal");
    CU_ASSERT_EQUAL(append_key(ob, 3, NULL), FERRY_E_NOSPACE);
    CU_ASSERT_EQUAL(file_size(dir, "journal"), size);
    /* A node retrying a record that is in is still answered. */
    CU_ASSERT_EQUAL(append_key(ob, 1, &dup), FERRY_OK);
    CU_ASSERT(dup);
    CU_ASSERT_EQUAL(ack_keys(ob, (int[]){0}, 1, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(append_key(ob, 3, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(gw_outbox_count(ob), 3);
    gw_outbox_close(ob);

    /* The byte bound: one full-size record's worth. */
    const uint64_t max_bytes = REC_HEADER + FERRY_STATUS_MAX_BYTES;
    ob = open_with(fresh_dir(dir), NULL, BIG_COUNT, max_bytes, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    int k = 0;
    while (append_key(ob, k, NULL) == FERRY_OK)
        k++;
    CU_ASSERT(k >= 2);
    CU_ASSERT(gw_outbox_bytes(ob) <= max_bytes);
    CU_ASSERT_EQUAL(append_key(ob, k, NULL), FERRY_E_NOSPACE);
    CU_ASSERT_EQUAL(ack_keys(ob, (int[]){0}, 1, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(append_key(ob, k, NULL), FERRY_OK);
    gw_outbox_close(ob);
}

/* Bytes that appending key k adds to a journal. */
static long long record_size(int k)
{
    char dir[PATH_MAX];
    struct gw_outbox *ob = open_dir(fresh_dir(dir));
    long long before = file_size(dir, "journal");
    CU_ASSERT_EQUAL(append_key(ob, k, NULL), FERRY_OK);
    long long after = file_size(dir, "journal");
    gw_outbox_close(ob);
    return after - before;
}

/* The disk fills part-way through a record, at every byte of it. */
static void enospc_leaves_journal_consistent(void)
{
    long long sizes[6];
    size_t len = 0;
    char dir[PATH_MAX];
    free(five_records(fresh_dir(dir), sizes, &len));
    long long rec = record_size(10);
    CU_ASSERT_FATAL(rec > REC_HEADER);
    for (long long budget = 0; budget < rec; budget++) {
        struct ferry_io_faulty *f = new_driver();
        struct gw_outbox *ob = open_with(dir, ferry_io_faulty_io(f), BIG_COUNT, BIG_BYTES, NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
        long long before = file_size(dir, "journal");
        ferry_io_faulty_space(f, budget);
        CU_ASSERT_EQUAL(append_key(ob, 10, NULL), FERRY_E_NOSPACE);
        CU_ASSERT_EQUAL(gw_outbox_count(ob), 5);
        CU_ASSERT_EQUAL(file_size(dir, "journal"), before);
        gw_outbox_close(ob);
        ferry_io_faulty_free(f);
        ob = open_dir(dir);
        CU_ASSERT_EQUAL(gw_outbox_count(ob), 5);
        gw_outbox_close(ob);
    }
    struct gw_outbox *ob = open_dir(dir);
    CU_ASSERT_EQUAL(append_key(ob, 10, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(gw_outbox_count(ob), 6);
    gw_outbox_close(ob);
}

static void eio_fails_cleanly(void)
{
    char dir[PATH_MAX];
    struct ferry_io_faulty *f = new_driver();
    struct gw_outbox *ob =
        open_with(fresh_dir(dir), ferry_io_faulty_io(f), BIG_COUNT, BIG_BYTES, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    CU_ASSERT_EQUAL(append_key(ob, 0, NULL), FERRY_OK);
    long long size = file_size(dir, "journal");
    struct ferry_io_fail once = {.calls = FERRY_IO_CALL(FERRY_IO_FSYNC), .count = 1};
    ferry_io_faulty_fail(f, &once);
    CU_ASSERT_EQUAL(append_key(ob, 1, NULL), FERRY_E_IO);
    CU_ASSERT_EQUAL(gw_outbox_count(ob), 1);
    CU_ASSERT_EQUAL(file_size(dir, "journal"), size);
    once.calls = FERRY_IO_CALL(FERRY_IO_PWRITE);
    ferry_io_faulty_fail(f, &once);
    CU_ASSERT_EQUAL(ack_keys(ob, (int[]){0}, 1, NULL), FERRY_E_IO);
    CU_ASSERT_EQUAL(gw_outbox_count(ob), 1);
    CU_ASSERT_EQUAL(file_size(dir, "acks"), 0);
    CU_ASSERT_EQUAL(append_key(ob, 1, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(ack_keys(ob, (int[]){0}, 1, NULL), FERRY_OK);
    /* A failed compaction is retried and leaves the outbox usable. */
    once.calls = FERRY_IO_CALL(FERRY_IO_RENAME);
    ferry_io_faulty_fail(f, &once);
    CU_ASSERT_EQUAL(ack_keys(ob, (int[]){1}, 1, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(gw_outbox_count(ob), 0);
    CU_ASSERT(file_size(dir, "journal") > 20);
    CU_ASSERT_EQUAL(append_key(ob, 2, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(ack_keys(ob, (int[]){2}, 1, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(file_size(dir, "journal"), 20);
    gw_outbox_close(ob);
    ferry_io_faulty_free(f);
}

static void duplicates_on_append(void)
{
    char dir[PATH_MAX];
    bool dup = true;
    struct gw_outbox *ob = open_dir(fresh_dir(dir));
    CU_ASSERT_EQUAL(append_key(ob, 4, &dup), FERRY_OK);
    CU_ASSERT(!dup);
    long long size = file_size(dir, "journal");
    CU_ASSERT_EQUAL(append_key(ob, 4, &dup), FERRY_OK);
    CU_ASSERT(dup);
    CU_ASSERT_EQUAL(file_size(dir, "journal"), size);
    CU_ASSERT_EQUAL(gw_outbox_count(ob), 1);
    gw_outbox_close(ob);
    /* Still known after a restart. */
    ob = open_dir(dir);
    CU_ASSERT_EQUAL(append_key(ob, 4, &dup), FERRY_OK);
    CU_ASSERT(dup);
    CU_ASSERT_EQUAL(gw_outbox_count(ob), 1);
    /* Once acked it is gone; a later copy is a new record. */
    CU_ASSERT_EQUAL(ack_keys(ob, (int[]){4}, 1, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(append_key(ob, 4, &dup), FERRY_OK);
    CU_ASSERT(!dup);
    CU_ASSERT_EQUAL(gw_outbox_count(ob), 1);
    gw_outbox_close(ob);
}

/* Same (node, seq), other content: the genuine record that used to be
 * acknowledged and silently dropped is refused instead, and nothing is
 * written; the first one stays pending as it was. */
static void conflicting_duplicate_is_refused(void)
{
    char dir[PATH_MAX];
    struct gw_outbox *ob = open_dir(fresh_dir(dir));
    struct ferry_status first = mk_status("node-7", 13), other = first;
    other.state = FERRY_STATE_FAILED;
    snprintf(other.message, sizeof(other.message), "health check failed");
    struct ferry_diag d = {{0}};
    bool dup = true;
    CU_ASSERT_EQUAL(gw_outbox_append(ob, &first, &dup, &d), FERRY_OK);
    long long size = file_size(dir, "journal");
    CU_ASSERT_EQUAL(gw_outbox_append(ob, &other, &dup, &d), FERRY_E_CONFLICT);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "node-7"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "conflict"));
    CU_ASSERT_EQUAL(file_size(dir, "journal"), size);
    CU_ASSERT_EQUAL(gw_outbox_count(ob), 1);
    /* A record differing only in the gateway it names is the same record. */
    snprintf(first.gateway, sizeof(first.gateway), "gw-elsewhere");
    CU_ASSERT_EQUAL(gw_outbox_append(ob, &first, &dup, &d), FERRY_OK);
    CU_ASSERT(dup);
    gw_outbox_close(ob);
    ob = open_dir(dir);
    CU_ASSERT_EQUAL(gw_outbox_append(ob, &other, &dup, &d), FERRY_E_CONFLICT);
    size_t n = 0;
    struct gw_outbox_item *items = pending(ob, &n);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_EQUAL(items[0].st.state, first.state);
    free(items);
    gw_outbox_close(ob);
}

static struct gw_outbox *open_shared(const char *dir, size_t node_records, uint64_t node_bytes)
{
    struct gw_outbox_opts o = {
        .state_dir = dir,
        .gateway_id = GW,
        .max_records = 40,
        .max_bytes = BIG_BYTES,
        .max_node_records = node_records,
        .max_node_bytes = node_bytes,
    };
    struct gw_outbox *ob = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(gw_outbox_open(&o, &ob, &d), FERRY_OK);
    return ob;
}

/* Four nodes' shares of ten records each: a node that floods gets no more
 * than its share, and every other node can still store all of its own. */
static void flooding_node_keeps_to_its_share(void)
{
    char dir[PATH_MAX];
    struct gw_outbox *ob = open_shared(fresh_dir(dir), 10, 0);
    struct ferry_diag d = {{0}};
    size_t stored = 0, refused = 0;
    for (uint64_t seq = 1; seq <= 1000; seq++) {
        struct ferry_status st = mk_status("flood", seq);
        enum ferry_err err = gw_outbox_append(ob, &st, NULL, &d);
        stored += err == FERRY_OK;
        refused += err == FERRY_E_NOSPACE;
    }
    CU_ASSERT_EQUAL(stored, 10);
    CU_ASSERT_EQUAL(refused, 990);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "flood"));
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "share"));
    for (int node = 0; node < 3; node++) {
        char id[16];
        snprintf(id, sizeof(id), "quiet-%d", node);
        for (uint64_t seq = 1; seq <= 10; seq++) {
            struct ferry_status st = mk_status(id, seq);
            CU_ASSERT_EQUAL(gw_outbox_append(ob, &st, NULL, &d), FERRY_OK);
        }
        CU_ASSERT_EQUAL(gw_outbox_node_pending(ob, id, NULL), 10);
    }
    CU_ASSERT_EQUAL(gw_outbox_node_pending(ob, "flood", NULL), 10);
    CU_ASSERT_EQUAL(gw_outbox_node_pending(ob, "nobody", NULL), 0);
    /* Acked, the flooding node's records make room for its next ones. */
    struct ferry_record_id ids[2] = {{"flood", 1}, {"flood", 2}};
    size_t acked = 0;
    CU_ASSERT_EQUAL(gw_outbox_ack(ob, ids, 2, &acked, &d), FERRY_OK);
    CU_ASSERT_EQUAL(acked, 2);
    struct ferry_status next = mk_status("flood", 2000);
    CU_ASSERT_EQUAL(gw_outbox_append(ob, &next, NULL, &d), FERRY_OK);
    gw_outbox_close(ob);

    /* The shares are counted again from the journal after a restart. */
    ob = open_shared(dir, 10, 0);
    CU_ASSERT_EQUAL(gw_outbox_node_pending(ob, "flood", NULL), 9);
    CU_ASSERT_EQUAL(gw_outbox_node_pending(ob, "quiet-1", NULL), 10);
    struct ferry_status more = mk_status("flood", 2001);
    CU_ASSERT_EQUAL(gw_outbox_append(ob, &more, NULL, &d), FERRY_OK);
    more.seq = 2002;
    CU_ASSERT_EQUAL(gw_outbox_append(ob, &more, NULL, &d), FERRY_E_NOSPACE);
    gw_outbox_close(ob);
}

/* Many node ids, each with one record, churning through acks: the tallies
 * stay small and right. */
static void node_shares_by_bytes_and_churn(void)
{
    char dir[PATH_MAX];
    struct gw_outbox *ob = open_shared(fresh_dir(dir), 0, 2 * GW_OUTBOX_RECORD_MAX);
    struct ferry_diag d = {{0}};
    struct ferry_status st = mk_status("big", 1);
    memset(st.message, 'm', FERRY_STATUS_MESSAGE_MAX);
    st.message[FERRY_STATUS_MESSAGE_MAX] = 0;
    uint64_t seq = 1;
    size_t stored = 0;
    for (; seq <= 20; seq++) {
        st.seq = seq;
        stored += gw_outbox_append(ob, &st, NULL, &d) == FERRY_OK;
    }
    uint64_t bytes = 0;
    CU_ASSERT_EQUAL(gw_outbox_node_pending(ob, "big", &bytes), stored);
    CU_ASSERT(bytes <= 2 * GW_OUTBOX_RECORD_MAX);
    CU_ASSERT(stored >= 2 && stored < 20);
    for (int k = 0; k < 2000; k++) {
        char id[16];
        snprintf(id, sizeof(id), "n%d", k);
        struct ferry_status one = mk_status(id, 1);
        CU_ASSERT_EQUAL_FATAL(gw_outbox_append(ob, &one, NULL, &d), FERRY_OK);
        struct ferry_record_id rid = {{0}, 1};
        snprintf(rid.node, sizeof(rid.node), "%s", id);
        CU_ASSERT_EQUAL_FATAL(gw_outbox_ack(ob, &rid, 1, NULL, &d), FERRY_OK);
    }
    CU_ASSERT_EQUAL(gw_outbox_node_pending(ob, "n5", NULL), 0);
    CU_ASSERT_EQUAL(gw_outbox_node_pending(ob, "big", NULL), stored);
    gw_outbox_close(ob);
}

static void refuses_bad_input(void)
{
    char dir[PATH_MAX], path[PATH_MAX];
    enum ferry_err err = FERRY_OK;
    struct ferry_diag d = {{0}};
    fresh_dir(dir);
    CU_ASSERT_PTR_NULL(open_with(dir, NULL, 0, BIG_BYTES, &err));
    CU_ASSERT_EQUAL(err, FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NULL(open_with(dir, NULL, BIG_COUNT, 100, &err));
    CU_ASSERT_EQUAL(err, FERRY_E_INVALID_ARG);
    struct gw_outbox *ob = open_dir(dir);
    /* A second open of the same folder. */
    CU_ASSERT_PTR_NULL(open_with(dir, NULL, BIG_COUNT, BIG_BYTES, &err));
    CU_ASSERT_EQUAL(err, FERRY_E_BUSY);
    struct ferry_status st = mk_status("node-1", 0);
    CU_ASSERT_EQUAL(gw_outbox_append(ob, &st, NULL, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "seq"));
    st = mk_status("bad node", 1);
    CU_ASSERT_EQUAL(gw_outbox_append(ob, &st, NULL, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(gw_outbox_count(ob), 0);
    gw_outbox_close(ob);
    /* Not an outbox journal: refused, not truncated. */
    outbox_file(path, dir, "journal");
    spill(path, (const uint8_t *)"{\"hello\": \"world\", \"pad\": 1}", 28);
    CU_ASSERT_PTR_NULL(open_with(dir, NULL, BIG_COUNT, BIG_BYTES, &err));
    CU_ASSERT_EQUAL(err, FERRY_E_CORRUPT);
    CU_ASSERT_EQUAL(file_size(dir, "journal"), 28);
}

const char *const ferry_suite_name = "gw_outbox";
const struct ferry_test_case ferry_tests[] = {
    {"round_trip", round_trip},
    {"thousand_records_reopened", thousand_records_reopened},
    {"acks_out_of_order", acks_out_of_order},
    {"compaction_when_acks_dominate", compaction_when_acks_dominate},
    {"torn_tail_every_offset", torn_tail_every_offset},
    {"torn_ack_tail_every_offset", torn_ack_tail_every_offset},
    {"flipped_bit_in_the_middle", flipped_bit_in_the_middle},
    {"corruption_after_open_is_dropped", corruption_after_open_is_dropped},
    {"stale_ack_names_another_record", stale_ack_names_another_record},
    {"damaged_header_keeps_records", damaged_header_keeps_records},
    {"journal_bounded_when_compaction_fails", journal_bounded_when_compaction_fails},
    {"bound_then_recovery", bound_then_recovery},
    {"enospc_leaves_journal_consistent", enospc_leaves_journal_consistent},
    {"eio_fails_cleanly", eio_fails_cleanly},
    {"duplicates_on_append", duplicates_on_append},
    {"conflicting_duplicate_is_refused", conflicting_duplicate_is_refused},
    {"flooding_node_keeps_to_its_share", flooding_node_keeps_to_its_share},
    {"node_shares_by_bytes_and_churn", node_shares_by_bytes_and_churn},
    {"refuses_bad_input", refuses_bad_input},
    {"crash_on_first_open", crash_on_first_open},
    {"crash_during_append", crash_during_append},
    {"crash_during_ack", crash_during_ack},
    {"crash_during_compaction", crash_during_compaction},
    {"crash_during_drain", crash_during_drain},
    {NULL, NULL},
};
