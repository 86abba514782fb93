/* The decision after a boot (inst_boot.h), row by row, and the engine's
 * guards (inst_engine.h): it never begins an install into the slot that
 * booted, and refuses to start when the bootloader and the mounted root
 * disagree. */
#include "cunit_main.h"

#include "ferry_fs.h"
#include "inst_boot.h"
#include "inst_bootenv.h"
#include "inst_engine.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#define A    EDGE_SLOT_A
#define B    EDGE_SLOT_B
#define NONE EDGE_SLOT_NONE

static struct edge_image image(uint64_t seq)
{
    struct edge_image img;
    memset(&img, 0, sizeof(img));
    memset(img.sha256, (int)seq, sizeof(img.sha256));
    img.size = 4096;
    img.seq = seq;
    snprintf(img.version, sizeof(img.version), "1.%llu.0", (unsigned long long)seq);
    return img;
}

/* A runs seq 5, confirmed; B holds seq 6, on trial with `attempts` left
 * (no trial when attempts < 0; B invalid when holds_b is false). */
static struct edge_boot_state state(int attempts, bool holds_b)
{
    struct edge_boot_state st;
    edge_boot_factory(&st);
    struct edge_image a = image(5), b = image(6);
    CU_ASSERT_EQUAL_FATAL(edge_boot_adopt(&st, A, &a, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_boot_confirm(&st, A, NULL), FERRY_OK);
    if (holds_b)
        CU_ASSERT_EQUAL_FATAL(edge_boot_installed(&st, B, &b, NULL), FERRY_OK);
    if (attempts >= 0) {
        CU_ASSERT_EQUAL_FATAL(edge_boot_set_trial(&st, 3, NULL), FERRY_OK);
        st.attempts = (uint8_t)attempts;
    }
    return st;
}

static void each_row_of_the_table(void)
{
    struct inst_boot_plan p;
    struct edge_boot_state st = state(-1, false);
    inst_boot_plan(&st, A, &p);
    CU_ASSERT_EQUAL(p.verdict, INST_BOOT_NORMAL);
    CU_ASSERT_FALSE(p.store);
    CU_ASSERT_EQUAL(p.primary, A);
    CU_ASSERT_EQUAL(p.good, NONE);
    CU_ASSERT_EQUAL(p.also_bad, B); /* nothing valid in B: never boot it */
    CU_ASSERT_FALSE(p.reboot);

    st = state(-1, true);
    inst_boot_plan(&st, A, &p);
    CU_ASSERT_EQUAL(p.verdict, INST_BOOT_NORMAL);
    CU_ASSERT_EQUAL(p.good, B); /* a valid image stays the fallback */
    CU_ASSERT_EQUAL(p.also_bad, NONE);

    st = state(2, true);
    inst_boot_plan(&st, B, &p);
    CU_ASSERT_EQUAL(p.verdict, INST_BOOT_TRIAL);
    CU_ASSERT_TRUE(p.store);
    CU_ASSERT_EQUAL(p.next.attempts, 1);
    CU_ASSERT_EQUAL(p.next.trial, B);
    CU_ASSERT_EQUAL(p.bad, NONE);
    CU_ASSERT_EQUAL(p.primary, NONE);

    st = state(0, true);
    inst_boot_plan(&st, B, &p);
    CU_ASSERT_EQUAL(p.verdict, INST_BOOT_EXHAUSTED);
    CU_ASSERT_EQUAL(p.next.trial, NONE);
    CU_ASSERT_FALSE(p.next.slot[B].valid);
    CU_ASSERT_EQUAL(p.bad, B);
    CU_ASSERT_EQUAL(p.primary, A);
    CU_ASSERT_TRUE(p.reboot);

    st = state(2, true);
    inst_boot_plan(&st, A, &p);
    CU_ASSERT_EQUAL(p.verdict, INST_BOOT_FELL_BACK);
    CU_ASSERT_EQUAL(p.next.trial, NONE);
    CU_ASSERT_EQUAL(p.next.active, A);
    CU_ASSERT_TRUE(p.next.confirmed);
    CU_ASSERT_EQUAL(p.next.rollback_seq, 5);
    CU_ASSERT_EQUAL(p.bad, B);
    CU_ASSERT_EQUAL(p.primary, A);
    CU_ASSERT_FALSE(p.reboot);

    st = state(-1, true);
    inst_boot_plan(&st, B, &p);
    CU_ASSERT_EQUAL(p.verdict, INST_BOOT_FOREIGN);
    CU_ASSERT_EQUAL(p.next.active, B);
    CU_ASSERT_FALSE(p.next.confirmed);
    CU_ASSERT_EQUAL(p.next.rollback_seq, 5); /* the counter stays */
    CU_ASSERT_TRUE(p.next.slot[B].valid);
    CU_ASSERT_EQUAL(p.primary, B);
    CU_ASSERT_EQUAL(edge_boot_check(&p.next, NULL), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(inst_boot_verdict_name(INST_BOOT_FELL_BACK), "fell-back");
}

static void engine_never_writes_the_running_slot(void)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/engine-guard", ferry_test_tmpdir());
    CU_ASSERT_EQUAL_FATAL(ferry_mkdir_p(dir, 0755, NULL), FERRY_OK);
    struct edge_slots_backend *be = NULL;
    CU_ASSERT_EQUAL_FATAL(edge_slots_file_new(dir, 1 << 20, &be, NULL), FERRY_OK);
    struct inst_env_mem mem;
    inst_env_mem_init(&mem);
    /* The bootloader prefers B, a slot Ferry knows nothing of. */
    struct inst_bootenv env = {.order = {B, A}, .norder = 2, .left = {3, 3}};
    inst_bootenv_to_vars(&env, &mem.vars);
    struct inst_bootenv_opts o = {.name = "sim"};
    struct inst_bootenv_bl *bl = NULL;
    CU_ASSERT_EQUAL_FATAL(inst_bootenv_new(&mem.store, &o, &bl, NULL), FERRY_OK);
    struct inst_engine_opts eo = {.slots = be, .boot = inst_bootenv_bootloader(bl)};
    struct inst_engine *e = NULL;
    CU_ASSERT_EQUAL_FATAL(inst_engine_open(&eo, &e, NULL), FERRY_OK);
    struct edge_image img = image(9);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(inst_engine_begin(e, &img, &d), FERRY_E_INVALID_ARG); /* no start yet */
    enum edge_slot booted = NONE;
    CU_ASSERT_EQUAL_FATAL(inst_bootenv_boot(bl, &booted, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(booted, B);
    struct inst_engine_start start;
    CU_ASSERT_EQUAL_FATAL(inst_engine_start(e, &start, NULL), FERRY_OK);
    /* A factory state (A active) on a device running B: Ferry follows. */
    CU_ASSERT_EQUAL(start.verdict, INST_BOOT_FOREIGN);
    CU_ASSERT_EQUAL(start.after.active, B);
    CU_ASSERT_EQUAL(inst_engine_booted(e), B);
    /* The next install goes to A, never B. */
    CU_ASSERT_EQUAL(inst_engine_begin(e, &img, &d), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(mem.vars.val[0], "B"); /* A marked bad before writing */
    inst_engine_abort(e);
    inst_engine_free(e);
    inst_bootenv_free(bl);

    /* A trial out of Ferry's own attempts, before the reboot it asks for:
     * the inactive slot in Ferry's state is the one running. */
    struct edge_boot_state st = state(0, true);
    struct edge_slots *raw = NULL;
    CU_ASSERT_EQUAL_FATAL(edge_slots_open(be, &raw, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_slots_replace(raw, &st, NULL), FERRY_OK);
    edge_slots_free(raw);
    env = (struct inst_bootenv){.order = {B, A}, .norder = 2, .left = {3, 3}};
    inst_bootenv_to_vars(&env, &mem.vars);
    CU_ASSERT_EQUAL_FATAL(inst_bootenv_new(&mem.store, &o, &bl, NULL), FERRY_OK);
    eo.boot = inst_bootenv_bootloader(bl);
    CU_ASSERT_EQUAL_FATAL(inst_engine_open(&eo, &e, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(inst_bootenv_boot(bl, &booted, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(inst_engine_start(e, &start, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(start.verdict, INST_BOOT_EXHAUSTED);
    CU_ASSERT_TRUE(start.reboot);
    CU_ASSERT_STRING_EQUAL(mem.vars.val[0], "A"); /* B bad, A primary */
    unsigned stores = mem.stores;
    CU_ASSERT_EQUAL(inst_engine_begin(e, &img, &d), FERRY_E_BUSY);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "slot B is the running system"));
    CU_ASSERT_EQUAL(mem.stores, stores);
    CU_ASSERT_EQUAL(inst_engine_resume(e, &img, 0, &d), FERRY_E_BUSY);
    inst_engine_free(e);
    inst_bootenv_free(bl);
    edge_slots_file_free(be);
}

static void engine_refuses_a_bootloader_that_contradicts_the_root_mount(void)
{
    struct stat st;
    if (stat("/dev/loop0", &st) != 0 || !S_ISBLK(st.st_mode)) {
        fprintf(stderr, "SKIP: no /dev/loop0 to stand in for the root device\n");
        return;
    }
    char dir[PATH_MAX / 2], mi[PATH_MAX], cmdline[PATH_MAX], line[256];
    snprintf(dir, sizeof(dir), "%s/engine-root", ferry_test_tmpdir());
    snprintf(mi, sizeof(mi), "%s/mountinfo", dir);
    snprintf(cmdline, sizeof(cmdline), "%s/cmdline", dir);
    CU_ASSERT_EQUAL_FATAL(ferry_mkdir_p(dir, 0755, NULL), FERRY_OK);
    snprintf(line, sizeof(line), "26 1 %u:%u / / rw - ext4 /dev/loop0 rw\n", major(st.st_rdev),
             minor(st.st_rdev));
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(mi, line, strlen(line), 0644, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(cmdline, "ferry.slot=B\n", 13, 0644, NULL), FERRY_OK);
    struct edge_slots_backend *be = NULL;
    CU_ASSERT_EQUAL_FATAL(edge_slots_file_new(dir, 1 << 20, &be, NULL), FERRY_OK);
    struct inst_env_mem mem;
    inst_env_mem_init(&mem);
    struct inst_bootenv_opts o = {.name = "uboot", .cmdline = cmdline};
    struct inst_bootenv_bl *bl = NULL;
    CU_ASSERT_EQUAL_FATAL(inst_bootenv_new(&mem.store, &o, &bl, NULL), FERRY_OK);
    /* Slot A is /dev/loop0, mounted at /; the command line says B booted. */
    struct inst_engine_opts eo = {.slots = be,
                                  .boot = inst_bootenv_bootloader(bl),
                                  .mountinfo = mi,
                                  .slot_path = {"/dev/loop0", "/dev/loop-nonexistent"}};
    struct inst_engine *e = NULL;
    CU_ASSERT_EQUAL_FATAL(inst_engine_open(&eo, &e, NULL), FERRY_OK);
    struct inst_engine_start start;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(inst_engine_start(e, &start, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "says slot B booted, but slot A (/dev/loop0) is mounted"));
    CU_ASSERT_EQUAL(mem.stores, 0); /* nothing changed */
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(cmdline, "ferry.slot=A\n", 13, 0644, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(inst_engine_start(e, &start, &d), FERRY_OK);
    CU_ASSERT_EQUAL(start.booted, A);
    inst_engine_free(e);
    inst_bootenv_free(bl);
    edge_slots_file_free(be);
}

const char *const ferry_suite_name = "inst_boot";
const struct ferry_test_case ferry_tests[] = {
    {"each row of the table", each_row_of_the_table},
    {"engine never writes the running slot", engine_never_writes_the_running_slot},
    {"engine refuses a bootloader that contradicts the root mount",
     engine_refuses_a_bootloader_that_contradicts_the_root_mount},
    {NULL, NULL},
};
