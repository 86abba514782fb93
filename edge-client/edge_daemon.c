#include "edge_daemon.h"

#include "edge_coap.h"
#include "edge_journal.h"
#include "edge_meta.h"
#include "edge_report.h"
#include "edge_slots.h"
#include "inst_device.h"
#include "inst_engine.h"
#include "inst_module.h"
#include "ferry_backoff.h"
#include "ferry_coapglue.h"
#include "ferry_envelope.h"
#include "ferry_fs.h"
#include "ferry_log.h"
#include "ferry_nodeinfo.h"
#include "ferry_random.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIB              (UINT64_C(1) << 20)
#define CHECKPOINT_BYTES (64 * 1024)
#define PROGRESS_MS      5000
#define RETRY_MIN_MS     1000
#define RETRY_MAX_MS     60000
#define REBOOT_DRAIN_MS  5000  /* records get this long to reach the gateway first */
#define REBOOT_RETRY_MS  60000 /* a reboot that must happen, tried again after this */

enum child_kind {
    CHILD_BUSY,
    CHILD_HEALTH,
    CHILD_REBOOT,
};

/* The one command running, if any. */
struct child {
    pid_t pid; /* 0: none */
    int pidfd;
    uint64_t timer;
    bool timed_out;
    enum child_kind kind;
};

struct edge_daemon {
    struct ferry_loop *loop;
    char node_id[FERRY_ID_MAX + 1];
    char state_dir[PATH_MAX];
    char job_path[PATH_MAX];
    char *busy_cmd;
    char *health_cmd;
    int64_t cmd_timeout_s;

    struct edge_meta *meta; /* the trust: --trust and what the gateway taught */
    enum inst_bootloader_kind kind;
    struct inst_device *dev;    /* slots, bootloader and engine (install/) */
    struct inst_engine *engine; /* dev's */
    struct inst_modules *modules;
    enum inst_module_outcome module_outcome; /* found at start */
    /* The envelope being handed to the state machine, while its actions
     * run: a BEGIN among them is for that release (on_manifest()). */
    const uint8_t *manifest_env;
    size_t manifest_len;
    char *reboot_cmd;     /* NULL: the simulator reboots in process */
    bool reboot_due;      /* the running slot must not stay: reboot once the batch is done */
    bool rebooting;       /* waiting for the reboot (or its command) */
    uint64_t drain_until; /* monotonic ms: the journal may delay the reboot until then */
    uint64_t reboot_timer;
    struct edge_journal *journal;
    struct edge_fsm *fsm;
    struct edge_coap *coap;
    struct edge_report *report; /* the properties file, upstream */

    /* Two batches: the state machine's answer to a failure is written into
     * the one not being performed. */
    struct edge_actions acts[2];
    bool performing;

    uint64_t fsm_timer;
    uint64_t event_timer; /* a simulated reboot or health check, next turn */
    enum edge_slot booted;
    struct child child;

    bool sending;
    uint64_t sending_seq;
    uint64_t send_timer;
    struct ferry_backoff send_backoff; /* status POSTs that failed */
    struct ferry_prng rng;
};

static struct edge_clock now_clock(void)
{
    return (struct edge_clock){.wall = (int64_t)time(NULL), .mono_ms = ferry_now_ms()};
}

/* ---- status records -------------------------------------------------------- */

static void send_next(struct edge_daemon *dm);

static void send_retry(void *arg)
{
    struct edge_daemon *dm = arg;
    dm->send_timer = 0;
    send_next(dm);
}

/* Waits max_age_s (plus up to a second), or backs off when 0. */
static void send_later(struct edge_daemon *dm, uint32_t max_age_s)
{
    uint64_t delay;
    if (max_age_s) {
        delay = (uint64_t)max_age_s * 1000 + ferry_prng_next(&dm->rng) % 1000;
    } else {
        delay = ferry_backoff_next(&dm->send_backoff, (uint32_t)(ferry_prng_next(&dm->rng) >> 32));
    }
    dm->send_timer = ferry_loop_timer(dm->loop, delay, send_retry, dm);
}

static void drop_head(struct edge_daemon *dm, uint64_t seq)
{
    struct ferry_diag d = {{0}};
    if (edge_journal_ack(dm->journal, seq, &d) != FERRY_OK)
        ferry_log_warn("status journal: %s", d.msg);
}

static void send_next(struct edge_daemon *dm)
{
    if (dm->sending || dm->send_timer || !dm->coap)
        return;
    uint8_t buf[FERRY_STATUS_MAX_BYTES];
    size_t len = 0;
    uint64_t seq = 0;
    struct ferry_diag d = {{0}};
    enum ferry_err err = edge_journal_head(dm->journal, buf, sizeof(buf), &len, &seq, &d);
    if (err == FERRY_E_NOT_FOUND)
        return;
    if (err == FERRY_E_CORRUPT) {
        ferry_log_warn("status journal: %s; dropping it", d.msg);
        drop_head(dm, edge_journal_head_seq(dm->journal));
        send_later(dm, 0);
        return;
    }
    if (err == FERRY_OK)
        err = edge_coap_post_status(dm->coap, buf, len, &d);
    if (err != FERRY_OK) {
        ferry_log_warn("status: %s", d.msg);
        send_later(dm, 0);
        return;
    }
    dm->sending = true;
    dm->sending_seq = seq;
}

/* 4.09: the gateway holds another record under the head's (node, seq),
 * one that is not ours (or a record of ours from before our journal was
 * lost). Resending could never succeed and dropping would lose the record:
 * every pending record gets a fresh seq, in order, and is sent again after
 * a back-off (so a gateway that keeps answering 4.09 is not hammered). */
