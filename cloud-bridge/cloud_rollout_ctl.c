#include "cloud_rollout_ctl.h"

#include "cloud_inventory_rollout.h"
#include "cloud_rollout_assign.h"
#include "cloud_rollout_calc.h"
#include "cloud_timestamp.h"
#include "ferry_log.h"
#include "ferry_loop.h"
#include "ferry_rollout.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ACTOR "controller"
/* Records and descriptions are stamped in whole seconds: look one back. */
#define WATERMARK_SLACK 1
/* And every this many ticks a rollout's targets are read whole, so a
 * record stamped before the watermark (the cloud's clock stepped back) is
 * taken in all the same. */
#define FULL_SCAN_TICKS 60
/* New targets a tick takes at most: the first tick of a rollout over a big
 * fleet is spread over several, so the transaction (and the inventory's
 * write lock, which status ingestion waits for) stays short. Until every
 * node is targeted the rollout only halts; it opens no wave. */
#define TARGET_BATCH 20000
/* A rollout the operator cancelled (or that completed) is published for
 * this long after, by whichever instance sees it first. */
#define FINAL_PUBLISH_S 120

struct queued_info {
    struct ferry_nodeinfo info;
    char gateway[FERRY_ID_MAX + 1];
};

/* What this instance remembers of one rollout between ticks. */
struct tracked {
    int64_t id;
    int64_t since; /* watermark: 0 reads everything */
    unsigned ticks;
    bool backlog; /* nodes left to target: read everything again */
    /* The counts, kept while nothing they depend on changed. */
    bool tally_ok;
    uint64_t tally_rev;
    struct cloud_wave_tally waves[FERRY_ROLLOUT_MAX_WAVES];
    struct cloud_halt_tally halt;
    uint64_t published;                 /* revision of the documents last sent; 0: none */
    char (*gateways)[FERRY_ID_MAX + 1]; /* those that got a document */
    size_t ngateways;
};

struct cloud_rollout_ctl {
    struct cloud_inventory *inv;
    char fleet[FERRY_ID_MAX + 1];
    struct cloud_rollout_ctl_io io;
    char filters[CLOUD_ROLLOUT_CTL_FILTERS][FERRY_TOPIC_MAX];
    char info_prefix[FERRY_TOPIC_MAX], report_prefix[FERRY_TOPIC_MAX];
    struct queued_info *infos;
    size_t ninfos, cap_infos;
    struct ferry_rollout_report *reports;
    size_t nreports, cap_reports;
    struct tracked *tracked;
    size_t ntracked;
    bool republish; /* next tick: every rollout's documents again */
    struct cloud_rollout_ctl_stats stats;
};

/* ---- set-up ---------------------------------------------------------------------------- */

enum ferry_err cloud_rollout_ctl_new(struct cloud_inventory *inv, const char *fleet,
                                     const struct cloud_rollout_ctl_io *io,
                                     struct cloud_rollout_ctl **out, struct ferry_diag *d)
{
    struct cloud_rollout_ctl *c = calloc(1, sizeof(*c));
    if (!c)
        return ferry_fail(d, FERRY_E_NOMEM, "rollouts: out of memory");
    c->inv = inv;
    c->io = *io;
    c->republish = true;
    snprintf(c->fleet, sizeof(c->fleet), "%s", fleet);
    if (ferry_topic(c->filters[0], FERRY_TOPIC_MAX, FERRY_TOPIC_NODE_INFO, fleet, "+", "+") !=
            FERRY_OK ||
        ferry_topic(c->filters[1], FERRY_TOPIC_MAX, FERRY_TOPIC_ROLLOUT_REPORT, fleet, "+", NULL) !=
            FERRY_OK) {
        free(c);
        return ferry_fail(d, FERRY_E_INVALID_ARG, "rollouts: no topics for fleet '%.80s'", fleet);
    }
    /* Without the trailing "+/+" and "+". */
    snprintf(c->info_prefix, sizeof(c->info_prefix), "%.*s", (int)strlen(c->filters[0]) - 3,
             c->filters[0]);
    snprintf(c->report_prefix, sizeof(c->report_prefix), "%.*s", (int)strlen(c->filters[1]) - 1,
             c->filters[1]);
    *out = c;
    return FERRY_OK;
}

