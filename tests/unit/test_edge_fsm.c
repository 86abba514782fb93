#include "cunit_main.h"
#include "test_keys.h"

#include "edge_fsm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE       "node-7"
#define HW         "mx-100"
#define REV        "A"
#define IN_WINDOW  1700004000 /* inside test_manifest_sample()'s window */
#define MAX_IMAGE  (1u << 20)
#define BLOCK      1024
#define CHECKPOINT 8192
#define ART_LEN    10000 /* 9 whole blocks and a short one */
#define OLD_SEQ    10
#define NEW_SEQ    42 /* test_manifest_sample() */

/* ---- a world around one FSM ------------------------------------------------- */

struct world {
    struct test_key key;
    struct ferry_keyring *kr;
    struct edge_fsm_config cfg;
    struct edge_fsm *f;
    struct edge_clock clk;
    struct edge_actions out;
    uint8_t art[ART_LEN * 10];
    size_t art_len;
    uint8_t sha[FERRY_SHA256_LEN];
    struct ferry_manifest m;
    /* Every status record so far, in order. */
    struct ferry_status rec[256];
    size_t nrec;
    /* The gateway's side: block requests not answered yet, oldest first,
     * and the FSM's timer. */
    struct edge_action pend[512];
    size_t npend;
    uint64_t timer_at; /* mono ms; 0: not armed */
};

static void fill_artifact(struct world *w, size_t len, unsigned seed)
{
    w->art_len = len;
    for (size_t i = 0; i < len; i++)
        w->art[i] = (uint8_t)(i * 31 + seed + (i >> 8));
    ferry_sha256(w->art, len, w->sha);
}

/* Keeps the status records, block requests and timer of the last call. */
static void record(struct world *w)
{
    for (size_t i = 0; i < w->out.n; i++) {
        const struct edge_action *a = &w->out.v[i];
        if (a->kind == EDGE_ACT_STATUS && w->nrec < 256)
            w->rec[w->nrec++] = a->status;
        if (a->kind == EDGE_ACT_GET_BLOCK) {
            CU_ASSERT_FATAL(w->npend < 512);
            w->pend[w->npend++] = *a;
        }
        if (a->kind == EDGE_ACT_TIMER)
            w->timer_at = w->clk.mono_ms + a->delay_ms;
        if (a->kind == EDGE_ACT_CANCEL_TIMER)
            w->timer_at = 0;
    }
}

/* Takes the oldest request not answered yet; fatal when there is none. */
static struct edge_action take_request(struct world *w)
{
    CU_ASSERT_FATAL(w->npend > 0);
    struct edge_action a = w->pend[0];
    memmove(w->pend, w->pend + 1, (w->npend - 1) * sizeof(w->pend[0]));
    w->npend--;
    return a;
}

static void world_init(struct world *w)
{
    memset(w, 0, sizeof(*w));
    test_key_init(&w->key, 7);
    w->kr = test_keyring_of(&w->key, false);
    w->cfg = (struct edge_fsm_config){
        .node_id = NODE,
        .product = "meter", /* test_manifest_sample()'s */
        .hw_model = HW,
        .hw_revision = REV,
        .keyring = w->kr,
        .max_image_size = MAX_IMAGE,
        .block_size = BLOCK,
        .trial_attempts = 1,
        .has_busy_cmd = true,
        .busy_retry_ms = 5000,
        .checkpoint_bytes = CHECKPOINT,
        .progress_ms = 5000,
        .retry_min_ms = 1000,
        .retry_max_ms = 60000,
        .seed = 42,
    };
    CU_ASSERT_EQUAL_FATAL(edge_fsm_new(&w->cfg, &w->f, NULL), FERRY_OK);
    w->clk.wall = IN_WINDOW;
    w->clk.mono_ms = 1000000;
    fill_artifact(w, ART_LEN, 1);
    test_manifest_sample(&w->m, w->key.kid, w->sha, w->art_len);
}

static void world_free(struct world *w)
{
    edge_fsm_free(w->f);
    ferry_keyring_free(w->kr);
    test_key_free(&w->key);
}

static size_t count(const struct world *w, enum edge_act_kind kind)
{
    size_t n = 0;
    for (size_t i = 0; i < w->out.n; i++)
        n += w->out.v[i].kind == kind;
    return n;
}

/* The first action of a kind in the last batch; fatal when missing. */
static const struct edge_action *find(const struct world *w, enum edge_act_kind kind)
{
    for (size_t i = 0; i < w->out.n; i++) {
        if (w->out.v[i].kind == kind)
            return &w->out.v[i];
    }
    static const struct edge_action none;
    CU_FAIL_FATAL("expected action missing");
    return &none;
}

/* Index of the first action of a kind, or out.n. */
static size_t index_of(const struct world *w, enum edge_act_kind kind)
{
    for (size_t i = 0; i < w->out.n; i++) {
        if (w->out.v[i].kind == kind)
            return i;
    }
    return w->out.n;
}

/* The status states of the last batch, in order, are exactly `want`. */
static void expect_states(const struct world *w, const enum ferry_state *want, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < w->out.n; i++) {
        if (w->out.v[i].kind != EDGE_ACT_STATUS)
            continue;
        CU_ASSERT_FATAL(k < n);
        CU_ASSERT_STRING_EQUAL(ferry_state_name(w->out.v[i].status.state),
                               ferry_state_name(want[k]));
        k++;
    }
    CU_ASSERT_EQUAL(k, n);
}

static const struct ferry_status *last_status(const struct world *w)
{
    for (size_t i = w->out.n; i-- > 0;) {
        if (w->out.v[i].kind == EDGE_ACT_STATUS)
            return &w->out.v[i].status;
    }
    static const struct ferry_status none;
    CU_FAIL_FATAL("no status in the batch");
    return &none;
}

/* ---- boot states -------------------------------------------------------------- */

static struct edge_image image_of(uint64_t seq, const char *version, const uint8_t *sha,
                                  uint64_t size)
{
    struct edge_image img;
    memset(&img, 0, sizeof(img));
    img.seq = seq;
    img.size = size;
    memcpy(img.sha256, sha, FERRY_SHA256_LEN);
    snprintf(img.version, sizeof(img.version), "%s", version);
    return img;
}

static struct edge_image old_image(void)
{
    uint8_t sha[FERRY_SHA256_LEN];
    memset(sha, 0x5a, sizeof(sha));
    return image_of(OLD_SEQ, "1.0.0", sha, 4096);
}

static struct edge_image new_image(const struct world *w)
{
    return image_of(NEW_SEQ, w->m.version, w->sha, w->art_len);
}

