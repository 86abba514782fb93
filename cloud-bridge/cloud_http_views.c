#include "cloud_http_views.h"

#include "cloud_rollout_ops.h"
#include "ferry_envelope.h"
#include "ferry_hex.h"
#include "ferry_manifest.h"
#include "ferry_names.h"
#include "ferry_opts.h"
#include "ferry_rollout.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX53        (INT64_C(1) << 53)
#define HISTORY_DEFAULT 50
#define REFUSED_SHOWN   20
#define ROLLOUTS_SHOWN  20
#define VERSIONS_SHOWN  20
#define GROUPS_READ     10000 /* (state, version) groups summed for the summary */

/* ---- parameters ------------------------------------------------------------------------------ */

/* Fails on a parameter not in allowed (NULL-terminated) and on one given
 * twice. */
static enum ferry_err only_params(const struct cloud_http_params *p, const char *const *allowed,
                                  struct ferry_diag *d)
{
    for (size_t i = 0; i < p->n; i++) {
        bool known = false;
        for (const char *const *a = allowed; *a && !known; a++)
            known = strcmp(*a, p->v[i].key) == 0;
        if (!known) {
            char list[256] = "";
            for (const char *const *a = allowed; *a; a++)
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                         a == allowed ? "" : ", ", *a);
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "unknown parameter '%.64s' (this resource takes %s)", p->v[i].key,
                              list[0] ? list : "none");
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(p->v[k].key, p->v[i].key) == 0)
                return ferry_fail(d, FERRY_E_INVALID_ARG, "parameter '%s' given twice",
                                  p->v[i].key);
        }
    }
    return FERRY_OK;
}

static const char *param(const struct cloud_http_params *p, const char *key)
{
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->v[i].key, key) == 0)
            return p->v[i].value ? p->v[i].value : "";
    }
    return NULL;
}

/* An unsigned integer parameter in [min, max]; *out untouched when absent. */
static enum ferry_err uint_param(const struct cloud_http_params *p, const char *key, uint64_t min,
                                 uint64_t max, uint64_t *out, struct ferry_diag *d)
{
    const char *v = param(p, key);
    uint64_t n = 0;
    if (!v)
        return FERRY_OK;
    if (ferry_parse_u64(v, &n) != FERRY_OK || n < min || n > max)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "parameter '%s' must be an integer %" PRIu64 "..%" PRIu64 ", got '%.40s'",
                          key, min, max, v);
    *out = n;
    return FERRY_OK;
}

/* An identifier parameter (node, gateway, release ids); NULL when absent. */
static enum ferry_err id_param(const struct cloud_http_params *p, const char *key, const char **out,
                               struct ferry_diag *d)
{
    const char *v = param(p, key);
    *out = NULL;
    if (!v)
        return FERRY_OK;
    if (!ferry_id_valid(v))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "parameter '%s' must be an identifier (1..%d of [A-Za-z0-9._-], not "
                          "starting with '.'), got '%.64s'",
                          key, FERRY_ID_MAX, v);
    *out = v;
    return FERRY_OK;
}

enum ferry_err cloud_http_parse_id(const char *text, const char *what, int64_t *out,
                                   struct ferry_diag *d)
{
    uint64_t v = 0;
    if (!text || ferry_parse_u64(text, &v) != FERRY_OK || v < 1 || v > (uint64_t)ID_MAX53)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "%s must be an integer 1..2^53, got '%.40s'",
                          what, text ? text : "");
    *out = (int64_t)v;
    return FERRY_OK;
}

/* "failed,rolled-back" -> bits. */
static enum ferry_err states_param(const char *v, uint32_t *out, struct ferry_diag *d)
{
    *out = 0;
    if (!v[0])
        return ferry_fail(d, FERRY_E_INVALID_ARG, "parameter 'state' is empty");
    for (const char *p = v; *p;) {
        size_t n = strcspn(p, ",");
        char name[32];
        enum ferry_state s;
        if (n == 0 || n >= sizeof(name))
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "parameter 'state': expected state names separated by commas");
        memcpy(name, p, n);
        name[n] = '\0';
        if (ferry_state_from_name(name, &s) != FERRY_OK)
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "parameter 'state': '%s' is not a state (idle, available, "
                              "deferred, downloading, verifying, installing, pending-reboot, "
                              "success, failed, rolled-back, rejected)",
                              name);
        *out |= UINT32_C(1) << s;
        p += n + (p[n] == ',');
        if (p[-1] == ',' && !*p)
            return ferry_fail(d, FERRY_E_INVALID_ARG, "parameter 'state' ends in a comma");
    }
    return FERRY_OK;
}

/* Printable UTF-8 of 1..max bytes: what a version may hold. */
static enum ferry_err text_param(const struct cloud_http_params *p, const char *key, size_t max,
                                 const char **out, struct ferry_diag *d)
{
    const char *v = param(p, key);
    *out = NULL;
    if (!v)
        return FERRY_OK;
    size_t n = strlen(v);
    bool ok = n >= 1 && n <= max && ferry_utf8_valid((const uint8_t *)v, n);
    for (size_t i = 0; ok && i < n; i++)
        ok = (unsigned char)v[i] >= 0x20 && v[i] != 0x7f;
    if (!ok)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "parameter '%s' must be 1..%zu bytes of printable UTF-8", key, max);
    *out = v;
    return FERRY_OK;
}

