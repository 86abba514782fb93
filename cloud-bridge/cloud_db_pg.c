/* cloud_db's PostgreSQL driver, on libpq. The SQL is in cloud_sql_pg.c.
 *
 * Every query is prepared once per connection (named "fq<n>") and run with
 * text results; integers go as text, texts as they are, blobs in binary. A
 * query marked CLOUD_DB_WALK is read through a cursor, CURSOR_BATCH rows at
 * a time, inside the caller's transaction or, outside one, a transaction of
 * its own (a cursor needs one; it also gives the walk one snapshot).
 *
 * Transactions: CLOUD_DB_WRITE takes a shared advisory lock on FLEET_LOCK,
 * CLOUD_DB_EXCLUSIVE that lock exclusively (cloud_db.h says why), both
 * held until the transaction ends. Both are READ COMMITTED whatever the
 * server's default_transaction_isolation: each statement after the lock
 * then sees what the previous holder committed. Under repeatable read (a
 * managed server's setting, say) the snapshot would be taken before the
 * lock is granted: a decision made after waiting would read the state from
 * before the previous one and fail on a serialization error at best
 * (tests/unit/test_cloud_rollout.c, decisions released at once). The key is one of the 64-bit
 * advisory key space, as are the per-node locks (hashtextextended(node)): a node id whose hash
 * equals it would only make a batch wait for a rollout tick.
 *
 * A connection found broken between transactions is reset (reconnected) at
 * the next call, its prepared statements forgotten; inside a transaction
 * the call fails with FERRY_E_BUSY and the caller rolls back. */
#include "cloud_db_driver.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CURSOR_BATCH 1000
#define FLEET_LOCK   "4611686018427387905" /* 2^62 + 1 */
#define ARGS_MAX     24
#define BLOBS_MAX    4

struct pg {
    PGconn *conn;
    bool prepared[CLOUD_Q__COUNT];
    unsigned cursors; /* names cursors uniquely on this connection */
    int walk_txn;     /* transactions walks opened themselves, nested */
};

struct pgrow {
    PGresult *res;
    uint8_t *blobs[BLOBS_MAX]; /* decoded during the callback, freed after */
    size_t nblobs;
};

static struct pg *P(const struct cloud_db *db)
{
    return db->impl;
}

/* ---- errors ------------------------------------------------------------ */

static enum ferry_err map_state(const char *state)
{
    if (!state)
        return FERRY_E_IO;
    if (strncmp(state, "08", 2) == 0 || strcmp(state, "40P01") == 0 ||
        strcmp(state, "40001") == 0 || strcmp(state, "55P03") == 0 ||
        strncmp(state, "57P0", 4) == 0)
        return FERRY_E_BUSY;
    if (strcmp(state, "53100") == 0)
        return FERRY_E_NOSPACE;
    if (strcmp(state, "53200") == 0)
        return FERRY_E_NOMEM;
    if (strncmp(state, "XX", 2) == 0)
        return FERRY_E_CORRUPT;
    return FERRY_E_IO;
}

/* libpq's message without its line ends. */
static void one_line(const char *msg, char *out, size_t cap)
{
    snprintf(out, cap, "%s", msg && msg[0] ? msg : "failed");
    for (char *p = out; *p; p++) {
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    }
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == ' ')
        out[--n] = 0;
}

static enum ferry_err fail_res(const struct cloud_db *db, const PGresult *res, const char *doing,
                               struct ferry_diag *d)
{
    char why[FERRY_DIAG_MAX];
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    one_line(res ? PQresultErrorMessage(res) : PQerrorMessage(P(db)->conn), why, sizeof(why));
    enum ferry_err err = res ? map_state(state) : FERRY_E_BUSY;
    if (PQstatus(P(db)->conn) != CONNECTION_OK)
        err = FERRY_E_BUSY;
    return cloud_db_fail(db, err, doing, why, d);
}

/* Runs sql (no parameters; several statements allowed); the last result
 * must be a command or rows. */
static enum ferry_err exec(struct cloud_db *db, const char *sql, const char *doing,
                           struct ferry_diag *d)
{
    PGresult *res = PQexec(P(db)->conn, sql);
    ExecStatusType s = PQresultStatus(res);
    enum ferry_err err =
        s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ? FERRY_OK : fail_res(db, res, doing, d);
    PQclear(res);
    return err;
}

