/* libFuzzer target for the edge's download: the install state machine
 * (edge_fsm.h) and its window (ferry_blockwin.h) fed arbitrary sequences of
 * answers to their block requests, timers, repeated and stale answers,
 * failed actions and garbage manifests, the way the daemon would deliver
 * them. The input is read as a small header (artifact size, block size,
 * window, where a resumed download stands) and then a sequence of events,
 * each a tag byte and its parameters; an answer is decoded field by field
 * (code, Block2 present or not, number, SZX, More, payload length, ETag,
 * Size2, Max-Age) from the bytes, starting from the block asked for.
 *
 * Besides the sanitizers, it aborts (a crash to libFuzzer) when
 *   - a GET_BLOCK asks for a block Block2 cannot name or past the artifact,
 *   - a WRITE lands outside the artifact or outside the answer's payload,
 *   - a download is left with no timer armed (it could stall),
 *   - a batch holds more actions than EDGE_FSM_MAX_ACTIONS (the FSM itself
 *     aborts then). */
#include "edge_fsm.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_EVENTS  2000
#define MAX_PENDING 256
#define WALL0       1700000000

struct input {
    const uint8_t *p;
    size_t n;
};

static unsigned byte(struct input *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static uint32_t u16(struct input *in)
{
    uint32_t v = byte(in);
    return v << 8 | byte(in);
}

static uint32_t u32(struct input *in)
{
    return u16(in) << 16 | u16(in);
}

/* What the daemon side knows: requests sent and not answered, the timer. */
struct world {
    struct edge_fsm *f;
    struct edge_clock clk;
    uint64_t size;
    struct edge_action pend[MAX_PENDING];
    size_t npend;
    bool timer_armed;
    uint64_t timer_at;
    int fail_at; /* fail the n-th failable action of the next batch; -1: none */
    enum ferry_err fail_err;
    uint8_t payload[1024];
    struct edge_block last;
    bool have_last;
};

static bool failable(enum edge_act_kind k)
{
    return k == EDGE_ACT_BEGIN || k == EDGE_ACT_RESUME || k == EDGE_ACT_WRITE ||
           k == EDGE_ACT_SYNC || k == EDGE_ACT_FINISH || k == EDGE_ACT_GET_BLOCK;
}

static void check_action(struct world *w, const struct edge_action *a, const struct edge_block *b)
{
    switch (a->kind) {
    case EDGE_ACT_GET_BLOCK:
        if (a->len < 16 || a->len > 1024 || (a->len & (a->len - 1)) || a->off % a->len ||
            a->off >= w->size || a->off / a->len > 0xfffff)
            abort();
        if (w->npend == MAX_PENDING) { /* the link lost the oldest */
            memmove(w->pend, w->pend + 1, (MAX_PENDING - 1) * sizeof(w->pend[0]));
            w->npend--;
        }
        w->pend[w->npend++] = *a;
        break;
    case EDGE_ACT_WRITE:
        if (!b || a->len == 0 || a->off + a->len > w->size || a->data < b->data ||
            a->data + a->len > b->data + b->len)
            abort();
        break;
    case EDGE_ACT_TIMER:
        w->timer_armed = true;
        w->timer_at = w->clk.mono_ms + a->delay_ms;
        break;
    case EDGE_ACT_CANCEL_TIMER:
        w->timer_armed = false;
        break;
    default:
        break;
    }
}

/* Performs a batch as the daemon does: in order, and a failed action
 * (chosen by the input) stops it and hands the failure to the FSM. */
static void perform(struct world *w, const struct edge_actions *out, const struct edge_block *b,
                    int depth)
{
    for (size_t i = 0; i < out->n; i++) {
        const struct edge_action *a = &out->v[i];
        if (w->fail_at >= 0 && failable(a->kind) && w->fail_at-- == 0 && depth < 4) {
            struct edge_actions again;
            edge_fsm_action_failed(w->f, &w->clk, a->kind, w->fail_err, "fuzz: failed", &again);
            perform(w, &again, NULL, depth + 1);
            return;
        }
        check_action(w, a, b);
    }
}

static void after(struct world *w)
{
    /* A download always has its timer: no answer ever leaves it stuck. */
    if (edge_fsm_phase(w->f) == EDGE_PHASE_DOWNLOADING && !w->timer_armed)
        abort();
}

static const unsigned codes[] = {205, 205, 205, 205, 205, 205, 203, 201, 404,
                                 500, 503, 503, 400, 402, 413, 415, 100, 0};

/* An answer to pending request `get`, mangled as the input says. */
static struct edge_block answer_for(struct world *w, struct input *in,
                                    const struct edge_action *get)
{
    unsigned szx = 0;
    while ((16u << szx) < get->len)
        szx++;
    uint64_t off = get->off;
    size_t len = w->size - off < get->len ? (size_t)(w->size - off) : get->len;
    struct edge_block b = {
        .req = get->req,
        .code = 205,
        .has_block = true,
        .num = (uint32_t)(off / get->len),
        .szx = szx,
        .more = off + len < w->size,
        .data = w->payload,
        .len = len,
    };
    unsigned flags = byte(in);
    if (flags & 0x01)
        b.code = codes[byte(in) % (sizeof(codes) / sizeof(codes[0]))];
    if (flags & 0x02)
        b.has_block = false;
    if (flags & 0x04)
        b.num = u32(in) & 0x0fffffff;
    if (flags & 0x08)
        b.szx = byte(in) & 7;
    if (flags & 0x10)
        b.more = !b.more;
    if (flags & 0x20) {
        b.len = u16(in) % (sizeof(w->payload) + 1);
    }
    if (flags & 0x40) {
        static uint8_t etag[8];
        b.etag_len = 1 + byte(in) % 8;
        for (size_t i = 0; i < b.etag_len; i++)
            etag[i] = (uint8_t)byte(in);
        b.etag = etag;
    }
    if (flags & 0x80) {
        b.has_size2 = true;
        b.size2 = byte(in) & 1 ? w->size : u32(in);
        b.has_max_age = true;
        b.max_age_s = byte(in);
    }
    return b;
}

static void deliver(struct world *w, const struct edge_block *b)
{
    struct edge_actions out;
    edge_fsm_block(w->f, &w->clk, b, &out);
    perform(w, &out, b, 0);
    w->last = *b;
    w->have_last = true;
}

static void take(struct world *w, size_t i, struct edge_action *get)
{
    *get = w->pend[i];
    memmove(w->pend + i, w->pend + i + 1, (w->npend - i - 1) * sizeof(w->pend[0]));
    w->npend--;
}

static void step(struct world *w, struct input *in)
{
    struct edge_actions out;
    struct edge_action get;
    switch (byte(in) % 8) {
    case 0: /* an answer to a pending request, perhaps mangled */
        if (w->npend) {
            take(w, byte(in) % w->npend, &get);
            struct edge_block b = answer_for(w, in, &get);
            deliver(w, &b);
        }
        break;
    case 1: { /* time passes and the timer fires */
        uint64_t extra = u16(in);
        if (w->timer_armed && w->timer_at > w->clk.mono_ms)
            w->clk.mono_ms = w->timer_at;
        w->clk.mono_ms += extra;
        w->clk.wall += (int64_t)(extra / 1000);
        w->timer_armed = false;
        edge_fsm_timer(w->f, &w->clk, &out);
        perform(w, &out, NULL, 0);
        break;
    }
    case 2: /* the last answer again (a duplicate, or a late copy) */
        if (w->have_last) {
            struct edge_block b = w->last;
            deliver(w, &b);
        }
        break;
    case 3: { /* the next batch's n-th failable action fails */
        static const enum ferry_err errs[] = {FERRY_E_IO, FERRY_E_NOSPACE, FERRY_E_HASH_MISMATCH,
                                              FERRY_E_SIZE_MISMATCH, FERRY_E_INVALID_ARG};
        w->fail_at = (int)(byte(in) % 8);
        w->fail_err = errs[byte(in) % (sizeof(errs) / sizeof(errs[0]))];
        break;
    }
    case 4: /* the wall clock jumps (towards expiry) */
        w->clk.wall += (int64_t)u16(in) * 600;
        break;
    case 5: { /* a manifest that is no valid release */
        uint8_t env[64];
        size_t n = byte(in) % sizeof(env);
        for (size_t i = 0; i < n; i++)
            env[i] = (uint8_t)byte(in);
        edge_fsm_manifest(w->f, &w->clk, env, n, &out);
        perform(w, &out, NULL, 0);
        break;
    }
    case 6: { /* an answer to a request nobody made */
        struct edge_action fake = {.req = u32(in), .off = 0, .len = 1024};
        struct edge_block b = answer_for(w, in, &fake);
        deliver(w, &b);
        break;
    }
    case 7: /* a good link for a while: answer what is out, in order */
        for (int i = 0; i < 64 && w->npend; i++) {
            take(w, 0, &get);
            struct edge_block b = answer_for(w, &(struct input){0}, &get);
            deliver(w, &b);
        }
        break;
    }
    after(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ferry_keyring *kr;
    if (!kr && !(kr = ferry_keyring_new()))
        abort();
    struct input in = {data, size};
    struct world w;
    memset(&w, 0, sizeof(w));
    w.fail_at = -1;
    /* One read per statement: an initializer's order of evaluation is not
     * defined. */
    w.size = 1 + (u32(&in) % (4u << 20));
    uint32_t block = 16u << (byte(&in) % 7);
    uint64_t checkpoint = block * (1 + byte(&in) % 64);
    unsigned window = byte(&in) % (FERRY_BLOCKWIN_MAX + 1);
    uint64_t seed = 1 + byte(&in);
    struct edge_fsm_config cfg = {
        .node_id = "fuzz-node",
        .product = "firmware",
        .hw_model = "m1",
        .keyring = kr,
        .max_image_size = 64u << 20,
        .block_size = block,
        .trial_attempts = 1,
        .busy_retry_ms = 1000,
        .checkpoint_bytes = checkpoint,
        .progress_ms = 5000,
        .retry_min_ms = 1000,
        .retry_max_ms = 60000,
        .max_window = window,
        .seed = seed,
    };
    if (edge_fsm_new(&cfg, &w.f, NULL) != FERRY_OK)
        abort();
    for (size_t i = 0; i < sizeof(w.payload); i++)
        w.payload[i] = (uint8_t)(i * 7);

    /* A download under way, begun afresh or resumed from a checkpoint. */
    struct edge_fsm_saved saved;
    memset(&saved, 0, sizeof(saved));
    struct edge_job *job = &saved.job;
    job->phase = EDGE_JOB_DOWNLOADING;
    snprintf(job->release_id, sizeof(job->release_id), "firmware-1.0.1-1");
    snprintf(job->img.version, sizeof(job->img.version), "1.0.1");
    job->img.size = w.size;
    job->img.seq = 1;
    memset(job->img.sha256, 0xa5, sizeof(job->img.sha256));
    job->expires_at = WALL0 + 86400;
    unsigned resume = byte(&in);
    if (resume & 1) {
        uint64_t nblocks = (w.size + block - 1) / block;
        uint64_t base = u16(&in) % nblocks;
        job->written = base * block;
        job->have_unit = (uint16_t)block;
        for (size_t i = 0; i < sizeof(job->have); i++)
            job->have[i] = (uint8_t)byte(&in);
    }
    struct edge_fsm_boot boot;
    edge_boot_factory(&boot.before);
    boot.after = boot.before;
    boot.booted = EDGE_SLOT_A;
    w.clk.wall = WALL0;
    w.clk.mono_ms = 1000000;
    w.size = job->img.size;
    struct edge_actions out;
    edge_fsm_start(w.f, &w.clk, &boot, &saved, &out);
    perform(&w, &out, NULL, 0);
    after(&w);

    for (int i = 0; i < MAX_EVENTS && in.n; i++)
        step(&w, &in);
    edge_fsm_free(w.f);
    return 0;
}
