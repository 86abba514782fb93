/* A/B image slots: the storage interface an edge node's platform implements,
 * and the install / trial / confirm / rollback logic on top of it.
 *
 * Memory: nothing here holds an image. Blocks stream into a slot at their
 * own offset, and the final check re-reads the slot from storage in
 * EDGE_SLOTS_IO_CHUNK pieces on the stack.
 *
 * Life of an update (edge_boot.h has the state model):
 *   edge_slots_begin()      inactive slot forgotten in the boot state, then
 *                           marked invalid and erased on the device
 *   edge_slots_write() ...  blocks in any order, duplicates fine
 *                           (edge_slots_sync() + edge_slots_resume():
 *                           continue after a restart)
 *   edge_slots_finish()     sync, re-hash the whole slot from storage; only a
 *                           match records the image (still not bootable)
 *   edge_slots_set_trial()  the next boots try it, N attempts
 *   edge_slots_boot()       (every boot) decides the slot and spends one attempt
 *   edge_slots_confirm()    health check passed: the trial slot becomes the
 *                           confirmed one, then the anti-rollback counter moves
 *   edge_slots_rollback()   health check failed: back to the confirmed slot
 * Every step that changes the boot state stores it before returning, so a
 * power cut at any point leaves the old image or the new one bootable.
 */
#ifndef FERRY_EDGE_SLOTS_H
#define FERRY_EDGE_SLOTS_H

#include "edge_boot.h"
#include "ferry_err.h"
#include "ferry_io.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Read size of edge_slots_finish()/edge_slots_verify(): stack bytes, and the
 * largest read a backend is asked for. */
#ifndef EDGE_SLOTS_IO_CHUNK
#define EDGE_SLOTS_IO_CHUNK 512
#endif

/* What a platform implements: an MCU's two flash partitions, a Linux
 * device's partitions or files, U-Boot's environment for the records.
 * Every function returns FERRY_OK or an error with a message in d (which may
 * be NULL), and is called from one thread. `slot` is always A or B.
 *
 * Durability contract: data writes need not be durable before sync();
 * open_write(), sync(), mark_invalid() and record_write() are durable when
 * they return FERRY_OK. A power cut may lose or tear any data written since
 * the slot's last sync, and may tear the one record being written; the logic
 * here stays safe under exactly that (tests/unit/test_edge_powercut.c, which
 * cuts the file backend's power at every call with ferry_io_faulty.h, and
 * tears records written in place). */
struct edge_slots_ops {
    /* Largest image the slot can hold, in bytes (a flash partition's size
     * less any trailer the platform keeps). */
    enum ferry_err (*capacity)(void *ctx, enum edge_slot slot, uint64_t *out, struct ferry_diag *d);

    /* Prepares the slot for an image of `size` bytes (<= capacity): erase the
     * flash pages it needs, or truncate a file. Old contents are gone. */
    enum ferry_err (*open_write)(void *ctx, enum edge_slot slot, uint64_t size,
                                 struct ferry_diag *d);

    /* Writes len (1..EDGE_SLOTS_MAX_BLOCK) bytes at off. The same block may
     * come again at the same offset (duplicated radio blocks), so writing
     * identical bytes twice must be harmless: fine for files, and for NOR
     * flash, where programming the same bits again changes nothing. Blocks
     * come in any order and need not be aligned: a flash backend buffers a
     * partial page until sync. Different bytes at an already written offset
     * may leave anything there (the final hash catches it), but must never
     * touch other offsets or the other slot. */
    enum ferry_err (*write)(void *ctx, enum edge_slot slot, uint64_t off, const void *buf,
                            size_t len, struct ferry_diag *d);

    /* Reads exactly len bytes at off, from storage (after the writes since
     * the last sync: read-your-writes). FERRY_E_SIZE_MISMATCH when the slot
     * holds fewer bytes (a file backend's short file). */
    enum ferry_err (*read)(void *ctx, enum edge_slot slot, uint64_t off, void *buf, size_t len,
                           struct ferry_diag *d);

    /* Makes every write to the slot so far durable (fsync, page flush). */
    enum ferry_err (*sync)(void *ctx, enum edge_slot slot, struct ferry_diag *d);

