#include "inst_module.h"

#include "ferry_bytes.h"
#include "ferry_crc32.h"
#include "ferry_fs.h"
#include "ferry_sha256.h"
#include "inst_exec.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REC_MAGIC "FMJ1"
#define REC_LEN                                                                                    \
    (4 + 4 + FERRY_SHA256_LEN + (FERRY_NAME_MAX + 1) + (FERRY_MODULE_NAME_MAX + 1) +               \
     FERRY_SHA256_LEN + 8 + 8 + (FERRY_VERSION_MAX + 1) + 8 + 1 +                                  \
     FERRY_MODULE_ARGS_MAX * (FERRY_MODULE_KEY_MAX + 1 + FERRY_MODULE_VALUE_MAX + 1) + 4)
#define ANSWER_MAX 64
#define ENV_MAX    (8 + FERRY_MODULE_ARGS_MAX)

struct inst_modules {
    char dir[PATH_MAX];
    char rec[PATH_MAX + 16];
    char artifact[PATH_MAX + 16];
    char work[PATH_MAX + 16];
    char module_dir[PATH_MAX];
    bool has_modules;
    char node[FERRY_NAME_MAX + 1];
    uint64_t timeout_ms;
    enum ferry_err (*power)(void *ctx, struct ferry_diag *d);
    void *power_ctx;
    struct inst_module_job job;
    int fd; /* the artifact during a download, -1 otherwise */
};

const char *inst_module_phase_name(enum inst_module_phase p)
{
    static const char *const names[] = {
        "none",      "staging",    "staged",    "installing",   "installed",
        "rebooting", "committing", "committed", "rolling-back", "rolled-back",
    };
    return (unsigned)p < sizeof(names) / sizeof(names[0]) ? names[p] : "unknown";
}

/* ---- the record -------------------------------------------------------------- */

struct cursor {
    uint8_t *p;
    const uint8_t *q;
    size_t off;
};

static void put(struct cursor *c, const void *v, size_t n)
{
    memcpy(c->p + c->off, v, n);
    c->off += n;
}

static void put_u64(struct cursor *c, uint64_t v)
{
    ferry_put_le64(c->p + c->off, v);
    c->off += 8;
}

static void get(struct cursor *c, void *v, size_t n)
{
    memcpy(v, c->q + c->off, n);
    c->off += n;
}

static uint64_t get_u64(struct cursor *c)
{
    uint64_t v = ferry_get_le64(c->q + c->off);
    c->off += 8;
    return v;
}

static void encode(const struct inst_module_job *j, uint8_t out[REC_LEN])
{
    struct cursor c = {.p = out};
    memset(out, 0, REC_LEN);
    put(&c, REC_MAGIC, 4);
    out[c.off++] = (uint8_t)j->phase;
    out[c.off++] = j->needs_reboot;
    out[c.off++] = (uint8_t)j->args.n;
    out[c.off++] = j->args.present;
    put(&c, j->digest, FERRY_SHA256_LEN);
    put(&c, j->release_id, sizeof(j->release_id));
    put(&c, j->name, sizeof(j->name));
    put(&c, j->img.sha256, FERRY_SHA256_LEN);
    put_u64(&c, j->img.size);
    put_u64(&c, j->img.seq);
    put(&c, j->img.version, sizeof(j->img.version));
    put_u64(&c, j->committed_seq);
    c.off++; /* reserved */
    for (size_t i = 0; i < FERRY_MODULE_ARGS_MAX; i++) {
        put(&c, j->args.key[i], sizeof(j->args.key[i]));
        put(&c, j->args.value[i], sizeof(j->args.value[i]));
    }
    ferry_put_le32(out + REC_LEN - 4, ferry_crc32(0, out, REC_LEN - 4));
}

