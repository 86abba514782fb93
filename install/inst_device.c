#include "inst_device.h"

#include "ferry_log.h"
#include "inst_bootcmd.h"
#include "inst_bootenv.h"
#include "inst_grubenv.h"
#include "inst_slots_path.h"
#include "inst_uboot.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

struct inst_device {
    enum inst_bootloader_kind kind;
    struct edge_slots_backend *slots;
    struct inst_grubenv *grubenv; /* sim and grub */
    struct inst_uboot *uboot;
    struct inst_bootenv_bl *bootenv; /* sim, uboot and grub */
    struct inst_bootcmd *bootcmd;    /* custom */
    const struct inst_bootloader *bl;
    struct inst_engine *engine;
};

static enum ferry_err open_slots(struct inst_device *dev, const struct inst_device_opts *o,
                                 struct ferry_diag *d)
{
    if (!o->slot[0] && !o->slot[1])
        return edge_slots_file_new_io(o->io, o->state_dir, o->max_bytes, &dev->slots, d);
    if (!o->slot[0] || !o->slot[1])
        return ferry_fail(d, FERRY_E_INVALID_ARG, "slots: give both slot paths, or neither");
    struct inst_slots_path_opts so = {
        .records_dir = o->state_dir,
        .slot = {o->slot[0], o->slot[1]},
        .max_bytes = o->max_bytes,
        .mountinfo = o->mountinfo,
        .io = o->io,
    };
    return inst_slots_path_new(&so, &dev->slots, d);
}

static enum ferry_err open_bootloader(struct inst_device *dev, const struct inst_device_opts *o,
                                      struct ferry_diag *d)
{
    enum ferry_err err = FERRY_OK;
    char sim_env[PATH_MAX];
    const struct inst_env_store *store = NULL;
    switch (dev->kind) {
    case INST_BOOTLOADER_CUSTOM:
        if (!o->bootloader_cmd)
            return ferry_fail(d, FERRY_E_INVALID_ARG, "bootloader: custom needs its command");
        err = inst_bootcmd_new(o->bootloader_cmd, o->cmd_timeout_ms, &dev->bootcmd, d);
        if (err == FERRY_OK)
            dev->bl = inst_bootcmd_bootloader(dev->bootcmd);
        return err;
    case INST_BOOTLOADER_UBOOT:
        err = inst_uboot_open(o->uboot_env_config ? o->uboot_env_config : INST_DEVICE_FW_ENV,
                              &dev->uboot, d);
        if (err == FERRY_OK)
            store = inst_uboot_store(dev->uboot);
        break;
    case INST_BOOTLOADER_GRUB:
        err = inst_grubenv_open_io(o->io, o->grub_env ? o->grub_env : INST_DEVICE_GRUBENV, false,
                                   &dev->grubenv, d);
        if (err == FERRY_OK)
            store = inst_grubenv_store(dev->grubenv);
        break;
    case INST_BOOTLOADER_SIM:
        if ((size_t)snprintf(sim_env, sizeof(sim_env), "%s/%s", o->state_dir,
                             INST_DEVICE_SIM_ENV_FILE) >= sizeof(sim_env))
            return ferry_fail(d, FERRY_E_INVALID_ARG, "bootloader: state folder path too long");
        err = inst_grubenv_open_io(o->io, sim_env, true, &dev->grubenv, d);
        if (err == FERRY_OK)
            store = inst_grubenv_store(dev->grubenv);
        break;
    }
    struct inst_bootenv_opts bo = {
        .name = inst_bootloader_kind_name(dev->kind),
        .cmdline = o->kernel_cmdline,
        .mountinfo = o->mountinfo,
        .slot = {o->slot[0], o->slot[1]},
    };
    if (err == FERRY_OK)
        err = inst_bootenv_new(store, &bo, &dev->bootenv, d);
    if (err == FERRY_OK)
        dev->bl = inst_bootenv_bootloader(dev->bootenv);
    return err;
}

enum ferry_err inst_device_open(const struct inst_device_opts *o, struct inst_device **out,
                                struct ferry_diag *d)
{
    struct inst_device *dev = calloc(1, sizeof(*dev));
    if (!dev)
        return ferry_fail(d, FERRY_E_NOMEM, "install: out of memory");
    dev->kind = o->kind;
    enum ferry_err err = open_slots(dev, o, d);
    if (err == FERRY_OK)
        err = open_bootloader(dev, o, d);
    struct inst_engine_opts eo = {
        .slots = dev->slots,
        .boot = dev->bl,
        .mountinfo = o->mountinfo,
        .slot_path = {o->slot[0], o->slot[1]},
    };
    if (err == FERRY_OK)
        err = inst_engine_open(&eo, &dev->engine, d);
    if (err != FERRY_OK) {
        inst_device_free(dev);
        return err;
    }
    *out = dev;
    return FERRY_OK;
}

void inst_device_free(struct inst_device *dev)
{
    if (!dev)
        return;
    inst_engine_free(dev->engine);
    inst_bootenv_free(dev->bootenv);
    inst_bootcmd_free(dev->bootcmd);
    inst_grubenv_free(dev->grubenv);
    inst_uboot_free(dev->uboot);
    inst_slots_path_free(dev->slots);
    free(dev);
}

struct inst_engine *inst_device_engine(const struct inst_device *dev)
{
    return dev->engine;
}

enum inst_bootloader_kind inst_device_kind(const struct inst_device *dev)
{
    return dev->kind;
}

const struct edge_slots_backend *inst_device_slots(const struct inst_device *dev)
{
    return dev->slots;
}

const char *inst_device_slot_path(const struct inst_device *dev, enum edge_slot slot)
{
    return inst_slots_path_of(dev->slots, slot);
}

enum ferry_err inst_device_power_on(struct inst_device *dev, struct inst_engine_start *first,
                                    struct inst_engine_start *last, struct ferry_diag *d)
{
    if (dev->kind != INST_BOOTLOADER_SIM) {
        enum ferry_err err = inst_engine_start(dev->engine, first, d);
        if (err == FERRY_OK)
            *last = *first;
        return err;
    }
    for (int i = 0; i < 3; i++) {
        enum edge_slot booted = EDGE_SLOT_NONE;
        enum ferry_err err = inst_bootenv_boot(dev->bootenv, &booted, d);
        if (err == FERRY_OK)
            err = inst_engine_start(dev->engine, i == 0 ? first : last, d);
        if (err != FERRY_OK)
            return err;
        if (i == 0)
            *last = *first;
        if (!last->reboot)
            return FERRY_OK;
        ferry_log_info("simulated reboot: slot %s must not stay running", edge_slot_name(booted));
    }
    return ferry_fail(d, FERRY_E_IO, "boot: three reboots in a row did not settle");
}
