/* The judgement of a trial after a boot (inst_trial.h), row by row, and
 * the device stack both programs open (inst_device.h): a simulated device
 * installs an image, powers on into its trial, and is judged. */
#include "cunit_main.h"

#include "ferry_sha256.h"
#include "inst_device.h"
#include "inst_trial.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define A    EDGE_SLOT_A
#define B    EDGE_SLOT_B
#define NONE EDGE_SLOT_NONE

static struct edge_boot_state state(enum edge_slot active, enum edge_slot trial)
{
    struct edge_boot_state st;
    memset(&st, 0, sizeof(st));
    st.active = active;
    st.trial = trial;
    for (int s = 0; s < 2; s++) {
        st.slot[s].valid = true;
        st.slot[s].img.seq = (uint64_t)s + 1;
        snprintf(st.slot[s].img.version, sizeof(st.slot[s].img.version), "1.0.%d", s + 1);
    }
    return st;
}

static void every_row(void)
{
    struct inst_trial t;
    struct edge_boot_state idle = state(A, NONE);
    inst_trial_after_boot(&idle, &idle, A, false, &t);
    CU_ASSERT_EQUAL(t.step, INST_TRIAL_NONE);
    CU_ASSERT_EQUAL(t.slot, NONE);

    struct edge_boot_state before = state(A, B), kept = state(A, B), ended = state(A, NONE);
    inst_trial_after_boot(&before, &kept, B, false, &t);
    CU_ASSERT_EQUAL(t.step, INST_TRIAL_HEALTH);
    CU_ASSERT_EQUAL(t.slot, B);
    CU_ASSERT_STRING_EQUAL(t.img.version, "1.0.2");

    inst_trial_after_boot(&before, &ended, A, true, &t);
    CU_ASSERT_EQUAL(t.step, INST_TRIAL_ROLLED_BACK);
    CU_ASSERT_PTR_NOT_NULL(strstr(t.why, "fell back to slot A"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t.why, "1.0.2 in slot B"));

    inst_trial_after_boot(&before, &ended, A, false, &t);
    CU_ASSERT_EQUAL(t.step, INST_TRIAL_ROLLED_BACK);
    CU_ASSERT_PTR_NOT_NULL(strstr(t.why, "attempts ran out"));

    inst_trial_after_boot(&before, &kept, A, false, &t);
    CU_ASSERT_EQUAL(t.step, INST_TRIAL_ROLLED_BACK);
    CU_ASSERT_PTR_NOT_NULL(strstr(t.why, "did not try slot B"));
}

static struct inst_device *open_sim(const char *dir)
{
    struct inst_device *dev = NULL;
    struct ferry_diag d = {{0}};
    struct inst_device_opts o = {
        .state_dir = dir, .max_bytes = 1 << 20, .kind = INST_BOOTLOADER_SIM};
    enum ferry_err err = inst_device_open(&o, &dev, &d);
    if (err != FERRY_OK)
        fprintf(stderr, "open: %s\n", d.msg);
    CU_ASSERT_EQUAL_FATAL(err, FERRY_OK);
    return dev;
}

/* Installs a 4 KiB image of seq into the slot that is not running and
 * sets it on trial. */
