/* Fault-injecting backend wrapper (edge_slots.h describes the model): a
 * storage that loses power at a chosen mutating operation, in the manner of
 * MCUboot's flash simulator. It keeps the ranges written since each slot's
 * last sync (offsets only, never data) so the cut can destroy them. */
#include "edge_slots.h"

#include <stdlib.h>
#include <string.h>

struct range {
    uint64_t off, len;
};

struct dirty {
    struct range *r;
    size_t n, cap;
};

struct edge_slots_faulty {
    struct edge_slots_backend be; /* what we hand out: FAULTY_OPS, ctx = this */
    struct edge_slots_backend inner;
    uint64_t cut_at;
    uint64_t ops;
    unsigned flags;
    bool cut;
    struct dirty dirty[2];
};

/* Position-dependent filler, so lost bytes never read back as a plausible
 * image or as one repeated byte. */
static uint8_t garbage(uint64_t pos)
{
    return (uint8_t)(((pos + 1) * UINT64_C(0x9E3779B97F4A7C15)) >> 56);
}

/* Makes room for one more range before the write it stands for, so that
 * recording it afterwards cannot fail. */
static enum ferry_err reserve_dirty(struct dirty *dl, struct ferry_diag *d)
{
    if (dl->n < dl->cap)
        return FERRY_OK;
    size_t cap = dl->cap ? dl->cap * 2 : 16;
    struct range *r = realloc(dl->r, cap * sizeof(*r));
    if (!r)
        return ferry_fail(d, FERRY_E_NOMEM, "faulty storage: out of memory");
    dl->r = r;
    dl->cap = cap;
    return FERRY_OK;
}

static void add_dirty(struct dirty *dl, uint64_t off, uint64_t len)
{
    if (dl->n > 0) {
        /* Blocks mostly arrive in order: extend the last range when they touch. */
        struct range *last = &dl->r[dl->n - 1];
        if (off <= last->off + last->len && off + len >= last->off) {
            uint64_t end = last->off + last->len > off + len ? last->off + last->len : off + len;
            last->off = last->off < off ? last->off : off;
            last->len = end - last->off;
            return;
        }
    }
    dl->r[dl->n].off = off;
    dl->r[dl->n].len = len;
    dl->n++;
}

/* The inner backend's own errors are ignored here: if destroying a range
 * fails, the bytes survive, which is the milder outcome and still legal. */
static void destroy_range(struct edge_slots_faulty *f, enum edge_slot slot, struct range r)
{
    uint8_t buf[256];
    for (uint64_t pos = r.off; pos < r.off + r.len;) {
        uint64_t left = r.off + r.len - pos;
        size_t n = left < sizeof(buf) ? (size_t)left : sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = garbage(pos + i);
        (void)f->inner.ops->write(f->inner.ctx, slot, pos, buf, n, NULL);
        pos += n;
    }
}

static void power_fail(struct edge_slots_faulty *f)
{
    f->cut = true;
    for (int s = 0; s < 2; s++) {
        for (size_t i = 0; i < f->dirty[s].n; i++)
            destroy_range(f, (enum edge_slot)s, f->dirty[s].r[i]);
        f->dirty[s].n = 0;
    }
}

static enum ferry_err dead(struct ferry_diag *d)
{
    return ferry_fail(d, FERRY_E_IO, "faulty storage: power cut");
}

static bool at_cut_now(const struct edge_slots_faulty *f)
{
    return !f->cut && f->ops == f->cut_at;
}

/* Counts one mutating operation; FERRY_OK when it may go ahead. */
static enum ferry_err step(struct edge_slots_faulty *f, struct ferry_diag *d)
{
    if (f->cut)
        return dead(d);
    if (f->ops++ == f->cut_at) {
        power_fail(f);
        return dead(d);
    }
    return FERRY_OK;
}

static enum ferry_err fy_capacity(void *ctx, enum edge_slot slot, uint64_t *out,
                                  struct ferry_diag *d)
{
    struct edge_slots_faulty *f = ctx;
    if (f->cut)
        return dead(d);
    return f->inner.ops->capacity(f->inner.ctx, slot, out, d);
}

static enum ferry_err fy_open_write(void *ctx, enum edge_slot slot, uint64_t size,
                                    struct ferry_diag *d)
{
    struct edge_slots_faulty *f = ctx;
    enum ferry_err err = step(f, d);
    if (err == FERRY_OK)
        err = f->inner.ops->open_write(f->inner.ctx, slot, size, d);
    if (err == FERRY_OK)
        f->dirty[slot].n = 0; /* erased for good: nothing older to lose */
    return err;
}

