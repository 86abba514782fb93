#include "cloud_status.h"

#include "cloud_inventory.h"
#include "cloud_inventory_rollout.h"
#include "cloud_rollout_calc.h"
#include "cloud_subcmd.h"
#include "ferry_batch.h"
#include "ferry_names.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define INTERVAL_DEFAULT_MS 1000
#define INTERVAL_MIN_MS     100
#define INTERVAL_MAX_MS     3600000
#define NOTE_MAX            8  /* nodes named in a verdict */
#define BAR_WIDTH           20 /* progress bar cells */

struct status_cfg {
    char *db;
    bool json;
    char *release;
    char *gateway;
    char *state;
    bool watch;
    char *interval;
    bool wait;
    bool refused;     /* list the records refused for good instead of the nodes */
    bool events;      /* list the event log instead */
    int64_t timeout;  /* seconds; -1 when not given */
    uint64_t expect;  /* 0 when not given */
    uint64_t rollout; /* 0 when not given */
    enum ferry_log_level log_level;
};

static const struct ferry_opt status_opts[] = {
    CLOUD_OPT(status_cfg, "db", FERRY_OPT_STR, db, "DB", "inventory written by 'ferry-cloud serve'",
              FERRY_OPT_REQUIRED),
    CLOUD_OPT(status_cfg, "json", FERRY_OPT_BOOL, json, NULL,
              "print a JSON array of objects instead of a table", 0),
    CLOUD_OPT(status_cfg, "release", FERRY_OPT_STR, release, "ID",
              "only nodes whose latest record names this release", 0),
    CLOUD_OPT(status_cfg, "gateway", FERRY_OPT_STR, gateway, "ID",
              "only nodes last heard through this gateway", 0),
    CLOUD_OPT(status_cfg, "state", FERRY_OPT_STR, state, "STATE",
              "only nodes in this state (idle, downloading, success, failed, ...)", 0),
    CLOUD_OPT(status_cfg, "watch", FERRY_OPT_BOOL, watch, NULL,
              "live view, read again every --interval (not with --json)", 0),
    CLOUD_OPT(status_cfg, "interval", FERRY_OPT_STR, interval, "TIME",
              "--watch/--wait period, e.g. 500ms or 2s (default 1s)", 0),
    CLOUD_OPT(status_cfg, "wait", FERRY_OPT_BOOL, wait, NULL,
              "return once every targeted node is in a final state", 0),
    CLOUD_OPT(status_cfg, "timeout", FERRY_OPT_DURATION, timeout, "DURATION",
              "--wait: give up after this long, e.g. 10m (default: never)", 0),
    CLOUD_OPT(status_cfg, "expect", FERRY_OPT_U64, expect, "N",
              "--wait: also wait until at least N nodes are targeted (default 1)", 0),
    CLOUD_OPT(status_cfg, "refused", FERRY_OPT_BOOL, refused, NULL,
              "list the records refused for good (conflict, wrong-gateway, seq-range), with "
              "--release, --gateway and --state applied to them",
              0),
    CLOUD_OPT(status_cfg, "events", FERRY_OPT_BOOL, events, NULL,
              "list the event log: nodes bound to a gateway, and moves", 0),
    CLOUD_OPT(status_cfg, "rollout", FERRY_OPT_U64, rollout, "ID",
              "the nodes a rollout targets; --wait then waits for the rollout to end", 0),
    CLOUD_OPT_LOG_LEVEL(status_cfg),
};

static const struct cloud_subcmd status_cmd = {
    "status",
    "--db DB [--json] [--release ID] [--gateway ID] [--state STATE] [--rollout ID]\n"
    "                          [--watch] [--interval TIME] [--wait [--timeout T] [--expect N]]\n"
    "                          [--refused | --events]",
    "Lists every node's latest reported state from the fleet inventory.\n"
    "\n"
    "--watch shows a live view: redrawn in place on a terminal, otherwise one line\n"
    "each time a node reports. It runs until Ctrl-C, or with --wait until settled.\n"
    "\n"
    "--wait polls until the rollout settles: every targeted node is in a final state\n"
    "(success, failed, rolled-back or rejected). The targeted nodes are those that\n"
    "match --release, --gateway and --state, judged by each node's latest record; a\n"
    "node that has not reported on --release yet is not targeted, so give --expect\n"
    "with the number of nodes the release is meant for. Without --watch the listing\n"
    "is printed once settled. A one-line verdict goes to stderr. A node whose\n"
    "records were refused (see --refused) since its latest one was stored does not\n"
    "count as succeeded: someone else may be speaking for it.\n"
    "\n"
    "--rollout ID lists the nodes a rollout targets; with --wait it returns when\n"
    "the rollout has ended: 0 when it completed and every target succeeded, 3 when\n"
    "it halted, was cancelled or completed with failures.\n"
    "\n"
    "Exit status: 0 done (with --wait: every targeted node succeeded); 1 the\n"
    "inventory could not be read; 2 bad usage; with --wait, 3 settled but some node\n"
    "did not succeed, 4 timed out, 128+N interrupted by signal N.",
    status_opts, sizeof(status_opts) / sizeof(status_opts[0])};

/* ---- per-pass bookkeeping ------------------------------------------------- */

struct note {
    char node[FERRY_ID_MAX + 1];
    enum ferry_state state;
    uint64_t refused; /* records of it refused since its latest one */
};

