#include "cloud_inventory_rollout.h"

#include "cloud_inventory_priv.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---------------------------------------------------------------------------- */

static enum ferry_err run(struct cloud_inventory *inv, enum cloud_q q,
                          const struct cloud_db_arg *args, size_t nargs, cloud_db_row_cb cb,
                          void *arg, uint64_t *changed, const char *doing, struct ferry_diag *d)
{
    return cloud_db_run(cloud_inventory_db(inv), q, args, nargs, cb, arg, changed, doing, d);
}

/* A text column into out, "" when NULL, cut to fit. */
static void text_col(const struct cloud_db_row *r, int col, char *out, size_t cap)
{
    const char *s = NULL;
    size_t len = 0;
    if (!cloud_db_text(r, col, &s, &len))
        len = 0;
    if (len >= cap)
        len = cap - 1;
    memcpy(out, s ? s : "", len);
    out[len] = 0;
}

/* An integer column, 0 when NULL. */
static int64_t int_col(const struct cloud_db_row *r, int col)
{
    int64_t v = 0;
    return cloud_db_int(r, col, &v) ? v : 0;
}

/* A copy of a blob column (NULL when NULL or empty). */
static enum ferry_err blob_col(const struct cloud_db_row *r, int col, uint8_t **out, size_t *len)
{
    const uint8_t *b = NULL;
    size_t n = 0;
    *out = NULL;
    *len = 0;
    if (!cloud_db_blob(r, col, &b, &n) || n == 0)
        return FERRY_OK;
    *out = malloc(n);
    if (!*out)
        return FERRY_E_NOMEM;
    memcpy(*out, b, n);
    *len = n;
    return FERRY_OK;
}

static int state_index(const struct cloud_db_row *r, int col)
{
    char name[32];
    enum ferry_state s;
    text_col(r, col, name, sizeof(name));
    return name[0] && ferry_state_from_name(name, &s) == FERRY_OK ? (int)s : -1;
}

/* The first column of the first row, as an integer. */
struct first_int {
    bool found;
    int64_t v;
};

static enum ferry_err on_first_int(void *arg, const struct cloud_db_row *r)
{
    struct first_int *f = arg;
    if (!f->found)
        f->found = cloud_db_int(r, 0, &f->v);
    return FERRY_OK;
}

/* ---- rollouts ----------------------------------------------------------------------------- */

void cloud_rollout_clear(struct cloud_rollout *r)
{
    free(r->envelope);
    free(r->revert_envelope);
    memset(r, 0, sizeof(*r));
}

/* A decision is exclusive: alone across every instance, and with no
 * ingestion half done (cloud_db.h). */
enum ferry_err cloud_rollouts_begin(struct cloud_inventory *inv, struct ferry_diag *d)
{
    return cloud_db_begin(cloud_inventory_db(inv), CLOUD_DB_EXCLUSIVE, d);
}

enum ferry_err cloud_rollouts_commit(struct cloud_inventory *inv, struct ferry_diag *d)
{
    return cloud_db_commit(cloud_inventory_db(inv), d);
}

void cloud_rollouts_rollback(struct cloud_inventory *inv)
{
    cloud_db_rollback(cloud_inventory_db(inv));
}

enum ferry_err cloud_rollout_insert(struct cloud_inventory *inv, struct cloud_rollout *r,
                                    const char *actor, struct ferry_diag *d)
{
    char *plan = NULL;
    size_t plan_len = 0;
    enum ferry_err err = ferry_rollout_plan_to_json(&r->plan, &plan, &plan_len, d);
    if (err != FERRY_OK)
        return err;
    struct first_int id = {0};
    err = run(inv, CLOUD_Q_ROLLOUT_INSERT,
              DB_ARGS(DB_TEXT(r->product), DB_TEXT(r->release), DB_TEXT(r->version), DB_INT(r->seq),
                      DB_BLOB(r->envelope, r->envelope_len), DB_TEXT(r->revert_release),
                      DB_INT(r->revert_seq),
                      r->revert_envelope ? DB_BLOB(r->revert_envelope, r->revert_len) : DB_NULL,
                      DB_TEXT(plan), DB_TEXT(ferry_rollout_state_name(r->state)),
                      DB_INT(r->open_waves), DB_INT(r->created_at), DB_INT(r->start_at),
                      DB_INT(r->state_at), DB_INT(r->retry_at), DB_INT(r->revision),
                      DB_INT(r->resume), DB_INT(r->promoted), DB_TEXT(r->created_by),
                      DB_TEXT(r->reason)),
              on_first_int, &id, NULL, "storing the rollout", d);
    free(plan);
    if (err != FERRY_OK)
        return err;
    if (!id.found)
        return ferry_fail(d, FERRY_E_IO, "inventory %s: storing the rollout gave no id",
                          cloud_db_name(cloud_inventory_db(inv)));
    r->id = id.v;
    return cloud_rollout_log(inv, r->id, r->created_at, actor, "created", r->reason, d);
}

