/* cloud_db: the driver-neutral part. Picks the driver from the target,
 * keeps the transaction state, checks calls against it, and reads columns
 * through the driver. */
#include "cloud_db.h"

#include "cloud_db_driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned query_flags[CLOUD_Q__COUNT] = {
#define CLOUD_Q_FLAGS(name, flags) [CLOUD_Q_##name] = (flags),
    CLOUD_DB_QUERIES(CLOUD_Q_FLAGS)
#undef CLOUD_Q_FLAGS
};

bool cloud_db_is_url(const char *target)
{
    return strncmp(target, "postgresql://", 13) == 0 || strncmp(target, "postgres://", 11) == 0;
}

enum ferry_err cloud_db_fail(const struct cloud_db *db, enum ferry_err err, const char *doing,
                             const char *why, struct ferry_diag *d)
{
    return ferry_fail(d, err, "inventory %s: %s: %s", db->name, doing, why ? why : "failed");
}

static enum ferry_err open_as(const char *target, bool create, bool read_only,
                              struct cloud_db **out, struct ferry_diag *d)
{
    if (!target || !target[0])
        return ferry_fail(d, FERRY_E_INVALID_ARG, "inventory: no database given (--db)");
    struct cloud_db *db = calloc(1, sizeof(*db));
    if (!db)
        return ferry_fail(d, FERRY_E_NOMEM, "inventory: out of memory");
    db->ops = cloud_db_is_url(target) ? &cloud_db_pg_ops : &cloud_db_sqlite_ops;
    db->read_only = read_only;
    enum ferry_err err = db->ops->open(db, target, create, d);
    if (err != FERRY_OK) {
        cloud_db_close(db);
        return err;
    }
    *out = db;
    return FERRY_OK;
}

enum ferry_err cloud_db_open(const char *target, bool create, struct cloud_db **out,
                             struct ferry_diag *d)
{
    return open_as(target, create, false, out, d);
}

enum ferry_err cloud_db_open_read(const char *target, struct cloud_db **out, struct ferry_diag *d)
{
    return open_as(target, false, true, out, d);
}

void cloud_db_close(struct cloud_db *db)
{
    if (!db)
        return;
    if (db->in_txn)
        db->ops->rollback(db);
    db->ops->close(db);
    free(db->name);
    free(db);
}

const char *cloud_db_name(const struct cloud_db *db)
{
    return db->name ? db->name : "?";
}

enum ferry_err cloud_db_begin(struct cloud_db *db, enum cloud_db_txn kind, struct ferry_diag *d)
{
    if (db->in_txn)
        return cloud_db_fail(db, FERRY_E_INVALID_ARG, "starting a transaction",
                             "one is already open", d);
    if ((kind == CLOUD_DB_READ) != db->read_only)
        return cloud_db_fail(
            db, FERRY_E_INVALID_ARG, "starting a transaction",
            db->read_only ? "the connection is read-only" : "not a read connection", d);
    enum ferry_err err = db->ops->begin(db, kind, d);
    db->in_txn = err == FERRY_OK;
    return err;
}

enum ferry_err cloud_db_commit(struct cloud_db *db, struct ferry_diag *d)
{
    if (!db->in_txn)
        return cloud_db_fail(db, FERRY_E_INVALID_ARG, "committing", "no transaction is open", d);
    enum ferry_err err = db->ops->commit(db, d);
    if (err != FERRY_OK)
        db->ops->rollback(db);
    db->in_txn = false;
    return err;
}

void cloud_db_rollback(struct cloud_db *db)
{
    if (db->in_txn)
        db->ops->rollback(db);
    db->in_txn = false;
}

bool cloud_db_in_txn(const struct cloud_db *db)
{
    return db->in_txn;
}

enum ferry_err cloud_db_run(struct cloud_db *db, enum cloud_q q, const struct cloud_db_arg *args,
                            size_t nargs, cloud_db_row_cb cb, void *arg, uint64_t *changed,
                            const char *doing, struct ferry_diag *d)
{
    if ((unsigned)q >= CLOUD_Q__COUNT)
        return cloud_db_fail(db, FERRY_E_INVALID_ARG, doing, "no such query", d);
    if (changed)
        *changed = 0;
    return db->ops->run(db, q, query_flags[q], args, nargs, cb, arg, changed, doing, d);
}

int cloud_db_ncols(const struct cloud_db_row *r)
{
    return r->db->ops->ncols(r);
}

bool cloud_db_null(const struct cloud_db_row *r, int col)
{
    return r->db->ops->null(r, col);
}

bool cloud_db_int(const struct cloud_db_row *r, int col, int64_t *out)
{
    return r->db->ops->get_int(r, col, out);
}

bool cloud_db_text(const struct cloud_db_row *r, int col, const char **s, size_t *len)
{
    return r->db->ops->get_text(r, col, s, len);
}

bool cloud_db_blob(const struct cloud_db_row *r, int col, const uint8_t **p, size_t *len)
{
    return r->db->ops->get_blob(r, col, p, len);
}

bool cloud_db_text_copy(const struct cloud_db_row *r, int col, char *out, size_t cap)
{
    const char *s = NULL;
    size_t len = 0;
    if (!cloud_db_text(r, col, &s, &len) || len >= cap || memchr(s, 0, len))
        return false;
    memcpy(out, s, len);
    out[len] = 0;
    return true;
}
