/* Slots by path: the edge_slots_ops backend (edge_slots.h) for a Linux
 * device, whose two slots are block devices (/dev/mmcblk0p2) or files.
 *
 * Block device slot
 *   capacity   the device's size (BLKGETSIZE64), read once at open
 *   open_write checks /proc/self/mountinfo (injectable) and refuses a
 *              mounted device (FERRY_E_BUSY, naming where), then opens it
 *              O_EXCL, which the kernel also refuses for a mounted device;
 *              nothing is erased: the image overwrites it from offset 0
 *   write      pwrite at the block's offset
 *   sync       fsync of the device
 *   mark_invalid  closes the writer and leaves the bytes alone: a device
 *              may be the running root when a trial is rolled back, and the
 *              bootloader's "bad" state (inst_boot.h) is what keeps it from
 *              booting
 * File slot (created on the first write; its folder must exist)
 *   capacity   max_bytes
 *   open_write and mark_invalid truncate and fsync; a new file's name is
 *   made durable with an fsync of its folder; write/sync as above
 * Reads of either kind never create or open a slot exclusively, so the
 * running (mounted) slot can still be re-hashed.
 *
 * Records: records_dir/boot.0, boot.1 and boot.lkg, each replaced
 * atomically (ferry_write_atomic_io()).
 *
 * Every open, read, write, fsync, truncate and rename of a slot or a record
 * goes through the options' struct ferry_io (ferry_io.h; NULL: the
 * system's), so a test cuts the power at any one of them with
 * ferry_io_faulty.h (tests/unit/test_edge_powercut.c,
 * test_inst_powercut.c). Only the probe at open (stat, and BLKGETSIZE64 on
 * a device) goes to the kernel directly: it changes nothing. */
#ifndef FERRY_INST_SLOTS_PATH_H
#define FERRY_INST_SLOTS_PATH_H

#include "edge_slots.h"
#include "ferry_io.h"

#include <stdbool.h>

struct inst_slots_path_opts {
    const char *records_dir;   /* must exist */
    const char *slot[2];       /* A and B: block devices or files */
    uint64_t max_bytes;        /* capacity of a file slot, >= 1 */
    const char *mountinfo;     /* NULL: INST_MOUNTINFO_PATH */
    const struct ferry_io *io; /* NULL: the system's; borrowed, outlives the backend */
};

/* Checks the slots: each path is a block device, a regular file or
 * absent (a file to be), and the two are not the same device or file
 * (FERRY_E_INVALID_ARG naming them). Free with inst_slots_path_free(). */
enum ferry_err inst_slots_path_new(const struct inst_slots_path_opts *o,
                                   struct edge_slots_backend **out,
                                   struct ferry_diag *d) FERRY_MUST_CHECK;
void inst_slots_path_free(struct edge_slots_backend *b); /* NULL is fine */

/* The slot's path as given (static for the backend's life). */
const char *inst_slots_path_of(const struct edge_slots_backend *b, enum edge_slot slot);
/* True when the slot is a block device. */
bool inst_slots_path_is_device(const struct edge_slots_backend *b, enum edge_slot slot);

#endif