void cloud_rollout_ctl_free(struct cloud_rollout_ctl *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->ntracked; i++)
        free(c->tracked[i].gateways);
    free(c->tracked);
    free(c->infos);
    free(c->reports);
    free(c);
}

const char *cloud_rollout_ctl_filter(const struct cloud_rollout_ctl *c, size_t i)
{
    return i < CLOUD_ROLLOUT_CTL_FILTERS ? c->filters[i] : NULL;
}

const struct cloud_rollout_ctl_stats *cloud_rollout_ctl_stats(const struct cloud_rollout_ctl *c)
{
    return &c->stats;
}

void cloud_rollout_ctl_connected(struct cloud_rollout_ctl *c)
{
    c->republish = true;
}

/* ---- messages ------------------------------------------------------------------------- */

static bool grow(void **v, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    void *g = realloc(*v, n * size);
    if (!g)
        return false;
    *v = g;
    *cap = n;
    return true;
}

static void queue_info(struct cloud_rollout_ctl *c, const char *rest, const uint8_t *payload,
                       size_t len)
{
    const char *slash = strchr(rest, '/');
    char gateway[FERRY_ID_MAX + 1];
    if (len == 0)
        return; /* a retained description being cleared */
    if (!slash || slash - rest > FERRY_ID_MAX) {
        ferry_log_warn("rollouts: node description on '%.100s' dropped: not <gateway>/<node>",
                       rest);
        return;
    }
    snprintf(gateway, sizeof(gateway), "%.*s", (int)(slash - rest), rest);
    struct ferry_nodeinfo ni;
    struct ferry_diag d = {{0}};
    enum ferry_err err = ferry_nodeinfo_from_json(payload, len, &ni, &d);
    if (err == FERRY_OK && (!ferry_id_valid(gateway) || strcmp(ni.node, slash + 1) != 0))
        err = ferry_fail(&d, FERRY_E_PROTOCOL, "it does not match its topic");
    if (err != FERRY_OK) {
        ferry_log_warn("rollouts: node description %.140s dropped: %s", rest,
                       ferry_diag_str(&d, err));
        return;
    }
    if (c->ninfos == CLOUD_ROLLOUT_CTL_QUEUE) {
        ferry_log_warn("rollouts: %d node descriptions waiting; dropping the one of %s",
                       CLOUD_ROLLOUT_CTL_QUEUE, ni.node);
        return;
    }
    if (!grow((void **)&c->infos, &c->cap_infos, c->ninfos + 1, sizeof(*c->infos))) {
        ferry_log_err("rollouts: out of memory for node descriptions");
        return;
    }
    c->infos[c->ninfos].info = ni;
    snprintf(c->infos[c->ninfos].gateway, sizeof(c->infos[0].gateway), "%s", gateway);
    c->ninfos++;
}

static void queue_report(struct cloud_rollout_ctl *c, const char *gateway, const uint8_t *payload,
                         size_t len)
{
    struct ferry_diag d = {{0}};
    if (len == 0)
        return;
    if (!grow((void **)&c->reports, &c->cap_reports, c->nreports + 1, sizeof(*c->reports))) {
        ferry_log_err("rollouts: out of memory for gateway reports");
        return;
    }
    struct ferry_rollout_report *r = &c->reports[c->nreports];
    enum ferry_err err = ferry_rollout_report_from_json(payload, len, r, &d);
    if (err == FERRY_OK && strcmp(r->gateway, gateway) != 0)
        err = ferry_fail(&d, FERRY_E_PROTOCOL, "it names gateway '%s'", r->gateway);
    if (err != FERRY_OK) {
        ferry_log_warn("rollouts: report of gateway %s dropped: %s", gateway,
                       ferry_diag_str(&d, err));
        return;
    }
    c->nreports++;
}

bool cloud_rollout_ctl_message(struct cloud_rollout_ctl *c, const char *topic,
                               const uint8_t *payload, size_t len)
{
    size_t ni = strlen(c->info_prefix), nr = strlen(c->report_prefix);
    if (strncmp(topic, c->info_prefix, ni) == 0) {
        queue_info(c, topic + ni, payload, len);
        return true;
    }
    if (strncmp(topic, c->report_prefix, nr) == 0) {
        if (ferry_id_valid(topic + nr))
            queue_report(c, topic + nr, payload, len);
        else
            ferry_log_warn("rollouts: report on '%.200s' dropped", topic);
        return true;
    }
    return false;
}