/* Slot A runs the old image, confirmed. */
static struct edge_boot_state running_old(void)
{
    struct edge_boot_state st;
    struct edge_image img = old_image();
    edge_boot_factory(&st);
    CU_ASSERT_EQUAL_FATAL(edge_boot_adopt(&st, EDGE_SLOT_A, &img, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_boot_confirm(&st, EDGE_SLOT_A, NULL), FERRY_OK);
    return st;
}

/* What a boot of `before` decides, as the daemon passes it. */
static struct edge_fsm_boot boot_of(const struct edge_boot_state *before)
{
    struct edge_fsm_boot b;
    memset(&b, 0, sizeof(b));
    b.before = *before;
    edge_boot_decide(before, &b.after, &b.booted);
    return b;
}

static void start(struct world *w, const struct edge_boot_state *st,
                  const struct edge_fsm_saved *saved)
{
    struct edge_fsm_boot b = boot_of(st);
    edge_fsm_start(w->f, &w->clk, &b, saved, &w->out);
    record(w);
}

/* ---- events ---------------------------------------------------------------------- */

static void send_envelope(struct world *w, const char *env, size_t len)
{
    edge_fsm_manifest(w->f, &w->clk, (const uint8_t *)env, len, &w->out);
    record(w);
}

static void send_manifest(struct world *w, const struct ferry_manifest *m)
{
    size_t len = 0;
    char *env = test_envelope_of(&w->key, m, &len);
    send_envelope(w, env, len);
    free(env);
}

/* A 2.05 for request `get` from `art` (the gateway's copy), with ETag
 * `etag` (8 bytes, or NULL for none), as the gateway shapes it. */
static struct edge_block block_for(const struct edge_action *get, const uint8_t *art,
                                   size_t art_len, const uint8_t *etag)
{
    unsigned szx = 0;
    while ((16u << szx) < get->len)
        szx++;
    uint64_t off = get->off;
    size_t len = off >= art_len ? 0 : art_len - off < get->len ? art_len - off : get->len;
    return (struct edge_block){
        .req = get->req,
        .code = 205,
        .has_block = true,
        .num = (uint32_t)(off / get->len),
        .szx = szx,
        .more = off + len < art_len,
        .data = art + off,
        .len = len,
        .etag = etag,
        .etag_len = etag ? 8 : 0,
        .has_size2 = off == 0,
        .size2 = art_len,
    };
}

static void answer_with(struct world *w, const struct edge_block *b)
{
    edge_fsm_block(w->f, &w->clk, b, &w->out);
    record(w);
}

/* Answers the oldest request not answered yet from `art`. */
static void answer_block(struct world *w, const uint8_t *art, size_t art_len, const uint8_t *etag)
{
    struct edge_action get = take_request(w);
    struct edge_block b = block_for(&get, art, art_len, etag);
    answer_with(w, &b);
}

/* Answers the oldest request with `code` (and Max-Age when max_age_s). */
static void answer_code(struct world *w, unsigned code, uint32_t max_age_s)
{
    struct edge_action get = take_request(w);
    struct edge_block b = {
        .req = get.req, .code = code, .has_max_age = max_age_s > 0, .max_age_s = max_age_s};
    answer_with(w, &b);
}

/* Answers requests with the world's artifact until none is left; checks
 * every WRITE lands at its offset with the artifact's bytes. Returns the
 * number of blocks answered. */
static size_t download_all(struct world *w)
{
    size_t blocks = 0;
    while (w->npend > 0) {
        answer_block(w, w->art, w->art_len, w->sha);
        const struct edge_action *wr = find(w, EDGE_ACT_WRITE);
        CU_ASSERT_EQUAL(memcmp(wr->data, w->art + wr->off, wr->len), 0);
        blocks++;
        w->clk.mono_ms += 10;
        CU_ASSERT_FATAL(blocks < 100000);
    }
    return blocks;
}

static void busy(struct world *w, bool is_busy)
{
    edge_fsm_busy(w->f, &w->clk, is_busy, &w->out);
    record(w);
}

static void fire_timer(struct world *w)
{
    w->timer_at = 0;
    edge_fsm_timer(w->f, &w->clk, &w->out);
    record(w);
}

/* Lets the monotonic clock run to the armed timer and fires it. */
static void wait_timer(struct world *w)
{
    CU_ASSERT_FATAL(w->timer_at != 0);
    if (w->timer_at > w->clk.mono_ms)
        w->clk.mono_ms = w->timer_at;
    fire_timer(w);
}

/* From a running old image to the busy check of the new release. */
static void to_gate(struct world *w)
{
    struct edge_boot_state st = running_old();
    start(w, &st, NULL);
    send_manifest(w, &w->m);
    download_all(w);
    CU_ASSERT_EQUAL_FATAL(count(w, EDGE_ACT_RUN_BUSY), 1);
}

/* ---- the happy path ------------------------------------------------------------------ */

static void release_goes_from_available_to_success(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    static const enum ferry_state idle[] = {FERRY_STATE_IDLE};
    expect_states(&w, idle, 1);
    CU_ASSERT_STRING_EQUAL(w.out.v[0].status.version, "1.0.0");
    CU_ASSERT_STRING_EQUAL(w.out.v[0].status.node, NODE);

    send_manifest(&w, &w.m);
    static const enum ferry_state avail[] = {FERRY_STATE_AVAILABLE, FERRY_STATE_DOWNLOADING};
    expect_states(&w, avail, 2);
    const struct edge_action *begin = find(&w, EDGE_ACT_BEGIN);
    CU_ASSERT_EQUAL(begin->img.seq, NEW_SEQ);
    CU_ASSERT_EQUAL(begin->img.size, ART_LEN);
    CU_ASSERT_EQUAL(memcmp(begin->img.sha256, w.sha, FERRY_SHA256_LEN), 0);
    /* The job is saved before the slot is touched. */
    CU_ASSERT(index_of(&w, EDGE_ACT_SAVE) < index_of(&w, EDGE_ACT_BEGIN));
    const struct edge_action *get = find(&w, EDGE_ACT_GET_BLOCK);
    CU_ASSERT_EQUAL(get->off, 0);
    CU_ASSERT_EQUAL(get->len, BLOCK);
    CU_ASSERT_EQUAL(edge_fsm_phase(w.f), EDGE_PHASE_DOWNLOADING);

    size_t syncs = 0;
    size_t blocks = 0;
    size_t requests = count(&w, EDGE_ACT_GET_BLOCK);
    while (w.npend) {
        answer_block(&w, w.art, w.art_len, w.sha);
        requests += count(&w, EDGE_ACT_GET_BLOCK);
        blocks++;
        syncs += count(&w, EDGE_ACT_SYNC);
        if (count(&w, EDGE_ACT_SYNC)) {
            CU_ASSERT(index_of(&w, EDGE_ACT_SYNC) < index_of(&w, EDGE_ACT_SAVE));
        }
    }
    CU_ASSERT_EQUAL(blocks, (ART_LEN + BLOCK - 1) / BLOCK);
    CU_ASSERT_EQUAL(requests, blocks); /* none asked for twice */
    CU_ASSERT_EQUAL(syncs, 1);         /* one checkpoint at 8 KiB, none at the end */
    static const enum ferry_state done[] = {FERRY_STATE_DOWNLOADING, FERRY_STATE_VERIFYING};
    expect_states(&w, done, 2);
    CU_ASSERT_EQUAL(w.out.v[index_of(&w, EDGE_ACT_STATUS)].status.bytes, ART_LEN);
    CU_ASSERT(index_of(&w, EDGE_ACT_FINISH) < index_of(&w, EDGE_ACT_RUN_BUSY));
    CU_ASSERT_EQUAL(edge_fsm_saved(w.f)->job.phase, EDGE_JOB_READY);

    busy(&w, false);
    static const enum ferry_state inst[] = {FERRY_STATE_INSTALLING, FERRY_STATE_PENDING_REBOOT};
    expect_states(&w, inst, 2);
    CU_ASSERT_EQUAL(find(&w, EDGE_ACT_TRIAL)->attempts, 1);
    CU_ASSERT(index_of(&w, EDGE_ACT_TRIAL) < index_of(&w, EDGE_ACT_REBOOT));
    CU_ASSERT_EQUAL(edge_fsm_saved(w.f)->job.phase, EDGE_JOB_TRIAL);

    edge_fsm_booted(w.f, &w.clk, EDGE_SLOT_B, &w.out);
    const struct edge_action *h = find(&w, EDGE_ACT_RUN_HEALTH);
    CU_ASSERT_EQUAL(h->slot, EDGE_SLOT_B);
    CU_ASSERT_STRING_EQUAL(h->img.version, w.m.version);

    edge_fsm_health(w.f, &w.clk, true, NULL, &w.out);
    record(&w);
    static const enum ferry_state ok[] = {FERRY_STATE_SUCCESS};
    expect_states(&w, ok, 1);
    CU_ASSERT_EQUAL(find(&w, EDGE_ACT_CONFIRM)->slot, EDGE_SLOT_B);
    CU_ASSERT(index_of(&w, EDGE_ACT_CONFIRM) < index_of(&w, EDGE_ACT_STATUS));
    CU_ASSERT_STRING_EQUAL(last_status(&w)->version, w.m.version);
    CU_ASSERT_STRING_EQUAL(last_status(&w)->release_id, w.m.release_id);
    CU_ASSERT_EQUAL(edge_fsm_phase(w.f), EDGE_PHASE_IDLE);
    CU_ASSERT_STRING_EQUAL(edge_fsm_running(w.f)->img.version, w.m.version);
    CU_ASSERT_EQUAL(edge_fsm_saved(w.f)->job.outcome, FERRY_STATE_SUCCESS);

    /* Downloading records never went backwards, and the release is settled:
     * polling it again changes nothing. */
    uint64_t last = 0;
    for (size_t i = 0; i < w.nrec; i++) {
        if (w.rec[i].state != FERRY_STATE_DOWNLOADING)
            continue;
        CU_ASSERT(w.rec[i].bytes >= last);
        CU_ASSERT_EQUAL(w.rec[i].total, ART_LEN);
        last = w.rec[i].bytes;
    }
    send_manifest(&w, &w.m);
    CU_ASSERT_EQUAL(w.out.n, 0);
    world_free(&w);
}

/* ---- rejections ------------------------------------------------------------------------ */

enum tamper {
    T_OTHER_KEY,
    T_WRONG_KID,
    T_REVOKED,
    T_HW,
    T_PRODUCT,
    T_DOWNGRADE,
    T_EXPIRED,
    T_FUTURE,
    T_TOO_LARGE,
    T_GARBAGE,
};

/* An envelope of w->m after `t`; the caller frees it. */
static char *tampered(struct world *w, enum tamper t, size_t *len)
{
    struct ferry_manifest m = w->m;
    struct test_key other;
    char *env = NULL;
    switch (t) {
    case T_OTHER_KEY:
    case T_WRONG_KID: {
        test_key_init(&other, 99);
        snprintf(m.key_id, sizeof(m.key_id), "%s", t == T_OTHER_KEY ? other.kid : w->key.kid);
        char *text = NULL;
        size_t text_len = 0;
        uint8_t sig[FERRY_ES256_SIG_LEN];
        CU_ASSERT_FATAL(ferry_manifest_encode(&m, &text, &text_len, NULL) == FERRY_OK);
        test_key_sign(&other, text, text_len, sig);
        CU_ASSERT_FATAL(ferry_envelope_encode((const uint8_t *)text, text_len, m.key_id, sig, &env,
                                              len, NULL) == FERRY_OK);
        free(text);
        test_key_free(&other);
        return env;
    }
    case T_REVOKED:
        ferry_keyring_free(w->kr);
        w->kr = test_keyring_of(&w->key, true);
        /* The FSM borrows the keyring: make one that uses the new one. */
        edge_fsm_free(w->f);
        w->cfg.keyring = w->kr;
        CU_ASSERT_FATAL(edge_fsm_new(&w->cfg, &w->f, NULL) == FERRY_OK);
        break;
    case T_HW:
        snprintf(m.hw[0].model, sizeof(m.hw[0].model), "mx-900");
        break;
    case T_PRODUCT: /* right hardware, newer seq: only the product line is wrong */
        snprintf(m.product, sizeof(m.product), "valve");
        break;
    case T_DOWNGRADE:
        m.seq = OLD_SEQ - 1;
        break;
    case T_EXPIRED:
        m.expires_at = w->clk.wall;
        break;
    case T_FUTURE:
        m.issued_at = w->clk.wall + 3600;
        m.expires_at = m.issued_at + 86400;
        break;
    case T_TOO_LARGE:
        m.size = MAX_IMAGE + 1;
        break;
    case T_GARBAGE:
        env = strdup("{\"format\":1}");
        *len = strlen(env);
        return env;
    }
    return test_envelope_of(&w->key, &m, len);
}

static void check_rejection(enum tamper t, enum ferry_err want, bool names_release)
{
    struct world w;
    world_init(&w);
    size_t len = 0;
    char *env = tampered(&w, t, &len);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_envelope(&w, env, len);
    static const enum ferry_state rej[] = {FERRY_STATE_REJECTED};
    expect_states(&w, rej, 1);
    const struct ferry_status *s = last_status(&w);
    CU_ASSERT_STRING_EQUAL(ferry_err_name(s->error), ferry_err_name(want));
    CU_ASSERT(s->message[0] != '\0');
    CU_ASSERT_STRING_EQUAL(s->release_id, names_release ? w.m.release_id : "");
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_BEGIN), 0);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_GET_BLOCK), 0);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_SAVE), 1);
    CU_ASSERT_EQUAL(edge_fsm_phase(w.f), EDGE_PHASE_IDLE);
    /* The same envelope again, polled or observed: no second record. */
    send_envelope(&w, env, len);
    CU_ASSERT_EQUAL(w.out.n, 0);
    free(env);
    world_free(&w);
}

static void rejects_unknown_key(void)
{
    check_rejection(T_OTHER_KEY, FERRY_E_UNKNOWN_KEY, false);
}

static void rejects_bad_signature(void)
{
    check_rejection(T_WRONG_KID, FERRY_E_BAD_SIGNATURE, false);
}

static void rejects_revoked_key(void)
{
    check_rejection(T_REVOKED, FERRY_E_REVOKED_KEY, false);
}

static void rejects_other_hardware(void)
{
    check_rejection(T_HW, FERRY_E_INCOMPATIBLE_HW, true);
}

static void rejects_another_product_line(void)
{
    check_rejection(T_PRODUCT, FERRY_E_WRONG_PRODUCT, true);
}

static void rejects_downgrade(void)
{
    check_rejection(T_DOWNGRADE, FERRY_E_DOWNGRADE, true);
}

static void rejects_expired(void)
{
    check_rejection(T_EXPIRED, FERRY_E_EXPIRED, true);
}

static void rejects_not_yet_valid(void)
{
    check_rejection(T_FUTURE, FERRY_E_NOT_YET_VALID, true);
}

static void rejects_artifact_too_large(void)
{
    check_rejection(T_TOO_LARGE, FERRY_E_ARTIFACT_TOO_LARGE, true);
}

static void rejects_malformed_envelope(void)
{
    check_rejection(T_GARBAGE, FERRY_E_MALFORMED, false);
}

static void running_release_is_passed_over(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st;
    struct edge_image img = new_image(&w);
    edge_boot_factory(&st);
    CU_ASSERT_EQUAL_FATAL(edge_boot_adopt(&st, EDGE_SLOT_A, &img, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_boot_confirm(&st, EDGE_SLOT_A, NULL), FERRY_OK);
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    CU_ASSERT_EQUAL(w.out.n, 0);
    world_free(&w);
}

static void rejections_are_remembered_across_restarts(void)
{
    struct world w;
    world_init(&w);
    size_t len = 0;
    char *env = tampered(&w, T_HW, &len);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_envelope(&w, env, len);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_STATUS), 1);
    struct edge_fsm_saved saved = *edge_fsm_saved(w.f);

    edge_fsm_free(w.f);
    CU_ASSERT_EQUAL_FATAL(edge_fsm_new(&w.cfg, &w.f, NULL), FERRY_OK);
    start(&w, &st, &saved);
    send_envelope(&w, env, len);
    CU_ASSERT_EQUAL(w.out.n, 0);
    free(env);
    world_free(&w);
}

/* ---- gate: busy, window, max deferral ------------------------------------------------------ */

