#include "cloud_rollout_cli.h"

#include "cloud_inventory_rollout.h"
#include "cloud_rollout_calc.h"
#include "cloud_rollout_ops.h"
#include "cloud_store.h"
#include "cloud_subcmd.h"
#include "ferry_envelope.h"
#include "ferry_fs.h"
#include "ferry_manifest.h"
#include "ferry_rollout.h"

#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_MAX_ENTRIES 1000 /* shown by `show` (the newest) */

/* ---- small helpers --------------------------------------------------------------------- */

static void utc_text(int64_t t, char *out, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t <= 0 || !gmtime_r(&tt, &tm) || !strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, cap, "-");
}

static void duration_text(int64_t s, char *out, size_t cap)
{
    if (s % 86400 == 0 && s)
        snprintf(out, cap, "%" PRId64 "d", s / 86400);
    else if (s % 3600 == 0 && s)
        snprintf(out, cap, "%" PRId64 "h", s / 3600);
    else if (s % 60 == 0 && s)
        snprintf(out, cap, "%" PRId64 "m", s / 60);
    else
        snprintf(out, cap, "%" PRId64 "s", s);
}

/* "operator:<name>": --by, else who runs the command. */
static void actor_of(const char *by, char out[CLOUD_ACTOR_MAX + 1])
{
    const char *name = by;
    if (!name || !name[0])
        name = getenv("SUDO_USER");
    if (!name || !name[0])
        name = getenv("USER");
    if (!name || !name[0])
        name = getenv("LOGNAME");
    char uid[32];
    if (!name || !name[0]) {
        struct passwd *pw = getpwuid(getuid());
        snprintf(uid, sizeof(uid), "uid-%u", (unsigned)getuid());
        name = pw && pw->pw_name ? pw->pw_name : uid;
    }
    snprintf(out, CLOUD_ACTOR_MAX + 1, "operator:%.64s", name);
}

static int usage(const struct cloud_subcmd *c, const char *msg)
{
    struct ferry_diag d = {{0}};
    return cloud_subcmd_report(c, &d, ferry_fail(&d, FERRY_E_INVALID_ARG, "%s", msg),
                               CLOUD_EXIT_USAGE);
}

static int bad_id(const struct cloud_subcmd *c, const char *arg)
{
    char msg[128];
    snprintf(msg, sizeof(msg), "'%.60s' is not a rollout id", arg);
    return usage(c, msg);
}

/* Takes "ID" off the front of argv (after the action's name), so the
 * options parser sees only flags. *id 0 when absent. */
static int take_id(int *argc, char ***argv, int64_t *id)
{
    *id = 0;
    if (*argc < 2 || (*argv)[1][0] == '-')
        return 0;
    uint64_t v = 0;
    if (ferry_parse_u64((*argv)[1], &v) != FERRY_OK || v == 0 || v > (UINT64_C(1) << 53))
        return -1;
    *id = (int64_t)v;
    (*argv)[1] = (*argv)[0];
    (*argc)--;
    (*argv)++;
    return 0;
}

static enum ferry_err open_inventory(const char *db, bool create, struct cloud_inventory **inv,
                                     struct ferry_diag *d)
{
    enum ferry_err err = cloud_inventory_open(db, create, inv, d);
    if (err == FERRY_E_NOT_FOUND && !create)
        return ferry_fail(d, err, "no inventory at %s ('ferry-cloud serve --db' makes it)", db);
    return err;
}

/* ---- create ---------------------------------------------------------------------------------- */

struct create_cfg {
    char *db, *store, *release, *waves;
    uint64_t success, min_final, halt, rate;
    int64_t soak;
    struct ferry_strlist select, window;
    char *revert_manifest, *start_at, *by, *reason;
    bool json;
    enum ferry_log_level log_level;
};

