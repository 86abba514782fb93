/* Update modules (inst_module.h) with the shipped `file` module
 * (deploy/modules/file) and `script` module: an update confirmed, a failed
 * health check rolled back, a first install, a folder, a failing install,
 * a missing module; and a power cut at every step: at each of the engine's
 * record writes and verb calls, and at each of the file module's own steps
 * (each mv, ln, rm, cp, sync, tar, chmod, mkdir it runs, through PATH shims
 * that stop the module dead and take the power with it). After each cut
 * the node restarts (inst_modules_recover()) and the file holds the old
 * content or the new, never a mix, never nothing, with nothing left beside
 * it. */
#include "cunit_main.h"
#include "test_keys.h"

#include "ferry_fs.h"
#include "inst_module.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KID      "0123456789abcdef"
#define OLD_TEXT "colour=blue\n"
#define NEW_TEXT "colour=green\nsize=large\n"

static char root[PATH_MAX / 4];

static const char *src_dir(void)
{
    const char *s = getenv("FERRY_SOURCE_DIR");
    return s ? s : ".";
}

static void path_in(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", root, name);
}

static void write_text(const char *path, const char *text)
{
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(path, text, strlen(text), 0644, NULL), FERRY_OK);
}

/* The file's content, or "(missing)". Static buffer. */
static const char *content(const char *path)
{
    static char out[256];
    uint8_t *buf = NULL;
    size_t len = 0;
    if (ferry_read_file(path, sizeof(out) - 1, &buf, &len, NULL) != FERRY_OK)
        return "(missing)";
    memcpy(out, buf, len);
    out[len] = '\0';
    free(buf);
    return out;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* A module release for `artifact` (its bytes), with module arguments. */
static void release(struct ferry_manifest *m, const char *module, const char *artifact_path,
                    const char *const *args, uint64_t seq)
{
    uint8_t sha[FERRY_SHA256_LEN];
    uint64_t size = 0;
    CU_ASSERT_EQUAL_FATAL(ferry_sha256_file(artifact_path, sha, &size, NULL), FERRY_OK);
    test_manifest_sample(m, KID, sha, size);
    snprintf(m->media_type, sizeof(m->media_type), FERRY_MODULE_MEDIA_PREFIX "%s", module);
    m->seq = seq;
    m->module.present = true;
    for (size_t i = 0; args && args[i]; i++)
        CU_ASSERT_EQUAL_FATAL(ferry_module_add_arg(&m->module, args[i], NULL), FERRY_OK);
}

struct world {
    char state[PATH_MAX];
    char target[PATH_MAX];
    char artifact[PATH_MAX];
    struct ferry_manifest m;
    uint8_t digest[FERRY_SHA256_LEN];
};

static enum ferry_err open_modules(struct world *w, struct inst_modules **out,
                                   enum ferry_err (*power)(void *, struct ferry_diag *))
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/deploy/modules", src_dir());
    struct inst_modules_opts o = {.state_dir = w->state,
                                  .module_dir = dir,
                                  .node_id = "node-1",
                                  .timeout_ms = 10000,
                                  .power = power};
    return inst_modules_open(&o, out, NULL);
}

/* prepare, download (in two blocks), finish. */
static enum ferry_err stage(struct world *w, struct inst_modules *mods)
{
    uint8_t *data = NULL;
    size_t len = 0;
    enum ferry_err err = inst_modules_prepare(mods, w->digest, &w->m, NULL);
    if (err == FERRY_OK)
        err = ferry_read_file(w->artifact, 1 << 20, &data, &len, NULL);
    struct edge_image img = {.size = w->m.size, .seq = w->m.seq};
    memcpy(img.sha256, w->m.sha256, FERRY_SHA256_LEN);
    if (err == FERRY_OK)
        err = inst_modules_begin(mods, &img, NULL);
    size_t half = len / 2;
    if (err == FERRY_OK)
        err = inst_modules_write(mods, half, data + half, len - half, NULL);
    if (err == FERRY_OK)
        err = inst_modules_write(mods, 0, data, half, NULL);
    if (err == FERRY_OK)
        err = inst_modules_finish(mods, NULL);
    free(data);
    return err;
}