static void busy_device_defers_the_install(void)
{
    struct world w;
    world_init(&w);
    to_gate(&w);
    busy(&w, true);
    static const enum ferry_state def[] = {FERRY_STATE_DEFERRED};
    expect_states(&w, def, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(last_status(&w)->message, "busy"));
    uint64_t delay = find(&w, EDGE_ACT_TIMER)->delay_ms;
    CU_ASSERT(delay >= 4000 && delay <= 6000);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_TRIAL), 0);
    CU_ASSERT_EQUAL(edge_fsm_saved(w.f)->job.deferred_since, w.clk.wall);

    for (int round = 0; round < 3; round++) {
        w.clk.wall += 5;
        fire_timer(&w);
        CU_ASSERT_EQUAL(count(&w, EDGE_ACT_RUN_BUSY), 1);
        busy(&w, true);
        CU_ASSERT_EQUAL(count(&w, EDGE_ACT_STATUS), 0); /* no new record per retry */
        CU_ASSERT_EQUAL(count(&w, EDGE_ACT_TIMER), 1);
        CU_ASSERT_EQUAL(count(&w, EDGE_ACT_TRIAL), 0);
    }
    /* A busy answer nobody asked for is ignored. */
    busy(&w, false);
    CU_ASSERT_EQUAL(w.out.n, 0);
    fire_timer(&w);
    busy(&w, false);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_TRIAL), 1);
    world_free(&w);
}

static void install_waits_for_the_window(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    w.clk.wall = w.m.constraints.window_start - 100;
    send_manifest(&w, &w.m);
    download_all(&w);
    static const enum ferry_state def[] = {FERRY_STATE_DOWNLOADING, FERRY_STATE_VERIFYING,
                                           FERRY_STATE_DEFERRED};
    expect_states(&w, def, 3);
    /* The download went ahead; only the install waits. */
    CU_ASSERT_EQUAL(edge_fsm_saved(w.f)->job.phase, EDGE_JOB_READY);
    CU_ASSERT_PTR_NOT_NULL(strstr(last_status(&w)->message, "window"));
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_RUN_BUSY), 0);
    uint64_t delay = find(&w, EDGE_ACT_TIMER)->delay_ms;
    CU_ASSERT(delay >= 100000 && delay <= 160000);
    w.clk.wall = w.m.constraints.window_start + 1;
    fire_timer(&w);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_RUN_BUSY), 1);
    busy(&w, false);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_TRIAL), 1);
    world_free(&w);
}

static void closed_window_fails_before_any_download(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    w.clk.wall = w.m.constraints.window_end;
    send_manifest(&w, &w.m);
    static const enum ferry_state fail[] = {FERRY_STATE_FAILED};
    expect_states(&w, fail, 1);
    CU_ASSERT_EQUAL(last_status(&w)->error, FERRY_E_EXPIRED);
    CU_ASSERT_STRING_EQUAL(last_status(&w)->release_id, w.m.release_id);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_BEGIN), 0);
    send_manifest(&w, &w.m);
    CU_ASSERT_EQUAL(w.out.n, 0);
    world_free(&w);
}

static void window_closing_during_deferral_fails_expired(void)
{
    struct world w;
    world_init(&w);
    to_gate(&w);
    busy(&w, true);
    w.clk.wall = w.m.constraints.window_end + 1;
    fire_timer(&w);
    static const enum ferry_state fail[] = {FERRY_STATE_FAILED};
    expect_states(&w, fail, 1);
    CU_ASSERT_EQUAL(last_status(&w)->error, FERRY_E_EXPIRED);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_RUN_BUSY), 0);
    CU_ASSERT_EQUAL(edge_fsm_saved(w.f)->job.phase, EDGE_JOB_DONE);
    world_free(&w);
}

static void must_be_idle_fails_after_max_deferral(void)
{
    struct world w;
    world_init(&w);
    w.m.constraints.max_deferral = 60;
    w.m.constraints.must_be_idle = true;
    to_gate(&w);
    busy(&w, true);
    w.clk.wall += 59;
    fire_timer(&w);
    busy(&w, true);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_STATUS), 0);
    w.clk.wall += 1;
    fire_timer(&w);
    busy(&w, true);
    static const enum ferry_state fail[] = {FERRY_STATE_FAILED};
    expect_states(&w, fail, 1);
    CU_ASSERT_EQUAL(last_status(&w)->error, FERRY_E_BUSY);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_TRIAL), 0);
    world_free(&w);
}

static void max_deferral_without_must_be_idle_installs(void)
{
    struct world w;
    world_init(&w);
    w.m.constraints.max_deferral = 60;
    w.m.constraints.must_be_idle = false;
    to_gate(&w);
    busy(&w, true);
    w.clk.wall += 60;
    fire_timer(&w);
    busy(&w, true);
    static const enum ferry_state inst[] = {FERRY_STATE_INSTALLING, FERRY_STATE_PENDING_REBOOT};
    expect_states(&w, inst, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(w.out.v[index_of(&w, EDGE_ACT_STATUS)].status.message, "busy"));
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_TRIAL), 1);
    world_free(&w);
}

static void node_without_busy_command_installs_at_once(void)
{
    struct world w;
    world_init(&w);
    edge_fsm_free(w.f);
    w.cfg.has_busy_cmd = false;
    CU_ASSERT_EQUAL_FATAL(edge_fsm_new(&w.cfg, &w.f, NULL), FERRY_OK);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    download_all(&w);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_RUN_BUSY), 0);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_TRIAL), 1);
    CU_ASSERT(index_of(&w, EDGE_ACT_FINISH) < index_of(&w, EDGE_ACT_TRIAL));
    world_free(&w);
}

/* ---- download -------------------------------------------------------------------------------- */

static void progress_records_are_throttled(void)
{
    struct world w;
    world_init(&w);
    fill_artifact(&w, ART_LEN * 10, 3);
    test_manifest_sample(&w.m, w.key.kid, w.sha, w.art_len);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    size_t before = w.nrec;
    size_t blocks = download_all(&w);
    size_t progress = 0;
    for (size_t i = before; i < w.nrec; i++)
        progress += w.rec[i].state == FERRY_STATE_DOWNLOADING;
    CU_ASSERT(blocks > 90);
    CU_ASSERT(progress >= 9 && progress <= 11); /* every 10%, fast link */
    world_free(&w);

    /* A slow link: a record every progress_ms however little came. */
    world_init(&w);
    fill_artifact(&w, ART_LEN * 10, 3);
    test_manifest_sample(&w.m, w.key.kid, w.sha, w.art_len);
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    answer_block(&w, w.art, w.art_len, w.sha);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_STATUS), 0);
    w.clk.mono_ms += 5000;
    answer_block(&w, w.art, w.art_len, w.sha);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_STATUS), 1);
    CU_ASSERT_EQUAL(last_status(&w)->bytes, 2 * BLOCK);
    world_free(&w);
}

/* Fires timers until a block request goes out; returns how long that took
 * on the monotonic clock. */
static uint64_t wait_for_request(struct world *w)
{
    uint64_t t0 = w->clk.mono_ms;
    for (int i = 0; i < 100 && w->npend == 0; i++)
        wait_timer(w);
    CU_ASSERT_FATAL(w->npend > 0);
    return w->clk.mono_ms - t0;
}

static void service_unavailable_waits_its_max_age(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    CU_ASSERT_EQUAL_FATAL(w.npend, FERRY_BLOCKWIN_INITIAL);
    answer_code(&w, 503, 7);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_GET_BLOCK), 0);
    answer_code(&w, 503, 7);
    uint64_t waited = wait_for_request(&w);
    CU_ASSERT(waited >= 7000 && waited <= 8000);
    CU_ASSERT_EQUAL(w.pend[0].off, 0); /* the lowest block again first */
    /* A long Max-Age is spread by a tenth. */
    while (w.npend)
        answer_code(&w, 503, 100);
    waited = wait_for_request(&w);
    CU_ASSERT(waited >= 100000 && waited <= 110000);
    /* It is no loss: the window did not shrink. */
    CU_ASSERT_EQUAL(w.npend, FERRY_BLOCKWIN_INITIAL);
    world_free(&w);
}

static void errors_back_off_up_to_the_cap(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    uint64_t base = 1000;
    for (int i = 0; i < 10; i++) {
        /* One step per wait, however many requests were out. */
        while (w.npend)
            answer_code(&w, i % 2 ? 404 : 500, 0);
        uint64_t waited = wait_for_request(&w);
        CU_ASSERT(waited >= base / 2 && waited <= base);
        base = base * 2 > 60000 ? 60000 : base * 2;
        CU_ASSERT_EQUAL(w.pend[0].off, 0);
    }
    /* A block that arrives resets the backoff. */
    answer_block(&w, w.art, w.art_len, w.sha);
    while (w.npend)
        answer_code(&w, 500, 0);
    CU_ASSERT(wait_for_request(&w) <= 1000);
    world_free(&w);
}

static void client_error_fails_the_release(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    answer_code(&w, 400, 0);
    static const enum ferry_state fail[] = {FERRY_STATE_FAILED};
    expect_states(&w, fail, 1);
    CU_ASSERT_EQUAL(last_status(&w)->error, FERRY_E_PROTOCOL);
    CU_ASSERT_PTR_NOT_NULL(strstr(last_status(&w)->message, "4.00"));
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_ABORT), 1);
    /* The other request's answer finds nobody waiting. */
    answer_block(&w, w.art, w.art_len, w.sha);
    CU_ASSERT_EQUAL(w.out.n, 0);
    world_free(&w);
}

static void expired_manifest_ends_the_retries(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    w.npend = 0; /* the requests are lost */
    w.clk.wall = w.m.expires_at;
    wait_timer(&w);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_GET_BLOCK), 0);
    CU_ASSERT_EQUAL(last_status(&w)->error, FERRY_E_EXPIRED);
    CU_ASSERT_EQUAL(edge_fsm_phase(w.f), EDGE_PHASE_IDLE);
    world_free(&w);

    /* An answer that comes after the expiry ends it too. */
    world_init(&w);
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    w.clk.wall = w.m.expires_at;
    answer_block(&w, w.art, w.art_len, w.sha);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_WRITE), 0);
    CU_ASSERT_EQUAL(last_status(&w)->error, FERRY_E_EXPIRED);
    world_free(&w);
}

static void unanswered_requests_are_sent_again(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    CU_ASSERT_EQUAL_FATAL(w.npend, 2);
    struct edge_action lost[2] = {w.pend[0], w.pend[1]};
    w.npend = 0;
    uint64_t waited = wait_for_request(&w);
    /* CoCoA's first timeout: the 2 s initial RTO times 1..1.5; the block
     * goes again under the same request id. */
    CU_ASSERT(waited >= 2000 && waited <= 3000);
    CU_ASSERT_EQUAL_FATAL(w.npend, 1);
    int which = w.pend[0].req == lost[0].req ? 0 : 1;
    CU_ASSERT_EQUAL(w.pend[0].req, lost[which].req);
    CU_ASSERT_EQUAL(w.pend[0].off, lost[which].off);
    /* A late answer to the other one's first transmission still counts. */
    struct edge_block late = block_for(&lost[1 - which], w.art, w.art_len, w.sha);
    answer_with(&w, &late);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_WRITE), 1);
    CU_ASSERT_EQUAL(find(&w, EDGE_ACT_WRITE)->off, lost[1 - which].off);
    CU_ASSERT_EQUAL(download_all(&w), (ART_LEN + BLOCK - 1) / BLOCK - 1);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_FINISH), 1);
    world_free(&w);
}

/* The daemon gave a silent session up and opened a new one (a NAT moved
 * the node's port): the blocks out on the old one go again in the same
 * batch, under new ids, and a late answer to an old id writes nothing. */
