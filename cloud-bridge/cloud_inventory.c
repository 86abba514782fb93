#include "cloud_inventory.h"

#include "cloud_db.h"
#include "cloud_inventory_priv.h"
#include "cloud_verdict.h"
#include "ferry_log.h"
#include "ferry_names.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define INT_MAX53 (INT64_C(1) << 53)
/* Refused records kept per node, and in all: the newest ones. */
#define REFUSED_PER_NODE 100
#define REFUSED_MAX      100000
/* The status columns of a record, and of a refused one. */
#define RECORD_ARGS  13
#define REFUSED_ARGS 15

struct cloud_inventory {
    struct cloud_db *db;
};

/* ---- open ---------------------------------------------------------------- */

enum ferry_err cloud_inventory_open(const char *target, bool create, struct cloud_inventory **out,
                                    struct ferry_diag *d)
{
    struct cloud_inventory *inv = calloc(1, sizeof(*inv));
    if (!inv)
        return ferry_fail(d, FERRY_E_NOMEM, "inventory %s: out of memory", target);
    enum ferry_err err = cloud_db_open(target, create, &inv->db, d);
    if (err != FERRY_OK) {
        free(inv);
        return err;
    }
    *out = inv;
    return FERRY_OK;
}

void cloud_inventory_close(struct cloud_inventory *inv)
{
    if (!inv)
        return;
    cloud_db_close(inv->db);
    free(inv);
}

struct cloud_db *cloud_inventory_db(struct cloud_inventory *inv)
{
    return inv->db;
}

/* ---- records in and out --------------------------------------------------- */

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

/* The record's columns as ?1..?11 (RECORD_COLUMNS of cloud_sql_*.c), the
 * time it arrived as ?12, its path's parents as ?13 (via_text() into via,
 * which must outlive the query). */
static void record_args(const struct ferry_status *st, int64_t now, char via[VIA_TEXT_MAX],
                        struct cloud_db_arg a[RECORD_ARGS])
{
    a[0] = DB_TEXT(st->node);
    a[1] = DB_INT(st->seq);
    a[2] = DB_TEXT(st->gateway);
    a[3] = DB_TEXT(st->release_id);
    a[4] = DB_TEXT(st->version);
    a[5] = DB_TEXT(ferry_state_name(st->state));
    a[6] = DB_INT(st->bytes);
    a[7] = DB_INT(st->total);
    a[8] = DB_TEXT(st->error == FERRY_OK ? "" : ferry_err_name(st->error));
    a[9] = DB_TEXT(st->message);
    a[10] = DB_INT(st->ts);
    a[11] = DB_INT(now);
    via_text(st, via);
    a[12] = DB_TEXT(via);
}

static bool column_count(const struct cloud_db_row *r, int col, uint64_t *out)
{
    int64_t v;
    if (!cloud_db_int(r, col, &v) || v < 0 || v > INT_MAX53)
        return false;
    *out = (uint64_t)v;
    return true;
}

/* A state and an error name ("" for none) into st. */
static bool column_names(const struct cloud_db_row *r, int state_col, int error_col,
                         struct ferry_status *st)
{
    char state[32], error[32];
    if (!cloud_db_text_copy(r, state_col, state, sizeof(state)) ||
        !cloud_db_text_copy(r, error_col, error, sizeof(error)))
        return false;
    if (ferry_state_from_name(state, &st->state) != FERRY_OK)
        return false;
    st->error = FERRY_OK;
    return !error[0] || (ferry_err_from_name(error, &st->error) == FERRY_OK);
}

/* The status columns gateway, release, version, state, bytes, total, error,
 * message starting at column `at`. */
static bool column_record(const struct cloud_db_row *r, int at, struct ferry_status *st)
{
    return cloud_db_text_copy(r, at, st->gateway, sizeof(st->gateway)) &&
           cloud_db_text_copy(r, at + 1, st->release_id, sizeof(st->release_id)) &&
           cloud_db_text_copy(r, at + 2, st->version, sizeof(st->version)) &&
           column_names(r, at + 3, at + 6, st) && column_count(r, at + 4, &st->bytes) &&
           column_count(r, at + 5, &st->total) &&
           cloud_db_text_copy(r, at + 7, st->message, sizeof(st->message));
}

/* ---- ingest -------------------------------------------------------------- */

struct text_out {
    char *out;
    size_t cap;
    bool ok;
};

static enum ferry_err take_text(void *arg, const struct cloud_db_row *r)
{
    struct text_out *t = arg;
    t->ok = cloud_db_text_copy(r, 0, t->out, t->cap);
    return FERRY_OK;
}