/* ---- memory of rollouts ------------------------------------------------------------------ */

static struct tracked *track(struct cloud_rollout_ctl *c, int64_t id)
{
    for (size_t i = 0; i < c->ntracked; i++)
        if (c->tracked[i].id == id)
            return &c->tracked[i];
    struct tracked *g = realloc(c->tracked, (c->ntracked + 1) * sizeof(*g));
    if (!g)
        return NULL;
    c->tracked = g;
    struct tracked *t = &c->tracked[c->ntracked++];
    memset(t, 0, sizeof(*t));
    t->id = id;
    return t;
}

/* ---- one rollout's decisions (inside the transaction) --------------------------------------- */

struct new_target {
    char node[FERRY_ID_MAX + 1];
    char gateway[FERRY_ID_MAX + 1];
    unsigned wave;
    int window;
};

struct targeting {
    const struct cloud_rollout *r;
    struct new_target *v;
    size_t n, cap;
    size_t fresh; /* new targets among v */
    bool oom, full;
};

/* Collected first and written after the walk: SQLite leaves undefined what
 * a SELECT sees of a table written while it steps. */
static enum ferry_err on_candidate(void *arg, const struct cloud_rollout_candidate *cand)
{
    struct targeting *t = arg;
    const struct ferry_nodeinfo *ni = cand->info;
    struct new_target nt;
    memset(&nt, 0, sizeof(nt));
    snprintf(nt.node, sizeof(nt.node), "%s", ni->node);
    snprintf(nt.gateway, sizeof(nt.gateway), "%s", cand->gateway);
    if (cand->targeted) {
        if (strcmp(cand->target_gw, cand->gateway) == 0)
            return FERRY_OK;
        nt.wave = cand->wave; /* moved: only its gateway changes */
        nt.window = -2;
    } else if (t->fresh == TARGET_BATCH) {
        t->full = true;
        return FERRY_E_BUSY; /* ends the walk: the rest at the next tick */
    } else {
        struct ferry_sel_subject who = {ni->node,        cand->gateway, ni->hw_model,
                                        ni->hw_revision, cand->version, ni};
        if (!ferry_sel_match(&t->r->plan.select, &who))
            return FERRY_OK;
        nt.wave = cloud_rollout_wave(&t->r->plan, (uint64_t)t->r->id, &who);
        nt.window = cloud_rollout_window(&t->r->plan, &who);
        t->fresh++;
    }
    if (!grow((void **)&t->v, &t->cap, t->n + 1, sizeof(*t->v))) {
        t->oom = true;
        return FERRY_E_NOMEM;
    }
    t->v[t->n++] = nt;
    return FERRY_OK;
}

/* New targets and moved ones; *bump when one of them is in an open wave,
 * *backlog when more are left than one tick takes. */
static enum ferry_err target(struct cloud_rollout_ctl *c, const struct cloud_rollout *r,
                             int64_t since, bool *bump, bool *backlog, struct ferry_diag *d)
{
    struct targeting t = {.r = r};
    enum ferry_err err = cloud_rollout_candidates(c->inv, r, since, on_candidate, &t, d);
    *backlog = t.full;
    if (t.full && err == FERRY_E_BUSY)
        err = FERRY_OK;
    if (t.oom)
        err = ferry_fail(d, FERRY_E_NOMEM, "rollout %" PRId64 ": out of memory for targets", r->id);
    for (size_t i = 0; err == FERRY_OK && i < t.n; i++) {
        const struct new_target *nt = &t.v[i];
        err = cloud_rollout_target_put(c->inv, r->id, nt->node, nt->gateway, nt->wave,
                                       nt->window < -1 ? -1 : nt->window, d);
        if (nt->window >= -1)
            c->stats.targeted++;
        if (nt->wave < r->open_waves)
            *bump = true;
    }
    free(t.v);
    return err;
}

