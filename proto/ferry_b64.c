#include "ferry_b64.h"

#include <mbedtls/base64.h>
#include <stdlib.h>
#include <string.h>

enum ferry_err ferry_b64_decode(const char *text, size_t max, enum ferry_err over, const char *what,
                                const char *field, uint8_t **out, size_t *out_len,
                                struct ferry_diag *d)
{
    enum ferry_err err = FERRY_OK;
    uint8_t *bin = NULL;
    char *again = NULL;
    size_t need = 0, n = 0, again_len = 0;
    size_t text_len = text ? strlen(text) : 0;
    if (text_len > FERRY_B64_LEN(max))
        return ferry_fail(d, over, "%s: field '%s' holds more than %zu bytes", what, field, max);
    /* With no room, mbedTLS validates the text and reports the size needed;
     * empty or blank text comes back as 0 and is refused with the rest. */
    const unsigned char *src = (const unsigned char *)text;
    if (text_len == 0 ||
        mbedtls_base64_decode(NULL, 0, &need, src, text_len) != MBEDTLS_ERR_BASE64_BUFFER_TOO_SMALL)
        return ferry_fail(d, FERRY_E_MALFORMED, "%s: field '%s' must be a base64 string", what,
                          field);
    bin = malloc(need);
    again = malloc(text_len + 1);
    if (!bin || !again) {
        err = ferry_fail(d, FERRY_E_NOMEM, "%s: out of memory", what);
        goto out;
    }
    if (mbedtls_base64_decode(bin, need, &n, src, text_len) != 0 ||
        mbedtls_base64_encode((unsigned char *)again, text_len + 1, &again_len, bin, n) != 0 ||
        again_len != text_len || memcmp(again, text, text_len) != 0) {
        err = ferry_fail(d, FERRY_E_MALFORMED, "%s: field '%s' must be canonical base64", what,
                         field);
        goto out;
    }
    if (n > max) {
        err = ferry_fail(d, over, "%s: field '%s' holds %zu bytes, the limit is %zu", what, field,
                         n, max);
        goto out;
    }
    *out = bin;
    *out_len = n;
    bin = NULL;
out:
    free(again);
    free(bin);
    return err;
}

char *ferry_b64_encode(const uint8_t *bin, size_t len)
{
    size_t cap = FERRY_B64_LEN(len) + 1, n = 0;
    char *text = malloc(cap);
    if (text && mbedtls_base64_encode((unsigned char *)text, cap, &n, bin, len) != 0) {
        free(text);
        text = NULL;
    }
    return text;
}