struct rollout_read {
    struct cloud_rollout *r;
    bool found;
    enum ferry_err err;
    struct ferry_diag *d;
};

static enum ferry_err read_rollout(const struct cloud_db_row *s, struct cloud_rollout *r,
                                   struct ferry_diag *d)
{
    memset(r, 0, sizeof(*r));
    r->id = int_col(s, 0);
    text_col(s, 1, r->product, sizeof(r->product));
    text_col(s, 2, r->release, sizeof(r->release));
    text_col(s, 3, r->version, sizeof(r->version));
    r->seq = (uint64_t)int_col(s, 4);
    text_col(s, 6, r->revert_release, sizeof(r->revert_release));
    r->revert_seq = (uint64_t)int_col(s, 7);
    char state[32];
    text_col(s, 10, state, sizeof(state));
    r->open_waves = (uint32_t)int_col(s, 11);
    r->created_at = int_col(s, 12);
    r->start_at = int_col(s, 13);
    r->state_at = int_col(s, 14);
    r->retry_at = int_col(s, 15);
    r->revision = (uint64_t)int_col(s, 16);
    r->resume = (uint64_t)int_col(s, 17);
    r->promoted = int_col(s, 18) != 0;
    text_col(s, 19, r->created_by, sizeof(r->created_by));
    text_col(s, 20, r->reason, sizeof(r->reason));
    const char *plan = NULL;
    size_t plan_len = 0;
    enum ferry_err err =
        cloud_db_text(s, 9, &plan, &plan_len)
            ? ferry_rollout_plan_from_json((const uint8_t *)plan, plan_len, &r->plan, d)
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
    return err;
}

static enum ferry_err on_rollout(void *arg, const struct cloud_db_row *row)
{
    struct rollout_read *x = arg;
    if (x->found)
        return FERRY_OK;
    x->found = true;
    return read_rollout(row, x->r, x->d);
}

enum ferry_err cloud_rollout_load(struct cloud_inventory *inv, int64_t id,
                                  struct cloud_rollout *out, struct ferry_diag *d)
{
    struct rollout_read x = {.r = out, .d = d};
    enum ferry_err err = run(inv, CLOUD_Q_ROLLOUT_LOAD, DB_ARGS(DB_INT(id)), on_rollout, &x, NULL,
                             "reading a rollout", d);
    if (err == FERRY_OK && !x.found)
        err = ferry_fail(d, FERRY_E_NOT_FOUND, "no rollout %" PRId64, id);
    return err;
}

enum ferry_err cloud_rollout_save(struct cloud_inventory *inv, const struct cloud_rollout *r,
                                  struct ferry_diag *d)
{
    return run(inv, CLOUD_Q_ROLLOUT_SAVE,
               DB_ARGS(DB_INT(r->id), DB_TEXT(ferry_rollout_state_name(r->state)),
                       DB_INT(r->open_waves), DB_INT(r->state_at), DB_INT(r->retry_at),
                       DB_INT(r->revision), DB_INT(r->resume), DB_INT(r->promoted),
                       DB_TEXT(r->reason)),
               NULL, NULL, NULL, "saving a rollout", d);
}

bool cloud_rollout_is_active(const struct cloud_rollout *r)
{
    return !ferry_rollout_state_is_final(r->state);
}

struct id_list {
    int64_t *v;
    size_t n, cap;
    struct ferry_diag *d;
};

static enum ferry_err on_id(void *arg, const struct cloud_db_row *r)
{
    struct id_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        int64_t *grown = realloc(l->v, cap * sizeof(*grown));
        if (!grown)
            return ferry_fail(l->d, FERRY_E_NOMEM, "inventory: out of memory");
        l->v = grown;
        l->cap = cap;
    }
    l->v[l->n++] = int_col(r, 0);
    return FERRY_OK;
}

