#include "gw_self.h"

#include "ferry_fs.h"
#include "ferry_hex.h"
#include "ferry_log.h"
#include "gw_selfupd.h"
#include "inst_exec.h"
#include "inst_trial.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEQ_FILE      "status.seq"
#define GIVEN_UP_FILE "given-up"
#define SEQ_BLOCK     64     /* seqs reserved on disk at a time */
#define SLICE         262144 /* bytes copied into the slot per loop turn */
#define PENDING_MAX   16     /* own records waiting for room in the outbox */
#define RETRY_MS      1000u
#define LINK_WAIT_MS  200u /* how often the health check looks for the link */

enum phase {
    PHASE_IDLE,    /* deciding when asked */
    PHASE_COPY,    /* writing the slot, a slice per turn */
    PHASE_HEALTH,  /* a trial boot: waiting for the link, then the check */
    PHASE_RESTART, /* asked to restart: nothing more happens */
};

struct gw_self {
    struct ferry_loop *loop;
    struct gw_self_hooks h;
    char id[FERRY_ID_MAX + 1];
    char product[FERRY_ID_MAX + 1];
    char hw_model[FERRY_ID_MAX + 1];
    char hw_revision[FERRY_ID_MAX + 1];
    char dir[PATH_MAX];
    char *health_cmd;
    char *reboot_cmd;
    uint64_t health_timeout_ms;
    struct inst_device *dev;
    struct inst_engine *engine;

    enum phase phase;
    uint64_t timer;
    /* The status sequence: next to hand out, and reserved on disk up to. */
    uint64_t next_seq, reserved;
    struct ferry_status pending[PENDING_MAX];
    size_t npending;
    uint64_t retry_timer;

    /* The release being decided on or installed. */
    uint8_t given_up[FERRY_SHA256_LEN]; /* the artifact of a release given up */
    bool has_given_up;
    char ready_release[FERRY_NAME_MAX + 1];
    int64_t ready_since;
    char deferred_why[FERRY_STATUS_MESSAGE_MAX + 1]; /* the last "deferred" said */
    struct ferry_manifest job;
    const uint8_t *data;
    size_t len, copied;
    void *ref;
    /* The trial being checked. */
    struct inst_trial trial;
    uint64_t health_deadline_ms;
    char version[FERRY_VERSION_MAX + 1];
};

static int64_t wall_now(void)
{
    return (int64_t)time(NULL);
}

static void on_timer(void *arg);

static void schedule(struct gw_self *s, uint64_t delay_ms)
{
    if (s->timer)
        ferry_loop_cancel(s->loop, s->timer);
    s->timer = ferry_loop_timer(s->loop, delay_ms, on_timer, s);
}

/* ---- status records of the gateway itself -------------------------------- */

static enum ferry_err reserve_seq(struct gw_self *s, struct ferry_diag *d)
{
    char path[PATH_MAX + 16], text[32];
    snprintf(path, sizeof(path), "%s/%s", s->dir, SEQ_FILE);
    uint64_t upto = s->next_seq + SEQ_BLOCK;
    int n = snprintf(text, sizeof(text), "%" PRIu64 "\n", upto);
    enum ferry_err err = ferry_write_atomic(path, text, (size_t)n, 0644, d);
    if (err == FERRY_OK)
        s->reserved = upto;
    return err;
}

/* The first seq this run may use: past every one a run before reserved
 * (a lost or damaged file starts at 1, as a node's does). */
static enum ferry_err load_seq(struct gw_self *s, struct ferry_diag *d)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/%s", s->dir, SEQ_FILE);
    uint8_t *buf = NULL;
    size_t len = 0;
    s->next_seq = 1;
    if (ferry_read_file(path, 64, &buf, &len, NULL) == FERRY_OK) {
        char text[65];
        snprintf(text, sizeof(text), "%.*s", (int)len, (const char *)buf);
        char *end = NULL;
        unsigned long long v = strtoull(text, &end, 10);
        if (end != text && v > 0 && v < (UINT64_C(1) << 52))
            s->next_seq = v;
        free(buf);
    }
    return reserve_seq(s, d);
}

