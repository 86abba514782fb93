/* Internal to proto/: the status rules that ferry_status.c (JSON) and
 * ferry_cbor.c (CBOR) share, so both encodings accept exactly the same set of
 * records and a gateway can re-encode any record it accepted. Nothing outside
 * proto/ includes this header. */
#ifndef FERRY_CBOR_H
#define FERRY_CBOR_H

#include "ferry_err.h"
#include "ferry_status.h"

#include <stdint.h>

/* Integers in a status record stay within +-2^53, where JSON numbers (IEEE
 * doubles) are still exact, so a CBOR record always fits in JSON. */
#define FERRY_STATUS_INT_MAX (INT64_C(1) << 53)

/* Checks every rule on the decoded values (ids, lengths, UTF-8, ranges,
 * bytes <= total). Returns `code` (FERRY_E_MALFORMED for input that came off
 * the wire, FERRY_E_INVALID_ARG for a record a caller asked to encode) with
 * the field named in d, or FERRY_OK. */
enum ferry_err ferry_status_check(const struct ferry_status *st, enum ferry_err code,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