/* What one walk of the inventory saw. */
struct tally {
    size_t rows;
    size_t by_state[FERRY_STATE__COUNT];
    struct note pending[NOTE_MAX]; /* the first nodes not in a final state */
    size_t npending;
    struct note unhappy[NOTE_MAX]; /* the first final, unsuccessful ones */
    size_t nunhappy;
    size_t unhappy_total; /* final and not (clearly) successful */
};

static void note_add(struct note *notes, size_t *n, const struct ferry_inventory_row *row)
{
    if (*n >= NOTE_MAX)
        return;
    snprintf(notes[*n].node, sizeof(notes[*n].node), "%s", row->st.node);
    notes[*n].state = row->st.state;
    notes[*n].refused = row->refused;
    (*n)++;
}

/* A success is only a success when no record of the node was refused since:
 * a refused conflict or seq jump means someone else speaks for the node, and
 * the success on record may not be its own. */
static void tally_add(struct tally *t, const struct ferry_inventory_row *row)
{
    const struct ferry_status *st = &row->st;
    t->rows++;
    if ((unsigned)st->state < FERRY_STATE__COUNT)
        t->by_state[st->state]++;
    if (!ferry_state_is_final(st->state)) {
        note_add(t->pending, &t->npending, row);
    } else if (st->state != FERRY_STATE_SUCCESS || row->refused) {
        t->unhappy_total++;
        note_add(t->unhappy, &t->nunhappy, row);
    }
}

static size_t tally_final(const struct tally *t)
{
    size_t n = 0;
    for (int s = 0; s < FERRY_STATE__COUNT; s++)
        if (ferry_state_is_final((enum ferry_state)s))
            n += t->by_state[s];
    return n;
}

/* "6 nodes: 2 downloading, 1 deferred, 3 success" */
static void tally_format(const struct tally *t, char *buf, size_t cap)
{
    size_t used = (size_t)snprintf(buf, cap, "%zu node%s", t->rows, t->rows == 1 ? "" : "s");
    const char *sep = ": ";
    for (int s = 0; s < FERRY_STATE__COUNT && used < cap; s++) {
        if (!t->by_state[s])
            continue;
        used += (size_t)snprintf(buf + used, cap - used, "%s%zu %s", sep, t->by_state[s],
                                 ferry_state_name((enum ferry_state)s));
        sep = ", ";
    }
}

/* "node-a downloading, node-b deferred" (and "..." when more were seen) */
static void notes_format(const struct note *notes, size_t n, size_t total, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && used < cap; i++) {
        char refused[48] = "";
        if (notes[i].refused)
            snprintf(refused, sizeof(refused), " (%llu record%s refused since)",
                     (unsigned long long)notes[i].refused, notes[i].refused == 1 ? "" : "s");
        used += (size_t)snprintf(buf + used, cap - used, "%s%s %s%s", i ? ", " : "", notes[i].node,
                                 ferry_state_name(notes[i].state), refused);
    }
    if (total > n && used < cap)
        snprintf(buf + used, cap - used, ", ...");
}

/* The (node, seq) pairs of one pass, in the inventory's node order, so the
 * next pass finds what changed with one merge. */
struct seen {
    char node[FERRY_ID_MAX + 1];
    uint64_t seq;
};

struct seen_list {
    struct seen *v;
    size_t n, cap;
    size_t cursor; /* merge position while the next pass walks */
};

static enum ferry_err seen_push(struct seen_list *l, const struct ferry_status *st,
                                struct ferry_diag *d)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct seen *v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            return ferry_fail(d, FERRY_E_NOMEM, "no memory for %zu nodes", cap);
        l->v = v;
        l->cap = cap;
    }
    snprintf(l->v[l->n].node, sizeof(l->v[l->n].node), "%s", st->node);
    l->v[l->n].seq = st->seq;
    l->n++;
    return FERRY_OK;
}

/* The seq the previous pass saw for node, 0 when it did not see the node. */
static uint64_t seen_seq(struct seen_list *prev, const char *node)
{
    while (prev->cursor < prev->n) {
        int c = strcmp(prev->v[prev->cursor].node, node);
        if (c > 0)
            break;
        prev->cursor++;
        if (c == 0)
            return prev->v[prev->cursor - 1].seq;
    }
    return 0;
}

/* ---- rendering ------------------------------------------------------------- */

enum view {
    VIEW_TABLE,   /* the plain table */
    VIEW_JSON,    /* a JSON array */
    VIEW_FRAME,   /* one screenful of the live view */
    VIEW_CHANGES, /* a line per node that reported since the last pass */
};

/* One walk of the inventory: where its rows go and what it saw. */
struct walker {
    int64_t rollout; /* 0: the nodes table through the filter */
    enum view view;
    FILE *out;
    bool color;
    size_t max_rows; /* VIEW_FRAME: rows that fit on the screen */
    struct seen_list *prev, *cur;
    struct tally tally;
    struct ferry_diag *d;
};

/* "2026-11-27T18:47:32Z" with the date, "18:47:32Z" without. */
static void utc_clock(int64_t t, bool with_date, char *buf, size_t cap)
{
    time_t tt = (time_t)t;
    struct tm tm;
    size_t n = 0;
    if (gmtime_r(&tt, &tm))
        n = with_date ? strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm)
                      : strftime(buf, cap, "%H:%M:%SZ", &tm);
    if (n == 0)
        snprintf(buf, cap, "?");
}

/* ---- node-supplied text ------------------------------------------------------ */

