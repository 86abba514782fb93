/* `ferry-cloud status`: what the fleet inventory says about each node. */
#ifndef FERRY_CLOUD_STATUS_H
#define FERRY_CLOUD_STATUS_H

/* Exit statuses of --wait besides cloud_subcmd.h's 0, CLOUD_EXIT_FAILED (the
 * inventory could not be read) and CLOUD_EXIT_USAGE. */
#define CLOUD_STATUS_EXIT_UNSUCCESSFUL 3 /* settled, but some node did not succeed */
#define CLOUD_STATUS_EXIT_TIMEOUT      4 /* --timeout passed before it settled */

/* status --db FILE [--json] [--release R] [--gateway G] [--state S]
 *        [--watch] [--interval T] [--wait [--timeout T] [--expect N]]
 *        [--refused | --events]
 *
 * Once: prints one line per node (a table, or with --json a JSON array of
 * objects with node, gateway, release, version, state, bytes, total, error,
 * message, seq, ts, updated_at and refused) on stdout. `refused` counts the
 * node's records the cloud refused for good since its latest one was
 * stored; the table marks such a node.
 *
 * --refused lists those refused records instead (the filters apply to
 * them), and --events the inventory's event log (bindings and moves), each
 * once, as a table or with --json as an array (ferry_batch.h).
 *
 * --watch: a live view, read again every --interval. On a terminal it is
 * redrawn in place with ANSI sequences (colour unless NO_COLOR is set);
 * otherwise one line is printed per node each time it reports (a record
 * with a new seq), plus a count by state when those change. It ends on
 * SIGINT or SIGTERM (exit 0), or when --wait is satisfied.
 *
 * --wait: polls until every targeted node (each node matching the filters,
 * and at least --expect of them, default 1) has reached a final state
 * (success, failed, rolled-back, rejected). Without --watch it then prints
 * the listing of the pass that settled it. A one-line verdict goes to
 * stderr; a success with records refused since does not count as one. The
 * exit status is 0 when every targeted node succeeded, else
 * CLOUD_STATUS_EXIT_UNSUCCESSFUL, or CLOUD_STATUS_EXIT_TIMEOUT, or 128 plus
 * the signal when interrupted.
 *
 * A record's version and message are the node's own text: every view but
 * --json prints them with control characters (C0, DEL, C1), bidirectional
 * controls, bytes that are not UTF-8 and the backslash escaped (\xHH,
 * \u{HHHH}, \\), so a node cannot drive the operator's terminal.
 *
 * argv[0] is "status"; returns the exit status. */
int cloud_cmd_status(int argc, char **argv);

#endif
