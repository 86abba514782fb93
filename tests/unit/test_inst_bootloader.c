/* The bootloader port (inst_bootloader.h) and its backends: the variable
 * scheme and boot script (inst_bootenv.h) in memory, GRUB's environment
 * block read back by grub-editenv, U-Boot's environment through
 * libubootenv read back by fw_printenv, and the custom backend driving
 * deploy/custom/ferry-bootloader-example, whose verbs must agree with the
 * scheme's over a random walk. */
#include "cunit_main.h"

#include "ferry_fs.h"
#include "inst_bootcmd.h"
#include "inst_bootenv.h"
#include "inst_grubenv.h"
#include "inst_uboot.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define A EDGE_SLOT_A
#define B EDGE_SLOT_B

static struct inst_bootenv env_of(const char *order, unsigned a, unsigned b)
{
    struct inst_env_vars v;
    memset(&v, 0, sizeof(v));
    v.set[0] = order != NULL;
    snprintf(v.val[0], sizeof(v.val[0]), "%s", order ? order : "");
    v.set[1] = v.set[2] = true;
    snprintf(v.val[1], sizeof(v.val[1]), "%u", a);
    snprintf(v.val[2], sizeof(v.val[2]), "%u", b);
    struct inst_bootenv env;
    inst_bootenv_from_vars(&v, &env);
    return env;
}

static void scheme_reads_defaults_and_garbage_as_the_scripts_do(void)
{
    struct inst_env_vars none;
    memset(&none, 0, sizeof(none));
    struct inst_bootenv env;
    inst_bootenv_from_vars(&none, &env);
    CU_ASSERT_EQUAL(env.norder, 2);
    CU_ASSERT_EQUAL(env.order[0], A);
    CU_ASSERT_EQUAL(env.left[A], INST_BOOT_GOOD_ATTEMPTS);
    CU_ASSERT_EQUAL(env.left[B], INST_BOOT_GOOD_ATTEMPTS);
    env = env_of("B  x A B", 2, 0);
    CU_ASSERT_EQUAL(env.norder, 2);
    CU_ASSERT_EQUAL(env.order[0], B);
    CU_ASSERT_EQUAL(env.order[1], A);
    CU_ASSERT_EQUAL(inst_bootenv_primary(&env), A); /* B has no attempts */
    struct inst_env_vars v;
    memset(&v, 0, sizeof(v));
    v.set[0] = v.set[1] = true;
    snprintf(v.val[1], sizeof(v.val[1]), "3x");
    inst_bootenv_from_vars(&v, &env);
    CU_ASSERT_EQUAL(env.norder, 0);
    CU_ASSERT_EQUAL(env.left[A], 0);
    CU_ASSERT_EQUAL(env.left[B], INST_BOOT_GOOD_ATTEMPTS);
    CU_ASSERT_EQUAL(inst_bootenv_primary(&env), EDGE_SLOT_NONE);
    /* Round trip. */
    env = env_of("B A", 1, 3);
    inst_bootenv_to_vars(&env, &v);
    CU_ASSERT_STRING_EQUAL(v.val[0], "B A");
    CU_ASSERT_STRING_EQUAL(v.val[1], "1");
    CU_ASSERT_STRING_EQUAL(v.val[2], "3");
}

