#include "cunit_main.h"

#include "ferry_crc32.h"
#include "ferry_err.h"
#include "ferry_fs.h"
#include "ferry_hex.h"
#include "ferry_log.h"
#include "ferry_opts.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *tmp_path(const char *name)
{
    static char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", ferry_test_tmpdir(), name);
    return path;
}

/* ---- crc32 --------------------------------------------------------------- */

static void crc32_check_value(void)
{
    /* The standard check value of CRC-32/ISO-HDLC. */
    CU_ASSERT_EQUAL(ferry_crc32(0, "123456789", 9), 0xCBF43926u);
}

static void crc32_chains(void)
{
    uint32_t part = ferry_crc32(0, "1234", 4);
    CU_ASSERT_EQUAL(ferry_crc32(part, "56789", 5), ferry_crc32(0, "123456789", 9));
    CU_ASSERT_EQUAL(ferry_crc32(0, "", 0), 0);
}

/* ---- fs ------------------------------------------------------------------ */

static size_t count_temp_files(const char *dir)
{
    size_t n = 0;
    DIR *dp = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dp);
    for (struct dirent *e; (e = readdir(dp));) {
        if (strstr(e->d_name, ".tmp."))
            n++;
    }
    closedir(dp);
    return n;
}

static void fs_atomic_write_replaces_whole_file(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s", tmp_path("state.bin"));
    struct ferry_diag d = {""};
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(path, "first version", 13, 0600, &d), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(path, "second", 6, 0640, &d), FERRY_OK);
    uint8_t *buf = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(ferry_read_file(path, 1024, &buf, &len, &d), FERRY_OK);
    CU_ASSERT_EQUAL(len, 6);
    CU_ASSERT_EQUAL(memcmp(buf, "second", 6), 0);
    CU_ASSERT_EQUAL(buf[len], 0);
    free(buf);
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0640);
    CU_ASSERT_EQUAL(count_temp_files(ferry_test_tmpdir()), 0);
}

static void fs_atomic_write_empty_and_failure(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s", tmp_path("empty.bin"));
    struct ferry_diag d = {""};
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(path, "", 0, 0600, &d), FERRY_OK);
    uint8_t *buf = NULL;
    size_t len = 99;
    CU_ASSERT_EQUAL_FATAL(ferry_read_file(path, 0, &buf, &len, &d), FERRY_OK);
    CU_ASSERT_EQUAL(len, 0);
    free(buf);

    /* Into a folder that does not exist: refused, naming the path. */
    snprintf(path, sizeof(path), "%s", tmp_path("no-such-dir/x.bin"));
    CU_ASSERT_EQUAL(ferry_write_atomic(path, "x", 1, 0600, &d), FERRY_E_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "no-such-dir"));
}

static void fs_read_cap_and_errors(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s", tmp_path("capped.bin"));
    uint8_t data[100];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7);
    struct ferry_diag d = {""};
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(path, data, sizeof(data), 0600, &d), FERRY_OK);

    uint8_t *buf = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(ferry_read_file(path, sizeof(data), &buf, &len, &d), FERRY_OK);
    CU_ASSERT_EQUAL(len, sizeof(data));
    CU_ASSERT_EQUAL(memcmp(buf, data, sizeof(data)), 0);
    free(buf);

    buf = NULL;
    len = 12345;
    CU_ASSERT_EQUAL(ferry_read_file(path, sizeof(data) - 1, &buf, &len, &d), FERRY_E_TOO_LARGE);
    CU_ASSERT_PTR_NULL(buf);
    CU_ASSERT_EQUAL(len, 12345);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "limit is 99"));

    CU_ASSERT_EQUAL(ferry_read_file(tmp_path("missing.bin"), 10, &buf, &len, &d),
                    FERRY_E_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "missing.bin"));
    CU_ASSERT_EQUAL(ferry_read_file(ferry_test_tmpdir(), 10, &buf, &len, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NULL(buf);
}

static void fs_mkdir_p_nested_and_existing(void)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s", tmp_path("a/b/c"));
    struct ferry_diag d = {""};
    CU_ASSERT_EQUAL_FATAL(ferry_mkdir_p(path, 0700, &d), FERRY_OK);
    struct stat st;
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_TRUE(S_ISDIR(st.st_mode));
    /* Again, and with a trailing slash: existing folders are fine. */
    CU_ASSERT_EQUAL(ferry_mkdir_p(path, 0700, &d), FERRY_OK);
    strcat(path, "/");
    CU_ASSERT_EQUAL(ferry_mkdir_p(path, 0700, &d), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_fsync_dir(path), FERRY_OK);

    /* Through a regular file: refused, naming where it stopped. */
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(tmp_path("plain"), "x", 1, 0600, &d), FERRY_OK);
    snprintf(path, sizeof(path), "%s", tmp_path("plain/sub"));
    d.msg[0] = 0;
    CU_ASSERT_NOT_EQUAL(ferry_mkdir_p(path, 0700, &d), FERRY_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "plain"));

    /* The path itself is a regular file: not a folder, refused. */
    d.msg[0] = 0;
    CU_ASSERT_EQUAL(ferry_mkdir_p(tmp_path("plain"), 0700, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "not a folder"));
}

