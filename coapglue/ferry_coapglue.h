/* The libcoap glue that ferry-gateway and ferry-edge share (libcoap 4.3.1),
 * so the two sides start the library, log, drive the event loop and read
 * and write the options of the Ferry protocol one way:
 *
 *   - the library: ferry_coapglue_up() / _down() bracket every use; the first
 *     up() calls coap_startup() and routes libcoap's log into ferry_log
 *     (libcoap at WARNING, or at INFO when ferry_log is at debug); the last
 *     down() calls coap_cleanup(). Counted, so a gateway and an edge in one
 *     process (a test) do not tear the library down under each other.
 *   - the loop: struct ferry_coapglue_io registers a context's epoll fd with
 *     a ferry_loop (the fd also fires for libcoap's own timers) and runs
 *     coap_io_process(COAP_IO_NO_WAIT) when it is readable, or soon after
 *     ferry_coapglue_io_kick(). A callback runs after every pass, outside
 *     libcoap, where the owner may delete resources or sessions. libcoap
 *     must never be processed from inside one of its handlers:
 *     ferry_coapglue_io_in_pass() says whether a handler is running.
 *   - option codecs: Block1/Block2 checked on the raw bytes (libcoap 4.3.1
 *     reads SZX 7 over UDP, or a number over 20 bits, as something else),
 *     unsigned options (Size2, Max-Age, Content-Format) with a cap on their
 *     length, the ETag Ferry derives from a SHA-256, and the `n=<node-id>`
 *     query a node names itself with over plain CoAP (proto/PROTOCOL.md).
 *     The add functions return false when the PDU has no room left (or a
 *     value is out of range); a caller building an answer checks them.
 *
 * Not thread-safe (neither is libcoap): one loop thread. */
#ifndef FERRY_COAPGLUE_H
#define FERRY_COAPGLUE_H

#include "ferry_err.h"
#include "ferry_log.h"
#include "ferry_loop.h"
#include "ferry_names.h"
#include "ferry_sha256.h"

#include <coap3/coap.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the library --------------------------------------------------------- */

void ferry_coapglue_up(void);
void ferry_coapglue_down(void); /* one per ferry_coapglue_up() */

/* ---- the loop ------------------------------------------------------------ */

typedef void (*ferry_coapglue_pass_cb)(void *arg);

/* Owned by the caller (embed it); the fields are the glue's. */
struct ferry_coapglue_io {
    struct ferry_loop *loop;
    coap_context_t *ctx;
    int fd;
    bool registered; /* fd is watched by loop */
    bool in_pass;    /* inside coap_io_process(): libcoap handlers may run */
    uint64_t kick_timer;
    ferry_coapglue_pass_cb after_pass;
    void *arg;
};

/* Watches ctx's epoll fd on loop; after_pass(arg) (may be NULL) runs after
 * every pass. FERRY_E_INVALID_ARG when libcoap was built without epoll,
 * FERRY_E_IO when the loop refuses the fd. Stop with ferry_coapglue_io_stop()
 * before freeing ctx. */
