#include "cloud_inventory.h"

#include "cloud_inventory_priv.h"
#include "ferry_names.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define SCHEMA_VERSION 1
/* How long a writer waits for another process's transaction. */
#define BUSY_TIMEOUT_MS 5000
#define INT_MAX53       (INT64_C(1) << 53)

static const char schema_sql[] =
    "CREATE TABLE records ("
    " node TEXT NOT NULL, seq INTEGER NOT NULL, gateway TEXT NOT NULL, release TEXT NOT NULL,"
    " version TEXT NOT NULL, state TEXT NOT NULL, bytes INTEGER NOT NULL,"
    " total INTEGER NOT NULL, error TEXT NOT NULL, message TEXT NOT NULL, ts INTEGER NOT NULL,"
    " received_at INTEGER NOT NULL, PRIMARY KEY (node, seq)) WITHOUT ROWID;"
    "CREATE TABLE nodes ("
    " node TEXT PRIMARY KEY NOT NULL, gateway TEXT NOT NULL, release TEXT NOT NULL,"
    " version TEXT NOT NULL, state TEXT NOT NULL, bytes INTEGER NOT NULL,"
    " total INTEGER NOT NULL, error TEXT NOT NULL, message TEXT NOT NULL,"
    " seq INTEGER NOT NULL, ts INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE INDEX nodes_release ON nodes (release);"
    "CREATE INDEX nodes_gateway ON nodes (gateway);"
    "PRAGMA user_version = 1;";

/* Parameters ?1..?12 in the same order for both statements. */
static const char insert_record_sql[] =
    "INSERT OR IGNORE INTO records (node, seq, gateway, release, version, state, bytes, total,"
    " error, message, ts, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

static const char upsert_node_sql[] =
    "INSERT INTO nodes (node, seq, gateway, release, version, state, bytes, total, error,"
    " message, ts, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
    " ON CONFLICT (node) DO UPDATE SET seq = excluded.seq, gateway = excluded.gateway,"
    " release = excluded.release, version = excluded.version, state = excluded.state,"
    " bytes = excluded.bytes, total = excluded.total, error = excluded.error,"
    " message = excluded.message, ts = excluded.ts, updated_at = excluded.updated_at"
    " WHERE excluded.seq > nodes.seq";

static const char select_nodes_sql[] =
    "SELECT node, gateway, release, version, state, bytes, total, error, message, seq, ts,"
    " updated_at FROM nodes WHERE (?1 IS NULL OR release = ?1) AND (?2 IS NULL OR gateway = ?2)"
    " AND (?3 IS NULL OR state = ?3) ORDER BY node";

struct cloud_inventory {
    char *path;
    sqlite3 *db;
    sqlite3_stmt *insert_record;
    sqlite3_stmt *upsert_node;
    sqlite3_stmt *select_nodes;
};

static enum ferry_err sqlite_err(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL:
        return FERRY_E_NOSPACE;
    case SQLITE_NOMEM:
        return FERRY_E_NOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return FERRY_E_BUSY;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return FERRY_E_CORRUPT;
    case SQLITE_CANTOPEN:
        return FERRY_E_NOT_FOUND;
    default:
        return FERRY_E_IO;
    }
}

/* "inventory <path>: <doing>: <SQLite's reason>" */
static enum ferry_err db_fail(const struct cloud_inventory *inv, int rc, const char *doing,
                              struct ferry_diag *d)
{
    return ferry_fail(d, sqlite_err(rc), "inventory %s: %s: %s", inv->path, doing,
                      inv->db ? sqlite3_errmsg(inv->db) : sqlite3_errstr(rc));
}