static bool terminated(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

static enum ferry_err decode(const uint8_t *buf, size_t len, struct inst_module_job *out,
                             struct ferry_diag *d)
{
    if (len != REC_LEN || memcmp(buf, REC_MAGIC, 4) != 0)
        return ferry_fail(d, FERRY_E_CORRUPT, "module record: wrong length or magic");
    if (ferry_get_le32(buf + REC_LEN - 4) != ferry_crc32(0, buf, REC_LEN - 4))
        return ferry_fail(d, FERRY_E_CORRUPT, "module record: CRC mismatch");
    struct inst_module_job j;
    memset(&j, 0, sizeof(j));
    struct cursor c = {.q = buf, .off = 4};
    j.phase = (enum inst_module_phase)buf[c.off++];
    j.needs_reboot = buf[c.off++] != 0;
    j.args.n = buf[c.off++];
    j.args.present = buf[c.off++] != 0;
    get(&c, j.digest, FERRY_SHA256_LEN);
    get(&c, j.release_id, sizeof(j.release_id));
    get(&c, j.name, sizeof(j.name));
    get(&c, j.img.sha256, FERRY_SHA256_LEN);
    j.img.size = get_u64(&c);
    j.img.seq = get_u64(&c);
    get(&c, j.img.version, sizeof(j.img.version));
    j.committed_seq = get_u64(&c);
    c.off++;
    bool ok = (unsigned)j.phase <= INST_MOD_ROLLED_BACK && j.args.n <= FERRY_MODULE_ARGS_MAX &&
              terminated(j.release_id, sizeof(j.release_id)) &&
              terminated(j.name, sizeof(j.name)) &&
              terminated(j.img.version, sizeof(j.img.version));
    for (size_t i = 0; i < FERRY_MODULE_ARGS_MAX; i++) {
        get(&c, j.args.key[i], sizeof(j.args.key[i]));
        get(&c, j.args.value[i], sizeof(j.args.value[i]));
        ok = ok && terminated(j.args.key[i], sizeof(j.args.key[i])) &&
             terminated(j.args.value[i], sizeof(j.args.value[i]));
    }
    if (!ok)
        return ferry_fail(d, FERRY_E_CORRUPT, "module record: values out of range");
    *out = j;
    return FERRY_OK;
}

/* One mutating operation of the test's power supply, if there is one. */
static enum ferry_err power_step(struct inst_modules *m, struct ferry_diag *d)
{
    return m->power ? m->power(m->power_ctx, d) : FERRY_OK;
}

/* Stores the record with a new phase; only then is it the state in memory. */
static enum ferry_err store(struct inst_modules *m, enum inst_module_phase phase,
                            struct ferry_diag *d)
{
    struct inst_module_job j = m->job;
    j.phase = phase;
    uint8_t buf[REC_LEN];
    encode(&j, buf);
    enum ferry_err err = power_step(m, d);
    if (err == FERRY_OK)
        err = ferry_write_atomic(m->rec, buf, sizeof(buf), 0600, d);
    if (err != FERRY_OK)
        return err;
    m->job = j;
    return FERRY_OK;
}

/* ---- files -------------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    if (ftw->level == 0)
        return 0; /* the folder itself stays */
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* Empties the work folder (made if missing), durably. */
static enum ferry_err fresh_work(struct inst_modules *m, struct ferry_diag *d)
{
    if (mkdir(m->work, 0700) != 0 && errno != EEXIST)
        return ferry_fail(d, FERRY_E_IO, "%s: %s", m->work, strerror(errno));
    if (nftw(m->work, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return ferry_fail(d, FERRY_E_IO, "%s: cannot be emptied: %s", m->work, strerror(errno));
    if (ferry_fsync_dir(m->work) != FERRY_OK)
        return ferry_fail(d, FERRY_E_IO, "%s: fsync failed", m->work);
    return FERRY_OK;
}

static void close_artifact(struct inst_modules *m)
{
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
}

static enum ferry_err open_artifact(struct inst_modules *m, bool truncate, struct ferry_diag *d)
{
    close_artifact(m);
    int fd = open(m->artifact, O_RDWR | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0600);
    if (fd < 0)
        return ferry_fail(d, FERRY_E_IO, "%s: %s", m->artifact, strerror(errno));
    if ((truncate && fsync(fd) != 0) || ferry_fsync_dir(m->artifact) != FERRY_OK) {
        close(fd);
        return ferry_fail(d, FERRY_E_IO, "%s: fsync failed", m->artifact);
    }
    m->fd = fd;
    return FERRY_OK;
}

/* ---- verbs ------------------------------------------------------------------------ */

/* NAME=value strings for a module's environment, in buf. */
static size_t module_env(const struct inst_modules *m, bool for_verb, char **env, size_t cap,
                         char *buf, size_t bufcap)
{
    size_t n = 0, used = 0;
    const struct inst_module_job *j = &m->job;
    char line[PATH_MAX + 64];
    for (int i = 0; i < 6 + (int)FERRY_MODULE_ARGS_MAX && n < cap; i++) {
        switch (i) {
        case 0:
            snprintf(line, sizeof(line), "FERRY_MODULE_NAME=%s", j->name);
            break;
        case 1:
            if (!for_verb)
                continue;
            snprintf(line, sizeof(line), "FERRY_MODULE_ARTIFACT=%s", m->artifact);
            break;
        case 2:
            if (!for_verb)
                continue;
            snprintf(line, sizeof(line), "FERRY_MODULE_WORK=%s", m->work);
            break;
        case 3:
            snprintf(line, sizeof(line), "FERRY_RELEASE=%s", j->release_id);
            break;
        case 4:
            if (!for_verb)
                continue;
            snprintf(line, sizeof(line), "FERRY_VERSION=%s", j->img.version);
            break;
        case 5:
            if (!for_verb)
                continue;
            snprintf(line, sizeof(line), "FERRY_NODE=%s", m->node);
            break;
        default: {
            size_t a = (size_t)i - 6;
            if (a >= j->args.n)
                continue;
            int k = snprintf(line, sizeof(line), "FERRY_ARG_");
            for (const char *p = j->args.key[a]; *p && k < (int)sizeof(line) - 1; p++)
                line[k++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
            snprintf(line + k, sizeof(line) - (size_t)k, "=%s", j->args.value[a]);
        }
        }
        size_t len = strlen(line) + 1;
        if (used + len > bufcap)
            break;
        memcpy(buf + used, line, len);
        env[n++] = buf + used;
        used += len;
    }
    return n;
}

size_t inst_modules_env(const struct inst_modules *m, char **env, size_t cap, char *buf,
                        size_t bufcap)
{
    return module_env(m, false, env, cap, buf, bufcap);
}

/* Runs `<module> verb`; FERRY_E_IO naming the module, verb and exit when it
 * fails. */
static enum ferry_err run_verb(struct inst_modules *m, const char *verb, char *answer, size_t cap,
                               struct ferry_diag *d)
{
    char path[PATH_MAX + FERRY_MODULE_NAME_MAX + 2];
    char v[16];
    snprintf(path, sizeof(path), "%s/%s", m->module_dir, m->job.name);
    snprintf(v, sizeof(v), "%s", verb);
    char *argv[] = {path, v, NULL};
    char *env[ENV_MAX + 1];
    char buf[ENV_MAX * (PATH_MAX / 4)];
    size_t n = module_env(m, true, env, ENV_MAX, buf, sizeof(buf));
    env[n] = NULL;
    struct inst_exec_result res;
    enum ferry_err err = power_step(m, d);
    if (err == FERRY_OK)
        err = inst_exec_run(argv, env, m->timeout_ms, answer, cap, &res, d);
    if (err != FERRY_OK)
        return err;
    if (!res.exited || res.status != 0) {
        char why[64];
        inst_exec_describe(&res, m->timeout_ms, why, sizeof(why));
        return ferry_fail(d, FERRY_E_IO, "module %s: %s: %s", m->job.name, verb, why);
    }
    return FERRY_OK;
}

/* ---- life cycle -------------------------------------------------------------------- */

enum ferry_err inst_modules_open(const struct inst_modules_opts *o, struct inst_modules **out,
                                 struct ferry_diag *d)
{
    if (!o->state_dir || strlen(o->state_dir) >= PATH_MAX - 32 ||
        (o->module_dir && strlen(o->module_dir) >= PATH_MAX))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "modules: a path is missing or too long");
    struct inst_modules *m = calloc(1, sizeof(*m));
    if (!m)
        return ferry_fail(d, FERRY_E_NOMEM, "modules: out of memory");
    m->fd = -1;
    snprintf(m->dir, sizeof(m->dir), "%s/module", o->state_dir);
    snprintf(m->rec, sizeof(m->rec), "%s/job.rec", m->dir);
    snprintf(m->artifact, sizeof(m->artifact), "%s/artifact", m->dir);
    snprintf(m->work, sizeof(m->work), "%s/work", m->dir);
    m->has_modules = o->module_dir != NULL;
    snprintf(m->module_dir, sizeof(m->module_dir), "%s", o->module_dir ? o->module_dir : "");
    snprintf(m->node, sizeof(m->node), "%s", o->node_id ? o->node_id : "");
    m->timeout_ms = o->timeout_ms;
    m->power = o->power;
    m->power_ctx = o->power_ctx;
    uint8_t *buf = NULL;
    size_t len = 0;
    enum ferry_err err = ferry_mkdir_p(m->dir, 0700, d);
    if (err == FERRY_OK)
        err = ferry_read_file(m->rec, REC_LEN, &buf, &len, d);
    if (err == FERRY_E_NOT_FOUND)
        err = FERRY_OK;
    else if (err == FERRY_OK)
        err = decode(buf, len, &m->job, d);
    else if (err == FERRY_E_TOO_LARGE)
        err = ferry_fail(d, FERRY_E_CORRUPT, "%s: not a module record", m->rec);
    free(buf);
    if (err != FERRY_OK) {
        ferry_diag_prefix(d, m->rec);
        free(m);
        return err;
    }
    *out = m;
    return FERRY_OK;
}

void inst_modules_free(struct inst_modules *m)
{
    if (!m)
        return;
    close_artifact(m);
    free(m);
}

const struct inst_module_job *inst_modules_job(const struct inst_modules *m)
{
    return &m->job;
}

bool inst_modules_owns(const struct inst_modules *m, const uint8_t digest[FERRY_SHA256_LEN])
{
    return m->job.phase != INST_MOD_NONE && memcmp(m->job.digest, digest, FERRY_SHA256_LEN) == 0;
}

static bool under_way(const struct inst_modules *m)
{
    switch (m->job.phase) {
    case INST_MOD_INSTALLING:
    case INST_MOD_INSTALLED:
    case INST_MOD_REBOOTING:
    case INST_MOD_COMMITTING:
    case INST_MOD_ROLLING_BACK:
        return true;
    default:
        return false;
    }
}

enum ferry_err inst_modules_prepare(struct inst_modules *m, const uint8_t digest[FERRY_SHA256_LEN],
                                    const struct ferry_manifest *mf, struct ferry_diag *d)
{
    char name[FERRY_MODULE_NAME_MAX + 1];
    if (under_way(m))
        return ferry_fail(d, FERRY_E_BUSY, "modules: the install by module %s is %s", m->job.name,
                          inst_module_phase_name(m->job.phase));
    close_artifact(m);
    if (!ferry_module_name(mf->media_type, name)) {
        if (m->job.phase == INST_MOD_NONE)
            return FERRY_OK;
        /* An image's release now: the record stops naming a module job. */
        memset(m->job.name, 0, sizeof(m->job.name));
        return store(m, INST_MOD_NONE, d);
    }
    char path[PATH_MAX + FERRY_MODULE_NAME_MAX + 2];
    snprintf(path, sizeof(path), "%s/%s", m->module_dir, name);
    if (!m->has_modules)
        return ferry_fail(d, FERRY_E_NOT_FOUND,
                          "release %s needs update module '%s' and this node has no --module-dir",
                          mf->release_id, name);
    if (access(path, X_OK) != 0)
        return ferry_fail(d, FERRY_E_NOT_FOUND, "release %s needs update module '%s': no %s",
                          mf->release_id, name, path);
    enum ferry_err err = fresh_work(m, d);
    if (err != FERRY_OK)
        return err;
    uint64_t floor = m->job.committed_seq;
    memset(&m->job, 0, sizeof(m->job));
    m->job.committed_seq = floor;
    memcpy(m->job.digest, digest, FERRY_SHA256_LEN);
    snprintf(m->job.release_id, sizeof(m->job.release_id), "%s", mf->release_id);
    snprintf(m->job.name, sizeof(m->job.name), "%s", name);
    m->job.args = mf->module;
    memcpy(m->job.img.sha256, mf->sha256, FERRY_SHA256_LEN);
    m->job.img.size = mf->size;
    m->job.img.seq = mf->seq;
    snprintf(m->job.img.version, sizeof(m->job.img.version), "%s", mf->version);
    return store(m, INST_MOD_STAGING, d);
}

static enum ferry_err downloading(const struct inst_modules *m, const struct edge_image *img,
                                  struct ferry_diag *d)
{
    if (m->job.phase != INST_MOD_STAGING && m->job.phase != INST_MOD_STAGED)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "modules: no download for a module under way (%s)",
                          inst_module_phase_name(m->job.phase));
    if (img && (img->size != m->job.img.size ||
                memcmp(img->sha256, m->job.img.sha256, FERRY_SHA256_LEN) != 0))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "modules: the download is not release %s's",
                          m->job.release_id);
    return FERRY_OK;
}

enum ferry_err inst_modules_begin(struct inst_modules *m, const struct edge_image *img,
                                  struct ferry_diag *d)
{
    enum ferry_err err = downloading(m, img, d);
    if (err == FERRY_OK && m->job.phase == INST_MOD_STAGED)
        err = store(m, INST_MOD_STAGING, d);
    if (err == FERRY_OK)
        err = open_artifact(m, true, d);
    return err;
}

enum ferry_err inst_modules_resume(struct inst_modules *m, const struct edge_image *img,
                                   uint64_t written, struct ferry_diag *d)
{
    (void)written; /* the artifact file holds what was synced; finish re-hashes it all */
    enum ferry_err err = downloading(m, img, d);
    if (err == FERRY_OK && m->job.phase == INST_MOD_STAGED)
        err = store(m, INST_MOD_STAGING, d);
    if (err == FERRY_OK)
        err = open_artifact(m, false, d);
    return err;
}

enum ferry_err inst_modules_write(struct inst_modules *m, uint64_t off, const void *buf, size_t len,
                                  struct ferry_diag *d)
{
    if (m->fd < 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "modules: no download under way");
    if (off > m->job.img.size || len > m->job.img.size - off)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "modules: block at %llu+%zu past %llu bytes",
                          (unsigned long long)off, len, (unsigned long long)m->job.img.size);
    if (ferry_pwrite_all(m->fd, buf, len, (off_t)off) != FERRY_OK)
        return ferry_fail(d, errno == ENOSPC ? FERRY_E_NOSPACE : FERRY_E_IO, "%s: write: %s",
                          m->artifact, strerror(errno));
    return FERRY_OK;
}

