/* For the slots' power-cut tests (test_edge_powercut.c,
 * test_inst_powercut.c): the file backend (edge_slots.h) with its boot
 * records rewritten in place instead of replaced atomically, as on a
 * platform that keeps them in flash sectors or raw env offsets. Each record
 * write is a pwrite at 0, a truncate to its length and an fsync, all through
 * the same struct ferry_io as the slots, so a torn power cut
 * (ferry_io_faulty.h) leaves the record half new and half garbage: the
 * worst edge_slots.h allows, which its CRC and second copy must absorb.
 * Also the plan both tests share: which call goes wrong, and how.
 *
 * Header-only: each test includes it once. */
#ifndef FERRY_TEST_SLOTS_INPLACE_H
#define FERRY_TEST_SLOTS_INPLACE_H

#include "edge_slots.h"
#include "ferry_fs.h"
#include "ferry_io.h"
#include "ferry_io_faulty.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct slots_inplace {
    struct edge_slots_backend be; /* what the test hands out: ops below, ctx = this */
    struct edge_slots_ops ops;
    struct edge_slots_backend inner; /* everything but record_write */
    const struct ferry_io *io;
    char dir[PATH_MAX / 2];
};

static const char *const SLOTS_INPLACE_RECORDS[3] = {"boot.0", "boot.1", "boot.lkg"};

static enum ferry_err slots_inplace_record_write(void *ctx, enum edge_boot_rec rec, const void *buf,
                                                 size_t len, struct ferry_diag *d)
{
    struct slots_inplace *p = ctx;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", p->dir, SLOTS_INPLACE_RECORDS[rec]);
    /* The records exist from the template on: no new name to make durable. */
    int fd = ferry_io_open(p->io, path, O_RDWR | O_CREAT, 0644);
    if (fd < 0)
        return ferry_fail(d, ferry_errno_err(errno), "%s: open: %s", path, strerror(errno));
    enum ferry_err err = ferry_pwrite_all_io(p->io, fd, buf, len, 0);
    if (err == FERRY_OK && ferry_io_ftruncate(p->io, fd, (off_t)len) != 0)
        err = ferry_errno_err(errno);
    if (err == FERRY_OK && ferry_io_fsync(p->io, fd) != 0)
        err = ferry_errno_err(errno);
    ferry_io_close(p->io, fd);
    return err == FERRY_OK ? FERRY_OK : ferry_fail(d, err, "%s: in-place write failed", path);
}

/* Every other operation is inner's, on inner's context. */
#define SLOTS_INPLACE_THUNK(name, params, args)                                                    \
    static enum ferry_err slots_inplace_##name params                                              \
    {                                                                                              \
        struct slots_inplace *p = ctx;                                                             \
        return p->inner.ops->name args;                                                            \
    }
SLOTS_INPLACE_THUNK(capacity, (void *ctx, enum edge_slot slot, uint64_t *out, struct ferry_diag *d),
                    (p->inner.ctx, slot, out, d))
SLOTS_INPLACE_THUNK(open_write,
                    (void *ctx, enum edge_slot slot, uint64_t size, struct ferry_diag *d),
                    (p->inner.ctx, slot, size, d))
SLOTS_INPLACE_THUNK(write,
                    (void *ctx, enum edge_slot slot, uint64_t off, const void *buf, size_t len,
                     struct ferry_diag *d),
                    (p->inner.ctx, slot, off, buf, len, d))
SLOTS_INPLACE_THUNK(read,
                    (void *ctx, enum edge_slot slot, uint64_t off, void *buf, size_t len,
                     struct ferry_diag *d),
                    (p->inner.ctx, slot, off, buf, len, d))
SLOTS_INPLACE_THUNK(sync, (void *ctx, enum edge_slot slot, struct ferry_diag *d),
                    (p->inner.ctx, slot, d))
SLOTS_INPLACE_THUNK(mark_invalid, (void *ctx, enum edge_slot slot, struct ferry_diag *d),
                    (p->inner.ctx, slot, d))
SLOTS_INPLACE_THUNK(record_read,
                    (void *ctx, enum edge_boot_rec rec, void *buf, size_t cap, size_t *len,
                     struct ferry_diag *d),
                    (p->inner.ctx, rec, buf, cap, len, d))
#undef SLOTS_INPLACE_THUNK

/* Wraps `inner` (a file backend over dir, through io); p must outlive the
 * result, p->be. */
static void slots_inplace_init(struct slots_inplace *p, const struct edge_slots_backend *inner,
                               const struct ferry_io *io, const char *dir)
{
    memset(p, 0, sizeof(*p));
    p->inner = *inner;
    p->io = io;
    snprintf(p->dir, sizeof(p->dir), "%s", dir);
    p->ops = (struct edge_slots_ops){
        .capacity = slots_inplace_capacity,
        .open_write = slots_inplace_open_write,
        .write = slots_inplace_write,
        .read = slots_inplace_read,
        .sync = slots_inplace_sync,
        .mark_invalid = slots_inplace_mark_invalid,
        .record_read = slots_inplace_record_read,
        .record_write = slots_inplace_record_write,
    };
    p->be.ops = &p->ops;
    p->be.ctx = p;
}

/* How the slots' power-cut tests make numbered call k go wrong, and what
 * they count calls by. */
enum slots_fault {
    CUT_POWER,      /* the power fails at call k */
    CUT_POWER_TORN, /* the same, unsynced writes half done */
    FAIL_CALL,      /* call k fails (EIO), the program goes on; power fails after the run */
};
#define NO_FAULT UINT64_MAX

static inline const char *slots_fault_name(enum slots_fault fault)
{
    static const char *const names[] = {"power cut", "torn power cut", "failed call"};
    return names[fault];
}

/* How the power fails: at call k, or (FAIL_CALL) after the run. */
static inline enum ferry_io_stop slots_fault_stop(enum slots_fault fault)
{
    return fault == CUT_POWER_TORN ? FERRY_IO_POWER_TORN : FERRY_IO_POWER;
}

/* Sets f up to make call k (NO_FAULT: none) go wrong as fault says. */
static inline void slots_fault_arm(struct ferry_io_faulty *f, enum slots_fault fault, uint64_t k)
{
    if (fault == FAIL_CALL) {
        struct ferry_io_fail rule = {.after = k, .count = 1, .error = EIO};
        if (k != NO_FAULT)
            ferry_io_faulty_fail(f, &rule);
    } else {
        ferry_io_faulty_stop_at(f, k == NO_FAULT ? FERRY_IO_NO_STOP : k, slots_fault_stop(fault));
    }
}

/* The calls a run made, as fault numbers them (a failure rule counts calls
 * of every kind), then the power cut that ends every run. */
static inline uint64_t slots_fault_end(struct ferry_io_faulty *f, enum slots_fault fault)
{
    uint64_t calls = 0;
    if (fault == FAIL_CALL)
        for (int k = 0; k < FERRY_IO_CALL__COUNT; k++)
            calls += ferry_io_faulty_count(f, (enum ferry_io_call)k);
    else
        calls = ferry_io_faulty_calls(f);
    ferry_io_faulty_stop(f, slots_fault_stop(fault));
    return calls;
}

#endif