static void renumber(struct edge_daemon *dm)
{
    struct ferry_diag d = {{0}};
    uint64_t first = 0;
    if (edge_journal_renumber(dm->journal, &first, &d) != FERRY_OK)
        ferry_log_warn("status %" PRIu64 ": the gateway holds another record under its seq (4.09), "
                       "and renumbering failed: %s",
                       dm->sending_seq, d.msg);
    else
        ferry_log_warn("status %" PRIu64 ": the gateway holds another record under its seq (4.09); "
                       "%zu pending records renumbered from %" PRIu64,
                       dm->sending_seq, edge_journal_pending(dm->journal), first);
    send_later(dm, 0);
}

static void on_status_answer(void *arg, const struct edge_coap_answer *a)
{
    struct edge_daemon *dm = arg;
    dm->sending = false;
    switch (a->code) {
    case 204:
        ferry_log_debug("status %" PRIu64 " stored by the gateway", dm->sending_seq);
        ferry_backoff_reset(&dm->send_backoff);
        drop_head(dm, dm->sending_seq);
        send_next(dm);
        return;
    case 400:
    case 403:
    case 413:
    case 415:
        ferry_log_warn("status %" PRIu64 ": the gateway refuses it for good (%u.%02u): dropped",
                       dm->sending_seq, a->code / 100, a->code % 100);
        drop_head(dm, dm->sending_seq);
        send_next(dm);
        return;
    case 409:
        renumber(dm);
        return;
    case 503:
        send_later(dm, a->has_max_age && a->max_age ? a->max_age : 0);
        return;
    default:
        ferry_log_debug("status %" PRIu64 ": %s; trying again later", dm->sending_seq,
                        a->code ? "unexpected answer" : "no answer");
        send_later(dm, 0);
    }
}

static void journal_status(struct edge_daemon *dm, const struct ferry_status *st)
{
    uint64_t seq = 0;
    struct ferry_diag d = {{0}};
    if (edge_journal_append(dm->journal, st, &seq, &d) != FERRY_OK) {
        ferry_log_warn("status %s not recorded: %s", ferry_state_name(st->state), d.msg);
        return;
    }
    ferry_log_info("status %" PRIu64 ": %s%s%s%s%s bytes %" PRIu64 "/%" PRIu64 "%s%s%s%s", seq,
                   ferry_state_name(st->state), st->release_id[0] ? " release " : "",
                   st->release_id, st->version[0] ? " version " : "", st->version, st->bytes,
                   st->total, st->error ? " error " : "",
                   st->error ? ferry_err_name(st->error) : "", st->message[0] ? ": " : "",
                   st->message);
    send_next(dm);
}

/* ---- commands ---------------------------------------------------------------- */

/* A module's install is between its install verb and its end. */
static bool module_job_open(const struct edge_daemon *dm)
{
    enum inst_module_phase p = inst_modules_job(dm->modules)->phase;
    return p == INST_MOD_INSTALLING || p == INST_MOD_INSTALLED || p == INST_MOD_REBOOTING ||
           p == INST_MOD_COMMITTING || p == INST_MOD_ROLLING_BACK;
}

/* The release under way is an update module's (inst_module.h). */
static bool module_job(const struct edge_daemon *dm)
{
    return dm->modules && inst_modules_owns(dm->modules, edge_fsm_saved(dm->fsm)->job.digest);
}

static void perform(struct edge_daemon *dm, size_t which);

static void stop_child(struct edge_daemon *dm)
{
    struct child *c = &dm->child;
    if (!c->pid)
        return;
    kill(-c->pid, SIGKILL);
    while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR) {
    }
    ferry_loop_del_fd(dm->loop, c->pidfd);
    close(c->pidfd);
    if (c->timer)
        ferry_loop_cancel(dm->loop, c->timer);
    memset(c, 0, sizeof(*c));
}

/* "exit 3", "killed by signal 9", "timed out after 30 s". */
static void describe_exit(const struct child *c, int status, int64_t timeout_s, char *out,
                          size_t cap)
{
    if (c->timed_out)
        snprintf(out, cap, "timed out after %" PRId64 " s", timeout_s);
    else if (WIFEXITED(status))
        snprintf(out, cap, "exit %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, cap, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(out, cap, "ended with status %d", status);
}

static void reboot_command_ended(struct edge_daemon *dm, bool ok, const char *why);

static void on_child_exit(void *arg, uint32_t events)
{
    (void)events;
    struct edge_daemon *dm = arg;
    struct child c = dm->child;
    int status = 0;
    pid_t r = waitpid(c.pid, &status, WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR))
        return;
    ferry_loop_del_fd(dm->loop, c.pidfd);
    close(c.pidfd);
    if (c.timer)
        ferry_loop_cancel(dm->loop, c.timer);
    memset(&dm->child, 0, sizeof(dm->child));
    bool ok = r == c.pid && !c.timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    char why[64];
    describe_exit(&c, status, dm->cmd_timeout_s, why, sizeof(why));
    struct edge_clock clk = now_clock();
    if (c.kind == CHILD_REBOOT) {
        reboot_command_ended(dm, ok, why);
        return;
    }
    if (c.kind == CHILD_BUSY) {
        /* Exit 0 means busy; a command that did not finish counts as busy. */
        bool busy = ok || c.timed_out || !WIFEXITED(status);
        ferry_log_info("busy check: %s (%s)", busy ? "busy" : "idle", why);
        edge_fsm_busy(dm->fsm, &clk, busy, &dm->acts[0]);
    } else {
        ferry_log_info("health check: %s (%s)", ok ? "healthy" : "unhealthy", why);
        edge_fsm_health(dm->fsm, &clk, ok, why, &dm->acts[0]);
    }
    perform(dm, 0);
}

static void on_child_timeout(void *arg)
{
    struct edge_daemon *dm = arg;
    dm->child.timer = 0;
    dm->child.timed_out = true;
    kill(-dm->child.pid, SIGKILL); /* the pidfd then reports the exit */
}