enum ferry_err inst_modules_sync(struct inst_modules *m, struct ferry_diag *d)
{
    if (m->fd < 0)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "modules: no download under way");
    if (fsync(m->fd) != 0)
        return ferry_fail(d, FERRY_E_IO, "%s: fsync: %s", m->artifact, strerror(errno));
    return FERRY_OK;
}

enum ferry_err inst_modules_finish(struct inst_modules *m, struct ferry_diag *d)
{
    enum ferry_err err = inst_modules_sync(m, d);
    close_artifact(m);
    if (err != FERRY_OK)
        return err;
    uint8_t sha[FERRY_SHA256_LEN];
    uint64_t size = 0;
    err = ferry_sha256_file(m->artifact, sha, &size, d);
    if (err != FERRY_OK)
        return err;
    if (size != m->job.img.size)
        return ferry_fail(d, FERRY_E_SIZE_MISMATCH, "%s: %llu bytes, the release has %llu",
                          m->artifact, (unsigned long long)size,
                          (unsigned long long)m->job.img.size);
    if (memcmp(sha, m->job.img.sha256, FERRY_SHA256_LEN) != 0)
        return ferry_fail(d, FERRY_E_HASH_MISMATCH,
                          "%s: SHA-256 of the stored artifact differs from the release's",
                          m->artifact);
    return store(m, INST_MOD_STAGED, d);
}

