/* Status ingestion at the inventory (bench/README.md, "Status ingestion"):
 * WRITERS processes, each with its own connection (as that many `serve`
 * instances), each ingest BATCHES batches of SIZE records through
 * cloud_inventory_ingest(), the call `serve` makes before it acknowledges a
 * batch: when it returns, the records are committed. Each writer reports
 * about its own nodes (a gateway's), so nothing is refused. Prints the
 * records committed per second over the wall time of all writers.
 *
 *   ingest_bench DB WRITERS BATCHES SIZE
 *
 * DB: an SQLite file (made fresh) or a postgresql:// URL (an empty
 * database). A benchmark: it asserts nothing beyond every batch being
 * committed. */
#include "cloud_inventory.h"
#include "ferry_log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int writer(const char *db, int w, int batches, int size)
{
    struct cloud_inventory *inv = NULL;
    struct ferry_diag d = {{0}};
    if (cloud_inventory_open(db, true, &inv, &d) != FERRY_OK) {
        fprintf(stderr, "writer %d: %s\n", w, d.msg);
        return 1;
    }
    struct ferry_status *recs = calloc((size_t)size, sizeof(*recs));
    struct ferry_record_id *stored = calloc((size_t)size, sizeof(*stored));
    struct ferry_record_refusal *refused = calloc((size_t)size, sizeof(*refused));
    int rc = recs && stored && refused ? 0 : 1;
    for (int b = 0; b < batches && rc == 0; b++) {
        for (int i = 0; i < size; i++) {
            struct ferry_status *st = &recs[i];
            memset(st, 0, sizeof(*st));
            snprintf(st->node, sizeof(st->node), "w%d-n%d", w, i);
            snprintf(st->gateway, sizeof(st->gateway), "gw-%d", w);
            snprintf(st->release_id, sizeof(st->release_id), "firmware-1.0.0-1");
            snprintf(st->version, sizeof(st->version), "1.0.0");
            st->state = FERRY_STATE_DOWNLOADING;
            st->bytes = (uint64_t)b * 1024;
            st->total = 1u << 20;
            st->seq = (uint64_t)b + 1;
            st->ts = 1795780000 + b;
        }
        struct cloud_ingest_out out = {.stored = stored, .refused = refused};
        enum ferry_err err;
        while ((err = cloud_inventory_ingest(inv, recs, (size_t)size, true, &out, &d)) ==
               FERRY_E_BUSY)
            ;
        if (err != FERRY_OK || out.nstored != (size_t)size) {
            fprintf(stderr, "writer %d batch %d: %s\n", w, b, err ? d.msg : "not all stored");
            rc = 1;
        }
    }
    free(recs);
    free(stored);
    free(refused);
    cloud_inventory_close(inv);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: ingest_bench DB WRITERS BATCHES SIZE\n");
        return 2;
    }
    ferry_log_init("ingest_bench", FERRY_LOG_WARN);
    const char *db = argv[1];
    int writers = atoi(argv[2]), batches = atoi(argv[3]), size = atoi(argv[4]);
    if (writers < 1 || writers > 16 || batches < 1 || size < 1 || size > 1000) {
        fprintf(stderr, "ingest_bench: WRITERS 1..16, BATCHES >= 1, SIZE 1..1000\n");
        return 2;
    }
    /* The schema first, so the writers time ingestion only. */
    struct cloud_inventory *inv = NULL;
    struct ferry_diag d = {{0}};
    if (cloud_inventory_open(db, true, &inv, &d) != FERRY_OK) {
        fprintf(stderr, "ingest_bench: %s\n", d.msg);
        return 1;
    }
    cloud_inventory_close(inv);
    double t0 = now_s();
    for (int w = 0; w < writers; w++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0)
            _exit(writer(db, w, batches, size));
    }
    int failed = 0, status = 0;
    for (int w = 0; w < writers; w++) {
        if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed++;
    }
    double secs = now_s() - t0;
    if (failed) {
        fprintf(stderr, "ingest_bench: %d writer(s) failed\n", failed);
        return 1;
    }
    long long records = (long long)writers * batches * size;
    printf("writers %d, batches %d of %d: %lld records in %.3f s: %.0f records/s, %.0f "
           "batches/s\n",
           writers, batches, size, records, secs, (double)records / secs,
           (double)writers * batches / secs);
    return 0;
}
