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
 * - Verification uses the node's own trust and policy: its hardware,
 *   min_seq = installed seq + 1 (the highest of the boot state's counter and
 *   the running image's seq), at most max_seq_step above the installed seq,
 *   a lifetime (expires_at - issued_at) of at most max_lifetime (both from
 *   the root's policy when it sets them), max_artifact_size = config, skew
 *   300 s. With trust (ferry_trust.h) the keys are the root's release keys
 *   and the release must pass ferry_trust_verdict(): withdrawn is a
 *   rejection like the others; stale (no fresh timestamp, or one naming
 *   another release current) is no verdict on the release at all, so
 *   nothing is recorded or remembered: the node asks for metadata
 *   (EDGE_ACT_FETCH_META, at most every EDGE_FSM_META_RETRY_MS) and the
 *   release is judged again when the gateway offers it next. An unknown key
 *   also asks for metadata (the keys may have been rotated).
 * - Trust changes (edge_fsm_trust_changed()): a new root forgets the
 *   rejections remembered (new keys and limits may change them). A job not
 *   yet installing (downloading, or verified at the gate) whose release is
 *   now withdrawn, or whose signing key is now revoked or unknown, ends
 *   failed with that error (the download is aborted). An install that has
 *   begun (trial set, rebooting, health check) finishes on its own terms:
 *   a second reboot mid-trial would add risk, and a bad release is
 *   replaced by rolling forward. The gate checks the same before every
 *   install and, with a timestamp role, also waits (deferred) for a fresh
 *   timestamp naming the release current, failing with `expired` once the
 *   manifest expires. A download carries on meanwhile.
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
 * - Download: a window of Block2 requests, one block each, several in
 *   flight (ferry_blockwin.h: CoCoA's timer, an AIMD window, at most
 *   max_window); each GET_BLOCK carries a request id the answer must come
 *   back with (the daemon puts it in the CoAP token), so duplicated, late
 *   and reordered answers are told apart from the block asked for. Blocks
 *   land in any order, each written at its own offset (N * size). A change
 *   of ETag is only noted (the URI is the artifact's SHA-256, and some
 *   servers, libcoap's coap-server among them, issue a new ETag whenever
 *   they run their handler again); if the bytes then fail the hash (here
 *   or in edge_slots_finish()) after such a change, the download starts
 *   over (at most EDGE_FSM_MAX_RESTARTS times). A 5.03 waits its Max-Age
 *   plus jitter; 4.04 and 5.xx back off exponentially (retry_min_ms ..
 *   retry_max_ms, jittered, one step per wait); other 4.xx fail with
 *   `protocol`. An answer that is not the block asked for (no Block2, SZX
 *   7, another number, a larger size, a payload of the wrong length, a code
 *   that is no answer) is asked for again after a pause, and fails the
 *   release with `protocol`, naming what was wrong, after
 *   EDGE_FSM_MAX_BAD_ANSWERS in a row for one block; a smaller size at the
 *   offset asked for is followed (RFC 7959). Size2, or an end of the
 *   artifact, that disagrees with the manifest fails with `size-mismatch`.
 *   No answer: the window's timer asks again, backing off while the
 *   gateway is silent, for as long as the manifest is valid: every answer
 *   and every timer checks expiry and ends the download with `expired`.
 *   The same release offered again during the download cuts a backoff
 *   short. Blocks that arrive in order from offset 0 are hashed on the way;
 *   at the end a mismatch there fails the release at once, and
 *   edge_slots_finish() re-hashes the slot anyway.
 * - Every checkpoint_bytes received the slot is synced and the job saved
 *   with the first missing block, the bitmap of the blocks after it
 *   (ferry_blockwin.h: 256 of them, so the record has a fixed size), the ETag
 *   and the image's digest: a restart resumes at the first missing block
 *   and asks for none that was durable.
 * - A release whose manifest names nodes (`nodes`) and not this one is
 *   passed over without a record, as if the line had no release.
 * - A newer release that arrives before the install starts replaces the
 *   one under way (reported failed, "superseded"); one that arrives during
 *   the install and trial waits for the next poll.
 * - Health check failed or could not run -> rollback -> rolled-back.
 *
 * Restart (edge_fsm_start()): the daemon runs the boot step first
 * (inst_engine.h: the bootloader says which slot booted, Ferry's state
 * follows) and passes the state before and after it plus the saved job.
 * From those the FSM reports what the last run could not (a trial that
 * rolled back on its own: its attempts ran out, or the bootloader fell back
 * to the old slot; an install confirmed just before the crash) and carries
 * on: resumes the download, goes back to the gate, or health-checks a trial
 * boot. When nothing is under way it reports idle with the running version,
 * once.
 *
 * Rebooting (EDGE_ACT_REBOOT, after TRIAL armed the bootloader): on a real
 * device the daemon runs the reboot command and the process ends; the next
 * process's edge_fsm_start() carries on (health check, or the report of a
 * fallback). A simulated node reboots in process and answers with
 * edge_fsm_booted(). A reboot command that fails, like a TRIAL that fails,
 * reports the release failed and disarms the trial (ROLLBACK), so the next
 * boot, whenever it comes, is not an unannounced trial.
 *
 * Performing actions: in order. A failure of STATUS is the caller's to
 * log, and the rest of the batch still runs (a record lost costs a repeat,
 * not the install). A failure of any other action, SAVE included, stops
 * the batch there; the caller reports it with edge_fsm_action_failed(). A SAVE
 * that fails while a job is under way fails the job (`io`, "the job record
 * cannot be saved"): a job the node cannot persist does not go on as if it
 * could, so nothing more is written to the slot and no install starts.
 * GET_BLOCK, RUN_BUSY, RUN_HEALTH, REBOOT and TIMER are answered later by
 * their own call (edge_fsm_block(), edge_fsm_busy(), edge_fsm_health(),
 * edge_fsm_booted() or, for an update module's release, edge_fsm_installed(),
 * edge_fsm_timer()), never from inside the call that asked for them; a
 * GET_BLOCK that could not be sent is simply not answered (its deadline
 * asks again). */
#ifndef FERRY_EDGE_FSM_H
#define FERRY_EDGE_FSM_H

#include "edge_boot.h"
#include "ferry_blockwin.h"
#include "ferry_err.h"
#include "ferry_keyring.h"
#include "ferry_manifest.h"
#include "ferry_status.h"
#include "ferry_trust.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EDGE_FSM_MAX_ACTIONS     24
#define EDGE_FSM_BURST           8                   /* GET_BLOCKs in one batch at most */
#define EDGE_FSM_MAX_BAD_ANSWERS 4                   /* in a row for one block, then `protocol` */
#define EDGE_FSM_MAX_BLOCKS      (UINT64_C(1) << 20) /* Block2 NUM has 20 bits */
#define EDGE_FSM_REJECT_MEMORY   8
#define EDGE_FSM_MAX_RESTARTS    3 /* downloads started over after a hash failure */
#define EDGE_FSM_CLOCK_SKEW      300
#define EDGE_FSM_ETAG_MAX        8
#define EDGE_FSM_SAVED_LEN       640   /* edge_fsm_saved_encode() output */
#define EDGE_FSM_META_RETRY_MS   10000 /* least time between two EDGE_ACT_FETCH_META */

struct edge_clock {
    int64_t wall;     /* unix seconds: windows, expiry, record timestamps */
    uint64_t mono_ms; /* monotonic: progress throttling */
};

struct edge_fsm_config {
    const char *node_id;                 /* copied */
    const char *product;                 /* copied; the product line followed */
    const char *hw_model;                /* copied */
    const char *hw_revision;             /* copied; NULL or "" when the node has none */
    const struct ferry_keyring *keyring; /* borrowed, must outlive the FSM; unused with trust */
    const struct ferry_trust *trust;     /* borrowed, may be NULL (keyring alone); the caller
                                            calls edge_fsm_trust_changed() after changing it */
    uint64_t max_seq_step;               /* 0: no cap (the root's policy may set one) */
    int64_t max_lifetime;                /* seconds; 0: no cap (likewise) */
    uint64_t max_image_size;             /* bytes, >= 1 */
    uint32_t block_size;                 /* 16..1024, a power of two */
    unsigned trial_attempts;             /* 1..EDGE_BOOT_MAX_ATTEMPTS */
    bool has_busy_cmd;                   /* false: never busy */
    uint32_t busy_retry_ms;              /* >= 1 */
    uint64_t checkpoint_bytes;           /* >= block_size */
    uint32_t progress_ms;                /* downloading record at most this often */
    uint32_t retry_min_ms, retry_max_ms; /* backoff bounds, 1 <= min <= max */
    unsigned max_window;                 /* block requests out at most, 0..FERRY_BLOCKWIN_MAX;
                                            0: FERRY_BLOCKWIN_MAX */
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
    /* DOWNLOADING: bit i (LSB first) set when block written / have_unit + i
     * is synced too; have_unit 0: no bitmap (all zero). */
    uint8_t have[FERRY_BLOCKWIN_BITMAP_BYTES];
    uint16_t have_unit; /* block size of the bitmap, 16..1024 */
    uint8_t etag[EDGE_FSM_ETAG_MAX];
    uint8_t etag_len;            /* 0: none seen yet */
    int64_t deferred_since;      /* wall time of the first busy answer, 0: none */
    enum ferry_state outcome;    /* DONE: the final state */
    char kid[FERRY_KID_LEN + 1]; /* key that signed the release, "" if unknown */
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
    EDGE_ACT_REBOOT,     /* boot the trial slot: see "Rebooting" above */
    EDGE_ACT_CONFIRM,    /* edge_slots_confirm(.slot) */
    EDGE_ACT_ROLLBACK,   /* edge_slots_rollback() */
    EDGE_ACT_GET_BLOCK,  /* GET artifact .img.sha256, Block2 of .len bytes at .off,
                            request id .req (to come back with the answer) */
    EDGE_ACT_RUN_BUSY,   /* run the busy command, then edge_fsm_busy() */
    EDGE_ACT_RUN_HEALTH, /* run the health command for .img.version in .slot */
    EDGE_ACT_TIMER,      /* (re)arm the FSM's one timer: .delay_ms */
    EDGE_ACT_CANCEL_TIMER,
    EDGE_ACT_FETCH_META, /* ask the gateway for trust metadata now; .status.message says why */
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
    uint32_t req;
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
/* The download's window, for logs and benchmarks; valid while f lives. */
const struct ferry_blockwin *edge_fsm_window(const struct edge_fsm *f);

enum edge_fsm_module {
    EDGE_FSM_MODULE_NONE,        /* not a module's job, or nothing installed yet */
    EDGE_FSM_MODULE_TRIAL,       /* installed and rebooted as asked: health check */
    EDGE_FSM_MODULE_COMMITTED,   /* confirmed before the restart */
    EDGE_FSM_MODULE_ROLLED_BACK, /* rolled back (the restart cut the install short) */
};

/* What the boot step at start saw and did (inst_engine_start()). */
struct edge_fsm_boot {
    struct edge_boot_state before; /* as loaded */
    struct edge_boot_state after;  /* after the boot decision */
    enum edge_slot booted;         /* the slot running now */
    /* A trial was pending and the bootloader booted the old slot: the new
     * image never got as far as ferry-edge within its boot attempts. */
    bool fell_back;
    /* The saved job is an update module's (inst_module.h): where its
     * install stood at this start, and the highest seq a module committed
     * (a floor for new releases, like the boot state's counter). */
    enum edge_fsm_module module;
    uint64_t module_floor;
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

/* An answer to a GET_BLOCK, matched by .req (see the model above for what
 * each kind of answer does). Answers to requests that are done, or that
 * belong to an earlier download, produce no actions. code: class * 100 +
 * detail (205, 404, 503). Without a Block2 option (has_block false) the
 * body counts only as the whole of an artifact of at most one block.
 * etag_len 0: the answer carried none. The WRITE action points into
 * b->data: perform the actions before that memory goes. */
struct edge_block {
    uint32_t req; /* the GET_BLOCK's .req */
    unsigned code;
    bool has_max_age;
    uint32_t max_age_s;
    bool has_block;
    uint32_t num;
    unsigned szx; /* block size 16 << szx; 7 is reserved (BERT) */
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

/* The busy command's verdict (the daemon counts a command that cannot run
 * or times out as busy: never install when unsure). */
void edge_fsm_busy(struct edge_fsm *f, const struct edge_clock *clk, bool busy,
                   struct edge_actions *out);

/* The health command's verdict; why says what failed ("exit 3"). */
void edge_fsm_health(struct edge_fsm *f, const struct edge_clock *clk, bool healthy,
                     const char *why, struct edge_actions *out);

/* The slot a simulated reboot (EDGE_ACT_REBOOT) came up in. */
void edge_fsm_booted(struct edge_fsm *f, const struct edge_clock *clk, enum edge_slot slot,
                     struct edge_actions *out);

/* Instead of edge_fsm_booted() for a release installed in place by an
 * update module (TRIAL ran its install, REBOOT needed none or it is done):
 * the health check follows, with RUN_HEALTH's slot NONE, and the running
 * slot and image stay what they were (idle records keep the image's
 * version; the release's own records carry its version). */
void edge_fsm_installed(struct edge_fsm *f, const struct edge_clock *clk, struct edge_actions *out);
/* The gateway's hold from a manifest answer (0: none, or no option): do not
 * start installing for this many seconds. Call it for every answer. */
void edge_fsm_hold(struct edge_fsm *f, const struct edge_clock *clk, uint32_t seconds,
                   struct edge_actions *out);

/* The daemon's CoAP session to the gateway was given up after a silence and
 * a new one is up (edge_coap.h, "Silence"): while downloading, the block
 * requests that were out on the old one are sent again now, under new ids
 * and with fresh timers (ferry_blockwin_new_path()); answers to the old
 * ids are stale from here on. Nothing happens in other phases. */
void edge_fsm_new_session(struct edge_fsm *f, const struct edge_clock *clk,
                          struct edge_actions *out);

/* The FSM's timer (EDGE_ACT_TIMER) fired. */
void edge_fsm_timer(struct edge_fsm *f, const struct edge_clock *clk, struct edge_actions *out);

/* The trust (edge_fsm_config.trust) took a new root or timestamp. */
void edge_fsm_trust_changed(struct edge_fsm *f, const struct edge_clock *clk,
                            struct edge_actions *out);

/* An action of kind `kind` failed with err; msg (may be NULL) says why. */
void edge_fsm_action_failed(struct edge_fsm *f, const struct edge_clock *clk,
                            enum edge_act_kind kind, enum ferry_err err, const char *msg,
                            struct edge_actions *out);

#endif
