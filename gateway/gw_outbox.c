#include "gw_outbox.h"

#include "ferry_bytes.h"
#include "ferry_crc32.h"
#include "ferry_fs.h"
#include "ferry_log.h"
#include "ferry_names.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define WHAT "outbox"

/* Each magic starts (little-endian) with byte 0x1F, a control character
 * that JSON never carries raw: a magic cannot occur inside a payload, so
 * resynchronising after a corrupt record never stops in the middle of one. */
#define FILE_MAGIC  0xB0C5E01Fu
#define REC_MAGIC   0xB0C5E11Fu
#define ACK_MAGIC   0xB0C5EA1Fu
#define FILE_FORMAT 1u
#define FILE_HDR    20u
#define REC_HDR     20u
#define ACK_LEN     20u
#define PAYLOAD_MAX FERRY_STATUS_MAX_BYTES
#define REC_MAX     (REC_HDR + PAYLOAD_MAX)
_Static_assert(REC_MAX == GW_OUTBOX_RECORD_MAX, "gw_outbox.h states the largest record");
/* Files are mapped at open, not copied: this cap only refuses absurd ones. */
#define OPEN_FILE_MAX (UINT64_C(1) << 30)
#define COPY_CHUNK    (64u * 1024u)

enum entry_state { ENTRY_PENDING, ENTRY_ACKED, ENTRY_DEAD };

struct entry {
    uint64_t id;
    uint64_t seq;
    uint64_t off; /* of the record's header in the journal */
    uint32_t len; /* payload bytes */
    uint32_t crc;
    uint8_t state;
    bool marked; /* scratch for gw_outbox_ack() */
    char node[FERRY_ID_MAX + 1];
};

/* (node, seq) -> index of its pending entry: open addressing with linear
 * probing; a slot holds index + 1 (0 = empty). The capacity is a power of
 * two, at least twice the number of pending entries. */
struct index {
    uint32_t *slots;
    size_t cap;
};

struct ack {
    uint64_t id;
    uint32_t crc;
};

/* What one node has pending. Kept in an open-addressing table keyed by the
 * node id; a tally whose count drops to zero stays until the table is next
 * rebuilt, which keeps only live ones (so the table is at most four times
 * the nodes with pending records, plus what arrived since). */
struct tally {
    char node[FERRY_ID_MAX + 1]; /* "" for a free slot */
    size_t records;
    uint64_t bytes;
};

struct tallies {
    struct tally *slots;
    size_t cap;  /* a power of two, or 0 */
    size_t used; /* slots taken, live or not */
};

struct gw_outbox {
    const struct ferry_io *io; /* NULL: the system's */
    char gateway[FERRY_ID_MAX + 1];
    size_t max_records;
    uint64_t max_bytes;
    size_t max_node_records; /* 0: no share per node */
    uint64_t max_node_bytes;
    char dir[PATH_MAX], journal[PATH_MAX], acks[PATH_MAX], tmp[PATH_MAX], lock[PATH_MAX];
    int lock_fd, jfd, afd;
    struct entry *e; /* journal order; acked ones stay until compaction */
    size_t n, cap_e;
    size_t head; /* no pending entry before this one */
    struct index ix;
    struct tallies tallies;
    size_t count;   /* pending entries */
    uint64_t bytes; /* their journal bytes */
    uint64_t dead;  /* journal bytes of acked, duplicate or corrupt records */
    uint64_t jsize; /* journal length */
    uint64_t asize; /* ack journal length */
    uint64_t next_id;
};

/* ---- encoding ------------------------------------------------------------ */

/* Covers magic, length, id and payload: everything but the CRC itself. */
static uint32_t rec_crc(const uint8_t *hdr, const uint8_t *payload, size_t len)
{
    uint32_t crc = ferry_crc32(0, hdr, 8);
    crc = ferry_crc32(crc, hdr + 12, 8);
    return ferry_crc32(crc, payload, len);
}

static void encode_rec(uint8_t *out, uint64_t id, const void *payload, uint32_t len)
{
    ferry_put_le32(out, REC_MAGIC);
    ferry_put_le32(out + 4, len);
    ferry_put_le64(out + 12, id);
    memcpy(out + REC_HDR, payload, len);
    ferry_put_le32(out + 8, rec_crc(out, out + REC_HDR, len));
}

struct rec {
    uint64_t id;
    uint32_t len, crc;
    const uint8_t *payload;
};

/* A whole, intact record at off? */
static bool rec_at(const uint8_t *p, size_t size, size_t off, struct rec *r)
{
    if (size - off < REC_HDR || ferry_get_le32(p + off) != REC_MAGIC)
        return false;
    uint32_t len = ferry_get_le32(p + off + 4);
    if (len > PAYLOAD_MAX || size - off - REC_HDR < len)
        return false;
    uint32_t crc = ferry_get_le32(p + off + 8);
    if (rec_crc(p + off, p + off + REC_HDR, len) != crc)
        return false;
    r->id = ferry_get_le64(p + off + 12);
    r->len = len;
    r->crc = crc;
    r->payload = p + off + REC_HDR;
    return true;
}

static void encode_header(uint8_t *out, uint64_t base_id)
{
    ferry_put_le32(out, FILE_MAGIC);
    ferry_put_le32(out + 4, FILE_FORMAT);
    ferry_put_le64(out + 8, base_id);
    ferry_put_le32(out + 16, ferry_crc32(0, out, 16));
}

static void encode_ack(uint8_t *out, const struct entry *e)
{
    ferry_put_le32(out, ACK_MAGIC);
    ferry_put_le32(out + 4, e->crc);
    ferry_put_le64(out + 8, e->id);
    ferry_put_le32(out + 16, ferry_crc32(0, out, 16));
}

static bool ack_at(const uint8_t *p, struct ack *a)
{
    if (ferry_get_le32(p) != ACK_MAGIC || ferry_get_le32(p + 16) != ferry_crc32(0, p, 16))
        return false;
    a->crc = ferry_get_le32(p + 4);
    a->id = ferry_get_le64(p + 8);
    return true;
}

