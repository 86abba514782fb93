/* The fault-injecting driver of ferry_io.h, for tests: the one every
 * store's crash test uses, in the manner of MCUboot's flash simulator.
 *
 * It performs each operation on the real file system (a test's temporary
 * folder) and numbers the calls that may change it, from 0: open with
 * O_CREAT or O_TRUNC, pwrite, write, ftruncate, fsync, rename, unlink,
 * mkdir. Reads, plain opens and close are not numbered. Then it can:
 *
 * - stop the program at numbered call n (ferry_io_faulty_stop_at()): call
 *   n is not performed (see TORN below) and it and every later call fail
 *   with EIO ("the process is dead"), reads included; close still frees
 *   the descriptor. How it stops:
 *     FERRY_IO_KILL   kill -9: everything written stays (the page cache
 *                     outlives the process);
 *     FERRY_IO_POWER  a power cut that loses everything not durable
 *                     (ferry_io.h): every file changed since its last fsync
 *                     gets back the bytes and length it had then, and every
 *                     name created, replaced or removed since its folder's
 *                     last fsync is put back, newest first (a created file
 *                     or folder disappears, a renamed one returns to its
 *                     old name, a replaced or removed file returns with its
 *                     durable bytes);
 *     FERRY_IO_POWER_TORN  the same for names, but unsynced data half
 *                     reaches the disk: call n, when a write, writes the
 *                     first half of its bytes; each byte range written
 *                     since its file's last fsync keeps its first half and
 *                     holds garbage in the rest; lengths stay.
 *   A file the driver had not changed is durable as found.
 * - fail calls without stopping (ferry_io_faulty_fail()): calls of chosen
 *   kinds fail with an errno, starting after `after` of them passed, for
 *   `count` calls; or a write is cut short, or stores one flipped bit.
 * - run out of space (ferry_io_faulty_space()): writes may add that many
 *   more bytes, then fail with ENOSPC (the write that crosses it is short).
 *
 * Durability is simulated: fsync does not reach the disk (a test cuts the
 * power hundreds of times); it only makes data and names durable in the
 * model. Data is tracked by file (device and inode), through a descriptor
 * of the driver's own, so a file renamed or removed since is still put
 * back right. Memory: a copy of each changed file's durable bytes until
 * its next fsync, and of each replaced or removed file's until its
 * folder's next fsync; meant for test-sized files.
 *
 * A test then "reboots": it opens the store again from what the folder
 * holds, through the system's driver or a fresh faulty one. */
#ifndef FERRY_IO_FAULTY_H
#define FERRY_IO_FAULTY_H

#include "ferry_err.h"
#include "ferry_io.h"

#include <stdbool.h>
#include <stdint.h>

/* Kinds of call, for ferry_io_faulty_fail(): a mask of FERRY_IO_CALL(k). */
enum ferry_io_call {
    FERRY_IO_OPEN,
    FERRY_IO_PREAD,
    FERRY_IO_PWRITE, /* pwrite and write */
    FERRY_IO_FSYNC,
    FERRY_IO_FTRUNCATE,
    FERRY_IO_RENAME,
    FERRY_IO_UNLINK,
    FERRY_IO_MKDIR,
    FERRY_IO_CALL__COUNT
};
#define FERRY_IO_CALL(k)  (1u << (k))
#define FERRY_IO_ANY_CALL ((1u << FERRY_IO_CALL__COUNT) - 1)
#define FERRY_IO_NO_STOP  UINT64_MAX
#define FERRY_IO_FOR_EVER UINT64_MAX

enum ferry_io_stop {
    FERRY_IO_KILL,
    FERRY_IO_POWER,
    FERRY_IO_POWER_TORN,
};

/* How the failing calls of a rule fail. */
enum ferry_io_fail_how {
    FERRY_IO_FAIL_ERRNO,   /* -1 and the rule's errno, nothing done */
    FERRY_IO_FAIL_SHORT,   /* the first failing write writes half its bytes
                              and says so; the later ones fail with errno */
    FERRY_IO_FAIL_BITFLIP, /* writes succeed but store one bit flipped in
                              their middle byte (media damage) */
};

struct ferry_io_fail {
    unsigned calls; /* FERRY_IO_CALL() mask; 0: every kind */
    uint64_t after; /* matching calls that pass first */
    uint64_t count; /* then this many fail; FERRY_IO_FOR_EVER: all the rest */
    int error;      /* errno; 0: EIO */
    enum ferry_io_fail_how how;
};

struct ferry_io_faulty;

enum ferry_err ferry_io_faulty_new(struct ferry_io_faulty **out,
                                   struct ferry_diag *d) FERRY_MUST_CHECK;
/* Closes the driver's own descriptors; the model is dropped, the files stay
 * as they are. NULL is fine. */
void ferry_io_faulty_free(struct ferry_io_faulty *f);

/* The driver as an io; valid while f lives. */
const struct ferry_io *ferry_io_faulty_io(const struct ferry_io_faulty *f);

/* Stops the program at numbered call n (FERRY_IO_NO_STOP: never), counted
 * from the driver's creation. */
void ferry_io_faulty_stop_at(struct ferry_io_faulty *f, uint64_t n, enum ferry_io_stop how);
/* Stops it now, between calls (a power cut after the last call). */
void ferry_io_faulty_stop(struct ferry_io_faulty *f, enum ferry_io_stop how);
/* True once stopped. */
bool ferry_io_faulty_stopped(const struct ferry_io_faulty *f);
/* Numbered calls so far, the stopped one included; counting ends there. */
uint64_t ferry_io_faulty_calls(const struct ferry_io_faulty *f);
/* Calls of one kind so far, numbered or not (an fsync of a folder is an
 * FERRY_IO_FSYNC too), failed ones included. */
uint64_t ferry_io_faulty_count(const struct ferry_io_faulty *f, enum ferry_io_call kind);

/* Replaces the failure rule (counting its calls from now); NULL clears it. */
void ferry_io_faulty_fail(struct ferry_io_faulty *f, const struct ferry_io_fail *rule);
/* Bytes writes may still add (counted from now); -1: no limit. */
void ferry_io_faulty_space(struct ferry_io_faulty *f, int64_t bytes);

#endif
