#include "edge_fsm.h"

#include "inst_trial.h"

#include "ferry_blockwin.h"
#include "ferry_backoff.h"
#include "ferry_bytes.h"
#include "ferry_crc32.h"
#include "ferry_envelope.h"
#include "ferry_random.h"
#include "ferry_sha256.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SZX        6 /* 1024-byte blocks: the largest plain CoAP Block2 size */
#define JITTER_PCT     20
#define WINDOW_SPREAD  60000 /* ms: nodes waiting for a window do not all wake at once */
#define MAX_AGE_SPREAD 1000  /* ms added at least on top of a 5.03's Max-Age */
#define META_WAIT_MS   60000 /* a gate waiting for metadata looks again this often */

enum defer_reason {
    DEFER_NONE,
    DEFER_WINDOW,
    DEFER_BUSY,
    DEFER_META,      /* waiting for a fresh timestamp naming the release current */
    DEFER_HOLD,      /* the gateway's hold */
    DEFER_HOLD_WAIT, /* for the gateway's first answer (no record) */
};

struct edge_fsm {
    struct edge_fsm_config cfg;
    char node_id[FERRY_ID_MAX + 1];
    char product[FERRY_ID_MAX + 1];
    char hw_model[FERRY_ID_MAX + 1];
    char hw_revision[FERRY_REVISION_MAX + 1];
    enum edge_phase phase;
    struct edge_fsm_saved saved;
    struct ferry_prng rng; /* timers' jitter: reproducible in tests */

    /* The image running now, and the one before a trial boot. */
    struct edge_slot_info running;
    enum edge_slot running_slot;
    struct edge_slot_info prev_running;
    enum edge_slot prev_slot;
    uint64_t floor_seq; /* installed seq: new releases need seq above it */
    uint64_t prev_floor;

    /* Download. */
    struct ferry_blockwin win;
    uint32_t blk; /* block size of the download under way */
    bool hashing; /* blocks so far came in order from offset 0 */
    uint64_t hashed;
    struct ferry_sha256 hash;
    uint64_t progress_bytes, progress_ms;
    uint64_t ckpt_received;     /* blocks in at the last checkpoint */
    uint64_t timer_at;          /* mono ms the download's timer is armed for; 0: none */
    struct ferry_backoff retry; /* waits after 4.04 and 5.xx */
    unsigned restarts;          /* downloads started over after a failed hash */
    bool etag_moved;            /* the gateway's ETag changed during this download */

    /* Trust. */
    uint64_t trust_version; /* the root version rejections were judged under */
    bool meta_asked;
    uint64_t meta_asked_ms;

    /* Gate and trial. */
    int64_t hold_until; /* wall time; 0: no hold */
    bool hold_known;    /* a manifest answer said what the hold is */
    enum defer_reason deferred;
    bool busy_pending;
    enum edge_slot trial_slot;
};

/* ---- small helpers -------------------------------------------------------- */

static uint64_t rnd(struct edge_fsm *f)
{
    return ferry_prng_next(&f->rng);
}

/* Uniform in [0, n]. */
static uint64_t rnd_upto(struct edge_fsm *f, uint64_t n)
{
    return n == UINT64_MAX ? rnd(f) : rnd(f) % (n + 1);
}

static uint64_t jittered(struct edge_fsm *f, uint64_t base)
{
    return ferry_jitter(base, JITTER_PCT, rnd(f));
}