/* ---- connection and schema ------------------------------------------------- */

/* A password in the URL would show in `ps`, in logs and in shell history:
 * refused, pointing at libpq's password file. */
static enum ferry_err check_url(const char *url, struct ferry_diag *d)
{
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &why);
    if (!opts) {
        char msg[FERRY_DIAG_MAX];
        one_line(why ? why : "cannot parse it", msg, sizeof(msg));
        PQfreemem(why);
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--db: not a PostgreSQL URL: %s", msg);
    }
    bool password = false;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "password") == 0 && o->val && o->val[0])
            password = true;
    }
    PQconninfoFree(opts);
    if (password)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--db: the URL holds a password; put it in a password file instead "
                          "(passfile=PATH in the URL, PGPASSFILE, or ~/.pgpass), so it shows in "
                          "no process list or log");
    return FERRY_OK;
}

static enum ferry_err check_schema(struct cloud_db *db, bool create, struct ferry_diag *d)
{
    /* Two instances starting at once create the tables once. */
    enum ferry_err err = exec(db, "BEGIN; SELECT pg_advisory_xact_lock(" FLEET_LOCK ")",
                              "locking for the schema check", d);
    if (err != FERRY_OK)
        return err;
    PGresult *res = PQexec(P(db)->conn, "SELECT to_regclass('ferry_schema') IS NOT NULL");
    bool have = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
                strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        err = fail_res(db, res, "reading the schema", d);
    PQclear(res);
    if (err == FERRY_OK && !have && !create)
        err = ferry_fail(d, FERRY_E_CORRUPT, "inventory %s: not a Ferry inventory (no schema)",
                         db->name);
    if (err == FERRY_OK && !have) {
        err = exec(db, "CREATE TABLE ferry_schema (part TEXT PRIMARY KEY, version BIGINT NOT NULL)",
                   "creating the schema", d);
        if (err == FERRY_OK)
            err = exec(db, cloud_sql_pg_schema, "creating the schema", d);
    }
    /* A part added since: made in a database that lacks it (a read-only
     * connection's check then fails below; serve makes it first). */
    if (err == FERRY_OK && !db->read_only) {
        res = PQexec(P(db)->conn, "SELECT 1 FROM ferry_schema WHERE part = 'group_counts'");
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            err = fail_res(db, res, "reading the schema version", d);
        else if (PQntuples(res) == 0)
            err = exec(db, cloud_sql_pg_group_counts, "indexing the nodes for the console", d);
        PQclear(res);
    }
    static const struct {
        const char *part;
        long want;
    } parts[] = {{"inventory", CLOUD_SQLITE_SCHEMA_VERSION},
                 {"rollouts", CLOUD_SCHEMA_ROLLOUTS},
                 {"group_counts", CLOUD_SCHEMA_GROUP_COUNTS}};
    for (size_t i = 0; err == FERRY_OK && i < sizeof(parts) / sizeof(parts[0]); i++) {
        const char *v[1] = {parts[i].part};
        res = PQexecParams(P(db)->conn, "SELECT version FROM ferry_schema WHERE part = $1", 1, NULL,
                           v, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            err = fail_res(db, res, "reading the schema version", d);
        else if (PQntuples(res) != 1 || atol(PQgetvalue(res, 0, 0)) != parts[i].want)
            err = ferry_fail(d, FERRY_E_CORRUPT,
                             "inventory %s: %s tables of version %s, this Ferry reads %ld",
                             db->name, parts[i].part,
                             PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "none", parts[i].want);
        PQclear(res);
    }
    if (err == FERRY_OK)
        return exec(db, "COMMIT", "committing the schema", d);
    PQclear(PQexec(P(db)->conn, "ROLLBACK"));
    return err;
}

static enum ferry_err pg_open(struct cloud_db *db, const char *url, bool create,
                              struct ferry_diag *d)
{
    if (!(db->name = strdup(url)))
        return ferry_fail(d, FERRY_E_NOMEM, "inventory: out of memory");
    enum ferry_err err = check_url(url, d);
    if (err != FERRY_OK)
        return err;
    struct pg *p = calloc(1, sizeof(*p));
    if (!p)
        return ferry_fail(d, FERRY_E_NOMEM, "inventory: out of memory");
    db->impl = p;
    /* The URL first; what follows fills only what it leaves out. */
    const char *const keys[] = {"dbname", "application_name", "connect_timeout", "options", NULL};
    /* The console's reads take no parallel workers: on a busy server the
     * workers' start-up cost more than the scan they split (a /gateways
     * over 100,000 nodes took 140 ms with one worker, 30 ms without). */
    const char *const vals[] = {url, "ferry-cloud", "10",
                                db->read_only ? "-c default_transaction_read_only=on"
                                                " -c max_parallel_workers_per_gather=0"
                                              : NULL,
                                NULL};
    p->conn = PQconnectdbParams(keys, vals, 1);
    if (!p->conn)
        return ferry_fail(d, FERRY_E_NOMEM, "inventory %s: out of memory", url);
    if (PQstatus(p->conn) != CONNECTION_OK) {
        char why[FERRY_DIAG_MAX];
        one_line(PQerrorMessage(p->conn), why, sizeof(why));
        return cloud_db_fail(db, FERRY_E_IO, "connecting", why, d);
    }
    PQclear(PQexec(p->conn, "SET client_min_messages = warning"));
    return check_schema(db, create, d);
}

static void pg_close(struct cloud_db *db)
{
    struct pg *p = P(db);
    if (!p)
        return;
    PQfinish(p->conn);
    free(p);
}

/* Outside a transaction, a broken connection is made again. */
static enum ferry_err alive(struct cloud_db *db, const char *doing, struct ferry_diag *d)
{
    struct pg *p = P(db);
    if (PQstatus(p->conn) == CONNECTION_OK)
        return FERRY_OK;
    if (db->in_txn || p->walk_txn)
        return cloud_db_fail(db, FERRY_E_BUSY, doing, "the connection to the server was lost", d);
    PQreset(p->conn);
    memset(p->prepared, 0, sizeof(p->prepared));
    if (PQstatus(p->conn) == CONNECTION_OK) {
        PQclear(PQexec(p->conn, "SET client_min_messages = warning"));
        return FERRY_OK;
    }
    char why[FERRY_DIAG_MAX];
    one_line(PQerrorMessage(p->conn), why, sizeof(why));
    return cloud_db_fail(db, FERRY_E_BUSY, doing, why, d);
}

/* ---- transactions ------------------------------------------------------------- */

static enum ferry_err pg_begin(struct cloud_db *db, enum cloud_db_txn kind, struct ferry_diag *d)
{
    enum ferry_err err = alive(db, "starting a transaction", d);
    if (err != FERRY_OK)
        return err;
    /* A reader sees one snapshot and takes no lock: REPEATABLE READ. */
    err = exec(
        db,
        kind == CLOUD_DB_READ ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        : kind == CLOUD_DB_EXCLUSIVE
            ? "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(" FLEET_LOCK ")"
            : "BEGIN ISOLATION LEVEL READ COMMITTED;"
              " SELECT pg_advisory_xact_lock_shared(" FLEET_LOCK ")",
        "starting a transaction", d);
    if (err != FERRY_OK)
        PQclear(PQexec(P(db)->conn, "ROLLBACK"));
    return err;
}

/* A transaction that failed part way ends in a ROLLBACK even when told to
 * COMMIT: the answer's tag says which. */
static enum ferry_err pg_commit(struct cloud_db *db, struct ferry_diag *d)
{
    PGresult *res = PQexec(P(db)->conn, "COMMIT");
    enum ferry_err err = FERRY_OK;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        err = fail_res(db, res, "committing", d);
    else if (strcmp(PQcmdStatus(res), "COMMIT") != 0)
        err = cloud_db_fail(db, FERRY_E_IO, "committing", "the server rolled the transaction back",
                            d);
    PQclear(res);
    return err;
}

static void pg_rollback(struct cloud_db *db)
{
    if (PQstatus(P(db)->conn) == CONNECTION_OK)
        PQclear(PQexec(P(db)->conn, "ROLLBACK"));
}

/* ---- queries ------------------------------------------------------------------ */

struct params {
    const char *values[ARGS_MAX];
    int lengths[ARGS_MAX];
    int formats[ARGS_MAX];
    char ints[ARGS_MAX][24];
};

static bool fill_params(struct params *pp, const struct cloud_db_arg *args, size_t nargs)
{
    if (nargs > ARGS_MAX)
        return false;
    for (size_t i = 0; i < nargs; i++) {
        pp->lengths[i] = 0;
        pp->formats[i] = 0;
        switch (args[i].type) {
        case CLOUD_DB_NULL:
            pp->values[i] = NULL;
            break;
        case CLOUD_DB_INT:
            snprintf(pp->ints[i], sizeof(pp->ints[i]), "%" PRId64, args[i].i);
            pp->values[i] = pp->ints[i];
            break;
        case CLOUD_DB_TEXT:
            pp->values[i] = args[i].p;
            break;
        case CLOUD_DB_BLOB:
            if (args[i].len > INT32_MAX)
                return false;
            pp->values[i] = args[i].len ? args[i].p : "";
            pp->lengths[i] = (int)args[i].len;
            pp->formats[i] = 1;
            break;
        }
    }
    return true;
}

/* Calls cb for each row of res; frees each row's decoded blobs. */
static enum ferry_err each_row(struct cloud_db *db, PGresult *res, cloud_db_row_cb cb, void *arg,
                               int *rows)
{
    int n = PQntuples(res);
    *rows = n;
    struct pgrow pr = {.res = res};
    struct cloud_db_row row = {db, &pr, 0};
    enum ferry_err err = FERRY_OK;
    for (int i = 0; i < n && cb && err == FERRY_OK; i++) {
        row.index = i;
        err = cb(arg, &row);
        for (size_t k = 0; k < pr.nblobs; k++)
            PQfreemem(pr.blobs[k]);
        pr.nblobs = 0;
    }
    return err;
}

static enum ferry_err run_prepared(struct cloud_db *db, enum cloud_q q, const struct params *pp,
                                   size_t nargs, cloud_db_row_cb cb, void *arg, uint64_t *changed,
                                   const char *doing, struct ferry_diag *d)
{
    struct pg *p = P(db);
    char name[16];
    snprintf(name, sizeof(name), "fq%d", (int)q);
    if (!p->prepared[q]) {
        PGresult *res = PQprepare(p->conn, name, cloud_sql_pg[q], (int)nargs, NULL);
        enum ferry_err err =
            PQresultStatus(res) == PGRES_COMMAND_OK ? FERRY_OK : fail_res(db, res, doing, d);
        PQclear(res);
        if (err != FERRY_OK)
            return err;
        p->prepared[q] = true;
    }
    PGresult *res =
        PQexecPrepared(p->conn, name, (int)nargs, pp->values, pp->lengths, pp->formats, 0);
    ExecStatusType s = PQresultStatus(res);
    enum ferry_err err = FERRY_OK;
    if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK) {
        int rows = 0;
        err = each_row(db, res, cb, arg, &rows);
        const char *tuples = PQcmdTuples(res);
        if (changed && tuples[0])
            *changed = strtoull(tuples, NULL, 10);
    } else {
        err = fail_res(db, res, doing, d);
    }
    PQclear(res);
    return err;
}

