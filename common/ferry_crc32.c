#include "ferry_crc32.h"

/* Bitwise, table-free: state records are small and this stays obviously
 * right; the hot artifact path uses SHA-256, not this. */
uint32_t ferry_crc32(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    crc = ~crc;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}
