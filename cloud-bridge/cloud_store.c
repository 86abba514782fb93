#include "cloud_store.h"

#include "ferry_envelope.h"
#include "ferry_fs.h"
#include "ferry_hex.h"
#include "ferry_manifest.h"
#include "ferry_names.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Large enough that a multi-GiB import is a few thousand syscalls, small
 * enough to stay out of the way of a serving process. */
#define COPY_BLOCK (1u << 20)

struct cloud_store {
    char *dir;
    int dirfd; /* entries are looked up relative to it, never by a built path */
};

static enum ferry_err errno_err(int e)
{
    switch (e) {
    case ENOENT:
        return FERRY_E_NOT_FOUND;
    case ENOSPC:
    case EDQUOT:
        return FERRY_E_NOSPACE;
    case ENOMEM:
        return FERRY_E_NOMEM;
    default:
        return FERRY_E_IO;
    }
}

enum ferry_err cloud_store_open(const char *dir, struct cloud_store **out, struct ferry_diag *d)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s/" CLOUD_STORE_TMP, dir) >= (int)sizeof(tmp))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "store %s: path too long", dir);
    enum ferry_err err = ferry_mkdir_p(tmp, 0755, d);
    if (err != FERRY_OK) {
        ferry_diag_prefix(d, "store");
        return err;
    }
    struct cloud_store *s = calloc(1, sizeof(*s));
    if (!s || !(s->dir = strdup(dir))) {
        free(s);
        return ferry_fail(d, FERRY_E_NOMEM, "store %s: out of memory", dir);
    }
    s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0) {
        err = ferry_fail(d, errno_err(errno), "store %s: %s", dir, strerror(errno));
        cloud_store_free(s);
        return err;
    }
    *out = s;
    return FERRY_OK;
}

void cloud_store_free(struct cloud_store *s)
{
    if (!s)
        return;
    if (s->dirfd >= 0)
        close(s->dirfd);
    free(s->dir);
    free(s);
}

static void entry_name(const uint8_t sha256[FERRY_SHA256_LEN], char hex[FERRY_SHA256_HEX_LEN + 1])
{
    ferry_hex_encode(sha256, FERRY_SHA256_LEN, hex);
}

enum ferry_err cloud_store_path(const struct cloud_store *s, const uint8_t sha256[FERRY_SHA256_LEN],
                                char *out, size_t cap)
{
    char hex[FERRY_SHA256_HEX_LEN + 1];
    entry_name(sha256, hex);
    int n = snprintf(NULL, 0, "%s/%s", s->dir, hex);
    if (n < 0 || (size_t)n >= cap)
        return FERRY_E_TOO_LARGE;
    snprintf(out, cap, "%s/%s", s->dir, hex);
    return FERRY_OK;
}

/* An entry must be a regular file: anything else under a digest's name was
 * not put there by this module. */
static enum ferry_err check_entry(const struct cloud_store *s, const char *hex,
                                  const struct stat *st, uint64_t *size, struct ferry_diag *d)
{
    if (!S_ISREG(st->st_mode))
        return ferry_fail(d, FERRY_E_CORRUPT, "store %s: entry %s is not a regular file", s->dir,
                          hex);
    *size = (uint64_t)st->st_size;
    return FERRY_OK;
}

static enum ferry_err lookup_failed(const struct cloud_store *s, const char *hex, int e,
                                    struct ferry_diag *d)
{
    if (e == ENOENT)
        return ferry_fail(d, FERRY_E_NOT_FOUND, "no artifact %s in the store", hex);
    if (e == ELOOP)
        return ferry_fail(d, FERRY_E_CORRUPT, "store %s: entry %s is a symbolic link", s->dir, hex);
    return ferry_fail(d, errno_err(e), "store %s: entry %s: %s", s->dir, hex, strerror(e));
}