static char fast_tmp[64];

static void remove_fast_tmp(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fast_tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", fast_tmp);
}

/* The module fsyncs at every step, and the cut tests run it a few hundred
 * times: on tmpfs when there is one (the cuts are the test's, not the
 * disk's), else in the test's folder. */
static const char *work_root(void)
{
    if (fast_tmp[0])
        return fast_tmp;
    snprintf(fast_tmp, sizeof(fast_tmp), "/dev/shm/ferry-inst-module-XXXXXX");
    if (mkdtemp(fast_tmp)) {
        atexit(remove_fast_tmp);
        return fast_tmp;
    }
    snprintf(fast_tmp, sizeof(fast_tmp), "%.63s", ferry_test_tmpdir());
    return fast_tmp;
}

static void world_init(struct world *w, const char *name, const char *const *args, bool dir_kind)
{
    memset(w, 0, sizeof(*w));
    snprintf(root, sizeof(root), "%s/%s", work_root(), name);
    CU_ASSERT_EQUAL_FATAL(ferry_mkdir_p(root, 0755, NULL), FERRY_OK);
    path_in(w->state, sizeof(w->state), "state");
    path_in(w->target, sizeof(w->target), "app.conf");
    path_in(w->artifact, sizeof(w->artifact), "artifact");
    if (dir_kind) {
        char cmd[PATH_MAX * 2];
        snprintf(cmd, sizeof(cmd),
                 "cd '%s' && mkdir -p src && printf '" NEW_TEXT "' > src/a && printf 2 > src/b && "
                 "tar -cf '%s' -C src .",
                 root, w->artifact);
        CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    } else {
        write_text(w->artifact, NEW_TEXT);
    }
    char path_arg[PATH_MAX + 8];
    snprintf(path_arg, sizeof(path_arg), "path=%s", w->target);
    const char *all[8] = {path_arg};
    size_t n = 1;
    for (size_t i = 0; args && args[i] && n < 7; i++)
        all[n++] = args[i];
    all[n] = NULL;
    release(&w->m, "file", w->artifact, all, 50);
    memset(w->digest, 0x42, sizeof(w->digest));
}

