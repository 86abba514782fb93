#include "cunit_main.h"
#include "ferry_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const ferry_suite_name = "log";

/* What the calls in fn wrote to stderr, as one string (caller frees). */
static char *captured(void (*fn)(void))
{
    char path[512];
    snprintf(path, sizeof(path), "%s/stderr.txt", ferry_test_tmpdir());
    FILE *f = fopen(path, "w+");
    CU_ASSERT_FATAL(f != NULL);
    int saved = dup(STDERR_FILENO);
    CU_ASSERT_FATAL(saved >= 0);
    CU_ASSERT_FATAL(dup2(fileno(f), STDERR_FILENO) >= 0);
    fn();
    CU_ASSERT_FATAL(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    CU_ASSERT_FATAL(fseek(f, 0, SEEK_SET) == 0);
    char *out = calloc(1, 4096);
    CU_ASSERT_FATAL(out != NULL);
    size_t n = fread(out, 1, 4095, f);
    out[n] = '\0';
    fclose(f);
    return out;
}

static void at_info(void)
{
    ferry_log_init("unit", FERRY_LOG_INFO);
    ferry_log_err("e %d", 1);
    ferry_log_warn("w %s", "two");
    ferry_log_info("i %u", 3u);
    ferry_log_debug("d %d", 4);
    ferry_log(FERRY_LOG_WARN, "plain %d", 5);
}

static void each_level_writes_its_name_and_the_level_filters(void)
{
    char *out = captured(at_info);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " error unit: e 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " warn  unit: w two\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " info  unit: i 3\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, " warn  unit: plain 5\n"));
    CU_ASSERT_PTR_NULL(strstr(out, "d 4"));
    free(out);
}

static void forged_lines(void)
{
    ferry_log_init("unit", FERRY_LOG_DEBUG);
    ferry_log_debug("node %s", "x\n2026-01-01T00:00:00.000Z error unit: forged");
}

static void a_peer_cannot_forge_a_line(void)
{
    char *out = captured(forged_lines);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "node x?2026"));
    CU_ASSERT_PTR_NULL(strstr(out, "\n2026-01-01"));
    free(out);
}

const struct ferry_test_case ferry_tests[] = {
    {"each_level_writes_its_name_and_the_level_filters",
     each_level_writes_its_name_and_the_level_filters},
    {"a_peer_cannot_forge_a_line", a_peer_cannot_forge_a_line},
    {NULL, NULL},
};