/* In the child: a clean slate for a shell command, then exec. */
static void exec_command(const char *cmd, const char *node, const char *version,
                         const char *slot_path, char **extra, size_t nextra)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    setpgid(0, 0);
    int nul = open("/dev/null", O_RDONLY);
    if (nul >= 0 && nul != STDIN_FILENO) {
        dup2(nul, STDIN_FILENO);
        close(nul);
    }
    close_range(3, ~0u, 0);
    setenv("FERRY_NODE", node, 1);
    if (version)
        setenv("FERRY_VERSION", version, 1);
    if (slot_path)
        setenv("FERRY_SLOT", slot_path, 1);
    for (size_t i = 0; i < nextra; i++)
        putenv(extra[i]);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
}

static enum ferry_err start_child(struct edge_daemon *dm, enum child_kind kind, const char *cmd,
                                  const char *version, enum edge_slot slot, struct ferry_diag *d)
{
    char slot_path[PATH_MAX];
    char *extra[16];
    char extra_buf[4096];
    size_t nextra = 0;
    if (slot != EDGE_SLOT_NONE)
        snprintf(slot_path, sizeof(slot_path), "%s", inst_device_slot_path(dm->dev, slot));
    else if (kind == CHILD_HEALTH && module_job(dm))
        nextra = inst_modules_env(dm->modules, extra, 16, extra_buf, sizeof(extra_buf));
    stop_child(dm);
    pid_t pid = fork();
    if (pid < 0)
        return ferry_fail(d, FERRY_E_IO, "cannot start '%s': %s", cmd, strerror(errno));
    if (pid == 0)
        exec_command(cmd, dm->node_id, version, slot != EDGE_SLOT_NONE ? slot_path : NULL, extra,
                     nextra);
    setpgid(pid, pid); /* also here, so the timeout can kill the group at once */
    int fd = pidfd_open(pid, 0);
    if (fd < 0 || ferry_loop_add_fd(dm->loop, fd, EPOLLIN, on_child_exit, dm) != FERRY_OK) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        kill(-pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        return ferry_fail(d, FERRY_E_IO, "cannot watch '%s': %s", cmd, strerror(e));
    }
    dm->child = (struct child){.pid = pid, .pidfd = fd, .kind = kind};
    dm->child.timer =
        ferry_loop_timer(dm->loop, (uint64_t)dm->cmd_timeout_s * 1000, on_child_timeout, dm);
    return FERRY_OK;
}

/* ---- actions -------------------------------------------------------------------- */

static void on_fsm_timer(void *arg)
{
    struct edge_daemon *dm = arg;
    struct edge_clock clk = now_clock();
    dm->fsm_timer = 0;
    if (edge_fsm_phase(dm->fsm) == EDGE_PHASE_DOWNLOADING) {
        const struct ferry_blockwin *w = edge_fsm_window(dm->fsm);
        ferry_log_debug("download: timer; window %u, %u in flight, RTO %" PRIu32 " ms, %" PRIu64
                        " blocks in",
                        ferry_blockwin_cwnd(w), ferry_blockwin_inflight(w),
                        ferry_blockwin_rto_ms(w), ferry_blockwin_received(w));
    }
    edge_fsm_timer(dm->fsm, &clk, &dm->acts[0]);
    perform(dm, 0);
}

static void on_rebooted(void *arg)
{
    struct edge_daemon *dm = arg;
    struct edge_clock clk = now_clock();
    dm->event_timer = 0;
    edge_fsm_booted(dm->fsm, &clk, dm->booted, &dm->acts[0]);
    perform(dm, 0);
}

static void on_installed(void *arg)
{
    struct edge_daemon *dm = arg;
    struct edge_clock clk = now_clock();
    dm->event_timer = 0;
    edge_fsm_installed(dm->fsm, &clk, &dm->acts[0]);
    perform(dm, 0);
}

static void on_healthy_without_cmd(void *arg)
{
    struct edge_daemon *dm = arg;
    struct edge_clock clk = now_clock();
    dm->event_timer = 0;
    edge_fsm_health(dm->fsm, &clk, true, "no health command", &dm->acts[0]);
    perform(dm, 0);
}

/* Runs f on the next turn of the loop: answers come from outside the call
 * that asked for them, as edge_fsm.h requires. */
static enum ferry_err next_turn(struct edge_daemon *dm, ferry_loop_timer_cb f, struct ferry_diag *d)
{
    dm->event_timer = ferry_loop_timer(dm->loop, 0, f, dm);
    return dm->event_timer ? FERRY_OK : ferry_fail(d, FERRY_E_NOMEM, "out of memory");
}

static enum ferry_err save_job(struct edge_daemon *dm, struct ferry_diag *d)
{
    uint8_t buf[EDGE_FSM_SAVED_LEN];
    enum ferry_err err = edge_fsm_saved_encode(edge_fsm_saved(dm->fsm), buf, d);
    if (err == FERRY_OK)
        err = ferry_write_atomic(dm->job_path, buf, sizeof(buf), 0644, d);
    return err;
}

static bool in_process_reboot(const struct edge_daemon *dm)
{
    return dm->kind == INST_BOOTLOADER_SIM && !dm->reboot_cmd;
}

static void log_boot(const struct inst_engine_start *st)
{
    const struct edge_slot_info *run = &st->after.slot[st->booted];
    ferry_log_info("boot: slot %s (%s), %s", edge_slot_name(st->booted),
                   run->valid ? run->img.version : "unknown image",
                   inst_boot_verdict_name(st->verdict));
    if (st->verdict == INST_BOOT_FOREIGN)
        ferry_log_warn("boot: slot %s booted although slot %s was the active one; following the "
                       "bootloader (the next release goes to slot %s)",
                       edge_slot_name(st->booted), edge_slot_name(st->before.active),
                       edge_slot_name(edge_slot_other(st->booted)));
}

static void start_reboot(struct edge_daemon *dm);

