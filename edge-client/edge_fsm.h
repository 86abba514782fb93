/* The edge node's install state machine: it decides, the daemon
 * (edge_daemon.h) does the I/O. No clock, no randomness, no files, no
 * network here: every call gets the time (struct edge_clock), jitter comes
 * from a PRNG seeded through the config, and every effect is an action the
 * caller performs (struct edge_actions). Tests drive it with made-up events.
 *
 * One release at a time goes through
 *
 *   manifest --verify--> rejected (final)          nothing downloaded
 *      | ok
 *   available -> downloading -> verifying -> [deferred] -> installing
 *      -> pending-reboot -> health check -> success | rolled-back (final)
 *   and failed (final) wherever the release cannot go on.
 *
 * Every state change is one status record (EDGE_ACT_STATUS); downloading
 * repeats while progress is made, at most every 10% or progress_ms.
 *
 * Decisions worth knowing:
 * - Verification uses the node's own keyring and policy: its hardware,
 *   min_seq = installed seq + 1 (the highest of the boot state's counter and
 *   the running image's seq), max_artifact_size = config, skew 300 s.
 *   A rejection is reported once per distinct envelope (the last
 *   EDGE_FSM_REJECT_MEMORY of them are remembered, also across restarts;
 *   the same manifest signed again counts as the same envelope);
 *   the envelope of the running image or of a release already finished is
 *   passed over silently.
 * - The busy check and the install window gate the install, not the
 *   download: writing the inactive slot disturbs nothing, and a node that
 *   waits for its window with the image in place installs as soon as it
 *   opens. An envelope whose window has already closed is failed with
 *   `expired` before anything is downloaded.
 * - The gateway's hold (PROTOCOL.md, "Ferry-Hold"): every manifest answer
 *   may tell the node not to install for some seconds (a rollout's
 *   maintenance window is closed, or the rollout halted); the gate then
 *   reports deferred and waits that long, or until an answer without a hold
 *   (edge_fsm_hold()). With await_hold, a node that restarts with an image
 *   ready waits for the gateway's first answer before it installs, so a hold
 *   is never forgotten across a restart.
 * - Constraints (PROTOCOL.md): outside [window_start, window_end) the node
 *   reports deferred and waits for the window; after window_end it fails
 *   with expired. Busy: deferred, asked again every busy_retry_ms (+-20%).
 *   max_deferral counts from the first busy answer for the release (kept
 *   across restarts); reaching it fails with `busy` when must_be_idle, and
 *   installs otherwise. A deferred record is sent when the reason changes,
 *   not on every retry.
 * - Download: one Block2 request at a time, block N at offset N * size,
 *   written at its offset, so duplicates and late answers are harmless
 *   (answers for any other offset are ignored). The first ETag is kept; a
 *   different one later means the artifact changed: start over (at most
 *   EDGE_FSM_MAX_RESTARTS times). A 5.03 waits its Max-Age plus jitter;
 *   timeouts, 4.04 and 5.xx back off exponentially (retry_min_ms ..
 *   retry_max_ms, jittered); other 4.xx fail with `protocol`. Retrying ends
 *   with `expired` once the manifest has expired. Blocks that arrive in
 *   order are hashed on the way; at the end a mismatch there fails the
 *   release at once, and edge_slots_finish() re-hashes the slot anyway.
 * - Every checkpoint_bytes the slot is synced and the job saved with the
 *   offset reached, the ETag and the image's digest, so a restart resumes.
 * - A newer release that arrives before the install starts replaces the
 *   one under way (reported failed, "superseded"); one that arrives during
 *   the install and trial waits for the next poll.
 * - Health check failed or could not run -> rollback -> rolled-back.
 *
 * Restart (edge_fsm_start()): the daemon runs the boot decision first, as a
 * bootloader would, and passes the state before and after it plus the saved
 * job. From those the FSM reports what the last run could not (a trial that
 * rolled back on its own, an install confirmed just before the crash) and
 * carries on: resumes the download, goes back to the gate, or health-checks
 * a trial boot. When nothing is under way it reports idle with the running
 * version, once.
 *
 * Performing actions: in order. A failure of STATUS or SAVE is the caller's
 * to log, and the rest of the batch still runs (a record or a checkpoint
 * lost costs a repeat, not the install). A failure of any other action
 * stops the batch there; the caller reports it with edge_fsm_failed().
 * GET_BLOCK, RUN_BUSY, RUN_HEALTH, REBOOT and TIMER are answered later by
 * their own call (edge_fsm_block() / edge_fsm_block_failed(),
 * edge_fsm_busy(), edge_fsm_health(), edge_fsm_booted(), edge_fsm_timer()),
 * never from inside the call that asked for them. */