static struct edge_action *push(struct edge_actions *out, enum edge_act_kind kind)
{
    /* Every path emits a bounded batch well below the limit; running past it
     * is a bug in this file, not a condition to handle. */
    if (out->n >= EDGE_FSM_MAX_ACTIONS)
        abort();
    struct edge_action *a = &out->v[out->n++];
    memset(a, 0, sizeof(*a));
    a->kind = kind;
    a->slot = EDGE_SLOT_NONE;
    return a;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* Cuts at a UTF-8 boundary so a long diagnostic stays a valid record. */
static void copy_message(char *dst, const char *src)
{
    size_t n = strlen(src);
    if (n > FERRY_STATUS_MESSAGE_MAX) {
        n = FERRY_STATUS_MESSAGE_MAX;
        while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static struct ferry_status *status_base(struct edge_fsm *f, const struct edge_clock *clk,
                                        struct edge_actions *out, enum ferry_state state)
{
    struct edge_action *a = push(out, EDGE_ACT_STATUS);
    struct ferry_status *st = &a->status;
    copy_str(st->node, sizeof(st->node), f->node_id);
    st->state = state;
    st->error = FERRY_OK;
    st->ts = clk->wall;
    return st;
}

/* A record about the current job. */
static void FERRY_PRINTF(7, 8)
    job_status(struct edge_fsm *f, const struct edge_clock *clk, struct edge_actions *out,
               enum ferry_state state, uint64_t bytes, enum ferry_err err, const char *fmt, ...)
{
    const struct edge_job *job = &f->saved.job;
    struct ferry_status *st = status_base(f, clk, out, state);
    copy_str(st->release_id, sizeof(st->release_id), job->release_id);
    copy_str(st->version, sizeof(st->version), job->img.version);
    st->bytes = bytes;
    st->total = job->img.size;
    st->error = err;
    if (fmt) {
        char msg[FERRY_DIAG_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        copy_message(st->message, msg);
    }
}

static void save(struct edge_actions *out)
{
    push(out, EDGE_ACT_SAVE);
}

static void timer(struct edge_actions *out, uint64_t delay_ms)
{
    push(out, EDGE_ACT_TIMER)->delay_ms = delay_ms;
}

/* ---- trust ----------------------------------------------------------------- */

static const struct ferry_keyring *release_keys(const struct edge_fsm *f)
{
    return f->cfg.trust ? ferry_trust_release_keys(f->cfg.trust) : f->cfg.keyring;
}

static void limits(const struct edge_fsm *f, struct ferry_trust_limits *out)
{
    struct ferry_trust_limits local = {.max_seq_step = f->cfg.max_seq_step,
                                       .max_manifest_lifetime = f->cfg.max_lifetime};
    if (f->cfg.trust)
        ferry_trust_limits(f->cfg.trust, &local, out);
    else
        *out = local;
}

/* Asks the gateway for trust metadata, at most every EDGE_FSM_META_RETRY_MS. */
static void ask_meta(struct edge_fsm *f, const struct edge_clock *clk, struct edge_actions *out,
                     const char *why)
{
    if (f->meta_asked && clk->mono_ms - f->meta_asked_ms < EDGE_FSM_META_RETRY_MS)
        return;
    f->meta_asked = true;
    f->meta_asked_ms = clk->mono_ms;
    copy_message(push(out, EDGE_ACT_FETCH_META)->status.message, why);
}

/* What the trust says now about the job's release: its signing key still
 * trusted, and (with a timestamp role) the verdict. */
static enum ferry_err job_trust(const struct edge_fsm *f, const struct edge_clock *clk,
                                struct ferry_diag *d)
{
    const struct edge_job *job = &f->saved.job;
    if (job->kid[0]) {
        enum ferry_err err = ferry_keyring_lookup(release_keys(f), job->kid);
        if (err != FERRY_OK)
            return ferry_fail(d, err, "release %s: its signing key %s is %s now", job->release_id,
                              job->kid,
                              err == FERRY_E_REVOKED_KEY ? "revoked" : "no longer trusted");
    }
    if (!f->cfg.trust)
        return FERRY_OK;
    return ferry_trust_verdict(f->cfg.trust, f->product, job->release_id, job->digest, clk->wall,
                               d);
}

static bool same_image(const struct edge_image *a, const struct edge_image *b)
{
    return a->seq == b->seq && a->size == b->size &&
           memcmp(a->sha256, b->sha256, FERRY_SHA256_LEN) == 0;
}

static bool manifest_is(const struct ferry_manifest *m, const struct edge_image *img)
{
    return m->seq == img->seq && m->size == img->size &&
           memcmp(m->sha256, img->sha256, FERRY_SHA256_LEN) == 0;
}

static bool job_active(const struct edge_fsm *f)
{
    return f->phase == EDGE_PHASE_DOWNLOADING || f->phase == EDGE_PHASE_GATE;
}

static void stop_hashing(struct edge_fsm *f)
{
    if (f->hashing) {
        uint8_t discard[FERRY_SHA256_LEN];
        ferry_sha256_final(&f->hash, discard);
        f->hashing = false;
    }
}

static uint64_t floor_of(const struct edge_boot_state *st)
{
    uint64_t floor = st->rollback_seq;
    const struct edge_slot_info *run = &st->slot[st->active];
    if (run->valid && run->img.seq > floor)
        floor = run->img.seq;
    return floor;
}

/* Bytes of the artifact in so far (the last block may be short). */
static uint64_t bytes_in(const struct edge_fsm *f)
{
    uint64_t b = ferry_blockwin_received(&f->win) * f->blk;
    return b < f->saved.job.img.size ? b : f->saved.job.img.size;
}

/* Ends the job with its final record; the node is idle again. */
static void FERRY_PRINTF(6, 7)
    finish_job(struct edge_fsm *f, const struct edge_clock *clk, struct edge_actions *out,
               enum ferry_state outcome, enum ferry_err err, const char *fmt, ...)
{
    char msg[FERRY_DIAG_MAX] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
    }
    struct edge_job *job = &f->saved.job;
    uint64_t bytes = outcome == FERRY_STATE_FAILED ? bytes_in(f) : job->img.size;
    if (bytes > job->img.size)
        bytes = job->img.size;
    job_status(f, clk, out, outcome, bytes, err, "%s", msg);
    job->phase = EDGE_JOB_DONE;
    job->outcome = outcome;
    save(out);
    stop_hashing(f);
    if (f->phase == EDGE_PHASE_DOWNLOADING || f->phase == EDGE_PHASE_GATE)
        push(out, EDGE_ACT_CANCEL_TIMER);
    f->phase = EDGE_PHASE_IDLE;
    f->timer_at = 0;
    f->busy_pending = false;
    f->deferred = DEFER_NONE;
}

static void fail_download(struct edge_fsm *f, const struct edge_clock *clk,
                          struct edge_actions *out, enum ferry_err err, const char *msg)
{
    push(out, EDGE_ACT_ABORT);
    finish_job(f, clk, out, FERRY_STATE_FAILED, err, "%s", msg);
}

static void idle_status(struct edge_fsm *f, const struct edge_clock *clk, struct edge_actions *out)
{
    struct ferry_status *st = status_base(f, clk, out, FERRY_STATE_IDLE);
    if (f->running.valid)
        copy_str(st->version, sizeof(st->version), f->running.img.version);
}

/* ---- download ------------------------------------------------------------- */

static uint64_t blocks_of(uint64_t size, uint32_t blk)
{
    return (size + blk - 1) / blk;
}

/* After every download event: sends what the window lets go, then makes
 * sure the one timer fires by the window's next deadline. The TIMER comes
 * before the requests, so a request that cannot be sent (which stops the
 * batch) leaves the timer armed: its deadline then asks again. */
static void plan(struct edge_fsm *f, const struct edge_clock *clk, struct edge_actions *out)
{
    uint64_t now = clk->mono_ms;
    struct ferry_blockwin_send s[EDGE_FSM_BURST];
    size_t n = 0;
    while (n < EDGE_FSM_BURST && ferry_blockwin_next(&f->win, now, &s[n]))
        n++;
    uint64_t due = ferry_blockwin_due(&f->win, now);
    if (due == FERRY_BLOCKWIN_NEVER)                /* cannot happen while blocks are missing; */
        due = now + ferry_blockwin_rto_ms(&f->win); /* a spare wake-up beats a stall */
    if (!f->timer_at || due < f->timer_at) {
        timer(out, due > now ? due - now : 0);
        f->timer_at = due > now ? due : now;
    }
    for (size_t i = 0; i < n; i++) {
        struct edge_action *a = push(out, EDGE_ACT_GET_BLOCK);
        a->img = f->saved.job.img;
        a->off = s[i].block * f->blk;
        a->len = f->blk;
        a->req = s[i].req;
    }
}

static void enter_gate(struct edge_fsm *f, const struct edge_clock *clk, struct edge_actions *out);
static bool start_over_after_hash(struct edge_fsm *f, const struct edge_clock *clk,
                                  struct edge_actions *out);

static void download_done(struct edge_fsm *f, const struct edge_clock *clk,
                          struct edge_actions *out)
{
    struct edge_job *job = &f->saved.job;
    if (f->timer_at) {
        push(out, EDGE_ACT_CANCEL_TIMER);
        f->timer_at = 0;
    }
    if (f->progress_bytes != job->img.size)
        job_status(f, clk, out, FERRY_STATE_DOWNLOADING, job->img.size, FERRY_OK, NULL);
    f->progress_bytes = job->img.size;
    if (f->hashing && f->hashed == job->img.size) {
        uint8_t digest[FERRY_SHA256_LEN];
        ferry_sha256_final(&f->hash, digest);
        f->hashing = false;
        if (memcmp(digest, job->img.sha256, FERRY_SHA256_LEN) != 0) {
            if (!start_over_after_hash(f, clk, out))
                fail_download(
                    f, clk, out, FERRY_E_HASH_MISMATCH,
                    "artifact: SHA-256 of the downloaded bytes differs from the manifest");
            return;
        }
    }
    stop_hashing(f);
    job_status(f, clk, out, FERRY_STATE_VERIFYING, job->img.size, FERRY_OK, NULL);
    push(out, EDGE_ACT_FINISH);
    job->phase = EDGE_JOB_READY;
    job->written = job->img.size;
    memset(job->have, 0, sizeof(job->have));
    job->have_unit = 0;
    save(out);
    enter_gate(f, clk, out);
}

/* From offset 0 into an erased slot (begin), or from the saved checkpoint
 * into the slot as the last run left it (resume): the first missing block
 * and the blocks after it that the checkpoint lists. */
static void start_download(struct edge_fsm *f, const struct edge_clock *clk,
                           struct edge_actions *out, bool begin, const char *why)
{
    struct edge_job *job = &f->saved.job;
    if (begin) {
        job->written = 0;
        job->etag_len = 0;
        memset(job->have, 0, sizeof(job->have));
        job->have_unit = 0;
        save(out);
        push(out, EDGE_ACT_BEGIN)->img = job->img;
        f->blk = f->cfg.block_size;
    } else {
        /* A checkpoint's bitmap counts blocks of the size it was made with
         * (the gateway may have picked a smaller one than configured). */
        f->blk = job->have_unit ? job->have_unit : f->cfg.block_size;
        job->written -= job->written % f->blk;
        struct edge_action *a = push(out, EDGE_ACT_RESUME);
        a->img = job->img;
        a->off = job->written;
    }
    f->phase = EDGE_PHASE_DOWNLOADING;
    uint64_t nblocks = blocks_of(job->img.size, f->blk);
    if (nblocks > EDGE_FSM_MAX_BLOCKS) {
        char msg[FERRY_DIAG_MAX];
        snprintf(msg, sizeof(msg),
                 "artifact: %" PRIu64 " bytes need more than 2^20 blocks of %" PRIu32
                 " bytes (Block2 numbers have 20 bits): raise --block-size",
                 job->img.size, f->blk);
        fail_download(f, clk, out, FERRY_E_ARTIFACT_TOO_LARGE, msg);
        return;
    }
    ferry_blockwin_begin(&f->win, nblocks, job->written / f->blk,
                         !begin && job->have_unit ? job->have : NULL);
    stop_hashing(f);
    f->hashing = ferry_blockwin_received(&f->win) == 0;
    f->hashed = 0;
    if (f->hashing)
        ferry_sha256_init(&f->hash);
    f->progress_bytes = bytes_in(f);
    f->progress_ms = clk->mono_ms;
    f->ckpt_received = ferry_blockwin_received(&f->win);
    f->timer_at = 0;
    f->etag_moved = false;
    ferry_backoff_reset(&f->retry);
    job_status(f, clk, out, FERRY_STATE_DOWNLOADING, f->progress_bytes, FERRY_OK, why ? "%s" : NULL,
               why);
    if (ferry_blockwin_done(&f->win))
        download_done(f, clk, out);
    else
        plan(f, clk, out);
}

static uint64_t backoff_ms(struct edge_fsm *f)
{
    return ferry_backoff_next(&f->retry, (uint32_t)(rnd(f) >> 32));
}

static bool job_expired(const struct edge_fsm *f, const struct edge_clock *clk)
{
    return clk->wall >= f->saved.job.expires_at;
}

static void fail_expired(struct edge_fsm *f, const struct edge_clock *clk, struct edge_actions *out)
{
    fail_download(f, clk, out, FERRY_E_EXPIRED, "manifest: expired before the download completed");
}

/* Notes the answer's ETag against the one kept. A change is only a hint:
 * the artifact's URI is its SHA-256, so the bytes cannot change without
 * the final hash failing, and some servers (libcoap's coap-server) issue
 * a new ETag whenever their handler runs again, a duplicated request for
 * block 0 being enough. The download goes on; if its bytes then fail the
 * hash, it starts over (start_over_after_hash()). */
static void note_etag(struct edge_fsm *f, const struct edge_block *b)
{
    struct edge_job *job = &f->saved.job;
    if (b->etag_len == 0 || b->etag_len > EDGE_FSM_ETAG_MAX)
        return; /* libcoap omits it after dropping a transfer's state */
    if (job->etag_len == b->etag_len && memcmp(job->etag, b->etag, b->etag_len) == 0)
        return;
    if (job->etag_len)
        f->etag_moved = true;
    memcpy(job->etag, b->etag, b->etag_len);
    job->etag_len = (uint8_t)b->etag_len;
}

/* The downloaded bytes failed the hash. If the gateway's ETag changed
 * meanwhile, its artifact may have been replaced (a corrupt cache file
 * fetched again): start over, at most EDGE_FSM_MAX_RESTARTS times. False
 * when that does not apply and the release fails. */
static bool start_over_after_hash(struct edge_fsm *f, const struct edge_clock *clk,
                                  struct edge_actions *out)
{
    if (!f->etag_moved || f->restarts >= EDGE_FSM_MAX_RESTARTS)
        return false;
    f->restarts++;
    f->etag_moved = false;
    f->saved.job.phase = EDGE_JOB_DOWNLOADING;
    f->busy_pending = false;
    f->deferred = DEFER_NONE;
    f->trial_slot = EDGE_SLOT_NONE;
    start_download(f, clk, out, true,
                   "artifact changed on the gateway (new ETag) and its bytes do not hash: "
                   "starting over");
    return true;
}

static void maybe_progress(struct edge_fsm *f, const struct edge_clock *clk,
                           struct edge_actions *out)
{
    uint64_t total = f->saved.job.img.size;
    uint64_t step = total / 10 ? total / 10 : 1;
    uint64_t now_bytes = bytes_in(f);
    if (now_bytes - f->progress_bytes < step && clk->mono_ms - f->progress_ms < f->cfg.progress_ms)
        return;
    job_status(f, clk, out, FERRY_STATE_DOWNLOADING, now_bytes, FERRY_OK, NULL);
    f->progress_bytes = now_bytes;
    f->progress_ms = clk->mono_ms;
}

/* Every checkpoint_bytes that came in: the slot synced, then the first
 * missing block and the bitmap after it saved, all of it durable. */
static void maybe_checkpoint(struct edge_fsm *f, struct edge_actions *out)
{
    uint64_t got = ferry_blockwin_received(&f->win);
    if ((got - f->ckpt_received) * f->blk < f->cfg.checkpoint_bytes)
        return;
    struct edge_job *job = &f->saved.job;
    push(out, EDGE_ACT_SYNC);
    job->written = ferry_blockwin_base(&f->win) * f->blk;
    ferry_blockwin_bitmap(&f->win, job->have);
    job->have_unit = (uint16_t)f->blk;
    save(out);
    f->ckpt_received = got;
}

/* An answer that is not the block asked for: asked for again after a pause,
 * and a clear failure once one block got EDGE_FSM_MAX_BAD_ANSWERS of them. */
static void FERRY_PRINTF(5, 6)
    bad_answer(struct edge_fsm *f, const struct edge_clock *clk, struct edge_actions *out,
               uint32_t req, const char *fmt, ...)
{
    unsigned n = ferry_blockwin_retry(&f->win, req, clk->mono_ms);
    if (n >= EDGE_FSM_MAX_BAD_ANSWERS) {
        char what[FERRY_DIAG_MAX / 2], msg[FERRY_DIAG_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        snprintf(msg, sizeof(msg), "artifact: %s (%u answers in a row)", what, n);
        fail_download(f, clk, out, FERRY_E_PROTOCOL, msg);
        return;
    }
    plan(f, clk, out);
}

/* Any answer but a 2.05. */
static void answer_code(struct edge_fsm *f, const struct edge_clock *clk,
                        const struct edge_block *b, uint64_t off, struct edge_actions *out)
{
    uint64_t now = clk->mono_ms;
    unsigned code = b->code;
    if (code == 503 && b->has_max_age) {
        uint64_t wait = (uint64_t)b->max_age_s * 1000;
        uint64_t spread = wait / 10 > MAX_AGE_SPREAD ? wait / 10 : MAX_AGE_SPREAD;
        ferry_blockwin_hold(&f->win, b->req, now, now + wait + rnd_upto(f, spread), false);
    } else if (code == 404 || (code >= 500 && code < 600)) {
        /* One backoff step per wait, not per answer in the window. */
        uint64_t until = ferry_blockwin_holding(&f->win, now) ? 0 : now + backoff_ms(f);
        ferry_blockwin_hold(&f->win, b->req, now, until, true);
    } else if (code >= 400 && code < 500) {
        char msg[FERRY_DIAG_MAX];
        snprintf(msg, sizeof(msg),
                 "artifact: the gateway answered %u.%02u for the block at %" PRIu64, code / 100,
                 code % 100, off);
        fail_download(f, clk, out, FERRY_E_PROTOCOL, msg);
        return;
    } else {
        bad_answer(f, clk, out, b->req, "the gateway answered %u.%02u for the block at %" PRIu64,
                   code / 100, code % 100, off);
        return;
    }
    plan(f, clk, out);
}

static unsigned log2_of(uint32_t v)
{
    unsigned n = 0;
    while (v > 1) {
        v >>= 1;
        n++;
    }
    return n;
}

void edge_fsm_block(struct edge_fsm *f, const struct edge_clock *clk, const struct edge_block *b,
                    struct edge_actions *out)
{
    out->n = 0;
    uint64_t block;
    if (f->phase != EDGE_PHASE_DOWNLOADING || !ferry_blockwin_lookup(&f->win, b->req, &block))
        return; /* a duplicate, a late answer, or one of an earlier download */
    if (job_expired(f, clk)) {
        fail_expired(f, clk, out);
        return;
    }
    struct edge_job *job = &f->saved.job;
    uint64_t total = job->img.size;
    uint64_t asked = block * f->blk;
    if (b->code != 205) {
        answer_code(f, clk, b, asked, out);
        return;
    }
    if (b->has_size2 && b->size2 != total) {
        fail_download(f, clk, out, FERRY_E_SIZE_MISMATCH,
                      "artifact: the gateway's Size2 differs from the manifest's size");
        return;
    }
    uint32_t size = f->blk;
    bool more = false;
    if (!b->has_block) {
        /* A body without Block2 is the whole artifact, or not what was asked. */
        if (asked != 0 || b->len != total || total > f->blk) {
            bad_answer(f, clk, out, b->req,
                       "a 2.05 without a Block2 option for the block at %" PRIu64, asked);
            return;
        }
    } else {
        if (b->szx > MAX_SZX) {
            bad_answer(f, clk, out, b->req, "Block2 with SZX 7 (BERT is not for UDP)");
            return;
        }
        size = UINT32_C(16) << b->szx;
        if (size > f->blk) {
            bad_answer(f, clk, out, b->req,
                       "blocks of %" PRIu32 " bytes where %" PRIu32 " were asked for", size,
                       f->blk);
            return;
        }
        if ((uint64_t)b->num * size != asked) {
            bad_answer(f, clk, out, b->req,
                       "block %" PRIu32 " of %" PRIu32 " bytes where the block at %" PRIu64
                       " was asked for",
                       b->num, size, asked);
            return;
        }
        more = b->more;
    }
    note_etag(f, b);
    uint64_t off = asked;
    if (off + b->len > total || (more && off + b->len == total)) {
        fail_download(f, clk, out, FERRY_E_SIZE_MISMATCH,
                      "artifact: the gateway sends more bytes than the manifest's size");
        return;
    }
    if (!more && off + b->len != total) {
        fail_download(f, clk, out, FERRY_E_SIZE_MISMATCH,
                      "artifact: the gateway's artifact ends before the manifest's size");
        return;
    }
    if (b->len == 0 || (more && b->len != size)) {
        bad_answer(f, clk, out, b->req,
                   "a payload of %zu bytes for a block of %" PRIu32 " at %" PRIu64, b->len, size,
                   off);
        return;
    }
    if (size < f->blk) {
        /* RFC 7959: the server may pick a smaller size; follow it from
         * here on (the offset is the one asked for). */
        ferry_blockwin_split(&f->win, log2_of(f->blk / size), blocks_of(total, size));
        f->blk = size;
    }
    struct edge_action *w = push(out, EDGE_ACT_WRITE);
    w->off = off;
    w->data = b->data;
    w->len = b->len;
    if (f->hashing && f->hashed == off) {
        ferry_sha256_update(&f->hash, b->data, b->len);
        f->hashed += b->len;
    } else {
        stop_hashing(f); /* out of order: edge_slots_finish()'s hash decides */
    }
    ferry_blockwin_got(&f->win, b->req, clk->mono_ms);
    ferry_backoff_reset(&f->retry);
    if (ferry_blockwin_done(&f->win)) {
        download_done(f, clk, out);
        return;
    }
    maybe_progress(f, clk, out);
    maybe_checkpoint(f, out);
    plan(f, clk, out);
}

/* The release was offered again while it downloads: whatever waits on our
 * own backoff may go now. */
static void offered_again(struct edge_fsm *f, const struct edge_clock *clk,
                          struct edge_actions *out)
{
    if (job_expired(f, clk)) {
        fail_expired(f, clk, out);
        return;
    }
    ferry_blockwin_kick(&f->win, clk->mono_ms);
    plan(f, clk, out);
}

/* ---- gate, install, trial ------------------------------------------------- */

static void defer(struct edge_fsm *f, const struct edge_clock *clk, struct edge_actions *out,
                  enum defer_reason why, const char *msg)
{
    if (f->deferred != why)
        job_status(f, clk, out, FERRY_STATE_DEFERRED, f->saved.job.img.size, FERRY_OK, "%s", msg);
    f->deferred = why;
}

static void install(struct edge_fsm *f, const struct edge_clock *clk, struct edge_actions *out,
                    const char *why)
{
    struct edge_job *job = &f->saved.job;
    uint64_t size = job->img.size;
    job_status(f, clk, out, FERRY_STATE_INSTALLING, size, FERRY_OK, why ? "%s" : NULL, why);
    job->phase = EDGE_JOB_TRIAL;
    save(out);
    push(out, EDGE_ACT_TRIAL)->attempts = f->cfg.trial_attempts;
    job_status(f, clk, out, FERRY_STATE_PENDING_REBOOT, size, FERRY_OK, NULL);
    push(out, EDGE_ACT_REBOOT);
    f->trial_slot = edge_slot_other(f->running_slot);
    f->phase = EDGE_PHASE_REBOOTING;
    f->deferred = DEFER_NONE;
}

/* Trust first (a withdrawal or a revoked key ends the job; stale metadata
 * waits for fresh), then the window (it does not depend on the device),
 * then the busy check. */
static void gate_check(struct edge_fsm *f, const struct edge_clock *clk, struct edge_actions *out)
{
    const struct ferry_constraints *c = &f->saved.job.constraints;
    struct ferry_diag d = {{0}};
    enum ferry_err trust = job_trust(f, clk, &d);
    if (trust == FERRY_E_STALE && job_expired(f, clk)) {
        finish_job(f, clk, out, FERRY_STATE_FAILED, FERRY_E_EXPIRED,
                   "manifest: expired while waiting for fresh trust metadata (%s)", d.msg);
        return;
    }
    if (trust == FERRY_E_STALE) {
        char msg[FERRY_DIAG_MAX];
        snprintf(msg, sizeof(msg), "waiting for fresh trust metadata: %s", d.msg);
        defer(f, clk, out, DEFER_META, msg);
        ask_meta(f, clk, out, msg);
        timer(out, jittered(f, META_WAIT_MS));
        return;
    }
    if (trust != FERRY_OK) {
        finish_job(f, clk, out, FERRY_STATE_FAILED, trust, "%s", d.msg);
        return;
    }
    if (c->window_end && clk->wall >= c->window_end) {
        finish_job(f, clk, out, FERRY_STATE_FAILED, FERRY_E_EXPIRED,
                   "install window closed at %" PRId64, c->window_end);
        return;
    }
    if (c->window_start && clk->wall < c->window_start) {
        char msg[FERRY_DIAG_MAX];
        snprintf(msg, sizeof(msg), "outside the install window: it opens at %" PRId64,
                 c->window_start);
        defer(f, clk, out, DEFER_WINDOW, msg);
        uint64_t wait = (uint64_t)(c->window_start - clk->wall) * 1000;
        timer(out, wait + rnd_upto(f, WINDOW_SPREAD));
        return;
    }
    if (f->cfg.await_hold && !f->hold_known) {
        f->deferred = DEFER_HOLD_WAIT; /* edge_fsm_hold() looks again */
        return;
    }
    if (f->hold_until > clk->wall) {
        char msg[FERRY_DIAG_MAX];
        snprintf(msg, sizeof(msg),
                 "the gateway holds the install for %" PRId64 " s (a rollout's maintenance "
                 "window, or a halted rollout)",
                 f->hold_until - clk->wall);
        defer(f, clk, out, DEFER_HOLD, msg);
        timer(out, (uint64_t)(f->hold_until - clk->wall) * 1000 + rnd_upto(f, WINDOW_SPREAD));
        return;
    }
    if (!f->cfg.has_busy_cmd) {
        install(f, clk, out, NULL);
        return;
    }
    f->busy_pending = true;
    push(out, EDGE_ACT_RUN_BUSY);
}

static void enter_gate(struct edge_fsm *f, const struct edge_clock *clk, struct edge_actions *out)
{
    f->phase = EDGE_PHASE_GATE;
    f->deferred = DEFER_NONE;
    f->busy_pending = false;
    gate_check(f, clk, out);
}

void edge_fsm_busy(struct edge_fsm *f, const struct edge_clock *clk, bool busy,
                   struct edge_actions *out)
{
    out->n = 0;
    if (f->phase != EDGE_PHASE_GATE || !f->busy_pending)
        return;
    f->busy_pending = false;
    if (!busy) {
        install(f, clk, out, NULL);
        return;
    }
    struct edge_job *job = &f->saved.job;
    const struct ferry_constraints *c = &job->constraints;
    if (!job->deferred_since) {
        job->deferred_since = clk->wall;
        save(out);
    }
    if (c->max_deferral && clk->wall - job->deferred_since >= c->max_deferral) {
        if (c->must_be_idle) {
            finish_job(f, clk, out, FERRY_STATE_FAILED, FERRY_E_BUSY,
                       "device still busy after the longest deferral (%" PRId64 " s)",
                       c->max_deferral);
        } else {
            char msg[FERRY_DIAG_MAX];
            snprintf(msg, sizeof(msg),
                     "installing while busy: deferred for the longest allowed (%" PRId64 " s)",
                     c->max_deferral);
            install(f, clk, out, msg);
        }
        return;
    }
    defer(f, clk, out, DEFER_BUSY, "device is busy");
    timer(out, jittered(f, f->cfg.busy_retry_ms));
}

void edge_fsm_booted(struct edge_fsm *f, const struct edge_clock *clk, enum edge_slot slot,
                     struct edge_actions *out)
{
    out->n = 0;
    if (f->phase != EDGE_PHASE_REBOOTING)
        return;
    if (slot != f->trial_slot) {
        finish_job(f, clk, out, FERRY_STATE_ROLLED_BACK, FERRY_OK,
                   "the boot decision did not try slot %s", edge_slot_name(f->trial_slot));
        return;
    }
    f->prev_running = f->running;
    f->prev_slot = f->running_slot;
    f->running.valid = true;
    f->running.img = f->saved.job.img;
    f->running_slot = slot;
    f->phase = EDGE_PHASE_HEALTH;
    struct edge_action *a = push(out, EDGE_ACT_RUN_HEALTH);
    a->img = f->saved.job.img;
    a->slot = slot;
}

void edge_fsm_installed(struct edge_fsm *f, const struct edge_clock *clk, struct edge_actions *out)
{
    (void)clk;
    out->n = 0;
    if (f->phase != EDGE_PHASE_REBOOTING)
        return;
    f->prev_running = f->running;
    f->prev_slot = f->running_slot;
    f->phase = EDGE_PHASE_HEALTH;
    struct edge_action *a = push(out, EDGE_ACT_RUN_HEALTH);
    a->img = f->saved.job.img;
    a->slot = EDGE_SLOT_NONE;
}

static void back_to_previous(struct edge_fsm *f)
{
    f->running = f->prev_running;
    f->running_slot = f->prev_slot;
    f->floor_seq = f->prev_floor;
}

void edge_fsm_health(struct edge_fsm *f, const struct edge_clock *clk, bool healthy,
                     const char *why, struct edge_actions *out)
{
    out->n = 0;
    if (f->phase != EDGE_PHASE_HEALTH)
        return;
    if (healthy) {
        push(out, EDGE_ACT_CONFIRM)->slot = f->running_slot;
        f->prev_floor = f->floor_seq;
        f->floor_seq = f->saved.job.img.seq;
        finish_job(f, clk, out, FERRY_STATE_SUCCESS, FERRY_OK, NULL);
        return;
    }
    push(out, EDGE_ACT_ROLLBACK);
    f->prev_floor = f->floor_seq;
    back_to_previous(f);
    finish_job(f, clk, out, FERRY_STATE_ROLLED_BACK, FERRY_OK, "health check of %s failed: %s",
               f->saved.job.img.version, why ? why : "unhealthy");
}

void edge_fsm_hold(struct edge_fsm *f, const struct edge_clock *clk, uint32_t seconds,
                   struct edge_actions *out)
{
    out->n = 0;
    int64_t until = seconds ? clk->wall + (int64_t)seconds : 0;
    int64_t moved = until > f->hold_until ? until - f->hold_until : f->hold_until - until;
    /* The same hold, told again at the next poll, is no news (a few seconds
     * of drift are the answer's age). */
    bool news = !f->hold_known || (until == 0) != (f->hold_until == 0) || moved > 2;
    f->hold_known = true;
    f->hold_until = until;
    if (news && f->phase == EDGE_PHASE_GATE && !f->busy_pending)
        gate_check(f, clk, out);
}

void edge_fsm_new_session(struct edge_fsm *f, const struct edge_clock *clk,
                          struct edge_actions *out)
{
    out->n = 0;
    if (f->phase != EDGE_PHASE_DOWNLOADING)
        return;
    if (job_expired(f, clk)) {
        fail_expired(f, clk, out);
        return;
    }
    ferry_blockwin_new_path(&f->win, clk->mono_ms);
    plan(f, clk, out);
}

void edge_fsm_timer(struct edge_fsm *f, const struct edge_clock *clk, struct edge_actions *out)
{
    out->n = 0;
    if (f->phase == EDGE_PHASE_DOWNLOADING) {
        f->timer_at = 0;
        if (job_expired(f, clk)) {
            fail_expired(f, clk, out);
            return;
        }
        ferry_blockwin_expire(&f->win, clk->mono_ms);
        plan(f, clk, out);
    } else if (f->phase == EDGE_PHASE_GATE && !f->busy_pending) {
        gate_check(f, clk, out);
    }
}

/* ---- manifests -------------------------------------------------------------- */

static bool remembered(const struct edge_fsm *f, const uint8_t digest[FERRY_SHA256_LEN])
{
    for (unsigned i = 0; i < f->saved.nrejected; i++) {
        if (memcmp(f->saved.rejected[i], digest, FERRY_SHA256_LEN) == 0)
            return true;
    }
    return false;
}

static void remember(struct edge_fsm *f, const uint8_t digest[FERRY_SHA256_LEN])
{
    memcpy(f->saved.rejected[f->saved.next_reject], digest, FERRY_SHA256_LEN);
    f->saved.next_reject = (uint8_t)((f->saved.next_reject + 1) % EDGE_FSM_REJECT_MEMORY);
    if (f->saved.nrejected < EDGE_FSM_REJECT_MEMORY)
        f->saved.nrejected++;
}

/* For a verdict reached after the signature held, the manifest may be read:
 * it names the release in the record, and tells a refused downgrade from
 * the image already running. */
static bool signed_manifest(enum ferry_err verdict, const uint8_t *env, size_t len,
                            struct ferry_manifest *m)
{
    if (verdict != FERRY_E_NOT_YET_VALID && verdict != FERRY_E_EXPIRED &&
        verdict != FERRY_E_LIFETIME && verdict != FERRY_E_WRONG_PRODUCT &&
        verdict != FERRY_E_INCOMPATIBLE_HW && verdict != FERRY_E_DOWNGRADE &&
        verdict != FERRY_E_SEQ_JUMP && verdict != FERRY_E_ARTIFACT_TOO_LARGE &&
        verdict != FERRY_E_WITHDRAWN)
        return false;
    struct ferry_envelope *e = NULL;
    if (ferry_envelope_parse(env, len, &e, NULL) != FERRY_OK)
        return false;
    bool ok = ferry_manifest_parse(e->manifest, e->manifest_len, m, NULL) == FERRY_OK;
    ferry_envelope_free(e);
    return ok;
}

/* A release-specific record that is not about the current job. */
static void other_release_status(struct edge_fsm *f, const struct edge_clock *clk,
                                 struct edge_actions *out, enum ferry_state state,
                                 const struct ferry_manifest *m, enum ferry_err err,
                                 const char *msg)
{
    struct ferry_status *st = status_base(f, clk, out, state);
    if (m) {
        copy_str(st->release_id, sizeof(st->release_id), m->release_id);
        copy_str(st->version, sizeof(st->version), m->version);
        st->total = m->size;
    }
    st->error = err;
    copy_message(st->message, msg);
}

static void rejected(struct edge_fsm *f, const struct edge_clock *clk, const uint8_t *env,
                     size_t len, const uint8_t digest[FERRY_SHA256_LEN], enum ferry_err verdict,
                     const struct ferry_diag *d, struct edge_actions *out)
{
    struct ferry_manifest m;
    bool known = signed_manifest(verdict, env, len, &m);
    if (known && f->running.valid && manifest_is(&m, &f->running.img))
        return; /* the release this node runs */
    if (known && f->saved.job.phase != EDGE_JOB_NONE && manifest_is(&m, &f->saved.job.img))
        return; /* the release it works on or has finished */
    if (remembered(f, digest))
        return;
    remember(f, digest);
    other_release_status(f, clk, out, FERRY_STATE_REJECTED, known ? &m : NULL, verdict,
                         ferry_diag_str(d, verdict));
    save(out);
}

static void accept(struct edge_fsm *f, const struct edge_clock *clk, const struct ferry_manifest *m,
                   const uint8_t digest[FERRY_SHA256_LEN], struct edge_actions *out)
{
    struct edge_job *job = &f->saved.job;
    memset(job, 0, sizeof(*job));
    job->phase = EDGE_JOB_DOWNLOADING;
    memcpy(job->digest, digest, FERRY_SHA256_LEN);
    copy_str(job->release_id, sizeof(job->release_id), m->release_id);
    memcpy(job->img.sha256, m->sha256, FERRY_SHA256_LEN);
    job->img.size = m->size;
    job->img.seq = m->seq;
    copy_str(job->img.version, sizeof(job->img.version), m->version);
    job->constraints = m->constraints;
    job->expires_at = m->expires_at;
    job->outcome = FERRY_STATE_IDLE;
    /* A verified manifest's key_id is FERRY_KID_LEN hex digits. */
    memcpy(job->kid, m->key_id, FERRY_KID_LEN);
    job->kid[FERRY_KID_LEN] = '\0';
    f->restarts = 0;
    job_status(f, clk, out, FERRY_STATE_AVAILABLE, 0, FERRY_OK, NULL);
    start_download(f, clk, out, true, NULL);
}

static void verified(struct edge_fsm *f, const struct edge_clock *clk,
                     const struct ferry_manifest *m, const uint8_t digest[FERRY_SHA256_LEN],
                     struct edge_actions *out)
{
    struct edge_job *job = &f->saved.job;
    if (!ferry_targets_include(&m->nodes, f->node_id))
        return; /* meant for other nodes of the line: as if there were none */
    if (job->phase != EDGE_JOB_NONE && manifest_is(m, &job->img)) {
        if (f->phase == EDGE_PHASE_DOWNLOADING)
            offered_again(f, clk, out); /* the same release, perhaps signed anew */
        return;
    }
    if (f->phase == EDGE_PHASE_REBOOTING || f->phase == EDGE_PHASE_HEALTH)
        return; /* seen again at the next poll, after the trial */
    if (m->constraints.window_end && clk->wall >= m->constraints.window_end) {
        if (remembered(f, digest))
            return;
        remember(f, digest);
        char msg[FERRY_DIAG_MAX];
        snprintf(msg, sizeof(msg), "install window closed at %" PRId64, m->constraints.window_end);
        other_release_status(f, clk, out, FERRY_STATE_FAILED, m, FERRY_E_EXPIRED, msg);
        save(out);
        return;
    }
    if (job_active(f)) {
        char msg[FERRY_DIAG_MAX];
        snprintf(msg, sizeof(msg), "superseded by release %s", m->release_id);
        if (f->phase == EDGE_PHASE_DOWNLOADING)
            push(out, EDGE_ACT_ABORT);
        finish_job(f, clk, out, FERRY_STATE_FAILED, FERRY_OK, "%s", msg);
    }
    accept(f, clk, m, digest, out);
}

/* What "the same envelope" means: the signed manifest bytes, so the same
 * release signed again is not reported twice; the envelope's own bytes when
 * it does not even parse. Nothing here is trusted: a match only ever stops
 * a record or an action. */
static void release_key(const uint8_t *env, size_t len, uint8_t digest[FERRY_SHA256_LEN])
{
    struct ferry_envelope *e = NULL;
    if (ferry_envelope_parse(env, len, &e, NULL) == FERRY_OK) {
        ferry_sha256(e->manifest, e->manifest_len, digest);
        ferry_envelope_free(e);
    } else {
        ferry_sha256(env, len, digest);
    }
}

void edge_fsm_manifest(struct edge_fsm *f, const struct edge_clock *clk, const uint8_t *env,
                       size_t len, struct edge_actions *out)
{
    out->n = 0;
    if (f->phase == EDGE_PHASE_START)
        return;
    uint8_t digest[FERRY_SHA256_LEN];
    release_key(env, len, digest);
    const struct edge_job *job = &f->saved.job;
    if (job->phase != EDGE_JOB_NONE && memcmp(job->digest, digest, sizeof(digest)) == 0) {
        if (f->phase == EDGE_PHASE_DOWNLOADING)
            offered_again(f, clk, out);
        return;
    }
    struct ferry_trust_limits lim;
    limits(f, &lim);
    struct ferry_verify_policy pol = {
        .now = clk->wall,
        .clock_skew = EDGE_FSM_CLOCK_SKEW,
        .product = f->product,
        .hw_model = f->hw_model,
        .hw_revision = f->hw_revision[0] ? f->hw_revision : NULL,
        .min_seq = f->floor_seq + 1,
        .max_artifact_size = f->cfg.max_image_size,
        .max_lifetime = lim.max_manifest_lifetime,
        .max_seq_step = lim.max_seq_step,
        .seq_base = f->floor_seq,
    };
    struct ferry_manifest m;
    struct ferry_diag d = {{0}};
    enum ferry_err err = ferry_envelope_verify(env, len, release_keys(f), &pol, &m, &d);
    if (err == FERRY_OK && f->cfg.trust)
        err = ferry_trust_verdict(f->cfg.trust, f->product, m.release_id, digest, clk->wall, &d);
    if (err == FERRY_E_STALE) {
        /* No verdict on the release: judged again once metadata is fresh. */
        ask_meta(f, clk, out, ferry_diag_str(&d, err));
        return;
    }
    if (err == FERRY_E_UNKNOWN_KEY)
        ask_meta(f, clk, out, ferry_diag_str(&d, err));
    if (err != FERRY_OK)
        rejected(f, clk, env, len, digest, err, &d, out);
    else
        verified(f, clk, &m, digest, out);
}

void edge_fsm_trust_changed(struct edge_fsm *f, const struct edge_clock *clk,
                            struct edge_actions *out)
{
    out->n = 0;
    if (f->phase == EDGE_PHASE_START || !f->cfg.trust)
        return;
    uint64_t v = ferry_trust_version(f->cfg.trust);
    if (v != f->trust_version) {
        /* New keys or limits: what was refused may pass now, once. */
        f->trust_version = v;
        f->saved.nrejected = 0;
        f->saved.next_reject = 0;
        save(out);
    }
    if (!job_active(f))
        return;
    struct ferry_diag d = {{0}};
    enum ferry_err err = job_trust(f, clk, &d);
    if (err != FERRY_OK && err != FERRY_E_STALE) {
        /* Not installing yet: the release goes. */
        if (f->phase == EDGE_PHASE_DOWNLOADING)
            push(out, EDGE_ACT_ABORT);
        finish_job(f, clk, out, FERRY_STATE_FAILED, err, "%s", d.msg);
        return;
    }
    if (f->phase == EDGE_PHASE_GATE && f->deferred == DEFER_META && !f->busy_pending)
        gate_check(f, clk, out);
}

/* ---- start ------------------------------------------------------------------ */

/* The last run was on trial: the boot decision either booted it again or
 * rolled it back because its attempts ran out. */
static void start_in_trial(struct edge_fsm *f, const struct edge_clock *clk,
                           const struct edge_fsm_boot *boot, struct edge_actions *out)
{
    struct edge_job *job = &f->saved.job;
    enum edge_slot t = boot->before.trial;
    const struct edge_image *timg = &boot->before.slot[t].img;
    if (job->phase == EDGE_JOB_NONE || job->phase == EDGE_JOB_DONE ||
        !same_image(&job->img, timg)) {
        /* No job record for it (lost or from elsewhere): report what we know. */
        memset(job, 0, sizeof(*job));
        job->img = *timg;
        job->expires_at = INT64_MAX;
    }
    job->phase = EDGE_JOB_TRIAL;
    /* The same judgement as a gateway's of its own trial (inst_trial.h). */
    struct inst_trial tr;
    inst_trial_after_boot(&boot->before, &boot->after, boot->booted, boot->fell_back, &tr);
    if (boot->after.trial == EDGE_SLOT_NONE) {
        f->phase = EDGE_PHASE_IDLE;
        finish_job(f, clk, out, FERRY_STATE_ROLLED_BACK, FERRY_OK, "%s", tr.why);
        idle_status(f, clk, out);
        return;
    }
    /* As if this run had set the trial: booted() takes it from here. */
    f->running = boot->after.slot[boot->after.active];
    f->running_slot = boot->after.active;
    f->trial_slot = t;
    f->phase = EDGE_PHASE_REBOOTING;
    edge_fsm_booted(f, clk, boot->booted, out);
}

/* Carries on with a saved job that was not on trial; false when there is
 * nothing to carry on with. */
static bool resume_job(struct edge_fsm *f, const struct edge_clock *clk,
                       const struct edge_fsm_boot *boot, struct edge_actions *out)
{
    struct edge_job *job = &f->saved.job;
    const struct edge_slot_info *other = &boot->after.slot[edge_slot_other(boot->booted)];
    bool staged = other->valid && same_image(&other->img, &job->img);
    switch (job->phase) {
    case EDGE_JOB_TRIAL:
        f->phase = EDGE_PHASE_IDLE;
        if (f->running.valid && same_image(&f->running.img, &job->img)) {
            finish_job(f, clk, out, FERRY_STATE_SUCCESS, FERRY_OK, NULL);
            return false;
        }
        if (!staged) {
            finish_job(f, clk, out, FERRY_STATE_ROLLED_BACK, FERRY_OK,
                       "the trial of %s ended while ferry-edge was down", job->img.version);
            return false;
        }
        job->phase = EDGE_JOB_READY; /* the trial was never set */
        enter_gate(f, clk, out);
        return true;
    case EDGE_JOB_READY:
    case EDGE_JOB_DOWNLOADING:
        if (staged) {
            job->phase = EDGE_JOB_READY;
            enter_gate(f, clk, out);
        } else {
            start_download(f, clk, out,
                           job->phase == EDGE_JOB_READY || (job->written == 0 && !job->have_unit),
                           NULL);
        }
        return true;
    case EDGE_JOB_NONE:
    case EDGE_JOB_DONE:
        break;
    }
    return false;
}

/* A module's job that was installing when the last run ended; false when
 * the saved job is not one. */
static bool start_module_job(struct edge_fsm *f, const struct edge_clock *clk,
                             const struct edge_fsm_boot *boot, struct edge_actions *out)
{
    struct edge_job *job = &f->saved.job;
    if (job->phase != EDGE_JOB_TRIAL || boot->module == EDGE_FSM_MODULE_NONE)
        return false;
    switch (boot->module) {
    case EDGE_FSM_MODULE_TRIAL:
        f->phase = EDGE_PHASE_REBOOTING;
        edge_fsm_installed(f, clk, out);
        return true;
    case EDGE_FSM_MODULE_COMMITTED:
        if (job->img.seq > f->floor_seq)
            f->floor_seq = job->img.seq;
        finish_job(f, clk, out, FERRY_STATE_SUCCESS, FERRY_OK, NULL);
        break;
    case EDGE_FSM_MODULE_ROLLED_BACK:
    case EDGE_FSM_MODULE_NONE:
        finish_job(f, clk, out, FERRY_STATE_ROLLED_BACK, FERRY_OK,
                   "the install of %s ended while ferry-edge was down: rolled back",
                   job->img.version);
        break;
    }
    idle_status(f, clk, out);
    return true;
}

void edge_fsm_start(struct edge_fsm *f, const struct edge_clock *clk,
                    const struct edge_fsm_boot *boot, const struct edge_fsm_saved *saved,
                    struct edge_actions *out)
{
    out->n = 0;
    if (f->phase != EDGE_PHASE_START)
        return;
    if (saved)
        f->saved = *saved;
    f->running = boot->after.slot[boot->booted];
    f->running_slot = boot->booted;
    f->floor_seq = floor_of(&boot->after);
    f->trust_version = f->cfg.trust ? ferry_trust_version(f->cfg.trust) : 0;
    if (boot->module_floor > f->floor_seq)
        f->floor_seq = boot->module_floor;
    f->phase = EDGE_PHASE_IDLE;
    if (boot->before.trial != EDGE_SLOT_NONE) {
        start_in_trial(f, clk, boot, out);
        return;
    }
    if (start_module_job(f, clk, boot, out))
        return;
    if (!resume_job(f, clk, boot, out))
        idle_status(f, clk, out);
}

/* ---- failures of actions ------------------------------------------------------ */

void edge_fsm_action_failed(struct edge_fsm *f, const struct edge_clock *clk,
                            enum edge_act_kind kind, enum ferry_err err, const char *msg,
                            struct edge_actions *out)
{
    out->n = 0;
    const char *why = msg ? msg : ferry_strerror(err);
    switch (kind) {
    case EDGE_ACT_RESUME:
        if (f->phase == EDGE_PHASE_DOWNLOADING)
            start_download(f, clk, out, true, "could not resume the download: starting over");
        break;
    case EDGE_ACT_BEGIN:
    case EDGE_ACT_WRITE:
    case EDGE_ACT_SYNC:
        if (f->phase == EDGE_PHASE_DOWNLOADING)
            fail_download(f, clk, out, err, why);
        break;
    case EDGE_ACT_FINISH:
        /* FINISH runs before the batch moves past it; the install it began
         * is over (the slot stays invalid). A slot whose bytes do not hash
         * after the gateway's ETag changed is fetched again instead. */
        if (f->phase != EDGE_PHASE_GATE && f->phase != EDGE_PHASE_REBOOTING)
            break;
        if ((err == FERRY_E_HASH_MISMATCH || err == FERRY_E_SIZE_MISMATCH) &&
            start_over_after_hash(f, clk, out))
            break;
        finish_job(f, clk, out, FERRY_STATE_FAILED, err, "%s", why);
        break;
    case EDGE_ACT_TRIAL:
    case EDGE_ACT_REBOOT:
        /* The trial may be armed, in Ferry's state or the bootloader's:
         * disarm it, so no later boot becomes an unannounced trial (after
         * the record, which must not wait on a second failure). */
        if (f->phase == EDGE_PHASE_GATE || f->phase == EDGE_PHASE_REBOOTING) {
            finish_job(f, clk, out, FERRY_STATE_FAILED, err, "%s%s",
                       kind == EDGE_ACT_REBOOT ? "reboot into the new image failed: " : "", why);
            push(out, EDGE_ACT_ROLLBACK);
        }
        break;
    case EDGE_ACT_CONFIRM:
        /* Unconfirmed, the trial would roll back at the next boot anyway. */
        if (f->saved.job.outcome == FERRY_STATE_SUCCESS && f->phase == EDGE_PHASE_IDLE) {
            push(out, EDGE_ACT_ROLLBACK);
            back_to_previous(f);
            f->phase = EDGE_PHASE_HEALTH;
            finish_job(f, clk, out, FERRY_STATE_ROLLED_BACK, err, "confirming failed: %s", why);
        }
        break;
    case EDGE_ACT_ROLLBACK:
        if (f->saved.job.outcome == FERRY_STATE_ROLLED_BACK && f->phase == EDGE_PHASE_IDLE)
            finish_job(f, clk, out, FERRY_STATE_FAILED, err,
                       "rolling back failed (%s): the next boot rolls back", why);
        break;
    case EDGE_ACT_RUN_BUSY:
        edge_fsm_busy(f, clk, true, out);
        break;
    case EDGE_ACT_RUN_HEALTH:
        edge_fsm_health(f, clk, false, why, out);
        break;
    case EDGE_ACT_SAVE: {
        /* A job whose record cannot be saved must not go on as if it could:
         * after a restart the node would not know where it was (resuming a
         * download it did not record, or booting a trial it never noted).
         * It ends failed before anything more is written or installed.
         * Outside a job a lost save costs only a repeated report. */
        char text[FERRY_DIAG_MAX];
        snprintf(text, sizeof(text), "the job record cannot be saved: %s", why);
        if (f->phase == EDGE_PHASE_DOWNLOADING)
            fail_download(f, clk, out, err, text);
        else if (f->phase == EDGE_PHASE_GATE || f->phase == EDGE_PHASE_REBOOTING)
            finish_job(f, clk, out, FERRY_STATE_FAILED, err, "%s", text);
        break;
    }
    case EDGE_ACT_GET_BLOCK: /* its deadline asks again (plan()) */
    case EDGE_ACT_STATUS:
    case EDGE_ACT_ABORT:
    case EDGE_ACT_TIMER:
    case EDGE_ACT_CANCEL_TIMER:
    case EDGE_ACT_FETCH_META:
        break;
    }
}

/* ---- life cycle and names ----------------------------------------------------- */

static bool is_pow2(uint32_t v)
{
    return v && !(v & (v - 1));
}

static enum ferry_err check_config(const struct edge_fsm_config *c, struct ferry_diag *d)
{
    if (!c->node_id || !ferry_id_valid(c->node_id))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "edge: node id must be an identifier");
    if (!c->product || !ferry_id_valid(c->product))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "edge: product must be an identifier");
    if (!c->hw_model || !ferry_id_valid(c->hw_model))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "edge: hardware model must be an identifier");
    if (c->hw_revision && strlen(c->hw_revision) > FERRY_REVISION_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "edge: hardware revision longer than %d bytes",
                          FERRY_REVISION_MAX);
    if (!c->keyring && !c->trust)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "edge: no keyring or trust");
    if (c->max_image_size == 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "edge: largest image size must be above 0");
    if (c->block_size < 16 || c->block_size > 1024 || !is_pow2(c->block_size))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "edge: block size must be a power of two in 16..1024, got %u",
                          c->block_size);
    if (c->trial_attempts < 1 || c->trial_attempts > EDGE_BOOT_MAX_ATTEMPTS)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "edge: trial attempts must be 1..%d",
                          EDGE_BOOT_MAX_ATTEMPTS);
    if (c->busy_retry_ms == 0 || c->retry_min_ms == 0 || c->retry_max_ms < c->retry_min_ms)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "edge: retry delays must be above 0, and the longest above the shortest");
    if (c->checkpoint_bytes < c->block_size)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "edge: checkpoint interval must be at least one block");
    if (c->max_window > FERRY_BLOCKWIN_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "edge: window must be 1..%d block requests",
                          FERRY_BLOCKWIN_MAX);
    return FERRY_OK;
}