enum ferry_err cloud_rollout_ids(struct cloud_inventory *inv, int64_t final_since, int64_t **ids,
                                 size_t *n, struct ferry_diag *d)
{
    struct id_list l = {.d = d};
    enum ferry_err err = run(inv, CLOUD_Q_ROLLOUT_IDS, DB_ARGS(DB_INT(final_since)), on_id, &l,
                             NULL, "listing rollouts", d);
    if (err != FERRY_OK) {
        free(l.v);
        return err;
    }
    *ids = l.v;
    *n = l.n;
    return FERRY_OK;
}

enum ferry_err cloud_rollout_active_for(struct cloud_inventory *inv, const char *product,
                                        int64_t *id, struct ferry_diag *d)
{
    struct first_int f = {0};
    enum ferry_err err = run(inv, CLOUD_Q_ROLLOUT_ACTIVE_FOR, DB_ARGS(DB_TEXT(product)),
                             on_first_int, &f, NULL, "looking for an active rollout", d);
    if (err == FERRY_OK && !f.found)
        return FERRY_E_NOT_FOUND;
    if (err == FERRY_OK)
        *id = f.v;
    return err;
}

/* ---- log ---------------------------------------------------------------------------------- */

enum ferry_err cloud_rollout_log(struct cloud_inventory *inv, int64_t id, int64_t at,
                                 const char *actor, const char *action, const char *reason,
                                 struct ferry_diag *d)
{
    return run(inv, CLOUD_Q_ROLLOUT_LOG,
               DB_ARGS(DB_INT(id), DB_INT(at), DB_TEXT(actor), DB_TEXT(action),
                       DB_TEXT(reason ? reason : "")),
               NULL, NULL, NULL, "logging a rollout decision", d);
}

struct log_walk {
    cloud_rollout_log_cb cb;
    void *arg;
};

static enum ferry_err on_log(void *arg, const struct cloud_db_row *r)
{
    struct log_walk *w = arg;
    struct cloud_rollout_log_entry e;
    e.at = int_col(r, 0);
    text_col(r, 1, e.actor, sizeof(e.actor));
    text_col(r, 2, e.action, sizeof(e.action));
    text_col(r, 3, e.reason, sizeof(e.reason));
    return w->cb(w->arg, &e);
}

enum ferry_err cloud_rollout_each_log(struct cloud_inventory *inv, int64_t id,
                                      cloud_rollout_log_cb cb, void *arg, struct ferry_diag *d)
{
    struct log_walk w = {cb, arg};
    return run(inv, CLOUD_Q_ROLLOUT_EACH_LOG, DB_ARGS(DB_INT(id)), on_log, &w, NULL,
               "reading the decision log", d);
}

/* ---- waves and tallies ------------------------------------------------------------------------
 */

enum ferry_err cloud_rollout_wave_opened(struct cloud_inventory *inv, int64_t id, unsigned wave,
                                         int64_t at, struct ferry_diag *d)
{
    return run(inv, CLOUD_Q_ROLLOUT_WAVE_OPENED, DB_ARGS(DB_INT(id), DB_INT(wave), DB_INT(at)),
               NULL, NULL, NULL, "recording a wave", d);
}

struct tally {
    const struct cloud_rollout *r;
    struct cloud_wave_tally *waves;
    struct cloud_halt_tally *halt;
};

static enum ferry_err on_tally_target(void *arg, const struct cloud_db_row *row)
{
    struct tally *t = arg;
    int64_t w = int_col(row, 0);
    int s = state_index(row, 1);
    int64_t final_at = int_col(row, 2);
    if (w < 0 || (size_t)w >= t->r->plan.nwaves)
        return FERRY_OK;
    struct cloud_wave_tally *wt = &t->waves[w];
    wt->targets++;
    if (s < 0)
        return FERRY_OK;
    wt->by_state[s]++;
    if (s == FERRY_STATE_SUCCESS && final_at > wt->last_success_at)
        wt->last_success_at = final_at;
    if (final_at > 0 && final_at >= t->r->retry_at) {
        t->halt->finals++;
        t->halt->failed += s == FERRY_STATE_FAILED || s == FERRY_STATE_ROLLED_BACK;
    }
    return FERRY_OK;
}

static enum ferry_err on_tally_wave(void *arg, const struct cloud_db_row *row)
{
    struct tally *t = arg;
    int64_t w = int_col(row, 0);
    if (w >= 0 && (size_t)w < t->r->plan.nwaves)
        t->waves[w].opened_at = int_col(row, 1);
    return FERRY_OK;
}