/* A record's version and message are whatever a node (or whoever speaks for
 * it) wrote. Printed raw, a control sequence in them would drive the
 * operator's terminal: move the cursor, rewrite the lines above, set the
 * window title, hide a failure. So everything that is not plain printable
 * text is shown escaped: C0 controls and DEL as \xHH, C1 controls and the
 * bidirectional controls (which reorder what is displayed) as \u{HHHH},
 * bytes that are not UTF-8 as \xHH, and the backslash itself as \\, so no
 * escape can be forged. --json leaves the text to the JSON encoder. */
#define SAFE_LEN(field) (sizeof(field) * 4 + 1) /* at worst "\xHH" for every byte */

/* The length of the UTF-8 sequence at p (1..4) and its code point, or 0
 * when p does not start a well-formed one. */
static size_t utf8_next(const unsigned char *p, uint32_t *cp)
{
    size_t n = p[0] < 0x80                    ? 1
               : p[0] >= 0xC2 && p[0] <= 0xDF ? 2
               : p[0] >= 0xE0 && p[0] <= 0xEF ? 3
               : p[0] >= 0xF0 && p[0] <= 0xF4 ? 4
                                              : 0;
    uint32_t v = n == 1 ? p[0] : n == 2 ? p[0] & 0x1Fu : n == 3 ? p[0] & 0x0Fu : p[0] & 0x07u;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3Fu);
    }
    *cp = v;
    return n;
}

