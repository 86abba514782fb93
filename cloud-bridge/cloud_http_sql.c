#include "cloud_http_sql.h"

#include "cloud_db.h"

#include "ferry_log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INT_MAX53 (INT64_C(1) << 53)

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
    struct cloud_db *db;
    struct tally_entry tallies[TALLY_CACHE];
    size_t ntallies, next_tally; /* entries used; the one replaced next */
};

static const char *name_of(const struct cloud_http_db *db)
{
    return cloud_db_name(db->db);
}

/* ---- columns --------------------------------------------------------------------------- */

static bool column_text(const struct cloud_db_row *r, int col, char *out, size_t cap)
{
    return cloud_db_text_copy(r, col, out, cap);
}

static bool column_count(const struct cloud_db_row *r, int col, uint64_t *out)
{
    int64_t v = 0;
    if (!cloud_db_int(r, col, &v) || v < 0 || v > INT_MAX53)
        return false;
    *out = (uint64_t)v;
    return true;
}

static bool column_int(const struct cloud_db_row *r, int col, int64_t *out)
{
    return cloud_db_int(r, col, out);
}

/* An integer column where NULL (an empty aggregate) reads as 0. */
static int64_t column_int_or_0(const struct cloud_db_row *r, int col)
{
    int64_t v = 0;
    return cloud_db_int(r, col, &v) ? v : 0;
}

/* node, gateway, release, version, state, bytes, total, error, message,
 * seq, ts from column `at` on. */
static bool column_record(const struct cloud_db_row *r, int at, struct ferry_status *st)
{
    char state[32], error[32];
    memset(st, 0, sizeof(*st));
    bool ok = column_text(r, at, st->node, sizeof(st->node)) && ferry_id_valid(st->node) &&
              column_text(r, at + 1, st->gateway, sizeof(st->gateway)) &&
              column_text(r, at + 2, st->release_id, sizeof(st->release_id)) &&
              column_text(r, at + 3, st->version, sizeof(st->version)) &&
              column_text(r, at + 4, state, sizeof(state)) &&
              ferry_state_from_name(state, &st->state) == FERRY_OK &&
              column_count(r, at + 5, &st->bytes) && column_count(r, at + 6, &st->total) &&
              column_text(r, at + 7, error, sizeof(error)) &&
              column_text(r, at + 8, st->message, sizeof(st->message)) &&
              column_count(r, at + 9, &st->seq) && column_int(r, at + 10, &st->ts);
    st->error = FERRY_OK;
    return ok && (!error[0] || ferry_err_from_name(error, &st->error) == FERRY_OK);
}

/* HTTP_NODE_COLUMNS (cloud_sql_*.c). */
static enum ferry_err read_node(const struct cloud_http_db *db, const struct cloud_db_row *r,
                                struct cloud_http_node *n, struct ferry_diag *d)
{
    memset(n, 0, sizeof(*n));
    if (!column_record(r, 0, &n->row.st) || !column_int(r, 11, &n->row.updated_at) ||
        !column_count(r, 12, &n->row.refused)) {
        char node[FERRY_ID_MAX + 1] = "?";
        column_text(r, 0, node, sizeof(node));
        return ferry_fail(d, FERRY_E_CORRUPT,
                          "inventory %s: the row of node '%s' holds a value ingestion never writes",
                          name_of(db), node);
    }
    const char *doc = NULL;
    size_t len = 0;
    struct ferry_diag pd = {{0}};
    /* Descriptions are checked before they are stored; one that no longer
     * reads is left out rather than failing the page. */
    n->described =
        cloud_db_text(r, 13, &doc, &len) &&
        ferry_nodeinfo_from_json((const unsigned char *)doc, len, &n->info, &pd) == FERRY_OK;
    return FERRY_OK;
}

/* ---- open ------------------------------------------------------------------------------- */

enum ferry_err cloud_http_db_open(const char *target, struct cloud_http_db **out,
                                  struct ferry_diag *d)
{
    struct cloud_http_db *db = calloc(1, sizeof(*db));
    if (!db)
        return ferry_fail(d, FERRY_E_NOMEM, "inventory %s: out of memory", target);
    enum ferry_err err = cloud_db_open_read(target, &db->db, d);
    if (err != FERRY_OK) {
        free(db);
        return err;
    }
    *out = db;
    return FERRY_OK;
}

