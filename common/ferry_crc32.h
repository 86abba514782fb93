/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32()) for journal and state
 * records. Start with crc = 0 and feed the running value back to chain. */
#ifndef FERRY_CRC32_H
#define FERRY_CRC32_H

#include <stddef.h>
#include <stdint.h>

uint32_t ferry_crc32(uint32_t crc, const void *data, size_t len);

#endif
