#include "ferry_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static enum ferry_err errno_to_err(int e)
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

enum ferry_err ferry_read_file(const char *path, size_t max_len, uint8_t **out, size_t *out_len,
                               struct ferry_diag *d)
{
    enum ferry_err err = FERRY_OK;
    uint8_t *buf = NULL;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ferry_fail(d, errno_to_err(errno), "%s: %s", path, strerror(errno));

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
    for (;;) {
        if (len == (size_t)st.st_size) {
            uint8_t extra;
            ssize_t r = read(fd, &extra, 1);
            if (r == 0)
                break;
            err = ferry_fail(d, FERRY_E_IO, "%s: changed while being read", path);
            goto out;
        }
        ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            err = ferry_fail(d, FERRY_E_IO, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    buf[len] = 0;
    *out = buf;
    *out_len = len;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return err;
}

enum ferry_err ferry_write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno_to_err(errno);
        }
        p += w;
        len -= (size_t)w;
    }
    return FERRY_OK;
}

enum ferry_err ferry_pwrite_all(int fd, const void *data, size_t len, off_t off)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t w = pwrite(fd, p, len, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno_to_err(errno);
        }
        p += w;
        off += w;
        len -= (size_t)w;
    }
    return FERRY_OK;
}

enum ferry_err ferry_fsync_dir(const char *path)
{
    char copy[PATH_MAX];
    struct stat st;
    const char *dir = path;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy))
            return FERRY_E_INVALID_ARG;
        dir = dirname(copy);
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno_to_err(errno);
    enum ferry_err err = fsync(fd) == 0 ? FERRY_OK : errno_to_err(errno);
    close(fd);
    return err;
}

enum ferry_err ferry_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                                  struct ferry_diag *d)
{
    /* An unpredictable name, created with O_EXCL (mkostemp): a name known in
     * advance could be taken first by a symbolic link to another file, which
     * a plain open() would follow and truncate. */
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "%s: path too long", path);

    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return ferry_fail(d, errno_to_err(errno), "%s: %s", tmp, strerror(errno));
    enum ferry_err err = ferry_write_all(fd, data, len);
    if (err == FERRY_OK && fchmod(fd, mode) != 0)
        err = errno_to_err(errno);
    if (err == FERRY_OK && fsync(fd) != 0)
        err = errno_to_err(errno);
    if (close(fd) != 0 && err == FERRY_OK)
        err = errno_to_err(errno);
    if (err != FERRY_OK) {
        unlink(tmp);
        return ferry_fail(d, err, "%s: writing %s failed: %s", path, tmp, ferry_strerror(err));
    }
    if (rename(tmp, path) != 0) {
        err = errno_to_err(errno);
        unlink(tmp);
        return ferry_fail(d, err, "%s: rename failed: %s", path, strerror(errno));
    }
    err = ferry_fsync_dir(path);
    if (err != FERRY_OK)
        return ferry_fail(d, err, "%s: fsync of its folder failed", path);
    return FERRY_OK;
}

/* fsyncs the folder that holds the entry buf names (buf is modified and
 * restored): a new folder survives a power cut only once its parent's
 * entry for it is on disk. */
static enum ferry_err fsync_parent(char *buf)
{
    char *slash = strrchr(buf, '/');
    if (!slash)
        return ferry_fsync_dir(".");
    if (slash == buf)
        return ferry_fsync_dir("/");
    *slash = 0;
    enum ferry_err err = ferry_fsync_dir(buf);
    *slash = '/';
    return err;
}

enum ferry_err ferry_mkdir_p(const char *path, mode_t mode, struct ferry_diag *d)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "%s: path too long", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, mode) == 0) {
                enum ferry_err err = fsync_parent(buf);
                if (err != FERRY_OK)
                    return ferry_fail(d, err, "%s: fsync of the folder holding it failed", buf);
            } else {
                struct stat st;
                if (errno != EEXIST)
                    return ferry_fail(d, errno_to_err(errno), "%s: %s", buf, strerror(errno));
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
