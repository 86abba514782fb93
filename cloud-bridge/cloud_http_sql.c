#include "cloud_http_sql.h"

#include "cloud_db.h"

#include "ferry_log.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SCHEMA_VERSION  3 /* the inventory's (cloud_sql_sqlite.c); 3 added `via`, unread here */
#define ROLLOUTS_PART   1 /* the rollout tables' (cloud_inventory_rollout.c) */
#define COUNTS_PART     1 /* node_counts (cloud_sql_sqlite.c) */
#define BUSY_TIMEOUT_MS 2000
#define INT_MAX53       (INT64_C(1) << 53)
/* Above every node id: ids are ASCII identifiers (ferry_id_valid). */
#define ID_CEILING "\x7f"

/* The nodes' columns, in the order read_node() reads them. */
#define NODE_COLUMNS                                                                               \
    "n.node, n.gateway, n.release, n.version, n.state, n.bytes, n.total, n.error, n.message,"      \
    " n.seq, n.ts, n.updated_at,"                                                                  \
    " (SELECT count(*) FROM refused r WHERE r.node = n.node AND r.received_at >= n.updated_at),"   \
    " i.doc"

/* Parameters ?1..?15 of every node filter, as bind_filter() fills them:
 *   ?1 state wanted (0/1), ?2..?12 the state names, ?13 gateway, ?14 version,
 *   ?15 release, ?16 tag LIKE pattern, ?17 prefix LIKE pattern, ?18 rollout,
 *   ?19 wave (0-based). */
#define NODE_FILTER                                                                                \
    " (?1 = 0 OR n.state IN (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12))"                      \
    " AND (?13 IS NULL OR n.gateway = ?13) AND (?14 IS NULL OR n.version = ?14)"                   \
    " AND (?15 IS NULL OR n.release = ?15)"                                                        \
    " AND (?16 IS NULL OR EXISTS (SELECT 1 FROM node_info t WHERE t.node = n.node"                 \
    " AND t.doc LIKE ?16 ESCAPE '\\'))"                                                            \
    " AND (?17 IS NULL OR n.node LIKE ?17 ESCAPE '\\')"                                            \
    " AND (?18 IS NULL OR EXISTS (SELECT 1 FROM rollout_targets g WHERE g.rollout = ?18"           \
    " AND g.node = n.node AND (?19 IS NULL OR g.wave = ?19)))"
#define FILTER_PARAMS 19

static const char nodes_after_sql[] =
    "SELECT " NODE_COLUMNS " FROM nodes n LEFT JOIN node_info i ON i.node = n.node"
    " WHERE" NODE_FILTER " AND n.node > ?20"
    " ORDER BY n.node LIMIT ?21";

static const char nodes_before_sql[] =
    "SELECT " NODE_COLUMNS " FROM nodes n LEFT JOIN node_info i ON i.node = n.node"
    " WHERE" NODE_FILTER " AND n.node < ?20"
    " ORDER BY n.node DESC LIMIT ?21";

static const char count_nodes_sql[] = "SELECT count(*) FROM nodes n WHERE" NODE_FILTER;

/* node_counts (cloud_sql_sqlite.c) holds the nodes per (state, version),
 * kept by ingestion's own transaction: the fleet's figures, and the total of
 * a list filtered by state or version alone, are a few rows' sum whatever
 * the fleet's size. Its parameters are NODE_FILTER's (?1..?12, ?14). */
static const char count_all_sql[] = "SELECT coalesce(sum(nodes), 0) FROM node_counts";

static const char count_groups_sql[] =
    "SELECT coalesce(sum(nodes), 0) FROM node_counts n"
    " WHERE (?1 = 0 OR n.state IN (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12))"
    " AND (?14 IS NULL OR n.version = ?14)";

static const char node_sql[] =
    "SELECT " NODE_COLUMNS " FROM nodes n LEFT JOIN node_info i ON i.node = n.node"
    " WHERE n.node = ?1";

static const char changed_sql[] =
    "SELECT " NODE_COLUMNS " FROM nodes n LEFT JOIN node_info i ON i.node = n.node"
    " WHERE n.updated_at >= ?1 AND n.updated_at < ?2"
    " ORDER BY n.updated_at LIMIT ?3";

static const char binding_sql[] = "SELECT parent, since, how FROM bindings WHERE child = ?1";

static const char history_sql[] =
    "SELECT node, gateway, release, version, state, bytes, total, error, message, seq, ts,"
    " received_at FROM records WHERE node = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3";

static const char refused_sql[] =
    "SELECT node, gateway, release, version, state, bytes, total, error, message, seq, ts,"
    " received_at, reason, detail FROM refused WHERE node = ?1 ORDER BY id DESC LIMIT ?2";

static const char state_versions_sql[] =
    "SELECT state, version, nodes FROM node_counts WHERE nodes > 0"
    " ORDER BY nodes DESC LIMIT ?1";