static bool needs_escape(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || cp == 0x200E || cp == 0x200F ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

/* in (a NUL-terminated field) made safe to print into out (cap bytes); cut
 * at a whole character or escape when out is too small. */
static void safe_text(const char *in, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t used = 0;
    out[0] = 0;
    while (*p) {
        char esc[16];
        uint32_t cp = 0;
        size_t n = utf8_next(p, &cp);
        const char *piece = (const char *)p;
        size_t len = n;
        if (n == 0) {
            snprintf(esc, sizeof(esc), "\\x%02X", p[0]);
            n = 1;
        } else if (cp == '\\') {
            snprintf(esc, sizeof(esc), "\\\\");
        } else if (needs_escape(cp)) {
            snprintf(esc, sizeof(esc), cp < 0x80 ? "\\x%02X" : "\\u{%04X}", (unsigned)cp);
        } else {
            esc[0] = 0;
        }
        if (esc[0]) {
            piece = esc;
            len = strlen(esc);
        }
        if (used + len + 1 > cap)
            break;
        memcpy(out + used, piece, len);
        used += len;
        out[used] = 0;
        p += n;
    }
}

static void error_text(const struct ferry_status *st, char *buf, size_t cap)
{
    char message[SAFE_LEN(st->message)];
    safe_text(st->message, message, sizeof(message));
    snprintf(buf, cap, "%s%s%s", st->error ? ferry_err_name(st->error) : "",
             st->error && message[0] ? ": " : "", message);
}

/* The version column: "-" when the record has none. */
static void version_text(const struct ferry_status *st, char *buf, size_t cap)
{
    if (st->version[0])
        safe_text(st->version, buf, cap);
    else
        snprintf(buf, cap, "-");
}

static enum ferry_err print_json_row(struct walker *w, const struct ferry_inventory_row *row)
{
    char *text = NULL;
    size_t len;
    enum ferry_err err = ferry_inventory_row_json(row, &text, &len, w->d);
    if (err != FERRY_OK)
        return err;
    fprintf(w->out, "%s%s", w->tally.rows ? ",\n" : "\n", text);
    free(text);
    return FERRY_OK;
}

/* The last column is separated only when present: no trailing blanks. */
#define TABLE_FMT "%-20s %-14s %-28s %-10s %-14s %23s %6s  %-20s%s%s\n"

static void print_table_header(FILE *out)
{
    fprintf(out, TABLE_FMT, "NODE", "GATEWAY", "RELEASE", "VERSION", "STATE", "BYTES", "SEQ",
            "UPDATED", " ", "ERROR");
}

static void print_table_row(FILE *out, const struct ferry_inventory_row *row)
{
    const struct ferry_status *st = &row->st;
    char progress[48] = "-", updated[32], error[SAFE_LEN(st->message) + 32];
    char version[SAFE_LEN(st->version)];
    version_text(st, version, sizeof(version));
    if (st->total > 0)
        snprintf(progress, sizeof(progress), "%llu/%llu", (unsigned long long)st->bytes,
                 (unsigned long long)st->total);
    utc_clock(row->updated_at, true, updated, sizeof(updated));
    error_text(st, error, sizeof(error));
    if (row->refused) {
        size_t used = strlen(error);
        snprintf(error + used, sizeof(error) - used, "%s[%llu refused since: see --refused]",
                 used ? " " : "", (unsigned long long)row->refused);
    }
    char seq[24];
    snprintf(seq, sizeof(seq), "%llu", (unsigned long long)st->seq);
    fprintf(out, TABLE_FMT, st->node, st->gateway[0] ? st->gateway : "-",
            st->release_id[0] ? st->release_id : "-", version, ferry_state_name(st->state),
            progress, seq, updated, error[0] ? " " : "", error);
}

/* Percent of the release written, -1 when the record says nothing of it. */
static int progress_pct(const struct ferry_status *st)
{
    if (st->total == 0)
        return -1;
    if (st->bytes >= st->total)
        return 100;
    return (int)(st->bytes * 100 / st->total); /* bytes < 2^53: no overflow */
}

static const char *state_color(enum ferry_state s)
{
    switch (s) {
    case FERRY_STATE_SUCCESS:
        return "\033[32m";
    case FERRY_STATE_FAILED:
    case FERRY_STATE_ROLLED_BACK:
    case FERRY_STATE_REJECTED:
        return "\033[31m";
    case FERRY_STATE_DEFERRED:
        return "\033[33m";
    case FERRY_STATE_DOWNLOADING:
    case FERRY_STATE_VERIFYING:
    case FERRY_STATE_INSTALLING:
    case FERRY_STATE_PENDING_REBOOT:
        return "\033[36m";
    default:
        return "";
    }
}

#define FRAME_FMT "%-20s %s%-14s%s %-27s  %-10s %-12s %s"

static void print_frame_row(struct walker *w, const struct ferry_inventory_row *row)
{
    const struct ferry_status *st = &row->st;
    char bar[BAR_WIDTH + 16] = "", error[SAFE_LEN(st->message) + 32];
    char version[SAFE_LEN(st->version)];
    version_text(st, version, sizeof(version));
    int pct = progress_pct(st);
    if (pct >= 0) {
        int full = pct * BAR_WIDTH / 100;
        bar[0] = '[';
        for (int i = 0; i < BAR_WIDTH; i++)
            bar[1 + i] = i < full ? '#' : '.';
        snprintf(bar + 1 + BAR_WIDTH, sizeof(bar) - 1 - BAR_WIDTH, "] %3d%%", pct);
    }
    error_text(st, error, sizeof(error));
    const char *on = w->color ? state_color(st->state) : "";
    /* \033[K clears what the previous frame left to the right. */
    fprintf(w->out, FRAME_FMT "\033[K\n", st->node, on, ferry_state_name(st->state),
            on[0] ? "\033[0m" : "", bar, version, st->gateway[0] ? st->gateway : "-", error);
}

static void print_change(struct walker *w, const struct ferry_inventory_row *row)
{
    const struct ferry_status *st = &row->st;
    char when[16], error[SAFE_LEN(st->message) + 32], progress[64] = "";
    char version[SAFE_LEN(st->version)];
    version_text(st, version, sizeof(version));
    utc_clock(row->updated_at, false, when, sizeof(when));
    int pct = progress_pct(st);
    if (pct >= 0)
        snprintf(progress, sizeof(progress), " %d%% (%llu/%llu)", pct,
                 (unsigned long long)st->bytes, (unsigned long long)st->total);
    error_text(st, error, sizeof(error));
    fprintf(w->out, "%s %s %s%s version=%s release=%s gateway=%s%s%s\n", when, st->node,
            ferry_state_name(st->state), progress, version,
            st->release_id[0] ? st->release_id : "-", st->gateway[0] ? st->gateway : "-",
            error[0] ? " error=" : "", error);
}

static enum ferry_err on_row(void *arg, const struct ferry_inventory_row *row)
{
    struct walker *w = arg;
    enum ferry_err err = FERRY_OK;
    switch (w->view) {
    case VIEW_TABLE:
        print_table_row(w->out, row);
        break;
    case VIEW_JSON:
        err = print_json_row(w, row);
        break;
    case VIEW_FRAME:
        if (w->tally.rows < w->max_rows)
            print_frame_row(w, row);
        break;
    case VIEW_CHANGES:
        if (seen_seq(w->prev, row->st.node) != row->st.seq)
            print_change(w, row);
        err = seen_push(w->cur, &row->st, w->d);
        break;
    }
    if (err == FERRY_OK)
        tally_add(&w->tally, row);
    return err;
}

/* ---- one pass --------------------------------------------------------------- */

static enum ferry_err walk(struct cloud_inventory *inv, const struct cloud_inventory_filter *f,
                           struct walker *w)
{
    memset(&w->tally, 0, sizeof(w->tally));
    if (w->view == VIEW_JSON)
        fprintf(w->out, "[");
    else if (w->view == VIEW_TABLE)
        print_table_header(w->out);
    enum ferry_err err = w->rollout ? cloud_rollout_each_node(inv, w->rollout, on_row, w, w->d)
                                    : cloud_inventory_each_node(inv, f, on_row, w, w->d);
    if (w->view == VIEW_JSON)
        fprintf(w->out, "%s]\n", w->tally.rows ? "\n" : "");
    return err;
}

/* Writes buf to stdout in one go, so a frame never shows half drawn. */
static enum ferry_err emit(const char *buf, size_t len, struct ferry_diag *d)
{
    if ((len && fwrite(buf, 1, len, stdout) != len) || fflush(stdout) != 0)
        return ferry_fail(d, FERRY_E_IO, "writing to stdout failed: %s", strerror(errno));
    return FERRY_OK;
}

/* A walk whose output is kept in memory, for a frame or for the listing of
 * the pass that settles a --wait. *text is the caller's to free. */
static enum ferry_err walk_to_memory(struct cloud_inventory *inv,
                                     const struct cloud_inventory_filter *f, struct walker *w,
                                     char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    w->out = open_memstream(text, len);
    if (!w->out)
        return ferry_fail(w->d, FERRY_E_NOMEM, "no memory for the listing");
    enum ferry_err err = walk(inv, f, w);
    if (fclose(w->out) != 0 && err == FERRY_OK)
        err = ferry_fail(w->d, FERRY_E_NOMEM, "no memory for the listing");
    w->out = NULL;
    return err;
}

/* ---- the loop behind --watch and --wait ------------------------------------- */

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
}

/* Without SA_RESTART, so the sleep between passes ends at once. */
static void catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL); /* a signal ends it early: the loop then stops */
}

