#include "ferry_hex.h"

#include <string.h>

void ferry_hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = 0;
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

enum ferry_err ferry_hex_decode(const char *in, uint8_t *out, size_t out_len)
{
    if (strlen(in) != 2 * out_len)
        return FERRY_E_MALFORMED;
    for (size_t i = 0; i < 2 * out_len; i++) {
        if (nibble(in[i]) < 0)
            return FERRY_E_MALFORMED;
    }
    for (size_t i = 0; i < out_len; i++)
        out[i] = (uint8_t)(nibble(in[2 * i]) << 4 | nibble(in[2 * i + 1]));
    return FERRY_OK;
}
