#include "gw_cache.h"

#include "ferry_bytes.h"
#include "ferry_crc32.h"
#include "ferry_fs.h"
#include "ferry_hex.h"
#include "ferry_log.h"
#include "ferry_manifest.h"
#include "ferry_stream.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HEX_LEN     FERRY_SHA256_HEX_LEN
#define READ_BUF    (64 * 1024)
#define JOURNAL_BUF (256 * GW_CACHE_JOURNAL_RECORD)
/* Folder names leave room for "/partial/<64 hex>.part" within PATH_MAX. */
#define DIR_MAX (PATH_MAX - 96)

enum entry_kind {
    ENTRY_COMPLETE,
    ENTRY_PARTIAL,
};

struct entry {
    uint8_t sha256[FERRY_SHA256_LEN];
    enum entry_kind kind;
    uint64_t size; /* bytes counted against the quota */
    uint64_t lru;  /* nanoseconds; larger is more recently used */
    bool open;     /* a gw_cache_part is writing it */
    struct gw_cache_map *map;
};

struct gw_cache {
    char dir[DIR_MAX];
    char pdir[DIR_MAX + 8];
    uint64_t quota;
    uint64_t sync_every;
    const struct ferry_io *io; /* NULL: the system's */
    void (*on_evict)(void *arg, const uint8_t sha256[FERRY_SHA256_LEN]);
    void *evict_arg;
    struct entry *e;
    size_t n, cap;
    uint64_t lru_clock;
};

struct gw_cache_part {
    struct gw_cache *c;
    uint8_t sha256[FERRY_SHA256_LEN];
    char hex[HEX_LEN + 1];
    uint64_t size;
    uint32_t chunk;
    int fd;  /* .part */
    int jfd; /* .crc journal */
    uint64_t nrec;
    uint64_t end;
    uint64_t unsynced;
    struct ferry_sha256 h; /* over bytes 0..end */
    bool hash_live;        /* h holds a context to release */
    bool broken;           /* an fsync failed: the page cache is not trusted */
};

struct gw_cache_map {
    struct gw_cache *c; /* NULL once the cache is freed */
    uint8_t sha256[FERRY_SHA256_LEN];
    const uint8_t *data;
    uint64_t size;
    unsigned refs;
};

static enum ferry_err errno_err(int e)
{
    return e == ENOSPC || e == EDQUOT ? FERRY_E_NOSPACE : FERRY_E_IO;
}

static void hex_of(const uint8_t sha256[FERRY_SHA256_LEN], char hex[HEX_LEN + 1])
{
    ferry_hex_encode(sha256, FERRY_SHA256_LEN, hex);
}

/* Only the exact spelling this cache writes: one digest, one name. */
static bool parse_hex_name(const char *name, size_t len, uint8_t sha256[FERRY_SHA256_LEN])
{
    char buf[HEX_LEN + 1];
    if (len != HEX_LEN)
        return false;
    for (size_t i = 0; i < HEX_LEN; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
            return false;
    memcpy(buf, name, HEX_LEN);
    buf[HEX_LEN] = 0;
    return ferry_hex_decode(buf, sha256, FERRY_SHA256_LEN) == FERRY_OK;
}

/* Paths always fit: see DIR_MAX. */
static void complete_path(const struct gw_cache *c, const char *hex, char out[PATH_MAX])
{
    snprintf(out, PATH_MAX, "%s/%s", c->dir, hex);
}

static void partial_path(const struct gw_cache *c, const char *hex, const char *ext,
                         char out[PATH_MAX])
{
    snprintf(out, PATH_MAX, "%s/%s.%s", c->pdir, hex, ext);
}

static struct entry *find(const struct gw_cache *c, const uint8_t sha256[FERRY_SHA256_LEN],
                          enum entry_kind kind)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->e[i].kind == kind && memcmp(c->e[i].sha256, sha256, FERRY_SHA256_LEN) == 0)
            return &c->e[i];
    return NULL;
}

static struct entry *add_entry(struct gw_cache *c, const uint8_t sha256[FERRY_SHA256_LEN],
                               enum entry_kind kind, uint64_t size, uint64_t lru)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        struct entry *e = realloc(c->e, cap * sizeof(*e));
        if (!e)
            return NULL;
        c->e = e;
        c->cap = cap;
    }
    struct entry *e = &c->e[c->n++];
    memset(e, 0, sizeof(*e));
    memcpy(e->sha256, sha256, FERRY_SHA256_LEN);
    e->kind = kind;
    e->size = size;
    e->lru = lru;
    if (lru > c->lru_clock)
        c->lru_clock = lru;
    return e;
}

static void drop_entry(struct gw_cache *c, struct entry *e)
{
    *e = c->e[--c->n];
}

/* Marks an entry most recently used, in memory and (for the next start) in
 * the file's mtime; a failure to set the mtime only costs LRU accuracy. */
