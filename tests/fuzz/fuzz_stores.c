/* libFuzzer target for the journals stores read back from disk after a
 * crash: the edge's status journal (edge_journal.h), the gateway's status
 * outbox journal and ack journal (gw_outbox.h) and the gateway cache's
 * partial-download journal (gw_cache.h). The first input byte picks the
 * store, the rest is the file's content, written into a fresh folder. Each
 * store must open (or refuse with a message), trust nothing damaged, and
 * keep working:
 *   - status journal: every pending record is a valid status record, in
 *     strictly increasing seq; a record appended after draining them comes
 *     back alone after a reopen, with a seq above all of them;
 *   - outbox: every pending record is a valid status record; acking all of
 *     them empties the outbox, and a record appended then is what a reopen
 *     finds, alone;
 *   - cache: whatever .crc journal lies beside a .part holding a prefix of
 *     the artifact (one byte of it possibly flipped), the resume point is
 *     chunk-aligned and within the artifact, and finishing the download from
 *     there yields the artifact (nothing damaged is trusted);
 *   - update-module job record (inst_module.h, STATE/module/job.rec, tried
 *     also with its CRC made right): a record that loads holds a known
 *     phase and terminated strings; recovery with no modules installed
 *     leaves a record that loads again.
 * A violation aborts. */
#include "edge_journal.h"
#include "ferry_bytes.h"
#include "ferry_crc32.h"
#include "ferry_fs.h"
#include "ferry_hex.h"
#include "ferry_log.h"
#include "ferry_sha256.h"
#include "gw_cache.h"
#include "gw_outbox.h"
#include "inst_module.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHUNK    16384 /* FERRY_STREAM_MIN_CHUNK */
#define ART_SIZE (2 * CHUNK + 1000)

static char root[64];
static uint8_t artifact[ART_SIZE];
static uint8_t artifact_sha[FERRY_SHA256_LEN];

static int remove_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

static void remove_root(void)
{
    if (nftw(root, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        abort();
}

static void put_file(const char *path, const uint8_t *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len) || close(fd) != 0)
        abort();
}

static void setup(void)
{
    if (root[0])
        return;
    /* tmpfs when there is one: the stores fsync at every step. */
    struct stat sb;
    const char *tmp = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : "/tmp";
    snprintf(root, sizeof(root), "%s/ferry-fuzz-stores-%ld", tmp, (long)getpid());
    atexit(remove_root);
    ferry_log_init("fuzz", FERRY_LOG_ERROR);
    for (size_t i = 0; i < sizeof(artifact); i++)
        artifact[i] = (uint8_t)(i * 131 + (i >> 8));
    ferry_sha256(artifact, sizeof(artifact), artifact_sha);
}

/* An empty folder under root for this input. */
static void fresh(char dir[PATH_MAX], const char *name)
{
    remove_root();
    if (mkdir(root, 0700) != 0)
        abort();
    snprintf(dir, PATH_MAX, "%s/%s", root, name);
    if (mkdir(dir, 0700) != 0)
        abort();
}

static struct ferry_status a_status(const char *node, uint64_t seq)
{
    struct ferry_status st;
    memset(&st, 0, sizeof(st));
    snprintf(st.node, sizeof(st.node), "%s", node);
    snprintf(st.release_id, sizeof(st.release_id), "fw-1");
    snprintf(st.version, sizeof(st.version), "1.0.0");
    st.state = FERRY_STATE_DOWNLOADING;
    st.bytes = 1;
    st.total = 2;
    st.seq = seq;
    st.ts = 1700000000;
    return st;
}

