#include "cunit_main.h"

#include "cloud_store.h"
#include "ferry_hex.h"
#include "ferry_manifest.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writes len pseudo-random bytes (seeded, so runs repeat) to a new file. */
static void write_file(const char *path, size_t len, unsigned seed)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        fputc((int)(x >> 16) & 0xff, f);
    }
    CU_ASSERT_EQUAL_FATAL(fclose(f), 0);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    FILE *f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    *len = fread(buf, 1, (size_t)st.st_size, f);
    fclose(f);
    return buf;
}

/* A fresh store folder under the test's tmpdir. */
static const char *new_dir(const char *name)
{
    static char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", ferry_test_tmpdir(), name);
    return path;
}

static size_t count_entries(const char *dir)
{
    DIR *dh = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dh);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(dh));)
        n += e->d_name[0] != '.';
    closedir(dh);
    return n;
}

static size_t tmp_entries(const char *store)
{
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof(tmp), "%s/" CLOUD_STORE_TMP, store);
    CU_ASSERT_FATAL(n > 0 && (size_t)n < sizeof(tmp));
    return count_entries(tmp);
}

struct progress_log {
    uint64_t last_done, total;
    unsigned calls;
    int went_backwards;
};

static void on_progress(void *arg, uint64_t done, uint64_t total)
{
    struct progress_log *p = arg;
    if (done < p->last_done)
        p->went_backwards = 1;
    p->last_done = done;
    p->total = total;
    p->calls++;
}

static void import_stores_bytes_under_their_digest(void)
{
    const char *dir = new_dir("import");
    char src[PATH_MAX];
    snprintf(src, sizeof(src), "%s/import-src.bin", ferry_test_tmpdir());
    const size_t len = (3u << 20) + 123; /* several copy blocks and a tail */
    write_file(src, len, 1);
    size_t src_len;
    uint8_t *want = slurp(src, &src_len);
    uint8_t want_sha[FERRY_SHA256_LEN];
    ferry_sha256(want, src_len, want_sha);

    struct cloud_store *s = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(cloud_store_open(dir, &s, &d), FERRY_OK);
    struct progress_log prog = {0, 0, 0, 0};
    uint8_t sha[FERRY_SHA256_LEN];
    uint64_t size = 0;
    CU_ASSERT_EQUAL_FATAL(cloud_store_import(s, src, on_progress, &prog, sha, &size, &d), FERRY_OK);
    CU_ASSERT_EQUAL(size, len);
    CU_ASSERT_EQUAL(memcmp(sha, want_sha, sizeof(sha)), 0);
    CU_ASSERT_TRUE(prog.calls >= 3);
    CU_ASSERT_FALSE(prog.went_backwards);
    CU_ASSERT_EQUAL(prog.last_done, len);
    CU_ASSERT_EQUAL(prog.total, len);
    CU_ASSERT_EQUAL(tmp_entries(dir), 0);

    char path[PATH_MAX], hex[FERRY_SHA256_HEX_LEN + 1];
    ferry_hex_encode(want_sha, sizeof(want_sha), hex);
    CU_ASSERT_EQUAL_FATAL(cloud_store_path(s, sha, path, sizeof(path)), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(path, hex));
    size_t got_len;
    uint8_t *got = slurp(path, &got_len);
    CU_ASSERT_EQUAL(got_len, len);
    CU_ASSERT_EQUAL(memcmp(got, want, len), 0);
    struct stat st;
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0644);

    uint64_t sz = 0;
    CU_ASSERT_EQUAL(cloud_store_size(s, sha, &sz, &d), FERRY_OK);
    CU_ASSERT_EQUAL(sz, len);
    free(got);
    free(want);
    cloud_store_free(s);
}

