/* Update modules: software that is not a whole image (an application
 * bundle, a configuration file, a maintenance script) installed in place by
 * an executable, with its own rollback, after Ferry has downloaded and
 * verified the artifact as for an image. Mender's update-module protocol is
 * the model.
 *
 * A module is an executable MODULE_DIR/<name> (the release's media type
 * application/vnd.ferry.module.<name>, ferry_module.h), run as
 *   <module> VERB
 * with stdin from /dev/null, its stdout read (needs-reboot), stderr in
 * ferry-edge's log, and in its environment
 *   FERRY_MODULE_ARTIFACT  the verified artifact (read-only to the module)
 *   FERRY_MODULE_WORK      a folder of its own for this update, kept across
 *                          reboots and power cuts, emptied for the next one
 *   FERRY_MODULE_NAME, FERRY_NODE, FERRY_RELEASE, FERRY_VERSION
 *   FERRY_ARG_<KEY>        each of the manifest's `module` parameters, KEY
 *                          upper-cased (path -> FERRY_ARG_PATH)
 * Verbs (exit 0: done; anything else, or the timeout: failed):
 *   install       apply the artifact, keeping what rollback needs
 *   needs-reboot  print yes or no (nothing: no)
 *   commit        the update stays: drop what rollback would have needed
 *   rollback      put back what install replaced; also after an install
 *                 that stopped half way (a power cut, a failure)
 *   cleanup       remove what the update left behind; always the last verb
 * A verb a module does not know must exit 0 doing nothing. Ferry may run
 * rollback, commit and cleanup more than once for one update (a power cut
 * during them): they must be idempotent. install runs at most once.
 *
 * The node's record (STATE/module/job.rec, replaced atomically, CRC)
 * says which release is under way, which module installs it and how far it
 * got, written before each verb runs:
 *   staging -> staged -> installing -> installed [-> rebooting]
 *           -> committing -> committed | rolling-back -> rolled-back
 * so a power cut at any point ends, at the next start, with the old
 * software or the new: installing, installed and rolling-back are rolled
 * back; committing is committed; rebooting (a module that asked for a
 * reboot) goes on to the health check. The highest seq a module committed
 * is kept across updates: the node's floor for new releases.
 *
 * Files: STATE/module/job.rec, STATE/module/artifact (the download, written
 * at each block's offset like a slot), STATE/module/work/. */
#ifndef FERRY_INST_MODULE_H
#define FERRY_INST_MODULE_H

#include "edge_boot.h"
#include "ferry_err.h"
#include "ferry_manifest.h"
#include "ferry_module.h"

#include <stdbool.h>
#include <stdint.h>

enum inst_module_phase {
    INST_MOD_NONE = 0, /* no module job (an image's release, or nothing) */
    INST_MOD_STAGING,
    INST_MOD_STAGED,
    INST_MOD_INSTALLING,
    INST_MOD_INSTALLED,
    INST_MOD_REBOOTING,
    INST_MOD_COMMITTING,
    INST_MOD_COMMITTED,
    INST_MOD_ROLLING_BACK,
    INST_MOD_ROLLED_BACK,
};

const char *inst_module_phase_name(enum inst_module_phase p); /* static, never NULL */

struct inst_module_job {
    enum inst_module_phase phase;
    uint8_t digest[FERRY_SHA256_LEN]; /* SHA-256 of the release's signed manifest */
    char release_id[FERRY_NAME_MAX + 1];
    char name[FERRY_MODULE_NAME_MAX + 1]; /* "" when phase is NONE */
    struct ferry_module_args args;
    struct edge_image img;
    bool needs_reboot;
    uint64_t committed_seq; /* highest seq any module committed, kept across jobs */
};

