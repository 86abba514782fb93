/* The operator's rollout commands (cloud_cli.h's exit statuses):
 *
 *   rollout create --db FILE --store DIR --release ID --waves 1,10,50,100 [rules]
 *   rollout list   --db FILE [--json]
 *   rollout show   ID --db FILE [--json]
 *   rollout pause|resume|next|cancel|retry ID --db FILE [--reason TEXT] [--by NAME]
 *   fleet --store DIR --fleet ID [--require-rollout yes|no]
 *
 * The commands write the inventory only; `ferry-cloud serve` (its
 * controller, cloud_rollout_ctl.h) notices within a second and tells the
 * gateways. Every change is logged in the rollout's decision log with the
 * operator's name (--by, else $SUDO_USER, $USER or the uid) and reason. */
#ifndef FERRY_CLOUD_ROLLOUT_CLI_H
#define FERRY_CLOUD_ROLLOUT_CLI_H

/* argv[0] is "rollout", argv[1] the action. */
int cloud_cmd_rollout(int argc, char **argv);

/* argv[0] is "fleet". */
int cloud_cmd_fleet(int argc, char **argv);

#endif