static void touch(struct gw_cache *c, struct entry *e, const char *path)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    e->lru = now > c->lru_clock ? now : c->lru_clock + 1;
    c->lru_clock = e->lru;
    if (utimensat(AT_FDCWD, path, NULL, 0) != 0)
        ferry_log_debug("cache: cannot set the mtime of %s: %s", path, strerror(errno));
}

static uint64_t mtime_ns(const struct stat *st)
{
    return (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec;
}

static enum ferry_err scan_complete(struct gw_cache *c, struct ferry_diag *d)
{
    DIR *dir = opendir(c->dir);
    if (!dir)
        return ferry_fail(d, FERRY_E_IO, "cache: %s: %s", c->dir, strerror(errno));
    enum ferry_err err = FERRY_OK;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        uint8_t sha[FERRY_SHA256_LEN];
        struct stat st;
        if (!parse_hex_name(de->d_name, strlen(de->d_name), sha))
            continue;
        if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (!add_entry(c, sha, ENTRY_COMPLETE, (uint64_t)st.st_size, mtime_ns(&st))) {
            err = ferry_fail(d, FERRY_E_NOMEM, "cache: out of memory");
            break;
        }
    }
    closedir(dir);
    return err;
}

/* A partial of an artifact that is already complete, or a journal with no
 * .part beside it, is left over from a crash between the steps of
 * finishing: remove it. */
static bool drop_if_stale(struct gw_cache *c, DIR *dir, const char *name,
                          const uint8_t sha[FERRY_SHA256_LEN], bool is_journal)
{
    char part[HEX_LEN + 6];
    snprintf(part, sizeof(part), "%.*s.part", HEX_LEN, name);
    bool stale = find(c, sha, ENTRY_COMPLETE) != NULL ||
                 (is_journal && faccessat(dirfd(dir), part, F_OK, 0) != 0);
    char path[PATH_MAX];
    if (stale && (snprintf(path, sizeof(path), "%s/%s", c->pdir, name) >= (int)sizeof(path) ||
                  ferry_io_unlink(c->io, path) != 0))
        ferry_log_warn("cache: cannot remove stale %s/%s: %s", c->pdir, name, strerror(errno));
    return stale;
}

static enum ferry_err scan_partial(struct gw_cache *c, struct ferry_diag *d)
{
    DIR *dir = opendir(c->pdir);
    if (!dir)
        return ferry_fail(d, FERRY_E_IO, "cache: %s: %s", c->pdir, strerror(errno));
    enum ferry_err err = FERRY_OK;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        uint8_t sha[FERRY_SHA256_LEN];
        struct stat st;
        if (strlen(de->d_name) < HEX_LEN || !parse_hex_name(de->d_name, HEX_LEN, sha))
            continue;
        const char *ext = de->d_name + HEX_LEN;
        bool is_part = strcmp(ext, ".part") == 0;
        if (!is_part && strcmp(ext, ".crc") != 0)
            continue;
        if (drop_if_stale(c, dir, de->d_name, sha, !is_part) || !is_part)
            continue;
        if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (!add_entry(c, sha, ENTRY_PARTIAL, (uint64_t)st.st_size, mtime_ns(&st))) {
            err = ferry_fail(d, FERRY_E_NOMEM, "cache: out of memory");
            break;
        }
    }
    closedir(dir);
    return err;
}

enum ferry_err gw_cache_open(const struct gw_cache_opts *o, struct gw_cache **out,
                             struct ferry_diag *d)
{
    if (!o->dir || !o->dir[0])
        return ferry_fail(d, FERRY_E_INVALID_ARG, "cache: no folder given");
    if (o->quota < 1)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "cache: the quota must be at least 1 byte");
    if (strlen(o->dir) >= DIR_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "cache: folder name too long: %s", o->dir);
    struct gw_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return ferry_fail(d, FERRY_E_NOMEM, "cache: out of memory");
    snprintf(c->dir, sizeof(c->dir), "%s", o->dir);
    snprintf(c->pdir, sizeof(c->pdir), "%s/partial", o->dir);
    c->quota = o->quota;
    c->sync_every = o->sync_every ? o->sync_every : GW_CACHE_SYNC_EVERY_DEFAULT;
    c->io = o->io;
    c->on_evict = o->on_evict;
    c->evict_arg = o->evict_arg;
    enum ferry_err err = ferry_mkdir_p_io(c->io, c->pdir, 0755, d);
    if (err == FERRY_OK)
        err = scan_complete(c, d);
    if (err == FERRY_OK)
        err = scan_partial(c, d);
    if (err != FERRY_OK) {
        gw_cache_free(c);
        return err;
    }
    *out = c;
    return FERRY_OK;
}

void gw_cache_free(struct gw_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        if (c->e[i].open)
            ferry_log_err("cache: freed while a partial is still open (a caller bug)");
        /* The mapping outlives the cache: its last unmap releases it. */
        if (c->e[i].map)
            c->e[i].map->c = NULL;
    }
    free(c->e);
    free(c);
}

