/* File backend for edge_slots.h: the layout and guarantees are described
 * there, next to edge_slots_file_new(). */
#include "edge_slots.h"

#include "ferry_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Leaves room in PATH_MAX for "/boot.lkg.tmp.<pid>", the longest name joined. */
#define DIR_MAX (PATH_MAX - 32)

struct file_backend {
    struct edge_slots_backend be; /* first: the handle we give out */
    char dir[DIR_MAX];
    uint64_t capacity;
    int fd[2]; /* open image files, -1 until first use */
};

static const char *const IMAGE_NAMES[2] = {"slot-a.img", "slot-b.img"};
static const char *const RECORD_NAMES[3] = {"boot.0", "boot.1", "boot.lkg"};

static enum ferry_err errno_err(int e)
{
    if (e == ENOSPC || e == EDQUOT)
        return FERRY_E_NOSPACE;
    return e == ENOENT ? FERRY_E_NOT_FOUND : FERRY_E_IO;
}

static void join(const struct file_backend *fb, const char *name, char out[PATH_MAX])
{
    /* dir leaves room for every name we join to it. */
    snprintf(out, PATH_MAX, "%s/%s", fb->dir, name);
}

/* Opens the slot's image file once and keeps it; `create` only for writers,
 * so reading a slot never makes an empty file appear. */
static enum ferry_err image_fd(struct file_backend *fb, enum edge_slot slot, bool create, int *fd,
                               struct ferry_diag *d)
{
    if (fb->fd[slot] < 0) {
        char path[PATH_MAX];
        join(fb, IMAGE_NAMES[slot], path);
        int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
        int f = open(path, flags, 0644);
        if (f < 0)
            return ferry_fail(d, errno_err(errno), "%s: %s", path, strerror(errno));
        if (create) {
            /* The new name must survive a power cut as well as its bytes. */
            enum ferry_err err = ferry_fsync_dir(path);
            if (err != FERRY_OK) {
                close(f);
                return ferry_fail(d, err, "%s: fsync of its folder failed", path);
            }
        }
        fb->fd[slot] = f;
    }
    *fd = fb->fd[slot];
    return FERRY_OK;
}

static enum ferry_err fail_errno(struct file_backend *fb, enum edge_slot slot, const char *op,
                                 int e, struct ferry_diag *d)
{
    return ferry_fail(d, errno_err(e), "%s/%s: %s: %s", fb->dir, IMAGE_NAMES[slot], op,
                      strerror(e));
}

static enum ferry_err truncate_durably(struct file_backend *fb, enum edge_slot slot, int fd,
                                       struct ferry_diag *d)
{
    if (ftruncate(fd, 0) != 0)
        return fail_errno(fb, slot, "truncate", errno, d);
    if (fsync(fd) != 0)
        return fail_errno(fb, slot, "fsync", errno, d);
    return FERRY_OK;
}

static enum ferry_err fb_capacity(void *ctx, enum edge_slot slot, uint64_t *out,
                                  struct ferry_diag *d)
{
    (void)slot;
    (void)d;
    const struct file_backend *fb = ctx;
    *out = fb->capacity;
    return FERRY_OK;
}

static enum ferry_err fb_open_write(void *ctx, enum edge_slot slot, uint64_t size,
                                    struct ferry_diag *d)
{
    struct file_backend *fb = ctx;
    int fd = -1;
    if (size > fb->capacity)
        return ferry_fail(d, FERRY_E_NOSPACE, "%s/%s: %llu bytes do not fit in %llu", fb->dir,
                          IMAGE_NAMES[slot], (unsigned long long)size,
                          (unsigned long long)fb->capacity);
    enum ferry_err err = image_fd(fb, slot, true, &fd, d);
    if (err != FERRY_OK)
        return err;
    return truncate_durably(fb, slot, fd, d);
}

static enum ferry_err fb_write(void *ctx, enum edge_slot slot, uint64_t off, const void *buf,
                               size_t len, struct ferry_diag *d)
{
    struct file_backend *fb = ctx;
    int fd = -1;
    if (off > fb->capacity || len > fb->capacity - off)
        return ferry_fail(d, FERRY_E_NOSPACE, "%s/%s: write at %llu+%zu past the capacity", fb->dir,
                          IMAGE_NAMES[slot], (unsigned long long)off, len);
    enum ferry_err err = image_fd(fb, slot, true, &fd, d);
    if (err != FERRY_OK)
        return err;
    err = ferry_pwrite_all(fd, buf, len, (off_t)off);
    if (err != FERRY_OK)
        return fail_errno(fb, slot, "write", errno, d);
    return FERRY_OK;
}