static enum ferry_err exec(struct cloud_inventory *inv, const char *sql, const char *doing,
                           struct ferry_diag *d)
{
    int rc = sqlite3_exec(inv->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? FERRY_OK : db_fail(inv, rc, doing, d);
}

/* A pragma whose one-row answer says whether it took effect. */
static enum ferry_err pragma_text(struct cloud_inventory *inv, const char *sql, const char *want,
                                  struct ferry_diag *d)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(inv->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    enum ferry_err err = FERRY_OK;
    if (rc != SQLITE_ROW)
        err = db_fail(inv, rc, sql, d);
    else if (want && strcmp((const char *)sqlite3_column_text(st, 0), want) != 0)
        err = ferry_fail(d, FERRY_E_IO, "inventory %s: %s gave '%s', expected '%s'", inv->path, sql,
                         (const char *)sqlite3_column_text(st, 0), want);
    sqlite3_finalize(st);
    return err;
}

static enum ferry_err user_version(struct cloud_inventory *inv, int *out, struct ferry_diag *d)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(inv->db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    enum ferry_err err = FERRY_OK;
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int(st, 0);
    else
        err = db_fail(inv, rc, "reading the schema version", d);
    sqlite3_finalize(st);
    return err;
}

/* Creates the schema in an empty file, or checks that the file holds it. */
static enum ferry_err check_schema(struct cloud_inventory *inv, bool create, struct ferry_diag *d)
{
    int version = 0;
    enum ferry_err err = exec(inv, "BEGIN IMMEDIATE", "locking for the schema check", d);
    if (err == FERRY_OK)
        err = user_version(inv, &version, d);
    if (err == FERRY_OK && version == 0 && create)
        err = exec(inv, schema_sql, "creating the schema", d);
    else if (err == FERRY_OK && version == 0)
        err = ferry_fail(d, FERRY_E_CORRUPT, "inventory %s: not a Ferry inventory (no schema)",
                         inv->path);
    else if (err == FERRY_OK && version != SCHEMA_VERSION)
        err = ferry_fail(d, FERRY_E_CORRUPT,
                         "inventory %s: schema version %d, this Ferry reads version %d", inv->path,
                         version, SCHEMA_VERSION);
    if (err == FERRY_OK)
        return exec(inv, "COMMIT", "committing the schema", d);
    sqlite3_exec(inv->db, "ROLLBACK", NULL, NULL, NULL);
    return err;
}

static enum ferry_err prepare(struct cloud_inventory *inv, const char *sql, sqlite3_stmt **st,
                              struct ferry_diag *d)
{
    int rc = sqlite3_prepare_v3(inv->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    return rc == SQLITE_OK ? FERRY_OK : db_fail(inv, rc, "preparing a statement", d);
}

static enum ferry_err configure(struct cloud_inventory *inv, bool create, struct ferry_diag *d)
{
    sqlite3_extended_result_codes(inv->db, 1);
    sqlite3_busy_timeout(inv->db, BUSY_TIMEOUT_MS);
    /* WAL lets `status` read while `serve` writes; FULL makes each commit
     * reach the disk before ingest returns. */
    enum ferry_err err = pragma_text(inv, "PRAGMA journal_mode = WAL", "wal", d);
    if (err == FERRY_OK)
        err = exec(inv, "PRAGMA synchronous = FULL", "setting synchronous", d);
    if (err == FERRY_OK)
        err = check_schema(inv, create, d);
    if (err == FERRY_OK)
        err = cloud_inventory_rollout_schema(inv, d);
    if (err == FERRY_OK)
        err = prepare(inv, insert_record_sql, &inv->insert_record, d);
    if (err == FERRY_OK)
        err = prepare(inv, upsert_node_sql, &inv->upsert_node, d);
    if (err == FERRY_OK)
        err = prepare(inv, select_nodes_sql, &inv->select_nodes, d);
    return err;
}

enum ferry_err cloud_inventory_open(const char *path, bool create, struct cloud_inventory **out,
                                    struct ferry_diag *d)
{
    struct stat st;
    if (!create && stat(path, &st) != 0)
        return ferry_fail(d, FERRY_E_NOT_FOUND, "inventory %s: no such file", path);
    struct cloud_inventory *inv = calloc(1, sizeof(*inv));
    if (!inv || !(inv->path = strdup(path))) {
        free(inv);
        return ferry_fail(d, FERRY_E_NOMEM, "inventory %s: out of memory", path);
    }
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path, &inv->db, flags, NULL);
    enum ferry_err err = rc == SQLITE_OK ? configure(inv, create, d) : db_fail(inv, rc, "open", d);
    if (err != FERRY_OK) {
        cloud_inventory_close(inv);
        return err;
    }
    *out = inv;
    return FERRY_OK;
}

void cloud_inventory_close(struct cloud_inventory *inv)
{
    if (!inv)
        return;
    sqlite3_finalize(inv->insert_record);
    sqlite3_finalize(inv->upsert_node);
    sqlite3_finalize(inv->select_nodes);
    sqlite3_close(inv->db); /* NULL is fine; all statements are finalised */
    free(inv->path);
    free(inv);
}

/* ---- for the rollout tables (cloud_inventory_priv.h) ---------------------- */

sqlite3 *cloud_inventory_sqlite(struct cloud_inventory *inv)
{
    return inv->db;
}

enum ferry_err cloud_inventory_fail(const struct cloud_inventory *inv, int rc, const char *doing,
                                    struct ferry_diag *d)
{
    return db_fail(inv, rc, doing, d);
}

/* ---- ingest -------------------------------------------------------------- */

/* A caller-filled record need not hold its NULs. */
#define FIELD_FITS(st, f) (strnlen((st)->f, sizeof((st)->f)) < sizeof((st)->f))

static enum ferry_err check_record(const struct ferry_status *st, size_t i, struct ferry_diag *d)
{
    if (!FIELD_FITS(st, node) || !ferry_id_valid(st->node))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "inventory: record %zu: invalid node id", i);
    if (!FIELD_FITS(st, gateway) || (st->gateway[0] && !ferry_id_valid(st->gateway)))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "inventory: record %zu (node %s): invalid gateway", i, st->node);
    if (!FIELD_FITS(st, release_id) || !FIELD_FITS(st, version) || !FIELD_FITS(st, message))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "inventory: record %zu (node %s): unterminated text field", i, st->node);
    if (st->seq < 1 || st->seq > (uint64_t)INT_MAX53 || st->bytes > (uint64_t)INT_MAX53 ||
        st->total > (uint64_t)INT_MAX53)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "inventory: record %zu (node %s): seq, bytes or total out of range", i,
                          st->node);
    if ((unsigned)st->state >= FERRY_STATE__COUNT || (unsigned)st->error >= FERRY_E__COUNT)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "inventory: record %zu (node %s): unknown state or error", i, st->node);
    return FERRY_OK;
}

