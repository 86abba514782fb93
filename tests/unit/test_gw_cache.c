#include "cunit_main.h"

#include "ferry_hex.h"
#include "ferry_io_faulty.h"
#include "ferry_stream.h"
#include "gw_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHUNK FERRY_STREAM_MIN_CHUNK

/* An artifact: deterministic bytes and their digest. */
struct test_artifact {
    uint8_t *data;
    uint64_t size;
    uint8_t sha[FERRY_SHA256_LEN];
    char hex[FERRY_SHA256_HEX_LEN + 1];
};

static struct test_artifact make_art(uint64_t size, uint32_t seed)
{
    struct test_artifact a = {.size = size};
    a.data = malloc(size);
    CU_ASSERT_FATAL(a.data != NULL);
    uint32_t x = seed * 2654435761u + 1;
    for (uint64_t i = 0; i < size; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        a.data[i] = (uint8_t)x;
    }
    ferry_sha256(a.data, size, a.sha);
    ferry_hex_encode(a.sha, FERRY_SHA256_LEN, a.hex);
    return a;
}

static void pathf(char *out, const char *fmt, ...) FERRY_PRINTF(2, 3);
static void pathf(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, PATH_MAX, fmt, ap);
    va_end(ap);
    CU_ASSERT_FATAL(n > 0 && n < PATH_MAX);
}

static const char *fresh_dir(void)
{
    static char dir[PATH_MAX];
    static unsigned counter;
    pathf(dir, "%s/cache-%u", ferry_test_tmpdir(), counter++);
    return dir;
}

static struct ferry_io_faulty *new_driver(void)
{
    struct ferry_io_faulty *f = NULL;
    CU_ASSERT_EQUAL_FATAL(ferry_io_faulty_new(&f, NULL), FERRY_OK);
    return f;
}

static struct gw_cache *open_cache(const char *dir, uint64_t quota, uint64_t sync_every,
                                   const struct ferry_io_faulty *f)
{
    struct gw_cache_opts o = {.dir = dir,
                              .quota = quota,
                              .sync_every = sync_every,
                              .io = f ? ferry_io_faulty_io(f) : NULL};
    struct gw_cache *c = NULL;
    struct ferry_diag d = {{0}};
    enum ferry_err err = gw_cache_open(&o, &c, &d);
    CU_ASSERT_EQUAL_FATAL(err, FERRY_OK);
    return c;
}

static struct gw_cache_part *open_part(struct gw_cache *c, const struct test_artifact *a,
                                       uint32_t chunk, const struct gw_cache_refs *refs)
{
    struct gw_cache_part *p = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(gw_cache_part_open(c, a->sha, a->size, chunk, refs, &p, &d), FERRY_OK);
    return p;
}

static uint32_t len_at(const struct test_artifact *a, uint64_t off, uint32_t chunk)
{
    return a->size - off < chunk ? (uint32_t)(a->size - off) : chunk;
}

/* Writes chunks from the part's end until `upto` bytes (or the end). */
static void write_upto(struct gw_cache_part *p, const struct test_artifact *a, uint32_t chunk,
                       uint64_t upto)
{
    while (gw_cache_part_end(p) < upto) {
        uint64_t off = gw_cache_part_end(p);
        bool written = false;
        struct ferry_diag d = {{0}};
        CU_ASSERT_EQUAL_FATAL(
            gw_cache_part_write(p, off, a->data + off, len_at(a, off, chunk), &written, &d),
            FERRY_OK);
        CU_ASSERT_FATAL(written);
    }
}

static void add_complete(struct gw_cache *c, const struct test_artifact *a)
{
    struct gw_cache_part *p = open_part(c, a, CHUNK, NULL);
    write_upto(p, a, CHUNK, a->size);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(gw_cache_part_finish(p, &d), FERRY_OK);
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static void part_file(char *out, const char *dir, const struct test_artifact *a, const char *ext)
{
    pathf(out, "%s/partial/%s.%s", dir, a->hex, ext);
}

static bool file_equals(const char *path, const struct test_artifact *a)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    uint8_t *buf = malloc(a->size + 1);
    size_t n = fread(buf, 1, a->size + 1, f);
    fclose(f);
    bool same = n == a->size && memcmp(buf, a->data, a->size) == 0;
    free(buf);
    return same;
}

static void patch_file(const char *path, off_t off, const void *bytes, size_t len)
{
    int fd = open(path, O_WRONLY);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(pwrite(fd, bytes, len, off), (ssize_t)len);
    close(fd);
}

static void download_enters_the_cache_under_its_digest(void)
{
    const char *dir = fresh_dir();
    struct test_artifact a = make_art(5 * CHUNK + 777, 1);
    struct gw_cache *c = open_cache(dir, 1 << 30, 0, NULL);
    CU_ASSERT_FALSE(gw_cache_has(c, a.sha, NULL));
    struct gw_cache_part *p = open_part(c, &a, CHUNK, NULL);
    CU_ASSERT_EQUAL(gw_cache_part_end(p), 0);
    CU_ASSERT_EQUAL(gw_cache_used(c), a.size); /* reserved up front */
    write_upto(p, &a, CHUNK, a.size);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(gw_cache_part_finish(p, &d), FERRY_OK);
    uint64_t size = 0;
    CU_ASSERT_TRUE(gw_cache_has(c, a.sha, &size));
    CU_ASSERT_EQUAL(size, a.size);
    char path[PATH_MAX];
    pathf(path, "%s/%s", dir, a.hex);
    CU_ASSERT_TRUE(file_equals(path, &a));
    part_file(path, dir, &a, "part");
    CU_ASSERT_EQUAL(file_size(path), -1);
    part_file(path, dir, &a, "crc");
    CU_ASSERT_EQUAL(file_size(path), -1);
    CU_ASSERT_EQUAL(gw_cache_part_open(c, a.sha, a.size, CHUNK, NULL, &p, &d), FERRY_E_INVALID_ARG);
    gw_cache_free(c);

    /* A new cache object on the folder finds it. */
    c = open_cache(dir, 1 << 30, 0, NULL);
    CU_ASSERT_TRUE(gw_cache_has(c, a.sha, &size));
    CU_ASSERT_EQUAL(gw_cache_used(c), a.size);
    gw_cache_free(c);
    free(a.data);
}