/* A one-row, one-column lookup of a binding; out "" when none. */
static enum ferry_err lookup_binding(struct cloud_inventory *inv, const char *child, char *out,
                                     size_t cap, struct ferry_diag *d)
{
    struct text_out t = {out, cap, true};
    out[0] = 0;
    enum ferry_err err = cloud_db_run(inv->db, CLOUD_Q_SELECT_BINDING, DB_ARGS(DB_TEXT(child)),
                                      take_text, &t, NULL, "reading a binding", d);
    if (err == FERRY_OK && !t.ok)
        err = ferry_fail(d, FERRY_E_CORRUPT, "inventory %s: a binding of '%s' is damaged",
                         cloud_db_name(inv->db), child);
    return err;
}

struct same_out {
    struct cloud_facts *f;
    bool ok;
};

static enum ferry_err take_same(void *arg, const struct cloud_db_row *r)
{
    struct same_out *o = arg;
    o->f->have_seq = true;
    o->ok = column_record(r, 0, &o->f->same) && cloud_db_int(r, 8, &o->f->same.ts);
    return FERRY_OK;
}

struct last_out {
    uint64_t *seq;
    bool ok;
};

static enum ferry_err take_last(void *arg, const struct cloud_db_row *r)
{
    struct last_out *o = arg;
    o->ok = column_count(r, 0, o->seq);
    return FERRY_OK;
}

/* What the inventory holds about st's node and seq, and about the hops of
 * path (npath of them). */
static enum ferry_err gather_facts(struct cloud_inventory *inv, const struct ferry_status *st,
                                   const char *const *path, size_t npath, struct cloud_facts *f,
                                   struct ferry_diag *d)
{
    memset(f, 0, sizeof(*f));
    f->same = *st;
    struct same_out so = {f, true};
    enum ferry_err err =
        cloud_db_run(inv->db, CLOUD_Q_SELECT_SAME, DB_ARGS(DB_TEXT(st->node), DB_INT(st->seq)),
                     take_same, &so, NULL, "reading a stored record", d);
    if (err == FERRY_OK && !so.ok)
        err = ferry_fail(d, FERRY_E_CORRUPT, "inventory %s: node %s seq %" PRIu64 " is damaged",
                         cloud_db_name(inv->db), st->node, st->seq);
    struct last_out lo = {&f->last_seq, true};
    if (err == FERRY_OK)
        err = cloud_db_run(inv->db, CLOUD_Q_SELECT_LAST, DB_ARGS(DB_TEXT(st->node)), take_last, &lo,
                           NULL, "reading a node", d);
    if (err == FERRY_OK && !lo.ok)
        err = ferry_fail(d, FERRY_E_CORRUPT, "inventory %s: the row of node %s is damaged",
                         cloud_db_name(inv->db), st->node);
    for (size_t i = 0; i + 1 < npath && err == FERRY_OK; i++)
        err = lookup_binding(inv, path[i], f->bound[i], sizeof(f->bound[i]), d);
    return err;
}

static enum ferry_err log_event(struct cloud_inventory *inv, int64_t at, const char *kind,
                                const char *node, const char *detail, struct ferry_diag *d)
{
    return cloud_db_run(inv->db, CLOUD_Q_INSERT_EVENT,
                        DB_ARGS(DB_INT(at), DB_TEXT(kind), DB_TEXT(node), DB_TEXT(detail)), NULL,
                        NULL, NULL, "logging an event", d);
}

static enum ferry_err put_binding(struct cloud_inventory *inv, const char *child,
                                  const char *parent, int64_t now, const char *how,
                                  struct ferry_diag *d)
{
    return cloud_db_run(inv->db, CLOUD_Q_UPSERT_BINDING,
                        DB_ARGS(DB_TEXT(child), DB_TEXT(parent), DB_INT(now), DB_TEXT(how)), NULL,
                        NULL, NULL, "storing a binding", d);
}