static enum ferry_err step(struct cloud_rollout_ctl *c, struct cloud_rollout *r,
                           const struct cloud_decision *dec, int64_t now, bool *promote,
                           struct ferry_diag *d)
{
    enum ferry_err err = FERRY_OK;
    const char *action = NULL;
    char reason[CLOUD_REASON_MAX + 32];
    snprintf(reason, sizeof(reason), "%s", dec->reason);
    switch (dec->step) {
    case CLOUD_STEP_NONE:
        return FERRY_OK;
    case CLOUD_STEP_START:
        r->state = FERRY_ROLLOUT_RUNNING;
        /* fall through - wave 1 opens */
    case CLOUD_STEP_OPEN_WAVE:
        err = cloud_rollout_wave_opened(c->inv, r->id, r->open_waves, now, d);
        action = dec->step == CLOUD_STEP_START ? "started" : "wave-opened";
        snprintf(reason, sizeof(reason), "wave %u of %zu opened: %s", r->open_waves + 1,
                 r->plan.nwaves, dec->reason);
        r->open_waves++;
        break;
    case CLOUD_STEP_HALT:
        r->state = FERRY_ROLLOUT_HALTED;
        action = "halted";
        break;
    case CLOUD_STEP_COMPLETE:
        r->state = FERRY_ROLLOUT_COMPLETED;
        action = "completed";
        *promote = r->plan.select.n == 0 && !r->promoted;
        r->promoted = r->promoted || *promote;
        break;
    }
    if (dec->step != CLOUD_STEP_OPEN_WAVE)
        r->state_at = now;
    r->revision++;
    c->stats.steps++;
    ferry_log_info("rollout %" PRId64 ": %s: %s", r->id, action, reason);
    if (err == FERRY_OK)
        err = cloud_rollout_log(c->inv, r->id, now, ACTOR, action, reason, d);
    return err;
}

/* Targets, states, then one step. *publish when documents must go out;
 * product gets the rollout's product. */
static enum ferry_err decide_one(struct cloud_rollout_ctl *c, int64_t id, int64_t now,
                                 bool *publish, bool *promote, char product[FERRY_ID_MAX + 1],
                                 struct ferry_diag *d)
{
    struct tracked *t = track(c, id);
    if (!t)
        return ferry_fail(d, FERRY_E_NOMEM, "rollouts: out of memory");
    struct cloud_rollout r;
    enum ferry_err err = cloud_rollout_load(c->inv, id, &r, d);
    if (err != FERRY_OK)
        return err;
    snprintf(product, FERRY_ID_MAX + 1, "%s", r.product);
    if (!cloud_rollout_is_active(&r)) { /* ended lately: only its documents */
        *publish = r.revision != t->published;
        cloud_rollout_clear(&r);
        return FERRY_OK;
    }
    struct cloud_wave_tally waves[FERRY_ROLLOUT_MAX_WAVES];
    struct cloud_halt_tally halt;
    bool bump = false;
    uint64_t changed = 0;
    char old_reason[CLOUD_REASON_MAX];
    snprintf(old_reason, sizeof(old_reason), "%s", r.reason);
    bool full = ++t->ticks % FULL_SCAN_TICKS == 0;
    int64_t since = full || t->backlog ? 0 : t->since;
    size_t targeted = c->stats.targeted;
    err = target(c, &r, since, &bump, &t->backlog, d);
    if (err == FERRY_OK)
        err = cloud_rollout_refresh(c->inv, &r, since, &changed, d);
    c->stats.refreshed += changed;
    /* Gateways hear of every target's state once it matters to them: when
     * the rollout is halted they revert or hold by it. */
    if (changed && r.state == FERRY_ROLLOUT_HALTED)
        bump = true;
    if (err == FERRY_OK && (!t->tally_ok || full || changed || t->tally_rev != r.revision ||
                            c->stats.targeted != targeted))
        err = cloud_rollout_tally(c->inv, &r, t->waves, &t->halt, d);
    t->tally_ok = err == FERRY_OK;
    t->tally_rev = r.revision;
    memcpy(waves, t->waves, sizeof(waves));
    halt = t->halt;
    struct cloud_decision dec = {0};
    if (err == FERRY_OK) {
        struct cloud_rollout_rules rules = {r.plan.success_pct, r.plan.min_final, r.plan.halt_pct,
                                            r.plan.soak_s};
        struct cloud_rollout_view v = {
            r.state, (uint32_t)r.plan.nwaves, r.open_waves, r.start_at, waves, halt};
        cloud_rollout_decide(&rules, &v, now, &dec);
        if (t->backlog && dec.step != CLOUD_STEP_HALT && r.state != FERRY_ROLLOUT_SCHEDULED) {
            dec.step = CLOUD_STEP_NONE;
            dec.wait = CLOUD_WAIT_NO_TARGETS;
            snprintf(dec.reason, sizeof(dec.reason),
                     "targeting the product's nodes (%zu more this tick)",
                     c->stats.targeted - targeted);
        }
        uint64_t before = r.revision;
        err = step(c, &r, &dec, now, promote, d);
        bump = bump && r.revision == before;
    }
    if (err == FERRY_OK && bump)
        r.revision++;
    /* Halted, paused, ended: the reason stays the one of the step that
     * got it there (why it halted, who paused it). */
    if (dec.step != CLOUD_STEP_NONE ||
        (dec.wait != CLOUD_WAIT_HALTED && dec.wait != CLOUD_WAIT_PAUSED &&
         dec.wait != CLOUD_WAIT_ENDED))
        snprintf(r.reason, sizeof(r.reason), "%s", dec.reason);
    if (err == FERRY_OK &&
        (dec.step != CLOUD_STEP_NONE || bump || strcmp(old_reason, r.reason) != 0))
        err = cloud_rollout_save(c->inv, &r, d);
    *publish = r.revision != t->published;
    c->stats.rollouts++;
    cloud_rollout_clear(&r);
    return err;
}