static void flush_pending(struct gw_self *s);

static void on_retry(void *arg)
{
    struct gw_self *s = arg;
    s->retry_timer = 0;
    flush_pending(s);
}

static void flush_pending(struct gw_self *s)
{
    while (s->npending) {
        struct ferry_diag d = {{0}};
        enum ferry_err err = s->h.report(s->h.arg, &s->pending[0], &d);
        if (err == FERRY_E_BUSY || err == FERRY_E_NOSPACE) {
            if (!s->retry_timer)
                s->retry_timer = ferry_loop_timer(s->loop, RETRY_MS, on_retry, s);
            return;
        }
        if (err != FERRY_OK)
            ferry_log_err("self: own record seq %" PRIu64 " not stored: %s", s->pending[0].seq,
                          ferry_diag_str(&d, err));
        memmove(s->pending, s->pending + 1, --s->npending * sizeof(s->pending[0]));
    }
}

/* A record of the gateway's own update, through its own outbox. */
static void report(struct gw_self *s, enum ferry_state state, const struct ferry_manifest *m,
                   const struct edge_image *img, enum ferry_err error, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void report(struct gw_self *s, enum ferry_state state, const struct ferry_manifest *m,
                   const struct edge_image *img, enum ferry_err error, const char *fmt, ...)
{
    struct ferry_diag d = {{0}};
    if (s->next_seq >= s->reserved && reserve_seq(s, &d) != FERRY_OK) {
        ferry_log_err("self: no status seq can be reserved: %s", d.msg);
        return;
    }
    struct ferry_status st;
    memset(&st, 0, sizeof(st));
    snprintf(st.node, sizeof(st.node), "%s", s->id);
    if (m) {
        snprintf(st.release_id, sizeof(st.release_id), "%s", m->release_id);
        snprintf(st.version, sizeof(st.version), "%s", m->version);
        st.total = m->size;
    } else if (img) {
        snprintf(st.version, sizeof(st.version), "%s", img->version);
        st.total = img->size;
    }
    st.state = state;
    st.error = error;
    if (state == FERRY_STATE_INSTALLING || state == FERRY_STATE_PENDING_REBOOT ||
        state == FERRY_STATE_SUCCESS || state == FERRY_STATE_ROLLED_BACK)
        st.bytes = st.total;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(st.message, sizeof(st.message), fmt, ap);
        va_end(ap);
    }
    st.seq = s->next_seq++;
    st.ts = wall_now();
    ferry_log_info("self: %s %s%s%s", ferry_state_name(state),
                   st.release_id[0] ? st.release_id : "", st.message[0] ? ": " : "", st.message);
    if (s->npending == PENDING_MAX) {
        ferry_log_err("self: %d records wait for the outbox; record seq %" PRIu64 " dropped",
                      PENDING_MAX, st.seq);
        return;
    }
    s->pending[s->npending++] = st;
    flush_pending(s);
}

/* ---- what was given up ----------------------------------------------------- */

/* An artifact given up (failed or rolled back here) is never installed
 * again; kept by digest, so a rollback the bootloader made (found at the
 * next boot, before any release is held) counts as well. */
static void give_up(struct gw_self *s, const uint8_t sha[FERRY_SHA256_LEN])
{
    char path[PATH_MAX + 16], hex[FERRY_SHA256_HEX_LEN + 1];
    struct ferry_diag d = {{0}};
    memcpy(s->given_up, sha, FERRY_SHA256_LEN);
    s->has_given_up = true;
    ferry_hex_encode(sha, FERRY_SHA256_LEN, hex);
    snprintf(path, sizeof(path), "%s/%s", s->dir, GIVEN_UP_FILE);
    if (ferry_write_atomic(path, hex, FERRY_SHA256_HEX_LEN, 0644, &d) != FERRY_OK)
        ferry_log_warn("self: %s", d.msg);
}

