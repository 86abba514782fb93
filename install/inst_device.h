/* A device's install stack, put together from its settings: the slots (by
 * path, or two files in the state folder), the bootloader (the simulator,
 * U-Boot, GRUB or a custom command) and the engine over both
 * (inst_engine.h). Every program that updates the device it runs on opens
 * one: ferry-edge for a node, ferry-gateway for itself (--self-product).
 *
 * The simulator ("sim") keeps its environment in STATE/bootenv and plays
 * the bootloader itself at power-on (inst_device_power_on()): the boot
 * script runs on that environment, then the engine's boot step, again while
 * the plan asks for a reboot (at most three times). A real bootloader has
 * already run: power-on is the engine's boot step alone.
 *
 * Not thread-safe. Owns everything it opens; inst_device_free() closes it. */
#ifndef FERRY_INST_DEVICE_H
#define FERRY_INST_DEVICE_H

#include "edge_slots.h"
#include "ferry_err.h"
#include "ferry_io.h"
#include "inst_bootloader.h"
#include "inst_engine.h"

#include <stdint.h>

#define INST_DEVICE_SIM_ENV_FILE "bootenv"
#define INST_DEVICE_FW_ENV       "/etc/fw_env.config"
#define INST_DEVICE_GRUBENV      "/boot/grub/grubenv"

struct inst_device_opts {
    const char *state_dir; /* boot records, the simulator's environment; must exist */
    const char *slot[2];   /* A and B; both NULL: STATE/slot-a.img and slot-b.img */
    uint64_t max_bytes;    /* capacity of a file slot */
    enum inst_bootloader_kind kind;
    const char *uboot_env_config; /* uboot: NULL for INST_DEVICE_FW_ENV */
    const char *grub_env;         /* grub: NULL for INST_DEVICE_GRUBENV */
    const char *bootloader_cmd;   /* custom: the program */
    uint64_t cmd_timeout_ms;      /* custom: per verb */
    const char *kernel_cmdline;   /* NULL: INST_CMDLINE_PATH (tests inject theirs) */
    const char *mountinfo;        /* NULL: INST_MOUNTINFO_PATH */
    /* Files Ferry writes itself (slots, records, a GRUB or simulated
     * environment) go through it (ferry_io.h); NULL: the system's. */
    const struct ferry_io *io;
};

struct inst_device;

/* Opens the slots, the bootloader and the engine; nothing is booted yet.
 * Errors name the part at fault (a slot path, the environment file, the
 * command). Strings in o are copied or used only during the call. */
enum ferry_err inst_device_open(const struct inst_device_opts *o, struct inst_device **out,
                                struct ferry_diag *d) FERRY_MUST_CHECK;
void inst_device_free(struct inst_device *dev); /* NULL is fine */

struct inst_engine *inst_device_engine(const struct inst_device *dev);
enum inst_bootloader_kind inst_device_kind(const struct inst_device *dev);
const struct edge_slots_backend *inst_device_slots(const struct inst_device *dev);
/* The slot's path (a device, or a file), for messages and helpers. */
const char *inst_device_slot_path(const struct inst_device *dev, enum edge_slot slot);

/* The boot step of a power-on (see above). first: what the first boot
 * step found; last: where the (simulated) reboots settled, equal to first
 * without one. last->reboot set: a real bootloader must reboot now. */
enum ferry_err inst_device_power_on(struct inst_device *dev, struct inst_engine_start *first,
                                    struct inst_engine_start *last,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
