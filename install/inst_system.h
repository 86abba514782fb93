/* What the running system says about the slots: which one the kernel was
 * booted from (the kernel command line) and whether a slot's device is
 * mounted (mountinfo). The install engine asks both before it writes a
 * slot, so the running root is never opened for writing.
 *
 * The parsers are pure (text in, answer out); inst_system_*() read the
 * files, whose paths are arguments so tests and benches can inject their
 * own (INST_MOUNTINFO_PATH and INST_CMDLINE_PATH on a device).
 *
 * Kernel command line: the boot scripts Ferry ships (deploy/uboot,
 * deploy/grub) append `ferry.slot=A` or `ferry.slot=B`. The last such
 * parameter wins, as the kernel's own parsing does.
 *
 * mountinfo (proc(5)): one mount per line,
 *   ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
 * with spaces in paths written as \040. A block device slot is mounted when
 * a line names its MAJOR:MINOR, or when a line's SOURCE is the slot's path
 * (file systems such as btrfs report an anonymous device number). */
#ifndef FERRY_INST_SYSTEM_H
#define FERRY_INST_SYSTEM_H

#include "edge_boot.h"
#include "ferry_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define INST_MOUNTINFO_PATH "/proc/self/mountinfo"
#define INST_CMDLINE_PATH   "/proc/cmdline"
#define INST_MOUNTINFO_MAX  (1024 * 1024) /* bytes read at most */
#define INST_CMDLINE_MAX    4096

/* The slot named by ferry.slot= in a command line of len bytes.
 * FERRY_E_NOT_FOUND when no such parameter; FERRY_E_MALFORMED when its
 * value is not A or B. */
enum ferry_err inst_cmdline_slot(const char *text, size_t len, enum edge_slot *out,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;

/* Where a device (rdev, from stat) or a source path (may be NULL) is
 * mounted, per mountinfo text of len bytes: true and the first mount
 * point in where (cap bytes, cut to fit), root "/" preferred; false when
 * not mounted. Lines that do not parse are skipped. */
bool inst_mountinfo_find(const char *text, size_t len, dev_t rdev, const char *source, char *where,
                         size_t cap);

/* Reads cmdline_path and returns its slot as inst_cmdline_slot() does;
 * FERRY_E_IO (or NOT_FOUND) when the file cannot be read. */
enum ferry_err inst_system_booted(const char *cmdline_path, enum edge_slot *out,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

/* FERRY_OK when `path` is not a mounted block device per mountinfo_path;
 * FERRY_E_BUSY "PATH is mounted at WHERE" when it is. Regular files and
 * other non-devices are never mounted in this sense. FERRY_E_IO when
 * mountinfo cannot be read (the caller must not write then). */
enum ferry_err inst_system_check_unmounted(const char *mountinfo_path, const char *path,
                                           struct ferry_diag *d) FERRY_MUST_CHECK;

/* Which of the two slot paths the mounted root ("/") lives on, per
 * mountinfo_path: *out is A, B, or NONE (neither slot is mounted at /). */
enum ferry_err inst_system_root_slot(const char *mountinfo_path, const char *const slot[2],
                                     enum edge_slot *out, struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