enum ferry_err cloud_http_node_query_parse(const struct cloud_http_params *p,
                                           struct cloud_http_node_query *q, struct ferry_diag *d)
{
    static const char *const allowed[] = {"state", "gateway", "version", "release",
                                          "tag",   "q",       "rollout", "wave",
                                          "limit", "after",   "before",  NULL};
    memset(q, 0, sizeof(*q));
    q->limit = CLOUD_HTTP_NODES_DEFAULT;
    uint64_t limit = q->limit, rollout = 0, wave = 0;
    enum ferry_err err = only_params(p, allowed, d);
    const char *v;
    if (err == FERRY_OK && (v = param(p, "state")))
        err = states_param(v, &q->f.states, d);
    if (err == FERRY_OK)
        err = id_param(p, "gateway", &q->f.gateway, d);
    if (err == FERRY_OK)
        err = text_param(p, "version", FERRY_VERSION_MAX, &q->f.version, d);
    if (err == FERRY_OK)
        err = id_param(p, "release", &q->f.release, d);
    if (err == FERRY_OK)
        err = id_param(p, "q", &q->f.prefix, d);
    if (err == FERRY_OK && (v = param(p, "tag"))) {
        struct ferry_tag t;
        err = ferry_tag_parse(v, &t, d);
        if (err == FERRY_OK && !t.value[0])
            err = ferry_fail(d, FERRY_E_INVALID_ARG, "tag '%.64s': expected key=value", v);
        if (err != FERRY_OK) {
            ferry_diag_prefix(d, "parameter 'tag'");
        } else {
            snprintf(q->tag_key, sizeof(q->tag_key), "%s", t.key);
            snprintf(q->tag_value, sizeof(q->tag_value), "%s", t.value);
            q->f.tag_key = q->tag_key;
            q->f.tag_value = q->tag_value;
        }
    }
    if (err == FERRY_OK)
        err = uint_param(p, "rollout", 1, (uint64_t)ID_MAX53, &rollout, d);
    if (err == FERRY_OK)
        err = uint_param(p, "wave", 1, FERRY_ROLLOUT_MAX_WAVES, &wave, d);
    if (err == FERRY_OK && wave && !rollout)
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "parameter 'wave' needs 'rollout'");
    if (err == FERRY_OK)
        err = uint_param(p, "limit", 1, CLOUD_HTTP_PAGE_MAX, &limit, d);
    if (err == FERRY_OK)
        err = id_param(p, "after", &q->after, d);
    if (err == FERRY_OK)
        err = id_param(p, "before", &q->before, d);
    if (err == FERRY_OK && q->after && q->before)
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "give 'after' or 'before', not both");
    q->f.rollout = (int64_t)rollout;
    q->f.wave = (unsigned)wave;
    q->limit = (unsigned)limit;
    return err;
}

/* ---- pieces ---------------------------------------------------------------------------------- */

static void states_object(struct cloud_json *j, const uint64_t by_state[FERRY_STATE__COUNT])
{
    cj_obj_begin(j);
    for (int s = 0; s < FERRY_STATE__COUNT; s++)
        cj_kuint(j, ferry_state_name((enum ferry_state)s), by_state[s]);
    cj_obj_end(j);
}

static enum ferry_err raw_or_fail(struct cloud_json *j, enum ferry_err err, char *text, size_t len)
{
    if (err == FERRY_OK)
        cj_raw(j, text, len);
    free(text);
    return err;
}

/* `status --json`'s row without its closing brace, then the description. */
enum ferry_err cloud_http_node_json(const struct cloud_http_node *n, struct cloud_json *out,
                                    struct ferry_diag *d)
{
    char *row = NULL;
    size_t len = 0;
    enum ferry_err err = ferry_inventory_row_json(&n->row, &row, &len, d);
    if (err != FERRY_OK || len < 2 || row[len - 1] != '}') {
        free(row);
        return err != FERRY_OK ? err
                               : ferry_fail(d, FERRY_E_CORRUPT,
                                            "node %s: a row that is not an "
                                            "object",
                                            n->row.st.node);
    }
    /* The row's own members, then ours: the writer sees one object. */
    cj_obj_begin(out);
    cj_text(out, row + 1, len - 2);
    free(row);
    out->first[out->depth] = len - 2 == 0;
    if (n->described) {
        cj_kstr(out, "product", n->info.product);
        cj_kstr(out, "hw_model", n->info.hw_model);
        cj_kstr(out, "hw_revision", n->info.hw_revision);
        cj_key(out, "tags");
        cj_obj_begin(out);
        for (size_t i = 0; i < n->info.ntags; i++)
            cj_kstr(out, n->info.tags[i].key, n->info.tags[i].value);
        cj_obj_end(out);
    } else {
        cj_key(out, "product");
        cj_null(out);
        cj_key(out, "hw_model");
        cj_null(out);
        cj_key(out, "hw_revision");
        cj_null(out);
        cj_key(out, "tags");
        cj_null(out);
    }
    cj_obj_end(out);
    return FERRY_OK;
}