static void only_the_chunk_at_the_end_is_taken(void)
{
    struct test_artifact a = make_art(3 * CHUNK, 2);
    struct gw_cache *c = open_cache(fresh_dir(), 1 << 30, 0, NULL);
    struct gw_cache_part *p = open_part(c, &a, CHUNK, NULL);
    struct ferry_diag d = {{0}};
    bool written = true;
    CU_ASSERT_EQUAL(gw_cache_part_write(p, CHUNK, a.data + CHUNK, CHUNK, &written, &d), FERRY_OK);
    CU_ASSERT_FALSE(written);
    CU_ASSERT_EQUAL(gw_cache_part_end(p), 0);
    CU_ASSERT_EQUAL(gw_cache_part_write(p, 0, a.data, CHUNK - 1, &written, &d),
                    FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "expected"));
    write_upto(p, &a, CHUNK, CHUNK);
    written = true;
    CU_ASSERT_EQUAL(gw_cache_part_write(p, 0, a.data, CHUNK, &written, &d), FERRY_OK);
    CU_ASSERT_FALSE(written);
    CU_ASSERT_EQUAL(gw_cache_part_end(p), CHUNK);
    /* A second writer for the same artifact is refused. */
    struct gw_cache_part *q = NULL;
    CU_ASSERT_EQUAL(gw_cache_part_open(c, a.sha, a.size, CHUNK, NULL, &q, &d), FERRY_E_BUSY);
    /* Finishing early keeps what there is. */
    CU_ASSERT_EQUAL(gw_cache_part_finish(p, &d), FERRY_E_INVALID_ARG);
    p = open_part(c, &a, CHUNK, NULL);
    CU_ASSERT_EQUAL(gw_cache_part_end(p), CHUNK);
    gw_cache_part_close(p);
    gw_cache_free(c);
    free(a.data);
}

static void resume_after_kill_keeps_every_chunk_written(void)
{
    const char *dir = fresh_dir();
    struct test_artifact a = make_art(8 * CHUNK + 5, 3);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        /* No fsync at all before the kill: the page cache must be enough. */
        struct gw_cache_opts o = {.dir = dir, .quota = 1 << 30, .sync_every = 1 << 30};
        struct gw_cache *c = NULL;
        struct gw_cache_part *p = NULL;
        bool w;
        if (gw_cache_open(&o, &c, NULL) != FERRY_OK ||
            gw_cache_part_open(c, a.sha, a.size, CHUNK, NULL, &p, NULL) != FERRY_OK)
            _exit(1);
        for (uint64_t off = 0; off < 5 * CHUNK; off += CHUNK)
            if (gw_cache_part_write(p, off, a.data + off, CHUNK, &w, NULL) != FERRY_OK)
                _exit(1);
        kill(getpid(), SIGKILL);
        _exit(1);
    }
    int status = 0;
    CU_ASSERT_EQUAL_FATAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT_FATAL(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    struct gw_cache *c = open_cache(dir, 1 << 30, 0, NULL);
    CU_ASSERT_EQUAL(gw_cache_used(c), 5 * CHUNK);
    struct gw_cache_part *p = open_part(c, &a, CHUNK, NULL);
    CU_ASSERT_EQUAL(gw_cache_part_end(p), 5 * CHUNK);
    write_upto(p, &a, CHUNK, a.size);
    struct ferry_diag d = {{0}};
    /* The running hash was rebuilt from the kept prefix. */
    CU_ASSERT_EQUAL(gw_cache_part_finish(p, &d), FERRY_OK);
    CU_ASSERT_TRUE(gw_cache_has(c, a.sha, NULL));
    gw_cache_free(c);
    free(a.data);
}

/* Writes `n` chunks of a into a fresh cache and closes the part; returns
 * the folder. */
static const char *partial_of(const struct test_artifact *a, uint64_t nchunks)
{
    const char *dir = fresh_dir();
    struct gw_cache *c = open_cache(dir, 1 << 30, 0, NULL);
    struct gw_cache_part *p = open_part(c, a, CHUNK, NULL);
    write_upto(p, a, CHUNK, nchunks * CHUNK);
    gw_cache_part_close(p);
    gw_cache_free(c);
    return dir;
}

/* Reopens a partial and checks where it resumes and that the files were cut
 * back to exactly that, then completes it. */