struct loop {
    const struct status_cfg *cfg;
    struct cloud_inventory *inv;
    const struct cloud_inventory_filter *filter;
    uint64_t interval_ms;
    uint64_t deadline_ms; /* 0: none */
    bool tty;
    bool first_frame;
    struct seen_list seen[2];
    struct tally last; /* VIEW_CHANGES: counts as last printed */
    struct ferry_diag *d;
};

static size_t screen_rows(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0)
        return ws.ws_row;
    return 24;
}

static void frame_title(const struct loop *l, FILE *out)
{
    const struct status_cfg *cfg = l->cfg;
    char when[16];
    utc_clock(time(NULL), false, when, sizeof(when));
    fprintf(out, "Ferry fleet status %s", when);
    if (cfg->release)
        fprintf(out, "  release %s", cfg->release);
    if (cfg->gateway)
        fprintf(out, "  gateway %s", cfg->gateway);
    if (cfg->state)
        fprintf(out, "  state %s", cfg->state);
    fprintf(out, "  (every %llums", (unsigned long long)l->interval_ms);
    if (l->deadline_ms) {
        uint64_t now = now_ms();
        unsigned long long left = now < l->deadline_ms ? (l->deadline_ms - now + 999) / 1000 : 0;
        fprintf(out, ", %llus left", left);
    }
    fprintf(out, "; Ctrl-C stops)\033[K\n\033[K\n");
}

/* Draws one screenful: home, title, rows, counts, and clears what is left.
 * Autowrap is off while drawing, so a long line is cut at the screen's edge
 * instead of pushing the frame down. */
static enum ferry_err frame_pass(struct loop *l, struct walker *w)
{
    size_t rows = screen_rows();
    w->max_rows = rows > 7 ? rows - 7 : 1;
    char *text = NULL, *frame = NULL;
    size_t len, flen;
    enum ferry_err err = walk_to_memory(l->inv, l->filter, w, &text, &len);
    if (err != FERRY_OK)
        goto out;
    FILE *out = open_memstream(&frame, &flen);
    if (!out) {
        err = ferry_fail(l->d, FERRY_E_NOMEM, "no memory for the live view");
        goto out;
    }
    fprintf(out, "%s\033[?7l\033[H", l->first_frame ? "\033[2J" : "");
    frame_title(l, out);
    fprintf(out, FRAME_FMT "\033[K\n", "NODE", "", "STATE", "", "PROGRESS", "VERSION", "GATEWAY",
            "ERROR");
    fwrite(text, 1, len, out);
    if (w->tally.rows > w->max_rows)
        fprintf(out, "... and %zu more (narrow it with --release, --gateway, --state)\033[K\n",
                w->tally.rows - w->max_rows);
    char counts[512];
    tally_format(&w->tally, counts, sizeof(counts));
    fprintf(out, "\033[K\n%s  (%zu of %zu final)\033[K\n\033[J\033[?7h", counts,
            tally_final(&w->tally), w->tally.rows);
    if (fclose(out) != 0) {
        err = ferry_fail(l->d, FERRY_E_NOMEM, "no memory for the live view");
        goto out;
    }
    err = emit(frame, flen, l->d);
    l->first_frame = false;
out:
    free(frame);
    free(text);
    return err;
}

/* Prints the nodes that reported since the last pass, then the counts by
 * state when those moved. */
static enum ferry_err changes_pass(struct loop *l, struct walker *w)
{
    w->out = stdout;
    w->prev = &l->seen[0];
    w->cur = &l->seen[1];
    w->prev->cursor = 0;
    w->cur->n = 0;
    enum ferry_err err = walk(l->inv, l->filter, w);
    w->out = NULL;
    if (err != FERRY_OK)
        return err;
    struct seen_list tmp = l->seen[0];
    l->seen[0] = l->seen[1];
    l->seen[1] = tmp;
    if (memcmp(l->last.by_state, w->tally.by_state, sizeof(l->last.by_state)) != 0 ||
        l->last.rows != w->tally.rows) {
        char when[16], counts[512];
        utc_clock(time(NULL), false, when, sizeof(when));
        tally_format(&w->tally, counts, sizeof(counts));
        printf("%s -- %s\n", when, counts);
        l->last = w->tally;
    }
    return emit(NULL, 0, l->d);
}

/* For --rollout: the rollout's state and counts decide, not its nodes'. */
struct rollout_verdict {
    enum cloud_settle settle;
    enum ferry_rollout_state state;
    uint64_t targets, successes;
    char reason[CLOUD_REASON_MAX];
};

static enum ferry_err judge_rollout(struct loop *l, struct rollout_verdict *v)
{
    struct cloud_rollout r;
    struct cloud_wave_tally waves[FERRY_ROLLOUT_MAX_WAVES];
    struct cloud_halt_tally halt;
    enum ferry_err err = cloud_rollout_load(l->inv, (int64_t)l->cfg->rollout, &r, l->d);
    if (err != FERRY_OK)
        return err;
    err = cloud_rollout_tally(l->inv, &r, waves, &halt, l->d);
    memset(v, 0, sizeof(*v));
    for (size_t i = 0; err == FERRY_OK && i < r.plan.nwaves; i++) {
        v->targets += waves[i].targets;
        v->successes += waves[i].by_state[FERRY_STATE_SUCCESS];
    }
    v->state = r.state;
    v->settle = cloud_settle_rollout(r.state, v->targets, v->successes);
    snprintf(v->reason, sizeof(v->reason), "%s", r.reason);
    cloud_rollout_clear(&r);
    return err;
}

