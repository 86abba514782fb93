#include "cunit_main.h"

#include "ferry_loop.h"

#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct order {
    struct ferry_loop *loop;
    int seen[8];
    int n;
    uint64_t cancel_id;
};

static void record(struct order *o, int v)
{
    if (o->n < 8)
        o->seen[o->n++] = v;
}

static void timer_a(void *arg)
{
    record(arg, 1);
}

static void timer_b(void *arg)
{
    record(arg, 2);
}

static void timer_cancelled(void *arg)
{
    record(arg, 99);
}

static void timer_stop(void *arg)
{
    struct order *o = arg;
    record(o, 3);
    ferry_loop_stop(o->loop);
}

static void timers_fire_in_deadline_order_and_cancel_works(void)
{
    struct ferry_loop *l = NULL;
    CU_ASSERT_FATAL(ferry_loop_new(&l, NULL) == FERRY_OK);
    struct order o = {.loop = l};
    /* Added out of order on purpose. */
    CU_ASSERT(ferry_loop_timer(l, 60, timer_stop, &o) != 0);
    CU_ASSERT(ferry_loop_timer(l, 20, timer_b, &o) != 0);
    CU_ASSERT(ferry_loop_timer(l, 5, timer_a, &o) != 0);
    uint64_t id = ferry_loop_timer(l, 10, timer_cancelled, &o);
    CU_ASSERT(id != 0);
    ferry_loop_cancel(l, id);
    ferry_loop_cancel(l, 12345); /* unknown: ignored */
    uint64_t t0 = ferry_now_ms();
    CU_ASSERT_EQUAL(ferry_loop_run(l), 0);
    CU_ASSERT(ferry_now_ms() - t0 >= 60);
    CU_ASSERT_EQUAL(o.n, 3);
    CU_ASSERT_EQUAL(o.seen[0], 1);
    CU_ASSERT_EQUAL(o.seen[1], 2);
    CU_ASSERT_EQUAL(o.seen[2], 3);
    ferry_loop_free(l);
}

struct fd_ctx {
    struct ferry_loop *loop;
    int efd;
    int calls;
    uint64_t value;
};

static void on_eventfd(void *arg, uint32_t events)
{
    struct fd_ctx *c = arg;
    (void)events;
    uint64_t v = 0;
    if (read(c->efd, &v, sizeof(v)) == (ssize_t)sizeof(v))
        c->value += v;
    c->calls++;
    ferry_loop_stop(c->loop);
}

static void fd_callback_receives_readiness(void)
{
    struct ferry_loop *l = NULL;
    CU_ASSERT_FATAL(ferry_loop_new(&l, NULL) == FERRY_OK);
    struct fd_ctx c = {.loop = l, .efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
    CU_ASSERT_FATAL(c.efd >= 0);
    CU_ASSERT(ferry_loop_add_fd(l, c.efd, EPOLLIN, on_eventfd, &c) == FERRY_OK);
    uint64_t one = 7;
    CU_ASSERT(write(c.efd, &one, sizeof(one)) == (ssize_t)sizeof(one));
    ferry_loop_run(l);
    CU_ASSERT_EQUAL(c.calls, 1);
    CU_ASSERT_EQUAL(c.value, 7);
    ferry_loop_del_fd(l, c.efd);
    close(c.efd);
    ferry_loop_free(l);
}

static void raise_term(void *arg)
{
    (void)arg;
    raise(SIGTERM);
}

static void sigterm_stops_the_loop_and_is_reported(void)
{
    struct ferry_loop *l = NULL;
    CU_ASSERT_FATAL(ferry_loop_new(&l, NULL) == FERRY_OK);
    CU_ASSERT(ferry_loop_timer(l, 1, raise_term, NULL) != 0);
    CU_ASSERT_EQUAL(ferry_loop_run(l), SIGTERM);
    ferry_loop_free(l);
}

const char *const ferry_suite_name = "loop";
const struct ferry_test_case ferry_tests[] = {
    {"timers_fire_in_deadline_order_and_cancel_works",
     timers_fire_in_deadline_order_and_cancel_works},
    {"fd_callback_receives_readiness", fd_callback_receives_readiness},
    {"sigterm_stops_the_loop_and_is_reported", sigterm_stops_the_loop_and_is_reported},
    {NULL, NULL},
};
