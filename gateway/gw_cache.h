/* The gateway's content-addressed artifact cache (--cache-dir).
 *
 * Layout:
 *   DIR/<sha256-hex>            complete artifacts, immutable, named by their
 *                               digest (64 lower-case hex digits)
 *   DIR/partial/<sha>.part      an artifact being downloaded, written in place
 *                               at each chunk's offset
 *   DIR/partial/<sha>.crc       its journal: one 20-byte record per chunk
 *                               written, little-endian: offset u64, length
 *                               u32, CRC-32 of the data u32, CRC-32 of the
 *                               first 16 bytes u32
 *
 * A file gets a final name only through gw_cache_part_finish(): the SHA-256
 * of every byte received (hashed as the chunks were written, or re-read on
 * resume) must equal the expected digest and the size must match; then the
 * partial is fsynced, read back from the disk with the page cache dropped and
 * every chunk compared with the CRC-32 its journal recorded on arrival (so
 * the disk holds exactly the bytes that were hashed, without a second
 * SHA-256 pass over the file), renamed, and the folder fsynced. So a corrupt
 * file never appears under a digest name, and whatever has one can be served
 * as is. Other names in DIR are ignored.
 *
 * Durability trade-off: chunks are not fsynced one by one (an fsync per
 * 16-64 KiB chunk would bound the download rate by the disk's sync latency).
 * The .part and its journal are fsynced every `sync_every` bytes and when the
 * partial is closed or finished; the folder, when they are created. After a kill -9 nothing is lost
 * (the page cache survives); after a power cut up to `sync_every` bytes of the latest chunks may be
 * lost or torn, and resuming detects exactly which: the resume point is the longest prefix of
 * chunks from offset 0 whose journal records are intact and whose data in the .part still matches
 * its recorded CRC. Anything after that (a torn record, garbage data) is truncated away and fetched
 * again, never trusted. The journal carries a data CRC precisely because the .part and the journal
 * reach the disk in no guaranteed order.
 *
 * Quota: complete artifacts plus partials count against `quota` bytes (an
 * open partial counts for its full size from the moment it is opened, a
 * closed one for its bytes on disk; journals, under 0.13 % of the data, are
 * not counted). Opening a partial makes room first by evicting, least
 * recently used first, complete artifacts and closed partials that the
 * caller does not list as referenced and that are neither open nor mapped.
 * "Used" means finished or mapped for serving, and survives a restart
 * through the file's mtime.
 *
 * Not thread-safe: one event loop owns the cache, its partials and its
 * mappings. */
#ifndef FERRY_GW_CACHE_H
#define FERRY_GW_CACHE_H

#include "ferry_err.h"
#include "ferry_io.h"
#include "ferry_sha256.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define GW_CACHE_SYNC_EVERY_DEFAULT (UINT64_C(4) << 20)
#define GW_CACHE_JOURNAL_RECORD     20

struct gw_cache_opts {
    const char *dir;           /* created (with partial/) if missing */
    uint64_t quota;            /* bytes, >= 1 */
    uint64_t sync_every;       /* bytes between fsyncs; 0: the default */
    const struct ferry_io *io; /* file I/O (ferry_io.h); NULL: the system's; borrowed */
    /* Called after a complete artifact was evicted to make room (so whoever
     * lists it can stop); NULL: nobody needs to know. */
    void (*on_evict)(void *arg, const uint8_t sha256[FERRY_SHA256_LEN]);
    void *evict_arg;
};

/* Digests the caller must keep: every artifact a held release refers to
 * (gw_releases_refs()). Borrowed for the duration of one call. */
struct gw_cache_refs {
    const uint8_t (*sha256)[FERRY_SHA256_LEN];
    size_t n;
};

struct gw_cache;
struct gw_cache_part;
struct gw_cache_map;

/* Opens (creating) the cache folder and indexes what is there. Free with
 * gw_cache_free() once every partial is closed or finished. Mappings may
 * outlive the cache: each stays valid until its last gw_cache_unmap(). */
enum ferry_err gw_cache_open(const struct gw_cache_opts *o, struct gw_cache **out,
                             struct ferry_diag *d) FERRY_MUST_CHECK;
void gw_cache_free(struct gw_cache *c); /* NULL is fine */

/* True if a complete artifact with this digest is present; *size (may be
 * NULL) gets its length. */
bool gw_cache_has(const struct gw_cache *c, const uint8_t sha256[FERRY_SHA256_LEN], uint64_t *size);

/* Re-hashes a complete artifact from the disk. If its length is not `size`
 * (FERRY_E_SIZE_MISMATCH) or it does not hash to its name
 * (FERRY_E_HASH_MISMATCH), it is deleted, so the caller can fetch it again.
 * FERRY_E_NOT_FOUND if absent. Meant for start-up: call it for every
 * referenced artifact whose cached size differs from its release's (or all of
 * them, when the disk is suspect). A current mapping stays valid. */
