/* The artifact stream between `ferry-cloud serve` and a gateway, over MQTT
 * (in the manner of AWS IoT's MQTT streams): the gateway asks for the byte
 * ranges it lacks, the cloud answers chunk by chunk. The receiver drives,
 * so resume, late joiners and flow control need no broker state, and a
 * chunk the broker drops is simply asked for again.
 *
 * Request, gateway -> cloud, JSON on ferry/v1/<fleet>/stream/req/<gateway>, QoS 1:
 *   {"format":1, "sha256":"<64 hex>", "offset":<multiple of chunk>,
 *    "count":<1..FERRY_STREAM_MAX_WINDOW>, "chunk":<16384..65536>}
 * Chunk, cloud -> gateway, binary on ferry/v1/<fleet>/stream/data/<gateway>, QoS 0:
 *   offset  size  field
 *   0       4     magic "FRY1"
 *   4       1     kind: 0 = data, 1 = error
 *   5       3     zero
 *   8       32    artifact SHA-256
 *   40      8     offset (big-endian)
 *   48      8     artifact total size (big-endian)
 *   56      4     payload length (big-endian)
 *   60      4     CRC-32 of the payload (big-endian)
 *   64      ...   payload: chunk bytes, or for kind 1 an error name
 *                 (ferry_err_name, e.g. "not-found") and ": " and a message
 * The CRC catches a chunk damaged or misrouted in transit; what makes a file
 * trustworthy is its whole SHA-256 against the signed manifest, checked
 * before the file enters the cache. */
#ifndef FERRY_STREAM_H
#define FERRY_STREAM_H

#include "ferry_err.h"
#include "ferry_sha256.h"

#include <stddef.h>
#include <stdint.h>

#define FERRY_STREAM_FORMAT        1
#define FERRY_STREAM_MIN_CHUNK     16384
#define FERRY_STREAM_MAX_CHUNK     65536
#define FERRY_STREAM_MAX_WINDOW    32 /* chunks one request may ask for */
#define FERRY_STREAM_HEADER_LEN    64
#define FERRY_STREAM_REQ_MAX_BYTES 512

enum ferry_chunk_kind {
    FERRY_CHUNK_DATA = 0,
    FERRY_CHUNK_ERROR = 1,
};

struct ferry_stream_req {
    uint8_t sha256[FERRY_SHA256_LEN];
    uint64_t offset;
    uint32_t count;
    uint32_t chunk;
};

/* A decoded chunk. payload points into the buffer given to decode (no copy). */
struct ferry_chunk {
    enum ferry_chunk_kind kind;
    uint8_t sha256[FERRY_SHA256_LEN];
    uint64_t offset;
    uint64_t total;
    const uint8_t *payload;
    uint32_t len;
};

/* JSON request codec; encode's *out is malloc'd and NUL-terminated. */
enum ferry_err ferry_stream_req_encode(const struct ferry_stream_req *r, char **out, size_t *len,
                                       struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err ferry_stream_req_decode(const uint8_t *buf, size_t len, struct ferry_stream_req *out,
                                       struct ferry_diag *d) FERRY_MUST_CHECK;

/* Writes the 64-byte header for a chunk whose payload is `payload`/`len`
 * (the CRC is computed here). */
void ferry_chunk_header(uint8_t hdr[FERRY_STREAM_HEADER_LEN], enum ferry_chunk_kind kind,
                        const uint8_t sha256[FERRY_SHA256_LEN], uint64_t offset, uint64_t total,
                        const uint8_t *payload, uint32_t len);

/* Decodes and checks a chunk message: magic, kind, lengths (payload at most
 * FERRY_STREAM_MAX_CHUNK, offset + len <= total) and CRC. FERRY_E_CORRUPT on
 * a CRC mismatch, FERRY_E_MALFORMED otherwise. */
enum ferry_err ferry_chunk_decode(const uint8_t *buf, size_t len, struct ferry_chunk *out,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