enum ferry_err cloud_store_size(const struct cloud_store *s, const uint8_t sha256[FERRY_SHA256_LEN],
                                uint64_t *size, struct ferry_diag *d)
{
    char hex[FERRY_SHA256_HEX_LEN + 1];
    struct stat st;
    entry_name(sha256, hex);
    if (fstatat(s->dirfd, hex, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return lookup_failed(s, hex, errno, d);
    return check_entry(s, hex, &st, size, d);
}

enum ferry_err cloud_store_open_entry(const struct cloud_store *s,
                                      const uint8_t sha256[FERRY_SHA256_LEN], int *fd,
                                      uint64_t *size, struct ferry_diag *d)
{
    char hex[FERRY_SHA256_HEX_LEN + 1];
    struct stat st;
    uint64_t sz = 0;
    entry_name(sha256, hex);
    int f = openat(s->dirfd, hex, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (f < 0)
        return lookup_failed(s, hex, errno, d);
    enum ferry_err err = fstat(f, &st) == 0 ? check_entry(s, hex, &st, &sz, d)
                                            : ferry_fail(d, FERRY_E_IO, "store %s: entry %s: %s",
                                                         s->dir, hex, strerror(errno));
    if (err != FERRY_OK) {
        close(f);
        return err;
    }
    *fd = f;
    *size = sz;
    return FERRY_OK;
}

/* ---- checking an entry against its name ---------------------------------- */

#define CHECK_READ (64u << 10) /* one pread of a slice */

bool cloud_store_same_file(const struct stat *checked, const struct stat *st)
{
    return checked->st_dev == st->st_dev && checked->st_ino == st->st_ino &&
           checked->st_size == st->st_size && checked->st_mtim.tv_sec == st->st_mtim.tv_sec &&
           checked->st_mtim.tv_nsec == st->st_mtim.tv_nsec;
}

void cloud_store_check_cancel(struct cloud_store_check *c)
{
    if (!c->live)
        return;
    uint8_t discard[FERRY_SHA256_LEN];
    ferry_sha256_final(&c->hash, discard); /* releases the context */
    c->live = false;
}

enum ferry_err cloud_store_check_begin(const struct cloud_store *s, struct cloud_store_check *c,
                                       const uint8_t sha256[FERRY_SHA256_LEN], int fd,
                                       uint64_t size, struct ferry_diag *d)
{
    memset(c, 0, sizeof(*c));
    memcpy(c->sha256, sha256, FERRY_SHA256_LEN);
    c->fd = fd;
    c->size = size;
    if (fstat(fd, &c->file) != 0) {
        char hex[FERRY_SHA256_HEX_LEN + 1];
        entry_name(sha256, hex);
        return ferry_fail(d, FERRY_E_IO, "store %s: entry %s: %s", s->dir, hex, strerror(errno));
    }
    ferry_sha256_init(&c->hash);
    c->live = true;
    return FERRY_OK;
}

bool cloud_store_check_done(const struct cloud_store_check *c)
{
    return c->done >= c->size;
}

enum ferry_err cloud_store_check_step(const struct cloud_store *s, struct cloud_store_check *c,
                                      uint64_t slice, struct ferry_diag *d)
{
    if (!c->live || slice == 0) {
        enum ferry_err err =
            ferry_fail(d, FERRY_E_INVALID_ARG, "store %s: %s", s->dir,
                       c->live ? "a check step of zero bytes" : "a step of a check not begun");
        cloud_store_check_cancel(c);
        return err;
    }
    uint8_t buf[CHECK_READ];
    uint64_t end = c->size - c->done < slice ? c->size : c->done + slice;
    while (c->done < end) {
        size_t want = end - c->done < sizeof(buf) ? (size_t)(end - c->done) : sizeof(buf);
        ssize_t got = pread(c->fd, buf, want, (off_t)c->done);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            char hex[FERRY_SHA256_HEX_LEN + 1];
            entry_name(c->sha256, hex);
            enum ferry_err err =
                ferry_fail(d, FERRY_E_IO, "store %s: entry %s: %s at offset %llu", s->dir, hex,
                           got < 0 ? strerror(errno) : "short read", (unsigned long long)c->done);
            cloud_store_check_cancel(c);
            return err;
        }
        ferry_sha256_update(&c->hash, buf, (size_t)got);
        c->done += (uint64_t)got;
    }
    return FERRY_OK;
}

enum ferry_err cloud_store_check_end(const struct cloud_store *s, struct cloud_store_check *c,
                                     struct ferry_diag *d)
{
    char hex[FERRY_SHA256_HEX_LEN + 1];
    entry_name(c->sha256, hex);
    if (!c->live || !cloud_store_check_done(c)) {
        cloud_store_check_cancel(c);
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "store %s: entry %s: check ended after %llu of %llu bytes", s->dir, hex,
                          (unsigned long long)c->done, (unsigned long long)c->size);
    }
    uint8_t got[FERRY_SHA256_LEN];
    ferry_sha256_final(&c->hash, got);
    c->live = false;
    struct stat now;
    if (fstat(c->fd, &now) != 0)
        return ferry_fail(d, FERRY_E_IO, "store %s: entry %s: %s", s->dir, hex, strerror(errno));
    if (!cloud_store_same_file(&c->file, &now))
        return ferry_fail(d, FERRY_E_BUSY, "store %s: entry %s changed while it was checked",
                          s->dir, hex);
    if (memcmp(got, c->sha256, FERRY_SHA256_LEN) != 0)
        return ferry_fail(d, FERRY_E_HASH_MISMATCH,
                          "store %s: entry %s does not hold what its name says (a damaged or "
                          "unfinished copy?)",
                          s->dir, hex);
    return FERRY_OK;
}

enum ferry_err cloud_store_verify_entry(const struct cloud_store *s,
                                        const uint8_t sha256[FERRY_SHA256_LEN], int fd,
                                        uint64_t size, struct ferry_diag *d)
{
    struct cloud_store_check c;
    enum ferry_err err = cloud_store_check_begin(s, &c, sha256, fd, size, d);
    while (err == FERRY_OK && !cloud_store_check_done(&c))
        err = cloud_store_check_step(s, &c, CLOUD_STORE_CHECK_SLICE, d);
    return err == FERRY_OK ? cloud_store_check_end(s, &c, d) : err;
}

/* ---- import -------------------------------------------------------------- */

struct import {
    const char *src_path;
    int src;
    char tmp_path[PATH_MAX];
    int tmp;
    uint64_t expected; /* source size when the import began */
    uint64_t copied;
    struct ferry_sha256 hash;
    uint8_t digest[FERRY_SHA256_LEN];
    cloud_store_progress progress;
    void *arg;
};

static enum ferry_err open_source(struct import *im, struct ferry_diag *d)
{
    struct stat st;
    /* O_NONBLOCK: a FIFO given by mistake must not hang the import. */
    im->src = open(im->src_path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (im->src < 0)
        return ferry_fail(d, errno_err(errno), "%s: %s", im->src_path, strerror(errno));
    if (fstat(im->src, &st) != 0)
        return ferry_fail(d, FERRY_E_IO, "%s: %s", im->src_path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "%s: not a regular file", im->src_path);
    if (st.st_size == 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "%s: empty; an artifact has at least one byte",
                          im->src_path);
    if ((uint64_t)st.st_size > FERRY_ARTIFACT_MAX_SIZE)
        return ferry_fail(d, FERRY_E_TOO_LARGE, "%s: %lld bytes, above the %llu-byte cap",
                          im->src_path, (long long)st.st_size,
                          (unsigned long long)FERRY_ARTIFACT_MAX_SIZE);
    im->expected = (uint64_t)st.st_size;
    return FERRY_OK;
}

static enum ferry_err open_tmp(const struct cloud_store *s, struct import *im, struct ferry_diag *d)
{
    if (snprintf(im->tmp_path, sizeof(im->tmp_path), "%s/" CLOUD_STORE_TMP "/import-XXXXXX",
                 s->dir) >= (int)sizeof(im->tmp_path))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "store %s: path too long", s->dir);
    im->tmp = mkostemp(im->tmp_path, O_CLOEXEC);
    if (im->tmp < 0) {
        im->tmp_path[0] = 0;
        return ferry_fail(d, errno_err(errno), "store %s: cannot create a file in %s/: %s", s->dir,
                          CLOUD_STORE_TMP, strerror(errno));
    }
    /* mkostemp makes 0600; serving processes may run as another user. */
    if (fchmod(im->tmp, 0644) != 0)
        return ferry_fail(d, FERRY_E_IO, "%s: %s", im->tmp_path, strerror(errno));
    return FERRY_OK;
}

static enum ferry_err copy_block(struct import *im, uint8_t *buf, size_t *got, struct ferry_diag *d)
{
    ssize_t r;
    do
        r = read(im->src, buf, COPY_BLOCK);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return ferry_fail(d, FERRY_E_IO, "%s: %s", im->src_path, strerror(errno));
    *got = (size_t)r;
    if (r == 0)
        return FERRY_OK;
    /* The cap holds for what is read, not for what fstat said earlier. */
    if (im->copied + (uint64_t)r > FERRY_ARTIFACT_MAX_SIZE)
        return ferry_fail(d, FERRY_E_TOO_LARGE, "%s: grew above the %llu-byte cap while read",
                          im->src_path, (unsigned long long)FERRY_ARTIFACT_MAX_SIZE);
    ferry_sha256_update(&im->hash, buf, (size_t)r);
    enum ferry_err err = ferry_write_all(im->tmp, buf, (size_t)r);
    if (err != FERRY_OK)
        return ferry_fail(d, err, "%s: write failed: %s", im->tmp_path, ferry_strerror(err));
    im->copied += (uint64_t)r;
    if (im->progress)
        im->progress(im->arg, im->copied, im->expected);
    return FERRY_OK;
}

static enum ferry_err copy_all(struct import *im, struct ferry_diag *d)
{
    uint8_t *buf = malloc(COPY_BLOCK);
    if (!buf)
        return ferry_fail(d, FERRY_E_NOMEM, "%s: out of memory", im->src_path);
    enum ferry_err err;
    size_t got;
    do
        err = copy_block(im, buf, &got, d);
    while (err == FERRY_OK && got > 0);
    free(buf);
    if (err == FERRY_OK && im->copied == 0)
        err = ferry_fail(d, FERRY_E_INVALID_ARG, "%s: became empty while read", im->src_path);
    if (err == FERRY_OK && fsync(im->tmp) != 0)
        err =
            ferry_fail(d, errno_err(errno), "%s: fsync failed: %s", im->tmp_path, strerror(errno));
    int fd = im->tmp;
    im->tmp = -1;
    if (close(fd) != 0 && err == FERRY_OK)
        err =
            ferry_fail(d, errno_err(errno), "%s: close failed: %s", im->tmp_path, strerror(errno));
    return err;
}

/* Moves the finished copy to its name. An existing regular entry of the same
 * size holds the same bytes (its name is their digest), so it stays; one of
 * another size is damaged and is replaced. */
static enum ferry_err commit_entry(struct cloud_store *s, struct import *im, const char *hex,
                                   struct ferry_diag *d)
{
    struct stat st;
    if (fstatat(s->dirfd, hex, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISREG(st.st_mode))
            return ferry_fail(d, FERRY_E_CORRUPT, "store %s: entry %s is not a regular file",
                              s->dir, hex);
        if ((uint64_t)st.st_size == im->copied)
            return FERRY_OK; /* the caller removes the copy */
    }
    char path[PATH_MAX];
    if (cloud_store_path(s, im->digest, path, sizeof(path)) != FERRY_OK)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "store %s: path too long", s->dir);
    if (rename(im->tmp_path, path) != 0)
        return ferry_fail(d, errno_err(errno), "store %s: rename to %s failed: %s", s->dir, hex,
                          strerror(errno));
    im->tmp_path[0] = 0;
    if (fsync(s->dirfd) != 0)
        return ferry_fail(d, errno_err(errno), "store %s: fsync failed: %s", s->dir,
                          strerror(errno));
    return FERRY_OK;
}

