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

#include <stddef.h>
#include <stdint.h>

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

/* Hashes the open entry fd (size bytes, from cloud_store_open_entry) and
 * compares the digest with the name it was opened by: FERRY_E_HASH_MISMATCH
 * when a copy made behind the store's back (another host's files copied
 * here) does not hold what its name says, FERRY_E_IO on a read error.
 * Reads the whole entry: callers remember what they verified. */
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
