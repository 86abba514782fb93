#include "cunit_main.h"

#include "edge_journal.h"
#include "ferry_fs.h"
#include "ferry_io_faulty.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ENTRY_HDR 8              /* kind, zero, length, CRC (edge_journal.h) */
#define DIR_MAX   (PATH_MAX / 2) /* leaves room for the file names */

static struct ferry_status mk_status(unsigned step)
{
    struct ferry_status st;
    memset(&st, 0, sizeof(st));
    snprintf(st.node, sizeof(st.node), "node-7");
    snprintf(st.release_id, sizeof(st.release_id), "meter-fw-1.4.2-42");
    snprintf(st.version, sizeof(st.version), "1.4.%u", step % 5);
    st.state = (enum ferry_state)(step % FERRY_STATE__COUNT);
    st.total = 1048576;
    st.bytes = (uint64_t)step * 4096 % st.total;
    snprintf(st.message, sizeof(st.message), "step %u", step);
    st.ts = 1795780790 + step;
    return st;
}

static void fresh_dir(char *buf)
{
    static unsigned counter;
    snprintf(buf, DIR_MAX, "%s/j%u", ferry_test_tmpdir(), counter++);
    CU_ASSERT_EQUAL_FATAL(mkdir(buf, 0700), 0);
}

static void file_in(const char *dir, const char *name, char *out)
{
    snprintf(out, PATH_MAX, "%s/%s", dir, name);
}

static off_t file_size(const char *dir, const char *name)
{
    char path[PATH_MAX];
    struct stat sb;
    file_in(dir, name, path);
    CU_ASSERT_EQUAL_FATAL(stat(path, &sb), 0);
    return sb.st_size;
}

static struct edge_journal *open_ok(const char *dir)
{
    struct edge_journal *j = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(edge_journal_open(dir, NULL, &j, &d), FERRY_OK);
    return j;
}

static uint64_t append_ok(struct edge_journal *j, unsigned step)
{
    struct ferry_status st = mk_status(step);
    uint64_t seq = 0;
    CU_ASSERT_EQUAL_FATAL(edge_journal_append(j, &st, &seq, NULL), FERRY_OK);
    return seq;
}

