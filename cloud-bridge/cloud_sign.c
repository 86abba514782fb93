#include "cloud_sign.h"

#include "ferry_envelope.h"
#include "ferry_fs.h"
#include "ferry_keyring.h"
#include "ferry_names.h"
#include "ferry_sha256.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum ferry_err copy_text(char *dst, size_t cap, const char *src, const char *what,
                                struct ferry_diag *d)
{
    size_t len = strlen(src);
    if (len == 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "%s: must not be empty", what);
    if (len >= cap)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "%s: at most %zu characters, got %zu", what,
                          cap - 1, len);
    memcpy(dst, src, len + 1);
    return FERRY_OK;
}

static enum ferry_err copy_id(char *dst, size_t cap, const char *src, const char *what,
                              struct ferry_diag *d)
{
    if (!ferry_id_valid(src))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "%s: must be 1..%d characters from [A-Za-z0-9._-] not starting "
                          "with '.', got '%s'",
                          what, FERRY_ID_MAX, src);
    return copy_text(dst, cap, src, what, d);
}

static bool id_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

void cloud_default_release_id(const char *product, const char *version, uint64_t seq,
                              char out[FERRY_NAME_MAX + 1])
{
    char suffix[24];
    int slen = snprintf(suffix, sizeof(suffix), "-%" PRIu64, seq);
    size_t room = FERRY_NAME_MAX - (size_t)slen;
    char head[2 * FERRY_NAME_MAX + 2];
    snprintf(head, sizeof(head), "%s-%s", product, version);
    size_t hlen = strlen(head);
    if (hlen > room)
        hlen = room;
    for (size_t i = 0; i < hlen; i++)
        out[i] = id_char(head[i]) ? head[i] : '-';
    memcpy(out + hlen, suffix, (size_t)slen + 1);
}

static enum ferry_err fill_identity(struct ferry_manifest *m, const struct cloud_release *rel,
                                    struct ferry_diag *d)
{
    const char *product = rel->product ? rel->product : FERRY_DEFAULT_PRODUCT;
    const char *component = rel->component ? rel->component : CLOUD_DEFAULT_COMPONENT;
    enum ferry_err err = copy_id(m->product, sizeof(m->product), product, "--product", d);
    if (err == FERRY_OK)
        err = copy_id(m->component, sizeof(m->component), component, "--component", d);
    if (err == FERRY_OK)
        err = copy_text(m->version, sizeof(m->version), rel->version, "--version", d);
    if (err != FERRY_OK)
        return err;
    if (ferry_semver_parse(rel->version, &m->semver) != FERRY_OK)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "--version: must be a semantic version MAJOR.MINOR.PATCH, got '%s'",
                          rel->version);
    m->seq = rel->seq;
    if (rel->release_id)
        return copy_id(m->release_id, sizeof(m->release_id), rel->release_id, "--release", d);
    cloud_default_release_id(m->product, m->version, m->seq, m->release_id);
    return FERRY_OK;
}

/* A repeated model or revision is a typo on the command line, not intent. */
static enum ferry_err refuse_duplicates(const struct ferry_strlist *l, const char *what,
                                        struct ferry_diag *d)
{
    for (size_t i = 0; l && i < l->n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(l->v[i], l->v[j]) == 0)
                return ferry_fail(d, FERRY_E_INVALID_ARG, "%s: '%s' is given twice", what, l->v[i]);
        }
    }
    return FERRY_OK;
}

static enum ferry_err fill_hw(struct ferry_manifest *m, const struct cloud_release *rel,
                              struct ferry_diag *d)
{
    const struct ferry_strlist *models = rel->hw_models;
    const struct ferry_strlist *revs = rel->hw_revisions;
    size_t nrevs = revs ? revs->n : 0;
    if (!models || models->n == 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--hw-model: at least one is required");
    if (models->n > FERRY_MAX_HW)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--hw-model: at most %d, got %zu", FERRY_MAX_HW,
                          models->n);
    if (nrevs > FERRY_MAX_REVISIONS)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--hw-revision: at most %d, got %zu",
                          FERRY_MAX_REVISIONS, nrevs);
    enum ferry_err err = refuse_duplicates(models, "--hw-model", d);
    if (err == FERRY_OK)
        err = refuse_duplicates(revs, "--hw-revision", d);
    if (err != FERRY_OK)
        return err;
    for (size_t i = 0; i < models->n; i++) {
        struct ferry_hw *hw = &m->hw[i];
        err = copy_id(hw->model, sizeof(hw->model), models->v[i], "--hw-model", d);
        for (size_t j = 0; j < nrevs && err == FERRY_OK; j++)
            err = copy_text(hw->revisions[j], sizeof(hw->revisions[j]), revs->v[j], "--hw-revision",
                            d);
        if (err != FERRY_OK)
            return err;
        hw->nrevisions = nrevs;
    }
    m->nhw = models->n;
    return FERRY_OK;
}

