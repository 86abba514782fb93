/* cloud_db's SQLite driver: one file, WAL, synchronous=FULL, a busy timeout
 * for writers of other processes, every query prepared once and kept. The
 * SQL is in cloud_sql_sqlite.c. */
#include "cloud_db_driver.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* How long a writer waits for another process's transaction. */
#define BUSY_TIMEOUT_MS 5000
/* How long a reader waits (WAL readers wait only while a checkpoint resets
 * the log, or for a file being made). */
#define READ_BUSY_TIMEOUT_MS 2000

struct lite {
    sqlite3 *db;
    sqlite3_stmt *st[CLOUD_Q__COUNT];
};

static struct lite *L(const struct cloud_db *db)
{
    return db->impl;
}

enum ferry_err cloud_db_sqlite_err(int rc)
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

static enum ferry_err fail(const struct cloud_db *db, int rc, const char *doing,
                           struct ferry_diag *d)
{
    const struct lite *l = L(db);
    return cloud_db_fail(db, cloud_db_sqlite_err(rc), doing,
                         l && l->db ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc), d);
}

static enum ferry_err exec(struct cloud_db *db, const char *sql, const char *doing,
                           struct ferry_diag *d)
{
    int rc = sqlite3_exec(L(db)->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? FERRY_OK : fail(db, rc, doing, d);
}

/* One integer from a one-row statement. */
static enum ferry_err scalar(struct cloud_db *db, const char *sql, int64_t *out, bool *found,
                             struct ferry_diag *d)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(L(db)->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? FERRY_OK : fail(db, rc, sql, d);
}

/* Creates the schema in an empty file, upgrades a version 1 file, checks
 * that the file holds this version, then makes the rollout tables where
 * missing. */
static enum ferry_err check_schema(struct cloud_db *db, bool create, struct ferry_diag *d)
{
    int64_t version = 0, parts = 0;
    bool found = false;
    enum ferry_err err = exec(db, "BEGIN IMMEDIATE", "locking for the schema check", d);
    if (err == FERRY_OK)
        err = scalar(db, "PRAGMA user_version", &version, &found, d);
    if (err == FERRY_OK && version == 0 && create) {
        err = exec(db, cloud_sql_sqlite_schema_v1, "creating the schema", d);
        version = 1;
    } else if (err == FERRY_OK && version == 0) {
        err = ferry_fail(d, FERRY_E_CORRUPT, "inventory %s: not a Ferry inventory (no schema)",
                         db->name);
    }
    if (err == FERRY_OK && version == 1) {
        err = exec(db, cloud_sql_sqlite_schema_v2, "upgrading the schema to version 2", d);
        version = 2;
    }
    if (err == FERRY_OK && version == 2) {
        err = exec(db, cloud_sql_sqlite_schema_v3, "upgrading the schema to version 3", d);
        version = 3;
    }
    if (err == FERRY_OK && version != CLOUD_SQLITE_SCHEMA_VERSION)
        err = ferry_fail(d, FERRY_E_CORRUPT,
                         "inventory %s: schema version %lld, this Ferry reads version %d", db->name,
                         (long long)version, CLOUD_SQLITE_SCHEMA_VERSION);
    if (err == FERRY_OK)
        err = exec(db, cloud_sql_sqlite_parts, "creating the rollout tables", d);
    if (err == FERRY_OK)
        err = scalar(db, "SELECT version FROM inventory_parts WHERE part = 'rollouts'", &parts,
                     &found, d);
    if (err == FERRY_OK && (!found || parts != CLOUD_SCHEMA_ROLLOUTS))
        err = ferry_fail(d, FERRY_E_CORRUPT,
                         "inventory %s: rollout tables of version %lld, this Ferry reads %d",
                         db->name, (long long)parts, CLOUD_SCHEMA_ROLLOUTS);
    if (err == FERRY_OK)
        return exec(db, "COMMIT", "committing the schema", d);
    sqlite3_exec(L(db)->db, "ROLLBACK", NULL, NULL, NULL);
    return err;
}

/* A read-only connection's check: the schema is this Ferry's, node_counts
 * and group_counts included (the console's figures read it); nothing is made or upgraded. */
static enum ferry_err check_schema_read(struct cloud_db *db, struct ferry_diag *d)
{
    static const struct {
        const char *sql, *what;
        int64_t want;
    } checks[] = {
        {"PRAGMA user_version", "schema version", CLOUD_SQLITE_SCHEMA_VERSION},
        {"SELECT version FROM inventory_parts WHERE part = 'rollouts'", "rollout tables of version",
         CLOUD_SCHEMA_ROLLOUTS},
        {"SELECT version FROM inventory_parts WHERE part = 'node_counts'", "node counts of version",
         CLOUD_SQLITE_NODE_COUNTS},
        {"SELECT version FROM inventory_parts WHERE part = 'group_counts'",
         "gateway and release counts of version", CLOUD_SCHEMA_GROUP_COUNTS},
    };
    enum ferry_err err = FERRY_OK;
    for (size_t i = 0; err == FERRY_OK && i < sizeof(checks) / sizeof(checks[0]); i++) {
        int64_t v = -1;
        bool found = false;
        err = scalar(db, checks[i].sql, &v, &found, d);
        if (err == FERRY_OK && v != checks[i].want)
            err = ferry_fail(d, FERRY_E_CORRUPT, "inventory %s: %s %lld, this Ferry reads %lld",
                             db->name, checks[i].what, (long long)v, (long long)checks[i].want);
    }
    return err;
}

static enum ferry_err lite_open(struct cloud_db *db, const char *path, bool create,
                                struct ferry_diag *d)
{
    struct stat st;
    if (!(db->name = strdup(path)))
        return ferry_fail(d, FERRY_E_NOMEM, "inventory: out of memory");
    if (!create && stat(path, &st) != 0)
        return ferry_fail(d, FERRY_E_NOT_FOUND, "inventory %s: no such file", path);
    struct lite *l = calloc(1, sizeof(*l));
    if (!l)
        return ferry_fail(d, FERRY_E_NOMEM, "inventory %s: out of memory", path);
    db->impl = l;
    int flags = db->read_only ? SQLITE_OPEN_READONLY
                              : SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path, &l->db, flags, NULL);
    if (rc != SQLITE_OK)
        return fail(db, rc, "open", d);
    sqlite3_extended_result_codes(l->db, 1);
    sqlite3_busy_timeout(l->db, db->read_only ? READ_BUSY_TIMEOUT_MS : BUSY_TIMEOUT_MS);
    if (db->read_only) {
        /* LIKE as PostgreSQL has it: "Canary" is not "canary". */
        enum ferry_err err =
            exec(db, "PRAGMA case_sensitive_like = ON", "setting case-sensitive LIKE", d);
        return err == FERRY_OK ? check_schema_read(db, d) : err;
    }
    /* WAL lets `status` read while `serve` writes; FULL makes each commit
     * reach the disk before it returns. */
    sqlite3_stmt *s = NULL;
    rc = sqlite3_prepare_v2(l->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    bool wal = rc == SQLITE_ROW && sqlite3_column_text(s, 0) &&
               strcmp((const char *)sqlite3_column_text(s, 0), "wal") == 0;
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW)
        return fail(db, rc, "PRAGMA journal_mode = WAL", d);
    if (!wal)
        return ferry_fail(d, FERRY_E_IO, "inventory %s: the file would not take WAL mode", path);
    enum ferry_err err = exec(db, "PRAGMA synchronous = FULL", "setting synchronous", d);
    if (err == FERRY_OK)
        err = check_schema(db, create, d);
    return err;
}

