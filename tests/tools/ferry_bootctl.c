/* ferry-bootctl: the bootloader verbs of ferry-edge's install engine
 * (inst_bootloader.h) from the command line, through the same backends
 * ferry-edge uses. For benches and tests that need "an environment Ferry
 * wrote" without a whole node, and for a board integrator checking a
 * fw_env.config or grubenv by hand:
 *
 *   ferry-bootctl --uboot FW_ENV_CONFIG | --grub GRUBENV | --custom PATH VERB [ARGS]
 *     get-primary | set-primary A|B N | get-state A|B | set-state A|B good|bad
 *     boot    (uboot, grub: run the boot script's algorithm once, print the slot)
 *
 * Exit 0 on success, 1 on an error (named on stderr), 2 on bad usage. */
#include "inst_bootcmd.h"
#include "inst_bootenv.h"
#include "inst_grubenv.h"
#include "inst_uboot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: ferry-bootctl --uboot FW_ENV_CONFIG | --grub GRUBENV | --custom PATH\n"
                    "       get-primary | set-primary A|B N | get-state A|B |\n"
                    "       set-state A|B good|bad | boot\n");
    return 2;
}

static bool slot_arg(const char *s, enum edge_slot *out)
{
    if (s && (strcmp(s, "A") == 0 || strcmp(s, "B") == 0)) {
        *out = s[0] == 'A' ? EDGE_SLOT_A : EDGE_SLOT_B;
        return true;
    }
    return false;
}

static enum ferry_err verb(const struct inst_bootloader *bl, struct inst_bootenv_bl *env, int argc,
                           char **argv, bool *bad_usage, struct ferry_diag *d)
{
    enum edge_slot slot = EDGE_SLOT_NONE;
    enum ferry_err err = FERRY_OK;
    const char *v = argv[0];
    *bad_usage = false;
    if (strcmp(v, "get-primary") == 0 && argc == 1) {
        err = bl->ops->get_primary(bl->ctx, &slot, d);
        if (err == FERRY_OK)
            printf("%s\n", edge_slot_name(slot));
    } else if (strcmp(v, "set-primary") == 0 && argc == 3 && slot_arg(argv[1], &slot)) {
        err = bl->ops->set_primary(bl->ctx, slot, (unsigned)strtoul(argv[2], NULL, 10), d);
    } else if (strcmp(v, "get-state") == 0 && argc == 2 && slot_arg(argv[1], &slot)) {
        bool good = false;
        err = bl->ops->get_state(bl->ctx, slot, &good, d);
        if (err == FERRY_OK)
            printf("%s\n", good ? "good" : "bad");
    } else if (strcmp(v, "set-state") == 0 && argc == 3 && slot_arg(argv[1], &slot) &&
               (strcmp(argv[2], "good") == 0 || strcmp(argv[2], "bad") == 0)) {
        err = bl->ops->set_state(bl->ctx, slot, argv[2][0] == 'g', d);
    } else if (strcmp(v, "boot") == 0 && argc == 1 && env) {
        err = inst_bootenv_boot(env, &slot, d);
        if (err == FERRY_OK)
            printf("%s\n", edge_slot_name(slot));
    } else {
        *bad_usage = true;
    }
    return err;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return usage();
    struct ferry_diag d = {{0}};
    struct inst_uboot *uboot = NULL;
    struct inst_grubenv *grub = NULL;
    struct inst_bootcmd *custom = NULL;
    struct inst_bootenv_bl *env = NULL;
    const struct inst_bootloader *bl = NULL;
    enum ferry_err err = FERRY_OK;
    const struct inst_env_store *store = NULL;
    if (strcmp(argv[1], "--uboot") == 0) {
        err = inst_uboot_open(argv[2], &uboot, &d);
        if (err == FERRY_OK)
            store = inst_uboot_store(uboot);
    } else if (strcmp(argv[1], "--grub") == 0) {
        err = inst_grubenv_open(argv[2], false, &grub, &d);
        if (err == FERRY_OK)
            store = inst_grubenv_store(grub);
    } else if (strcmp(argv[1], "--custom") == 0) {
        err = inst_bootcmd_new(argv[2], 30000, &custom, &d);
        if (err == FERRY_OK)
            bl = inst_bootcmd_bootloader(custom);
    } else {
        return usage();
    }
    struct inst_bootenv_opts o = {.name = argv[1] + 2};
    if (err == FERRY_OK && store)
        err = inst_bootenv_new(store, &o, &env, &d);
    if (err == FERRY_OK && env)
        bl = inst_bootenv_bootloader(env);
    bool bad_usage = false;
    if (err == FERRY_OK)
        err = verb(bl, env, argc - 3, argv + 3, &bad_usage, &d);
    inst_bootenv_free(env);
    inst_bootcmd_free(custom);
    inst_grubenv_free(grub);
    inst_uboot_free(uboot);
    if (bad_usage)
        return usage();
    if (err != FERRY_OK) {
        fprintf(stderr, "ferry-bootctl: %s\n", ferry_diag_str(&d, err));
        return 1;
    }
    return 0;
}