    /* Makes the slot unbootable on the platform's own terms, before it is
     * overwritten: MCUboot erases the image trailer, U-Boot clears the
     * slot's env flag, a file backend truncates the image. The boot state is
     * what Ferry trusts; this is for a bootloader that does not read it. */
    enum ferry_err (*mark_invalid)(void *ctx, enum edge_slot slot, struct ferry_diag *d);

    /* Reads one boot record (edge_boot_rec) into buf (cap bytes, at least
     * EDGE_BOOT_REC_MAX) and its length into *len. FERRY_E_NOT_FOUND when
     * the record was never written (erased flash, missing file); any other
     * error aborts loading, since guessing past an unreadable copy could
     * pick an older state and then overwrite the newer one. Returning wrong
     * bytes is fine: the CRC catches them. */
    enum ferry_err (*record_read)(void *ctx, enum edge_boot_rec rec, void *buf, size_t cap,
                                  size_t *len, struct ferry_diag *d);

    /* Replaces one record with len (<= EDGE_BOOT_REC_MAX) bytes. Atomic
     * replacement is nice but not needed: the three records live in separate
     * erase units (files, flash sectors, env variables), and a torn record is
     * detected by its CRC while the other copy still holds the newest state. */
    enum ferry_err (*record_write)(void *ctx, enum edge_boot_rec rec, const void *buf, size_t len,
                                   struct ferry_diag *d);
};

/* A backend: its functions and the context they get. Plain value; whoever
 * made it frees it (edge_slots_file_free(), inst_slots_path_free()). */
struct edge_slots_backend {
    const struct edge_slots_ops *ops;
    void *ctx;
};

/* Largest block edge_slots_write() accepts (CoAP Block2 goes up to 1024). */
#define EDGE_SLOTS_MAX_BLOCK 65536

struct edge_slots;

/* Loads the boot state through the backend (edge_boot_select()). The handle
 * keeps a copy of *backend, which must outlive it. FERRY_E_IO (or the
 * backend's error) when a record cannot be read at all. */
enum ferry_err edge_slots_open(const struct edge_slots_backend *backend, struct edge_slots **out,
                               struct ferry_diag *d) FERRY_MUST_CHECK;
void edge_slots_free(struct edge_slots *s);

/* The state as last stored (or loaded). Valid until the next call on s. */
const struct edge_boot_state *edge_slots_state(const struct edge_slots *s);
/* Where edge_slots_open() found the state. */
enum edge_boot_source edge_slots_source(const struct edge_slots *s);

/* Starts writing *img (from a verified manifest) into the inactive slot.
 * Refused: FERRY_E_BUSY while a trial is pending, FERRY_E_DOWNGRADE when
 * img->seq is not above both the counter and the active image's seq,
 * FERRY_E_ARTIFACT_TOO_LARGE above the slot's capacity. A begin while an
 * install is under way starts over. */
enum ferry_err edge_slots_begin(struct edge_slots *s, const struct edge_image *img,
                                struct ferry_diag *d) FERRY_MUST_CHECK;

/* Writes one block of the image at its offset; FERRY_E_INVALID_ARG when no
 * install is under way or the block reaches past img->size. */
enum ferry_err edge_slots_write(struct edge_slots *s, uint64_t off, const void *buf, size_t len,
                                struct ferry_diag *d) FERRY_MUST_CHECK;

/* Syncs the slot and re-hashes img->size bytes of it from storage. On a
 * match the image is recorded as valid in the inactive slot (stored); on
 * FERRY_E_HASH_MISMATCH / FERRY_E_SIZE_MISMATCH the slot stays invalid and
 * the boot state unchanged. Either way the install is over. */