static void reboot_retry(void *arg)
{
    struct edge_daemon *dm = arg;
    dm->reboot_timer = 0;
    start_reboot(dm);
}

/* Runs the reboot command once the records have had their chance to
 * reach the gateway (they survive the reboot anyway: the journal). */
static void start_reboot(struct edge_daemon *dm)
{
    dm->rebooting = true;
    if (dm->child.pid || dm->reboot_timer)
        return;
    if (edge_journal_pending(dm->journal) > 0 && ferry_now_ms() < dm->drain_until) {
        dm->reboot_timer = ferry_loop_timer(dm->loop, 100, reboot_retry, dm);
        return;
    }
    ferry_log_info("reboot: running '%s'", dm->reboot_cmd);
    struct ferry_diag d = {{0}};
    if (start_child(dm, CHILD_REBOOT, dm->reboot_cmd, NULL, EDGE_SLOT_NONE, &d) != FERRY_OK)
        reboot_command_ended(dm, false, d.msg);
}

static void reboot_command_ended(struct edge_daemon *dm, bool ok, const char *why)
{
    if (ok) {
        ferry_log_info("reboot: '%s' done; waiting to be stopped", dm->reboot_cmd);
        return;
    }
    ferry_log_err("reboot: '%s' failed (%s)", dm->reboot_cmd, why);
    dm->rebooting = false;
    if (edge_fsm_phase(dm->fsm) == EDGE_PHASE_REBOOTING) {
        struct edge_clock clk = now_clock();
        edge_fsm_action_failed(dm->fsm, &clk, EDGE_ACT_REBOOT, FERRY_E_IO, why, &dm->acts[0]);
        perform(dm, 0);
        return;
    }
    /* The running slot must not stay (a trial rolled back): try again. */
    dm->reboot_due = true;
    dm->rebooting = true;
    dm->reboot_timer = ferry_loop_timer(dm->loop, REBOOT_RETRY_MS, reboot_retry, dm);
}

/* EDGE_ACT_REBOOT: the bootloader is armed for the trial slot, or a
 * module installed the release in place (a reboot only if it asked). */
static enum ferry_err reboot(struct edge_daemon *dm, struct ferry_diag *d)
{
    if (module_job(dm)) {
        if (!inst_modules_job(dm->modules)->needs_reboot || in_process_reboot(dm))
            return next_turn(dm, on_installed, d);
        enum ferry_err err = inst_modules_rebooting(dm->modules, d);
        if (err != FERRY_OK)
            return err;
        dm->drain_until = ferry_now_ms() + REBOOT_DRAIN_MS;
        start_reboot(dm);
        return FERRY_OK;
    }
    if (!in_process_reboot(dm)) {
        dm->drain_until = ferry_now_ms() + REBOOT_DRAIN_MS;
        start_reboot(dm);
        return FERRY_OK;
    }
    struct inst_engine_start first, last;
    enum ferry_err err = inst_device_power_on(dm->dev, &first, &last, d);
    if (err != FERRY_OK)
        return err;
    dm->booted = last.booted;
    ferry_log_info("simulated reboot:");
    log_boot(&last);
    return next_turn(dm, on_rebooted, d);
}

/* After a rollback the dropped trial slot may still be the one running. */
static enum ferry_err after_rollback(struct edge_daemon *dm, struct ferry_diag *d)
{
    if (inst_engine_booted(dm->engine) == inst_engine_state(dm->engine)->active)
        return FERRY_OK;
    if (!in_process_reboot(dm)) {
        dm->reboot_due = true;
        return FERRY_OK;
    }
    struct inst_engine_start first, last;
    enum ferry_err err = inst_device_power_on(dm->dev, &first, &last, d);
    if (err == FERRY_OK) {
        ferry_log_info("simulated reboot after the rollback:");
        log_boot(&last);
    }
    return err;
}

static enum ferry_err run_health(struct edge_daemon *dm, const struct edge_action *a,
                                 struct ferry_diag *d)
{
    if (!dm->health_cmd)
        return next_turn(dm, on_healthy_without_cmd, d);
    return start_child(dm, CHILD_HEALTH, dm->health_cmd, a->img.version, a->slot, d);
}

static enum ferry_err run_busy(struct edge_daemon *dm, struct ferry_diag *d)
{
    /* The state machine only asks when there is a command. */
    return start_child(dm, CHILD_BUSY, dm->busy_cmd ? dm->busy_cmd : "false", NULL, EDGE_SLOT_NONE,
                       d);
}

/* A BEGIN for the envelope on_manifest() is handing over: the release the
 * state machine just accepted. The module record is written (a module's
 * release) before any byte is downloaded. */
static enum ferry_err prepare_release(struct edge_daemon *dm, struct ferry_diag *d)
{
    if (!dm->manifest_env || !dm->modules)
        return FERRY_OK;
    struct ferry_envelope *e = NULL;
    struct ferry_manifest m;
    uint8_t digest[FERRY_SHA256_LEN];
    enum ferry_err err = ferry_envelope_parse(dm->manifest_env, dm->manifest_len, &e, d);
    if (err == FERRY_OK) {
        ferry_sha256(e->manifest, e->manifest_len, digest);
        err = ferry_manifest_parse(e->manifest, e->manifest_len, &m, d);
    }
    ferry_envelope_free(e);
    if (err != FERRY_OK)
        return err;
    /* The state machine verified these bytes a moment ago; the digest
     * proves it is the release it started. */
    if (memcmp(digest, edge_fsm_saved(dm->fsm)->job.digest, sizeof(digest)) != 0)
        return FERRY_OK;
    return inst_modules_prepare(dm->modules, digest, &m, d);
}

