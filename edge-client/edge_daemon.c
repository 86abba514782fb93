#include "edge_daemon.h"

#include "edge_coap.h"
#include "edge_journal.h"
#include "edge_slots.h"
#include "ferry_backoff.h"
#include "ferry_fs.h"
#include "ferry_hex.h"
#include "ferry_keyring.h"
#include "ferry_log.h"
#include "ferry_nodeinfo.h"

#include <ctype.h>
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
#define PSK_FILE_MAX     1024

enum child_kind {
    CHILD_BUSY,
    CHILD_HEALTH,
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

    struct ferry_keyring *keyring;
    struct edge_slots_backend *backend;
    struct edge_slots *slots;
    struct edge_journal *journal;
    struct edge_fsm *fsm;
    struct edge_coap *coap;

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
    uint64_t rng;
};

static struct edge_clock now_clock(void)
{
    return (struct edge_clock){.wall = (int64_t)time(NULL), .mono_ms = ferry_now_ms()};
}

static uint64_t rnd(struct edge_daemon *dm)
{
    dm->rng ^= dm->rng >> 12;
    dm->rng ^= dm->rng << 25;
    dm->rng ^= dm->rng >> 27;
    return dm->rng * UINT64_C(2685821657736338717);
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
        delay = (uint64_t)max_age_s * 1000 + rnd(dm) % 1000;
    } else {
        delay = ferry_backoff_next(&dm->send_backoff, (uint32_t)(rnd(dm) >> 32));
    }
    dm->send_timer = ferry_loop_timer(dm->loop, delay, send_retry, dm);
}

static void drop_head(struct edge_daemon *dm, uint64_t seq)
{
    struct ferry_diag d = {{0}};
    if (edge_journal_ack(dm->journal, seq, &d) != FERRY_OK)
        LOG_WARN("status journal: %s", d.msg);
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
        LOG_WARN("status journal: %s; dropping it", d.msg);
        drop_head(dm, edge_journal_head_seq(dm->journal));
        send_later(dm, 0);
        return;
    }
    if (err == FERRY_OK)
        err = edge_coap_post_status(dm->coap, buf, len, &d);
    if (err != FERRY_OK) {
        LOG_WARN("status: %s", d.msg);
        send_later(dm, 0);
        return;
    }
    dm->sending = true;
    dm->sending_seq = seq;
}

static void on_status_answer(void *arg, const struct edge_coap_answer *a)
{
    struct edge_daemon *dm = arg;
    dm->sending = false;
    switch (a->code) {
    case 204:
        LOG_DEBUG("status %" PRIu64 " stored by the gateway", dm->sending_seq);
        ferry_backoff_reset(&dm->send_backoff);
        drop_head(dm, dm->sending_seq);
        send_next(dm);
        return;
    case 400:
    case 403:
    case 413:
    case 415:
        LOG_WARN("status %" PRIu64 ": the gateway refuses it for good (%u.%02u): dropped",
                 dm->sending_seq, a->code / 100, a->code % 100);
        drop_head(dm, dm->sending_seq);
        send_next(dm);
        return;
    case 503:
        send_later(dm, a->has_max_age && a->max_age ? a->max_age : 0);
        return;
    default:
        LOG_DEBUG("status %" PRIu64 ": %s; trying again later", dm->sending_seq,
                  a->code ? "unexpected answer" : "no answer");
        send_later(dm, 0);
    }
}

static void journal_status(struct edge_daemon *dm, const struct ferry_status *st)
{
    uint64_t seq = 0;
    struct ferry_diag d = {{0}};
    if (edge_journal_append(dm->journal, st, &seq, &d) != FERRY_OK) {
        LOG_WARN("status %s not recorded: %s", ferry_state_name(st->state), d.msg);
        return;
    }
    LOG_INFO("status %" PRIu64 ": %s%s%s%s%s bytes %" PRIu64 "/%" PRIu64 "%s%s%s%s", seq,
             ferry_state_name(st->state), st->release_id[0] ? " release " : "", st->release_id,
             st->version[0] ? " version " : "", st->version, st->bytes, st->total,
             st->error ? " error " : "", st->error ? ferry_err_name(st->error) : "",
             st->message[0] ? ": " : "", st->message);
    send_next(dm);
}