static void load_given_up(struct gw_self *s)
{
    char path[PATH_MAX + 16], hex[FERRY_SHA256_HEX_LEN + 1];
    snprintf(path, sizeof(path), "%s/%s", s->dir, GIVEN_UP_FILE);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (ferry_read_file(path, FERRY_SHA256_HEX_LEN, &buf, &len, NULL) != FERRY_OK)
        return;
    snprintf(hex, sizeof(hex), "%.*s", (int)len, (const char *)buf);
    free(buf);
    s->has_given_up = len == FERRY_SHA256_HEX_LEN &&
                      ferry_hex_decode(hex, s->given_up, FERRY_SHA256_LEN) == FERRY_OK;
}

/* ---- restarting -------------------------------------------------------------- */

static void restart(struct gw_self *s, const char *why)
{
    s->phase = PHASE_RESTART;
    if (!s->reboot_cmd) {
        ferry_log_info("self: restarting %s", why);
        s->h.restart(s->h.arg);
        return;
    }
    ferry_log_info("self: rebooting %s: running '%s'", why, s->reboot_cmd);
    char sh[] = "/bin/sh", c[] = "-c";
    char *argv[] = {sh, c, s->reboot_cmd, NULL};
    struct inst_exec_result res;
    struct ferry_diag d = {{0}};
    if (inst_exec_run(argv, NULL, 60000, NULL, 0, &res, &d) != FERRY_OK || !res.exited ||
        res.status != 0)
        ferry_log_err("self: the reboot command failed (%s); restarting the process instead",
                      d.msg[0] ? d.msg : "non-zero exit");
    else
        return; /* the system stops us */
    s->h.restart(s->h.arg);
}

/* ---- installing ----------------------------------------------------------------- */

static void end_copy(struct gw_self *s)
{
    if (s->ref)
        s->h.unmap(s->h.arg, s->ref);
    s->ref = NULL;
    s->data = NULL;
}

static void install_failed(struct gw_self *s, const char *what, enum ferry_err err,
                           const struct ferry_diag *d)
{
    inst_engine_abort(s->engine);
    end_copy(s);
    s->phase = PHASE_IDLE;
    give_up(s, s->job.sha256);
    report(s, FERRY_STATE_FAILED, &s->job, NULL, err, "%s: %s", what, ferry_diag_str(d, err));
    schedule(s, 0);
}

static void begin_install(struct gw_self *s, const struct ferry_manifest *m, bool forced,
                          const char *why)
{
    struct ferry_diag d = {{0}};
    s->job = *m;
    enum ferry_err err = s->h.map(s->h.arg, m->sha256, &s->data, &s->len, &s->ref, &d);
    if (err == FERRY_OK && s->len != m->size)
        err = ferry_fail(&d, FERRY_E_SIZE_MISMATCH,
                         "the cached artifact has %zu bytes, not %" PRIu64, s->len, m->size);
    struct edge_image img;
    memset(&img, 0, sizeof(img));
    memcpy(img.sha256, m->sha256, sizeof(img.sha256));
    img.size = m->size;
    img.seq = m->seq;
    snprintf(img.version, sizeof(img.version), "%s", m->version);
    if (err == FERRY_OK)
        err = inst_engine_begin(s->engine, &img, &d);
    if (err != FERRY_OK) {
        install_failed(s, "cannot start the install", err, &d);
        return;
    }
    report(s, FERRY_STATE_INSTALLING, m, NULL, FERRY_OK, "%s", forced ? why : "");
    s->copied = 0;
    s->phase = PHASE_COPY;
    schedule(s, 0);
}

