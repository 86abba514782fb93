/* Power cuts at every storage call of an update, the way MCUboot's
 * simulator does it: run the update on the file backend through the
 * fault-injecting driver (ferry_io_faulty.h), stop it at call k (a power
 * cut, or a torn one that half-writes what was not synced) or fail call k
 * (every kind, reads included, then a power cut after the run), restart
 * from what the disk holds, boot, and check that the node boots a complete
 * image (old or new, never neither), that the state vouches only for whole
 * slots and that the anti-rollback counter never passed a confirmed image.
 * Records are replaced atomically (the file backend) or rewritten in place
 * (slots_inplace.h), where a torn cut tears them. */
#include "cunit_main.h"

#include "edge_slots.h"
#include "ferry_fs.h"
#include "ferry_io_faulty.h"
#include "slots_inplace.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IMG_SIZE  (64 * 1024)
#define BLOCK     1024
#define CAPACITY  (128 * 1024)
#define SEED_PREV 10
#define SEED_OLD  11
#define SEED_NEW  12
#define SEQ_PREV  19
#define SEQ_OLD   20
#define SEQ_NEW   21

enum scenario {
    UPDATE_CONFIRMED,   /* install, trial boot, health ok -> confirm */
    HEALTH_FAILED,      /* install, trial boot, health bad -> rollback */
    ATTEMPTS_EXHAUSTED, /* install, trial boots without a confirm -> automatic rollback */
};

static const char *const SCENARIO_NAMES[] = {"update confirmed", "health check failed",
                                             "attempts exhausted"};
static const char *const RECORD_FILES[] = {"boot.0", "boot.1", "boot.lkg"};

static uint8_t image_byte(uint32_t seed, uint64_t pos)
{
    uint64_t x = (pos + 1) * UINT64_C(0x9E3779B97F4A7C15) ^ ((uint64_t)seed << 40);
    x ^= x >> 31;
    return (uint8_t)(x * UINT64_C(0x94D049BB133111EB) >> 56);
}

static void image_block(uint32_t seed, uint64_t off, uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = image_byte(seed, off + i);
}

static struct edge_image describe(uint32_t seed, uint64_t seq)
{
    struct edge_image img;
    memset(&img, 0, sizeof(img));
    struct ferry_sha256 h;
    uint8_t buf[BLOCK];
    ferry_sha256_init(&h);
    for (uint64_t off = 0; off < IMG_SIZE; off += BLOCK) {
        image_block(seed, off, buf, BLOCK);
        ferry_sha256_update(&h, buf, BLOCK);
    }
    ferry_sha256_final(&h, img.sha256);
    img.size = IMG_SIZE;
    img.seq = seq;
    snprintf(img.version, sizeof(img.version), "2.%llu.0", (unsigned long long)seq);
    return img;
}

struct world {
    char template_dir[PATH_MAX / 2];
    char dir[PATH_MAX / 2];
    struct edge_image old_img, new_img;
};

static void join(const char *dir, const char *name, char out[PATH_MAX])
{
    snprintf(out, PATH_MAX, "%s/%s", dir, name);
}

static enum ferry_err install(struct edge_slots *s, uint32_t seed, const struct edge_image *img)
{
    enum ferry_err err = edge_slots_begin(s, img, NULL);
    uint8_t buf[BLOCK];
    for (uint64_t off = 0; err == FERRY_OK && off < IMG_SIZE; off += BLOCK) {
        image_block(seed, off, buf, BLOCK);
        err = edge_slots_write(s, off, buf, BLOCK, NULL);
    }
    if (err == FERRY_OK)
        err = edge_slots_finish(s, NULL);
    return err;
}

/* The device every run starts from, as after one earlier update: the old
 * image confirmed in A, the one before it still valid in B. */
