#include "edge_journal.h"

#include "ferry_bytes.h"
#include "ferry_crc32.h"
#include "ferry_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JOURNAL_NAME "status.journal"
#define SEQ_NAME     "status.seq"
#define KIND_RECORD  'S'
#define KIND_ACK     'A'
#define HDR_LEN      8
#define ACK_LEN      8
#define SEQ_FILE_LEN 12
#define ENTRY_MAX    (HDR_LEN + FERRY_STATUS_MAX_BYTES)

/* A node never jumps further than the receivers allow (edge_journal.h). */
_Static_assert(2 * EDGE_JOURNAL_MAX_PENDING + EDGE_JOURNAL_SEQ_BLOCK < FERRY_STATUS_SEQ_WINDOW,
               "the journal may skip past the status sequence window");

struct pending {
    uint64_t off; /* of the entry's header */
    uint32_t len; /* of its payload */
    uint64_t seq;
};

struct edge_journal {
    const struct ferry_io *io; /* NULL: the system's */
    char path[PATH_MAX];
    char seq_path[PATH_MAX];
    int fd;
    uint64_t size;     /* end of the last good entry */
    struct pending *q; /* q[head..n) wait, oldest first */
    size_t head, n, cap;
    uint64_t last_seq;
    uint64_t reserved; /* no seq at or above it was handed out */
    bool repaired;
};

static uint32_t entry_crc(const uint8_t *hdr, const uint8_t *payload, size_t len)
{
    return ferry_crc32(ferry_crc32(0, hdr, 4), payload, len);
}

/* Fills in the header before the len payload bytes already at buf +
 * HDR_LEN; returns the entry length. */
static size_t make_entry(uint8_t *buf, uint8_t kind, size_t len)
{
    buf[0] = kind;
    buf[1] = 0;
    ferry_put_le16(buf + 2, (uint16_t)len);
    ferry_put_le32(buf + 4, entry_crc(buf, buf + HDR_LEN, len));
    return HDR_LEN + len;
}

static enum ferry_err read_exact(const struct edge_journal *j, uint64_t off, void *buf, size_t len,
                                 bool *short_read)
{
    size_t got = 0;
    enum ferry_err err = ferry_pread_full_io(j->io, j->fd, buf, len, (off_t)off, &got);
    *short_read = got < len;
    return err;
}

static enum ferry_err push(struct edge_journal *j, uint64_t off, uint32_t len, uint64_t seq)
{
    if (j->head > 0 && j->n == j->cap) {
        memmove(j->q, j->q + j->head, (j->n - j->head) * sizeof(*j->q));
        j->n -= j->head;
        j->head = 0;
    }
    if (j->n == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 16;
        struct pending *q = realloc(j->q, cap * sizeof(*q));
        if (!q)
            return FERRY_E_NOMEM;
        j->q = q;
        j->cap = cap;
    }
    j->q[j->n++] = (struct pending){.off = off, .len = len, .seq = seq};
    return FERRY_OK;
}

static void pop(struct edge_journal *j)
{
    if (++j->head == j->n)
        j->head = j->n = 0;
}

/* One entry at off: FERRY_OK with *len_out its payload length, or
 * FERRY_E_CORRUPT when it is short, torn or not an entry at all. */
static enum ferry_err read_entry(const struct edge_journal *j, uint64_t off, uint8_t *hdr,
                                 uint8_t *payload, size_t *len_out)
{
    bool short_read = false;
    if (read_exact(j, off, hdr, HDR_LEN, &short_read) != FERRY_OK)
        return FERRY_E_IO;
    size_t len = ferry_get_le16(hdr + 2);
    bool shape_ok = (hdr[0] == KIND_RECORD && len >= 1 && len <= FERRY_STATUS_MAX_BYTES) ||
                    (hdr[0] == KIND_ACK && len == ACK_LEN);
    if (short_read || hdr[1] != 0 || !shape_ok)
        return FERRY_E_CORRUPT;
    if (read_exact(j, off + HDR_LEN, payload, len, &short_read) != FERRY_OK)
        return FERRY_E_IO;
    if (short_read || entry_crc(hdr, payload, len) != ferry_get_le32(hdr + 4))
        return FERRY_E_CORRUPT;
    *len_out = len;
    return FERRY_OK;
}

