#include "ferry_loop.h"

#include "ferry_log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

struct loop_fd {
    int fd;
    ferry_loop_fd_cb cb;
    void *arg;
    struct loop_fd *next;
};

struct loop_timer {
    uint64_t id;
    uint64_t deadline;
    ferry_loop_timer_cb cb;
    void *arg;
    struct loop_timer *next; /* sorted by deadline */
};

struct ferry_loop {
    int epfd;
    int sigfd;
    int timerfd;
    bool stop;
    int signo;
    uint64_t next_id;
    struct loop_fd *fds;
    struct loop_timer *timers;
    sigset_t old_mask;
};

uint64_t ferry_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

enum ferry_err ferry_loop_new(struct ferry_loop **out, struct ferry_diag *d)
{
    struct ferry_loop *l = calloc(1, sizeof(*l));
    if (!l)
        return ferry_fail(d, FERRY_E_NOMEM, "loop: out of memory");
    l->epfd = l->sigfd = l->timerfd = -1;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    signal(SIGPIPE, SIG_IGN);
    /* Blocked in every thread created after this, Paho's included, so the
     * signals reach only the signalfd. */
    pthread_sigmask(SIG_BLOCK, &mask, &l->old_mask);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    l->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (l->epfd < 0 || l->sigfd < 0 || l->timerfd < 0) {
        enum ferry_err err = ferry_fail(d, FERRY_E_IO, "loop: %s", strerror(errno));
        ferry_loop_free(l);
        return err;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    ev.data.fd = l->sigfd;
    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->sigfd, &ev);
    ev.data.fd = l->timerfd;
    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->timerfd, &ev);
    *out = l;
    return FERRY_OK;
}

void ferry_loop_free(struct ferry_loop *l)
{
    if (!l)
        return;
    while (l->fds) {
        struct loop_fd *f = l->fds;
        l->fds = f->next;
        free(f);
    }
    while (l->timers) {
        struct loop_timer *t = l->timers;
        l->timers = t->next;
        free(t);
    }
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->sigfd >= 0)
        close(l->sigfd);
    if (l->timerfd >= 0)
        close(l->timerfd);
    pthread_sigmask(SIG_SETMASK, &l->old_mask, NULL);
    free(l);
}

enum ferry_err ferry_loop_add_fd(struct ferry_loop *l, int fd, uint32_t events, ferry_loop_fd_cb cb,
                                 void *arg)
{
    struct loop_fd *f = calloc(1, sizeof(*f));
    if (!f)
        return FERRY_E_NOMEM;
    f->fd = fd;
    f->cb = cb;
    f->arg = arg;
    struct epoll_event ev = {.events = events};
    ev.data.fd = fd;
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        free(f);
        return FERRY_E_IO;
    }
    f->next = l->fds;
    l->fds = f;
    return FERRY_OK;
}

void ferry_loop_del_fd(struct ferry_loop *l, int fd)
{
    for (struct loop_fd **p = &l->fds; *p; p = &(*p)->next) {
        if ((*p)->fd == fd) {
            struct loop_fd *f = *p;
            *p = f->next;
            epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
            free(f);
            return;
        }
    }
}

static void arm_timerfd(struct ferry_loop *l)
{
    struct itimerspec its = {{0, 0}, {0, 0}};
    if (l->timers) {
        uint64_t now = ferry_now_ms();
        uint64_t delay = l->timers->deadline > now ? l->timers->deadline - now : 0;
        /* A zero it_value disarms the timer: fire in 1 ms instead. */
        if (delay == 0)
            delay = 1;
        its.it_value.tv_sec = (time_t)(delay / 1000);
        its.it_value.tv_nsec = (long)(delay % 1000) * 1000000L;
    }
    timerfd_settime(l->timerfd, 0, &its, NULL);
}

uint64_t ferry_loop_timer(struct ferry_loop *l, uint64_t delay_ms, ferry_loop_timer_cb cb,
                          void *arg)
{
    struct loop_timer *t = calloc(1, sizeof(*t));
    if (!t) {
        ferry_log_err("loop: out of memory for a timer");
        return 0;
    }
    t->id = ++l->next_id;
    t->deadline = ferry_now_ms() + delay_ms;
    t->cb = cb;
    t->arg = arg;
    struct loop_timer **p = &l->timers;
    while (*p && (*p)->deadline <= t->deadline)
        p = &(*p)->next;
    t->next = *p;
    *p = t;
    arm_timerfd(l);
    return t->id;
}

void ferry_loop_cancel(struct ferry_loop *l, uint64_t id)
{
    for (struct loop_timer **p = &l->timers; *p; p = &(*p)->next) {
        if ((*p)->id == id) {
            struct loop_timer *t = *p;
            *p = t->next;
            free(t);
            arm_timerfd(l);
            return;
        }
    }
}

static void run_timers(struct ferry_loop *l)
{
    uint64_t buf;
    while (read(l->timerfd, &buf, sizeof(buf)) > 0) {
    }
    uint64_t now = ferry_now_ms();
    /* Unlink each due timer before calling it, so its callback may add or
     * cancel timers freely. */
    while (l->timers && l->timers->deadline <= now && !l->stop) {
        struct loop_timer *t = l->timers;
        l->timers = t->next;
        ferry_loop_timer_cb cb = t->cb;
        void *arg = t->arg;
        free(t);
        cb(arg);
    }
    arm_timerfd(l);
}

static void dispatch_fd(struct ferry_loop *l, int fd, uint32_t events)
{
    for (struct loop_fd *f = l->fds; f; f = f->next) {
        if (f->fd == fd) {
            f->cb(f->arg, events);
            return;
        }
    }
}

int ferry_loop_run(struct ferry_loop *l)
{
    l->stop = false;
    l->signo = 0;
    while (!l->stop) {
        struct epoll_event evs[16];
        int n = epoll_wait(l->epfd, evs, 16, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            ferry_log_err("loop: epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n && !l->stop; i++) {
            int fd = evs[i].data.fd;
            if (fd == l->sigfd) {
                struct signalfd_siginfo si;
                if (read(l->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                    l->signo = (int)si.ssi_signo;
                    l->stop = true;
                }
            } else if (fd == l->timerfd) {
                run_timers(l);
            } else {
                dispatch_fd(l, fd, evs[i].events);
            }
        }
    }
    return l->signo;
}

void ferry_loop_stop(struct ferry_loop *l)
{
    l->stop = true;
}
