/* Slots by path: the layout and guarantees are in inst_slots_path.h. */
#include "inst_slots_path.h"

#include "ferry_fs.h"
#include "inst_system.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Leaves room in PATH_MAX for "/boot.lkg.tmp.<pid>", the longest name joined. */
#define DIR_MAX (PATH_MAX - 32)

static const char *const RECORD_NAMES[3] = {"boot.0", "boot.1", "boot.lkg"};

struct slot {
    char path[PATH_MAX];
    bool device;
    uint64_t capacity;
    int rfd; /* reader, -1 until first use */
    int wfd; /* writer (O_EXCL for a device), -1 until open_write */
};

struct path_backend {
    struct edge_slots_backend be; /* first: the handle we give out */
    const struct ferry_io *io;    /* NULL: the system's */
    char dir[DIR_MAX];
    char mountinfo[PATH_MAX];
    struct slot s[2];
};

static enum ferry_err errno_err(int e)
{
    if (e == ENOSPC || e == EDQUOT)
        return FERRY_E_NOSPACE;
    if (e == EBUSY)
        return FERRY_E_BUSY;
    return e == ENOENT ? FERRY_E_NOT_FOUND : FERRY_E_IO;
}

static enum ferry_err fail_errno(const struct slot *s, const char *op, int e, struct ferry_diag *d)
{
    return ferry_fail(d, errno_err(e), "%s: %s: %s", s->path, op, strerror(e));
}

static void close_fd(const struct path_backend *pb, int *fd)
{
    if (*fd >= 0)
        ferry_io_close(pb->io, *fd);
    *fd = -1;
}

/* A file slot's writer, created on first use: the new name must survive a
 * power cut as well as its bytes. */
static enum ferry_err file_writer(const struct path_backend *pb, struct slot *s,
                                  struct ferry_diag *d)
{
    if (s->wfd >= 0)
        return FERRY_OK;
    int fd = ferry_io_open(pb->io, s->path, O_RDWR | O_CREAT, 0644);
    if (fd < 0)
        return fail_errno(s, "open", errno, d);
    enum ferry_err err = ferry_fsync_dir_io(pb->io, s->path);
    if (err != FERRY_OK) {
        ferry_io_close(pb->io, fd);
        return ferry_fail(d, err, "%s: fsync of its folder failed", s->path);
    }
    s->wfd = fd;
    return FERRY_OK;
}

/* A device's writer: never while it is mounted anywhere (the running root
 * above all), and exclusive, so the kernel refuses a mount meanwhile. */
static enum ferry_err device_writer(struct path_backend *pb, struct slot *s, struct ferry_diag *d)
{
    if (s->wfd >= 0)
        return FERRY_OK;
    enum ferry_err err = inst_system_check_unmounted(pb->mountinfo, s->path, d);
    if (err != FERRY_OK)
        return err;
    int fd = ferry_io_open(pb->io, s->path, O_RDWR | O_EXCL, 0);
    if (fd < 0)
        return fail_errno(
            s, errno == EBUSY ? "open for writing (device in use or mounted)" : "open", errno, d);
    s->wfd = fd;
    return FERRY_OK;
}

static enum ferry_err writer(struct path_backend *pb, enum edge_slot slot, int *fd,
                             struct ferry_diag *d)
{
    struct slot *s = &pb->s[slot];
    enum ferry_err err = s->device ? device_writer(pb, s, d) : file_writer(pb, s, d);
    if (err == FERRY_OK)
        *fd = s->wfd;
    return err;
}

/* Reads go through the writer when there is one (read-your-writes on one
 * file description), else through a plain read-only descriptor. */
static enum ferry_err reader(const struct path_backend *pb, struct slot *s, int *fd,
                             struct ferry_diag *d)
{
    if (s->wfd >= 0) {
        *fd = s->wfd;
        return FERRY_OK;
    }
    if (s->rfd < 0) {
        int f = ferry_io_open(pb->io, s->path, O_RDONLY, 0);
        if (f < 0)
            return ferry_fail(d, errno == ENOENT ? FERRY_E_SIZE_MISMATCH : errno_err(errno),
                              "%s: %s", s->path, errno == ENOENT ? "no image" : strerror(errno));
        s->rfd = f;
    }
    *fd = s->rfd;
    return FERRY_OK;
}

static enum ferry_err truncate_durably(const struct path_backend *pb, const struct slot *s, int fd,
                                       struct ferry_diag *d)
{
    if (ferry_io_ftruncate(pb->io, fd, 0) != 0)
        return fail_errno(s, "truncate", errno, d);
    if (ferry_io_fsync(pb->io, fd) != 0)
        return fail_errno(s, "fsync", errno, d);
    return FERRY_OK;
}