enum ferry_err cloud_store_import(struct cloud_store *s, const char *path,
                                  cloud_store_progress progress, void *arg,
                                  uint8_t sha256[FERRY_SHA256_LEN], uint64_t *size,
                                  struct ferry_diag *d)
{
    struct import im = {.src_path = path, .src = -1, .tmp = -1, .progress = progress, .arg = arg};
    ferry_sha256_init(&im.hash);
    enum ferry_err err = open_source(&im, d);
    if (err == FERRY_OK)
        err = open_tmp(s, &im, d);
    if (err == FERRY_OK)
        err = copy_all(&im, d);
    ferry_sha256_final(&im.hash, im.digest); /* also releases the context */
    if (err != FERRY_OK)
        goto out;
    char hex[FERRY_SHA256_HEX_LEN + 1];
    entry_name(im.digest, hex);
    err = commit_entry(s, &im, hex, d);
    if (err == FERRY_OK) {
        memcpy(sha256, im.digest, FERRY_SHA256_LEN);
        *size = im.copied;
    }
out:
    if (im.src >= 0)
        close(im.src);
    if (im.tmp >= 0)
        close(im.tmp);
    if (im.tmp_path[0])
        unlink(im.tmp_path);
    return err;
}

/* ---- catalogues ------------------------------------------------------------ */