/* Applies one good entry; FERRY_E_CORRUPT when it breaks the seq order. */
static enum ferry_err apply_entry(struct edge_journal *j, uint64_t off, const uint8_t *hdr,
                                  const uint8_t *payload, size_t len)
{
    if (hdr[0] == KIND_ACK) {
        uint64_t acked = ferry_get_le64(payload);
        if (acked > j->last_seq)
            j->last_seq = acked;
        while (j->head < j->n && j->q[j->head].seq <= acked)
            pop(j);
        return FERRY_OK;
    }
    struct ferry_status st;
    if (ferry_status_from_cbor(payload, len, &st, NULL) != FERRY_OK || st.seq <= j->last_seq)
        return FERRY_E_CORRUPT;
    j->last_seq = st.seq;
    return push(j, off, (uint32_t)len, st.seq);
}

static enum ferry_err scan(struct edge_journal *j, struct ferry_diag *d)
{
    uint8_t hdr[HDR_LEN];
    uint8_t payload[FERRY_STATUS_MAX_BYTES];
    uint64_t off = 0;
    for (;;) {
        uint8_t probe;
        bool at_end = false;
        if (read_exact(j, off, &probe, 1, &at_end) != FERRY_OK)
            return ferry_fail(d, FERRY_E_IO, "%s: read: %s", j->path, strerror(errno));
        if (at_end)
            break;
        size_t len = 0;
        enum ferry_err err = read_entry(j, off, hdr, payload, &len);
        if (err == FERRY_OK)
            err = apply_entry(j, off, hdr, payload, len);
        if (err == FERRY_E_IO)
            return ferry_fail(d, err, "%s: read: %s", j->path, strerror(errno));
        if (err == FERRY_E_NOMEM)
            return ferry_fail(d, err, "%s: out of memory", j->path);
        if (err != FERRY_OK) {
            if (ferry_io_ftruncate(j->io, j->fd, (off_t)off) != 0 ||
                ferry_io_fsync(j->io, j->fd) != 0)
                return ferry_fail(d, FERRY_E_IO, "%s: cutting damage at %llu: %s", j->path,
                                  (unsigned long long)off, strerror(errno));
            j->repaired = true;
            break;
        }
        off += HDR_LEN + len;
    }
    j->size = off;
    return FERRY_OK;
}

static void read_reservation(struct edge_journal *j)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    j->reserved = 0;
    if (ferry_read_file_io(j->io, j->seq_path, SEQ_FILE_LEN, &buf, &len, NULL) != FERRY_OK)
        return;
    if (len == SEQ_FILE_LEN && ferry_crc32(0, buf, 8) == ferry_get_le32(buf + 8))
        j->reserved = ferry_get_le64(buf);
    free(buf);
}

static enum ferry_err write_reservation(struct edge_journal *j, uint64_t reserved,
                                        struct ferry_diag *d)
{
    uint8_t buf[SEQ_FILE_LEN];
    ferry_put_le64(buf, reserved);
    ferry_put_le32(buf + 8, ferry_crc32(0, buf, 8));
    enum ferry_err err = ferry_write_atomic_io(j->io, j->seq_path, buf, sizeof(buf), 0644, d);
    if (err == FERRY_OK)
        j->reserved = reserved;
    return err;
}