static bool settled(const struct loop *l, const struct tally *t)
{
    return cloud_settle_nodes(t->rows, tally_final(t), t->by_state[FERRY_STATE_SUCCESS],
                              l->cfg->expect) != CLOUD_SETTLE_PENDING;
}

/* The verdict of a --wait --rollout; returns the exit status. */
static int rollout_verdict(const struct loop *l, const struct rollout_verdict *v, bool timed_out)
{
    unsigned long long id = (unsigned long long)l->cfg->rollout;
    if (timed_out) {
        fprintf(stderr,
                "ferry-cloud status: timed out after %llds: rollout %llu is %s, %llu of %llu "
                "targets succeeded (%s)\n",
                (long long)l->cfg->timeout, id, ferry_rollout_state_name(v->state),
                (unsigned long long)v->successes, (unsigned long long)v->targets, v->reason);
        return CLOUD_STATUS_EXIT_TIMEOUT;
    }
    fprintf(stderr, "ferry-cloud status: rollout %llu %s: %llu of %llu targets succeeded (%s)\n",
            id, ferry_rollout_state_name(v->state), (unsigned long long)v->successes,
            (unsigned long long)v->targets, v->reason);
    return v->settle == CLOUD_SETTLE_SUCCESS ? 0 : CLOUD_STATUS_EXIT_UNSUCCESSFUL;
}

/* The verdict of a --wait on the pass t; returns the exit status. */
static int verdict(const struct loop *l, const struct tally *t, bool timed_out)
{
    char counts[512], names[NOTE_MAX * (FERRY_ID_MAX + 20)];
    tally_format(t, counts, sizeof(counts));
    if (timed_out) {
        uint64_t need = l->cfg->expect ? l->cfg->expect : 1;
        if (t->rows < need)
            fprintf(stderr,
                    "ferry-cloud status: timed out after %llds: %zu of the %llu expected nodes "
                    "targeted (%s)\n",
                    (long long)l->cfg->timeout, t->rows, (unsigned long long)need, counts);
        else {
            size_t pending = t->rows - tally_final(t);
            notes_format(t->pending, t->npending, pending, names, sizeof(names));
            fprintf(stderr,
                    "ferry-cloud status: timed out after %llds: %zu of %zu targeted nodes not "
                    "in a final state: %s (%s)\n",
                    (long long)l->cfg->timeout, pending, t->rows, names, counts);
        }
        return CLOUD_STATUS_EXIT_TIMEOUT;
    }
    /* Successes with a refused record since do not count (tally_add()). */
    size_t unhappy = t->unhappy_total;
    if (cloud_settle_nodes(t->rows, tally_final(t), tally_final(t) - unhappy, l->cfg->expect) ==
        CLOUD_SETTLE_SUCCESS) {
        if (t->rows == 1)
            fprintf(stderr, "ferry-cloud status: the one targeted node succeeded\n");
        else
            fprintf(stderr, "ferry-cloud status: all %zu targeted nodes succeeded\n", t->rows);
        return 0;
    }
    notes_format(t->unhappy, t->nunhappy, unhappy, names, sizeof(names));
    fprintf(stderr,
            "ferry-cloud status: settled, %zu of %zu targeted nodes did not succeed: %s (%s)\n",
            unhappy, t->rows, names, counts);
    return CLOUD_STATUS_EXIT_UNSUCCESSFUL;
}

/* One pass of --watch, --wait or both; *listing (wait without watch) gets
 * the pass's table or JSON. */
static enum ferry_err loop_pass(struct loop *l, struct walker *w, char **listing, size_t *len)
{
    if (w->view == VIEW_FRAME)
        return frame_pass(l, w);
    if (w->view == VIEW_CHANGES)
        return changes_pass(l, w);
    free(*listing);
    return walk_to_memory(l->inv, l->filter, w, listing, len);
}

static int loop_run(struct loop *l, enum view view)
{
    const struct status_cfg *cfg = l->cfg;
    struct walker w = {.rollout = (int64_t)cfg->rollout,
                       .view = view,
                       .color = l->tty && !getenv("NO_COLOR"),
                       .d = l->d};
    struct rollout_verdict rv = {0};
    char *listing = NULL;
    size_t len = 0;
    int status = 0;
    bool timed_out = false;
    catch_stop_signals();
    for (;;) {
        enum ferry_err err = loop_pass(l, &w, &listing, &len);
        if (err != FERRY_OK) {
            status = cloud_subcmd_report(&status_cmd, l->d, err, CLOUD_EXIT_FAILED);
            goto out;
        }
        if (cfg->rollout && cfg->wait)
            err = judge_rollout(l, &rv);
        if (err != FERRY_OK) {
            status = cloud_subcmd_report(&status_cmd, l->d, err, CLOUD_EXIT_FAILED);
            goto out;
        }
        bool done =
            cfg->wait && (cfg->rollout ? rv.settle != CLOUD_SETTLE_PENDING : settled(l, &w.tally));
        timed_out = !done && l->deadline_ms && now_ms() >= l->deadline_ms;
        if (done || timed_out || stop_signal)
            break;
        uint64_t nap = l->interval_ms, now = now_ms();
        if (l->deadline_ms && l->deadline_ms > now && l->deadline_ms - now < nap)
            nap = l->deadline_ms - now; /* wake for the deadline, not after it */
        sleep_ms(nap);
        if (stop_signal)
            break;
    }
    if (listing) {
        enum ferry_err err = emit(listing, len, l->d);
        if (err != FERRY_OK) {
            status = cloud_subcmd_report(&status_cmd, l->d, err, CLOUD_EXIT_FAILED);
            goto out;
        }
    }
    if (stop_signal && cfg->wait) {
        fprintf(stderr, "ferry-cloud status: interrupted before the rollout settled\n");
        status = 128 + stop_signal;
    } else if (stop_signal)
        status = 0;
    else if (cfg->rollout)
        status = rollout_verdict(l, &rv, timed_out);
    else
        status = verdict(l, &w.tally, timed_out);
out:
    free(listing);
    return status;
}

