#include "mqtt_fixture.h"

#include "cunit_main.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int fx_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(s);
    return port;
}

bool fx_port_accepts(int port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return false;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(s);
    return ok;
}

void fx_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- mosquitto ---------------------------------------------------------- */

#define BROKERS_MAX 8
static struct fx_broker *running[BROKERS_MAX];

static void stop_all(void)
{
    for (int i = 0; i < BROKERS_MAX; i++) {
        if (running[i])
            fx_broker_stop(running[i]);
    }
}

static void track(struct fx_broker *b)
{
    static bool registered;
    if (!registered) {
        atexit(stop_all);
        registered = true;
    }
    for (int i = 0; i < BROKERS_MAX; i++) {
        if (running[i] == b)
            return;
    }
    for (int i = 0; i < BROKERS_MAX; i++) {
        if (!running[i]) {
            running[i] = b;
            return;
        }
    }
}

void fx_broker_stop(struct fx_broker *b)
{
    if (b->pid > 0) {
        kill(b->pid, SIGTERM);
        waitpid(b->pid, NULL, 0);
        b->pid = -1;
    }
}

static bool all_ports_accept(const struct fx_broker *b)
{
    for (int i = 0; i < b->nports; i++) {
        if (!fx_port_accepts(b->ports[i]))
            return false;
    }
    return true;
}

/* Runs mosquitto on b->conf; false if it exits early (a port was taken
 * meanwhile) or never listens. */
static bool launch(struct fx_broker *b)
{
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a crashed test */
        /* A ferry_loop blocks SIGTERM and ignores SIGPIPE; exec keeps both. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        int fd = open(b->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execl("/usr/sbin/mosquitto", "mosquitto", "-c", b->conf, (char *)NULL);
        execlp("mosquitto", "mosquitto", "-c", b->conf, (char *)NULL);
        _exit(127);
    }
    b->pid = pid;
    for (int i = 0; i < FX_WAIT_MS / 50; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            b->pid = -1;
            return false;
        }
        if (all_ports_accept(b)) {
            track(b);
            return true;
        }
        fx_sleep_ms(50);
    }
    fx_broker_stop(b);
    return false;
}

bool fx_broker_start(struct fx_broker *b, const char *name, int nports, fx_conf_writer w, void *arg)
{
    memset(b, 0, sizeof(*b));
    b->pid = -1;
    b->nports = nports < FX_PORTS_MAX ? nports : FX_PORTS_MAX;
    snprintf(b->conf, sizeof(b->conf), "%s/%s.conf", ferry_test_tmpdir(), name);
    snprintf(b->log, sizeof(b->log), "%s/%s.log", ferry_test_tmpdir(), name);
    for (int attempt = 0; attempt < 5; attempt++) {
        for (int i = 0; i < b->nports; i++)
            b->ports[i] = fx_free_port();
        FILE *f = fopen(b->conf, "w");
        if (!f)
            return false;
        bool ok = w(f, b->ports, b->nports, arg);
        if (fclose(f) != 0 || !ok)
            return false;
        if (launch(b))
            return true;
    }
    fprintf(stderr, "mosquitto did not start, see %s\n", b->log);
    return false;
}

bool fx_broker_restart(struct fx_broker *b)
{
    fx_broker_stop(b);
    for (int attempt = 0; attempt < 10; attempt++) {
        if (launch(b))
            return true;
        fx_sleep_ms(200);
    }
    return false;
}

bool fx_plain_conf(FILE *f, const int *ports, int n, void *arg)
{
    (void)n;
    fprintf(f,
            "per_listener_settings false\nuser root\npersistence false\nlistener %d 127.0.0.1\n%s",
            ports[0], arg ? (const char *)arg : "allow_anonymous true\n");
    return true;
}

/* ---- a scripted broker ------------------------------------------------- */

/* Reads n bytes; a receive timeout only gives a look at stop. */
static bool read_full(int fd, uint8_t *buf, size_t n, _Atomic bool *stop)
{
    while (n > 0) {
        ssize_t r = recv(fd, buf, n, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR) && !*stop)
            continue;
        if (r <= 0)
            return false;
        buf += r;
        n -= (size_t)r;
    }
    return true;
}

static bool send_bytes(int fd, const uint8_t *buf, size_t n)
{
    return send(fd, buf, n, MSG_NOSIGNAL) == (ssize_t)n;
}