enum ferry_err edge_fsm_new(const struct edge_fsm_config *cfg, struct edge_fsm **out,
                            struct ferry_diag *d)
{
    enum ferry_err err = check_config(cfg, d);
    if (err != FERRY_OK)
        return err;
    struct edge_fsm *f = calloc(1, sizeof(*f));
    if (!f)
        return ferry_fail(d, FERRY_E_NOMEM, "edge: out of memory");
    f->cfg = *cfg;
    copy_str(f->node_id, sizeof(f->node_id), cfg->node_id);
    copy_str(f->product, sizeof(f->product), cfg->product);
    copy_str(f->hw_model, sizeof(f->hw_model), cfg->hw_model);
    copy_str(f->hw_revision, sizeof(f->hw_revision), cfg->hw_revision);
    f->cfg.node_id = f->node_id;
    f->cfg.product = f->product;
    f->cfg.hw_model = f->hw_model;
    f->cfg.hw_revision = f->hw_revision;
    ferry_prng_seed(&f->rng, cfg->seed);
    f->retry = (struct ferry_backoff){.min_ms = cfg->retry_min_ms, .max_ms = cfg->retry_max_ms};
    ferry_blockwin_init(&f->win, cfg->max_window ? cfg->max_window : FERRY_BLOCKWIN_MAX, rnd(f));
    f->phase = EDGE_PHASE_START;
    f->running_slot = EDGE_SLOT_A;
    f->prev_slot = EDGE_SLOT_A;
    f->trial_slot = EDGE_SLOT_NONE;
    *out = f;
    return FERRY_OK;
}