/* ---- file operations ------------------------------------------------------ */

static enum ferry_err os_fail(struct ferry_diag *d, int e, const char *path, const char *what)
{
    enum ferry_err err = (e == ENOSPC || e == EDQUOT) ? FERRY_E_NOSPACE : FERRY_E_IO;
    return ferry_fail(d, err, WHAT ": %s: %s failed: %s", path, what, strerror(e));
}

/* 0 or an errno value. */
static int write_at(struct gw_outbox *ob, int fd, const void *buf, size_t len, uint64_t off)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t w = ferry_io_pwrite(ob->io, fd, p, len, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno;
        if (w == 0)
            return EIO;
        p += w;
        len -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static int fsync_dir(struct gw_outbox *ob, const char *dir)
{
    int fd = ferry_io_open(ob->io, dir, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0)
        return errno;
    int e = ferry_io_fsync(ob->io, fd) == 0 ? 0 : errno;
    ferry_io_close(ob->io, fd);
    return e;
}

/* Writes buf at `at` (the end of the valid data) and fsyncs. On failure it
 * truncates back to `at`; should that fail too, the next append overwrites
 * the same bytes and recovery drops whatever is left as a torn tail. */
static enum ferry_err append_durably(struct gw_outbox *ob, int fd, const char *path, uint64_t at,
                                     const void *buf, size_t len, struct ferry_diag *d)
{
    const char *what = "write";
    int e = write_at(ob, fd, buf, len, at);
    if (e == 0 && ferry_io_fsync(ob->io, fd) != 0) {
        e = errno;
        what = "fsync";
    }
    if (e == 0)
        return FERRY_OK;
    if (ferry_io_ftruncate(ob->io, fd, (off_t)at) != 0)
        ferry_log_warn(WHAT ": %s: truncating back to %" PRIu64 " failed: %s", path, at,
                       strerror(errno));
    return os_fail(d, e, path, what);
}

static enum ferry_err drop_tail(struct gw_outbox *ob, int fd, const char *path, uint64_t keep,
                                uint64_t size, struct ferry_diag *d)
{
    ferry_log_warn(WHAT ": %s: dropping a torn tail of %" PRIu64 " bytes at offset %" PRIu64, path,
                   size - keep, keep);
    if (ferry_io_ftruncate(ob->io, fd, (off_t)keep) != 0)
        return os_fail(d, errno, path, "ftruncate");
    if (ferry_io_fsync(ob->io, fd) != 0)
        return os_fail(d, errno, path, "fsync");
    return FERRY_OK;
}

struct mapping {
    void *base;
    const uint8_t *p;
    size_t len;
};

static enum ferry_err map_file(int fd, const char *path, struct mapping *m, struct ferry_diag *d)
{
    struct stat st;
    m->base = NULL;
    m->p = NULL;
    m->len = 0;
    if (fstat(fd, &st) != 0)
        return os_fail(d, errno, path, "fstat");
    if ((uint64_t)st.st_size > OPEN_FILE_MAX)
        return ferry_fail(d, FERRY_E_TOO_LARGE,
                          WHAT ": %s: %lld bytes, more than an outbox can hold; move it aside",
                          path, (long long)st.st_size);
    if (st.st_size == 0)
        return FERRY_OK;
    void *base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (base == MAP_FAILED)
        return os_fail(d, errno, path, "mmap");
    m->base = base;
    m->p = base;
    m->len = (size_t)st.st_size;
    return FERRY_OK;
}

static void unmap_file(struct mapping *m)
{
    if (m->base)
        munmap(m->base, m->len);
    m->base = NULL;
}

/* ---- index ---------------------------------------------------------------- */

static uint64_t key_hash(const char *node, uint64_t seq)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (const unsigned char *p = (const unsigned char *)node; *p; p++)
        h = (h ^ *p) * UINT64_C(1099511628211);
    for (int i = 0; i < 8; i++)
        h = (h ^ ((seq >> (8 * i)) & 0xFFu)) * UINT64_C(1099511628211);
    return h;
}

static size_t ix_find(const struct index *ix, const struct entry *arr, const char *node,
                      uint64_t seq)
{
    if (ix->cap == 0)
        return SIZE_MAX;
    size_t mask = ix->cap - 1;
    for (size_t s = key_hash(node, seq) & mask; ix->slots[s]; s = (s + 1) & mask) {
        const struct entry *e = &arr[ix->slots[s] - 1];
        if (e->seq == seq && strcmp(e->node, node) == 0)
            return ix->slots[s] - 1;
    }
    return SIZE_MAX;
}

static void ix_put(struct index *ix, const struct entry *arr, size_t i)
{
    size_t mask = ix->cap - 1;
    size_t s = key_hash(arr[i].node, arr[i].seq) & mask;
    while (ix->slots[s])
        s = (s + 1) & mask;
    ix->slots[s] = (uint32_t)(i + 1);
}

/* Backward-shift deletion: no tombstones, so lookups stay short. */
static void ix_del(struct index *ix, const struct entry *arr, size_t i)
{
    size_t mask = ix->cap - 1;
    size_t hole = key_hash(arr[i].node, arr[i].seq) & mask;
    while (ix->slots[hole] != i + 1)
        hole = (hole + 1) & mask;
    for (size_t j = (hole + 1) & mask; ix->slots[j]; j = (j + 1) & mask) {
        const struct entry *e = &arr[ix->slots[j] - 1];
        size_t home = key_hash(e->node, e->seq) & mask;
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            ix->slots[hole] = ix->slots[j];
            hole = j;
        }
    }
    ix->slots[hole] = 0;
}

/* Makes room for `pending` entries, rebuilding from the pending ones of arr. */
static enum ferry_err ix_reserve(struct index *ix, const struct entry *arr, size_t n,
                                 size_t pending, struct ferry_diag *d)
{
    if (ix->cap >= 2 * pending && ix->cap > 0)
        return FERRY_OK;
    size_t cap = 16;
    while (cap < 4 * pending)
        cap *= 2;
    uint32_t *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return ferry_fail(d, FERRY_E_NOMEM, WHAT ": out of memory for the index");
    free(ix->slots);
    ix->slots = slots;
    ix->cap = cap;
    for (size_t i = 0; i < n; i++) {
        if (arr[i].state == ENTRY_PENDING)
            ix_put(ix, arr, i);
    }
    return FERRY_OK;
}

