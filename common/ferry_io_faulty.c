/* The fault-injecting driver (ferry_io_faulty.h). It keeps a model of what
 * is durable: for each file changed since its last fsync, the bytes it had
 * then and the ranges written since; for each name changed since its
 * folder's last fsync, how to put it back. A stop replays the model onto
 * the folder. */
#include "ferry_io_faulty.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct range {
    uint64_t off, len;
};

/* A regular file changed since its last fsync. */
struct node {
    dev_t dev;
    ino_t ino;
    int fd;           /* the driver's own, read-write: the file may have moved */
    uint8_t *durable; /* its bytes at the last fsync (or as first found) */
    size_t durable_len;
    struct range *r; /* written since, in order */
    size_t nr, cap;
};

enum name_kind { NAME_CREATE, NAME_MKDIR, NAME_RENAME, NAME_UNLINK };

/* A name changed since its folder's last fsync. */
struct name_op {
    enum name_kind kind;
    char *path;    /* created, removed, or renamed to */
    char *from;    /* NAME_RENAME: the old name */
    dev_t dir_dev; /* the folder whose fsync makes it durable */
    ino_t dir_ino;
    dev_t dev; /* what path names after the change (not NAME_UNLINK) */
    ino_t ino;
    bool had_old; /* path held a regular file before (rename over, unlink) */
    uint8_t *old; /* its durable bytes */
    size_t old_len;
    mode_t old_mode;
};

struct ferry_io_faulty {
    struct ferry_io io; /* FAULTY_OPS, ctx = this */
    uint64_t calls;
    uint64_t count[FERRY_IO_CALL__COUNT];
    uint64_t stop_at;
    enum ferry_io_stop how;
    bool stopped;
    bool has_rule;
    struct ferry_io_fail rule;
    uint64_t rule_seen;
    bool short_done;
    int64_t space; /* -1: no limit */
    struct node *nodes;
    size_t nnodes, capnodes;
    struct name_op *names;
    size_t nnames, capnames;
};

/* What a call does after the gate. */
enum act { GO, FAIL, STOP_HERE, SHORT, BITFLIP };

/* Position-dependent filler, so lost bytes never read back as a plausible
 * record or as one repeated byte. */
static uint8_t garbage(uint64_t pos)
{
    return (uint8_t)(((pos + 1) * UINT64_C(0x9E3779B97F4A7C15)) >> 56);
}

/* ---- helpers on the real file system ------------------------------------ */

/* The whole content of an open file; NULL with *len 0 for an empty one. */
static bool slurp_fd(int fd, uint8_t **out, size_t *len)
{
    struct stat st;
    *out = NULL;
    *len = 0;
    if (fstat(fd, &st) != 0)
        return false;
    size_t n = (size_t)st.st_size;
    if (n == 0)
        return true;
    uint8_t *buf = malloc(n);
    if (!buf)
        return false;
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    *out = buf;
    *len = got;
    return true;
}

static bool write_fd(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t w = pwrite(fd, buf, len, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        buf += w;
        len -= (size_t)w;
        off += (uint64_t)w;
    }
    return true;
}

/* Puts a regular file back under path with these bytes and mode. */
static void recreate(const char *path, const uint8_t *buf, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode & 07777);
    if (fd < 0)
        return;
    (void)write_fd(fd, buf, len, 0);
    (void)fchmod(fd, mode & 07777);
    close(fd);
}

static bool folder_of(const char *path, dev_t *dev, ino_t *ino)
{
    char copy[PATH_MAX];
    if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy))
        return false;
    struct stat st;
    if (stat(dirname(copy), &st) != 0)
        return false;
    *dev = st.st_dev;
    *ino = st.st_ino;
    return true;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    (void)remove(path);
    return 0;
}

/* ---- the model: files ----------------------------------------------------- */

static struct node *find_node(struct ferry_io_faulty *f, dev_t dev, ino_t ino)
{
    for (size_t i = 0; i < f->nnodes; i++) {
        if (f->nodes[i].dev == dev && f->nodes[i].ino == ino)
            return &f->nodes[i];
    }
    return NULL;
}

/* The node of the regular file fd is open on, made (with a copy of its
 * bytes as durable) on its first change. NULL for anything else (a block
 * device), or out of memory: such a file is simply not put back. */