/* ---- commands ---------------------------------------------------------------- */

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
    if (c.kind == CHILD_BUSY) {
        /* Exit 0 means busy; a command that did not finish counts as busy. */
        bool busy = ok || c.timed_out || !WIFEXITED(status);
        LOG_INFO("busy check: %s (%s)", busy ? "busy" : "idle", why);
        edge_fsm_busy(dm->fsm, &clk, busy, &dm->acts[0]);
    } else {
        LOG_INFO("health check: %s (%s)", ok ? "healthy" : "unhealthy", why);
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
                         const char *slot_path)
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
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
}

static enum ferry_err start_child(struct edge_daemon *dm, enum child_kind kind, const char *cmd,
                                  const char *version, enum edge_slot slot, struct ferry_diag *d)
{
    char slot_path[PATH_MAX + 16];
    if (slot != EDGE_SLOT_NONE)
        snprintf(slot_path, sizeof(slot_path), "%s/%s", dm->state_dir,
                 slot == EDGE_SLOT_A ? "slot-a.img" : "slot-b.img");
    stop_child(dm);
    pid_t pid = fork();
    if (pid < 0)
        return ferry_fail(d, FERRY_E_IO, "cannot start '%s': %s", cmd, strerror(errno));
    if (pid == 0)
        exec_command(cmd, dm->node_id, version, slot != EDGE_SLOT_NONE ? slot_path : NULL);
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

static enum ferry_err reboot(struct edge_daemon *dm, struct ferry_diag *d)
{
    enum ferry_err err = edge_slots_boot(dm->slots, &dm->booted, d);
    if (err != FERRY_OK)
        return err;
    const struct edge_slot_info *si = &edge_slots_state(dm->slots)->slot[dm->booted];
    LOG_INFO("simulated reboot: slot %s boots (%s)", edge_slot_name(dm->booted),
             si->valid ? si->img.version : "unknown image");
    return next_turn(dm, on_rebooted, d);
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

static enum ferry_err slot_action(struct edge_daemon *dm, const struct edge_action *a,
                                  struct ferry_diag *d)
{
    switch (a->kind) {
    case EDGE_ACT_BEGIN:
        return edge_slots_begin(dm->slots, &a->img, d);
    case EDGE_ACT_RESUME:
        return edge_slots_resume(dm->slots, &a->img, a->off, d);
    case EDGE_ACT_WRITE:
        return edge_slots_write(dm->slots, a->off, a->data, a->len, d);
    case EDGE_ACT_SYNC:
        return edge_slots_sync(dm->slots, d);
    case EDGE_ACT_FINISH:
        return edge_slots_finish(dm->slots, d);
    case EDGE_ACT_TRIAL:
        return edge_slots_set_trial(dm->slots, a->attempts, d);
    case EDGE_ACT_CONFIRM:
        return edge_slots_confirm(dm->slots, a->slot, d);
    case EDGE_ACT_ROLLBACK: {
        enum edge_slot to;
        return edge_slots_rollback(dm->slots, &to, d);
    }
    default:
        edge_slots_abort(dm->slots);
        return FERRY_OK;
    }
}

/* One action; errors of STATUS and SAVE are logged here and do not stop
 * the batch (edge_fsm.h). */
static enum ferry_err do_action(struct edge_daemon *dm, const struct edge_action *a,
                                struct ferry_diag *d)
{
    switch (a->kind) {
    case EDGE_ACT_STATUS:
        journal_status(dm, &a->status);
        return FERRY_OK;
    case EDGE_ACT_SAVE:
        if (save_job(dm, d) != FERRY_OK)
            LOG_WARN("job record not saved: %s", d->msg);
        return FERRY_OK;
    case EDGE_ACT_REBOOT:
        return reboot(dm, d);
    case EDGE_ACT_GET_BLOCK:
        return edge_coap_get_block(dm->coap, a->img.sha256, a->off, (uint32_t)a->len, d);
    case EDGE_ACT_RUN_BUSY:
        return run_busy(dm, d);
    case EDGE_ACT_RUN_HEALTH:
        return run_health(dm, a, d);
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
        LOG_ERR("edge: actions asked for while performing others (ignored)");
        return;
    }
    dm->performing = true;
    for (;;) {
        struct edge_actions *batch = &dm->acts[which];
        struct ferry_diag d = {{0}};
        enum ferry_err err = FERRY_OK;
        size_t i = 0;
        for (; i < batch->n && err == FERRY_OK; i++) {
            LOG_DEBUG("action %s", edge_act_name(batch->v[i].kind));
            err = do_action(dm, &batch->v[i], &d);
        }
        if (err == FERRY_OK)
            break;
        enum edge_act_kind kind = batch->v[i - 1].kind;
        LOG_WARN("%s failed: %s", edge_act_name(kind), ferry_diag_str(&d, err));
        struct edge_clock clk = now_clock();
        which ^= 1;
        edge_fsm_failed(dm->fsm, &clk, kind, err, ferry_diag_str(&d, err), &dm->acts[which]);
    }
    dm->performing = false;
}

/* ---- CoAP hooks ------------------------------------------------------------------- */

static void on_manifest(void *arg, const uint8_t *env, size_t len)
{
    struct edge_daemon *dm = arg;
    struct edge_clock clk = now_clock();
    LOG_DEBUG("manifest: %zu bytes from the gateway", len);
    edge_fsm_manifest(dm->fsm, &clk, env, len, &dm->acts[0]);
    perform(dm, 0);
}

static void on_hold(void *arg, uint32_t seconds)
{
    struct edge_daemon *dm = arg;
    struct edge_clock clk = now_clock();
    if (seconds)
        LOG_DEBUG("manifest: the gateway holds installs for %u s", seconds);
    edge_fsm_hold(dm->fsm, &clk, seconds, &dm->acts[0]);
    perform(dm, 0);
}

static void on_no_manifest(void *arg)
{
    (void)arg;
    LOG_DEBUG("manifest: the gateway has no release for this product line");
}

static void on_block(void *arg, const struct edge_coap_answer *a)
{
    struct edge_daemon *dm = arg;
    struct edge_clock clk = now_clock();
    if (a->code == 205) {
        struct edge_block b = {
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
        edge_fsm_block(dm->fsm, &clk, &b, &dm->acts[0]);
    } else {
        LOG_DEBUG("artifact block: %s %u.%02u", a->code ? "answer" : "no answer", a->code / 100,
                  a->code % 100);
        edge_fsm_block_failed(dm->fsm, &clk, a->code, a->has_max_age, a->max_age, &dm->acts[0]);
    }
    perform(dm, 0);
}

/* ---- set-up ------------------------------------------------------------------------- */

static enum ferry_err read_psk(const char *path, uint8_t *key, size_t *key_len,
                               struct ferry_diag *d)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    enum ferry_err err = ferry_read_file(path, PSK_FILE_MAX, &buf, &len, d);
    if (err != FERRY_OK)
        return err;
    char hex[2 * EDGE_COAP_PSK_MAX + 1];
    size_t n = 0;
    for (size_t i = 0; i < len && err == FERRY_OK; i++) {
        if (isspace(buf[i]))
            continue;
        if (n == sizeof(hex) - 1)
            err = FERRY_E_INVALID_ARG;
        else
            hex[n++] = (char)buf[i];
    }
    hex[n] = '\0';
    explicit_bzero(buf, len);
    free(buf);
    if (err == FERRY_OK && (n % 2 || n < 32 || ferry_hex_decode(hex, key, n / 2) != FERRY_OK))
        err = FERRY_E_INVALID_ARG;
    explicit_bzero(hex, sizeof(hex));
    if (err != FERRY_OK)
        return ferry_fail(d, err, "%s: expected a key of 16..%d bytes in hex", path,
                          EDGE_COAP_PSK_MAX);
    *key_len = n / 2;
    return FERRY_OK;
}

static enum ferry_err open_storage(struct edge_daemon *dm, const struct edge_config *cfg,
                                   struct edge_fsm_boot *boot, struct ferry_diag *d)
{
    enum ferry_err err = ferry_mkdir_p(cfg->state_dir, 0700, d);
    if (err == FERRY_OK)
        err = edge_slots_file_new(cfg->state_dir, cfg->max_image_mb * MIB, &dm->backend, d);
    if (err == FERRY_OK)
        err = edge_slots_open(dm->backend, &dm->slots, d);
    if (err != FERRY_OK)
        return err;
    /* The boot decision comes first, as in a bootloader. */
    boot->before = *edge_slots_state(dm->slots);
    err = edge_slots_boot(dm->slots, &boot->booted, d);
    if (err != FERRY_OK)
        return err;
    boot->after = *edge_slots_state(dm->slots);
    const struct edge_slot_info *run = &boot->after.slot[boot->booted];
    LOG_INFO("boot: slot %s (%s)%s", edge_slot_name(boot->booted),
             run->valid ? run->img.version : "unknown image",
             boot->before.trial != EDGE_SLOT_NONE && boot->after.trial == EDGE_SLOT_NONE
                 ? ", the trial ran out of attempts and was rolled back"
                 : "");
    return edge_journal_open(cfg->state_dir, &dm->journal, d);
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
        LOG_WARN("%s: %s; starting without it", dm->job_path, ferry_diag_str(&d, err));
        return NULL;
    }
    return out;
}

static enum ferry_err make_fsm(struct edge_daemon *dm, const struct edge_config *cfg,
                               struct ferry_diag *d)
{
    struct edge_fsm_config fc = {
        .node_id = cfg->id,
        .product = cfg->product,
        .hw_model = cfg->hw_model,
        .hw_revision = cfg->hw_revision,
        .keyring = dm->keyring,
        .max_image_size = cfg->max_image_mb * MIB,
        .block_size = (uint32_t)cfg->block_size,
        .trial_attempts = (unsigned)cfg->trial_attempts,
        .has_busy_cmd = cfg->busy_cmd != NULL,
        .busy_retry_ms = (uint32_t)(cfg->busy_retry * 1000),
        .checkpoint_bytes = CHECKPOINT_BYTES,
        .progress_ms = PROGRESS_MS,
        .retry_min_ms = RETRY_MIN_MS,
        .retry_max_ms = RETRY_MAX_MS,
        .seed = dm->rng,
        .await_hold = true,
    };
    return edge_fsm_new(&fc, &dm->fsm, d);
}

static enum ferry_err make_coap(struct edge_daemon *dm, const struct edge_config *cfg,
                                struct ferry_diag *d)
{
    uint8_t psk[EDGE_COAP_PSK_MAX];
    size_t psk_len = 0;
    enum ferry_err err = FERRY_OK;
    if (cfg->psk_file)
        err = read_psk(cfg->psk_file, psk, &psk_len, d);
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
        .seed = rnd(dm),
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
    if ((cfg->busy_cmd && !dm->busy_cmd) || (cfg->health_cmd && !dm->health_cmd))
        return ferry_fail(d, FERRY_E_NOMEM, "out of memory");
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
    dm->rng =
        (uint64_t)time(NULL) * UINT64_C(6364136223846793005) ^ (uint64_t)getpid() ^ ferry_now_ms();
    if (!dm->rng)
        dm->rng = 1;
    struct edge_fsm_boot boot;
    struct edge_fsm_saved saved;
    enum ferry_err err = copy_settings(dm, cfg, d);
    if (err == FERRY_OK)
        err = ferry_keyring_load(cfg->trust, &dm->keyring, d);
    if (err == FERRY_OK)
        err = open_storage(dm, cfg, &boot, d);
    if (err == FERRY_OK)
        err = make_fsm(dm, cfg, d);
    if (err == FERRY_OK)
        err = make_coap(dm, cfg, d);
    if (err != FERRY_OK) {
        edge_daemon_free(dm);
        return err;
    }
    struct edge_clock clk = now_clock();
    edge_fsm_start(dm->fsm, &clk, &boot, load_job(dm, &saved), &dm->acts[0]);
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
    edge_coap_free(dm->coap);
    edge_fsm_free(dm->fsm);
    edge_journal_free(dm->journal);
    edge_slots_free(dm->slots);
    edge_slots_file_free(dm->backend);
    ferry_keyring_free(dm->keyring);
    free(dm->busy_cmd);
    free(dm->health_cmd);
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