static void expect_resume(const char *dir, const struct test_artifact *a, uint64_t end)
{
    char path[PATH_MAX];
    struct gw_cache *c = open_cache(dir, 1 << 30, 0, NULL);
    struct gw_cache_part *p = open_part(c, a, CHUNK, NULL);
    CU_ASSERT_EQUAL(gw_cache_part_end(p), end);
    part_file(path, dir, a, "part");
    CU_ASSERT_EQUAL(file_size(path), (off_t)end);
    part_file(path, dir, a, "crc");
    CU_ASSERT_EQUAL(file_size(path), (off_t)(end / CHUNK * GW_CACHE_JOURNAL_RECORD));
    write_upto(p, a, CHUNK, a->size);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(gw_cache_part_finish(p, &d), FERRY_OK);
    gw_cache_free(c);
}

static void torn_journal_tail_is_dropped(void)
{
    struct test_artifact a = make_art(6 * CHUNK, 4);
    const char *dir = partial_of(&a, 4);
    char path[PATH_MAX];
    part_file(path, dir, &a, "crc");
    uint8_t junk[GW_CACHE_JOURNAL_RECORD + 7];
    memset(junk, 0x5A, sizeof(junk));
    patch_file(path, 4 * GW_CACHE_JOURNAL_RECORD, junk, sizeof(junk));
    expect_resume(dir, &a, 4 * CHUNK);
    free(a.data);
}

static void damaged_journal_record_cuts_the_prefix(void)
{
    struct test_artifact a = make_art(6 * CHUNK, 5);
    const char *dir = partial_of(&a, 5);
    char path[PATH_MAX];
    part_file(path, dir, &a, "crc");
    uint8_t flip = 0xFF;
    patch_file(path, 2 * GW_CACHE_JOURNAL_RECORD + 9, &flip, 1);
    expect_resume(dir, &a, 2 * CHUNK);
    free(a.data);
}

static void data_that_does_not_match_its_record_is_not_trusted(void)
{
    struct test_artifact a = make_art(7 * CHUNK + 3, 6);
    const char *dir = partial_of(&a, 6);
    char path[PATH_MAX];
    part_file(path, dir, &a, "part");
    uint8_t b = (uint8_t)(a.data[3 * CHUNK + 100] ^ 1);
    patch_file(path, 3 * CHUNK + 100, &b, 1);
    expect_resume(dir, &a, 3 * CHUNK);
    free(a.data);
}

static void data_lost_in_a_power_cut_is_detected(void)
{
    /* The journal reached the disk but the data of the last chunks did not:
     * they read back as zeros, or the file is short. */
    struct test_artifact a = make_art(7 * CHUNK, 7);
    const char *dir = partial_of(&a, 6);
    char path[PATH_MAX];
    part_file(path, dir, &a, "part");
    uint8_t *zeros = calloc(1, CHUNK);
    patch_file(path, 4 * CHUNK, zeros, CHUNK);
    free(zeros);
    CU_ASSERT_EQUAL(truncate(path, 5 * CHUNK + 10), 0);
    expect_resume(dir, &a, 4 * CHUNK);
    free(a.data);
}

static void resume_point_follows_a_new_chunk_size(void)
{
    struct test_artifact a = make_art(10 * CHUNK, 8);
    const char *dir = partial_of(&a, 5); /* 5 chunks of 16 KiB */
    struct gw_cache *c = open_cache(dir, 1 << 30, 0, NULL);
    struct gw_cache_part *p = open_part(c, &a, 2 * CHUNK, NULL);
    CU_ASSERT_EQUAL(gw_cache_part_end(p), 4 * CHUNK);
    write_upto(p, &a, 2 * CHUNK, a.size);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(gw_cache_part_finish(p, &d), FERRY_OK);
    gw_cache_free(c);
    free(a.data);
}

static void wrong_bytes_never_get_a_final_name(void)
{
    const char *dir = fresh_dir();
    struct test_artifact a = make_art(2 * CHUNK, 9);
    struct test_artifact other = make_art(2 * CHUNK, 10);
    struct gw_cache *c = open_cache(dir, 1 << 30, 0, NULL);
    struct gw_cache_part *p = open_part(c, &a, CHUNK, NULL);
    write_upto(p, &other, CHUNK, other.size);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(gw_cache_part_finish(p, &d), FERRY_E_HASH_MISMATCH);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, other.hex));
    CU_ASSERT_FALSE(gw_cache_has(c, a.sha, NULL));
    char path[PATH_MAX];
    pathf(path, "%s/%s", dir, a.hex);
    CU_ASSERT_EQUAL(file_size(path), -1);
    part_file(path, dir, &a, "part");
    CU_ASSERT_EQUAL(file_size(path), -1);
    CU_ASSERT_EQUAL(gw_cache_used(c), 0);
    gw_cache_free(c);
    free(a.data);
    free(other.data);
}

static void bytes_damaged_on_the_way_to_disk_are_caught_at_finish(void)
{
    const char *dir = fresh_dir();
    struct test_artifact a = make_art(3 * CHUNK, 11);
    struct ferry_io_faulty *f = new_driver();
    struct ferry_io_fail flip = {.calls = FERRY_IO_CALL(FERRY_IO_PWRITE),
                                 .after = 2, /* the data of the second chunk */
                                 .count = 1,
                                 .how = FERRY_IO_FAIL_BITFLIP};
    ferry_io_faulty_fail(f, &flip);
    struct gw_cache *c = open_cache(dir, 1 << 30, 0, f);
    struct gw_cache_part *p = open_part(c, &a, CHUNK, NULL);
    write_upto(p, &a, CHUNK, a.size);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(gw_cache_part_finish(p, &d), FERRY_E_CORRUPT);
    CU_ASSERT_FALSE(gw_cache_has(c, a.sha, NULL));
    char path[PATH_MAX];
    pathf(path, "%s/%s", dir, a.hex);
    CU_ASSERT_EQUAL(file_size(path), -1);
    gw_cache_free(c);
    ferry_io_faulty_free(f);
    free(a.data);
}

