/* File helpers that keep on-disk state whole across a crash.
 *
 * ferry_write_atomic() is the only way Ferry replaces a state file: it writes
 * a temporary file beside the target, fsyncs it, renames it over the target
 * and fsyncs the folder, so after a crash the target holds either the old or
 * the new bytes, never a mix. The temporary file has an unpredictable name
 * and is created exclusively, so nothing placed there in advance (a
 * symbolic link, say) is followed or overwritten. */
#ifndef FERRY_FS_H
#define FERRY_FS_H

#include "ferry_err.h"
#include "ferry_io.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Every helper goes through a driver (ferry_io.h): the _io forms take one
 * (NULL: the system's), the plain forms use the system's. */

/* Reads a whole file of at most max_len bytes into a new buffer, NUL-
 * terminated one past len for convenience. The caller frees *out with free().
 * FERRY_E_TOO_LARGE if the file is bigger than max_len, FERRY_E_NOT_FOUND if
 * it does not exist. */
enum ferry_err ferry_read_file_io(const struct ferry_io *io, const char *path, size_t max_len,
                                  uint8_t **out, size_t *out_len,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err ferry_read_file(const char *path, size_t max_len, uint8_t **out, size_t *out_len,
                               struct ferry_diag *d) FERRY_MUST_CHECK;

/* Atomically replaces path with data (see above); mode is the new file's mode.
 * FERRY_E_NOSPACE when the disk is full (the old file is left untouched). */
enum ferry_err ferry_write_atomic_io(const struct ferry_io *io, const char *path, const void *data,
                                     size_t len, mode_t mode,
                                     struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err ferry_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

/* fsyncs the folder that holds path (or path itself when it is a folder). */
enum ferry_err ferry_fsync_dir_io(const struct ferry_io *io, const char *dir) FERRY_MUST_CHECK;
enum ferry_err ferry_fsync_dir(const char *dir) FERRY_MUST_CHECK;

/* mkdir -p; existing folders are fine. Each folder it creates is made
 * durable: the folder holding it is fsync'd. */
enum ferry_err ferry_mkdir_p_io(const struct ferry_io *io, const char *path, mode_t mode,
                                struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err ferry_mkdir_p(const char *path, mode_t mode, struct ferry_diag *d) FERRY_MUST_CHECK;

/* write(2) until done or failed; maps ENOSPC/EDQUOT to FERRY_E_NOSPACE,
 * ENOENT to FERRY_E_NOT_FOUND, anything else to FERRY_E_IO (errno is
 * left as the failing call set it). */
enum ferry_err ferry_write_all_io(const struct ferry_io *io, int fd, const void *data,
                                  size_t len) FERRY_MUST_CHECK;
enum ferry_err ferry_write_all(int fd, const void *data, size_t len) FERRY_MUST_CHECK;

/* pwrite(2) until done or failed; same mapping as ferry_write_all(). */
enum ferry_err ferry_pwrite_all_io(const struct ferry_io *io, int fd, const void *data, size_t len,
                                   off_t off) FERRY_MUST_CHECK;
enum ferry_err ferry_pwrite_all(int fd, const void *data, size_t len, off_t off) FERRY_MUST_CHECK;

/* pread(2) until len bytes or the end of the file; *got (may equal len)
 * says how many. FERRY_E_IO on a failed read (errno as it set it). */
enum ferry_err ferry_pread_full_io(const struct ferry_io *io, int fd, void *buf, size_t len,
                                   off_t off, size_t *got) FERRY_MUST_CHECK;

/* The error for an errno: ENOSPC/EDQUOT FERRY_E_NOSPACE, ENOENT
 * FERRY_E_NOT_FOUND, ENOMEM FERRY_E_NOMEM, else FERRY_E_IO. */
enum ferry_err ferry_errno_err(int e);

#endif