static void copy_slice(struct gw_self *s)
{
    struct ferry_diag d = {{0}};
    size_t n = s->len - s->copied < SLICE ? s->len - s->copied : SLICE;
    enum ferry_err err = inst_engine_write(s->engine, s->copied, s->data + s->copied, n, &d);
    if (err != FERRY_OK) {
        install_failed(s, "writing the slot", err, &d);
        return;
    }
    s->copied += n;
    if (s->copied < s->len) {
        schedule(s, 0);
        return;
    }
    end_copy(s);
    err = inst_engine_sync(s->engine, &d);
    if (err == FERRY_OK)
        err = inst_engine_finish(s->engine, &d); /* re-hashes what the slot holds */
    if (err == FERRY_OK)
        err = inst_engine_set_trial(s->engine, GW_SELF_TRIAL_ATTEMPTS, &d);
    if (err != FERRY_OK) {
        install_failed(s, "finishing the slot", err, &d);
        return;
    }
    report(s, FERRY_STATE_PENDING_REBOOT, &s->job, NULL, FERRY_OK, "restarting into %s",
           s->job.version);
    restart(s, "into the new version");
}

/* ---- deciding -------------------------------------------------------------------- */

static void decide(struct gw_self *s)
{
    bool cached = false;
    const struct ferry_manifest *m = s->h.release(s->h.arg, &cached);
    const struct edge_boot_state *st = inst_engine_state(s->engine);
    enum edge_slot run = inst_engine_booted(s->engine);
    const struct edge_slot_info *running = run == EDGE_SLOT_NONE ? NULL : &st->slot[run];
    int64_t now = wall_now();
    if (m && cached && strcmp(m->release_id, s->ready_release) != 0) {
        snprintf(s->ready_release, sizeof(s->ready_release), "%s", m->release_id);
        s->ready_since = now;
        s->deferred_why[0] = 0;
    }
    struct gw_selfupd_in in = {
        .now = now,
        .m = m,
        .cached = cached,
        .ready_since = s->ready_since,
        .running_seq = running && running->valid ? running->img.seq : 0,
        .floor_seq = st->rollback_seq,
        .running_sha = running && running->valid ? running->img.sha256 : NULL,
        .hw_model = s->hw_model,
        .hw_revision = s->hw_revision[0] ? s->hw_revision : NULL,
        .busy = s->h.busy(s->h.arg, ferry_now_ms()),
        .given_up = m && s->has_given_up && memcmp(m->sha256, s->given_up, FERRY_SHA256_LEN) == 0,
    };
    struct gw_selfupd_out out;
    gw_selfupd_decide(&in, &out);
    switch (out.verdict) {
    case GW_SELFUPD_NOTHING:
        return;
    case GW_SELFUPD_WAIT:
        /* Said once per reason, not at every recheck. */
        if (strcmp(out.why, s->deferred_why) != 0) {
            snprintf(s->deferred_why, sizeof(s->deferred_why), "%s", out.why);
            report(s, FERRY_STATE_DEFERRED, m, NULL, FERRY_OK, "%s", out.why);
        }
        schedule(s, out.retry_at > now ? (uint64_t)(out.retry_at - now) * 1000 : 0);
        return;
    case GW_SELFUPD_GIVE_UP:
        give_up(s, m->sha256);
        report(s, out.state, m, NULL, out.error, "%s", out.why);
        return;
    case GW_SELFUPD_INSTALL:
        begin_install(s, m, out.forced, out.why);
        return;
    }
}

/* ---- the trial after a boot ------------------------------------------------------ */

/* The held release whose artifact is img, or NULL (it moved on meanwhile). */
static const struct ferry_manifest *release_of(struct gw_self *s, const struct edge_image *img)
{
    bool cached = false;
    const struct ferry_manifest *m = s->h.release(s->h.arg, &cached);
    return m && memcmp(m->sha256, img->sha256, FERRY_SHA256_LEN) == 0 ? m : NULL;
}

