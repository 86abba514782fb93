#include "ferry_sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FILE_CHUNK (64 * 1024)

/* The *_ret variants only fail on a bad argument or a hardware-accelerator
 * error; neither exists with the software implementation and a valid
 * context, so the digest functions return void as the header promises. */
void ferry_sha256_init(struct ferry_sha256 *h)
{
    mbedtls_sha256_init(&h->ctx);
    (void)mbedtls_sha256_starts_ret(&h->ctx, 0);
}

void ferry_sha256_update(struct ferry_sha256 *h, const void *data, size_t len)
{
    if (len > 0)
        (void)mbedtls_sha256_update_ret(&h->ctx, data, len);
}

void ferry_sha256_final(struct ferry_sha256 *h, uint8_t out[FERRY_SHA256_LEN])
{
    (void)mbedtls_sha256_finish_ret(&h->ctx, out);
    mbedtls_sha256_free(&h->ctx);
}

void ferry_sha256(const void *data, size_t len, uint8_t out[FERRY_SHA256_LEN])
{
    struct ferry_sha256 h;
    ferry_sha256_init(&h);
    ferry_sha256_update(&h, data, len);
    ferry_sha256_final(&h, out);
}

enum ferry_err ferry_sha256_file(const char *path, uint8_t out[FERRY_SHA256_LEN], uint64_t *size,
                                 struct ferry_diag *d)
{
    enum ferry_err err = FERRY_OK;
    struct ferry_sha256 h;
    uint64_t total = 0;
    bool hashing = false;
    uint8_t *buf = malloc(FILE_CHUNK);
    if (!buf)
        return ferry_fail(d, FERRY_E_NOMEM, "%s: out of memory", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = ferry_fail(d, errno == ENOENT ? FERRY_E_NOT_FOUND : FERRY_E_IO, "%s: %s", path,
                         strerror(errno));
        goto out;
    }
    ferry_sha256_init(&h);
    hashing = true;
    for (;;) {
        ssize_t r = read(fd, buf, FILE_CHUNK);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            err = ferry_fail(d, FERRY_E_IO, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        ferry_sha256_update(&h, buf, (size_t)r);
        total += (uint64_t)r;
    }
    ferry_sha256_final(&h, out);
    hashing = false;
    *size = total;
out:
    if (hashing)
        mbedtls_sha256_free(&h.ctx);
    if (fd >= 0)
        close(fd);
    free(buf);
    return err;
}
