/* `ferry-cloud bind`: the operator's explicit binding of a node to the
 * gateway that serves it, the only way a node moves between gateways.
 *
 * bind --db FILE --node N --gateway G [--reason TEXT]
 *
 * Until then the cloud refuses (and keeps aside, `status --refused`) every
 * record of the node that comes through another gateway than the one its
 * first record came through (cloud_verdict.h): a gateway cannot write the
 * state of a node it does not serve. After it, records through G are
 * accepted and those through the old gateway refused. The binding and the
 * move are written to the inventory's event log (`status --events`) with
 * the reason, and said on stdout.
 *
 * argv[0] is "bind"; returns the exit status (0, CLOUD_EXIT_FAILED,
 * CLOUD_EXIT_USAGE). */
#ifndef FERRY_CLOUD_BIND_H
#define FERRY_CLOUD_BIND_H

int cloud_cmd_bind(int argc, char **argv);

#endif