static enum ferry_err fill_artifact(struct ferry_manifest *m, const struct cloud_release *rel,
                                    struct ferry_diag *d)
{
    const char *media = rel->media_type ? rel->media_type : CLOUD_DEFAULT_MEDIA_TYPE;
    enum ferry_err err = copy_text(m->media_type, sizeof(m->media_type), media, "--media-type", d);
    if (err != FERRY_OK)
        return err;
    uint64_t size = 0;
    err = ferry_sha256_file(rel->artifact, m->sha256, &size, d);
    if (err != FERRY_OK)
        return err;
    if (size == 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "%s: the artifact is empty", rel->artifact);
    if (size > FERRY_ARTIFACT_MAX_SIZE)
        return ferry_fail(d, FERRY_E_TOO_LARGE, "%s: %" PRIu64 " bytes, the limit is %" PRIu64,
                          rel->artifact, size, (uint64_t)FERRY_ARTIFACT_MAX_SIZE);
    m->size = size;
    /* A module's release always carries `module`, even without parameters:
     * that is what a node that predates modules refuses. */
    char name[FERRY_MODULE_NAME_MAX + 1];
    m->module.present = ferry_module_name(m->media_type, name);
    for (size_t i = 0; rel->module_args && i < rel->module_args->n && err == FERRY_OK; i++)
        err = ferry_module_add_arg(&m->module, rel->module_args->v[i], d);
    for (size_t i = 0; rel->nodes && i < rel->nodes->n && err == FERRY_OK; i++) {
        err = ferry_targets_add(&m->nodes, rel->nodes->v[i], d);
        if (err != FERRY_OK)
            ferry_diag_prefix(d, "--node");
    }
    if (err == FERRY_OK && m->module.present && !ferry_module_name(m->media_type, name))
        err = ferry_fail(d, FERRY_E_INVALID_ARG,
                         "--module-arg: only for --media-type " FERRY_MODULE_MEDIA_PREFIX "NAME");
    return err;
}

enum ferry_err cloud_manifest_build(const struct cloud_release *rel, const char *kid,
                                    struct ferry_manifest *out, struct ferry_diag *d)
{
    struct ferry_manifest m;
    memset(&m, 0, sizeof(m));
    m.format = FERRY_MANIFEST_FORMAT;
    if (rel->lifetime <= 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--expires: must be at least 1s");
    if (rel->issued_at < 0 || rel->lifetime > INT64_MAX - rel->issued_at)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "--expires: %" PRId64 "s is too far ahead",
                          rel->lifetime);
    m.issued_at = rel->issued_at;
    m.expires_at = rel->issued_at + rel->lifetime;
    m.constraints = rel->constraints;
    enum ferry_err err = copy_text(m.key_id, sizeof(m.key_id), kid, "key id", d);
    if (err == FERRY_OK)
        err = fill_identity(&m, rel, d);
    if (err == FERRY_OK)
        err = fill_hw(&m, rel, d);
    if (err == FERRY_OK)
        err = fill_artifact(&m, rel, d);
    if (err != FERRY_OK)
        return err;
    *out = m;
    return FERRY_OK;
}

enum ferry_err cloud_envelope_sign(const struct ferry_manifest *m, const struct cloud_key *k,
                                   char **out, size_t *out_len, struct ferry_diag *d)
{
    char *json = NULL;
    size_t json_len = 0;
    uint8_t sig[FERRY_ES256_SIG_LEN];
    if (strcmp(m->key_id, cloud_key_kid(k)) != 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "manifest names key %s but the key is %s",
                          m->key_id, cloud_key_kid(k));
    enum ferry_err err = ferry_manifest_encode(m, &json, &json_len, d);
    if (err != FERRY_OK)
        goto out;
    err = cloud_key_sign(k, (const uint8_t *)json, json_len, sig, d);
    if (err != FERRY_OK)
        goto out;
    err = ferry_envelope_encode((const uint8_t *)json, json_len, cloud_key_kid(k), sig, out,
                                out_len, d);
out:
    free(json);
    return err;
}

/* Verifies env with k's public key alone, at the manifest's own issue time. */
static enum ferry_err self_verify(const char *env, size_t len, const struct cloud_key *k,
                                  int64_t now, struct ferry_diag *d)
{
    uint8_t point[FERRY_P256_POINT_LEN];
    struct ferry_keyring *kr = ferry_keyring_new();
    if (!kr)
        return ferry_fail(d, FERRY_E_NOMEM, "out of memory");
    cloud_key_point(k, point);
    enum ferry_err err = ferry_keyring_add(kr, point, false, d);
    if (err == FERRY_OK) {
        struct ferry_verify_policy pol = {.now = now};
        err = ferry_envelope_verify((const uint8_t *)env, len, kr, &pol, NULL, d);
        if (err != FERRY_OK)
            ferry_diag_prefix(d, "the signed envelope does not verify");
    }
    ferry_keyring_free(kr);
    return err;
}

enum ferry_err cloud_sign_release(const struct cloud_release *rel, const struct cloud_key *k,
                                  const char *out_path, struct ferry_manifest *m_out,
                                  struct ferry_diag *d)
{
    struct ferry_manifest m;
    char *env = NULL;
    size_t env_len = 0;
    enum ferry_err err = cloud_manifest_build(rel, cloud_key_kid(k), &m, d);
    if (err == FERRY_OK)
        err = cloud_envelope_sign(&m, k, &env, &env_len, d);
    if (err == FERRY_OK)
        err = self_verify(env, env_len, k, m.issued_at, d);
    if (err == FERRY_OK)
        err = ferry_write_atomic(out_path, env, env_len, 0644, d);
    if (err == FERRY_OK && m_out)
        *m_out = m;
    free(env);
    return err;
}