enum ferry_err gw_cache_verify(struct gw_cache *c, const uint8_t sha256[FERRY_SHA256_LEN],
                               uint64_t size, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Bytes counted against the quota now, and the quota. */
uint64_t gw_cache_used(const struct gw_cache *c);
uint64_t gw_cache_quota(const struct gw_cache *c);

/* Starts or resumes the download of artifact sha256 of `size` bytes in
 * chunks of `chunk` bytes (FERRY_STREAM_MIN_CHUNK..FERRY_STREAM_MAX_CHUNK).
 * Makes room for `size` bytes first (see Quota; FERRY_E_NOSPACE naming the
 * quota and the sizes when even evicting everything allowed is not enough),
 * then recovers the resume point from the journal (see above), kept at a
 * multiple of `chunk` so the stream can ask for it (a partial written with
 * another chunk size loses at most its tail). gw_cache_part_end() tells the
 * resume point.
 * FERRY_E_INVALID_ARG if the artifact is already complete (check with
 * gw_cache_has() first), FERRY_E_BUSY if a partial for it is already open.
 * Close with gw_cache_part_close() or gw_cache_part_finish(). */
enum ferry_err gw_cache_part_open(struct gw_cache *c, const uint8_t sha256[FERRY_SHA256_LEN],
                                  uint64_t size, uint32_t chunk, const struct gw_cache_refs *refs,
                                  struct gw_cache_part **out,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

/* Bytes held from offset 0: where the download resumes. */
uint64_t gw_cache_part_end(const struct gw_cache_part *p);

/* Stores one chunk. Only the chunk at the end is taken: any other offset
 * returns FERRY_OK with *written = false and changes nothing (duplicates and
 * chunks ahead of a gap are the fetcher's business). The chunk must be
 * `chunk` bytes long, or reach exactly `size` (FERRY_E_INVALID_ARG).
 * On a failed write (FERRY_E_NOSPACE when the disk is full, FERRY_E_IO) the
 * .part and journal are truncated back to the last good chunk, the end does
 * not move and the part stays usable: the caller may retry later or close
 * it. The complete artifacts are never touched. A failed fsync
 * (FERRY_E_IO) leaves the part unusable: every later write fails; close it
 * and open it again, which re-checks everything against the journal. */
enum ferry_err gw_cache_part_write(struct gw_cache_part *p, uint64_t offset, const uint8_t *data,
                                   size_t len, bool *written,
                                   struct ferry_diag *d) FERRY_MUST_CHECK;

/* Turns a fully written part into a complete artifact (see the top of this
 * file) and frees p, whatever the outcome:
 *   FERRY_OK                  DIR/<sha> exists and is durable;
 *   FERRY_E_INVALID_ARG       the part is not complete (it is closed, kept);
 *   FERRY_E_HASH_MISMATCH     the bytes received do not hash to the digest;
 *   FERRY_E_CORRUPT           they did, but a chunk re-read from the disk
 *                             fails its journal CRC (or the journal does
 *                             not cover the file);
 *                             in both cases the partial is deleted;
 *   FERRY_E_IO, FERRY_E_NOSPACE  fsync, re-read or rename failed; the
 *                             partial is kept and can be finished after
 *                             reopening;
 *   FERRY_E_IO                also when the rename worked but the folder's
 *                             fsync failed: the artifact is complete and
 *                             usable, but may vanish after a power cut. */
enum ferry_err gw_cache_part_finish(struct gw_cache_part *p, struct ferry_diag *d) FERRY_MUST_CHECK;

/* fsyncs and closes a part, keeping its files to resume later. NULL is fine. */
void gw_cache_part_close(struct gw_cache_part *p);

/* A read-only mapping of a complete artifact for serving (CoAP Block2 keeps
 * a pointer into it). Mapping an artifact already mapped returns the same
 * handle with one more reference; each gw_cache_map() needs one
 * gw_cache_unmap(), and the memory is unmapped when the last reference goes.
 * A mapped artifact is never evicted. FERRY_E_NOT_FOUND if not complete. */
enum ferry_err gw_cache_map(struct gw_cache *c, const uint8_t sha256[FERRY_SHA256_LEN],
                            struct gw_cache_map **out, struct ferry_diag *d) FERRY_MUST_CHECK;
const uint8_t *gw_cache_map_data(const struct gw_cache_map *m);
uint64_t gw_cache_map_size(const struct gw_cache_map *m);
void gw_cache_unmap(struct gw_cache_map *m); /* NULL is fine */

#endif