/* A gateway halted the rollout on its own nodes' failures. */
static enum ferry_err gateway_halt(struct cloud_rollout_ctl *c, const char *gateway,
                                   const struct ferry_rollout_report_item *it, int64_t now,
                                   struct ferry_diag *d)
{
    struct cloud_rollout r;
    enum ferry_err err = cloud_rollout_load(c->inv, (int64_t)it->rollout, &r, d);
    if (err == FERRY_E_NOT_FOUND)
        return FERRY_OK;
    if (err != FERRY_OK)
        return err;
    bool first = false;
    /* A halt made before the operator's last resume or retry is history. */
    if (!ferry_rollout_state_is_final(r.state) && it->resume == r.resume)
        err = cloud_rollout_gateway_halt(c->inv, r.id, gateway, it->resume, &first, d);
    if (err == FERRY_OK && first) {
        char actor[CLOUD_ACTOR_MAX + 1], reason[CLOUD_REASON_MAX];
        snprintf(actor, sizeof(actor), "gateway:%s", gateway);
        char at[32];
        time_t tt = (time_t)it->halted_at;
        struct tm tm;
        if (!gmtime_r(&tt, &tm) || !strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm))
            snprintf(at, sizeof(at), "%" PRId64, it->halted_at);
        snprintf(reason, sizeof(reason), "halted on its own nodes%s at %s: %s",
                 it->offline ? " while its uplink was down" : "", at, it->reason);
        bool halt = r.state != FERRY_ROLLOUT_HALTED;
        ferry_log_warn("rollout %" PRId64 ": gateway %s %s", r.id, gateway, reason);
        err = cloud_rollout_log(c->inv, r.id, now, actor, halt ? "halted" : "gateway-halted",
                                reason, d);
        if (err == FERRY_OK && halt) {
            r.state = FERRY_ROLLOUT_HALTED;
            r.state_at = now;
            r.revision++;
            snprintf(r.reason, sizeof(r.reason), "gateway %.64s %.180s", gateway, reason);
            err = cloud_rollout_save(c->inv, &r, d);
        }
    }
    cloud_rollout_clear(&r);
    return err;
}

static enum ferry_err take_queues(struct cloud_rollout_ctl *c, int64_t now, struct ferry_diag *d)
{
    enum ferry_err err = FERRY_OK;
    for (size_t i = 0; i < c->ninfos && err == FERRY_OK; i++) {
        struct ferry_diag pd = {{0}};
        enum ferry_err perr =
            cloud_nodeinfo_put(c->inv, &c->infos[i].info, c->infos[i].gateway, now, &pd);
        if (perr == FERRY_E_INVALID_ARG)
            ferry_log_warn("rollouts: %s", pd.msg);
        else if (perr != FERRY_OK)
            err = ferry_fail(d, perr, "%s", pd.msg);
    }
    for (size_t i = 0; i < c->nreports && err == FERRY_OK; i++)
        for (size_t k = 0; k < c->reports[i].n && err == FERRY_OK; k++)
            if (c->reports[i].items[k].halted)
                err = gateway_halt(c, c->reports[i].gateway, &c->reports[i].items[k], now, d);
    return err;
}

/* ---- documents ------------------------------------------------------------------------------ */

