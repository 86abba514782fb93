/* `ferry-cloud publish`: put a release in front of the fleet.
 *
 *   publish --broker URL --fleet F --store DIR --artifact FILE
 *           (--key KEY --version V --seq N --hw-model M [...] [sign options]
 *            | --manifest SIGNED_ENVELOPE)
 *
 * Imports the artifact into the content-addressed store (from which `serve`
 * streams it to gateways), signs a new envelope over the stored bytes, or
 * checks that a given envelope describes them, then publishes the envelope
 * retained, QoS 1, on ferry/v1/<fleet>/release/<product>. It returns only
 * once the broker has acknowledged that publish (or the timeout passed),
 * and prints the release id on stdout. */
#ifndef FERRY_CLOUD_PUBLISH_H
#define FERRY_CLOUD_PUBLISH_H

#include "cloud_subcmd.h"
#include "ferry_err.h"

#include <stddef.h>
#include <stdint.h>

/* argv[0] is "publish"; returns the exit status (cloud_subcmd.h). */
int cloud_cmd_publish(int argc, char **argv);

/* Connects through the session keeper (client_id NULL:
 * ferry-cloud-publish-<pid>; the brokers of mqtt in turn), publishes payload
 * retained at QoS 1 on topic and returns once a broker acknowledged it;
 * reconnects and retries with backoff until then. A broker that keeps no
 * retained messages or cannot take the payload is skipped as unfit
 * (ferry_keeper.h). FERRY_E_BUSY after timeout seconds without an
 * acknowledgement, FERRY_E_IO for a failure that retrying cannot mend or a
 * signal. The one way the cloud's commands put retained documents
 * (releases, roots, timestamps) on the broker. */
enum ferry_err cloud_publish_retained(const struct ferry_keeper_conf *mqtt, const char *client_id,
                                      int64_t timeout, const char *topic, const uint8_t *payload,
                                      size_t len, struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
