#include "cloud_inventory.h"

#include "cloud_inventory_priv.h"
#include "cloud_verdict.h"
#include "ferry_log.h"
#include "ferry_names.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define SCHEMA_VERSION 3
/* How long a writer waits for another process's transaction. */
#define BUSY_TIMEOUT_MS 5000
#define INT_MAX53       (INT64_C(1) << 53)
/* Refused records kept per node, and in all: the newest ones. */
#define REFUSED_PER_NODE 100
#define REFUSED_MAX      100000

/* The status columns, in the order bind_record() fills ?1..?12; it fills
 * ?15 with the path's parents (`via`), after the refused table's ?13, ?14. */
#define RECORD_COLUMNS                                                                             \
    "node, seq, gateway, release, version, state, bytes, total, error, message, ts"

static const char schema_v1_sql[] =
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
    "CREATE INDEX nodes_gateway ON nodes (gateway);";

/* Version 2: bindings (each node, and later each child gateway of a
 * cascade, to its one parent), records refused for good, and the event
 * log. A version 1 file gets them, and every node is bound to the gateway
 * its latest record came through. */
static const char schema_v2_sql[] =
    "CREATE TABLE bindings ("
    " child TEXT PRIMARY KEY NOT NULL, parent TEXT NOT NULL, since INTEGER NOT NULL,"
    " how TEXT NOT NULL);"
    "CREATE TABLE refused ("
    " id INTEGER PRIMARY KEY, node TEXT NOT NULL, seq INTEGER NOT NULL, gateway TEXT NOT NULL,"
    " release TEXT NOT NULL, version TEXT NOT NULL, state TEXT NOT NULL, bytes INTEGER NOT NULL,"
    " total INTEGER NOT NULL, error TEXT NOT NULL, message TEXT NOT NULL, ts INTEGER NOT NULL,"
    " received_at INTEGER NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL);"
    "CREATE INDEX refused_node ON refused (node, received_at);"
    "CREATE TABLE events ("
    " id INTEGER PRIMARY KEY, at INTEGER NOT NULL, kind TEXT NOT NULL, node TEXT NOT NULL,"
    " detail TEXT NOT NULL);"
    "INSERT INTO bindings (child, parent, since, how)"
    " SELECT node, gateway, updated_at, 'upgrade' FROM nodes WHERE gateway != '';"
    "PRAGMA user_version = 2;";

/* Version 3: the parents a record came through in a cascade (its `via`,
 * comma-separated, "" without one), on records, nodes and refused ones.
 * The one place this column is made; a version 2 file gets it empty. */
static const char schema_v3_sql[] = "ALTER TABLE records ADD COLUMN via TEXT NOT NULL DEFAULT '';"
                                    "ALTER TABLE nodes ADD COLUMN via TEXT NOT NULL DEFAULT '';"
                                    "ALTER TABLE refused ADD COLUMN via TEXT NOT NULL DEFAULT '';"
                                    "PRAGMA user_version = 3;";

static const char insert_record_sql[] =
    "INSERT OR IGNORE INTO records (" RECORD_COLUMNS ", received_at, via)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?15)";

static const char upsert_node_sql[] =
    "INSERT INTO nodes (" RECORD_COLUMNS ", updated_at, via)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?15)"
    " ON CONFLICT (node) DO UPDATE SET seq = excluded.seq, gateway = excluded.gateway,"
    " via = excluded.via,"
    " release = excluded.release, version = excluded.version, state = excluded.state,"
    " bytes = excluded.bytes, total = excluded.total, error = excluded.error,"
    " message = excluded.message, ts = excluded.ts, updated_at = excluded.updated_at"
    " WHERE excluded.seq > nodes.seq";

static const char insert_refused_sql[] =
    "INSERT INTO refused (" RECORD_COLUMNS ", received_at, reason, detail, via)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";

static const char trim_refused_sql[] =
    "DELETE FROM refused WHERE (node = ?1 AND id NOT IN"
    " (SELECT id FROM refused WHERE node = ?1 ORDER BY id DESC LIMIT ?2))"
    " OR id <= (SELECT max(id) FROM refused) - ?3";