static enum ferry_err module_action(struct edge_daemon *dm, const struct edge_action *a,
                                    struct ferry_diag *d)
{
    switch (a->kind) {
    case EDGE_ACT_BEGIN:
        return inst_modules_begin(dm->modules, &a->img, d);
    case EDGE_ACT_RESUME:
        return inst_modules_resume(dm->modules, &a->img, a->off, d);
    case EDGE_ACT_WRITE:
        return inst_modules_write(dm->modules, a->off, a->data, a->len, d);
    case EDGE_ACT_SYNC:
        return inst_modules_sync(dm->modules, d);
    case EDGE_ACT_FINISH:
        return inst_modules_finish(dm->modules, d);
    case EDGE_ACT_TRIAL:
        return inst_modules_install(dm->modules, d);
    case EDGE_ACT_CONFIRM:
        return inst_modules_commit(dm->modules, d);
    case EDGE_ACT_ROLLBACK: {
        bool rebooted = inst_modules_job(dm->modules)->phase == INST_MOD_REBOOTING;
        enum ferry_err err = inst_modules_rollback(dm->modules, d);
        /* The old software comes back the way the new one came. */
        if (err == FERRY_OK && rebooted && !in_process_reboot(dm))
            dm->reboot_due = true;
        return err;
    }
    default:
        return FERRY_OK; /* ABORT: the artifact stays until the next release */
    }
}

static enum ferry_err slot_action(struct edge_daemon *dm, const struct edge_action *a,
                                  struct ferry_diag *d)
{
    if (a->kind == EDGE_ACT_BEGIN) {
        enum ferry_err err = prepare_release(dm, d);
        if (err != FERRY_OK)
            return err;
    }
    if (module_job(dm))
        return module_action(dm, a, d);
    switch (a->kind) {
    case EDGE_ACT_BEGIN:
        return inst_engine_begin(dm->engine, &a->img, d);
    case EDGE_ACT_RESUME:
        return inst_engine_resume(dm->engine, &a->img, a->off, d);
    case EDGE_ACT_WRITE:
        return inst_engine_write(dm->engine, a->off, a->data, a->len, d);
    case EDGE_ACT_SYNC:
        return inst_engine_sync(dm->engine, d);
    case EDGE_ACT_FINISH:
        return inst_engine_finish(dm->engine, d);
    case EDGE_ACT_TRIAL:
        return inst_engine_set_trial(dm->engine, a->attempts, d);
    case EDGE_ACT_CONFIRM:
        return inst_engine_confirm(dm->engine, a->slot, d);
    case EDGE_ACT_ROLLBACK: {
        enum edge_slot to;
        enum ferry_err err = inst_engine_rollback(dm->engine, &to, d);
        return err == FERRY_OK ? after_rollback(dm, d) : err;
    }
    default:
        inst_engine_abort(dm->engine);
        return FERRY_OK;
    }
}

/* One action; errors of STATUS are logged here and do not stop the batch,
 * those of SAVE do (edge_fsm.h). */
static enum ferry_err do_action(struct edge_daemon *dm, const struct edge_action *a,
                                struct ferry_diag *d)
{
    switch (a->kind) {
    case EDGE_ACT_STATUS:
        journal_status(dm, &a->status);
        return FERRY_OK;
    case EDGE_ACT_SAVE:
        return save_job(dm, d);
    case EDGE_ACT_REBOOT:
        return reboot(dm, d);
    case EDGE_ACT_GET_BLOCK:
        return edge_coap_get_block(dm->coap, a->img.sha256, a->off, (uint32_t)a->len, a->req, d);
    case EDGE_ACT_RUN_BUSY:
        return run_busy(dm, d);
    case EDGE_ACT_RUN_HEALTH:
        return run_health(dm, a, d);
    case EDGE_ACT_FETCH_META:
        ferry_log_info("trust: asking the gateway for metadata (%s)", a->status.message);
        edge_coap_meta_now(dm->coap, ferry_trust_version(edge_meta_trust(dm->meta)));
        return FERRY_OK;
    case EDGE_ACT_TIMER:
    case EDGE_ACT_CANCEL_TIMER:
        if (dm->fsm_timer)
            ferry_loop_cancel(dm->loop, dm->fsm_timer);
        dm->fsm_timer = 0;
        if (a->kind == EDGE_ACT_TIMER)
            dm->fsm_timer = ferry_loop_timer(dm->loop, a->delay_ms, on_fsm_timer, dm);
        return FERRY_OK;
    default:
        return slot_action(dm, a, d);
    }
}

/* Performs dm->acts[which] in order; a failure goes back to the state
 * machine, whose answer is performed in turn. */
static void perform(struct edge_daemon *dm, size_t which)
{
    if (dm->performing) {
        ferry_log_err("edge: actions asked for while performing others (ignored)");
        return;
    }
    dm->performing = true;
    for (;;) {
        struct edge_actions *batch = &dm->acts[which];
        struct ferry_diag d = {{0}};
        enum ferry_err err = FERRY_OK;
        size_t i = 0;
        for (; i < batch->n && err == FERRY_OK; i++) {
            ferry_log_debug("action %s", edge_act_name(batch->v[i].kind));
            err = do_action(dm, &batch->v[i], &d);
        }
        if (err == FERRY_OK)
            break;
        enum edge_act_kind kind = batch->v[i - 1].kind;
        ferry_log_warn("%s failed: %s", edge_act_name(kind), ferry_diag_str(&d, err));
        struct edge_clock clk = now_clock();
        which ^= 1;
        edge_fsm_action_failed(dm->fsm, &clk, kind, err, ferry_diag_str(&d, err), &dm->acts[which]);
    }
    dm->performing = false;
    if (edge_fsm_phase(dm->fsm) == EDGE_PHASE_IDLE && !dm->reboot_due && !dm->rebooting)
        edge_report_poke(dm->report, inst_engine_state(dm->engine)->trial == EDGE_SLOT_NONE &&
                                         !module_job_open(dm));
    if (dm->reboot_due && !dm->rebooting) {
        dm->drain_until = ferry_now_ms() + REBOOT_DRAIN_MS;
        start_reboot(dm);
    }
}