static enum ferry_err nomem_unless_ok(const struct cloud_json *j, struct ferry_diag *d)
{
    return cj_ok(j) ? FERRY_OK
                    : ferry_fail(d, FERRY_E_TOO_LARGE,
                                 "the answer would exceed %u bytes (or memory ran out)",
                                 CLOUD_HTTP_DOC_MAX);
}

/* ---- summary ----------------------------------------------------------------------------------
 */

struct version_count {
    char version[FERRY_VERSION_MAX + 1];
    uint64_t nodes;
};

struct summary_acc {
    uint64_t by_state[FERRY_STATE__COUNT];
    struct version_count *versions;
    size_t nversions, cap;
};

static enum ferry_err on_state_version(void *arg, const char *state, const char *version,
                                       uint64_t count)
{
    struct summary_acc *a = arg;
    enum ferry_state s;
    if (ferry_state_from_name(state, &s) == FERRY_OK)
        a->by_state[s] += count;
    for (size_t i = 0; i < a->nversions; i++) {
        if (strcmp(a->versions[i].version, version) == 0) {
            a->versions[i].nodes += count;
            return FERRY_OK;
        }
    }
    if (a->nversions == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        struct version_count *g = realloc(a->versions, cap * sizeof(*g));
        if (!g)
            return FERRY_E_NOMEM;
        a->versions = g;
        a->cap = cap;
    }
    snprintf(a->versions[a->nversions].version, sizeof(a->versions[0].version), "%s", version);
    a->versions[a->nversions++].nodes = count;
    return FERRY_OK;
}

static int by_nodes_desc(const void *a, const void *b)
{
    const struct version_count *x = a, *y = b;
    if (x->nodes != y->nodes)
        return x->nodes < y->nodes ? 1 : -1;
    return strcmp(x->version, y->version);
}

enum ferry_err cloud_http_view_summary(const struct cloud_http_ctx *c,
                                       const struct cloud_http_params *p, struct cloud_json *out,
                                       struct ferry_diag *d)
{
    static const char *const allowed[] = {NULL};
    enum ferry_err err = only_params(p, allowed, d);
    if (err != FERRY_OK)
        return err;
    struct summary_acc a;
    struct cloud_http_marks marks;
    memset(&a, 0, sizeof(a));
    err = cloud_http_db_read_begin(c->db, d);
    if (err == FERRY_OK)
        err = cloud_http_db_state_versions(c->db, GROUPS_READ, on_state_version, &a, d);
    if (err == FERRY_OK)
        err = cloud_http_db_marks(c->db, &marks, d);
    cloud_http_db_read_end(c->db);
    if (err == FERRY_E_NOMEM)
        err = ferry_fail(d, err, "out of memory counting versions");
    size_t known = 0, online = 0;
    struct cloud_http_gw_presence *gws = NULL;
    if (err == FERRY_OK && c->presence)
        err = cloud_http_presence_list(c->presence, &gws, &known, &online, d);
    free(gws);
    if (err != FERRY_OK) {
        free(a.versions);
        return err;
    }
    qsort(a.versions, a.nversions, sizeof(*a.versions), by_nodes_desc);
    uint64_t total = 0, other = 0;
    for (int s = 0; s < FERRY_STATE__COUNT; s++)
        total += a.by_state[s];
    cj_obj_begin(out);
    cj_kint(out, "at", c->now);
    cj_kuint(out, "nodes", total);
    cj_key(out, "states");
    states_object(out, a.by_state);
    cj_key(out, "versions");
    cj_arr_begin(out);
    for (size_t i = 0; i < a.nversions; i++) {
        if (i >= VERSIONS_SHOWN) {
            other += a.versions[i].nodes;
            continue;
        }
        cj_obj_begin(out);
        cj_kstr(out, "version", a.versions[i].version);
        cj_kuint(out, "nodes", a.versions[i].nodes);
        cj_obj_end(out);
    }
    cj_arr_end(out);
    cj_kuint(out, "other_versions", other);
    cj_key(out, "gateways");
    cj_obj_begin(out);
    cj_kuint(out, "known", known);
    cj_kuint(out, "online", online);
    cj_obj_end(out);
    cj_key(out, "rollouts");
    cj_obj_begin(out);
    cj_kuint(out, "active", marks.active);
    cj_obj_end(out);
    cj_obj_end(out);
    free(a.versions);
    return nomem_unless_ok(out, d);
}

/* ---- nodes ------------------------------------------------------------------------------------
 */

struct page_acc {
    struct cloud_json *out;
    unsigned n;
    char first[FERRY_ID_MAX + 1], last[FERRY_ID_MAX + 1];
};