static const char select_same_sql[] =
    "SELECT gateway, release, version, state, bytes, total, error, message, ts FROM records"
    " WHERE node = ?1 AND seq = ?2";

static const char select_last_sql[] = "SELECT seq FROM nodes WHERE node = ?1";

static const char select_binding_sql[] = "SELECT parent FROM bindings WHERE child = ?1";

static const char upsert_binding_sql[] =
    "INSERT INTO bindings (child, parent, since, how) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT (child) DO UPDATE SET parent = excluded.parent, since = excluded.since,"
    " how = excluded.how";

static const char insert_event_sql[] =
    "INSERT INTO events (at, kind, node, detail) VALUES (?1, ?2, ?3, ?4)";

/* refused: the node's records refused since its latest one was stored. */
static const char select_nodes_sql[] =
    "SELECT n.node, n.gateway, n.release, n.version, n.state, n.bytes, n.total, n.error,"
    " n.message, n.seq, n.ts, n.updated_at,"
    " (SELECT count(*) FROM refused r WHERE r.node = n.node AND r.received_at >= n.updated_at),"
    " n.via FROM nodes n WHERE (?1 IS NULL OR n.release = ?1) AND (?2 IS NULL OR n.gateway = ?2)"
    " AND (?3 IS NULL OR n.state = ?3) ORDER BY n.node";

static const char select_refused_sql[] =
    "SELECT node, gateway, release, version, state, bytes, total, error, message, seq, ts,"
    " received_at, reason, detail FROM refused WHERE (?1 IS NULL OR release = ?1)"
    " AND (?2 IS NULL OR gateway = ?2) AND (?3 IS NULL OR state = ?3) ORDER BY id";

static const char select_events_sql[] = "SELECT at, kind, node, detail FROM events ORDER BY id";

/* The prepared statements, by name, and their text: prepared at open,
 * finalised at close. */
#define STATEMENTS(X)                                                                              \
    X(insert_record)                                                                               \
    X(upsert_node)                                                                                 \
    X(insert_refused)                                                                              \
    X(trim_refused)                                                                                \
    X(select_same)                                                                                 \
    X(select_last)                                                                                 \
    X(select_binding)                                                                              \
    X(upsert_binding)                                                                              \
    X(insert_event)                                                                                \
    X(select_nodes)                                                                                \
    X(select_refused)                                                                              \
    X(select_events)