void cloud_http_db_close(struct cloud_http_db *db)
{
    if (!db)
        return;
    cloud_db_close(db->db);
    free(db);
}

enum ferry_err cloud_http_db_read_begin(struct cloud_http_db *db, struct ferry_diag *d)
{
    return cloud_db_begin(db->db, CLOUD_DB_READ, d);
}

void cloud_http_db_read_end(struct cloud_http_db *db)
{
    if (cloud_db_in_txn(db->db))
        cloud_db_rollback(db->db); /* nothing was written */
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

#define FILTER_ARGS 19 /* HTTP_NODE_FILTER's ?1..?19 */

struct filter_args {
    struct cloud_db_arg a[FILTER_ARGS + 2]; /* and the nodes queries' cursor and limit */
    char tag[2 * (FERRY_TAG_KEY_MAX + FERRY_TAG_VALUE_MAX) + 32];
    char prefix[2 * FERRY_ID_MAX + 4];
};

/* The states wanted: ?1 whether any, ?2..?12 their names. */
static void state_args(uint32_t states, struct cloud_db_arg *a)
{
    a[0] = DB_INT(states != 0);
    for (int i = 1; i < 12; i++)
        a[i] = DB_NULL;
    for (int i = 0, p = 1; i < FERRY_STATE__COUNT && p < 12; i++) {
        if (states & (UINT32_C(1) << i))
            a[p++] = DB_TEXT(ferry_state_name((enum ferry_state)i));
    }
}

/* HTTP_NODE_FILTER's arguments for f; false when a pattern does not fit. */
static bool filter_args(const struct cloud_http_node_filter *f, struct filter_args *t)
{
    state_args(f ? f->states : 0, t->a);
    for (int i = 12; i < FILTER_ARGS + 2; i++)
        t->a[i] = DB_NULL;
    if (!f)
        return true;
    t->a[12] = DB_TEXT_OR_NULL(f->gateway);
    t->a[13] = DB_TEXT_OR_NULL(f->version);
    t->a[14] = DB_TEXT_OR_NULL(f->release);
    if (f->tag_key && f->tag_value) {
        /* ..."tags":{..."key":"value"...: the tags object is the document's last
         * member, and neither keys nor values can hold a quote. */
        const char *kv[2] = {f->tag_key, f->tag_value};
        if (!like_pattern("%\"tags\":{%\"", kv, 2, "\"%", t->tag, sizeof(t->tag)))
            return false;
        t->a[15] = DB_TEXT(t->tag);
    }
    if (f->prefix) {
        const char *p[1] = {f->prefix};
        if (!like_pattern("", p, 1, "%", t->prefix, sizeof(t->prefix)))
            return false;
        t->a[16] = DB_TEXT(t->prefix);
    }
    if (f->rollout)
        t->a[17] = DB_INT(f->rollout);
    if (f->rollout && f->wave)
        t->a[18] = DB_INT((int64_t)f->wave - 1);
    return true;
}

static enum ferry_err too_long(const struct cloud_http_db *db, struct ferry_diag *d)
{
    return ferry_fail(d, FERRY_E_INVALID_ARG, "inventory %s: querying nodes: a filter too long",
                      name_of(db));
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

/* A page of nodes: the query asks for one row more than the page, which
 * says whether there is more. */
struct nodes_walk {
    const struct cloud_http_db *db;
    unsigned limit, n;
    bool before, *more;
    struct cloud_http_node *rows; /* walking backwards: kept, to be given in ascending order */
    struct cloud_http_node one;
    cloud_http_node_cb cb;
    void *arg;
    struct ferry_diag *d;
};

static enum ferry_err nodes_row(void *arg, const struct cloud_db_row *r)
{
    struct nodes_walk *w = arg;
    if (w->n == w->limit) {
        *w->more = true;
        return FERRY_OK;
    }
    struct cloud_http_node *row = w->before ? &w->rows[w->n] : &w->one;
    enum ferry_err err = read_node(w->db, r, row, w->d);
    if (err == FERRY_OK && !w->before)
        err = w->cb(w->arg, row);
    w->n++;
    return err;
}

enum ferry_err cloud_http_db_nodes(struct cloud_http_db *db, const struct cloud_http_node_filter *f,
                                   const char *after, const char *before, unsigned limit,
                                   cloud_http_node_cb cb, void *arg, bool *more,
                                   struct ferry_diag *d)
{
    if (limit < 1 || limit > CLOUD_HTTP_PAGE_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "a page holds 1..%d nodes", CLOUD_HTTP_PAGE_MAX);
    struct filter_args t;
    if (!filter_args(f, &t))
        return too_long(db, d);
    t.a[FILTER_ARGS] = DB_TEXT(before ? before : after ? after : "");
    t.a[FILTER_ARGS + 1] = DB_INT(limit + 1);
    *more = false;
    struct nodes_walk w = {.db = db,
                           .limit = limit,
                           .before = before != NULL,
                           .more = more,
                           .cb = cb,
                           .arg = arg,
                           .d = d};
    if (before && !(w.rows = malloc(limit * sizeof(*w.rows))))
        return ferry_fail(d, FERRY_E_NOMEM, "out of memory for %u nodes", limit);
    /* With a gateway, the statements that reach its nodes by an index. */
    bool gw = f && f->gateway;
    enum cloud_q q = before ? (gw ? CLOUD_Q_HTTP_GW_NODES_BEFORE : CLOUD_Q_HTTP_NODES_BEFORE)
                            : (gw ? CLOUD_Q_HTTP_GW_NODES_AFTER : CLOUD_Q_HTTP_NODES_AFTER);
    enum ferry_err err =
        cloud_db_run(db->db, q, t.a, FILTER_ARGS + 2, nodes_row, &w, NULL, "querying nodes", d);
    for (unsigned i = w.n; err == FERRY_OK && before && i > 0; i--)
        err = cb(arg, &w.rows[i - 1]);
    free(w.rows);
    return err;
}

struct count_one {
    bool found, ok;
    uint64_t count;
};

static enum ferry_err count_row(void *arg, const struct cloud_db_row *r)
{
    struct count_one *c = arg;
    c->found = true;
    c->ok = column_count(r, 0, &c->count);
    return FERRY_OK;
}

enum ferry_err cloud_http_db_count_nodes(struct cloud_http_db *db,
                                         const struct cloud_http_node_filter *f, uint64_t *count,
                                         struct ferry_diag *d)
{
    struct count_one c = {0};
    enum ferry_err err;
    if (filter_empty(f)) {
        err = cloud_db_run(db->db, CLOUD_Q_HTTP_COUNT_ALL, NULL, 0, count_row, &c, NULL,
                           "counting nodes", d);
    } else if (filter_by_group(f)) {
        /* HTTP_COUNT_GROUPS: the states' ?1..?12, the version ?13. */
        struct cloud_db_arg a[13];
        state_args(f->states, a);
        a[12] = DB_TEXT_OR_NULL(f->version);
        err = cloud_db_run(db->db, CLOUD_Q_HTTP_COUNT_GROUPS, a, 13, count_row, &c, NULL,
                           "counting nodes", d);
    } else {
        struct filter_args t;
        if (!filter_args(f, &t))
            return too_long(db, d);
        err = cloud_db_run(db->db,
                           f->gateway ? CLOUD_Q_HTTP_GW_COUNT_NODES : CLOUD_Q_HTTP_COUNT_NODES, t.a,
                           FILTER_ARGS, count_row, &c, NULL, "counting nodes", d);
    }
    if (err == FERRY_OK && (!c.found || !c.ok))
        err = ferry_fail(d, FERRY_E_CORRUPT, "inventory %s: counting nodes: no count", name_of(db));
    if (err == FERRY_OK)
        *count = c.count;
    return err;
}

struct node_one {
    const struct cloud_http_db *db;
    struct cloud_http_node *out;
    bool found;
    struct ferry_diag *d;
};

static enum ferry_err node_row(void *arg, const struct cloud_db_row *r)
{
    struct node_one *o = arg;
    o->found = true;
    return read_node(o->db, r, o->out, o->d);
}

enum ferry_err cloud_http_db_node(struct cloud_http_db *db, const char *node,
                                  struct cloud_http_node *out, struct ferry_diag *d)
{
    struct node_one o = {db, out, false, d};
    enum ferry_err err = cloud_db_run(db->db, CLOUD_Q_HTTP_NODE, DB_ARGS(DB_TEXT(node)), node_row,
                                      &o, NULL, "reading a node", d);
    if (err == FERRY_OK && !o.found)
        err = ferry_fail(d, FERRY_E_NOT_FOUND, "no node '%s' in the inventory", node);
    return err;
}

struct binding_one {
    struct cloud_http_binding *out;
    bool damaged;
};

static enum ferry_err binding_row(void *arg, const struct cloud_db_row *r)
{
    struct binding_one *b = arg;
    b->damaged = !column_text(r, 0, b->out->gateway, sizeof(b->out->gateway)) ||
                 !column_int(r, 1, &b->out->since) ||
                 !column_text(r, 2, b->out->how, sizeof(b->out->how));
    return FERRY_OK;
}

enum ferry_err cloud_http_db_binding(struct cloud_http_db *db, const char *node,
                                     struct cloud_http_binding *out, struct ferry_diag *d)
{
    memset(out, 0, sizeof(*out));
    struct binding_one b = {out, false};
    enum ferry_err err = cloud_db_run(db->db, CLOUD_Q_HTTP_BINDING, DB_ARGS(DB_TEXT(node)),
                                      binding_row, &b, NULL, "reading a binding", d);
    if (err == FERRY_OK && b.damaged)
        err = ferry_fail(d, FERRY_E_CORRUPT, "inventory %s: the binding of node '%s' is damaged",
                         name_of(db), node);
    return err;
}

/* Rows handed on one by one: the callback and what a damaged row is. */
struct each {
    const struct cloud_http_db *db;
    const char *node;
    void *cb;
    void *arg;
    struct ferry_diag *d;
};

static enum ferry_err history_row(void *arg, const struct cloud_db_row *r)
{
    const struct each *e = arg;
    struct cloud_http_record rec;
    if (!column_record(r, 0, &rec.st) || !column_int(r, 11, &rec.received_at))
        return ferry_fail(e->d, FERRY_E_CORRUPT, "inventory %s: a record of node '%s' is damaged",
                          name_of(e->db), e->node);
    return ((cloud_http_record_cb)e->cb)(e->arg, &rec);
}

enum ferry_err cloud_http_db_history(struct cloud_http_db *db, const char *node,
                                     uint64_t before_seq, unsigned limit, cloud_http_record_cb cb,
                                     void *arg, struct ferry_diag *d)
{
    struct each e = {db, node, (void *)cb, arg, d};
    int64_t below =
        before_seq && before_seq <= (uint64_t)INT_MAX53 ? (int64_t)before_seq : INT_MAX53 + 1;
    return cloud_db_run(db->db, CLOUD_Q_HTTP_HISTORY,
                        DB_ARGS(DB_TEXT(node), DB_INT(below), DB_INT(limit)), history_row, &e, NULL,
                        "reading a node's records", d);
}

static enum ferry_err refused_row(void *arg, const struct cloud_db_row *r)
{
    const struct each *e = arg;
    struct ferry_refused_row rr;
    char reason[32];
    memset(&rr, 0, sizeof(rr));
    if (!column_record(r, 0, &rr.st) || !column_int(r, 11, &rr.received_at) ||
        !column_text(r, 12, reason, sizeof(reason)) ||
        ferry_err_from_name(reason, &rr.reason) != FERRY_OK ||
        !column_text(r, 13, rr.detail, sizeof(rr.detail)))
        return ferry_fail(e->d, FERRY_E_CORRUPT,
                          "inventory %s: a refused record of node '%s' is damaged", name_of(e->db),
                          e->node);
    return ((cloud_http_refused_cb)e->cb)(e->arg, &rr);
}

enum ferry_err cloud_http_db_refused(struct cloud_http_db *db, const char *node, unsigned limit,
                                     cloud_http_refused_cb cb, void *arg, struct ferry_diag *d)
{
    struct each e = {db, node, (void *)cb, arg, d};
    return cloud_db_run(db->db, CLOUD_Q_HTTP_REFUSED, DB_ARGS(DB_TEXT(node), DB_INT(limit)),
                        refused_row, &e, NULL, "reading a node's refused records", d);
}

static enum ferry_err changed_row(void *arg, const struct cloud_db_row *r)
{
    const struct each *e = arg;
    struct cloud_http_node n;
    enum ferry_err err = read_node(e->db, r, &n, e->d);
    return err == FERRY_OK ? ((cloud_http_node_cb)e->cb)(e->arg, &n) : err;
}

enum ferry_err cloud_http_db_changed(struct cloud_http_db *db, int64_t since, int64_t until,
                                     unsigned limit, cloud_http_node_cb cb, void *arg,
                                     struct ferry_diag *d)
{
    struct each e = {db, NULL, (void *)cb, arg, d};
    return cloud_db_run(db->db, CLOUD_Q_HTTP_CHANGED,
                        DB_ARGS(DB_INT(since), DB_INT(until), DB_INT(limit)), changed_row, &e, NULL,
                        "reading what changed", d);
}

/* ---- figures ------------------------------------------------------------------------------- */

struct group_walk {
    const struct cloud_http_db *db;
    cloud_http_group_cb cb;
    void *arg;
    const char *doing;
    struct ferry_diag *d;
};

static enum ferry_err group_row(void *arg, const struct cloud_db_row *r)
{
    const struct group_walk *g = arg;
    char a[FERRY_NAME_MAX + 1], b[FERRY_VERSION_MAX + 1];
    uint64_t count = 0;
    if (column_text(r, 0, a, sizeof(a)) && column_text(r, 1, b, sizeof(b)) &&
        column_count(r, 2, &count))
        return g->cb(g->arg, a, b, count);
    return ferry_fail(g->d, FERRY_E_CORRUPT, "inventory %s: %s: a damaged row", name_of(g->db),
                      g->doing);
}

static enum ferry_err groups(struct cloud_http_db *db, enum cloud_q q, unsigned limit,
                             cloud_http_group_cb cb, void *arg, const char *doing,
                             struct ferry_diag *d)
{
    struct group_walk g = {db, cb, arg, doing, d};
    return cloud_db_run(db->db, q, DB_ARGS(DB_INT(limit)), group_row, &g, NULL, doing, d);
}

enum ferry_err cloud_http_db_state_versions(struct cloud_http_db *db, unsigned limit,
                                            cloud_http_group_cb cb, void *arg, struct ferry_diag *d)
{
    return groups(db, CLOUD_Q_HTTP_STATE_VERSIONS, limit, cb, arg,
                  "counting nodes by state and version", d);
}

enum ferry_err cloud_http_db_release_states(struct cloud_http_db *db, unsigned limit,
                                            cloud_http_group_cb cb, void *arg, struct ferry_diag *d)
{
    return groups(db, CLOUD_Q_HTTP_RELEASE_STATES, limit, cb, arg, "counting nodes by release", d);
}

static enum ferry_err gateway_row(void *arg, const struct cloud_db_row *r)
{
    const struct each *e = arg;
    struct cloud_http_gateway_row g;
    memset(&g, 0, sizeof(g));
    if (column_text(r, 0, g.gateway, sizeof(g.gateway)) && column_count(r, 1, &g.nodes) &&
        column_count(r, 2, &g.busy) && column_count(r, 3, &g.failed) &&
        column_int(r, 4, &g.last_record))
        return ((cloud_http_gateway_cb)e->cb)(e->arg, &g);
    return ferry_fail(e->d, FERRY_E_CORRUPT, "inventory %s: a gateway's counts are damaged",
                      name_of(e->db));
}

enum ferry_err cloud_http_db_gateways(struct cloud_http_db *db, unsigned limit,
                                      cloud_http_gateway_cb cb, void *arg, struct ferry_diag *d)
{
    struct each e = {db, NULL, (void *)cb, arg, d};
    return cloud_db_run(db->db, CLOUD_Q_HTTP_GATEWAYS, DB_ARGS(DB_INT(limit)), gateway_row, &e,
                        NULL, "counting nodes by gateway", d);
}

/* ---- rollouts -------------------------------------------------------------------------------- */

static enum ferry_err rollout_id_row(void *arg, const struct cloud_db_row *r)
{
    const struct each *e = arg;
    return ((cloud_http_id_cb)e->cb)(e->arg, column_int_or_0(r, 0));
}

enum ferry_err cloud_http_db_rollout_ids(struct cloud_http_db *db, unsigned limit,
                                         cloud_http_id_cb cb, void *arg, struct ferry_diag *d)
{
    struct each e = {db, NULL, (void *)cb, arg, d};
    return cloud_db_run(db->db, CLOUD_Q_HTTP_ROLLOUT_IDS, DB_ARGS(DB_INT(limit)), rollout_id_row,
                        &e, NULL, "listing rollouts", d);
}

static bool read_rollout(const struct cloud_db_row *r, struct cloud_rollout *ro)
{
    char state[32];
    memset(ro, 0, sizeof(*ro));
    uint64_t u = 0;
    bool ok = column_int(r, 0, &ro->id) && column_text(r, 1, ro->product, sizeof(ro->product)) &&
              column_text(r, 2, ro->release, sizeof(ro->release)) &&
              column_text(r, 3, ro->version, sizeof(ro->version)) && column_count(r, 4, &ro->seq) &&
              column_text(r, 5, ro->revert_release, sizeof(ro->revert_release)) &&
              column_count(r, 6, &ro->revert_seq) && column_text(r, 8, state, sizeof(state)) &&
              ferry_rollout_state_from_name(state, &ro->state) == FERRY_OK &&
              column_count(r, 9, &u) && column_int(r, 10, &ro->created_at) &&
              column_int(r, 11, &ro->start_at) && column_int(r, 12, &ro->state_at) &&
              column_int(r, 13, &ro->retry_at) && column_count(r, 14, &ro->revision) &&
              column_count(r, 15, &ro->resume) &&
              column_text(r, 17, ro->created_by, sizeof(ro->created_by)) &&
              column_text(r, 18, ro->reason, sizeof(ro->reason));
    ro->open_waves = (uint32_t)u;
    ro->promoted = column_int_or_0(r, 16) != 0;
    const char *plan = NULL;
    size_t len = 0;
    struct ferry_diag pd = {{0}};
    return ok && cloud_db_text(r, 7, &plan, &len) &&
           ferry_rollout_plan_from_json((const unsigned char *)plan, len, &ro->plan, &pd) ==
               FERRY_OK &&
           u <= ro->plan.nwaves;
}

struct rollout_one {
    struct cloud_rollout *out;
    bool found, ok;
};

static enum ferry_err rollout_row(void *arg, const struct cloud_db_row *r)
{
    struct rollout_one *o = arg;
    o->found = true;
    o->ok = read_rollout(r, o->out);
    return FERRY_OK;
}

enum ferry_err cloud_http_db_rollout(struct cloud_http_db *db, int64_t id,
                                     struct cloud_rollout *out, struct ferry_diag *d)
{
    struct rollout_one o = {out, false, false};
    enum ferry_err err = cloud_db_run(db->db, CLOUD_Q_HTTP_ROLLOUT, DB_ARGS(DB_INT(id)),
                                      rollout_row, &o, NULL, "reading a rollout", d);
    if (err == FERRY_OK && !o.found)
        err = ferry_fail(d, FERRY_E_NOT_FOUND, "no rollout %" PRId64, id);
    else if (err == FERRY_OK && !o.ok)
        err = ferry_fail(d, FERRY_E_CORRUPT,
                         "inventory %s: rollout %" PRId64 " holds what this Ferry never writes",
                         name_of(db), id);
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
                          name_of(db), r->id, (size_t)r->plan.nwaves);
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

struct tally_walk {
    size_t nwaves;
    struct cloud_wave_tally *waves;
    struct cloud_halt_tally *halt;
};

static enum ferry_err tally_row(void *arg, const struct cloud_db_row *r)
{
    struct tally_walk *t = arg;
    int64_t w = column_int_or_0(r, 0);
    char name[32];
    enum ferry_state st;
    uint64_t count = (uint64_t)column_int_or_0(r, 2);
    if (w < 0 || (size_t)w >= t->nwaves)
        return FERRY_OK;
    struct cloud_wave_tally *wt = &t->waves[w];
    wt->targets += count;
    /* '' is a target that has not reported on the release yet. */
    if (!column_text(r, 1, name, sizeof(name)) || !name[0] ||
        ferry_state_from_name(name, &st) != FERRY_OK)
        return FERRY_OK;
    wt->by_state[st] += count;
    int64_t success_at = column_int_or_0(r, 3);
    if (st == FERRY_STATE_SUCCESS && success_at > wt->last_success_at)
        wt->last_success_at = success_at;
    t->halt->finals += (uint64_t)column_int_or_0(r, 4);
    t->halt->failed += (uint64_t)column_int_or_0(r, 5);
    return FERRY_OK;
}

static enum ferry_err wave_row(void *arg, const struct cloud_db_row *r)
{
    struct tally_walk *t = arg;
    int64_t w = column_int_or_0(r, 0);
    if (w >= 0 && (size_t)w < t->nwaves)
        t->waves[w].opened_at = column_int_or_0(r, 1);
    return FERRY_OK;
}

static enum ferry_err tally_read(struct cloud_http_db *db, const struct cloud_rollout *r,
                                 struct cloud_wave_tally *waves, struct cloud_halt_tally *halt,
                                 struct ferry_diag *d)
{
    struct tally_walk t = {r->plan.nwaves, waves, halt};
    memset(waves, 0, t.nwaves * sizeof(*waves));
    memset(halt, 0, sizeof(*halt));
    enum ferry_err err =
        cloud_db_run(db->db, CLOUD_Q_HTTP_TALLY, DB_ARGS(DB_INT(r->id), DB_INT(r->retry_at)),
                     tally_row, &t, NULL, "counting a rollout's targets", d);
    if (err == FERRY_OK)
        err = cloud_db_run(db->db, CLOUD_Q_HTTP_WAVES, DB_ARGS(DB_INT(r->id)), wave_row, &t, NULL,
                           "reading a rollout's waves", d);
    return err;
}

static enum ferry_err log_row(void *arg, const struct cloud_db_row *r)
{
    const struct each *e = arg;
    struct cloud_rollout_log_entry le;
    memset(&le, 0, sizeof(le));
    if (column_int(r, 1, &le.at) && column_text(r, 2, le.actor, sizeof(le.actor)) &&
        column_text(r, 3, le.action, sizeof(le.action)) &&
        column_text(r, 4, le.reason, sizeof(le.reason)))
        return ((cloud_http_log_cb)e->cb)(e->arg, column_int_or_0(r, 0), &le);
    return ferry_fail(e->d, FERRY_E_CORRUPT,
                      "inventory %s: an entry of rollout %s's log is damaged", name_of(e->db),
                      e->node);
}

enum ferry_err cloud_http_db_rollout_log(struct cloud_http_db *db, int64_t id, int64_t before_id,
                                         unsigned limit, cloud_http_log_cb cb, void *arg,
                                         struct ferry_diag *d)
{
    char rid[24];
    snprintf(rid, sizeof(rid), "%" PRId64, id);
    struct each e = {db, rid, (void *)cb, arg, d};
    return cloud_db_run(
        db->db, CLOUD_Q_HTTP_LOG,
        DB_ARGS(DB_INT(id), DB_INT(before_id > 0 ? before_id : INT64_MAX), DB_INT(limit)), log_row,
        &e, NULL, "reading a rollout's log", d);
}

/* ---- what changed -------------------------------------------------------------------------- */

static enum ferry_err marks_row(void *arg, const struct cloud_db_row *r)
{
    struct cloud_http_marks *m = arg;
    m->nodes_at = column_int_or_0(r, 0); /* NULL reads as 0 */
    m->log_id = column_int_or_0(r, 1);
    m->revisions = (uint64_t)column_int_or_0(r, 2);
    m->active = (uint64_t)column_int_or_0(r, 3);
    return FERRY_OK;
}

enum ferry_err cloud_http_db_marks(struct cloud_http_db *db, struct cloud_http_marks *out,
                                   struct ferry_diag *d)
{
    memset(out, 0, sizeof(*out));
    enum ferry_err err = cloud_db_run(db->db, CLOUD_Q_HTTP_MARKS, NULL, 0, marks_row, out, NULL,
                                      "reading what changed", d);
    struct count_one c = {0};
    if (err == FERRY_OK)
        err = cloud_db_run(db->db, CLOUD_Q_HTTP_COUNT_ALL, NULL, 0, count_row, &c, NULL,
                           "counting nodes", d);
    if (err == FERRY_OK)
        out->nodes = c.count;
    return err;
}
