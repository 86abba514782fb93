#include "edge_boot.h"

#include "ferry_bytes.h"
#include "ferry_crc32.h"

#include <string.h>

/* Record layout, little-endian. Both records start with a 4-byte magic, a
 * format byte, a reserved byte and the record's total length (u16), and end
 * with a CRC-32 over everything before it. A newer writer may make a record
 * longer (new fields before the CRC); this reader ignores the extra bytes.
 *
 * State:  8 generation u64 | 16 active u8 | 17 trial u8 | 18 attempts u8 |
 *        19 flags u8 (bit 0 confirmed) | 20 rollback_seq u64 |
 *        28 slot A image | 142 slot B image | 256 CRC
 * LKG:    8 slot u8 | 9 image | 123 zero | 124 CRC
 * Image (114 bytes): 0 flags u8 (bit 0 valid) | 1 version length u8 |
 *        2 seq u64 | 10 size u64 | 18 sha256[32] | 50 version[64], zero padded */
#define REC_FORMAT      1
#define REC_HDR_LEN     8
#define IMG_LEN         114
#define IMG_VERSION_OFF 50
#define ST_OFF_SLOTS    28
#define LKG_OFF_IMG     9
#define FLAG_CONFIRMED  0x01
#define FLAG_VALID      0x01

static const uint8_t STATE_MAGIC[4] = {'F', 'B', 'S', 'T'};
static const uint8_t LKG_MAGIC[4] = {'F', 'B', 'L', 'K'};

_Static_assert(ST_OFF_SLOTS + 2 * IMG_LEN + 4 == EDGE_BOOT_STATE_LEN, "state layout");
_Static_assert(LKG_OFF_IMG + IMG_LEN + 1 + 4 == EDGE_BOOT_LKG_LEN, "lkg layout");
_Static_assert(IMG_VERSION_OFF + FERRY_VERSION_MAX == IMG_LEN, "image layout");

const char *edge_slot_name(enum edge_slot slot)
{
    switch (slot) {
    case EDGE_SLOT_A:
        return "A";
    case EDGE_SLOT_B:
        return "B";
    case EDGE_SLOT_NONE:
        break;
    }
    return "none";
}

enum edge_slot edge_slot_other(enum edge_slot slot)
{
    switch (slot) {
    case EDGE_SLOT_A:
        return EDGE_SLOT_B;
    case EDGE_SLOT_B:
        return EDGE_SLOT_A;
    case EDGE_SLOT_NONE:
        break;
    }
    return EDGE_SLOT_NONE;
}

static bool is_ab(enum edge_slot slot)
{
    return slot == EDGE_SLOT_A || slot == EDGE_SLOT_B;
}

void edge_boot_factory(struct edge_boot_state *out)
{
    memset(out, 0, sizeof(*out));
    out->active = EDGE_SLOT_A;
    out->trial = EDGE_SLOT_NONE;
}

enum ferry_err edge_image_check(const struct edge_image *img, struct ferry_diag *d)
{
    size_t n = strnlen(img->version, sizeof(img->version));
    if (n == 0 || n > FERRY_VERSION_MAX)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "image: version must be 1..%d bytes and terminated", FERRY_VERSION_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)img->version[i];
        if (c <= 0x20 || c >= 0x7f)
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "image: version must be printable ASCII without spaces");
    }
    if (img->size == 0 || img->size > FERRY_ARTIFACT_MAX_SIZE)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "image: size must be 1..2^40, got %llu",
                          (unsigned long long)img->size);
    return FERRY_OK;
}

static bool image_is_zero(const struct edge_image *img)
{
    static const struct edge_image zero;
    return memcmp(img, &zero, sizeof(zero)) == 0;
}

static enum ferry_err check_slot(const struct edge_slot_info *s, enum edge_slot which,
                                 struct ferry_diag *d)
{
    if (!s->valid) {
        if (!image_is_zero(&s->img))
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "boot state: invalid slot %s must carry no image data",
                              edge_slot_name(which));
        return FERRY_OK;
    }
    enum ferry_err err = edge_image_check(&s->img, d);
    if (err != FERRY_OK)
        ferry_diag_prefix(d, which == EDGE_SLOT_A ? "boot state: slot A" : "boot state: slot B");
    return err;
}