void edge_fsm_free(struct edge_fsm *f)
{
    if (!f)
        return;
    stop_hashing(f);
    free(f);
}

enum edge_phase edge_fsm_phase(const struct edge_fsm *f)
{
    return f->phase;
}

const struct edge_fsm_saved *edge_fsm_saved(const struct edge_fsm *f)
{
    return &f->saved;
}

const struct edge_slot_info *edge_fsm_running(const struct edge_fsm *f)
{
    return &f->running;
}

const struct ferry_blockwin *edge_fsm_window(const struct edge_fsm *f)
{
    return &f->win;
}

const char *edge_act_name(enum edge_act_kind kind)
{
    static const char *const names[] = {
        "status",    "save",     "begin",      "resume", "write",        "sync",
        "finish",    "abort",    "trial",      "reboot", "confirm",      "rollback",
        "get-block", "run-busy", "run-health", "timer",  "cancel-timer", "fetch-meta",
    };
    return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "unknown";
}

const char *edge_phase_name(enum edge_phase p)
{
    static const char *const names[] = {"start", "idle",      "downloading",
                                        "gate",  "rebooting", "health"};
    return (unsigned)p < sizeof(names) / sizeof(names[0]) ? names[p] : "unknown";
}

/* ---- saved record ---------------------------------------------------------------- */

