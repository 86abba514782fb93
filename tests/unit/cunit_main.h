/* Shared CUnit runner. Each test_<module>.c defines
 *   const struct ferry_test_case ferry_tests[];  (terminated by {NULL, NULL})
 *   const char *ferry_suite_name;
 * and cunit_main.c registers them as one suite and returns the number of
 * failures (CU_basic_run_tests() alone returns 0 even when assertions fail). */
#ifndef FERRY_CUNIT_MAIN_H
#define FERRY_CUNIT_MAIN_H

#include <CUnit/CUnit.h>
#include <stdint.h>

struct ferry_test_case {
    const char *name;
    void (*fn)(void);
};

extern const struct ferry_test_case ferry_tests[];
extern const char *const ferry_suite_name;

/* Path of a file under the shared test data folder, or NULL (and a visible
 * "SKIP" line on stderr) when FERRY_TESTDATA is unset or the file is absent. */
const char *ferry_testdata_path(const char *rel);

/* A fresh empty folder under $TMPDIR for this test process; removed at exit. */
const char *ferry_test_tmpdir(void);

/* A UDP port free on 127.0.0.1 now, below the kernel's ephemeral range, for a
 * CoAP server under test; 0 when none was found. Port 0 would hand the server
 * an ephemeral port, and libcoap's client sockets set SO_REUSEADDR, so a
 * client opened later (a coap-client, the edge's session) may be given that
 * same port and talk to itself. Another process can still take the port
 * before the server binds it: callers retry on a bind error. */
uint16_t ferry_test_udp_port(void);

#endif