static void boot_script_spends_attempts_then_falls_back(void)
{
    struct inst_bootenv env = env_of("A B", 3, 3);
    inst_bootenv_set_primary(&env, B, 2);
    CU_ASSERT_EQUAL(inst_bootenv_primary(&env), B);
    CU_ASSERT_TRUE(inst_bootenv_good(&env, A)); /* the fallback stays */
    CU_ASSERT_EQUAL(inst_bootenv_decide(&env), B);
    CU_ASSERT_EQUAL(inst_bootenv_decide(&env), B);
    CU_ASSERT_EQUAL(env.left[B], 0);
    CU_ASSERT_FALSE(inst_bootenv_good(&env, B));
    CU_ASSERT_EQUAL(inst_bootenv_decide(&env), A); /* B never confirmed */
    CU_ASSERT_EQUAL(env.left[A], 2);
    /* Marked bad, a slot leaves the order; good brings it back with 3. */
    inst_bootenv_set_state(&env, B, false);
    CU_ASSERT_EQUAL(env.norder, 1);
    inst_bootenv_set_primary(&env, B, 1);
    CU_ASSERT_EQUAL(env.norder, 2); /* A was in the order: it stays the fallback */
    inst_bootenv_set_state(&env, A, false);
    inst_bootenv_set_primary(&env, B, 1);
    CU_ASSERT_EQUAL(env.norder, 1); /* A was not */
    inst_bootenv_set_state(&env, A, true);
    CU_ASSERT_EQUAL(env.order[1], A);
    CU_ASSERT_EQUAL(env.left[A], INST_BOOT_GOOD_ATTEMPTS);
    /* Nothing left anywhere: every slot in the order gets its attempts back. */
    env = env_of("B", 0, 0);
    CU_ASSERT_EQUAL(inst_bootenv_decide(&env), B);
    CU_ASSERT_EQUAL(env.left[B], INST_BOOT_GOOD_ATTEMPTS - 1);
    CU_ASSERT_EQUAL(env.left[A], 0);
    env = env_of("", 0, 0);
    CU_ASSERT_EQUAL(inst_bootenv_decide(&env), A);
    CU_ASSERT_EQUAL(env.norder, 2);
}