#define SAVED_MAGIC "FEJ1"
#define SAVED_TEXT  (FERRY_NAME_MAX + 1)

struct cursor {
    uint8_t *p;
    const uint8_t *q;
    size_t off;
};

static void put_bytes(struct cursor *c, const void *v, size_t n)
{
    memcpy(c->p + c->off, v, n);
    c->off += n;
}

static void put_u64(struct cursor *c, uint64_t v)
{
    ferry_put_le64(c->p + c->off, v);
    c->off += 8;
}

static void put_u8(struct cursor *c, unsigned v)
{
    c->p[c->off++] = (uint8_t)v;
}

static void get_bytes(struct cursor *c, void *v, size_t n)
{
    memcpy(v, c->q + c->off, n);
    c->off += n;
}

static uint64_t get_u64(struct cursor *c)
{
    uint64_t v = ferry_get_le64(c->q + c->off);
    c->off += 8;
    return v;
}

static unsigned get_u8(struct cursor *c)
{
    return c->q[c->off++];
}

/* No bitmap (unit 0: a record of a lockstep download, all zero), or one
 * in blocks of a Block2 size that the offset is a multiple of. */
static bool have_ok(const struct edge_job *j)
{
    if (j->have_unit == 0) {
        for (size_t i = 0; i < sizeof(j->have); i++) {
            if (j->have[i])
                return false;
        }
        return true;
    }
    return j->have_unit >= 16 && j->have_unit <= 1024 && !(j->have_unit & (j->have_unit - 1)) &&
           j->written % j->have_unit == 0;
}