static enum ferry_err rollback_now(struct inst_modules *m, struct ferry_diag *d)
{
    char answer[ANSWER_MAX];
    enum ferry_err err = store(m, INST_MOD_ROLLING_BACK, d);
    if (err == FERRY_OK)
        err = run_verb(m, "rollback", answer, sizeof(answer), d);
    if (err == FERRY_OK)
        err = run_verb(m, "cleanup", answer, sizeof(answer), d);
    if (err == FERRY_OK)
        err = store(m, INST_MOD_ROLLED_BACK, d);
    return err;
}

enum ferry_err inst_modules_install(struct inst_modules *m, struct ferry_diag *d)
{
    if (m->job.phase != INST_MOD_STAGED)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "modules: nothing staged to install (%s)",
                          inst_module_phase_name(m->job.phase));
    char answer[ANSWER_MAX];
    enum ferry_err err = store(m, INST_MOD_INSTALLING, d);
    if (err != FERRY_OK)
        return err;
    err = run_verb(m, "install", answer, sizeof(answer), d);
    if (err == FERRY_E_IO && m->job.phase == INST_MOD_INSTALLING) {
        /* The module said how install failed; put things back, keep that. */
        struct ferry_diag rd = {{0}};
        char why[FERRY_DIAG_MAX];
        snprintf(why, sizeof(why), "%s", d ? d->msg : "install failed");
        if (rollback_now(m, &rd) != FERRY_OK)
            return ferry_fail(d, FERRY_E_IO, "%s; then %s", why, rd.msg);
        return FERRY_E_IO;
    }
    if (err == FERRY_OK)
        err = run_verb(m, "needs-reboot", answer, sizeof(answer), d);
    if (err != FERRY_OK)
        return err;
    answer[strcspn(answer, "\r\n")] = '\0';
    if (answer[0] && strcmp(answer, "yes") != 0 && strcmp(answer, "no") != 0)
        return ferry_fail(d, FERRY_E_PROTOCOL, "module %s: needs-reboot answered '%.32s'",
                          m->job.name, answer);
    m->job.needs_reboot = strcmp(answer, "yes") == 0;
    return store(m, INST_MOD_INSTALLED, d);
}

