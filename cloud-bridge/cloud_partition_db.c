/* The lease table behind cloud_partition.h: the effects of a beat, through
 * cloud_db.h (the SQL is the LEASE_* queries of cloud_sql_*.c). */
#include "cloud_partition.h"

#include "ferry_names.h"

#include <string.h>

/* Leases this long expired are removed at the first beat. */
#define LEASE_PURGE_AFTER_MS (INT64_C(24) * 3600 * 1000)

struct live_names {
    char names[CLOUD_PARTITION_MAX_MEMBERS][FERRY_ID_MAX + 1];
    const char *ptrs[CLOUD_PARTITION_MAX_MEMBERS];
    size_t n;
    bool bad; /* a name that is not an id */
};

static enum ferry_err take_name(void *arg, const struct cloud_db_row *row)
{
    struct live_names *l = arg;
    if (l->n >= CLOUD_PARTITION_MAX_MEMBERS)
        return FERRY_OK; /* the query's LIMIT already says so */
    if (!cloud_db_text_copy(row, 0, l->names[l->n], sizeof(l->names[0]))) {
        l->bad = true;
        return FERRY_E_CORRUPT;
    }
    l->ptrs[l->n] = l->names[l->n];
    l->n++;
    return FERRY_OK;
}

/* In a transaction of its own that keeps every other writer out: two
 * instances starting together on PostgreSQL would otherwise race on the
 * catalogue. */
enum ferry_err cloud_partition_setup(struct cloud_db *db, const char *fleet, int64_t now,
                                     struct ferry_diag *d)
{
    enum ferry_err err = cloud_db_begin(db, CLOUD_DB_EXCLUSIVE, d);
    if (err != FERRY_OK)
        return err;
    err = cloud_db_run(db, CLOUD_Q_LEASE_TABLE, NULL, 0, NULL, NULL, NULL,
                       "creating the lease table", d);
    if (err == FERRY_OK)
        err = cloud_db_run(db, CLOUD_Q_LEASE_PURGE,
                           DB_ARGS(DB_TEXT(fleet), DB_INT(now - LEASE_PURGE_AFTER_MS)), NULL, NULL,
                           NULL, "removing old leases", d);
    if (err == FERRY_OK)
        return cloud_db_commit(db, d);
    cloud_db_rollback(db);
    return err;
}

enum ferry_err cloud_partition_beat(struct cloud_partition *p, struct cloud_db *db,
                                    const char *fleet, int64_t now, bool *changed,
                                    struct ferry_diag *d)
{
    struct live_names live = {.n = 0};
    if (changed)
        *changed = false;
    const char *self = cloud_partition_self(p);
    enum ferry_err err = cloud_db_run(
        db, CLOUD_Q_LEASE_PUT,
        DB_ARGS(DB_TEXT(fleet), DB_TEXT(self), DB_INT(now + cloud_partition_lease_ms(p))), NULL,
        NULL, NULL, "renewing the lease", d);
    if (err == FERRY_OK)
        err =
            cloud_db_run(db, CLOUD_Q_LEASE_LIVE,
                         DB_ARGS(DB_TEXT(fleet), DB_INT(now), DB_INT(CLOUD_PARTITION_MAX_MEMBERS)),
                         take_name, &live, NULL, "reading the live instances", d);
    if (live.bad)
        err = ferry_fail(d, err, "partition: an instance name in the lease table is not an id");
    if (err == FERRY_OK)
        err = cloud_partition_view(p, now, live.ptrs, live.n, changed, d);
    return err;
}

enum ferry_err cloud_partition_leave(struct cloud_partition *p, struct cloud_db *db,
                                     const char *fleet, struct ferry_diag *d)
{
    return cloud_db_run(db, CLOUD_Q_LEASE_DROP,
                        DB_ARGS(DB_TEXT(fleet), DB_TEXT(cloud_partition_self(p))), NULL, NULL, NULL,
                        "removing the lease", d);
}