enum ferry_err edge_fsm_saved_encode(const struct edge_fsm_saved *s,
                                     uint8_t out[EDGE_FSM_SAVED_LEN], struct ferry_diag *d)
{
    const struct edge_job *j = &s->job;
    if (s->nrejected > EDGE_FSM_REJECT_MEMORY || s->next_reject >= EDGE_FSM_REJECT_MEMORY ||
        j->etag_len > EDGE_FSM_ETAG_MAX || (unsigned)j->phase > EDGE_JOB_DONE || !have_ok(j) ||
        (unsigned)j->outcome >= FERRY_STATE__COUNT)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "edge: job record out of range");
    struct cursor c = {.p = out};
    memset(out, 0, EDGE_FSM_SAVED_LEN);
    put_bytes(&c, SAVED_MAGIC, 4);
    put_u8(&c, j->phase);
    put_u8(&c, j->outcome);
    put_u8(&c, j->etag_len);
    put_u8(&c, s->nrejected);
    put_u8(&c, s->next_reject);
    put_u8(&c, j->constraints.must_be_idle);
    put_bytes(&c, j->digest, FERRY_SHA256_LEN);
    put_bytes(&c, j->release_id, SAVED_TEXT);
    put_bytes(&c, j->img.version, SAVED_TEXT);
    put_bytes(&c, j->img.sha256, FERRY_SHA256_LEN);
    put_u64(&c, j->img.size);
    put_u64(&c, j->img.seq);
    put_u64(&c, (uint64_t)j->constraints.window_start);
    put_u64(&c, (uint64_t)j->constraints.window_end);
    put_u64(&c, (uint64_t)j->constraints.max_deferral);
    put_u64(&c, (uint64_t)j->expires_at);
    put_u64(&c, j->written);
    put_bytes(&c, j->etag, EDGE_FSM_ETAG_MAX);
    put_u64(&c, (uint64_t)j->deferred_since);
    put_bytes(&c, s->rejected, sizeof(s->rejected));
    put_bytes(&c, j->have, sizeof(j->have));
    ferry_put_le16(out + c.off, j->have_unit);
    c.off += 2;
    put_bytes(&c, j->kid, sizeof(j->kid));
    ferry_put_le32(out + EDGE_FSM_SAVED_LEN - 4, ferry_crc32(0, out, EDGE_FSM_SAVED_LEN - 4));
    return FERRY_OK;
}

