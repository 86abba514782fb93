/* Which wave, and which window, a node of a rollout falls into. Pure.
 *
 * Waves. A node matching a named group (waves given as key=value, which
 * come first) is in the first such wave. Every other node gets a bucket,
 * 0..9999, from the first 8 bytes of
 *   SHA-256("ferry-rollout-wave" NUL <rollout id in decimal> NUL <node id>)
 * read big-endian, modulo 10000, and falls into the first percentage wave
 * whose cumulative share (in basis points) is above its bucket. The answer
 * depends only on the rollout, the node and its description, so it is the
 * same after any restart, for any `serve` instance, and a node that appears
 * later (a new device, one back from months offline) takes its place
 * without moving anyone else. Different rollouts shuffle differently, so
 * the same nodes are not always first. Shares are statistical: with few
 * nodes a wave can be empty or larger than its share.
 *
 * Windows. A node takes the first of the plan's windows whose selection it
 * matches (a window with no selection matches every node); none: -1, the
 * node installs whenever it is ready. */
#ifndef FERRY_CLOUD_ROLLOUT_ASSIGN_H
#define FERRY_CLOUD_ROLLOUT_ASSIGN_H

#include "ferry_rollout.h"

#include <stdint.h>

uint32_t cloud_rollout_bucket(uint64_t rollout_id, const char *node);

/* The wave index, 0..p->nwaves-1 (the last wave is 100 %, so every node has one). */
unsigned cloud_rollout_wave(const struct ferry_rollout_plan *p, uint64_t rollout_id,
                            const struct ferry_sel_subject *who);

/* The window index, or -1. */
int cloud_rollout_window(const struct ferry_rollout_plan *p, const struct ferry_sel_subject *who);

#endif