static void check_disk_full(bool short_first, int fail_from)
{
    const char *dir = fresh_dir();
    struct test_artifact kept = make_art(CHUNK + 1, 12);
    struct test_artifact a = make_art(6 * CHUNK, 13);
    struct ferry_io_faulty *f = new_driver();
    struct gw_cache *c = open_cache(dir, 1 << 30, 0, f);
    add_complete(c, &kept);
    struct gw_cache_part *p = open_part(c, &a, CHUNK, NULL);
    write_upto(p, &a, CHUNK, 2 * CHUNK);

    /* Each chunk is two pwrites (data, journal record). */
    struct ferry_io_fail full = {.calls = FERRY_IO_CALL(FERRY_IO_PWRITE),
                                 .after = (uint64_t)fail_from - 1,
                                 .count = FERRY_IO_FOR_EVER,
                                 .error = ENOSPC,
                                 .how = short_first ? FERRY_IO_FAIL_SHORT : FERRY_IO_FAIL_ERRNO};
    ferry_io_faulty_fail(f, &full);
    bool written = true;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(gw_cache_part_write(p, 2 * CHUNK, a.data + 2 * CHUNK, CHUNK, &written, &d),
                    FERRY_E_NOSPACE);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, a.hex));
    CU_ASSERT_EQUAL(gw_cache_part_end(p), 2 * CHUNK);
    char path[PATH_MAX];
    part_file(path, dir, &a, "part");
    CU_ASSERT_EQUAL(file_size(path), 2 * CHUNK);
    part_file(path, dir, &a, "crc");
    CU_ASSERT_EQUAL(file_size(path), 2 * GW_CACHE_JOURNAL_RECORD);
    pathf(path, "%s/%s", dir, kept.hex);
    CU_ASSERT_TRUE(file_equals(path, &kept));

    /* Space comes back: the same part carries on. */
    ferry_io_faulty_fail(f, NULL);
    write_upto(p, &a, CHUNK, a.size);
    CU_ASSERT_EQUAL(gw_cache_part_finish(p, &d), FERRY_OK);
    CU_ASSERT_TRUE(gw_cache_has(c, kept.sha, NULL));
    CU_ASSERT_TRUE(gw_cache_has(c, a.sha, NULL));
    gw_cache_free(c);
    ferry_io_faulty_free(f);
    free(kept.data);
    free(a.data);
}

static void disk_full_rolls_back_to_the_last_good_chunk(void)
{
    check_disk_full(false, 1); /* the data write */
    check_disk_full(true, 1);  /* half the data, then full */
    check_disk_full(false, 2); /* the journal record */
}

static void failed_fsync_poisons_the_part_until_reopened(void)
{
    const char *dir = fresh_dir();
    struct test_artifact a = make_art(6 * CHUNK, 14);
    struct ferry_io_faulty *f = new_driver();
    struct gw_cache *c = open_cache(dir, 1 << 30, 2 * CHUNK, f);
    struct gw_cache_part *p = open_part(c, &a, CHUNK, NULL);
    uint64_t before = ferry_io_faulty_count(f, FERRY_IO_FSYNC);
    write_upto(p, &a, CHUNK, 4 * CHUNK);
    /* Every 2 chunks, .part then journal. */
    CU_ASSERT_EQUAL(ferry_io_faulty_count(f, FERRY_IO_FSYNC) - before, 4);
    struct ferry_io_fail fsyncs = {.calls = FERRY_IO_CALL(FERRY_IO_FSYNC),
                                   .count = FERRY_IO_FOR_EVER};
    ferry_io_faulty_fail(f, &fsyncs);
    bool w;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(gw_cache_part_write(p, 4 * CHUNK, a.data + 4 * CHUNK, CHUNK, &w, &d), FERRY_OK);
    CU_ASSERT_EQUAL(gw_cache_part_write(p, 5 * CHUNK, a.data + 5 * CHUNK, CHUNK, &w, &d),
                    FERRY_E_IO);
    CU_ASSERT_EQUAL(gw_cache_part_write(p, 6 * CHUNK, a.data, CHUNK, &w, &d), FERRY_E_IO);
    gw_cache_part_close(p);
    ferry_io_faulty_fail(f, NULL);
    p = open_part(c, &a, CHUNK, NULL);
    CU_ASSERT_EQUAL(gw_cache_part_end(p), 6 * CHUNK);
    CU_ASSERT_EQUAL(gw_cache_part_finish(p, &d), FERRY_OK);
    gw_cache_free(c);
    ferry_io_faulty_free(f);
    free(a.data);
}

static void failed_rename_keeps_the_partial(void)
{
    const char *dir = fresh_dir();
    struct test_artifact a = make_art(2 * CHUNK + 9, 15);
    struct ferry_io_faulty *f = new_driver();
    struct ferry_io_fail renames = {.calls = FERRY_IO_CALL(FERRY_IO_RENAME),
                                    .count = FERRY_IO_FOR_EVER};
    ferry_io_faulty_fail(f, &renames);
    struct gw_cache *c = open_cache(dir, 1 << 30, 0, f);
    struct gw_cache_part *p = open_part(c, &a, CHUNK, NULL);
    write_upto(p, &a, CHUNK, a.size);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(gw_cache_part_finish(p, &d), FERRY_E_IO);
    CU_ASSERT_FALSE(gw_cache_has(c, a.sha, NULL));
    ferry_io_faulty_fail(f, NULL);
    p = open_part(c, &a, CHUNK, NULL);
    CU_ASSERT_EQUAL(gw_cache_part_end(p), a.size);
    CU_ASSERT_EQUAL(gw_cache_part_finish(p, &d), FERRY_OK);
    CU_ASSERT_TRUE(gw_cache_has(c, a.sha, NULL));
    gw_cache_free(c);
    ferry_io_faulty_free(f);
    free(a.data);
}

