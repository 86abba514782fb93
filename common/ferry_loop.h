/* The one event-loop thread of a Ferry daemon: epoll over file descriptors
 * (MQTT's eventfd, libcoap's epoll fd, sockets), a signalfd for SIGINT and
 * SIGTERM, and one timerfd behind any number of one-shot timers.
 *
 * Callbacks run on the loop thread, one at a time, and may add or cancel fds
 * and timers, or call ferry_loop_stop(). Nothing here is thread-safe: other
 * threads talk to the loop only through an fd (e.g. an eventfd). */
#ifndef FERRY_LOOP_H
#define FERRY_LOOP_H

#include "ferry_err.h"

#include <stdint.h>

struct ferry_loop;

typedef void (*ferry_loop_fd_cb)(void *arg, uint32_t events);
typedef void (*ferry_loop_timer_cb)(void *arg);

/* Creates a loop and blocks SIGINT, SIGTERM (delivered through a signalfd)
 * and ignores SIGPIPE. */
enum ferry_err ferry_loop_new(struct ferry_loop **out, struct ferry_diag *d) FERRY_MUST_CHECK;
void ferry_loop_free(struct ferry_loop *l); /* NULL is fine */

/* Watches fd for events (EPOLLIN etc.). One registration per fd. */
enum ferry_err ferry_loop_add_fd(struct ferry_loop *l, int fd, uint32_t events, ferry_loop_fd_cb cb,
                                 void *arg) FERRY_MUST_CHECK;
void ferry_loop_del_fd(struct ferry_loop *l, int fd);

/* One-shot timer after delay_ms. Returns an id > 0 for ferry_loop_cancel(),
 * or 0 on allocation failure (logged). */
uint64_t ferry_loop_timer(struct ferry_loop *l, uint64_t delay_ms, ferry_loop_timer_cb cb,
                          void *arg);
void ferry_loop_cancel(struct ferry_loop *l, uint64_t id); /* unknown ids are ignored */

/* Runs until ferry_loop_stop() or a SIGINT/SIGTERM. Returns the signal
 * number that stopped it, or 0. */
int ferry_loop_run(struct ferry_loop *l);
void ferry_loop_stop(struct ferry_loop *l);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t ferry_now_ms(void);

#endif