static const char release_states_sql[] =
    "SELECT release, state, count(*) AS c FROM nodes WHERE release != ''"
    " GROUP BY release, state ORDER BY c DESC LIMIT ?1";

static const char gateways_sql[] =
    "SELECT gateway, count(*),"
    " sum(CASE WHEN state IN ('downloading','verifying','installing','pending-reboot')"
    " THEN 1 ELSE 0 END),"
    " sum(CASE WHEN state IN ('failed','rolled-back') THEN 1 ELSE 0 END), max(updated_at)"
    " FROM nodes WHERE gateway != '' GROUP BY gateway ORDER BY gateway LIMIT ?1";

static const char rollout_ids_sql[] = "SELECT id FROM rollouts ORDER BY id DESC LIMIT ?1";

static const char rollout_sql[] =
    "SELECT id, product, release, version, seq, revert_release, revert_seq, plan, state,"
    " open_waves, created_at, start_at, state_at, retry_at, revision, resume, promoted,"
    " created_by, reason FROM rollouts WHERE id = ?1";

/* One pass over the rollout's targets, as cloud_rollout_tally() counts them:
 * per wave and state, the targets, the newest success, and the final states
 * (and failures among them) since the last retry (?2). */
static const char tally_sql[] =
    "SELECT wave, state, count(*),"
    " max(CASE WHEN state = 'success' THEN final_at ELSE 0 END),"
    " sum(CASE WHEN final_at > 0 AND final_at >= ?2 THEN 1 ELSE 0 END),"
    " sum(CASE WHEN final_at > 0 AND final_at >= ?2 AND state IN ('failed','rolled-back')"
    " THEN 1 ELSE 0 END)"
    " FROM rollout_targets WHERE rollout = ?1 GROUP BY wave, state";

static const char waves_sql[] = "SELECT wave, opened_at FROM rollout_waves WHERE rollout = ?1";

static const char log_sql[] = "SELECT id, at, actor, action, reason FROM rollout_log"
                              " WHERE rollout = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3";

static const char marks_sql[] = "SELECT (SELECT max(updated_at) FROM nodes),"
                                " (SELECT max(id) FROM rollout_log),"
                                " (SELECT sum(revision) FROM rollouts),"
                                " (SELECT count(*) FROM rollouts"
                                " WHERE state NOT IN ('cancelled','completed'))";

#define STATEMENTS(X)                                                                              \
    X(nodes_after)                                                                                 \
    X(nodes_before)                                                                                \
    X(count_nodes)                                                                                 \
    X(count_all)                                                                                   \
    X(count_groups)                                                                                \
    X(node)                                                                                        \
    X(changed)                                                                                     \
    X(binding)                                                                                     \
    X(history)                                                                                     \
    X(refused)                                                                                     \
    X(state_versions)                                                                              \
    X(release_states)                                                                              \
    X(gateways)                                                                                    \
    X(rollout_ids)                                                                                 \
    X(rollout)                                                                                     \
    X(tally)                                                                                       \
    X(waves)                                                                                       \
    X(log)                                                                                         \
    X(marks)

/* An ended rollout's targets no longer change (the controller refreshes and
 * targets active rollouts only; making one active again changes its
 * revision): its tally is read once per (id, revision) and kept, so a list
 * of finished rollouts over a large fleet is not counted again at every
 * event or page. */
#define TALLY_CACHE 20
struct tally_entry {
    int64_t id, retry_at;
    uint64_t revision;
    size_t nwaves;
    struct cloud_wave_tally waves[FERRY_ROLLOUT_MAX_WAVES];
    struct cloud_halt_tally halt;
};

struct cloud_http_db {
    char *path;
    sqlite3 *db;
#define FIELD(name) sqlite3_stmt *name;
    STATEMENTS(FIELD)
#undef FIELD
    struct tally_entry tallies[TALLY_CACHE];
    size_t ntallies, next_tally; /* entries used; the one replaced next */
};

static enum ferry_err db_fail(const struct cloud_http_db *db, int rc, const char *doing,
                              struct ferry_diag *d)
{
    return ferry_fail(d, cloud_db_sqlite_err(rc), "inventory %s: %s: %s", db->path, doing,
                      db->db ? sqlite3_errmsg(db->db) : sqlite3_errstr(rc));
}

/* ---- columns --------------------------------------------------------------------------- */

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

/* node, gateway, release, version, state, bytes, total, error, message,
 * seq, ts from column `at` on. */
static bool column_record(sqlite3_stmt *s, int at, struct ferry_status *st)
{
    char state[32], error[32];
    memset(st, 0, sizeof(*st));
    bool ok = column_text(s, at, st->node, sizeof(st->node)) && ferry_id_valid(st->node) &&
              column_text(s, at + 1, st->gateway, sizeof(st->gateway)) &&
              column_text(s, at + 2, st->release_id, sizeof(st->release_id)) &&
              column_text(s, at + 3, st->version, sizeof(st->version)) &&
              column_text(s, at + 4, state, sizeof(state)) &&
              ferry_state_from_name(state, &st->state) == FERRY_OK &&
              column_count(s, at + 5, &st->bytes) && column_count(s, at + 6, &st->total) &&
              column_text(s, at + 7, error, sizeof(error)) &&
              column_text(s, at + 8, st->message, sizeof(st->message)) &&
              column_count(s, at + 9, &st->seq) && column_int(s, at + 10, &st->ts);
    st->error = FERRY_OK;
    return ok && (!error[0] || ferry_err_from_name(error, &st->error) == FERRY_OK);
}

