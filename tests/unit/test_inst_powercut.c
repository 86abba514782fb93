/* Power cuts at every write of an install through the engine
 * (inst_engine.h): the slots' data and records and the bootloader's
 * environment are files written through one fault-injecting driver
 * (ferry_io_faulty.h), one power supply, so the cut points number all of
 * them together. Call k is cut (plain or torn) or fails (every kind of
 * call, reads included; the power then fails after the run). After each cut the device powers on:
 * the firmware runs the boot script (inst_bootenv.h) on the environment as the cut left it, and an
 * image reaches user space only if its slot holds a whole image (else the firmware tries again,
 * spending attempts, as a kernel panic would make it). Then ferry-edge's start runs. The device
 * must end up running the old image or the new one, with Ferry's state
 * vouching only for whole slots and the bootloader aiming where Ferry's
 * state says. Two layouts: records replaced atomically and a GRUB
 * environment block (inst_grubenv.h, replaced atomically), or records
 * rewritten in place (slots_inplace.h) and an environment in one copy
 * rewritten in place with a CRC, as U-Boot's without redundancy (torn: it
 * fails its CRC and the firmware falls back to its default). */
#include "cunit_main.h"

#include "edge_slots.h"
#include "ferry_fs.h"
#include "inst_bootenv.h"
#include "inst_engine.h"
#include "inst_grubenv.h"
#include "ferry_crc32.h"
#include "ferry_io_faulty.h"
#include "slots_inplace.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IMG_SIZE  (16 * 1024)
#define BLOCK     1024
#define CAPACITY  (64 * 1024)
#define SEED_PREV 10
#define SEED_OLD  11
#define SEED_NEW  12
#define SEQ_PREV  19
#define SEQ_OLD   20
#define SEQ_NEW   21
#define MAX_BOOTS 40

enum scenario {
    UPDATE_CONFIRMED, /* install, trial boot, health ok -> confirm */
    HEALTH_FAILED,    /* install, trial boot, health bad -> rollback, reboot */
    NEVER_BOOTS,      /* the new image never reaches user space: the bootloader falls back */
    DIES_ON_TRIAL,    /* it reaches user space, never its health check, boot after boot */
};

static const char *const NAMES[] = {"update confirmed", "health check failed", "image never boots",
                                    "dies before its health check"};
#define GRUBENV_FILE "grubenv"
#define ONECOPY_FILE "onecopy.env"
static const char *const FILES[] = {"slot-a.img", "slot-b.img", "boot.0",    "boot.1",
                                    "boot.lkg",   GRUBENV_FILE, ONECOPY_FILE};

static uint8_t image_byte(uint32_t seed, uint64_t pos)
{
    uint64_t x = (pos + 1) * UINT64_C(0x9E3779B97F4A7C15) ^ ((uint64_t)seed << 40);
    x ^= x >> 31;
    return (uint8_t)(x * UINT64_C(0x94D049BB133111EB) >> 56);
}

static struct edge_image describe(uint32_t seed, uint64_t seq)
{
    struct edge_image img;
    memset(&img, 0, sizeof(img));
    struct ferry_sha256 h;
    uint8_t buf[BLOCK];
    ferry_sha256_init(&h);
    for (uint64_t off = 0; off < IMG_SIZE; off += BLOCK) {
        for (size_t i = 0; i < BLOCK; i++)
            buf[i] = image_byte(seed, off + i);
        ferry_sha256_update(&h, buf, BLOCK);
    }
    ferry_sha256_final(&h, img.sha256);
    img.size = IMG_SIZE;
    img.seq = seq;
    snprintf(img.version, sizeof(img.version), "3.%llu.0", (unsigned long long)seq);
    return img;
}

struct world {
    char template_dir[PATH_MAX / 2];
    char dir[PATH_MAX / 2];
    struct edge_image prev, old_img, new_img;
    enum scenario sc;
};