/* A walk: DECLARE a cursor, FETCH batches, CLOSE; in a transaction of its
 * own when the caller has none. */
static enum ferry_err run_walk(struct cloud_db *db, enum cloud_q q, const struct params *pp,
                               size_t nargs, cloud_db_row_cb cb, void *arg, const char *doing,
                               struct ferry_diag *d)
{
    struct pg *p = P(db);
    bool own = !db->in_txn && !p->walk_txn;
    enum ferry_err err = own ? exec(db, "BEGIN", doing, d) : FERRY_OK;
    if (err != FERRY_OK)
        return err;
    p->walk_txn += own;
    char cursor[32], sql[96];
    snprintf(cursor, sizeof(cursor), "fc%u", ++p->cursors);
    size_t need = strlen(cloud_sql_pg[q]) + 64;
    char *declare = malloc(need);
    if (!declare) {
        err = ferry_fail(d, FERRY_E_NOMEM, "inventory: out of memory");
        goto out;
    }
    snprintf(declare, need, "DECLARE %s NO SCROLL CURSOR FOR %s", cursor, cloud_sql_pg[q]);
    PGresult *res =
        PQexecParams(p->conn, declare, (int)nargs, NULL, pp->values, pp->lengths, pp->formats, 0);
    free(declare);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        err = fail_res(db, res, doing, d);
    PQclear(res);
    snprintf(sql, sizeof(sql), "FETCH %d FROM %s", CURSOR_BATCH, cursor);
    for (int rows = CURSOR_BATCH; err == FERRY_OK && rows == CURSOR_BATCH;) {
        res = PQexec(p->conn, sql);
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            err = fail_res(db, res, doing, d);
        else
            err = each_row(db, res, cb, arg, &rows);
        PQclear(res);
    }
    if (PQstatus(p->conn) == CONNECTION_OK) {
        snprintf(sql, sizeof(sql), "CLOSE %s", cursor);
        PQclear(PQexec(p->conn, sql));
    }
out:
    if (own) {
        p->walk_txn--;
        if (err == FERRY_OK)
            err = exec(db, "COMMIT", doing, d);
        else if (PQstatus(p->conn) == CONNECTION_OK)
            PQclear(PQexec(p->conn, "ROLLBACK"));
    }
    return err;
}