/* ---- CoAP hooks ------------------------------------------------------------------- */

static void on_manifest(void *arg, const uint8_t *env, size_t len)
{
    struct edge_daemon *dm = arg;
    struct edge_clock clk = now_clock();
    if (dm->rebooting || dm->reboot_due) {
        ferry_log_debug("manifest: ignored while a reboot is due");
        return;
    }
    ferry_log_debug("manifest: %zu bytes from the gateway", len);
    edge_fsm_manifest(dm->fsm, &clk, env, len, &dm->acts[0]);
    dm->manifest_env = env;
    dm->manifest_len = len;
    perform(dm, 0);
    dm->manifest_env = NULL;
    dm->manifest_len = 0;
}

static void on_meta(void *arg, const uint8_t *buf, size_t len)
{
    struct edge_daemon *dm = arg;
    struct edge_clock clk = now_clock();
    struct ferry_diag d = {{0}};
    bool changed = false;
    uint64_t before = ferry_trust_version(edge_meta_trust(dm->meta));
    enum ferry_err err = edge_meta_apply(dm->meta, buf, len, clk.wall, &changed, &d);
    if (err != FERRY_OK) {
        ferry_log_warn("trust: metadata from the gateway dropped: %s", ferry_diag_str(&d, err));
        return;
    }
    if (!changed)
        return;
    edge_fsm_trust_changed(dm->fsm, &clk, &dm->acts[0]);
    perform(dm, 0);
    uint64_t after = ferry_trust_version(edge_meta_trust(dm->meta));
    if (after != before)
        edge_coap_meta_now(dm->coap, after);
    /* The release on offer is judged again under what was just learned. */
    edge_coap_poll_now(dm->coap);
}

static void on_hold(void *arg, uint32_t seconds)
{
    struct edge_daemon *dm = arg;
    struct edge_clock clk = now_clock();
    if (seconds)
        ferry_log_debug("manifest: the gateway holds installs for %u s", seconds);
    edge_fsm_hold(dm->fsm, &clk, seconds, &dm->acts[0]);
    perform(dm, 0);
}

static void on_no_manifest(void *arg)
{
    (void)arg;
    ferry_log_debug("manifest: the gateway has no release for this product line");
}

static void on_block(void *arg, uint32_t req, const struct edge_coap_answer *a)
{
    struct edge_daemon *dm = arg;
    struct edge_clock clk = now_clock();
    struct edge_block b = {
        .req = req,
        .code = a->code,
        .has_max_age = a->has_max_age,
        .max_age_s = a->max_age,
        .has_block = a->has_block,
        .num = a->num,
        .szx = a->szx,
        .more = a->more,
        .data = a->data,
        .len = a->len,
        .etag = a->etag,
        .etag_len = a->etag_len,
        .has_size2 = a->has_size2,
        .size2 = a->size2,
    };
    if (a->code != 205)
        ferry_log_debug("artifact block: answer %u.%02u", a->code / 100, a->code % 100);
    edge_fsm_block(dm->fsm, &clk, &b, &dm->acts[0]);
    perform(dm, 0);
}

/* A new session to the gateway is up after a silence: the block requests
 * lost with the old one go again now, not at the window's backed-off timer. */
static void on_new_session(void *arg)
{
    struct edge_daemon *dm = arg;
    struct edge_clock clk = now_clock();
    edge_fsm_new_session(dm->fsm, &clk, &dm->acts[0]);
    if (dm->acts[0].n)
        ferry_log_info("download: new session up, block window sent again");
    perform(dm, 0);
}

/* ---- set-up ------------------------------------------------------------------------- */

/* Slots, bootloader and engine; then the boot step, as after a power-on:
 * the simulator plays its bootloader first, a real one already has. */
static enum ferry_err open_storage(struct edge_daemon *dm, const struct edge_config *cfg,
                                   struct edge_fsm_boot *boot, struct ferry_diag *d)
{
    enum ferry_err err = ferry_mkdir_p(cfg->state_dir, 0700, d);
    struct inst_device_opts io = {
        .state_dir = cfg->state_dir,
        .slot = {cfg->slot_a, cfg->slot_b},
        .max_bytes = cfg->max_image_mb * MIB,
        .kind = dm->kind,
        .uboot_env_config = cfg->uboot_env_config,
        .grub_env = cfg->grub_env,
        .bootloader_cmd = cfg->bootloader_cmd,
        .cmd_timeout_ms = (uint64_t)cfg->cmd_timeout * 1000,
        .kernel_cmdline = cfg->kernel_cmdline,
        .mountinfo = cfg->mountinfo,
    };
    if (err == FERRY_OK)
        err = inst_device_open(&io, &dm->dev, d);
    if (err == FERRY_OK)
        dm->engine = inst_device_engine(dm->dev);
    struct inst_modules_opts mo = {
        .state_dir = cfg->state_dir,
        .module_dir = cfg->module_dir,
        .node_id = cfg->id,
        .timeout_ms = (uint64_t)cfg->module_timeout * 1000,
    };
    if (err == FERRY_OK)
        err = inst_modules_open(&mo, &dm->modules, d);
    /* A module install a restart cut short ends here, old or new. */
    if (err == FERRY_OK)
        err = inst_modules_recover(dm->modules, &dm->module_outcome, d);
    struct inst_engine_start first, last;
    if (err == FERRY_OK)
        err = inst_device_power_on(dm->dev, &first, &last, d);
    if (err != FERRY_OK)
        return err;
    log_boot(&first);
    if (last.booted != first.booted)
        log_boot(&last);
    memset(boot, 0, sizeof(*boot));
    boot->before = first.before;
    boot->after = last.after;
    boot->booted = last.booted;
    boot->fell_back = first.verdict == INST_BOOT_FELL_BACK;
    dm->reboot_due = last.reboot;
    return edge_journal_open(cfg->state_dir, NULL, &dm->journal, d);
}