static void status_journal(const uint8_t *data, size_t size)
{
    char dir[PATH_MAX], path[PATH_MAX + 32];
    fresh(dir, "edge");
    snprintf(path, sizeof(path), "%s/status.journal", dir);
    put_file(path, data, size);
    struct edge_journal *j = NULL;
    struct ferry_diag d = {{0}};
    if (edge_journal_open(dir, NULL, &j, &d) != FERRY_OK) {
        if (!d.msg[0])
            abort();
        return;
    }
    uint8_t buf[FERRY_STATUS_MAX_BYTES];
    size_t len = 0;
    uint64_t seq = 0, last = 0;
    enum ferry_err err;
    while ((err = edge_journal_head(j, buf, sizeof(buf), &len, &seq, NULL)) != FERRY_E_NOT_FOUND) {
        struct ferry_status st;
        if (err != FERRY_OK || ferry_status_from_cbor(buf, len, &st, NULL) != FERRY_OK ||
            seq <= last || st.seq != seq || edge_journal_ack(j, seq, NULL) != FERRY_OK)
            abort();
        last = seq;
    }
    struct ferry_status st = a_status("node-1", 0);
    uint64_t mine = 0;
    if (edge_journal_append(j, &st, &mine, NULL) != FERRY_OK || mine <= last)
        abort();
    edge_journal_free(j);
    if (edge_journal_open(dir, NULL, &j, NULL) != FERRY_OK ||
        edge_journal_head(j, buf, sizeof(buf), &len, &seq, NULL) != FERRY_OK || seq != mine ||
        edge_journal_ack(j, seq, NULL) != FERRY_OK || edge_journal_pending(j) != 0)
        abort();
    edge_journal_free(j);
}

static void outbox(const uint8_t *data, size_t size, bool acks)
{
    char dir[PATH_MAX], path[PATH_MAX + 32];
    fresh(dir, "gw");
    snprintf(path, sizeof(path), "%s/outbox", dir);
    if (mkdir(path, 0700) != 0)
        abort();
    snprintf(path, sizeof(path), "%s/outbox/%s", dir, acks ? "acks" : "journal");
    put_file(path, data, size);
    struct gw_outbox_opts o = {.state_dir = dir,
                               .gateway_id = "gw-1",
                               .max_records = 4096,
                               .max_bytes = GW_OUTBOX_BYTES_LIMIT};
    struct gw_outbox *ob = NULL;
    struct ferry_diag d = {{0}};
    if (gw_outbox_open(&o, &ob, &d) != FERRY_OK) {
        if (!d.msg[0])
            abort();
        return;
    }
    static struct gw_outbox_item items[64];
    struct ferry_record_id ids[64];
    size_t n = 0;
    do {
        if (gw_outbox_peek(ob, items, 64, &n, NULL) != FERRY_OK)
            abort();
        for (size_t i = 0; i < n; i++) {
            char *json = NULL;
            size_t json_len = 0;
            if (ferry_status_to_json(&items[i].st, &json, &json_len, NULL) != FERRY_OK)
                abort(); /* the encoder checks a record as the decoder does */
            free(json);
            snprintf(ids[i].node, sizeof(ids[i].node), "%s", items[i].st.node);
            ids[i].seq = items[i].st.seq;
        }
        size_t acked = 0;
        if (n && (gw_outbox_ack(ob, ids, n, &acked, NULL) != FERRY_OK || acked == 0))
            abort();
    } while (n);
    struct ferry_status st = a_status("node-fuzz", 7);
    if (gw_outbox_append(ob, &st, NULL, NULL) != FERRY_OK)
        abort();
    gw_outbox_close(ob);
    if (gw_outbox_open(&o, &ob, NULL) != FERRY_OK ||
        gw_outbox_peek(ob, items, 64, &n, NULL) != FERRY_OK || n != 1 ||
        strcmp(items[0].st.node, "node-fuzz") != 0 || items[0].st.seq != 7)
        abort();
    gw_outbox_close(ob);
}

