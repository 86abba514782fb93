/* libFuzzer target for the fixed binary records a node keeps: its saved
 * download state (edge_fsm_saved, job.rec) and its boot records (the state
 * copies and the LKG record, edge_boot.h). Each input is tried as it is
 * and, so that the fuzzer gets past the CRC, with a correct CRC-32 in its
 * last 4 bytes. What a decoder accepts must satisfy the record's checker
 * (edge_boot_check) and encode to bytes that decode and encode to the very
 * same bytes. A violation aborts. */
#include "edge_boot.h"
#include "edge_fsm.h"
#include "ferry_bytes.h"
#include "ferry_crc32.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_saved(const uint8_t *buf, size_t len)
{
    static struct edge_fsm_saved s, back;
    uint8_t one[EDGE_FSM_SAVED_LEN], two[EDGE_FSM_SAVED_LEN];
    if (edge_fsm_saved_decode(buf, len, &s, NULL) != FERRY_OK)
        return;
    if (s.nrejected > EDGE_FSM_REJECT_MEMORY)
        abort();
    if (edge_fsm_saved_encode(&s, one, NULL) != FERRY_OK ||
        edge_fsm_saved_decode(one, sizeof(one), &back, NULL) != FERRY_OK ||
        edge_fsm_saved_encode(&back, two, NULL) != FERRY_OK || memcmp(one, two, sizeof(one)) != 0)
        abort();
}

static void check_boot(const uint8_t *buf, size_t len)
{
    struct edge_boot_state st, back;
    uint8_t one[EDGE_BOOT_STATE_LEN], two[EDGE_BOOT_STATE_LEN];
    if (edge_boot_decode(buf, len, &st, NULL) != FERRY_OK)
        return;
    if (edge_boot_check(&st, NULL) != FERRY_OK || edge_boot_encode(&st, one, NULL) != FERRY_OK ||
        edge_boot_decode(one, sizeof(one), &back, NULL) != FERRY_OK ||
        edge_boot_encode(&back, two, NULL) != FERRY_OK || memcmp(one, two, sizeof(one)) != 0)
        abort();
}

static void check_lkg(const uint8_t *buf, size_t len)
{
    enum edge_slot slot, slot_back;
    struct edge_image img, img_back;
    uint8_t one[EDGE_BOOT_LKG_LEN], two[EDGE_BOOT_LKG_LEN];
    if (edge_boot_lkg_decode(buf, len, &slot, &img, NULL) != FERRY_OK)
        return;
    if ((slot != EDGE_SLOT_A && slot != EDGE_SLOT_B) || edge_image_check(&img, NULL) != FERRY_OK ||
        edge_boot_lkg_encode(slot, &img, one, NULL) != FERRY_OK ||
        edge_boot_lkg_decode(one, sizeof(one), &slot_back, &img_back, NULL) != FERRY_OK ||
        edge_boot_lkg_encode(slot_back, &img_back, two, NULL) != FERRY_OK ||
        memcmp(one, two, sizeof(one)) != 0 || slot != slot_back)
        abort();
}

static void check_all(const uint8_t *buf, size_t len)
{
    check_saved(buf, len);
    check_boot(buf, len);
    check_lkg(buf, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > EDGE_BOOT_REC_MAX + 256)
        return 0;
    check_all(data, size);
    if (size >= 4) {
        uint8_t *fixed = malloc(size);
        if (!fixed)
            abort();
        memcpy(fixed, data, size);
        ferry_put_le32(fixed + size - 4, ferry_crc32(0, fixed, size - 4));
        check_all(fixed, size);
        free(fixed);
    }
    return 0;
}