static struct node *track(struct ferry_io_faulty *f, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return NULL;
    struct node *n = find_node(f, st.st_dev, st.st_ino);
    if (n)
        return n;
    if (f->nnodes == f->capnodes) {
        size_t cap = f->capnodes ? 2 * f->capnodes : 8;
        struct node *p = realloc(f->nodes, cap * sizeof(*p));
        if (!p)
            return NULL;
        f->nodes = p;
        f->capnodes = cap;
    }
    /* A descriptor of our own that can read and write, whatever the
     * caller's mode: /proc reopens the same file even once unlinked. */
    char self[64];
    snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
    int own = open(self, O_RDWR | O_CLOEXEC);
    if (own < 0)
        return NULL;
    n = &f->nodes[f->nnodes];
    memset(n, 0, sizeof(*n));
    n->dev = st.st_dev;
    n->ino = st.st_ino;
    n->fd = own;
    if (!slurp_fd(own, &n->durable, &n->durable_len)) {
        close(own);
        return NULL;
    }
    f->nnodes++;
    return n;
}

static void node_free(struct node *n)
{
    close(n->fd);
    free(n->durable);
    free(n->r);
}

static void drop_node(struct ferry_io_faulty *f, struct node *n)
{
    node_free(n);
    *n = f->nodes[--f->nnodes];
}

static void note_range(struct node *n, uint64_t off, uint64_t len)
{
    if (len == 0)
        return;
    if (n->nr > 0) {
        /* Writes mostly come in order: extend the last range when they touch. */
        struct range *last = &n->r[n->nr - 1];
        if (off <= last->off + last->len && off + len >= last->off) {
            uint64_t end = last->off + last->len > off + len ? last->off + last->len : off + len;
            last->off = last->off < off ? last->off : off;
            last->len = end - last->off;
            return;
        }
    }
    if (n->nr == n->cap) {
        size_t cap = n->cap ? 2 * n->cap : 8;
        struct range *p = realloc(n->r, cap * sizeof(*p));
        if (!p)
            return; /* not torn then: the milder outcome */
        n->r = p;
        n->cap = cap;
    }
    n->r[n->nr++] = (struct range){off, len};
}