/* ---- command ------------------------------------------------------------------- */

static enum ferry_err parse_interval(const char *s, uint64_t *ms, struct ferry_diag *d)
{
    size_t n = strlen(s);
    uint64_t v = 0;
    enum ferry_err err = FERRY_E_INVALID_ARG;
    if (n > 2 && n < 24 && strcmp(s + n - 2, "ms") == 0) {
        char digits[24];
        memcpy(digits, s, n - 2);
        digits[n - 2] = 0;
        err = ferry_parse_u64(digits, &v);
    } else {
        int64_t secs;
        err = ferry_parse_duration(s, &secs);
        if (err == FERRY_OK && secs > INTERVAL_MAX_MS / 1000)
            err = FERRY_E_INVALID_ARG;
        if (err == FERRY_OK)
            v = (uint64_t)secs * 1000u;
    }
    if (err != FERRY_OK || v < INTERVAL_MIN_MS || v > INTERVAL_MAX_MS)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--interval '%.40s' must be 100ms..1h, e.g. 500ms or 2s", s);
    *ms = v;
    return FERRY_OK;
}

/* Flags that only make sense together, and filter values that cannot match
 * anything (a typo): say so. Returns -1 when all is well. */
static int check_flags(const struct status_cfg *cfg, enum ferry_state *state, uint64_t *interval_ms)
{
    struct ferry_diag d = {{0}};
    enum ferry_err err = FERRY_E_INVALID_ARG;
    if (cfg->release && !ferry_id_valid(cfg->release))
        ferry_fail(&d, err, "--release '%.80s' is not a valid release id", cfg->release);
    else if (cfg->gateway && !ferry_id_valid(cfg->gateway))
        ferry_fail(&d, err, "--gateway '%.80s' is not a valid gateway id", cfg->gateway);
    else if (cfg->state && ferry_state_from_name(cfg->state, state) != FERRY_OK)
        ferry_fail(&d, err,
                   "--state '%.40s' is not a state (idle, available, deferred, downloading, "
                   "verifying, installing, pending-reboot, success, failed, rolled-back, rejected)",
                   cfg->state);
    else if (cfg->watch && cfg->json)
        ferry_fail(&d, err, "--watch draws for people; poll --json for a program instead");
    else if (cfg->refused && cfg->events)
        ferry_fail(&d, err, "--refused and --events are two listings: ask for one");
    else if ((cfg->refused || cfg->events) && (cfg->watch || cfg->wait))
        ferry_fail(&d, err, "--%s lists once: it takes no --watch or --wait",
                   cfg->refused ? "refused" : "events");
    else if (cfg->events && (cfg->release || cfg->gateway || cfg->state))
        ferry_fail(&d, err, "--events lists the whole log: it takes no filter");
    else if (cfg->rollout && (cfg->refused || cfg->events))
        ferry_fail(&d, err,
                   "--rollout lists a rollout's targets: no --refused or --events with it");
    else if (cfg->rollout && (cfg->release || cfg->gateway || cfg->state || cfg->expect))
        ferry_fail(&d, err,
                   "--rollout lists the rollout's targets: no --release, --gateway, "
                   "--state or --expect with it");
    else if (!cfg->wait && (cfg->timeout >= 0 || cfg->expect))
        ferry_fail(&d, err, "--timeout and --expect need --wait");
    else if (cfg->wait && cfg->timeout == 0)
        ferry_fail(&d, err, "--timeout must be at least 1s");
    else if (cfg->interval && !cfg->watch && !cfg->wait)
        ferry_fail(&d, err, "--interval needs --watch or --wait");
    else if (!cfg->interval || parse_interval(cfg->interval, interval_ms, &d) == FERRY_OK)
        return -1;
    return cloud_subcmd_report(&status_cmd, &d, err, CLOUD_EXIT_USAGE);
}

/* ---- --refused and --events ----------------------------------------------------- */

struct lister {
    bool json;
    size_t rows;
    struct ferry_diag *d;
};

#define REFUSED_FMT "%-20s %-20s %-14s %16s %-14s %-13s %s\n"

static enum ferry_err print_refused(void *arg, const struct ferry_refused_row *row)
{
    struct lister *l = arg;
    if (l->json) {
        char *text = NULL;
        size_t len;
        enum ferry_err err = ferry_refused_row_json(row, &text, &len, l->d);
        if (err != FERRY_OK)
            return err;
        printf("%s%s", l->rows++ ? ",\n" : "\n", text);
        free(text);
        return FERRY_OK;
    }
    char when[32], seq[24], error[SAFE_LEN(row->st.message) + 32], detail[SAFE_LEN(row->detail)];
    utc_clock(row->received_at, true, when, sizeof(when));
    snprintf(seq, sizeof(seq), "%llu", (unsigned long long)row->st.seq);
    error_text(&row->st, error, sizeof(error));
    safe_text(row->detail, detail, sizeof(detail));
    printf(REFUSED_FMT, when, row->st.node, row->st.gateway[0] ? row->st.gateway : "-", seq,
           ferry_state_name(row->st.state), ferry_err_name(row->reason), detail);
    l->rows++;
    return FERRY_OK;
}