static enum ferry_err open_file(struct edge_journal *j, struct ferry_diag *d)
{
    bool existed = access(j->path, F_OK) == 0;
    j->fd = ferry_io_open(j->io, j->path, O_RDWR | O_CREAT, 0644);
    if (j->fd < 0)
        return ferry_fail(d, errno == ENOSPC ? FERRY_E_NOSPACE : FERRY_E_IO, "%s: %s", j->path,
                          strerror(errno));
    if (!existed && ferry_fsync_dir_io(j->io, j->path) != FERRY_OK)
        return ferry_fail(d, FERRY_E_IO, "%s: fsync of its folder failed", j->path);
    return FERRY_OK;
}

enum ferry_err edge_journal_open(const char *dir, const struct ferry_io *io,
                                 struct edge_journal **out, struct ferry_diag *d)
{
    if (!dir || !dir[0] || strlen(dir) > PATH_MAX - sizeof(JOURNAL_NAME) - 2)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "journal: state folder missing or too long");
    struct edge_journal *j = calloc(1, sizeof(*j));
    if (!j)
        return ferry_fail(d, FERRY_E_NOMEM, "journal: out of memory");
    j->io = io;
    snprintf(j->path, sizeof(j->path), "%s/%s", dir, JOURNAL_NAME);
    snprintf(j->seq_path, sizeof(j->seq_path), "%s/%s", dir, SEQ_NAME);
    j->fd = -1;
    enum ferry_err err = open_file(j, d);
    if (err == FERRY_OK)
        err = scan(j, d);
    if (err != FERRY_OK) {
        edge_journal_free(j);
        return err;
    }
    read_reservation(j);
    /* A cut may have dropped records that were sent, and a journal that is
     * gone or empty (lost, or recreated) says nothing of the seqs handed
     * out before: never reuse them. For a new node there is no reservation
     * and this changes nothing. */
    if ((j->repaired || j->size == 0) && j->reserved > j->last_seq + 1)
        j->last_seq = j->reserved - 1;
    *out = j;
    return FERRY_OK;
}

void edge_journal_free(struct edge_journal *j)
{
    if (!j)
        return;
    if (j->fd >= 0)
        ferry_io_close(j->io, j->fd);
    free(j->q);
    free(j);
}

/* After a compaction the file is opened again on first use. */
static enum ferry_err reopen(struct edge_journal *j, struct ferry_diag *d)
{
    if (j->fd >= 0)
        return FERRY_OK;
    j->fd = ferry_io_open(j->io, j->path, O_RDWR, 0);
    if (j->fd < 0)
        return ferry_fail(d, FERRY_E_IO, "%s: %s", j->path, strerror(errno));
    return FERRY_OK;
}

/* Writes one entry at the end and, if asked, makes it durable; a failed
 * write is cut off again so the file stays a sequence of whole entries. */
static enum ferry_err append_entry(struct edge_journal *j, const uint8_t *entry, size_t len,
                                   bool durable, struct ferry_diag *d)
{
    enum ferry_err err = reopen(j, d);
    if (err != FERRY_OK)
        return err;
    err = ferry_pwrite_all_io(j->io, j->fd, entry, len, (off_t)j->size);
    if (err == FERRY_OK && durable && ferry_io_fsync(j->io, j->fd) != 0)
        err = FERRY_E_IO;
    if (err != FERRY_OK) {
        int e = errno;
        if (ferry_io_ftruncate(j->io, j->fd, (off_t)j->size) != 0) {
            /* The next open cuts the partial entry off instead. */
        }
        return ferry_fail(d, err, "%s: append: %s", j->path, strerror(e));
    }
    j->size += len;
    return FERRY_OK;
}