/* ---- a power cut at every file operation ------------------------------------ */

#define CUT_SYNC (2 * CHUNK)

struct cut_world {
    struct test_artifact a, b, old; /* A and B downloaded in turn; opening B evicts OLD */
};

/* What the cache vouched for before the cut: the bytes of each partial made
 * durable (a write that synced, or a close), and finished artifacts. */
struct cut_marks {
    uint64_t a_durable, b_durable;
    bool a_done, b_done;
};

/* Writes a's chunks from where p (just opened) stands up to `upto`, noting
 * what was synced: the cache syncs every CUT_SYNC bytes written since the
 * open. False at the first failure. */
static bool cut_write(struct gw_cache_part *p, const struct test_artifact *a, uint64_t upto,
                      uint64_t *durable)
{
    uint64_t unsynced = 0;
    while (gw_cache_part_end(p) < upto) {
        uint64_t off = gw_cache_part_end(p);
        size_t len = len_at(a, off, CHUNK);
        bool written = false;
        if (gw_cache_part_write(p, off, a->data + off, len, &written, NULL) != FERRY_OK)
            return false;
        unsynced += len;
        if (unsynced >= CUT_SYNC) {
            *durable = gw_cache_part_end(p); /* that write synced */
            unsynced = 0;
        }
    }
    return true;
}

/* One artifact as the gateway fetches it: part of it, a restart of the
 * download (close, open again: resume), the rest, finish. */
static void cut_download(struct gw_cache *c, struct ferry_io_faulty *f,
                         const struct test_artifact *a, uint64_t first, uint64_t *durable,
                         bool *done)
{
    struct gw_cache_part *p = NULL;
    if (gw_cache_part_open(c, a->sha, a->size, CHUNK, NULL, &p, NULL) != FERRY_OK)
        return;
    bool ok = cut_write(p, a, first, durable);
    uint64_t end = gw_cache_part_end(p);
    gw_cache_part_close(p);
    if (!ok || ferry_io_faulty_stopped(f))
        return;
    *durable = end; /* the close synced it */
    if (gw_cache_part_open(c, a->sha, a->size, CHUNK, NULL, &p, NULL) != FERRY_OK)
        return;
    if (!cut_write(p, a, a->size, durable)) {
        gw_cache_part_close(p);
        return;
    }
    *done = gw_cache_part_finish(p, NULL) == FERRY_OK;
}

static void cut_run(const char *dir, struct ferry_io_faulty *f, const struct cut_world *w,
                    struct cut_marks *m)
{
    /* Room for A and B, not for OLD as well. */
    struct gw_cache_opts o = {.dir = dir,
                              .quota = w->a.size + w->b.size + CHUNK,
                              .sync_every = CUT_SYNC,
                              .io = ferry_io_faulty_io(f)};
    struct gw_cache *c = NULL;
    if (gw_cache_open(&o, &c, NULL) != FERRY_OK)
        return;
    cut_download(c, f, &w->a, 3 * CHUNK, &m->a_durable, &m->a_done);
    if (m->a_done)
        cut_download(c, f, &w->b, CHUNK, &m->b_durable, &m->b_done);
    gw_cache_free(c);
}

/* After the cut: what the cache vouched for is there, every artifact under
 * a digest name is that artifact, and each download resumes no earlier
 * than its durable bytes and completes. */
static void cut_check(const char *dir, const struct cut_world *w, const struct cut_marks *m,
                      uint64_t n, const char *how)
{
    struct gw_cache *c = open_cache(dir, 1 << 30, 0, NULL);
    struct ferry_diag d = {{0}};
    if (gw_cache_has(c, w->old.sha, NULL))
        CU_ASSERT_EQUAL(gw_cache_verify(c, w->old.sha, w->old.size, &d), FERRY_OK);
    const struct test_artifact *arts[2] = {&w->a, &w->b};
    const uint64_t durable[2] = {m->a_durable, m->b_durable};
    const bool done[2] = {m->a_done, m->b_done};
    for (int i = 0; i < 2; i++) {
        const struct test_artifact *a = arts[i];
        bool has = gw_cache_has(c, a->sha, NULL);
        if (done[i] && !has)
            fprintf(stderr, "cache, %s at %llu: finished artifact %c is gone\n", how,
                    (unsigned long long)n, 'A' + i);
        CU_ASSERT_TRUE(has || !done[i]);
        if (has) {
            CU_ASSERT_EQUAL(gw_cache_verify(c, a->sha, a->size, &d), FERRY_OK);
            continue;
        }
        struct gw_cache_part *p = open_part(c, a, CHUNK, NULL);
        uint64_t end = gw_cache_part_end(p);
        if (end < durable[i])
            fprintf(stderr, "cache, %s at %llu: %c resumes at %llu, %llu were durable\n", how,
                    (unsigned long long)n, 'A' + i, (unsigned long long)end,
                    (unsigned long long)durable[i]);
        CU_ASSERT_TRUE(end >= durable[i] && end <= a->size && (end % CHUNK == 0 || end == a->size));
        write_upto(p, a, CHUNK, a->size);
        CU_ASSERT_EQUAL(gw_cache_part_finish(p, &d), FERRY_OK);
    }
    gw_cache_free(c);
}

