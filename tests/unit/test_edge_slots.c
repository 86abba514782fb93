#include "cunit_main.h"

#include "edge_slots.h"
#include "ferry_fs.h"
#include "ferry_io_faulty.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CAPACITY  (256 * 1024)
#define IMG_SIZE  10000 /* not a multiple of the block size */
#define BLOCK     1024
#define SEED_A    1
#define SEED_B    2
#define SEQ_A     5
#define SEQ_B     6
#define N_BLOCKS  ((IMG_SIZE + BLOCK - 1) / BLOCK)
#define LAST_SIZE (IMG_SIZE - (N_BLOCKS - 1) * BLOCK)

/* Image bytes are a function of (seed, position), so no test holds a whole
 * image and each seed gives a different one. */
static uint8_t image_byte(uint32_t seed, uint64_t pos)
{
    uint64_t x = (pos + 1) * UINT64_C(0x9E3779B97F4A7C15) ^ ((uint64_t)seed << 32);
    x ^= x >> 29;
    return (uint8_t)(x * UINT64_C(0xBF58476D1CE4E5B9) >> 56);
}

static void image_block(uint32_t seed, uint64_t off, uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = image_byte(seed, off + i);
}

static struct edge_image describe(uint32_t seed, uint64_t size, uint64_t seq)
{
    struct edge_image img;
    memset(&img, 0, sizeof(img));
    struct ferry_sha256 h;
    ferry_sha256_init(&h);
    uint8_t buf[BLOCK];
    for (uint64_t off = 0; off < size; off += BLOCK) {
        size_t n = size - off < BLOCK ? (size_t)(size - off) : BLOCK;
        image_block(seed, off, buf, n);
        ferry_sha256_update(&h, buf, n);
    }
    ferry_sha256_final(&h, img.sha256);
    img.size = size;
    img.seq = seq;
    snprintf(img.version, sizeof(img.version), "1.%llu.0", (unsigned long long)seq);
    return img;
}

struct fixture {
    char dir[PATH_MAX - 64]; /* leaves room for the file names */
    struct edge_slots_backend *be;
    struct edge_slots *s;
};

static void path_in(const struct fixture *fx, const char *name, char out[PATH_MAX])
{
    snprintf(out, PATH_MAX, "%s/%s", fx->dir, name);
}

static void write_raw_image(const struct fixture *fx, const char *name, uint32_t seed,
                            uint64_t size)
{
    char path[PATH_MAX];
    path_in(fx, name, path);
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    uint8_t buf[BLOCK];
    for (uint64_t off = 0; off < size; off += BLOCK) {
        size_t n = size - off < BLOCK ? (size_t)(size - off) : BLOCK;
        image_block(seed, off, buf, n);
        CU_ASSERT_EQUAL(fwrite(buf, 1, n, f), n);
    }
    CU_ASSERT_EQUAL(fclose(f), 0);
}

static void reopen(struct fixture *fx)
{
    struct ferry_diag d = {{0}};
    edge_slots_free(fx->s);
    fx->s = NULL;
    CU_ASSERT_EQUAL_FATAL(edge_slots_open(fx->be, &fx->s, &d), FERRY_OK);
}

