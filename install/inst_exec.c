#include "inst_exec.h"

#include "ferry_loop.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

static void child(char *const argv[], char *const env[], int out_fd)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    setpgid(0, 0);
    int nul = open("/dev/null", O_RDONLY);
    if (nul >= 0 && nul != STDIN_FILENO) {
        dup2(nul, STDIN_FILENO);
        close(nul);
    }
    if (out_fd != STDOUT_FILENO) {
        dup2(out_fd, STDOUT_FILENO);
        close(out_fd);
    }
    close_range(3, ~0u, 0);
    for (size_t i = 0; env && env[i]; i++)
        putenv(env[i]);
    execv(argv[0], argv);
    fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static void kill_and_reap(pid_t pid, int *status)
{
    kill(-pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR) {
    }
}

enum ferry_err inst_exec_run(char *const argv[], char *const env[], uint64_t timeout_ms, char *out,
                             size_t cap, struct inst_exec_result *res, struct ferry_diag *d)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return ferry_fail(d, FERRY_E_IO, "%s: pipe: %s", argv[0], strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        return ferry_fail(d, FERRY_E_IO, "%s: fork: %s", argv[0], strerror(e));
    }
    if (pid == 0)
        child(argv, env, p[1]);
    close(p[1]);
    setpgid(pid, pid);
    int pfd = pidfd_open(pid, 0);
    size_t got = 0;
    bool open_out = true;
    uint64_t deadline = ferry_now_ms() + timeout_ms;
    memset(res, 0, sizeof(*res));
    int status = 0;
    bool reaped = false;
    for (;;) {
        uint64_t now = ferry_now_ms();
        if (now >= deadline) {
            res->timed_out = true;
            break;
        }
        struct pollfd fds[2] = {{.fd = open_out ? p[0] : -1, .events = POLLIN},
                                {.fd = pfd, .events = POLLIN}};
        uint64_t wait = deadline - now;
        int r = poll(fds, 2, wait > 1000 ? 1000 : (int)wait);
        if (r < 0 && errno != EINTR)
            break;
        if (open_out && (fds[0].revents & (POLLIN | POLLHUP))) {
            char buf[512];
            ssize_t n = read(p[0], buf, sizeof(buf));
            if (n <= 0) {
                open_out = false;
            } else if (cap > 0 && got < cap - 1) {
                size_t take = (size_t)n < cap - 1 - got ? (size_t)n : cap - 1 - got;
                memcpy(out + got, buf, take);
                got += take;
            }
        }
        /* Done once it exited and its output is drained (or it has none). */
        pid_t w = waitpid(pid, &status, WNOHANG);
        reaped = w == pid;
        if (reaped && !open_out)
            break;
        if (reaped) {
            /* Exited: read what is left without waiting for grandchildren. */
            fcntl(p[0], F_SETFL, O_NONBLOCK);
            char buf[512];
            ssize_t n;
            while ((n = read(p[0], buf, sizeof(buf))) > 0) {
                size_t take = cap > 0 && got < cap - 1
                                  ? ((size_t)n < cap - 1 - got ? (size_t)n : cap - 1 - got)
                                  : 0;
                memcpy(out + got, buf, take);
                got += take;
            }
            kill(-pid, SIGKILL); /* anything it left behind */
            break;
        }
        if (pfd < 0 && !open_out)
            usleep(10000);
    }
    if (!reaped)
        kill_and_reap(pid, &status);
    if (pfd >= 0)
        close(pfd);
    close(p[0]);
    if (cap > 0)
        out[got] = '\0';
    if (!res->timed_out) {
        res->exited = WIFEXITED(status);
        res->status = res->exited ? WEXITSTATUS(status) : WTERMSIG(status);
    }
    return FERRY_OK;
}

void inst_exec_describe(const struct inst_exec_result *res, uint64_t timeout_ms, char *buf,
                        size_t cap)
{
    if (res->timed_out)
        snprintf(buf, cap, "timed out after %" PRIu64 " s", timeout_ms / 1000);
    else if (res->exited)
        snprintf(buf, cap, "exit %d", res->status);
    else
        snprintf(buf, cap, "killed by signal %d", res->status);
}