static enum ferry_err read_node(const struct cloud_http_db *db, sqlite3_stmt *s,
                                struct cloud_http_node *n, struct ferry_diag *d)
{
    memset(n, 0, sizeof(*n));
    if (!column_record(s, 0, &n->row.st) || !column_int(s, 11, &n->row.updated_at) ||
        !column_count(s, 12, &n->row.refused)) {
        char node[FERRY_ID_MAX + 1] = "?";
        column_text(s, 0, node, sizeof(node));
        return ferry_fail(d, FERRY_E_CORRUPT,
                          "inventory %s: the row of node '%s' holds a value ingestion never writes",
                          db->path, node);
    }
    const unsigned char *doc = sqlite3_column_text(s, 13);
    struct ferry_diag pd = {{0}};
    /* Descriptions are checked before they are stored; one that no longer
     * reads is left out rather than failing the page. */
    n->described = doc && ferry_nodeinfo_from_json(doc, (size_t)sqlite3_column_bytes(s, 13),
                                                   &n->info, &pd) == FERRY_OK;
    return FERRY_OK;
}

/* ---- open ------------------------------------------------------------------------------- */

static enum ferry_err one_int(struct cloud_http_db *db, const char *sql, int64_t *out,
                              struct ferry_diag *d)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    enum ferry_err err = FERRY_OK;
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE)
        *out = -1;
    else
        err = db_fail(db, rc, sql, d);
    sqlite3_finalize(st);
    return err;
}

/* The schema this file's SQL was written for: checked once, so a newer
 * inventory is refused by name instead of answering with wrong rows. */
static enum ferry_err check_schema(struct cloud_http_db *db, struct ferry_diag *d)
{
    int64_t version = 0, part = 0;
    enum ferry_err err = one_int(db, "PRAGMA user_version", &version, d);
    if (err == FERRY_OK && version != SCHEMA_VERSION)
        return ferry_fail(d, FERRY_E_CORRUPT,
                          "inventory %s: schema version %" PRId64 ", the HTTP API reads %d",
                          db->path, version, SCHEMA_VERSION);
    if (err == FERRY_OK)
        err = one_int(db, "SELECT version FROM inventory_parts WHERE part = 'rollouts'", &part, d);
    if (err == FERRY_OK && part != ROLLOUTS_PART)
        return ferry_fail(d, FERRY_E_CORRUPT,
                          "inventory %s: rollout tables of version %" PRId64
                          ", the HTTP API reads %d",
                          db->path, part, ROLLOUTS_PART);
    if (err == FERRY_OK)
        err =
            one_int(db, "SELECT version FROM inventory_parts WHERE part = 'node_counts'", &part, d);
    if (err == FERRY_OK && part != COUNTS_PART)
        return ferry_fail(d, FERRY_E_CORRUPT,
                          "inventory %s: node counts of version %" PRId64 ", the HTTP API reads %d",
                          db->path, part, COUNTS_PART);
    return err;
}

