/* Lower-case hexadecimal, as used for SHA-256 digests and key ids. */
#ifndef FERRY_HEX_H
#define FERRY_HEX_H

#include "ferry_err.h"

#include <stddef.h>
#include <stdint.h>

/* Writes 2*len hex digits and a NUL into out (capacity >= 2*len+1). */
void ferry_hex_encode(const uint8_t *in, size_t len, char *out);

/* Decodes exactly 2*out_len hex digits (either case) from a NUL-terminated
 * string. FERRY_E_MALFORMED on a wrong length or a non-hex digit; out is
 * written only on success. */
enum ferry_err ferry_hex_decode(const char *in, uint8_t *out, size_t out_len) FERRY_MUST_CHECK;

#endif
