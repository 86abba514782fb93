/* `ferry-cloud serve`: the long-running cloud side of the MQTT leg.
 *
 *   serve --broker URL --fleet F --store DIR --db FILE [--instance NAME]
 *
 * On one event-loop thread it
 *   - answers stream requests (stream/req/<gateway>) with chunks read from
 *     the artifact store, QoS 0, on stream/data/<gateway>; when the MQTT
 *     client's buffer is full it stops that batch instead of waiting, and
 *     the gateway asks again after its timeout;
 *   - commits status batches (status/<gateway>) to the inventory in one
 *     transaction and only then acknowledges them on status-ack/<gateway>;
 *   - records the nodes' retained reported state (node/<gateway>/<node>)
 *     under the same (node, seq) rules;
 *   - runs the rollout controller (cloud_rollout_ctl.h) once a second, and
 *     hands it the node descriptions and gateway reports it subscribes to.
 * Requests and batches come through the shared subscription group
 * "ferry-cloud", so several instances split one fleet's work. Sessions are
 * always clean (the broker holds nothing for an instance that is down);
 * every (re)connection subscribes again, and lost connections are retried
 * with jittered exponential backoff. Malformed input is logged, with the reason
 * and the sending gateway, and dropped. SIGINT/SIGTERM stop it cleanly. */
#ifndef FERRY_CLOUD_SERVE_H
#define FERRY_CLOUD_SERVE_H

/* argv[0] is "serve"; returns the exit status (cloud_subcmd.h): 0 after a
 * stop signal, 1 when start-up failed. */
int cloud_cmd_serve(int argc, char **argv);

#endif
