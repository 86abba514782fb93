/* edge_slots_resume() and edge_slots_sync(): continuing an install into a
 * partly written slot after a restart, over the file backend. */
#include "cunit_main.h"

#include "edge_slots.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define IMG_SIZE (10 * 1024 + 100)
#define BLOCK    1024
#define CAPACITY (64 * 1024)

static uint8_t image[IMG_SIZE];

struct fixture {
    char dir[PATH_MAX];
    struct edge_slots_backend *be;
    struct edge_slots *s;
    struct edge_image img;
};

static void reopen(struct fixture *fx)
{
    edge_slots_free(fx->s);
    CU_ASSERT_EQUAL_FATAL(edge_slots_open(fx->be, &fx->s, NULL), FERRY_OK);
}

static void setup(struct fixture *fx)
{
    static unsigned counter;
    memset(fx, 0, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "%s/r%u", ferry_test_tmpdir(), counter++);
    CU_ASSERT_EQUAL_FATAL(mkdir(fx->dir, 0700), 0);
    CU_ASSERT_EQUAL_FATAL(edge_slots_file_new(fx->dir, CAPACITY, &fx->be, NULL), FERRY_OK);
    reopen(fx);
    for (size_t i = 0; i < sizeof(image); i++)
        image[i] = (uint8_t)(i * 13 + (i >> 7));
    ferry_sha256(image, sizeof(image), fx->img.sha256);
    fx->img.size = sizeof(image);
    fx->img.seq = 5;
    snprintf(fx->img.version, sizeof(fx->img.version), "3.1.0");
}

static void teardown(struct fixture *fx)
{
    edge_slots_free(fx->s);
    edge_slots_file_free(fx->be);
}

static void write_blocks(struct fixture *fx, size_t from, size_t to)
{
    for (size_t off = from; off < to; off += BLOCK) {
        size_t n = sizeof(image) - off < BLOCK ? sizeof(image) - off : BLOCK;
        CU_ASSERT_EQUAL_FATAL(edge_slots_write(fx->s, off, image + off, n, NULL), FERRY_OK);
    }
}