enum ferry_err cloud_rollout_tally(struct cloud_inventory *inv, const struct cloud_rollout *r,
                                   struct cloud_wave_tally *waves, struct cloud_halt_tally *halt,
                                   struct ferry_diag *d)
{
    memset(waves, 0, r->plan.nwaves * sizeof(*waves));
    memset(halt, 0, sizeof(*halt));
    /* One pass in the key's order, counted here: a GROUP BY would sort. */
    struct tally t = {r, waves, halt};
    enum ferry_err err = run(inv, CLOUD_Q_ROLLOUT_TALLY_TARGETS, DB_ARGS(DB_INT(r->id)),
                             on_tally_target, &t, NULL, "counting targets", d);
    if (err == FERRY_OK)
        err = run(inv, CLOUD_Q_ROLLOUT_TALLY_WAVES, DB_ARGS(DB_INT(r->id)), on_tally_wave, &t, NULL,
                  "reading waves", d);
    return err;
}

/* ---- targets --------------------------------------------------------------------------------- */

struct candidate_walk {
    cloud_rollout_candidate_cb cb;
    void *arg;
};

static enum ferry_err on_candidate(void *arg, const struct cloud_db_row *row)
{
    struct candidate_walk *w = arg;
    struct ferry_nodeinfo info;
    char gateway[FERRY_ID_MAX + 1], version[FERRY_VERSION_MAX + 1], target_gw[FERRY_ID_MAX + 1];
    const char *doc = NULL;
    size_t len = 0;
    struct ferry_diag pd = {{0}};
    if (!cloud_db_text(row, 2, &doc, &len) ||
        ferry_nodeinfo_from_json((const uint8_t *)doc, len, &info, &pd) != FERRY_OK)
        return FERRY_OK; /* only ever written after the same check */
    text_col(row, 1, gateway, sizeof(gateway));
    text_col(row, 3, version, sizeof(version));
    struct cloud_rollout_candidate c = {.info = &info, .gateway = gateway, .version = version};
    if (!cloud_db_null(row, 4)) {
        c.targeted = true;
        c.wave = (unsigned)int_col(row, 4);
        text_col(row, 5, target_gw, sizeof(target_gw));
        c.target_gw = target_gw;
    }
    return w->cb(w->arg, &c);
}

enum ferry_err cloud_rollout_candidates(struct cloud_inventory *inv, const struct cloud_rollout *r,
                                        int64_t since, cloud_rollout_candidate_cb cb, void *arg,
                                        struct ferry_diag *d)
{
    struct candidate_walk w = {cb, arg};
    return run(inv, CLOUD_Q_ROLLOUT_CANDIDATES,
               DB_ARGS(DB_INT(r->id), DB_TEXT(r->product), DB_INT(since)), on_candidate, &w, NULL,
               "looking for new targets", d);
}

enum ferry_err cloud_rollout_target_put(struct cloud_inventory *inv, int64_t id, const char *node,
                                        const char *gateway, unsigned wave, int window,
                                        struct ferry_diag *d)
{
    return run(inv, CLOUD_Q_ROLLOUT_TARGET_PUT,
               DB_ARGS(DB_INT(id), DB_TEXT(node), DB_TEXT(gateway), DB_INT(wave), DB_INT(window)),
               NULL, NULL, NULL, "storing a target", d);
}

static enum ferry_err refresh_one(struct cloud_inventory *inv, enum cloud_q q, int64_t id,
                                  const char *release, int64_t since, uint64_t *changed,
                                  struct ferry_diag *d)
{
    uint64_t n = 0;
    enum ferry_err err = run(inv, q, DB_ARGS(DB_INT(id), DB_INT(since), DB_TEXT(release)), NULL,
                             NULL, &n, "updating targets from the nodes' records", d);
    *changed += n;
    return err;
}

enum ferry_err cloud_rollout_refresh(struct cloud_inventory *inv, const struct cloud_rollout *r,
                                     int64_t since, uint64_t *changed, struct ferry_diag *d)
{
    *changed = 0;
    enum ferry_err err =
        refresh_one(inv, CLOUD_Q_ROLLOUT_REFRESH, r->id, r->release, since, changed, d);
    if (err != FERRY_OK || !r->revert_release[0])
        return err;
    return refresh_one(inv, CLOUD_Q_ROLLOUT_REFRESH_REVERT, r->id, r->revert_release, since,
                       changed, d);
}