static void run_health(struct gw_self *s)
{
    bool up = s->h.link_up(s->h.arg);
    if (!up && ferry_now_ms() < s->health_deadline_ms) {
        schedule(s, LINK_WAIT_MS);
        return;
    }
    bool healthy = up;
    char why[160];
    snprintf(why, sizeof(why), "the upstream did not come up within %" PRIu64 " s",
             s->health_timeout_ms / 1000);
    if (up && s->health_cmd) {
        char env_version[32 + FERRY_VERSION_MAX], env_slot[32], env_path[PATH_MAX + 32];
        snprintf(env_version, sizeof(env_version), "FERRY_VERSION=%s", s->trial.img.version);
        snprintf(env_slot, sizeof(env_slot), "FERRY_SLOT=%s", edge_slot_name(s->trial.slot));
        snprintf(env_path, sizeof(env_path), "FERRY_SLOT_PATH=%s",
                 inst_device_slot_path(s->dev, s->trial.slot));
        char *env[] = {env_version, env_slot, env_path, NULL};
        char sh[] = "/bin/sh", c[] = "-c";
        char *argv[] = {sh, c, s->health_cmd, NULL};
        struct inst_exec_result res;
        struct ferry_diag d = {{0}};
        enum ferry_err err = inst_exec_run(argv, env, s->health_timeout_ms, NULL, 0, &res, &d);
        healthy = err == FERRY_OK && res.exited && res.status == 0;
        if (err != FERRY_OK)
            snprintf(why, sizeof(why), "the health check could not run: %s", d.msg);
        else if (!healthy) {
            char how[64];
            inst_exec_describe(&res, s->health_timeout_ms, how, sizeof(how));
            snprintf(why, sizeof(why), "the health check failed (%s)", how);
        }
    }
    struct ferry_diag d = {{0}};
    if (healthy) {
        enum ferry_err err = inst_engine_confirm(s->engine, s->trial.slot, &d);
        s->phase = PHASE_IDLE;
        if (err != FERRY_OK) {
            ferry_log_err("self: confirming %s failed: %s", s->trial.img.version, d.msg);
            return;
        }
        snprintf(s->version, sizeof(s->version), "%s", s->trial.img.version);
        report(s, FERRY_STATE_SUCCESS, release_of(s, &s->trial.img), &s->trial.img, FERRY_OK,
               "%s confirmed healthy", s->trial.img.version);
        schedule(s, 0);
        return;
    }
    ferry_log_warn("self: %s is not healthy: %s; rolling back", s->trial.img.version, why);
    enum edge_slot to = EDGE_SLOT_NONE;
    enum ferry_err err = inst_engine_rollback(s->engine, &to, &d);
    if (err != FERRY_OK) {
        /* The bootloader's own attempts end the trial at the next boot. */
        ferry_log_err("self: rollback failed: %s", d.msg);
    }
    const struct ferry_manifest *m = release_of(s, &s->trial.img);
    give_up(s, s->trial.img.sha256);
    report(s, FERRY_STATE_ROLLED_BACK, m, &s->trial.img, FERRY_OK, "%s", why);
    restart(s, "into the previous version");
}

static void on_timer(void *arg)
{
    struct gw_self *s = arg;
    s->timer = 0;
    switch (s->phase) {
    case PHASE_IDLE:
        decide(s);
        break;
    case PHASE_COPY:
        copy_slice(s);
        break;
    case PHASE_HEALTH:
        run_health(s);
        break;
    case PHASE_RESTART:
        break;
    }
}

void gw_self_kick(struct gw_self *s)
{
    if (s && s->phase == PHASE_IDLE && !s->timer)
        schedule(s, 0);
}

const char *gw_self_version(const struct gw_self *s)
{
    return s->version;
}

/* ---- set-up ----------------------------------------------------------------------- */

