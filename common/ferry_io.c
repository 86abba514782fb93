/* The system's driver of ferry_io.h: each operation is the system call. */
#include "ferry_io.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static int sys_open(void *ctx, const char *path, int flags, mode_t mode)
{
    (void)ctx;
    return open(path, flags | O_CLOEXEC, mode);
}

static int sys_close(void *ctx, int fd)
{
    (void)ctx;
    return close(fd);
}

static ssize_t sys_pread(void *ctx, int fd, void *buf, size_t len, off_t off)
{
    (void)ctx;
    return pread(fd, buf, len, off);
}

static ssize_t sys_pwrite(void *ctx, int fd, const void *buf, size_t len, off_t off)
{
    (void)ctx;
    return pwrite(fd, buf, len, off);
}

static ssize_t sys_write(void *ctx, int fd, const void *buf, size_t len)
{
    (void)ctx;
    return write(fd, buf, len);
}

static int sys_fsync(void *ctx, int fd)
{
    (void)ctx;
    return fsync(fd);
}

static int sys_ftruncate(void *ctx, int fd, off_t len)
{
    (void)ctx;
    return ftruncate(fd, len);
}

static int sys_rename(void *ctx, const char *from, const char *to)
{
    (void)ctx;
    return rename(from, to);
}

static int sys_unlink(void *ctx, const char *path)
{
    (void)ctx;
    return unlink(path);
}

static int sys_mkdir(void *ctx, const char *path, mode_t mode)
{
    (void)ctx;
    return mkdir(path, mode);
}

static const struct ferry_io_ops SYS_OPS = {
    .open = sys_open,
    .close = sys_close,
    .pread = sys_pread,
    .pwrite = sys_pwrite,
    .write = sys_write,
    .fsync = sys_fsync,
    .ftruncate = sys_ftruncate,
    .rename = sys_rename,
    .unlink = sys_unlink,
    .mkdir = sys_mkdir,
};

static const struct ferry_io SYSTEM = {.ops = &SYS_OPS, .ctx = NULL};

const struct ferry_io *ferry_io_system(void)
{
    return &SYSTEM;
}