bool gw_cache_has(const struct gw_cache *c, const uint8_t sha256[FERRY_SHA256_LEN], uint64_t *size)
{
    const struct entry *e = find(c, sha256, ENTRY_COMPLETE);
    if (e && size)
        *size = e->size;
    return e != NULL;
}

uint64_t gw_cache_used(const struct gw_cache *c)
{
    uint64_t used = 0;
    for (size_t i = 0; i < c->n; i++)
        used += c->e[i].size;
    return used;
}

uint64_t gw_cache_quota(const struct gw_cache *c)
{
    return c->quota;
}

static enum ferry_err unlink_checked(const struct gw_cache *c, const char *path,
                                     struct ferry_diag *d)
{
    if (ferry_io_unlink(c->io, path) != 0 && errno != ENOENT)
        return ferry_fail(d, FERRY_E_IO, "cache: cannot delete %s: %s", path, strerror(errno));
    return FERRY_OK;
}

/* Deletes an entry's files and forgets it. */
static enum ferry_err remove_entry(struct gw_cache *c, struct entry *e, struct ferry_diag *d)
{
    char hex[HEX_LEN + 1];
    char path[PATH_MAX];
    enum ferry_err err;
    hex_of(e->sha256, hex);
    if (e->kind == ENTRY_COMPLETE) {
        complete_path(c, hex, path);
        err = unlink_checked(c, path, d);
    } else {
        partial_path(c, hex, "part", path);
        err = unlink_checked(c, path, d);
        partial_path(c, hex, "crc", path);
        if (err == FERRY_OK)
            err = unlink_checked(c, path, d);
    }
    if (err == FERRY_OK)
        drop_entry(c, e);
    return err;
}

static bool referenced(const struct gw_cache_refs *refs, const uint8_t sha256[FERRY_SHA256_LEN])
{
    for (size_t i = 0; refs && i < refs->n; i++)
        if (memcmp(refs->sha256[i], sha256, FERRY_SHA256_LEN) == 0)
            return true;
    return false;
}

static bool evictable(const struct entry *e, const uint8_t keep[FERRY_SHA256_LEN],
                      const struct gw_cache_refs *refs)
{
    return !e->open && !e->map && memcmp(e->sha256, keep, FERRY_SHA256_LEN) != 0 &&
           !referenced(refs, e->sha256);
}

/* Evicts least recently used entries until `need` more bytes fit besides
 * everything but sha256's own partial; evicts nothing if that cannot work. */
static enum ferry_err make_room(struct gw_cache *c, const uint8_t sha256[FERRY_SHA256_LEN],
                                uint64_t need, const struct gw_cache_refs *refs,
                                struct ferry_diag *d)
{
    const struct entry *own = find(c, sha256, ENTRY_PARTIAL);
    uint64_t other = gw_cache_used(c) - (own ? own->size : 0);
    uint64_t freeable = 0;
    for (size_t i = 0; i < c->n; i++)
        if (evictable(&c->e[i], sha256, refs))
            freeable += c->e[i].size;
    if (need > c->quota || other - freeable > c->quota - need) {
        char hex[HEX_LEN + 1];
        hex_of(sha256, hex);
        return ferry_fail(d, FERRY_E_NOSPACE,
                          "cache: artifact %s needs %llu bytes, but the quota is %llu bytes and "
                          "%llu bytes are held by artifacts in use",
                          hex, (unsigned long long)need, (unsigned long long)c->quota,
                          (unsigned long long)(other - freeable));
    }
    bool evicted = false;
    while (other > c->quota - need) {
        struct entry *victim = NULL;
        for (size_t i = 0; i < c->n; i++)
            if (evictable(&c->e[i], sha256, refs) && (!victim || c->e[i].lru < victim->lru))
                victim = &c->e[i];
        if (!victim) /* cannot happen: freeable covered the shortfall above */
            return ferry_fail(d, FERRY_E_NOSPACE, "cache: nothing left to evict");
        uint64_t size = victim->size;
        bool complete = victim->kind == ENTRY_COMPLETE;
        uint8_t victim_sha[FERRY_SHA256_LEN];
        memcpy(victim_sha, victim->sha256, FERRY_SHA256_LEN);
        char hex[HEX_LEN + 1];
        hex_of(victim->sha256, hex);
        ferry_log_info("cache: evicting %s %s (%llu bytes) to make room",
                       victim->kind == ENTRY_COMPLETE ? "artifact" : "partial", hex,
                       (unsigned long long)size);
        enum ferry_err err = remove_entry(c, victim, d);
        if (err != FERRY_OK)
            return err;
        if (complete && c->on_evict)
            c->on_evict(c->evict_arg, victim_sha);
        other -= size;
        evicted = true;
    }
    if (evicted && ferry_fsync_dir_io(c->io, c->dir) != FERRY_OK)
        ferry_log_warn("cache: fsync of %s failed after eviction", c->dir);
    return FERRY_OK;
}