enum ferry_err inst_modules_rebooting(struct inst_modules *m, struct ferry_diag *d)
{
    if (m->job.phase != INST_MOD_INSTALLED)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "modules: nothing installed to reboot into");
    return store(m, INST_MOD_REBOOTING, d);
}

enum ferry_err inst_modules_commit(struct inst_modules *m, struct ferry_diag *d)
{
    char answer[ANSWER_MAX];
    if (m->job.phase == INST_MOD_COMMITTED)
        return FERRY_OK;
    if (m->job.phase != INST_MOD_INSTALLED && m->job.phase != INST_MOD_REBOOTING &&
        m->job.phase != INST_MOD_COMMITTING)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "modules: nothing installed to commit (%s)",
                          inst_module_phase_name(m->job.phase));
    enum ferry_err err = store(m, INST_MOD_COMMITTING, d);
    if (err == FERRY_OK)
        err = run_verb(m, "commit", answer, sizeof(answer), d);
    if (err == FERRY_OK)
        err = run_verb(m, "cleanup", answer, sizeof(answer), d);
    if (err != FERRY_OK)
        return err;
    if (m->job.img.seq > m->job.committed_seq)
        m->job.committed_seq = m->job.img.seq;
    return store(m, INST_MOD_COMMITTED, d);
}

