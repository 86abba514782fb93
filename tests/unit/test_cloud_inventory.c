#include "cunit_main.h"

#include "cloud_inventory.h"
#include "db_fixture.h"

#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct ferry_status rec(const char *node, const char *gw, const char *release, uint64_t seq,
                               enum ferry_state state)
{
    struct ferry_status st;
    memset(&st, 0, sizeof(st));
    snprintf(st.node, sizeof(st.node), "%s", node);
    snprintf(st.gateway, sizeof(st.gateway), "%s", gw);
    snprintf(st.release_id, sizeof(st.release_id), "%s", release);
    snprintf(st.version, sizeof(st.version), "1.%llu.0", (unsigned long long)seq);
    st.state = state;
    st.bytes = seq * 100;
    st.total = 100000;
    st.seq = seq;
    st.ts = 1795780000 + (int64_t)seq;
    return st;
}

/* The database called name, copied out of the fixture's buffer. */
static const char *db_path(const char *name)
{
    static char path[8][PATH_MAX + 128];
    static unsigned next;
    char *p = path[next++ % 8];
    snprintf(p, sizeof(path[0]), "%s", ferry_test_db(name));
    return p;
}

/* Only SQLite has this; the PostgreSQL run says so. */
static bool sqlite_only(const char *what)
{
    if (!ferry_test_db_is_pg())
        return true;
    fprintf(stderr, "SKIP on PostgreSQL: %s (SQLite only)\n", what);
    return false;
}

static struct cloud_inventory *open_db(const char *path)
{
    struct cloud_inventory *inv = NULL;
    struct ferry_diag d = {{0}};
    enum ferry_err err = cloud_inventory_open(path, true, &inv, &d);
    if (err != FERRY_OK)
        fprintf(stderr, "open: %s\n", d.msg);
    CU_ASSERT_EQUAL_FATAL(err, FERRY_OK);
    return inv;
}

/* What one ingest said. */
struct outcome {
    struct ferry_record_id stored[16];
    struct ferry_record_refusal refused[16];
    struct cloud_ingest_out out;
};

static enum ferry_err ingest(struct cloud_inventory *inv, const struct ferry_status *recs, size_t n,
                             struct outcome *o, struct ferry_diag *d)
{
    memset(o, 0, sizeof(*o));
    o->out.stored = o->stored;
    o->out.refused = o->refused;
    CU_ASSERT_FATAL(n <= 16);
    return cloud_inventory_ingest(inv, recs, n, true, &o->out, d);
}

static struct outcome ingest_ok(struct cloud_inventory *inv, const struct ferry_status *recs,
                                size_t n)
{
    struct outcome o;
    struct ferry_diag d = {{0}};
    enum ferry_err err = ingest(inv, recs, n, &o, &d);
    if (err != FERRY_OK)
        fprintf(stderr, "ingest: %s\n", d.msg);
    CU_ASSERT_EQUAL_FATAL(err, FERRY_OK);
    return o;
}

/* The one record ingested was refused for reason. */
static void expect_refused(const struct outcome *o, enum ferry_err reason)
{
    CU_ASSERT_EQUAL(o->out.nstored, 0);
    CU_ASSERT_EQUAL_FATAL(o->out.nrefused, 1);
    CU_ASSERT_EQUAL(o->refused[0].reason, reason);
}

/* The nodes a query returns, as "node:seq:state" joined by spaces. */
struct listing {
    char text[1024];
    struct ferry_inventory_row last;
    size_t n;
};

static enum ferry_err collect(void *arg, const struct ferry_inventory_row *row)
{
    struct listing *l = arg;
    size_t used = strlen(l->text);
    snprintf(l->text + used, sizeof(l->text) - used, "%s%s:%llu:%s", used ? " " : "", row->st.node,
             (unsigned long long)row->st.seq, ferry_state_name(row->st.state));
    l->last = *row;
    l->n++;
    return FERRY_OK;
}

static struct listing list(struct cloud_inventory *inv, const struct cloud_inventory_filter *f)
{
    struct listing l;
    memset(&l, 0, sizeof(l));
    struct ferry_diag d = {{0}};
    enum ferry_err err = cloud_inventory_each_node(inv, f, collect, &l, &d);
    if (err != FERRY_OK)
        fprintf(stderr, "each_node: %s\n", d.msg);
    CU_ASSERT_EQUAL(err, FERRY_OK);
    return l;
}

/* Reads the file behind the module's back with SQLite itself. */
static long long scalar(const char *path, const char *sql)
{
    return ferry_test_db_scalar(path, sql);
}

