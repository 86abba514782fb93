#include "cunit_main.h"

#include "ferry_random.h"

#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char tmpdir[PATH_MAX];

static void remove_tmpdir(void)
{
    if (tmpdir[0]) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    }
}

const char *ferry_test_tmpdir(void)
{
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof(tmpdir), "%s/ferry-unit-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            abort();
        }
        atexit(remove_tmpdir);
    }
    return tmpdir;
}

const char *ferry_testdata_path(const char *rel)
{
    static char path[PATH_MAX];
    const char *base = getenv("FERRY_TESTDATA");
    if (!base || !base[0]) {
        fprintf(stderr, "SKIP: FERRY_TESTDATA is not set, %s not available\n", rel);
        return NULL;
    }
    snprintf(path, sizeof(path), "%s/%s", base, rel);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "SKIP: %s not found\n", path);
        return NULL;
    }
    return path;
}

uint16_t ferry_test_udp_port(void)
{
    unsigned low = 32768;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%u", &low) != 1)
            low = 32768;
        fclose(f);
    }
    if (low <= 10001)
        return 0;
    for (int i = 0; i < 200; i++) {
        uint16_t port = (uint16_t)(10000 + ferry_random_u32() % (low - 10000));
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0)
            return 0;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int rc = bind(s, (struct sockaddr *)&a, sizeof(a));
        close(s);
        if (rc == 0)
            return port;
    }
    return 0;
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite suite = CU_add_suite(ferry_suite_name, NULL, NULL);
    if (!suite) {
        CU_cleanup_registry();
        return 2;
    }
    for (const struct ferry_test_case *t = ferry_tests; t->name; t++) {
        if (!CU_add_test(suite, t->name, t->fn)) {
            CU_cleanup_registry();
            return 2;
        }
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (run == 0) {
        fprintf(stderr, "no test ran\n");
        return 1;
    }
    return failures > 255 ? 255 : (int)failures;
}