static const struct ferry_opt create_opts[] = {
    CLOUD_OPT(create_cfg, "db", FERRY_OPT_STR, db, "DB",
              "fleet inventory (the one 'ferry-cloud serve --db' uses)", FERRY_OPT_REQUIRED),
    CLOUD_OPT(create_cfg, "store", FERRY_OPT_STR, store, "DIR",
              "artifact store holding the release ('ferry-cloud publish --store')",
              FERRY_OPT_REQUIRED),
    CLOUD_OPT(create_cfg, "release", FERRY_OPT_STR, release, "ID",
              "the release to roll out, as 'publish' printed it", FERRY_OPT_REQUIRED),
    CLOUD_OPT(create_cfg, "waves", FERRY_OPT_STR, waves, "LIST",
              "cumulative percentages, named groups first: 1,10,50,100 or ring=canary,10,100",
              FERRY_OPT_REQUIRED),
    CLOUD_OPT(create_cfg, "success", FERRY_OPT_U64, success, "PCT",
              "gate: share of a wave's final states that must be success (default 95)", 0),
    CLOUD_OPT(create_cfg, "min-final", FERRY_OPT_U64, min_final, "N",
              "gate and halt: final states needed before judging (default 5)", 0),
    CLOUD_OPT(create_cfg, "soak", FERRY_OPT_DURATION, soak, "DURATION",
              "gate: wait this long after a wave's last success (default 0s)", 0),
    CLOUD_OPT(create_cfg, "halt", FERRY_OPT_U64, halt, "PCT",
              "halt above this share failed or rolled back (default 10; 100: never)", 0),
    CLOUD_OPT(create_cfg, "rate", FERRY_OPT_U64, rate, "N",
              "at most N nodes per gateway start a download per minute (default 0: no cap)", 0),
    CLOUD_OPT(create_cfg, "select", FERRY_OPT_STRLIST, select, "KEY=VALUE",
              "only nodes matching (gateway, hw-model, hw-revision, version, node or a tag); "
              "repeat: keys AND, same key OR",
              0),
    CLOUD_OPT(create_cfg, "window", FERRY_OPT_STRLIST, window, "SPEC",
              "when installs may happen, e.g. 'Mon-Fri 01:00-04:00 Europe/Berlin' or "
              "'site=depot-7: Sat 00:00-06:00 UTC'; repeat (a node takes the first it matches)",
              0),
    CLOUD_OPT(create_cfg, "revert-manifest", FERRY_OPT_STR, revert_manifest, "FILE",
              "signed envelope of the old image with a higher seq, offered to nodes that "
              "installed the release if the rollout halts",
              0),
    CLOUD_OPT(create_cfg, "start-at", FERRY_OPT_STR, start_at, "TIME",
              "start later: unix seconds, +DURATION or YYYY-MM-DDTHH:MM[:SS]Z (default now)", 0),
    CLOUD_OPT(create_cfg, "reason", FERRY_OPT_STR, reason, "TEXT", "kept in the decision log", 0),
    CLOUD_OPT(create_cfg, "by", FERRY_OPT_STR, by, "NAME",
              "who does it, for the decision log (default $SUDO_USER or $USER)", 0),
    CLOUD_OPT(create_cfg, "json", FERRY_OPT_BOOL, json, NULL, "print the rollout as JSON", 0),
    CLOUD_OPT_LOG_LEVEL(create_cfg),
};

static const struct cloud_subcmd create_cmd = {
    "rollout create",
    "--db DB --store DIR --release ID --waves LIST [--success PCT] [--min-final N]\n"
    "                          [--soak T] [--halt PCT] [--rate N] [--select K=V ...]\n"
    "                          [--window SPEC ...] [--revert-manifest FILE] [--start-at T]",
    "Creates a progressive rollout of a release 'ferry-cloud publish --stage' put in\n"
    "the store. 'ferry-cloud serve' starts it (at --start-at), targets the product\n"
    "line's nodes that match --select as their gateways describe them, puts each in\n"
    "a wave (named groups first, then by a hash of rollout and node id), opens the\n"
    "next wave when the last one passes its gate, and halts when more than --halt %\n"
    "of the final states failed or rolled back. Gateways enforce it on their own\n"
    "nodes, with the windows and the rate cap, also without their uplink.",
    create_opts, sizeof(create_opts) / sizeof(create_opts[0])};

static enum ferry_err parse_start(const char *s, int64_t now, int64_t *out, struct ferry_diag *d)
{
    uint64_t v = 0;
    int64_t dur = 0;
    if (!s) {
        *out = now;
        return FERRY_OK;
    }
    if (s[0] == '+' && ferry_parse_duration(s + 1, &dur) == FERRY_OK) {
        *out = now + dur;
        return FERRY_OK;
    }
    if (ferry_parse_u64(s, &v) == FERRY_OK && v < (UINT64_C(1) << 40)) {
        *out = (int64_t)v;
        return FERRY_OK;
    }
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(s, "%Y-%m-%dT%H:%M", &tm);
    if (end && *end == ':')
        end = strptime(end, ":%S", &tm);
    if (end && strcmp(end, "Z") == 0) {
        *out = (int64_t)timegm(&tm);
        return FERRY_OK;
    }
    return ferry_fail(d, FERRY_E_INVALID_ARG,
                      "--start-at '%.40s': expected unix seconds, +DURATION or "
                      "YYYY-MM-DDTHH:MM[:SS]Z",
                      s);
}

/* "site=depot-7,ring=a: Mon-Fri 01:00-04:00 Europe/Berlin" */
static enum ferry_err parse_window(const char *text, struct ferry_rollout_window *w,
                                   struct ferry_diag *d)
{
    memset(w, 0, sizeof(*w));
    const char *colon = strchr(text, ':');
    const char *space = strpbrk(text, " \t");
    const char *spec = text;
    if (colon && space && colon + 1 == space && memchr(text, '=', (size_t)(colon - text))) {
        char sel[FERRY_SEL_TEXT_MAX];
        snprintf(sel, sizeof(sel), "%.*s", (int)(colon - text), text);
        for (char *p = sel; *p;) {
            size_t n = strcspn(p, ",");
            char term[FERRY_SEL_KEY_MAX + FERRY_SEL_VALUE_MAX + 2];
            snprintf(term, sizeof(term), "%.*s", (int)n, p);
            enum ferry_err err = ferry_sel_add(&w->sel, term, d);
            if (err != FERRY_OK)
                return err;
            p += n + (p[n] == ',');
        }
        spec = colon + 1;
    }
    return ferry_window_parse(spec, NULL, NULL, &w->w, d);
}