static void cache_journal(const uint8_t *data, size_t size)
{
    char dir[PATH_MAX], path[PATH_MAX + 160], hex[2 * FERRY_SHA256_LEN + 1];
    if (size < 3)
        return;
    fresh(dir, "cache");
    snprintf(path, sizeof(path), "%s/partial", dir);
    if (mkdir(path, 0700) != 0)
        abort();
    ferry_hex_encode(artifact_sha, FERRY_SHA256_LEN, hex);
    /* The .part: a prefix of the artifact, one byte of it maybe flipped. */
    uint8_t part[ART_SIZE];
    size_t part_len = ((size_t)data[0] << 8 | data[1]) % (ART_SIZE + 1);
    memcpy(part, artifact, part_len);
    if (part_len && data[2])
        part[((size_t)data[2] * 131) % part_len] ^= data[2];
    snprintf(path, sizeof(path), "%s/partial/%s.part", dir, hex);
    put_file(path, part, part_len);
    snprintf(path, sizeof(path), "%s/partial/%s.crc", dir, hex);
    put_file(path, data + 3, size - 3);
    struct gw_cache_opts o = {.dir = dir, .quota = UINT64_C(1) << 30};
    struct gw_cache *c = NULL;
    struct gw_cache_part *p = NULL;
    struct ferry_diag d = {{0}};
    if (gw_cache_open(&o, &c, &d) != FERRY_OK) {
        if (!d.msg[0])
            abort();
        return;
    }
    if (gw_cache_part_open(c, artifact_sha, ART_SIZE, CHUNK, NULL, &p, &d) != FERRY_OK)
        abort();
    uint64_t end = gw_cache_part_end(p);
    if (end > ART_SIZE || (end % CHUNK != 0 && end != ART_SIZE))
        abort();
    while (end < ART_SIZE) {
        size_t len = ART_SIZE - end < CHUNK ? (size_t)(ART_SIZE - end) : CHUNK;
        bool written = false;
        if (gw_cache_part_write(p, end, artifact + end, len, &written, NULL) != FERRY_OK ||
            !written)
            abort();
        end += len;
    }
    if (gw_cache_part_finish(p, &d) != FERRY_OK || !gw_cache_has(c, artifact_sha, NULL))
        abort();
    gw_cache_free(c);
}

static bool terminated(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

static void module_record(const uint8_t *data, size_t size, bool fix_crc)
{
    char dir[PATH_MAX], path[PATH_MAX + 32];
    fresh(dir, "edge");
    snprintf(path, sizeof(path), "%s/module", dir);
    if (mkdir(path, 0700) != 0)
        abort();
    snprintf(path, sizeof(path), "%s/module/job.rec", dir);
    uint8_t *rec = malloc(size ? size : 1);
    if (!rec)
        abort();
    memcpy(rec, data, size);
    if (fix_crc && size >= 4)
        ferry_put_le32(rec + size - 4, ferry_crc32(0, rec, size - 4));
    put_file(path, rec, size);
    free(rec);
    struct inst_modules_opts o = {.state_dir = dir, .node_id = "node-1", .timeout_ms = 1000};
    struct inst_modules *m = NULL;
    struct ferry_diag d = {{0}};
    if (inst_modules_open(&o, &m, &d) != FERRY_OK) {
        if (!d.msg[0])
            abort();
        return;
    }
    const struct inst_module_job *j = inst_modules_job(m);
    if ((unsigned)j->phase > INST_MOD_ROLLED_BACK || j->args.n > FERRY_MODULE_ARGS_MAX ||
        !terminated(j->release_id, sizeof(j->release_id)) ||
        !terminated(j->name, sizeof(j->name)) ||
        !terminated(j->img.version, sizeof(j->img.version)))
        abort();
    enum inst_module_outcome outcome;
    if (inst_modules_recover(m, &outcome, NULL) != FERRY_OK) {
        /* Refused (e.g. its module is missing): the record stays as it is. */
    }
    inst_modules_free(m);
    if (inst_modules_open(&o, &m, NULL) != FERRY_OK)
        abort();
    inst_modules_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    setup();
    switch (data[0] % 5) {
    case 0:
        status_journal(data + 1, size - 1);
        break;
    case 1:
        outbox(data + 1, size - 1, false);
        break;
    case 2:
        outbox(data + 1, size - 1, true);
        break;
    case 3:
        cache_journal(data + 1, size - 1);
        break;
    default:
        module_record(data + 1, size - 1, false);
        module_record(data + 1, size - 1, true);
        break;
    }
    return 0;
}