static enum ferry_err check_trial(const struct edge_boot_state *st, struct ferry_diag *d)
{
    if (st->trial == EDGE_SLOT_NONE) {
        if (st->attempts != 0)
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "boot state: %u attempts left but no trial pending", st->attempts);
        return FERRY_OK;
    }
    if (st->trial != edge_slot_other(st->active))
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "boot state: trial slot must be the inactive one");
    if (!st->slot[st->trial].valid)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "boot state: trial slot %s holds no valid image",
                          edge_slot_name(st->trial));
    if (st->attempts > EDGE_BOOT_MAX_ATTEMPTS)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "boot state: %u attempts, the limit is %d",
                          st->attempts, EDGE_BOOT_MAX_ATTEMPTS);
    if (st->slot[st->trial].img.seq <= st->rollback_seq)
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "boot state: trial image seq %llu is not above the counter %llu",
                          (unsigned long long)st->slot[st->trial].img.seq,
                          (unsigned long long)st->rollback_seq);
    return FERRY_OK;
}

enum ferry_err edge_boot_check(const struct edge_boot_state *st, struct ferry_diag *d)
{
    if (!is_ab(st->active))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "boot state: active slot must be A or B");
    if (!is_ab(st->trial) && st->trial != EDGE_SLOT_NONE)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "boot state: trial slot must be A, B or none");
    for (int i = 0; i < 2; i++) {
        enum ferry_err err = check_slot(&st->slot[i], (enum edge_slot)i, d);
        if (err != FERRY_OK)
            return err;
    }
    enum ferry_err err = check_trial(st, d);
    if (err != FERRY_OK)
        return err;
    if (st->confirmed) {
        const struct edge_slot_info *a = &st->slot[st->active];
        if (!a->valid)
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "boot state: confirmed slot %s holds no valid image",
                              edge_slot_name(st->active));
        if (a->img.seq < st->rollback_seq)
            return ferry_fail(d, FERRY_E_INVALID_ARG,
                              "boot state: counter %llu above the confirmed image's seq %llu",
                              (unsigned long long)st->rollback_seq, (unsigned long long)a->img.seq);
    }
    return FERRY_OK;
}

static void put_image(uint8_t *p, bool valid, const struct edge_image *img)
{
    size_t n = strnlen(img->version, FERRY_VERSION_MAX);
    memset(p, 0, IMG_LEN);
    p[0] = valid ? FLAG_VALID : 0;
    p[1] = (uint8_t)n;
    ferry_put_le64(p + 2, img->seq);
    ferry_put_le64(p + 10, img->size);
    memcpy(p + 18, img->sha256, FERRY_SHA256_LEN);
    memcpy(p + IMG_VERSION_OFF, img->version, n);
}

/* The bytes after a version are zero, so each state has one encoding and a
 * version holds no NUL; edge_boot_check() judges the rest. */
static bool get_image(const uint8_t *p, bool *valid, struct edge_image *img)
{
    size_t n = p[1];
    if (n > FERRY_VERSION_MAX)
        return false;
    for (size_t i = 0; i < FERRY_VERSION_MAX; i++) {
        bool zero = p[IMG_VERSION_OFF + i] == 0;
        if (zero != (i >= n))
            return false;
    }
    memset(img, 0, sizeof(*img));
    *valid = (p[0] & FLAG_VALID) != 0;
    img->seq = ferry_get_le64(p + 2);
    img->size = ferry_get_le64(p + 10);
    memcpy(img->sha256, p + 18, FERRY_SHA256_LEN);
    memcpy(img->version, p + IMG_VERSION_OFF, n);
    return true;
}

static void put_header(uint8_t *p, const uint8_t magic[4], size_t len)
{
    memcpy(p, magic, 4);
    p[4] = REC_FORMAT;
    p[5] = 0;
    ferry_put_le16(p + 6, (uint16_t)len);
}

static void put_crc(uint8_t *p, size_t len)
{
    ferry_put_le32(p + len - 4, ferry_crc32(0, p, len - 4));
}

