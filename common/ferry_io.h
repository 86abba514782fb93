/* The one file I/O interface of Ferry's durable stores.
 *
 * Every store that must survive a power cut (the helpers in ferry_fs.h and
 * what is built on them, the gateway's outbox and cache, the edge's status
 * journal and node configuration, the slots and the bootloader's
 * environment in install/) reads and changes its files through a
 * struct ferry_io. ferry_io_system() is the kernel; ferry_io_faulty.h is the
 * driver tests use to fail a call or cut the power at any one of them.
 * A store takes a `const struct ferry_io *` in its options; NULL means the
 * system's, so production code never names a driver.
 *
 * Durability, the contract both drivers keep (the worst POSIX allows):
 *   - bytes written to a file (pwrite, write, ftruncate) are durable once
 *     fsync of that file returned 0;
 *   - a name created, replaced or removed in a folder (open with O_CREAT,
 *     rename, unlink, mkdir) is durable once fsync of that folder returned
 *     0 (for a rename, of the folder it moved into).
 * A power cut may lose whatever is not durable yet, and may leave the
 * bytes of an unsynced write half written.
 *
 * Each operation behaves like the system call of the same name: -1 with
 * errno set on failure; pread, pwrite and write may transfer fewer bytes
 * than asked. open always adds O_CLOEXEC. Metadata that no store's safety
 * rests on (fstat, fchmod, flock, mmap of a file already written) is done
 * on the descriptor directly.
 *
 * Not thread-safe beyond what the driver says: the system's driver is
 * stateless; a faulty driver belongs to one test thread. */
#ifndef FERRY_IO_H
#define FERRY_IO_H

#include <stddef.h>
#include <sys/types.h>

struct ferry_io_ops {
    int (*open)(void *ctx, const char *path, int flags, mode_t mode);
    int (*close)(void *ctx, int fd);
    ssize_t (*pread)(void *ctx, int fd, void *buf, size_t len, off_t off);
    ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t len, off_t off);
    /* At the descriptor's file offset, which it advances. */
    ssize_t (*write)(void *ctx, int fd, const void *buf, size_t len);
    int (*fsync)(void *ctx, int fd);
    int (*ftruncate)(void *ctx, int fd, off_t len);
    int (*rename)(void *ctx, const char *from, const char *to);
    int (*unlink)(void *ctx, const char *path);
    int (*mkdir)(void *ctx, const char *path, mode_t mode);
};

/* A driver: its operations and their context. Plain value; whoever made it
 * keeps it alive while any store uses it. */
struct ferry_io {
    const struct ferry_io_ops *ops;
    void *ctx;
};

/* The kernel's system calls (static, never freed). */
const struct ferry_io *ferry_io_system(void);

/* io itself, or the system's for NULL. */
static inline const struct ferry_io *ferry_io_or_system(const struct ferry_io *io)
{
    return io ? io : ferry_io_system();
}

/* The operations through io (NULL: the system's), so callers read like
 * the system calls they stand for. */
static inline int ferry_io_open(const struct ferry_io *io, const char *path, int flags, mode_t mode)
{
    io = ferry_io_or_system(io);
    return io->ops->open(io->ctx, path, flags, mode);
}

static inline int ferry_io_close(const struct ferry_io *io, int fd)
{
    io = ferry_io_or_system(io);
    return io->ops->close(io->ctx, fd);
}

static inline ssize_t ferry_io_pread(const struct ferry_io *io, int fd, void *buf, size_t len,
                                     off_t off)
{
    io = ferry_io_or_system(io);
    return io->ops->pread(io->ctx, fd, buf, len, off);
}

static inline ssize_t ferry_io_pwrite(const struct ferry_io *io, int fd, const void *buf,
                                      size_t len, off_t off)
{
    io = ferry_io_or_system(io);
    return io->ops->pwrite(io->ctx, fd, buf, len, off);
}

static inline ssize_t ferry_io_write(const struct ferry_io *io, int fd, const void *buf, size_t len)
{
    io = ferry_io_or_system(io);
    return io->ops->write(io->ctx, fd, buf, len);
}

static inline int ferry_io_fsync(const struct ferry_io *io, int fd)
{
    io = ferry_io_or_system(io);
    return io->ops->fsync(io->ctx, fd);
}

static inline int ferry_io_ftruncate(const struct ferry_io *io, int fd, off_t len)
{
    io = ferry_io_or_system(io);
    return io->ops->ftruncate(io->ctx, fd, len);
}

static inline int ferry_io_rename(const struct ferry_io *io, const char *from, const char *to)
{
    io = ferry_io_or_system(io);
    return io->ops->rename(io->ctx, from, to);
}

static inline int ferry_io_unlink(const struct ferry_io *io, const char *path)
{
    io = ferry_io_or_system(io);
    return io->ops->unlink(io->ctx, path);
}

static inline int ferry_io_mkdir(const struct ferry_io *io, const char *path, mode_t mode)
{
    io = ferry_io_or_system(io);
    return io->ops->mkdir(io->ctx, path, mode);
}

#endif