static enum ferry_err on_page_node(void *arg, const struct cloud_http_node *n)
{
    struct page_acc *a = arg;
    if (a->n++ == 0)
        snprintf(a->first, sizeof(a->first), "%s", n->row.st.node);
    snprintf(a->last, sizeof(a->last), "%s", n->row.st.node);
    return cloud_http_node_json(n, a->out, NULL);
}

static enum ferry_err count_only(void *arg, const struct cloud_http_node *n)
{
    (void)n;
    (*(unsigned *)arg)++;
    return FERRY_OK;
}

/* Whether a node matching f lies after (or before) id. */
static enum ferry_err any_beyond(struct cloud_http_db *db, const struct cloud_http_node_filter *f,
                                 const char *id, bool after, bool *out, struct ferry_diag *d)
{
    unsigned n = 0;
    bool more = false;
    enum ferry_err err = cloud_http_db_nodes(db, f, after ? id : NULL, after ? NULL : id, 1,
                                             count_only, &n, &more, d);
    *out = n > 0;
    return err;
}

enum ferry_err cloud_http_view_nodes(const struct cloud_http_ctx *c,
                                     const struct cloud_http_params *p, struct cloud_json *out,
                                     struct ferry_diag *d)
{
    struct cloud_http_node_query q;
    enum ferry_err err = cloud_http_node_query_parse(p, &q, d);
    if (err != FERRY_OK)
        return err;
    struct page_acc a = {.out = out};
    uint64_t total = 0;
    bool more = false, beyond = false;
    cj_obj_begin(out);
    cj_key(out, "nodes");
    cj_arr_begin(out);
    err = cloud_http_db_read_begin(c->db, d);
    if (err == FERRY_OK)
        err = cloud_http_db_nodes(c->db, &q.f, q.after, q.before, q.limit, on_page_node, &a, &more,
                                  d);
    if (err == FERRY_OK)
        err = cloud_http_db_count_nodes(c->db, &q.f, &total, d);
    /* The other direction: is there a page that way? */
    if (err == FERRY_OK && a.n > 0 && (q.after || q.before))
        err = any_beyond(c->db, &q.f, q.before ? a.last : a.first, q.before != NULL, &beyond, d);
    if (err == FERRY_OK && a.n == 0 && q.before)
        err = any_beyond(c->db, &q.f, q.before, true, &beyond, d);
    cloud_http_db_read_end(c->db);
    if (err != FERRY_OK)
        return err;
    cj_arr_end(out);
    cj_kuint(out, "total", total);
    cj_kuint(out, "limit", q.limit);
    bool has_next = q.before ? beyond : more, has_prev = q.before ? more : beyond;
    cj_key(out, "next");
    if (has_next && a.n)
        cj_str(out, a.last);
    else if (has_next)
        cj_str(out, q.before); /* an empty page before: the nodes from there on */
    else
        cj_null(out);
    cj_key(out, "prev");
    if (has_prev && a.n)
        cj_str(out, a.first);
    else
        cj_null(out);
    cj_obj_end(out);
    return nomem_unless_ok(out, d);
}

struct records {
    struct cloud_http_record *v;
    size_t n, cap;
};

static enum ferry_err on_record(void *arg, const struct cloud_http_record *r)
{
    struct records *a = arg;
    if (a->n < a->cap)
        a->v[a->n++] = *r;
    return FERRY_OK;
}

static void record_json(struct cloud_json *j, const struct cloud_http_record *r)
{
    const struct ferry_status *st = &r->st;
    cj_obj_begin(j);
    cj_kuint(j, "seq", st->seq);
    cj_kint(j, "ts", st->ts);
    cj_kint(j, "received_at", r->received_at);
    cj_kstr(j, "state", ferry_state_name(st->state));
    cj_kstr(j, "release", st->release_id);
    cj_kstr(j, "version", st->version);
    cj_kuint(j, "bytes", st->bytes);
    cj_kuint(j, "total", st->total);
    cj_kstr(j, "error", st->error == FERRY_OK ? "" : ferry_err_name(st->error));
    cj_kstr(j, "message", st->message);
    cj_kstr(j, "gateway", st->gateway);
    cj_obj_end(j);
}

struct refused_acc {
    struct cloud_json *out;
    struct ferry_diag *d;
};

static enum ferry_err on_refused(void *arg, const struct ferry_refused_row *r)
{
    struct refused_acc *a = arg;
    char *text = NULL;
    size_t len = 0;
    return raw_or_fail(a->out, ferry_refused_row_json(r, &text, &len, a->d), text, len);
}