static void a_new_session_resends_the_window_at_once(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    edge_fsm_new_session(w.f, &w.clk, &w.out); /* nothing out yet: nothing to do */
    CU_ASSERT_EQUAL(w.out.n, 0);
    send_manifest(&w, &w.m);
    struct edge_action first = take_request(&w);
    answer_block(&w, w.art, w.art_len, w.sha);
    /* The path goes silent: every request from here on is lost, and the
     * window's timer backs off. */
    uint64_t t0 = w.clk.mono_ms;
    struct edge_action lost[8];
    size_t nlost = 0;
    while (w.clk.mono_ms < t0 + 6000) {
        for (size_t i = 0; i < w.npend; i++) {
            size_t j = 0;
            while (j < nlost && lost[j].off != w.pend[i].off)
                j++;
            CU_ASSERT_FATAL(j < 8);
            lost[j] = w.pend[i];
            nlost += j == nlost;
        }
        w.npend = 0;
        wait_timer(&w);
    }
    for (size_t i = 0; i < w.npend; i++) /* what the last timer sent is lost too */
        for (size_t j = 0; j < nlost; j++)
            if (lost[j].off == w.pend[i].off)
                lost[j] = w.pend[i];
    w.npend = 0;
    CU_ASSERT_FATAL(nlost >= 1);
    uint64_t backed_off = w.timer_at;
    w.clk.mono_ms += 100;
    CU_ASSERT_FATAL(backed_off > w.clk.mono_ms);
    /* The new session is up: the same blocks, now, with new ids, as many as
     * the window (shrunk by the losses) lets go. */
    edge_fsm_new_session(w.f, &w.clk, &w.out);
    record(&w);
    unsigned cwnd = ferry_blockwin_cwnd(edge_fsm_window(w.f));
    CU_ASSERT_EQUAL_FATAL(count(&w, EDGE_ACT_GET_BLOCK), nlost < cwnd ? nlost : cwnd);
    for (size_t i = 0; i < w.npend; i++) {
        bool same_block = false;
        for (size_t j = 0; j < nlost; j++) {
            same_block |= w.pend[i].off == lost[j].off;
            CU_ASSERT_NOT_EQUAL(w.pend[i].req, lost[j].req);
        }
        CU_ASSERT_NOT_EQUAL(w.pend[i].req, first.req);
        CU_ASSERT_TRUE(same_block);
    }
    /* A copy of an old request's answer that got through late is stale. */
    struct edge_block late = block_for(&lost[0], w.art, w.art_len, w.sha);
    answer_with(&w, &late);
    CU_ASSERT_EQUAL(w.out.n, 0);
    /* The rest comes in: every block written once, the download finishes. */
    CU_ASSERT_EQUAL(download_all(&w), (ART_LEN + BLOCK - 1) / BLOCK - 1);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_FINISH), 1);
    world_free(&w);
}

static void changed_etag_alone_changes_nothing(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    /* libcoap's coap-server issues a new ETag when it runs its handler
     * again; the bytes are the same. */
    uint8_t etag2[8] = {9, 9, 9, 9, 9, 9, 9, 9};
    size_t n = 0, begins = 0;
    while (w.npend) {
        answer_block(&w, w.art, w.art_len, n++ < 4 ? w.sha : etag2);
        begins += count(&w, EDGE_ACT_BEGIN);
    }
    CU_ASSERT_EQUAL(begins, 0);
    CU_ASSERT_EQUAL(n, (ART_LEN + BLOCK - 1) / BLOCK);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_FINISH), 1);
    world_free(&w);
}

static void replaced_artifact_is_fetched_again(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    uint8_t *bad = malloc(w.art_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bad);
    memcpy(bad, w.art, w.art_len);
    bad[100] ^= 1;
    uint8_t etag2[8] = {9, 9, 9, 9, 9, 9, 9, 9};
    for (unsigned round = 0; round <= EDGE_FSM_MAX_RESTARTS; round++) {
        /* The gateway serves a corrupt copy, then a repaired one under a
         * new ETag; the bytes written so far do not hash. */
        size_t n = 0;
        w.out.n = 0;
        while (w.npend && edge_fsm_phase(w.f) == EDGE_PHASE_DOWNLOADING &&
               !count(&w, EDGE_ACT_BEGIN)) {
            bool early = n++ < 3;
            answer_block(&w, early ? bad : w.art, w.art_len, early ? w.sha : etag2);
        }
        if (round < EDGE_FSM_MAX_RESTARTS) {
            CU_ASSERT_EQUAL(count(&w, EDGE_ACT_BEGIN), 1);
            CU_ASSERT_EQUAL(count(&w, EDGE_ACT_FINISH), 0);
            CU_ASSERT_EQUAL(find(&w, EDGE_ACT_GET_BLOCK)->off, 0);
            CU_ASSERT_EQUAL(last_status(&w)->state, FERRY_STATE_DOWNLOADING);
            CU_ASSERT_EQUAL(last_status(&w)->bytes, 0);
            CU_ASSERT_PTR_NOT_NULL(strstr(last_status(&w)->message, "ETag"));
            /* Answers to the first download's requests count no more. */
            while (w.npend && w.pend[0].req < find(&w, EDGE_ACT_GET_BLOCK)->req) {
                answer_block(&w, w.art, w.art_len, w.sha);
                CU_ASSERT_EQUAL(w.out.n, 0);
            }
        }
    }
    free(bad);
    static const enum ferry_state fail[] = {FERRY_STATE_DOWNLOADING, FERRY_STATE_FAILED};
    expect_states(&w, fail, 2);
    CU_ASSERT_EQUAL(last_status(&w)->error, FERRY_E_HASH_MISMATCH);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_ABORT), 1);
    world_free(&w);

    /* The same when it is the slot's hash that fails at the end. */
    world_init(&w);
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    size_t n = 0;
    while (w.npend)
        answer_block(&w, w.art, w.art_len, n++ < 3 ? w.sha : etag2);
    CU_ASSERT_EQUAL_FATAL(count(&w, EDGE_ACT_FINISH), 1);
    edge_fsm_action_failed(w.f, &w.clk, EDGE_ACT_FINISH, FERRY_E_HASH_MISMATCH,
                           "slot B: SHA-256 of the stored image differs", &w.out);
    record(&w);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_BEGIN), 1);
    CU_ASSERT_EQUAL(edge_fsm_phase(w.f), EDGE_PHASE_DOWNLOADING);
    CU_ASSERT_EQUAL(edge_fsm_saved(w.f)->job.phase, EDGE_JOB_DOWNLOADING);
    CU_ASSERT_EQUAL(download_all(&w), (ART_LEN + BLOCK - 1) / BLOCK);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_FINISH), 1);
    world_free(&w);
}

static void answer_without_etag_is_accepted(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    answer_block(&w, w.art, w.art_len, w.sha);
    /* libcoap's server drops transfer state and then sends no ETag. */
    answer_block(&w, w.art, w.art_len, NULL);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_WRITE), 1);
    CU_ASSERT_EQUAL(download_all(&w), (ART_LEN + BLOCK - 1) / BLOCK - 2);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_FINISH), 1);
    world_free(&w);
}

static void duplicated_and_reordered_answers_do_no_harm(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    struct edge_action get0 = take_request(&w);
    struct edge_block b0 = block_for(&get0, w.art, w.art_len, w.sha);
    answer_with(&w, &b0);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_WRITE), 1);
    answer_with(&w, &b0); /* the same answer again */
    CU_ASSERT_EQUAL(w.out.n, 0);
    /* Answers in reverse order are written where they belong. */
    size_t n = w.npend;
    size_t requests = 1 + n, written = 1, finished = 0;
    while (w.npend) {
        struct edge_action get = w.pend[--w.npend];
        struct edge_block b = block_for(&get, w.art, w.art_len, w.sha);
        answer_with(&w, &b);
        written += count(&w, EDGE_ACT_WRITE);
        requests += count(&w, EDGE_ACT_GET_BLOCK);
        finished += count(&w, EDGE_ACT_FINISH);
        CU_ASSERT_EQUAL(find(&w, EDGE_ACT_WRITE)->off, get.off);
        answer_with(&w, &b); /* and each once more */
        CU_ASSERT_EQUAL(w.out.n, 0);
    }
    CU_ASSERT_EQUAL(finished, 1);
    /* Every block asked for once, written once. */
    CU_ASSERT_EQUAL(requests, (ART_LEN + BLOCK - 1) / BLOCK);
    CU_ASSERT_EQUAL(written, requests);
    world_free(&w);
}

/* ---- answers that are not the block asked for (issue 9.1, 12.3) ------------------------- */

/* The download goes on (a request out or a timer armed), or has ended with
 * a record. */
static bool moves_on(const struct world *w)
{
    if (w->npend || w->timer_at)
        return true;
    for (size_t i = 0; i < w->out.n; i++) {
        if (w->out.v[i].kind == EDGE_ACT_STATUS && w->out.v[i].status.state == FERRY_STATE_FAILED)
            return true;
    }
    return false;
}

enum bad_shape {
    NO_BLOCK2,
    SZX_7,
    OTHER_NUM,
    HUGE_NUM,
    BIGGER,
    SHORT_PAYLOAD,
    EMPTY_PAYLOAD,
    NOT_205,
};

static const struct {
    enum bad_shape shape;
    const char *named; /* in the failure's message */
} bad_shapes[] = {
    {NO_BLOCK2, "without a Block2 option"},
    {SZX_7, "SZX 7"},
    {OTHER_NUM, "block 5 of 1024 bytes where the block at 1024"},
    {HUGE_NUM, "block 16777217 of"},
    {BIGGER, "blocks of 1024 bytes where 512 were asked for"},
    {SHORT_PAYLOAD, "a payload of 100 bytes"},
    {EMPTY_PAYLOAD, "a payload of 0 bytes"},
    {NOT_205, "answered 2.03"},
};

/* The 2.05 (or not) for request `get` that is wrong in `shape`. */
static struct edge_block bad_block(const struct world *w, const struct edge_action *get,
                                   enum bad_shape shape)
{
    struct edge_block b = block_for(get, w->art, w->art_len, w->sha);
    switch (shape) {
    case NO_BLOCK2:
        b.has_block = false;
        break;
    case SZX_7:
        b.szx = 7;
        break;
    case OTHER_NUM:
        b.num = 5;
        b.data = w->art + 5 * get->len;
        break;
    case HUGE_NUM:
        b.num = 0x1000001;
        break;
    case BIGGER:
        b.szx = 6;
        b.num = (uint32_t)(get->off / 1024);
        b.len = 1024;
        break;
    case SHORT_PAYLOAD:
        b.len = 100;
        break;
    case EMPTY_PAYLOAD:
        b.len = 0;
        break;
    case NOT_205:
        b.code = 203;
        break;
    }
    return b;
}

/* Block 1 gets nothing but wrong answers: each is asked for again (the
 * same request) after a pause, the rest of the download goes on, and the
 * release fails by name after EDGE_FSM_MAX_BAD_ANSWERS. */
static void check_bad_answers(enum bad_shape shape, const char *named)
{
    struct world w;
    world_init(&w);
    if (shape == BIGGER) {
        w.cfg.block_size = 512;
        edge_fsm_free(w.f);
        CU_ASSERT_EQUAL_FATAL(edge_fsm_new(&w.cfg, &w.f, NULL), FERRY_OK);
    }
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    answer_block(&w, w.art, w.art_len, w.sha); /* block 0 fine */
    struct edge_action target = take_request(&w);
    CU_ASSERT_EQUAL_FATAL(target.off, w.cfg.block_size);
    for (unsigned i = 0; i < EDGE_FSM_MAX_BAD_ANSWERS; i++) {
        struct edge_block b = bad_block(&w, &target, shape);
        answer_with(&w, &b);
        CU_ASSERT_EQUAL(count(&w, EDGE_ACT_WRITE), 0);
        CU_ASSERT_TRUE(moves_on(&w));
        if (i + 1 == EDGE_FSM_MAX_BAD_ANSWERS)
            break;
        CU_ASSERT_EQUAL(edge_fsm_phase(w.f), EDGE_PHASE_DOWNLOADING);
        /* Other blocks are answered meanwhile; block 1 comes again. */
        bool again = false;
        for (int k = 0; k < 50 && !again; k++) {
            while (w.npend && !again) {
                struct edge_action get = take_request(&w);
                if (get.off == target.off) {
                    CU_ASSERT_EQUAL(get.req, target.req);
                    again = true;
                } else {
                    struct edge_block good = block_for(&get, w.art, w.art_len, w.sha);
                    answer_with(&w, &good);
                }
            }
            if (!again)
                wait_timer(&w);
        }
        CU_ASSERT_TRUE_FATAL(again);
    }
    CU_ASSERT_EQUAL(edge_fsm_phase(w.f), EDGE_PHASE_IDLE);
    CU_ASSERT_EQUAL(last_status(&w)->state, FERRY_STATE_FAILED);
    CU_ASSERT_EQUAL(last_status(&w)->error, FERRY_E_PROTOCOL);
    if (!strstr(last_status(&w)->message, named))
        printf("\n    message: %s (expected '%s')", last_status(&w)->message, named);
    CU_ASSERT_PTR_NOT_NULL(strstr(last_status(&w)->message, named));
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_ABORT), 1);
    world_free(&w);
}

