/* The check an operator runs before publishing, and the same gate every
 * gateway and node applies: is this envelope signed by a trusted key, still
 * valid, meant for this hardware, and do these artifact bytes match it? */
#ifndef FERRY_CLOUD_VERIFY_H
#define FERRY_CLOUD_VERIFY_H

#include "ferry_envelope.h"
#include "ferry_err.h"
#include "ferry_keyring.h"
#include "ferry_manifest.h"

/* Reads the envelope file (at most FERRY_ENVELOPE_MAX_BYTES), verifies it
 * with ferry_envelope_verify() under pol, then streams the artifact file and
 * compares its length (FERRY_E_SIZE_MISMATCH) and SHA-256
 * (FERRY_E_HASH_MISMATCH) with the manifest. The first failure is returned
 * with d naming the file at fault. *out (may be NULL) gets the manifest on
 * FERRY_OK. */
enum ferry_err cloud_verify_release(const char *envelope_path, const char *artifact_path,
                                    const struct ferry_keyring *kr,
                                    const struct ferry_verify_policy *pol,
                                    struct ferry_manifest *out,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
