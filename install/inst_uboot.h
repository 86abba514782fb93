/* U-Boot's environment as an environment store (inst_bootenv.h), through
 * libubootenv (the library SWUpdate uses; Debian's libubootenv-dev) and a
 * fw_env.config file that says where the environment lives: an MTD
 * partition, a raw offset on a block device, a UBI volume or a plain file,
 * in one copy or two (redundant: libubootenv writes the copy not in use,
 * then its flag, so a power cut leaves the other copy whole).
 *
 * load  opens the environment; the three variables as stored. An
 *       environment that fails its CRC (libuboot_open() says -ENODATA)
 *       reads as empty, as U-Boot then boots with its built-in one.
 * store sets the three variables (unset ones removed), keeps every other
 *       and writes the environment back (fsync'd by libubootenv). An
 *       environment that holds no variable at all is refused
 *       (FERRY_E_CORRUPT): writing it would leave U-Boot a valid
 *       environment without its own bootcmd. A board's environment is made
 *       once, with its bootcmd, by the board's image or by fw_setenv -f DEFAULTS
 *       (fw_setenv alone refuses a blank environment too).
 * Both take libubootenv's lock (/var/lock/fw_printenv.lock), as
 * fw_printenv and fw_setenv do. libubootenv does its own file and flash
 * I/O, outside ferry_io.h: the power-cut tests reach this store's writes
 * through a store of the same contract (tests/unit/test_inst_powercut.c),
 * and tests/integration/test_boot_uboot.sh runs the real library. */
#ifndef FERRY_INST_UBOOT_H
#define FERRY_INST_UBOOT_H

#include "ferry_err.h"
#include "inst_bootenv.h"

struct inst_uboot;

/* Reads fw_env_config (FERRY_E_INVALID_ARG naming it when libubootenv
 * refuses it) and checks that the environment can be read. */
enum ferry_err inst_uboot_open(const char *fw_env_config, struct inst_uboot **out,
                               struct ferry_diag *d) FERRY_MUST_CHECK;
void inst_uboot_free(struct inst_uboot *u); /* NULL is fine */
const struct inst_env_store *inst_uboot_store(const struct inst_uboot *u);

#endif