/* A file's durable bytes: the model's copy when it changed, else as it is. */
static bool durable_bytes(struct ferry_io_faulty *f, const char *path, uint8_t **out, size_t *len,
                          mode_t *mode)
{
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return false;
    *mode = st.st_mode;
    struct node *n = find_node(f, st.st_dev, st.st_ino);
    if (n) {
        *len = n->durable_len;
        *out = NULL;
        if (*len == 0)
            return true;
        *out = malloc(*len);
        if (!*out)
            return false;
        memcpy(*out, n->durable, *len);
        return true;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return false;
    bool ok = slurp_fd(fd, out, len);
    close(fd);
    return ok;
}

/* ---- the model: names ----------------------------------------------------- */

static struct name_op *add_name(struct ferry_io_faulty *f, enum name_kind kind, const char *path)
{
    if (f->nnames == f->capnames) {
        size_t cap = f->capnames ? 2 * f->capnames : 16;
        struct name_op *p = realloc(f->names, cap * sizeof(*p));
        if (!p)
            return NULL;
        f->names = p;
        f->capnames = cap;
    }
    struct name_op *op = &f->names[f->nnames];
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->path = strdup(path);
    if (!op->path || !folder_of(path, &op->dir_dev, &op->dir_ino)) {
        free(op->path);
        return NULL;
    }
    f->nnames++;
    return op;
}

static void name_free(struct name_op *op)
{
    free(op->path);
    free(op->from);
    free(op->old);
}

static void set_target(struct name_op *op, const char *path)
{
    struct stat st;
    if (lstat(path, &st) == 0) {
        op->dev = st.st_dev;
        op->ino = st.st_ino;
    }
}

static bool names_same(const char *path, dev_t dev, ino_t ino)
{
    struct stat st;
    return lstat(path, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

static void undo_name(const struct name_op *op)
{
    switch (op->kind) {
    case NAME_CREATE:
        if (names_same(op->path, op->dev, op->ino))
            (void)unlink(op->path);
        break;
    case NAME_MKDIR:
        if (names_same(op->path, op->dev, op->ino))
            (void)nftw(op->path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
        break;
    case NAME_RENAME:
        if (!names_same(op->path, op->dev, op->ino) || rename(op->path, op->from) != 0)
            break;
        if (op->had_old)
            recreate(op->path, op->old, op->old_len, op->old_mode);
        break;
    case NAME_UNLINK: {
        struct stat st;
        if (op->had_old && lstat(op->path, &st) != 0)
            recreate(op->path, op->old, op->old_len, op->old_mode);
        break;
    }
    }
}

/* fsync of a folder: what changed in it is durable now. */
static void folder_synced(struct ferry_io_faulty *f, dev_t dev, ino_t ino)
{
    size_t kept = 0;
    for (size_t i = 0; i < f->nnames; i++) {
        if (f->names[i].dir_dev == dev && f->names[i].dir_ino == ino)
            name_free(&f->names[i]);
        else
            f->names[kept++] = f->names[i];
    }
    f->nnames = kept;
}

/* ---- stopping ---------------------------------------------------------------- */

static void tear(struct node *n)
{
    struct stat st;
    if (fstat(n->fd, &st) != 0)
        return;
    uint64_t size = (uint64_t)st.st_size;
    uint8_t buf[256];
    for (size_t i = 0; i < n->nr; i++) {
        uint64_t from = n->r[i].off + n->r[i].len / 2, to = n->r[i].off + n->r[i].len;
        if (to > size)
            to = size;
        for (uint64_t pos = from; pos < to;) {
            size_t k = to - pos < sizeof(buf) ? (size_t)(to - pos) : sizeof(buf);
            for (size_t j = 0; j < k; j++)
                buf[j] = garbage(pos + j);
            if (!write_fd(n->fd, buf, k, pos))
                break;
            pos += k;
        }
    }
}

static void do_stop(struct ferry_io_faulty *f, enum ferry_io_stop how)
{
    if (f->stopped)
        return;
    f->stopped = true;
    if (how != FERRY_IO_KILL) {
        for (size_t i = 0; i < f->nnodes; i++) {
            struct node *n = &f->nodes[i];
            if (how == FERRY_IO_POWER_TORN) {
                tear(n);
            } else {
                (void)write_fd(n->fd, n->durable, n->durable_len, 0);
                (void)ftruncate(n->fd, (off_t)n->durable_len);
            }
        }
        for (size_t i = f->nnames; i-- > 0;)
            undo_name(&f->names[i]);
    }
    for (size_t i = 0; i < f->nnodes; i++)
        node_free(&f->nodes[i]);
    f->nnodes = 0;
    for (size_t i = 0; i < f->nnames; i++)
        name_free(&f->names[i]);
    f->nnames = 0;
}

/* Counts a call and decides what it does. */
static enum act gate(struct ferry_io_faulty *f, enum ferry_io_call kind, bool numbered)
{
    f->count[kind]++;
    if (f->stopped) {
        errno = EIO;
        return FAIL;
    }
    if (numbered && f->calls++ == f->stop_at)
        return STOP_HERE;
    if (f->has_rule && (f->rule.calls == 0 || (f->rule.calls & FERRY_IO_CALL(kind)))) {
        uint64_t i = f->rule_seen++;
        if (i >= f->rule.after && i - f->rule.after < f->rule.count) {
            errno = f->rule.error ? f->rule.error : EIO;
            if (kind == FERRY_IO_PWRITE && f->rule.how == FERRY_IO_FAIL_BITFLIP)
                return BITFLIP;
            if (kind == FERRY_IO_PWRITE && f->rule.how == FERRY_IO_FAIL_SHORT && !f->short_done) {
                f->short_done = true;
                return SHORT;
            }
            return FAIL;
        }
    }
    return GO;
}

/* The numbered call that stops the program: not performed (see TORN). */
static int stop_here(struct ferry_io_faulty *f)
{
    do_stop(f, f->how);
    errno = EIO;
    return -1;
}

/* ---- the operations ----------------------------------------------------------- */

static int fy_open(void *ctx, const char *path, int flags, mode_t mode)
{
    struct ferry_io_faulty *f = ctx;
    bool numbered = (flags & (O_CREAT | O_TRUNC)) != 0;
    enum act a = gate(f, FERRY_IO_OPEN, numbered);
    if (a == STOP_HERE)
        return stop_here(f);
    if (a == FAIL)
        return -1;
    struct stat st;
    bool existed = lstat(path, &st) == 0;
    int fd = open(path, (flags & ~O_TRUNC) | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    if (!existed && (flags & O_CREAT)) {
        struct name_op *op = add_name(f, NAME_CREATE, path);
        if (op)
            set_target(op, path);
    }
    if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) {
        (void)track(f, fd); /* its bytes before the truncation are the durable ones */
        if (ftruncate(fd, 0) != 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
    }
    return fd;
}

static int fy_close(void *ctx, int fd)
{
    (void)ctx;
    return close(fd);
}

static ssize_t fy_pread(void *ctx, int fd, void *buf, size_t len, off_t off)
{
    struct ferry_io_faulty *f = ctx;
    if (gate(f, FERRY_IO_PREAD, false) != GO)
        return -1;
    return pread(fd, buf, len, off);
}

/* pwrite and write: off < 0 means at the descriptor's offset. */
static ssize_t do_write(struct ferry_io_faulty *f, int fd, const void *buf, size_t len, off_t off)
{
    enum act a = gate(f, FERRY_IO_PWRITE, true);
    if (a == FAIL)
        return -1;
    uint64_t at = (uint64_t)off;
    if (off < 0) {
        int fl = fcntl(fd, F_GETFL);
        struct stat st;
        if (fl >= 0 && (fl & O_APPEND) && fstat(fd, &st) == 0)
            at = (uint64_t)st.st_size;
        else
            at = (uint64_t)lseek(fd, 0, SEEK_CUR);
    }
    if (a == STOP_HERE) {
        /* Power failing mid-write: with TORN, half of it lands first. */
        struct node *n = f->how == FERRY_IO_POWER_TORN ? track(f, fd) : NULL;
        if (n && len > 1) {
            note_range(n, at, len);
            (void)write_fd(fd, buf, len / 2, at);
        }
        return stop_here(f);
    }
    size_t n_len = len;
    if (a == SHORT) {
        if (len < 2)
            return -1;
        n_len = len / 2;
    }
    if (f->space >= 0) {
        if (f->space == 0) {
            errno = ENOSPC;
            return -1;
        }
        if ((uint64_t)n_len > (uint64_t)f->space)
            n_len = (size_t)f->space;
    }
    struct node *n = track(f, fd);
    if (n)
        note_range(n, at, n_len);
    const void *src = buf;
    uint8_t *copy = NULL;
    if (a == BITFLIP && n_len > 0) {
        copy = malloc(n_len);
        if (!copy) {
            errno = ENOMEM;
            return -1;
        }
        memcpy(copy, buf, n_len);
        copy[n_len / 2] ^= 0x10;
        src = copy;
    }
    ssize_t w = off < 0 ? write(fd, src, n_len) : pwrite(fd, src, n_len, off);
    free(copy);
    if (w > 0 && f->space >= 0)
        f->space -= w;
    return w;
}

static ssize_t fy_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
    if (off < 0) {
        errno = EINVAL;
        return -1;
    }
    return do_write(ctx, fd, buf, len, off);
}

static ssize_t fy_write(void *ctx, int fd, const void *buf, size_t len)
{
    return do_write(ctx, fd, buf, len, -1);
}

static int fy_fsync(void *ctx, int fd)
{
    struct ferry_io_faulty *f = ctx;
    enum act a = gate(f, FERRY_IO_FSYNC, true);
    if (a == STOP_HERE)
        return stop_here(f);
    if (a != GO)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -1;
    if (S_ISDIR(st.st_mode)) {
        folder_synced(f, st.st_dev, st.st_ino);
    } else {
        struct node *n = find_node(f, st.st_dev, st.st_ino);
        if (n)
            drop_node(f, n);
    }
    /* Simulated: the model is the disk, nothing needs the real one. */
    return 0;
}

static int fy_ftruncate(void *ctx, int fd, off_t len)
{
    struct ferry_io_faulty *f = ctx;
    enum act a = gate(f, FERRY_IO_FTRUNCATE, true);
    if (a == STOP_HERE)
        return stop_here(f);
    if (a != GO)
        return -1;
    (void)track(f, fd);
    return ftruncate(fd, len);
}

static int fy_rename(void *ctx, const char *from, const char *to)
{
    struct ferry_io_faulty *f = ctx;
    enum act a = gate(f, FERRY_IO_RENAME, true);
    if (a == STOP_HERE)
        return stop_here(f);
    if (a != GO)
        return -1;
    uint8_t *old = NULL;
    size_t old_len = 0;
    mode_t old_mode = 0;
    bool had_old = durable_bytes(f, to, &old, &old_len, &old_mode);
    if (rename(from, to) != 0) {
        int e = errno;
        free(old);
        errno = e;
        return -1;
    }
    struct name_op *op = add_name(f, NAME_RENAME, to);
    if (op && (op->from = strdup(from)) != NULL) {
        set_target(op, to);
        op->had_old = had_old;
        op->old = old;
        op->old_len = old_len;
        op->old_mode = old_mode;
        old = NULL;
    } else if (op) {
        name_free(op);
        f->nnames--;
    }
    free(old);
    return 0;
}

static int fy_unlink(void *ctx, const char *path)
{
    struct ferry_io_faulty *f = ctx;
    enum act a = gate(f, FERRY_IO_UNLINK, true);
    if (a == STOP_HERE)
        return stop_here(f);
    if (a != GO)
        return -1;
    uint8_t *old = NULL;
    size_t old_len = 0;
    mode_t old_mode = 0;
    bool had_old = durable_bytes(f, path, &old, &old_len, &old_mode);
    if (unlink(path) != 0) {
        int e = errno;
        free(old);
        errno = e;
        return -1;
    }
    struct name_op *op = add_name(f, NAME_UNLINK, path);
    if (op) {
        op->had_old = had_old;
        op->old = old;
        op->old_len = old_len;
        op->old_mode = old_mode;
        old = NULL;
    }
    free(old);
    return 0;
}

static int fy_mkdir(void *ctx, const char *path, mode_t mode)
{
    struct ferry_io_faulty *f = ctx;
    enum act a = gate(f, FERRY_IO_MKDIR, true);
    if (a == STOP_HERE)
        return stop_here(f);
    if (a != GO)
        return -1;
    if (mkdir(path, mode) != 0)
        return -1;
    struct name_op *op = add_name(f, NAME_MKDIR, path);
    if (op)
        set_target(op, path);
    return 0;
}

static const struct ferry_io_ops FAULTY_OPS = {
    .open = fy_open,
    .close = fy_close,
    .pread = fy_pread,
    .pwrite = fy_pwrite,
    .write = fy_write,
    .fsync = fy_fsync,
    .ftruncate = fy_ftruncate,
    .rename = fy_rename,
    .unlink = fy_unlink,
    .mkdir = fy_mkdir,
};

/* ---- the handle --------------------------------------------------------------- */

enum ferry_err ferry_io_faulty_new(struct ferry_io_faulty **out, struct ferry_diag *d)
{
    struct ferry_io_faulty *f = calloc(1, sizeof(*f));
    if (!f)
        return ferry_fail(d, FERRY_E_NOMEM, "faulty io: out of memory");
    f->io.ops = &FAULTY_OPS;
    f->io.ctx = f;
    f->stop_at = FERRY_IO_NO_STOP;
    f->space = -1;
    *out = f;
    return FERRY_OK;
}

void ferry_io_faulty_free(struct ferry_io_faulty *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nnodes; i++)
        node_free(&f->nodes[i]);
    for (size_t i = 0; i < f->nnames; i++)
        name_free(&f->names[i]);
    free(f->nodes);
    free(f->names);
    free(f);
}

const struct ferry_io *ferry_io_faulty_io(const struct ferry_io_faulty *f)
{
    return &f->io;
}

void ferry_io_faulty_stop_at(struct ferry_io_faulty *f, uint64_t n, enum ferry_io_stop how)
{
    f->stop_at = n;
    f->how = how;
}

void ferry_io_faulty_stop(struct ferry_io_faulty *f, enum ferry_io_stop how)
{
    f->how = how;
    do_stop(f, how);
}

bool ferry_io_faulty_stopped(const struct ferry_io_faulty *f)
{
    return f->stopped;
}

uint64_t ferry_io_faulty_calls(const struct ferry_io_faulty *f)
{
    return f->calls;
}

uint64_t ferry_io_faulty_count(const struct ferry_io_faulty *f, enum ferry_io_call kind)
{
    return kind < FERRY_IO_CALL__COUNT ? f->count[kind] : 0;
}

void ferry_io_faulty_fail(struct ferry_io_faulty *f, const struct ferry_io_fail *rule)
{
    f->has_rule = rule != NULL;
    if (rule)
        f->rule = *rule;
    f->rule_seen = 0;
    f->short_done = false;
}

void ferry_io_faulty_space(struct ferry_io_faulty *f, int64_t bytes)
{
    f->space = bytes < 0 ? -1 : bytes;
}