enum ferry_err cloud_http_db_open(const char *path, struct cloud_http_db **out,
                                  struct ferry_diag *d)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return ferry_fail(d, FERRY_E_NOT_FOUND, "inventory %s: no such file", path);
    struct cloud_http_db *db = calloc(1, sizeof(*db));
    if (!db || !(db->path = strdup(path))) {
        free(db);
        return ferry_fail(d, FERRY_E_NOMEM, "inventory %s: out of memory", path);
    }
    int rc = sqlite3_open_v2(path, &db->db, SQLITE_OPEN_READONLY, NULL);
    enum ferry_err err = rc == SQLITE_OK ? FERRY_OK : db_fail(db, rc, "opening read-only", d);
    if (err == FERRY_OK) {
        sqlite3_extended_result_codes(db->db, 1);
        sqlite3_busy_timeout(db->db, BUSY_TIMEOUT_MS);
        /* LIKE as PostgreSQL has it: "Canary" is not "canary". */
        rc = sqlite3_exec(db->db, "PRAGMA case_sensitive_like = ON", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            err = db_fail(db, rc, "setting case-sensitive LIKE", d);
    }
    if (err == FERRY_OK)
        err = check_schema(db, d);
#define PREPARE(name)                                                                              \
    if (err == FERRY_OK) {                                                                         \
        rc = sqlite3_prepare_v3(db->db, name##_sql, -1, SQLITE_PREPARE_PERSISTENT, &db->name,      \
                                NULL);                                                             \
        if (rc != SQLITE_OK)                                                                       \
            err = db_fail(db, rc, "preparing the " #name " query", d);                             \
    }
    STATEMENTS(PREPARE)
#undef PREPARE
    if (err != FERRY_OK) {
        cloud_http_db_close(db);
        return err;
    }
    *out = db;
    return FERRY_OK;
}

void cloud_http_db_close(struct cloud_http_db *db)
{
    if (!db)
        return;
#define FINALIZE(name) sqlite3_finalize(db->name);
    STATEMENTS(FINALIZE)
#undef FINALIZE
    sqlite3_close(db->db);
    free(db->path);
    free(db);
}

enum ferry_err cloud_http_db_read_begin(struct cloud_http_db *db, struct ferry_diag *d)
{
    int rc = sqlite3_exec(db->db, "BEGIN", NULL, NULL, NULL);
    return rc == SQLITE_OK ? FERRY_OK : db_fail(db, rc, "starting a read", d);
}

void cloud_http_db_read_end(struct cloud_http_db *db)
{
    if (!sqlite3_get_autocommit(db->db))
        sqlite3_exec(db->db, "COMMIT", NULL, NULL, NULL);
}

/* ---- nodes ---------------------------------------------------------------------------------- */

/* s with LIKE's own characters escaped, then suffix. */
static bool like_pattern(const char *prefix, const char *const *parts, size_t nparts,
                         const char *suffix, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = prefix; *p && n < cap; p++)
        out[n++] = *p;
    for (size_t k = 0; k < nparts; k++) {
        for (const char *p = parts[k]; *p; p++) {
            if (*p == '%' || *p == '_' || *p == '\\') {
                if (n + 1 >= cap)
                    return false;
                out[n++] = '\\';
            }
            if (n + 1 >= cap)
                return false;
            out[n++] = *p;
        }
        const char *glue = k + 1 < nparts ? "\":\"" : "";
        for (const char *p = glue; *p; p++) {
            if (n + 1 >= cap)
                return false;
            out[n++] = *p;
        }
    }
    size_t sl = strlen(suffix);
    if (n + sl + 1 > cap)
        return false;
    memcpy(out + n, suffix, sl + 1);
    return true;
}

struct filter_text {
    char tag[2 * (FERRY_TAG_KEY_MAX + FERRY_TAG_VALUE_MAX) + 32];
    char prefix[2 * FERRY_ID_MAX + 4];
};

static int bind_filter(sqlite3_stmt *s, const struct cloud_http_node_filter *f,
                       struct filter_text *t)
{
    int rc = sqlite3_reset(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_clear_bindings(s);
    if (rc != SQLITE_OK)
        return rc;
    uint32_t states = f ? f->states : 0;
    rc = sqlite3_bind_int(s, 1, states != 0);
    for (int i = 0, p = 2; rc == SQLITE_OK && i < FERRY_STATE__COUNT; i++) {
        if (states & (UINT32_C(1) << i))
            rc =
                sqlite3_bind_text(s, p++, ferry_state_name((enum ferry_state)i), -1, SQLITE_STATIC);
    }
    if (!f || rc != SQLITE_OK)
        return rc;
    if (f->gateway)
        rc = sqlite3_bind_text(s, 13, f->gateway, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && f->version)
        rc = sqlite3_bind_text(s, 14, f->version, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && f->release)
        rc = sqlite3_bind_text(s, 15, f->release, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && f->tag_key && f->tag_value) {
        /* ..."tags":{..."key":"value"...: the tags object is the document's last
         * member, and neither keys nor values can hold a quote. */
        const char *kv[2] = {f->tag_key, f->tag_value};
        if (!like_pattern("%\"tags\":{%\"", kv, 2, "\"%", t->tag, sizeof(t->tag)))
            return SQLITE_TOOBIG;
        rc = sqlite3_bind_text(s, 16, t->tag, -1, SQLITE_STATIC);
    }
    if (rc == SQLITE_OK && f->prefix) {
        const char *p[1] = {f->prefix};
        if (!like_pattern("", p, 1, "%", t->prefix, sizeof(t->prefix)))
            return SQLITE_TOOBIG;
        rc = sqlite3_bind_text(s, 17, t->prefix, -1, SQLITE_STATIC);
    }
    if (rc == SQLITE_OK && f->rollout)
        rc = sqlite3_bind_int64(s, 18, f->rollout);
    if (rc == SQLITE_OK && f->rollout && f->wave)
        rc = sqlite3_bind_int(s, 19, (int)f->wave - 1);
    return rc;
}

static bool filter_empty(const struct cloud_http_node_filter *f)
{
    return !f || (!f->states && !f->gateway && !f->version && !f->release && !f->tag_key &&
                  !f->prefix && !f->rollout);
}

/* Whether f asks for states and versions only (node_counts answers). */
static bool filter_by_group(const struct cloud_http_node_filter *f)
{
    return !f->gateway && !f->release && !f->tag_key && !f->prefix && !f->rollout;
}

enum ferry_err cloud_http_db_nodes(struct cloud_http_db *db, const struct cloud_http_node_filter *f,
                                   const char *after, const char *before, unsigned limit,
                                   cloud_http_node_cb cb, void *arg, bool *more,
                                   struct ferry_diag *d)
{
    if (limit < 1 || limit > CLOUD_HTTP_PAGE_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "a page holds 1..%d nodes", CLOUD_HTTP_PAGE_MAX);
    sqlite3_stmt *s = before ? db->nodes_before : db->nodes_after;
    struct filter_text t;
    int rc = bind_filter(s, f, &t);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 20, before ? before : after ? after : "", -1, SQLITE_STATIC);
    /* One row more than the page says whether there is more. */
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 21, (int)limit + 1);
    if (rc != SQLITE_OK) {
        sqlite3_reset(s);
        return db_fail(db, rc, "querying nodes", d);
    }
    struct cloud_http_node *rows = NULL;
    enum ferry_err err = FERRY_OK;
    unsigned n = 0;
    *more = false;
    if (before && !(rows = malloc(limit * sizeof(*rows)))) {
        sqlite3_reset(s);
        return ferry_fail(d, FERRY_E_NOMEM, "out of memory for %u nodes", limit);
    }
    struct cloud_http_node one;
    while (err == FERRY_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == limit) {
            *more = true;
            break;
        }
        /* Walking backwards, the rows are kept to be given in ascending order. */
        struct cloud_http_node *row = before ? &rows[n] : &one;
        err = read_node(db, s, row, d);
        if (err == FERRY_OK && !before)
            err = cb(arg, row);
        n++;
    }
    if (err == FERRY_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
        err = db_fail(db, rc, "querying nodes", d);
    sqlite3_reset(s);
    for (unsigned i = n; err == FERRY_OK && before && i > 0; i--)
        err = cb(arg, &rows[i - 1]);
    free(rows);
    return err;
}

