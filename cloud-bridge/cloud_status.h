/* `ferry-cloud status`: what the fleet inventory says about each node. */
#ifndef FERRY_CLOUD_STATUS_H
#define FERRY_CLOUD_STATUS_H

/* status --db FILE [--json] [--release R] [--gateway G] [--state S]
 * Prints one line per node (a table, or with --json a JSON array of objects
 * with node, gateway, release, version, state, bytes, total, error, message,
 * seq, ts and updated_at) on stdout. argv[0] is "status"; returns the exit
 * status (cloud_subcmd.h). */
int cloud_cmd_status(int argc, char **argv);

#endif