static enum ferry_err fy_write(void *ctx, enum edge_slot slot, uint64_t off, const void *buf,
                               size_t len, struct ferry_diag *d)
{
    struct edge_slots_faulty *f = ctx;
    enum ferry_err err = reserve_dirty(&f->dirty[slot], d);
    if (err != FERRY_OK)
        return err;
    if (at_cut_now(f))
        add_dirty(&f->dirty[slot], off, len); /* the write in flight is torn too */
    err = step(f, d);
    if (err == FERRY_OK)
        err = f->inner.ops->write(f->inner.ctx, slot, off, buf, len, d);
    if (err == FERRY_OK)
        add_dirty(&f->dirty[slot], off, len);
    return err;
}

static enum ferry_err fy_read(void *ctx, enum edge_slot slot, uint64_t off, void *buf, size_t len,
                              struct ferry_diag *d)
{
    struct edge_slots_faulty *f = ctx;
    if (f->cut)
        return dead(d);
    return f->inner.ops->read(f->inner.ctx, slot, off, buf, len, d);
}

static enum ferry_err fy_sync(void *ctx, enum edge_slot slot, struct ferry_diag *d)
{
    struct edge_slots_faulty *f = ctx;
    enum ferry_err err = step(f, d);
    if (err == FERRY_OK)
        err = f->inner.ops->sync(f->inner.ctx, slot, d);
    if (err == FERRY_OK)
        f->dirty[slot].n = 0;
    return err;
}

static enum ferry_err fy_mark_invalid(void *ctx, enum edge_slot slot, struct ferry_diag *d)
{
    struct edge_slots_faulty *f = ctx;
    enum ferry_err err = step(f, d);
    if (err == FERRY_OK)
        err = f->inner.ops->mark_invalid(f->inner.ctx, slot, d);
    return err;
}

static enum ferry_err fy_record_read(void *ctx, enum edge_boot_rec rec, void *buf, size_t cap,
                                     size_t *len, struct ferry_diag *d)
{
    struct edge_slots_faulty *f = ctx;
    if (f->cut)
        return dead(d);
    return f->inner.ops->record_read(f->inner.ctx, rec, buf, cap, len, d);
}

/* What an in-place record write leaves when the power fails half way. */
static void tear_record(struct edge_slots_faulty *f, enum edge_boot_rec rec, const uint8_t *buf,
                        size_t len)
{
    uint8_t torn[EDGE_BOOT_REC_MAX];
    if (len > sizeof(torn))
        len = sizeof(torn);
    for (size_t i = 0; i < len; i++)
        torn[i] = i < len / 2 ? buf[i] : garbage(i);
    (void)f->inner.ops->record_write(f->inner.ctx, rec, torn, len, NULL);
}

static enum ferry_err fy_record_write(void *ctx, enum edge_boot_rec rec, const void *buf,
                                      size_t len, struct ferry_diag *d)
{
    struct edge_slots_faulty *f = ctx;
    if (at_cut_now(f) && (f->flags & EDGE_FAULTY_TEAR_RECORDS))
        tear_record(f, rec, buf, len);
    enum ferry_err err = step(f, d);
    if (err == FERRY_OK)
        err = f->inner.ops->record_write(f->inner.ctx, rec, buf, len, d);
    return err;
}

static const struct edge_slots_ops FAULTY_OPS = {
    .capacity = fy_capacity,
    .open_write = fy_open_write,
    .write = fy_write,
    .read = fy_read,
    .sync = fy_sync,
    .mark_invalid = fy_mark_invalid,
    .record_read = fy_record_read,
    .record_write = fy_record_write,
};

enum ferry_err edge_slots_faulty_new(const struct edge_slots_backend *inner, uint64_t cut_at,
                                     unsigned flags, struct edge_slots_faulty **out,
                                     struct ferry_diag *d)
{
    if (flags & ~EDGE_FAULTY_TEAR_RECORDS)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "faulty storage: unknown flags 0x%x", flags);
    struct edge_slots_faulty *f = calloc(1, sizeof(*f));
    if (!f)
        return ferry_fail(d, FERRY_E_NOMEM, "faulty storage: out of memory");
    f->be.ops = &FAULTY_OPS;
    f->be.ctx = f;
    f->inner = *inner;
    f->cut_at = cut_at;
    f->flags = flags;
    *out = f;
    return FERRY_OK;
}

void edge_slots_faulty_free(struct edge_slots_faulty *f)
{
    if (!f)
        return;
    free(f->dirty[0].r);
    free(f->dirty[1].r);
    free(f);
}

const struct edge_slots_backend *edge_slots_faulty_backend(const struct edge_slots_faulty *f)
{
    return &f->be;
}

uint64_t edge_slots_faulty_ops(const struct edge_slots_faulty *f)
{
    return f->ops;
}

bool edge_slots_faulty_is_cut(const struct edge_slots_faulty *f)
{
    return f->cut;
}

enum ferry_err edge_slots_faulty_step(struct edge_slots_faulty *f, bool *at_cut,
                                      struct ferry_diag *d)
{
    *at_cut = at_cut_now(f);
    return step(f, d);
}