static enum ferry_err build_plan(const struct create_cfg *c, struct ferry_rollout_plan *p,
                                 struct ferry_diag *d)
{
    memset(p, 0, sizeof(*p));
    enum ferry_err err = ferry_waves_parse(c->waves, p, d);
    for (size_t i = 0; err == FERRY_OK && i < c->select.n; i++)
        err = ferry_sel_add(&p->select, c->select.v[i], d);
    if (err == FERRY_OK && c->window.n > FERRY_ROLLOUT_MAX_WINDOWS)
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "at most %d --window", FERRY_ROLLOUT_MAX_WINDOWS);
    for (size_t i = 0; err == FERRY_OK && i < c->window.n; i++) {
        err = parse_window(c->window.v[i], &p->windows[i], d);
        if (err != FERRY_OK)
            ferry_diag_prefix(d, "--window");
        p->nwindows++;
    }
    if (err != FERRY_OK)
        return err;
    if (c->success > 100 || c->halt > 100)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--success and --halt are percentages, 0..100");
    p->success_pct = (uint32_t)c->success;
    p->min_final = c->min_final > UINT32_MAX ? UINT32_MAX : (uint32_t)c->min_final;
    p->soak_s = c->soak;
    p->halt_pct = (uint32_t)c->halt;
    p->rate_per_min = c->rate > UINT32_MAX ? UINT32_MAX : (uint32_t)c->rate;
    return ferry_rollout_plan_check(p, d);
}

/* An envelope's manifest, read but not verified (the nodes verify), and
 * its artifact, which must be whole in the store. */
static enum ferry_err check_release(struct cloud_store *store, const uint8_t *env, size_t len,
                                    const char *what, int64_t now, struct ferry_manifest *m,
                                    struct ferry_diag *d)
{
    struct ferry_envelope *e = NULL;
    enum ferry_err err = ferry_envelope_parse(env, len, &e, d);
    if (err == FERRY_OK)
        err = ferry_manifest_parse(e->manifest, e->manifest_len, m, d);
    ferry_envelope_free(e);
    if (err != FERRY_OK) {
        ferry_diag_prefix(d, what);
        return err;
    }
    if (now >= m->expires_at)
        return ferry_fail(d, FERRY_E_EXPIRED, "%s: release %s expired at %" PRId64, what,
                          m->release_id, m->expires_at);
    uint64_t size = 0;
    err = cloud_store_size(store, m->sha256, &size, d);
    if (err == FERRY_E_NOT_FOUND)
        return ferry_fail(d, err,
                          "%s: the artifact of release %s is not in the store (publish it there "
                          "first)",
                          what, m->release_id);
    if (err == FERRY_OK && size != m->size)
        err = ferry_fail(d, FERRY_E_SIZE_MISMATCH,
                         "%s: the store holds %" PRIu64 " bytes of release %s's artifact, the "
                         "manifest says %" PRIu64,
                         what, size, m->release_id, m->size);
    return err;
}

static enum ferry_err load_releases(const struct create_cfg *c, int64_t now,
                                    struct cloud_rollout *r, struct ferry_diag *d)
{
    struct cloud_store *store = NULL;
    struct ferry_manifest m, rm;
    enum ferry_err err = cloud_store_open(c->store, &store, d);
    if (err == FERRY_OK)
        err = cloud_store_get_release(store, c->release, &r->envelope, &r->envelope_len, d);
    if (err == FERRY_OK)
        err = check_release(store, r->envelope, r->envelope_len, "--release", now, &m, d);
    if (err == FERRY_OK && c->revert_manifest)
        err = ferry_read_file(c->revert_manifest, FERRY_ENVELOPE_MAX_BYTES, &r->revert_envelope,
                              &r->revert_len, d);
    if (err == FERRY_OK && c->revert_manifest)
        err = check_release(store, r->revert_envelope, r->revert_len, c->revert_manifest, now, &rm,
                            d);
    cloud_store_free(store);
    if (err != FERRY_OK)
        return err;
    snprintf(r->product, sizeof(r->product), "%s", m.product);
    snprintf(r->release, sizeof(r->release), "%s", m.release_id);
    snprintf(r->version, sizeof(r->version), "%s", m.version);
    r->seq = m.seq;
    if (!c->revert_manifest)
        return FERRY_OK;
    if (strcmp(rm.product, m.product) != 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--revert-manifest is for product %s, the release for %s", rm.product,
                          m.product);
    if (rm.seq <= m.seq)
        return ferry_fail(d, FERRY_E_DOWNGRADE,
                          "--revert-manifest has seq %" PRIu64 ", it must be above the release's "
                          "%" PRIu64 " or nodes that installed it would refuse it",
                          rm.seq, m.seq);
    snprintf(r->revert_release, sizeof(r->revert_release), "%s", rm.release_id);
    r->revert_seq = rm.seq;
    return FERRY_OK;
}