/* What the state machine hears of a module's install the last run left. */
static void module_boot(const struct edge_daemon *dm, const struct edge_fsm_saved *saved,
                        struct edge_fsm_boot *boot)
{
    const struct inst_module_job *job = inst_modules_job(dm->modules);
    boot->module_floor = job->committed_seq;
    if (!saved || !inst_modules_owns(dm->modules, saved->job.digest))
        return;
    static const enum edge_fsm_module map[] = {
        [INST_MODULE_NOTHING] = EDGE_FSM_MODULE_NONE,
        [INST_MODULE_TRIAL] = EDGE_FSM_MODULE_TRIAL,
        [INST_MODULE_COMMITTED] = EDGE_FSM_MODULE_COMMITTED,
        [INST_MODULE_ROLLED_BACK] = EDGE_FSM_MODULE_ROLLED_BACK,
    };
    boot->module = map[dm->module_outcome];
    if (dm->module_outcome != INST_MODULE_NOTHING)
        ferry_log_info("module %s: release %s %s at this start", job->name, job->release_id,
                       inst_module_phase_name(job->phase));
}

/* The saved job, or NULL (nothing saved, or unreadable: logged). */
static const struct edge_fsm_saved *load_job(struct edge_daemon *dm, struct edge_fsm_saved *out)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    struct ferry_diag d = {{0}};
    enum ferry_err err = ferry_read_file(dm->job_path, EDGE_FSM_SAVED_LEN, &buf, &len, &d);
    if (err == FERRY_E_NOT_FOUND)
        return NULL;
    if (err == FERRY_OK)
        err = edge_fsm_saved_decode(buf, len, out, &d);
    free(buf);
    if (err != FERRY_OK) {
        ferry_log_warn("%s: %s; starting without it", dm->job_path, ferry_diag_str(&d, err));
        return NULL;
    }
    return out;
}

static enum ferry_err make_fsm(struct edge_daemon *dm, const struct edge_config *cfg,
                               struct ferry_diag *d)
{
    const struct ferry_trust *trust = edge_meta_trust(dm->meta);
    struct edge_fsm_config fc = {
        .node_id = cfg->id,
        .product = cfg->product,
        .hw_model = cfg->hw_model,
        .hw_revision = cfg->hw_revision,
        .keyring = ferry_trust_release_keys(trust),
        .trust = trust,
        .max_seq_step = cfg->max_seq_step,
        .max_lifetime = cfg->max_manifest_lifetime,
        .max_image_size = cfg->max_image_mb * MIB,
        .block_size = (uint32_t)cfg->block_size,
        .trial_attempts = (unsigned)cfg->trial_attempts,
        .has_busy_cmd = cfg->busy_cmd != NULL,
        .busy_retry_ms = (uint32_t)(cfg->busy_retry * 1000),
        .checkpoint_bytes = CHECKPOINT_BYTES,
        .progress_ms = PROGRESS_MS,
        .retry_min_ms = RETRY_MIN_MS,
        .retry_max_ms = RETRY_MAX_MS,
        .max_window = (unsigned)cfg->max_window,
        .seed = ferry_prng_next(&dm->rng),
        .await_hold = true,
    };
    return edge_fsm_new(&fc, &dm->fsm, d);
}

static void on_config_answer(void *arg, const struct edge_coap_answer *a)
{
    struct edge_daemon *dm = arg;
    edge_report_answer(dm->report, a);
}

/* The properties file's absolute path, for the report (what a restore
 * replaces). */
static enum ferry_err make_report(struct edge_daemon *dm, struct ferry_diag *d)
{
    char dir[PATH_MAX], path[PATH_MAX + 16];
    if (!realpath(dm->state_dir, dir))
        return ferry_fail(d, FERRY_E_IO, "%s: %s", dm->state_dir, strerror(errno));
    snprintf(path, sizeof(path), "%s/node.cfg", dir);
    return edge_report_new(dm->loop, dm->coap, dm->node_id, path, ferry_prng_next(&dm->rng),
                           &dm->report, d);
}

static enum ferry_err make_coap(struct edge_daemon *dm, const struct edge_config *cfg,
                                struct ferry_diag *d)
{
    _Static_assert(EDGE_COAP_PSK_MAX == FERRY_COAPGLUE_PSK_MAX, "one key size on both sides");
    uint8_t psk[EDGE_COAP_PSK_MAX];
    size_t psk_len = 0;
    enum ferry_err err = FERRY_OK;
    if (cfg->psk_file)
        err = ferry_coapglue_read_psk(cfg->psk_file, psk, &psk_len, d);
    /* Who this node is, for the gateway to report and rollouts to select
     * by (PROTOCOL.md, "Node descriptions"). */
    struct ferry_nodeinfo ni;
    char items[FERRY_NODEINFO_QUERY_MAX][FERRY_NODEINFO_ITEM_MAX];
    const char *query[FERRY_NODEINFO_QUERY_MAX];
    size_t nquery = 0;
    memset(&ni, 0, sizeof(ni));
    snprintf(ni.node, sizeof(ni.node), "%s", cfg->id);
    snprintf(ni.product, sizeof(ni.product), "%s", cfg->product);
    snprintf(ni.hw_model, sizeof(ni.hw_model), "%s", cfg->hw_model);
    snprintf(ni.hw_revision, sizeof(ni.hw_revision), "%s",
             cfg->hw_revision ? cfg->hw_revision : "");
    memcpy(ni.tags, cfg->tags, sizeof(ni.tags));
    ni.ntags = cfg->ntags;
    if (err == FERRY_OK)
        err = ferry_nodeinfo_to_query(&ni, items, &nquery, d);
    for (size_t i = 0; i < nquery; i++)
        query[i] = items[i];
    struct edge_coap_opts co = {
        .uri = cfg->gateway,
        .product = cfg->product,
        .node_id = cfg->id,
        .psk = psk_len ? psk : NULL,
        .psk_len = psk_len,
        .poll_ms = (uint64_t)cfg->poll_interval * 1000,
        .request_timeout_ms = (uint64_t)cfg->request_timeout * 1000,
        .ack_timeout_ms = cfg->ack_timeout_ms,
        .meta_have = ferry_trust_version(edge_meta_trust(dm->meta)),
        .seed = ferry_prng_next(&dm->rng),
        .manifest_query = query,
        .nmanifest_query = nquery,
    };
    struct edge_coap_hooks hooks = {
        .arg = dm,
        .manifest = on_manifest,
        .no_manifest = on_no_manifest,
        .hold = on_hold,
        .block = on_block,
        .status = on_status_answer,
        .meta = on_meta,
        .config = on_config_answer,
        .new_session = on_new_session,
    };
    if (err == FERRY_OK)
        err = edge_coap_new(dm->loop, &co, &hooks, &dm->coap, d);
    explicit_bzero(psk, sizeof(psk));
    return err;
}