/* ---- partial downloads ---- */

struct journal_rec {
    uint64_t offset;
    uint32_t len;
    uint32_t crc;
};

static void rec_encode(const struct journal_rec *r, uint8_t out[GW_CACHE_JOURNAL_RECORD])
{
    ferry_put_le64(out, r->offset);
    ferry_put_le32(out + 8, r->len);
    ferry_put_le32(out + 12, r->crc);
    ferry_put_le32(out + 16, ferry_crc32(0, out, 16));
}

static bool rec_decode(const uint8_t in[GW_CACHE_JOURNAL_RECORD], struct journal_rec *r)
{
    if (ferry_crc32(0, in, 16) != ferry_get_le32(in + 16))
        return false;
    r->offset = ferry_get_le64(in);
    r->len = ferry_get_le32(in + 8);
    r->crc = ferry_get_le32(in + 12);
    return true;
}

/* pread until len bytes or EOF; the count read, or -1 on an error. */
static ssize_t pread_full(const struct gw_cache *c, int fd, uint8_t *buf, size_t len, off_t off)
{
    size_t got = 0;
    if (ferry_pread_full_io(c->io, fd, buf, len, off, &got) != FERRY_OK)
        return -1;
    return (ssize_t)got;
}

/* On failure *err_no is the errno that stopped it. */
static enum ferry_err pwrite_all(const struct gw_cache *c, int fd, const uint8_t *buf, size_t len,
                                 off_t off, int *err_no)
{
    enum ferry_err err = ferry_pwrite_all_io(c->io, fd, buf, len, off);
    if (err != FERRY_OK)
        *err_no = errno;
    return err == FERRY_E_NOSPACE ? err : err == FERRY_OK ? FERRY_OK : FERRY_E_IO;
}

static enum ferry_err part_sync(struct gw_cache_part *p, struct ferry_diag *d)
{
    if (ferry_io_fsync(p->c->io, p->fd) != 0 || ferry_io_fsync(p->c->io, p->jfd) != 0) {
        p->broken = true;
        return ferry_fail(d, FERRY_E_IO, "cache: fsync of partial %s failed: %s", p->hex,
                          strerror(errno));
    }
    p->unsynced = 0;
    return FERRY_OK;
}

/* Where the journal scan stands: the prefix checked so far and the longest
 * one that ends where the stream can resume. */
struct scan {
    uint64_t nrec, end;
    struct ferry_sha256 h;
    uint64_t kept_nrec, kept_end;
    struct ferry_sha256 kept_h;
};

/* Takes one journal record if it extends the checked prefix and its data in
 * the .part still matches; false stops the scan there. */
static bool scan_record(struct gw_cache_part *p, struct scan *s, const uint8_t *raw, uint8_t *data)
{
    struct journal_rec r;
    if (!rec_decode(raw, &r) || r.offset != s->end || r.len == 0 ||
        r.len > FERRY_STREAM_MAX_CHUNK || r.len > p->size - s->end)
        return false;
    if (pread_full(p->c, p->fd, data, r.len, (off_t)r.offset) != (ssize_t)r.len ||
        ferry_crc32(0, data, r.len) != r.crc)
        return false;
    ferry_sha256_update(&s->h, data, r.len);
    s->nrec++;
    s->end += r.len;
    if (s->end % p->chunk == 0 || s->end == p->size) {
        s->kept_nrec = s->nrec;
        s->kept_end = s->end;
        mbedtls_sha256_clone(&s->kept_h.ctx, &s->h.ctx);
    }
    return true;
}

static enum ferry_err scan_journal(struct gw_cache_part *p, struct scan *s, struct ferry_diag *d)
{
    enum ferry_err err = FERRY_OK;
    uint8_t *data = malloc(FERRY_STREAM_MAX_CHUNK);
    uint8_t *recs = malloc(JOURNAL_BUF);
    if (!data || !recs) {
        err = ferry_fail(d, FERRY_E_NOMEM, "cache: out of memory");
        goto out;
    }
    for (off_t off = 0;; off += JOURNAL_BUF) {
        ssize_t got = pread_full(p->c, p->jfd, recs, JOURNAL_BUF, off);
        if (got < 0) {
            err = ferry_fail(d, FERRY_E_IO, "cache: reading the journal of %s: %s", p->hex,
                             strerror(errno));
            goto out;
        }
        size_t whole = (size_t)got / GW_CACHE_JOURNAL_RECORD;
        for (size_t i = 0; i < whole; i++)
            if (!scan_record(p, s, recs + i * GW_CACHE_JOURNAL_RECORD, data))
                goto out;
        if ((size_t)got < JOURNAL_BUF)
            goto out; /* end of the journal, maybe with a torn record */
    }
out:
    free(data);
    free(recs);
    return err;
}