static int print_view_of(struct cloud_inventory *inv, int64_t id, bool json, bool with_log,
                         const struct cloud_subcmd *cmd);

static int create_run(const struct create_cfg *c)
{
    struct ferry_diag d = {{0}};
    struct cloud_rollout r;
    struct cloud_inventory *inv = NULL;
    memset(&r, 0, sizeof(r));
    int64_t now = (int64_t)time(NULL), other = 0;
    char actor[CLOUD_ACTOR_MAX + 1];
    actor_of(c->by, actor);
    enum ferry_err err = build_plan(c, &r.plan, &d);
    if (err == FERRY_OK)
        err = parse_start(c->start_at, now, &r.start_at, &d);
    if (err != FERRY_OK) {
        cloud_rollout_clear(&r);
        return cloud_subcmd_report(&create_cmd, &d, err, CLOUD_EXIT_USAGE);
    }
    err = load_releases(c, now, &r, &d);
    if (err == FERRY_OK)
        err = open_inventory(c->db, true, &inv, &d);
    if (err == FERRY_OK)
        err = cloud_rollouts_begin(inv, &d);
    if (err == FERRY_OK) {
        enum ferry_err e = cloud_rollout_active_for(inv, r.product, &other, &d);
        if (e == FERRY_OK)
            err = ferry_fail(&d, FERRY_E_BUSY,
                             "rollout %" PRId64 " of product %s is not over: cancel it first "
                             "('ferry-cloud rollout cancel %" PRId64 "')",
                             other, r.product, other);
        else if (e != FERRY_E_NOT_FOUND)
            err = e;
        if (err == FERRY_OK) {
            r.state = FERRY_ROLLOUT_SCHEDULED;
            r.created_at = r.state_at = now;
            r.start_at = r.start_at < now ? now : r.start_at;
            r.revision = 1;
            snprintf(r.created_by, sizeof(r.created_by), "%s", actor);
            snprintf(r.reason, sizeof(r.reason), "%s", c->reason ? c->reason : "");
            err = cloud_rollout_insert(inv, &r, actor, &d);
        }
        if (err == FERRY_OK)
            err = cloud_rollouts_commit(inv, &d);
        else
            cloud_rollouts_rollback(inv);
    }
    int status = 0;
    if (err != FERRY_OK) {
        status = cloud_subcmd_report(&create_cmd, &d, err, CLOUD_EXIT_FAILED);
    } else if (c->json) {
        status = print_view_of(inv, r.id, true, true, &create_cmd);
    } else {
        char waves[256], start[32];
        ferry_waves_format(&r.plan, waves, sizeof(waves));
        utc_text(r.start_at, start, sizeof(start));
        printf("rollout %" PRId64 ": release %s to product %s in waves %s, from %s\n", r.id,
               r.release, r.product, waves, start);
        fprintf(stderr,
                "ferry-cloud rollout create: 'ferry-cloud serve' starts it and tells the "
                "gateways; follow it with 'ferry-cloud rollout show %" PRId64 "'\n",
                r.id);
    }
    cloud_inventory_close(inv);
    cloud_rollout_clear(&r);
    return status;
}

/* ---- show and list -----------------------------------------------------------------------------
 */

struct log_buf {
    struct ferry_rollout_view_log *v;
    size_t n, cap;
};

static enum ferry_err on_log(void *arg, const struct cloud_rollout_log_entry *e)
{
    struct log_buf *b = arg;
    if (b->n == b->cap) {
        if (b->cap >= LOG_MAX_ENTRIES) { /* keep the newest */
            memmove(b->v, b->v + 1, (b->n - 1) * sizeof(*b->v));
            b->n--;
        } else {
            size_t cap = b->cap ? b->cap * 2 : 32;
            struct ferry_rollout_view_log *g = realloc(b->v, cap * sizeof(*g));
            if (!g)
                return FERRY_E_NOMEM;
            b->v = g;
            b->cap = cap;
        }
    }
    struct ferry_rollout_view_log *l = &b->v[b->n++];
    l->at = e->at;
    snprintf(l->actor, sizeof(l->actor), "%s", e->actor);
    snprintf(l->action, sizeof(l->action), "%s", e->action);
    snprintf(l->reason, sizeof(l->reason), "%s", e->reason);
    return FERRY_OK;
}

/* The view of rollout r as the controller would judge it now. */
static enum ferry_err make_view(struct cloud_inventory *inv, const struct cloud_rollout *r,
                                struct ferry_rollout_view *v, struct ferry_diag *d)
{
    return cloud_rollout_view_make(inv, r, (int64_t)time(NULL), v, d);
}