/* What is in a slot file: which image, or none (not whole). */
static int slot_content(const struct world *w, const char *dir, enum edge_slot s)
{
    char path[PATH_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/%s", dir, FILES[s]);
    if (ferry_read_file(path, CAPACITY, &data, &len, NULL) != FERRY_OK)
        return -1;
    uint8_t sha[FERRY_SHA256_LEN];
    ferry_sha256(data, len, sha);
    free(data);
    if (len != IMG_SIZE)
        return -1;
    if (memcmp(sha, w->old_img.sha256, sizeof(sha)) == 0)
        return SEED_OLD;
    if (memcmp(sha, w->new_img.sha256, sizeof(sha)) == 0)
        return SEED_NEW;
    if (memcmp(sha, w->prev.sha256, sizeof(sha)) == 0)
        return SEED_PREV;
    return -1;
}

/* The firmware at power-on: the boot script until a slot reaches user
 * space. The new image never does in NEVER_BOOTS. */
static enum ferry_err firmware(const struct world *w, struct inst_bootenv_bl *bl,
                               enum edge_slot *booted)
{
    for (int i = 0; i < MAX_BOOTS; i++) {
        enum ferry_err err = inst_bootenv_boot(bl, booted, NULL);
        if (err != FERRY_OK)
            return err;
        int c = slot_content(w, w->dir, *booted);
        if (c >= 0 && !(w->sc == NEVER_BOOTS && c == SEED_NEW))
            return FERRY_OK;
    }
    CU_FAIL("the firmware found no slot that reaches user space");
    return FERRY_E_IO;
}

/* A running device: the bootloader over a store, the engine over slots. */
struct device {
    struct inst_bootenv_bl *bl;
    struct inst_engine *eng;
    struct inst_engine_start start;
};

static void device_off(struct device *dv)
{
    inst_engine_free(dv->eng);
    inst_bootenv_free(dv->bl);
    dv->eng = NULL;
    dv->bl = NULL;
}

/* Power-on: firmware, then ferry-edge's start; reboots as the start asks. */
static enum ferry_err power_on(const struct world *w, const struct edge_slots_backend *slots,
                               const struct inst_env_store *store, struct device *dv)
{
    for (int i = 0; i < 4; i++) {
        device_off(dv);
        struct inst_bootenv_opts o = {.name = "sim"};
        enum edge_slot booted = EDGE_SLOT_NONE;
        enum ferry_err err = inst_bootenv_new(store, &o, &dv->bl, NULL);
        if (err == FERRY_OK)
            err = firmware(w, dv->bl, &booted);
        struct inst_engine_opts eo = {.slots = slots, .boot = inst_bootenv_bootloader(dv->bl)};
        if (err == FERRY_OK)
            err = inst_engine_open(&eo, &dv->eng, NULL);
        if (err == FERRY_OK)
            err = inst_engine_start(dv->eng, &dv->start, NULL);
        if (err != FERRY_OK || !dv->start.reboot)
            return err;
    }
    CU_FAIL("the start asked for a reboot four times in a row");
    return FERRY_E_IO;
}

static enum ferry_err install(struct inst_engine *e, uint32_t seed, const struct edge_image *img)
{
    enum ferry_err err = inst_engine_begin(e, img, NULL);
    uint8_t buf[BLOCK];
    for (uint64_t off = 0; err == FERRY_OK && off < IMG_SIZE; off += BLOCK) {
        for (size_t i = 0; i < BLOCK; i++)
            buf[i] = image_byte(seed, off + i);
        err = inst_engine_write(e, off, buf, BLOCK, NULL);
    }
    if (err == FERRY_OK)
        err = inst_engine_finish(e, NULL);
    return err;
}

static void copy_file(const char *from_dir, const char *to_dir, const char *name)
{
    char from[PATH_MAX], to[PATH_MAX];
    snprintf(from, sizeof(from), "%s/%s", from_dir, name);
    snprintf(to, sizeof(to), "%s/%s", to_dir, name);
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

/* An environment in one copy, rewritten in place: a CRC-32 (little-endian)
 * of the variables, then the variables. Missing, short or failing its CRC,
 * it reads as empty, as U-Boot's does. Written through io: pwrite, fsync. */
struct onecopy_env {
    struct inst_env_store store; /* ops below, ctx = this */
    const struct ferry_io *io;
    char path[PATH_MAX];
};

static enum ferry_err onecopy_load(void *ctx, struct inst_env_vars *out, struct ferry_diag *d)
{
    struct onecopy_env *e = ctx;
    uint8_t *data = NULL;
    size_t len = 0;
    memset(out, 0, sizeof(*out));
    enum ferry_err err = ferry_read_file_io(e->io, e->path, 4 + sizeof(*out), &data, &len, d);
    if (err == FERRY_E_NOT_FOUND || err == FERRY_E_TOO_LARGE)
        return FERRY_OK;
    if (err != FERRY_OK)
        return err;
    uint32_t crc = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                   (uint32_t)data[3] << 24;
    if (len == 4 + sizeof(*out) && ferry_crc32(0, data + 4, sizeof(*out)) == crc)
        memcpy(out, data + 4, sizeof(*out));
    free(data);
    return FERRY_OK;
}

static enum ferry_err onecopy_store(void *ctx, const struct inst_env_vars *vars,
                                    struct ferry_diag *d)
{
    struct onecopy_env *e = ctx;
    uint8_t buf[4 + sizeof(*vars)];
    uint32_t crc = ferry_crc32(0, vars, sizeof(*vars));
    for (int i = 0; i < 4; i++)
        buf[i] = (uint8_t)(crc >> (8 * i));
    memcpy(buf + 4, vars, sizeof(*vars));
    int fd = ferry_io_open(e->io, e->path, O_RDWR | O_CREAT, 0644);
    if (fd < 0)
        return ferry_fail(d, FERRY_E_IO, "%s: open: %s", e->path, strerror(errno));
    enum ferry_err err = ferry_pwrite_all_io(e->io, fd, buf, sizeof(buf), 0);
    if (err == FERRY_OK && ferry_io_fsync(e->io, fd) != 0)
        err = FERRY_E_IO;
    ferry_io_close(e->io, fd);
    return err == FERRY_OK ? FERRY_OK : ferry_fail(d, err, "%s: write failed", e->path);
}

static const struct inst_env_ops ONECOPY_OPS = {.load = onecopy_load, .store = onecopy_store};

static void onecopy_init(struct onecopy_env *e, const struct ferry_io *io, const char *dir)
{
    e->store.ops = &ONECOPY_OPS;
    e->store.ctx = e;
    e->io = io;
    snprintf(e->path, sizeof(e->path), "%s/%s", dir, ONECOPY_FILE);
}

/* The device's environment in the round's layout, through io. */
struct env {
    struct inst_grubenv *grub;
    struct onecopy_env onecopy;
    const struct inst_env_store *store;
};

static void env_open(struct env *e, bool in_place, const struct ferry_io *io, const char *dir)
{
    memset(e, 0, sizeof(*e));
    if (in_place) {
        onecopy_init(&e->onecopy, io, dir);
        e->store = &e->onecopy.store;
        return;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, GRUBENV_FILE);
    CU_ASSERT_EQUAL_FATAL(inst_grubenv_open_io(io, path, false, &e->grub, NULL), FERRY_OK);
    e->store = inst_grubenv_store(e->grub);
}

static void env_close(struct env *e)
{
    inst_grubenv_free(e->grub);
    e->grub = NULL;
}

/* The device every run starts from: the old image confirmed in A and
 * running, the one before it still valid in B, and an environment that
 * agrees ("A B"). Made through the engine itself. */
static void make_template(struct world *w)
{
    snprintf(w->template_dir, sizeof(w->template_dir), "%s/itemplate-%d", ferry_test_tmpdir(),
             (int)w->sc);
    snprintf(w->dir, sizeof(w->dir), "%s/idevice-%d", ferry_test_tmpdir(), (int)w->sc);
    CU_ASSERT_EQUAL_FATAL(ferry_mkdir_p(w->template_dir, 0755, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(ferry_mkdir_p(w->dir, 0755, NULL), FERRY_OK);
    w->prev = describe(SEED_PREV, SEQ_PREV);
    w->old_img = describe(SEED_OLD, SEQ_OLD);
    w->new_img = describe(SEED_NEW, SEQ_NEW);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/slot-b.img", w->template_dir);
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    for (uint64_t pos = 0; pos < IMG_SIZE; pos++)
        fputc(image_byte(SEED_PREV, pos), f);
    CU_ASSERT_EQUAL_FATAL(fclose(f), 0);

    /* The factory: B's image adopted and confirmed (the environment boots B). */
    struct edge_slots_backend *be = NULL;
    struct edge_slots *s = NULL;
    CU_ASSERT_EQUAL_FATAL(edge_slots_file_new(w->template_dir, CAPACITY, &be, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_slots_open(be, &s, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_slots_adopt(s, EDGE_SLOT_B, &w->prev, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_slots_confirm(s, EDGE_SLOT_B, NULL), FERRY_OK);
    edge_slots_free(s);
    struct inst_env_mem mem;
    inst_env_mem_init(&mem);
    struct inst_bootenv env = {.order = {EDGE_SLOT_B, EDGE_SLOT_A}, .norder = 2, .left = {0, 3}};
    inst_bootenv_to_vars(&env, &mem.vars);

    /* One update through the engine, as in the field: old into A. */
    struct device dv = {0};
    enum scenario sc = w->sc;
    w->sc = UPDATE_CONFIRMED;
    snprintf(w->dir, sizeof(w->dir), "%s", w->template_dir); /* the firmware looks here */
    CU_ASSERT_EQUAL_FATAL(power_on(w, be, &mem.store, &dv), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(dv.start.booted, EDGE_SLOT_B);
    CU_ASSERT_EQUAL_FATAL(install(dv.eng, SEED_OLD, &w->old_img), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(inst_engine_set_trial(dv.eng, 2, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(power_on(w, be, &mem.store, &dv), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(dv.start.verdict, INST_BOOT_TRIAL);
    CU_ASSERT_EQUAL_FATAL(inst_engine_confirm(dv.eng, EDGE_SLOT_A, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(power_on(w, be, &mem.store, &dv), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(dv.start.verdict, INST_BOOT_NORMAL);
    CU_ASSERT_EQUAL_FATAL(dv.start.booted, EDGE_SLOT_A);
    const struct edge_boot_state *st = inst_engine_state(dv.eng);
    CU_ASSERT_TRUE_FATAL(st->confirmed && st->slot[EDGE_SLOT_B].valid);
    device_off(&dv);
    edge_slots_file_free(be);
    /* The environment as it ended, in both layouts. */
    struct inst_grubenv *g = NULL;
    snprintf(path, sizeof(path), "%s/%s", w->template_dir, GRUBENV_FILE);
    CU_ASSERT_EQUAL_FATAL(inst_grubenv_open(path, true, &g, NULL), FERRY_OK);
    const struct inst_env_store *gs = inst_grubenv_store(g);
    CU_ASSERT_EQUAL_FATAL(gs->ops->store(gs->ctx, &mem.vars, NULL), FERRY_OK);
    inst_grubenv_free(g);
    struct onecopy_env oc;
    onecopy_init(&oc, NULL, w->template_dir);
    CU_ASSERT_EQUAL_FATAL(oc.store.ops->store(oc.store.ctx, &mem.vars, NULL), FERRY_OK);
    w->sc = sc;
    snprintf(w->dir, sizeof(w->dir), "%s/idevice-%d", ferry_test_tmpdir(), (int)w->sc);
}

static void reset_device(struct world *w)
{
    for (size_t i = 0; i < sizeof(FILES) / sizeof(FILES[0]); i++)
        copy_file(w->template_dir, w->dir, FILES[i]);
}

/* The update as ferry-edge runs it, stopping at the first error (the cut). */
static enum ferry_err run(struct world *w, const struct edge_slots_backend *slots,
                          const struct inst_env_store *store)
{
    struct device dv = {0};
    enum edge_slot to = EDGE_SLOT_NONE;
    enum ferry_err err = power_on(w, slots, store, &dv);
    if (err == FERRY_OK)
        err = install(dv.eng, SEED_NEW, &w->new_img);
    if (err == FERRY_OK)
        err = inst_engine_set_trial(dv.eng, 2, NULL);
    if (err == FERRY_OK)
        err = power_on(w, slots, store, &dv);
    switch (w->sc) {
    case UPDATE_CONFIRMED:
        if (err == FERRY_OK)
            err = inst_engine_confirm(dv.eng, dv.start.booted, NULL);
        break;
    case HEALTH_FAILED:
        if (err == FERRY_OK)
            err = inst_engine_rollback(dv.eng, &to, NULL);
        if (err == FERRY_OK)
            err = power_on(w, slots, store, &dv);
        break;
    case NEVER_BOOTS:
        break; /* the power-on above already fell back */
    case DIES_ON_TRIAL:
        /* It dies before its health check, boot after boot. */
        for (int i = 0; err == FERRY_OK && i < 3; i++)
            err = power_on(w, slots, store, &dv);
        break;
    }
    device_off(&dv);
    return err;
}

/* Slots that behave like partitions: marking one invalid leaves its bytes
 * (inst_slots_path.h), so only the bootloader's "bad" keeps a dropped image
 * from booting. The other operations are the file backend's. */
static struct edge_slots_ops device_ops;

static enum ferry_err keep_bytes(void *ctx, enum edge_slot slot, struct ferry_diag *d)
{
    (void)ctx;
    (void)slot;
    (void)d;
    return FERRY_OK;
}

static struct edge_slots_backend like_device(const struct edge_slots_backend *file)
{
    device_ops = *file->ops;
    device_ops.mark_invalid = keep_bytes;
    return (struct edge_slots_backend){.ops = &device_ops, .ctx = file->ctx};
}

struct tally {
    unsigned cuts, old, new_;
};

/* One round: a fault, a layout (records and environment atomic, or in
 * place: a torn cut of an atomic write is a plain cut), slots as files or
 * as partitions. */
struct round {
    enum slots_fault fault;
    bool in_place;
    bool devices;
};

static void check_restart(struct world *w, uint64_t k, const struct round *r, struct tally *t)
{
    struct edge_slots_backend *be = NULL;
    struct device dv = {0};
    struct env env;
    env_open(&env, r->in_place, NULL, w->dir);
    CU_ASSERT_EQUAL_FATAL(edge_slots_file_new(w->dir, CAPACITY, &be, NULL), FERRY_OK);
    struct edge_slots_backend dev = like_device(be);
    enum ferry_err err = power_on(w, r->devices ? &dev : be, env.store, &dv);
    CU_ASSERT_EQUAL_FATAL(err, FERRY_OK);
    enum edge_slot booted = dv.start.booted;
    const struct edge_boot_state *st = inst_engine_state(dv.eng);
    int running = slot_content(w, w->dir, booted);
    bool is_old = running == SEED_OLD, is_new = running == SEED_NEW;
    CU_ASSERT_TRUE(is_old || is_new);
    if (!is_old && !is_new)
        fprintf(stderr, "%s (%s, %s, %s), at %llu: slot %s runs %d, verdict %s\n", NAMES[w->sc],
                slots_fault_name(r->fault), r->devices ? "partitions" : "files",
                r->in_place ? "in place" : "atomic", (unsigned long long)k, edge_slot_name(booted),
                running, inst_boot_verdict_name(dv.start.verdict));
    t->old += is_old;
    t->new_ += is_new;
    /* The new image runs on trial, or confirmed in the one scenario that
     * confirms it; one that never boots never runs. */
    if (is_new)
        CU_ASSERT_TRUE(st->trial == booted ||
                       (w->sc == UPDATE_CONFIRMED && st->active == booted && st->confirmed));
    if (w->sc == NEVER_BOOTS)
        CU_ASSERT_FALSE(is_new);
    /* Ferry's state vouches only for whole slots, and the counter never
     * passed a confirmed image. */
    for (int i = 0; i < 2; i++) {
        if (st->slot[i].valid)
            CU_ASSERT_EQUAL(inst_engine_verify(dv.eng, (enum edge_slot)i, NULL), FERRY_OK);
    }
    CU_ASSERT_TRUE(st->rollback_seq == SEQ_OLD || st->rollback_seq == SEQ_NEW);
    if (st->confirmed)
        CU_ASSERT_TRUE(st->rollback_seq <= st->slot[st->active].img.seq);
    if (w->sc != UPDATE_CONFIRMED)
        CU_ASSERT_EQUAL(st->rollback_seq, SEQ_OLD);
    if (dv.start.verdict == INST_BOOT_NORMAL) {
        /* The bootloader aims where Ferry's state says. */
        const struct inst_bootloader *bl = inst_bootenv_bootloader(dv.bl);
        enum edge_slot primary = EDGE_SLOT_NONE;
        CU_ASSERT_EQUAL(bl->ops->get_primary(bl->ctx, &primary, NULL), FERRY_OK);
        CU_ASSERT_EQUAL(primary, st->active);
        CU_ASSERT_EQUAL(booted, st->active);
    }
    device_off(&dv);
    env_close(&env);
    edge_slots_file_free(be);
}

/* Runs the scenario with call k faulty (NO_FAULT: none), then cuts the
 * power, and returns how many calls it numbered. */
static uint64_t run_with_fault(struct world *w, const struct round *r, uint64_t k)
{
    struct ferry_io_faulty *f = NULL;
    struct edge_slots_backend *file = NULL;
    struct slots_inplace ip;
    struct env env;
    reset_device(w);
    CU_ASSERT_EQUAL_FATAL(ferry_io_faulty_new(&f, NULL), FERRY_OK);
    const struct ferry_io *io = ferry_io_faulty_io(f);
    CU_ASSERT_EQUAL_FATAL(edge_slots_file_new_io(io, w->dir, CAPACITY, &file, NULL), FERRY_OK);
    env_open(&env, r->in_place, io, w->dir);
    slots_fault_arm(f, r->fault, k);
    const struct edge_slots_backend *slots = file;
    if (r->in_place) {
        slots_inplace_init(&ip, file, io, w->dir);
        slots = &ip.be;
    }
    struct edge_slots_backend dev = like_device(slots);
    enum ferry_err err = run(w, r->devices ? &dev : slots, env.store);
    if (r->fault != FAIL_CALL) {
        /* Only the cut may stop the run. */
        CU_ASSERT_EQUAL(err == FERRY_OK, !ferry_io_faulty_stopped(f));
        if (err != FERRY_OK)
            CU_ASSERT_EQUAL(err, FERRY_E_IO);
    }
    uint64_t calls = slots_fault_end(f, r->fault);
    env_close(&env);
    edge_slots_file_free(file);
    ferry_io_faulty_free(f);
    return calls;
}

/* Every fault on files; on partitions, whose only difference is that a
 * dropped slot keeps its bytes, a plain cut and a torn one. */
static const struct round ROUNDS[] = {
    {CUT_POWER, false, false}, {CUT_POWER, true, false}, {CUT_POWER_TORN, true, false},
    {FAIL_CALL, false, false}, {CUT_POWER, false, true}, {CUT_POWER_TORN, true, true},
};

static void cut_everywhere(enum scenario sc)
{
    struct world w;
    memset(&w, 0, sizeof(w));
    w.sc = sc;
    make_template(&w);
    for (size_t i = 0; i < sizeof(ROUNDS) / sizeof(ROUNDS[0]); i++) {
        const struct round *r = &ROUNDS[i];
        uint64_t total = run_with_fault(&w, r, NO_FAULT);
        CU_ASSERT_TRUE(total >= IMG_SIZE / BLOCK + 8);
        struct tally t = {0, 0, 0};
        for (uint64_t k = 0; k <= total; k++) {
            uint64_t calls = run_with_fault(&w, r, k < total ? k : NO_FAULT);
            if (r->fault != FAIL_CALL)
                CU_ASSERT_EQUAL(calls, k < total ? k + 1 : total);
            check_restart(&w, k, r, &t);
            t.cuts++;
        }
        CU_ASSERT_EQUAL(t.cuts, total + 1);
        CU_ASSERT_TRUE(t.old > 0);
        if (sc == UPDATE_CONFIRMED)
            CU_ASSERT_TRUE(t.new_ > 0);
        printf("\n    %s, %s, %s, %s: %u faults (0..%llu), runs old %u, new %u ", NAMES[sc],
               slots_fault_name(r->fault), r->devices ? "partitions" : "files",
               r->in_place ? "in place" : "atomic", t.cuts, (unsigned long long)total, t.old,
               t.new_);
    }
}

static void update_survives_a_cut_at_every_write(void)
{
    cut_everywhere(UPDATE_CONFIRMED);
}

static void failed_health_check_survives_a_cut_at_every_write(void)
{
    cut_everywhere(HEALTH_FAILED);
}

static void image_that_never_boots_survives_a_cut_at_every_write(void)
{
    cut_everywhere(NEVER_BOOTS);
}

static void trial_that_dies_early_survives_a_cut_at_every_write(void)
{
    cut_everywhere(DIES_ON_TRIAL);
}

const char *const ferry_suite_name = "inst_powercut";
const struct ferry_test_case ferry_tests[] = {
    {"update survives a cut at every write", update_survives_a_cut_at_every_write},
    {"failed health check survives a cut at every write",
     failed_health_check_survives_a_cut_at_every_write},
    {"image that never boots survives a cut at every write",
     image_that_never_boots_survives_a_cut_at_every_write},
    {"trial that dies early survives a cut at every write",
     trial_that_dies_early_survives_a_cut_at_every_write},
    {NULL, NULL},
};