/* Rebuilds the resume point and running hash, and cuts off everything past
 * it, so later appends never sit behind untrusted bytes. */
static enum ferry_err recover(struct gw_cache_part *p, struct ferry_diag *d)
{
    struct scan s = {0};
    ferry_sha256_init(&s.h);
    ferry_sha256_init(&s.kept_h);
    enum ferry_err err = scan_journal(p, &s, d);
    mbedtls_sha256_free(&s.h.ctx);
    if (err != FERRY_OK) {
        mbedtls_sha256_free(&s.kept_h.ctx);
        return err;
    }
    p->h = s.kept_h;
    p->hash_live = true;
    p->nrec = s.kept_nrec;
    p->end = s.kept_end;
    struct stat pst, jst;
    if (fstat(p->fd, &pst) != 0 || fstat(p->jfd, &jst) != 0)
        return ferry_fail(d, FERRY_E_IO, "cache: stat of partial %s: %s", p->hex, strerror(errno));
    uint64_t jlen = p->nrec * GW_CACHE_JOURNAL_RECORD;
    if ((uint64_t)pst.st_size == p->end && (uint64_t)jst.st_size == jlen)
        return FERRY_OK;
    ferry_log_info(
        "cache: partial %s resumes at %llu bytes (%llu in the file, %llu journal records)", p->hex,
        (unsigned long long)p->end, (unsigned long long)pst.st_size,
        (unsigned long long)(jst.st_size / GW_CACHE_JOURNAL_RECORD));
    if (ferry_io_ftruncate(p->c->io, p->jfd, (off_t)jlen) != 0 ||
        ferry_io_ftruncate(p->c->io, p->fd, (off_t)p->end) != 0)
        return ferry_fail(d, FERRY_E_IO, "cache: truncating partial %s: %s", p->hex,
                          strerror(errno));
    return part_sync(p, d);
}

static void part_release(struct gw_cache_part *p)
{
    if (p->hash_live)
        mbedtls_sha256_free(&p->h.ctx);
    if (p->fd >= 0)
        ferry_io_close(p->c->io, p->fd);
    if (p->jfd >= 0)
        ferry_io_close(p->c->io, p->jfd);
    free(p);
}

static enum ferry_err check_part_args(const struct gw_cache *c,
                                      const uint8_t sha256[FERRY_SHA256_LEN], uint64_t size,
                                      uint32_t chunk, struct ferry_diag *d)
{
    char hex[HEX_LEN + 1];
    hex_of(sha256, hex);
    if (size < 1 || size > FERRY_ARTIFACT_MAX_SIZE)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "cache: artifact %s: size %llu out of range", hex,
                          (unsigned long long)size);
    if (chunk < FERRY_STREAM_MIN_CHUNK || chunk > FERRY_STREAM_MAX_CHUNK)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "cache: chunk %u out of range %d..%d", chunk,
                          FERRY_STREAM_MIN_CHUNK, FERRY_STREAM_MAX_CHUNK);
    if (find(c, sha256, ENTRY_COMPLETE))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "cache: artifact %s is already complete", hex);
    const struct entry *e = find(c, sha256, ENTRY_PARTIAL);
    if (e && e->open)
        return ferry_fail(d, FERRY_E_BUSY, "cache: artifact %s is already being written", hex);
    return FERRY_OK;
}

enum ferry_err gw_cache_part_open(struct gw_cache *c, const uint8_t sha256[FERRY_SHA256_LEN],
                                  uint64_t size, uint32_t chunk, const struct gw_cache_refs *refs,
                                  struct gw_cache_part **out, struct ferry_diag *d)
{
    char path[PATH_MAX];
    enum ferry_err err = check_part_args(c, sha256, size, chunk, d);
    if (err == FERRY_OK)
        err = make_room(c, sha256, size, refs, d);
    if (err != FERRY_OK)
        return err;
    struct gw_cache_part *p = calloc(1, sizeof(*p));
    if (!p)
        return ferry_fail(d, FERRY_E_NOMEM, "cache: out of memory");
    p->c = c;
    memcpy(p->sha256, sha256, FERRY_SHA256_LEN);
    hex_of(sha256, p->hex);
    p->size = size;
    p->chunk = chunk;
    partial_path(c, p->hex, "part", path);
    bool created = access(path, F_OK) != 0;
    p->fd = ferry_io_open(c->io, path, O_RDWR | O_CREAT, 0644);
    partial_path(c, p->hex, "crc", path);
    created |= access(path, F_OK) != 0;
    p->jfd = p->fd < 0 ? -1 : ferry_io_open(c->io, path, O_RDWR | O_CREAT, 0644);
    if (p->fd < 0 || p->jfd < 0) {
        err = ferry_fail(d, errno_err(errno), "cache: opening partial %s: %s", p->hex,
                         strerror(errno));
        part_release(p);
        return err;
    }
    /* New names must reach the disk too, or a power cut takes the whole
     * partial with it, synced bytes and all. */
    if (created && ferry_fsync_dir_io(c->io, c->pdir) != FERRY_OK) {
        err = ferry_fail(d, FERRY_E_IO, "cache: fsync of %s failed after creating partial %s",
                         c->pdir, p->hex);
        part_release(p);
        return err;
    }
    err = recover(p, d);
    struct entry *e = find(c, sha256, ENTRY_PARTIAL);
    if (err == FERRY_OK && !e && !(e = add_entry(c, sha256, ENTRY_PARTIAL, 0, 0)))
        err = ferry_fail(d, FERRY_E_NOMEM, "cache: out of memory");
    if (err != FERRY_OK) {
        part_release(p);
        return err;
    }
    e->open = true;
    e->size = size;
    partial_path(c, p->hex, "part", path);
    touch(c, e, path);
    *out = p;
    return FERRY_OK;
}