static void print_rules(const struct cloud_rollout *r)
{
    const struct ferry_rollout_plan *p = &r->plan;
    char waves[256], soak[32], sel[FERRY_SEL_TEXT_MAX];
    ferry_waves_format(p, waves, sizeof(waves));
    duration_text(p->soak_s, soak, sizeof(soak));
    ferry_sel_format(&p->select, sel);
    printf("targets    %s\n", sel[0] ? sel : "every node of the product line");
    printf("waves      %s\n", waves);
    printf("gate       >= %u%% success of >= %u final states, soak %s\n", p->success_pct,
           p->min_final, soak);
    if (p->halt_pct >= 100)
        printf("halt       never\n");
    else
        printf("halt       above %u%% failed or rolled back of >= %u final states\n", p->halt_pct,
               p->min_final);
    if (p->rate_per_min)
        printf("rate       %u starts per gateway per minute\n", p->rate_per_min);
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < p->nwindows; i++) {
        char text[FERRY_WINDOW_TEXT_MAX], wsel[FERRY_SEL_TEXT_MAX], next[32];
        ferry_window_format(&p->windows[i].w, text);
        ferry_sel_format(&p->windows[i].sel, wsel);
        bool open = ferry_window_open(&p->windows[i].w, now);
        utc_text(ferry_window_next_change(&p->windows[i].w, now), next, sizeof(next));
        printf("window     %s%s%s (%s, %s at %s)\n", wsel, wsel[0] ? ": " : "", text,
               open ? "open" : "closed", open ? "closes" : "opens", next);
    }
}

static void print_view(const struct cloud_rollout *r, const struct ferry_rollout_view *v)
{
    char when[32], created[32], start[32];
    utc_text(r->state_at, when, sizeof(when));
    utc_text(r->created_at, created, sizeof(created));
    utc_text(r->start_at, start, sizeof(start));
    printf("rollout    %" PRId64 "  %s since %s\n", r->id, ferry_rollout_state_name(r->state),
           when);
    printf("release    %s (version %s, seq %" PRIu64 ") for product %s\n", r->release, r->version,
           r->seq, r->product);
    if (r->revert_release[0])
        printf("revert     %s (seq %" PRIu64 ")\n", r->revert_release, r->revert_seq);
    else
        printf("revert     none\n");
    printf("created    %s by %s, start %s\n", created, r->created_by, start);
    print_rules(r);
    printf("\n%-4s %-12s %-8s %7s %6s %6s %7s %6s %11s %8s  %s\n", "WAVE", "SHARE", "STATE",
           "TARGETS", "SILENT", "ACTIVE", "SUCCESS", "FAILED", "ROLLED-BACK", "REJECTED", "OPENED");
    for (size_t i = 0; i < r->plan.nwaves; i++) {
        const struct ferry_rollout_view_wave *w = &v->waves[i];
        char spec[80], opened[32];
        if (r->plan.waves[i].group)
            snprintf(spec, sizeof(spec), "%s=%s", r->plan.waves[i].sel.key,
                     r->plan.waves[i].sel.value);
        else {
            ferry_share_format(r->plan.waves[i].share_bp, spec);
            strcat(spec, "%");
        }
        utc_text(w->opened_at, opened, sizeof(opened));
        struct cloud_wave_tally t = {.targets = w->targets};
        memcpy(t.by_state, w->by_state, sizeof(t.by_state));
        uint64_t silent = cloud_tally_silent(&t), finals = cloud_tally_final(&t);
        printf("%-4zu %-12s %-8s %7" PRIu64 " %6" PRIu64 " %6" PRIu64 " %7" PRIu64 " %6" PRIu64
               " %11" PRIu64 " %8" PRIu64 "  %s\n",
               i + 1, spec, w->open ? "open" : "waiting", w->targets, silent,
               w->targets - silent - finals, w->by_state[FERRY_STATE_SUCCESS],
               w->by_state[FERRY_STATE_FAILED], w->by_state[FERRY_STATE_ROLLED_BACK],
               w->by_state[FERRY_STATE_REJECTED], opened);
    }
    char since[32];
    utc_text(r->retry_at, since, sizeof(since));
    printf("\nhalt       %" PRIu64 " of %" PRIu64 " final states failed or rolled back%s%s\n",
           v->halt_failed, v->halt_finals, r->retry_at ? " since the retry at " : "",
           r->retry_at ? since : "");
    printf("now        %s\n", v->waiting);
    if (!v->log)
        return;
    printf("\n%-20s  %-22s %-15s %s\n", "LOG", "BY", "ACTION", "WHY");
    for (size_t i = 0; i < v->nlog; i++) {
        char at[32];
        utc_text(v->log[i].at, at, sizeof(at));
        printf("%-20s  %-22s %-15s %s\n", at, v->log[i].actor, v->log[i].action, v->log[i].reason);
    }
}