static void reimport_of_same_bytes_keeps_the_entry(void)
{
    const char *dir = new_dir("reimport");
    char src[PATH_MAX];
    snprintf(src, sizeof(src), "%s/reimport-src.bin", ferry_test_tmpdir());
    write_file(src, 5000, 2);
    struct cloud_store *s = NULL;
    CU_ASSERT_EQUAL_FATAL(cloud_store_open(dir, &s, NULL), FERRY_OK);
    uint8_t sha1[FERRY_SHA256_LEN], sha2[FERRY_SHA256_LEN];
    uint64_t size1 = 0, size2 = 0;
    CU_ASSERT_EQUAL_FATAL(cloud_store_import(s, src, NULL, NULL, sha1, &size1, NULL), FERRY_OK);
    char path[PATH_MAX];
    CU_ASSERT_EQUAL_FATAL(cloud_store_path(s, sha1, path, sizeof(path)), FERRY_OK);
    struct stat before, after;
    CU_ASSERT_EQUAL_FATAL(stat(path, &before), 0);
    CU_ASSERT_EQUAL_FATAL(cloud_store_import(s, src, NULL, NULL, sha2, &size2, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(stat(path, &after), 0);
    CU_ASSERT_EQUAL(memcmp(sha1, sha2, sizeof(sha1)), 0);
    CU_ASSERT_EQUAL(size1, size2);
    CU_ASSERT_EQUAL(before.st_ino, after.st_ino); /* untouched, not replaced */
    CU_ASSERT_EQUAL(tmp_entries(dir), 0);
    CU_ASSERT_EQUAL(count_entries(dir), 2); /* tmp/ and the one entry */
    cloud_store_free(s);
}

static void damaged_entry_is_replaced_on_import(void)
{
    const char *dir = new_dir("damaged");
    char src[PATH_MAX];
    snprintf(src, sizeof(src), "%s/damaged-src.bin", ferry_test_tmpdir());
    write_file(src, 70000, 3);
    struct cloud_store *s = NULL;
    CU_ASSERT_EQUAL_FATAL(cloud_store_open(dir, &s, NULL), FERRY_OK);
    uint8_t sha[FERRY_SHA256_LEN];
    uint64_t size = 0;
    CU_ASSERT_EQUAL_FATAL(cloud_store_import(s, src, NULL, NULL, sha, &size, NULL), FERRY_OK);
    char path[PATH_MAX];
    CU_ASSERT_EQUAL_FATAL(cloud_store_path(s, sha, path, sizeof(path)), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(truncate(path, 100), 0);
    CU_ASSERT_EQUAL_FATAL(cloud_store_import(s, src, NULL, NULL, sha, &size, NULL), FERRY_OK);
    uint64_t sz = 0;
    CU_ASSERT_EQUAL(cloud_store_size(s, sha, &sz, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(sz, 70000);
    cloud_store_free(s);
}

static void import_refuses_empty_missing_and_non_regular_sources(void)
{
    const char *dir = new_dir("refuse");
    struct cloud_store *s = NULL;
    CU_ASSERT_EQUAL_FATAL(cloud_store_open(dir, &s, NULL), FERRY_OK);
    char empty[PATH_MAX];
    snprintf(empty, sizeof(empty), "%s/empty.bin", ferry_test_tmpdir());
    write_file(empty, 0, 0);
    uint8_t sha[FERRY_SHA256_LEN];
    memset(sha, 0x5a, sizeof(sha));
    uint64_t size = 77;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(cloud_store_import(s, empty, NULL, NULL, sha, &size, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "empty.bin"));
    char missing[PATH_MAX];
    snprintf(missing, sizeof(missing), "%s/no-such-file", ferry_test_tmpdir());
    CU_ASSERT_EQUAL(cloud_store_import(s, missing, NULL, NULL, sha, &size, &d), FERRY_E_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "no-such-file"));
    CU_ASSERT_EQUAL(cloud_store_import(s, ferry_test_tmpdir(), NULL, NULL, sha, &size, &d),
                    FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(size, 77);
    CU_ASSERT_EQUAL(sha[0], 0x5a);
    CU_ASSERT_EQUAL(tmp_entries(dir), 0);
    cloud_store_free(s);
}

static void lookups_of_absent_and_foreign_entries_fail_cleanly(void)
{
    const char *dir = new_dir("lookup");
    struct cloud_store *s = NULL;
    CU_ASSERT_EQUAL_FATAL(cloud_store_open(dir, &s, NULL), FERRY_OK);
    uint8_t sha[FERRY_SHA256_LEN];
    memset(sha, 0xab, sizeof(sha));
    int fd = -7;
    uint64_t size = 5;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(cloud_store_open_entry(s, sha, &fd, &size, &d), FERRY_E_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "abababab"));
    CU_ASSERT_EQUAL(cloud_store_size(s, sha, &size, &d), FERRY_E_NOT_FOUND);
    CU_ASSERT_EQUAL(fd, -7);
    CU_ASSERT_EQUAL(size, 5);

    /* A symbolic link or a folder under a digest's name was not made here. */
    char path[PATH_MAX];
    CU_ASSERT_EQUAL_FATAL(cloud_store_path(s, sha, path, sizeof(path)), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(symlink("/etc/passwd", path), 0);
    CU_ASSERT_EQUAL(cloud_store_open_entry(s, sha, &fd, &size, &d), FERRY_E_CORRUPT);
    CU_ASSERT_EQUAL(cloud_store_size(s, sha, &size, &d), FERRY_E_CORRUPT);
    CU_ASSERT_EQUAL_FATAL(unlink(path), 0);
    CU_ASSERT_EQUAL_FATAL(mkdir(path, 0755), 0);
    CU_ASSERT_EQUAL(cloud_store_open_entry(s, sha, &fd, &size, &d), FERRY_E_CORRUPT);
    CU_ASSERT_EQUAL(fd, -7);

    char small[8];
    CU_ASSERT_EQUAL(cloud_store_path(s, sha, small, sizeof(small)), FERRY_E_TOO_LARGE);
    cloud_store_free(s);
}

static void open_entry_reads_what_was_imported(void)
{
    const char *dir = new_dir("read");
    char src[PATH_MAX];
    snprintf(src, sizeof(src), "%s/read-src.bin", ferry_test_tmpdir());
    write_file(src, 100000, 4);
    size_t len;
    uint8_t *want = slurp(src, &len);
    struct cloud_store *s = NULL;
    CU_ASSERT_EQUAL_FATAL(cloud_store_open(dir, &s, NULL), FERRY_OK);
    uint8_t sha[FERRY_SHA256_LEN];
    uint64_t size = 0;
    CU_ASSERT_EQUAL_FATAL(cloud_store_import(s, src, NULL, NULL, sha, &size, NULL), FERRY_OK);
    int fd = -1;
    uint64_t esize = 0;
    CU_ASSERT_EQUAL_FATAL(cloud_store_open_entry(s, sha, &fd, &esize, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(esize, len);
    uint8_t buf[1000];
    CU_ASSERT_EQUAL(pread(fd, buf, sizeof(buf), 65536), (ssize_t)sizeof(buf));
    CU_ASSERT_EQUAL(memcmp(buf, want + 65536, sizeof(buf)), 0);
    close(fd);
    free(want);
    cloud_store_free(s);
}

/* A copy made behind the store's back (another host's files copied in)
 * is checked against its name before serve sends it: a whole copy
 * verifies, a damaged one (a byte changed, or cut short) does not. */
static void verify_entry_checks_a_copy_against_its_name(void)
{
    const char *dir = new_dir("verify");
    char src[PATH_MAX];
    snprintf(src, sizeof(src), "%s/verify-src.bin", ferry_test_tmpdir());
    write_file(src, 200000, 5); /* more than one read buffer */
    struct cloud_store *s = NULL;
    CU_ASSERT_EQUAL_FATAL(cloud_store_open(dir, &s, NULL), FERRY_OK);
    uint8_t sha[FERRY_SHA256_LEN];
    uint64_t size = 0;
    CU_ASSERT_EQUAL_FATAL(cloud_store_import(s, src, NULL, NULL, sha, &size, NULL), FERRY_OK);
    int fd = -1;
    uint64_t esize = 0;
    CU_ASSERT_EQUAL_FATAL(cloud_store_open_entry(s, sha, &fd, &esize, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(cloud_store_verify_entry(s, sha, fd, esize, NULL), FERRY_OK);
    close(fd);
    /* One byte changed in place, as a bad copy would hold it. */
    char path[PATH_MAX];
    CU_ASSERT_EQUAL_FATAL(cloud_store_path(s, sha, path, sizeof(path)), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(chmod(path, 0644), 0);
    int w = open(path, O_WRONLY);
    CU_ASSERT_FATAL(w >= 0);
    CU_ASSERT_EQUAL(pwrite(w, "x", 1, 150000), 1);
    close(w);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL_FATAL(cloud_store_open_entry(s, sha, &fd, &esize, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(cloud_store_verify_entry(s, sha, fd, esize, &d), FERRY_E_HASH_MISMATCH);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "does not hold what its name says"));
    /* A size beyond the file (cut short while open) is a read error. */
    CU_ASSERT_EQUAL(cloud_store_verify_entry(s, sha, fd, esize + 10, NULL), FERRY_E_IO);
    close(fd);
    cloud_store_free(s);
}

/* An imported entry of len bytes; *fd (close it) open on it, path its file. */
static struct cloud_store *entry_of(const char *name, size_t len, uint8_t sha[FERRY_SHA256_LEN],
                                    int *fd, char path[PATH_MAX])
{
    char src[PATH_MAX];
    snprintf(src, sizeof(src), "%s/%s-src.bin", ferry_test_tmpdir(), name);
    write_file(src, len, (unsigned)len);
    struct cloud_store *s = NULL;
    CU_ASSERT_EQUAL_FATAL(cloud_store_open(new_dir(name), &s, NULL), FERRY_OK);
    uint64_t size = 0, esize = 0;
    CU_ASSERT_EQUAL_FATAL(cloud_store_import(s, src, NULL, NULL, sha, &size, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(cloud_store_open_entry(s, sha, fd, &esize, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(esize, len);
    CU_ASSERT_EQUAL_FATAL(cloud_store_path(s, sha, path, PATH_MAX), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(chmod(path, 0644), 0);
    return s;
}

/* Steps a check to its end in slices of slice bytes: each step hashes
 * exactly min(slice, what is left), never more. Returns the steps taken. */
static unsigned step_to_end(struct cloud_store *s, struct cloud_store_check *c, uint64_t slice)
{
    unsigned steps = 0;
    while (!cloud_store_check_done(c)) {
        uint64_t before = c->done, left = c->size - c->done;
        CU_ASSERT_EQUAL_FATAL(cloud_store_check_step(s, c, slice, NULL), FERRY_OK);
        CU_ASSERT_EQUAL_FATAL(c->done - before, left < slice ? left : slice);
        steps++;
    }
    return steps;
}

/* A good entry verifies whatever the slice: one that divides its size, ones
 * that do not (within and across the 64 KiB reads), one larger than it. */
static void check_in_slices_verifies_a_good_entry(void)
{
    const size_t len = 200000;
    uint8_t sha[FERRY_SHA256_LEN];
    int fd = -1;
    char path[PATH_MAX];
    struct cloud_store *s = entry_of("check-good", len, sha, &fd, path);
    const uint64_t slices[] = {50000, 65536, 70001, 1000, UINT64_C(1) << 20};
    for (size_t i = 0; i < sizeof(slices) / sizeof(slices[0]); i++) {
        struct cloud_store_check c;
        CU_ASSERT_EQUAL_FATAL(cloud_store_check_begin(s, &c, sha, fd, len, NULL), FERRY_OK);
        CU_ASSERT_FALSE(cloud_store_check_done(&c));
        unsigned steps = step_to_end(s, &c, slices[i]);
        CU_ASSERT_EQUAL(steps, (len + slices[i] - 1) / slices[i]);
        CU_ASSERT_EQUAL(cloud_store_check_end(s, &c, NULL), FERRY_OK);
        CU_ASSERT_FALSE(c.live);
    }
    /* The one-shot check is the same loop. */
    CU_ASSERT_EQUAL(cloud_store_verify_entry(s, sha, fd, len, NULL), FERRY_OK);
    close(fd);
    cloud_store_free(s);
}

/* A byte changed in place before the check (a bad copy) is a mismatch at
 * the end, in any slices; the verdict is the end's, not a step's. */
static void check_in_slices_finds_a_tampered_entry(void)
{
    const size_t len = 300000;
    uint8_t sha[FERRY_SHA256_LEN];
    int fd = -1;
    char path[PATH_MAX];
    struct cloud_store *s = entry_of("check-bad", len, sha, &fd, path);
    int w = open(path, O_WRONLY);
    CU_ASSERT_FATAL(w >= 0);
    uint8_t b = 0;
    CU_ASSERT_EQUAL_FATAL(pread(fd, &b, 1, 299999), 1);
    b ^= 0x01;
    CU_ASSERT_EQUAL(pwrite(w, &b, 1, 299999), 1); /* the very last byte */
    close(w);
    const uint64_t slices[] = {100000, 65536};
    for (size_t i = 0; i < sizeof(slices) / sizeof(slices[0]); i++) {
        struct cloud_store_check c;
        struct ferry_diag d = {{0}};
        CU_ASSERT_EQUAL_FATAL(cloud_store_check_begin(s, &c, sha, fd, len, NULL), FERRY_OK);
        step_to_end(s, &c, slices[i]);
        CU_ASSERT_EQUAL(cloud_store_check_end(s, &c, &d), FERRY_E_HASH_MISMATCH);
        CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "does not hold what its name says"));
    }
    close(fd);
    cloud_store_free(s);
}

/* A file rewritten while it is checked says nothing about the copy, even
 * when its bytes end up as they were: the end tells the caller to begin
 * again (FERRY_E_BUSY), and a check begun afterwards verifies. */
static void check_of_a_file_changed_midway_starts_over(void)
{
    const size_t len = 200000;
    uint8_t sha[FERRY_SHA256_LEN];
    int fd = -1;
    char path[PATH_MAX];
    struct cloud_store *s = entry_of("check-changed", len, sha, &fd, path);
    struct cloud_store_check c;
    CU_ASSERT_EQUAL_FATAL(cloud_store_check_begin(s, &c, sha, fd, len, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(cloud_store_check_step(s, &c, 100000, NULL), FERRY_OK);
    /* The same byte written back, with another modification time. */
    uint8_t b = 0;
    CU_ASSERT_EQUAL_FATAL(pread(fd, &b, 1, 150000), 1);
    int w = open(path, O_WRONLY);
    CU_ASSERT_FATAL(w >= 0);
    CU_ASSERT_EQUAL(pwrite(w, &b, 1, 150000), 1);
    struct timespec times[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
    CU_ASSERT_EQUAL(futimens(w, times), 0);
    close(w);
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(fstat(fd, &st), 0);
    CU_ASSERT_FALSE(cloud_store_same_file(&c.file, &st));
    step_to_end(s, &c, 100000);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(cloud_store_check_end(s, &c, &d), FERRY_E_BUSY);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "changed while it was checked"));
    /* Begun again on the file as it is now: the same file throughout. */
    CU_ASSERT_EQUAL_FATAL(cloud_store_check_begin(s, &c, sha, fd, len, NULL), FERRY_OK);
    CU_ASSERT(cloud_store_same_file(&c.file, &st));
    step_to_end(s, &c, 65536);
    CU_ASSERT_EQUAL(cloud_store_check_end(s, &c, NULL), FERRY_OK);
    /* Cut short while checked: the step that finds the end is a read error. */
    CU_ASSERT_EQUAL_FATAL(cloud_store_check_begin(s, &c, sha, fd, len, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(cloud_store_check_step(s, &c, 65536, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(truncate(path, 100000), 0);
    CU_ASSERT_EQUAL(cloud_store_check_step(s, &c, 65536, NULL), FERRY_E_IO);
    CU_ASSERT_FALSE(c.live);
    close(fd);
    cloud_store_free(s);
}

/* The calling protocol's bounds: no zero slice, no step of a check over or
 * never begun, no verdict before every byte is hashed; cancel at any time. */
static void check_keeps_to_its_calling_protocol(void)
{
    const size_t len = 100000;
    uint8_t sha[FERRY_SHA256_LEN];
    int fd = -1;
    char path[PATH_MAX];
    struct cloud_store *s = entry_of("check-protocol", len, sha, &fd, path);
    struct cloud_store_check c;
    CU_ASSERT_EQUAL_FATAL(cloud_store_check_begin(s, &c, sha, fd, len, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(cloud_store_check_step(s, &c, 0, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_FALSE(c.live); /* an error ends the check */
    CU_ASSERT_EQUAL(cloud_store_check_step(s, &c, 4096, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(c.done, 0);
    CU_ASSERT_EQUAL_FATAL(cloud_store_check_begin(s, &c, sha, fd, len, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(cloud_store_check_step(s, &c, 4096, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(c.done, 4096);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(cloud_store_check_end(s, &c, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "after 4096 of 100000 bytes"));
    CU_ASSERT_FALSE(c.live);
    CU_ASSERT_EQUAL_FATAL(cloud_store_check_begin(s, &c, sha, fd, len, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(cloud_store_check_step(s, &c, 4096, NULL), FERRY_OK);
    cloud_store_check_cancel(&c);
    cloud_store_check_cancel(&c); /* harmless twice */
    CU_ASSERT_FALSE(c.live);
    /* The fd is the caller's: still open after all of the above. */
    uint8_t b;
    CU_ASSERT_EQUAL(pread(fd, &b, 1, 0), 1);
    /* A closed fd cannot be begun on. */
    close(fd);
    CU_ASSERT_EQUAL(cloud_store_check_begin(s, &c, sha, fd, len, NULL), FERRY_E_IO);
    CU_ASSERT_FALSE(c.live);
    cloud_store_free(s);
}

static void open_creates_the_folders(void)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/deep/er/store", ferry_test_tmpdir());
    struct cloud_store *s = NULL;
    CU_ASSERT_EQUAL_FATAL(cloud_store_open(dir, &s, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(tmp_entries(dir), 0);
    cloud_store_free(s);
    cloud_store_free(NULL);

    char file[PATH_MAX];
    snprintf(file, sizeof(file), "%s/plain-file", ferry_test_tmpdir());
    write_file(file, 10, 5);
    struct ferry_diag d = {{0}};
    s = NULL;
    CU_ASSERT_NOT_EQUAL(cloud_store_open(file, &s, &d), FERRY_OK);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "plain-file"));
}

struct seen_ids {
    char ids[8][FERRY_NAME_MAX + 1];
    size_t n;
};

static enum ferry_err collect_id(void *arg, const char *id)
{
    struct seen_ids *s = arg;
    if (s->n < 8)
        snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", id);
    s->n++;
    return FERRY_OK;
}

static bool seen(const struct seen_ids *s, const char *id)
{
    for (size_t i = 0; i < s->n && i < 8; i++)
        if (strcmp(s->ids[i], id) == 0)
            return true;
    return false;
}

static void each_release_lists_the_catalogue(void)
{
    char dir[PATH_MAX], junk[PATH_MAX + 64];
    snprintf(dir, sizeof(dir), "%s/listed", ferry_test_tmpdir());
    struct cloud_store *s = NULL;
    struct seen_ids got = {0};
    CU_ASSERT_EQUAL_FATAL(cloud_store_open(dir, &s, NULL), FERRY_OK);
    /* No catalogue yet: no release, no error. */
    CU_ASSERT_EQUAL(cloud_store_each_release(s, collect_id, &got, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(got.n, 0);
    const uint8_t env[] = "{}";
    CU_ASSERT_EQUAL(cloud_store_put_release(s, "fw-1.0.0-1", env, 2, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(cloud_store_put_release(s, "fw-1.1.0-2", env, 2, NULL), FERRY_OK);
    /* What is not "<id>.env" is passed over: a temporary file, another suffix. */
    snprintf(junk, sizeof(junk), "%s/releases/.fw-2.env.tmp123", dir);
    write_file(junk, 3, 1);
    snprintf(junk, sizeof(junk), "%s/releases/notes.txt", dir);
    write_file(junk, 3, 1);
    snprintf(junk, sizeof(junk), "%s/releases/.env", dir);
    write_file(junk, 3, 1);
    CU_ASSERT_EQUAL(cloud_store_each_release(s, collect_id, &got, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(got.n, 2);
    CU_ASSERT(seen(&got, "fw-1.0.0-1"));
    CU_ASSERT(seen(&got, "fw-1.1.0-2"));
    cloud_store_free(s);
}

const char *const ferry_suite_name = "cloud_store";
const struct ferry_test_case ferry_tests[] = {
    {"import stores bytes under their digest", import_stores_bytes_under_their_digest},
    {"re-import of the same bytes keeps the entry", reimport_of_same_bytes_keeps_the_entry},
    {"a damaged entry is replaced on import", damaged_entry_is_replaced_on_import},
    {"import refuses empty, missing and non-regular sources",
     import_refuses_empty_missing_and_non_regular_sources},
    {"lookups of absent and foreign entries fail cleanly",
     lookups_of_absent_and_foreign_entries_fail_cleanly},
    {"open_entry reads what was imported", open_entry_reads_what_was_imported},
    {"verify_entry checks a copy against its name", verify_entry_checks_a_copy_against_its_name},
    {"a check in slices verifies a good entry", check_in_slices_verifies_a_good_entry},
    {"a check in slices finds a tampered entry", check_in_slices_finds_a_tampered_entry},
    {"a check of a file changed midway starts over", check_of_a_file_changed_midway_starts_over},
    {"a check keeps to its calling protocol", check_keeps_to_its_calling_protocol},
    {"open creates the folders", open_creates_the_folders},
    {"each_release lists the catalogue", each_release_lists_the_catalogue},
    {NULL, NULL},
};