/* ---- per-node tallies ------------------------------------------------------ */

static struct tally *tally_find(const struct tallies *t, const char *node)
{
    if (t->cap == 0)
        return NULL;
    size_t mask = t->cap - 1;
    for (size_t s = key_hash(node, 0) & mask; t->slots[s].node[0]; s = (s + 1) & mask) {
        if (strcmp(t->slots[s].node, node) == 0)
            return &t->slots[s];
    }
    return NULL;
}

/* Takes a free slot for node; the table must have room (tally_reserve). */
static struct tally *tally_add(struct tallies *t, const char *node)
{
    size_t mask = t->cap - 1;
    size_t s = key_hash(node, 0) & mask;
    while (t->slots[s].node[0])
        s = (s + 1) & mask;
    snprintf(t->slots[s].node, sizeof(t->slots[s].node), "%s", node);
    t->slots[s].records = 0;
    t->slots[s].bytes = 0;
    t->used++;
    return &t->slots[s];
}

/* Room for one more tally, rebuilding with only the live ones when full. */
static enum ferry_err tally_reserve(struct tallies *t, struct ferry_diag *d)
{
    if (t->cap > 0 && 2 * (t->used + 1) <= t->cap)
        return FERRY_OK;
    size_t live = 0;
    for (size_t i = 0; i < t->cap; i++)
        live += t->slots[i].node[0] && t->slots[i].records > 0;
    size_t cap = 16;
    while (cap < 4 * (live + 1))
        cap *= 2;
    struct tallies nt = {calloc(cap, sizeof(struct tally)), cap, 0};
    if (!nt.slots)
        return ferry_fail(d, FERRY_E_NOMEM, WHAT ": out of memory for %zu node tallies", cap);
    for (size_t i = 0; i < t->cap; i++) {
        const struct tally *o = &t->slots[i];
        if (o->node[0] && o->records > 0)
            *tally_add(&nt, o->node) = *o;
    }
    free(t->slots);
    *t = nt;
    return FERRY_OK;
}

/* ---- in-memory state ------------------------------------------------------- */

static uint64_t entry_size(const struct entry *e)
{
    return REC_HDR + (uint64_t)e->len;
}

/* Room for one more pending entry, so that nothing can fail once the record
 * is on disk. */
static enum ferry_err reserve_one(struct gw_outbox *ob, struct ferry_diag *d)
{
    if (ob->n == ob->cap_e) {
        size_t cap = ob->cap_e ? 2 * ob->cap_e : 64;
        struct entry *e = realloc(ob->e, cap * sizeof(*e));
        if (!e)
            return ferry_fail(d, FERRY_E_NOMEM, WHAT ": out of memory for %zu records", cap);
        ob->e = e;
        ob->cap_e = cap;
    }
    enum ferry_err err = tally_reserve(&ob->tallies, d);
    if (err != FERRY_OK)
        return err;
    return ix_reserve(&ob->ix, ob->e, ob->n, ob->count + 1, d);
}

static void add_pending(struct gw_outbox *ob, const struct entry *e)
{
    struct tally *t = tally_find(&ob->tallies, e->node);
    if (!t)
        t = tally_add(&ob->tallies, e->node); /* reserve_one made room */
    t->records++;
    t->bytes += entry_size(e);
    ob->e[ob->n] = *e;
    ix_put(&ob->ix, ob->e, ob->n);
    ob->n++;
    ob->count++;
    ob->bytes += entry_size(e);
}

static void retire(struct gw_outbox *ob, size_t i, enum entry_state state)
{
    struct entry *e = &ob->e[i];
    struct tally *t = tally_find(&ob->tallies, e->node);
    if (t) { /* always: a pending entry was tallied */
        t->records--;
        t->bytes -= entry_size(e);
    }
    ix_del(&ob->ix, ob->e, i);
    e->state = (uint8_t)state;
    ob->count--;
    ob->bytes -= entry_size(e);
    ob->dead += entry_size(e);
}

static void advance_head(struct gw_outbox *ob)
{
    while (ob->head < ob->n && ob->e[ob->head].state != ENTRY_PENDING)
        ob->head++;
}

/* Reads entry e's record into buf (REC_MAX bytes) and checks it still is
 * what was scanned or written. FERRY_E_CORRUPT if not. */
