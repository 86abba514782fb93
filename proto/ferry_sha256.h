/* Streaming SHA-256 (mbedTLS underneath). The context is a plain struct the
 * caller owns (no heap), so an edge node hashes any image in constant memory. */
#ifndef FERRY_SHA256_H
#define FERRY_SHA256_H

#include "ferry_err.h"

#include <mbedtls/sha256.h>
#include <stddef.h>
#include <stdint.h>

#define FERRY_SHA256_LEN     32
#define FERRY_SHA256_HEX_LEN 64

struct ferry_sha256 {
    mbedtls_sha256_context ctx;
};

void ferry_sha256_init(struct ferry_sha256 *h);
void ferry_sha256_update(struct ferry_sha256 *h, const void *data, size_t len);
/* Writes the digest and releases the context; init again to reuse. */
void ferry_sha256_final(struct ferry_sha256 *h, uint8_t out[FERRY_SHA256_LEN]);

/* One-shot digest of a buffer. */
void ferry_sha256(const void *data, size_t len, uint8_t out[FERRY_SHA256_LEN]);

/* Hashes a whole file with a fixed 64 KiB buffer; *size gets its length. */
enum ferry_err ferry_sha256_file(const char *path, uint8_t out[FERRY_SHA256_LEN], uint64_t *size,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
