#include "ferry_fs.h"

#include "ferry_random.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Tries for a free temporary name before giving up (each is random, so a
 * clash means someone is planting names, or a bug). */
#define TMP_TRIES 16

enum ferry_err ferry_errno_err(int e)
{
    switch (e) {
    case ENOSPC:
    case EDQUOT:
        return FERRY_E_NOSPACE;
    case ENOENT:
        return FERRY_E_NOT_FOUND;
    case ENOMEM:
        return FERRY_E_NOMEM;
    default:
        return FERRY_E_IO;
    }
}

enum ferry_err ferry_read_file_io(const struct ferry_io *io, const char *path, size_t max_len,
                                  uint8_t **out, size_t *out_len, struct ferry_diag *d)
{
    enum ferry_err err = FERRY_OK;
    uint8_t *buf = NULL;
    size_t len = 0;
    int fd = ferry_io_open(io, path, O_RDONLY, 0);
    if (fd < 0)
        return ferry_fail(d, ferry_errno_err(errno), "%s: %s", path, strerror(errno));

    struct stat st;
    if (fstat(fd, &st) != 0) {
        err = ferry_fail(d, FERRY_E_IO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "%s: not a regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > max_len) {
        err = ferry_fail(d, FERRY_E_TOO_LARGE, "%s: %lld bytes, the limit is %zu", path,
                         (long long)st.st_size, max_len);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        err = ferry_fail(d, FERRY_E_NOMEM, "%s: out of memory", path);
        goto out;
    }
    /* Read until EOF, not st_size bytes: the file may change under us, and
     * the cap must hold for what we actually read. */
    if (ferry_pread_full_io(io, fd, buf, (size_t)st.st_size, 0, &len) != FERRY_OK) {
        err = ferry_fail(d, FERRY_E_IO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (len == (size_t)st.st_size) {
        uint8_t extra;
        size_t more = 0;
        if (ferry_pread_full_io(io, fd, &extra, 1, (off_t)len, &more) != FERRY_OK || more != 0) {
            err = ferry_fail(d, FERRY_E_IO, "%s: changed while being read", path);
            goto out;
        }
    }
    buf[len] = 0;
    *out = buf;
    *out_len = len;
    buf = NULL;
out:
    free(buf);
    ferry_io_close(io, fd);
    return err;
}

enum ferry_err ferry_read_file(const char *path, size_t max_len, uint8_t **out, size_t *out_len,
                               struct ferry_diag *d)
{
    return ferry_read_file_io(NULL, path, max_len, out, out_len, d);
}

enum ferry_err ferry_write_all_io(const struct ferry_io *io, int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t w = ferry_io_write(io, fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return ferry_errno_err(errno);
        }
        if (w == 0) {
            errno = EIO;
            return FERRY_E_IO;
        }
        p += w;
        len -= (size_t)w;
    }
    return FERRY_OK;
}

enum ferry_err ferry_write_all(int fd, const void *data, size_t len)
{
    return ferry_write_all_io(NULL, fd, data, len);
}

enum ferry_err ferry_pwrite_all_io(const struct ferry_io *io, int fd, const void *data, size_t len,
                                   off_t off)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t w = ferry_io_pwrite(io, fd, p, len, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return ferry_errno_err(errno);
        }
        if (w == 0) {
            errno = EIO;
            return FERRY_E_IO;
        }
        p += w;
        off += w;
        len -= (size_t)w;
    }
    return FERRY_OK;
}

enum ferry_err ferry_pwrite_all(int fd, const void *data, size_t len, off_t off)
{
    return ferry_pwrite_all_io(NULL, fd, data, len, off);
}

enum ferry_err ferry_pread_full_io(const struct ferry_io *io, int fd, void *buf, size_t len,
                                   off_t off, size_t *got)
{
    uint8_t *p = buf;
    size_t n = 0;
    while (n < len) {
        ssize_t r = ferry_io_pread(io, fd, p + n, len - n, off + (off_t)n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            *got = n;
            return FERRY_E_IO;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *got = n;
    return FERRY_OK;
}

enum ferry_err ferry_fsync_dir_io(const struct ferry_io *io, const char *path)
{
    char copy[PATH_MAX];
    struct stat st;
    const char *dir = path;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy))
            return FERRY_E_INVALID_ARG;
        dir = dirname(copy);
    }
    int fd = ferry_io_open(io, dir, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0)
        return ferry_errno_err(errno);
    enum ferry_err err = ferry_io_fsync(io, fd) == 0 ? FERRY_OK : ferry_errno_err(errno);
    ferry_io_close(io, fd);
    return err;
}

