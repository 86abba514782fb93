/* ferry-edge's process: wires the event loop, the CoAP client
 * (edge_coap.h), the install state machine (edge_fsm.h), the trust it
 * verifies releases with (edge_meta.h: --trust and the roots and timestamps
 * the gateway passes on, which go to the state machine as they change and
 * make the manifest on offer be fetched again), the install engine
 * (inst_engine.h: the slots, by path or as files in the state folder, and
 * the bootloader --bootloader names), the status journal (edge_journal.h)
 * and the node's commands.
 *
 * At start it runs the boot step (inst_engine_start(): which slot booted,
 * and what follows for Ferry's state and the bootloader's) and hands the
 * state before and after it, with the saved job (STATE/job.rec), to the
 * state machine. With --bootloader sim the start first plays the
 * bootloader: the boot script on STATE/bootenv, as a power-on would.
 *
 * Reboots: EDGE_ACT_REBOOT, a rolled-back trial still running, or a start
 * that finds the trial slot out of Ferry's attempts. With --reboot-cmd the
 * daemon gives undelivered status records up to 5 s to reach the gateway
 * (they stay in the journal either way), runs the command (/bin/sh -c, in
 * its own process group, --cmd-timeout) and waits to be stopped; manifests
 * are ignored meanwhile. A reboot command that fails during a trial fails
 * the release and disarms the trial; one that fails after a rollback is
 * tried again every minute. Without --reboot-cmd (sim only) the reboot
 * happens in process: the simulated bootloader boots again.
 *
 * Status records go to the journal first and are posted from there one at a
 * time, oldest first: 2.04 drops the record; 5.03 waits its Max-Age; no
 * answer or 5.xx backs off (1 s .. 60 s, jittered); 4.00, 4.03, 4.13 and
 * 4.15 (the gateway will never take it) drop it with a warning.
 *
 * Update modules (--module-dir, inst_module.h): a release for a module is
 * recorded (STATE/module/job.rec) before its download begins, downloaded
 * into STATE/module/artifact instead of a slot, installed by the module
 * when the state machine asks for the trial, and health-checked in place
 * (edge_fsm_installed()), with a reboot only when the module asks for one.
 * Module verbs run to completion on the loop thread (--module-timeout): the
 * node has nothing else to do while its software changes.
 *
 * --busy-cmd and --health-cmd run as `/bin/sh -c CMD` in their own process
 * group with FERRY_NODE, FERRY_VERSION and FERRY_SLOT (the slot's path)
 * set (for a module's release: FERRY_MODULE_NAME and FERRY_ARG_* instead of
 * FERRY_SLOT), stdin from /dev/null. The loop watches them through a pidfd and kills
 * the group after --cmd-timeout, so a command never blocks the loop. A busy
 * command that fails to run or times out counts as busy; a health command,
 * as unhealthy. Without a busy command the node is never busy; without a
 * health command every trial is healthy.
 *
 * Everything runs on the loop thread. edge_daemon_free() is a clean stop:
 * what is durable stays (a journal record not yet sent, a download's last
 * checkpoint, a trial), so freeing at any point behaves like a crash that
 * also closed the files. In particular a stop during a trial boot's health
 * check is a trial boot that never confirmed: the next start's boot
 * decision spends another attempt or rolls back (--trial-attempts). */
#ifndef FERRY_EDGE_DAEMON_H
#define FERRY_EDGE_DAEMON_H

#include "edge_config.h"
#include "edge_fsm.h"
#include "ferry_err.h"
#include "ferry_loop.h"

#include <stddef.h>

#define EDGE_JOB_FILE "job.rec"

struct edge_daemon;

/* Creates the state folder if needed, loads the trust, opens the slots and
 * takes the boot decision, opens the journal, starts the state machine and
 * the CoAP client. cfg must hold checked values (edge_config_parse()) and
 * may be freed afterwards. Errors name what failed (keyring, state folder,
 * boot records, gateway URI, PSK file). */
enum ferry_err edge_daemon_new(struct ferry_loop *loop, const struct edge_config *cfg,
                               struct edge_daemon **out, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Stops: kills a running command, drops CoAP requests, closes everything.
 * NULL is fine. */
void edge_daemon_free(struct edge_daemon *dm);

enum edge_phase edge_daemon_phase(const struct edge_daemon *dm);
/* Status records not yet stored by the gateway. */
size_t edge_daemon_unsent(const struct edge_daemon *dm);

#endif