static void duplicate_records_are_stored_once(void)
{
    const char *path = db_path("dedup");
    struct cloud_inventory *inv = open_db(path);
    struct ferry_status first = rec("n1", "gw-1", "r1", 4, FERRY_STATE_DOWNLOADING);
    struct ferry_status again = first;
    again.bytes = 999; /* same (node, seq), other content: the first one stays */
    CU_ASSERT_EQUAL(ingest_ok(inv, &first, 1).out.nstored, 1);
    /* It used to be acknowledged as stored and silently dropped. */
    expect_refused((struct outcome[]){ingest_ok(inv, &again, 1)}, FERRY_E_CONFLICT);
    struct outcome o = ingest_ok(inv, &first, 1);
    CU_ASSERT_EQUAL(o.out.nstored, 1);
    CU_ASSERT_EQUAL(o.out.nrefused, 0);
    CU_ASSERT_EQUAL(scalar(path, "SELECT count(*) FROM records"), 1);
    CU_ASSERT_EQUAL(scalar(path, "SELECT count(*) FROM refused WHERE reason = 'conflict'"), 1);
    CU_ASSERT_EQUAL(scalar(path, "SELECT bytes FROM refused"), 999);
    CU_ASSERT_EQUAL(scalar(path, "SELECT bytes FROM records WHERE node='n1' AND seq=4"),
                    (long long)first.bytes);
    struct listing l = list(inv, NULL);
    CU_ASSERT_STRING_EQUAL(l.text, "n1:4:downloading");
    CU_ASSERT_EQUAL(l.last.st.bytes, first.bytes);
    cloud_inventory_close(inv);
}

static void node_row_follows_seq_not_arrival_order(void)
{
    const char *path = db_path("order");
    struct cloud_inventory *inv = open_db(path);
    struct ferry_status s5 = rec("n1", "gw-1", "r1", 5, FERRY_STATE_VERIFYING);
    struct ferry_status s3 = rec("n1", "gw-1", "r1", 3, FERRY_STATE_DOWNLOADING);
    struct ferry_status s7 = rec("n1", "gw-1", "r1", 7, FERRY_STATE_SUCCESS);
    ingest_ok(inv, &s5, 1);
    ingest_ok(inv, &s3, 1); /* late: stored, but the node does not go back */
    struct listing l = list(inv, NULL);
    CU_ASSERT_STRING_EQUAL(l.text, "n1:5:verifying");
    CU_ASSERT_STRING_EQUAL(l.last.st.version, s5.version);
    ingest_ok(inv, &s7, 1);
    l = list(inv, NULL);
    CU_ASSERT_STRING_EQUAL(l.text, "n1:7:success");
    CU_ASSERT_STRING_EQUAL(l.last.st.gateway, "gw-1");
    CU_ASSERT_EQUAL(scalar(path, "SELECT count(*) FROM records"), 3);

    /* Out of order inside one batch too. */
    struct ferry_status batch[] = {rec("n2", "gw-1", "r1", 9, FERRY_STATE_INSTALLING),
                                   rec("n2", "gw-1", "r1", 8, FERRY_STATE_VERIFYING)};
    ingest_ok(inv, batch, 2);
    struct cloud_inventory_filter f = {.release = NULL, .gateway = NULL, .state = NULL};
    l = list(inv, &f);
    CU_ASSERT_STRING_EQUAL(l.text, "n1:7:success n2:9:installing");
    cloud_inventory_close(inv);
}

static void every_field_survives_and_updated_at_is_the_clouds(void)
{
    const char *path = db_path("fields");
    struct cloud_inventory *inv = open_db(path);
    struct ferry_status st = rec("node-9", "gw-1", "meter-fw-1.4.2-42", 13, FERRY_STATE_FAILED);
    st.error = FERRY_E_HASH_MISMATCH;
    snprintf(st.message, sizeof(st.message), "artifact: SHA-256 differs from the manifest");
    st.ts = -5;
    int64_t before = (int64_t)time(NULL);
    ingest_ok(inv, &st, 1);
    int64_t after = (int64_t)time(NULL);
    struct listing l = list(inv, NULL);
    CU_ASSERT_EQUAL_FATAL(l.n, 1);
    const struct ferry_status *g = &l.last.st;
    CU_ASSERT_STRING_EQUAL(g->node, st.node);
    CU_ASSERT_STRING_EQUAL(g->gateway, st.gateway);
    CU_ASSERT_STRING_EQUAL(g->release_id, st.release_id);
    CU_ASSERT_STRING_EQUAL(g->version, st.version);
    CU_ASSERT_STRING_EQUAL(g->message, st.message);
    CU_ASSERT_EQUAL(g->state, st.state);
    CU_ASSERT_EQUAL(g->error, st.error);
    CU_ASSERT_EQUAL(g->bytes, st.bytes);
    CU_ASSERT_EQUAL(g->total, st.total);
    CU_ASSERT_EQUAL(g->seq, st.seq);
    CU_ASSERT_EQUAL(g->ts, st.ts);
    CU_ASSERT_TRUE(l.last.updated_at >= before && l.last.updated_at <= after);
    cloud_inventory_close(inv);
}

