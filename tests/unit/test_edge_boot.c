#include "cunit_main.h"

#include "edge_boot.h"
#include "ferry_crc32.h"

#include <stdio.h>
#include <string.h>

static struct edge_image image(uint64_t seq, const char *version)
{
    struct edge_image img;
    memset(&img, 0, sizeof(img));
    char text[64];
    snprintf(text, sizeof(text), "image %s seq %llu", version, (unsigned long long)seq);
    ferry_sha256(text, strlen(text), img.sha256);
    img.size = 1000 + seq;
    img.seq = seq;
    snprintf(img.version, sizeof(img.version), "%s", version);
    return img;
}

/* Slot A confirmed at seq 5, nothing in B. */
static struct edge_boot_state confirmed_a(void)
{
    struct edge_boot_state st;
    edge_boot_factory(&st);
    struct edge_image a = image(5, "1.0.0");
    CU_ASSERT_EQUAL(edge_boot_adopt(&st, EDGE_SLOT_A, &a, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(edge_boot_confirm(&st, EDGE_SLOT_A, NULL), FERRY_OK);
    return st;
}

/* confirmed_a() with seq 7 installed in B and on trial. */
static struct edge_boot_state trial_b(unsigned attempts)
{
    struct edge_boot_state st = confirmed_a();
    struct edge_image b = image(7, "1.1.0");
    CU_ASSERT_EQUAL(edge_boot_installed(&st, EDGE_SLOT_B, &b, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(edge_boot_set_trial(&st, attempts, NULL), FERRY_OK);
    return st;
}

static bool encodings_equal(const struct edge_boot_state *a, const struct edge_boot_state *b)
{
    uint8_t ea[EDGE_BOOT_STATE_LEN], eb[EDGE_BOOT_STATE_LEN];
    if (edge_boot_encode(a, ea, NULL) != FERRY_OK || edge_boot_encode(b, eb, NULL) != FERRY_OK)
        return false;
    return memcmp(ea, eb, sizeof(ea)) == 0;
}

static void put_crc(uint8_t *rec, size_t len)
{
    uint32_t crc = ferry_crc32(0, rec, len - 4);
    for (int i = 0; i < 4; i++)
        rec[len - 4 + (size_t)i] = (uint8_t)(crc >> (8 * i));
}

static void state_roundtrips_through_its_record(void)
{
    struct edge_boot_state st = trial_b(3);
    st.generation = 0x0102030405060708u;
    uint8_t rec[EDGE_BOOT_STATE_LEN];
    CU_ASSERT_EQUAL_FATAL(edge_boot_encode(&st, rec, NULL), FERRY_OK);
    struct edge_boot_state back;
    CU_ASSERT_EQUAL_FATAL(edge_boot_decode(rec, sizeof(rec), &back, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(back.generation, st.generation);
    CU_ASSERT_EQUAL(back.active, EDGE_SLOT_A);
    CU_ASSERT_EQUAL(back.trial, EDGE_SLOT_B);
    CU_ASSERT_EQUAL(back.attempts, 3);
    CU_ASSERT_TRUE(back.confirmed);
    CU_ASSERT_EQUAL(back.rollback_seq, 5);
    CU_ASSERT_TRUE(back.slot[EDGE_SLOT_B].valid);
    CU_ASSERT_EQUAL(back.slot[EDGE_SLOT_B].img.seq, 7);
    CU_ASSERT_EQUAL(back.slot[EDGE_SLOT_B].img.size, st.slot[EDGE_SLOT_B].img.size);
    CU_ASSERT_STRING_EQUAL(back.slot[EDGE_SLOT_B].img.version, "1.1.0");
    CU_ASSERT_EQUAL(memcmp(back.slot[EDGE_SLOT_B].img.sha256, st.slot[EDGE_SLOT_B].img.sha256,
                           FERRY_SHA256_LEN),
                    0);
    CU_ASSERT_TRUE(encodings_equal(&st, &back));
}

static void every_flipped_bit_is_refused(void)
{
    struct edge_boot_state st = trial_b(2);
    uint8_t rec[EDGE_BOOT_STATE_LEN];
    CU_ASSERT_EQUAL_FATAL(edge_boot_encode(&st, rec, NULL), FERRY_OK);
    size_t accepted = 0;
    for (size_t i = 0; i < sizeof(rec); i++) {
        for (int bit = 0; bit < 8; bit++) {
            rec[i] ^= (uint8_t)(1u << bit);
            struct edge_boot_state out;
            if (edge_boot_decode(rec, sizeof(rec), &out, NULL) == FERRY_OK)
                accepted++;
            rec[i] ^= (uint8_t)(1u << bit);
        }
    }
    CU_ASSERT_EQUAL(accepted, 0);
}

static void truncated_records_are_corrupt(void)
{
    struct edge_boot_state st = confirmed_a();
    uint8_t rec[EDGE_BOOT_STATE_LEN];
    CU_ASSERT_EQUAL_FATAL(edge_boot_encode(&st, rec, NULL), FERRY_OK);
    for (size_t len = 0; len < sizeof(rec); len++) {
        struct edge_boot_state out;
        struct ferry_diag d = {{0}};
        CU_ASSERT_EQUAL(edge_boot_decode(rec, len, &out, &d), FERRY_E_CORRUPT);
        CU_ASSERT_NOT_EQUAL(d.msg[0], 0);
    }
}

/* A newer writer may append fields: an older reader keeps what it knows. */
static void longer_record_from_a_newer_writer_is_read(void)
{
    struct edge_boot_state st = trial_b(1);
    uint8_t rec[EDGE_BOOT_STATE_LEN + 40];
    CU_ASSERT_EQUAL_FATAL(edge_boot_encode(&st, rec, NULL), FERRY_OK);
    memset(rec + EDGE_BOOT_STATE_LEN - 4, 0xEE, 40);
    rec[6] = (uint8_t)sizeof(rec);
    rec[7] = (uint8_t)(sizeof(rec) >> 8);
    put_crc(rec, sizeof(rec));
    struct edge_boot_state out;
    CU_ASSERT_EQUAL_FATAL(edge_boot_decode(rec, sizeof(rec), &out, NULL), FERRY_OK);
    CU_ASSERT_TRUE(encodings_equal(&st, &out));
}

/* CRC-valid records that break an invariant are refused too, so a bug that
 * wrote nonsense cannot steer the boot. */
static void decode_refuses_records_that_break_invariants(void)
{
    static const struct {
        size_t off;
        uint8_t value;
    } patches[] = {
        {16, 2},  /* active slot none */
        {17, 0},  /* trial slot equals the active slot A */
        {17, 3},  /* trial slot out of range */
        {18, 17}, /* attempts above the limit */
        {4, 2},   /* a format this reader does not know */
    };
    struct edge_boot_state st = trial_b(2);
    for (size_t i = 0; i < sizeof(patches) / sizeof(patches[0]); i++) {
        uint8_t rec[EDGE_BOOT_STATE_LEN];
        CU_ASSERT_EQUAL_FATAL(edge_boot_encode(&st, rec, NULL), FERRY_OK);
        rec[patches[i].off] = patches[i].value;
        put_crc(rec, sizeof(rec));
        struct edge_boot_state out;
        CU_ASSERT_EQUAL(edge_boot_decode(rec, sizeof(rec), &out, NULL), FERRY_E_CORRUPT);
    }
}

static void encode_refuses_inconsistent_states(void)
{
    uint8_t rec[EDGE_BOOT_STATE_LEN];
    struct ferry_diag d = {{0}};

    struct edge_boot_state st = confirmed_a();
    st.attempts = 1; /* attempts without a trial */
    CU_ASSERT_EQUAL(edge_boot_encode(&st, rec, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "attempts"));

    st = confirmed_a();
    st.rollback_seq = 6; /* counter above the confirmed image */
    CU_ASSERT_EQUAL(edge_boot_encode(&st, rec, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "counter"));

    st = confirmed_a();
    st.trial = EDGE_SLOT_B; /* trial slot without an image */
    st.attempts = 1;
    CU_ASSERT_EQUAL(edge_boot_encode(&st, rec, &d), FERRY_E_INVALID_ARG);

    st = confirmed_a();
    st.slot[EDGE_SLOT_B].img.seq = 3; /* data in an invalid slot */
    CU_ASSERT_EQUAL(edge_boot_encode(&st, rec, &d), FERRY_E_INVALID_ARG);
}

static struct edge_boot_raw raw_of(const uint8_t *buf, size_t len)
{
    struct edge_boot_raw r = {buf, len};
    return r;
}

static void select_takes_the_newest_valid_copy(void)
{
    struct edge_boot_state older = confirmed_a(), newer = trial_b(2);
    older.generation = 41;
    newer.generation = 42;
    uint8_t r_old[EDGE_BOOT_STATE_LEN], r_new[EDGE_BOOT_STATE_LEN];
    CU_ASSERT_EQUAL_FATAL(edge_boot_encode(&older, r_old, NULL), FERRY_OK);
    CU_ASSERT_EQUAL_FATAL(edge_boot_encode(&newer, r_new, NULL), FERRY_OK);
    struct edge_boot_raw none = {NULL, 0};
    struct edge_boot_state out;
    int newest = -2;
    enum edge_boot_source src;

    for (int order = 0; order < 2; order++) {
        struct edge_boot_raw copies[2];
        copies[order] = raw_of(r_new, sizeof(r_new));
        copies[1 - order] = raw_of(r_old, sizeof(r_old));
        edge_boot_select(copies, none, &out, &newest, &src);
        CU_ASSERT_EQUAL(src, EDGE_BOOT_SRC_COPY);
        CU_ASSERT_EQUAL(newest, order);
        CU_ASSERT_EQUAL(out.generation, 42);
    }

    /* The newest copy torn: the older one is the state. */
    r_new[100] ^= 0x10;
    struct edge_boot_raw copies[2] = {raw_of(r_new, sizeof(r_new)), raw_of(r_old, sizeof(r_old))};
    edge_boot_select(copies, none, &out, &newest, &src);
    CU_ASSERT_EQUAL(src, EDGE_BOOT_SRC_COPY);
    CU_ASSERT_EQUAL(newest, 1);
    CU_ASSERT_EQUAL(out.generation, 41);
    CU_ASSERT_EQUAL(out.trial, EDGE_SLOT_NONE);

    /* Only one copy written so far. */
    struct edge_boot_raw one[2] = {none, raw_of(r_old, sizeof(r_old))};
    edge_boot_select(one, none, &out, &newest, &src);
    CU_ASSERT_EQUAL(newest, 1);
    CU_ASSERT_EQUAL(out.generation, 41);
}

static void select_falls_back_to_lkg_then_recovery_then_factory(void)
{
    uint8_t bad[EDGE_BOOT_STATE_LEN];
    memset(bad, 0xFF, sizeof(bad)); /* erased flash */
    struct edge_boot_raw copies[2] = {raw_of(bad, sizeof(bad)), raw_of(bad, 17)};
    struct edge_image b = image(9, "2.0.0");
    uint8_t lkg[EDGE_BOOT_LKG_LEN];
    CU_ASSERT_EQUAL_FATAL(edge_boot_lkg_encode(EDGE_SLOT_B, &b, lkg, NULL), FERRY_OK);
    struct edge_boot_state out;
    int newest = 5;
    enum edge_boot_source src;

    edge_boot_select(copies, raw_of(lkg, sizeof(lkg)), &out, &newest, &src);
    CU_ASSERT_EQUAL(src, EDGE_BOOT_SRC_LKG);
    CU_ASSERT_EQUAL(newest, -1);
    CU_ASSERT_EQUAL(out.active, EDGE_SLOT_B);
    CU_ASSERT_TRUE(out.confirmed);
    CU_ASSERT_EQUAL(out.rollback_seq, 9);
    CU_ASSERT_TRUE(out.slot[EDGE_SLOT_B].valid);
    CU_ASSERT_FALSE(out.slot[EDGE_SLOT_A].valid);
    CU_ASSERT_EQUAL(memcmp(out.slot[EDGE_SLOT_B].img.sha256, b.sha256, FERRY_SHA256_LEN), 0);
    CU_ASSERT_EQUAL(edge_boot_check(&out, NULL), FERRY_OK);

    lkg[50] ^= 1;
    edge_boot_select(copies, raw_of(lkg, sizeof(lkg)), &out, &newest, &src);
    CU_ASSERT_EQUAL(src, EDGE_BOOT_SRC_RECOVERY);
    CU_ASSERT_EQUAL(out.active, EDGE_SLOT_A);
    CU_ASSERT_FALSE(out.confirmed);
    CU_ASSERT_FALSE(out.slot[EDGE_SLOT_A].valid);

    struct edge_boot_raw none[2] = {{NULL, 0}, {NULL, 0}};
    edge_boot_select(none, none[0], &out, &newest, &src);
    CU_ASSERT_EQUAL(src, EDGE_BOOT_SRC_FACTORY);
    CU_ASSERT_EQUAL(out.active, EDGE_SLOT_A);
    CU_ASSERT_EQUAL(out.generation, 0);
}

static void lkg_record_roundtrips_and_detects_damage(void)
{
    struct edge_image a = image(3, "0.9.1-rc.1");
    uint8_t rec[EDGE_BOOT_LKG_LEN];
    CU_ASSERT_EQUAL_FATAL(edge_boot_lkg_encode(EDGE_SLOT_A, &a, rec, NULL), FERRY_OK);
    enum edge_slot slot = EDGE_SLOT_NONE;
    struct edge_image back;
    CU_ASSERT_EQUAL_FATAL(edge_boot_lkg_decode(rec, sizeof(rec), &slot, &back, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(slot, EDGE_SLOT_A);
    CU_ASSERT_EQUAL(back.seq, 3);
    CU_ASSERT_EQUAL(back.size, a.size);
    CU_ASSERT_STRING_EQUAL(back.version, "0.9.1-rc.1");
    for (size_t i = 0; i < sizeof(rec); i++) {
        rec[i] ^= 0x80;
        CU_ASSERT_NOT_EQUAL(edge_boot_lkg_decode(rec, sizeof(rec), &slot, &back, NULL), FERRY_OK);
        rec[i] ^= 0x80;
    }
    CU_ASSERT_NOT_EQUAL(edge_boot_lkg_decode(rec, sizeof(rec) - 1, &slot, &back, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(edge_boot_lkg_encode(EDGE_SLOT_NONE, &a, rec, NULL), FERRY_E_INVALID_ARG);
}

static void decide_spends_attempts_then_rolls_back(void)
{
    struct edge_boot_state st = trial_b(2);
    struct edge_boot_state next;
    enum edge_slot boot = EDGE_SLOT_NONE;

    CU_ASSERT_TRUE(edge_boot_decide(&st, &next, &boot));
    CU_ASSERT_EQUAL(boot, EDGE_SLOT_B);
    CU_ASSERT_EQUAL(next.attempts, 1);
    st = next;
    CU_ASSERT_TRUE(edge_boot_decide(&st, &next, &boot));
    CU_ASSERT_EQUAL(boot, EDGE_SLOT_B);
    CU_ASSERT_EQUAL(next.attempts, 0);
    CU_ASSERT_EQUAL(next.trial, EDGE_SLOT_B);
    st = next;
    /* No confirm came: the third boot goes back to A and forgets B. */
    CU_ASSERT_TRUE(edge_boot_decide(&st, &next, &boot));
    CU_ASSERT_EQUAL(boot, EDGE_SLOT_A);
    CU_ASSERT_EQUAL(next.trial, EDGE_SLOT_NONE);
    CU_ASSERT_FALSE(next.slot[EDGE_SLOT_B].valid);
    CU_ASSERT_EQUAL(next.rollback_seq, 5);
    CU_ASSERT_EQUAL(edge_boot_check(&next, NULL), FERRY_OK);
    st = next;
    CU_ASSERT_FALSE(edge_boot_decide(&st, &next, &boot));
    CU_ASSERT_EQUAL(boot, EDGE_SLOT_A);
}

static void decide_is_a_pure_function_of_the_state(void)
{
    const struct edge_boot_state st = trial_b(1);
    struct edge_boot_state copy = st;
    struct edge_boot_state n1, n2;
    enum edge_slot b1, b2;
    bool c1 = edge_boot_decide(&st, &n1, &b1);
    bool c2 = edge_boot_decide(&st, &n2, &b2);
    CU_ASSERT_EQUAL(c1, c2);
    CU_ASSERT_EQUAL(b1, b2);
    CU_ASSERT_TRUE(encodings_equal(&n1, &n2));
    CU_ASSERT_TRUE(encodings_equal(&st, &copy));
}

static void counter_moves_only_at_confirm(void)
{
    struct edge_boot_state st = trial_b(3);
    CU_ASSERT_EQUAL(st.rollback_seq, 5);
    struct edge_boot_state next;
    enum edge_slot boot;
    (void)edge_boot_decide(&st, &next, &boot);
    CU_ASSERT_EQUAL(next.rollback_seq, 5);
    st = next;
    CU_ASSERT_EQUAL(edge_boot_confirm(&st, EDGE_SLOT_A, NULL), FERRY_OK); /* old image, no-op */
    CU_ASSERT_EQUAL(st.rollback_seq, 5);
    CU_ASSERT_EQUAL(st.trial, EDGE_SLOT_B);
    CU_ASSERT_EQUAL(edge_boot_confirm(&st, EDGE_SLOT_B, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(st.active, EDGE_SLOT_B);
    CU_ASSERT_EQUAL(st.trial, EDGE_SLOT_NONE);
    CU_ASSERT_EQUAL(st.attempts, 0);
    CU_ASSERT_TRUE(st.confirmed);
    CU_ASSERT_EQUAL(st.rollback_seq, 7);
    CU_ASSERT_TRUE(st.slot[EDGE_SLOT_A].valid); /* the old image stays as it was */
    CU_ASSERT_EQUAL(edge_boot_check(&st, NULL), FERRY_OK);
}

static void set_trial_refusals_name_the_reason(void)
{
    struct edge_boot_state st = confirmed_a();
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(edge_boot_set_trial(&st, 2, &d), FERRY_E_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "slot B"));

    struct edge_image old = image(5, "0.9.0");
    CU_ASSERT_EQUAL_FATAL(edge_boot_installed(&st, EDGE_SLOT_B, &old, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(edge_boot_set_trial(&st, 2, &d), FERRY_E_DOWNGRADE);

    struct edge_image b = image(6, "1.0.1");
    CU_ASSERT_EQUAL_FATAL(edge_boot_installed(&st, EDGE_SLOT_B, &b, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(edge_boot_set_trial(&st, 0, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(edge_boot_set_trial(&st, EDGE_BOOT_MAX_ATTEMPTS + 1, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(edge_boot_set_trial(&st, EDGE_BOOT_MAX_ATTEMPTS, &d), FERRY_OK);
    CU_ASSERT_EQUAL(edge_boot_set_trial(&st, 1, &d), FERRY_E_BUSY);
    CU_ASSERT_EQUAL(st.attempts, EDGE_BOOT_MAX_ATTEMPTS);
}

static void running_and_trial_slots_cannot_be_overwritten(void)
{
    struct edge_boot_state st = trial_b(1);
    struct edge_boot_state before = st;
    struct edge_image img = image(8, "1.2.0");
    CU_ASSERT_EQUAL(edge_boot_invalidate(&st, EDGE_SLOT_A, NULL), FERRY_E_BUSY);
    CU_ASSERT_EQUAL(edge_boot_invalidate(&st, EDGE_SLOT_B, NULL), FERRY_E_BUSY);
    CU_ASSERT_EQUAL(edge_boot_installed(&st, EDGE_SLOT_A, &img, NULL), FERRY_E_BUSY);
    CU_ASSERT_EQUAL(edge_boot_invalidate(&st, EDGE_SLOT_NONE, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_TRUE(encodings_equal(&st, &before));
}

static void rollback_drops_the_trial_image(void)
{
    struct edge_boot_state st = confirmed_a();
    enum edge_slot boot = EDGE_SLOT_NONE;
    CU_ASSERT_EQUAL(edge_boot_rollback(&st, &boot, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_EQUAL(boot, EDGE_SLOT_NONE);

    st = trial_b(2);
    CU_ASSERT_EQUAL(edge_boot_rollback(&st, &boot, NULL), FERRY_OK);
    CU_ASSERT_EQUAL(boot, EDGE_SLOT_A);
    CU_ASSERT_EQUAL(st.trial, EDGE_SLOT_NONE);
    CU_ASSERT_EQUAL(st.attempts, 0);
    CU_ASSERT_FALSE(st.slot[EDGE_SLOT_B].valid);
    CU_ASSERT_EQUAL(st.rollback_seq, 5);
    CU_ASSERT_EQUAL(edge_boot_confirm(&st, EDGE_SLOT_B, NULL), FERRY_E_INVALID_ARG);
}

static void adopted_image_needs_its_own_confirm(void)
{
    struct edge_boot_state st;
    edge_boot_factory(&st);
    CU_ASSERT_EQUAL(edge_boot_confirm(&st, EDGE_SLOT_A, NULL), FERRY_E_INVALID_ARG);
    struct edge_image a = image(4, "1.0.0");
    CU_ASSERT_EQUAL_FATAL(edge_boot_adopt(&st, EDGE_SLOT_A, &a, NULL), FERRY_OK);
    CU_ASSERT_FALSE(st.confirmed);
    CU_ASSERT_EQUAL(st.rollback_seq, 0);
    CU_ASSERT_EQUAL(edge_boot_confirm(&st, EDGE_SLOT_A, NULL), FERRY_OK);
    CU_ASSERT_TRUE(st.confirmed);
    CU_ASSERT_EQUAL(st.rollback_seq, 4);
    CU_ASSERT_EQUAL(edge_boot_adopt(&st, EDGE_SLOT_B, &a, NULL), FERRY_E_BUSY);
}

static void image_check_refuses_bad_descriptions(void)
{
    struct edge_image img = image(1, "1.0.0");
    CU_ASSERT_EQUAL(edge_image_check(&img, NULL), FERRY_OK);
    img.size = 0;
    CU_ASSERT_EQUAL(edge_image_check(&img, NULL), FERRY_E_INVALID_ARG);
    img = image(1, "1.0 beta");
    CU_ASSERT_EQUAL(edge_image_check(&img, NULL), FERRY_E_INVALID_ARG);
    img = image(1, "");
    CU_ASSERT_EQUAL(edge_image_check(&img, NULL), FERRY_E_INVALID_ARG);
    img = image(1, "1.0.0");
    memset(img.version, 'v', sizeof(img.version)); /* not terminated */
    CU_ASSERT_EQUAL(edge_image_check(&img, NULL), FERRY_E_INVALID_ARG);
    CU_ASSERT_STRING_EQUAL(edge_slot_name(EDGE_SLOT_B), "B");
    CU_ASSERT_EQUAL(edge_slot_other(EDGE_SLOT_B), EDGE_SLOT_A);
    CU_ASSERT_EQUAL(edge_slot_other(EDGE_SLOT_NONE), EDGE_SLOT_NONE);
}

const char *const ferry_suite_name = "edge_boot";
const struct ferry_test_case ferry_tests[] = {
    {"state_roundtrips_through_its_record", state_roundtrips_through_its_record},
    {"every_flipped_bit_is_refused", every_flipped_bit_is_refused},
    {"truncated_records_are_corrupt", truncated_records_are_corrupt},
    {"longer_record_from_a_newer_writer_is_read", longer_record_from_a_newer_writer_is_read},
    {"decode_refuses_records_that_break_invariants", decode_refuses_records_that_break_invariants},
    {"encode_refuses_inconsistent_states", encode_refuses_inconsistent_states},
    {"select_takes_the_newest_valid_copy", select_takes_the_newest_valid_copy},
    {"select_falls_back_to_lkg_then_recovery_then_factory",
     select_falls_back_to_lkg_then_recovery_then_factory},
    {"lkg_record_roundtrips_and_detects_damage", lkg_record_roundtrips_and_detects_damage},
    {"decide_spends_attempts_then_rolls_back", decide_spends_attempts_then_rolls_back},
    {"decide_is_a_pure_function_of_the_state", decide_is_a_pure_function_of_the_state},
    {"counter_moves_only_at_confirm", counter_moves_only_at_confirm},
    {"set_trial_refusals_name_the_reason", set_trial_refusals_name_the_reason},
    {"running_and_trial_slots_cannot_be_overwritten",
     running_and_trial_slots_cannot_be_overwritten},
    {"rollback_drops_the_trial_image", rollback_drops_the_trial_image},
    {"adopted_image_needs_its_own_confirm", adopted_image_needs_its_own_confirm},
    {"image_check_refuses_bad_descriptions", image_check_refuses_bad_descriptions},
    {NULL, NULL},
};
