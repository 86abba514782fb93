/* ferry-cloud: pick the subcommand and hand over. */
#include "cloud_bind.h"
#include "cloud_cli.h"
#include "cloud_config.h"
#include "cloud_publish.h"
#include "cloud_root.h"
#include "cloud_rollout_cli.h"
#include "cloud_serve.h"
#include "cloud_status.h"
#include "cloud_timestamp.h"

#include <stdio.h>
#include <string.h>

struct subcommand {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

static const struct subcommand subcommands[] = {
    {"keygen", "generate a release-signing key pair", cloud_cmd_keygen},
    {"sign", "sign an artifact into a release envelope", cloud_cmd_sign},
    {"verify", "check an envelope and its artifact as a device would", cloud_cmd_verify},
    {"publish", "store an artifact and publish its signed release", cloud_cmd_publish},
    {"serve", "stream artifacts to gateways and ingest their status", cloud_cmd_serve},
    {"status", "show the fleet inventory", cloud_cmd_status},
    {"bind", "bind a node to its gateway, or move it to another", cloud_cmd_bind},
    {"root", "make, sign, check and publish root documents (keys)", cloud_cmd_root},
    {"timestamp", "sign and publish a product line's timestamp", cloud_cmd_timestamp},
    {"withdraw", "withdraw a release through a new timestamp", cloud_cmd_withdraw},
    {"config", "print a node's last healthy properties file", cloud_cmd_config},
    {"restore-config", "publish a node's last healthy properties file back to it",
     cloud_cmd_restore_config},
    {"rollout", "progressive rollouts: create, list, show, pause, resume, ...", cloud_cmd_rollout},
    {"fleet", "the fleet's configuration (require rollouts)", cloud_cmd_fleet},
};
#define N_SUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

static void usage(FILE *out)
{
    fprintf(out, "Usage: ferry-cloud SUBCOMMAND [options]\n\n"
                 "The cloud side of Ferry: release keys, signed releases, artifact streaming\n"
                 "and the fleet inventory.\n\n"
                 "Subcommands:\n");
    for (size_t i = 0; i < N_SUBCOMMANDS; i++)
        fprintf(out, "  %-15s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(out, "\n'ferry-cloud SUBCOMMAND --help' describes each one's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < N_SUBCOMMANDS; i++) {
        if (strcmp(argv[1], subcommands[i].name) == 0)
            return subcommands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "ferry-cloud: unknown subcommand '%s' (see 'ferry-cloud --help')\n", argv[1]);
    return 2;
}