static enum ferry_err pb_capacity(void *ctx, enum edge_slot slot, uint64_t *out,
                                  struct ferry_diag *d)
{
    (void)d;
    const struct path_backend *pb = ctx;
    *out = pb->s[slot].capacity;
    return FERRY_OK;
}

static enum ferry_err pb_open_write(void *ctx, enum edge_slot slot, uint64_t size,
                                    struct ferry_diag *d)
{
    struct path_backend *pb = ctx;
    struct slot *s = &pb->s[slot];
    int fd = -1;
    if (size > s->capacity)
        return ferry_fail(d, FERRY_E_NOSPACE, "%s: %llu bytes do not fit in %llu", s->path,
                          (unsigned long long)size, (unsigned long long)s->capacity);
    enum ferry_err err = writer(pb, slot, &fd, d);
    if (err != FERRY_OK || s->device)
        return err;
    close_fd(pb, &s->rfd); /* a reader opened before may see a stale length otherwise */
    return truncate_durably(pb, s, fd, d);
}

static enum ferry_err pb_write(void *ctx, enum edge_slot slot, uint64_t off, const void *buf,
                               size_t len, struct ferry_diag *d)
{
    struct path_backend *pb = ctx;
    struct slot *s = &pb->s[slot];
    int fd = -1;
    if (off > s->capacity || len > s->capacity - off)
        return ferry_fail(d, FERRY_E_NOSPACE, "%s: write at %llu+%zu past the capacity", s->path,
                          (unsigned long long)off, len);
    enum ferry_err err = writer(pb, slot, &fd, d);
    if (err != FERRY_OK)
        return err;
    if (ferry_pwrite_all_io(pb->io, fd, buf, len, (off_t)off) != FERRY_OK)
        return fail_errno(s, "write", errno, d);
    return FERRY_OK;
}

static enum ferry_err pb_read(void *ctx, enum edge_slot slot, uint64_t off, void *buf, size_t len,
                              struct ferry_diag *d)
{
    struct path_backend *pb = ctx;
    struct slot *s = &pb->s[slot];
    int fd = -1;
    enum ferry_err err = reader(pb, s, &fd, d);
    if (err != FERRY_OK)
        return err;
    uint8_t *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t r = ferry_io_pread(pb->io, fd, p + got, len - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return fail_errno(s, "read", errno, d);
        if (r == 0)
            return ferry_fail(d, FERRY_E_SIZE_MISMATCH, "%s: image ends at %llu, needed %llu",
                              s->path, (unsigned long long)(off + got),
                              (unsigned long long)(off + len));
        got += (size_t)r;
    }
    return FERRY_OK;
}

static enum ferry_err pb_sync(void *ctx, enum edge_slot slot, struct ferry_diag *d)
{
    struct path_backend *pb = ctx;
    struct slot *s = &pb->s[slot];
    int fd = -1;
    enum ferry_err err = writer(pb, slot, &fd, d);
    if (err != FERRY_OK)
        return err;
    if (ferry_io_fsync(pb->io, fd) != 0)
        return fail_errno(s, "fsync", errno, d);
    return FERRY_OK;
}

static enum ferry_err pb_mark_invalid(void *ctx, enum edge_slot slot, struct ferry_diag *d)
{
    struct path_backend *pb = ctx;
    struct slot *s = &pb->s[slot];
    if (s->device) {
        close_fd(pb, &s->wfd);
        return FERRY_OK;
    }
    int fd = ferry_io_open(pb->io, s->path, O_RDWR, 0);
    if (fd < 0 && errno == ENOENT)
        return FERRY_OK; /* no file: nothing anyone could boot */
    if (fd < 0)
        return fail_errno(s, "open", errno, d);
    enum ferry_err err = truncate_durably(pb, s, fd, d);
    ferry_io_close(pb->io, fd);
    return err;
}

static void join(const struct path_backend *pb, const char *name, char out[PATH_MAX])
{
    /* dir leaves room for every name we join to it. */
    snprintf(out, PATH_MAX, "%s/%s", pb->dir, name);
}