static int print_view_of(struct cloud_inventory *inv, int64_t id, bool json, bool with_log,
                         const struct cloud_subcmd *cmd)
{
    struct ferry_diag d = {{0}};
    struct cloud_rollout r;
    struct ferry_rollout_view v;
    struct log_buf log = {0};
    enum ferry_err err = cloud_rollout_load(inv, id, &r, &d);
    if (err != FERRY_OK)
        return cloud_subcmd_report(cmd, &d, err, CLOUD_EXIT_FAILED);
    err = make_view(inv, &r, &v, &d);
    if (err == FERRY_OK && with_log)
        err = cloud_rollout_each_log(inv, id, on_log, &log, &d);
    static const struct ferry_rollout_view_log no_log[1];
    if (err == FERRY_OK && with_log) {
        v.log = log.v ? log.v : no_log;
        v.nlog = log.n;
    }
    if (err == FERRY_OK && json) {
        char *text = NULL;
        size_t len = 0;
        err = ferry_rollout_view_to_json(&v, &text, &len, &d);
        if (err == FERRY_OK)
            printf("%s\n", text);
        free(text);
    } else if (err == FERRY_OK) {
        print_view(&r, &v);
    }
    free(log.v);
    cloud_rollout_clear(&r);
    if (err == FERRY_OK && fflush(stdout) != 0)
        err = ferry_fail(&d, FERRY_E_IO, "writing to stdout failed");
    return err == FERRY_OK ? 0 : cloud_subcmd_report(cmd, &d, err, CLOUD_EXIT_FAILED);
}

struct show_cfg {
    char *db;
    bool json;
    enum ferry_log_level log_level;
};

static const struct ferry_opt show_opts[] = {
    CLOUD_OPT(show_cfg, "db", FERRY_OPT_STR, db, "DB", "fleet inventory", FERRY_OPT_REQUIRED),
    CLOUD_OPT(show_cfg, "json", FERRY_OPT_BOOL, json, NULL, "print JSON", 0),
    CLOUD_OPT_LOG_LEVEL(show_cfg),
};

static const struct cloud_subcmd show_cmd = {
    "rollout show", "ID --db DB [--json]",
    "Prints a rollout: its release, rules and windows, each wave with its targets\n"
    "and their states, the halt figures, why it waits, and its decision log.",
    show_opts, sizeof(show_opts) / sizeof(show_opts[0])};

static const struct cloud_subcmd list_cmd = {
    "rollout list", "--db DB [--json]",
    "Lists every rollout with its state, waves open and counts.", show_opts,
    sizeof(show_opts) / sizeof(show_opts[0])};

static int list_run(const struct show_cfg *c)
{
    struct ferry_diag d = {{0}};
    struct cloud_inventory *inv = NULL;
    int64_t *ids = NULL;
    size_t n = 0;
    enum ferry_err err = open_inventory(c->db, false, &inv, &d);
    if (err == FERRY_OK)
        err = cloud_rollout_ids(inv, INT64_MIN, &ids, &n, &d);
    if (err == FERRY_OK && c->json)
        printf("[");
    else if (err == FERRY_OK)
        printf("%-5s %-10s %-16s %-28s %-6s %7s %7s %6s  %s\n", "ID", "STATE", "PRODUCT", "RELEASE",
               "WAVES", "TARGETS", "SUCCESS", "FAILED", "CREATED");
    for (size_t i = 0; err == FERRY_OK && i < n; i++) {
        struct cloud_rollout r;
        struct ferry_rollout_view v;
        err = cloud_rollout_load(inv, ids[i], &r, &d);
        if (err != FERRY_OK)
            break;
        err = make_view(inv, &r, &v, &d);
        if (err == FERRY_OK && c->json) {
            char *text = NULL;
            size_t len = 0;
            err = ferry_rollout_view_to_json(&v, &text, &len, &d);
            if (err == FERRY_OK)
                printf("%s\n%s", i ? "," : "", text);
            free(text);
        } else if (err == FERRY_OK) {
            uint64_t targets = 0, ok = 0, bad = 0;
            for (size_t k = 0; k < r.plan.nwaves; k++) {
                targets += v.waves[k].targets;
                ok += v.waves[k].by_state[FERRY_STATE_SUCCESS];
                bad += v.waves[k].by_state[FERRY_STATE_FAILED] +
                       v.waves[k].by_state[FERRY_STATE_ROLLED_BACK];
            }
            char created[32], waves[16];
            utc_text(r.created_at, created, sizeof(created));
            snprintf(waves, sizeof(waves), "%u/%zu", r.open_waves, r.plan.nwaves);
            printf("%-5" PRId64 " %-10s %-16s %-28s %-6s %7" PRIu64 " %7" PRIu64 " %6" PRIu64
                   "  %s\n",
                   r.id, ferry_rollout_state_name(r.state), r.product, r.release, waves, targets,
                   ok, bad, created);
        }
        cloud_rollout_clear(&r);
    }
    if (err == FERRY_OK && c->json)
        printf("%s]\n", n ? "\n" : "");
    free(ids);
    cloud_inventory_close(inv);
    if (err == FERRY_OK && fflush(stdout) != 0)
        err = ferry_fail(&d, FERRY_E_IO, "writing to stdout failed");
    return err == FERRY_OK ? 0 : cloud_subcmd_report(&list_cmd, &d, err, CLOUD_EXIT_FAILED);
}