static enum ferry_err read_record(const struct gw_outbox *ob, const struct entry *e, uint8_t *buf,
                                  struct ferry_diag *d)
{
    size_t want = REC_HDR + e->len;
    size_t got = 0;
    while (got < want) {
        ssize_t r = ferry_io_pread(ob->io, ob->jfd, buf + got, want - got, (off_t)(e->off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return os_fail(d, errno, ob->journal, "read");
        if (r == 0)
            break;
        got += (size_t)r;
    }
    struct rec r;
    if (got < want || !rec_at(buf, want, 0, &r) || r.id != e->id || r.crc != e->crc) {
        ferry_log_err(WHAT ": %s: record %" PRIu64 " (%s seq %" PRIu64 ") at offset %" PRIu64
                           " changed on disk since it was written; dropping it",
                      ob->journal, e->id, e->node, e->seq, e->off);
        return ferry_fail(d, FERRY_E_CORRUPT, WHAT ": %s: record %" PRIu64 " is corrupt",
                          ob->journal, e->id);
    }
    return FERRY_OK;
}

/* ---- compaction ------------------------------------------------------------ */

struct copy {
    int fd;
    uint8_t *buf;
    size_t used;
    uint64_t off; /* file offset of buf[0] */
};

/* Copies the pending records into c (journal.tmp), recording their new
 * places in ne (room for ob->count entries); corrupt ones are dropped. */
static enum ferry_err copy_pending(struct gw_outbox *ob, struct copy *c, struct entry *ne,
                                   size_t *nn, struct ferry_diag *d)
{
    size_t k = 0;
    for (size_t i = ob->head; i < ob->n; i++) {
        if (ob->e[i].state != ENTRY_PENDING)
            continue;
        if (c->used + REC_MAX > COPY_CHUNK) {
            int e = write_at(ob, c->fd, c->buf, c->used, c->off);
            if (e != 0)
                return os_fail(d, e, ob->tmp, "write");
            c->off += c->used;
            c->used = 0;
        }
        enum ferry_err err = read_record(ob, &ob->e[i], c->buf + c->used, d);
        if (err == FERRY_E_CORRUPT) {
            retire(ob, i, ENTRY_DEAD);
            continue;
        }
        if (err != FERRY_OK)
            return err;
        ne[k] = ob->e[i];
        ne[k].off = c->off + c->used;
        c->used += (size_t)entry_size(&ne[k]);
        k++;
    }
    *nn = k;
    return FERRY_OK;
}

/* Writes journal.tmp (header, then the pending records) and fsyncs it. On
 * success *fd is the open file and *size its length. */
static enum ferry_err write_tmp(struct gw_outbox *ob, struct entry *ne, size_t *nn, int *fd,
                                uint64_t *size, struct ferry_diag *d)
{
    struct copy c = {.fd = -1, .buf = malloc(COPY_CHUNK)};
    enum ferry_err err = FERRY_OK;
    if (!c.buf)
        return ferry_fail(d, FERRY_E_NOMEM, WHAT ": out of memory for compaction");
    c.fd = ferry_io_open(ob->io, ob->tmp, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (c.fd < 0) {
        err = os_fail(d, errno, ob->tmp, "create");
        goto out;
    }
    encode_header(c.buf, ob->next_id);
    c.used = FILE_HDR;
    err = copy_pending(ob, &c, ne, nn, d);
    int e = err == FERRY_OK ? write_at(ob, c.fd, c.buf, c.used, c.off) : 0;
    if (e != 0)
        err = os_fail(d, e, ob->tmp, "write");
    if (err == FERRY_OK && ferry_io_fsync(ob->io, c.fd) != 0)
        err = os_fail(d, errno, ob->tmp, "fsync");
    if (err == FERRY_OK) {
        *fd = c.fd;
        *size = c.off + c.used;
        c.fd = -1;
    }
out:
    if (c.fd >= 0) {
        ferry_io_close(ob->io, c.fd);
        if (ferry_io_unlink(ob->io, ob->tmp) != 0)
            ferry_log_warn(WHAT ": %s: unlink failed: %s", ob->tmp, strerror(errno));
    }
    free(c.buf);
    return err;
}

/* Replaces the journal with one holding only the pending records (creates
 * it when ob->jfd is -1). Once the rename is done the new journal is
 * adopted, even if the folder's fsync then fails. */
static enum ferry_err rewrite_journal(struct gw_outbox *ob, struct ferry_diag *d)
{
    size_t cap = ob->count ? ob->count : 1;
    struct entry *ne = malloc(cap * sizeof(*ne));
    struct index nix = {NULL, 0};
    size_t nn = 0;
    uint64_t size = 0;
    int fd = -1;
    enum ferry_err err = FERRY_OK;
    if (!ne) {
        err = ferry_fail(d, FERRY_E_NOMEM, WHAT ": out of memory for compaction");
        goto out;
    }
    err = write_tmp(ob, ne, &nn, &fd, &size, d);
    if (err == FERRY_OK)
        err = ix_reserve(&nix, ne, nn, nn, d);
    if (err != FERRY_OK)
        goto out;
    if (ferry_io_rename(ob->io, ob->tmp, ob->journal) != 0) {
        err = os_fail(d, errno, ob->tmp, "rename");
        goto out;
    }
    if (ob->jfd >= 0)
        ferry_io_close(ob->io, ob->jfd);
    ob->jfd = fd;
    fd = -1;
    free(ob->e);
    free(ob->ix.slots);
    ob->e = ne;
    ob->cap_e = cap;
    ob->n = nn;
    ob->ix = nix;
    ne = NULL;
    nix.slots = NULL;
    ob->head = 0;
    ob->dead = 0;
    ob->jsize = size;
    int e = fsync_dir(ob, ob->dir);
    if (e != 0)
        err = os_fail(d, e, ob->dir, "fsync");
out:
    if (fd >= 0) {
        ferry_io_close(ob->io, fd);
        if (ferry_io_unlink(ob->io, ob->tmp) != 0)
            ferry_log_warn(WHAT ": %s: unlink failed: %s", ob->tmp, strerror(errno));
    }
    free(ne);
    free(nix.slots);
    return err;
}

enum ferry_err gw_outbox_compact(struct gw_outbox *ob, struct ferry_diag *d)
{
    enum ferry_err err = rewrite_journal(ob, d);
    if (err != FERRY_OK)
        return err;
    /* Only now: until the new journal was in place, these acks were what
     * kept the acked records in the old one from being sent again. */
    if (ferry_io_ftruncate(ob->io, ob->afd, 0) != 0)
        return os_fail(d, errno, ob->acks, "ftruncate");
    ob->asize = 0;
    if (ferry_io_fsync(ob->io, ob->afd) != 0)
        return os_fail(d, errno, ob->acks, "fsync");
    return FERRY_OK;
}

static bool should_compact(const struct gw_outbox *ob)
{
    if (ob->dead == 0)
        return false;
    return ob->count == 0 ||
           (ob->dead > GW_OUTBOX_COMPACT_MIN_BYTES && ob->dead * 2 > ob->jsize - FILE_HDR);
}

static void maybe_compact(struct gw_outbox *ob)
{
    struct ferry_diag d = {{0}};
    if (!should_compact(ob))
        return;
    enum ferry_err err = gw_outbox_compact(ob, &d);
    if (err != FERRY_OK)
        ferry_log_warn(WHAT ": compaction failed (retried on the next ack): %s",
                       ferry_diag_str(&d, err));
}

/* ---- open ------------------------------------------------------------------ */

static int ack_cmp(const void *a, const void *b)
{
    const struct ack *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->crc < y->crc ? -1 : x->crc > y->crc;
}

static bool is_acked(const struct ack *acks, size_t n, uint64_t id, uint32_t crc)
{
    struct ack key = {id, crc};
    return n > 0 && bsearch(&key, acks, n, sizeof(*acks), ack_cmp) != NULL;
}

/* Collects the valid acks; returns the length of the valid prefix. */
static size_t scan_acks(const struct gw_outbox *ob, const struct mapping *m, struct ack *acks,
                        size_t *n)
{
    size_t end = 0, k = 0, bad = 0;
    for (size_t off = 0; m->len - off >= ACK_LEN; off += ACK_LEN) {
        if (ack_at(m->p + off, &acks[k])) {
            k++;
            bad = 0;
            end = off + ACK_LEN;
        } else if (++bad == 1) {
            /* Reported only if a valid ack follows (otherwise a torn tail). */
            size_t next = off + ACK_LEN;
            struct ack a;
            while (m->len - next >= ACK_LEN && !ack_at(m->p + next, &a))
                next += ACK_LEN;
            if (m->len - next >= ACK_LEN)
                ferry_log_err(WHAT ": %s: skipped %zu corrupt acks at offset %zu (those records "
                                   "may be sent again)",
                              ob->acks, (next - off) / ACK_LEN, off);
        }
    }
    *n = k;
    return end;
}

static enum ferry_err load_acks(struct gw_outbox *ob, struct ack **out, size_t *nout,
                                struct ferry_diag *d)
{
    struct mapping m;
    struct ack *acks = NULL;
    size_t n = 0;
    ob->afd = ferry_io_open(ob->io, ob->acks, O_RDWR | O_CREAT, 0600);
    if (ob->afd < 0)
        return os_fail(d, errno, ob->acks, "open");
    enum ferry_err err = map_file(ob->afd, ob->acks, &m, d);
    if (err != FERRY_OK)
        return err;
    acks = malloc((m.len / ACK_LEN + 1) * sizeof(*acks));
    if (!acks) {
        unmap_file(&m);
        return ferry_fail(d, FERRY_E_NOMEM, WHAT ": out of memory for %zu acks", m.len / ACK_LEN);
    }
    ob->asize = scan_acks(ob, &m, acks, &n);
    size_t len = m.len;
    unmap_file(&m);
    if (len > ob->asize)
        err = drop_tail(ob, ob->afd, ob->acks, ob->asize, len, d);
    if (err != FERRY_OK) {
        free(acks);
        return err;
    }
    qsort(acks, n, sizeof(*acks), ack_cmp);
    for (size_t i = 0; i < n; i++) {
        if (acks[i].id >= ob->next_id)
            ob->next_id = acks[i].id + 1;
    }
    *out = acks;
    *nout = n;
    return FERRY_OK;
}

/* Files the intact record r found at off: pending unless acked, unreadable
 * or a second copy of a pending (node, seq). */
static enum ferry_err file_record(struct gw_outbox *ob, const struct rec *r, uint64_t off,
                                  const struct ack *acks, size_t nacks, struct ferry_diag *d)
{
    struct ferry_status st;
    struct ferry_diag pd = {{0}};
    if (r->id >= ob->next_id)
        ob->next_id = r->id + 1;
    if (is_acked(acks, nacks, r->id, r->crc))
        return FERRY_OK;
    enum ferry_err err = ferry_status_from_json(r->payload, r->len, &st, &pd);
    if (err != FERRY_OK) {
        ferry_log_err(WHAT ": %s: record %" PRIu64 " at offset %" PRIu64
                           " is unreadable, dropped: %s",
                      ob->journal, r->id, off, ferry_diag_str(&pd, err));
        return FERRY_OK;
    }
    if (ix_find(&ob->ix, ob->e, st.node, st.seq) != SIZE_MAX) {
        ferry_log_warn(WHAT ": %s: record %" PRIu64 " repeats %s seq %" PRIu64 ", dropped",
                       ob->journal, r->id, st.node, st.seq);
        return FERRY_OK;
    }
    err = reserve_one(ob, d);
    if (err != FERRY_OK)
        return err;
    struct entry e = {.id = r->id, .seq = st.seq, .off = off, .len = r->len, .crc = r->crc};
    memcpy(e.node, st.node, sizeof(e.node));
    add_pending(ob, &e);
    return FERRY_OK;
}

/* The next offset at or after off where an intact record starts, or size. */
static size_t resync(const uint8_t *p, size_t size, size_t off)
{
    struct rec r;
    while (off < size && !rec_at(p, size, off, &r))
        off++;
    return off;
}

/* Walks the records after the header; returns the end of the valid data. */
static enum ferry_err scan_records(struct gw_outbox *ob, const struct mapping *m,
                                   const struct ack *acks, size_t nacks, size_t *end,
                                   struct ferry_diag *d)
{
    size_t off = FILE_HDR;
    while (off < m->len) {
        struct rec r;
        if (rec_at(m->p, m->len, off, &r)) {
            enum ferry_err err = file_record(ob, &r, off, acks, nacks, d);
            if (err != FERRY_OK)
                return err;
            off += REC_HDR + r.len;
            continue;
        }
        size_t next = resync(m->p, m->len, off + 1);
        if (next == m->len)
            break; /* nothing intact follows: a torn tail */
        ferry_log_err(WHAT ": %s: skipped %zu corrupt bytes at offset %zu (a record is lost)",
                      ob->journal, next - off, off);
        off = next;
    }
    *end = off;
    return FERRY_OK;
}

static enum ferry_err check_header(struct gw_outbox *ob, const struct mapping *m,
                                   struct ferry_diag *d)
{
    if (ferry_get_le32(m->p) != FILE_MAGIC)
        return ferry_fail(d, FERRY_E_CORRUPT,
                          WHAT ": %s is not an outbox journal (bad magic); move it aside",
                          ob->journal);
    if (ferry_get_le32(m->p + 16) != ferry_crc32(0, m->p, 16)) {
        /* The records carry their own ids and CRCs: keep them. */
        ferry_log_err(WHAT ": %s: header fails its CRC; recovering the records anyway",
                      ob->journal);
        return FERRY_OK;
    }
    if (ferry_get_le32(m->p + 4) != FILE_FORMAT)
        return ferry_fail(d, FERRY_E_CORRUPT,
                          WHAT ": %s has format %" PRIu32 ", this gateway reads %u", ob->journal,
                          ferry_get_le32(m->p + 4), FILE_FORMAT);
    if (ferry_get_le64(m->p + 8) > ob->next_id)
        ob->next_id = ferry_get_le64(m->p + 8);
    return FERRY_OK;
}

static enum ferry_err load_journal(struct gw_outbox *ob, const struct ack *acks, size_t nacks,
                                   struct ferry_diag *d)
{
    struct mapping m;
    size_t end = 0;
    ob->jfd = ferry_io_open(ob->io, ob->journal, O_RDWR, 0);
    if (ob->jfd < 0 && errno == ENOENT)
        return rewrite_journal(ob, d);
    if (ob->jfd < 0)
        return os_fail(d, errno, ob->journal, "open");
    enum ferry_err err = map_file(ob->jfd, ob->journal, &m, d);
    if (err != FERRY_OK)
        return err;
    if (m.len < FILE_HDR) {
        /* Never written whole (journals are created by rename), so it can
         * hold no record: start afresh. */
        ferry_log_warn(WHAT ": %s: only %zu bytes, recreating it", ob->journal, m.len);
        unmap_file(&m);
        ferry_io_close(ob->io, ob->jfd);
        ob->jfd = -1;
        return rewrite_journal(ob, d);
    }
    err = check_header(ob, &m, d);
    if (err == FERRY_OK)
        err = scan_records(ob, &m, acks, nacks, &end, d);
    size_t len = m.len;
    unmap_file(&m);
    if (err != FERRY_OK)
        return err;
    ob->jsize = end;
    ob->dead = end - FILE_HDR - ob->bytes;
    if (len > end)
        err = drop_tail(ob, ob->jfd, ob->journal, end, len, d);
    return err;
}

static enum ferry_err take_lock(struct gw_outbox *ob, struct ferry_diag *d)
{
    ob->lock_fd = ferry_io_open(ob->io, ob->lock, O_RDWR | O_CREAT, 0600);
    if (ob->lock_fd < 0)
        return os_fail(d, errno, ob->lock, "open");
    if (flock(ob->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            return ferry_fail(d, FERRY_E_BUSY, WHAT ": %s is in use by another gateway process",
                              ob->dir);
        return os_fail(d, errno, ob->lock, "flock");
    }
    return FERRY_OK;
}

static enum ferry_err check_opts(const struct gw_outbox_opts *o, struct ferry_diag *d)
{
    if (!o->state_dir || !o->state_dir[0])
        return ferry_fail(d, FERRY_E_INVALID_ARG, WHAT ": no state folder given");
    if (!o->gateway_id || !ferry_id_valid(o->gateway_id))
        return ferry_fail(d, FERRY_E_INVALID_ARG, WHAT ": gateway id '%.64s' is not valid",
                          o->gateway_id ? o->gateway_id : "");
    if (o->max_records < 1 || o->max_records > GW_OUTBOX_RECORDS_LIMIT)
        return ferry_fail(d, FERRY_E_INVALID_ARG, WHAT ": max records must be 1..%d, got %zu",
                          GW_OUTBOX_RECORDS_LIMIT, o->max_records);
    if (o->max_bytes < REC_MAX || o->max_bytes > GW_OUTBOX_BYTES_LIMIT)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          WHAT ": max bytes must be %u..%" PRIu64 ", got %" PRIu64, REC_MAX,
                          GW_OUTBOX_BYTES_LIMIT, o->max_bytes);
    if (o->max_node_records > o->max_records)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          WHAT ": a node's share of %zu records exceeds the %zu of the outbox",
                          o->max_node_records, o->max_records);
    if (o->max_node_bytes && (o->max_node_bytes < REC_MAX || o->max_node_bytes > o->max_bytes))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          WHAT ": a node's share must be %u..%" PRIu64 " bytes, got %" PRIu64,
                          REC_MAX, o->max_bytes, o->max_node_bytes);
    return FERRY_OK;
}

static bool join(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
    return n > 0 && n < PATH_MAX;
}

static enum ferry_err set_paths(struct gw_outbox *ob, const char *state_dir, struct ferry_diag *d)
{
    if (!join(ob->dir, state_dir, "outbox") || !join(ob->journal, ob->dir, "journal") ||
        !join(ob->acks, ob->dir, "acks") || !join(ob->tmp, ob->dir, "journal.tmp") ||
        !join(ob->lock, ob->dir, "lock"))
        return ferry_fail(d, FERRY_E_INVALID_ARG, WHAT ": state folder path too long: %.64s...",
                          state_dir);
    return FERRY_OK;
}

/* Leftovers of a compaction cut short, then the files themselves. */
static enum ferry_err recover(struct gw_outbox *ob, const char *state_dir, struct ferry_diag *d)
{
    struct ack *acks = NULL;
    size_t nacks = 0;
    if (ferry_io_unlink(ob->io, ob->tmp) != 0 && errno != ENOENT)
        return os_fail(d, errno, ob->tmp, "unlink");
    enum ferry_err err = load_acks(ob, &acks, &nacks, d);
    if (err != FERRY_OK)
        return err;
    if (ob->next_id == 0)
        ob->next_id = 1;
    err = load_journal(ob, acks, nacks, d);
    free(acks);
    /* A new outbox folder, journal or ack journal must survive power loss. */
    int e = 0;
    if (err == FERRY_OK && (e = fsync_dir(ob, ob->dir)) != 0)
        err = os_fail(d, e, ob->dir, "fsync");
    if (err == FERRY_OK && (e = fsync_dir(ob, state_dir)) != 0)
        err = os_fail(d, e, state_dir, "fsync");
    return err;
}

enum ferry_err gw_outbox_open(const struct gw_outbox_opts *opts, struct gw_outbox **out,
                              struct ferry_diag *d)
{
    enum ferry_err err = check_opts(opts, d);
    if (err != FERRY_OK)
        return err;
    struct gw_outbox *ob = calloc(1, sizeof(*ob));
    if (!ob)
        return ferry_fail(d, FERRY_E_NOMEM, WHAT ": out of memory");
    ob->lock_fd = ob->jfd = ob->afd = -1;
    ob->io = opts->io;
    snprintf(ob->gateway, sizeof(ob->gateway), "%s", opts->gateway_id);
    ob->max_records = opts->max_records;
    ob->max_bytes = opts->max_bytes;
    ob->max_node_records = opts->max_node_records;
    ob->max_node_bytes = opts->max_node_bytes;
    err = set_paths(ob, opts->state_dir, d);
    if (err == FERRY_OK)
        err = ferry_mkdir_p_io(ob->io, ob->dir, 0700, d);
    if (err == FERRY_OK)
        err = take_lock(ob, d);
    if (err == FERRY_OK)
        err = recover(ob, opts->state_dir, d);
    if (err != FERRY_OK) {
        gw_outbox_close(ob);
        return err;
    }
    advance_head(ob);
    maybe_compact(ob);
    if (ob->count > 0)
        ferry_log_info(WHAT ": %zu records (%" PRIu64 " bytes) pending from before", ob->count,
                       ob->bytes);
    *out = ob;
    return FERRY_OK;
}

void gw_outbox_close(struct gw_outbox *ob)
{
    if (!ob)
        return;
    if (ob->jfd >= 0)
        ferry_io_close(ob->io, ob->jfd);
    if (ob->afd >= 0)
        ferry_io_close(ob->io, ob->afd);
    if (ob->lock_fd >= 0)
        ferry_io_close(ob->io, ob->lock_fd);
    free(ob->e);
    free(ob->ix.slots);
    free(ob->tallies.slots);
    free(ob);
}

/* ---- append, peek, ack ------------------------------------------------------ */

/* The journal bound: pending bytes plus at most as many acked ones (more
 * would have triggered compaction), so only a compaction that keeps failing
 * can reach it. */
static uint64_t journal_cap(const struct gw_outbox *ob)
{
    return FILE_HDR + 2 * ob->max_bytes + GW_OUTBOX_COMPACT_MIN_BYTES;
}

static enum ferry_err check_room(struct gw_outbox *ob, const char *node, uint64_t size,
                                 struct ferry_diag *d)
{
    const struct tally *t = tally_find(&ob->tallies, node);
    size_t have = t ? t->records : 0;
    uint64_t have_bytes = t ? t->bytes : 0;
    if ((ob->max_node_records && have + 1 > ob->max_node_records) ||
        (ob->max_node_bytes && have_bytes + size > ob->max_node_bytes))
        return ferry_fail(d, FERRY_E_NOSPACE,
                          WHAT ": node %s has its share waiting: %zu records, %" PRIu64
                               " bytes (a node may hold %zu, %" PRIu64 ")",
                          node, have, have_bytes, ob->max_node_records, ob->max_node_bytes);
    if (ob->count + 1 > ob->max_records || ob->bytes + size > ob->max_bytes)
        return ferry_fail(d, FERRY_E_NOSPACE,
                          WHAT ": full: %zu records, %" PRIu64 " bytes pending (limits %zu, "
                               "%" PRIu64 ")",
                          ob->count, ob->bytes, ob->max_records, ob->max_bytes);
    if (ob->jsize + size > journal_cap(ob)) {
        struct ferry_diag cd = {{0}};
        enum ferry_err err = gw_outbox_compact(ob, &cd);
        if (err != FERRY_OK)
            return ferry_fail(d, FERRY_E_NOSPACE,
                              WHAT ": %s holds %" PRIu64 " bytes, mostly acked, and compaction "
                                   "failed: %s",
                              ob->journal, ob->jsize, ferry_diag_str(&cd, err));
    }
    return FERRY_OK;
}

/* Whether the pending entry i holds the same record as rec (json):
 * ferry_status_same(), so the path it came by does not count (a node that
 * moved under a child gateway resends what it had sent here directly).
 * FERRY_E_CORRUPT when it no longer reads back (it is dropped then),
 * FERRY_E_IO on a read error. */
static enum ferry_err same_as_pending(struct gw_outbox *ob, size_t i,
                                      const struct ferry_status *rec, const char *json, size_t len,
                                      bool *same, struct ferry_diag *d)
{
    uint8_t buf[REC_MAX];
    enum ferry_err err = read_record(ob, &ob->e[i], buf, d);
    if (err == FERRY_E_CORRUPT) {
        retire(ob, i, ENTRY_DEAD);
        advance_head(ob);
        return err;
    }
    if (err != FERRY_OK)
        return err;
    struct ferry_status held;
    *same = (ob->e[i].len == len && memcmp(buf + REC_HDR, json, len) == 0) ||
            (ferry_status_from_json(buf + REC_HDR, ob->e[i].len, &held, NULL) == FERRY_OK &&
             ferry_status_same(&held, rec));
    return FERRY_OK;
}

enum ferry_err gw_outbox_append(struct gw_outbox *ob, const struct ferry_status *st,
                                bool *duplicate, struct ferry_diag *d)
{
    struct ferry_status rec = *st;
    char *json = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    /* A node's record gets this gateway as its gateway; one a child gateway
     * relayed gets it on its path (PROTOCOL.md, "Cascaded gateways"). */
    enum ferry_err err = FERRY_OK;
    if (strcmp(ferry_status_last_hop(&rec), ob->gateway) != 0)
        err = ferry_status_add_hop(&rec, ob->gateway, d);
    if (err == FERRY_OK)
        err = ferry_status_to_json(&rec, &json, &len, d);
    if (err != FERRY_OK) {
        ferry_diag_prefix(d, WHAT);
        return err;
    }
    if (len > PAYLOAD_MAX) {
        err = ferry_fail(d, FERRY_E_TOO_LARGE,
                         WHAT ": record %s seq %" PRIu64 " is %zu bytes as JSON, the cap is %d",
                         rec.node, rec.seq, len, PAYLOAD_MAX);
        goto out;
    }
    size_t pending = ix_find(&ob->ix, ob->e, rec.node, rec.seq);
    if (pending != SIZE_MAX) {
        bool same = false;
        err = same_as_pending(ob, pending, &rec, json, len, &same, d);
        if (err == FERRY_OK && same) {
            if (duplicate)
                *duplicate = true;
            goto out;
        }
        if (err == FERRY_OK)
            err = ferry_fail(d, FERRY_E_CONFLICT,
                             WHAT ": node %s seq %" PRIu64 " differs from the record waiting "
                                  "under that seq (conflict); renumber it",
                             rec.node, rec.seq);
        if (err != FERRY_E_CORRUPT)
            goto out;
        err = FERRY_OK; /* that one is dropped: this one takes its place */
    }
    err = check_room(ob, rec.node, REC_HDR + len, d);
    if (err == FERRY_OK)
        err = reserve_one(ob, d);
    if (err != FERRY_OK)
        goto out;
    buf = malloc(REC_HDR + len);
    if (!buf) {
        err = ferry_fail(d, FERRY_E_NOMEM, WHAT ": out of memory");
        goto out;
    }
    struct entry e = {.id = ob->next_id, .seq = rec.seq, .off = ob->jsize, .len = (uint32_t)len};
    memcpy(e.node, rec.node, sizeof(e.node));
    encode_rec(buf, e.id, json, e.len);
    e.crc = ferry_get_le32(buf + 8);
    err = append_durably(ob, ob->jfd, ob->journal, ob->jsize, buf, REC_HDR + len, d);
    if (err != FERRY_OK)
        goto out;
    add_pending(ob, &e);
    ob->next_id++;
    ob->jsize += REC_HDR + len;
    if (duplicate)
        *duplicate = false;
out:
    free(buf);
    free(json);
    return err;
}

enum ferry_err gw_outbox_peek(struct gw_outbox *ob, struct gw_outbox_item *items, size_t cap,
                              size_t *n, struct ferry_diag *d)
{
    uint8_t buf[REC_MAX];
    size_t got = 0;
    for (size_t i = ob->head; i < ob->n && got < cap; i++) {
        const struct entry *e = &ob->e[i];
        struct ferry_diag pd = {{0}};
        if (e->state != ENTRY_PENDING)
            continue;
        enum ferry_err err = read_record(ob, e, buf, d);
        if (err == FERRY_OK) {
            err = ferry_status_from_json(buf + REC_HDR, e->len, &items[got].st, &pd);
            if (err != FERRY_OK) {
                ferry_log_err(WHAT ": %s: record %" PRIu64 " no longer parses, dropping it: %s",
                              ob->journal, e->id, ferry_diag_str(&pd, err));
                err = FERRY_E_CORRUPT;
            }
        }
        if (err == FERRY_E_CORRUPT) {
            retire(ob, i, ENTRY_DEAD);
            continue;
        }
        if (err != FERRY_OK)
            return err;
        items[got++].id = e->id;
    }
    advance_head(ob);
    *n = got;
    return FERRY_OK;
}

/* The pending entries named by ids, each once, marked; their acks in buf. */
static size_t collect_acks(struct gw_outbox *ob, const struct ferry_record_id *ids, size_t n,
                           size_t *hit, uint8_t *buf)
{
    size_t k = 0;
    for (size_t j = 0; j < n; j++) {
        if (strnlen(ids[j].node, sizeof(ids[j].node)) == sizeof(ids[j].node))
            continue;
        size_t i = ix_find(&ob->ix, ob->e, ids[j].node, ids[j].seq);
        if (i == SIZE_MAX || ob->e[i].marked)
            continue;
        ob->e[i].marked = true;
        encode_ack(buf + k * ACK_LEN, &ob->e[i]);
        hit[k++] = i;
    }
    return k;
}

enum ferry_err gw_outbox_ack(struct gw_outbox *ob, const struct ferry_record_id *ids, size_t n,
                             size_t *acked, struct ferry_diag *d)
{
    size_t *hit = malloc((n ? n : 1) * sizeof(*hit));
    uint8_t *buf = malloc((n ? n : 1) * ACK_LEN);
    enum ferry_err err = FERRY_OK;
    size_t k = 0;
    if (!hit || !buf) {
        err = ferry_fail(d, FERRY_E_NOMEM, WHAT ": out of memory for %zu acks", n);
        goto out;
    }
    k = collect_acks(ob, ids, n, hit, buf);
    if (k > 0)
        err = append_durably(ob, ob->afd, ob->acks, ob->asize, buf, k * ACK_LEN, d);
    for (size_t j = 0; j < k; j++) {
        ob->e[hit[j]].marked = false;
        if (err == FERRY_OK)
            retire(ob, hit[j], ENTRY_ACKED);
    }
    if (err != FERRY_OK)
        goto out;
    ob->asize += k * ACK_LEN;
    advance_head(ob);
    maybe_compact(ob);
    if (acked)
        *acked = k;
out:
    free(hit);
    free(buf);
    return err;
}

size_t gw_outbox_node_pending(const struct gw_outbox *ob, const char *node, uint64_t *bytes)
{
    const struct tally *t = tally_find(&ob->tallies, node);
    if (bytes)
        *bytes = t ? t->bytes : 0;
    return t ? t->records : 0;
}

void gw_outbox_each_node(const struct gw_outbox *ob, gw_outbox_node_cb cb, void *arg)
{
    for (size_t i = 0; i < ob->tallies.cap; i++) {
        const struct tally *t = &ob->tallies.slots[i];
        if (t->node[0] && t->records > 0)
            cb(arg, t->node, t->records);
    }
}

size_t gw_outbox_count(const struct gw_outbox *ob)
{
    return ob->count;
}

uint64_t gw_outbox_bytes(const struct gw_outbox *ob)
{
    return ob->bytes;
}