static void make_template(struct world *w, enum scenario sc)
{
    snprintf(w->template_dir, sizeof(w->template_dir), "%s/template-%d", ferry_test_tmpdir(),
             (int)sc);
    snprintf(w->dir, sizeof(w->dir), "%s/device-%d", ferry_test_tmpdir(), (int)sc);
    CU_ASSERT_EQUAL_FATAL(ferry_mkdir_p(w->template_dir, 0755, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(ferry_mkdir_p(w->dir, 0755, NULL), FERRY_OK);
    w->old_img = describe(SEED_OLD, SEQ_OLD);
    w->new_img = describe(SEED_NEW, SEQ_NEW);

    char path[PATH_MAX];
    join(w->template_dir, "slot-b.img", path);
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    uint8_t buf[BLOCK];
    for (uint64_t off = 0; off < IMG_SIZE; off += BLOCK) {
        image_block(SEED_PREV, off, buf, BLOCK);
        CU_ASSERT_EQUAL(fwrite(buf, 1, BLOCK, f), BLOCK);
    }
    CU_ASSERT_EQUAL_FATAL(fclose(f), 0);

    struct edge_slots_backend *be = NULL;
    struct edge_slots *s = NULL;
    struct ferry_diag d = {{0}};
    struct edge_image prev = describe(SEED_PREV, SEQ_PREV);
    enum edge_slot booted = EDGE_SLOT_NONE;
    CU_ASSERT_EQUAL_FATAL(edge_slots_file_new(w->template_dir, CAPACITY, &be, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_slots_open(be, &s, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_slots_adopt(s, EDGE_SLOT_B, &prev, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_slots_confirm(s, EDGE_SLOT_B, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(install(s, SEED_OLD, &w->old_img), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_slots_set_trial(s, 1, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_slots_boot(s, &booted, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_slots_confirm(s, booted, &d), FERRY_OK);
    const struct edge_boot_state *st = edge_slots_state(s);
    CU_ASSERT_EQUAL_FATAL(st->active, EDGE_SLOT_A);
    CU_ASSERT_TRUE_FATAL(st->slot[EDGE_SLOT_B].valid);
    edge_slots_free(s);
    edge_slots_file_free(be);
}

static void copy_file(const char *from_dir, const char *to_dir, const char *name)
{
    char from[PATH_MAX], to[PATH_MAX];
    join(from_dir, name, from);
    join(to_dir, name, to);
    if (unlink(to) != 0)
        CU_ASSERT_EQUAL_FATAL(errno, ENOENT);
    uint8_t *data = NULL;
    size_t len = 0;
    enum ferry_err err = ferry_read_file(from, 1u << 20, &data, &len, NULL);
    if (err == FERRY_E_NOT_FOUND)
        return;
    CU_ASSERT_EQUAL_FATAL(err, FERRY_OK);
    FILE *f = fopen(to, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(data, 1, len, f), len);
    CU_ASSERT_EQUAL(fclose(f), 0);
    free(data);
}

/* Plain copies, no fsync: the simulated power cut is the faulty driver's,
 * not the kernel's, so the page cache is the "disk" here. */
static void reset_device(const struct world *w)
{
    copy_file(w->template_dir, w->dir, "slot-a.img");
    copy_file(w->template_dir, w->dir, "slot-b.img");
    for (size_t i = 0; i < 3; i++)
        copy_file(w->template_dir, w->dir, RECORD_FILES[i]);
}

static enum ferry_err reboot(const struct edge_slots_backend *be, struct edge_slots **s,
                             enum edge_slot *booted)
{
    edge_slots_free(*s);
    *s = NULL;
    enum ferry_err err = edge_slots_open(be, s, NULL);
    if (err == FERRY_OK)
        err = edge_slots_boot(*s, booted, NULL);
    return err;
}

/* The update as the node's client runs it, stopping at the first error
 * (the power cut). Each "reboot" reopens the state from storage. */
static enum ferry_err run(enum scenario sc, const struct edge_slots_backend *be,
                          const struct edge_image *img)
{
    struct edge_slots *s = NULL;
    enum edge_slot booted = EDGE_SLOT_NONE;
    enum ferry_err err = edge_slots_open(be, &s, NULL);
    if (err == FERRY_OK)
        err = install(s, SEED_NEW, img);
    if (err == FERRY_OK)
        err = edge_slots_set_trial(s, sc == ATTEMPTS_EXHAUSTED ? 2 : 3, NULL);
    if (err == FERRY_OK)
        err = reboot(be, &s, &booted);
    if (err == FERRY_OK && sc == UPDATE_CONFIRMED)
        err = edge_slots_confirm(s, booted, NULL);
    if (err == FERRY_OK && sc == HEALTH_FAILED)
        err = edge_slots_rollback(s, &booted, NULL);
    for (int i = 0; err == FERRY_OK && sc == ATTEMPTS_EXHAUSTED && i < 2; i++)
        err = reboot(be, &s, &booted);
    edge_slots_free(s);
    return err;
}

struct tally {
    unsigned cuts, booted_old, booted_new;
};

/* After the cut: what does the node boot, and is it whole? */
static void check_restart(const struct world *w, enum scenario sc, uint64_t k, struct tally *t)
{
    struct edge_slots_backend *be = NULL;
    struct edge_slots *s = NULL;
    struct ferry_diag d = {{0}};
    enum edge_slot booted = EDGE_SLOT_NONE;
    CU_ASSERT_EQUAL_FATAL(edge_slots_file_new(w->dir, CAPACITY, &be, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_slots_open(be, &s, &d), FERRY_OK);
    CU_ASSERT_EQUAL(edge_slots_source(s), EDGE_BOOT_SRC_COPY);
    CU_ASSERT_EQUAL_FATAL(edge_slots_boot(s, &booted, &d), FERRY_OK);
    const struct edge_boot_state *st = edge_slots_state(s);

    enum ferry_err verified = edge_slots_verify(s, booted, &d);
    CU_ASSERT_EQUAL(verified, FERRY_OK);
    if (verified != FERRY_OK)
        fprintf(stderr, "%s, cut at %llu: slot %s: %s\n", SCENARIO_NAMES[sc], (unsigned long long)k,
                edge_slot_name(booted), ferry_diag_str(&d, verified));
    const uint8_t *sha = st->slot[booted].img.sha256;
    bool is_old = memcmp(sha, w->old_img.sha256, FERRY_SHA256_LEN) == 0;
    bool is_new = memcmp(sha, w->new_img.sha256, FERRY_SHA256_LEN) == 0;
    CU_ASSERT_TRUE(is_old || is_new);
    t->booted_old += is_old;
    t->booted_new += is_new;

    /* The state never vouches for a slot that is not whole (the fallback
     * included), and the counter never passed the confirmed image. */
    for (int i = 0; i < 2; i++) {
        if (st->slot[i].valid)
            CU_ASSERT_EQUAL(edge_slots_verify(s, (enum edge_slot)i, NULL), FERRY_OK);
    }
    CU_ASSERT_TRUE(st->confirmed);
    CU_ASSERT_TRUE(st->slot[st->active].valid);
    CU_ASSERT_TRUE(st->rollback_seq <= st->slot[st->active].img.seq);
    CU_ASSERT_TRUE(st->rollback_seq == SEQ_OLD || st->rollback_seq == SEQ_NEW);
    if (sc != UPDATE_CONFIRMED)
        CU_ASSERT_EQUAL(st->rollback_seq, SEQ_OLD); /* never confirmed, never counted */
    if (booted == st->trial)
        CU_ASSERT_TRUE(is_new);
    edge_slots_free(s);
    edge_slots_file_free(be);
}

/* Runs the scenario with call k faulty (NO_FAULT: none), then cuts the
 * power, and returns how many calls it numbered. */
static uint64_t run_with_fault(const struct world *w, enum scenario sc, enum slots_fault fault,
                               bool in_place, uint64_t k)
{
    struct ferry_io_faulty *f = NULL;
    struct edge_slots_backend *file = NULL;
    struct slots_inplace ip;
    reset_device(w);
    CU_ASSERT_EQUAL_FATAL(ferry_io_faulty_new(&f, NULL), FERRY_OK);
    const struct ferry_io *io = ferry_io_faulty_io(f);
    slots_fault_arm(f, fault, k);
    CU_ASSERT_EQUAL_FATAL(edge_slots_file_new_io(io, w->dir, CAPACITY, &file, NULL), FERRY_OK);
    const struct edge_slots_backend *be = file;
    if (in_place) {
        slots_inplace_init(&ip, file, io, w->dir);
        be = &ip.be;
    }
    enum ferry_err err = run(sc, be, &w->new_img);
    if (fault != FAIL_CALL) {
        /* Only the cut may stop the run. */
        CU_ASSERT_EQUAL(err == FERRY_OK, !ferry_io_faulty_stopped(f));
        if (err != FERRY_OK)
            CU_ASSERT_EQUAL(err, FERRY_E_IO);
    }
    uint64_t calls = slots_fault_end(f, fault);
    edge_slots_file_free(file);
    ferry_io_faulty_free(f);
    return calls;
}

/* The rounds each scenario runs. A torn cut of an atomic record write is
 * a plain cut (its bytes are synced before the rename), so torn cuts run on
 * records written in place. */
static const struct {
    enum slots_fault fault;
    bool in_place;
} ROUNDS[] = {
    {CUT_POWER, false},
    {CUT_POWER, true},
    {CUT_POWER_TORN, true},
    {FAIL_CALL, false},
};

static void cut_everywhere(enum scenario sc)
{
    struct world w;
    make_template(&w, sc);
    for (size_t round = 0; round < sizeof(ROUNDS) / sizeof(ROUNDS[0]); round++) {
        enum slots_fault fault = ROUNDS[round].fault;
        bool in_place = ROUNDS[round].in_place;
        uint64_t total = run_with_fault(&w, sc, fault, in_place, NO_FAULT);
        /* begin 2, one write per block, finish's sync and record, trial, boot. */
        CU_ASSERT_TRUE(total >= IMG_SIZE / BLOCK + 6);
        struct tally t = {0, 0, 0};
        for (uint64_t k = 0; k <= total; k++) {
            uint64_t calls = run_with_fault(&w, sc, fault, in_place, k < total ? k : NO_FAULT);
            if (fault != FAIL_CALL)
                CU_ASSERT_EQUAL(calls, k < total ? k + 1 : total);
            check_restart(&w, sc, k, &t);
            t.cuts++;
        }
        CU_ASSERT_EQUAL(t.cuts, total + 1);
        CU_ASSERT_TRUE(t.booted_old > 0);
        CU_ASSERT_TRUE(t.booted_new > 0);
        printf("\n    %s, %s, records %s: %u faults (0..%llu), booted old %u, new %u ",
               SCENARIO_NAMES[sc], slots_fault_name(fault), in_place ? "in place" : "atomic",
               t.cuts, (unsigned long long)total, t.booted_old, t.booted_new);
    }
}

static void update_survives_a_cut_at_every_operation(void)
{
    cut_everywhere(UPDATE_CONFIRMED);
}

static void failed_health_check_survives_a_cut_at_every_operation(void)
{
    cut_everywhere(HEALTH_FAILED);
}

static void exhausted_trial_survives_a_cut_at_every_operation(void)
{
    cut_everywhere(ATTEMPTS_EXHAUSTED);
}

const char *const ferry_suite_name = "edge_powercut";
const struct ferry_test_case ferry_tests[] = {
    {"update_survives_a_cut_at_every_operation", update_survives_a_cut_at_every_operation},
    {"failed_health_check_survives_a_cut_at_every_operation",
     failed_health_check_survives_a_cut_at_every_operation},
    {"exhausted_trial_survives_a_cut_at_every_operation",
     exhausted_trial_survives_a_cut_at_every_operation},
    {NULL, NULL},
};