enum ferry_err cloud_http_view_node(const struct cloud_http_ctx *c, const char *node,
                                    const struct cloud_http_params *p, struct cloud_json *out,
                                    struct ferry_diag *d)
{
    static const char *const allowed[] = {"history", "before_seq", NULL};
    uint64_t history = HISTORY_DEFAULT, before_seq = 0;
    enum ferry_err err = only_params(p, allowed, d);
    if (err == FERRY_OK)
        err = uint_param(p, "history", 0, CLOUD_HTTP_PAGE_MAX, &history, d);
    if (err == FERRY_OK)
        err = uint_param(p, "before_seq", 1, (uint64_t)ID_MAX53, &before_seq, d);
    if (err == FERRY_OK && !ferry_id_valid(node))
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "'%.64s' is not a node id", node);
    if (err != FERRY_OK)
        return err;
    struct cloud_http_node n;
    struct cloud_http_binding b;
    /* One record more than asked says whether older ones remain. */
    struct records recs = {.cap = (size_t)history + 1};
    struct refused_acc ra = {.out = out, .d = d};
    recs.v = malloc(recs.cap * sizeof(*recs.v));
    if (!recs.v)
        return ferry_fail(d, FERRY_E_NOMEM, "out of memory for %zu records", recs.cap);
    err = cloud_http_db_read_begin(c->db, d);
    if (err == FERRY_OK)
        err = cloud_http_db_node(c->db, node, &n, d);
    if (err == FERRY_OK)
        err = cloud_http_db_binding(c->db, node, &b, d);
    if (err == FERRY_OK && history)
        err =
            cloud_http_db_history(c->db, node, before_seq, (unsigned)recs.cap, on_record, &recs, d);
    if (err == FERRY_OK) {
        cj_obj_begin(out);
        cj_key(out, "node");
        err = cloud_http_node_json(&n, out, d);
    }
    if (err == FERRY_OK) {
        cj_key(out, "binding");
        if (b.gateway[0]) {
            cj_obj_begin(out);
            cj_kstr(out, "gateway", b.gateway);
            cj_kint(out, "since", b.since);
            cj_kstr(out, "how", b.how);
            cj_obj_end(out);
        } else {
            cj_null(out);
        }
        bool older = recs.n > history;
        cj_key(out, "history");
        cj_arr_begin(out);
        for (size_t i = 0; i < recs.n && i < history; i++)
            record_json(out, &recs.v[i]);
        cj_arr_end(out);
        cj_key(out, "history_before");
        if (older)
            cj_uint(out, recs.v[history - 1].st.seq);
        else
            cj_null(out);
        cj_key(out, "refused");
        cj_arr_begin(out);
        err = cloud_http_db_refused(c->db, node, REFUSED_SHOWN, on_refused, &ra, d);
        cj_arr_end(out);
        cj_obj_end(out);
    }
    cloud_http_db_read_end(c->db);
    free(recs.v);
    return err == FERRY_OK ? nomem_unless_ok(out, d) : err;
}

/* ---- gateways -----------------------------------------------------------------------------------
 */

struct gw_acc {
    struct cloud_json *out;
    const struct cloud_http_gw_presence *pres;
    size_t npres, next; /* presence entries written so far (sorted like the rows) */
    unsigned rows;
};

static void presence_fields(struct cloud_json *j, const struct cloud_http_gw_presence *p)
{
    cj_kstr(j, "presence", !p ? "unknown" : p->online ? "online" : "offline");
    cj_key(j, "presence_since");
    if (p)
        cj_int(j, p->since);
    else
        cj_null(j);
}

/* A gateway that said its presence but has no node reporting through it. */
static void presence_only(struct gw_acc *a, const struct cloud_http_gw_presence *p)
{
    struct cloud_json *j = a->out;
    cj_obj_begin(j);
    cj_kstr(j, "gateway", p->gateway);
    presence_fields(j, p);
    cj_kuint(j, "nodes", 0);
    cj_kuint(j, "busy", 0);
    cj_kuint(j, "failed", 0);
    cj_key(j, "last_record_at");
    cj_null(j);
    cj_obj_end(j);
}

static enum ferry_err on_gateway(void *arg, const struct cloud_http_gateway_row *g)
{
    struct gw_acc *a = arg;
    const struct cloud_http_gw_presence *match = NULL;
    while (a->next < a->npres) {
        int cmp = strcmp(a->pres[a->next].gateway, g->gateway);
        if (cmp > 0)
            break;
        if (cmp == 0) {
            match = &a->pres[a->next++];
            break;
        }
        presence_only(a, &a->pres[a->next++]);
    }
    struct cloud_json *j = a->out;
    cj_obj_begin(j);
    cj_kstr(j, "gateway", g->gateway);
    presence_fields(j, match);
    cj_kuint(j, "nodes", g->nodes);
    cj_kuint(j, "busy", g->busy);
    cj_kuint(j, "failed", g->failed);
    cj_kint(j, "last_record_at", g->last_record);
    cj_obj_end(j);
    a->rows++;
    return FERRY_OK;
}