enum ferry_err ferry_fsync_dir(const char *path)
{
    return ferry_fsync_dir_io(NULL, path);
}

/* Creates "<path>.tmp.<12 random letters>" exclusively, never through a
 * link; -1 with errno when it cannot. */
static int open_temporary(const struct ferry_io *io, const char *path, char tmp[PATH_MAX])
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (int i = 0; i < TMP_TRIES; i++) {
        uint8_t r[12];
        char name[sizeof(r) + 1];
        ferry_random_fill(r, sizeof(r));
        for (size_t k = 0; k < sizeof(r); k++)
            name[k] = alphabet[r[k] % (sizeof(alphabet) - 1)];
        name[sizeof(r)] = 0;
        if (snprintf(tmp, PATH_MAX, "%s.tmp.%s", path, name) >= PATH_MAX) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = ferry_io_open(io, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

enum ferry_err ferry_write_atomic_io(const struct ferry_io *io, const char *path, const void *data,
                                     size_t len, mode_t mode, struct ferry_diag *d)
{
    /* An unpredictable name, created with O_EXCL: a name known in advance
     * could be taken first by a symbolic link to another file, which a
     * plain open() would follow and truncate. */
    char tmp[PATH_MAX];
    int fd = open_temporary(io, path, tmp);
    if (fd < 0)
        return ferry_fail(d, ferry_errno_err(errno), "%s: creating a temporary file: %s", path,
                          strerror(errno));
    enum ferry_err err = ferry_pwrite_all_io(io, fd, data, len, 0);
    if (err == FERRY_OK && fchmod(fd, mode) != 0)
        err = ferry_errno_err(errno);
    if (err == FERRY_OK && ferry_io_fsync(io, fd) != 0)
        err = ferry_errno_err(errno);
    if (ferry_io_close(io, fd) != 0 && err == FERRY_OK)
        err = ferry_errno_err(errno);
    if (err != FERRY_OK) {
        (void)ferry_io_unlink(io, tmp);
        return ferry_fail(d, err, "%s: writing %s failed: %s", path, tmp, ferry_strerror(err));
    }
    if (ferry_io_rename(io, tmp, path) != 0) {
        int e = errno;
        (void)ferry_io_unlink(io, tmp);
        return ferry_fail(d, ferry_errno_err(e), "%s: rename failed: %s", path, strerror(e));
    }
    err = ferry_fsync_dir_io(io, path);
    if (err != FERRY_OK)
        return ferry_fail(d, err, "%s: fsync of its folder failed", path);
    return FERRY_OK;
}

enum ferry_err ferry_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                                  struct ferry_diag *d)
{
    return ferry_write_atomic_io(NULL, path, data, len, mode, d);
}

/* fsyncs the folder that holds the entry buf names (buf is modified and
 * restored): a new folder survives a power cut only once its parent's
 * entry for it is on disk. */
static enum ferry_err fsync_parent(const struct ferry_io *io, char *buf)
{
    char *slash = strrchr(buf, '/');
    if (!slash)
        return ferry_fsync_dir_io(io, ".");
    if (slash == buf)
        return ferry_fsync_dir_io(io, "/");
    *slash = 0;
    enum ferry_err err = ferry_fsync_dir_io(io, buf);
    *slash = '/';
    return err;
}

enum ferry_err ferry_mkdir_p_io(const struct ferry_io *io, const char *path, mode_t mode,
                                struct ferry_diag *d)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "%s: path too long", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (ferry_io_mkdir(io, buf, mode) == 0) {
                enum ferry_err err = fsync_parent(io, buf);
                if (err != FERRY_OK)
                    return ferry_fail(d, err, "%s: fsync of the folder holding it failed", buf);
            } else {
                struct stat st;
                if (errno != EEXIST)
                    return ferry_fail(d, ferry_errno_err(errno), "%s: %s", buf, strerror(errno));
                if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
                    return ferry_fail(d, FERRY_E_INVALID_ARG, "%s: exists and is not a folder",
                                      buf);
            }
            *p = c;
            if (c == 0)
                break;
        }
    }
    return FERRY_OK;
}

enum ferry_err ferry_mkdir_p(const char *path, mode_t mode, struct ferry_diag *d)
{
    return ferry_mkdir_p_io(NULL, path, mode, d);
}
