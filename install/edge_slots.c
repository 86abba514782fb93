#include "edge_slots.h"

#include "ferry_sha256.h"

#include <stdlib.h>
#include <string.h>

struct edge_slots {
    struct edge_slots_backend be;
    struct edge_boot_state st;
    int newest; /* copy holding st, -1 when st came from elsewhere */
    enum edge_boot_source source;
    bool installing;
    enum edge_slot target;
    struct edge_image img;
    uint64_t progress;
};

static const char *slot_label(enum edge_slot slot)
{
    return slot == EDGE_SLOT_A ? "slot A" : "slot B";
}

/* A record that does not exist reads as absent; anything else that fails
 * to read stops the load (see record_read in edge_slots.h). */
static enum ferry_err read_record(struct edge_slots *s, enum edge_boot_rec rec, uint8_t *buf,
                                  struct edge_boot_raw *raw, struct ferry_diag *d)
{
    size_t len = 0;
    enum ferry_err err = s->be.ops->record_read(s->be.ctx, rec, buf, EDGE_BOOT_REC_MAX, &len, d);
    if (err == FERRY_E_NOT_FOUND) {
        raw->buf = NULL;
        raw->len = 0;
        return FERRY_OK;
    }
    if (err != FERRY_OK)
        return err;
    raw->buf = buf;
    raw->len = len;
    return FERRY_OK;
}

enum ferry_err edge_slots_open(const struct edge_slots_backend *backend, struct edge_slots **out,
                               struct ferry_diag *d)
{
    uint8_t bufs[3][EDGE_BOOT_REC_MAX];
    struct edge_boot_raw raw[3];
    struct edge_slots *s = calloc(1, sizeof(*s));
    if (!s)
        return ferry_fail(d, FERRY_E_NOMEM, "slots: out of memory");
    s->be = *backend;
    for (int i = 0; i < 3; i++) {
        enum ferry_err err = read_record(s, (enum edge_boot_rec)i, bufs[i], &raw[i], d);
        if (err != FERRY_OK) {
            free(s);
            return err;
        }
    }
    edge_boot_select(raw, raw[2], &s->st, &s->newest, &s->source);
    *out = s;
    return FERRY_OK;
}

void edge_slots_free(struct edge_slots *s)
{
    free(s);
}

const struct edge_boot_state *edge_slots_state(const struct edge_slots *s)
{
    return &s->st;
}

enum edge_boot_source edge_slots_source(const struct edge_slots *s)
{
    return s->source;
}

uint64_t edge_slots_progress(const struct edge_slots *s)
{
    return s->installing ? s->progress : 0;
}

/* Writes next (generation + 1) over the copy that does not hold the newest
 * state; only once that worked does it become the state in memory. */
static enum ferry_err store(struct edge_slots *s, const struct edge_boot_state *next,
                            struct ferry_diag *d)
{
    uint8_t rec[EDGE_BOOT_STATE_LEN];
    struct edge_boot_state st = *next;
    st.generation = s->st.generation + 1;
    enum ferry_err err = edge_boot_encode(&st, rec, d);
    if (err != FERRY_OK)
        return err;
    int target = s->newest == 0 ? 1 : 0;
    err = s->be.ops->record_write(s->be.ctx, (enum edge_boot_rec)target, rec, sizeof(rec), d);
    if (err != FERRY_OK)
        return err;
    s->st = st;
    s->newest = target;
    return FERRY_OK;
}

static bool image_equal(const struct edge_image *a, const struct edge_image *b)
{
    return a->size == b->size && a->seq == b->seq &&
           memcmp(a->sha256, b->sha256, sizeof(a->sha256)) == 0 &&
           strcmp(a->version, b->version) == 0;
}

/* The LKG record must name the confirmed slot before the other slot is
 * overwritten: after that, an older LKG would point at a half-written image. */