struct cloud_inventory {
    char *path;
    sqlite3 *db;
#define FIELD(name) sqlite3_stmt *name;
    STATEMENTS(FIELD)
#undef FIELD
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

/* Creates the schema in an empty file, upgrades a version 1 file, or checks
 * that the file holds this version. */
static enum ferry_err check_schema(struct cloud_inventory *inv, bool create, struct ferry_diag *d)
{
    int version = 0;
    enum ferry_err err = exec(inv, "BEGIN IMMEDIATE", "locking for the schema check", d);
    if (err == FERRY_OK)
        err = user_version(inv, &version, d);
    if (err == FERRY_OK && version == 0 && create) {
        err = exec(inv, schema_v1_sql, "creating the schema", d);
        version = 1;
    } else if (err == FERRY_OK && version == 0) {
        err = ferry_fail(d, FERRY_E_CORRUPT, "inventory %s: not a Ferry inventory (no schema)",
                         inv->path);
    }
    if (err == FERRY_OK && version == 1) {
        err = exec(inv, schema_v2_sql, "upgrading the schema to version 2", d);
        version = 2;
    }
    if (err == FERRY_OK && version == 2) {
        err = exec(inv, schema_v3_sql, "upgrading the schema to version 3", d);
        version = 3;
    }
    if (err == FERRY_OK && version != SCHEMA_VERSION)
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
#define PREPARE(name)                                                                              \
    if (err == FERRY_OK)                                                                           \
        err = prepare(inv, name##_sql, &inv->name, d);
    STATEMENTS(PREPARE)
#undef PREPARE
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
#define FINALIZE(name) sqlite3_finalize(inv->name);
    STATEMENTS(FINALIZE)
#undef FINALIZE
    sqlite3_close(inv->db); /* NULL is fine; all statements are finalised */
    free(inv->path);
    free(inv);
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

_Static_assert(FERRY_STATUS_VIA_MAX + 2 <= CLOUD_PATH_MAX, "a record's path fits a verdict's");

/* A record's via as one column: "gw-b,gw-a" (ids hold no comma). */
#define VIA_TEXT_MAX (FERRY_STATUS_VIA_MAX * (FERRY_ID_MAX + 1))

static void via_text(const struct ferry_status *st, char out[VIA_TEXT_MAX])
{
    size_t used = 0;
    out[0] = 0;
    for (size_t i = 0; i < st->nvia; i++)
        used += (size_t)snprintf(out + used, VIA_TEXT_MAX - used, "%s%s", i ? "," : "", st->via[i]);
}

static bool via_parse(const char *text, struct ferry_status *st)
{
    st->nvia = 0;
    while (*text) {
        size_t n = strcspn(text, ",");
        if (st->nvia == FERRY_STATUS_VIA_MAX || n == 0 || n > FERRY_ID_MAX)
            return false;
        snprintf(st->via[st->nvia], sizeof(st->via[0]), "%.*s", (int)n, text);
        if (!ferry_id_valid(st->via[st->nvia++]))
            return false;
        text += n + (text[n] == ',');
    }
    return true;
}

static int bind_record(sqlite3_stmt *s, const struct ferry_status *st, int64_t now)
{
    const char *error = st->error == FERRY_OK ? "" : ferry_err_name(st->error);
    char via[VIA_TEXT_MAX];
    via_text(st, via);
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
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 15, via, -1, SQLITE_TRANSIENT);
    return rc;
}

/* One statement run to completion (no row expected). */
static enum ferry_err step_done(struct cloud_inventory *inv, sqlite3_stmt *s, int rc,
                                const char *doing, struct ferry_diag *d)
{
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? FERRY_OK : db_fail(inv, rc, doing, d);
}

static enum ferry_err run_record(struct cloud_inventory *inv, sqlite3_stmt *s,
                                 const struct ferry_status *st, int64_t now, struct ferry_diag *d)
{
    return step_done(inv, s, bind_record(s, st, now), "storing a record", d);
}

/* ---- reading columns ----------------------------------------------------- */

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

static bool column_int(sqlite3_stmt *s, int col, int64_t *out)
{
    if (sqlite3_column_type(s, col) != SQLITE_INTEGER)
        return false;
    *out = sqlite3_column_int64(s, col);
    return true;
}

/* A state and an error name ("" for none) into st. */
static bool column_names(sqlite3_stmt *s, int state_col, int error_col, struct ferry_status *st)
{
    char state[32], error[32];
    if (!column_text(s, state_col, state, sizeof(state)) ||
        !column_text(s, error_col, error, sizeof(error)))
        return false;
    if (ferry_state_from_name(state, &st->state) != FERRY_OK)
        return false;
    st->error = FERRY_OK;
    return !error[0] || (ferry_err_from_name(error, &st->error) == FERRY_OK);
}

/* The status columns gateway, release, version, state, bytes, total, error,
 * message starting at column `at`. */
static bool column_record(sqlite3_stmt *s, int at, struct ferry_status *st)
{
    return column_text(s, at, st->gateway, sizeof(st->gateway)) &&
           column_text(s, at + 1, st->release_id, sizeof(st->release_id)) &&
           column_text(s, at + 2, st->version, sizeof(st->version)) &&
           column_names(s, at + 3, at + 6, st) && column_count(s, at + 4, &st->bytes) &&
           column_count(s, at + 5, &st->total) &&
           column_text(s, at + 7, st->message, sizeof(st->message));
}

/* ---- ingest -------------------------------------------------------------- */

/* A one-row, one-column lookup of a text by one text key; out "" when no
 * row. */
static enum ferry_err lookup_text(struct cloud_inventory *inv, sqlite3_stmt *s, const char *key,
                                  char *out, size_t cap, struct ferry_diag *d)
{
    out[0] = 0;
    int rc = sqlite3_reset(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    enum ferry_err err = FERRY_OK;
    if (rc == SQLITE_ROW && !column_text(s, 0, out, cap))
        err = ferry_fail(d, FERRY_E_CORRUPT, "inventory %s: a binding of '%s' is damaged",
                         inv->path, key);
    else if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = db_fail(inv, rc, "reading a binding", d);
    sqlite3_reset(s);
    return err;
}

/* What the inventory holds about st's node and seq, and about the hops of
 * path (npath of them). */
static enum ferry_err gather_facts(struct cloud_inventory *inv, const struct ferry_status *st,
                                   const char *const *path, size_t npath, struct cloud_facts *f,
                                   struct ferry_diag *d)
{
    memset(f, 0, sizeof(*f));
    sqlite3_stmt *s = inv->select_same;
    int rc = sqlite3_reset(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 1, st->node, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 2, (sqlite3_int64)st->seq);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        f->have_seq = true;
        f->same = *st;
        if (!column_record(s, 0, &f->same) || !column_int(s, 8, &f->same.ts))
            rc = SQLITE_CORRUPT;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(inv, rc, "reading a stored record", d);
    s = inv->select_last;
    rc = sqlite3_reset(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 1, st->node, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && !column_count(s, 0, &f->last_seq))
        rc = SQLITE_CORRUPT;
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(inv, rc, "reading a node", d);
    enum ferry_err err = FERRY_OK;
    for (size_t i = 0; i + 1 < npath && err == FERRY_OK; i++)
        err = lookup_text(inv, inv->select_binding, path[i], f->bound[i], sizeof(f->bound[i]), d);
    return err;
}

static enum ferry_err log_event(struct cloud_inventory *inv, int64_t at, const char *kind,
                                const char *node, const char *detail, struct ferry_diag *d)
{
    sqlite3_stmt *s = inv->insert_event;
    int rc = sqlite3_reset(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 1, at);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 2, kind, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 3, node, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 4, detail, -1, SQLITE_TRANSIENT);
    return step_done(inv, s, rc, "logging an event", d);
}

static enum ferry_err put_binding(struct cloud_inventory *inv, const char *child,
                                  const char *parent, int64_t now, const char *how,
                                  struct ferry_diag *d)
{
    sqlite3_stmt *s = inv->upsert_binding;
    int rc = sqlite3_reset(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 1, child, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 2, parent, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 3, now);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 4, how, -1, SQLITE_STATIC);
    return step_done(inv, s, rc, "storing a binding", d);
}

static enum ferry_err store(struct cloud_inventory *inv, const struct ferry_status *st,
                            const char *const *path, size_t npath, const struct cloud_judgement *j,
                            int64_t now, struct ferry_diag *d)
{
    enum ferry_err err = run_record(inv, inv->insert_record, st, now, d);
    if (err == FERRY_OK)
        err = run_record(inv, inv->upsert_node, st, now, d);
    for (size_t i = 0; i + 1 < npath && err == FERRY_OK; i++) {
        if (!j->bind[i])
            continue;
        char detail[FERRY_DIAG_MAX];
        snprintf(detail, sizeof(detail),
                 "bound to gateway %s by its first record (seq %" PRIu64 ")", path[i + 1], st->seq);
        err = put_binding(inv, path[i], path[i + 1], now, "first-record", d);
        if (err == FERRY_OK)
            err = log_event(inv, now, "bound", path[i], detail, d);
    }
    return err;
}

static enum ferry_err keep_refused(struct cloud_inventory *inv, const struct ferry_status *st,
                                   const struct cloud_judgement *j, int64_t now,
                                   struct ferry_diag *d)
{
    sqlite3_stmt *s = inv->insert_refused;
    int rc = bind_record(s, st, now);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 13, ferry_err_name(j->reason), -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 14, j->detail, -1, SQLITE_STATIC);
    enum ferry_err err = step_done(inv, s, rc, "keeping a refused record", d);
    if (err != FERRY_OK)
        return err;
    s = inv->trim_refused;
    rc = sqlite3_reset(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 1, st->node, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 2, REFUSED_PER_NODE);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 3, REFUSED_MAX);
    return step_done(inv, s, rc, "trimming refused records", d);
}