static enum ferry_err store(struct cloud_inventory *inv, const struct ferry_status *st,
                            const char *const *path, size_t npath, const struct cloud_judgement *j,
                            int64_t now, struct ferry_diag *d)
{
    struct cloud_db_arg a[RECORD_ARGS];
    char via[VIA_TEXT_MAX];
    record_args(st, now, via, a);
    enum ferry_err err = cloud_db_run(inv->db, CLOUD_Q_INSERT_RECORD, a, RECORD_ARGS, NULL, NULL,
                                      NULL, "storing a record", d);
    if (err == FERRY_OK)
        err = cloud_db_run(inv->db, CLOUD_Q_UPSERT_NODE, a, RECORD_ARGS, NULL, NULL, NULL,
                           "storing a record", d);
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
    struct cloud_db_arg a[REFUSED_ARGS];
    char via[VIA_TEXT_MAX];
    record_args(st, now, via, a);
    a[13] = DB_TEXT(ferry_err_name(j->reason));
    a[14] = DB_TEXT(j->detail);
    enum ferry_err err = cloud_db_run(inv->db, CLOUD_Q_INSERT_REFUSED, a, REFUSED_ARGS, NULL, NULL,
                                      NULL, "keeping a refused record", d);
    if (err == FERRY_OK)
        err =
            cloud_db_run(inv->db, CLOUD_Q_TRIM_REFUSED,
                         DB_ARGS(DB_TEXT(st->node), DB_INT(REFUSED_PER_NODE), DB_INT(REFUSED_MAX)),
                         NULL, NULL, NULL, "trimming refused records", d);
    return err;
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
            ferry_log_warn("inventory: refused node %s seq %" PRIu64 " from gateway %s (%s): %s%s",
                           recs[i].node, recs[i].seq, recs[i].gateway[0] ? recs[i].gateway : "?",
                           ferry_err_name(j[i].reason), j[i].detail, kept ? "; kept aside" : "");
        for (size_t k = 0; j[i].verdict == CLOUD_STORE && k + 1 < CLOUD_PATH_MAX; k++) {
            if (j[i].bind[k])
                ferry_log_info("inventory: node %s bound to gateway %s by its first record",
                               recs[i].node, recs[i].gateway);
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

/* The nodes of the batch, each once, in one order: so two batches locking
 * the same nodes never wait for each other in a circle. */
static int cmp_nodes(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static enum ferry_err lock_nodes(struct cloud_inventory *inv, const struct ferry_status *recs,
                                 size_t n, struct ferry_diag *d)
{
    const char **nodes = malloc(n * sizeof(*nodes));
    if (!nodes)
        return ferry_fail(d, FERRY_E_NOMEM, "inventory: out of memory");
    for (size_t i = 0; i < n; i++)
        nodes[i] = recs[i].node;
    qsort(nodes, n, sizeof(*nodes), cmp_nodes);
    enum ferry_err err = FERRY_OK;
    for (size_t i = 0; i < n && err == FERRY_OK; i++) {
        if (i == 0 || strcmp(nodes[i], nodes[i - 1]) != 0)
            err = cloud_db_run(inv->db, CLOUD_Q_LOCK_NODE, DB_ARGS(DB_TEXT(nodes[i])), NULL, NULL,
                               NULL, "locking a node", d);
    }
    free(nodes);
    return err;
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
    enum ferry_err err = cloud_db_begin(inv->db, CLOUD_DB_WRITE, d);
    if (err == FERRY_OK)
        err = lock_nodes(inv, recs, n, d);
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
        err = cloud_db_commit(inv->db, d);
    if (err != FERRY_OK) {
        cloud_db_rollback(inv->db);
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
    enum ferry_err err = cloud_db_begin(inv->db, CLOUD_DB_WRITE, d);
    if (err == FERRY_OK)
        err = cloud_db_run(inv->db, CLOUD_Q_LOCK_NODE, DB_ARGS(DB_TEXT(node)), NULL, NULL, NULL,
                           "locking a node", d);
    if (err == FERRY_OK)
        err = lookup_binding(inv, node, was, sizeof(was), d);
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
        err = cloud_db_commit(inv->db, d);
    if (err != FERRY_OK) {
        cloud_db_rollback(inv->db);
        return err;
    }
    if (previous)
        memcpy(previous, was, sizeof(was));
    return FERRY_OK;
}

/* ---- query --------------------------------------------------------------- */

enum ferry_err cloud_inventory_read_node(struct cloud_inventory *inv, const struct cloud_db_row *r,
                                         struct ferry_inventory_row *row, struct ferry_diag *d)
{
    struct ferry_status *st = &row->st;
    memset(row, 0, sizeof(*row));
    bool ok = cloud_db_text_copy(r, 0, st->node, sizeof(st->node)) && ferry_id_valid(st->node);
    if (!ok)
        return ferry_fail(d, FERRY_E_CORRUPT, "inventory %s: a node row has an invalid node id",
                          cloud_db_name(inv->db));
    /* The count of refused records is a 13th column where the query has one. */
    ok = column_record(r, 1, st) && column_count(r, 9, &st->seq) && cloud_db_int(r, 10, &st->ts) &&
         cloud_db_int(r, 11, &row->updated_at) &&
         (cloud_db_ncols(r) <= 12 || column_count(r, 12, &row->refused));
    /* The path's parents are a 14th column where the query has one. */
    char via[VIA_TEXT_MAX];
    if (ok && cloud_db_ncols(r) > 13)
        ok = cloud_db_text_copy(r, 13, via, sizeof(via)) && via_parse(via, st);
    if (!ok)
        return ferry_fail(d, FERRY_E_CORRUPT,
                          "inventory %s: the row of node '%s' holds a value ingestion never writes",
                          cloud_db_name(inv->db), st->node);
    return FERRY_OK;
}

/* The filter as ?1 release, ?2 gateway, ?3 state; NULL matches all. */
static void filter_args(const struct cloud_inventory_filter *f, struct cloud_db_arg a[3])
{
    a[0] = DB_TEXT_OR_NULL(f ? f->release : NULL);
    a[1] = DB_TEXT_OR_NULL(f ? f->gateway : NULL);
    a[2] = f && f->state ? DB_TEXT(ferry_state_name(*f->state)) : DB_NULL;
}

struct node_walk {
    struct cloud_inventory *inv;
    cloud_inventory_row_cb cb;
    void *arg;
    struct ferry_diag *d;
};

static enum ferry_err on_node_row(void *arg, const struct cloud_db_row *r)
{
    struct node_walk *w = arg;
    struct ferry_inventory_row row;
    enum ferry_err err = cloud_inventory_read_node(w->inv, r, &row, w->d);
    return err == FERRY_OK ? w->cb(w->arg, &row) : err;
}

enum ferry_err cloud_inventory_each_node(struct cloud_inventory *inv,
                                         const struct cloud_inventory_filter *filter,
                                         cloud_inventory_row_cb cb, void *arg, struct ferry_diag *d)
{
    struct cloud_db_arg a[3];
    filter_args(filter, a);
    struct node_walk w = {inv, cb, arg, d};
    return cloud_db_run(inv->db, CLOUD_Q_SELECT_NODES, a, 3, on_node_row, &w, NULL,
                        "querying nodes", d);
}

struct refused_walk {
    struct cloud_inventory *inv;
    cloud_inventory_refused_cb cb;
    void *arg;
    struct ferry_diag *d;
};

static enum ferry_err on_refused_row(void *arg, const struct cloud_db_row *r)
{
    struct refused_walk *w = arg;
    struct ferry_refused_row row;
    struct ferry_status *st = &row.st;
    char reason[32];
    memset(&row, 0, sizeof(row));
    bool ok = cloud_db_text_copy(r, 0, st->node, sizeof(st->node)) && ferry_id_valid(st->node) &&
              column_record(r, 1, st) && column_count(r, 9, &st->seq) &&
              cloud_db_int(r, 10, &st->ts) && cloud_db_int(r, 11, &row.received_at) &&
              cloud_db_text_copy(r, 12, reason, sizeof(reason)) &&
              ferry_err_from_name(reason, &row.reason) == FERRY_OK &&
              cloud_db_text_copy(r, 13, row.detail, sizeof(row.detail));
    if (!ok)
        return ferry_fail(w->d, FERRY_E_CORRUPT,
                          "inventory %s: a refused record holds a value ingestion never writes",
                          cloud_db_name(w->inv->db));
    return w->cb(w->arg, &row);
}

enum ferry_err cloud_inventory_each_refused(struct cloud_inventory *inv,
                                            const struct cloud_inventory_filter *filter,
                                            cloud_inventory_refused_cb cb, void *arg,
                                            struct ferry_diag *d)
{
    struct cloud_db_arg a[3];
    filter_args(filter, a);
    struct refused_walk w = {inv, cb, arg, d};
    return cloud_db_run(inv->db, CLOUD_Q_SELECT_REFUSED, a, 3, on_refused_row, &w, NULL,
                        "querying refused records", d);
}

struct event_walk {
    struct cloud_inventory *inv;
    cloud_inventory_event_cb cb;
    void *arg;
    struct ferry_diag *d;
};

static enum ferry_err on_event_row(void *arg, const struct cloud_db_row *r)
{
    struct event_walk *w = arg;
    struct ferry_event_row row;
    memset(&row, 0, sizeof(row));
    bool ok = cloud_db_int(r, 0, &row.at) && cloud_db_text_copy(r, 1, row.kind, sizeof(row.kind)) &&
              cloud_db_text_copy(r, 2, row.node, sizeof(row.node)) &&
              cloud_db_text_copy(r, 3, row.detail, sizeof(row.detail));
    return ok ? w->cb(w->arg, &row)
              : ferry_fail(w->d, FERRY_E_CORRUPT, "inventory %s: an event row is damaged",
                           cloud_db_name(w->inv->db));
}

enum ferry_err cloud_inventory_each_event(struct cloud_inventory *inv, cloud_inventory_event_cb cb,
                                          void *arg, struct ferry_diag *d)
{
    struct event_walk w = {inv, cb, arg, d};
    return cloud_db_run(inv->db, CLOUD_Q_SELECT_EVENTS, NULL, 0, on_event_row, &w, NULL,
                        "querying events", d);
}