enum ferry_err edge_slots_finish(struct edge_slots *s, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Continues an install of *img into the inactive slot after a restart,
 * keeping what an earlier edge_slots_begin() for this same image wrote
 * there, so a download resumes instead of starting over. `written` is how
 * far the caller knows the slot holds the image (made durable with
 * edge_slots_sync() before it recorded that); it only seeds
 * edge_slots_progress(). The caller must know the slot was last begun for
 * this very image (it keeps the digest next to its offset): bytes past
 * `written` are then the image's own or erased, and edge_slots_finish()
 * re-hashes everything anyway. Refused like edge_slots_begin(), plus
 * FERRY_E_INVALID_ARG when the boot state records a finished image in that
 * slot (a begin never ran for this image: begin instead) or written >
 * img->size. Nothing is erased and no boot record is written. */
enum ferry_err edge_slots_resume(struct edge_slots *s, const struct edge_image *img,
                                 uint64_t written, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Makes the blocks of the install under way durable (the backend's sync),
 * so the caller may record how far it got. FERRY_E_INVALID_ARG when no
 * install is under way. */
enum ferry_err edge_slots_sync(struct edge_slots *s, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Drops an install under way; the slot stays invalid. */
void edge_slots_abort(struct edge_slots *s);

/* Bytes of the install under way up to the highest block end written (for
 * progress reports; duplicates and gaps make it a hint), 0 when idle. */
uint64_t edge_slots_progress(const struct edge_slots *s);

/* Puts the finished image on trial for `attempts` boots (edge_boot_set_trial()). */
enum ferry_err edge_slots_set_trial(struct edge_slots *s, unsigned attempts,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

/* The boot decision (edge_boot_decide()), stored before *slot is returned:
 * an attempt is spent, or an exhausted trial rolled back, before the image
 * runs. */
enum ferry_err edge_slots_boot(struct edge_slots *s, enum edge_slot *slot,
                               struct ferry_diag *d) FERRY_MUST_CHECK;

/* Stores `next`, a state a boot decision made from the current one
 * (inst_boot.h): it must pass edge_boot_check(). When it ends a trial, the
 * dropped slot is then marked invalid on the platform, as by a rollback. */
enum ferry_err edge_slots_replace(struct edge_slots *s, const struct edge_boot_state *next,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

/* After a passed health check on `running` (edge_boot_confirm()); then
 * rewrites the LKG record. */
enum ferry_err edge_slots_confirm(struct edge_slots *s, enum edge_slot running,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

/* After a failed health check (edge_boot_rollback()): *boot is the slot to
 * reboot into. */
enum ferry_err edge_slots_rollback(struct edge_slots *s, enum edge_slot *boot,
                                   struct ferry_diag *d) FERRY_MUST_CHECK;

/* Re-hashes a slot against what the boot state records for it (what a
 * bootloader checks before jumping). FERRY_E_NOT_FOUND when the slot holds
 * no valid image, FERRY_E_HASH_MISMATCH / FERRY_E_SIZE_MISMATCH on damage. */
enum ferry_err edge_slots_verify(struct edge_slots *s, enum edge_slot slot,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;

/* Adopts an image already present in `slot` (factory-flashed, or placed as
 * STATE/slot-a.img) after re-hashing it against *img: edge_boot_adopt(). */
enum ferry_err edge_slots_adopt(struct edge_slots *s, enum edge_slot slot,
                                const struct edge_image *img,
                                struct ferry_diag *d) FERRY_MUST_CHECK;

/* ---- File backend (edge_slots_file.c): the simulated node, tests, demo ----
 *
 * Slots by path (inst_slots_path.h) with everything in one folder:
 * DIR/slot-a.img, DIR/slot-b.img: the images, written in place with
 * pwrite, fsync on sync; open_write and mark_invalid truncate and fsync.
 * DIR/boot.0, DIR/boot.1, DIR/boot.lkg: the records, each replaced
 * atomically (temp file, fsync, rename, fsync folder: ferry_write_atomic),
 * so a record is never torn here (the logic would cope if it were).
 * DIR must exist. `capacity` caps each slot. A real device names its
 * partitions with inst_slots_path_new() instead. */
enum ferry_err edge_slots_file_new(const char *dir, uint64_t capacity,
                                   struct edge_slots_backend **out,
                                   struct ferry_diag *d) FERRY_MUST_CHECK;
/* The same through io (ferry_io.h; NULL: the system's), which must outlive
 * the backend: power-cut tests pass a ferry_io_faulty.h driver. */
enum ferry_err edge_slots_file_new_io(const struct ferry_io *io, const char *dir, uint64_t capacity,
                                      struct edge_slots_backend **out,
                                      struct ferry_diag *d) FERRY_MUST_CHECK;
void edge_slots_file_free(struct edge_slots_backend *b);

#endif
