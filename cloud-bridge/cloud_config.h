/* The configuration each node last reported while healthy (configuration
 * reports, ferry_config_report.h), kept in the fleet inventory's database
 * (cloud_db.h), table node_config (one row per node), and what an operator does
 * with it:
 *
 *   ferry-cloud config --db DB --node N              prints the stored file
 *   ferry-cloud restore-config --db DB --node N [--path P] PUBLISH-FLAGS...
 *       publishes it back to that node: a release for the `file` update
 *       module (deploy/modules/file) that replaces P (default: the path the
 *       node reported), named for that node alone (manifest `nodes`), with
 *       every other flag as `ferry-cloud publish` takes them (--broker,
 *       --fleet, --store, --key, --version, --seq, --hw-model, --product...).
 *
 * Only reports a node flagged healthy are kept; a newer report (by its ts)
 * replaces an older one; unhealthy ones are logged and dropped, so the copy
 * kept is the last that ran on a healthy node. */
#ifndef FERRY_CLOUD_CONFIG_H
#define FERRY_CLOUD_CONFIG_H

#include "ferry_config_report.h"
#include "ferry_err.h"

#include <stdbool.h>

struct cloud_config;

/* Opens the table in the inventory at path, a file or a PostgreSQL URL
 * (cloud_db_open(): its schema created with create). */
enum ferry_err cloud_config_open(const char *path, bool create, struct cloud_config **out,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;
void cloud_config_close(struct cloud_config *c); /* NULL is fine */

/* Keeps r if it is healthy and not older than what is kept; *kept says
 * whether it was. Errors are the database's. */
enum ferry_err cloud_config_ingest(struct cloud_config *c, const struct ferry_config_report *r,
                                   bool *kept, struct ferry_diag *d) FERRY_MUST_CHECK;

/* The kept report of node; FERRY_E_NOT_FOUND when there is none. */
enum ferry_err cloud_config_get(struct cloud_config *c, const char *node,
                                struct ferry_config_report *out,
                                struct ferry_diag *d) FERRY_MUST_CHECK;

int cloud_cmd_config(int argc, char **argv);
int cloud_cmd_restore_config(int argc, char **argv);

#endif