static int bind_record(sqlite3_stmt *s, const struct ferry_status *st, int64_t now)
{
    const char *error = st->error == FERRY_OK ? "" : ferry_err_name(st->error);
    int rc = sqlite3_reset(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 1, st->node, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 2, (sqlite3_int64)st->seq);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 3, st->gateway, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 4, st->release_id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 5, st->version, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 6, ferry_state_name(st->state), -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 7, (sqlite3_int64)st->bytes);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 8, (sqlite3_int64)st->total);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 9, error, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 10, st->message, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 11, st->ts);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 12, now);
    return rc;
}

static enum ferry_err run_record(struct cloud_inventory *inv, sqlite3_stmt *s,
                                 const struct ferry_status *st, int64_t now, struct ferry_diag *d)
{
    int rc = bind_record(s, st, now);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return db_fail(inv, rc, "storing a record", d);
    return FERRY_OK;
}

/* (node, seq) pairs once each, in first-seen order. */
static void list_ids(const struct ferry_status *recs, size_t n, struct ferry_record_id *out,
                     size_t *nout)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < k && !seen; j++)
            seen = out[j].seq == recs[i].seq && strcmp(out[j].node, recs[i].node) == 0;
        if (seen)
            continue;
        memcpy(out[k].node, recs[i].node, sizeof(out[k].node));
        out[k].seq = recs[i].seq;
        k++;
    }
    *nout = k;
}

enum ferry_err cloud_inventory_ingest(struct cloud_inventory *inv, const struct ferry_status *recs,
                                      size_t n, struct ferry_record_id *stored, size_t *nstored,
                                      struct ferry_diag *d)
{
    if (n == 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "inventory: no records to store");
    for (size_t i = 0; i < n; i++) {
        enum ferry_err err = check_record(&recs[i], i, d);
        if (err != FERRY_OK)
            return err;
    }
    const int64_t now = (int64_t)time(NULL);
    /* IMMEDIATE takes the write lock now, so a concurrent writer makes this
     * wait (busy timeout) instead of failing halfway through. */
    enum ferry_err err = exec(inv, "BEGIN IMMEDIATE", "starting a transaction", d);
    if (err != FERRY_OK)
        return err;
    for (size_t i = 0; i < n && err == FERRY_OK; i++) {
        err = run_record(inv, inv->insert_record, &recs[i], now, d);
        if (err == FERRY_OK)
            err = run_record(inv, inv->upsert_node, &recs[i], now, d);
    }
    if (err == FERRY_OK)
        err = exec(inv, "COMMIT", "committing", d);
    if (err != FERRY_OK) {
        sqlite3_exec(inv->db, "ROLLBACK", NULL, NULL, NULL);
        return err;
    }
    list_ids(recs, n, stored, nstored);
    return FERRY_OK;
}

