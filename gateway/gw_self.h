/* A gateway updating itself (--self-product): its own product line,
 * installed with the install engine ferry-edge uses (install/: slots or
 * files, the simulator, U-Boot, GRUB or a custom bootloader, a trial,
 * confirm or roll back), reported in status records with the gateway as
 * the node, through its own outbox like any node's.
 *
 * When: gw_selfupd.h decides (after the nodes, unless the release's
 * deadline says otherwise). How, once it says INSTALL:
 *   installing   record `installing`; the artifact is copied from the
 *                gateway's verified cache into the inactive slot, a slice
 *                per loop turn (the gateway keeps serving), then re-hashed
 *                from the slot (inst_engine_finish);
 *   trial        the slot is set on trial (two boot attempts), record
 *                `pending-reboot`, and the gateway restarts into it: with
 *                --self-reboot-cmd that command (a real reboot), else the
 *                process stops cleanly and the gateway's main execs itself
 *                again (the simulator plays the bootloader at its start);
 *   after boot   inst_trial.h judges: HEALTH -> once the upstream link is
 *                up (within --self-health-timeout) the --self-health-cmd
 *                runs (no command: the link coming up is the check),
 *                on the loop: the gateway answers nobody while it runs,
 *                so it must be short (--self-health-timeout bounds it);
 *                healthy -> confirm, record `success`; not -> roll back,
 *                record `rolled-back`, and restart into the old slot;
 *                ROLLED_BACK (the bootloader fell back) -> record it.
 * A release that failed or rolled back is remembered (STATE/self/given-up)
 * and not tried again: the operator publishes a higher seq.
 *
 * What survives its own update and rollback: everything in the state and
 * cache folders (outbox, releases, trust, rollouts, cache), which live
 * outside the slots; only the slots and STATE/self/ belong to this module.
 * Status records are numbered from STATE/self/status.seq, reserved in
 * blocks so a seq is never reused across restarts.
 *
 * The loop owns it; hooks run on the loop. */
#ifndef FERRY_GW_SELF_H
#define FERRY_GW_SELF_H

#include "ferry_err.h"
#include "ferry_loop.h"
#include "ferry_manifest.h"
#include "ferry_status.h"
#include "inst_device.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GW_SELF_DEFAULT_HEALTH_TIMEOUT_S 300
#define GW_SELF_TRIAL_ATTEMPTS           2

struct gw_self_hooks {
    void *arg;
    /* The self product's release the gateway would offer (verified,
     * trusted), or NULL; *cached says whether its artifact is cached. */
    const struct ferry_manifest *(*release)(void *arg, bool *cached);
    /* Nodes and clients busy through the gateway now (gw_selfupd.h). */
    size_t (*busy)(void *arg, uint64_t now_ms);
    /* A status record of the gateway itself into its outbox (durable on
     * FERRY_OK; FERRY_E_BUSY and FERRY_E_NOSPACE mean later). */
    enum ferry_err (*report)(void *arg, const struct ferry_status *st, struct ferry_diag *d);
    /* The cached artifact's bytes, until unmap(ref). */
    enum ferry_err (*map)(void *arg, const uint8_t sha[FERRY_SHA256_LEN], const uint8_t **data,
                          size_t *len, void **ref, struct ferry_diag *d);
    void (*unmap)(void *arg, void *ref);
    /* The upstream link is up. */
    bool (*link_up)(void *arg);
    /* Stop cleanly so that main starts the gateway again (the simulator's
     * reboot). */
    void (*restart)(void *arg);
};

struct gw_self_opts {
    const char *gateway_id;
    const char *product;
    const char *hw_model;
    const char *hw_revision;        /* may be NULL */
    const char *dir;                /* STATE/self: created if missing */
    struct inst_device_opts device; /* its state_dir is set to dir */
    const char *health_cmd;         /* NULL: the upstream coming up is the check */
    uint64_t health_timeout_ms;
    const char *reboot_cmd; /* NULL: restart the process (the simulator only) */
};

struct gw_self;

/* Opens the device, powers it on (the simulator plays its bootloader) and
 * judges a trial the last run left: the health check is scheduled, or a
 * rollback reported. Errors name the part at fault (slots, bootloader). */
enum ferry_err gw_self_open(struct ferry_loop *loop, const struct gw_self_opts *o,
                            const struct gw_self_hooks *h, struct gw_self **out,
                            struct ferry_diag *d) FERRY_MUST_CHECK;
void gw_self_free(struct gw_self *s); /* NULL is fine */

/* Something changed (a release, the cache, a node's record, the link):
 * decide again now. Cheap; safe to call often. */
void gw_self_kick(struct gw_self *s);

/* The version running, for logs ("" when the image is unknown). */
const char *gw_self_version(const struct gw_self *s);

#endif