/* ---- the operator's actions
 * ---------------------------------------------------------------------- */

struct act_cfg {
    char *db, *reason, *by;
    enum ferry_log_level log_level;
};

static const struct ferry_opt act_opts[] = {
    CLOUD_OPT(act_cfg, "db", FERRY_OPT_STR, db, "DB", "fleet inventory", FERRY_OPT_REQUIRED),
    CLOUD_OPT(act_cfg, "reason", FERRY_OPT_STR, reason, "TEXT", "kept in the decision log", 0),
    CLOUD_OPT(act_cfg, "by", FERRY_OPT_STR, by, "NAME",
              "who does it, for the decision log (default $SUDO_USER or $USER)", 0),
    CLOUD_OPT_LOG_LEVEL(act_cfg),
};

#define ACT_CMD(name, about)                                                                       \
    {                                                                                              \
        "rollout " name, "ID --db DB [--reason TEXT] [--by NAME]", about, act_opts,                \
            sizeof(act_opts) / sizeof(act_opts[0])                                                 \
    }

/* The rules per state are cloud_rollout_ops.h's. */
static const struct cloud_subcmd act_cmds[] = {
    [CLOUD_ACT_PAUSE] =
        ACT_CMD("pause", "Stops new nodes from starting; nodes already under way\n"
                         "finish. The gates wait. Gateways hear of it within seconds."),
    [CLOUD_ACT_RESUME] = ACT_CMD("resume", "Resumes a paused rollout."),
    [CLOUD_ACT_NEXT] = ACT_CMD("next", "Opens the next wave now, whatever its gate says (logged)."),
    [CLOUD_ACT_CANCEL] =
        ACT_CMD("cancel", "Ends the rollout for good: no node starts any more, downloads\n"
                          "stop at their next block, nodes waiting to install keep waiting."),
    [CLOUD_ACT_RETRY] =
        ACT_CMD("retry", "Goes on with a halted rollout: final states reported so far no\n"
                         "longer count toward the halt rule, and downloads stopped by the\n"
                         "halt resume where they were."),
};

static int act_run(enum cloud_rollout_action a, int64_t id, const struct act_cfg *c)
{
    const struct cloud_subcmd *cmd = &act_cmds[a];
    struct ferry_diag d = {{0}};
    struct cloud_inventory *inv = NULL;
    char actor[CLOUD_ACTOR_MAX + 1], what[CLOUD_ACT_WHAT_MAX] = "";
    actor_of(c->by, actor);
    enum ferry_err err = open_inventory(c->db, false, &inv, &d);
    if (err == FERRY_OK)
        err = cloud_rollout_act(inv, id, a, actor, c->reason, (int64_t)time(NULL), what, &d);
    cloud_inventory_close(inv);
    if (err != FERRY_OK)
        return cloud_subcmd_report(cmd, &d, err, CLOUD_EXIT_FAILED);
    printf("rollout %" PRId64 ": %s\n", id, what);
    return 0;
}

/* ---- dispatch
 * -------------------------------------------------------------------------------------- */

static int run_create(int argc, char **argv)
{
    struct create_cfg cfg = {
        .success = 95, .min_final = 5, .halt = 10, .log_level = FERRY_LOG_WARN};
    int status = cloud_subcmd_parse(&create_cmd, &cfg, &cfg.log_level, argc, argv);
    if (status < 0)
        status = create_run(&cfg);
    ferry_opts_free(create_opts, create_cmd.nopts, &cfg);
    return status;
}

static int run_show(int argc, char **argv, bool list)
{
    const struct cloud_subcmd *cmd = list ? &list_cmd : &show_cmd;
    struct show_cfg cfg = {.log_level = FERRY_LOG_WARN};
    int64_t id = 0;
    if (!list && take_id(&argc, &argv, &id) != 0)
        return bad_id(cmd, argv[1]);
    int status = cloud_subcmd_parse(cmd, &cfg, &cfg.log_level, argc, argv);
    if (status < 0 && !list && id == 0)
        status = usage(cmd, "give the rollout's id ('ferry-cloud rollout list' shows them)");
    if (status < 0 && list) {
        status = list_run(&cfg);
    } else if (status < 0) {
        struct ferry_diag d = {{0}};
        struct cloud_inventory *inv = NULL;
        enum ferry_err err = open_inventory(cfg.db, false, &inv, &d);
        status = err == FERRY_OK ? print_view_of(inv, id, cfg.json, true, cmd)
                                 : cloud_subcmd_report(cmd, &d, err, CLOUD_EXIT_FAILED);
        cloud_inventory_close(inv);
    }
    ferry_opts_free(show_opts, cmd->nopts, &cfg);
    return status;
}