uint64_t gw_cache_part_end(const struct gw_cache_part *p)
{
    return p->end;
}

/* Undoes a failed chunk write: whatever reached the files past the last
 * good chunk goes. If even that fails, the next open's scan still rejects
 * the bytes, since no intact record vouches for them. */
static void roll_back(struct gw_cache_part *p)
{
    if (ferry_io_ftruncate(p->c->io, p->jfd, (off_t)(p->nrec * GW_CACHE_JOURNAL_RECORD)) != 0 ||
        ferry_io_ftruncate(p->c->io, p->fd, (off_t)p->end) != 0)
        ferry_log_warn("cache: cannot truncate partial %s back to %llu bytes: %s", p->hex,
                       (unsigned long long)p->end, strerror(errno));
}

enum ferry_err gw_cache_part_write(struct gw_cache_part *p, uint64_t offset, const uint8_t *data,
                                   size_t len, bool *written, struct ferry_diag *d)
{
    if (p->broken)
        return ferry_fail(d, FERRY_E_IO, "cache: partial %s had a failed fsync; reopen it", p->hex);
    if (offset != p->end) {
        *written = false;
        return FERRY_OK;
    }
    uint64_t want = p->size - p->end < p->chunk ? p->size - p->end : p->chunk;
    if (len != want)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "cache: partial %s: chunk at %llu is %zu bytes, expected %llu", p->hex,
                          (unsigned long long)offset, len, (unsigned long long)want);
    struct journal_rec r = {
        .offset = offset, .len = (uint32_t)len, .crc = ferry_crc32(0, data, len)};
    uint8_t raw[GW_CACHE_JOURNAL_RECORD];
    rec_encode(&r, raw);
    int e = 0;
    enum ferry_err err = pwrite_all(p->c, p->fd, data, len, (off_t)offset, &e);
    if (err == FERRY_OK)
        err = pwrite_all(p->c, p->jfd, raw, sizeof(raw), (off_t)(p->nrec * GW_CACHE_JOURNAL_RECORD),
                         &e);
    if (err != FERRY_OK) {
        roll_back(p);
        return ferry_fail(d, err, "cache: writing partial %s at %llu: %s", p->hex,
                          (unsigned long long)offset, strerror(e));
    }
    ferry_sha256_update(&p->h, data, len);
    p->nrec++;
    p->end += len;
    p->unsynced += len;
    if (p->unsynced >= p->c->sync_every) {
        err = part_sync(p, d);
        if (err != FERRY_OK)
            return err;
    }
    *written = true;
    return FERRY_OK;
}

void gw_cache_part_close(struct gw_cache_part *p)
{
    if (!p)
        return;
    if (!p->broken && p->unsynced > 0 && part_sync(p, NULL) != FERRY_OK)
        ferry_log_warn("cache: fsync of partial %s failed on close", p->hex);
    struct entry *e = find(p->c, p->sha256, ENTRY_PARTIAL);
    if (e) {
        e->open = false;
        e->size = p->end;
    }
    part_release(p);
}

/* Hashes the .part as it is on the disk: the running hash has seen the bytes
 * received, this sees the bytes stored. Dropping the clean pages first makes
 * the read come from the device rather than the page cache. */
/* Reads the partial back from the disk (the page cache dropped first) and
 * checks every chunk against the CRC its journal recorded when it arrived.
 * The SHA-256 of the bytes received has already matched; this pass proves
 * the disk holds those bytes, at CRC speed rather than a second SHA-256
 * over the whole file. Returns the bytes covered in *len. */