static enum ferry_err pb_record_read(void *ctx, enum edge_boot_rec rec, void *buf, size_t cap,
                                     size_t *len, struct ferry_diag *d)
{
    struct path_backend *pb = ctx;
    char path[PATH_MAX];
    uint8_t *data = NULL;
    size_t n = 0;
    join(pb, RECORD_NAMES[rec], path);
    enum ferry_err err = ferry_read_file_io(pb->io, path, cap, &data, &n, d);
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

static enum ferry_err pb_record_write(void *ctx, enum edge_boot_rec rec, const void *buf,
                                      size_t len, struct ferry_diag *d)
{
    struct path_backend *pb = ctx;
    char path[PATH_MAX];
    join(pb, RECORD_NAMES[rec], path);
    return ferry_write_atomic_io(pb->io, path, buf, len, 0644, d);
}

static const struct edge_slots_ops PATH_OPS = {
    .capacity = pb_capacity,
    .open_write = pb_open_write,
    .write = pb_write,
    .read = pb_read,
    .sync = pb_sync,
    .mark_invalid = pb_mark_invalid,
    .record_read = pb_record_read,
    .record_write = pb_record_write,
};

/* Kind and capacity of one slot path. */
static enum ferry_err probe(struct slot *s, uint64_t max_bytes, struct stat *st,
                            struct ferry_diag *d)
{
    if (stat(s->path, st) != 0) {
        if (errno != ENOENT)
            return fail_errno(s, "stat", errno, d);
        memset(st, 0, sizeof(*st));
        s->capacity = max_bytes;
        return FERRY_OK;
    }
    if (S_ISREG(st->st_mode)) {
        s->capacity = max_bytes;
        return FERRY_OK;
    }
    if (!S_ISBLK(st->st_mode))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "%s: a slot must be a block device or a file",
                          s->path);
    int fd = open(s->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail_errno(s, "open", errno, d);
    uint64_t size = 0;
    int r = ioctl(fd, BLKGETSIZE64, &size);
    int e = errno;
    close(fd);
    if (r != 0)
        return fail_errno(s, "BLKGETSIZE64", e, d);
    if (size == 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "%s: the device has no room", s->path);
    s->device = true;
    s->capacity = size;
    return FERRY_OK;
}

static bool same_target(const struct slot *a, const struct stat *sa, const struct slot *b,
                        const struct stat *sb)
{
    if (strcmp(a->path, b->path) == 0)
        return true;
    if (a->device && b->device)
        return sa->st_rdev == sb->st_rdev;
    return sa->st_ino != 0 && sa->st_dev == sb->st_dev && sa->st_ino == sb->st_ino;
}

enum ferry_err inst_slots_path_new(const struct inst_slots_path_opts *o,
                                   struct edge_slots_backend **out, struct ferry_diag *d)
{
    if (!o->records_dir || !o->records_dir[0] || strlen(o->records_dir) >= DIR_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "slots: records folder missing or too long");
    if (o->max_bytes == 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "slots: capacity must be above 0");
    for (int i = 0; i < 2; i++) {
        if (!o->slot[i] || !o->slot[i][0] || strlen(o->slot[i]) >= PATH_MAX)
            return ferry_fail(d, FERRY_E_INVALID_ARG, "slots: path of slot %s missing or too long",
                              edge_slot_name((enum edge_slot)i));
    }
    const char *mi = o->mountinfo ? o->mountinfo : INST_MOUNTINFO_PATH;
    if (strlen(mi) >= PATH_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "slots: mountinfo path too long");
    struct path_backend *pb = calloc(1, sizeof(*pb));
    if (!pb)
        return ferry_fail(d, FERRY_E_NOMEM, "slots: out of memory");
    snprintf(pb->dir, sizeof(pb->dir), "%s", o->records_dir);
    pb->io = o->io;
    snprintf(pb->mountinfo, sizeof(pb->mountinfo), "%s", mi);
    struct stat st[2];
    enum ferry_err err = FERRY_OK;
    for (int i = 0; i < 2 && err == FERRY_OK; i++) {
        struct slot *s = &pb->s[i];
        snprintf(s->path, sizeof(s->path), "%s", o->slot[i]);
        s->rfd = s->wfd = -1;
        err = probe(s, o->max_bytes, &st[i], d);
    }
    if (err == FERRY_OK && same_target(&pb->s[0], &st[0], &pb->s[1], &st[1]))
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "slots: A (%s) and B (%s) are the same",
                         pb->s[0].path, pb->s[1].path);
    if (err != FERRY_OK) {
        free(pb);
        return err;
    }
    pb->be.ops = &PATH_OPS;
    pb->be.ctx = pb;
    *out = &pb->be;
    return FERRY_OK;
}

void inst_slots_path_free(struct edge_slots_backend *b)
{
    if (!b)
        return;
    struct path_backend *pb = b->ctx;
    for (int i = 0; i < 2; i++) {
        close_fd(pb, &pb->s[i].rfd);
        close_fd(pb, &pb->s[i].wfd);
    }
    free(pb);
}

const char *inst_slots_path_of(const struct edge_slots_backend *b, enum edge_slot slot)
{
    const struct path_backend *pb = b->ctx;
    return pb->s[slot == EDGE_SLOT_B ? 1 : 0].path;
}

bool inst_slots_path_is_device(const struct edge_slots_backend *b, enum edge_slot slot)
{
    const struct path_backend *pb = b->ctx;
    return pb->s[slot == EDGE_SLOT_B ? 1 : 0].device;
}
