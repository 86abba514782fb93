/* The fault-injecting I/O driver (ferry_io_faulty.h) against its own
 * model, then the common file helpers (ferry_fs.h) with a power cut at
 * every call: what a write_atomic or mkdir_p returned FERRY_OK for is
 * there after the cut, and a replaced file is never seen half written. */
#include "cunit_main.h"

#include "ferry_fs.h"
#include "ferry_io_faulty.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned counter;

/* A fresh folder under the test's temporary one. */
static const char *fresh(char out[PATH_MAX])
{
    int n = snprintf(out, PATH_MAX, "%s/io-%u", ferry_test_tmpdir(), counter++);
    CU_ASSERT_FATAL(n > 0 && n < PATH_MAX);
    CU_ASSERT_EQUAL_FATAL(mkdir(out, 0755), 0);
    return out;
}

static void join(char out[PATH_MAX], const char *dir, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
    CU_ASSERT_FATAL(n > 0 && n < PATH_MAX);
}

/* Writes a file with the system's calls: durable as the driver finds it. */
static void put(const char *path, const char *text)
{
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(path, text, strlen(text), 0644, NULL), FERRY_OK);
}

/* The file's content as a string; "<absent>" when there is none. */
static const char *content(const char *path)
{
    static char buf[4096];
    uint8_t *data = NULL;
    size_t len = 0;
    if (ferry_read_file(path, sizeof(buf) - 1, &data, &len, NULL) != FERRY_OK)
        return "<absent>";
    memcpy(buf, data, len);
    buf[len] = 0;
    free(data);
    return buf;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static struct ferry_io_faulty *new_driver(void)
{
    struct ferry_io_faulty *f = NULL;
    CU_ASSERT_EQUAL_FATAL(ferry_io_faulty_new(&f, NULL), FERRY_OK);
    return f;
}

/* ---- the model ------------------------------------------------------------- */

static void unsynced_bytes_are_lost_and_synced_ones_kept(void)
{
    char dir[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
    fresh(dir);
    join(a, dir, "a");
    join(b, dir, "b");
    put(a, "old-a");
    put(b, "old-b");
    struct ferry_io_faulty *f = new_driver();
    const struct ferry_io *io = ferry_io_faulty_io(f);
    int fa = ferry_io_open(io, a, O_RDWR, 0);
    int fb = ferry_io_open(io, b, O_RDWR, 0);
    CU_ASSERT_FATAL(fa >= 0 && fb >= 0);
    CU_ASSERT_EQUAL(ferry_io_pwrite(io, fa, "NEW-A-LONGER", 12, 0), 12);
    CU_ASSERT_EQUAL(ferry_io_pwrite(io, fb, "NEW-B", 5, 0), 5);
    CU_ASSERT_EQUAL(ferry_io_fsync(io, fb), 0);
    CU_ASSERT_STRING_EQUAL(content(a), "NEW-A-LONGER"); /* the page cache */
    ferry_io_faulty_stop(f, FERRY_IO_POWER);
    CU_ASSERT_STRING_EQUAL(content(a), "old-a"); /* bytes and length as at its last fsync */
    CU_ASSERT_STRING_EQUAL(content(b), "NEW-B");
    CU_ASSERT_TRUE(ferry_io_faulty_stopped(f));
    CU_ASSERT_EQUAL(ferry_io_pwrite(io, fa, "x", 1, 0), -1);
    CU_ASSERT_EQUAL(errno, EIO);
    ferry_io_close(io, fa);
    ferry_io_close(io, fb);
    ferry_io_faulty_free(f);
}

static void a_torn_write_keeps_half_and_garbage(void)
{
    char dir[PATH_MAX], a[PATH_MAX];
    fresh(dir);
    join(a, dir, "a");
    put(a, "................");
    struct ferry_io_faulty *f = new_driver();
    const struct ferry_io *io = ferry_io_faulty_io(f);
    int fd = ferry_io_open(io, a, O_RDWR, 0);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(ferry_io_pwrite(io, fd, "ABCDEFGH", 8, 0), 8);
    ferry_io_faulty_stop(f, FERRY_IO_POWER_TORN);
    const char *c = content(a);
    CU_ASSERT_EQUAL(strlen(c) <= 16, true);
    CU_ASSERT_EQUAL(memcmp(c, "ABCD", 4), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(c + 4, "EFGH", 4), 0);
    CU_ASSERT_NOT_EQUAL(memcmp(c + 4, "....", 4), 0);
    ferry_io_close(io, fd);
    ferry_io_faulty_free(f);
}

/* The write a cut interrupts lands in half with TORN, not at all without. */
static void the_write_in_flight(void)
{
    for (int torn = 0; torn < 2; torn++) {
        char dir[PATH_MAX], a[PATH_MAX];
        fresh(dir);
        join(a, dir, "a");
        put(a, "");
        struct ferry_io_faulty *f = new_driver();
        const struct ferry_io *io = ferry_io_faulty_io(f);
        int fd = ferry_io_open(io, a, O_RDWR, 0);
        CU_ASSERT_FATAL(fd >= 0);
        ferry_io_faulty_stop_at(f, 0, torn ? FERRY_IO_POWER_TORN : FERRY_IO_POWER);
        CU_ASSERT_EQUAL(ferry_io_pwrite(io, fd, "ABCDEFGH", 8, 0), -1);
        CU_ASSERT_EQUAL(errno, EIO);
        CU_ASSERT_EQUAL(ferry_io_faulty_calls(f), 1);
        CU_ASSERT_STRING_EQUAL(content(a), torn ? "ABCD" : "");
        ferry_io_close(io, fd);
        ferry_io_faulty_free(f);
    }
}

static void names_need_their_folder_synced(void)
{
    char dir[PATH_MAX], made[PATH_MAX], gone[PATH_MAX], moved[PATH_MAX], over[PATH_MAX],
        sub[PATH_MAX], kept[PATH_MAX];
    fresh(dir);
    join(made, dir, "made");
    join(gone, dir, "gone");
    join(moved, dir, "moved");
    join(over, dir, "over");
    join(sub, dir, "sub");
    join(kept, dir, "kept");
    put(gone, "gone's bytes");
    put(over, "over's bytes");
    struct ferry_io_faulty *f = new_driver();
    const struct ferry_io *io = ferry_io_faulty_io(f);

    /* A file made and synced, but not its folder. */
    int fd = ferry_io_open(io, made, O_WRONLY | O_CREAT | O_EXCL, 0644);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(ferry_io_pwrite(io, fd, "made", 4, 0), 4);
    CU_ASSERT_EQUAL(ferry_io_fsync(io, fd), 0);
    ferry_io_close(io, fd);
    CU_ASSERT_EQUAL(ferry_io_unlink(io, gone), 0);
    CU_ASSERT_EQUAL(ferry_io_rename(io, made, moved), 0);
    CU_ASSERT_EQUAL(ferry_io_rename(io, moved, over), 0);
    CU_ASSERT_EQUAL(ferry_io_mkdir(io, sub, 0755), 0);
    CU_ASSERT_STRING_EQUAL(content(over), "made");
    CU_ASSERT_FALSE(exists(gone));
    /* One more file, made durable with its folder: the only change kept. */
    CU_ASSERT_EQUAL(ferry_write_atomic_io(io, kept, "kept", 4, 0644, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_io_faulty_calls(f), 12);
    ferry_io_faulty_stop(f, FERRY_IO_POWER);
    CU_ASSERT_STRING_EQUAL(content(kept), "kept");
    ferry_io_faulty_free(f);

    /* The folder's fsync (in write_atomic) made every change before it
     * durable too: that is what an fsync of the folder means. */
    CU_ASSERT_STRING_EQUAL(content(over), "made");
    CU_ASSERT_FALSE(exists(gone));
    CU_ASSERT_TRUE(exists(sub));

    /* Without that fsync, each change is put back, newest first. */
    fresh(dir);
    join(made, dir, "made");
    join(gone, dir, "gone");
    join(moved, dir, "moved");
    join(over, dir, "over");
    join(sub, dir, "sub");
    put(gone, "gone's bytes");
    put(over, "over's bytes");
    f = new_driver();
    io = ferry_io_faulty_io(f);
    fd = ferry_io_open(io, made, O_WRONLY | O_CREAT | O_EXCL, 0644);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(ferry_io_pwrite(io, fd, "made", 4, 0), 4);
    CU_ASSERT_EQUAL(ferry_io_fsync(io, fd), 0);
    ferry_io_close(io, fd);
    /* over's bytes changed in place, unsynced, before it is replaced: the
     * bytes that return are its durable ones. */
    fd = ferry_io_open(io, over, O_RDWR, 0);
    CU_ASSERT_EQUAL(ferry_io_pwrite(io, fd, "OVER", 4, 0), 4);
    ferry_io_close(io, fd);
    CU_ASSERT_EQUAL(ferry_io_unlink(io, gone), 0);
    CU_ASSERT_EQUAL(ferry_io_rename(io, made, moved), 0);
    CU_ASSERT_EQUAL(ferry_io_rename(io, moved, over), 0);
    CU_ASSERT_EQUAL(ferry_io_mkdir(io, sub, 0755), 0);
    ferry_io_faulty_stop(f, FERRY_IO_POWER);
    CU_ASSERT_STRING_EQUAL(content(over), "over's bytes");
    CU_ASSERT_STRING_EQUAL(content(gone), "gone's bytes");
    CU_ASSERT_FALSE(exists(made));
    CU_ASSERT_FALSE(exists(moved));
    CU_ASSERT_FALSE(exists(sub));
    ferry_io_faulty_free(f);
}

static void kill_keeps_the_page_cache(void)
{
    char dir[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
    fresh(dir);
    join(a, dir, "a");
    join(b, dir, "b");
    put(a, "old");
    struct ferry_io_faulty *f = new_driver();
    const struct ferry_io *io = ferry_io_faulty_io(f);
    int fd = ferry_io_open(io, a, O_RDWR | O_TRUNC, 0);
    CU_ASSERT_EQUAL(ferry_io_pwrite(io, fd, "new", 3, 0), 3);
    ferry_io_close(io, fd);
    fd = ferry_io_open(io, b, O_RDWR | O_CREAT, 0644);
    ferry_io_close(io, fd);
    ferry_io_faulty_stop_at(f, ferry_io_faulty_calls(f), FERRY_IO_KILL);
    CU_ASSERT_EQUAL(ferry_io_unlink(io, a), -1);
    CU_ASSERT_STRING_EQUAL(content(a), "new");
    CU_ASSERT_TRUE(exists(b));
    CU_ASSERT_EQUAL(ferry_io_faulty_calls(f), 4); /* open+trunc, pwrite, open+creat, unlink */
    ferry_io_faulty_free(f);
}

static void failures_short_writes_bit_flips_and_space(void)
{
    char dir[PATH_MAX], a[PATH_MAX];
    fresh(dir);
    join(a, dir, "a");
    struct ferry_io_faulty *f = new_driver();
    const struct ferry_io *io = ferry_io_faulty_io(f);
    int fd = ferry_io_open(io, a, O_RDWR | O_CREAT, 0644);
    CU_ASSERT_FATAL(fd >= 0);

    /* The second fsync fails once with ENOSPC; the rest pass. */
    struct ferry_io_fail rule = {
        .calls = FERRY_IO_CALL(FERRY_IO_FSYNC), .after = 1, .count = 1, .error = ENOSPC};
    ferry_io_faulty_fail(f, &rule);
    CU_ASSERT_EQUAL(ferry_io_fsync(io, fd), 0);
    CU_ASSERT_EQUAL(ferry_io_pwrite(io, fd, "x", 1, 0), 1); /* another kind: untouched */
    CU_ASSERT_EQUAL(ferry_io_fsync(io, fd), -1);
    CU_ASSERT_EQUAL(errno, ENOSPC);
    CU_ASSERT_EQUAL(ferry_io_fsync(io, fd), 0);
    CU_ASSERT_FALSE(ferry_io_faulty_stopped(f));

    /* Short, then failing writes. */
    rule = (struct ferry_io_fail){.calls = FERRY_IO_CALL(FERRY_IO_PWRITE),
                                  .count = FERRY_IO_FOR_EVER,
                                  .error = ENOSPC,
                                  .how = FERRY_IO_FAIL_SHORT};
    ferry_io_faulty_fail(f, &rule);
    CU_ASSERT_EQUAL(ferry_io_pwrite(io, fd, "ABCDEFGH", 8, 0), 4);
    CU_ASSERT_EQUAL(ferry_io_pwrite(io, fd, "EFGH", 4, 4), -1);
    CU_ASSERT_EQUAL(errno, ENOSPC);
    CU_ASSERT_EQUAL(ferry_pwrite_all_io(io, fd, "EFGH", 4, 4), FERRY_E_NOSPACE);
    CU_ASSERT_STRING_EQUAL(content(a), "ABCD");

    /* A flipped bit, reported as a good write. */
    rule = (struct ferry_io_fail){
        .calls = FERRY_IO_CALL(FERRY_IO_PWRITE), .count = 1, .how = FERRY_IO_FAIL_BITFLIP};
    ferry_io_faulty_fail(f, &rule);
    CU_ASSERT_EQUAL(ferry_io_pwrite(io, fd, "aaaa", 4, 0), 4);
    CU_ASSERT_STRING_EQUAL(content(a), "aaqa");
    ferry_io_faulty_fail(f, NULL);

    /* Six bytes of space: a write across it is short, then ENOSPC. */
    ferry_io_faulty_space(f, 6);
    CU_ASSERT_EQUAL(ferry_pwrite_all_io(io, fd, "0123", 4, 0), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_io_pwrite(io, fd, "4567", 4, 4), 2);
    CU_ASSERT_EQUAL(ferry_io_pwrite(io, fd, "67", 2, 6), -1);
    CU_ASSERT_EQUAL(errno, ENOSPC);
    ferry_io_faulty_space(f, -1);
    CU_ASSERT_EQUAL(ferry_io_pwrite(io, fd, "67", 2, 6), 2);
    CU_ASSERT_STRING_EQUAL(content(a), "01234567");
    ferry_io_close(io, fd);
    ferry_io_faulty_free(f);
}

/* ---- the common file helpers, cut everywhere ----------------------------- */

/* One ferry_write_atomic of new over old, stopped at numbered call n
 * (never for FERRY_IO_NO_STOP), then a power cut anyway; returns what the
 * file holds and whether the write returned FERRY_OK, and *calls. */
static const char *atomic_run(uint64_t n, enum ferry_io_stop how, const char *old_text,
                              const char *new_text, bool *ok, uint64_t *calls)
{
    char dir[PATH_MAX], path[PATH_MAX];
    fresh(dir);
    join(path, dir, "state");
    put(path, old_text);
    struct ferry_io_faulty *f = new_driver();
    ferry_io_faulty_stop_at(f, n, how);
    enum ferry_err err =
        ferry_write_atomic_io(ferry_io_faulty_io(f), path, new_text, strlen(new_text), 0600, NULL);
    *ok = err == FERRY_OK;
    CU_ASSERT_EQUAL(*ok, !ferry_io_faulty_stopped(f));
    *calls = ferry_io_faulty_calls(f);
    ferry_io_faulty_stop(f, how); /* after it returned, if it did */
    ferry_io_faulty_free(f);
    return content(path);
}

/* ferry_write_atomic: before it returns, the old bytes or the new, whole;
 * after it returned FERRY_OK, the new. */
static void write_atomic_survives_a_cut_at_every_call(void)
{
    static const char *const old_text = "the old state, long enough to tear";
    static const char *const new_text = "THE NEW STATE, ALSO LONG ENOUGH TO TEAR";
    for (int how = FERRY_IO_POWER; how <= FERRY_IO_POWER_TORN; how++) {
        bool ok = false;
        uint64_t total = 0, olds = 0, news = 0;
        const char *c =
            atomic_run(FERRY_IO_NO_STOP, (enum ferry_io_stop)how, old_text, new_text, &ok, &total);
        CU_ASSERT_TRUE(ok);
        CU_ASSERT_STRING_EQUAL(c, new_text);
        CU_ASSERT_EQUAL(total, 5); /* create, write, fsync, rename, fsync of the folder */
        for (uint64_t n = 0; n < total; n++) {
            uint64_t calls = 0;
            c = atomic_run(n, (enum ferry_io_stop)how, old_text, new_text, &ok, &calls);
            CU_ASSERT_FALSE(ok);
            CU_ASSERT_EQUAL(calls, n + 1);
            bool is_old = strcmp(c, old_text) == 0, is_new = strcmp(c, new_text) == 0;
            CU_ASSERT_TRUE(is_old || is_new);
            olds += is_old;
            news += is_new;
        }
        /* Only the last call, the folder's fsync, makes the new bytes stay. */
        CU_ASSERT_EQUAL(olds, total);
        CU_ASSERT_EQUAL(news, 0);
    }
}

/* ferry_mkdir_p: a folder it returned FERRY_OK for survives the cut. */
static void mkdir_p_survives_a_cut_at_every_call(void)
{
    uint64_t total = 0, existing = 0;
    for (uint64_t n = 0;; n++) {
        char dir[PATH_MAX], deep[PATH_MAX];
        fresh(dir);
        existing = 0; /* folders on the way that exist: a mkdir each, refused */
        for (const char *p = dir; *p; p++)
            existing += *p == '/';
        join(deep, dir, "a/b/c");
        struct ferry_io_faulty *f = new_driver();
        ferry_io_faulty_stop_at(f, n, FERRY_IO_POWER);
        enum ferry_err err = ferry_mkdir_p_io(ferry_io_faulty_io(f), deep, 0755, NULL);
        bool stopped = ferry_io_faulty_stopped(f);
        if (!stopped)
            ferry_io_faulty_stop(f, FERRY_IO_POWER);
        ferry_io_faulty_free(f);
        if (err == FERRY_OK) {
            CU_ASSERT_TRUE(exists(deep));
        } else {
            CU_ASSERT_TRUE(stopped);
        }
        if (!stopped) {
            total = n;
            break;
        }
    }
    /* Three new folders, each a mkdir and an fsync of its parent. */
    CU_ASSERT_EQUAL(total, existing + 6);
}

const char *const ferry_suite_name = "io_faulty";
const struct ferry_test_case ferry_tests[] = {
    {"unsynced_bytes_are_lost_and_synced_ones_kept", unsynced_bytes_are_lost_and_synced_ones_kept},
    {"a_torn_write_keeps_half_and_garbage", a_torn_write_keeps_half_and_garbage},
    {"the_write_in_flight", the_write_in_flight},
    {"names_need_their_folder_synced", names_need_their_folder_synced},
    {"kill_keeps_the_page_cache", kill_keeps_the_page_cache},
    {"failures_short_writes_bit_flips_and_space", failures_short_writes_bit_flips_and_space},
    {"write_atomic_survives_a_cut_at_every_call", write_atomic_survives_a_cut_at_every_call},
    {"mkdir_p_survives_a_cut_at_every_call", mkdir_p_survives_a_cut_at_every_call},
    {NULL, NULL},
};