static enum ferry_err pg_run(struct cloud_db *db, enum cloud_q q, unsigned flags,
                             const struct cloud_db_arg *args, size_t nargs, cloud_db_row_cb cb,
                             void *arg, uint64_t *changed, const char *doing, struct ferry_diag *d)
{
    if (!cloud_sql_pg[q])
        return FERRY_OK;
    struct params pp;
    if (!fill_params(&pp, args, nargs))
        return cloud_db_fail(db, FERRY_E_INVALID_ARG, doing, "too many or too large arguments", d);
    enum ferry_err err = alive(db, doing, d);
    if (err != FERRY_OK)
        return err;
    if (flags & CLOUD_DB_WALK)
        return run_walk(db, q, &pp, nargs, cb, arg, doing, d);
    return run_prepared(db, q, &pp, nargs, cb, arg, changed, doing, d);
}

/* ---- rows ---------------------------------------------------------------------- */

static struct pgrow *R(const struct cloud_db_row *r)
{
    return r->impl;
}

static int pg_ncols(const struct cloud_db_row *r)
{
    return PQnfields(R(r)->res);
}

static bool pg_null(const struct cloud_db_row *r, int col)
{
    return col >= PQnfields(R(r)->res) || PQgetisnull(R(r)->res, r->index, col);
}