enum ferry_err ferry_coapglue_io_start(struct ferry_coapglue_io *io, struct ferry_loop *loop,
                                       coap_context_t *ctx, ferry_coapglue_pass_cb after_pass,
                                       void *arg, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Unwatches the fd and cancels a pending kick. Fine on a zeroed struct and
 * twice. */
void ferry_coapglue_io_stop(struct ferry_coapglue_io *io);

/* A pass of libcoap from the loop as soon as it turns (a zero timer), e.g. so
 * that notifications or delayed answers go out now rather than at the next
 * packet. Safe from inside a handler. */
void ferry_coapglue_io_kick(struct ferry_coapglue_io *io);

/* A pass now. Never from inside a libcoap handler (in_pass). */
void ferry_coapglue_io_process(struct ferry_coapglue_io *io);

bool ferry_coapglue_io_in_pass(const struct ferry_coapglue_io *io);

/* ---- options --------------------------------------------------------------- */

/* RFC 7959 block sizes: 16 << szx bytes, szx 0..6 over UDP and DTLS. */
#define FERRY_COAPGLUE_SZX_MAX 6
/* Block numbers fit 20 bits (a 3-byte option). */
#define FERRY_COAPGLUE_BLOCK_NUM_MAX ((1u << 20) - 1)

struct ferry_coapglue_block {
    uint32_t num;
    unsigned szx; /* 0..FERRY_COAPGLUE_SZX_MAX once decoded */
    bool more;
};

/* The Block1 or Block2 option (opt) of pdu. *present says whether there is
 * one; *b is set only when it is present and valid. Errors:
 * FERRY_E_TOO_LARGE for a value longer than 3 bytes, FERRY_E_MALFORMED for
 * SZX 7 (BERT, TCP only) or the option given twice; each names the option. */
enum ferry_err ferry_coapglue_get_block(const coap_pdu_t *pdu, coap_option_num_t opt, bool *present,
                                        struct ferry_coapglue_block *b,
                                        struct ferry_diag *d) FERRY_MUST_CHECK;

/* Adds Block1 or Block2 in its shortest form. False when b is out of range
 * (num over 20 bits, szx over 6) or the PDU has no room. */
bool ferry_coapglue_add_block(coap_pdu_t *pdu, coap_option_num_t opt,
                              const struct ferry_coapglue_block *b);

/* Adds an unsigned option in its shortest form (0 is the empty value). False
 * when the PDU has no room. */
bool ferry_coapglue_add_uint(coap_pdu_t *pdu, coap_option_num_t opt, uint64_t v);

/* An unsigned option of at most max_bytes bytes (1..8): *present and *v (0
 * when absent). FERRY_E_MALFORMED naming the option when it is longer. */
enum ferry_err ferry_coapglue_get_uint(const coap_pdu_t *pdu, coap_option_num_t opt,
                                       size_t max_bytes, bool *present, uint64_t *v,
                                       struct ferry_diag *d) FERRY_MUST_CHECK;

/* The ETag of a body with this SHA-256: its first 8 bytes as a big-endian
 * number, never 0 (libcoap reads 0 as "make one up"). On the wire in the
 * shortest form, leading zero bytes dropped. */
uint64_t ferry_coapglue_etag_of(const uint8_t sha[FERRY_SHA256_LEN]);
bool ferry_coapglue_add_etag(coap_pdu_t *pdu, const uint8_t sha[FERRY_SHA256_LEN]);
/* Whether pdu carries exactly the ETag of sha (the shortest form). */
bool ferry_coapglue_etag_is(const coap_pdu_t *pdu, const uint8_t sha[FERRY_SHA256_LEN]);

/* Max-Age (RFC 7252: 4 bytes at most) and Size2 (4 bytes at most here:
 * artifacts are smaller than 4 GiB). */
#define FERRY_COAPGLUE_MAX_AGE_BYTES 4
#define FERRY_COAPGLUE_SIZE2_BYTES   4

/* ---- who is asking: the n= query ------------------------------------------ */

/* The Uri-Query a node names itself with over plain CoAP: "n=<node-id>". */
#define FERRY_COAPGLUE_NODE_QUERY "n="

/* Adds Uri-Query "n=<node>". False when node is not an identifier
 * (ferry_id_valid()) or the PDU has no room. */
bool ferry_coapglue_add_node_query(coap_pdu_t *pdu, const char *node);

/* The node a request names in its n= query, into out. *present is false
 * when there is none (other query options are ignored). Errors, each naming
 * the problem: FERRY_E_MALFORMED for an n= that is not an identifier or is
 * given twice. */
enum ferry_err ferry_coapglue_get_node_query(const coap_pdu_t *pdu, char out[FERRY_ID_MAX + 1],
                                             bool *present, struct ferry_diag *d) FERRY_MUST_CHECK;

/* ---- peers: where a client connects, and with which key ------------------ */

/* A pre-shared key for a DTLS client, at most this long (RFC 4279 allows
 * more; Ferry's keys are 16..64 bytes). */
#define FERRY_COAPGLUE_PSK_MIN 16
#define FERRY_COAPGLUE_PSK_MAX 64

/* Splits a coap:// or coaps:// URI and resolves its host (numeric or by
 * name) into dst; *dtls says which scheme. FERRY_E_INVALID_ARG for another
 * scheme or no host, FERRY_E_NOT_FOUND when the host does not resolve;
 * what names the URI's role in messages ("--upstream"). */
enum ferry_err ferry_coapglue_resolve(const char *uri, const char *what, coap_address_t *dst,
                                      bool *dtls, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Reads a key file: the key in hex (white space ignored), 16..64 bytes,
 * into key (FERRY_COAPGLUE_PSK_MAX bytes). FERRY_E_INVALID_ARG naming the
 * file otherwise; the file's bytes are wiped from memory after use. */
enum ferry_err ferry_coapglue_read_psk(const char *path, uint8_t *key, size_t *key_len,
                                       struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