static void filters_select_by_release_gateway_and_state(void)
{
    struct cloud_inventory *inv = open_db(db_path("filters"));
    struct ferry_status recs[] = {
        rec("a", "gw-1", "r1", 1, FERRY_STATE_SUCCESS),
        rec("b", "gw-1", "r2", 1, FERRY_STATE_FAILED),
        rec("c", "gw-2", "r1", 1, FERRY_STATE_FAILED),
        rec("d", "gw-2", "r2", 1, FERRY_STATE_SUCCESS),
        rec("e", "", "", 1, FERRY_STATE_IDLE),
    };
    ingest_ok(inv, recs, sizeof(recs) / sizeof(recs[0]));
    static const enum ferry_state failed = FERRY_STATE_FAILED, idle = FERRY_STATE_IDLE,
                                  rolled = FERRY_STATE_ROLLED_BACK;
    static const struct {
        struct cloud_inventory_filter f;
        const char *want;
    } cases[] = {
        {{NULL, NULL, NULL}, "a b c d e"}, {{"r1", NULL, NULL}, "a c"},
        {{NULL, "gw-2", NULL}, "c d"},     {{NULL, NULL, &failed}, "b c"},
        {{"r2", "gw-1", &failed}, "b"},    {{"r9", NULL, NULL}, ""},
        {{NULL, NULL, &idle}, "e"},        {{NULL, NULL, &rolled}, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct listing l = list(inv, &cases[i].f);
        char got[256] = "";
        /* Keep only the node names for the comparison. */
        for (char *tok = strtok(l.text, " "); tok; tok = strtok(NULL, " ")) {
            size_t used = strlen(got);
            snprintf(got + used, sizeof(got) - used, "%s%.*s", used ? " " : "",
                     (int)strcspn(tok, ":"), tok);
        }
        if (strcmp(got, cases[i].want) != 0)
            fprintf(stderr, "case %zu: got '%s', want '%s'\n", i, got, cases[i].want);
        CU_ASSERT_STRING_EQUAL(got, cases[i].want);
    }
    cloud_inventory_close(inv);
}

static void ingest_returns_each_stored_id_once_in_order(void)
{
    struct cloud_inventory *inv = open_db(db_path("durable-list"));
    struct ferry_status old = rec("n2", "gw-1", "r1", 1, FERRY_STATE_IDLE);
    ingest_ok(inv, &old, 1);
    struct ferry_status recs[] = {
        rec("n1", "gw-1", "r1", 2, FERRY_STATE_DOWNLOADING),
        rec("n2", "gw-1", "r1", 1, FERRY_STATE_IDLE),        /* already stored */
        rec("n1", "gw-1", "r1", 2, FERRY_STATE_DOWNLOADING), /* twice in the batch */
        rec("n1", "gw-1", "r1", 3, FERRY_STATE_VERIFYING),
    };
    struct outcome o = ingest_ok(inv, recs, 4);
    const struct ferry_record_id *ids = o.stored;
    CU_ASSERT_EQUAL_FATAL(o.out.nstored, 3);
    CU_ASSERT_EQUAL(o.out.nrefused, 0);
    CU_ASSERT_STRING_EQUAL(ids[0].node, "n1");
    CU_ASSERT_EQUAL(ids[0].seq, 2);
    CU_ASSERT_STRING_EQUAL(ids[1].node, "n2");
    CU_ASSERT_EQUAL(ids[1].seq, 1);
    CU_ASSERT_STRING_EQUAL(ids[2].node, "n1");
    CU_ASSERT_EQUAL(ids[2].seq, 3);
    cloud_inventory_close(inv);
}

static void a_bad_record_stores_nothing_of_its_batch(void)
{
    const char *path = db_path("atomic");
    struct cloud_inventory *inv = open_db(path);
    struct ferry_status recs[] = {
        rec("good", "gw-1", "r1", 1, FERRY_STATE_IDLE),
        rec("bad/node", "gw-1", "r1", 1, FERRY_STATE_IDLE),
    };
    struct outcome o;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(ingest(inv, recs, 2, &o, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "record 1"));
    CU_ASSERT_EQUAL(o.out.nstored, 0);
    recs[1] = rec("fine", "gw-1", "r1", 0, FERRY_STATE_IDLE); /* seq starts at 1 */
    CU_ASSERT_EQUAL(ingest(inv, recs, 2, &o, &d), FERRY_E_INVALID_ARG);
    recs[1] = rec("fine", "gw/1", "r1", 1, FERRY_STATE_IDLE);
    CU_ASSERT_EQUAL(ingest(inv, recs, 2, &o, &d), FERRY_E_INVALID_ARG);
    recs[1] = rec("fine", "gw-1", "r1", 1, (enum ferry_state)99);
    CU_ASSERT_EQUAL(ingest(inv, recs, 2, &o, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ingest(inv, recs, 0, &o, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(scalar(path, "SELECT count(*) FROM records"), 0);
    CU_ASSERT_EQUAL(list(inv, NULL).n, 0);
    cloud_inventory_close(inv);
}

static void data_survives_close_and_reopen(void)
{
    const char *path = db_path("reopen");
    struct cloud_inventory *inv = open_db(path);
    struct ferry_status st = rec("n1", "gw-1", "r1", 6, FERRY_STATE_PENDING_REBOOT);
    ingest_ok(inv, &st, 1);
    cloud_inventory_close(inv);
    if (!ferry_test_db_is_pg())
        CU_ASSERT_EQUAL(scalar(path, "PRAGMA user_version"), 3);

    inv = NULL;
    CU_ASSERT_EQUAL_FATAL(cloud_inventory_open(path, false, &inv, NULL), FERRY_OK);
    struct listing l = list(inv, NULL);
    CU_ASSERT_STRING_EQUAL(l.text, "n1:6:pending-reboot");
    struct ferry_status older = rec("n1", "gw-1", "r1", 5, FERRY_STATE_INSTALLING);
    ingest_ok(inv, &older, 1); /* order still holds after reopening */
    CU_ASSERT_STRING_EQUAL(list(inv, NULL).text, "n1:6:pending-reboot");
    cloud_inventory_close(inv);
    cloud_inventory_close(NULL);
}

static void open_refuses_missing_and_foreign_files(void)
{
    struct cloud_inventory *inv = NULL;
    struct ferry_diag d = {{0}};
    if (ferry_test_db_is_pg()) {
        /* A database without Ferry's tables is refused unless told to
         * create them; one that does not exist is refused by name. */
        CU_ASSERT_EQUAL(cloud_inventory_open(db_path("bare"), false, &inv, &d), FERRY_E_CORRUPT);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "not a Ferry inventory"));
        CU_ASSERT_PTR_NULL(inv);
        char absent[PATH_MAX + 128];
        snprintf(absent, sizeof(absent), "postgresql://ferry@/t_absent?host=%s",
                 getenv("FERRY_TEST_PG"));
        CU_ASSERT_NOT_EQUAL(cloud_inventory_open(absent, true, &inv, &d), FERRY_OK);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "t_absent"));
        CU_ASSERT_PTR_NULL(inv);
        /* a password in the URL would show in `ps`: refused */
        CU_ASSERT_EQUAL(cloud_inventory_open("postgresql://ferry:secret@/x", true, &inv, &d),
                        FERRY_E_INVALID_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "password file"));
        CU_ASSERT_PTR_NULL(strstr(d.msg, "secret"));
        return;
    }
    CU_ASSERT_EQUAL(cloud_inventory_open(db_path("missing"), false, &inv, &d), FERRY_E_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "missing.db"));
    CU_ASSERT_PTR_NULL(inv);

    const char *junk = db_path("junk");
    FILE *f = fopen(junk, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not a database. ", f);
    fclose(f);
    CU_ASSERT_EQUAL(cloud_inventory_open(junk, true, &inv, &d), FERRY_E_CORRUPT);
    CU_ASSERT_PTR_NULL(inv);

    /* An SQLite file of someone else's: no schema, so a reader refuses it. */
    const char *other = db_path("other");
    sqlite3 *db = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(other, &db), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(db, "PRAGMA user_version = 7", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    CU_ASSERT_EQUAL(cloud_inventory_open(other, true, &inv, &d), FERRY_E_CORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "version 7"));

    const char *bare = db_path("bare");
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(bare, &db), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    CU_ASSERT_EQUAL(cloud_inventory_open(bare, false, &inv, &d), FERRY_E_CORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "not a Ferry inventory"));
    CU_ASSERT_PTR_NULL(inv);
}