static void every_wrong_answer_is_retried_then_fails_by_name(void)
{
    for (size_t i = 0; i < sizeof(bad_shapes) / sizeof(bad_shapes[0]); i++)
        check_bad_answers(bad_shapes[i].shape, bad_shapes[i].named);
}

static void answer_without_block2_is_not_a_dead_end(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    answer_block(&w, w.art, w.art_len, w.sha);
    struct edge_action get = take_request(&w);
    struct edge_block b = bad_block(&w, &get, NO_BLOCK2);
    answer_with(&w, &b);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_WRITE), 0);
    CU_ASSERT_TRUE(moves_on(&w));
    world_free(&w);
}

static void whole_small_artifact_without_block2_is_taken(void)
{
    struct world w;
    world_init(&w);
    fill_artifact(&w, 500, 4);
    test_manifest_sample(&w.m, w.key.kid, w.sha, w.art_len);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    struct edge_action get = take_request(&w);
    struct edge_block b = {.req = get.req, .code = 205, .data = w.art, .len = w.art_len};
    answer_with(&w, &b);
    CU_ASSERT_EQUAL(find(&w, EDGE_ACT_WRITE)->len, 500);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_FINISH), 1);
    world_free(&w);
}

static void expiry_is_checked_after_a_bad_answer(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    struct edge_action get = take_request(&w);
    struct edge_block b = bad_block(&w, &get, NO_BLOCK2);
    b.len = BLOCK; /* not the whole artifact */
    answer_with(&w, &b);
    w.npend = 0;
    w.clk.wall = w.m.expires_at;
    wait_timer(&w);
    CU_ASSERT_EQUAL(edge_fsm_phase(w.f), EDGE_PHASE_IDLE);
    CU_ASSERT_EQUAL(last_status(&w)->error, FERRY_E_EXPIRED);
    world_free(&w);
}

static void same_release_again_after_a_bad_answer_asks_again(void)
{
    struct world w;
    world_init(&w);
    fill_artifact(&w, 700, 5); /* one block: nothing else to ask for meanwhile */
    test_manifest_sample(&w.m, w.key.kid, w.sha, w.art_len);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    struct edge_action get = take_request(&w);
    struct edge_block b = bad_block(&w, &get, SZX_7);
    answer_with(&w, &b);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_GET_BLOCK), 0);
    send_manifest(&w, &w.m);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_GET_BLOCK), 1);
    CU_ASSERT_EQUAL(find(&w, EDGE_ACT_GET_BLOCK)->req, get.req);
    world_free(&w);

    /* And after a backoff of its own: offered again, it asks at once. */
    world_init(&w);
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    while (w.npend)
        answer_code(&w, 500, 0);
    send_manifest(&w, &w.m);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_GET_BLOCK), 2);
    /* But a Max-Age the gateway set is kept. */
    while (w.npend)
        answer_code(&w, 503, 30);
    send_manifest(&w, &w.m);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_GET_BLOCK), 0);
    world_free(&w);
}

static void smaller_blocks_from_the_gateway_are_followed(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    /* A server that prefers 512-byte blocks answers every request so. */
    size_t blocks = 0;
    while (w.npend) {
        struct edge_action get = take_request(&w);
        size_t len = w.art_len - get.off < 512 ? w.art_len - get.off : 512;
        struct edge_block b = {.req = get.req,
                               .code = 205,
                               .has_block = true,
                               .num = (uint32_t)(get.off / 512),
                               .szx = 5,
                               .more = get.off + len < w.art_len,
                               .data = w.art + get.off,
                               .len = len,
                               .etag = w.sha,
                               .etag_len = 8};
        answer_with(&w, &b);
        CU_ASSERT_EQUAL_FATAL(count(&w, EDGE_ACT_WRITE), 1);
        CU_ASSERT_EQUAL(find(&w, EDGE_ACT_WRITE)->off, get.off);
        for (size_t i = 0; i < w.out.n; i++) {
            if (w.out.v[i].kind == EDGE_ACT_GET_BLOCK)
                CU_ASSERT_EQUAL(w.out.v[i].len, 512);
        }
        blocks++;
        CU_ASSERT_FATAL(blocks < 100);
    }
    CU_ASSERT_EQUAL(blocks, (ART_LEN + 511) / 512);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_FINISH), 1);
    world_free(&w);
}

static void artifact_too_large_for_the_block_size_fails(void)
{
    struct world w;
    world_init(&w);
    w.cfg.block_size = 16;
    w.cfg.checkpoint_bytes = 16;
    w.cfg.max_image_size = 64u << 20;
    edge_fsm_free(w.f);
    CU_ASSERT_EQUAL_FATAL(edge_fsm_new(&w.cfg, &w.f, NULL), FERRY_OK);
    w.m.size = (16u << 20) + 1; /* 2^20 blocks of 16 bytes and one more */
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_GET_BLOCK), 0);
    CU_ASSERT_EQUAL(last_status(&w)->error, FERRY_E_ARTIFACT_TOO_LARGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(last_status(&w)->message, "--block-size"));
    world_free(&w);
}

static void artifact_of_the_wrong_size_fails(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    /* The gateway's copy is one byte short. */
    while (w.npend && edge_fsm_phase(w.f) == EDGE_PHASE_DOWNLOADING)
        answer_block(&w, w.art, w.art_len - 1, w.sha);
    static const enum ferry_state fail[] = {FERRY_STATE_FAILED};
    expect_states(&w, fail, 1);
    CU_ASSERT_EQUAL(last_status(&w)->error, FERRY_E_SIZE_MISMATCH);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_FINISH), 0);
    world_free(&w);

    /* ... or one byte long. */
    world_init(&w);
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    while (w.npend && edge_fsm_phase(w.f) == EDGE_PHASE_DOWNLOADING)
        answer_block(&w, w.art, w.art_len + 1, w.sha);
    CU_ASSERT_EQUAL(last_status(&w)->error, FERRY_E_SIZE_MISMATCH);
    world_free(&w);

    /* ... or says so in Size2 on the first block. */
    world_init(&w);
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    struct edge_action get = take_request(&w);
    struct edge_block b = block_for(&get, w.art, w.art_len, NULL);
    b.size2 = w.art_len + 1;
    answer_with(&w, &b);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_WRITE), 0);
    CU_ASSERT_EQUAL(last_status(&w)->error, FERRY_E_SIZE_MISMATCH);
    CU_ASSERT_PTR_NOT_NULL(strstr(last_status(&w)->message, "Size2"));
    world_free(&w);
}

static void wrong_bytes_fail_before_the_slot_is_checked(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    uint8_t *bad = malloc(w.art_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bad);
    memcpy(bad, w.art, w.art_len);
    bad[4000] ^= 1;
    while (w.npend && edge_fsm_phase(w.f) == EDGE_PHASE_DOWNLOADING)
        answer_block(&w, bad, w.art_len, w.sha);
    free(bad);
    static const enum ferry_state fail[] = {FERRY_STATE_DOWNLOADING, FERRY_STATE_FAILED};
    expect_states(&w, fail, 2);
    CU_ASSERT_EQUAL(last_status(&w)->error, FERRY_E_HASH_MISMATCH);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_FINISH), 0);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_ABORT), 1);
    world_free(&w);
}

static void slot_hash_mismatch_fails(void)
{
    struct world w;
    world_init(&w);
    to_gate(&w);
    /* edge_slots_finish() found other bytes in storage. */
    edge_fsm_action_failed(w.f, &w.clk, EDGE_ACT_FINISH, FERRY_E_HASH_MISMATCH,
                           "slot B: SHA-256 of the stored image differs", &w.out);
    record(&w);
    static const enum ferry_state fail[] = {FERRY_STATE_FAILED};
    expect_states(&w, fail, 1);
    CU_ASSERT_EQUAL(last_status(&w)->error, FERRY_E_HASH_MISMATCH);
    CU_ASSERT_PTR_NOT_NULL(strstr(last_status(&w)->message, "slot B"));
    CU_ASSERT_EQUAL(edge_fsm_phase(w.f), EDGE_PHASE_IDLE);
    /* The late busy answer finds nobody waiting. */
    busy(&w, false);
    CU_ASSERT_EQUAL(w.out.n, 0);
    world_free(&w);
}

static void storage_failure_fails_the_download(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    answer_block(&w, w.art, w.art_len, w.sha);
    edge_fsm_action_failed(w.f, &w.clk, EDGE_ACT_WRITE, FERRY_E_NOSPACE, "slot B: disk full",
                           &w.out);
    CU_ASSERT_EQUAL(last_status(&w)->error, FERRY_E_NOSPACE);
    CU_ASSERT_EQUAL(last_status(&w)->state, FERRY_STATE_FAILED);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_ABORT), 1);
    world_free(&w);
}

/* A job the node cannot record does not go on: failed with io, the slot
 * write aborted, and no install once the image is ready. Outside a job a
 * failed save changes nothing. */
static void failed_save_ends_the_job(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    answer_block(&w, w.art, w.art_len, w.sha);
    edge_fsm_action_failed(w.f, &w.clk, EDGE_ACT_SAVE, FERRY_E_IO, "job.rec: disk full", &w.out);
    CU_ASSERT_EQUAL(last_status(&w)->state, FERRY_STATE_FAILED);
    CU_ASSERT_EQUAL(last_status(&w)->error, FERRY_E_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(last_status(&w)->message, "job record cannot be saved"));
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_ABORT), 1);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_GET_BLOCK), 0);
    CU_ASSERT_EQUAL(edge_fsm_phase(w.f), EDGE_PHASE_IDLE);
    edge_fsm_action_failed(w.f, &w.clk, EDGE_ACT_SAVE, FERRY_E_IO, "again", &w.out);
    CU_ASSERT_EQUAL(w.out.n, 0);
    world_free(&w);

    /* The save before the trial is set. */
    world_init(&w);
    to_gate(&w);
    busy(&w, false);
    CU_ASSERT_EQUAL_FATAL(count(&w, EDGE_ACT_TRIAL), 1);
    CU_ASSERT(index_of(&w, EDGE_ACT_SAVE) < index_of(&w, EDGE_ACT_TRIAL));
    edge_fsm_action_failed(w.f, &w.clk, EDGE_ACT_SAVE, FERRY_E_NOSPACE, "job.rec: disk full",
                           &w.out);
    CU_ASSERT_EQUAL(last_status(&w)->state, FERRY_STATE_FAILED);
    CU_ASSERT_EQUAL(last_status(&w)->error, FERRY_E_NOSPACE);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_TRIAL), 0);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_REBOOT), 0);
    CU_ASSERT_EQUAL(edge_fsm_phase(w.f), EDGE_PHASE_IDLE);
    world_free(&w);
}