static enum ferry_err check_stored(struct gw_cache_part *p, uint64_t *len, struct ferry_diag *d)
{
    uint8_t *buf = malloc(FERRY_STREAM_MAX_CHUNK);
    if (!buf)
        return ferry_fail(d, FERRY_E_NOMEM, "cache: out of memory");
    (void)posix_fadvise(p->fd, 0, 0, POSIX_FADV_DONTNEED);
    enum ferry_err err = FERRY_OK;
    uint64_t covered = 0;
    for (uint64_t i = 0; i < p->nrec; i++) {
        uint8_t raw[GW_CACHE_JOURNAL_RECORD];
        struct journal_rec r;
        off_t at = (off_t)(i * GW_CACHE_JOURNAL_RECORD);
        if (pread_full(p->c, p->jfd, raw, sizeof(raw), at) != (ssize_t)sizeof(raw) ||
            !rec_decode(raw, &r) || r.offset != covered || r.len > FERRY_STREAM_MAX_CHUNK) {
            err = ferry_fail(d, FERRY_E_CORRUPT, "cache: journal of %s is damaged at record %llu",
                             p->hex, (unsigned long long)i);
            break;
        }
        ssize_t got = pread_full(p->c, p->fd, buf, r.len, (off_t)r.offset);
        if (got < 0) {
            err = ferry_fail(d, FERRY_E_IO, "cache: re-reading partial %s: %s", p->hex,
                             strerror(errno));
            break;
        }
        if ((uint32_t)got != r.len || ferry_crc32(0, buf, r.len) != r.crc) {
            err = ferry_fail(d, FERRY_E_CORRUPT,
                             "cache: artifact %s was received intact but its bytes at %llu "
                             "read back differently from the disk",
                             p->hex, (unsigned long long)r.offset);
            break;
        }
        covered += r.len;
    }
    free(buf);
    if (err == FERRY_OK)
        *len = covered;
    return err;
}

/* Deletes a partial whose bytes are wrong, so the next attempt starts over. */
static void discard(struct gw_cache_part *p)
{
    struct entry *e = find(p->c, p->sha256, ENTRY_PARTIAL);
    if (e && remove_entry(p->c, e, NULL) != FERRY_OK)
        ferry_log_warn("cache: cannot delete the bad partial %s", p->hex);
    part_release(p);
}

/* The checks before the rename; on failure p is freed (or closed). */
static enum ferry_err finish_checks(struct gw_cache_part *p, struct ferry_diag *d)
{
    uint8_t got[FERRY_SHA256_LEN];
    char got_hex[HEX_LEN + 1];
    uint64_t len = 0;
    ferry_sha256_final(&p->h, got);
    p->hash_live = false;
    if (memcmp(got, p->sha256, FERRY_SHA256_LEN) != 0) {
        hex_of(got, got_hex);
        enum ferry_err err =
            ferry_fail(d, FERRY_E_HASH_MISMATCH,
                       "cache: artifact %s: the bytes received hash to %s", p->hex, got_hex);
        discard(p);
        return err;
    }
    enum ferry_err err = part_sync(p, d);
    if (err != FERRY_OK) {
        gw_cache_part_close(p);
        return err;
    }
    err = check_stored(p, &len, d);
    if (err == FERRY_OK && len != p->size)
        err = ferry_fail(d, FERRY_E_CORRUPT,
                         "cache: artifact %s: the journal covers %llu of its %llu bytes", p->hex,
                         (unsigned long long)len, (unsigned long long)p->size);
    if (err == FERRY_E_IO) {
        gw_cache_part_close(p);
        return err;
    }
    if (err != FERRY_OK) {
        discard(p);
        return err;
    }
    return FERRY_OK;
}

enum ferry_err gw_cache_part_finish(struct gw_cache_part *p, struct ferry_diag *d)
{
    struct gw_cache *c = p->c;
    char from[PATH_MAX], to[PATH_MAX];
    if (p->end != p->size) {
        enum ferry_err err =
            ferry_fail(d, FERRY_E_INVALID_ARG, "cache: partial %s holds %llu of %llu bytes", p->hex,
                       (unsigned long long)p->end, (unsigned long long)p->size);
        gw_cache_part_close(p);
        return err;
    }
    enum ferry_err err = finish_checks(p, d);
    if (err != FERRY_OK)
        return err;
    partial_path(c, p->hex, "part", from);
    complete_path(c, p->hex, to);
    if (ferry_io_rename(c->io, from, to) != 0) {
        err = ferry_fail(d, errno_err(errno), "cache: renaming %s to %s: %s", from, to,
                         strerror(errno));
        gw_cache_part_close(p);
        return err;
    }
    if (ferry_fsync_dir_io(c->io, c->dir) != FERRY_OK)
        err = ferry_fail(d, FERRY_E_IO,
                         "cache: artifact %s is in place but the fsync of %s "
                         "failed, so it may vanish after a power cut",
                         p->hex, c->dir);
    partial_path(c, p->hex, "crc", from);
    if (ferry_io_unlink(c->io, from) != 0)
        ferry_log_warn("cache: cannot delete the journal %s: %s", from, strerror(errno));
    struct entry *e = find(c, p->sha256, ENTRY_PARTIAL);
    if (e) {
        e->kind = ENTRY_COMPLETE;
        e->open = false;
        e->size = p->size;
        touch(c, e, to);
    }
    part_release(p);
    return err;
}