static bool text_ok(const char *s)
{
    return memchr(s, '\0', SAVED_TEXT) != NULL;
}

enum ferry_err edge_fsm_saved_decode(const uint8_t *buf, size_t len, struct edge_fsm_saved *out,
                                     struct ferry_diag *d)
{
    if (len != EDGE_FSM_SAVED_LEN || memcmp(buf, SAVED_MAGIC, 4) != 0)
        return ferry_fail(d, FERRY_E_CORRUPT, "edge: job record has a wrong length or magic");
    if (ferry_get_le32(buf + EDGE_FSM_SAVED_LEN - 4) != ferry_crc32(0, buf, EDGE_FSM_SAVED_LEN - 4))
        return ferry_fail(d, FERRY_E_CORRUPT, "edge: job record fails its CRC");
    struct edge_fsm_saved s;
    memset(&s, 0, sizeof(s));
    struct edge_job *j = &s.job;
    struct cursor c = {.q = buf, .off = 4};
    j->phase = (enum edge_job_phase)get_u8(&c);
    j->outcome = (enum ferry_state)get_u8(&c);
    j->etag_len = (uint8_t)get_u8(&c);
    s.nrejected = (uint8_t)get_u8(&c);
    s.next_reject = (uint8_t)get_u8(&c);
    j->constraints.must_be_idle = get_u8(&c) != 0;
    get_bytes(&c, j->digest, FERRY_SHA256_LEN);
    get_bytes(&c, j->release_id, SAVED_TEXT);
    get_bytes(&c, j->img.version, SAVED_TEXT);
    get_bytes(&c, j->img.sha256, FERRY_SHA256_LEN);
    j->img.size = get_u64(&c);
    j->img.seq = get_u64(&c);
    j->constraints.window_start = (int64_t)get_u64(&c);
    j->constraints.window_end = (int64_t)get_u64(&c);
    j->constraints.max_deferral = (int64_t)get_u64(&c);
    j->expires_at = (int64_t)get_u64(&c);
    j->written = get_u64(&c);
    get_bytes(&c, j->etag, EDGE_FSM_ETAG_MAX);
    j->deferred_since = (int64_t)get_u64(&c);
    get_bytes(&c, s.rejected, sizeof(s.rejected));
    get_bytes(&c, j->have, sizeof(j->have));
    j->have_unit = ferry_get_le16(buf + c.off);
    c.off += 2;
    if (!have_ok(j))
        return ferry_fail(d, FERRY_E_CORRUPT, "edge: job record's block bitmap is out of range");
    /* Zeros in records written before the key id was kept: "" (unknown). */
    get_bytes(&c, j->kid, sizeof(j->kid));
    if ((unsigned)j->phase > EDGE_JOB_DONE || (unsigned)j->outcome >= FERRY_STATE__COUNT ||
        j->etag_len > EDGE_FSM_ETAG_MAX || s.nrejected > EDGE_FSM_REJECT_MEMORY ||
        s.next_reject >= EDGE_FSM_REJECT_MEMORY || !text_ok(j->release_id) ||
        !memchr(j->kid, '\0', sizeof(j->kid)) || !text_ok(j->img.version) ||
        j->written > j->img.size ||
        (j->phase != EDGE_JOB_NONE && edge_image_check(&j->img, NULL) != FERRY_OK))
        return ferry_fail(d, FERRY_E_CORRUPT, "edge: job record holds values out of range");
    *out = s;
    return FERRY_OK;
}
