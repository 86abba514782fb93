/* The cloud's content-addressed artifact store (`--store DIR`).
 *
 * Each artifact lives at DIR/<sha256 in lower-case hex>, written once and
 * never changed, so any number of `serve` instances can read it while
 * `publish` imports others, and an entry's name proves what it should hold.
 * An import streams the source into DIR/tmp, hashing as it goes, fsyncs it,
 * renames it to its digest and fsyncs DIR: after a crash an entry is either
 * whole or absent. Importing bytes already present changes nothing.
 *
 * Entries are named only from binary digests that this module encodes
 * itself, or from identifiers (ferry_id_valid: no '/', never starting with
 * '.'), so no other caller-supplied text ever becomes part of a path.
 *
 * Beside the artifacts, two small catalogues, each file written atomically:
 *   DIR/releases/<release id>.env  the signed envelope of every release
 *                                  `publish` signed or checked, so a rollout
 *                                  can name a release by its id;
 *   DIR/fleets/<fleet>.json        the fleet's configuration
 *                                  (proto/ferry_rollout.h, struct
 *                                  ferry_fleet_config), read by `publish`. */
#ifndef FERRY_CLOUD_STORE_H
#define FERRY_CLOUD_STORE_H

#include "ferry_err.h"
#include "ferry_rollout.h"
#include "ferry_sha256.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define CLOUD_STORE_TMP "tmp" /* DIR/tmp holds imports in progress */

struct cloud_store;

/* Opens (creating DIR and DIR/tmp, mode 0755, when missing) the store at dir.
 * Free with cloud_store_free(). */
enum ferry_err cloud_store_open(const char *dir, struct cloud_store **out,
                                struct ferry_diag *d) FERRY_MUST_CHECK;
void cloud_store_free(struct cloud_store *s); /* NULL is fine */

/* Called during an import after each block, with the bytes copied so far and
 * the source's size when the import began. */
typedef void (*cloud_store_progress)(void *arg, uint64_t done, uint64_t total);

/* Copies the regular file at path into the store (see above). sha256 and
 * *size receive the digest and length of the bytes actually copied (a
 * source that changes meanwhile is stored as read). progress may be NULL.
 * FERRY_E_INVALID_ARG for an empty or non-regular source,
 * FERRY_E_TOO_LARGE above FERRY_ARTIFACT_MAX_SIZE, FERRY_E_NOSPACE when the
 * disk fills (the partial copy is removed). */