/* Checks magic, format, length and CRC of a record of at least min_len. */
static enum ferry_err check_record(const uint8_t *buf, size_t len, const uint8_t magic[4],
                                   size_t min_len, const char *what, struct ferry_diag *d)
{
    if (len < REC_HDR_LEN || memcmp(buf, magic, 4) != 0)
        return ferry_fail(d, FERRY_E_CORRUPT, "%s: not a record (bad magic)", what);
    if (buf[4] != REC_FORMAT)
        return ferry_fail(d, FERRY_E_CORRUPT, "%s: format %u, this reader knows %d", what, buf[4],
                          REC_FORMAT);
    size_t declared = ferry_get_le16(buf + 6);
    if (declared != len || len < min_len || len > EDGE_BOOT_REC_MAX)
        return ferry_fail(d, FERRY_E_CORRUPT, "%s: length %zu, header says %zu", what, len,
                          declared);
    if (ferry_crc32(0, buf, len - 4) != ferry_get_le32(buf + len - 4))
        return ferry_fail(d, FERRY_E_CORRUPT, "%s: CRC mismatch", what);
    return FERRY_OK;
}

enum ferry_err edge_boot_encode(const struct edge_boot_state *st, uint8_t out[EDGE_BOOT_STATE_LEN],
                                struct ferry_diag *d)
{
    enum ferry_err err = edge_boot_check(st, d);
    if (err != FERRY_OK)
        return err;
    memset(out, 0, EDGE_BOOT_STATE_LEN);
    put_header(out, STATE_MAGIC, EDGE_BOOT_STATE_LEN);
    ferry_put_le64(out + 8, st->generation);
    out[16] = (uint8_t)st->active;
    out[17] = (uint8_t)st->trial;
    out[18] = st->attempts;
    out[19] = st->confirmed ? FLAG_CONFIRMED : 0;
    ferry_put_le64(out + 20, st->rollback_seq);
    for (int i = 0; i < 2; i++)
        put_image(out + ST_OFF_SLOTS + i * IMG_LEN, st->slot[i].valid, &st->slot[i].img);
    put_crc(out, EDGE_BOOT_STATE_LEN);
    return FERRY_OK;
}

enum ferry_err edge_boot_decode(const uint8_t *buf, size_t len, struct edge_boot_state *out,
                                struct ferry_diag *d)
{
    enum ferry_err err = check_record(buf, len, STATE_MAGIC, EDGE_BOOT_STATE_LEN, "boot state", d);
    if (err != FERRY_OK)
        return err;
    struct edge_boot_state st;
    memset(&st, 0, sizeof(st));
    st.generation = ferry_get_le64(buf + 8);
    /* Range-check the raw bytes before they become enum values. */
    if (buf[16] > EDGE_SLOT_B || buf[17] > EDGE_SLOT_NONE)
        return ferry_fail(d, FERRY_E_CORRUPT, "boot state: slot number out of range");
    st.active = (enum edge_slot)buf[16];
    st.trial = (enum edge_slot)buf[17];
    st.attempts = buf[18];
    st.confirmed = (buf[19] & FLAG_CONFIRMED) != 0;
    st.rollback_seq = ferry_get_le64(buf + 20);
    for (int i = 0; i < 2; i++) {
        if (!get_image(buf + ST_OFF_SLOTS + i * IMG_LEN, &st.slot[i].valid, &st.slot[i].img))
            return ferry_fail(d, FERRY_E_CORRUPT, "boot state: slot %s: bad version field",
                              edge_slot_name((enum edge_slot)i));
    }
    err = edge_boot_check(&st, d);
    if (err != FERRY_OK)
        return FERRY_E_CORRUPT;
    *out = st;
    return FERRY_OK;
}