enum ferry_err cloud_http_view_gateways(const struct cloud_http_ctx *c,
                                        const struct cloud_http_params *p, struct cloud_json *out,
                                        struct ferry_diag *d)
{
    static const char *const allowed[] = {NULL};
    enum ferry_err err = only_params(p, allowed, d);
    struct cloud_http_gw_presence *pres = NULL;
    size_t npres = 0, online = 0;
    if (err == FERRY_OK && c->presence)
        err = cloud_http_presence_list(c->presence, &pres, &npres, &online, d);
    if (err != FERRY_OK)
        return err;
    struct gw_acc a = {.out = out, .pres = pres, .npres = npres};
    cj_obj_begin(out);
    cj_key(out, "gateways");
    cj_arr_begin(out);
    err = cloud_http_db_read_begin(c->db, d);
    if (err == FERRY_OK)
        err = cloud_http_db_gateways(c->db, CLOUD_HTTP_GATEWAYS_MAX + 1, on_gateway, &a, d);
    cloud_http_db_read_end(c->db);
    while (err == FERRY_OK && a.next < a.npres)
        presence_only(&a, &a.pres[a.next++]);
    free(pres);
    if (err != FERRY_OK)
        return err;
    cj_arr_end(out);
    cj_kuint(out, "online", online);
    cj_kbool(out, "truncated", a.rows > CLOUD_HTTP_GATEWAYS_MAX);
    cj_obj_end(out);
    return nomem_unless_ok(out, d);
}

/* ---- releases -----------------------------------------------------------------------------------
 */

struct release_item {
    char id[FERRY_NAME_MAX + 1];
    bool parsed;
    struct ferry_manifest m;
    char problem[FERRY_DIAG_MAX];
    uint64_t by_state[FERRY_STATE__COUNT];
    bool in_store;
};

struct release_acc {
    struct release_item *v;
    size_t n, cap;
    bool truncated;
};

static struct release_item *release_slot(struct release_acc *a, const char *id)
{
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->v[i].id, id) == 0)
            return &a->v[i];
    }
    if (a->n >= CLOUD_HTTP_RELEASES_MAX) {
        a->truncated = true;
        return NULL;
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        struct release_item *g = realloc(a->v, cap * sizeof(*g));
        if (!g)
            return NULL;
        a->v = g;
        a->cap = cap;
    }
    struct release_item *r = &a->v[a->n++];
    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "%s", id);
    return r;
}

static enum ferry_err on_store_release(void *arg, const char *id)
{
    struct release_acc *a = arg;
    struct release_item *r = release_slot(a, id);
    if (!r)
        return a->truncated ? FERRY_OK : FERRY_E_NOMEM;
    r->in_store = true;
    return FERRY_OK;
}

static enum ferry_err on_release_state(void *arg, const char *release, const char *state,
                                       uint64_t count)
{
    struct release_acc *a = arg;
    enum ferry_state s;
    struct release_item *r = release_slot(a, release);
    if (!r)
        return a->truncated ? FERRY_OK : FERRY_E_NOMEM;
    if (ferry_state_from_name(state, &s) == FERRY_OK)
        r->by_state[s] += count;
    return FERRY_OK;
}

static void read_manifest(const struct cloud_store *store, struct release_item *r)
{
    struct ferry_diag d = {{0}};
    uint8_t *env = NULL;
    size_t len = 0;
    struct ferry_envelope *e = NULL;
    enum ferry_err err = cloud_store_get_release(store, r->id, &env, &len, &d);
    if (err == FERRY_OK)
        err = ferry_envelope_parse(env, len, &e, &d);
    if (err == FERRY_OK)
        err = ferry_manifest_parse(e->manifest, e->manifest_len, &r->m, &d);
    ferry_envelope_free(e);
    free(env);
    r->parsed = err == FERRY_OK;
    if (!r->parsed)
        snprintf(r->problem, sizeof(r->problem), "%s", ferry_diag_str(&d, err));
}

static int release_order(const void *a, const void *b)
{
    const struct release_item *x = a, *y = b;
    if (x->parsed != y->parsed)
        return x->parsed ? -1 : 1;
    if (x->parsed) {
        int c = strcmp(x->m.product, y->m.product);
        if (c)
            return c;
        if (x->m.seq != y->m.seq)
            return x->m.seq < y->m.seq ? 1 : -1;
    }
    return strcmp(x->id, y->id);
}

static void release_json(struct cloud_json *j, const struct release_item *r, int64_t now)
{
    cj_obj_begin(j);
    cj_kstr(j, "release", r->id);
    cj_kbool(j, "in_store", r->in_store);
    if (r->parsed) {
        char hex[2 * FERRY_SHA256_LEN + 1];
        ferry_hex_encode(r->m.sha256, FERRY_SHA256_LEN, hex);
        cj_kstr(j, "product", r->m.product);
        cj_kstr(j, "version", r->m.version);
        cj_kuint(j, "seq", r->m.seq);
        cj_kuint(j, "size", r->m.size);
        cj_kstr(j, "sha256", hex);
        cj_kstr(j, "media_type", r->m.media_type);
        cj_key(j, "hw_models");
        cj_arr_begin(j);
        for (size_t i = 0; i < r->m.nhw; i++)
            cj_str(j, r->m.hw[i].model);
        cj_arr_end(j);
        cj_kint(j, "issued_at", r->m.issued_at);
        cj_kint(j, "expires_at", r->m.expires_at);
        cj_kbool(j, "expired", now >= r->m.expires_at);
    } else if (r->in_store) {
        cj_kstr(j, "problem", r->problem);
    }
    cj_key(j, "nodes");
    states_object(j, r->by_state);
    cj_obj_end(j);
}