enum ferry_err cloud_store_import(struct cloud_store *s, const char *path,
                                  cloud_store_progress progress, void *arg,
                                  uint8_t sha256[FERRY_SHA256_LEN], uint64_t *size,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

/* Opens the entry for sha256 read-only; *fd (close it) and *size describe
 * it. FERRY_E_NOT_FOUND when the store lacks it, FERRY_E_CORRUPT when the
 * name exists but is not a regular file. */
enum ferry_err cloud_store_open_entry(const struct cloud_store *s,
                                      const uint8_t sha256[FERRY_SHA256_LEN], int *fd,
                                      uint64_t *size, struct ferry_diag *d) FERRY_MUST_CHECK;

/* ---- checking an entry against its name, in slices ----
 *
 * A copy made behind the store's back (another host's files copied here)
 * is not trusted blindly: its bytes must hash to its name. Hashing a big
 * entry takes a while (about 0.2 s per 64 MiB here, more on a slow disk),
 * so a process with other work on its loop hashes it in slices:
 *
 *     cloud_store_check_begin(s, &c, sha256, fd, size, d)   records the file
 *     while (!cloud_store_check_done(&c))
 *         cloud_store_check_step(s, &c, slice, d)          hashes <= slice bytes
 *     cloud_store_check_end(s, &c, d)                      the verdict
 *
 * The caller owns the context (no heap) and the fd (it must stay open until
 * the end; the check never closes it). The verdict holds for the file as it
 * was at begin, c.file (dev, inode, size, mtime): cloud_store_same_file()
 * tells a caller that remembers verdicts whether a later fstat is still that
 * file. After an error from begin, step or end the check is over and its
 * context released; cloud_store_check_cancel() releases one abandoned
 * midway, and is harmless on one already over. */
#define CLOUD_STORE_CHECK_SLICE (UINT64_C(4) << 20) /* a slice for a busy loop: ~12 ms */

struct cloud_store_check {
    uint8_t sha256[FERRY_SHA256_LEN]; /* the entry's name: what it must hash to */
    int fd;                           /* the open entry (the caller's) */
    uint64_t size;                    /* bytes to hash */
    uint64_t done;                    /* bytes hashed so far */
    struct stat file;                 /* fstat(fd) at begin */
    struct ferry_sha256 hash;
    bool live; /* the hash context is in use */
};

/* Starts a check of the open entry fd (size bytes, from
 * cloud_store_open_entry) against sha256. FERRY_E_IO when fd cannot be
 * fstat'ed. */
enum ferry_err cloud_store_check_begin(const struct cloud_store *s, struct cloud_store_check *c,
                                       const uint8_t sha256[FERRY_SHA256_LEN], int fd,
                                       uint64_t size, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Hashes the next min(slice, size - done) bytes. FERRY_E_INVALID_ARG for a
 * zero slice or a check that is not live, FERRY_E_IO on a read error or an
 * end of file before size bytes (the file was cut short). */
enum ferry_err cloud_store_check_step(const struct cloud_store *s, struct cloud_store_check *c,
                                      uint64_t slice, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Whether every byte has been hashed: time for cloud_store_check_end(). */
bool cloud_store_check_done(const struct cloud_store_check *c);

/* The verdict, once done: FERRY_OK when the bytes hash to the name,
 * FERRY_E_HASH_MISMATCH when they do not (a damaged or unfinished copy),
 * FERRY_E_BUSY when the file changed while it was checked (fstat differs
 * from c->file: begin again; the bytes hashed say nothing),
 * FERRY_E_INVALID_ARG before done. Releases the context in every case. */
enum ferry_err cloud_store_check_end(const struct cloud_store *s, struct cloud_store_check *c,
                                     struct ferry_diag *d) FERRY_MUST_CHECK;

/* Releases an unfinished check's context; fd stays open. */
void cloud_store_check_cancel(struct cloud_store_check *c);

/* Whether st (a later fstat or stat) is the file a check began on: same
 * device, inode, size and modification time. */
bool cloud_store_same_file(const struct stat *checked, const struct stat *st);

/* The whole check at once (a loop over the above with
 * CLOUD_STORE_CHECK_SLICE slices), for callers with nothing else to do
 * meanwhile: FERRY_OK, FERRY_E_HASH_MISMATCH, FERRY_E_IO or FERRY_E_BUSY as
 * above. Reads the whole entry: callers remember what they verified. */
enum ferry_err cloud_store_verify_entry(const struct cloud_store *s,
                                        const uint8_t sha256[FERRY_SHA256_LEN], int fd,
                                        uint64_t size, struct ferry_diag *d) FERRY_MUST_CHECK;

/* The entry's size without opening it; same errors as open_entry. */
enum ferry_err cloud_store_size(const struct cloud_store *s, const uint8_t sha256[FERRY_SHA256_LEN],
                                uint64_t *size, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Keeps env as release_id's envelope (replacing an older one). */
enum ferry_err cloud_store_put_release(struct cloud_store *s, const char *release_id,
                                       const uint8_t *env, size_t len,
                                       struct ferry_diag *d) FERRY_MUST_CHECK;

/* The envelope kept for release_id into a new buffer (free() it).
 * FERRY_E_NOT_FOUND when `publish` never put it there. */
enum ferry_err cloud_store_get_release(const struct cloud_store *s, const char *release_id,
                                       uint8_t **env, size_t *len,
                                       struct ferry_diag *d) FERRY_MUST_CHECK;

/* Calls cb with the id of every release the catalogue keeps, in no order
 * (temporary files and names that are not release ids are passed over). A
 * non-FERRY_OK return from cb stops the walk and is passed on; a store
 * without a catalogue yet has no release. */
typedef enum ferry_err (*cloud_store_release_cb)(void *arg, const char *release_id);
enum ferry_err cloud_store_each_release(const struct cloud_store *s, cloud_store_release_cb cb,
                                        void *arg, struct ferry_diag *d) FERRY_MUST_CHECK;

/* The fleet's configuration; the defaults when none was ever written. */
enum ferry_err cloud_store_get_fleet(const struct cloud_store *s, const char *fleet,
                                     struct ferry_fleet_config *out,
                                     struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err cloud_store_put_fleet(struct cloud_store *s, const char *fleet,
                                     const struct ferry_fleet_config *cfg,
                                     struct ferry_diag *d) FERRY_MUST_CHECK;

/* The entry's path, for tools that take a file name (e.g. the signer, which
 * then hashes exactly the stored bytes). FERRY_E_TOO_LARGE if cap is short. */
enum ferry_err cloud_store_path(const struct cloud_store *s, const uint8_t sha256[FERRY_SHA256_LEN],
                                char *out, size_t cap) FERRY_MUST_CHECK;

#endif