static bool pg_int(const struct cloud_db_row *r, int col, int64_t *out)
{
    if (pg_null(r, col))
        return false;
    const char *s = PQgetvalue(R(r)->res, r->index, col);
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (!s[0] || !end || *end)
        return false;
    *out = (int64_t)v;
    return true;
}

static bool pg_text(const struct cloud_db_row *r, int col, const char **s, size_t *len)
{
    if (pg_null(r, col))
        return false;
    *s = PQgetvalue(R(r)->res, r->index, col);
    *len = (size_t)PQgetlength(R(r)->res, r->index, col);
    return true;
}

static bool pg_blob(const struct cloud_db_row *r, int col, const uint8_t **p, size_t *len)
{
    struct pgrow *pr = R(r);
    if (pg_null(r, col) || pr->nblobs == BLOBS_MAX)
        return false;
    size_t n = 0;
    uint8_t *b = PQunescapeBytea((const unsigned char *)PQgetvalue(pr->res, r->index, col), &n);
    if (!b)
        return false;
    pr->blobs[pr->nblobs++] = b;
    *p = b;
    *len = n;
    return true;
}

const struct cloud_db_ops cloud_db_pg_ops = {
    .open = pg_open,
    .close = pg_close,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .run = pg_run,
    .ncols = pg_ncols,
    .null = pg_null,
    .get_int = pg_int,
    .get_text = pg_text,
    .get_blob = pg_blob,
};
