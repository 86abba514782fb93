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

/* argv[0] is "publish"; returns the exit status (cloud_subcmd.h). */
int cloud_cmd_publish(int argc, char **argv);

#endif