static void a_power_cut_at_every_file_operation(void)
{
    static const char *const names[] = {"kill -9", "power cut", "torn power cut"};
    struct cut_world w = {make_art(5 * CHUNK + 100, 21), make_art(3 * CHUNK, 22),
                          make_art(2 * CHUNK, 23)};
    for (int how = FERRY_IO_KILL; how <= FERRY_IO_POWER_TORN; how++) {
        uint64_t total = 0;
        unsigned finished = 0;
        for (uint64_t n = 0; n <= total || total == 0; n++) {
            const char *dir = fresh_dir();
            struct gw_cache *c = open_cache(dir, 1 << 30, 0, NULL);
            add_complete(c, &w.old);
            gw_cache_free(c);
            struct ferry_io_faulty *f = new_driver();
            struct cut_marks m = {0};
            ferry_io_faulty_stop_at(f, total ? n : FERRY_IO_NO_STOP, (enum ferry_io_stop)how);
            cut_run(dir, f, &w, &m);
            if (!total) {
                /* The first run goes through: it counts the operations. */
                CU_ASSERT_TRUE_FATAL(m.a_done && m.b_done);
                total = ferry_io_faulty_calls(f);
                n = UINT64_MAX; /* the next round is 0 */
            } else {
                CU_ASSERT_EQUAL(ferry_io_faulty_stopped(f), n < total);
                finished += m.b_done;
            }
            ferry_io_faulty_stop(f, (enum ferry_io_stop)how); /* no-op once stopped */
            ferry_io_faulty_free(f);
            cut_check(dir, &w, &m, n, names[how]);
        }
        CU_ASSERT_TRUE(total > 30);
        CU_ASSERT_TRUE(finished >= 1); /* the run without a cut, and those cut late */
    }
    free(w.a.data);
    free(w.b.data);
    free(w.old.data);
}

struct evictions {
    uint8_t sha[4][FERRY_SHA256_LEN];
    int n;
};

static void note_eviction(void *arg, const uint8_t sha256[FERRY_SHA256_LEN])
{
    struct evictions *ev = arg;
    if (ev->n < 4)
        memcpy(ev->sha[ev->n], sha256, FERRY_SHA256_LEN);
    ev->n++;
}

static void quota_evicts_unreferenced_least_recently_used_first(void)
{
    const char *dir = fresh_dir();
    uint64_t s = 2 * CHUNK;
    struct test_artifact x[5];
    for (int i = 0; i < 5; i++)
        x[i] = make_art(s, 20 + (uint32_t)i);
    struct evictions ev = {.n = 0};
    struct gw_cache_opts o = {
        .dir = dir, .quota = 3 * s, .on_evict = note_eviction, .evict_arg = &ev};
    struct gw_cache *c = NULL;
    CU_ASSERT_EQUAL_FATAL(gw_cache_open(&o, &c, NULL), FERRY_OK);
    add_complete(c, &x[0]);
    add_complete(c, &x[1]);
    add_complete(c, &x[2]);
    /* Serving x[0] makes it recently used. */
    struct gw_cache_map *m = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(gw_cache_map(c, x[0].sha, &m, &d), FERRY_OK);
    gw_cache_unmap(m);

    uint8_t keep[1][FERRY_SHA256_LEN];
    memcpy(keep[0], x[2].sha, FERRY_SHA256_LEN);
    struct gw_cache_refs refs = {keep, 1};
    struct gw_cache_part *p = open_part(c, &x[3], CHUNK, &refs);
    CU_ASSERT_TRUE(gw_cache_has(c, x[0].sha, NULL));
    CU_ASSERT_FALSE(gw_cache_has(c, x[1].sha, NULL));
    CU_ASSERT_TRUE(gw_cache_has(c, x[2].sha, NULL));
    char path[PATH_MAX];
    pathf(path, "%s/%s", dir, x[1].hex);
    CU_ASSERT_EQUAL(file_size(path), -1);
    /* Whoever lists artifacts hears of exactly that eviction. */
    CU_ASSERT_EQUAL(ev.n, 1);
    CU_ASSERT_EQUAL(memcmp(ev.sha[0], x[1].sha, FERRY_SHA256_LEN), 0);
    write_upto(p, &x[3], CHUNK, s);
    CU_ASSERT_EQUAL(gw_cache_part_finish(p, &d), FERRY_OK);

    /* x[0] is mapped, x[2] and x[3] referenced: nothing may go, and nothing
     * is evicted for a request that cannot be met. */
    CU_ASSERT_EQUAL_FATAL(gw_cache_map(c, x[0].sha, &m, &d), FERRY_OK);
    uint8_t keep2[2][FERRY_SHA256_LEN];
    memcpy(keep2[0], x[2].sha, FERRY_SHA256_LEN);
    memcpy(keep2[1], x[3].sha, FERRY_SHA256_LEN);
    struct gw_cache_refs refs2 = {keep2, 2};
    CU_ASSERT_EQUAL(gw_cache_part_open(c, x[4].sha, s, CHUNK, &refs2, &p, &d), FERRY_E_NOSPACE);
    char quota[32];
    snprintf(quota, sizeof(quota), "%llu", (unsigned long long)(3 * s));
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, quota));
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, x[4].hex));
    CU_ASSERT_EQUAL(gw_cache_used(c), 3 * s);
    CU_ASSERT_EQUAL(gw_cache_part_open(c, x[4].sha, 4 * s, CHUNK, NULL, &p, &d), FERRY_E_NOSPACE);
    CU_ASSERT_TRUE(gw_cache_has(c, x[0].sha, NULL));

    /* Once unmapped, x[0] can go. */
    gw_cache_unmap(m);
    p = open_part(c, &x[4], CHUNK, &refs2);
    CU_ASSERT_FALSE(gw_cache_has(c, x[0].sha, NULL));
    gw_cache_part_close(p);
    gw_cache_free(c);
    for (int i = 0; i < 5; i++)
        free(x[i].data);
}