static enum ferry_err copy_settings(struct edge_daemon *dm, const struct edge_config *cfg,
                                    struct ferry_diag *d)
{
    if (strlen(cfg->state_dir) + sizeof(EDGE_JOB_FILE) + 1 >= sizeof(dm->job_path))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--state-dir: path too long");
    snprintf(dm->node_id, sizeof(dm->node_id), "%s", cfg->id);
    snprintf(dm->state_dir, sizeof(dm->state_dir), "%s", cfg->state_dir);
    snprintf(dm->job_path, sizeof(dm->job_path), "%s/%s", cfg->state_dir, EDGE_JOB_FILE);
    dm->cmd_timeout_s = cfg->cmd_timeout;
    dm->busy_cmd = cfg->busy_cmd ? strdup(cfg->busy_cmd) : NULL;
    dm->health_cmd = cfg->health_cmd ? strdup(cfg->health_cmd) : NULL;
    dm->reboot_cmd = cfg->reboot_cmd ? strdup(cfg->reboot_cmd) : NULL;
    if ((cfg->busy_cmd && !dm->busy_cmd) || (cfg->health_cmd && !dm->health_cmd) ||
        (cfg->reboot_cmd && !dm->reboot_cmd))
        return ferry_fail(d, FERRY_E_NOMEM, "out of memory");
    dm->kind = INST_BOOTLOADER_SIM;
    if (cfg->bootloader && inst_bootloader_kind_parse(cfg->bootloader, &dm->kind) != FERRY_OK)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--bootloader: unknown '%s'", cfg->bootloader);
    return FERRY_OK;
}

enum ferry_err edge_daemon_new(struct ferry_loop *loop, const struct edge_config *cfg,
                               struct edge_daemon **out, struct ferry_diag *d)
{
    struct edge_daemon *dm = calloc(1, sizeof(*dm));
    if (!dm)
        return ferry_fail(d, FERRY_E_NOMEM, "out of memory");
    dm->loop = loop;
    dm->send_backoff = (struct ferry_backoff){.min_ms = RETRY_MIN_MS, .max_ms = RETRY_MAX_MS};
    ferry_prng_seed(&dm->rng, ferry_random_u64());
    struct edge_fsm_boot boot;
    struct edge_fsm_saved saved;
    enum ferry_err err = copy_settings(dm, cfg, d);
    if (err == FERRY_OK)
        err = ferry_mkdir_p(cfg->state_dir, 0700, d);
    if (err == FERRY_OK)
        err = edge_meta_open(cfg->state_dir, cfg->trust, cfg->product, EDGE_FSM_CLOCK_SKEW,
                             &dm->meta, d);
    if (err == FERRY_OK)
        err = open_storage(dm, cfg, &boot, d);
    if (err == FERRY_OK)
        err = make_fsm(dm, cfg, d);
    if (err == FERRY_OK)
        err = make_coap(dm, cfg, d);
    if (err == FERRY_OK)
        err = make_report(dm, d);
    if (err != FERRY_OK) {
        edge_daemon_free(dm);
        return err;
    }
    struct edge_clock clk = now_clock();
    const struct edge_fsm_saved *sv = load_job(dm, &saved);
    module_boot(dm, sv, &boot);
    edge_fsm_start(dm->fsm, &clk, &boot, sv, &dm->acts[0]);
    perform(dm, 0);
    send_next(dm);
    *out = dm;
    return FERRY_OK;
}

void edge_daemon_free(struct edge_daemon *dm)
{
    if (!dm)
        return;
    stop_child(dm);
    if (dm->fsm_timer)
        ferry_loop_cancel(dm->loop, dm->fsm_timer);
    if (dm->event_timer)
        ferry_loop_cancel(dm->loop, dm->event_timer);
    if (dm->send_timer)
        ferry_loop_cancel(dm->loop, dm->send_timer);
    if (dm->reboot_timer)
        ferry_loop_cancel(dm->loop, dm->reboot_timer);
    edge_report_free(dm->report);
    edge_coap_free(dm->coap);
    edge_fsm_free(dm->fsm);
    edge_journal_free(dm->journal);
    inst_modules_free(dm->modules);
    inst_device_free(dm->dev);
    edge_meta_free(dm->meta);
    free(dm->busy_cmd);
    free(dm->health_cmd);
    free(dm->reboot_cmd);
    free(dm);
}

enum edge_phase edge_daemon_phase(const struct edge_daemon *dm)
{
    return edge_fsm_phase(dm->fsm);
}

size_t edge_daemon_unsent(const struct edge_daemon *dm)
{
    return edge_journal_pending(dm->journal);
}
