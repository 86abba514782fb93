/* The ferry-cloud subcommands. Each takes the arguments after the program
 * name (argv[0] is the subcommand's own name), parses them through its option
 * table (flags and --config FILE), and returns the process exit status:
 *   0  success (results on stdout)
 *   1  the operation failed: one line "ferry-cloud <cmd>: <what is wrong>"
 *      on stderr
 *   2  usage error (bad or missing flag), same one-line form
 * --help prints the subcommand's usage on stdout and returns 0. */
#ifndef FERRY_CLOUD_CLI_H
#define FERRY_CLOUD_CLI_H

/* keygen --out-dir DIR: new release-signing key; prints its key id. */
int cloud_cmd_keygen(int argc, char **argv);

/* sign --key K --artifact F --version V --seq N --hw-model M ... --out FILE */
int cloud_cmd_sign(int argc, char **argv);

/* verify --trust KEYRING --manifest ENVELOPE --artifact F [policy flags] */
int cloud_cmd_verify(int argc, char **argv);

#endif