struct doc_builder {
    struct cloud_rollout_ctl *c;
    const struct cloud_rollout *r;
    struct tracked *t;
    struct ferry_rollout_doc doc;
    size_t cap;
    char (*sent)[FERRY_ID_MAX + 1];
    size_t nsent, cap_sent;
    enum ferry_err err;
};

static void send_doc(struct doc_builder *b)
{
    struct ferry_diag d = {{0}};
    char topic[FERRY_TOPIC_MAX];
    char *json = NULL;
    size_t len = 0;
    enum ferry_err err = ferry_topic(topic, sizeof(topic), FERRY_TOPIC_ROLLOUT, b->c->fleet,
                                     b->doc.gateway, b->r->product);
    if (err == FERRY_OK)
        err = ferry_rollout_doc_to_json(&b->doc, &json, &len, &d);
    if (err == FERRY_OK)
        err = b->c->io.publish(b->c->io.arg, topic, json, len, true);
    free(json);
    if (err != FERRY_OK) {
        ferry_log_warn("rollout %" PRId64 ": document for gateway %s not sent: %s", b->r->id,
                       b->doc.gateway, ferry_diag_str(&d, err));
        b->err = err;
        return;
    }
    b->c->stats.docs++;
    if (grow((void **)&b->sent, &b->cap_sent, b->nsent + 1, sizeof(*b->sent)))
        snprintf(b->sent[b->nsent++], FERRY_ID_MAX + 1, "%s", b->doc.gateway);
}

static enum ferry_err on_doc_target(void *arg, const struct cloud_rollout_target *t)
{
    struct doc_builder *b = arg;
    if (b->doc.ntargets && strcmp(b->doc.gateway, t->gateway) != 0) {
        send_doc(b);
        b->doc.ntargets = 0;
    }
    snprintf(b->doc.gateway, sizeof(b->doc.gateway), "%s", t->gateway);
    if (!grow((void **)&b->doc.targets, &b->cap, b->doc.ntargets + 1, sizeof(*b->doc.targets)))
        return FERRY_E_NOMEM;
    struct ferry_rollout_target *dt = &b->doc.targets[b->doc.ntargets++];
    snprintf(dt->node, sizeof(dt->node), "%s", t->node);
    dt->wave = (uint8_t)t->wave;
    dt->window = (int8_t)t->window;
    dt->state = (int8_t)t->state;
    return FERRY_OK;
}

static bool was_sent(const struct doc_builder *b, const char *gw)
{
    for (size_t i = 0; i < b->nsent; i++)
        if (strcmp(b->sent[i], gw) == 0)
            return true;
    return false;
}

static void publish_docs(struct cloud_rollout_ctl *c, const struct cloud_rollout *r,
                         struct tracked *t)
{
    struct doc_builder b = {.c = c, .r = r, .t = t};
    struct ferry_rollout_doc *doc = &b.doc;
    doc->rollout = (uint64_t)r->id;
    doc->revision = r->revision ? r->revision : 1;
    doc->resume = r->resume;
    snprintf(doc->product, sizeof(doc->product), "%s", r->product);
    doc->state = r->state;
    doc->release = r->envelope;
    doc->release_len = r->envelope_len;
    doc->revert = r->revert_envelope;
    doc->revert_len = r->revert_len;
    doc->halt_pct = r->plan.halt_pct;
    doc->min_final = r->plan.min_final;
    doc->rate_per_min = r->plan.rate_per_min;
    doc->nwaves = (uint32_t)r->plan.nwaves;
    doc->open_waves = r->open_waves;
    for (size_t i = 0; i < r->plan.nwindows; i++)
        doc->windows[i] = r->plan.windows[i].w;
    doc->nwindows = r->plan.nwindows;
    struct ferry_diag d = {{0}};
    enum ferry_err err = cloud_rollout_each_target(c->inv, r->id, NULL, on_doc_target, &b, &d);
    if (err == FERRY_OK && doc->ntargets)
        send_doc(&b);
    /* A gateway whose targets all moved away learns it has none. */
    doc->ntargets = 0;
    for (size_t i = 0; err == FERRY_OK && i < t->ngateways; i++) {
        if (was_sent(&b, t->gateways[i]))
            continue;
        snprintf(doc->gateway, sizeof(doc->gateway), "%s", t->gateways[i]);
        send_doc(&b);
    }
    free(doc->targets);
    if (err != FERRY_OK) {
        ferry_log_err("rollout %" PRId64 ": documents not built: %s", r->id,
                      ferry_diag_str(&d, err));
        free(b.sent);
        return;
    }
    free(t->gateways);
    t->gateways = b.sent;
    t->ngateways = b.nsent;
    if (b.err == FERRY_OK)
        t->published = r->revision;
}

