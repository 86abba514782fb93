/* Fixed-width integers in a byte buffer, big- and little-endian: the one
 * codec every wire format and on-disk record uses (stream chunk headers
 * and TZif files are big-endian; journals, boot records and saved state
 * little-endian). Byte by byte, so alignment and the host's own order do
 * not matter; the compiler turns each into a single load or store.
 *
 * p must hold the whole width (2, 4 or 8 bytes); nothing is checked. The
 * _n forms take a width of 1..8 bytes, for variable-length encodings such
 * as CBOR's integer heads. */
#ifndef FERRY_BYTES_H
#define FERRY_BYTES_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t ferry_get_be_n(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static inline void ferry_put_be_n(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = n; i-- > 0; v >>= 8)
        p[i] = (uint8_t)v;
}

static inline uint64_t ferry_get_le_n(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

static inline void ferry_put_le_n(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++, v >>= 8)
        p[i] = (uint8_t)v;
}

static inline uint16_t ferry_get_be16(const uint8_t *p)
{
    return (uint16_t)ferry_get_be_n(p, 2);
}

static inline uint32_t ferry_get_be32(const uint8_t *p)
{
    return (uint32_t)ferry_get_be_n(p, 4);
}

static inline uint64_t ferry_get_be64(const uint8_t *p)
{
    return ferry_get_be_n(p, 8);
}

static inline void ferry_put_be16(uint8_t *p, uint16_t v)
{
    ferry_put_be_n(p, v, 2);
}

static inline void ferry_put_be32(uint8_t *p, uint32_t v)
{
    ferry_put_be_n(p, v, 4);
}

static inline void ferry_put_be64(uint8_t *p, uint64_t v)
{
    ferry_put_be_n(p, v, 8);
}

static inline uint16_t ferry_get_le16(const uint8_t *p)
{
    return (uint16_t)ferry_get_le_n(p, 2);
}

static inline uint32_t ferry_get_le32(const uint8_t *p)
{
    return (uint32_t)ferry_get_le_n(p, 4);
}

static inline uint64_t ferry_get_le64(const uint8_t *p)
{
    return ferry_get_le_n(p, 8);
}

static inline void ferry_put_le16(uint8_t *p, uint16_t v)
{
    ferry_put_le_n(p, v, 2);
}

static inline void ferry_put_le32(uint8_t *p, uint32_t v)
{
    ferry_put_le_n(p, v, 4);
}

static inline void ferry_put_le64(uint8_t *p, uint64_t v)
{
    ferry_put_le_n(p, v, 8);
}

#endif