static void newer_release_supersedes_the_download(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    answer_block(&w, w.art, w.art_len, w.sha);
    struct ferry_manifest m2 = w.m;
    m2.seq = NEW_SEQ + 1;
    snprintf(m2.release_id, sizeof(m2.release_id), "meter-fw-next");
    send_manifest(&w, &m2);
    static const enum ferry_state st2[] = {FERRY_STATE_FAILED, FERRY_STATE_AVAILABLE,
                                           FERRY_STATE_DOWNLOADING};
    expect_states(&w, st2, 3);
    CU_ASSERT_STRING_EQUAL(w.out.v[index_of(&w, EDGE_ACT_STATUS)].status.release_id,
                           w.m.release_id);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(w.out.v[index_of(&w, EDGE_ACT_STATUS)].status.message, "superseded"));
    CU_ASSERT(index_of(&w, EDGE_ACT_ABORT) < index_of(&w, EDGE_ACT_BEGIN));
    CU_ASSERT_EQUAL(find(&w, EDGE_ACT_BEGIN)->img.seq, NEW_SEQ + 1);
    CU_ASSERT_STRING_EQUAL(last_status(&w)->release_id, "meter-fw-next");
    CU_ASSERT_EQUAL(find(&w, EDGE_ACT_GET_BLOCK)->off, 0);
    world_free(&w);
}

/* ---- trial ------------------------------------------------------------------------------------
 */

static void to_health(struct world *w)
{
    to_gate(w);
    busy(w, false);
    edge_fsm_booted(w->f, &w->clk, EDGE_SLOT_B, &w->out);
    CU_ASSERT_EQUAL_FATAL(count(w, EDGE_ACT_RUN_HEALTH), 1);
}

static void failed_health_check_rolls_back(void)
{
    struct world w;
    world_init(&w);
    to_health(&w);
    CU_ASSERT_STRING_EQUAL(edge_fsm_running(w.f)->img.version, w.m.version);
    edge_fsm_health(w.f, &w.clk, false, "exit 3", &w.out);
    record(&w);
    static const enum ferry_state rb[] = {FERRY_STATE_ROLLED_BACK};
    expect_states(&w, rb, 1);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_ROLLBACK), 1);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_CONFIRM), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(last_status(&w)->message, "exit 3"));
    CU_ASSERT_STRING_EQUAL(edge_fsm_running(w.f)->img.version, "1.0.0");
    /* The same release is not tried again. */
    send_manifest(&w, &w.m);
    CU_ASSERT_EQUAL(w.out.n, 0);
    world_free(&w);
}

static void health_command_that_cannot_run_rolls_back(void)
{
    struct world w;
    world_init(&w);
    to_health(&w);
    edge_fsm_action_failed(w.f, &w.clk, EDGE_ACT_RUN_HEALTH, FERRY_E_IO, "fork failed", &w.out);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_ROLLBACK), 1);
    CU_ASSERT_EQUAL(last_status(&w)->state, FERRY_STATE_ROLLED_BACK);
    world_free(&w);
}

static void confirm_that_fails_rolls_back(void)
{
    struct world w;
    world_init(&w);
    to_health(&w);
    edge_fsm_health(w.f, &w.clk, true, NULL, &w.out);
    /* The batch stopped at CONFIRM: the success record was never sent. */
    edge_fsm_action_failed(w.f, &w.clk, EDGE_ACT_CONFIRM, FERRY_E_IO, "boot.1: write failed",
                           &w.out);
    static const enum ferry_state rb[] = {FERRY_STATE_ROLLED_BACK};
    expect_states(&w, rb, 1);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_ROLLBACK), 1);
    CU_ASSERT_STRING_EQUAL(edge_fsm_running(w.f)->img.version, "1.0.0");
    /* The floor did not move: a release of seq 41 is still acceptable. */
    struct ferry_manifest m2 = w.m;
    m2.seq = NEW_SEQ - 1;
    send_manifest(&w, &m2);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_BEGIN), 1);
    world_free(&w);
}

static void failed_reboot_disarms_the_trial(void)
{
    for (int which = 0; which < 2; which++) {
        struct world w;
        world_init(&w);
        to_gate(&w);
        busy(&w, false);
        CU_ASSERT_EQUAL_FATAL(count(&w, EDGE_ACT_REBOOT), 1);
        enum edge_act_kind kind = which ? EDGE_ACT_REBOOT : EDGE_ACT_TRIAL;
        edge_fsm_action_failed(w.f, &w.clk, kind, FERRY_E_IO, "exit 1", &w.out);
        record(&w);
        static const enum ferry_state failed[] = {FERRY_STATE_FAILED};
        expect_states(&w, failed, 1);
        /* Disarmed, after the record and the saved job. */
        CU_ASSERT_EQUAL(count(&w, EDGE_ACT_ROLLBACK), 1);
        CU_ASSERT(index_of(&w, EDGE_ACT_STATUS) < index_of(&w, EDGE_ACT_ROLLBACK));
        CU_ASSERT(index_of(&w, EDGE_ACT_SAVE) < index_of(&w, EDGE_ACT_ROLLBACK));
        if (which)
            CU_ASSERT_PTR_NOT_NULL(strstr(last_status(&w)->message, "reboot into the new image"));
        CU_ASSERT_EQUAL(edge_fsm_phase(w.f), EDGE_PHASE_IDLE);
        /* The release is over; a newer one is taken. */
        struct ferry_manifest m2 = w.m;
        m2.seq = NEW_SEQ + 1;
        send_manifest(&w, &m2);
        CU_ASSERT_EQUAL(count(&w, EDGE_ACT_BEGIN), 1);
        world_free(&w);
    }
}

static void busy_command_that_cannot_run_counts_as_busy(void)
{
    struct world w;
    world_init(&w);
    to_gate(&w);
    edge_fsm_action_failed(w.f, &w.clk, EDGE_ACT_RUN_BUSY, FERRY_E_IO, "timed out", &w.out);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_TRIAL), 0);
    CU_ASSERT_EQUAL(last_status(&w)->state, FERRY_STATE_DEFERRED);
    world_free(&w);
}

static void manifests_wait_during_the_trial(void)
{
    struct world w;
    world_init(&w);
    to_health(&w);
    struct ferry_manifest m2 = w.m;
    m2.seq = NEW_SEQ + 1;
    send_manifest(&w, &m2);
    CU_ASSERT_EQUAL(w.out.n, 0);
    edge_fsm_health(w.f, &w.clk, true, NULL, &w.out);
    /* Not remembered as seen: the next poll starts it. */
    send_manifest(&w, &m2);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_BEGIN), 1);
    world_free(&w);
}

/* ---- restarts
 * ------------------------------------------------------------------------------------ */

/* Stops the FSM as a crash would and starts a new one from what was saved
 * (through the byte encoding, as the daemon stores it). */
static void crash_and_restart(struct world *w, const struct edge_boot_state *st)
{
    uint8_t buf[EDGE_FSM_SAVED_LEN];
    struct edge_fsm_saved saved;
    CU_ASSERT_EQUAL_FATAL(edge_fsm_saved_encode(edge_fsm_saved(w->f), buf, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_fsm_saved_decode(buf, sizeof(buf), &saved, NULL), FERRY_OK);
    edge_fsm_free(w->f);
    CU_ASSERT_EQUAL_FATAL(edge_fsm_new(&w->cfg, &w->f, NULL), FERRY_OK);
    w->npend = 0;
    w->timer_at = 0;
    start(w, st, &saved);
}

static void restart_resumes_the_download(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    for (int i = 0; i < 9; i++)
        answer_block(&w, w.art, w.art_len, w.sha);
    CU_ASSERT_EQUAL(edge_fsm_saved(w.f)->job.written, CHECKPOINT);
    CU_ASSERT_EQUAL(memcmp(edge_fsm_saved(w.f)->job.etag, w.sha, 8), 0);

    crash_and_restart(&w, &st);
    const struct edge_action *res = find(&w, EDGE_ACT_RESUME);
    CU_ASSERT_EQUAL(res->off, CHECKPOINT);
    CU_ASSERT_EQUAL(res->img.seq, NEW_SEQ);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_BEGIN), 0);
    static const enum ferry_state dl[] = {FERRY_STATE_DOWNLOADING};
    expect_states(&w, dl, 1);
    CU_ASSERT_EQUAL(last_status(&w)->bytes, CHECKPOINT);
    CU_ASSERT_EQUAL(find(&w, EDGE_ACT_GET_BLOCK)->off, CHECKPOINT);
    CU_ASSERT_EQUAL(download_all(&w), 2);
    /* Not hashed in order this time: the slot check decides. */
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_FINISH), 1);
    world_free(&w);
}

static void restart_skips_the_blocks_the_checkpoint_lists(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    /* Block 0 is lost; the next eight arrive and make a checkpoint. */
    struct edge_action lost = take_request(&w);
    CU_ASSERT_EQUAL_FATAL(lost.off, 0);
    size_t syncs = 0, in = 0;
    while (in < 8) {
        answer_block(&w, w.art, w.art_len, w.sha);
        in += count(&w, EDGE_ACT_WRITE);
        syncs += count(&w, EDGE_ACT_SYNC);
    }
    CU_ASSERT_EQUAL(syncs, 1);
    const struct edge_job *job = &edge_fsm_saved(w.f)->job;
    CU_ASSERT_EQUAL(job->written, 0);
    CU_ASSERT_EQUAL(job->have_unit, BLOCK);
    CU_ASSERT_EQUAL(job->have[0], 0xfe); /* blocks 1..8 */
    CU_ASSERT_EQUAL(job->have[1], 0x01);

    crash_and_restart(&w, &st);
    CU_ASSERT_EQUAL(find(&w, EDGE_ACT_RESUME)->off, 0);
    CU_ASSERT_EQUAL(last_status(&w)->bytes, 8 * BLOCK);
    /* Only the blocks that were not durable are asked for: 0 and 9. */
    size_t blocks = 0;
    while (w.npend) {
        CU_ASSERT(w.pend[0].off == 0 || w.pend[0].off == 9 * BLOCK);
        answer_block(&w, w.art, w.art_len, w.sha);
        blocks++;
    }
    CU_ASSERT_EQUAL(blocks, 2);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_FINISH), 1);
    world_free(&w);
}

static void restart_after_resume_failure_starts_over(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    for (int i = 0; i < 9; i++)
        answer_block(&w, w.art, w.art_len, w.sha);
    crash_and_restart(&w, &st);
    edge_fsm_action_failed(w.f, &w.clk, EDGE_ACT_RESUME, FERRY_E_INVALID_ARG,
                           "slot B: holds a finished image", &w.out);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_BEGIN), 1);
    CU_ASSERT_EQUAL(find(&w, EDGE_ACT_GET_BLOCK)->off, 0);
    CU_ASSERT_EQUAL(edge_fsm_saved(w.f)->job.written, 0);
    world_free(&w);
}

static void restart_before_any_checkpoint_begins_again(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    send_manifest(&w, &w.m);
    answer_block(&w, w.art, w.art_len, w.sha);
    crash_and_restart(&w, &st);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_RESUME), 0);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_BEGIN), 1);
    world_free(&w);
}

static void restart_with_a_verified_image_returns_to_the_gate(void)
{
    struct world w;
    world_init(&w);
    to_gate(&w);
    busy(&w, true);
    int64_t since = edge_fsm_saved(w.f)->job.deferred_since;
    struct edge_boot_state st = running_old();
    struct edge_image img = new_image(&w);
    CU_ASSERT_EQUAL_FATAL(edge_boot_installed(&st, EDGE_SLOT_B, &img, NULL), FERRY_OK);
    w.clk.wall += 30;
    crash_and_restart(&w, &st);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_RUN_BUSY), 1);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_BEGIN) + count(&w, EDGE_ACT_RESUME), 0);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_STATUS), 0);
    CU_ASSERT_EQUAL(edge_fsm_phase(w.f), EDGE_PHASE_GATE);
    /* The deferral clock kept running across the restart. */
    CU_ASSERT_EQUAL(edge_fsm_saved(w.f)->job.deferred_since, since);
    world_free(&w);

    /* The slot lost the image meanwhile: download it again. */
    world_init(&w);
    to_gate(&w);
    st = running_old();
    crash_and_restart(&w, &st);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_BEGIN), 1);
    world_free(&w);
}