static bool listed(const struct ferry_record_id *ids, size_t n, const struct ferry_status *st)
{
    for (size_t i = 0; i < n; i++) {
        if (ids[i].seq == st->seq && strcmp(ids[i].node, st->node) == 0)
            return true;
    }
    return false;
}

/* The ack's lists from the verdicts: each (node, seq) once, stored ones
 * first in first-seen order, a pair never both stored and refused. */
static void fill_out(const struct ferry_status *recs, size_t n, const struct cloud_judgement *j,
                     struct cloud_ingest_out *out)
{
    out->nstored = out->nrefused = 0;
    for (size_t i = 0; i < n; i++) {
        if (j[i].verdict != CLOUD_REFUSE && !listed(out->stored, out->nstored, &recs[i])) {
            struct ferry_record_id *r = &out->stored[out->nstored++];
            memcpy(r->node, recs[i].node, sizeof(r->node));
            r->seq = recs[i].seq;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (j[i].verdict != CLOUD_REFUSE || listed(out->stored, out->nstored, &recs[i]))
            continue;
        bool seen = false;
        for (size_t k = 0; k < out->nrefused && !seen; k++)
            seen = out->refused[k].id.seq == recs[i].seq &&
                   strcmp(out->refused[k].id.node, recs[i].node) == 0;
        if (seen)
            continue;
        struct ferry_record_refusal *f = &out->refused[out->nrefused++];
        memcpy(f->id.node, recs[i].node, sizeof(f->id.node));
        f->id.seq = recs[i].seq;
        f->reason = j[i].reason;
    }
}

/* Said once the transaction is committed, so the log tells what happened. */
static void log_outcomes(const struct ferry_status *recs, size_t n, const struct cloud_judgement *j,
                         bool kept)
{
    for (size_t i = 0; i < n; i++) {
        if (j[i].verdict == CLOUD_REFUSE)
            LOG_WARN("inventory: refused node %s seq %" PRIu64 " from gateway %s (%s): %s%s",
                     recs[i].node, recs[i].seq, recs[i].gateway[0] ? recs[i].gateway : "?",
                     ferry_err_name(j[i].reason), j[i].detail, kept ? "; kept aside" : "");
        for (size_t k = 0; j[i].verdict == CLOUD_STORE && k + 1 < CLOUD_PATH_MAX; k++) {
            if (j[i].bind[k])
                LOG_INFO("inventory: node %s bound to gateway %s by its first record", recs[i].node,
                         recs[i].gateway);
        }
    }
}

/* node, gateway, via...: at most CLOUD_PATH_MAX hops (FERRY_STATUS_VIA_MAX
 * leaves room for node and gateway). A gateway's record of its own update
 * names it as node and gateway: one hop, so it is bound to its parent, not
 * to itself. */
static size_t record_path(const struct ferry_status *st, const char *path[CLOUD_PATH_MAX])
{
    size_t n = 0;
    path[n++] = st->node;
    if (st->gateway[0] && strcmp(st->gateway, st->node) != 0)
        path[n++] = st->gateway;
    for (size_t i = 0; i < st->nvia && n < CLOUD_PATH_MAX; i++)
        path[n++] = st->via[i];
    return n;
}

enum ferry_err cloud_inventory_ingest(struct cloud_inventory *inv, const struct ferry_status *recs,
                                      size_t n, bool keep, struct cloud_ingest_out *out,
                                      struct ferry_diag *d)
{
    if (n == 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "inventory: no records to store");
    for (size_t i = 0; i < n; i++) {
        enum ferry_err err = check_record(&recs[i], i, d);
        if (err != FERRY_OK)
            return err;
    }
    struct cloud_judgement *j = calloc(n, sizeof(*j));
    if (!j)
        return ferry_fail(d, FERRY_E_NOMEM, "inventory: out of memory for %zu records", n);
    const int64_t now = (int64_t)time(NULL);
    /* IMMEDIATE takes the write lock now, so a concurrent writer makes this
     * wait (busy timeout) instead of failing halfway through. */
    enum ferry_err err = exec(inv, "BEGIN IMMEDIATE", "starting a transaction", d);
    if (err != FERRY_OK)
        goto out;
    for (size_t i = 0; i < n && err == FERRY_OK; i++) {
        /* The path a record carries: its node, its gateway, and the
         * parents it came through in a cascade. */
        const char *path[CLOUD_PATH_MAX];
        size_t npath = record_path(&recs[i], path);
        struct cloud_facts facts;
        err = gather_facts(inv, &recs[i], path, npath, &facts, d);
        if (err != FERRY_OK)
            break;
        cloud_judge(&recs[i], path, npath, &facts, &j[i]);
        if (j[i].verdict == CLOUD_STORE)
            err = store(inv, &recs[i], path, npath, &j[i], now, d);
        else if (j[i].verdict == CLOUD_REFUSE && keep)
            err = keep_refused(inv, &recs[i], &j[i], now, d);
    }
    if (err == FERRY_OK)
        err = exec(inv, "COMMIT", "committing", d);
    if (err != FERRY_OK) {
        sqlite3_exec(inv->db, "ROLLBACK", NULL, NULL, NULL);
        goto out;
    }
    log_outcomes(recs, n, j, keep);
    fill_out(recs, n, j, out);
out:
    free(j);
    return err;
}

/* ---- binding by the operator -------------------------------------------- */

enum ferry_err cloud_inventory_bind(struct cloud_inventory *inv, const char *node,
                                    const char *gateway, const char *reason,
                                    char previous[FERRY_ID_MAX + 1], struct ferry_diag *d)
{
    if (!ferry_id_valid(node) || !ferry_id_valid(gateway))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "inventory: invalid node or gateway id");
    if (reason && !ferry_utf8_valid((const uint8_t *)reason, strlen(reason)))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "inventory: the reason must be UTF-8");
    char was[FERRY_ID_MAX + 1] = "";
    const int64_t now = (int64_t)time(NULL);
    enum ferry_err err = exec(inv, "BEGIN IMMEDIATE", "starting a transaction", d);
    if (err != FERRY_OK)
        return err;
    err = lookup_text(inv, inv->select_binding, node, was, sizeof(was), d);
    if (err == FERRY_OK)
        err = put_binding(inv, node, gateway, now, "operator", d);
    if (err == FERRY_OK) {
        char detail[FERRY_DIAG_MAX];
        if (was[0])
            snprintf(detail, sizeof(detail), "moved from gateway %s to %s by the operator%s%.160s",
                     was, gateway, reason && reason[0] ? ": " : "", reason ? reason : "");
        else
            snprintf(detail, sizeof(detail), "bound to gateway %s by the operator%s%.160s", gateway,
                     reason && reason[0] ? ": " : "", reason ? reason : "");
        err = log_event(inv, now, was[0] ? "move" : "bind", node, detail, d);
    }
    if (err == FERRY_OK)
        err = exec(inv, "COMMIT", "committing", d);
    if (err != FERRY_OK) {
        sqlite3_exec(inv->db, "ROLLBACK", NULL, NULL, NULL);
        return err;
    }
    if (previous)
        memcpy(previous, was, sizeof(was));
    return FERRY_OK;
}

