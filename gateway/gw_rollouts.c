#include "gw_rollouts.h"

#include "ferry_envelope.h"
#include "ferry_fs.h"
#include "ferry_log.h"
#include "ferry_names.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUBDIR      "rollouts"
#define REPORT_FILE "report.json"

static enum ferry_err verify(const struct gw_rollouts_opts *o, const char *product,
                             const uint8_t *env, size_t len, int64_t now, const char *which,
                             struct ferry_manifest *m, struct ferry_diag *d)
{
    struct ferry_verify_policy pol = {
        .now = now,
        .clock_skew = o->clock_skew,
        .max_artifact_size = o->max_artifact_size,
    };
    enum ferry_err err =
        ferry_envelope_verify(env, len, ferry_trust_release_keys(o->trust), &pol, m, d);
    if (err == FERRY_OK && strcmp(m->product, product) != 0)
        err = ferry_fail(d, FERRY_E_PROTOCOL, "its %s release is for product '%s'", which,
                         m->product);
    if (err != FERRY_OK) {
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "its %s envelope", which);
        if (err != FERRY_E_PROTOCOL)
            ferry_diag_prefix(d, prefix);
    }
    return err;
}

enum ferry_err gw_rollouts_accept(const struct gw_rollouts_opts *o, const char *product,
                                  const uint8_t *buf, size_t len, int64_t now,
                                  struct gw_rollout_in *out, struct ferry_diag *d)
{
    memset(out, 0, sizeof(*out));
    struct ferry_rollout_doc *doc = NULL;
    enum ferry_err err = ferry_rollout_doc_from_json(buf, len, &doc, d);
    if (err == FERRY_OK &&
        (strcmp(doc->product, product) != 0 || strcmp(doc->gateway, o->gateway_id) != 0))
        err = ferry_fail(d, FERRY_E_PROTOCOL, "it is for gateway '%s', product '%s'", doc->gateway,
                         doc->product);
    if (err == FERRY_OK)
        err = verify(o, product, doc->release, doc->release_len, now, "release", &out->rel, d);
    if (err == FERRY_OK && doc->revert) {
        err = verify(o, product, doc->revert, doc->revert_len, now, "revert", &out->rev, d);
        out->has_rev = err == FERRY_OK;
    }
    if (err != FERRY_OK) {
        char prefix[FERRY_ID_MAX + 40];
        snprintf(prefix, sizeof(prefix), "rollout document for product '%s'", product);
        ferry_diag_prefix(d, prefix);
        ferry_rollout_doc_free(doc);
        return err;
    }
    out->doc = doc;
    return FERRY_OK;
}

static enum ferry_err path_of(const struct gw_rollouts_opts *o, const char *name,
                              char out[PATH_MAX], struct ferry_diag *d)
{
    if (snprintf(out, PATH_MAX, "%s/" SUBDIR "/%s", o->state_dir, name) >= PATH_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "rollouts: state folder path too long");
    return FERRY_OK;
}

static enum ferry_err make_dir(const struct gw_rollouts_opts *o, struct ferry_diag *d)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof(dir), "%s/" SUBDIR, o->state_dir) >= (int)sizeof(dir))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "rollouts: state folder path too long");
    return ferry_mkdir_p(dir, 0755, d);
}

enum ferry_err gw_rollouts_store(const struct gw_rollouts_opts *o, const char *product,
                                 const uint8_t *buf, size_t len, struct ferry_diag *d)
{
    char name[FERRY_ID_MAX + 8], path[PATH_MAX];
    if (!ferry_id_valid(product))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "rollouts: bad product name");
    snprintf(name, sizeof(name), "%s.json", product);
    enum ferry_err err = make_dir(o, d);
    if (err == FERRY_OK)
        err = path_of(o, name, path, d);
    if (err == FERRY_OK)
        err = ferry_write_atomic(path, buf, len, 0644, d);
    return err;
}

/* "<product>.json" -> product; false for any other name (the report too). */
static bool product_of(const char *name, char out[FERRY_ID_MAX + 1])
{
    size_t n = strlen(name);
    if (n <= 5 || n - 5 > FERRY_ID_MAX || strcmp(name + n - 5, ".json") != 0)
        return false;
    memcpy(out, name, n - 5);
    out[n - 5] = 0;
    return ferry_id_valid(out) && strcmp(name, REPORT_FILE) != 0;
}

enum ferry_err gw_rollouts_load(const struct gw_rollouts_opts *o, int64_t now, gw_rollouts_cb cb,
                                void *arg, struct ferry_diag *d)
{
    char dir[PATH_MAX];
    enum ferry_err err = make_dir(o, d);
    if (err != FERRY_OK)
        return err;
    snprintf(dir, sizeof(dir), "%s/" SUBDIR, o->state_dir);
    DIR *dh = opendir(dir);
    if (!dh)
        return ferry_fail(d, FERRY_E_IO, "rollouts: %s: %s", dir, strerror(errno));
    struct dirent *de;
    while (err == FERRY_OK && (de = readdir(dh)) != NULL) {
        char product[FERRY_ID_MAX + 1], path[PATH_MAX];
        if (!product_of(de->d_name, product))
            continue;
        uint8_t *buf = NULL;
        size_t len = 0;
        struct ferry_diag ld = {{0}};
        struct gw_rollout_in in;
        enum ferry_err lerr = path_of(o, de->d_name, path, &ld);
        if (lerr == FERRY_OK)
            lerr = ferry_read_file(path, FERRY_ROLLOUT_DOC_MAX_BYTES, &buf, &len, &ld);
        if (lerr == FERRY_OK)
            lerr = gw_rollouts_accept(o, product, buf, len, now, &in, &ld);
        free(buf);
        if (lerr != FERRY_OK) {
            ferry_log_err("rollouts: %s skipped: %s", path, ferry_diag_str(&ld, lerr));
            continue;
        }
        err = cb(arg, &in);
    }
    closedir(dh);
    return err;
}

enum ferry_err gw_rollouts_store_report(const struct gw_rollouts_opts *o,
                                        const struct ferry_rollout_report *r, struct ferry_diag *d)
{
    char path[PATH_MAX];
    char *json = NULL;
    size_t len = 0;
    enum ferry_err err = make_dir(o, d);
    if (err == FERRY_OK)
        err = path_of(o, REPORT_FILE, path, d);
    if (err == FERRY_OK)
        err = ferry_rollout_report_to_json(r, &json, &len, d);
    if (err == FERRY_OK)
        err = ferry_write_atomic(path, json, len, 0644, d);
    free(json);
    return err;
}

enum ferry_err gw_rollouts_load_report(const struct gw_rollouts_opts *o,
                                       struct ferry_rollout_report *r, struct ferry_diag *d)
{
    char path[PATH_MAX];
    uint8_t *buf = NULL;
    size_t len = 0;
    enum ferry_err err = path_of(o, REPORT_FILE, path, d);
    if (err == FERRY_OK)
        err = ferry_read_file(path, FERRY_ROLLOUT_REPORT_MAX, &buf, &len, d);
    if (err == FERRY_OK)
        err = ferry_rollout_report_from_json(buf, len, r, d);
    if (err != FERRY_OK && err != FERRY_E_NOT_FOUND)
        ferry_diag_prefix(d, path);
    free(buf);
    return err;
}