enum ferry_err cloud_http_view_releases(const struct cloud_http_ctx *c,
                                        const struct cloud_http_params *p, struct cloud_json *out,
                                        struct ferry_diag *d)
{
    static const char *const allowed[] = {NULL};
    struct release_acc a = {0};
    enum ferry_err err = only_params(p, allowed, d);
    if (err == FERRY_OK && c->store)
        err = cloud_store_each_release(c->store, on_store_release, &a, d);
    if (err == FERRY_OK) {
        err = cloud_http_db_read_begin(c->db, d);
        if (err == FERRY_OK)
            err = cloud_http_db_release_states(c->db, GROUPS_READ, on_release_state, &a, d);
        cloud_http_db_read_end(c->db);
    }
    if (err == FERRY_E_NOMEM)
        err = ferry_fail(d, err, "out of memory listing releases");
    for (size_t i = 0; err == FERRY_OK && i < a.n; i++) {
        if (a.v[i].in_store)
            read_manifest(c->store, &a.v[i]);
    }
    if (err == FERRY_OK) {
        qsort(a.v, a.n, sizeof(*a.v), release_order);
        cj_obj_begin(out);
        cj_key(out, "releases");
        cj_arr_begin(out);
        for (size_t i = 0; i < a.n; i++)
            release_json(out, &a.v[i], c->now);
        cj_arr_end(out);
        cj_kbool(out, "truncated", a.truncated);
        cj_obj_end(out);
        err = nomem_unless_ok(out, d);
    }
    free(a.v);
    return err;
}

/* ---- rollouts -----------------------------------------------------------------------------------
 */

struct log_acc {
    struct ferry_rollout_view_log *v;
    size_t n, cap;
    int64_t oldest_id;
};

static enum ferry_err on_log_entry(void *arg, int64_t id, const struct cloud_rollout_log_entry *e)
{
    struct log_acc *a = arg;
    if (a->n == a->cap)
        return FERRY_OK;
    struct ferry_rollout_view_log *l = &a->v[a->n++];
    l->at = e->at;
    snprintf(l->actor, sizeof(l->actor), "%s", e->actor);
    snprintf(l->action, sizeof(l->action), "%s", e->action);
    snprintf(l->reason, sizeof(l->reason), "%s", e->reason);
    a->oldest_id = id;
    return FERRY_OK;
}

/* The view of rollout id into out; with log_limit, its newest entries
 * (oldest first, as `rollout show --json`) and a cursor for older ones. */
static enum ferry_err rollout_json(const struct cloud_http_ctx *c, int64_t id, unsigned log_limit,
                                   struct cloud_json *out, struct ferry_diag *d)
{
    struct cloud_rollout r;
    struct cloud_wave_tally waves[FERRY_ROLLOUT_MAX_WAVES];
    struct cloud_halt_tally halt;
    struct ferry_rollout_view v;
    struct log_acc log = {0};
    enum ferry_err err = cloud_http_db_rollout(c->db, id, &r, d);
    if (err == FERRY_OK)
        err = cloud_http_db_rollout_tally(c->db, &r, waves, &halt, d);
    if (err != FERRY_OK)
        return err;
    cloud_rollout_view_fill(&r, waves, &halt, c->now, &v);
    bool more = false;
    if (log_limit) {
        log.cap = log_limit + 1;
        log.v = calloc(log.cap, sizeof(*log.v));
        if (!log.v)
            return ferry_fail(d, FERRY_E_NOMEM, "out of memory for the log");
        err = cloud_http_db_rollout_log(c->db, id, 0, log_limit + 1, on_log_entry, &log, d);
        more = log.n > log_limit;
        if (more)
            log.n = log_limit;
        /* Newest first from the query; the view lists oldest first. */
        for (size_t i = 0; i < log.n / 2; i++) {
            struct ferry_rollout_view_log t = log.v[i];
            log.v[i] = log.v[log.n - 1 - i];
            log.v[log.n - 1 - i] = t;
        }
        v.log = log.v;
        v.nlog = log.n;
    }
    char *text = NULL;
    size_t len = 0;
    if (err == FERRY_OK)
        err = ferry_rollout_view_to_json(&v, &text, &len, d);
    if (err == FERRY_OK && log_limit) {
        /* The view's members, then the cursor for older log entries. */
        cj_obj_begin(out);
        cj_text(out, text + 1, len - 2);
        out->first[out->depth] = false;
        cj_key(out, "log_before");
        if (more && log.n)
            cj_int(out, log.oldest_id);
        else
            cj_null(out);
        cj_obj_end(out);
    } else if (err == FERRY_OK) {
        cj_raw(out, text, len);
    }
    free(text);
    free(log.v);
    cloud_rollout_clear(&r);
    return err;
}

struct ids_acc {
    int64_t ids[CLOUD_HTTP_ROLLOUTS_MAX];
    size_t n;
};

