/* Canonical base64 (RFC 4648, standard alphabet, with padding), the one way
 * Ferry carries signed bytes and signatures inside JSON (release envelopes,
 * signed metadata).
 *
 * Decoding accepts only the one canonical spelling of some bytes: no white
 * space or line breaks, no stray bits in the padding, so a document's text
 * is determined by its content and relays may compare documents by bytes. */
#ifndef FERRY_B64_H
#define FERRY_B64_H

#include "ferry_err.h"

#include <stddef.h>
#include <stdint.h>

/* Characters needed to encode n bytes, without the NUL. */
#define FERRY_B64_LEN(n) (4 * (((n) + 2) / 3))

/* Decodes text into a new buffer (the caller frees *out). Empty or
 * non-canonical text is FERRY_E_MALFORMED; more than max bytes is `over`.
 * Messages read "<what>: field '<field>' ...". */
enum ferry_err ferry_b64_decode(const char *text, size_t max, enum ferry_err over, const char *what,
                                const char *field, uint8_t **out, size_t *out_len,
                                struct ferry_diag *d) FERRY_MUST_CHECK;

/* Encodes len bytes into a new NUL-terminated string, or NULL when out of
 * memory. The caller frees it. */
char *ferry_b64_encode(const uint8_t *bin, size_t len);

#endif