/* ---- query --------------------------------------------------------------- */

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

enum ferry_err cloud_inventory_read_node(const struct cloud_inventory *inv, sqlite3_stmt *s,
                                         struct ferry_inventory_row *row, struct ferry_diag *d)
{
    struct ferry_status *st = &row->st;
    memset(row, 0, sizeof(*row));
    bool ok = column_text(s, 0, st->node, sizeof(st->node)) && ferry_id_valid(st->node);
    if (!ok)
        return ferry_fail(d, FERRY_E_CORRUPT, "inventory %s: a node row has an invalid node id",
                          inv->path);
    /* The count of refused records is a 13th column where the query has one. */
    ok = column_record(s, 1, st) && column_count(s, 9, &st->seq) && column_int(s, 10, &st->ts) &&
         column_int(s, 11, &row->updated_at) &&
         (sqlite3_column_count(s) <= 12 || column_count(s, 12, &row->refused));
    /* The path's parents are a 14th column where the query has one. */
    char via[VIA_TEXT_MAX];
    if (ok && sqlite3_column_count(s) > 13)
        ok = column_text(s, 13, via, sizeof(via)) && via_parse(via, st);
    if (!ok)
        return ferry_fail(d, FERRY_E_CORRUPT,
                          "inventory %s: the row of node '%s' holds a value ingestion never writes",
                          inv->path, st->node);
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

static enum ferry_err read_refused(const struct cloud_inventory *inv, sqlite3_stmt *s,
                                   struct ferry_refused_row *row, struct ferry_diag *d)
{
    struct ferry_status *st = &row->st;
    char reason[32];
    memset(row, 0, sizeof(*row));
    bool ok = column_text(s, 0, st->node, sizeof(st->node)) && ferry_id_valid(st->node) &&
              column_record(s, 1, st) && column_count(s, 9, &st->seq) &&
              column_int(s, 10, &st->ts) && column_int(s, 11, &row->received_at) &&
              column_text(s, 12, reason, sizeof(reason)) &&
              ferry_err_from_name(reason, &row->reason) == FERRY_OK &&
              column_text(s, 13, row->detail, sizeof(row->detail));
    if (!ok)
        return ferry_fail(d, FERRY_E_CORRUPT,
                          "inventory %s: a refused record holds a value ingestion never writes",
                          inv->path);
    return FERRY_OK;
}

enum ferry_err cloud_inventory_each_refused(struct cloud_inventory *inv,
                                            const struct cloud_inventory_filter *filter,
                                            cloud_inventory_refused_cb cb, void *arg,
                                            struct ferry_diag *d)
{
    sqlite3_stmt *s = inv->select_refused;
    int rc = bind_filter(s, filter);
    if (rc != SQLITE_OK)
        return db_fail(inv, rc, "querying refused records", d);
    struct ferry_refused_row row;
    enum ferry_err err = FERRY_OK;
    while (err == FERRY_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        err = read_refused(inv, s, &row, d);
        if (err == FERRY_OK)
            err = cb(arg, &row);
    }
    if (err == FERRY_OK && rc != SQLITE_DONE)
        err = db_fail(inv, rc, "querying refused records", d);
    sqlite3_reset(s);
    return err;
}

enum ferry_err cloud_inventory_each_event(struct cloud_inventory *inv, cloud_inventory_event_cb cb,
                                          void *arg, struct ferry_diag *d)
{
    sqlite3_stmt *s = inv->select_events;
    int rc = sqlite3_reset(s);
    if (rc != SQLITE_OK)
        return db_fail(inv, rc, "querying events", d);
    struct ferry_event_row row;
    enum ferry_err err = FERRY_OK;
    while (err == FERRY_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        memset(&row, 0, sizeof(row));
        bool ok = column_int(s, 0, &row.at) && column_text(s, 1, row.kind, sizeof(row.kind)) &&
                  column_text(s, 2, row.node, sizeof(row.node)) &&
                  column_text(s, 3, row.detail, sizeof(row.detail));
        err =
            ok ? cb(arg, &row)
               : ferry_fail(d, FERRY_E_CORRUPT, "inventory %s: an event row is damaged", inv->path);
    }
    if (err == FERRY_OK && rc != SQLITE_DONE)
        err = db_fail(inv, rc, "querying events", d);
    sqlite3_reset(s);
    return err;
}