static void lite_close(struct cloud_db *db)
{
    struct lite *l = L(db);
    if (!l)
        return;
    for (size_t i = 0; i < CLOUD_Q__COUNT; i++)
        sqlite3_finalize(l->st[i]);
    sqlite3_close(l->db);
    free(l);
}

/* Every write transaction takes the file's write lock at once (IMMEDIATE),
 * so a concurrent writer makes it wait (busy timeout) instead of failing
 * halfway: on SQLite both kinds exclude every other writer. */
static enum ferry_err lite_begin(struct cloud_db *db, enum cloud_db_txn kind, struct ferry_diag *d)
{
    /* A reader's snapshot starts at its first read and never takes the lock. */
    return exec(db, kind == CLOUD_DB_READ ? "BEGIN" : "BEGIN IMMEDIATE", "starting a transaction",
                d);
}

static enum ferry_err lite_commit(struct cloud_db *db, struct ferry_diag *d)
{
    return exec(db, "COMMIT", "committing", d);
}

static void lite_rollback(struct cloud_db *db)
{
    sqlite3_exec(L(db)->db, "ROLLBACK", NULL, NULL, NULL);
}

static int bind(sqlite3_stmt *st, const struct cloud_db_arg *args, size_t nargs)
{
    int rc = sqlite3_reset(st);
    if (rc == SQLITE_OK)
        rc = sqlite3_clear_bindings(st);
    for (size_t i = 0; i < nargs && rc == SQLITE_OK; i++) {
        int at = (int)i + 1;
        const struct cloud_db_arg *a = &args[i];
        switch (a->type) {
        case CLOUD_DB_NULL:
            rc = sqlite3_bind_null(st, at);
            break;
        case CLOUD_DB_INT:
            rc = sqlite3_bind_int64(st, at, a->i);
            break;
        case CLOUD_DB_TEXT:
            rc = sqlite3_bind_text(st, at, a->p, -1, SQLITE_STATIC);
            break;
        case CLOUD_DB_BLOB:
            rc = sqlite3_bind_blob64(st, at, a->len ? a->p : "", a->len, SQLITE_STATIC);
            break;
        }
    }
    return rc;
}