static enum ferry_err print_event(void *arg, const struct ferry_event_row *row)
{
    struct lister *l = arg;
    if (l->json) {
        char *text = NULL;
        size_t len;
        enum ferry_err err = ferry_event_row_json(row, &text, &len, l->d);
        if (err != FERRY_OK)
            return err;
        printf("%s%s", l->rows++ ? ",\n" : "\n", text);
        free(text);
        return FERRY_OK;
    }
    char when[32], kind[SAFE_LEN(row->kind)], detail[SAFE_LEN(row->detail)];
    utc_clock(row->at, true, when, sizeof(when));
    safe_text(row->kind, kind, sizeof(kind));
    safe_text(row->detail, detail, sizeof(detail));
    printf("%-20s %-6s %-20s %s\n", when, kind, row->node, detail);
    l->rows++;
    return FERRY_OK;
}

static int list_aside(const struct status_cfg *cfg, struct cloud_inventory *inv,
                      const struct cloud_inventory_filter *filter, struct ferry_diag *d)
{
    struct lister l = {.json = cfg->json, .d = d};
    if (cfg->json)
        printf("[");
    else if (cfg->refused)
        printf(REFUSED_FMT, "RECEIVED", "NODE", "GATEWAY", "SEQ", "STATE", "REASON", "DETAIL");
    else
        printf("%-20s %-6s %-20s %s\n", "AT", "KIND", "NODE", "DETAIL");
    enum ferry_err err = cfg->refused
                             ? cloud_inventory_each_refused(inv, filter, print_refused, &l, d)
                             : cloud_inventory_each_event(inv, print_event, &l, d);
    if (cfg->json)
        printf("%s]\n", l.rows ? "\n" : "");
    if (err == FERRY_OK && (fflush(stdout) != 0 || ferror(stdout)))
        err = ferry_fail(d, FERRY_E_IO, "writing to stdout failed");
    if (err != FERRY_OK)
        return cloud_subcmd_report(&status_cmd, d, err, CLOUD_EXIT_FAILED);
    return 0;
}

static int status_once(const struct status_cfg *cfg, struct cloud_inventory *inv,
                       const struct cloud_inventory_filter *filter, struct ferry_diag *d)
{
    struct walker w = {.rollout = (int64_t)cfg->rollout,
                       .view = cfg->json ? VIEW_JSON : VIEW_TABLE,
                       .out = stdout,
                       .d = d};
    enum ferry_err err = walk(inv, filter, &w);
    if (err == FERRY_OK && (fflush(stdout) != 0 || ferror(stdout)))
        err = ferry_fail(d, FERRY_E_IO, "writing to stdout failed");
    if (err != FERRY_OK)
        return cloud_subcmd_report(&status_cmd, d, err, CLOUD_EXIT_FAILED);
    ferry_log_info("%zu node(s) listed", w.tally.rows);
    return 0;
}

static int status_run(const struct status_cfg *cfg, const enum ferry_state *state,
                      uint64_t interval_ms)
{
    struct ferry_diag d = {{0}};
    struct cloud_inventory *inv = NULL;
    struct cloud_inventory_filter filter = {cfg->release, cfg->gateway, state};
    enum ferry_err err = cloud_inventory_open(cfg->db, false, &inv, &d);
    if (err != FERRY_OK)
        return cloud_subcmd_report(&status_cmd, &d, err, CLOUD_EXIT_FAILED);
    if (cfg->refused || cfg->events) {
        int status = list_aside(cfg, inv, &filter, &d);
        cloud_inventory_close(inv);
        return status;
    }
    if (!cfg->watch && !cfg->wait) {
        int status = status_once(cfg, inv, &filter, &d);
        cloud_inventory_close(inv);
        return status;
    }
    struct loop l = {.cfg = cfg,
                     .inv = inv,
                     .filter = &filter,
                     .interval_ms = interval_ms,
                     .tty = isatty(STDOUT_FILENO) == 1,
                     .first_frame = true,
                     .d = &d};
    if (cfg->timeout > 0)
        l.deadline_ms = now_ms() + (uint64_t)cfg->timeout * 1000u;
    enum view view = cfg->json ? VIEW_JSON : VIEW_TABLE;
    if (cfg->watch)
        view = l.tty ? VIEW_FRAME : VIEW_CHANGES;
    int status = loop_run(&l, view);
    free(l.seen[0].v);
    free(l.seen[1].v);
    cloud_inventory_close(inv);
    return status;
}

int cloud_cmd_status(int argc, char **argv)
{
    struct status_cfg cfg = {.timeout = -1, .log_level = FERRY_LOG_WARN};
    enum ferry_state state;
    uint64_t interval_ms = INTERVAL_DEFAULT_MS;
    int status = cloud_subcmd_parse(&status_cmd, &cfg, &cfg.log_level, argc, argv);
    if (status < 0)
        status = check_flags(&cfg, &state, &interval_ms);
    if (status < 0)
        status = status_run(&cfg, cfg.state ? &state : NULL, interval_ms);
    ferry_opts_free(status_opts, status_cmd.nopts, &cfg);
    return status;
}