static enum ferry_err ensure_lkg(struct edge_slots *s, struct ferry_diag *d)
{
    if (!s->st.confirmed)
        return FERRY_OK;
    const struct edge_image *want = &s->st.slot[s->st.active].img;
    uint8_t buf[EDGE_BOOT_REC_MAX];
    struct edge_boot_raw raw;
    enum ferry_err err = read_record(s, EDGE_REC_LKG, buf, &raw, d);
    if (err != FERRY_OK)
        return err;
    enum edge_slot slot;
    struct edge_image img;
    if (raw.buf && edge_boot_lkg_decode(raw.buf, raw.len, &slot, &img, NULL) == FERRY_OK &&
        slot == s->st.active && image_equal(&img, want))
        return FERRY_OK;
    err = edge_boot_lkg_encode(s->st.active, want, buf, d);
    if (err != FERRY_OK)
        return err;
    return s->be.ops->record_write(s->be.ctx, EDGE_REC_LKG, buf, EDGE_BOOT_LKG_LEN, d);
}

/* Streams img->size bytes of the slot through SHA-256 and compares. */
static enum ferry_err check_contents(struct edge_slots *s, enum edge_slot slot,
                                     const struct edge_image *img, struct ferry_diag *d)
{
    uint8_t chunk[EDGE_SLOTS_IO_CHUNK];
    uint8_t digest[FERRY_SHA256_LEN];
    struct ferry_sha256 h;
    ferry_sha256_init(&h);
    for (uint64_t off = 0; off < img->size;) {
        uint64_t left = img->size - off;
        size_t n = left < sizeof(chunk) ? (size_t)left : sizeof(chunk);
        enum ferry_err err = s->be.ops->read(s->be.ctx, slot, off, chunk, n, d);
        if (err != FERRY_OK) {
            ferry_sha256_final(&h, digest);
            return err;
        }
        ferry_sha256_update(&h, chunk, n);
        off += n;
    }
    ferry_sha256_final(&h, digest);
    if (memcmp(digest, img->sha256, FERRY_SHA256_LEN) != 0)
        return ferry_fail(d, FERRY_E_HASH_MISMATCH,
                          "%s: SHA-256 of the stored image differs from the expected one",
                          slot_label(slot));
    return FERRY_OK;
}

static enum ferry_err check_capacity(struct edge_slots *s, enum edge_slot slot, uint64_t size,
                                     struct ferry_diag *d)
{
    uint64_t cap = 0;
    enum ferry_err err = s->be.ops->capacity(s->be.ctx, slot, &cap, d);
    if (err != FERRY_OK)
        return err;
    if (size > cap)
        return ferry_fail(d, FERRY_E_ARTIFACT_TOO_LARGE, "%s: image of %llu bytes, room for %llu",
                          slot_label(slot), (unsigned long long)size, (unsigned long long)cap);
    return FERRY_OK;
}

static enum ferry_err check_new_image(const struct edge_slots *s, const struct edge_image *img,
                                      struct ferry_diag *d)
{
    if (s->st.trial != EDGE_SLOT_NONE)
        return ferry_fail(d, FERRY_E_BUSY, "slots: slot %s is on trial, confirm or roll back first",
                          edge_slot_name(s->st.trial));
    enum ferry_err err = edge_image_check(img, d);
    if (err != FERRY_OK)
        return err;
    const struct edge_slot_info *run = &s->st.slot[s->st.active];
    uint64_t floor = s->st.rollback_seq;
    if (run->valid && run->img.seq > floor)
        floor = run->img.seq;
    if (img->seq <= floor)
        return ferry_fail(d, FERRY_E_DOWNGRADE, "slots: seq %llu is not above the running %llu",
                          (unsigned long long)img->seq, (unsigned long long)floor);
    return FERRY_OK;
}