static void file_update_is_confirmed(void)
{
    struct world w;
    world_init(&w, "confirmed", (const char *const[]){"mode=0600", NULL}, false);
    write_text(w.target, OLD_TEXT);
    struct inst_modules *mods = NULL;
    CU_ASSERT_EQUAL_FATAL(open_modules(&w, &mods, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(stage(&w, mods), FERRY_OK);
    CU_ASSERT_TRUE(inst_modules_owns(mods, w.digest));
    CU_ASSERT_EQUAL(inst_modules_job(mods)->phase, INST_MOD_STAGED);
    CU_ASSERT_EQUAL_FATAL(inst_modules_install(mods, NULL), FERRY_OK);
    CU_ASSERT_FALSE(inst_modules_job(mods)->needs_reboot);
    CU_ASSERT_STRING_EQUAL(content(w.target), NEW_TEXT);
    char prev[PATH_MAX + 16];
    snprintf(prev, sizeof(prev), "%s.ferry-prev", w.target);
    CU_ASSERT_STRING_EQUAL(content(prev), OLD_TEXT); /* kept until the commit */
    struct stat st;
    CU_ASSERT_EQUAL(stat(w.target, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    /* The health check's view. */
    char *env[16];
    char buf[4096];
    size_t n = inst_modules_env(mods, env, 16, buf, sizeof(buf));
    bool has_path = false;
    for (size_t i = 0; i < n; i++)
        has_path |= strncmp(env[i], "FERRY_ARG_PATH=", 15) == 0;
    CU_ASSERT_TRUE(has_path);
    CU_ASSERT_EQUAL_FATAL(inst_modules_commit(mods, NULL), FERRY_OK);
    CU_ASSERT_FALSE(exists(prev));
    CU_ASSERT_EQUAL(inst_modules_job(mods)->phase, INST_MOD_COMMITTED);
    CU_ASSERT_EQUAL(inst_modules_job(mods)->committed_seq, 50);
    inst_modules_free(mods);
    /* Restarted: the floor stays, and nothing is re-run. */
    CU_ASSERT_EQUAL_FATAL(open_modules(&w, &mods, NULL), FERRY_OK);
    enum inst_module_outcome out;
    CU_ASSERT_EQUAL(inst_modules_recover(mods, &out, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(out, INST_MODULE_COMMITTED);
    CU_ASSERT_EQUAL(inst_modules_job(mods)->committed_seq, 50);
    /* An image's release next: the record stops naming a module job. */
    struct ferry_manifest img;
    test_manifest_sample(&img, KID, NULL, 100);
    uint8_t other[FERRY_SHA256_LEN] = {1};
    CU_ASSERT_EQUAL(inst_modules_prepare(mods, other, &img, NULL), FERRY_OK);
    CU_ASSERT_FALSE(inst_modules_owns(mods, other));
    CU_ASSERT_EQUAL(inst_modules_job(mods)->committed_seq, 50);
    inst_modules_free(mods);
}

static void failed_health_check_restores_the_file(void)
{
    struct world w;
    world_init(&w, "restored", NULL, false);
    write_text(w.target, OLD_TEXT);
    CU_ASSERT_EQUAL(chmod(w.target, 0640), 0);
    struct inst_modules *mods = NULL;
    CU_ASSERT_EQUAL_FATAL(open_modules(&w, &mods, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(stage(&w, mods), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(inst_modules_install(mods, NULL), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(content(w.target), NEW_TEXT);
    struct stat st;
    CU_ASSERT_EQUAL(stat(w.target, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0640); /* the old file's mode */
    CU_ASSERT_EQUAL(inst_modules_rollback(mods, NULL), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(content(w.target), OLD_TEXT);
    CU_ASSERT_EQUAL(inst_modules_job(mods)->phase, INST_MOD_ROLLED_BACK);
    CU_ASSERT_EQUAL(inst_modules_job(mods)->committed_seq, 0);
    char prev[PATH_MAX + 16];
    snprintf(prev, sizeof(prev), "%s.ferry-prev", w.target);
    CU_ASSERT_FALSE(exists(prev));
    CU_ASSERT_EQUAL(inst_modules_rollback(mods, NULL), FERRY_OK); /* idempotent */
    inst_modules_free(mods);
}

static void first_install_rolls_back_to_nothing(void)
{
    struct world w;
    world_init(&w, "first", NULL, false);
    struct inst_modules *mods = NULL;
    CU_ASSERT_EQUAL_FATAL(open_modules(&w, &mods, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(stage(&w, mods), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(inst_modules_install(mods, NULL), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(content(w.target), NEW_TEXT);
    CU_ASSERT_EQUAL(inst_modules_rollback(mods, NULL), FERRY_OK);
    CU_ASSERT_FALSE(exists(w.target));
    inst_modules_free(mods);
}

static void folder_is_replaced_and_restored(void)
{
    struct world w;
    world_init(&w, "folder", (const char *const[]){"kind=dir", NULL}, true);
    CU_ASSERT_EQUAL_FATAL(mkdir(w.target, 0755), 0);
    char old_file[PATH_MAX + 8], new_file[PATH_MAX + 8];
    snprintf(old_file, sizeof(old_file), "%s/old", w.target);
    snprintf(new_file, sizeof(new_file), "%s/a", w.target);
    write_text(old_file, OLD_TEXT);
    struct inst_modules *mods = NULL;
    CU_ASSERT_EQUAL_FATAL(open_modules(&w, &mods, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(stage(&w, mods), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(inst_modules_install(mods, NULL), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(content(new_file), NEW_TEXT);
    CU_ASSERT_FALSE(exists(old_file));
    CU_ASSERT_EQUAL(inst_modules_rollback(mods, NULL), FERRY_OK);
    CU_ASSERT_STRING_EQUAL(content(old_file), OLD_TEXT);
    CU_ASSERT_FALSE(exists(new_file));
    inst_modules_free(mods);
}

static void failing_install_is_rolled_back_and_says_why(void)
{
    struct world w;
    world_init(&w, "failing", NULL, false);
    release(&w.m, "file", w.artifact, (const char *const[]){"path=relative/app.conf", NULL}, 50);
    struct inst_modules *mods = NULL;
    CU_ASSERT_EQUAL_FATAL(open_modules(&w, &mods, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(stage(&w, mods), FERRY_OK);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(inst_modules_install(mods, &d), FERRY_E_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "module file: install: exit 1"));
    CU_ASSERT_EQUAL(inst_modules_job(mods)->phase, INST_MOD_ROLLED_BACK);
    /* A module this node lacks. */
    struct ferry_manifest m = w.m;
    snprintf(m.media_type, sizeof(m.media_type), FERRY_MODULE_MEDIA_PREFIX "docker");
    CU_ASSERT_EQUAL(inst_modules_prepare(mods, w.digest, &m, &d), FERRY_E_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "update module 'docker'"));
    inst_modules_free(mods);
    struct inst_modules_opts o = {.state_dir = w.state, .timeout_ms = 1000};
    CU_ASSERT_EQUAL_FATAL(inst_modules_open(&o, &mods, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(inst_modules_prepare(mods, w.digest, &w.m, &d), FERRY_E_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "no --module-dir"));
    inst_modules_free(mods);
}

static void script_module_reports_the_exit_status(void)
{
    struct world w;
    world_init(&w, "script", NULL, false);
    char marker[PATH_MAX + 8], script[PATH_MAX + 64];
    path_in(marker, sizeof(marker), "ran");
    snprintf(script, sizeof(script), "echo \"$FERRY_ARG_WHO\" > '%s'\nexit 3\n", marker);
    write_text(w.artifact, script);
    release(&w.m, "script", w.artifact, (const char *const[]){"who=maintenance", NULL}, 51);
    struct inst_modules *mods = NULL;
    CU_ASSERT_EQUAL_FATAL(open_modules(&w, &mods, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(stage(&w, mods), FERRY_OK);
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(inst_modules_install(mods, &d), FERRY_E_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "module script: install: exit 3"));
    CU_ASSERT_STRING_EQUAL(content(marker), "maintenance\n");
    inst_modules_free(mods);
}

/* ---- power cuts -------------------------------------------------------------------- */

static struct {
    uint64_t ops, cut_at; /* the engine's record writes and verb calls */
    char dead[PATH_MAX];  /* exists once the power is cut (by either side) */
} P;

static bool power_is_off(void)
{
    return access(P.dead, F_OK) == 0;
}

static enum ferry_err power(void *ctx, struct ferry_diag *d)
{
    (void)ctx;
    if (!power_is_off() && P.ops++ == P.cut_at)
        write_text(P.dead, "cut\n");
    return power_is_off() ? ferry_fail(d, FERRY_E_IO, "power cut") : FERRY_OK;
}

/* PATH shims for the tools the file module changes things with: shim call
 * number $FERRY_TEST_SHIM_CUT (counted in $FERRY_TEST_SHIM_COUNT) and every
 * one after the power died kill the module where it stands. */
static void make_shims(const char *dir)
{
    static const char *const tools[] = {"mv", "ln", "rm", "cp", "sync", "tar", "chmod", "mkdir"};
    char path[PATH_MAX + 16];
    CU_ASSERT_EQUAL_FATAL(ferry_mkdir_p(dir, 0755, NULL), FERRY_OK);
    snprintf(path, sizeof(path), "%s/shim", dir);
    const char *text =
        "#!/bin/sh\n"
        "n=0\n"
        "[ -f \"$FERRY_TEST_SHIM_COUNT\" ] && read -r n < \"$FERRY_TEST_SHIM_COUNT\"\n"
        "n=$((n + 1))\n"
        "echo $n > \"$FERRY_TEST_SHIM_COUNT\"\n"
        "if [ -e \"$FERRY_TEST_DEAD\" ] || [ \"$n\" = \"${FERRY_TEST_SHIM_CUT:-0}\" ]; then\n"
        "    echo cut > \"$FERRY_TEST_DEAD\"\n"
        "    kill -9 $PPID\n"
        "    exit 137\n"
        "fi\n"
        "PATH=$FERRY_TEST_REAL_PATH exec \"${0##*/}\" \"$@\"\n";
    CU_ASSERT_EQUAL_FATAL(ferry_write_atomic(path, text, strlen(text), 0755, NULL), FERRY_OK);
    for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
        char link[PATH_MAX + 16];
        snprintf(link, sizeof(link), "%s/%s", dir, tools[i]);
        if (symlink("shim", link) != 0)
            CU_ASSERT_EQUAL_FATAL(errno, EEXIST);
    }
}

enum cut_scenario { CUT_CONFIRMED, CUT_HEALTH_FAILED };

static char saved_path[8192];

static void set_env(const char *k, const char *v)
{
    CU_ASSERT_EQUAL_FATAL(setenv(k, v, 1), 0);
}

/* Starts from the old file and runs the scenario until the power dies,
 * the module's tools shimmed (PATH `shimmed`). */
static void run_scenario(struct world *w, enum cut_scenario sc, bool dir_kind, const char *shimmed)
{
    char cmd[PATH_MAX * 5];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s' '%s'.ferry-* && mkdir -p '%s'", w->state,
             w->target, w->target, w->state);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    if (dir_kind) {
        CU_ASSERT_EQUAL_FATAL(mkdir(w->target, 0755), 0);
        char f[PATH_MAX + 8];
        snprintf(f, sizeof(f), "%s/old", w->target);
        write_text(f, OLD_TEXT);
    } else {
        write_text(w->target, OLD_TEXT);
    }
    struct inst_modules *mods = NULL;
    CU_ASSERT_EQUAL_FATAL(open_modules(w, &mods, power), FERRY_OK);
    set_env("PATH", shimmed);
    enum ferry_err err = stage(w, mods);
    if (err == FERRY_OK)
        err = inst_modules_install(mods, NULL);
    if (err == FERRY_OK)
        err = sc == CUT_CONFIRMED ? inst_modules_commit(mods, NULL)
                                  : inst_modules_rollback(mods, NULL);
    set_env("PATH", saved_path);
    CU_ASSERT_EQUAL(err == FERRY_OK, !power_is_off());
    inst_modules_free(mods);
}

/* "old" or "new" when the target is whole; anything else is a failure. */
static const char *what_is_there(const struct world *w, bool dir_kind)
{
    char f[PATH_MAX + 8];
    if (!dir_kind)
        return strcmp(content(w->target), OLD_TEXT) == 0   ? "old"
               : strcmp(content(w->target), NEW_TEXT) == 0 ? "new"
                                                           : content(w->target);
    snprintf(f, sizeof(f), "%s/old", w->target);
    bool old = exists(f);
    snprintf(f, sizeof(f), "%s/a", w->target);
    bool new_ = strcmp(content(f), NEW_TEXT) == 0;
    return old && !new_ ? "old" : new_ && !old ? "new" : "a mix or nothing";
}

static void restart_and_check(struct world *w, enum cut_scenario sc, bool dir_kind, const char *at,
                              unsigned *old, unsigned *new_)
{
    struct inst_modules *mods = NULL;
    CU_ASSERT_EQUAL_FATAL(open_modules(w, &mods, NULL), FERRY_OK);
    enum inst_module_outcome out;
    CU_ASSERT_EQUAL(inst_modules_recover(mods, &out, NULL), FERRY_OK);
    const char *there = what_is_there(w, dir_kind);
    bool ok = strcmp(there, out == INST_MODULE_COMMITTED ? "new" : "old") == 0;
    if (sc == CUT_HEALTH_FAILED)
        ok = ok && out != INST_MODULE_COMMITTED;
    CU_ASSERT_TRUE(ok);
    if (!ok)
        fprintf(stderr, "cut at %s: %s after recovery (outcome %d)\n", at, there, (int)out);
    *old += strcmp(there, "old") == 0;
    *new_ += strcmp(there, "new") == 0;
    char side[PATH_MAX + 16];
    snprintf(side, sizeof(side), "%s.ferry-prev", w->target);
    CU_ASSERT_FALSE(exists(side));
    snprintf(side, sizeof(side), "%s.ferry-new", w->target);
    CU_ASSERT_FALSE(exists(side));
    inst_modules_free(mods);
}

static void cut_at_every_step(enum cut_scenario sc, bool dir_kind)
{
    struct world w;
    world_init(&w, dir_kind ? "cut-dir" : "cut-file",
               dir_kind ? (const char *const[]){"kind=dir", NULL} : NULL, dir_kind);
    char shims[PATH_MAX / 2], count[PATH_MAX], path[sizeof(saved_path) + PATH_MAX];
    path_in(shims, sizeof(shims), "shims");
    path_in(count, sizeof(count), "shim-count");
    path_in(P.dead, sizeof(P.dead), "power-dead");
    make_shims(shims);
    snprintf(saved_path, sizeof(saved_path), "%s", getenv("PATH"));
    set_env("FERRY_TEST_REAL_PATH", saved_path);
    set_env("FERRY_TEST_SHIM_COUNT", count);
    set_env("FERRY_TEST_DEAD", P.dead);
    snprintf(path, sizeof(path), "%s:%s", shims, saved_path);

    /* Once without a cut, to count the steps of both kinds. */
    unlink(P.dead);
    unlink(count);
    P.ops = 0;
    P.cut_at = UINT64_MAX;
    set_env("FERRY_TEST_SHIM_CUT", "0");
    run_scenario(&w, sc, dir_kind, path);
    uint64_t engine_steps = P.ops;
    unsigned shim_steps = (unsigned)strtoul(content(count), NULL, 10);
    CU_ASSERT_TRUE(engine_steps >= 8);
    CU_ASSERT_TRUE(shim_steps >= 8);
    unsigned old = 0, new_ = 0, cuts = 0;
    char at[64];
    for (uint64_t k = 0; k < engine_steps; k++, cuts++) {
        unlink(P.dead);
        unlink(count);
        P.ops = 0;
        P.cut_at = k;
        run_scenario(&w, sc, dir_kind, path);
        CU_ASSERT_TRUE(power_is_off());
        snprintf(at, sizeof(at), "engine step %llu", (unsigned long long)k);
        restart_and_check(&w, sc, dir_kind, at, &old, &new_);
    }
    for (unsigned j = 1; j <= shim_steps; j++, cuts++) {
        char n[16];
        snprintf(n, sizeof(n), "%u", j);
        unlink(P.dead);
        unlink(count);
        P.ops = 0;
        P.cut_at = UINT64_MAX;
        set_env("FERRY_TEST_SHIM_CUT", n);
        run_scenario(&w, sc, dir_kind, path);
        CU_ASSERT_TRUE(power_is_off());
        snprintf(at, sizeof(at), "module step %u", j);
        restart_and_check(&w, sc, dir_kind, at, &old, &new_);
    }
    set_env("FERRY_TEST_SHIM_CUT", "0");
    CU_ASSERT_TRUE(old > 0);
    if (sc == CUT_CONFIRMED)
        CU_ASSERT_TRUE(new_ > 0);
    printf("\n    %s, %s: %u cuts (%llu engine steps, %u module steps), old %u, new %u ",
           sc == CUT_CONFIRMED ? "confirmed" : "health check failed", dir_kind ? "folder" : "file",
           cuts, (unsigned long long)engine_steps, shim_steps, old, new_);
}

static void file_update_survives_a_cut_at_every_step(void)
{
    cut_at_every_step(CUT_CONFIRMED, false);
    cut_at_every_step(CUT_HEALTH_FAILED, false);
}

static void folder_update_survives_a_cut_at_every_step(void)
{
    cut_at_every_step(CUT_CONFIRMED, true);
    cut_at_every_step(CUT_HEALTH_FAILED, true);
}

const char *const ferry_suite_name = "inst_module";
const struct ferry_test_case ferry_tests[] = {
    {"file update is confirmed", file_update_is_confirmed},
    {"failed health check restores the file", failed_health_check_restores_the_file},
    {"first install rolls back to nothing", first_install_rolls_back_to_nothing},
    {"folder is replaced and restored", folder_is_replaced_and_restored},
    {"failing install is rolled back and says why", failing_install_is_rolled_back_and_says_why},
    {"script module reports the exit status", script_module_reports_the_exit_status},
    {"file update survives a cut at every step", file_update_survives_a_cut_at_every_step},
    {"folder update survives a cut at every step", folder_update_survives_a_cut_at_every_step},
    {NULL, NULL},
};