static void file_is_in_wal_mode(void)
{
    if (!sqlite_only("the file's journal mode"))
        return;
    const char *path = db_path("wal");
    struct cloud_inventory *inv = open_db(path);
    cloud_inventory_close(inv);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    CU_ASSERT_EQUAL_FATAL(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    CU_ASSERT_EQUAL_FATAL(sqlite3_step(st), SQLITE_ROW);
    CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static enum ferry_err stop_after_first(void *arg, const struct ferry_inventory_row *row)
{
    (void)row;
    ++*(int *)arg;
    return FERRY_E_BUSY;
}

static void callback_error_stops_the_walk(void)
{
    struct cloud_inventory *inv = open_db(db_path("stop"));
    struct ferry_status recs[] = {rec("a", "gw-1", "r1", 1, FERRY_STATE_IDLE),
                                  rec("b", "gw-1", "r1", 1, FERRY_STATE_IDLE)};
    ingest_ok(inv, recs, 2);
    int calls = 0;
    CU_ASSERT_EQUAL(cloud_inventory_each_node(inv, NULL, stop_after_first, &calls, NULL),
                    FERRY_E_BUSY);
    CU_ASSERT_EQUAL(calls, 1);
    CU_ASSERT_EQUAL(list(inv, NULL).n, 2); /* and the statement is reusable */
    cloud_inventory_close(inv);
}

/* The record that used to hide a node for good: seq 2^53, once. It is
 * refused and kept aside, the node's real records go on being its latest,
 * and the node row says a record of it was refused since. */
static void seq_far_ahead_is_refused_and_hides_nothing(void)
{
    const char *path = db_path("window");
    struct cloud_inventory *inv = open_db(path);
    struct ferry_status s12 = rec("n1", "gw-1", "r1", 12, FERRY_STATE_DOWNLOADING);
    ingest_ok(inv, &s12, 1);
    struct ferry_status forged = rec("n1", "gw-1", "r1", UINT64_C(1) << 53, FERRY_STATE_SUCCESS);
    forged.bytes = forged.total;
    expect_refused((struct outcome[]){ingest_ok(inv, &forged, 1)}, FERRY_E_SEQ_RANGE);
    struct listing l = list(inv, NULL);
    CU_ASSERT_STRING_EQUAL(l.text, "n1:12:downloading");
    CU_ASSERT_EQUAL(l.last.refused, 1);
    struct ferry_status s13 = rec("n1", "gw-1", "r1", 13, FERRY_STATE_FAILED);
    ingest_ok(inv, &s13, 1);
    l = list(inv, NULL);
    CU_ASSERT_STRING_EQUAL(l.text, "n1:13:failed");
    /* Refused before its latest record was stored: not counted now (the
     * same second counts, to err on the side of saying so). */
    CU_ASSERT(l.last.refused <= 1);
    /* The window's edge, and a node never heard of. */
    struct ferry_status edge =
        rec("n1", "gw-1", "r1", 13 + FERRY_STATUS_SEQ_WINDOW, FERRY_STATE_IDLE);
    CU_ASSERT_EQUAL(ingest_ok(inv, &edge, 1).out.nstored, 1);
    struct ferry_status fresh =
        rec("n9", "gw-1", "r1", FERRY_STATUS_SEQ_WINDOW + 1, FERRY_STATE_IDLE);
    expect_refused((struct outcome[]){ingest_ok(inv, &fresh, 1)}, FERRY_E_SEQ_RANGE);
    CU_ASSERT_EQUAL(scalar(path, "SELECT count(*) FROM refused WHERE reason = 'seq-range'"), 2);
    cloud_inventory_close(inv);
}

/* A node is bound to the gateway of its first record; another gateway
 * writing its state is refused (it used to be able to), until the operator
 * moves the node; then the old gateway is the wrong one. */
static void nodes_are_bound_to_their_gateway_and_moved_by_the_operator(void)
{
    const char *path = db_path("binding");
    struct cloud_inventory *inv = open_db(path);
    struct ferry_status a1 = rec("n1", "gw-a", "r1", 1, FERRY_STATE_IDLE);
    ingest_ok(inv, &a1, 1);
    CU_ASSERT_EQUAL(scalar(path, "SELECT count(*) FROM bindings WHERE child = 'n1' AND parent = "
                                 "'gw-a' AND how = 'first-record'"),
                    1);
    struct ferry_status b2 = rec("n1", "gw-b", "r1", 2, FERRY_STATE_SUCCESS);
    expect_refused((struct outcome[]){ingest_ok(inv, &b2, 1)}, FERRY_E_WRONG_GATEWAY);
    CU_ASSERT_STRING_EQUAL(list(inv, NULL).text, "n1:1:idle");
    /* The very record the old gateway delivered, resent through another, is
     * a copy: acknowledged, nothing changes. */
    struct ferry_status copy = a1;
    snprintf(copy.gateway, sizeof(copy.gateway), "gw-b");
    CU_ASSERT_EQUAL(ingest_ok(inv, &copy, 1).out.nstored, 1);

    char was[FERRY_ID_MAX + 1] = "x";
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(cloud_inventory_bind(inv, "n1", "gw-b", "moved to hall 2", was, &d),
                          FERRY_OK);
    CU_ASSERT_STRING_EQUAL(was, "gw-a");
    CU_ASSERT_EQUAL(ingest_ok(inv, &b2, 1).out.nstored, 1);
    CU_ASSERT_STRING_EQUAL(list(inv, NULL).text, "n1:2:success");
    struct ferry_status a3 = rec("n1", "gw-a", "r1", 3, FERRY_STATE_FAILED);
    expect_refused((struct outcome[]){ingest_ok(inv, &a3, 1)}, FERRY_E_WRONG_GATEWAY);
    /* Binding a node not heard of yet. */
    CU_ASSERT_EQUAL(cloud_inventory_bind(inv, "n2", "gw-c", NULL, was, &d), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(was, "");
    struct ferry_status c1 = rec("n2", "gw-a", "r1", 1, FERRY_STATE_IDLE);
    expect_refused((struct outcome[]){ingest_ok(inv, &c1, 1)}, FERRY_E_WRONG_GATEWAY);
    CU_ASSERT_EQUAL(cloud_inventory_bind(inv, "n/2", "gw-c", NULL, NULL, &d), FERRY_E_INVALID_ARG);
    /* Every binding and move is in the event log. */
    CU_ASSERT_EQUAL(scalar(path, "SELECT count(*) FROM events"), 3);
    CU_ASSERT_EQUAL(scalar(path, "SELECT count(*) FROM events WHERE kind = 'move' AND node = 'n1' "
                                 "AND detail LIKE '%gw-a to gw-b%hall 2%'"),
                    1);
    cloud_inventory_close(inv);
}

struct collected {
    size_t n;
    struct ferry_refused_row last;
    struct ferry_event_row event;
};

static enum ferry_err on_refused(void *arg, const struct ferry_refused_row *row)
{
    struct collected *c = arg;
    c->n++;
    c->last = *row;
    return FERRY_OK;
}

static enum ferry_err on_event(void *arg, const struct ferry_event_row *row)
{
    struct collected *c = arg;
    c->n++;
    c->event = *row;
    return FERRY_OK;
}

/* Refused records can be listed (with the filters) and stay bounded; a
 * twin's refusal is not kept. */
static void refused_records_are_listed_and_bounded(void)
{
    const char *path = db_path("refused");
    struct cloud_inventory *inv = open_db(path);
    struct ferry_status first = rec("n1", "gw-1", "r1", 1, FERRY_STATE_IDLE);
    ingest_ok(inv, &first, 1);
    for (uint64_t i = 0; i < 130; i++) {
        struct ferry_status other = first;
        other.bytes = 1000 + i;
        ingest_ok(inv, &other, 1);
    }
    CU_ASSERT_EQUAL(scalar(path, "SELECT count(*) FROM refused WHERE node = 'n1'"), 100);
    struct collected c;
    memset(&c, 0, sizeof(c));
    CU_ASSERT_EQUAL(cloud_inventory_each_refused(inv, NULL, on_refused, &c, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(c.n, 100);
    CU_ASSERT_EQUAL(c.last.st.bytes, 1129);
    CU_ASSERT_EQUAL(c.last.reason, FERRY_E_CONFLICT);
    CU_ASSERT_STRING_EQUAL(c.last.st.gateway, "gw-1");
    CU_ASSERT_PTR_NOT_NULL(strstr(c.last.detail, "n1"));
    struct cloud_inventory_filter f = {.gateway = "gw-9"};
    memset(&c, 0, sizeof(c));
    CU_ASSERT_EQUAL(cloud_inventory_each_refused(inv, &f, on_refused, &c, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(c.n, 0);
    memset(&c, 0, sizeof(c));
    CU_ASSERT_EQUAL(cloud_inventory_each_event(inv, on_event, &c, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(c.n, 1);
    CU_ASSERT_STRING_EQUAL(c.event.kind, "bound");
    CU_ASSERT_STRING_EQUAL(c.event.node, "n1");

    struct ferry_status twin = first;
    twin.bytes = 5;
    struct ferry_record_id id;
    struct ferry_record_refusal refusal;
    struct cloud_ingest_out out = {.stored = &id, .refused = &refusal};
    CU_ASSERT_EQUAL(cloud_inventory_ingest(inv, &twin, 1, false, &out, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(out.nrefused, 1);
    CU_ASSERT_EQUAL(scalar(path, "SELECT count(*) FROM refused WHERE bytes = 5"), 0);
    cloud_inventory_close(inv);
}

/* A version 1 inventory is upgraded in place: every node is bound to the
 * gateway of its latest record. */
static void version_1_inventory_is_upgraded(void)
{
    if (!sqlite_only("files of schema version 1"))
        return;
    const char *path = db_path("v1");
    sqlite3 *db = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open(path, &db), SQLITE_OK);
    const char *v1 =
        "CREATE TABLE records (node TEXT NOT NULL, seq INTEGER NOT NULL, gateway TEXT NOT NULL,"
        " release TEXT NOT NULL, version TEXT NOT NULL, state TEXT NOT NULL,"
        " bytes INTEGER NOT NULL, total INTEGER NOT NULL, error TEXT NOT NULL,"
        " message TEXT NOT NULL, ts INTEGER NOT NULL, received_at INTEGER NOT NULL,"
        " PRIMARY KEY (node, seq)) WITHOUT ROWID;"
        "CREATE TABLE nodes (node TEXT PRIMARY KEY NOT NULL, gateway TEXT NOT NULL,"
        " release TEXT NOT NULL, version TEXT NOT NULL, state TEXT NOT NULL,"
        " bytes INTEGER NOT NULL, total INTEGER NOT NULL, error TEXT NOT NULL,"
        " message TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL,"
        " updated_at INTEGER NOT NULL);"
        "CREATE INDEX nodes_release ON nodes (release);"
        "CREATE INDEX nodes_gateway ON nodes (gateway);"
        "INSERT INTO records VALUES ('old', 3, 'gw-1', 'r1', '1.0', 'success', 1, 1, '', '', 5, 6);"
        "INSERT INTO nodes VALUES ('old', 'gw-1', 'r1', '1.0', 'success', 1, 1, '', '', 3, 5, 6);"
        "PRAGMA user_version = 1;";
    CU_ASSERT_EQUAL_FATAL(sqlite3_exec(db, v1, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    struct cloud_inventory *inv = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(cloud_inventory_open(path, false, &inv, &d), FERRY_OK);
    CU_ASSERT_EQUAL(scalar(path, "PRAGMA user_version"), 3);
    CU_ASSERT_STRING_EQUAL(list(inv, NULL).text, "old:3:success");
    struct ferry_status other = rec("old", "gw-2", "r1", 4, FERRY_STATE_IDLE);
    expect_refused((struct outcome[]){ingest_ok(inv, &other, 1)}, FERRY_E_WRONG_GATEWAY);
    struct ferry_status mine = rec("old", "gw-1", "r1", 4, FERRY_STATE_IDLE);
    CU_ASSERT_EQUAL(ingest_ok(inv, &mine, 1).out.nstored, 1);
    cloud_inventory_close(inv);
}

/* A batch may carry one (node, seq) twice with different content: the
 * first is stored, and the pair is listed once, as stored. */
static void a_pair_is_never_both_stored_and_refused(void)
{
    struct cloud_inventory *inv = open_db(db_path("pair"));
    struct ferry_status recs[] = {rec("n1", "gw-1", "r1", 1, FERRY_STATE_IDLE),
                                  rec("n1", "gw-1", "r1", 1, FERRY_STATE_FAILED),
                                  rec("n1", "gw-1", "r1", 2, FERRY_STATE_IDLE)};
    struct outcome o = ingest_ok(inv, recs, 3);
    CU_ASSERT_EQUAL(o.out.nstored, 2);
    CU_ASSERT_EQUAL(o.out.nrefused, 0);
    cloud_inventory_close(inv);
}

/* Two writers (two serve instances: on PostgreSQL they may be on two
 * hosts) ingest batches about the same nodes at once, each with its own
 * connection, and disagree about every record. Each (node, seq) is stored
 * once, by one of them; the other's copy is refused as a conflict; nothing
 * is lost or judged twice. A writer told FERRY_E_BUSY sends its batch again,
 * as a gateway does with a batch that was not acknowledged. */
#define RACE_NODES   4
#define RACE_BATCHES 60

struct racer {
    const char *target;
    pthread_barrier_t *start; /* both connected before either writes */
    enum ferry_state state;   /* what this writer claims every record says */
    unsigned stored, refused_conflict, refused_other, retries, errors;
    char error[FERRY_DIAG_MAX];
};

static void *race(void *arg)
{
    struct racer *r = arg;
    struct cloud_inventory *inv = NULL;
    struct ferry_diag d = {{0}};
    bool opened = cloud_inventory_open(r->target, true, &inv, &d) == FERRY_OK;
    pthread_barrier_wait(r->start);
    if (!opened) {
        r->errors++;
        snprintf(r->error, sizeof(r->error), "%s", d.msg);
        return NULL;
    }
    for (uint64_t seq = 1; seq <= RACE_BATCHES; seq++) {
        struct ferry_status recs[RACE_NODES];
        for (int i = 0; i < RACE_NODES; i++) {
            char node[16];
            snprintf(node, sizeof(node), "race-%d", i);
            recs[i] = rec(node, "gw-1", "r1", seq, r->state);
        }
        struct ferry_record_id stored[RACE_NODES];
        struct ferry_record_refusal refused[RACE_NODES];
        struct cloud_ingest_out out = {.stored = stored, .refused = refused};
        enum ferry_err err;
        while ((err = cloud_inventory_ingest(inv, recs, RACE_NODES, true, &out, &d)) ==
               FERRY_E_BUSY)
            r->retries++;
        if (err != FERRY_OK) {
            r->errors++;
            snprintf(r->error, sizeof(r->error), "%s", d.msg);
            break;
        }
        r->stored += (unsigned)out.nstored;
        for (size_t k = 0; k < out.nrefused; k++) {
            if (refused[k].reason == FERRY_E_CONFLICT)
                r->refused_conflict++;
            else
                r->refused_other++;
        }
    }
    cloud_inventory_close(inv);
    return NULL;
}

static void two_writers_at_once_store_each_record_once(void)
{
    const char *path = db_path("race");
    cloud_inventory_close(open_db(path)); /* the schema, made once */
    pthread_barrier_t start;
    CU_ASSERT_EQUAL_FATAL(pthread_barrier_init(&start, NULL, 2), 0);
    struct racer a = {.target = path, .start = &start, .state = FERRY_STATE_DOWNLOADING};
    struct racer b = {.target = path, .start = &start, .state = FERRY_STATE_INSTALLING};
    pthread_t ta, tb;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&ta, NULL, race, &a), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&tb, NULL, race, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&start);
    if (a.errors || b.errors)
        fprintf(stderr, "race: %s / %s\n", a.error, b.error);
    CU_ASSERT_EQUAL(a.errors + b.errors, 0);
    const unsigned total = RACE_NODES * RACE_BATCHES;
    CU_ASSERT_EQUAL(a.stored + b.stored, total);
    CU_ASSERT_EQUAL(a.refused_conflict + b.refused_conflict, total);
    CU_ASSERT_EQUAL(a.refused_other + b.refused_other, 0);
    printf("\n    race: stored %u + %u, retried %u + %u\n", a.stored, b.stored, a.retries,
           b.retries);
    CU_ASSERT_EQUAL(scalar(path, "SELECT count(*) FROM records"), total);
    CU_ASSERT_EQUAL(scalar(path, "SELECT count(*) FROM refused WHERE reason = 'conflict'"), total);
    CU_ASSERT_EQUAL(scalar(path, "SELECT count(*) FROM nodes WHERE seq = 60"), RACE_NODES);
    CU_ASSERT_EQUAL(scalar(path, "SELECT count(*) FROM bindings"), RACE_NODES);
}

const char *const ferry_suite_name = "cloud_inventory";
/* A record through a cascade: node n1 under gw-c, whose parent is gw-b,
 * whose parent is gw-a (which published it). Every hop is bound to the
 * next on first use; the path is kept with the record; a record of the
 * same node by another parent, or of the child through another parent,
 * is refused. */
/* A gateway's record of its own update names it as node and gateway: one
 * hop, not a gateway bound to itself, so a child gateway's own records and
 * its nodes' agree on its one parent. */
static void a_gateways_own_record_binds_it_to_its_parent(void)
{
    const char *db = db_path("selfrec");
    struct cloud_inventory *inv = open_db(db);
    struct ferry_status node = rec("n1", "gw-b", "r1", 1, FERRY_STATE_DOWNLOADING);
    snprintf(node.via[0], sizeof(node.via[0]), "gw-a");
    node.nvia = 1;
    CU_ASSERT_EQUAL(ingest_ok(inv, &node, 1).out.nstored, 1);
    struct ferry_status own = rec("gw-b", "gw-b", "gw-fw-2", 1, FERRY_STATE_INSTALLING);
    snprintf(own.via[0], sizeof(own.via[0]), "gw-a");
    own.nvia = 1;
    CU_ASSERT_EQUAL(ingest_ok(inv, &own, 1).out.nstored, 1);
    CU_ASSERT_EQUAL(scalar(db, "SELECT count(*) FROM bindings WHERE child = 'gw-b' AND "
                               "parent = 'gw-a'"),
                    1);
    CU_ASSERT_EQUAL(scalar(db, "SELECT count(*) FROM bindings WHERE child = parent"), 0);
    /* The top gateway's own record: no binding at all. */
    struct ferry_status top = rec("gw-a", "gw-a", "gw-fw-2", 1, FERRY_STATE_SUCCESS);
    CU_ASSERT_EQUAL(ingest_ok(inv, &top, 1).out.nstored, 1);
    CU_ASSERT_EQUAL(scalar(db, "SELECT count(*) FROM bindings WHERE child = 'gw-a'"), 0);
    cloud_inventory_close(inv);
}

static void a_cascade_binds_every_hop_and_keeps_the_path(void)
{
    struct cloud_inventory *inv = open_db(db_path("cascade"));
    struct ferry_status st = rec("n1", "gw-c", "r1", 1, FERRY_STATE_DOWNLOADING);
    snprintf(st.via[0], sizeof(st.via[0]), "gw-b");
    snprintf(st.via[1], sizeof(st.via[1]), "gw-a");
    st.nvia = 2;
    CU_ASSERT_EQUAL(ingest_ok(inv, &st, 1).out.nstored, 1);
    struct listing l = list(inv, NULL);
    CU_ASSERT_EQUAL_FATAL(l.n, 1);
    CU_ASSERT_STRING_EQUAL(l.last.st.gateway, "gw-c");
    CU_ASSERT_EQUAL_FATAL(l.last.st.nvia, 2);
    CU_ASSERT_STRING_EQUAL(l.last.st.via[0], "gw-b");
    CU_ASSERT_STRING_EQUAL(l.last.st.via[1], "gw-a");
    CU_ASSERT_EQUAL(scalar(db_path("cascade"), "SELECT count(*) FROM bindings"), 3);
    CU_ASSERT_EQUAL(scalar(db_path("cascade"),
                           "SELECT count(*) FROM records WHERE node = 'n1' AND via = 'gw-b,gw-a'"),
                    1);
    /* gw-c's records must come through gw-b: not through gw-x. */
    struct ferry_status other = rec("n1", "gw-c", "r1", 2, FERRY_STATE_VERIFYING);
    snprintf(other.via[0], sizeof(other.via[0]), "gw-x");
    other.nvia = 1;
    expect_refused((struct outcome[]){ingest_ok(inv, &other, 1)}, FERRY_E_WRONG_GATEWAY);
    /* Nor may the parent speak for the node directly. */
    struct ferry_status direct = rec("n1", "gw-b", "r1", 2, FERRY_STATE_VERIFYING);
    expect_refused((struct outcome[]){ingest_ok(inv, &direct, 1)}, FERRY_E_WRONG_GATEWAY);
    /* The same record again, by whatever path, is a duplicate. */
    struct ferry_status again = st;
    CU_ASSERT_EQUAL(ingest_ok(inv, &again, 1).out.nstored, 1);
    struct ferry_status next = rec("n1", "gw-c", "r1", 2, FERRY_STATE_SUCCESS);
    memcpy(next.via, st.via, sizeof(st.via));
    next.nvia = 2;
    CU_ASSERT_EQUAL(ingest_ok(inv, &next, 1).out.nstored, 1);
    CU_ASSERT_STRING_EQUAL(list(inv, NULL).text, "n1:2:success");
    cloud_inventory_close(inv);
}

const struct ferry_test_case ferry_tests[] = {
    {"duplicate records are stored once", duplicate_records_are_stored_once},
    {"node row follows seq, not arrival order", node_row_follows_seq_not_arrival_order},
    {"every field survives; updated_at is the cloud's",
     every_field_survives_and_updated_at_is_the_clouds},
    {"filters select by release, gateway and state", filters_select_by_release_gateway_and_state},
    {"ingest returns each stored id once, in order", ingest_returns_each_stored_id_once_in_order},
    {"a bad record stores nothing of its batch", a_bad_record_stores_nothing_of_its_batch},
    {"data survives close and reopen", data_survives_close_and_reopen},
    {"open refuses missing and foreign files", open_refuses_missing_and_foreign_files},
    {"the file is in WAL mode", file_is_in_wal_mode},
    {"a callback error stops the walk", callback_error_stops_the_walk},
    {"a seq far ahead is refused and hides nothing", seq_far_ahead_is_refused_and_hides_nothing},
    {"nodes are bound to their gateway and moved by the operator",
     nodes_are_bound_to_their_gateway_and_moved_by_the_operator},
    {"refused records are listed and bounded", refused_records_are_listed_and_bounded},
    {"a version 1 inventory is upgraded", version_1_inventory_is_upgraded},
    {"a pair is never both stored and refused", a_pair_is_never_both_stored_and_refused},
    {"a cascade binds every hop and keeps the path", a_cascade_binds_every_hop_and_keeps_the_path},
    {"a gateway's own record binds it to its parent", a_gateways_own_record_binds_it_to_its_parent},
    {"two writers at once store each record once", two_writers_at_once_store_each_record_once},
    {NULL, NULL},
};