enum ferry_err cloud_http_db_count_nodes(struct cloud_http_db *db,
                                         const struct cloud_http_node_filter *f, uint64_t *count,
                                         struct ferry_diag *d)
{
    sqlite3_stmt *s = filter_empty(f)      ? db->count_all
                      : filter_by_group(f) ? db->count_groups
                                           : db->count_nodes;
    struct filter_text t;
    int rc = s == db->count_all ? sqlite3_reset(s) : bind_filter(s, f, &t);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    enum ferry_err err = FERRY_OK;
    if (rc != SQLITE_ROW || !column_count(s, 0, count))
        err = db_fail(db, rc == SQLITE_ROW ? SQLITE_CORRUPT : rc, "counting nodes", d);
    sqlite3_reset(s);
    return err;
}

enum ferry_err cloud_http_db_node(struct cloud_http_db *db, const char *node,
                                  struct cloud_http_node *out, struct ferry_diag *d)
{
    sqlite3_stmt *s = db->node;
    int rc = sqlite3_reset(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 1, node, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    enum ferry_err err;
    if (rc == SQLITE_ROW)
        err = read_node(db, s, out, d);
    else if (rc == SQLITE_DONE)
        err = ferry_fail(d, FERRY_E_NOT_FOUND, "no node '%s' in the inventory", node);
    else
        err = db_fail(db, rc, "reading a node", d);
    sqlite3_reset(s);
    return err;
}

enum ferry_err cloud_http_db_binding(struct cloud_http_db *db, const char *node,
                                     struct cloud_http_binding *out, struct ferry_diag *d)
{
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *s = db->binding;
    int rc = sqlite3_reset(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 1, node, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    enum ferry_err err = FERRY_OK;
    if (rc == SQLITE_ROW) {
        if (!column_text(s, 0, out->gateway, sizeof(out->gateway)) ||
            !column_int(s, 1, &out->since) || !column_text(s, 2, out->how, sizeof(out->how)))
            err = ferry_fail(d, FERRY_E_CORRUPT,
                             "inventory %s: the binding of node '%s' is damaged", db->path, node);
    } else if (rc != SQLITE_DONE) {
        err = db_fail(db, rc, "reading a binding", d);
    }
    sqlite3_reset(s);
    return err;
}

enum ferry_err cloud_http_db_history(struct cloud_http_db *db, const char *node,
                                     uint64_t before_seq, unsigned limit, cloud_http_record_cb cb,
                                     void *arg, struct ferry_diag *d)
{
    sqlite3_stmt *s = db->history;
    int rc = sqlite3_reset(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 1, node, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 2,
                                before_seq && before_seq <= (uint64_t)INT_MAX53
                                    ? (sqlite3_int64)before_seq
                                    : INT_MAX53 + 1);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 3, (int)limit);
    enum ferry_err err = FERRY_OK;
    struct cloud_http_record r;
    while (rc == SQLITE_OK && err == FERRY_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        if (!column_record(s, 0, &r.st) || !column_int(s, 11, &r.received_at))
            err = ferry_fail(d, FERRY_E_CORRUPT, "inventory %s: a record of node '%s' is damaged",
                             db->path, node);
        else
            err = cb(arg, &r);
    }
    if (err == FERRY_OK && rc != SQLITE_DONE && rc != SQLITE_OK)
        err = db_fail(db, rc, "reading a node's records", d);
    sqlite3_reset(s);
    return err;
}

enum ferry_err cloud_http_db_refused(struct cloud_http_db *db, const char *node, unsigned limit,
                                     cloud_http_refused_cb cb, void *arg, struct ferry_diag *d)
{
    sqlite3_stmt *s = db->refused;
    int rc = sqlite3_reset(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 1, node, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 2, (int)limit);
    enum ferry_err err = FERRY_OK;
    struct ferry_refused_row r;
    char reason[32];
    while (rc == SQLITE_OK && err == FERRY_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        memset(&r, 0, sizeof(r));
        if (!column_record(s, 0, &r.st) || !column_int(s, 11, &r.received_at) ||
            !column_text(s, 12, reason, sizeof(reason)) ||
            ferry_err_from_name(reason, &r.reason) != FERRY_OK ||
            !column_text(s, 13, r.detail, sizeof(r.detail)))
            err = ferry_fail(d, FERRY_E_CORRUPT,
                             "inventory %s: a refused record of node '%s' is damaged", db->path,
                             node);
        else
            err = cb(arg, &r);
    }
    if (err == FERRY_OK && rc != SQLITE_DONE && rc != SQLITE_OK)
        err = db_fail(db, rc, "reading a node's refused records", d);
    sqlite3_reset(s);
    return err;
}

enum ferry_err cloud_http_db_changed(struct cloud_http_db *db, int64_t since, int64_t until,
                                     unsigned limit, cloud_http_node_cb cb, void *arg,
                                     struct ferry_diag *d)
{
    sqlite3_stmt *s = db->changed;
    int rc = sqlite3_reset(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 1, since);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 2, until);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 3, (int)limit);
    enum ferry_err err = FERRY_OK;
    struct cloud_http_node n;
    while (rc == SQLITE_OK && err == FERRY_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        err = read_node(db, s, &n, d);
        if (err == FERRY_OK)
            err = cb(arg, &n);
    }
    if (err == FERRY_OK && rc != SQLITE_DONE && rc != SQLITE_OK)
        err = db_fail(db, rc, "reading what changed", d);
    sqlite3_reset(s);
    return err;
}

