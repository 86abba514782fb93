/* ferry_fs against what a hostile or unlucky file system does: a symbolic
 * link planted where the temporary file will go, and the fsyncs a new
 * folder needs to survive a power cut. fsync() is wrapped at link time
 * (-Wl,--wrap=fsync, tests/CMakeLists.txt) so the test sees which folders
 * were made durable; the wrapper then calls the real fsync. */
#include "cunit_main.h"

#include "ferry_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int __real_fsync(int fd);
int __wrap_fsync(int fd);

#define MAX_SYNCED 64

/* The (device, inode) of every folder fsync'd since the last reset. */
static struct {
    dev_t dev;
    ino_t ino;
} synced[MAX_SYNCED];
static size_t nsynced;

int __wrap_fsync(int fd)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && nsynced < MAX_SYNCED) {
        synced[nsynced].dev = st.st_dev;
        synced[nsynced].ino = st.st_ino;
        nsynced++;
    }
    return __real_fsync(fd);
}

static bool was_synced(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return false;
    for (size_t i = 0; i < nsynced; i++) {
        if (synced[i].dev == st.st_dev && synced[i].ino == st.st_ino)
            return true;
    }
    return false;
}

static void path_of(char *out, const char *name)
{
    snprintf(out, PATH_MAX, "%s/%s", ferry_test_tmpdir(), name);
}

static bool file_is(const char *path, const char *want)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (ferry_read_file(path, 4096, &buf, &len, NULL) != FERRY_OK)
        return false;
    bool same = len == strlen(want) && memcmp(buf, want, len) == 0;
    free(buf);
    return same;
}

/* The old temporary name was "<path>.tmp.<pid>", opened without O_EXCL: a
 * link planted there sent the new state into whatever file it pointed to. */
static void write_atomic_never_follows_a_planted_link(void)
{
    char path[PATH_MAX], victim[PATH_MAX], planted[PATH_MAX + 32];
    path_of(path, "job.rec");
    path_of(victim, "victim");
    snprintf(planted, sizeof(planted), "%s.tmp.%ld", path, (long)getpid());
    struct ferry_diag d = {""};
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(victim, "untouched", 9, 0600, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(symlink(victim, planted), 0);

    CU_ASSERT_EQUAL(ferry_write_atomic(path, "new state", 9, 0644, &d), FERRY_OK);
    CU_ASSERT_TRUE(file_is(path, "new state"));
    CU_ASSERT_TRUE(file_is(victim, "untouched"));
    struct stat st;
    CU_ASSERT_EQUAL(lstat(path, &st), 0);
    CU_ASSERT_TRUE(S_ISREG(st.st_mode));
    CU_ASSERT_EQUAL(st.st_mode & 07777, 0644);
    /* The planted link is left alone, not replaced or removed. */
    CU_ASSERT_EQUAL(lstat(planted, &st), 0);
    CU_ASSERT_TRUE(S_ISLNK(st.st_mode));
    unlink(planted);
}

/* Two writers of one file never share a temporary file. */
static void write_atomic_temporary_names_differ(void)
{
    char path[PATH_MAX];
    path_of(path, "twice");
    struct ferry_diag d = {""};
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(ferry_write_atomic(path, "abc", 3, 0600, &d), FERRY_OK);
    DIR *dp = opendir(ferry_test_tmpdir());
    CU_ASSERT_PTR_NOT_NULL_FATAL(dp);
    size_t left = 0;
    for (struct dirent *e; (e = readdir(dp));)
        left += strncmp(e->d_name, "twice.tmp.", 10) == 0;
    closedir(dp);
    CU_ASSERT_EQUAL(left, 0);
}

/* mkdir -p a/b/c: the entry of each new folder must reach the disk, which
 * takes an fsync of the folder holding it. */
static void mkdir_p_syncs_the_parent_of_each_new_folder(void)
{
    char base[PATH_MAX], a[PATH_MAX], b[PATH_MAX], c[PATH_MAX];
    path_of(base, "tree");
    path_of(a, "tree/a");
    path_of(b, "tree/a/b");
    path_of(c, "tree/a/b/c");
    CU_ASSERT_EQUAL_FATAL(mkdir(base, 0700), 0);
    struct ferry_diag d = {""};
    nsynced = 0;
    CU_ASSERT_EQUAL_FATAL(ferry_mkdir_p(c, 0700, &d), FERRY_OK);
    CU_ASSERT_TRUE(was_synced(base));
    CU_ASSERT_TRUE(was_synced(a));
    CU_ASSERT_TRUE(was_synced(b));

    /* Nothing new, nothing to make durable. */
    nsynced = 0;
    CU_ASSERT_EQUAL(ferry_mkdir_p(c, 0700, &d), FERRY_OK);
    CU_ASSERT_EQUAL(nsynced, 0);
}

/* A relative path's first folder lives in the working folder. */
static void mkdir_p_relative_syncs_the_working_folder(void)
{
    char cwd[PATH_MAX];
    CU_ASSERT_PTR_NOT_NULL_FATAL(getcwd(cwd, sizeof(cwd)));
    CU_ASSERT_EQUAL_FATAL(chdir(ferry_test_tmpdir()), 0);
    struct ferry_diag d = {""};
    nsynced = 0;
    CU_ASSERT_EQUAL(ferry_mkdir_p("rel/x", 0700, &d), FERRY_OK);
    CU_ASSERT_TRUE(was_synced("."));
    CU_ASSERT_TRUE(was_synced("rel"));
    CU_ASSERT_EQUAL(chdir(cwd), 0);
}

const char *const ferry_suite_name = "fs";
const struct ferry_test_case ferry_tests[] = {
    {"write_atomic_never_follows_a_planted_link", write_atomic_never_follows_a_planted_link},
    {"write_atomic_temporary_names_differ", write_atomic_temporary_names_differ},
    {"mkdir_p_syncs_the_parent_of_each_new_folder", mkdir_p_syncs_the_parent_of_each_new_folder},
    {"mkdir_p_relative_syncs_the_working_folder", mkdir_p_relative_syncs_the_working_folder},
    {NULL, NULL},
};
