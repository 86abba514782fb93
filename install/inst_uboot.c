#include "inst_uboot.h"

#include <errno.h>
#include <libuboot.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct inst_uboot {
    struct inst_env_store store;
    char config[PATH_MAX];
    struct uboot_ctx *ctx;
};

/* Opens the environment (libubootenv's lock held until libuboot_close(),
 * which must follow whatever this returns). *valid false: it fails its CRC
 * (libubootenv says -ENODATA), and holds no variables. */
static enum ferry_err open_env(struct inst_uboot *u, bool *valid, struct ferry_diag *d)
{
    int r = libuboot_open(u->ctx);
    *valid = r == 0;
    if (r < 0 && r != -ENODATA)
        return ferry_fail(d, FERRY_E_IO, "U-Boot environment (%s): cannot be read: %s", u->config,
                          strerror(-r));
    return FERRY_OK;
}

static enum ferry_err ub_load(void *ctx, struct inst_env_vars *out, struct ferry_diag *d)
{
    struct inst_uboot *u = ctx;
    bool valid = false;
    enum ferry_err err = open_env(u, &valid, d);
    memset(out, 0, sizeof(*out));
    for (int i = 0; err == FERRY_OK && valid && i < INST_ENV_NVARS; i++) {
        char *v = libuboot_get_env(u->ctx, INST_ENV_NAMES[i]);
        if (v) {
            snprintf(out->val[i], sizeof(out->val[i]), "%s", v);
            out->set[i] = true;
            free(v);
        }
    }
    libuboot_close(u->ctx);
    return err;
}

static enum ferry_err ub_store(void *ctx, const struct inst_env_vars *vars, struct ferry_diag *d)
{
    struct inst_uboot *u = ctx;
    bool valid = false;
    enum ferry_err err = open_env(u, &valid, d);
    if (err == FERRY_OK && (!valid || !libuboot_iterator(u->ctx, NULL)))
        err = ferry_fail(d, FERRY_E_CORRUPT,
                         "U-Boot environment (%s): empty or failing its CRC; refusing to write "
                         "it (U-Boot would lose its own variables): restore it first",
                         u->config);
    if (err != FERRY_OK) {
        libuboot_close(u->ctx);
        return err;
    }
    int r = 0;
    for (int i = 0; i < INST_ENV_NVARS && r == 0; i++)
        r = libuboot_set_env(u->ctx, INST_ENV_NAMES[i], vars->set[i] ? vars->val[i] : NULL);
    if (r == 0)
        r = libuboot_env_store(u->ctx);
    libuboot_close(u->ctx);
    if (r != 0)
        return ferry_fail(d, FERRY_E_IO, "U-Boot environment (%s): cannot be written (error %d)",
                          u->config, r);
    return FERRY_OK;
}

static const struct inst_env_ops UBOOT_OPS = {.load = ub_load, .store = ub_store};

enum ferry_err inst_uboot_open(const char *fw_env_config, struct inst_uboot **out,
                               struct ferry_diag *d)
{
    if (!fw_env_config || !fw_env_config[0] || strlen(fw_env_config) >= PATH_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "U-Boot: fw_env.config path missing or too long");
    struct inst_uboot *u = calloc(1, sizeof(*u));
    if (!u)
        return ferry_fail(d, FERRY_E_NOMEM, "U-Boot: out of memory");
    snprintf(u->config, sizeof(u->config), "%s", fw_env_config);
    u->store.ops = &UBOOT_OPS;
    u->store.ctx = u;
    enum ferry_err err = FERRY_OK;
    if (libuboot_initialize(&u->ctx, NULL) < 0)
        err = ferry_fail(d, FERRY_E_NOMEM, "U-Boot: libubootenv could not start");
    else if (libuboot_read_config(u->ctx, fw_env_config) < 0)
        err = ferry_fail(d, FERRY_E_INVALID_ARG,
                         "%s: not a fw_env.config libubootenv accepts (a missing file, a device "
                         "that does not exist, or a bad line)",
                         fw_env_config);
    struct inst_env_vars probe;
    if (err == FERRY_OK)
        err = ub_load(u, &probe, d);
    if (err != FERRY_OK) {
        inst_uboot_free(u);
        return err;
    }
    *out = u;
    return FERRY_OK;
}

void inst_uboot_free(struct inst_uboot *u)
{
    if (!u)
        return;
    if (u->ctx)
        libuboot_exit(u->ctx);
    free(u);
}

const struct inst_env_store *inst_uboot_store(const struct inst_uboot *u)
{
    return &u->store;
}