struct inst_modules_opts {
    const char *state_dir;  /* module/ is made under it */
    const char *module_dir; /* NULL: no modules (their releases fail with not-found) */
    const char *node_id;
    uint64_t timeout_ms; /* per verb */
    /* Tests: called before every record write and every verb, as one
     * mutating operation of a power supply that may be cut (FERRY_E_IO:
     * the operation does not happen); NULL otherwise. */
    enum ferry_err (*power)(void *ctx, struct ferry_diag *d);
    void *power_ctx;
};

struct inst_modules;

/* Makes STATE/module/ and loads the record (missing: nothing under way;
 * corrupt: FERRY_E_CORRUPT, since guessing could run the wrong verb). */
enum ferry_err inst_modules_open(const struct inst_modules_opts *o, struct inst_modules **out,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;
void inst_modules_free(struct inst_modules *m); /* NULL is fine */

const struct inst_module_job *inst_modules_job(const struct inst_modules *m);
/* True when the record is a module job for the release with this digest. */
bool inst_modules_owns(const struct inst_modules *m, const uint8_t digest[FERRY_SHA256_LEN]);

/* Where a module job stands after a restart (inst_modules_recover()). */
enum inst_module_outcome {
    INST_MODULE_NOTHING,     /* no module install began: nothing to report */
    INST_MODULE_TRIAL,       /* installed, rebooted as it asked: health check next */
    INST_MODULE_COMMITTED,   /* confirmed (finished here if it was under way) */
    INST_MODULE_ROLLED_BACK, /* rolled back (here, if it was under way) */
};

/* The start: finishes what a power cut interrupted, as described above. */
enum ferry_err inst_modules_recover(struct inst_modules *m, enum inst_module_outcome *out,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

/* A release the node accepted (its signed manifest verified): a module's,
 * when m->media_type names one, and then the module must exist
 * (FERRY_E_NOT_FOUND naming it and the folder); for an image nothing is
 * recorded. The record is stored before this returns, before any byte of
 * the artifact is written. Refused (FERRY_E_BUSY) while a module install
 * is under way. */
enum ferry_err inst_modules_prepare(struct inst_modules *m, const uint8_t digest[FERRY_SHA256_LEN],
                                    const struct ferry_manifest *mf,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

/* The download into STATE/module/artifact, as edge_slots.h's for a slot;
 * finish re-hashes it against the record (staged on a match). */
enum ferry_err inst_modules_begin(struct inst_modules *m, const struct edge_image *img,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err inst_modules_resume(struct inst_modules *m, const struct edge_image *img,
                                   uint64_t written, struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err inst_modules_write(struct inst_modules *m, uint64_t off, const void *buf, size_t len,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err inst_modules_sync(struct inst_modules *m, struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err inst_modules_finish(struct inst_modules *m, struct ferry_diag *d) FERRY_MUST_CHECK;

/* install then needs-reboot. On a failed install the module's rollback and
 * cleanup run at once (rolled-back) and the error says how install failed
 * ("module file: install: exit 1"). */
enum ferry_err inst_modules_install(struct inst_modules *m, struct ferry_diag *d) FERRY_MUST_CHECK;
/* The reboot the module asked for is about to happen. */
enum ferry_err inst_modules_rebooting(struct inst_modules *m,
                                      struct ferry_diag *d) FERRY_MUST_CHECK;
/* commit then cleanup; then the floor moves to the job's seq. */
enum ferry_err inst_modules_commit(struct inst_modules *m, struct ferry_diag *d) FERRY_MUST_CHECK;
/* rollback then cleanup; a no-op when nothing was installed. */
enum ferry_err inst_modules_rollback(struct inst_modules *m, struct ferry_diag *d) FERRY_MUST_CHECK;

/* The environment a health check of a module job gets besides its own:
 * FERRY_MODULE_NAME and FERRY_ARG_*; n strings written into env (at most
 * cap), each "NAME=value" in buf (bufcap bytes). */
size_t inst_modules_env(const struct inst_modules *m, char **env, size_t cap, char *buf,
                        size_t bufcap);

#endif