static void restart_during_trial_checks_health(void)
{
    struct world w;
    world_init(&w);
    w.cfg.trial_attempts = 2;
    edge_fsm_free(w.f);
    CU_ASSERT_EQUAL_FATAL(edge_fsm_new(&w.cfg, &w.f, NULL), FERRY_OK);
    to_health(&w);
    /* The boot state as the daemon left it: B on trial, one boot spent. */
    struct edge_boot_state st = running_old();
    struct edge_image img = new_image(&w);
    CU_ASSERT_EQUAL_FATAL(edge_boot_installed(&st, EDGE_SLOT_B, &img, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_boot_set_trial(&st, 2, NULL), FERRY_OK);
    struct edge_boot_state spent;
    enum edge_slot slot;
    edge_boot_decide(&st, &spent, &slot);
    CU_ASSERT_EQUAL_FATAL(spent.attempts, 1);

    crash_and_restart(&w, &spent);
    const struct edge_action *h = find(&w, EDGE_ACT_RUN_HEALTH);
    CU_ASSERT_EQUAL(h->slot, EDGE_SLOT_B);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_STATUS), 0); /* no idle while on trial */
    CU_ASSERT_EQUAL(edge_fsm_phase(w.f), EDGE_PHASE_HEALTH);
    edge_fsm_health(w.f, &w.clk, true, NULL, &w.out);
    CU_ASSERT_EQUAL(find(&w, EDGE_ACT_CONFIRM)->slot, EDGE_SLOT_B);
    CU_ASSERT_EQUAL(last_status(&w)->state, FERRY_STATE_SUCCESS);
    CU_ASSERT_STRING_EQUAL(last_status(&w)->release_id, w.m.release_id);
    world_free(&w);
}

static void crashed_trial_rolls_back_at_the_next_start(void)
{
    struct world w;
    world_init(&w);
    to_health(&w);
    /* One attempt, spent by the trial boot that then died. */
    struct edge_boot_state st = running_old();
    struct edge_image img = new_image(&w);
    CU_ASSERT_EQUAL_FATAL(edge_boot_installed(&st, EDGE_SLOT_B, &img, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_boot_set_trial(&st, 1, NULL), FERRY_OK);
    struct edge_boot_state spent;
    enum edge_slot slot;
    edge_boot_decide(&st, &spent, &slot);
    CU_ASSERT_EQUAL_FATAL(slot, EDGE_SLOT_B);

    crash_and_restart(&w, &spent);
    static const enum ferry_state rb[] = {FERRY_STATE_ROLLED_BACK, FERRY_STATE_IDLE};
    expect_states(&w, rb, 2);
    const struct ferry_status *s = &w.out.v[index_of(&w, EDGE_ACT_STATUS)].status;
    CU_ASSERT_PTR_NOT_NULL(strstr(s->message, "boot attempts ran out"));
    CU_ASSERT_STRING_EQUAL(s->release_id, w.m.release_id);
    CU_ASSERT_STRING_EQUAL(s->version, w.m.version);
    CU_ASSERT_STRING_EQUAL(last_status(&w)->version, "1.0.0");
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_RUN_HEALTH), 0);
    CU_ASSERT_EQUAL(edge_fsm_saved(w.f)->job.outcome, FERRY_STATE_ROLLED_BACK);
    world_free(&w);
}

static void bootloader_fallback_is_reported_as_such(void)
{
    struct world w;
    world_init(&w);
    to_gate(&w);
    busy(&w, false);
    /* Armed, rebooted: B never reached ferry-edge; the bootloader booted A. */
    struct edge_boot_state st = running_old();
    struct edge_image img = new_image(&w);
    CU_ASSERT_EQUAL_FATAL(edge_boot_installed(&st, EDGE_SLOT_B, &img, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_boot_set_trial(&st, 1, NULL), FERRY_OK);
    uint8_t buf[EDGE_FSM_SAVED_LEN];
    struct edge_fsm_saved saved;
    CU_ASSERT_EQUAL_FATAL(edge_fsm_saved_encode(edge_fsm_saved(w.f), buf, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_fsm_saved_decode(buf, sizeof(buf), &saved, NULL), FERRY_OK);
    edge_fsm_free(w.f);
    CU_ASSERT_EQUAL_FATAL(edge_fsm_new(&w.cfg, &w.f, NULL), FERRY_OK);
    struct edge_fsm_boot b;
    memset(&b, 0, sizeof(b));
    b.before = st;
    b.after = st;
    enum edge_slot to;
    CU_ASSERT_EQUAL_FATAL(edge_boot_rollback(&b.after, &to, NULL), FERRY_OK);
    b.booted = EDGE_SLOT_A;
    b.fell_back = true;
    edge_fsm_start(w.f, &w.clk, &b, &saved, &w.out);
    record(&w);
    static const enum ferry_state rb[] = {FERRY_STATE_ROLLED_BACK, FERRY_STATE_IDLE};
    expect_states(&w, rb, 2);
    const struct ferry_status *s = &w.out.v[index_of(&w, EDGE_ACT_STATUS)].status;
    CU_ASSERT_PTR_NOT_NULL(strstr(s->message, "the bootloader fell back to slot A"));
    CU_ASSERT_PTR_NOT_NULL(strstr(s->message, "boot attempts"));
    CU_ASSERT_STRING_EQUAL(s->release_id, w.m.release_id);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_RUN_HEALTH), 0);
    world_free(&w);
}

static void module_release_is_health_checked_in_place(void)
{
    struct world w;
    world_init(&w);
    to_gate(&w);
    busy(&w, false);
    CU_ASSERT_EQUAL_FATAL(count(&w, EDGE_ACT_REBOOT), 1);
    edge_fsm_installed(w.f, &w.clk, &w.out);
    record(&w);
    const struct edge_action *h = find(&w, EDGE_ACT_RUN_HEALTH);
    CU_ASSERT_EQUAL(h->slot, EDGE_SLOT_NONE);
    CU_ASSERT_STRING_EQUAL(h->img.version, w.m.version);
    edge_fsm_health(w.f, &w.clk, true, NULL, &w.out);
    record(&w);
    CU_ASSERT_EQUAL(find(&w, EDGE_ACT_CONFIRM)->slot, EDGE_SLOT_A); /* the running slot */
    CU_ASSERT_EQUAL(last_status(&w)->state, FERRY_STATE_SUCCESS);
    CU_ASSERT_STRING_EQUAL(last_status(&w)->version, w.m.version);
    /* The image still runs; its version is what idle reports. */
    CU_ASSERT_STRING_EQUAL(edge_fsm_running(w.f)->img.version, "1.0.0");
    /* The release's seq is the floor now. */
    struct ferry_manifest m2 = w.m;
    send_manifest(&w, &m2);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_BEGIN), 0);
    world_free(&w);
}

static void module_failing_its_health_check_rolls_back(void)
{
    struct world w;
    world_init(&w);
    to_gate(&w);
    busy(&w, false);
    edge_fsm_installed(w.f, &w.clk, &w.out);
    edge_fsm_health(w.f, &w.clk, false, "exit 2", &w.out);
    record(&w);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_ROLLBACK), 1);
    CU_ASSERT_EQUAL(last_status(&w)->state, FERRY_STATE_ROLLED_BACK);
    CU_ASSERT_STRING_EQUAL(edge_fsm_running(w.f)->img.version, "1.0.0");
    world_free(&w);
}

/* A restart with the saved job on trial and the module record's outcome. */
static void restart_module_job(struct world *w, enum edge_fsm_module module, uint64_t floor)
{
    to_gate(w);
    busy(w, false);
    uint8_t buf[EDGE_FSM_SAVED_LEN];
    struct edge_fsm_saved saved;
    CU_ASSERT_EQUAL_FATAL(edge_fsm_saved_encode(edge_fsm_saved(w->f), buf, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_fsm_saved_decode(buf, sizeof(buf), &saved, NULL), FERRY_OK);
    edge_fsm_free(w->f);
    CU_ASSERT_EQUAL_FATAL(edge_fsm_new(&w->cfg, &w->f, NULL), FERRY_OK);
    struct edge_boot_state st = running_old();
    struct edge_fsm_boot b = boot_of(&st);
    b.module = module;
    b.module_floor = floor;
    edge_fsm_start(w->f, &w->clk, &b, &saved, &w->out);
    record(w);
}

static void restart_carries_a_module_job_on(void)
{
    struct world w;
    world_init(&w);
    restart_module_job(&w, EDGE_FSM_MODULE_TRIAL, 0);
    CU_ASSERT_EQUAL(find(&w, EDGE_ACT_RUN_HEALTH)->slot, EDGE_SLOT_NONE);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_STATUS), 0);
    edge_fsm_health(w.f, &w.clk, true, NULL, &w.out);
    record(&w);
    CU_ASSERT_EQUAL(last_status(&w)->state, FERRY_STATE_SUCCESS);
    world_free(&w);

    world_init(&w);
    restart_module_job(&w, EDGE_FSM_MODULE_COMMITTED, 0);
    static const enum ferry_state ok[] = {FERRY_STATE_SUCCESS, FERRY_STATE_IDLE};
    expect_states(&w, ok, 2);
    CU_ASSERT_STRING_EQUAL(last_status(&w)->version, "1.0.0");
    world_free(&w);

    world_init(&w);
    restart_module_job(&w, EDGE_FSM_MODULE_ROLLED_BACK, 0);
    static const enum ferry_state rb[] = {FERRY_STATE_ROLLED_BACK, FERRY_STATE_IDLE};
    expect_states(&w, rb, 2);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(w.out.v[index_of(&w, EDGE_ACT_STATUS)].status.message, "ended while ferry-edge"));
    world_free(&w);
}

static void module_floor_refuses_older_releases(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    struct edge_fsm_boot b = boot_of(&st);
    b.module_floor = NEW_SEQ;
    edge_fsm_start(w.f, &w.clk, &b, NULL, &w.out);
    record(&w);
    send_manifest(&w, &w.m); /* seq NEW_SEQ: not above the floor */
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_BEGIN), 0);
    CU_ASSERT_EQUAL(last_status(&w)->error, FERRY_E_DOWNGRADE);
    world_free(&w);
}

static void release_for_other_nodes_is_passed_over(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st = running_old();
    start(&w, &st, NULL);
    struct ferry_manifest m2 = w.m;
    CU_ASSERT_EQUAL_FATAL(ferry_targets_add(&m2.nodes, "someone-else", NULL), FERRY_OK);
    send_manifest(&w, &m2);
    CU_ASSERT_EQUAL(w.out.n, 0); /* no record, no download */
    CU_ASSERT_EQUAL_FATAL(ferry_targets_add(&m2.nodes, w.cfg.node_id, NULL), FERRY_OK);
    send_manifest(&w, &m2);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_BEGIN), 1);
    world_free(&w);
}