enum ferry_err edge_slots_begin(struct edge_slots *s, const struct edge_image *img,
                                struct ferry_diag *d)
{
    s->installing = false;
    enum edge_slot target = edge_slot_other(s->st.active);
    enum ferry_err err = check_new_image(s, img, d);
    if (err == FERRY_OK)
        err = check_capacity(s, target, img->size, d);
    if (err == FERRY_OK)
        err = ensure_lkg(s, d);
    if (err != FERRY_OK)
        return err;
    if (s->st.slot[target].valid) {
        struct edge_boot_state next = s->st;
        err = edge_boot_invalidate(&next, target, d);
        if (err == FERRY_OK)
            err = store(s, &next, d);
        if (err != FERRY_OK)
            return err;
    }
    err = s->be.ops->mark_invalid(s->be.ctx, target, d);
    if (err == FERRY_OK)
        err = s->be.ops->open_write(s->be.ctx, target, img->size, d);
    if (err != FERRY_OK)
        return err;
    s->installing = true;
    s->target = target;
    s->img = *img;
    s->progress = 0;
    return FERRY_OK;
}

enum ferry_err edge_slots_resume(struct edge_slots *s, const struct edge_image *img,
                                 uint64_t written, struct ferry_diag *d)
{
    s->installing = false;
    enum edge_slot target = edge_slot_other(s->st.active);
    enum ferry_err err = check_new_image(s, img, d);
    if (err == FERRY_OK)
        err = check_capacity(s, target, img->size, d);
    if (err == FERRY_OK && s->st.slot[target].valid)
        err = ferry_fail(d, FERRY_E_INVALID_ARG,
                         "%s: holds a finished image, an install cannot resume into it",
                         slot_label(target));
    if (err == FERRY_OK && written > img->size)
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "slots: resume at %llu past the image size %llu",
                         (unsigned long long)written, (unsigned long long)img->size);
    /* begin() checked the LKG record before it erased; a restart may have
     * found the state elsewhere since, so check again (a no-op normally). */
    if (err == FERRY_OK)
        err = ensure_lkg(s, d);
    if (err != FERRY_OK)
        return err;
    s->installing = true;
    s->target = target;
    s->img = *img;
    s->progress = written;
    return FERRY_OK;
}

enum ferry_err edge_slots_sync(struct edge_slots *s, struct ferry_diag *d)
{
    if (!s->installing)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "slots: no install under way");
    return s->be.ops->sync(s->be.ctx, s->target, d);
}

enum ferry_err edge_slots_write(struct edge_slots *s, uint64_t off, const void *buf, size_t len,
                                struct ferry_diag *d)
{
    if (!s->installing)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "slots: no install under way");
    if (len == 0 || len > EDGE_SLOTS_MAX_BLOCK)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "slots: block of %zu bytes, must be 1..%d", len,
                          EDGE_SLOTS_MAX_BLOCK);
    if (off > s->img.size || len > s->img.size - off)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "slots: block at %llu+%zu reaches past the image size %llu",
                          (unsigned long long)off, len, (unsigned long long)s->img.size);
    enum ferry_err err = s->be.ops->write(s->be.ctx, s->target, off, buf, len, d);
    if (err != FERRY_OK)
        return err;
    if (off + len > s->progress)
        s->progress = off + len;
    return FERRY_OK;
}

enum ferry_err edge_slots_finish(struct edge_slots *s, struct ferry_diag *d)
{
    if (!s->installing)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "slots: no install under way");
    s->installing = false;
    enum ferry_err err = s->be.ops->sync(s->be.ctx, s->target, d);
    if (err == FERRY_OK)
        err = check_contents(s, s->target, &s->img, d);
    if (err != FERRY_OK)
        return err;
    struct edge_boot_state next = s->st;
    err = edge_boot_installed(&next, s->target, &s->img, d);
    if (err != FERRY_OK)
        return err;
    return store(s, &next, d);
}

void edge_slots_abort(struct edge_slots *s)
{
    s->installing = false;
}

enum ferry_err edge_slots_set_trial(struct edge_slots *s, unsigned attempts, struct ferry_diag *d)
{
    struct edge_boot_state next = s->st;
    enum ferry_err err = edge_boot_set_trial(&next, attempts, d);
    if (err != FERRY_OK)
        return err;
    return store(s, &next, d);
}