static void resumed_install_keeps_what_was_written(void)
{
    struct fixture fx;
    setup(&fx);
    CU_ASSERT_EQUAL_FATAL(edge_slots_begin(fx.s, &fx.img, NULL), FERRY_OK);
    write_blocks(&fx, 0, 4 * BLOCK);
    CU_ASSERT_EQUAL(edge_slots_sync(fx.s, NULL), FERRY_OK);
    reopen(&fx); /* a restart: the install under way is forgotten */
    CU_ASSERT_EQUAL(edge_slots_progress(fx.s), 0);
    CU_ASSERT_EQUAL(edge_slots_write(fx.s, 0, image, BLOCK, NULL), FERRY_E_INVALID_ARG);

    CU_ASSERT_EQUAL_FATAL(edge_slots_resume(fx.s, &fx.img, 4 * BLOCK, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(edge_slots_progress(fx.s), 4 * BLOCK);
    write_blocks(&fx, 4 * BLOCK, sizeof(image));
    CU_ASSERT_EQUAL(edge_slots_finish(fx.s, NULL), FERRY_OK);
    const struct edge_boot_state *st = edge_slots_state(fx.s);
    CU_ASSERT_TRUE(st->slot[EDGE_SLOT_B].valid);
    CU_ASSERT_EQUAL(edge_slots_set_trial(fx.s, 1, NULL), FERRY_OK);
    teardown(&fx);
}

static void resume_of_another_image_fails_the_final_check(void)
{
    struct fixture fx;
    setup(&fx);
    CU_ASSERT_EQUAL_FATAL(edge_slots_begin(fx.s, &fx.img, NULL), FERRY_OK);
    write_blocks(&fx, 0, 4 * BLOCK);
    reopen(&fx);
    /* The caller's record lied: the blocks before the offset are not there. */
    CU_ASSERT_EQUAL_FATAL(edge_slots_resume(fx.s, &fx.img, 6 * BLOCK, NULL), FERRY_OK);
    write_blocks(&fx, 6 * BLOCK, sizeof(image));
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(edge_slots_finish(fx.s, &d), FERRY_E_HASH_MISMATCH);
    CU_ASSERT_FALSE(edge_slots_state(fx.s)->slot[EDGE_SLOT_B].valid);
    teardown(&fx);
}

static void resume_is_refused_where_begin_would_be(void)
{
    struct fixture fx;
    setup(&fx);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(edge_slots_resume(fx.s, &fx.img, sizeof(image) + 1, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "past the image size"));
    struct edge_image big = fx.img;
    big.size = CAPACITY + 1;
    CU_ASSERT_EQUAL(edge_slots_resume(fx.s, &big, 0, NULL), FERRY_E_ARTIFACT_TOO_LARGE);
    CU_ASSERT_EQUAL(edge_slots_sync(fx.s, NULL), FERRY_E_INVALID_ARG);

    /* A finished image in the slot: a resume would skip the erase. */
    CU_ASSERT_EQUAL_FATAL(edge_slots_begin(fx.s, &fx.img, NULL), FERRY_OK);
    write_blocks(&fx, 0, sizeof(image));
    CU_ASSERT_EQUAL_FATAL(edge_slots_finish(fx.s, NULL), FERRY_OK);
    struct edge_image next = fx.img;
    next.seq = 6;
    CU_ASSERT_EQUAL(edge_slots_resume(fx.s, &next, 0, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "finished image"));

    /* And like begin, not while a trial is pending, nor for a downgrade. */
    CU_ASSERT_EQUAL_FATAL(edge_slots_set_trial(fx.s, 1, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(edge_slots_resume(fx.s, &next, 0, NULL), FERRY_E_BUSY);
    enum edge_slot slot;
    CU_ASSERT_EQUAL_FATAL(edge_slots_boot(fx.s, &slot, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_slots_confirm(fx.s, slot, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(edge_slots_resume(fx.s, &fx.img, 0, NULL), FERRY_E_DOWNGRADE);
    teardown(&fx);
}

/* A window of requests writes blocks in any order; the checkpoint lists the
 * first missing block and the ones after it that are in. After a restart
 * only the missing blocks are written, and the slot hashes right. */
static void out_of_order_blocks_resume_at_the_first_missing_one(void)
{
    struct fixture fx;
    setup(&fx);
    CU_ASSERT_EQUAL_FATAL(edge_slots_begin(fx.s, &fx.img, NULL), FERRY_OK);
    static const size_t first[] = {1, 0, 3, 5, 4, 7, 5}; /* 2 and 6 lost, 5 twice */
    for (size_t i = 0; i < sizeof(first) / sizeof(first[0]); i++)
        write_blocks(&fx, first[i] * BLOCK, (first[i] + 1) * BLOCK);
    CU_ASSERT_EQUAL(edge_slots_sync(fx.s, NULL), FERRY_OK);
    reopen(&fx);
    CU_ASSERT_EQUAL_FATAL(edge_slots_resume(fx.s, &fx.img, 2 * BLOCK, NULL), FERRY_OK);
    write_blocks(&fx, 6 * BLOCK, 7 * BLOCK);
    write_blocks(&fx, 2 * BLOCK, 3 * BLOCK);
    write_blocks(&fx, 8 * BLOCK, sizeof(image));
    CU_ASSERT_EQUAL(edge_slots_finish(fx.s, NULL), FERRY_OK);
    CU_ASSERT_TRUE(edge_slots_state(fx.s)->slot[EDGE_SLOT_B].valid);
    teardown(&fx);
}

const char *const ferry_suite_name = "edge_resume";
const struct ferry_test_case ferry_tests[] = {
    {"resumed install keeps what was written", resumed_install_keeps_what_was_written},
    {"resume of another image fails the final check",
     resume_of_another_image_fails_the_final_check},
    {"resume is refused where begin would be", resume_is_refused_where_begin_would_be},
    {"out-of-order blocks resume at the first missing one",
     out_of_order_blocks_resume_at_the_first_missing_one},
    {NULL, NULL},
};