static enum ferry_err lite_run(struct cloud_db *db, enum cloud_q q, unsigned flags,
                               const struct cloud_db_arg *args, size_t nargs, cloud_db_row_cb cb,
                               void *arg, uint64_t *changed, const char *doing,
                               struct ferry_diag *d)
{
    (void)flags;
    struct lite *l = L(db);
    const char *sql = cloud_sql_sqlite[q];
    if (!sql)
        return FERRY_OK;
    /* The kept statement, unless a callback higher up is still reading it:
     * then one of its own for this call. */
    sqlite3_stmt *st = l->st[q], *own = NULL;
    int rc = SQLITE_OK;
    if (!st) {
        rc = sqlite3_prepare_v3(l->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &l->st[q], NULL);
        st = l->st[q];
    } else if (sqlite3_stmt_busy(st)) {
        rc = sqlite3_prepare_v2(l->db, sql, -1, &own, NULL);
        st = own;
    }
    if (rc != SQLITE_OK)
        return fail(db, rc, doing, d);
    rc = bind(st, args, nargs);
    enum ferry_err err = FERRY_OK;
    struct cloud_db_row row = {db, st, 0};
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        if (cb && (err = cb(arg, &row)) != FERRY_OK)
            break;
        row.index++;
    }
    if (err == FERRY_OK && rc != SQLITE_DONE)
        err = fail(db, rc, doing, d);
    if (err == FERRY_OK && changed && !sqlite3_stmt_readonly(st))
        *changed = (uint64_t)sqlite3_changes64(l->db);
    if (own)
        sqlite3_finalize(own);
    else
        sqlite3_reset(st);
    return err;
}

static sqlite3_stmt *S(const struct cloud_db_row *r)
{
    return r->impl;
}

static int lite_ncols(const struct cloud_db_row *r)
{
    return sqlite3_column_count(S(r));
}

static bool lite_null(const struct cloud_db_row *r, int col)
{
    return sqlite3_column_type(S(r), col) == SQLITE_NULL;
}

static bool lite_int(const struct cloud_db_row *r, int col, int64_t *out)
{
    if (sqlite3_column_type(S(r), col) != SQLITE_INTEGER)
        return false;
    *out = sqlite3_column_int64(S(r), col);
    return true;
}

static bool lite_text(const struct cloud_db_row *r, int col, const char **s, size_t *len)
{
    if (sqlite3_column_type(S(r), col) == SQLITE_NULL)
        return false;
    const unsigned char *t = sqlite3_column_text(S(r), col);
    int n = sqlite3_column_bytes(S(r), col);
    if (!t || n < 0)
        return false;
    *s = (const char *)t;
    *len = (size_t)n;
    return true;
}

static bool lite_blob(const struct cloud_db_row *r, int col, const uint8_t **p, size_t *len)
{
    if (sqlite3_column_type(S(r), col) == SQLITE_NULL)
        return false;
    const void *b = sqlite3_column_blob(S(r), col);
    int n = sqlite3_column_bytes(S(r), col);
    if (n < 0)
        return false;
    *p = b ? b : (const uint8_t *)"";
    *len = (size_t)n;
    return true;
}

const struct cloud_db_ops cloud_db_sqlite_ops = {
    .open = lite_open,
    .close = lite_close,
    .begin = lite_begin,
    .commit = lite_commit,
    .rollback = lite_rollback,
    .run = lite_run,
    .ncols = lite_ncols,
    .null = lite_null,
    .get_int = lite_int,
    .get_text = lite_text,
    .get_blob = lite_blob,
};