static void partials_count_against_the_quota(void)
{
    const char *dir = fresh_dir();
    uint64_t s = 2 * CHUNK;
    struct test_artifact a = make_art(s, 30), b = make_art(s, 31), e = make_art(s, 32);
    struct test_artifact big = make_art(2 * s, 33);
    struct gw_cache *c = open_cache(dir, 2 * s, 0, NULL);
    add_complete(c, &a);
    struct gw_cache_part *pb = open_part(c, &b, CHUNK, NULL);
    write_upto(pb, &b, CHUNK, CHUNK);
    CU_ASSERT_EQUAL(gw_cache_used(c), 2 * s);
    /* An open partial is never evicted, so a third artifact must push out
     * the complete one. */
    struct gw_cache_part *pe = open_part(c, &e, CHUNK, NULL);
    CU_ASSERT_FALSE(gw_cache_has(c, a.sha, NULL));
    gw_cache_part_close(pe);
    gw_cache_part_close(pb);
    CU_ASSERT_EQUAL(gw_cache_used(c), CHUNK); /* closed: bytes on disk */
    gw_cache_free(c);

    /* After a restart the closed partials still count, and an unreferenced
     * one can be evicted like an artifact. */
    c = open_cache(dir, 2 * s, 0, NULL);
    CU_ASSERT_EQUAL(gw_cache_used(c), CHUNK);
    uint8_t keep[1][FERRY_SHA256_LEN];
    memcpy(keep[0], e.sha, FERRY_SHA256_LEN);
    struct gw_cache_refs refs = {keep, 1};
    struct gw_cache_part *pbig = open_part(c, &big, CHUNK, &refs);
    CU_ASSERT_EQUAL(gw_cache_used(c), 2 * s);
    char path[PATH_MAX];
    part_file(path, dir, &b, "part");
    CU_ASSERT_EQUAL(file_size(path), -1);
    part_file(path, dir, &e, "part");
    CU_ASSERT_EQUAL(file_size(path), 0);
    gw_cache_part_close(pbig);
    gw_cache_free(c);
    free(a.data);
    free(b.data);
    free(e.data);
    free(big.data);
}