#ifndef FERRY_EDGE_FSM_H
#define FERRY_EDGE_FSM_H

#include "edge_boot.h"
#include "ferry_err.h"
#include "ferry_keyring.h"
#include "ferry_manifest.h"
#include "ferry_status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EDGE_FSM_MAX_ACTIONS   16
#define EDGE_FSM_REJECT_MEMORY 8
#define EDGE_FSM_MAX_RESTARTS  3 /* ETag changes before giving up */
#define EDGE_FSM_CLOCK_SKEW    300
#define EDGE_FSM_ETAG_MAX      8
#define EDGE_FSM_SAVED_LEN     640 /* edge_fsm_saved_encode() output */

struct edge_clock {
    int64_t wall;     /* unix seconds: windows, expiry, record timestamps */
    uint64_t mono_ms; /* monotonic: progress throttling */
};

struct edge_fsm_config {
    const char *node_id;                 /* copied */
    const char *product;                 /* copied; the product line followed */
    const char *hw_model;                /* copied */
    const char *hw_revision;             /* copied; NULL or "" when the node has none */
    const struct ferry_keyring *keyring; /* borrowed, must outlive the FSM */
    uint64_t max_image_size;             /* bytes, >= 1 */
    uint32_t block_size;                 /* 16..1024, a power of two */
    unsigned trial_attempts;             /* 1..EDGE_BOOT_MAX_ATTEMPTS */
    bool has_busy_cmd;                   /* false: never busy */
    uint32_t busy_retry_ms;              /* >= 1 */
    uint64_t checkpoint_bytes;           /* >= block_size */
    uint32_t progress_ms;                /* downloading record at most this often */
    uint32_t retry_min_ms, retry_max_ms; /* backoff bounds, 1 <= min <= max */
    uint64_t seed;                       /* jitter PRNG */
    bool await_hold;                     /* install only after a first edge_fsm_hold() */
};

/* ---- What survives a restart (the daemon stores it atomically) ---------- */

enum edge_job_phase {
    EDGE_JOB_NONE = 0,
    EDGE_JOB_DOWNLOADING, /* begun in the inactive slot; `written` bytes durable */
    EDGE_JOB_READY,       /* verified in the inactive slot, waiting for the gate */
    EDGE_JOB_TRIAL,       /* install started: trial set (or about to be) */
    EDGE_JOB_DONE,        /* final record sent: `outcome` */
};

struct edge_job {
    enum edge_job_phase phase;
    uint8_t digest[FERRY_SHA256_LEN]; /* SHA-256 of the signed manifest bytes */
    char release_id[FERRY_NAME_MAX + 1];
    struct edge_image img;
    struct ferry_constraints constraints;
    int64_t expires_at;
    uint64_t written; /* DOWNLOADING: contiguous bytes synced to the slot */
    uint8_t etag[EDGE_FSM_ETAG_MAX];
    uint8_t etag_len;         /* 0: none seen yet */
    int64_t deferred_since;   /* wall time of the first busy answer, 0: none */
    enum ferry_state outcome; /* DONE: the final state */
};

struct edge_fsm_saved {
    struct edge_job job;
    /* Releases already reported without a job: SHA-256 of the signed
     * manifest bytes (of the envelope when it does not parse). */
    uint8_t rejected[EDGE_FSM_REJECT_MEMORY][FERRY_SHA256_LEN];
    uint8_t nrejected;   /* valid entries, <= EDGE_FSM_REJECT_MEMORY */
    uint8_t next_reject; /* ring position of the next entry */
};