/* ---- figures ------------------------------------------------------------------------------- */

static enum ferry_err groups(struct cloud_http_db *db, sqlite3_stmt *s, unsigned limit,
                             cloud_http_group_cb cb, void *arg, const char *doing,
                             struct ferry_diag *d)
{
    int rc = sqlite3_reset(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 1, (int)limit);
    enum ferry_err err = FERRY_OK;
    char a[FERRY_NAME_MAX + 1], b[FERRY_VERSION_MAX + 1];
    uint64_t count = 0;
    while (rc == SQLITE_OK && err == FERRY_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        if (column_text(s, 0, a, sizeof(a)) && column_text(s, 1, b, sizeof(b)) &&
            column_count(s, 2, &count))
            err = cb(arg, a, b, count);
        else
            err =
                ferry_fail(d, FERRY_E_CORRUPT, "inventory %s: %s: a damaged row", db->path, doing);
    }
    if (err == FERRY_OK && rc != SQLITE_DONE && rc != SQLITE_OK)
        err = db_fail(db, rc, doing, d);
    sqlite3_reset(s);
    return err;
}

enum ferry_err cloud_http_db_state_versions(struct cloud_http_db *db, unsigned limit,
                                            cloud_http_group_cb cb, void *arg, struct ferry_diag *d)
{
    return groups(db, db->state_versions, limit, cb, arg, "counting nodes by state and version", d);
}

enum ferry_err cloud_http_db_release_states(struct cloud_http_db *db, unsigned limit,
                                            cloud_http_group_cb cb, void *arg, struct ferry_diag *d)
{
    return groups(db, db->release_states, limit, cb, arg, "counting nodes by release", d);
}

enum ferry_err cloud_http_db_gateways(struct cloud_http_db *db, unsigned limit,
                                      cloud_http_gateway_cb cb, void *arg, struct ferry_diag *d)
{
    sqlite3_stmt *s = db->gateways;
    int rc = sqlite3_reset(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 1, (int)limit);
    enum ferry_err err = FERRY_OK;
    struct cloud_http_gateway_row g;
    while (rc == SQLITE_OK && err == FERRY_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        memset(&g, 0, sizeof(g));
        if (column_text(s, 0, g.gateway, sizeof(g.gateway)) && column_count(s, 1, &g.nodes) &&
            column_count(s, 2, &g.busy) && column_count(s, 3, &g.failed) &&
            column_int(s, 4, &g.last_record))
            err = cb(arg, &g);
        else
            err = ferry_fail(d, FERRY_E_CORRUPT, "inventory %s: a gateway's counts are damaged",
                             db->path);
    }
    if (err == FERRY_OK && rc != SQLITE_DONE && rc != SQLITE_OK)
        err = db_fail(db, rc, "counting nodes by gateway", d);
    sqlite3_reset(s);
    return err;
}