struct target_walk {
    cloud_rollout_target_cb cb;
    void *arg;
};

static enum ferry_err on_target(void *arg, const struct cloud_db_row *row)
{
    struct target_walk *w = arg;
    struct cloud_rollout_target t;
    text_col(row, 0, t.node, sizeof(t.node));
    text_col(row, 1, t.gateway, sizeof(t.gateway));
    t.wave = (unsigned)int_col(row, 2);
    t.window = (int)int_col(row, 3);
    t.state = state_index(row, 4);
    t.revert_state = state_index(row, 5);
    t.state_at = int_col(row, 6);
    return w->cb(w->arg, &t);
}

enum ferry_err cloud_rollout_each_target(struct cloud_inventory *inv, int64_t id,
                                         const char *gateway, cloud_rollout_target_cb cb, void *arg,
                                         struct ferry_diag *d)
{
    struct target_walk w = {cb, arg};
    return run(inv, CLOUD_Q_ROLLOUT_EACH_TARGET, DB_ARGS(DB_INT(id), DB_TEXT_OR_NULL(gateway)),
               on_target, &w, NULL, "listing targets", d);
}

struct node_walk {
    struct cloud_inventory *inv;
    cloud_inventory_row_cb cb;
    void *arg;
    struct ferry_diag *d;
};

static enum ferry_err on_node(void *arg, const struct cloud_db_row *r)
{
    struct node_walk *w = arg;
    struct ferry_inventory_row row;
    enum ferry_err err = cloud_inventory_read_node(w->inv, r, &row, w->d);
    return err == FERRY_OK ? w->cb(w->arg, &row) : err;
}

enum ferry_err cloud_rollout_each_node(struct cloud_inventory *inv, int64_t id,
                                       cloud_inventory_row_cb cb, void *arg, struct ferry_diag *d)
{
    struct node_walk w = {inv, cb, arg, d};
    return run(inv, CLOUD_Q_ROLLOUT_EACH_NODE, DB_ARGS(DB_INT(id)), on_node, &w, NULL,
               "listing the rollout's nodes", d);
}

enum ferry_err cloud_rollout_gateway_halt(struct cloud_inventory *inv, int64_t id,
                                          const char *gateway, uint64_t resume, bool *first,
                                          struct ferry_diag *d)
{
    uint64_t n = 0;
    enum ferry_err err =
        run(inv, CLOUD_Q_ROLLOUT_GW_HALT, DB_ARGS(DB_INT(id), DB_TEXT(gateway), DB_INT(resume)),
            NULL, NULL, &n, "recording a gateway's halt", d);
    if (err == FERRY_OK)
        *first = n > 0;
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
    err = run(inv, CLOUD_Q_NODEINFO_PUT,
              DB_ARGS(DB_TEXT(ni->node), DB_TEXT(gateway), DB_TEXT(ni->product), DB_TEXT(doc),
                      DB_INT(now)),
              NULL, NULL, NULL, "storing a node description", d);
    free(doc);
    return err;
}

struct nodeinfo_read {
    struct ferry_nodeinfo *out;
    char *gateway;
    bool found;
    struct ferry_diag *d;
};

static enum ferry_err on_nodeinfo(void *arg, const struct cloud_db_row *r)
{
    struct nodeinfo_read *x = arg;
    const char *doc = NULL;
    size_t len = 0;
    x->found = true;
    text_col(r, 1, x->gateway, FERRY_ID_MAX + 1);
    return cloud_db_text(r, 0, &doc, &len)
               ? ferry_nodeinfo_from_json((const uint8_t *)doc, len, x->out, x->d)
               : FERRY_E_CORRUPT;
}

enum ferry_err cloud_nodeinfo_get(struct cloud_inventory *inv, const char *node,
                                  struct ferry_nodeinfo *out, char gateway[FERRY_ID_MAX + 1],
                                  struct ferry_diag *d)
{
    struct nodeinfo_read x = {out, gateway, false, d};
    enum ferry_err err = run(inv, CLOUD_Q_NODEINFO_GET, DB_ARGS(DB_TEXT(node)), on_nodeinfo, &x,
                             NULL, "reading a node description", d);
    if (err == FERRY_OK && !x.found)
        err = ferry_fail(d, FERRY_E_NOT_FOUND, "node %s has not described itself", node);
    return err;
}