static void restart_after_confirm_reports_success(void)
{
    struct world w;
    world_init(&w);
    to_health(&w);
    /* Confirmed, then the process died before the record was written. */
    struct edge_boot_state st = running_old();
    struct edge_image img = new_image(&w);
    CU_ASSERT_EQUAL_FATAL(edge_boot_installed(&st, EDGE_SLOT_B, &img, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_boot_set_trial(&st, 1, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_boot_confirm(&st, EDGE_SLOT_B, NULL), FERRY_OK);
    crash_and_restart(&w, &st);
    static const enum ferry_state ok[] = {FERRY_STATE_SUCCESS, FERRY_STATE_IDLE};
    expect_states(&w, ok, 2);
    CU_ASSERT_STRING_EQUAL(last_status(&w)->version, w.m.version);
    world_free(&w);
}

static void restart_after_rollback_reports_rolled_back(void)
{
    struct world w;
    world_init(&w);
    to_health(&w);
    struct edge_boot_state st = running_old(); /* B already dropped again */
    crash_and_restart(&w, &st);
    static const enum ferry_state rb[] = {FERRY_STATE_ROLLED_BACK, FERRY_STATE_IDLE};
    expect_states(&w, rb, 2);
    world_free(&w);
}

static void restart_before_the_trial_was_set_installs(void)
{
    struct world w;
    world_init(&w);
    to_gate(&w);
    busy(&w, false); /* job saved as TRIAL before the trial is set */
    struct edge_boot_state st = running_old();
    struct edge_image img = new_image(&w);
    CU_ASSERT_EQUAL_FATAL(edge_boot_installed(&st, EDGE_SLOT_B, &img, NULL), FERRY_OK);
    crash_and_restart(&w, &st);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_RUN_BUSY), 1);
    busy(&w, false);
    CU_ASSERT_EQUAL(count(&w, EDGE_ACT_TRIAL), 1);
    world_free(&w);
}

static void restart_with_nothing_under_way_reports_idle_once(void)
{
    struct world w;
    world_init(&w);
    struct edge_boot_state st;
    edge_boot_factory(&st);
    start(&w, &st, NULL);
    static const enum ferry_state idle[] = {FERRY_STATE_IDLE};
    expect_states(&w, idle, 1);
    CU_ASSERT_STRING_EQUAL(last_status(&w)->version, ""); /* a factory image is unknown */
    struct edge_fsm_boot b = boot_of(&st);
    edge_fsm_start(w.f, &w.clk, &b, NULL, &w.out);
    CU_ASSERT_EQUAL(w.out.n, 0); /* started already */
    world_free(&w);
}

/* ---- saved record and config -------------------------------------------------------------------
 */

static void saved_record_round_trips_and_detects_damage(void)
{
    struct world w;
    world_init(&w);
    to_gate(&w);
    busy(&w, true);
    const struct edge_fsm_saved *s = edge_fsm_saved(w.f);
    uint8_t buf[EDGE_FSM_SAVED_LEN];
    struct edge_fsm_saved back;
    CU_ASSERT_EQUAL_FATAL(edge_fsm_saved_encode(s, buf, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_fsm_saved_decode(buf, sizeof(buf), &back, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(back.job.phase, s->job.phase);
    CU_ASSERT_STRING_EQUAL(back.job.release_id, s->job.release_id);
    CU_ASSERT_STRING_EQUAL(back.job.img.version, s->job.img.version);
    CU_ASSERT_EQUAL(back.job.img.size, s->job.img.size);
    CU_ASSERT_EQUAL(back.job.img.seq, s->job.img.seq);
    CU_ASSERT_EQUAL(back.job.constraints.window_end, s->job.constraints.window_end);
    CU_ASSERT_EQUAL(back.job.constraints.must_be_idle, s->job.constraints.must_be_idle);
    CU_ASSERT_EQUAL(back.job.deferred_since, s->job.deferred_since);
    CU_ASSERT_EQUAL(back.job.etag_len, 8);
    CU_ASSERT_EQUAL(memcmp(back.job.digest, s->job.digest, FERRY_SHA256_LEN), 0);
    for (size_t i = 0; i < sizeof(buf); i += 37) {
        buf[i] ^= 0x10;
        struct ferry_diag d = {{0}};
        CU_ASSERT_EQUAL(edge_fsm_saved_decode(buf, sizeof(buf), &back, &d), FERRY_E_CORRUPT);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "job record"));
        buf[i] ^= 0x10;
    }
    CU_ASSERT_EQUAL(edge_fsm_saved_decode(buf, sizeof(buf) - 1, &back, NULL), FERRY_E_CORRUPT);

    /* A download's bitmap goes along; one that cannot be right does not. */
    struct edge_fsm_saved dl = *s;
    dl.job.phase = EDGE_JOB_DOWNLOADING;
    dl.job.written = 3 * 512;
    dl.job.have_unit = 512;
    dl.job.have[0] = 0x05;
    dl.job.have[31] = 0x80;
    CU_ASSERT_EQUAL_FATAL(edge_fsm_saved_encode(&dl, buf, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_fsm_saved_decode(buf, sizeof(buf), &back, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(back.job.have_unit, 512);
    CU_ASSERT_EQUAL(memcmp(back.job.have, dl.job.have, sizeof(dl.job.have)), 0);
    dl.job.have_unit = 500;
    CU_ASSERT_EQUAL(edge_fsm_saved_encode(&dl, buf, NULL), FERRY_E_INVALID_ARG);
    dl.job.have_unit = 1024; /* the offset is no multiple of it */
    CU_ASSERT_EQUAL(edge_fsm_saved_encode(&dl, buf, NULL), FERRY_E_INVALID_ARG);
    dl.job.have_unit = 0; /* bits without a unit */
    CU_ASSERT_EQUAL(edge_fsm_saved_encode(&dl, buf, NULL), FERRY_E_INVALID_ARG);
    world_free(&w);
}

static void config_is_checked(void)
{
    struct world w;
    world_init(&w);
    struct edge_fsm *f = NULL;
    struct ferry_diag d = {{0}};
    struct edge_fsm_config c = w.cfg;
    c.block_size = 1000;
    CU_ASSERT_EQUAL(edge_fsm_new(&c, &f, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "block size"));
    c = w.cfg;
    c.node_id = "bad node";
    CU_ASSERT_EQUAL(edge_fsm_new(&c, &f, &d), FERRY_E_INVALID_ARG);
    c = w.cfg;
    c.trial_attempts = 0;
    CU_ASSERT_EQUAL(edge_fsm_new(&c, &f, &d), FERRY_E_INVALID_ARG);
    c = w.cfg;
    c.checkpoint_bytes = 10;
    CU_ASSERT_EQUAL(edge_fsm_new(&c, &f, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NULL(f);
    CU_ASSERT_STRING_EQUAL(edge_act_name(EDGE_ACT_GET_BLOCK), "get-block");
    CU_ASSERT_STRING_EQUAL(edge_phase_name(EDGE_PHASE_GATE), "gate");
    world_free(&w);
}

const char *const ferry_suite_name = "edge_fsm";
const struct ferry_test_case ferry_tests[] = {
    {"release goes from available to success", release_goes_from_available_to_success},
    {"rejects unknown key", rejects_unknown_key},
    {"rejects bad signature", rejects_bad_signature},
    {"rejects revoked key", rejects_revoked_key},
    {"rejects other hardware", rejects_other_hardware},
    {"rejects another product line", rejects_another_product_line},
    {"rejects downgrade", rejects_downgrade},
    {"rejects expired", rejects_expired},
    {"rejects not yet valid", rejects_not_yet_valid},
    {"rejects artifact too large", rejects_artifact_too_large},
    {"rejects malformed envelope", rejects_malformed_envelope},
    {"running release is passed over", running_release_is_passed_over},
    {"rejections are remembered across restarts", rejections_are_remembered_across_restarts},
    {"busy device defers the install", busy_device_defers_the_install},
    {"install waits for the window", install_waits_for_the_window},
    {"closed window fails before any download", closed_window_fails_before_any_download},
    {"window closing during deferral fails expired", window_closing_during_deferral_fails_expired},
    {"must_be_idle fails after max deferral", must_be_idle_fails_after_max_deferral},
    {"max deferral without must_be_idle installs", max_deferral_without_must_be_idle_installs},
    {"node without busy command installs at once", node_without_busy_command_installs_at_once},
    {"progress records are throttled", progress_records_are_throttled},
    {"service unavailable waits its max age", service_unavailable_waits_its_max_age},
    {"errors back off up to the cap", errors_back_off_up_to_the_cap},
    {"client error fails the release", client_error_fails_the_release},
    {"expired manifest ends the retries", expired_manifest_ends_the_retries},
    {"unanswered requests are sent again", unanswered_requests_are_sent_again},
    {"a new session resends the window at once", a_new_session_resends_the_window_at_once},
    {"changed ETag alone changes nothing", changed_etag_alone_changes_nothing},
    {"replaced artifact is fetched again", replaced_artifact_is_fetched_again},
    {"answer without etag is accepted", answer_without_etag_is_accepted},
    {"duplicated and reordered answers do no harm", duplicated_and_reordered_answers_do_no_harm},
    {"every wrong answer is retried, then fails by name",
     every_wrong_answer_is_retried_then_fails_by_name},
    {"whole small artifact without Block2 is taken", whole_small_artifact_without_block2_is_taken},
    {"smaller blocks from the gateway are followed", smaller_blocks_from_the_gateway_are_followed},
    {"answer without Block2 is not a dead end", answer_without_block2_is_not_a_dead_end},
    {"expiry is checked after a bad answer", expiry_is_checked_after_a_bad_answer},
    {"same release again after a bad answer asks again",
     same_release_again_after_a_bad_answer_asks_again},
    {"artifact of the wrong size fails", artifact_of_the_wrong_size_fails},
    {"artifact too large for the block size fails", artifact_too_large_for_the_block_size_fails},
    {"wrong bytes fail before the slot is checked", wrong_bytes_fail_before_the_slot_is_checked},
    {"slot hash mismatch fails", slot_hash_mismatch_fails},
    {"storage failure fails the download", storage_failure_fails_the_download},
    {"failed save ends the job", failed_save_ends_the_job},
    {"newer release supersedes the download", newer_release_supersedes_the_download},
    {"failed health check rolls back", failed_health_check_rolls_back},
    {"health command that cannot run rolls back", health_command_that_cannot_run_rolls_back},
    {"confirm that fails rolls back", confirm_that_fails_rolls_back},
    {"failed reboot disarms the trial", failed_reboot_disarms_the_trial},
    {"module release is health-checked in place", module_release_is_health_checked_in_place},
    {"module failing its health check rolls back", module_failing_its_health_check_rolls_back},
    {"restart carries a module job on", restart_carries_a_module_job_on},
    {"release for other nodes is passed over", release_for_other_nodes_is_passed_over},
    {"module floor refuses older releases", module_floor_refuses_older_releases},
    {"bootloader fallback is reported as such", bootloader_fallback_is_reported_as_such},
    {"busy command that cannot run counts as busy", busy_command_that_cannot_run_counts_as_busy},
    {"manifests wait during the trial", manifests_wait_during_the_trial},
    {"restart resumes the download", restart_resumes_the_download},
    {"restart skips the blocks the checkpoint lists",
     restart_skips_the_blocks_the_checkpoint_lists},
    {"restart after resume failure starts over", restart_after_resume_failure_starts_over},
    {"restart before any checkpoint begins again", restart_before_any_checkpoint_begins_again},
    {"restart with a verified image returns to the gate",
     restart_with_a_verified_image_returns_to_the_gate},
    {"restart during trial checks health", restart_during_trial_checks_health},
    {"crashed trial rolls back at the next start", crashed_trial_rolls_back_at_the_next_start},
    {"restart after confirm reports success", restart_after_confirm_reports_success},
    {"restart after rollback reports rolled back", restart_after_rollback_reports_rolled_back},
    {"restart before the trial was set installs", restart_before_the_trial_was_set_installs},
    {"restart with nothing under way reports idle once",
     restart_with_nothing_under_way_reports_idle_once},
    {"saved record round-trips and detects damage", saved_record_round_trips_and_detects_damage},
    {"config is checked", config_is_checked},
    {NULL, NULL},
};