static void mappings_are_shared_and_outlive_the_cache(void)
{
    const char *dir = fresh_dir();
    struct test_artifact a = make_art(3 * CHUNK + 1, 40);
    struct gw_cache *c = open_cache(dir, 1 << 30, 0, NULL);
    struct gw_cache_map *m1 = NULL, *m2 = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(gw_cache_map(c, a.sha, &m1, &d), FERRY_E_NOT_FOUND);
    add_complete(c, &a);
    CU_ASSERT_EQUAL_FATAL(gw_cache_map(c, a.sha, &m1, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(gw_cache_map(c, a.sha, &m2, &d), FERRY_OK);
    CU_ASSERT_PTR_EQUAL(m1, m2);
    CU_ASSERT_EQUAL(gw_cache_map_size(m1), a.size);
    CU_ASSERT_EQUAL(memcmp(gw_cache_map_data(m1), a.data, a.size), 0);
    gw_cache_unmap(m1);
    CU_ASSERT_EQUAL(memcmp(gw_cache_map_data(m2), a.data, a.size), 0);
    gw_cache_free(c);
    CU_ASSERT_EQUAL(gw_cache_map_data(m2)[a.size - 1], a.data[a.size - 1]);
    gw_cache_unmap(m2);
    gw_cache_unmap(NULL);
    free(a.data);
}

static void foreign_names_are_ignored_and_stale_journals_removed(void)
{
    const char *dir = fresh_dir();
    struct test_artifact a = make_art(100, 50);
    struct test_artifact b = make_art(CHUNK + 100, 51);
    char path[PATH_MAX];
    struct gw_cache *c = open_cache(dir, 1 << 30, 0, NULL);
    gw_cache_free(c);
    char upper[FERRY_SHA256_HEX_LEN + 1];
    for (size_t i = 0; i <= FERRY_SHA256_HEX_LEN; i++)
        upper[i] = (char)(a.hex[i] >= 'a' ? a.hex[i] - 32 : a.hex[i]);
    const char *junk[] = {"README", upper, "0123", "tmp.xyz"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        pathf(path, "%s/%s", dir, junk[i]);
        FILE *f = fopen(path, "wb");
        CU_ASSERT_FATAL(f != NULL);
        fwrite(a.data, 1, a.size, f);
        fclose(f);
    }
    pathf(path, "%s/%s.tmp", dir, a.hex);
    FILE *f = fopen(path, "wb");
    fclose(f);
    part_file(path, dir, &b, "crc"); /* a journal without its .part */
    f = fopen(path, "wb");
    fclose(f);
    c = open_cache(dir, 1 << 30, 0, NULL);
    CU_ASSERT_FALSE(gw_cache_has(c, a.sha, NULL));
    CU_ASSERT_EQUAL(gw_cache_used(c), 0);
    CU_ASSERT_EQUAL(file_size(path), -1);

    /* A crash after the rename of b but before its journal went. */
    add_complete(c, &b);
    gw_cache_free(c);
    f = fopen(path, "wb");
    fclose(f);
    c = open_cache(dir, 1 << 30, 0, NULL);
    CU_ASSERT_TRUE(gw_cache_has(c, b.sha, NULL));
    CU_ASSERT_EQUAL(gw_cache_used(c), b.size);
    CU_ASSERT_EQUAL(file_size(path), -1);
    gw_cache_free(c);
    free(a.data);
    free(b.data);
}

static void verify_deletes_artifacts_that_are_not_what_they_claim(void)
{
    const char *dir = fresh_dir();
    struct test_artifact a = make_art(CHUNK, 60), b = make_art(CHUNK, 61);
    struct gw_cache *c = open_cache(dir, 1 << 30, 0, NULL);
    add_complete(c, &a);
    add_complete(c, &b);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(gw_cache_verify(c, a.sha, a.size, &d), FERRY_OK);

    /* A size the release does not agree with. */
    CU_ASSERT_EQUAL(gw_cache_verify(c, a.sha, a.size + 1, &d), FERRY_E_SIZE_MISMATCH);
    CU_ASSERT_FALSE(gw_cache_has(c, a.sha, NULL));
    char path[PATH_MAX];
    pathf(path, "%s/%s", dir, a.hex);
    CU_ASSERT_EQUAL(file_size(path), -1);

    /* Bytes changed behind the cache's back. */
    pathf(path, "%s/%s", dir, b.hex);
    uint8_t flip = (uint8_t)(b.data[10] ^ 0x80);
    patch_file(path, 10, &flip, 1);
    CU_ASSERT_EQUAL(gw_cache_verify(c, b.sha, b.size, &d), FERRY_E_HASH_MISMATCH);
    CU_ASSERT_FALSE(gw_cache_has(c, b.sha, NULL));
    CU_ASSERT_EQUAL(file_size(path), -1);
    CU_ASSERT_EQUAL(gw_cache_verify(c, b.sha, b.size, &d), FERRY_E_NOT_FOUND);
    CU_ASSERT_EQUAL(gw_cache_used(c), 0);
    gw_cache_free(c);
    free(a.data);
    free(b.data);
}

static void bad_arguments_are_refused(void)
{
    struct gw_cache_opts o = {.dir = fresh_dir(), .quota = 0};
    struct gw_cache *c = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(gw_cache_open(&o, &c, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NULL(c);
    c = open_cache(fresh_dir(), 1 << 30, 0, NULL);
    struct test_artifact a = make_art(10, 70);
    struct gw_cache_part *p = NULL;
    CU_ASSERT_EQUAL(gw_cache_part_open(c, a.sha, 0, CHUNK, NULL, &p, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(gw_cache_part_open(c, a.sha, 10, 100, NULL, &p, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NULL(p);
    gw_cache_free(c);
    gw_cache_free(NULL);
    gw_cache_part_close(NULL);
    free(a.data);
}

const char *const ferry_suite_name = "gw_cache";
const struct ferry_test_case ferry_tests[] = {
    {"download_enters_the_cache_under_its_digest", download_enters_the_cache_under_its_digest},
    {"only_the_chunk_at_the_end_is_taken", only_the_chunk_at_the_end_is_taken},
    {"resume_after_kill_keeps_every_chunk_written", resume_after_kill_keeps_every_chunk_written},
    {"torn_journal_tail_is_dropped", torn_journal_tail_is_dropped},
    {"damaged_journal_record_cuts_the_prefix", damaged_journal_record_cuts_the_prefix},
    {"data_that_does_not_match_its_record_is_not_trusted",
     data_that_does_not_match_its_record_is_not_trusted},
    {"data_lost_in_a_power_cut_is_detected", data_lost_in_a_power_cut_is_detected},
    {"resume_point_follows_a_new_chunk_size", resume_point_follows_a_new_chunk_size},
    {"wrong_bytes_never_get_a_final_name", wrong_bytes_never_get_a_final_name},
    {"bytes_damaged_on_the_way_to_disk_are_caught_at_finish",
     bytes_damaged_on_the_way_to_disk_are_caught_at_finish},
    {"disk_full_rolls_back_to_the_last_good_chunk", disk_full_rolls_back_to_the_last_good_chunk},
    {"failed_fsync_poisons_the_part_until_reopened", failed_fsync_poisons_the_part_until_reopened},
    {"failed_rename_keeps_the_partial", failed_rename_keeps_the_partial},
    {"a_power_cut_at_every_file_operation", a_power_cut_at_every_file_operation},
    {"quota_evicts_unreferenced_least_recently_used_first",
     quota_evicts_unreferenced_least_recently_used_first},
    {"partials_count_against_the_quota", partials_count_against_the_quota},
    {"mappings_are_shared_and_outlive_the_cache", mappings_are_shared_and_outlive_the_cache},
    {"foreign_names_are_ignored_and_stale_journals_removed",
     foreign_names_are_ignored_and_stale_journals_removed},
    {"verify_deletes_artifacts_that_are_not_what_they_claim",
     verify_deletes_artifacts_that_are_not_what_they_claim},
    {"bad_arguments_are_refused", bad_arguments_are_refused},
    {NULL, NULL},
};