/* Stores a state that ended a trial, then tells the platform the rolled-back
 * slot is no longer bootable. */
static enum ferry_err store_rollback(struct edge_slots *s, const struct edge_boot_state *next,
                                     struct ferry_diag *d)
{
    enum edge_slot dropped = s->st.trial;
    enum ferry_err err = store(s, next, d);
    if (err != FERRY_OK)
        return err;
    return s->be.ops->mark_invalid(s->be.ctx, dropped, d);
}

enum ferry_err edge_slots_boot(struct edge_slots *s, enum edge_slot *slot, struct ferry_diag *d)
{
    struct edge_boot_state next;
    enum edge_slot boot;
    enum ferry_err err = FERRY_OK;
    if (edge_boot_decide(&s->st, &next, &boot)) {
        if (next.trial == EDGE_SLOT_NONE)
            err = store_rollback(s, &next, d);
        else
            err = store(s, &next, d);
    }
    if (err != FERRY_OK)
        return err;
    *slot = boot;
    return FERRY_OK;
}

enum ferry_err edge_slots_replace(struct edge_slots *s, const struct edge_boot_state *next,
                                  struct ferry_diag *d)
{
    enum ferry_err err = edge_boot_check(next, d);
    if (err != FERRY_OK)
        return err;
    if (s->st.trial != EDGE_SLOT_NONE && next->trial == EDGE_SLOT_NONE)
        return store_rollback(s, next, d);
    return store(s, next, d);
}

/* Both states are valid (they pass edge_boot_check()), so their encodings
 * compare without struct padding in the way. */
static bool same_state(const struct edge_boot_state *a, const struct edge_boot_state *b)
{
    uint8_t ea[EDGE_BOOT_STATE_LEN], eb[EDGE_BOOT_STATE_LEN];
    return edge_boot_encode(a, ea, NULL) == FERRY_OK && edge_boot_encode(b, eb, NULL) == FERRY_OK &&
           memcmp(ea, eb, sizeof(ea)) == 0;
}

enum ferry_err edge_slots_confirm(struct edge_slots *s, enum edge_slot running,
                                  struct ferry_diag *d)
{
    struct edge_boot_state next = s->st;
    enum ferry_err err = edge_boot_confirm(&next, running, d);
    if (err == FERRY_OK && !same_state(&next, &s->st))
        err = store(s, &next, d);
    if (err != FERRY_OK)
        return err;
    return ensure_lkg(s, d);
}

enum ferry_err edge_slots_rollback(struct edge_slots *s, enum edge_slot *boot, struct ferry_diag *d)
{
    struct edge_boot_state next = s->st;
    enum edge_slot to;
    enum ferry_err err = edge_boot_rollback(&next, &to, d);
    if (err == FERRY_OK)
        err = store_rollback(s, &next, d);
    if (err != FERRY_OK)
        return err;
    *boot = to;
    return FERRY_OK;
}

enum ferry_err edge_slots_verify(struct edge_slots *s, enum edge_slot slot, struct ferry_diag *d)
{
    if (slot != EDGE_SLOT_A && slot != EDGE_SLOT_B)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "slots: slot must be A or B");
    if (!s->st.slot[slot].valid)
        return ferry_fail(d, FERRY_E_NOT_FOUND, "%s: holds no valid image", slot_label(slot));
    return check_contents(s, slot, &s->st.slot[slot].img, d);
}

enum ferry_err edge_slots_adopt(struct edge_slots *s, enum edge_slot slot,
                                const struct edge_image *img, struct ferry_diag *d)
{
    struct edge_boot_state next = s->st;
    enum ferry_err err = edge_boot_adopt(&next, slot, img, d);
    if (err == FERRY_OK)
        err = check_capacity(s, slot, img->size, d);
    if (err == FERRY_OK)
        err = check_contents(s, slot, img, d);
    if (err != FERRY_OK)
        return err;
    return store(s, &next, d);
}
