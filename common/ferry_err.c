#include "ferry_err.h"

#include <stdio.h>
#include <string.h>

struct err_desc {
    const char *name;
    const char *text;
};

static const struct err_desc descs[FERRY_E__COUNT] = {
    [FERRY_OK] = {"ok", "success"},
    [FERRY_E_NOMEM] = {"nomem", "out of memory"},
    [FERRY_E_IO] = {"io", "input/output error"},
    [FERRY_E_NOSPACE] = {"no-space", "no space left"},
    [FERRY_E_INVALID_ARG] = {"invalid-arg", "invalid argument"},
    [FERRY_E_NOT_FOUND] = {"not-found", "not found"},
    [FERRY_E_MALFORMED] = {"malformed", "malformed input"},
    [FERRY_E_TOO_LARGE] = {"too-large", "input too large"},
    [FERRY_E_UNKNOWN_KEY] = {"unknown-key", "signed by an unknown key"},
    [FERRY_E_REVOKED_KEY] = {"revoked-key", "signed by a revoked key"},
    [FERRY_E_BAD_SIGNATURE] = {"bad-signature", "signature does not verify"},
    [FERRY_E_EXPIRED] = {"expired", "manifest has expired"},
    [FERRY_E_NOT_YET_VALID] = {"not-yet-valid", "manifest is not yet valid"},
    [FERRY_E_INCOMPATIBLE_HW] = {"incompatible-hw", "incompatible hardware"},
    [FERRY_E_DOWNGRADE] = {"downgrade", "downgrade or replay"},
    [FERRY_E_ARTIFACT_TOO_LARGE] = {"artifact-too-large", "artifact too large"},
    [FERRY_E_HASH_MISMATCH] = {"hash-mismatch", "artifact hash mismatch"},
    [FERRY_E_SIZE_MISMATCH] = {"size-mismatch", "artifact size mismatch"},
    [FERRY_E_CRYPTO] = {"crypto", "cryptographic library failure"},
    [FERRY_E_BUSY] = {"busy", "busy, try again later"},
    [FERRY_E_PROTOCOL] = {"protocol", "protocol violation"},
    [FERRY_E_CORRUPT] = {"corrupt", "stored state is corrupt"},
    [FERRY_E_WRONG_PRODUCT] = {"wrong-product", "release of another product"},
    [FERRY_E_CONFLICT] = {"conflict", "another record holds this node and seq"},
    [FERRY_E_WRONG_GATEWAY] = {"wrong-gateway", "node bound to another gateway"},
    [FERRY_E_SEQ_RANGE] = {"seq-range", "seq too far beyond the node's last"},
    [FERRY_E_WITHDRAWN] = {"withdrawn", "release withdrawn"},
    [FERRY_E_STALE] = {"stale", "trust metadata missing, expired or outdated"},
    [FERRY_E_THRESHOLD] = {"threshold", "not enough valid signatures"},
    [FERRY_E_SEQ_JUMP] = {"seq-jump", "sequence jumps too far ahead"},
    [FERRY_E_LIFETIME] = {"lifetime-too-long", "manifest valid for too long"},
};

const char *ferry_strerror(enum ferry_err err)
{
    if ((unsigned)err >= FERRY_E__COUNT)
        return "unknown error";
    return descs[err].text;
}

const char *ferry_err_name(enum ferry_err err)
{
    if ((unsigned)err >= FERRY_E__COUNT)
        return "unknown";
    return descs[err].name;
}

enum ferry_err ferry_err_from_name(const char *name, enum ferry_err *out)
{
    for (unsigned i = 0; i < FERRY_E__COUNT; i++) {
        if (strcmp(descs[i].name, name) == 0) {
            *out = (enum ferry_err)i;
            return FERRY_OK;
        }
    }
    return FERRY_E_INVALID_ARG;
}

enum ferry_err ferry_fail(struct ferry_diag *d, enum ferry_err err, const char *fmt, ...)
{
    if (d) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
        va_end(ap);
    }
    return err;
}

void ferry_diag_prefix(struct ferry_diag *d, const char *prefix)
{
    if (!d)
        return;
    /* Shift the message right and put "prefix: " in front, truncating the
     * tail if the whole does not fit. */
    size_t plen = strlen(prefix) + 2;
    size_t mlen = strlen(d->msg);
    if (plen >= sizeof(d->msg))
        plen = sizeof(d->msg) - 1;
    if (mlen > sizeof(d->msg) - 1 - plen)
        mlen = sizeof(d->msg) - 1 - plen;
    memmove(d->msg + plen, d->msg, mlen);
    d->msg[plen + mlen] = 0;
    memcpy(d->msg, prefix, plen - 2);
    d->msg[plen - 2] = ':';
    d->msg[plen - 1] = ' ';
}

const char *ferry_diag_str(const struct ferry_diag *d, enum ferry_err err)
{
    if (d && d->msg[0])
        return d->msg;
    return ferry_strerror(err);
}
