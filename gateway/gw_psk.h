/* The gateway's per-node pre-shared keys for CoAP over DTLS.
 *
 * File format (text, at most GW_PSK_FILE_MAX bytes), one node per line:
 *
 *   # comment
 *   node-1  00112233445566778899aabbccddeeff
 *   node-2  0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c   # trailing comment
 *
 * Fields are separated by spaces or tabs. The node id is a Ferry identifier
 * (ferry_id_valid()) and is the PSK identity the node presents; the key is
 * GW_PSK_KEY_MIN..GW_PSK_KEY_MAX bytes in hexadecimal (either case). Blank
 * lines and lines whose first non-blank character is '#' are ignored, as is
 * anything from a '#' after the key. A node may appear once. A file without
 * any key is refused (no node could connect). Errors name the file and the
 * line: "psk: keys.txt:7: key for 'node-3' must be 16..64 bytes, got 8".
 *
 * The table is read-only after loading; keys are wiped from memory when it is
 * freed. */
#ifndef FERRY_GW_PSK_H
#define FERRY_GW_PSK_H

#include "ferry_err.h"

#include <stddef.h>
#include <stdint.h>

#define GW_PSK_KEY_MIN  16
#define GW_PSK_KEY_MAX  64
#define GW_PSK_FILE_MAX (256 * 1024)

struct gw_psk;

/* Reads and parses a key file. FERRY_E_NOT_FOUND or FERRY_E_IO if it cannot
 * be read, FERRY_E_TOO_LARGE above GW_PSK_FILE_MAX, FERRY_E_MALFORMED for a
 * bad line. Logs a warning if the file is readable by group or others. */
enum ferry_err gw_psk_load(const char *path, struct gw_psk **out,
                           struct ferry_diag *d) FERRY_MUST_CHECK;

/* Parses the text of a key file held in memory (len bytes, no NUL needed);
 * `name` is used in messages. Same errors as gw_psk_load(). */
enum ferry_err gw_psk_parse(const char *name, const char *text, size_t len, struct gw_psk **out,
                            struct ferry_diag *d) FERRY_MUST_CHECK;

void gw_psk_free(struct gw_psk *t); /* NULL is fine */

size_t gw_psk_count(const struct gw_psk *t);

/* The key of the node whose id is exactly the id_len bytes at `id` (as
 * received in a handshake: any bytes, not NUL-terminated), or NULL if there
 * is none. The key stays valid until gw_psk_free(); *key_len gets its length. */
const uint8_t *gw_psk_find(const struct gw_psk *t, const uint8_t *id, size_t id_len,
                           size_t *key_len);

#endif