/* What r, its product's latest rollout, offers now, recorded for the next
 * timestamp. A failure is logged; the next change or restart writes it. */
static void record_offered(struct cloud_rollout_ctl *c, const struct cloud_rollout *r)
{
    struct ferry_diag d = {{0}};
    struct ferry_offered o;
    bool changed = false;
    enum ferry_err err =
        cloud_offered_of(r->product, (uint64_t)r->id, r->state, r->envelope, r->envelope_len,
                         r->revert_envelope, r->revert_len, &o, &d);
    if (err == FERRY_OK)
        err = cloud_offered_record(c->io.store_dir, &o, &changed, &d);
    if (err != FERRY_OK)
        ferry_log_err("rollout %" PRId64 ": what it offers is not recorded for the timestamp: %s",
                      r->id, ferry_diag_str(&d, err));
    else if (changed)
        ferry_log_info("rollout %" PRId64
                       ": %s, product %s offers %s (recorded for the next timestamp)",
                       r->id, o.state, r->product, o.n ? o.r[0].release : "nothing");
}

/* The completed rollout's envelope, recorded as the line's current release
 * (first: the next timestamp must name it) and retained on the product's
 * release topic. */
static void promote(struct cloud_rollout_ctl *c, const struct cloud_rollout *r)
{
    char topic[FERRY_TOPIC_MAX];
    struct ferry_diag d = {{0}};
    if (c->io.store_dir) {
        enum ferry_err rec =
            cloud_release_record(c->io.store_dir, r->product, r->envelope, r->envelope_len, &d);
        if (rec != FERRY_OK)
            ferry_log_err("rollout %" PRId64 ": release %s not recorded as the line's current: %s",
                          r->id, r->release, ferry_diag_str(&d, rec));
    }
    enum ferry_err err =
        ferry_topic(topic, sizeof(topic), FERRY_TOPIC_RELEASE, c->fleet, r->product, NULL);
    if (err == FERRY_OK)
        err = c->io.publish(c->io.arg, topic, r->envelope, r->envelope_len, true);
    if (err != FERRY_OK) {
        ferry_log_err("rollout %" PRId64 ": release %s not published as the product's release: %s",
                      r->id, r->release, ferry_strerror(err));
        return;
    }
    ferry_log_info("rollout %" PRId64 ": release %s is now product %s's release", r->id, r->release,
                   r->product);
}

/* ---- the tick -------------------------------------------------------------------------------- */

struct work {
    int64_t id;
    bool publish, promote;
    char product[FERRY_ID_MAX + 1];
};

/* Every product's latest rollout, whatever its state: what a restarted
 * instance publishes again, since the broker may have lost it. */
static enum ferry_err latest_per_product(struct cloud_rollout_ctl *c, struct work **w, size_t *n,
                                         struct ferry_diag *d)
{
    int64_t *ids = NULL;
    size_t nids = 0;
    enum ferry_err err = cloud_rollout_ids(c->inv, INT64_MIN, &ids, &nids, d);
    char(*products)[FERRY_ID_MAX + 1] = NULL;
    size_t np = 0;
    if (err == FERRY_OK && nids && !(products = calloc(nids, sizeof(*products))))
        err = ferry_fail(d, FERRY_E_NOMEM, "rollouts: out of memory");
    /* Newest first: the first of each product is its latest. */
    for (size_t i = nids; err == FERRY_OK && i-- > 0;) {
        struct cloud_rollout r;
        err = cloud_rollout_load(c->inv, ids[i], &r, d);
        if (err != FERRY_OK)
            break;
        bool seen = false;
        for (size_t k = 0; k < np && !seen; k++)
            seen = strcmp(products[k], r.product) == 0;
        if (!seen) {
            snprintf(products[np++], FERRY_ID_MAX + 1, "%s", r.product);
            bool dup = false;
            for (size_t k = 0; k < *n && !dup; k++)
                dup = (*w)[k].id == ids[i];
            if (!dup) {
                struct work *g = realloc(*w, (*n + 1) * sizeof(**w));
                if (!g)
                    err = ferry_fail(d, FERRY_E_NOMEM, "rollouts: out of memory");
                else {
                    *w = g;
                    (*w)[*n] = (struct work){ids[i], true, false, {0}};
                    snprintf((*w)[(*n)++].product, FERRY_ID_MAX + 1, "%s", r.product);
                }
            }
        }
        cloud_rollout_clear(&r);
    }
    free(products);
    free(ids);
    return err;
}