static enum ferry_err power_on(struct gw_self *s, struct ferry_diag *d)
{
    struct inst_engine_start first, last;
    enum ferry_err err = inst_device_power_on(s->dev, &first, &last, d);
    if (err != FERRY_OK)
        return err;
    const struct edge_slot_info *run = &last.after.slot[last.booted];
    snprintf(s->version, sizeof(s->version), "%s", run->valid ? run->img.version : "");
    ferry_log_info("self: booted slot %s (%s), %s", edge_slot_name(last.booted),
                   run->valid ? run->img.version : "unknown image",
                   inst_boot_verdict_name(first.verdict));
    inst_trial_after_boot(&first.before, &last.after, last.booted,
                          first.verdict == INST_BOOT_FELL_BACK, &s->trial);
    switch (s->trial.step) {
    case INST_TRIAL_NONE:
        break;
    case INST_TRIAL_HEALTH:
        s->phase = PHASE_HEALTH;
        s->health_deadline_ms = ferry_now_ms() + s->health_timeout_ms;
        ferry_log_info("self: trial of %s: checking its health", s->trial.img.version);
        break;
    case INST_TRIAL_ROLLED_BACK:
        give_up(s, s->trial.img.sha256);
        report(s, FERRY_STATE_ROLLED_BACK, NULL, &s->trial.img, FERRY_OK, "%s", s->trial.why);
        break;
    }
    if (last.reboot) /* a real bootloader must boot the other slot */
        restart(s, "as the boot decision asks");
    return FERRY_OK;
}

enum ferry_err gw_self_open(struct ferry_loop *loop, const struct gw_self_opts *o,
                            const struct gw_self_hooks *h, struct gw_self **out,
                            struct ferry_diag *d)
{
    if (!o->product || !ferry_id_valid(o->product) || !o->hw_model || !o->hw_model[0])
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--self-product needs a product id and --self-hw-model");
    struct gw_self *s = calloc(1, sizeof(*s));
    if (!s)
        return ferry_fail(d, FERRY_E_NOMEM, "self: out of memory");
    s->loop = loop;
    s->h = *h;
    snprintf(s->id, sizeof(s->id), "%s", o->gateway_id);
    snprintf(s->product, sizeof(s->product), "%s", o->product);
    snprintf(s->hw_model, sizeof(s->hw_model), "%s", o->hw_model);
    snprintf(s->hw_revision, sizeof(s->hw_revision), "%s", o->hw_revision ? o->hw_revision : "");
    snprintf(s->dir, sizeof(s->dir), "%s", o->dir);
    s->health_timeout_ms =
        o->health_timeout_ms ? o->health_timeout_ms : GW_SELF_DEFAULT_HEALTH_TIMEOUT_S * 1000u;
    s->health_cmd = o->health_cmd ? strdup(o->health_cmd) : NULL;
    s->reboot_cmd = o->reboot_cmd ? strdup(o->reboot_cmd) : NULL;
    enum ferry_err err = ferry_mkdir_p(s->dir, 0700, d);
    struct inst_device_opts dev = o->device;
    dev.state_dir = s->dir;
    if (err == FERRY_OK)
        err = load_seq(s, d);
    if (err == FERRY_OK)
        err = inst_device_open(&dev, &s->dev, d);
    if (err == FERRY_OK) {
        s->engine = inst_device_engine(s->dev);
        load_given_up(s);
        err = power_on(s, d);
    }
    if (err != FERRY_OK) {
        ferry_diag_prefix(d, "self-update");
        gw_self_free(s);
        return err;
    }
    *out = s;
    schedule(s, s->phase == PHASE_HEALTH ? LINK_WAIT_MS : 0);
    return FERRY_OK;
}

void gw_self_free(struct gw_self *s)
{
    if (!s)
        return;
    if (s->timer)
        ferry_loop_cancel(s->loop, s->timer);
    if (s->retry_timer)
        ferry_loop_cancel(s->loop, s->retry_timer);
    if (s->phase == PHASE_COPY)
        inst_engine_abort(s->engine);
    end_copy(s);
    inst_device_free(s->dev);
    free(s->health_cmd);
    free(s->reboot_cmd);
    free(s);
}
