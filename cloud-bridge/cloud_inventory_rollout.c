#include "cloud_inventory_rollout.h"

#include "cloud_inventory_priv.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PART_NAME    "rollouts"
#define PART_VERSION 1

/* Created where missing; the index on nodes(updated_at) lets the controller
 * read only what changed since its last look. */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS inventory_parts (part TEXT PRIMARY KEY NOT NULL,"
    " version INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS rollouts ("
    " id INTEGER PRIMARY KEY, product TEXT NOT NULL, release TEXT NOT NULL,"
    " version TEXT NOT NULL, seq INTEGER NOT NULL, envelope BLOB NOT NULL,"
    " revert_release TEXT NOT NULL, revert_seq INTEGER NOT NULL, revert_envelope BLOB,"
    " plan TEXT NOT NULL, state TEXT NOT NULL, open_waves INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL, start_at INTEGER NOT NULL, state_at INTEGER NOT NULL,"
    " retry_at INTEGER NOT NULL, revision INTEGER NOT NULL, resume INTEGER NOT NULL,"
    " promoted INTEGER NOT NULL, created_by TEXT NOT NULL, reason TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS rollouts_state ON rollouts (state);"
    "CREATE TABLE IF NOT EXISTS rollout_waves (rollout INTEGER NOT NULL, wave INTEGER NOT NULL,"
    " opened_at INTEGER NOT NULL, PRIMARY KEY (rollout, wave)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS rollout_targets ("
    " rollout INTEGER NOT NULL, node TEXT NOT NULL, gateway TEXT NOT NULL,"
    " wave INTEGER NOT NULL, win INTEGER NOT NULL, state TEXT NOT NULL, seq INTEGER NOT NULL,"
    " state_at INTEGER NOT NULL, final_at INTEGER NOT NULL, revert_state TEXT NOT NULL,"
    " revert_seq INTEGER NOT NULL, PRIMARY KEY (rollout, node)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS rollout_targets_gw ON rollout_targets (rollout, gateway);"
    "CREATE TABLE IF NOT EXISTS rollout_log (id INTEGER PRIMARY KEY, rollout INTEGER NOT NULL,"
    " at INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, reason TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS rollout_log_rollout ON rollout_log (rollout, id);"
    "CREATE TABLE IF NOT EXISTS rollout_gw_halts (rollout INTEGER NOT NULL,"
    " gateway TEXT NOT NULL, resume INTEGER NOT NULL,"
    " PRIMARY KEY (rollout, gateway, resume)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS node_info (node TEXT PRIMARY KEY NOT NULL,"
    " gateway TEXT NOT NULL, product TEXT NOT NULL, doc TEXT NOT NULL,"
    " updated_at INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS node_info_product ON node_info (product, updated_at);"
    "CREATE INDEX IF NOT EXISTS nodes_updated ON nodes (updated_at);"
    "INSERT OR IGNORE INTO inventory_parts (part, version) VALUES ('" PART_NAME "', 1);";

#define ROLLOUT_COLUMNS                                                                            \
    "id, product, release, version, seq, envelope, revert_release, revert_seq,"                    \
    " revert_envelope, plan, state, open_waves, created_at, start_at, state_at, retry_at,"         \
    " revision, resume, promoted, created_by, reason"

static const char *const FINAL_STATES_SQL = "('success','failed','rolled-back','rejected')";

/* ---- helpers ---------------------------------------------------------------------------- */

static enum ferry_err prep(struct cloud_inventory *inv, const char *sql, sqlite3_stmt **st,
                           struct ferry_diag *d)
{
    int rc = sqlite3_prepare_v2(cloud_inventory_sqlite(inv), sql, -1, st, NULL);
    return rc == SQLITE_OK ? FERRY_OK : cloud_inventory_fail(inv, rc, "preparing rollout SQL", d);
}

static enum ferry_err exec(struct cloud_inventory *inv, const char *sql, const char *doing,
                           struct ferry_diag *d)
{
    int rc = sqlite3_exec(cloud_inventory_sqlite(inv), sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? FERRY_OK : cloud_inventory_fail(inv, rc, doing, d);
}

/* Runs a statement that returns no rows and finalizes it. */
static enum ferry_err finish(struct cloud_inventory *inv, sqlite3_stmt *st, int rc,
                             const char *doing, struct ferry_diag *d)
{
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    enum ferry_err err = rc == SQLITE_DONE ? FERRY_OK : cloud_inventory_fail(inv, rc, doing, d);
    sqlite3_finalize(st);
    return err;
}

static void text_col(sqlite3_stmt *s, int col, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static enum ferry_err blob_col(sqlite3_stmt *s, int col, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (sqlite3_column_type(s, col) == SQLITE_NULL)
        return FERRY_OK;
    const void *b = sqlite3_column_blob(s, col);
    int n = sqlite3_column_bytes(s, col);
    if (n <= 0)
        return FERRY_OK;
    *out = malloc((size_t)n);
    if (!*out)
        return FERRY_E_NOMEM;
    memcpy(*out, b, (size_t)n);
    *len = (size_t)n;
    return FERRY_OK;
}

static int state_index(const unsigned char *name)
{
    enum ferry_state s;
    return name && name[0] && ferry_state_from_name((const char *)name, &s) == FERRY_OK ? (int)s
                                                                                        : -1;
}

enum ferry_err cloud_inventory_rollout_schema(struct cloud_inventory *inv, struct ferry_diag *d)
{
    enum ferry_err err = exec(inv, "BEGIN IMMEDIATE", "locking for the rollout tables", d);
    if (err == FERRY_OK)
        err = exec(inv, schema_sql, "creating the rollout tables", d);
    sqlite3_stmt *st = NULL;
    if (err == FERRY_OK)
        err = prep(inv, "SELECT version FROM inventory_parts WHERE part = '" PART_NAME "'", &st, d);
    if (err == FERRY_OK) {
        int rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            err = cloud_inventory_fail(inv, rc, "reading the rollout tables' version", d);
        else if (sqlite3_column_int(st, 0) != PART_VERSION)
            err = ferry_fail(d, FERRY_E_CORRUPT,
                             "inventory: rollout tables of version %d, this Ferry reads %d",
                             sqlite3_column_int(st, 0), PART_VERSION);
    }
    sqlite3_finalize(st);
    if (err == FERRY_OK)
        return exec(inv, "COMMIT", "committing the rollout tables", d);
    sqlite3_exec(cloud_inventory_sqlite(inv), "ROLLBACK", NULL, NULL, NULL);
    return err;
}

/* ---- rollouts ----------------------------------------------------------------------------- */

void cloud_rollout_clear(struct cloud_rollout *r)
{
    free(r->envelope);
    free(r->revert_envelope);
    memset(r, 0, sizeof(*r));
}

enum ferry_err cloud_rollouts_begin(struct cloud_inventory *inv, struct ferry_diag *d)
{
    return exec(inv, "BEGIN IMMEDIATE", "starting a rollout transaction", d);
}

enum ferry_err cloud_rollouts_commit(struct cloud_inventory *inv, struct ferry_diag *d)
{
    return exec(inv, "COMMIT", "committing a rollout transaction", d);
}

void cloud_rollouts_rollback(struct cloud_inventory *inv)
{
    sqlite3_exec(cloud_inventory_sqlite(inv), "ROLLBACK", NULL, NULL, NULL);
}

enum ferry_err cloud_rollout_insert(struct cloud_inventory *inv, struct cloud_rollout *r,
                                    const char *actor, struct ferry_diag *d)
{
    char *plan = NULL;
    size_t plan_len = 0;
    enum ferry_err err = ferry_rollout_plan_to_json(&r->plan, &plan, &plan_len, d);
    if (err != FERRY_OK)
        return err;
    sqlite3_stmt *st = NULL;
    err = prep(inv,
               "INSERT INTO rollouts (product, release, version, seq, envelope, revert_release,"
               " revert_seq, revert_envelope, plan, state, open_waves, created_at, start_at,"
               " state_at, retry_at, revision, resume, promoted, created_by, reason)"
               " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,"
               " ?17, ?18, ?19, ?20)",
               &st, d);
    if (err != FERRY_OK) {
        free(plan);
        return err;
    }
    int rc = sqlite3_bind_text(st, 1, r->product, -1, SQLITE_STATIC);
    rc = rc ? rc : sqlite3_bind_text(st, 2, r->release, -1, SQLITE_STATIC);
    rc = rc ? rc : sqlite3_bind_text(st, 3, r->version, -1, SQLITE_STATIC);
    rc = rc ? rc : sqlite3_bind_int64(st, 4, (sqlite3_int64)r->seq);
    rc = rc ? rc : sqlite3_bind_blob(st, 5, r->envelope, (int)r->envelope_len, SQLITE_STATIC);
    rc = rc ? rc : sqlite3_bind_text(st, 6, r->revert_release, -1, SQLITE_STATIC);
    rc = rc ? rc : sqlite3_bind_int64(st, 7, (sqlite3_int64)r->revert_seq);
    rc = rc ? rc
         : r->revert_envelope
             ? sqlite3_bind_blob(st, 8, r->revert_envelope, (int)r->revert_len, SQLITE_STATIC)
             : sqlite3_bind_null(st, 8);
    rc = rc ? rc : sqlite3_bind_text(st, 9, plan, (int)plan_len, SQLITE_STATIC);
    rc = rc ? rc : sqlite3_bind_text(st, 10, ferry_rollout_state_name(r->state), -1, SQLITE_STATIC);
    rc = rc ? rc : sqlite3_bind_int64(st, 11, r->open_waves);
    rc = rc ? rc : sqlite3_bind_int64(st, 12, r->created_at);
    rc = rc ? rc : sqlite3_bind_int64(st, 13, r->start_at);
    rc = rc ? rc : sqlite3_bind_int64(st, 14, r->state_at);
    rc = rc ? rc : sqlite3_bind_int64(st, 15, r->retry_at);
    rc = rc ? rc : sqlite3_bind_int64(st, 16, (sqlite3_int64)r->revision);
    rc = rc ? rc : sqlite3_bind_int64(st, 17, (sqlite3_int64)r->resume);
    rc = rc ? rc : sqlite3_bind_int(st, 18, r->promoted);
    rc = rc ? rc : sqlite3_bind_text(st, 19, r->created_by, -1, SQLITE_STATIC);
    rc = rc ? rc : sqlite3_bind_text(st, 20, r->reason, -1, SQLITE_STATIC);
    err = finish(inv, st, rc, "storing the rollout", d);
    free(plan);
    if (err != FERRY_OK)
        return err;
    r->id = (int64_t)sqlite3_last_insert_rowid(cloud_inventory_sqlite(inv));
    return cloud_rollout_log(inv, r->id, r->created_at, actor, "created", r->reason, d);
}

static enum ferry_err read_rollout(struct cloud_inventory *inv, sqlite3_stmt *s,
                                   struct cloud_rollout *r, struct ferry_diag *d)
{
    memset(r, 0, sizeof(*r));
    r->id = sqlite3_column_int64(s, 0);
    text_col(s, 1, r->product, sizeof(r->product));
    text_col(s, 2, r->release, sizeof(r->release));
    text_col(s, 3, r->version, sizeof(r->version));
    r->seq = (uint64_t)sqlite3_column_int64(s, 4);
    text_col(s, 6, r->revert_release, sizeof(r->revert_release));
    r->revert_seq = (uint64_t)sqlite3_column_int64(s, 7);
    char state[32];
    text_col(s, 10, state, sizeof(state));
    r->open_waves = (uint32_t)sqlite3_column_int64(s, 11);
    r->created_at = sqlite3_column_int64(s, 12);
    r->start_at = sqlite3_column_int64(s, 13);
    r->state_at = sqlite3_column_int64(s, 14);
    r->retry_at = sqlite3_column_int64(s, 15);
    r->revision = (uint64_t)sqlite3_column_int64(s, 16);
    r->resume = (uint64_t)sqlite3_column_int64(s, 17);
    r->promoted = sqlite3_column_int(s, 18) != 0;
    text_col(s, 19, r->created_by, sizeof(r->created_by));
    text_col(s, 20, r->reason, sizeof(r->reason));
    const unsigned char *plan = sqlite3_column_text(s, 9);
    enum ferry_err err =
        plan ? ferry_rollout_plan_from_json(plan, (size_t)sqlite3_column_bytes(s, 9), &r->plan, d)
             : FERRY_E_CORRUPT;
    if (err == FERRY_OK && ferry_rollout_state_from_name(state, &r->state) != FERRY_OK)
        err = FERRY_E_CORRUPT;
    if (err == FERRY_OK && r->open_waves > r->plan.nwaves)
        err = FERRY_E_CORRUPT;
    if (err == FERRY_OK && (blob_col(s, 5, &r->envelope, &r->envelope_len) != FERRY_OK ||
                            blob_col(s, 8, &r->revert_envelope, &r->revert_len) != FERRY_OK))
        err = ferry_fail(d, FERRY_E_NOMEM, "inventory: out of memory reading rollout %" PRId64,
                         r->id);
    if (err == FERRY_OK && !r->envelope)
        err = FERRY_E_CORRUPT;
    if (err != FERRY_OK) {
        int64_t id = r->id;
        cloud_rollout_clear(r);
        if (err == FERRY_E_CORRUPT || err == FERRY_E_MALFORMED)
            return ferry_fail(d, FERRY_E_CORRUPT,
                              "inventory: rollout %" PRId64 " holds what this Ferry never writes",
                              id);
    }
    (void)inv;
    return err;
}

enum ferry_err cloud_rollout_load(struct cloud_inventory *inv, int64_t id,
                                  struct cloud_rollout *out, struct ferry_diag *d)
{
    sqlite3_stmt *st = NULL;
    enum ferry_err err =
        prep(inv, "SELECT " ROLLOUT_COLUMNS " FROM rollouts WHERE id = ?1", &st, d);
    if (err != FERRY_OK)
        return err;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        err = read_rollout(inv, st, out, d);
    else if (rc == SQLITE_DONE)
        err = ferry_fail(d, FERRY_E_NOT_FOUND, "no rollout %" PRId64, id);
    else
        err = cloud_inventory_fail(inv, rc, "reading a rollout", d);
    sqlite3_finalize(st);
    return err;
}

enum ferry_err cloud_rollout_save(struct cloud_inventory *inv, const struct cloud_rollout *r,
                                  struct ferry_diag *d)
{
    sqlite3_stmt *st = NULL;
    enum ferry_err err =
        prep(inv,
             "UPDATE rollouts SET state = ?2, open_waves = ?3, state_at = ?4, retry_at = ?5,"
             " revision = ?6, resume = ?7, promoted = ?8, reason = ?9 WHERE id = ?1",
             &st, d);
    if (err != FERRY_OK)
        return err;
    int rc = sqlite3_bind_int64(st, 1, r->id);
    rc = rc ? rc : sqlite3_bind_text(st, 2, ferry_rollout_state_name(r->state), -1, SQLITE_STATIC);
    rc = rc ? rc : sqlite3_bind_int64(st, 3, r->open_waves);
    rc = rc ? rc : sqlite3_bind_int64(st, 4, r->state_at);
    rc = rc ? rc : sqlite3_bind_int64(st, 5, r->retry_at);
    rc = rc ? rc : sqlite3_bind_int64(st, 6, (sqlite3_int64)r->revision);
    rc = rc ? rc : sqlite3_bind_int64(st, 7, (sqlite3_int64)r->resume);
    rc = rc ? rc : sqlite3_bind_int(st, 8, r->promoted);
    rc = rc ? rc : sqlite3_bind_text(st, 9, r->reason, -1, SQLITE_STATIC);
    return finish(inv, st, rc, "saving a rollout", d);
}

bool cloud_rollout_is_active(const struct cloud_rollout *r)
{
    return !ferry_rollout_state_is_final(r->state);
}

enum ferry_err cloud_rollout_ids(struct cloud_inventory *inv, int64_t final_since, int64_t **ids,
                                 size_t *n, struct ferry_diag *d)
{
    sqlite3_stmt *st = NULL;
    enum ferry_err err = prep(inv,
                              "SELECT id FROM rollouts WHERE state NOT IN ('cancelled','completed')"
                              " OR state_at >= ?1 ORDER BY id",
                              &st, d);
    if (err != FERRY_OK)
        return err;
    sqlite3_bind_int64(st, 1, final_since);
    int64_t *v = NULL;
    size_t k = 0, cap = 0;
    int rc;
    while (err == FERRY_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (k == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *grown = realloc(v, cap * sizeof(*v));
            if (!grown) {
                err = ferry_fail(d, FERRY_E_NOMEM, "inventory: out of memory");
                break;
            }
            v = grown;
        }
        v[k++] = sqlite3_column_int64(st, 0);
    }
    if (err == FERRY_OK && rc != SQLITE_DONE)
        err = cloud_inventory_fail(inv, rc, "listing rollouts", d);
    sqlite3_finalize(st);
    if (err != FERRY_OK) {
        free(v);
        return err;
    }
    *ids = v;
    *n = k;
    return FERRY_OK;
}

enum ferry_err cloud_rollout_active_for(struct cloud_inventory *inv, const char *product,
                                        int64_t *id, struct ferry_diag *d)
{
    sqlite3_stmt *st = NULL;
    enum ferry_err err = prep(inv,
                              "SELECT id FROM rollouts WHERE product = ?1 AND state NOT IN"
                              " ('cancelled','completed') ORDER BY id LIMIT 1",
                              &st, d);
    if (err != FERRY_OK)
        return err;
    sqlite3_bind_text(st, 1, product, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE)
        err = FERRY_E_NOT_FOUND;
    else
        err = cloud_inventory_fail(inv, rc, "looking for an active rollout", d);
    sqlite3_finalize(st);
    return err;
}

/* ---- log ---------------------------------------------------------------------------------- */

enum ferry_err cloud_rollout_log(struct cloud_inventory *inv, int64_t id, int64_t at,
                                 const char *actor, const char *action, const char *reason,
                                 struct ferry_diag *d)
{
    sqlite3_stmt *st = NULL;
    enum ferry_err err = prep(inv,
                              "INSERT INTO rollout_log (rollout, at, actor, action, reason)"
                              " VALUES (?1, ?2, ?3, ?4, ?5)",
                              &st, d);
    if (err != FERRY_OK)
        return err;
    int rc = sqlite3_bind_int64(st, 1, id);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, at);
    rc = rc ? rc : sqlite3_bind_text(st, 3, actor, -1, SQLITE_STATIC);
    rc = rc ? rc : sqlite3_bind_text(st, 4, action, -1, SQLITE_STATIC);
    rc = rc ? rc : sqlite3_bind_text(st, 5, reason ? reason : "", -1, SQLITE_STATIC);
    return finish(inv, st, rc, "logging a rollout decision", d);
}

enum ferry_err cloud_rollout_each_log(struct cloud_inventory *inv, int64_t id,
                                      cloud_rollout_log_cb cb, void *arg, struct ferry_diag *d)
{
    sqlite3_stmt *st = NULL;
    enum ferry_err err = prep(inv,
                              "SELECT at, actor, action, reason FROM rollout_log"
                              " WHERE rollout = ?1 ORDER BY id",
                              &st, d);
    if (err != FERRY_OK)
        return err;
    sqlite3_bind_int64(st, 1, id);
    int rc;
    struct cloud_rollout_log_entry e;
    while (err == FERRY_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        e.at = sqlite3_column_int64(st, 0);
        text_col(st, 1, e.actor, sizeof(e.actor));
        text_col(st, 2, e.action, sizeof(e.action));
        text_col(st, 3, e.reason, sizeof(e.reason));
        err = cb(arg, &e);
    }
    if (err == FERRY_OK && rc != SQLITE_DONE)
        err = cloud_inventory_fail(inv, rc, "reading the decision log", d);
    sqlite3_finalize(st);
    return err;
}

/* ---- waves and tallies ------------------------------------------------------------------------
 */

enum ferry_err cloud_rollout_wave_opened(struct cloud_inventory *inv, int64_t id, unsigned wave,
                                         int64_t at, struct ferry_diag *d)
{
    sqlite3_stmt *st = NULL;
    enum ferry_err err = prep(inv,
                              "INSERT OR IGNORE INTO rollout_waves (rollout, wave, opened_at)"
                              " VALUES (?1, ?2, ?3)",
                              &st, d);
    if (err != FERRY_OK)
        return err;
    int rc = sqlite3_bind_int64(st, 1, id);
    rc = rc ? rc : sqlite3_bind_int(st, 2, (int)wave);
    rc = rc ? rc : sqlite3_bind_int64(st, 3, at);
    return finish(inv, st, rc, "recording a wave", d);
}

enum ferry_err cloud_rollout_tally(struct cloud_inventory *inv, const struct cloud_rollout *r,
                                   struct cloud_wave_tally *waves, struct cloud_halt_tally *halt,
                                   struct ferry_diag *d)
{
    size_t nw = r->plan.nwaves;
    memset(waves, 0, nw * sizeof(*waves));
    memset(halt, 0, sizeof(*halt));
    /* One pass in the key's order, counted here: a GROUP BY would sort. */
    sqlite3_stmt *st = NULL;
    enum ferry_err err =
        prep(inv, "SELECT wave, state, final_at FROM rollout_targets WHERE rollout = ?1", &st, d);
    if (err != FERRY_OK)
        return err;
    sqlite3_bind_int64(st, 1, r->id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t w = sqlite3_column_int64(st, 0);
        int s = state_index(sqlite3_column_text(st, 1));
        int64_t final_at = sqlite3_column_int64(st, 2);
        if (w < 0 || (size_t)w >= nw)
            continue;
        waves[w].targets++;
        if (s < 0)
            continue;
        waves[w].by_state[s]++;
        if (s == FERRY_STATE_SUCCESS && final_at > waves[w].last_success_at)
            waves[w].last_success_at = final_at;
        if (final_at > 0 && final_at >= r->retry_at) {
            halt->finals++;
            halt->failed += s == FERRY_STATE_FAILED || s == FERRY_STATE_ROLLED_BACK;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return cloud_inventory_fail(inv, rc, "counting targets", d);
    err = prep(inv, "SELECT wave, opened_at FROM rollout_waves WHERE rollout = ?1", &st, d);
    if (err != FERRY_OK)
        return err;
    sqlite3_bind_int64(st, 1, r->id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t w = sqlite3_column_int64(st, 0);
        if (w >= 0 && (size_t)w < nw)
            waves[w].opened_at = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? FERRY_OK : cloud_inventory_fail(inv, rc, "reading waves", d);
}

/* ---- targets --------------------------------------------------------------------------------- */

/* Described since, or reported since, and not a target under the same
 * gateway already: the two halves each read an index from `since` on
 * (CROSS JOIN fixes SQLite's join order: nodes first, by updated_at). */
static const char candidates_sql[] =
    "SELECT i.node, i.gateway, i.doc, COALESCE(n.version, ''), t.wave, t.gateway"
    " FROM node_info i LEFT JOIN nodes n ON n.node = i.node"
    " LEFT JOIN rollout_targets t ON t.rollout = ?1 AND t.node = i.node"
    " WHERE i.product = ?2 AND i.updated_at >= ?3 AND (t.node IS NULL OR t.gateway != i.gateway)"
    " UNION "
    "SELECT i.node, i.gateway, i.doc, n.version, t.wave, t.gateway"
    " FROM nodes n CROSS JOIN node_info i ON i.node = n.node"
    " LEFT JOIN rollout_targets t ON t.rollout = ?1 AND t.node = i.node"
    " WHERE n.updated_at >= ?3 AND i.product = ?2 AND (t.node IS NULL OR t.gateway != i.gateway)";

enum ferry_err cloud_rollout_candidates(struct cloud_inventory *inv, const struct cloud_rollout *r,
                                        int64_t since, cloud_rollout_candidate_cb cb, void *arg,
                                        struct ferry_diag *d)
{
    sqlite3_stmt *st = NULL;
    enum ferry_err err = prep(inv, candidates_sql, &st, d);
    if (err != FERRY_OK)
        return err;
    sqlite3_bind_int64(st, 1, r->id);
    sqlite3_bind_text(st, 2, r->product, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, since);
    int rc;
    struct ferry_nodeinfo info;
    char gateway[FERRY_ID_MAX + 1], version[FERRY_VERSION_MAX + 1], target_gw[FERRY_ID_MAX + 1];
    while (err == FERRY_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *doc = sqlite3_column_text(st, 2);
        struct ferry_diag pd = {{0}};
        if (!doc || ferry_nodeinfo_from_json(doc, (size_t)sqlite3_column_bytes(st, 2), &info,
                                             &pd) != FERRY_OK)
            continue; /* only ever written after the same check */
        text_col(st, 1, gateway, sizeof(gateway));
        text_col(st, 3, version, sizeof(version));
        struct cloud_rollout_candidate c = {.info = &info, .gateway = gateway, .version = version};
        if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
            c.targeted = true;
            c.wave = (unsigned)sqlite3_column_int(st, 4);
            text_col(st, 5, target_gw, sizeof(target_gw));
            c.target_gw = target_gw;
        }
        err = cb(arg, &c);
    }
    if (err == FERRY_OK && rc != SQLITE_DONE)
        err = cloud_inventory_fail(inv, rc, "looking for new targets", d);
    sqlite3_finalize(st);
    return err;
}

enum ferry_err cloud_rollout_target_put(struct cloud_inventory *inv, int64_t id, const char *node,
                                        const char *gateway, unsigned wave, int window,
                                        struct ferry_diag *d)
{
    sqlite3_stmt *st = NULL;
    enum ferry_err err =
        prep(inv,
             "INSERT INTO rollout_targets (rollout, node, gateway, wave, win, state, seq,"
             " state_at, final_at, revert_state, revert_seq)"
             " VALUES (?1, ?2, ?3, ?4, ?5, '', 0, 0, 0, '', 0)"
             " ON CONFLICT (rollout, node) DO UPDATE SET gateway = excluded.gateway",
             &st, d);
    if (err != FERRY_OK)
        return err;
    int rc = sqlite3_bind_int64(st, 1, id);
    rc = rc ? rc : sqlite3_bind_text(st, 2, node, -1, SQLITE_STATIC);
    rc = rc ? rc : sqlite3_bind_text(st, 3, gateway, -1, SQLITE_STATIC);
    rc = rc ? rc : sqlite3_bind_int(st, 4, (int)wave);
    rc = rc ? rc : sqlite3_bind_int(st, 5, window);
    return finish(inv, st, rc, "storing a target", d);
}

static enum ferry_err refresh_one(struct cloud_inventory *inv, const char *sql, int64_t id,
                                  const char *release, int64_t since, uint64_t *changed,
                                  struct ferry_diag *d)
{
    sqlite3_stmt *st = NULL;
    enum ferry_err err = prep(inv, sql, &st, d);
    if (err != FERRY_OK)
        return err;
    int rc = sqlite3_bind_int64(st, 1, id);
    rc = rc ? rc : sqlite3_bind_int64(st, 2, since);
    rc = rc ? rc : sqlite3_bind_text(st, 3, release, -1, SQLITE_STATIC);
    err = finish(inv, st, rc, "updating targets from the nodes' records", d);
    if (err == FERRY_OK)
        *changed += (uint64_t)sqlite3_changes(cloud_inventory_sqlite(inv));
    return err;
}

enum ferry_err cloud_rollout_refresh(struct cloud_inventory *inv, const struct cloud_rollout *r,
                                     int64_t since, uint64_t *changed, struct ferry_diag *d)
{
    /* The nodes that reported since `since` (by the updated_at index: the
     * unary + keeps SQLite from preferring the release index, which holds
     * every node that ever reported on the release), then each target by
     * its key. */
    char sql[1024];
    *changed = 0;
    snprintf(sql, sizeof(sql),
             "UPDATE rollout_targets SET (state, seq, state_at, final_at) ="
             " (SELECT n.state, n.seq, n.updated_at,"
             " CASE WHEN n.state IN %s THEN n.updated_at ELSE 0 END"
             " FROM nodes n WHERE n.node = rollout_targets.node)"
             " WHERE rollout = ?1 AND node IN (SELECT node FROM nodes WHERE updated_at >= ?2"
             " AND +release = ?3) AND seq < (SELECT seq FROM nodes n WHERE n.node = "
             "rollout_targets.node)",
             FINAL_STATES_SQL);
    enum ferry_err err = refresh_one(inv, sql, r->id, r->release, since, changed, d);
    if (err != FERRY_OK || !r->revert_release[0])
        return err;
    return refresh_one(inv,
                       "UPDATE rollout_targets SET (revert_state, revert_seq) ="
                       " (SELECT n.state, n.seq FROM nodes n WHERE n.node = rollout_targets.node)"
                       " WHERE rollout = ?1 AND node IN (SELECT node FROM nodes"
                       " WHERE updated_at >= ?2 AND +release = ?3) AND revert_seq <"
                       " (SELECT seq FROM nodes n WHERE n.node = rollout_targets.node)",
                       r->id, r->revert_release, since, changed, d);
}

enum ferry_err cloud_rollout_each_target(struct cloud_inventory *inv, int64_t id,
                                         const char *gateway, cloud_rollout_target_cb cb, void *arg,
                                         struct ferry_diag *d)
{
    sqlite3_stmt *st = NULL;
    enum ferry_err err = prep(inv,
                              "SELECT node, gateway, wave, win, state, revert_state, state_at"
                              " FROM rollout_targets WHERE rollout = ?1"
                              " AND (?2 IS NULL OR gateway = ?2) ORDER BY gateway, node",
                              &st, d);
    if (err != FERRY_OK)
        return err;
    sqlite3_bind_int64(st, 1, id);
    if (gateway)
        sqlite3_bind_text(st, 2, gateway, -1, SQLITE_STATIC);
    int rc;
    struct cloud_rollout_target t;
    while (err == FERRY_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        text_col(st, 0, t.node, sizeof(t.node));
        text_col(st, 1, t.gateway, sizeof(t.gateway));
        t.wave = (unsigned)sqlite3_column_int(st, 2);
        t.window = sqlite3_column_int(st, 3);
        t.state = state_index(sqlite3_column_text(st, 4));
        t.revert_state = state_index(sqlite3_column_text(st, 5));
        t.state_at = sqlite3_column_int64(st, 6);
        err = cb(arg, &t);
    }
    if (err == FERRY_OK && rc != SQLITE_DONE)
        err = cloud_inventory_fail(inv, rc, "listing targets", d);
    sqlite3_finalize(st);
    return err;
}

enum ferry_err cloud_rollout_each_node(struct cloud_inventory *inv, int64_t id,
                                       cloud_inventory_row_cb cb, void *arg, struct ferry_diag *d)
{
    sqlite3_stmt *st = NULL;
    enum ferry_err err =
        prep(inv,
             "SELECT n.node, n.gateway, n.release, n.version, n.state, n.bytes, n.total, n.error,"
             " n.message, n.seq, n.ts, n.updated_at FROM rollout_targets t"
             " JOIN nodes n ON n.node = t.node WHERE t.rollout = ?1 ORDER BY n.node",
             &st, d);
    if (err != FERRY_OK)
        return err;
    sqlite3_bind_int64(st, 1, id);
    int rc;
    struct ferry_inventory_row row;
    while (err == FERRY_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        err = cloud_inventory_read_node(inv, st, &row, d);
        if (err == FERRY_OK)
            err = cb(arg, &row);
    }
    if (err == FERRY_OK && rc != SQLITE_DONE)
        err = cloud_inventory_fail(inv, rc, "listing the rollout's nodes", d);
    sqlite3_finalize(st);
    return err;
}

enum ferry_err cloud_rollout_gateway_halt(struct cloud_inventory *inv, int64_t id,
                                          const char *gateway, uint64_t resume, bool *first,
                                          struct ferry_diag *d)
{
    sqlite3_stmt *st = NULL;
    enum ferry_err err = prep(inv,
                              "INSERT OR IGNORE INTO rollout_gw_halts (rollout, gateway, resume)"
                              " VALUES (?1, ?2, ?3)",
                              &st, d);
    if (err != FERRY_OK)
        return err;
    int rc = sqlite3_bind_int64(st, 1, id);
    rc = rc ? rc : sqlite3_bind_text(st, 2, gateway, -1, SQLITE_STATIC);
    rc = rc ? rc : sqlite3_bind_int64(st, 3, (sqlite3_int64)resume);
    err = finish(inv, st, rc, "recording a gateway's halt", d);
    if (err == FERRY_OK)
        *first = sqlite3_changes(cloud_inventory_sqlite(inv)) > 0;
    return err;
}

/* ---- node descriptions ---------------------------------------------------------------------- */

enum ferry_err cloud_nodeinfo_put(struct cloud_inventory *inv, const struct ferry_nodeinfo *ni,
                                  const char *gateway, int64_t now, struct ferry_diag *d)
{
    char *doc = NULL;
    size_t len = 0;
    if (!ferry_id_valid(gateway))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "node description: invalid gateway");
    enum ferry_err err = ferry_nodeinfo_to_json(ni, &doc, &len, d);
    if (err != FERRY_OK)
        return err;
    sqlite3_stmt *st = NULL;
    /* Unchanged descriptions keep their time: the controller reads only
     * what changed. */
    err = prep(inv,
               "INSERT INTO node_info (node, gateway, product, doc, updated_at)"
               " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (node) DO UPDATE SET"
               " gateway = excluded.gateway, product = excluded.product, doc = excluded.doc,"
               " updated_at = excluded.updated_at WHERE node_info.gateway != excluded.gateway"
               " OR node_info.doc != excluded.doc",
               &st, d);
    if (err == FERRY_OK) {
        int rc = sqlite3_bind_text(st, 1, ni->node, -1, SQLITE_STATIC);
        rc = rc ? rc : sqlite3_bind_text(st, 2, gateway, -1, SQLITE_STATIC);
        rc = rc ? rc : sqlite3_bind_text(st, 3, ni->product, -1, SQLITE_STATIC);
        rc = rc ? rc : sqlite3_bind_text(st, 4, doc, (int)len, SQLITE_STATIC);
        rc = rc ? rc : sqlite3_bind_int64(st, 5, now);
        err = finish(inv, st, rc, "storing a node description", d);
    }
    free(doc);
    return err;
}

enum ferry_err cloud_nodeinfo_get(struct cloud_inventory *inv, const char *node,
                                  struct ferry_nodeinfo *out, char gateway[FERRY_ID_MAX + 1],
                                  struct ferry_diag *d)
{
    sqlite3_stmt *st = NULL;
    enum ferry_err err = prep(inv, "SELECT doc, gateway FROM node_info WHERE node = ?1", &st, d);
    if (err != FERRY_OK)
        return err;
    sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *doc = sqlite3_column_text(st, 0);
        err = doc ? ferry_nodeinfo_from_json(doc, (size_t)sqlite3_column_bytes(st, 0), out, d)
                  : FERRY_E_CORRUPT;
        text_col(st, 1, gateway, FERRY_ID_MAX + 1);
    } else if (rc == SQLITE_DONE) {
        err = ferry_fail(d, FERRY_E_NOT_FOUND, "node %s has not described itself", node);
    } else {
        err = cloud_inventory_fail(inv, rc, "reading a node description", d);
    }
    sqlite3_finalize(st);
    return err;
}
