#include "cunit_main.h"

#include "ferry_crc32.h"

static void crc32_check_value(void)
{
    /* The standard check value of CRC-32/ISO-HDLC. */
    CU_ASSERT_EQUAL(ferry_crc32(0, "123456789", 9), 0xCBF43926u);
}

const char *const ferry_suite_name = "common";
const struct ferry_test_case ferry_tests[] = {
    {"crc32_check_value", crc32_check_value},
    {NULL, NULL},
};