/* ---- query --------------------------------------------------------------- */

/* Copies a text column into a fixed field; false if it does not fit. */
static bool column_text(sqlite3_stmt *s, int col, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    int len = sqlite3_column_bytes(s, col);
    if (!t || len < 0 || (size_t)len >= cap || memchr(t, 0, (size_t)len))
        return false;
    memcpy(out, t, (size_t)len);
    out[len] = 0;
    return true;
}

static bool column_count(sqlite3_stmt *s, int col, uint64_t *out)
{
    sqlite3_int64 v = sqlite3_column_int64(s, col);
    if (sqlite3_column_type(s, col) != SQLITE_INTEGER || v < 0 || v > INT_MAX53)
        return false;
    *out = (uint64_t)v;
    return true;
}

static bool column_names(sqlite3_stmt *s, struct ferry_status *st)
{
    char state[32], error[32];
    if (!column_text(s, 4, state, sizeof(state)) || !column_text(s, 7, error, sizeof(error)))
        return false;
    if (ferry_state_from_name(state, &st->state) != FERRY_OK)
        return false;
    st->error = FERRY_OK;
    return !error[0] || (ferry_err_from_name(error, &st->error) == FERRY_OK);
}

enum ferry_err cloud_inventory_read_node(const struct cloud_inventory *inv, sqlite3_stmt *s,
                                         struct ferry_inventory_row *row, struct ferry_diag *d)
{
    struct ferry_status *st = &row->st;
    memset(row, 0, sizeof(*row));
    bool ok = column_text(s, 0, st->node, sizeof(st->node)) && ferry_id_valid(st->node);
    if (!ok)
        return ferry_fail(d, FERRY_E_CORRUPT, "inventory %s: a node row has an invalid node id",
                          inv->path);
    ok = column_text(s, 1, st->gateway, sizeof(st->gateway)) &&
         column_text(s, 2, st->release_id, sizeof(st->release_id)) &&
         column_text(s, 3, st->version, sizeof(st->version)) && column_names(s, st) &&
         column_count(s, 5, &st->bytes) && column_count(s, 6, &st->total) &&
         column_text(s, 8, st->message, sizeof(st->message)) && column_count(s, 9, &st->seq) &&
         sqlite3_column_type(s, 10) == SQLITE_INTEGER &&
         sqlite3_column_type(s, 11) == SQLITE_INTEGER;
    if (!ok)
        return ferry_fail(d, FERRY_E_CORRUPT,
                          "inventory %s: the row of node '%s' holds a value ingestion never writes",
                          inv->path, st->node);
    st->ts = sqlite3_column_int64(s, 10);
    row->updated_at = sqlite3_column_int64(s, 11);
    return FERRY_OK;
}

static int bind_filter(sqlite3_stmt *s, const struct cloud_inventory_filter *f)
{
    int rc = sqlite3_reset(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_clear_bindings(s);
    if (rc == SQLITE_OK && f && f->release)
        rc = sqlite3_bind_text(s, 1, f->release, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && f && f->gateway)
        rc = sqlite3_bind_text(s, 2, f->gateway, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && f && f->state)
        rc = sqlite3_bind_text(s, 3, ferry_state_name(*f->state), -1, SQLITE_STATIC);
    return rc;
}

enum ferry_err cloud_inventory_each_node(struct cloud_inventory *inv,
                                         const struct cloud_inventory_filter *filter,
                                         cloud_inventory_row_cb cb, void *arg, struct ferry_diag *d)
{
    sqlite3_stmt *s = inv->select_nodes;
    int rc = bind_filter(s, filter);
    if (rc != SQLITE_OK)
        return db_fail(inv, rc, "querying nodes", d);
    struct ferry_inventory_row row;
    enum ferry_err err = FERRY_OK;
    while (err == FERRY_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        err = cloud_inventory_read_node(inv, s, &row, d);
        if (err == FERRY_OK)
            err = cb(arg, &row);
    }
    if (err == FERRY_OK && rc != SQLITE_DONE)
        err = db_fail(inv, rc, "querying nodes", d);
    sqlite3_reset(s);
    return err;
}