/* Whether work[i] (loaded as r) is the newest rollout of its product in
 * work: only the latest rollout of a product is what gateways enforce
 * (one is active at a time, and ids grow), so only its offer is recorded. */
static bool latest_in(const struct work *work, size_t nwork, size_t i,
                      const struct cloud_rollout *r)
{
    for (size_t k = 0; k < nwork; k++) {
        if (work[k].id > work[i].id && strcmp(work[k].product, r->product) == 0)
            return false;
    }
    return true;
}

void cloud_rollout_ctl_tick(struct cloud_rollout_ctl *c, int64_t now)
{
    struct ferry_diag d = {{0}};
    memset(&c->stats, 0, sizeof(c->stats));
    uint64_t t0 = ferry_now_ms();
    bool republish = c->republish;
    int64_t *ids = NULL;
    size_t nids = 0, nwork = 0;
    struct work *work = NULL;
    enum ferry_err err = cloud_rollouts_begin(c->inv, &d);
    if (err == FERRY_OK)
        err = take_queues(c, now, &d);
    if (err == FERRY_OK)
        err = cloud_rollout_ids(c->inv, now - FINAL_PUBLISH_S, &ids, &nids, &d);
    if (err == FERRY_OK && nids && !(work = calloc(nids, sizeof(*work))))
        err = ferry_fail(&d, FERRY_E_NOMEM, "rollouts: out of memory");
    for (size_t i = 0; err == FERRY_OK && i < nids; i++) {
        work[nwork].id = ids[i];
        err = decide_one(c, ids[i], now, &work[nwork].publish, &work[nwork].promote,
                         work[nwork].product, &d);
        nwork++;
    }
    if (err == FERRY_OK && republish)
        err = latest_per_product(c, &work, &nwork, &d);
    if (err == FERRY_OK)
        err = cloud_rollouts_commit(c->inv, &d);
    if (err != FERRY_OK) {
        cloud_rollouts_rollback(c->inv);
        /* Descriptions stay queued; the watermarks stay: all is read again. */
        ferry_log_err("rollouts: tick failed, retrying at the next: %s", ferry_diag_str(&d, err));
        free(ids);
        free(work);
        return;
    }
    c->stats.committed = true;
    c->ninfos = 0;
    c->nreports = 0;
    c->republish = false;
    for (size_t i = 0; i < nids; i++) {
        struct tracked *t = track(c, ids[i]);
        if (t && !t->backlog)
            t->since = now - WATERMARK_SLACK;
    }
    c->stats.decide_us = (ferry_now_ms() - t0) * 1000;
    uint64_t t1 = ferry_now_ms();
    for (size_t i = 0; i < nwork; i++) {
        struct tracked *t = track(c, work[i].id);
        struct cloud_rollout r;
        if (!t || (!work[i].publish && !republish && !work[i].promote))
            continue;
        if (cloud_rollout_load(c->inv, work[i].id, &r, &d) != FERRY_OK) {
            ferry_log_err("rollouts: %s", d.msg);
            continue;
        }
        if (republish || r.revision != t->published)
            publish_docs(c, &r, t);
        if (work[i].promote)
            promote(c, &r);
        if (c->io.store_dir && latest_in(work, nwork, i, &r))
            record_offered(c, &r);
        cloud_rollout_clear(&r);
    }
    c->stats.publish_us = (ferry_now_ms() - t1) * 1000;
    if (c->stats.steps || c->stats.docs || c->stats.targeted)
        ferry_log_debug("rollouts: %zu active, %zu targeted, %" PRIu64 " states, %zu steps, %zu "
                        "documents (%" PRIu64 " ms deciding, %" PRIu64 " ms publishing)",
                        c->stats.rollouts, c->stats.targeted, c->stats.refreshed, c->stats.steps,
                        c->stats.docs, c->stats.decide_us / 1000, c->stats.publish_us / 1000);
    free(ids);
    free(work);
}
