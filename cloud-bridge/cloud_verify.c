#include "cloud_verify.h"

#include "ferry_fs.h"
#include "ferry_hex.h"
#include "ferry_sha256.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static enum ferry_err check_artifact(const char *path, const struct ferry_manifest *m,
                                     struct ferry_diag *d)
{
    uint8_t digest[FERRY_SHA256_LEN];
    uint64_t size = 0;
    enum ferry_err err = ferry_sha256_file(path, digest, &size, d);
    if (err != FERRY_OK)
        return err;
    if (size != m->size)
        return ferry_fail(d, FERRY_E_SIZE_MISMATCH,
                          "%s: %" PRIu64 " bytes, but the manifest says %" PRIu64, path, size,
                          m->size);
    if (memcmp(digest, m->sha256, sizeof(digest)) != 0) {
        char got[FERRY_SHA256_HEX_LEN + 1], want[FERRY_SHA256_HEX_LEN + 1];
        ferry_hex_encode(digest, sizeof(digest), got);
        ferry_hex_encode(m->sha256, sizeof(m->sha256), want);
        return ferry_fail(d, FERRY_E_HASH_MISMATCH,
                          "%s: SHA-256 hash mismatch: the file has %s, the manifest says %s", path,
                          got, want);
    }
    return FERRY_OK;
}

enum ferry_err cloud_verify_release(const char *envelope_path, const char *artifact_path,
                                    const struct ferry_keyring *kr,
                                    const struct ferry_verify_policy *pol,
                                    struct ferry_manifest *out, struct ferry_diag *d)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    struct ferry_manifest m;
    enum ferry_err err = ferry_read_file(envelope_path, FERRY_ENVELOPE_MAX_BYTES, &buf, &len, d);
    if (err != FERRY_OK)
        return err;
    err = ferry_envelope_verify(buf, len, kr, pol, &m, d);
    free(buf);
    if (err != FERRY_OK) {
        if (d && !d->msg[0])
            ferry_fail(d, err, "%s", ferry_strerror(err));
        ferry_diag_prefix(d, envelope_path);
        return err;
    }
    err = check_artifact(artifact_path, &m, d);
    if (err == FERRY_OK && out)
        *out = m;
    return err;
}