/* A fresh state folder with no records. */
static void setup_empty(struct fixture *fx)
{
    static int n;
    snprintf(fx->dir, sizeof(fx->dir), "%s/slots-%d", ferry_test_tmpdir(), n++);
    CU_ASSERT_EQUAL_FATAL(ferry_mkdir_p(fx->dir, 0755, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_slots_file_new(fx->dir, CAPACITY, &fx->be, NULL), FERRY_OK);
    fx->s = NULL;
    reopen(fx);
}

/* A device out of the factory: image A adopted and confirmed by its first
 * health check. */
static void setup(struct fixture *fx)
{
    setup_empty(fx);
    write_raw_image(fx, "slot-a.img", SEED_A, IMG_SIZE);
    struct edge_image a = describe(SEED_A, IMG_SIZE, SEQ_A);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(edge_slots_adopt(fx->s, EDGE_SLOT_A, &a, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_slots_confirm(fx->s, EDGE_SLOT_A, &d), FERRY_OK);
}

static void teardown(struct fixture *fx)
{
    edge_slots_free(fx->s);
    edge_slots_file_free(fx->be);
}

static enum ferry_err write_block(struct edge_slots *s, uint32_t seed, size_t i)
{
    uint8_t buf[BLOCK];
    size_t len = i == N_BLOCKS - 1 ? LAST_SIZE : BLOCK;
    image_block(seed, (uint64_t)i * BLOCK, buf, len);
    return edge_slots_write(s, (uint64_t)i * BLOCK, buf, len, NULL);
}

/* Writes every block of the image, last block first, each one twice. */
static void write_all_blocks(struct edge_slots *s, uint32_t seed)
{
    for (size_t k = N_BLOCKS; k-- > 0;) {
        CU_ASSERT_EQUAL(write_block(s, seed, k), FERRY_OK);
        CU_ASSERT_EQUAL(write_block(s, seed, k), FERRY_OK);
    }
}

static void install_b(struct fixture *fx, unsigned attempts)
{
    struct edge_image b = describe(SEED_B, IMG_SIZE, SEQ_B);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(edge_slots_begin(fx->s, &b, &d), FERRY_OK);
    write_all_blocks(fx->s, SEED_B);
    CU_ASSERT_EQUAL(edge_slots_progress(fx->s), IMG_SIZE);
    CU_ASSERT_EQUAL_FATAL(edge_slots_finish(fx->s, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_slots_set_trial(fx->s, attempts, &d), FERRY_OK);
}

static enum edge_slot boot(struct fixture *fx)
{
    enum edge_slot slot = EDGE_SLOT_NONE;
    reopen(fx);
    CU_ASSERT_EQUAL(edge_slots_boot(fx->s, &slot, NULL), FERRY_OK);
    return slot;
}

static void damage_file(const struct fixture *fx, const char *name, long off)
{
    char path[PATH_MAX];
    path_in(fx, name, path);
    FILE *f = fopen(path, "r+b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fseek(f, off, SEEK_SET), 0);
    int c = fgetc(f);
    CU_ASSERT_NOT_EQUAL(c, EOF);
    CU_ASSERT_EQUAL(fseek(f, off, SEEK_SET), 0);
    CU_ASSERT_NOT_EQUAL(fputc(c ^ 0x40, f), EOF);
    CU_ASSERT_EQUAL(fclose(f), 0);
}

static long file_size(const struct fixture *fx, const char *name)
{
    char path[PATH_MAX];
    struct stat st;
    path_in(fx, name, path);
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void update_installs_tries_and_confirms(void)
{
    struct fixture fx;
    setup(&fx);
    install_b(&fx, 3);
    const struct edge_boot_state *st = edge_slots_state(fx.s);
    CU_ASSERT_EQUAL(st->trial, EDGE_SLOT_B);
    CU_ASSERT_EQUAL(st->rollback_seq, SEQ_A);

    CU_ASSERT_EQUAL(boot(&fx), EDGE_SLOT_B);
    CU_ASSERT_EQUAL(edge_slots_state(fx.s)->attempts, 2);
    CU_ASSERT_EQUAL(edge_slots_verify(fx.s, EDGE_SLOT_B, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(edge_slots_confirm(fx.s, EDGE_SLOT_B, NULL), FERRY_OK);

    CU_ASSERT_EQUAL(boot(&fx), EDGE_SLOT_B);
    st = edge_slots_state(fx.s);
    CU_ASSERT_EQUAL(edge_slots_source(fx.s), EDGE_BOOT_SRC_COPY);
    CU_ASSERT_EQUAL(st->active, EDGE_SLOT_B);
    CU_ASSERT_EQUAL(st->trial, EDGE_SLOT_NONE);
    CU_ASSERT_TRUE(st->confirmed);
    CU_ASSERT_EQUAL(st->rollback_seq, SEQ_B);
    CU_ASSERT_STRING_EQUAL(st->slot[EDGE_SLOT_B].img.version, "1.6.0");
    CU_ASSERT_EQUAL(file_size(&fx, "slot-b.img"), IMG_SIZE);

    /* The LKG record follows the confirm. */
    uint8_t buf[EDGE_BOOT_REC_MAX];
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(
        fx.be->ops->record_read(fx.be->ctx, EDGE_REC_LKG, buf, sizeof(buf), &len, NULL), FERRY_OK);
    enum edge_slot slot = EDGE_SLOT_NONE;
    struct edge_image img;
    CU_ASSERT_EQUAL(edge_boot_lkg_decode(buf, len, &slot, &img, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(slot, EDGE_SLOT_B);
    CU_ASSERT_EQUAL(img.seq, SEQ_B);
    teardown(&fx);
}

static void wrong_block_fails_the_hash_and_changes_nothing(void)
{
    struct fixture fx;
    setup(&fx);
    struct edge_image b = describe(SEED_B, IMG_SIZE, SEQ_B);
    CU_ASSERT_EQUAL_FATAL(edge_slots_begin(fx.s, &b, NULL), FERRY_OK);
    uint64_t gen = edge_slots_state(fx.s)->generation;
    write_all_blocks(fx.s, SEED_B);
    CU_ASSERT_EQUAL(write_block(fx.s, SEED_A, 3), FERRY_OK); /* a late block from elsewhere */
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(edge_slots_finish(fx.s, &d), FERRY_E_HASH_MISMATCH);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "slot B"));
    const struct edge_boot_state *st = edge_slots_state(fx.s);
    CU_ASSERT_EQUAL(st->generation, gen);
    CU_ASSERT_FALSE(st->slot[EDGE_SLOT_B].valid);
    CU_ASSERT_EQUAL(edge_slots_set_trial(fx.s, 1, NULL), FERRY_E_NOT_FOUND);
    CU_ASSERT_EQUAL(edge_slots_finish(fx.s, NULL), FERRY_E_INVALID_ARG); /* install is over */
    CU_ASSERT_EQUAL(boot(&fx), EDGE_SLOT_A);
    teardown(&fx);
}

static void missing_block_fails_the_size_check(void)
{
    struct fixture fx;
    setup(&fx);
    struct edge_image b = describe(SEED_B, IMG_SIZE, SEQ_B);
    CU_ASSERT_EQUAL_FATAL(edge_slots_begin(fx.s, &b, NULL), FERRY_OK);
    for (size_t i = 0; i + 1 < N_BLOCKS; i++)
        CU_ASSERT_EQUAL(write_block(fx.s, SEED_B, i), FERRY_OK);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(edge_slots_finish(fx.s, &d), FERRY_E_SIZE_MISMATCH);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "slot-b.img"));
    CU_ASSERT_FALSE(edge_slots_state(fx.s)->slot[EDGE_SLOT_B].valid);
    teardown(&fx);
}

static void writes_outside_an_install_or_the_image_are_refused(void)
{
    struct fixture fx;
    setup(&fx);
    uint8_t buf[BLOCK] = {0};
    CU_ASSERT_EQUAL(edge_slots_write(fx.s, 0, buf, sizeof(buf), NULL), FERRY_E_INVALID_ARG);
    struct edge_image b = describe(SEED_B, IMG_SIZE, SEQ_B);
    CU_ASSERT_EQUAL_FATAL(edge_slots_begin(fx.s, &b, NULL), FERRY_OK);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(edge_slots_write(fx.s, IMG_SIZE - 10, buf, 11, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "past the image size"));
    CU_ASSERT_EQUAL(edge_slots_write(fx.s, UINT64_MAX, buf, 1, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(edge_slots_write(fx.s, 0, buf, 0, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(edge_slots_write(fx.s, IMG_SIZE - 10, buf, 10, NULL), FERRY_OK);
    edge_slots_abort(fx.s);
    CU_ASSERT_EQUAL(edge_slots_progress(fx.s), 0);
    CU_ASSERT_EQUAL(edge_slots_write(fx.s, 0, buf, 1, NULL), FERRY_E_INVALID_ARG);
    teardown(&fx);
}

static void begin_refuses_downgrades_oversize_and_pending_trials(void)
{
    struct fixture fx;
    setup(&fx);
    struct ferry_diag d = {{0}};
    struct edge_image same = describe(SEED_B, IMG_SIZE, SEQ_A);
    CU_ASSERT_EQUAL(edge_slots_begin(fx.s, &same, &d), FERRY_E_DOWNGRADE);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "not above"));
    struct edge_image big = describe(SEED_B, IMG_SIZE, SEQ_B);
    big.size = CAPACITY + 1;
    CU_ASSERT_EQUAL(edge_slots_begin(fx.s, &big, &d), FERRY_E_ARTIFACT_TOO_LARGE);
    install_b(&fx, 2);
    struct edge_image next = describe(SEED_A, IMG_SIZE, SEQ_B + 1);
    CU_ASSERT_EQUAL(edge_slots_begin(fx.s, &next, &d), FERRY_E_BUSY);
    CU_ASSERT_EQUAL(edge_slots_state(fx.s)->trial, EDGE_SLOT_B);
    teardown(&fx);
}

static void explicit_rollback_returns_to_the_confirmed_slot(void)
{
    struct fixture fx;
    setup(&fx);
    install_b(&fx, 3);
    CU_ASSERT_EQUAL(boot(&fx), EDGE_SLOT_B);
    enum edge_slot to = EDGE_SLOT_NONE;
    CU_ASSERT_EQUAL(edge_slots_rollback(fx.s, &to, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(to, EDGE_SLOT_A);
    CU_ASSERT_EQUAL(file_size(&fx, "slot-b.img"), 0); /* marked invalid on the device too */
    CU_ASSERT_EQUAL(boot(&fx), EDGE_SLOT_A);
    const struct edge_boot_state *st = edge_slots_state(fx.s);
    CU_ASSERT_FALSE(st->slot[EDGE_SLOT_B].valid);
    CU_ASSERT_EQUAL(st->rollback_seq, SEQ_A);
    CU_ASSERT_EQUAL(edge_slots_confirm(fx.s, EDGE_SLOT_B, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(edge_slots_rollback(fx.s, &to, NULL), FERRY_E_INVALID_ARG);
    teardown(&fx);
}

static void exhausted_attempts_roll_back_on_their_own(void)
{
    struct fixture fx;
    setup(&fx);
    install_b(&fx, 2);
    CU_ASSERT_EQUAL(boot(&fx), EDGE_SLOT_B);
    CU_ASSERT_EQUAL(boot(&fx), EDGE_SLOT_B);
    CU_ASSERT_EQUAL(boot(&fx), EDGE_SLOT_A);
    CU_ASSERT_EQUAL(edge_slots_state(fx.s)->trial, EDGE_SLOT_NONE);
    CU_ASSERT_EQUAL(edge_slots_state(fx.s)->rollback_seq, SEQ_A);
    CU_ASSERT_EQUAL(boot(&fx), EDGE_SLOT_A);
    /* A later update still works. */
    install_b(&fx, 1);
    CU_ASSERT_EQUAL(boot(&fx), EDGE_SLOT_B);
    teardown(&fx);
}

static void records_alternate_between_the_two_copies(void)
{
    struct fixture fx;
    setup(&fx);
    install_b(&fx, 3);
    for (int i = 0; i < 3; i++) {
        uint8_t buf[2][EDGE_BOOT_REC_MAX];
        struct edge_boot_state st[2];
        for (int c = 0; c < 2; c++) {
            size_t len = 0;
            CU_ASSERT_EQUAL_FATAL(fx.be->ops->record_read(fx.be->ctx, (enum edge_boot_rec)c, buf[c],
                                                          sizeof(buf[c]), &len, NULL),
                                  FERRY_OK);
            CU_ASSERT_EQUAL_FATAL(edge_boot_decode(buf[c], len, &st[c], NULL), FERRY_OK);
        }
        uint64_t gen = edge_slots_state(fx.s)->generation;
        CU_ASSERT_TRUE(st[0].generation == gen || st[1].generation == gen);
        CU_ASSERT_TRUE(st[0].generation + 1 == st[1].generation ||
                       st[1].generation + 1 == st[0].generation);
        CU_ASSERT_EQUAL(boot(&fx), EDGE_SLOT_B);
    }
    teardown(&fx);
}

static void damaged_newest_copy_falls_back_to_the_previous_state(void)
{
    struct fixture fx;
    setup(&fx);
    install_b(&fx, 2);
    uint64_t gen = edge_slots_state(fx.s)->generation;
    const char *newest = gen % 2 ? "boot.0" : "boot.1"; /* generation 1 went to copy 0 */
    damage_file(&fx, newest, 30);
    reopen(&fx);
    const struct edge_boot_state *st = edge_slots_state(fx.s);
    CU_ASSERT_EQUAL(st->generation, gen - 1);
    CU_ASSERT_EQUAL(st->trial, EDGE_SLOT_NONE); /* the trial was the lost step */
    CU_ASSERT_TRUE(st->slot[EDGE_SLOT_B].valid);
    CU_ASSERT_EQUAL(boot(&fx), EDGE_SLOT_A);
    /* The next write replaces the damaged copy, not the good one. */
    CU_ASSERT_EQUAL(edge_slots_set_trial(fx.s, 1, NULL), FERRY_OK);
    reopen(&fx);
    CU_ASSERT_EQUAL(edge_slots_state(fx.s)->generation, gen);
    CU_ASSERT_EQUAL(edge_slots_state(fx.s)->trial, EDGE_SLOT_B);
    teardown(&fx);
}

static void both_copies_damaged_boot_the_last_known_good_slot(void)
{
    struct fixture fx;
    setup(&fx);
    install_b(&fx, 2);
    CU_ASSERT_EQUAL(boot(&fx), EDGE_SLOT_B);
    CU_ASSERT_EQUAL(edge_slots_confirm(fx.s, EDGE_SLOT_B, NULL), FERRY_OK);
    damage_file(&fx, "boot.0", 100);
    damage_file(&fx, "boot.1", 200);
    CU_ASSERT_EQUAL(boot(&fx), EDGE_SLOT_B);
    const struct edge_boot_state *st = edge_slots_state(fx.s);
    CU_ASSERT_EQUAL(edge_slots_source(fx.s), EDGE_BOOT_SRC_LKG);
    CU_ASSERT_TRUE(st->confirmed);
    CU_ASSERT_EQUAL(st->rollback_seq, SEQ_B);
    CU_ASSERT_EQUAL(edge_slots_verify(fx.s, EDGE_SLOT_B, NULL), FERRY_OK);
    /* Updates go on from there: A is the slot to overwrite. */
    struct edge_image next = describe(SEED_A, IMG_SIZE, SEQ_B + 1);
    CU_ASSERT_EQUAL(edge_slots_begin(fx.s, &next, NULL), FERRY_OK);

    damage_file(&fx, "boot.lkg", 20);
    damage_file(&fx, "boot.0", 101); /* other bytes: the same ones would flip back */
    damage_file(&fx, "boot.1", 201);
    CU_ASSERT_EQUAL(boot(&fx), EDGE_SLOT_A);
    CU_ASSERT_EQUAL(edge_slots_source(fx.s), EDGE_BOOT_SRC_RECOVERY);
    CU_ASSERT_FALSE(edge_slots_state(fx.s)->confirmed);
    teardown(&fx);
}

static void empty_folder_is_a_factory_state_until_adopted(void)
{
    struct fixture fx;
    setup_empty(&fx);
    CU_ASSERT_EQUAL(edge_slots_source(fx.s), EDGE_BOOT_SRC_FACTORY);
    CU_ASSERT_EQUAL(boot(&fx), EDGE_SLOT_A);
    struct edge_image a = describe(SEED_A, IMG_SIZE, SEQ_A);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(edge_slots_adopt(fx.s, EDGE_SLOT_A, &a, &d), FERRY_E_SIZE_MISMATCH);
    write_raw_image(&fx, "slot-a.img", SEED_B, IMG_SIZE); /* not the image described */
    CU_ASSERT_EQUAL(edge_slots_adopt(fx.s, EDGE_SLOT_A, &a, &d), FERRY_E_HASH_MISMATCH);
    write_raw_image(&fx, "slot-a.img", SEED_A, IMG_SIZE);
    CU_ASSERT_EQUAL(edge_slots_adopt(fx.s, EDGE_SLOT_A, &a, &d), FERRY_OK);
    CU_ASSERT_FALSE(edge_slots_state(fx.s)->confirmed);
    CU_ASSERT_EQUAL(edge_slots_adopt(fx.s, EDGE_SLOT_A, &a, &d), FERRY_E_BUSY);
    CU_ASSERT_EQUAL(boot(&fx), EDGE_SLOT_A);
    CU_ASSERT_EQUAL(edge_slots_confirm(fx.s, EDGE_SLOT_A, &d), FERRY_OK);
    uint64_t gen = edge_slots_state(fx.s)->generation;
    CU_ASSERT_EQUAL(edge_slots_confirm(fx.s, EDGE_SLOT_A, &d), FERRY_OK);
    CU_ASSERT_EQUAL(edge_slots_state(fx.s)->generation, gen); /* nothing new to store */
    CU_ASSERT_EQUAL(edge_slots_state(fx.s)->rollback_seq, SEQ_A);
    teardown(&fx);
}

static void verify_catches_a_changed_image(void)
{
    struct fixture fx;
    setup(&fx);
    CU_ASSERT_EQUAL(edge_slots_verify(fx.s, EDGE_SLOT_A, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(edge_slots_verify(fx.s, EDGE_SLOT_B, NULL), FERRY_E_NOT_FOUND);
    damage_file(&fx, "slot-a.img", IMG_SIZE - 1);
    CU_ASSERT_EQUAL(edge_slots_verify(fx.s, EDGE_SLOT_A, NULL), FERRY_E_HASH_MISMATCH);
    teardown(&fx);
}

static void file_backend_refuses_bad_arguments(void)
{
    struct edge_slots_backend *be = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(edge_slots_file_new("", 1, &be, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(edge_slots_file_new(ferry_test_tmpdir(), 0, &be, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NULL(be);
    edge_slots_file_free(NULL);
}

/* The file backend through the fault-injecting driver: a power cut loses
 * the blocks written since the slot's last sync, keeps the synced ones, and
 * the program is dead from the cut on. */
static void file_backend_loses_unsynced_blocks_at_a_power_cut(void)
{
    struct fixture fx;
    setup(&fx);
    teardown(&fx);
    struct ferry_io_faulty *f = NULL;
    CU_ASSERT_EQUAL_FATAL(ferry_io_faulty_new(&f, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(
        edge_slots_file_new_io(ferry_io_faulty_io(f), fx.dir, CAPACITY, &fx.be, NULL), FERRY_OK);
    fx.s = NULL;
    reopen(&fx);
    struct edge_image b = describe(SEED_B, IMG_SIZE, SEQ_B);
    CU_ASSERT_EQUAL_FATAL(edge_slots_begin(fx.s, &b, NULL), FERRY_OK);
    for (size_t i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(write_block(fx.s, SEED_B, i), FERRY_OK);
    CU_ASSERT_EQUAL(edge_slots_sync(fx.s, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(write_block(fx.s, SEED_B, 3), FERRY_OK);
    /* Block 4's write is where the power fails. */
    ferry_io_faulty_stop_at(f, ferry_io_faulty_calls(f), FERRY_IO_POWER);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(write_block(fx.s, SEED_B, 4), FERRY_E_IO);
    CU_ASSERT_TRUE(ferry_io_faulty_stopped(f));
    CU_ASSERT_EQUAL(edge_slots_finish(fx.s, &d), FERRY_E_IO);
    teardown(&fx);
    ferry_io_faulty_free(f);

    /* Synced blocks survive; block 3 (unsynced) and block 4 (in flight) do not. */
    CU_ASSERT_EQUAL_FATAL(edge_slots_file_new(fx.dir, CAPACITY, &fx.be, NULL), FERRY_OK);
    fx.s = NULL;
    reopen(&fx);
    CU_ASSERT_FALSE(edge_slots_state(fx.s)->slot[EDGE_SLOT_B].valid);
    uint8_t got[BLOCK], want[BLOCK];
    for (size_t i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL_FATAL(
            fx.be->ops->read(fx.be->ctx, EDGE_SLOT_B, i * BLOCK, got, BLOCK, NULL), FERRY_OK);
        image_block(SEED_B, i * BLOCK, want, BLOCK);
        CU_ASSERT_EQUAL(memcmp(got, want, BLOCK), 0);
    }
    CU_ASSERT_EQUAL(fx.be->ops->read(fx.be->ctx, EDGE_SLOT_B, 3 * BLOCK, got, 1, NULL),
                    FERRY_E_SIZE_MISMATCH);
    teardown(&fx);
}

/* Each record is replaced atomically: a power cut, torn or not, at any
 * call of its write leaves the old record or the new one, whole. */
static void file_backend_records_are_old_or_new_after_any_cut(void)
{
    struct fixture fx;
    setup(&fx);
    uint8_t before[EDGE_BOOT_REC_MAX], after[EDGE_BOOT_REC_MAX], rec[64];
    size_t lb = 0;
    CU_ASSERT_EQUAL_FATAL(
        fx.be->ops->record_read(fx.be->ctx, EDGE_REC_COPY1, before, sizeof(before), &lb, NULL),
        FERRY_OK);
    for (size_t i = 0; i < sizeof(rec); i++)
        rec[i] = (uint8_t)(0xA0 + i);
    teardown(&fx);
    for (int how = FERRY_IO_POWER; how <= FERRY_IO_POWER_TORN; how++) {
        unsigned olds = 0, news = 0;
        for (uint64_t k = 0;; k++) {
            struct ferry_io_faulty *f = NULL;
            struct edge_slots_backend *be = NULL;
            CU_ASSERT_EQUAL_FATAL(ferry_io_faulty_new(&f, NULL), FERRY_OK);
            ferry_io_faulty_stop_at(f, k, (enum ferry_io_stop)how);
            CU_ASSERT_EQUAL_FATAL(
                edge_slots_file_new_io(ferry_io_faulty_io(f), fx.dir, CAPACITY, &be, NULL),
                FERRY_OK);
            enum ferry_err err =
                be->ops->record_write(be->ctx, EDGE_REC_COPY1, rec, sizeof(rec), NULL);
            bool stopped = ferry_io_faulty_stopped(f);
            CU_ASSERT_EQUAL(err == FERRY_OK, !stopped);
            ferry_io_faulty_stop(f, (enum ferry_io_stop)how);
            edge_slots_file_free(be);
            ferry_io_faulty_free(f);
            CU_ASSERT_EQUAL_FATAL(edge_slots_file_new(fx.dir, CAPACITY, &be, NULL), FERRY_OK);
            size_t la = 0;
            CU_ASSERT_EQUAL(
                be->ops->record_read(be->ctx, EDGE_REC_COPY1, after, sizeof(after), &la, NULL),
                FERRY_OK);
            bool is_old = la == lb && memcmp(after, before, lb) == 0;
            bool is_new = la == sizeof(rec) && memcmp(after, rec, la) == 0;
            CU_ASSERT_TRUE(is_old || is_new);
            olds += is_old;
            news += is_new;
            /* Back to the old record for the next cut. */
            CU_ASSERT_EQUAL(be->ops->record_write(be->ctx, EDGE_REC_COPY1, before, lb, NULL),
                            FERRY_OK);
            edge_slots_file_free(be);
            if (!stopped)
                break;
        }
        CU_ASSERT_TRUE(olds >= 3); /* the temporary file's open, write and fsync at least */
        CU_ASSERT_TRUE(news >= 1);
    }
}

const char *const ferry_suite_name = "edge_slots";
const struct ferry_test_case ferry_tests[] = {
    {"update_installs_tries_and_confirms", update_installs_tries_and_confirms},
    {"wrong_block_fails_the_hash_and_changes_nothing",
     wrong_block_fails_the_hash_and_changes_nothing},
    {"missing_block_fails_the_size_check", missing_block_fails_the_size_check},
    {"writes_outside_an_install_or_the_image_are_refused",
     writes_outside_an_install_or_the_image_are_refused},
    {"begin_refuses_downgrades_oversize_and_pending_trials",
     begin_refuses_downgrades_oversize_and_pending_trials},
    {"explicit_rollback_returns_to_the_confirmed_slot",
     explicit_rollback_returns_to_the_confirmed_slot},
    {"exhausted_attempts_roll_back_on_their_own", exhausted_attempts_roll_back_on_their_own},
    {"records_alternate_between_the_two_copies", records_alternate_between_the_two_copies},
    {"damaged_newest_copy_falls_back_to_the_previous_state",
     damaged_newest_copy_falls_back_to_the_previous_state},
    {"both_copies_damaged_boot_the_last_known_good_slot",
     both_copies_damaged_boot_the_last_known_good_slot},
    {"empty_folder_is_a_factory_state_until_adopted",
     empty_folder_is_a_factory_state_until_adopted},
    {"verify_catches_a_changed_image", verify_catches_a_changed_image},
    {"file_backend_refuses_bad_arguments", file_backend_refuses_bad_arguments},
    {"file_backend_loses_unsynced_blocks_at_a_power_cut",
     file_backend_loses_unsynced_blocks_at_a_power_cut},
    {"file_backend_records_are_old_or_new_after_any_cut",
     file_backend_records_are_old_or_new_after_any_cut},
    {NULL, NULL},
};