static enum ferry_err fb_read(void *ctx, enum edge_slot slot, uint64_t off, void *buf, size_t len,
                              struct ferry_diag *d)
{
    struct file_backend *fb = ctx;
    int fd = -1;
    enum ferry_err err = image_fd(fb, slot, false, &fd, d);
    if (err == FERRY_E_NOT_FOUND)
        return ferry_fail(d, FERRY_E_SIZE_MISMATCH, "%s/%s: no image file", fb->dir,
                          IMAGE_NAMES[slot]);
    if (err != FERRY_OK)
        return err;
    uint8_t *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, p + got, len - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return fail_errno(fb, slot, "read", errno, d);
        if (r == 0)
            return ferry_fail(d, FERRY_E_SIZE_MISMATCH, "%s/%s: image ends at %llu, needed %llu",
                              fb->dir, IMAGE_NAMES[slot], (unsigned long long)(off + got),
                              (unsigned long long)(off + len));
        got += (size_t)r;
    }
    return FERRY_OK;
}

static enum ferry_err fb_sync(void *ctx, enum edge_slot slot, struct ferry_diag *d)
{
    struct file_backend *fb = ctx;
    int fd = -1;
    enum ferry_err err = image_fd(fb, slot, true, &fd, d);
    if (err != FERRY_OK)
        return err;
    if (fsync(fd) != 0)
        return fail_errno(fb, slot, "fsync", errno, d);
    return FERRY_OK;
}

static enum ferry_err fb_mark_invalid(void *ctx, enum edge_slot slot, struct ferry_diag *d)
{
    struct file_backend *fb = ctx;
    int fd = -1;
    enum ferry_err err = image_fd(fb, slot, false, &fd, d);
    if (err == FERRY_E_NOT_FOUND)
        return FERRY_OK; /* no file: nothing anyone could boot */
    if (err != FERRY_OK)
        return err;
    return truncate_durably(fb, slot, fd, d);
}

static enum ferry_err fb_record_read(void *ctx, enum edge_boot_rec rec, void *buf, size_t cap,
                                     size_t *len, struct ferry_diag *d)
{
    struct file_backend *fb = ctx;
    char path[PATH_MAX];
    uint8_t *data = NULL;
    size_t n = 0;
    join(fb, RECORD_NAMES[rec], path);
    enum ferry_err err = ferry_read_file(path, cap, &data, &n, d);
    if (err == FERRY_E_TOO_LARGE) {
        /* No record is that long: hand back nothing, which reads as corrupt. */
        *len = 0;
        return FERRY_OK;
    }
    if (err != FERRY_OK)
        return err;
    memcpy(buf, data, n);
    free(data);
    *len = n;
    return FERRY_OK;
}

static enum ferry_err fb_record_write(void *ctx, enum edge_boot_rec rec, const void *buf,
                                      size_t len, struct ferry_diag *d)
{
    struct file_backend *fb = ctx;
    char path[PATH_MAX];
    join(fb, RECORD_NAMES[rec], path);
    return ferry_write_atomic(path, buf, len, 0644, d);
}

static const struct edge_slots_ops FILE_OPS = {
    .capacity = fb_capacity,
    .open_write = fb_open_write,
    .write = fb_write,
    .read = fb_read,
    .sync = fb_sync,
    .mark_invalid = fb_mark_invalid,
    .record_read = fb_record_read,
    .record_write = fb_record_write,
};

enum ferry_err edge_slots_file_new(const char *dir, uint64_t capacity,
                                   struct edge_slots_backend **out, struct ferry_diag *d)
{
    if (!dir || !dir[0] || strlen(dir) >= DIR_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "slots: state folder missing or too long");
    if (capacity == 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "slots: capacity must be above 0");
    struct file_backend *fb = calloc(1, sizeof(*fb));
    if (!fb)
        return ferry_fail(d, FERRY_E_NOMEM, "slots: out of memory");
    snprintf(fb->dir, sizeof(fb->dir), "%s", dir);
    fb->capacity = capacity;
    fb->fd[0] = fb->fd[1] = -1;
    fb->be.ops = &FILE_OPS;
    fb->be.ctx = fb;
    *out = &fb->be;
    return FERRY_OK;
}

void edge_slots_file_free(struct edge_slots_backend *b)
{
    if (!b)
        return;
    struct file_backend *fb = b->ctx;
    for (int i = 0; i < 2; i++) {
        if (fb->fd[i] >= 0)
            close(fb->fd[i]);
    }
    free(fb);
}