enum ferry_err edge_journal_append(struct edge_journal *j, const struct ferry_status *st,
                                   uint64_t *seq, struct ferry_diag *d)
{
    if (edge_journal_pending(j) >= EDGE_JOURNAL_MAX_PENDING)
        return ferry_fail(d, FERRY_E_NOSPACE, "journal: %d records wait for the gateway already",
                          EDGE_JOURNAL_MAX_PENDING);
    uint8_t entry[ENTRY_MAX];
    size_t len = 0;
    struct ferry_status rec = *st;
    rec.seq = j->last_seq + 1;
    enum ferry_err err =
        ferry_status_to_cbor(&rec, entry + HDR_LEN, FERRY_STATUS_MAX_BYTES, &len, d);
    if (err != FERRY_OK)
        return err;
    if (rec.seq >= j->reserved) {
        err = write_reservation(j, rec.seq + EDGE_JOURNAL_SEQ_BLOCK, d);
        if (err != FERRY_OK)
            return err;
    }
    uint64_t off = j->size;
    size_t n = make_entry(entry, KIND_RECORD, len);
    err = append_entry(j, entry, n, true, d);
    if (err != FERRY_OK)
        return err;
    if (push(j, off, (uint32_t)len, rec.seq) != FERRY_OK) {
        /* Unreachable below the cap after the first growth; keep the file
         * consistent with memory all the same. */
        j->size = off;
        if (ferry_io_ftruncate(j->io, j->fd, (off_t)off) != 0) {
            /* The record stays in the file and is sent after a restart. */
        }
        return ferry_fail(d, FERRY_E_NOMEM, "journal: out of memory");
    }
    j->last_seq = rec.seq;
    *seq = rec.seq;
    return FERRY_OK;
}

enum ferry_err edge_journal_head(struct edge_journal *j, uint8_t *buf, size_t cap, size_t *len,
                                 uint64_t *seq, struct ferry_diag *d)
{
    if (j->head == j->n)
        return ferry_fail(d, FERRY_E_NOT_FOUND, "journal: nothing pending");
    const struct pending *p = &j->q[j->head];
    uint8_t hdr[HDR_LEN];
    uint8_t payload[FERRY_STATUS_MAX_BYTES];
    size_t n = 0;
    enum ferry_err err = reopen(j, d);
    if (err != FERRY_OK)
        return err;
    err = read_entry(j, p->off, hdr, payload, &n);
    if (err == FERRY_E_IO)
        return ferry_fail(d, err, "%s: read: %s", j->path, strerror(errno));
    if (err != FERRY_OK || hdr[0] != KIND_RECORD || n != p->len)
        return ferry_fail(d, FERRY_E_CORRUPT, "%s: record %llu changed on storage", j->path,
                          (unsigned long long)p->seq);
    if (cap < n)
        return ferry_fail(d, FERRY_E_TOO_LARGE, "journal: record of %zu bytes, buffer of %zu", n,
                          cap);
    memcpy(buf, payload, n);
    *len = n;
    *seq = p->seq;
    return FERRY_OK;
}

/* Nothing pending: one ack entry holding the last seq says it all. */
static void compact(struct edge_journal *j)
{
    uint8_t entry[HDR_LEN + ACK_LEN];
    ferry_put_le64(entry + HDR_LEN, j->last_seq);
    size_t n = make_entry(entry, KIND_ACK, ACK_LEN);
    if (ferry_write_atomic_io(j->io, j->path, entry, n, 0644, NULL) != FERRY_OK)
        return; /* the long file stays valid; the next ack tries again */
    /* The old file is unlinked now: appending to it would lose records. */
    ferry_io_close(j->io, j->fd);
    j->fd = -1;
    j->size = n;
}

enum ferry_err edge_journal_ack(struct edge_journal *j, uint64_t seq, struct ferry_diag *d)
{
    if (j->head == j->n || j->q[j->head].seq != seq)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "journal: ack for %llu, the head is %llu",
                          (unsigned long long)seq,
                          (unsigned long long)(j->head == j->n ? 0 : j->q[j->head].seq));
    uint8_t entry[HDR_LEN + ACK_LEN];
    ferry_put_le64(entry + HDR_LEN, seq);
    size_t n = make_entry(entry, KIND_ACK, ACK_LEN);
    enum ferry_err err = append_entry(j, entry, n, false, d);
    if (err != FERRY_OK)
        return err;
    pop(j);
    if (j->head == j->n && j->size > EDGE_JOURNAL_COMPACT_BYTES)
        compact(j);
    return FERRY_OK;
}