static void verbs_over_a_store_write_only_changes(void)
{
    struct inst_env_mem mem;
    inst_env_mem_init(&mem);
    struct inst_bootenv_opts o = {.name = "test", .cmdline = "/nonexistent/cmdline"};
    struct inst_bootenv_bl *bl = NULL;
    CU_ASSERT_EQUAL_FATAL(inst_bootenv_new(&mem.store, &o, &bl, NULL), FERRY_OK);
    const struct inst_bootloader *p = inst_bootenv_bootloader(bl);
    enum edge_slot s = EDGE_SLOT_NONE;
    bool good = false;
    CU_ASSERT_EQUAL(p->ops->get_primary(p->ctx, &s, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(s, A);
    /* A good slot with its full attempts is already what "good" means. */
    CU_ASSERT_EQUAL(p->ops->set_state(p->ctx, A, true, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(mem.stores, 0);
    CU_ASSERT_EQUAL(p->ops->set_state(p->ctx, B, false, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(mem.stores, 1);
    CU_ASSERT_STRING_EQUAL(mem.vars.val[0], "A");
    CU_ASSERT_EQUAL(p->ops->set_state(p->ctx, B, false, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(mem.stores, 1);
    CU_ASSERT_EQUAL(p->ops->set_primary(p->ctx, B, 2, NULL), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(mem.vars.val[0], "B A");
    CU_ASSERT_STRING_EQUAL(mem.vars.val[2], "2");
    CU_ASSERT_EQUAL(p->ops->get_state(p->ctx, B, &good, NULL), FERRY_OK);
    CU_ASSERT_TRUE(good);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(p->ops->set_primary(p->ctx, B, 0, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(p->ops->set_primary(p->ctx, EDGE_SLOT_NONE, 1, &d), FERRY_E_INVALID_ARG);
    /* Nobody booted yet and nothing on the command line: a clear error. */
    CU_ASSERT_NOT_EQUAL(p->ops->get_booted(p->ctx, &s, &d), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "/nonexistent/cmdline"));
    /* Playing the bootloader: B once, then it answers get-booted. */
    CU_ASSERT_EQUAL(inst_bootenv_boot(bl, &s, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(s, B);
    CU_ASSERT_STRING_EQUAL(mem.vars.val[2], "1");
    CU_ASSERT_EQUAL(p->ops->get_booted(p->ctx, &s, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(s, B);
    inst_bootenv_free(bl);
}

static void booted_slot_comes_from_the_command_line_or_the_root_mount(void)
{
    char cmdline[PATH_MAX], mi[PATH_MAX];
    snprintf(cmdline, sizeof(cmdline), "%s/cmdline-bl", ferry_test_tmpdir());
    snprintf(mi, sizeof(mi), "%s/mountinfo-bl", ferry_test_tmpdir());
    const char *text = "quiet ferry.slot=B\n";
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(cmdline, text, strlen(text), 0644, NULL), FERRY_OK);
    struct inst_env_mem mem;
    inst_env_mem_init(&mem);
    struct inst_bootenv_opts o = {
        .name = "uboot", .cmdline = cmdline, .mountinfo = mi, .slot = {"/dev/x1", "/dev/x2"}};
    struct inst_bootenv_bl *bl = NULL;
    CU_ASSERT_EQUAL_FATAL(inst_bootenv_new(&mem.store, &o, &bl, NULL), FERRY_OK);
    const struct inst_bootloader *p = inst_bootenv_bootloader(bl);
    enum edge_slot s = EDGE_SLOT_NONE;
    CU_ASSERT_EQUAL(p->ops->get_booted(p->ctx, &s, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(s, B);
    /* No ferry.slot=, and no slot mounted at /: say so. */
    text = "quiet\n";
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(cmdline, text, strlen(text), 0644, NULL), FERRY_OK);
    text = "26 1 1:1 / / rw - ext4 /dev/other rw\n";
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(mi, text, strlen(text), 0644, NULL), FERRY_OK);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(p->ops->get_booted(p->ctx, &s, &d), FERRY_E_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "cannot tell which slot booted"));
    text = "quiet ferry.slot=Z\n";
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(cmdline, text, strlen(text), 0644, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(p->ops->get_booted(p->ctx, &s, &d), FERRY_E_MALFORMED);
    inst_bootenv_free(bl);
}

/* ---- real tools ------------------------------------------------------------------- */

/* Runs a shell command and returns its stdout (static buffer). */
static const char *sh(const char *fmt, ...) FERRY_PRINTF(1, 2);
static const char *sh(const char *fmt, ...)
{
    static char out[8192];
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    out[0] = '\0';
    FILE *f = popen(cmd, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    size_t n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    CU_ASSERT_EQUAL(pclose(f), 0);
    return out;
}

static void grub_environment_block_is_read_back_by_grub_editenv(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/grubenv", ferry_test_tmpdir());
    /* Made by GRUB's own tool, with a variable of someone else's carrying
     * both escapes GRUB knows. */
    sh("grub-editenv '%s' create && grub-editenv '%s' set saved_entry=linux 'odd=a\\b' "
       "BOOT_A_LEFT=1",
       path, path);
    struct inst_grubenv *g = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(inst_grubenv_open(path, false, &g, &d), FERRY_OK);
    struct inst_bootenv_opts o = {.name = "grub"};
    struct inst_bootenv_bl *bl = NULL;
    CU_ASSERT_EQUAL_FATAL(inst_bootenv_new(inst_grubenv_store(g), &o, &bl, NULL), FERRY_OK);
    const struct inst_bootloader *p = inst_bootenv_bootloader(bl);
    bool good = true;
    CU_ASSERT_EQUAL(p->ops->get_state(p->ctx, A, &good, NULL), FERRY_OK);
    CU_ASSERT_TRUE(good); /* BOOT_A_LEFT=1, BOOT_ORDER absent: "A B" */
    CU_ASSERT_EQUAL(p->ops->set_primary(p->ctx, B, 2, &d), FERRY_OK);
    const char *list = sh("grub-editenv '%s' list", path);
    CU_ASSERT_PTR_NOT_NULL(strstr(list, "BOOT_ORDER=B A\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(list, "BOOT_B_LEFT=2\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(list, "BOOT_A_LEFT=1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(list, "saved_entry=linux\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(list, "odd=a\\b\n"));
    CU_ASSERT_STRING_EQUAL(sh("stat -c %%s '%s'", path), "1024\n");
    /* And what grub-editenv writes, the store reads. */
    sh("grub-editenv '%s' set BOOT_ORDER=A BOOT_B_LEFT=0", path);
    enum edge_slot s = EDGE_SLOT_NONE;
    CU_ASSERT_EQUAL(p->ops->get_primary(p->ctx, &s, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(s, A);
    CU_ASSERT_EQUAL(p->ops->get_state(p->ctx, B, &good, NULL), FERRY_OK);
    CU_ASSERT_FALSE(good);
    inst_bootenv_free(bl);
    inst_grubenv_free(g);

    /* A block too full for the variables is left alone. */
    char big[820];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    sh("grub-editenv '%s' set BOOT_ORDER= filler=%s", path, big);
    CU_ASSERT_EQUAL_FATAL(inst_grubenv_open(path, false, &g, NULL), FERRY_OK);
    struct inst_env_vars v;
    memset(&v, 0, sizeof(v));
    for (int i = 0; i < INST_ENV_NVARS; i++) {
        v.set[i] = true;
        snprintf(v.val[i], sizeof(v.val[i]), "%031d", 7);
    }
    const struct inst_env_store *st = inst_grubenv_store(g);
    CU_ASSERT_EQUAL(st->ops->store(st->ctx, &v, &d), FERRY_E_TOO_LARGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(sh("grub-editenv '%s' list", path), "filler=xxx"));
    inst_grubenv_free(g);
    /* Not a block at all. */
    sh("echo hello > '%s'", path);
    CU_ASSERT_EQUAL(inst_grubenv_open(path, false, &g, &d), FERRY_E_CORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, path));
    CU_ASSERT_EQUAL(inst_grubenv_open("/nonexistent/grubenv", false, &g, &d), FERRY_E_NOT_FOUND);
}

/* An environment file of 16 KiB (or two: redundant) and its fw_env.config. */
static void make_uboot_env(const char *name, bool redundant, char config[PATH_MAX])
{
    const char *tmp = ferry_test_tmpdir();
    snprintf(config, PATH_MAX, "%s/%s.config", tmp, name);
    sh("truncate -s 16K '%s/%s.env0' '%s/%s.env1'", tmp, name, tmp, name);
    char text[1024];
    int n = snprintf(text, sizeof(text),
                     "# a file stands in for the flash\n%s/%s.env0 0x0 0x4000\n", tmp, name);
    if (redundant)
        snprintf(text + n, sizeof(text) - (size_t)n, "%s/%s.env1 0x0 0x4000\n", tmp, name);
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(config, text, strlen(text), 0644, NULL), FERRY_OK);
}

static void uboot_environment_is_read_back_by_fw_printenv(void)
{
    for (int redundant = 0; redundant < 2; redundant++) {
        char config[PATH_MAX];
        make_uboot_env(redundant ? "redund" : "single", redundant, config);
        struct inst_uboot *u = NULL;
        struct ferry_diag d = {{0}};
        CU_ASSERT_EQUAL_FATAL(inst_uboot_open(config, &u, &d), FERRY_OK);
        struct inst_bootenv_opts o = {.name = "uboot"};
        struct inst_bootenv_bl *bl = NULL;
        CU_ASSERT_EQUAL_FATAL(inst_bootenv_new(inst_uboot_store(u), &o, &bl, NULL), FERRY_OK);
        const struct inst_bootloader *p = inst_bootenv_bootloader(bl);
        /* A blank environment is not written: U-Boot would lose its bootcmd. */
        CU_ASSERT_EQUAL(p->ops->set_state(p->ctx, B, false, &d), FERRY_E_CORRUPT);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "refusing"));
        /* The board's environment, made by the board's tools. */
        sh("printf 'bootcmd=run ferry_boot\\n' > '%s.default' && "
           "fw_setenv -c '%s' -f '%s.default' BOOT_A_LEFT 2",
           config, config, config);
        CU_ASSERT_EQUAL(p->ops->set_primary(p->ctx, B, 1, &d), FERRY_OK);
        const char *out = sh("fw_printenv -c '%s'", config);
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "BOOT_ORDER=B A\n"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "BOOT_B_LEFT=1\n"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "BOOT_A_LEFT=2\n"));
        CU_ASSERT_PTR_NOT_NULL(strstr(out, "bootcmd=run ferry_boot\n"));
        /* What fw_setenv writes (the U-Boot script's decrement), Ferry reads. */
        sh("fw_setenv -c '%s' BOOT_B_LEFT 0", config);
        enum edge_slot s = EDGE_SLOT_NONE;
        CU_ASSERT_EQUAL(p->ops->get_primary(p->ctx, &s, NULL), FERRY_OK);
        CU_ASSERT_EQUAL(s, A);
        CU_ASSERT_EQUAL(p->ops->set_state(p->ctx, B, false, &d), FERRY_OK);
        CU_ASSERT_EQUAL(p->ops->set_state(p->ctx, A, true, &d), FERRY_OK);
        out = sh("fw_printenv -c '%s' BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT", config);
        CU_ASSERT_STRING_EQUAL(out, "BOOT_ORDER=A\nBOOT_A_LEFT=3\nBOOT_B_LEFT=0\n");
        inst_bootenv_free(bl);
        inst_uboot_free(u);
    }
    struct inst_uboot *u = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(inst_uboot_open("/nonexistent/fw_env.config", &u, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "/nonexistent/fw_env.config"));
}

/* ---- the custom backend against the example script ------------------------------------ */

static const char *example_script(void)
{
    static char path[PATH_MAX];
    const char *src = getenv("FERRY_SOURCE_DIR");
    snprintf(path, sizeof(path), "%s/deploy/custom/ferry-bootloader-example", src ? src : ".");
    return path;
}

static uint64_t rng = 0x2545F4914F6CDD1DULL;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static void custom_backend_agrees_with_the_scheme(void)
{
    char state[PATH_MAX], env[PATH_MAX + 32];
    snprintf(state, sizeof(state), "%s/custom-bl.state", ferry_test_tmpdir());
    snprintf(env, sizeof(env), "FERRY_BOOTLOADER_STATE=%s", state);
    CU_ASSERT_EQUAL_FATAL(putenv(env), 0);
    CU_ASSERT_EQUAL_FATAL(setenv("FERRY_CMDLINE", "/nonexistent/cmdline", 1), 0);
    struct inst_bootcmd *bc = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(inst_bootcmd_new(example_script(), 10000, &bc, &d), FERRY_OK);
    const struct inst_bootloader *p = inst_bootcmd_bootloader(bc);
    struct inst_env_mem mem;
    inst_env_mem_init(&mem);
    struct inst_bootenv_opts o = {.name = "model"};
    struct inst_bootenv_bl *model = NULL;
    CU_ASSERT_EQUAL_FATAL(inst_bootenv_new(&mem.store, &o, &model, NULL), FERRY_OK);
    const struct inst_bootloader *m = inst_bootenv_bootloader(model);
    for (int step = 0; step < 60; step++) {
        enum edge_slot slot = rnd(2) ? B : A;
        unsigned verb = rnd(4);
        if (verb == 0) {
            unsigned n = 1 + rnd(3);
            CU_ASSERT_EQUAL(p->ops->set_primary(p->ctx, slot, n, &d), FERRY_OK);
            CU_ASSERT_EQUAL(m->ops->set_primary(m->ctx, slot, n, NULL), FERRY_OK);
        } else if (verb == 1) {
            bool good = rnd(2);
            CU_ASSERT_EQUAL(p->ops->set_state(p->ctx, slot, good, &d), FERRY_OK);
            CU_ASSERT_EQUAL(m->ops->set_state(m->ctx, slot, good, NULL), FERRY_OK);
        } else {
            /* A boot, by the script's firmware stand-in and by the model. */
            enum edge_slot want = EDGE_SLOT_NONE, got = EDGE_SLOT_NONE;
            CU_ASSERT_EQUAL(inst_bootenv_boot(model, &want, NULL), FERRY_OK);
            const char *ans = sh("'%s' boot", example_script());
            got = ans[0] == 'A' ? A : ans[0] == 'B' ? B : EDGE_SLOT_NONE;
            CU_ASSERT_EQUAL(got, want);
            CU_ASSERT_EQUAL(p->ops->get_booted(p->ctx, &got, &d), FERRY_OK);
            CU_ASSERT_EQUAL(got, want);
        }
        enum edge_slot pp = EDGE_SLOT_NONE, mp = EDGE_SLOT_NONE;
        CU_ASSERT_EQUAL(p->ops->get_primary(p->ctx, &pp, &d), FERRY_OK);
        CU_ASSERT_EQUAL(m->ops->get_primary(m->ctx, &mp, NULL), FERRY_OK);
        CU_ASSERT_EQUAL(pp, mp);
        for (int s = 0; s < 2; s++) {
            bool pg = false, mg = false;
            CU_ASSERT_EQUAL(p->ops->get_state(p->ctx, (enum edge_slot)s, &pg, &d), FERRY_OK);
            CU_ASSERT_EQUAL(m->ops->get_state(m->ctx, (enum edge_slot)s, &mg, NULL), FERRY_OK);
            CU_ASSERT_EQUAL(pg, mg);
        }
    }
    inst_bootenv_free(model);
    inst_bootcmd_free(bc);
    unsetenv("FERRY_BOOTLOADER_STATE");
    unsetenv("FERRY_CMDLINE");
}

static void custom_backend_errors_name_the_verb(void)
{
    char script[PATH_MAX];
    snprintf(script, sizeof(script), "%s/bad-bootloader", ferry_test_tmpdir());
    const char *text = "#!/bin/sh\n"
                       "case $1 in\n"
                       "get-booted) echo C ;;\n"
                       "get-primary) echo none ;;\n"
                       "get-state) echo maybe ;;\n"
                       "set-state) exit 3 ;;\n"
                       "set-primary) sleep 5 ;;\n"
                       "esac\n";
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(script, text, strlen(text), 0755, NULL), FERRY_OK);
    struct inst_bootcmd *bc = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(inst_bootcmd_new(script, 500, &bc, &d), FERRY_OK);
    const struct inst_bootloader *p = inst_bootcmd_bootloader(bc);
    enum edge_slot s = A;
    bool good = false;
    CU_ASSERT_EQUAL(p->ops->get_booted(p->ctx, &s, &d), FERRY_E_PROTOCOL);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "get-booted answered 'C'"));
    CU_ASSERT_EQUAL(p->ops->get_primary(p->ctx, &s, &d), FERRY_OK);
    CU_ASSERT_EQUAL(s, EDGE_SLOT_NONE);
    CU_ASSERT_EQUAL(p->ops->get_state(p->ctx, B, &good, &d), FERRY_E_PROTOCOL);
    CU_ASSERT_EQUAL(p->ops->set_state(p->ctx, B, true, &d), FERRY_E_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "set-state B: exit 3"));
    CU_ASSERT_EQUAL(p->ops->set_primary(p->ctx, B, 1, &d), FERRY_E_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "timed out"));
    inst_bootcmd_free(bc);
    CU_ASSERT_EQUAL(inst_bootcmd_new("/nonexistent/tool", 500, &bc, &d), FERRY_E_INVALID_ARG);
}

const char *const ferry_suite_name = "inst_bootloader";
const struct ferry_test_case ferry_tests[] = {
    {"scheme reads defaults and garbage as the scripts do",
     scheme_reads_defaults_and_garbage_as_the_scripts_do},
    {"boot script spends attempts then falls back", boot_script_spends_attempts_then_falls_back},
    {"verbs over a store write only changes", verbs_over_a_store_write_only_changes},
    {"booted slot comes from the command line or the root mount",
     booted_slot_comes_from_the_command_line_or_the_root_mount},
    {"GRUB environment block is read back by grub-editenv",
     grub_environment_block_is_read_back_by_grub_editenv},
    {"U-Boot environment is read back by fw_printenv",
     uboot_environment_is_read_back_by_fw_printenv},
    {"custom backend agrees with the scheme", custom_backend_agrees_with_the_scheme},
    {"custom backend errors name the verb", custom_backend_errors_name_the_verb},
    {NULL, NULL},
};