static struct edge_image install(struct inst_device *dev, uint64_t seq)
{
    uint8_t data[4096];
    memset(data, (int)seq, sizeof(data));
    struct edge_image img;
    memset(&img, 0, sizeof(img));
    ferry_sha256(data, sizeof(data), img.sha256);
    img.size = sizeof(data);
    img.seq = seq;
    snprintf(img.version, sizeof(img.version), "2.0.%llu", (unsigned long long)seq);
    struct ferry_diag d = {{0}};
    struct inst_engine *e = inst_device_engine(dev);
    CU_ASSERT_EQUAL_FATAL(inst_engine_begin(e, &img, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(inst_engine_write(e, 0, data, sizeof(data), &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(inst_engine_sync(e, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(inst_engine_finish(e, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(inst_engine_set_trial(e, 2, &d), FERRY_OK);
    return img;
}

static void a_simulated_device_tries_confirms_and_rolls_back(void)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/dev", ferry_test_tmpdir());
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
    struct inst_device *dev = open_sim(dir);
    struct ferry_diag d = {{0}};
    struct inst_engine_start first, last;
    struct inst_trial t;
    CU_ASSERT_EQUAL_FATAL(inst_device_power_on(dev, &first, &last, &d), FERRY_OK);
    CU_ASSERT_EQUAL(last.booted, A);
    inst_trial_after_boot(&first.before, &last.after, last.booted,
                          first.verdict == INST_BOOT_FELL_BACK, &t);
    CU_ASSERT_EQUAL(t.step, INST_TRIAL_NONE);

    /* A new image on trial: the next power-on boots it, to be checked. */
    struct edge_image img = install(dev, 7);
    inst_device_free(dev);
    dev = open_sim(dir);
    CU_ASSERT_EQUAL_FATAL(inst_device_power_on(dev, &first, &last, &d), FERRY_OK);
    CU_ASSERT_EQUAL(last.booted, B);
    inst_trial_after_boot(&first.before, &last.after, last.booted,
                          first.verdict == INST_BOOT_FELL_BACK, &t);
    CU_ASSERT_EQUAL(t.step, INST_TRIAL_HEALTH);
    CU_ASSERT_EQUAL(t.slot, B);
    CU_ASSERT_EQUAL(memcmp(t.img.sha256, img.sha256, sizeof(img.sha256)), 0);
    CU_ASSERT_EQUAL(inst_engine_confirm(inst_device_engine(dev), B, &d), FERRY_OK);
    inst_device_free(dev);

    /* Confirmed: the next power-on is a normal boot of it. */
    dev = open_sim(dir);
    CU_ASSERT_EQUAL_FATAL(inst_device_power_on(dev, &first, &last, &d), FERRY_OK);
    CU_ASSERT_EQUAL(last.booted, B);
    CU_ASSERT_EQUAL(last.after.slot[B].img.seq, 7);

    /* Another image fails its check: rolled back, the next boot runs the
     * confirmed one. */
    install(dev, 8);
    inst_device_free(dev);
    dev = open_sim(dir);
    CU_ASSERT_EQUAL_FATAL(inst_device_power_on(dev, &first, &last, &d), FERRY_OK);
    CU_ASSERT_EQUAL(last.booted, A);
    inst_trial_after_boot(&first.before, &last.after, last.booted, false, &t);
    CU_ASSERT_EQUAL(t.step, INST_TRIAL_HEALTH);
    enum edge_slot to = NONE;
    CU_ASSERT_EQUAL(inst_engine_rollback(inst_device_engine(dev), &to, &d), FERRY_OK);
    CU_ASSERT_EQUAL(to, B);
    inst_device_free(dev);
    dev = open_sim(dir);
    CU_ASSERT_EQUAL_FATAL(inst_device_power_on(dev, &first, &last, &d), FERRY_OK);
    CU_ASSERT_EQUAL(last.booted, B);
    CU_ASSERT_EQUAL(last.after.trial, NONE);
    CU_ASSERT_EQUAL(last.after.slot[B].img.seq, 7);
    inst_device_free(dev);
}

static void open_names_what_is_wrong(void)
{
    struct inst_device *dev = NULL;
    struct ferry_diag d = {{0}};
    struct inst_device_opts o = {.state_dir = ferry_test_tmpdir(),
                                 .slot = {"/nonexistent/a", NULL},
                                 .max_bytes = 1 << 20,
                                 .kind = INST_BOOTLOADER_SIM};
    CU_ASSERT_EQUAL(inst_device_open(&o, &dev, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "both slot paths"));
    o.slot[0] = NULL;
    o.kind = INST_BOOTLOADER_CUSTOM;
    CU_ASSERT_EQUAL(inst_device_open(&o, &dev, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "custom"));
    CU_ASSERT_PTR_NULL(dev);
}

const char *const ferry_suite_name = "inst_trial";
const struct ferry_test_case ferry_tests[] = {
    {"every row of the trial table", every_row},
    {"a simulated device tries, confirms and rolls back",
     a_simulated_device_tries_confirms_and_rolls_back},
    {"open names what is wrong", open_names_what_is_wrong},
    {NULL, NULL},
};
