/* Root documents (ferry_root.h) from the cloud: the key ceremony.
 *
 *   root init    --out FILE --root-key PUB ... --release-key PUB ...
 *                [--timestamp-key PUB ...] [--version N] [--root-threshold N]
 *                [--timestamp-threshold N] [--revoke KID ...]
 *                [--max-seq-step N] [--max-manifest-lifetime DURATION]
 *       writes the (unsigned) root document;
 *   root sign    --key KEY --in FILE --out FILE
 *       adds one signature (each key holder runs it in turn, offline);
 *   root verify  --root FILE [--trust CURRENT]
 *       checks its own threshold and, with --trust, that it chains from the
 *       root (or keyring) devices hold now;
 *   root publish --broker URL --fleet ID --root FILE [--trust CURRENT]
 *       checks as verify does, then publishes it retained on
 *       ferry/v1/<fleet>/root/<version>.
 *
 * Public keys are the PEM files `ferry-cloud keygen` writes (*.pub); signing
 * keys its *.key files. */
#ifndef FERRY_CLOUD_ROOT_H
#define FERRY_CLOUD_ROOT_H

#include "cloud_keys.h"
#include "ferry_err.h"

#include <stddef.h>
#include <stdint.h>

/* Adds k's signature to in: the bytes of a root document (what `root init`
 * writes) or of a signed one. The document must parse as a root; a key
 * that already signed it is FERRY_E_INVALID_ARG. The caller frees *out, a
 * signed document. */
enum ferry_err cloud_root_sign(const uint8_t *in, size_t len, const struct cloud_key *k, char **out,
                               size_t *out_len, struct ferry_diag *d) FERRY_MUST_CHECK;

/* argv[0] is "root"; argv[1] the action. Returns the exit status. */
int cloud_cmd_root(int argc, char **argv);

#endif