/* ---- serving ---- */

enum ferry_err gw_cache_map(struct gw_cache *c, const uint8_t sha256[FERRY_SHA256_LEN],
                            struct gw_cache_map **out, struct ferry_diag *d)
{
    char hex[HEX_LEN + 1];
    char path[PATH_MAX];
    hex_of(sha256, hex);
    struct entry *e = find(c, sha256, ENTRY_COMPLETE);
    if (!e)
        return ferry_fail(d, FERRY_E_NOT_FOUND, "cache: no complete artifact %s", hex);
    if (e->map) {
        e->map->refs++;
        *out = e->map;
        return FERRY_OK;
    }
    if (e->size > SIZE_MAX)
        return ferry_fail(d, FERRY_E_TOO_LARGE, "cache: artifact %s too large to map", hex);
    complete_path(c, hex, path);
    int fd = ferry_io_open(c->io, path, O_RDONLY, 0);
    if (fd < 0)
        return ferry_fail(d, FERRY_E_IO, "cache: %s: %s", path, strerror(errno));
    struct stat st;
    enum ferry_err err = FERRY_OK;
    void *data = MAP_FAILED;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != e->size)
        err = ferry_fail(d, FERRY_E_CORRUPT, "cache: %s changed size under the cache", path);
    if (err == FERRY_OK &&
        (data = mmap(NULL, (size_t)e->size, PROT_READ, MAP_SHARED, fd, 0)) == MAP_FAILED)
        err = ferry_fail(d, FERRY_E_IO, "cache: mapping %s: %s", path, strerror(errno));
    ferry_io_close(c->io, fd);
    struct gw_cache_map *m = err == FERRY_OK ? calloc(1, sizeof(*m)) : NULL;
    if (err == FERRY_OK && !m) {
        munmap(data, (size_t)e->size);
        err = ferry_fail(d, FERRY_E_NOMEM, "cache: out of memory");
    }
    if (err != FERRY_OK || !m)
        return err != FERRY_OK ? err : FERRY_E_NOMEM;
    m->c = c;
    memcpy(m->sha256, sha256, FERRY_SHA256_LEN);
    m->data = data;
    m->size = e->size;
    m->refs = 1;
    e->map = m;
    touch(c, e, path);
    *out = m;
    return FERRY_OK;
}

const uint8_t *gw_cache_map_data(const struct gw_cache_map *m)
{
    return m->data;
}

uint64_t gw_cache_map_size(const struct gw_cache_map *m)
{
    return m->size;
}

void gw_cache_unmap(struct gw_cache_map *m)
{
    if (!m || --m->refs > 0)
        return;
    munmap((void *)(uintptr_t)m->data, (size_t)m->size);
    if (m->c) {
        struct entry *e = find(m->c, m->sha256, ENTRY_COMPLETE);
        if (e && e->map == m)
            e->map = NULL;
    }
    free(m);
}

/* ---- start-up checks ---- */

enum ferry_err gw_cache_verify(struct gw_cache *c, const uint8_t sha256[FERRY_SHA256_LEN],
                               uint64_t size, struct ferry_diag *d)
{
    char hex[HEX_LEN + 1];
    char path[PATH_MAX];
    hex_of(sha256, hex);
    struct entry *e = find(c, sha256, ENTRY_COMPLETE);
    if (!e)
        return ferry_fail(d, FERRY_E_NOT_FOUND, "cache: no complete artifact %s", hex);
    complete_path(c, hex, path);
    uint8_t got[FERRY_SHA256_LEN];
    uint64_t len = e->size;
    enum ferry_err err = FERRY_OK;
    if (len != size) {
        err = ferry_fail(d, FERRY_E_SIZE_MISMATCH,
                         "cache: artifact %s is %llu bytes, its release says %llu: deleted", hex,
                         (unsigned long long)len, (unsigned long long)size);
    } else {
        enum ferry_err rerr = ferry_sha256_file(path, got, &len, d);
        if (rerr != FERRY_OK)
            return rerr;
        if (len != size || memcmp(got, sha256, FERRY_SHA256_LEN) != 0)
            err = ferry_fail(d, FERRY_E_HASH_MISMATCH,
                             "cache: artifact %s does not hash to its name: deleted", hex);
    }
    if (err != FERRY_OK) {
        struct ferry_diag rd = {{0}};
        if (remove_entry(c, e, &rd) != FERRY_OK || ferry_fsync_dir_io(c->io, c->dir) != FERRY_OK)
            ferry_log_warn("cache: deleting the bad artifact %s: %s", hex, rd.msg);
    }
    return err;
}