enum ferry_err edge_boot_lkg_encode(enum edge_slot slot, const struct edge_image *img,
                                    uint8_t out[EDGE_BOOT_LKG_LEN], struct ferry_diag *d)
{
    if (!is_ab(slot))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "lkg: slot must be A or B");
    enum ferry_err err = edge_image_check(img, d);
    if (err != FERRY_OK)
        return err;
    memset(out, 0, EDGE_BOOT_LKG_LEN);
    put_header(out, LKG_MAGIC, EDGE_BOOT_LKG_LEN);
    out[8] = (uint8_t)slot;
    put_image(out + LKG_OFF_IMG, true, img);
    put_crc(out, EDGE_BOOT_LKG_LEN);
    return FERRY_OK;
}

enum ferry_err edge_boot_lkg_decode(const uint8_t *buf, size_t len, enum edge_slot *slot,
                                    struct edge_image *img, struct ferry_diag *d)
{
    enum ferry_err err = check_record(buf, len, LKG_MAGIC, EDGE_BOOT_LKG_LEN, "lkg", d);
    if (err != FERRY_OK)
        return err;
    bool valid = false;
    struct edge_image im;
    if (buf[8] > EDGE_SLOT_B || !get_image(buf + LKG_OFF_IMG, &valid, &im) || !valid)
        return ferry_fail(d, FERRY_E_CORRUPT, "lkg: bad slot or image");
    if (edge_image_check(&im, d) != FERRY_OK)
        return FERRY_E_CORRUPT;
    *slot = (enum edge_slot)buf[8];
    *img = im;
    return FERRY_OK;
}

static bool decode_raw(struct edge_boot_raw raw, struct edge_boot_state *out)
{
    return raw.buf && edge_boot_decode(raw.buf, raw.len, out, NULL) == FERRY_OK;
}

/* Both copies bad: the LKG slot, confirmed, counter at its seq. */
static bool from_lkg(struct edge_boot_raw lkg, struct edge_boot_state *out)
{
    enum edge_slot slot;
    struct edge_image img;
    if (!lkg.buf || edge_boot_lkg_decode(lkg.buf, lkg.len, &slot, &img, NULL) != FERRY_OK)
        return false;
    edge_boot_factory(out);
    out->active = slot;
    out->confirmed = true;
    out->rollback_seq = img.seq;
    out->slot[slot].valid = true;
    out->slot[slot].img = img;
    return true;
}

void edge_boot_select(const struct edge_boot_raw copies[2], struct edge_boot_raw lkg,
                      struct edge_boot_state *out, int *newest, enum edge_boot_source *source)
{
    struct edge_boot_state st[2];
    bool ok[2];
    for (int i = 0; i < 2; i++)
        ok[i] = decode_raw(copies[i], &st[i]);
    if (ok[0] || ok[1]) {
        int pick = ok[0] && (!ok[1] || st[0].generation >= st[1].generation) ? 0 : 1;
        *out = st[pick];
        *newest = pick;
        *source = EDGE_BOOT_SRC_COPY;
        return;
    }
    *newest = -1;
    if (from_lkg(lkg, out)) {
        *source = EDGE_BOOT_SRC_LKG;
        return;
    }
    edge_boot_factory(out);
    bool any = copies[0].buf || copies[1].buf || lkg.buf;
    *source = any ? EDGE_BOOT_SRC_RECOVERY : EDGE_BOOT_SRC_FACTORY;
}

static void end_trial(struct edge_boot_state *st)
{
    memset(&st->slot[st->trial], 0, sizeof(st->slot[st->trial]));
    st->trial = EDGE_SLOT_NONE;
    st->attempts = 0;
}

bool edge_boot_decide(const struct edge_boot_state *st, struct edge_boot_state *next,
                      enum edge_slot *boot)
{
    *next = *st;
    if (st->trial == EDGE_SLOT_NONE) {
        *boot = st->active;
        return false;
    }
    if (st->attempts > 0) {
        next->attempts--;
        *boot = st->trial;
        return true;
    }
    end_trial(next);
    *boot = st->active;
    return true;
}

enum ferry_err edge_boot_invalidate(struct edge_boot_state *st, enum edge_slot slot,
                                    struct ferry_diag *d)
{
    if (!is_ab(slot))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "boot state: slot must be A or B");
    if (slot == st->active || slot == st->trial)
        return ferry_fail(d, FERRY_E_BUSY, "boot state: slot %s is %s, it cannot be overwritten",
                          edge_slot_name(slot), slot == st->active ? "active" : "on trial");
    memset(&st->slot[slot], 0, sizeof(st->slot[slot]));
    return FERRY_OK;
}