/* The head decodes to the record made for `step`, numbered `seq`. */
static void expect_head(struct edge_journal *j, unsigned step, uint64_t want_seq)
{
    uint8_t buf[FERRY_STATUS_MAX_BYTES];
    size_t len = 0;
    uint64_t seq = 0;
    struct ferry_status got;
    CU_ASSERT_EQUAL_FATAL(edge_journal_head(j, buf, sizeof(buf), &len, &seq, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(seq, want_seq);
    CU_ASSERT_EQUAL_FATAL(ferry_status_from_cbor(buf, len, &got, NULL), FERRY_OK);
    struct ferry_status want = mk_status(step);
    CU_ASSERT_EQUAL(got.seq, want_seq);
    CU_ASSERT_EQUAL(got.state, want.state);
    CU_ASSERT_EQUAL(got.bytes, want.bytes);
    CU_ASSERT_STRING_EQUAL(got.message, want.message);
    CU_ASSERT_STRING_EQUAL(got.version, want.version);
}

/* XORs one byte of a file. */
static void flip_byte(const char *dir, const char *name, off_t off)
{
    char path[PATH_MAX];
    uint8_t c = 0;
    file_in(dir, name, path);
    int fd = open(path, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(pread(fd, &c, 1, off), 1);
    c ^= 0x20;
    CU_ASSERT_EQUAL(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

static void records_leave_in_order_once_acked(void)
{
    char dir[DIR_MAX];
    fresh_dir(dir);
    struct edge_journal *j = open_ok(dir);
    CU_ASSERT_EQUAL(edge_journal_last_seq(j), 0);
    for (unsigned i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(append_ok(j, i), i + 1);
    CU_ASSERT_EQUAL(edge_journal_pending(j), 5);
    for (unsigned i = 0; i < 5; i++) {
        expect_head(j, i, i + 1);
        /* Only the head may be acked: the gateway got them in order. */
        CU_ASSERT_EQUAL(edge_journal_ack(j, i + 2, NULL), FERRY_E_INVALID_ARG);
        CU_ASSERT_EQUAL(edge_journal_ack(j, i + 1, NULL), FERRY_OK);
        CU_ASSERT_EQUAL(edge_journal_pending(j), 4 - i);
    }
    uint8_t buf[FERRY_STATUS_MAX_BYTES];
    size_t len = 0;
    uint64_t seq = 0;
    CU_ASSERT_EQUAL(edge_journal_head(j, buf, sizeof(buf), &len, &seq, NULL), FERRY_E_NOT_FOUND);
    CU_ASSERT_EQUAL(edge_journal_head_seq(j), 0);
    CU_ASSERT_EQUAL(edge_journal_ack(j, 5, NULL), FERRY_E_INVALID_ARG);
    edge_journal_free(j);
}

static void unacked_records_survive_a_restart(void)
{
    char dir[DIR_MAX];
    fresh_dir(dir);
    struct edge_journal *j = open_ok(dir);
    for (unsigned i = 0; i < 4; i++)
        append_ok(j, i);
    CU_ASSERT_EQUAL(edge_journal_ack(j, 1, NULL), FERRY_OK);
    edge_journal_free(j);

    j = open_ok(dir);
    CU_ASSERT_FALSE(edge_journal_repaired(j));
    CU_ASSERT_EQUAL(edge_journal_pending(j), 3);
    CU_ASSERT_EQUAL(edge_journal_last_seq(j), 4);
    expect_head(j, 1, 2);
    CU_ASSERT_EQUAL(append_ok(j, 9), 5);
    CU_ASSERT_EQUAL(edge_journal_ack(j, 2, NULL), FERRY_OK);
    edge_journal_free(j);

    j = open_ok(dir);
    CU_ASSERT_EQUAL(edge_journal_pending(j), 3);
    expect_head(j, 2, 3);
    edge_journal_free(j);
}

static void torn_tail_is_cut_and_no_seq_repeats(void)
{
    char dir[DIR_MAX];
    fresh_dir(dir);
    struct edge_journal *j = open_ok(dir);
    for (unsigned i = 0; i < 3; i++)
        append_ok(j, i);
    edge_journal_free(j);
    off_t whole = file_size(dir, "status.journal");

    /* The last record loses its end, as a power cut mid-write would. */
    char path[PATH_MAX];
    file_in(dir, "status.journal", path);
    CU_ASSERT_EQUAL_FATAL(truncate(path, whole - 3), 0);

    j = open_ok(dir);
    CU_ASSERT_TRUE(edge_journal_repaired(j));
    CU_ASSERT_EQUAL(edge_journal_pending(j), 2);
    expect_head(j, 0, 1);
    CU_ASSERT(file_size(dir, "status.journal") < whole - 3);
    /* Record 3 may have reached the gateway before its bytes were lost. */
    uint64_t seq = append_ok(j, 7);
    CU_ASSERT(seq > 3);
    edge_journal_free(j);

    j = open_ok(dir);
    CU_ASSERT_FALSE(edge_journal_repaired(j));
    CU_ASSERT_EQUAL(edge_journal_pending(j), 3);
    CU_ASSERT_EQUAL(edge_journal_last_seq(j), seq);
    edge_journal_free(j);
}

static void garbage_after_the_last_entry_is_cut(void)
{
    char dir[DIR_MAX];
    fresh_dir(dir);
    struct edge_journal *j = open_ok(dir);
    append_ok(j, 0);
    append_ok(j, 1);
    edge_journal_free(j);
    off_t whole = file_size(dir, "status.journal");
    char path[PATH_MAX];
    file_in(dir, "status.journal", path);
    FILE *f = fopen(path, "ab");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite("S\0\x20\0garbage", 1, 11, f), 11);
    CU_ASSERT_EQUAL(fclose(f), 0);

    j = open_ok(dir);
    CU_ASSERT_TRUE(edge_journal_repaired(j));
    CU_ASSERT_EQUAL(edge_journal_pending(j), 2);
    CU_ASSERT_EQUAL(file_size(dir, "status.journal"), whole);
    edge_journal_free(j);
}

static void damage_in_the_middle_keeps_what_came_before(void)
{
    char dir[DIR_MAX];
    fresh_dir(dir);
    struct edge_journal *j = open_ok(dir);
    for (unsigned i = 0; i < 4; i++)
        append_ok(j, i);
    edge_journal_free(j);
    /* The second entry starts right after the first: find it through the
     * first one's length field. */
    char path[PATH_MAX];
    uint8_t hdr[ENTRY_HDR];
    file_in(dir, "status.journal", path);
    FILE *f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL_FATAL(fread(hdr, 1, sizeof(hdr), f), sizeof(hdr));
    fclose(f);
    off_t second = ENTRY_HDR + (hdr[2] | hdr[3] << 8);
    flip_byte(dir, "status.journal", second + ENTRY_HDR + 2);

    j = open_ok(dir);
    CU_ASSERT_TRUE(edge_journal_repaired(j));
    CU_ASSERT_EQUAL(edge_journal_pending(j), 1);
    expect_head(j, 0, 1);
    CU_ASSERT(append_ok(j, 5) > 4);
    edge_journal_free(j);
}

static void seq_survives_compaction_and_restarts(void)
{
    char dir[DIR_MAX];
    fresh_dir(dir);
    struct edge_journal *j = open_ok(dir);
    uint64_t last = 0;
    off_t before = 0;
    unsigned shrinks = 0;
    /* Enough send-and-ack rounds for the file to pass the compaction size
     * a few times. */
    for (unsigned i = 0; i < 400; i++) {
        last = append_ok(j, i);
        CU_ASSERT_EQUAL(last, i + 1);
        CU_ASSERT_EQUAL_FATAL(edge_journal_ack(j, last, NULL), FERRY_OK);
        off_t size = file_size(dir, "status.journal");
        CU_ASSERT(size <= EDGE_JOURNAL_COMPACT_BYTES);
        if (size < before)
            shrinks++;
        before = size;
    }
    CU_ASSERT(shrinks >= 2);
    edge_journal_free(j);

    j = open_ok(dir);
    CU_ASSERT_FALSE(edge_journal_repaired(j));
    CU_ASSERT_EQUAL(edge_journal_pending(j), 0);
    CU_ASSERT_EQUAL(edge_journal_last_seq(j), last);
    CU_ASSERT_EQUAL(append_ok(j, 1), last + 1);
    edge_journal_free(j);
}

static void intact_journal_needs_no_reservation(void)
{
    char dir[DIR_MAX], path[PATH_MAX];
    fresh_dir(dir);
    struct edge_journal *j = open_ok(dir);
    append_ok(j, 0);
    append_ok(j, 1);
    edge_journal_free(j);
    file_in(dir, "status.seq", path);
    CU_ASSERT_EQUAL_FATAL(unlink(path), 0);
    j = open_ok(dir);
    CU_ASSERT_EQUAL(append_ok(j, 2), 3);
    edge_journal_free(j);
}

/* status.journal lost (or left empty) while status.seq survives: the node
 * used to start again at seq 1, under which the gateway and the cloud
 * already hold other records. */
static void lost_journal_never_reuses_a_seq(void)
{
    for (int how = 0; how < 2; how++) {
        char dir[DIR_MAX], path[PATH_MAX];
        fresh_dir(dir);
        struct edge_journal *j = open_ok(dir);
        for (unsigned i = 0; i < 5; i++)
            append_ok(j, i);
        CU_ASSERT_EQUAL(edge_journal_ack(j, 1, NULL), FERRY_OK);
        edge_journal_free(j);
        file_in(dir, "status.journal", path);
        int rc = how == 0 ? unlink(path) : truncate(path, 0);
        CU_ASSERT_EQUAL_FATAL(rc, 0);

        j = open_ok(dir);
        CU_ASSERT_EQUAL(edge_journal_pending(j), 0);
        uint64_t seq = append_ok(j, 9);
        CU_ASSERT(seq > 5);
        /* ... but not further than the sequence window allows. */
        CU_ASSERT(ferry_status_seq_in_window(5, seq));
        edge_journal_free(j);
    }
}

/* 4.09: the gateway holds another record under the head's seq. Every
 * pending record gets a new seq, in the same order, and keeps its content,
 * also across a restart; later records follow on. */
static void renumber_keeps_order_and_content(void)
{
    char dir[DIR_MAX];
    fresh_dir(dir);
    struct edge_journal *j = open_ok(dir);
    for (unsigned i = 0; i < 4; i++)
        append_ok(j, i);
    CU_ASSERT_EQUAL(edge_journal_ack(j, 1, NULL), FERRY_OK);
    uint64_t first = 0;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(edge_journal_renumber(j, &first, &d), FERRY_OK);
    CU_ASSERT_EQUAL(first, 5);
    CU_ASSERT_EQUAL(edge_journal_pending(j), 3);
    CU_ASSERT_EQUAL(edge_journal_last_seq(j), 7);
    expect_head(j, 1, 5);
    CU_ASSERT_EQUAL(edge_journal_ack(j, 5, NULL), FERRY_OK);
    edge_journal_free(j);

    j = open_ok(dir);
    CU_ASSERT_FALSE(edge_journal_repaired(j));
    CU_ASSERT_EQUAL(edge_journal_pending(j), 2);
    expect_head(j, 2, 6);
    CU_ASSERT_EQUAL(edge_journal_ack(j, 6, NULL), FERRY_OK);
    expect_head(j, 3, 7);
    CU_ASSERT_EQUAL(append_ok(j, 8), 8);
    edge_journal_free(j);

    /* Nothing pending: nothing to renumber. */
    fresh_dir(dir);
    j = open_ok(dir);
    CU_ASSERT_EQUAL(edge_journal_renumber(j, &first, &d), FERRY_E_NOT_FOUND);
    edge_journal_free(j);
}

static void full_journal_refuses_without_using_a_seq(void)
{
    char dir[DIR_MAX];
    fresh_dir(dir);
    struct edge_journal *j = open_ok(dir);
    for (unsigned i = 0; i < EDGE_JOURNAL_MAX_PENDING; i++)
        append_ok(j, i);
    struct ferry_status st = mk_status(1);
    uint64_t seq = 0;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(edge_journal_append(j, &st, &seq, &d), FERRY_E_NOSPACE);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "wait"));
    CU_ASSERT_EQUAL(edge_journal_ack(j, 1, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(append_ok(j, 3), EDGE_JOURNAL_MAX_PENDING + 1);
    edge_journal_free(j);
}

static void invalid_record_is_refused_without_using_a_seq(void)
{
    char dir[DIR_MAX];
    fresh_dir(dir);
    struct edge_journal *j = open_ok(dir);
    struct ferry_status st = mk_status(2);
    st.node[0] = '.';
    uint64_t seq = 77;
    CU_ASSERT_NOT_EQUAL(edge_journal_append(j, &st, &seq, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(seq, 77);
    CU_ASSERT_EQUAL(edge_journal_pending(j), 0);
    CU_ASSERT_EQUAL(append_ok(j, 2), 1);
    edge_journal_free(j);
}

static void record_changed_on_storage_is_reported(void)
{
    char dir[DIR_MAX];
    fresh_dir(dir);
    struct edge_journal *j = open_ok(dir);
    append_ok(j, 0);
    append_ok(j, 1);
    flip_byte(dir, "status.journal", ENTRY_HDR + 4);
    uint8_t buf[FERRY_STATUS_MAX_BYTES];
    size_t len = 0;
    uint64_t seq = 0;
    CU_ASSERT_EQUAL(edge_journal_head(j, buf, sizeof(buf), &len, &seq, NULL), FERRY_E_CORRUPT);
    /* The caller drops it and goes on with the next one. */
    CU_ASSERT_EQUAL(edge_journal_head_seq(j), 1);
    CU_ASSERT_EQUAL(edge_journal_ack(j, edge_journal_head_seq(j), NULL), FERRY_OK);
    expect_head(j, 1, 2);
    edge_journal_free(j);
}

static void missing_folder_is_an_error(void)
{
    char dir[DIR_MAX];
    struct edge_journal *j = NULL;
    struct ferry_diag d = {{0}};
    snprintf(dir, sizeof(dir), "%s/no/such/folder", ferry_test_tmpdir());
    CU_ASSERT_EQUAL(edge_journal_open(dir, NULL, &j, &d), FERRY_E_IO);
    CU_ASSERT_PTR_NULL(j);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "status.journal"));
    edge_journal_free(NULL);
}

/* ---- a power cut at every file operation ------------------------------------ */

/* A record the size of a real one with a message, so compaction comes soon. */
static struct ferry_status cut_status(unsigned step)
{
    struct ferry_status st = mk_status(step);
    snprintf(st.message, sizeof(st.message), "cut step %u %0180u", step, 0u);
    return st;
}

/* What the journal vouched for before the cut; index 0 stands for the one
 * record the journal started with (step 1069), the others for the steps. */
struct cut_log {
    bool tried[32];    /* append was called: its record may survive */
    bool appended[32]; /* append returned FERRY_OK */
    bool acked[32];    /* ack returned FERRY_OK: it may still come back */
    bool renumbered[32];
    uint64_t max_seq; /* the highest seq a successful call handed out */
};

static uint64_t cut_head_step(struct edge_journal *j, uint64_t *seq)
{
    uint8_t buf[FERRY_STATUS_MAX_BYTES];
    size_t len = 0;
    struct ferry_status st;
    unsigned step = 0;
    if (edge_journal_head(j, buf, sizeof(buf), &len, seq, NULL) != FERRY_OK ||
        ferry_status_from_cbor(buf, len, &st, NULL) != FERRY_OK ||
        sscanf(st.message, "cut step %u", &step) != 1)
        return UINT64_MAX;
    return step == 1069 ? 0 : step;
}

/* The device's life: on a journal left by 70 records, 69 of them acked,
 * the last ack (which compacts), new records, acks, a renumbering (4.09),
 * more records, and acks until nothing waits. */
static void cut_life(const char *dir, const struct ferry_io *io, struct cut_log *log)
{
    struct edge_journal *j = NULL;
    if (edge_journal_open(dir, io, &j, NULL) != FERRY_OK)
        return;
    uint64_t seq = 0;
    bool ok = cut_head_step(j, &seq) == 0 && edge_journal_ack(j, seq, NULL) == FERRY_OK;
    if (ok)
        log->acked[0] = true;
    for (unsigned step = 1; ok && step <= 12; step++) {
        struct ferry_status st = cut_status(step);
        if (step == 5 || step == 10) {
            /* The head goes through; the next one meets a conflict. */
            uint64_t head = cut_head_step(j, &seq);
            ok = head < 32 && edge_journal_ack(j, seq, NULL) == FERRY_OK;
            if (ok)
                log->acked[head] = true;
            for (size_t i = 0; ok && step == 5 && i < 32; i++)
                log->renumbered[i] = log->appended[i] && !log->acked[i];
            ok = ok && (step != 5 || edge_journal_renumber(j, NULL, NULL) == FERRY_OK);
            if (ok)
                log->max_seq = edge_journal_last_seq(j);
        }
        log->tried[step] = ok;
        ok = ok && edge_journal_append(j, &st, &seq, NULL) == FERRY_OK;
        if (ok) {
            log->appended[step] = true;
            log->max_seq = seq;
        }
    }
    while (ok && edge_journal_pending(j) > 0) {
        uint64_t head = cut_head_step(j, &seq);
        ok = head < 32 && edge_journal_ack(j, seq, NULL) == FERRY_OK;
        if (ok)
            log->acked[head] = true;
    }
    edge_journal_free(j);
}

/* After the cut: every record appended and not acked waits, in order,
 * once (twice only if a renumbering was cut); none is torn or invented;
 * the next seq is above every seq handed out and every seq waiting. */
static void cut_check(const char *dir, const struct cut_log *log, uint64_t n, const char *how)
{
    struct edge_journal *j = open_ok(dir);
    unsigned seen[32] = {0};
    uint64_t last = 0, seq = 0, step;
    while ((step = cut_head_step(j, &seq)) != UINT64_MAX) {
        bool known = step < 32 && log->tried[step];
        if (!known || seq <= last)
            fprintf(stderr, "journal, %s at %llu: step %llu seq %llu after %llu\n", how,
                    (unsigned long long)n, (unsigned long long)step, (unsigned long long)seq,
                    (unsigned long long)last);
        CU_ASSERT_TRUE_FATAL(known);
        CU_ASSERT_TRUE(seq > last);
        seen[step]++;
        last = seq;
        CU_ASSERT_EQUAL_FATAL(edge_journal_ack(j, seq, NULL), FERRY_OK);
    }
    CU_ASSERT_EQUAL(edge_journal_pending(j), 0);
    for (unsigned s = 0; s < 32; s++) {
        if (log->appended[s] && !log->acked[s] && seen[s] == 0)
            fprintf(stderr, "journal, %s at %llu: record of step %u lost\n", how,
                    (unsigned long long)n, s);
        CU_ASSERT_TRUE(seen[s] > 0 || !log->appended[s] || log->acked[s]);
        CU_ASSERT_TRUE(seen[s] <= (log->renumbered[s] ? 2u : 1u));
    }
    struct ferry_status st = cut_status(31);
    uint64_t next = 0;
    CU_ASSERT_EQUAL(edge_journal_append(j, &st, &next, NULL), FERRY_OK);
    if (next <= last || next <= log->max_seq)
        fprintf(stderr, "journal, %s at %llu: next seq %llu, handed out %llu, waiting %llu\n", how,
                (unsigned long long)n, (unsigned long long)next, (unsigned long long)log->max_seq,
                (unsigned long long)last);
    CU_ASSERT_TRUE(next > last && next > log->max_seq);
    edge_journal_free(j);
}

static void a_power_cut_at_every_file_operation(void)
{
    static const char *const names[] = {"kill -9", "power cut", "torn power cut"};
    /* The journal as a long-running node has it: 70 records, 69 acked. */
    char tmpl[DIR_MAX];
    fresh_dir(tmpl);
    struct edge_journal *j = open_ok(tmpl);
    uint64_t seqs[70];
    for (unsigned i = 0; i < 70; i++) {
        struct ferry_status st = cut_status(1000 + i);
        CU_ASSERT_EQUAL_FATAL(edge_journal_append(j, &st, &seqs[i], NULL), FERRY_OK);
    }
    for (unsigned i = 0; i < 69; i++)
        CU_ASSERT_EQUAL_FATAL(edge_journal_ack(j, seqs[i], NULL), FERRY_OK);
    edge_journal_free(j);
    CU_ASSERT_TRUE_FATAL(file_size(tmpl, "status.journal") > EDGE_JOURNAL_COMPACT_BYTES);

    for (int how = FERRY_IO_KILL; how <= FERRY_IO_POWER_TORN; how++) {
        uint64_t total = UINT64_MAX;
        for (uint64_t n = 0; n <= total; n++) {
            char dir[DIR_MAX], from[PATH_MAX], to[PATH_MAX];
            fresh_dir(dir);
            static const char *const files[] = {"status.journal", "status.seq"};
            for (int i = 0; i < 2; i++) {
                uint8_t *data = NULL;
                size_t len = 0;
                file_in(tmpl, files[i], from);
                file_in(dir, files[i], to);
                CU_ASSERT_EQUAL_FATAL(ferry_read_file(from, 1 << 20, &data, &len, NULL), FERRY_OK);
                CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(to, data, len, 0644, NULL), FERRY_OK);
                free(data);
            }
            struct ferry_io_faulty *f = NULL;
            CU_ASSERT_EQUAL_FATAL(ferry_io_faulty_new(&f, NULL), FERRY_OK);
            bool counting = total == UINT64_MAX;
            ferry_io_faulty_stop_at(f, counting ? FERRY_IO_NO_STOP : n, (enum ferry_io_stop)how);
            struct cut_log log = {.tried[0] = true, .appended[0] = true, .max_seq = seqs[69]};
            cut_life(dir, ferry_io_faulty_io(f), &log);
            if (counting) {
                /* The first run goes through: it counts the operations. */
                CU_ASSERT_TRUE_FATAL(log.appended[12] && log.acked[12]);
                total = ferry_io_faulty_calls(f);
                CU_ASSERT_TRUE(total > 40);
            }
            ferry_io_faulty_stop(f, (enum ferry_io_stop)how);
            ferry_io_faulty_free(f);
            cut_check(dir, &log, n, names[how]);
            if (counting)
                n = UINT64_MAX; /* the next round is 0 */
        }
    }
}

const char *const ferry_suite_name = "edge_journal";
const struct ferry_test_case ferry_tests[] = {
    {"records leave in order once acked", records_leave_in_order_once_acked},
    {"unacked records survive a restart", unacked_records_survive_a_restart},
    {"torn tail is cut and no seq repeats", torn_tail_is_cut_and_no_seq_repeats},
    {"garbage after the last entry is cut", garbage_after_the_last_entry_is_cut},
    {"damage in the middle keeps what came before", damage_in_the_middle_keeps_what_came_before},
    {"seq survives compaction and restarts", seq_survives_compaction_and_restarts},
    {"intact journal needs no reservation", intact_journal_needs_no_reservation},
    {"lost journal never reuses a seq", lost_journal_never_reuses_a_seq},
    {"renumber keeps order and content", renumber_keeps_order_and_content},
    {"full journal refuses without using a seq", full_journal_refuses_without_using_a_seq},
    {"invalid record is refused without using a seq",
     invalid_record_is_refused_without_using_a_seq},
    {"record changed on storage is reported", record_changed_on_storage_is_reported},
    {"missing folder is an error", missing_folder_is_an_error},
    {"a power cut at every file operation", a_power_cut_at_every_file_operation},
    {NULL, NULL},
};