/* Fixed-size little-endian record with a magic and a CRC-32. Decode:
 * FERRY_E_CORRUPT for anything that is not a record this code wrote. */
enum ferry_err edge_fsm_saved_encode(const struct edge_fsm_saved *s,
                                     uint8_t out[EDGE_FSM_SAVED_LEN],
                                     struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err edge_fsm_saved_decode(const uint8_t *buf, size_t len, struct edge_fsm_saved *out,
                                     struct ferry_diag *d) FERRY_MUST_CHECK;

/* ---- Actions ------------------------------------------------------------- */

enum edge_act_kind {
    EDGE_ACT_STATUS,     /* journal .status (complete but for seq) */
    EDGE_ACT_SAVE,       /* store edge_fsm_saved() */
    EDGE_ACT_BEGIN,      /* edge_slots_begin(.img) */
    EDGE_ACT_RESUME,     /* edge_slots_resume(.img, .off) */
    EDGE_ACT_WRITE,      /* edge_slots_write(.off, .data, .len) */
    EDGE_ACT_SYNC,       /* edge_slots_sync() */
    EDGE_ACT_FINISH,     /* edge_slots_finish() */
    EDGE_ACT_ABORT,      /* edge_slots_abort() */
    EDGE_ACT_TRIAL,      /* edge_slots_set_trial(.attempts) */
    EDGE_ACT_REBOOT,     /* edge_slots_boot(), then edge_fsm_booted() */
    EDGE_ACT_CONFIRM,    /* edge_slots_confirm(.slot) */
    EDGE_ACT_ROLLBACK,   /* edge_slots_rollback() */
    EDGE_ACT_GET_BLOCK,  /* GET artifact .img.sha256, Block2 of .len bytes at .off */
    EDGE_ACT_RUN_BUSY,   /* run the busy command, then edge_fsm_busy() */
    EDGE_ACT_RUN_HEALTH, /* run the health command for .img.version in .slot */
    EDGE_ACT_TIMER,      /* (re)arm the FSM's one timer: .delay_ms */
    EDGE_ACT_CANCEL_TIMER,
};

struct edge_action {
    enum edge_act_kind kind;
    struct ferry_status status;
    struct edge_image img;
    uint64_t off;
    size_t len;
    const uint8_t *data; /* WRITE: points into the edge_fsm_block() call's block */
    enum edge_slot slot;
    unsigned attempts;
    uint64_t delay_ms;
};

struct edge_actions {
    size_t n;
    struct edge_action v[EDGE_FSM_MAX_ACTIONS];
};

const char *edge_act_name(enum edge_act_kind kind); /* static, never NULL */

/* ---- The machine ---------------------------------------------------------- */

enum edge_phase {
    EDGE_PHASE_START,       /* before edge_fsm_start() */
    EDGE_PHASE_IDLE,        /* nothing under way */
    EDGE_PHASE_DOWNLOADING, /* a block asked for, or a retry timer */
    EDGE_PHASE_GATE,        /* image verified; window / busy check */
    EDGE_PHASE_REBOOTING,   /* trial set, waiting for edge_fsm_booted() */
    EDGE_PHASE_HEALTH,      /* health check running */
};

const char *edge_phase_name(enum edge_phase p); /* static, never NULL */

struct edge_fsm;

/* Checks the config (FERRY_E_INVALID_ARG naming the field). Free with
 * edge_fsm_free(). */
enum ferry_err edge_fsm_new(const struct edge_fsm_config *cfg, struct edge_fsm **out,
                            struct ferry_diag *d) FERRY_MUST_CHECK;
void edge_fsm_free(struct edge_fsm *f); /* NULL is fine */

enum edge_phase edge_fsm_phase(const struct edge_fsm *f);
/* What EDGE_ACT_SAVE stores; valid until the next call on f. */
const struct edge_fsm_saved *edge_fsm_saved(const struct edge_fsm *f);
/* The image the node runs now (valid false: unknown, a factory state). */
const struct edge_slot_info *edge_fsm_running(const struct edge_fsm *f);

/* What the boot decision at start saw and did. */
struct edge_fsm_boot {
    struct edge_boot_state before; /* as loaded */
    struct edge_boot_state after;  /* after edge_slots_boot() */
    enum edge_slot booted;
};

/* Every call below fills *out (cleared first) with the actions to perform.
 * Calls in the wrong phase, and answers nobody asked for any more (a stale
 * block, a timer that lost a race), produce no actions. */

/* The first call. saved is NULL when nothing was stored or it was corrupt. */
void edge_fsm_start(struct edge_fsm *f, const struct edge_clock *clk,
                    const struct edge_fsm_boot *boot, const struct edge_fsm_saved *saved,
                    struct edge_actions *out);

/* A signed envelope from the gateway (GET or Observe); env need only live
 * during the call. */
void edge_fsm_manifest(struct edge_fsm *f, const struct edge_clock *clk, const uint8_t *env,
                       size_t len, struct edge_actions *out);

/* A 2.05 answer to GET_BLOCK. One for a block already written (a late or
 * duplicated answer) is dropped; one for another block than asked counts as
 * a failed request (the caller, who matches tokens, should also pass an
 * answer to its request that names an earlier block as failed). Without a Block2
 * option (has_block false) the body is the whole artifact. etag_len 0: the
 * answer carried none. A Size2 other than the manifest's size fails the
 * release with size-mismatch at once. The WRITE action points into b->data: perform the
 * actions before that memory goes. */
struct edge_block {
    bool has_block;
    uint32_t num;
    unsigned szx; /* block size 16 << szx */
    bool more;
    const uint8_t *data;
    size_t len;
    const uint8_t *etag;
    size_t etag_len;
    bool has_size2; /* Size2: the gateway's idea of the artifact's length */
    uint64_t size2;
};
void edge_fsm_block(struct edge_fsm *f, const struct edge_clock *clk, const struct edge_block *b,
                    struct edge_actions *out);

/* Any other outcome of GET_BLOCK: code is the CoAP code as class * 100 +
 * detail (404, 503), or 0 when no answer came (timeout, reset, send
 * failure). max_age_s is meaningful when has_max_age. */
void edge_fsm_block_failed(struct edge_fsm *f, const struct edge_clock *clk, unsigned code,
                           bool has_max_age, uint32_t max_age_s, struct edge_actions *out);

/* The busy command's verdict (the daemon counts a command that cannot run
 * or times out as busy: never install when unsure). */
void edge_fsm_busy(struct edge_fsm *f, const struct edge_clock *clk, bool busy,
                   struct edge_actions *out);

/* The health command's verdict; why says what failed ("exit 3"). */
void edge_fsm_health(struct edge_fsm *f, const struct edge_clock *clk, bool healthy,
                     const char *why, struct edge_actions *out);

/* The slot the simulated reboot (EDGE_ACT_REBOOT) came up in. */
void edge_fsm_booted(struct edge_fsm *f, const struct edge_clock *clk, enum edge_slot slot,
                     struct edge_actions *out);

/* The gateway's hold from a manifest answer (0: none, or no option): do not
 * start installing for this many seconds. Call it for every answer. */
void edge_fsm_hold(struct edge_fsm *f, const struct edge_clock *clk, uint32_t seconds,
                   struct edge_actions *out);

/* The FSM's timer (EDGE_ACT_TIMER) fired. */
void edge_fsm_timer(struct edge_fsm *f, const struct edge_clock *clk, struct edge_actions *out);

/* An action of kind `kind` failed with err; msg (may be NULL) says why. */
void edge_fsm_failed(struct edge_fsm *f, const struct edge_clock *clk, enum edge_act_kind kind,
                     enum ferry_err err, const char *msg, struct edge_actions *out);

#endif