#define RELEASES_DIR "releases"
#define FLEETS_DIR   "fleets"

/* DIR/<sub>/<id><suffix>, after checking id. */
static enum ferry_err catalogue_path(const struct cloud_store *s, const char *sub, const char *id,
                                     const char *suffix, char out[PATH_MAX], struct ferry_diag *d)
{
    if (!ferry_id_valid(id))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "store: '%.80s' is not a valid id", id ? id : "");
    if (snprintf(out, PATH_MAX, "%s/%s/%s%s", s->dir, sub, id, suffix) >= PATH_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "store %s: path too long", s->dir);
    return FERRY_OK;
}

static enum ferry_err catalogue_put(struct cloud_store *s, const char *sub, const char *id,
                                    const char *suffix, const void *buf, size_t len,
                                    struct ferry_diag *d)
{
    char dir[PATH_MAX], path[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/%s", s->dir, sub);
    enum ferry_err err = catalogue_path(s, sub, id, suffix, path, d);
    if (err == FERRY_OK)
        err = ferry_mkdir_p(dir, 0755, d);
    if (err == FERRY_OK)
        err = ferry_write_atomic(path, buf, len, 0644, d);
    return err;
}

enum ferry_err cloud_store_put_release(struct cloud_store *s, const char *release_id,
                                       const uint8_t *env, size_t len, struct ferry_diag *d)
{
    return catalogue_put(s, RELEASES_DIR, release_id, ".env", env, len, d);
}

enum ferry_err cloud_store_get_release(const struct cloud_store *s, const char *release_id,
                                       uint8_t **env, size_t *len, struct ferry_diag *d)
{
    char path[PATH_MAX];
    enum ferry_err err = catalogue_path(s, RELEASES_DIR, release_id, ".env", path, d);
    if (err == FERRY_OK)
        err = ferry_read_file(path, FERRY_ENVELOPE_MAX_BYTES, env, len, d);
    if (err == FERRY_E_NOT_FOUND)
        return ferry_fail(d, err,
                          "store %s has no release %s ('ferry-cloud publish' puts it there)",
                          s->dir, release_id);
    return err;
}

enum ferry_err cloud_store_each_release(const struct cloud_store *s, cloud_store_release_cb cb,
                                        void *arg, struct ferry_diag *d)
{
    int fd = openat(s->dirfd, RELEASES_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return FERRY_OK;
    DIR *dir = fd < 0 ? NULL : fdopendir(fd);
    if (!dir) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return ferry_fail(d, errno_err(e), "store %s: listing releases: %s", s->dir, strerror(e));
    }
    enum ferry_err err = FERRY_OK;
    const struct dirent *ent;
    while (err == FERRY_OK && (ent = readdir(dir)) != NULL) {
        size_t len = strlen(ent->d_name);
        char id[FERRY_NAME_MAX + 1];
        if (len <= 4 || len - 4 > FERRY_NAME_MAX || strcmp(ent->d_name + len - 4, ".env") != 0)
            continue;
        snprintf(id, sizeof(id), "%.*s", (int)(len - 4), ent->d_name);
        if (ferry_id_valid(id))
            err = cb(arg, id);
    }
    closedir(dir);
    return err;
}

enum ferry_err cloud_store_get_fleet(const struct cloud_store *s, const char *fleet,
                                     struct ferry_fleet_config *out, struct ferry_diag *d)
{
    char path[PATH_MAX];
    uint8_t *buf = NULL;
    size_t len = 0;
    enum ferry_err err = catalogue_path(s, FLEETS_DIR, fleet, ".json", path, d);
    if (err == FERRY_OK)
        err = ferry_read_file(path, FERRY_FLEET_CONFIG_MAX, &buf, &len, d);
    if (err == FERRY_E_NOT_FOUND) {
        memset(out, 0, sizeof(*out));
        return FERRY_OK;
    }
    if (err == FERRY_OK)
        err = ferry_fleet_config_from_json(buf, len, out, d);
    if (err != FERRY_OK)
        ferry_diag_prefix(d, path);
    free(buf);
    return err;
}

enum ferry_err cloud_store_put_fleet(struct cloud_store *s, const char *fleet,
                                     const struct ferry_fleet_config *cfg, struct ferry_diag *d)
{
    char *json = NULL;
    size_t len = 0;
    enum ferry_err err = ferry_fleet_config_to_json(cfg, &json, &len, d);
    if (err == FERRY_OK)
        err = catalogue_put(s, FLEETS_DIR, fleet, ".json", json, len, d);
    free(json);
    return err;
}