/* Appends to buf (room for ENTRY_MAX) the pending record p renumbered as
 * seq; returns the entry's length, or 0 when p no longer reads back. */
static size_t renumbered_entry(struct edge_journal *j, const struct pending *p, uint64_t seq,
                               uint8_t *buf)
{
    uint8_t hdr[HDR_LEN];
    uint8_t payload[FERRY_STATUS_MAX_BYTES];
    size_t n = 0, len = 0;
    struct ferry_status st;
    if (read_entry(j, p->off, hdr, payload, &n) != FERRY_OK || hdr[0] != KIND_RECORD ||
        ferry_status_from_cbor(payload, n, &st, NULL) != FERRY_OK)
        return 0;
    st.seq = seq;
    if (ferry_status_to_cbor(&st, buf + HDR_LEN, FERRY_STATUS_MAX_BYTES, &len, NULL) != FERRY_OK)
        return 0;
    return make_entry(buf, KIND_RECORD, len);
}

enum ferry_err edge_journal_renumber(struct edge_journal *j, uint64_t *first, struct ferry_diag *d)
{
    size_t m = edge_journal_pending(j);
    if (m == 0)
        return ferry_fail(d, FERRY_E_NOT_FOUND, "journal: nothing pending");
    enum ferry_err err = reopen(j, d);
    if (err != FERRY_OK)
        return err;
    uint8_t *buf = malloc(m * ENTRY_MAX + HDR_LEN + ACK_LEN);
    struct pending *fresh = malloc(m * sizeof(*fresh));
    if (!buf || !fresh) {
        err = ferry_fail(d, FERRY_E_NOMEM, "journal: out of memory");
        goto out;
    }
    /* The copies first, then one ack entry that retires the originals, in
     * one durable append: a power cut inside it leaves at worst both (the
     * copies are then sent as well), never neither. */
    size_t used = 0, k = 0;
    uint64_t seq = j->last_seq;
    for (size_t i = j->head; i < j->n; i++) {
        size_t len = renumbered_entry(j, &j->q[i], seq + 1, buf + used);
        if (len == 0)
            continue; /* damaged on storage: it could never be sent */
        seq++;
        fresh[k++] =
            (struct pending){.off = j->size + used, .len = (uint32_t)(len - HDR_LEN), .seq = seq};
        used += len;
    }
    ferry_put_le64(buf + used + HDR_LEN, j->q[j->n - 1].seq);
    used += make_entry(buf + used, KIND_ACK, ACK_LEN);
    if (seq >= j->reserved) {
        err = write_reservation(j, seq + EDGE_JOURNAL_SEQ_BLOCK, d);
        if (err != FERRY_OK)
            goto out;
    }
    err = append_entry(j, buf, used, true, d);
    if (err != FERRY_OK)
        goto out;
    j->head = j->n = 0;
    for (size_t i = 0; i < k; i++)
        if (push(j, fresh[i].off, fresh[i].len, fresh[i].seq) != FERRY_OK) {
            /* Cannot happen: the queue held m >= k entries already. */
            err = ferry_fail(d, FERRY_E_NOMEM, "journal: out of memory");
            goto out;
        }
    j->last_seq = seq;
    if (first)
        *first = k ? fresh[0].seq : 0;
out:
    free(buf);
    free(fresh);
    return err;
}

uint64_t edge_journal_head_seq(const struct edge_journal *j)
{
    return j->head == j->n ? 0 : j->q[j->head].seq;
}

size_t edge_journal_pending(const struct edge_journal *j)
{
    return j->n - j->head;
}

uint64_t edge_journal_last_seq(const struct edge_journal *j)
{
    return j->last_seq;
}

bool edge_journal_repaired(const struct edge_journal *j)
{
    return j->repaired;
}