/* One MQTT packet: the type nibble and up to cap bytes of body. */
static bool read_packet(int fd, int *type, uint8_t *body, size_t cap, size_t *len,
                        _Atomic bool *stop)
{
    uint8_t b;
    if (!read_full(fd, &b, 1, stop))
        return false;
    *type = b >> 4;
    size_t rl = 0;
    for (int shift = 0;; shift += 7) {
        if (shift > 21 || !read_full(fd, &b, 1, stop))
            return false;
        rl |= (size_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            break;
    }
    *len = rl;
    return rl <= cap && (rl == 0 || read_full(fd, body, rl, stop));
}

/* A varint at *p (advanced past it); false past end. */
static bool read_varint(const uint8_t **p, const uint8_t *end, size_t *out)
{
    size_t v = 0;
    for (int shift = 0; shift <= 21 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (size_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Answers one SUBSCRIBE (its first filter only, as ferry_mqtt sends them):
 * false when the script ends the connection over it. */
static bool answer_subscribe(struct fx_fake *fb, int c, const uint8_t *body, size_t len)
{
    const uint8_t *p = body + 2, *end = body + len;
    size_t plen = 0, flen;
    fb->subscribes++;
    if (len < 2 || !read_varint(&p, end, &plen) || (size_t)(end - p) < plen + 2)
        return false;
    p += plen;
    flen = (size_t)p[0] << 8 | p[1];
    p += 2;
    if ((size_t)(end - p) < flen)
        return false;
    char filter[256];
    snprintf(filter, sizeof(filter), "%.*s", (int)flen, (const char *)p);
    bool shared = strncmp(filter, "$share/", 7) == 0;
    if (shared)
        fb->shared_seen++;
    if (shared && fb->script == FX_KICK_ON_SHARED) {
        static const uint8_t kick[] = {0xe0, 0x02, 0x9e, 0x00};
        send_bytes(c, kick, sizeof(kick));
        return false;
    }
    uint8_t code = 0x01;
    if (fb->script == FX_DENY_SUBSCRIBE || strstr(filter, "denied")) {
        code = 0x87;
        fb->denied++;
    }
    const uint8_t suback[] = {0x90, 0x04, body[0], body[1], 0x00, code};
    return send_bytes(c, suback, sizeof(suback));
}

static void fake_serve(struct fx_fake *fb, int c)
{
    enum fx_script script = fb->script;
    static const uint8_t connack_denied[] = {0x20, 0x03, 0x00, 0x87, 0x00};
    static const uint8_t kick[] = {0xe0, 0x02, 0x8e, 0x00}; /* session taken over */
    static const uint8_t pingresp[] = {0xd0, 0x00};
    uint8_t body[4096];
    size_t len;
    int type;
    if (!read_packet(c, &type, body, sizeof(body), &len, &fb->stop) || type != 1)
        return;
    fb->got_connect = true;
    if (script == FX_SILENT) { /* never answers; waits for the client to go */
        while (!fb->stop && read_packet(c, &type, body, sizeof(body), &len, &fb->stop))
            ;
        return;
    }
    if (script == FX_REFUSE_CONNECT) {
        send_bytes(c, connack_denied, sizeof(connack_denied));
        return;
    }
    uint8_t connack[5 + sizeof(fb->props)] = {0x20, (uint8_t)(3 + fb->nprops), 0x00, 0x00,
                                              (uint8_t)fb->nprops};
    memcpy(connack + 5, fb->props, fb->nprops);
    if (!send_bytes(c, connack, 5 + fb->nprops))
        return;
    if (script == FX_KICK) {
        send_bytes(c, kick, sizeof(kick));
        shutdown(c, SHUT_WR);
    }
    while (!fb->stop && read_packet(c, &type, body, sizeof(body), &len, &fb->stop)) {
        if (type == 8 && len >= 2) {
            if (!answer_subscribe(fb, c, body, len))
                return;
        } else if (type == 12) {
            send_bytes(c, pingresp, sizeof(pingresp));
        } else if (type == 14) {
            return;
        }
    }
}

static void *fake_run(void *arg)
{
    struct fx_fake *fb = arg;
    while (!fb->stop) {
        struct pollfd p = {.fd = fb->listen_fd, .events = POLLIN};
        if (poll(&p, 1, 100) != 1)
            continue;
        int c = accept(fb->listen_fd, NULL, NULL);
        if (c < 0)
            continue;
        fb->connections++;
        struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        fake_serve(fb, c);
        close(c);
    }
    return NULL;
}

bool fx_fake_start(struct fx_fake *fb, enum fx_script script)
{
    fb->script = script;
    fb->got_connect = false;
    fb->connections = fb->subscribes = fb->denied = fb->shared_seen = 0;
    fb->stop = false;
    fb->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fb->listen_fd < 0)
        return false;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    if (bind(fb->listen_fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        listen(fb->listen_fd, 4) == 0 &&
        getsockname(fb->listen_fd, (struct sockaddr *)&a, &alen) == 0) {
        fb->port = ntohs(a.sin_port);
        if (pthread_create(&fb->thread, NULL, fake_run, fb) == 0)
            return true;
    }
    close(fb->listen_fd);
    return false;
}

void fx_fake_stop(struct fx_fake *fb)
{
    fb->stop = true;
    pthread_join(fb->thread, NULL);
    close(fb->listen_fd);
}
