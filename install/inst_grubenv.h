/* A GRUB environment block as an environment store (inst_bootenv.h): the
 * `grubenv` file that GRUB's load_env/save_env and grub-editenv read and
 * write, and the simulator's environment in ferry-edge's state folder.
 *
 * Format (GRUB's envblk): exactly 1024 bytes; the first line is
 * "# GRUB Environment Block"; then name=value lines, '\n'-terminated, in
 * which a backslash escapes the next byte (GRUB writes "\\\\" and "\\\n");
 * lines starting with '#' are comments; the rest is '#' padding.
 * Names are [A-Za-z0-9_]+.
 *
 * Store: reads the whole block (a missing file reads as empty when the
 * store was opened with create, an error otherwise); writes keep every
 * other variable and comment line in place, and replace the file
 * atomically (temporary file, fsync, rename, fsync of the folder) where
 * grub-editenv truncates it in place. GRUB itself only ever rewrites the
 * block in place (save_env), which a new inode of the same size allows.
 * A block whose variables no longer fit in 1024 bytes is refused
 * (FERRY_E_TOO_LARGE), the file unchanged.
 *
 * The store reads and writes the file through a struct ferry_io
 * (ferry_io.h; NULL: the system's), so a power-cut test numbers its writes
 * with the slots' (tests/unit/test_inst_powercut.c). grub-editenv, run by a
 * test or an operator, writes the same file outside it. */
#ifndef FERRY_INST_GRUBENV_H
#define FERRY_INST_GRUBENV_H

#include "ferry_err.h"
#include "ferry_io.h"
#include "inst_bootenv.h"

#include <stdbool.h>
#include <stddef.h>

#define INST_GRUBENV_SIZE 1024

/* Pure: the three variables of a block. FERRY_E_CORRUPT for a wrong size
 * or signature. */
enum ferry_err inst_grubenv_parse(const char *block, size_t len, struct inst_env_vars *out,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

/* Pure: the block with the three variables replaced (unset ones removed),
 * every other line kept, into out (INST_GRUBENV_SIZE bytes). `block` NULL
 * makes a new one. */
enum ferry_err inst_grubenv_update(const char *block, size_t len, const struct inst_env_vars *vars,
                                   char out[INST_GRUBENV_SIZE],
                                   struct ferry_diag *d) FERRY_MUST_CHECK;

struct inst_grubenv;

/* create: a missing file reads as an empty block and is made at the first
 * store (the simulator); otherwise it must exist (a board's grubenv is
 * made by its image: grub-editenv FILE create). */
enum ferry_err inst_grubenv_open(const char *path, bool create, struct inst_grubenv **out,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;
/* The same through io, which must outlive the store. */
enum ferry_err inst_grubenv_open_io(const struct ferry_io *io, const char *path, bool create,
                                    struct inst_grubenv **out,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;
void inst_grubenv_free(struct inst_grubenv *g); /* NULL is fine */
const struct inst_env_store *inst_grubenv_store(const struct inst_grubenv *g);

#endif