/* ---- rollouts -------------------------------------------------------------------------------- */

enum ferry_err cloud_http_db_rollout_ids(struct cloud_http_db *db, unsigned limit,
                                         cloud_http_id_cb cb, void *arg, struct ferry_diag *d)
{
    sqlite3_stmt *s = db->rollout_ids;
    int rc = sqlite3_reset(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 1, (int)limit);
    enum ferry_err err = FERRY_OK;
    while (rc == SQLITE_OK && err == FERRY_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        err = cb(arg, sqlite3_column_int64(s, 0));
    }
    if (err == FERRY_OK && rc != SQLITE_DONE && rc != SQLITE_OK)
        err = db_fail(db, rc, "listing rollouts", d);
    sqlite3_reset(s);
    return err;
}

static bool read_rollout(sqlite3_stmt *s, struct cloud_rollout *r)
{
    char state[32];
    memset(r, 0, sizeof(*r));
    uint64_t u = 0;
    bool ok = column_int(s, 0, &r->id) && column_text(s, 1, r->product, sizeof(r->product)) &&
              column_text(s, 2, r->release, sizeof(r->release)) &&
              column_text(s, 3, r->version, sizeof(r->version)) && column_count(s, 4, &r->seq) &&
              column_text(s, 5, r->revert_release, sizeof(r->revert_release)) &&
              column_count(s, 6, &r->revert_seq) && column_text(s, 8, state, sizeof(state)) &&
              ferry_rollout_state_from_name(state, &r->state) == FERRY_OK &&
              column_count(s, 9, &u) && column_int(s, 10, &r->created_at) &&
              column_int(s, 11, &r->start_at) && column_int(s, 12, &r->state_at) &&
              column_int(s, 13, &r->retry_at) && column_count(s, 14, &r->revision) &&
              column_count(s, 15, &r->resume) &&
              column_text(s, 17, r->created_by, sizeof(r->created_by)) &&
              column_text(s, 18, r->reason, sizeof(r->reason));
    r->open_waves = (uint32_t)u;
    r->promoted = sqlite3_column_int(s, 16) != 0;
    const unsigned char *plan = sqlite3_column_text(s, 7);
    struct ferry_diag pd = {{0}};
    return ok && plan &&
           ferry_rollout_plan_from_json(plan, (size_t)sqlite3_column_bytes(s, 7), &r->plan, &pd) ==
               FERRY_OK &&
           u <= r->plan.nwaves;
}