enum ferry_err edge_boot_installed(struct edge_boot_state *st, enum edge_slot slot,
                                   const struct edge_image *img, struct ferry_diag *d)
{
    struct edge_boot_state next = *st;
    enum ferry_err err = edge_boot_invalidate(&next, slot, d);
    if (err != FERRY_OK)
        return err;
    err = edge_image_check(img, d);
    if (err != FERRY_OK)
        return err;
    next.slot[slot].valid = true;
    next.slot[slot].img = *img;
    *st = next;
    return FERRY_OK;
}

enum ferry_err edge_boot_set_trial(struct edge_boot_state *st, unsigned attempts,
                                   struct ferry_diag *d)
{
    enum edge_slot slot = edge_slot_other(st->active);
    if (st->trial != EDGE_SLOT_NONE)
        return ferry_fail(d, FERRY_E_BUSY, "boot state: slot %s is already on trial",
                          edge_slot_name(st->trial));
    if (attempts == 0 || attempts > EDGE_BOOT_MAX_ATTEMPTS)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "boot state: attempts must be 1..%d, got %u",
                          EDGE_BOOT_MAX_ATTEMPTS, attempts);
    if (!st->slot[slot].valid)
        return ferry_fail(d, FERRY_E_NOT_FOUND, "boot state: slot %s holds no valid image",
                          edge_slot_name(slot));
    if (st->slot[slot].img.seq <= st->rollback_seq)
        return ferry_fail(d, FERRY_E_DOWNGRADE,
                          "boot state: slot %s seq %llu is not above the counter %llu",
                          edge_slot_name(slot), (unsigned long long)st->slot[slot].img.seq,
                          (unsigned long long)st->rollback_seq);
    st->trial = slot;
    st->attempts = (uint8_t)attempts;
    return FERRY_OK;
}

enum ferry_err edge_boot_confirm(struct edge_boot_state *st, enum edge_slot running,
                                 struct ferry_diag *d)
{
    if (is_ab(running) && running == st->trial) {
        st->active = running;
        st->trial = EDGE_SLOT_NONE;
        st->attempts = 0;
    } else if (!is_ab(running) || running != st->active || !st->slot[running].valid) {
        return ferry_fail(d, FERRY_E_INVALID_ARG,
                          "boot state: slot %s is neither on trial nor a valid active slot",
                          edge_slot_name(running));
    }
    st->confirmed = true;
    if (st->slot[running].img.seq > st->rollback_seq)
        st->rollback_seq = st->slot[running].img.seq;
    return FERRY_OK;
}

enum ferry_err edge_boot_rollback(struct edge_boot_state *st, enum edge_slot *boot,
                                  struct ferry_diag *d)
{
    if (st->trial == EDGE_SLOT_NONE)
        return ferry_fail(d, FERRY_E_INVALID_ARG, "boot state: no trial to roll back");
    end_trial(st);
    *boot = st->active;
    return FERRY_OK;
}

enum ferry_err edge_boot_adopt(struct edge_boot_state *st, enum edge_slot slot,
                               const struct edge_image *img, struct ferry_diag *d)
{
    if (!is_ab(slot))
        return ferry_fail(d, FERRY_E_INVALID_ARG, "boot state: slot must be A or B");
    if (st->confirmed || st->slot[EDGE_SLOT_A].valid || st->slot[EDGE_SLOT_B].valid)
        return ferry_fail(d, FERRY_E_BUSY,
                          "boot state: a slot is already trusted, install an update instead");
    enum ferry_err err = edge_image_check(img, d);
    if (err != FERRY_OK)
        return err;
    if (img->seq < st->rollback_seq)
        return ferry_fail(d, FERRY_E_DOWNGRADE, "boot state: seq %llu is below the counter %llu",
                          (unsigned long long)img->seq, (unsigned long long)st->rollback_seq);
    st->active = slot;
    st->slot[slot].valid = true;
    st->slot[slot].img = *img;
    return FERRY_OK;
}