enum ferry_err inst_modules_rollback(struct inst_modules *m, struct ferry_diag *d)
{
    switch (m->job.phase) {
    case INST_MOD_INSTALLING:
    case INST_MOD_INSTALLED:
    case INST_MOD_REBOOTING:
    case INST_MOD_ROLLING_BACK:
        return rollback_now(m, d);
    case INST_MOD_COMMITTING:
    case INST_MOD_COMMITTED:
        return ferry_fail(d, FERRY_E_INVALID_ARG, "modules: release %s is already confirmed",
                          m->job.release_id);
    default:
        return FERRY_OK; /* nothing installed */
    }
}

enum ferry_err inst_modules_recover(struct inst_modules *m, enum inst_module_outcome *out,
                                    struct ferry_diag *d)
{
    enum ferry_err err = FERRY_OK;
    *out = INST_MODULE_NOTHING;
    switch (m->job.phase) {
    case INST_MOD_INSTALLING:
    case INST_MOD_INSTALLED:
    case INST_MOD_ROLLING_BACK:
        err = rollback_now(m, d);
        *out = INST_MODULE_ROLLED_BACK;
        break;
    case INST_MOD_ROLLED_BACK:
        *out = INST_MODULE_ROLLED_BACK;
        break;
    case INST_MOD_REBOOTING:
        *out = INST_MODULE_TRIAL;
        break;
    case INST_MOD_COMMITTING:
        err = inst_modules_commit(m, d);
        *out = INST_MODULE_COMMITTED;
        break;
    case INST_MOD_COMMITTED:
        *out = INST_MODULE_COMMITTED;
        break;
    case INST_MOD_NONE:
    case INST_MOD_STAGING:
    case INST_MOD_STAGED:
        break;
    }
    return err;
}
