/* The node's configuration report (ferry_config_report.h): its properties
 * file, STATE/node.cfg, sent to the gateway (POST ferry/config) as part of
 * its twin, so that the cloud keeps the last copy each node reported while
 * healthy and an operator can restore it (README, "Configuration kept
 * upstream").
 *
 * When: edge_report_poke() is called whenever the node is idle; it reports
 * the file if it is whole (its CRC holds: a damaged file is never sent, so
 * the good copy upstream stays the last one) and differs from what the
 * gateway last accepted in this process, which includes once after every
 * start. healthy is the caller's verdict (idle, no trial pending). One
 * report is out at a time; 2.04 settles it; 5.03 or no answer tries again
 * after a backoff (1 s .. 60 s, jittered); another 4.xx drops it until the
 * file changes. A file too large for a report (ferry_config_report.h) is
 * logged once and not sent. */
#ifndef FERRY_EDGE_REPORT_H
#define FERRY_EDGE_REPORT_H

#include "edge_coap.h"
#include "ferry_err.h"
#include "ferry_loop.h"

#include <stdbool.h>
#include <stdint.h>

struct edge_report;

/* coap is borrowed (may be NULL: nothing is sent); path is copied. */
enum ferry_err edge_report_new(struct ferry_loop *loop, struct edge_coap *coap, const char *node_id,
                               const char *path, uint64_t seed, struct edge_report **out,
                               struct ferry_diag *d) FERRY_MUST_CHECK;
void edge_report_free(struct edge_report *r); /* NULL is fine */

void edge_report_poke(struct edge_report *r, bool healthy);

/* The config hook of edge_coap_hooks: the gateway's answer. */
void edge_report_answer(struct edge_report *r, const struct edge_coap_answer *a);

#endif
