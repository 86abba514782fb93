/* ferry-gateway's daemon: owns the event loop and ties the parts together.
 * Each part decides within its own field (gw_releases what to hold,
 * gw_fetch what to request, gw_cache what is on disk, gw_uplink the MQTT
 * session); this file only routes events between them. */
#ifndef FERRY_GW_DAEMON_H
#define FERRY_GW_DAEMON_H

#include "ferry_err.h"
#include "gw_config.h"

#include <stdbool.h>

/* Runs until SIGINT or SIGTERM, or until its own update asks for a restart
 * (gw_self.h; *restart is then true and the caller starts the gateway
 * again: the simulated bootloader plays at that start). cfg is borrowed.
 * Returns FERRY_OK on a clean stop, or the start-up error (with d naming
 * it). */
enum ferry_err gw_daemon_run(const struct gw_config *cfg, bool *restart,
                             struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