static int run_act(enum cloud_rollout_action a, int argc, char **argv)
{
    const struct cloud_subcmd *cmd = &act_cmds[a];
    struct act_cfg cfg = {.log_level = FERRY_LOG_WARN};
    int64_t id = 0;
    if (take_id(&argc, &argv, &id) != 0)
        return bad_id(cmd, argv[1]);
    int status = cloud_subcmd_parse(cmd, &cfg, &cfg.log_level, argc, argv);
    if (status < 0 && id == 0)
        status = usage(cmd, "give the rollout's id ('ferry-cloud rollout list' shows them)");
    if (status < 0)
        status = act_run(a, id, &cfg);
    ferry_opts_free(act_opts, cmd->nopts, &cfg);
    return status;
}

static void rollout_usage(FILE *out)
{
    fprintf(out, "Usage: ferry-cloud rollout ACTION [options]\n\n"
                 "Progressive rollouts: waves, success gates, automatic halt and revert,\n"
                 "maintenance windows and a rate cap, enforced by every gateway.\n\n"
                 "Actions:\n"
                 "  create   start a rollout of a staged release\n"
                 "  list     every rollout\n"
                 "  show ID  one rollout: waves, counts, gate and halt figures, decision log\n"
                 "  pause ID, resume ID, next ID, cancel ID, retry ID\n\n"
                 "'ferry-cloud rollout ACTION --help' describes each one's options.\n");
}

int cloud_cmd_rollout(int argc, char **argv)
{
    if (argc < 2) {
        rollout_usage(stderr);
        return CLOUD_EXIT_USAGE;
    }
    const char *a = argv[1];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "help") == 0) {
        rollout_usage(stdout);
        return 0;
    }
    argc--;
    argv++;
    if (strcmp(a, "create") == 0)
        return run_create(argc, argv);
    if (strcmp(a, "list") == 0)
        return run_show(argc, argv, true);
    if (strcmp(a, "show") == 0)
        return run_show(argc, argv, false);
    enum cloud_rollout_action act;
    if (cloud_rollout_action_parse(a, &act) == FERRY_OK)
        return run_act(act, argc, argv);
    fprintf(stderr, "ferry-cloud rollout: unknown action '%s' (see 'ferry-cloud rollout --help')\n",
            a);
    return CLOUD_EXIT_USAGE;
}

/* ---- fleet
 * ------------------------------------------------------------------------------------------ */

struct fleet_cfg {
    char *store, *fleet, *require_rollout;
    enum ferry_log_level log_level;
};

static const struct ferry_opt fleet_opts[] = {
    CLOUD_OPT(fleet_cfg, "store", FERRY_OPT_STR, store, "DIR",
              "artifact store (the one 'publish' and 'serve' use)", FERRY_OPT_REQUIRED),
    CLOUD_OPT(fleet_cfg, "fleet", FERRY_OPT_STR, fleet, "ID", "the fleet", FERRY_OPT_REQUIRED),
    CLOUD_OPT(fleet_cfg, "require-rollout", FERRY_OPT_STR, require_rollout, "yes|no",
              "yes: 'publish' only stages releases, a rollout offers them", 0),
    CLOUD_OPT_LOG_LEVEL(fleet_cfg),
};

static const struct cloud_subcmd fleet_cmd = {
    "fleet", "--store DIR --fleet ID [--require-rollout yes|no]",
    "Shows, or changes, the fleet's configuration kept in the store. With\n"
    "--require-rollout yes, 'ferry-cloud publish' no longer offers a release to\n"
    "every node at once: it stages it, and only 'ferry-cloud rollout create' offers it.",
    fleet_opts, sizeof(fleet_opts) / sizeof(fleet_opts[0])};

int cloud_cmd_fleet(int argc, char **argv)
{
    struct fleet_cfg cfg = {.log_level = FERRY_LOG_WARN};
    struct ferry_diag d = {{0}};
    struct cloud_store *store = NULL;
    struct ferry_fleet_config fc;
    int status = cloud_subcmd_parse(&fleet_cmd, &cfg, &cfg.log_level, argc, argv);
    if (status >= 0)
        goto out;
    const char *rr = cfg.require_rollout;
    if (rr && strcmp(rr, "yes") != 0 && strcmp(rr, "no") != 0) {
        status = usage(&fleet_cmd, "--require-rollout takes yes or no");
        goto out;
    }
    enum ferry_err err = cloud_store_open(cfg.store, &store, &d);
    if (err == FERRY_OK)
        err = cloud_store_get_fleet(store, cfg.fleet, &fc, &d);
    if (err == FERRY_OK && rr) {
        fc.require_rollout = strcmp(rr, "yes") == 0;
        err = cloud_store_put_fleet(store, cfg.fleet, &fc, &d);
    }
    if (err != FERRY_OK) {
        status = cloud_subcmd_report(&fleet_cmd, &d, err, CLOUD_EXIT_FAILED);
        goto out;
    }
    printf("fleet %s: require-rollout %s\n", cfg.fleet, fc.require_rollout ? "yes" : "no");
    status = 0;
out:
    cloud_store_free(store);
    ferry_opts_free(fleet_opts, fleet_cmd.nopts, &cfg);
    return status;
}