enum ferry_err cloud_http_db_rollout(struct cloud_http_db *db, int64_t id,
                                     struct cloud_rollout *out, struct ferry_diag *d)
{
    sqlite3_stmt *s = db->rollout;
    int rc = sqlite3_reset(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 1, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    enum ferry_err err = FERRY_OK;
    if (rc == SQLITE_ROW && !read_rollout(s, out))
        err = ferry_fail(d, FERRY_E_CORRUPT,
                         "inventory %s: rollout %" PRId64 " holds what this Ferry never writes",
                         db->path, id);
    else if (rc == SQLITE_DONE)
        err = ferry_fail(d, FERRY_E_NOT_FOUND, "no rollout %" PRId64, id);
    else if (rc != SQLITE_ROW)
        err = db_fail(db, rc, "reading a rollout", d);
    sqlite3_reset(s);
    return err;
}

static struct tally_entry *tally_cached(struct cloud_http_db *db, const struct cloud_rollout *r)
{
    for (size_t i = 0; i < db->ntallies; i++) {
        struct tally_entry *e = &db->tallies[i];
        if (e->id == r->id && e->revision == r->revision && e->retry_at == r->retry_at &&
            e->nwaves == r->plan.nwaves)
            return e;
    }
    return NULL;
}

static void tally_keep(struct cloud_http_db *db, const struct cloud_rollout *r,
                       const struct cloud_wave_tally *waves, const struct cloud_halt_tally *halt)
{
    struct tally_entry *e = &db->tallies[db->next_tally];
    db->next_tally = (db->next_tally + 1) % TALLY_CACHE;
    if (db->ntallies < TALLY_CACHE)
        db->ntallies++;
    e->id = r->id;
    e->revision = r->revision;
    e->retry_at = r->retry_at;
    e->nwaves = r->plan.nwaves;
    memcpy(e->waves, waves, e->nwaves * sizeof(*waves));
    e->halt = *halt;
}

static enum ferry_err tally_read(struct cloud_http_db *db, const struct cloud_rollout *r,
                                 struct cloud_wave_tally *waves, struct cloud_halt_tally *halt,
                                 struct ferry_diag *d);

enum ferry_err cloud_http_db_rollout_tally(struct cloud_http_db *db, const struct cloud_rollout *r,
                                           struct cloud_wave_tally *waves,
                                           struct cloud_halt_tally *halt, struct ferry_diag *d)
{
    if (r->plan.nwaves > FERRY_ROLLOUT_MAX_WAVES)
        return ferry_fail(d, FERRY_E_CORRUPT, "inventory %s: rollout %" PRId64 " has %zu waves",
                          db->path, r->id, (size_t)r->plan.nwaves);
    bool ended = !cloud_rollout_is_active(r);
    const struct tally_entry *e = ended ? tally_cached(db, r) : NULL;
    if (e) {
        memcpy(waves, e->waves, e->nwaves * sizeof(*waves));
        *halt = e->halt;
        return FERRY_OK;
    }
    enum ferry_err err = tally_read(db, r, waves, halt, d);
    if (err == FERRY_OK && ended)
        tally_keep(db, r, waves, halt);
    return err;
}

static enum ferry_err tally_read(struct cloud_http_db *db, const struct cloud_rollout *r,
                                 struct cloud_wave_tally *waves, struct cloud_halt_tally *halt,
                                 struct ferry_diag *d)
{
    size_t nw = r->plan.nwaves;
    memset(waves, 0, nw * sizeof(*waves));
    memset(halt, 0, sizeof(*halt));
    sqlite3_stmt *s = db->tally;
    int rc = sqlite3_reset(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 1, r->id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 2, r->retry_at);
    while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        int64_t w = sqlite3_column_int64(s, 0);
        const unsigned char *name = sqlite3_column_text(s, 1);
        enum ferry_state st;
        uint64_t count = (uint64_t)sqlite3_column_int64(s, 2);
        if (w < 0 || (size_t)w >= nw)
            continue;
        waves[w].targets += count;
        /* '' is a target that has not reported on the release yet. */
        if (!name || !name[0] || ferry_state_from_name((const char *)name, &st) != FERRY_OK)
            continue;
        waves[w].by_state[st] += count;
        int64_t success_at = sqlite3_column_int64(s, 3);
        if (st == FERRY_STATE_SUCCESS && success_at > waves[w].last_success_at)
            waves[w].last_success_at = success_at;
        halt->finals += (uint64_t)sqlite3_column_int64(s, 4);
        halt->failed += (uint64_t)sqlite3_column_int64(s, 5);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return db_fail(db, rc, "counting a rollout's targets", d);
    s = db->waves;
    rc = sqlite3_reset(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 1, r->id);
    while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        int64_t w = sqlite3_column_int64(s, 0);
        if (w >= 0 && (size_t)w < nw)
            waves[w].opened_at = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? FERRY_OK : db_fail(db, rc, "reading a rollout's waves", d);
}

enum ferry_err cloud_http_db_rollout_log(struct cloud_http_db *db, int64_t id, int64_t before_id,
                                         unsigned limit, cloud_http_log_cb cb, void *arg,
                                         struct ferry_diag *d)
{
    sqlite3_stmt *s = db->log;
    int rc = sqlite3_reset(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 1, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 2, before_id > 0 ? before_id : INT64_MAX);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 3, (int)limit);
    enum ferry_err err = FERRY_OK;
    struct cloud_rollout_log_entry e;
    while (rc == SQLITE_OK && err == FERRY_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        memset(&e, 0, sizeof(e));
        if (column_int(s, 1, &e.at) && column_text(s, 2, e.actor, sizeof(e.actor)) &&
            column_text(s, 3, e.action, sizeof(e.action)) &&
            column_text(s, 4, e.reason, sizeof(e.reason)))
            err = cb(arg, sqlite3_column_int64(s, 0), &e);
        else
            err = ferry_fail(d, FERRY_E_CORRUPT,
                             "inventory %s: an entry of rollout %" PRId64 "'s log is damaged",
                             db->path, id);
    }
    if (err == FERRY_OK && rc != SQLITE_DONE && rc != SQLITE_OK)
        err = db_fail(db, rc, "reading a rollout's log", d);
    sqlite3_reset(s);
    return err;
}

/* ---- what changed
 * -------------------------------------------------------------------------------- */

enum ferry_err cloud_http_db_marks(struct cloud_http_db *db, struct cloud_http_marks *out,
                                   struct ferry_diag *d)
{
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *s = db->marks;
    int rc = sqlite3_reset(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        out->nodes_at = sqlite3_column_int64(s, 0); /* NULL reads as 0 */
        out->log_id = sqlite3_column_int64(s, 1);
        out->revisions = (uint64_t)sqlite3_column_int64(s, 2);
        out->active = (uint64_t)sqlite3_column_int64(s, 3);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_ROW)
        return db_fail(db, rc, "reading what changed", d);
    s = db->count_all;
    rc = sqlite3_reset(s);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        out->nodes = (uint64_t)sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW ? FERRY_OK : db_fail(db, rc, "counting nodes", d);
}