static void fs_pwrite_all_at_offsets(void)
{
    int fd = open(tmp_path("blocks.bin"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    /* Out of order and repeated, as duplicated Block2 responses arrive. */
    CU_ASSERT_EQUAL(ferry_pwrite_all(fd, "CC", 2, 4), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_pwrite_all(fd, "AA", 2, 0), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_pwrite_all(fd, "BB", 2, 2), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_pwrite_all(fd, "CC", 2, 4), FERRY_OK);
    CU_ASSERT_EQUAL(ferry_write_all(fd, "", 0), FERRY_OK);
    char back[8] = {0};
    CU_ASSERT_EQUAL(pread(fd, back, sizeof(back), 0), 6);
    CU_ASSERT_STRING_EQUAL(back, "AABBCC");
    close(fd);
    CU_ASSERT_EQUAL(ferry_write_all(-1, "x", 1), FERRY_E_IO);
}

/* ---- hex ----------------------------------------------------------------- */

static void hex_round_trip_every_byte(void)
{
    uint8_t all[256], back[256];
    for (unsigned i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    char text[2 * 256 + 1];
    ferry_hex_encode(all, sizeof(all), text);
    CU_ASSERT_EQUAL(strlen(text), 512);
    CU_ASSERT_EQUAL(strncmp(text, "000102", 6), 0);
    CU_ASSERT_STRING_EQUAL(text + 500, "fafbfcfdfeff");
    CU_ASSERT_EQUAL(ferry_hex_decode(text, back, sizeof(back)), FERRY_OK);
    CU_ASSERT_EQUAL(memcmp(all, back, sizeof(all)), 0);
}

static void hex_decode_rules(void)
{
    uint8_t out[2] = {0x11, 0x22};
    CU_ASSERT_EQUAL(ferry_hex_decode("AbCd", out, 2), FERRY_OK);
    CU_ASSERT_EQUAL(out[0], 0xAB);
    CU_ASSERT_EQUAL(out[1], 0xCD);
    static const char *const bad[] = {"abc", "abcdef", "", "abcg", "ab d", "0x12", "ab\ncd"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        out[0] = 0x11;
        out[1] = 0x22;
        CU_ASSERT_EQUAL(ferry_hex_decode(bad[i], out, 2), FERRY_E_MALFORMED);
        CU_ASSERT_EQUAL(out[0], 0x11);
        CU_ASSERT_EQUAL(out[1], 0x22);
    }
    char empty[1] = {'x'};
    ferry_hex_encode(out, 0, empty);
    CU_ASSERT_EQUAL(empty[0], 0);
}

/* ---- errors and diagnostics ---------------------------------------------- */

static void err_names_round_trip(void)
{
    for (unsigned i = 0; i < FERRY_E__COUNT; i++) {
        enum ferry_err e = (enum ferry_err)i;
        const char *name = ferry_err_name(e);
        CU_ASSERT_TRUE(name[0] != 0);
        /* Wire tokens: lower-case letters and '-', nothing to escape. */
        CU_ASSERT_EQUAL(strspn(name, "abcdefghijklmnopqrstuvwxyz-"), strlen(name));
        CU_ASSERT_TRUE(ferry_strerror(e)[0] != 0);
        enum ferry_err back = FERRY_E__COUNT;
        CU_ASSERT_EQUAL(ferry_err_from_name(name, &back), FERRY_OK);
        CU_ASSERT_EQUAL(back, e);
        for (unsigned j = 0; j < i; j++)
            CU_ASSERT_STRING_NOT_EQUAL(name, ferry_err_name((enum ferry_err)j));
    }
    CU_ASSERT_STRING_EQUAL(ferry_err_name(FERRY_E_HASH_MISMATCH), "hash-mismatch");
    enum ferry_err back = FERRY_E_IO;
    CU_ASSERT_EQUAL(ferry_err_from_name("Hash-Mismatch", &back), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(ferry_err_from_name("", &back), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(back, FERRY_E_IO);
    CU_ASSERT_STRING_EQUAL(ferry_err_name(FERRY_E__COUNT), "unknown");
    CU_ASSERT_STRING_EQUAL(ferry_strerror((enum ferry_err) - 1), "unknown error");
}

static void diag_fail_and_str(void)
{
    struct ferry_diag d = {""};
    CU_ASSERT_STRING_EQUAL(ferry_diag_str(&d, FERRY_E_NOSPACE), ferry_strerror(FERRY_E_NOSPACE));
    CU_ASSERT_STRING_EQUAL(ferry_diag_str(NULL, FERRY_E_IO), ferry_strerror(FERRY_E_IO));
    CU_ASSERT_EQUAL(ferry_fail(&d, FERRY_E_MALFORMED, "field '%s' bad, got %d", "seq", 0),
                    FERRY_E_MALFORMED);
    CU_ASSERT_STRING_EQUAL(ferry_diag_str(&d, FERRY_E_MALFORMED), "field 'seq' bad, got 0");
    CU_ASSERT_EQUAL(ferry_fail(NULL, FERRY_E_BUSY, "ignored"), FERRY_E_BUSY);
    /* Longer than the buffer: cut, still terminated. */
    char long_text[FERRY_DIAG_MAX * 2];
    memset(long_text, 'L', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = 0;
    (void)ferry_fail(&d, FERRY_E_IO, "%s", long_text);
    CU_ASSERT_EQUAL(strlen(d.msg), FERRY_DIAG_MAX - 1);
}

static void diag_prefix_and_truncation(void)
{
    struct ferry_diag d = {""};
    (void)ferry_fail(&d, FERRY_E_IO, "disk full");
    ferry_diag_prefix(&d, "journal");
    CU_ASSERT_STRING_EQUAL(d.msg, "journal: disk full");
    ferry_diag_prefix(NULL, "ignored");

    /* A full message keeps the prefix and loses its tail. */
    memset(d.msg, 'm', FERRY_DIAG_MAX - 1);
    d.msg[FERRY_DIAG_MAX - 1] = 0;
    ferry_diag_prefix(&d, "pre");
    CU_ASSERT_EQUAL(strlen(d.msg), FERRY_DIAG_MAX - 1);
    CU_ASSERT_EQUAL(strncmp(d.msg, "pre: mmm", 8), 0);
    CU_ASSERT_EQUAL(d.msg[FERRY_DIAG_MAX - 2], 'm');

    /* A prefix longer than the buffer: cut, terminated, message gone. */
    char long_prefix[FERRY_DIAG_MAX + 50];
    memset(long_prefix, 'p', sizeof(long_prefix) - 1);
    long_prefix[sizeof(long_prefix) - 1] = 0;
    (void)ferry_fail(&d, FERRY_E_IO, "msg");
    ferry_diag_prefix(&d, long_prefix);
    CU_ASSERT_EQUAL(strlen(d.msg), FERRY_DIAG_MAX - 1);
    CU_ASSERT_EQUAL(d.msg[0], 'p');
    CU_ASSERT_PTR_NULL(strstr(d.msg, "msg"));

    /* An empty message still gets the prefix. */
    d.msg[0] = 0;
    ferry_diag_prefix(&d, "ctx");
    CU_ASSERT_STRING_EQUAL(d.msg, "ctx: ");
}

/* ---- option value parsers ------------------------------------------------ */

static void parse_duration_units_and_limits(void)
{
    static const struct {
        const char *in;
        int64_t want;
    } good[] = {
        {"0", 0},
        {"90", 90},
        {"45s", 45},
        {"30m", 1800},
        {"12h", 43200},
        {"7d", 604800},
        {"9223372036854775807", INT64_MAX},
        {"106751991167300d", INT64_C(106751991167300) * 86400},
        {"153722867280912930m", INT64_C(153722867280912930) * 60},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t v = -1;
        CU_ASSERT_EQUAL(ferry_parse_duration(good[i].in, &v), FERRY_OK);
        CU_ASSERT_EQUAL(v, good[i].want);
    }
    static const char *const bad[] = {
        "",
        "s",
        "-1",
        "+5",
        " 5",
        "5 ",
        "1.5h",
        "10y",
        "5S",
        "0x10",
        "h5",
        "5hh",
        "9223372036854775808",
        "106751991167301d",
        "153722867280912931m",
        "999999999999999999999",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v = -7;
        CU_ASSERT_EQUAL(ferry_parse_duration(bad[i], &v), FERRY_E_INVALID_ARG);
        CU_ASSERT_EQUAL(v, -7);
    }
}

static void parse_u64_overflow_and_syntax(void)
{
    uint64_t v = 0;
    CU_ASSERT_EQUAL(ferry_parse_u64("18446744073709551615", &v), FERRY_OK);
    CU_ASSERT_EQUAL(v, UINT64_MAX);
    CU_ASSERT_EQUAL(ferry_parse_u64("0", &v), FERRY_OK);
    CU_ASSERT_EQUAL(v, 0);
    CU_ASSERT_EQUAL(ferry_parse_u64("007", &v), FERRY_OK);
    CU_ASSERT_EQUAL(v, 7);
    static const char *const bad[] = {
        "18446744073709551616",
        "99999999999999999999999",
        "-1",
        "+1",
        " 1",
        "1 ",
        "",
        "0x10",
        "1e3",
        "1.0",
        "12a",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 42;
        CU_ASSERT_EQUAL(ferry_parse_u64(bad[i], &v), FERRY_E_INVALID_ARG);
        CU_ASSERT_EQUAL(v, 42);
    }
}

static void log_level_names(void)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (unsigned i = 0; i < 4; i++) {
        enum ferry_log_level lv = FERRY_LOG_INFO;
        CU_ASSERT_EQUAL(ferry_log_level_parse(names[i], &lv), FERRY_OK);
        CU_ASSERT_EQUAL(lv, (enum ferry_log_level)i);
    }
    enum ferry_log_level lv = FERRY_LOG_WARN;
    CU_ASSERT_EQUAL(ferry_log_level_parse("INFO", &lv), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(lv, FERRY_LOG_WARN);
}

const char *const ferry_suite_name = "common";
const struct ferry_test_case ferry_tests[] = {
    {"crc32_check_value", crc32_check_value},
    {"crc32_chains", crc32_chains},
    {"fs_atomic_write_replaces_whole_file", fs_atomic_write_replaces_whole_file},
    {"fs_atomic_write_empty_and_failure", fs_atomic_write_empty_and_failure},
    {"fs_read_cap_and_errors", fs_read_cap_and_errors},
    {"fs_mkdir_p_nested_and_existing", fs_mkdir_p_nested_and_existing},
    {"fs_pwrite_all_at_offsets", fs_pwrite_all_at_offsets},
    {"hex_round_trip_every_byte", hex_round_trip_every_byte},
    {"hex_decode_rules", hex_decode_rules},
    {"err_names_round_trip", err_names_round_trip},
    {"diag_fail_and_str", diag_fail_and_str},
    {"diag_prefix_and_truncation", diag_prefix_and_truncation},
    {"parse_duration_units_and_limits", parse_duration_units_and_limits},
    {"parse_u64_overflow_and_syntax", parse_u64_overflow_and_syntax},
    {"log_level_names", log_level_names},
    {NULL, NULL},
};