static enum ferry_err on_rollout_id(void *arg, int64_t id)
{
    struct ids_acc *a = arg;
    if (a->n < CLOUD_HTTP_ROLLOUTS_MAX)
        a->ids[a->n++] = id;
    return FERRY_OK;
}

enum ferry_err cloud_http_rollout_list_json(const struct cloud_http_ctx *c, unsigned limit,
                                            struct cloud_json *out, struct ferry_diag *d)
{
    struct ids_acc ids = {.n = 0};
    enum ferry_err err = cloud_http_db_read_begin(c->db, d);
    if (err == FERRY_OK)
        err = cloud_http_db_rollout_ids(c->db, limit, on_rollout_id, &ids, d);
    cj_obj_begin(out);
    cj_key(out, "rollouts");
    cj_arr_begin(out);
    for (size_t i = 0; err == FERRY_OK && i < ids.n; i++)
        err = rollout_json(c, ids.ids[i], 0, out, d);
    cloud_http_db_read_end(c->db);
    cj_arr_end(out);
    cj_obj_end(out);
    return err == FERRY_OK ? nomem_unless_ok(out, d) : err;
}

enum ferry_err cloud_http_view_rollouts(const struct cloud_http_ctx *c,
                                        const struct cloud_http_params *p, struct cloud_json *out,
                                        struct ferry_diag *d)
{
    static const char *const allowed[] = {"limit", NULL};
    uint64_t limit = ROLLOUTS_SHOWN;
    enum ferry_err err = only_params(p, allowed, d);
    if (err == FERRY_OK)
        err = uint_param(p, "limit", 1, CLOUD_HTTP_ROLLOUTS_MAX, &limit, d);
    return err == FERRY_OK ? cloud_http_rollout_list_json(c, (unsigned)limit, out, d) : err;
}

enum ferry_err cloud_http_view_rollout(const struct cloud_http_ctx *c, int64_t id,
                                       const struct cloud_http_params *p, struct cloud_json *out,
                                       struct ferry_diag *d)
{
    static const char *const allowed[] = {"log", NULL};
    uint64_t log = CLOUD_HTTP_LOG_DEFAULT;
    enum ferry_err err = only_params(p, allowed, d);
    if (err == FERRY_OK)
        err = uint_param(p, "log", 1, CLOUD_HTTP_PAGE_MAX, &log, d);
    if (err != FERRY_OK)
        return err;
    err = cloud_http_db_read_begin(c->db, d);
    if (err == FERRY_OK)
        err = rollout_json(c, id, (unsigned)log, out, d);
    cloud_http_db_read_end(c->db);
    return err == FERRY_OK ? nomem_unless_ok(out, d) : err;
}

struct log_json_acc {
    struct cloud_json *out;
    unsigned n;
    int64_t last_id;
};

static enum ferry_err on_log_json(void *arg, int64_t id, const struct cloud_rollout_log_entry *e)
{
    struct log_json_acc *a = arg;
    struct cloud_json *j = a->out;
    cj_obj_begin(j);
    cj_kint(j, "id", id);
    cj_kint(j, "at", e->at);
    cj_kstr(j, "actor", e->actor);
    cj_kstr(j, "action", e->action);
    cj_kstr(j, "reason", e->reason);
    cj_obj_end(j);
    a->n++;
    a->last_id = id;
    return FERRY_OK;
}

enum ferry_err cloud_http_view_rollout_log(const struct cloud_http_ctx *c, int64_t id,
                                           const struct cloud_http_params *p,
                                           struct cloud_json *out, struct ferry_diag *d)
{
    static const char *const allowed[] = {"limit", "before", NULL};
    uint64_t limit = CLOUD_HTTP_LOG_DEFAULT, before = 0;
    enum ferry_err err = only_params(p, allowed, d);
    if (err == FERRY_OK)
        err = uint_param(p, "limit", 1, CLOUD_HTTP_PAGE_MAX, &limit, d);
    if (err == FERRY_OK)
        err = uint_param(p, "before", 1, (uint64_t)ID_MAX53, &before, d);
    if (err != FERRY_OK)
        return err;
    struct cloud_rollout r;
    struct log_json_acc a = {.out = out};
    err = cloud_http_db_read_begin(c->db, d);
    if (err == FERRY_OK)
        err = cloud_http_db_rollout(c->db, id, &r, d); /* 404 for no such rollout */
    if (err == FERRY_OK) {
        cloud_rollout_clear(&r);
        cj_obj_begin(out);
        cj_kint(out, "rollout", id);
        cj_key(out, "log");
        cj_arr_begin(out);
        err = cloud_http_db_rollout_log(c->db, id, (int64_t)before, (unsigned)limit, on_log_json,
                                        &a, d);
        cj_arr_end(out);
        cj_key(out, "before");
        if (a.n == limit)
            cj_int(out, a.last_id);
        else
            cj_null(out);
        cj_obj_end(out);
    }
    cloud_http_db_read_end(c->db);
    return err == FERRY_OK ? nomem_unless_ok(out, d) : err;
}
