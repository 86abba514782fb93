/* libFuzzer target for the gateway's CoAP handlers: arbitrary datagrams sent
 * over loopback UDP to a real gw_coap server (libcoap's parser and dispatch,
 * then the server's own code: who is asking, admission, the link budget,
 * artifacts and manifests in blocks, Observe counting, status records in
 * Block1 pieces, .well-known/core), one pass of libcoap per datagram.
 *
 * An input is a sequence of datagrams, each a big-endian 16-bit length and
 * that many bytes (a short last one is taken as it is), so the fuzzer can
 * build exchanges: a Block1 record in pieces, a registration then a
 * deregistration. The server lives for the whole run, as a gateway does. */
#include "ferry_log.h"
#include "ferry_loop.h"
#include "ferry_sha256.h"
#include "gw_coap.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ART_SIZE 3000

static uint8_t art[ART_SIZE];
static uint8_t art_sha[FERRY_SHA256_LEN];
static const char envelope[] =
    "{\"release\":\"fuzz\",\"padding\":\"................................"
    "..............................................................."
    "..............................................................."
    "..............................................................."
    "......................................\"}";
static struct ferry_loop *loop;
static struct gw_coap *srv;
static int client = -1;

static const uint8_t *hook_manifest(void *arg, const char *product,
                                    const struct gw_coap_requester *who, size_t *len)
{
    (void)arg;
    (void)who;
    if (strcmp(product, "firmware") != 0)
        return NULL;
    *len = sizeof(envelope) - 1;
    return (const uint8_t *)envelope;
}

static enum gw_artifact_state hook_artifact(void *arg, const uint8_t sha[FERRY_SHA256_LEN],
                                            const struct gw_coap_requester *who)
{
    (void)arg;
    if (memcmp(sha, art_sha, FERRY_SHA256_LEN) != 0)
        return sha[0] == 0xfe ? GW_ARTIFACT_FETCHING : GW_ARTIFACT_UNKNOWN;
    /* A node named "withheld" is refused, as a rollout policy would. */
    return strcmp(who->id, "withheld") == 0 ? GW_ARTIFACT_WITHHELD : GW_ARTIFACT_COMPLETE;
}

static enum ferry_err hook_artifact_map(void *arg, const uint8_t sha[FERRY_SHA256_LEN],
                                        const uint8_t **data, size_t *len, void **ref,
                                        struct ferry_diag *d)
{
    (void)arg;
    (void)d;
    if (memcmp(sha, art_sha, FERRY_SHA256_LEN) != 0)
        abort(); /* the server maps only what the hook called complete */
    *data = art;
    *len = sizeof(art);
    *ref = art;
    return FERRY_OK;
}

static void hook_release(void *arg, void *ref)
{
    (void)arg;
    if (ref != art)
        abort();
}

static enum ferry_err hook_status(void *arg, const struct ferry_status *st,
                                  const struct gw_coap_requester *who, struct ferry_diag *d)
{
    (void)arg;
    (void)who;
    /* Some answers of every kind the server maps to a code. */
    switch (st->seq % 4) {
    case 0:
        return FERRY_OK;
    case 1:
        return ferry_fail(d, FERRY_E_BUSY, "fuzz: busy");
    case 2:
        return ferry_fail(d, FERRY_E_PROTOCOL, "fuzz: not yours");
    default:
        return FERRY_E_IO;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ferry_log_init("fuzz_gw_coap", FERRY_LOG_ERROR); /* peers' mistakes are expected */
    for (size_t i = 0; i < sizeof(art); i++)
        art[i] = (uint8_t)(i * 31 + 7);
    ferry_sha256(art, sizeof(art), art_sha);
    if (ferry_loop_new(&loop, NULL) != FERRY_OK)
        abort();
    struct gw_coap_opts o = {
        .addr = "127.0.0.1", .max_downloads = 2, .link_rate = 65536, .max_observers = 16};
    struct gw_coap_hooks h = {.manifest = hook_manifest,
                              .artifact = hook_artifact,
                              .artifact_map = hook_artifact_map,
                              .artifact_release = hook_release,
                              .status = hook_status};
    struct ferry_diag d = {{0}};
    if (gw_coap_new(loop, &o, &h, &srv, &d) != FERRY_OK) {
        fprintf(stderr, "fuzz_gw_coap: %s\n", d.msg);
        abort();
    }
    if (gw_coap_artifact_added(srv, art_sha, sizeof(art)) != FERRY_OK ||
        gw_coap_manifest_changed(srv, "firmware") != FERRY_OK)
        abort();
    client = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(gw_coap_port(srv))};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (client < 0 || connect(client, (struct sockaddr *)&to, sizeof(to)) != 0)
        abort();
    return 0;
}

static void drain(void)
{
    uint8_t buf[2048];
    while (recv(client, buf, sizeof(buf), 0) > 0)
        ;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    while (size > 0) {
        size_t n = size >= 2 ? (size_t)data[0] << 8 | data[1] : 0;
        size_t skip = size >= 2 ? 2 : size;
        data += skip;
        size -= skip;
        if (n > size)
            n = size;
        /* Loopback delivers before send returns; one pass handles it. */
        if (send(client, data, n, 0) >= 0)
            gw_coap_process_now(srv);
        drain();
        data += n;
        size -= n;
    }
    return 0;
}
