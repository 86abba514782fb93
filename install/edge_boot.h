/* The edge node's boot state: which of the two image slots (A/B) boots, which
 * one is on trial, and what each slot holds. Pure data and pure transitions
 * here, no I/O: edge_slots.h stores the state through a backend.
 *
 * Model (as U-Boot bootcount / RAUC / MCUboot's test-then-confirm):
 *
 *   active     the slot that boots when no trial is pending; after a confirm
 *              it is the last known good slot.
 *   trial      EDGE_SLOT_NONE, or the other slot while a new image is tried.
 *   attempts   boots the trial slot may still take; each trial boot spends
 *              one *before* booting, so a hang counts too. A boot that finds
 *              none left rolls back to the active slot.
 *   confirmed  the active slot passed a health check. False on a factory
 *              or recovery state, and for an adopted factory image until its
 *              first health check.
 *   rollback_seq  the anti-rollback counter: a new image needs a seq above it.
 *              It moves only when an image is confirmed, so it never exceeds
 *              the seq of a confirmed image and a failed trial costs nothing.
 *   slot[]     per slot: valid (complete, hash checked from storage after it
 *              was written and synced), its SHA-256, size, seq and version.
 *
 * Durability: the state is kept as two copies, each a record with a CRC-32
 * and a generation. A new state (generation + 1) always overwrites the copy
 * that does NOT hold the newest state, so a power cut while writing leaves
 * the newest intact copy untouched. Reading takes the valid copy with the
 * highest generation.
 *
 * Both copies bad (media failure, not a power cut: see above) falls back on
 * a third record, the "last known good" (LKG) record: the slot that was last
 * confirmed, with its hash, size, seq and version. It is rewritten after each
 * confirm and checked before an install starts to overwrite the other slot,
 * so the slot it names always still holds that image. The fallback state
 * boots that slot, confirmed, with the counter at its seq. With the LKG
 * record bad as well, the state falls back to slot A unconfirmed with no
 * slot trusted (EDGE_BOOT_SRC_RECOVERY): the factory convention is that slot
 * A holds the recovery image, and edge_slots_adopt() re-establishes trust.
 */
#ifndef FERRY_EDGE_BOOT_H
#define FERRY_EDGE_BOOT_H

#include "ferry_err.h"
#include "ferry_manifest.h"
#include "ferry_sha256.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum edge_slot {
    EDGE_SLOT_A = 0,
    EDGE_SLOT_B = 1,
    EDGE_SLOT_NONE = 2,
};

/* The three durable records a backend stores (see edge_slots.h). */
enum edge_boot_rec {
    EDGE_REC_COPY0 = 0,
    EDGE_REC_COPY1 = 1,
    EDGE_REC_LKG = 2,
};

/* Fixed record sizes, so a flash backend can reserve its pages up front.
 * A newer Ferry may append fields to a record (a longer record of the same
 * format); readers ignore what they do not know, up to EDGE_BOOT_REC_MAX. */
#define EDGE_BOOT_STATE_LEN 260
#define EDGE_BOOT_LKG_LEN   128
#define EDGE_BOOT_REC_MAX   512

/* Trial boots allowed by edge_boot_set_trial(). */
#define EDGE_BOOT_MAX_ATTEMPTS 16

/* What an image is: the manifest's artifact hash and size, seq and version. */
struct edge_image {
    uint8_t sha256[FERRY_SHA256_LEN];
    uint64_t size;
    uint64_t seq;
    char version[FERRY_VERSION_MAX + 1];
};

struct edge_slot_info {
    bool valid; /* false: contents unknown or incomplete; img is all zero */
    struct edge_image img;
};

struct edge_boot_state {
    uint64_t generation; /* bumped by every stored write */
    enum edge_slot active;
    enum edge_slot trial;
    uint8_t attempts;
    bool confirmed;
    uint64_t rollback_seq;
    struct edge_slot_info slot[2];
};

/* Where edge_boot_select() found the state. */
enum edge_boot_source {
    EDGE_BOOT_SRC_COPY,     /* the newest valid copy */
    EDGE_BOOT_SRC_LKG,      /* both copies bad: rebuilt from the LKG record */
    EDGE_BOOT_SRC_RECOVERY, /* records exist, none valid: slot A, untrusted */
    EDGE_BOOT_SRC_FACTORY,  /* nothing stored yet: slot A, untrusted */
};

/* Static, never NULL: "A", "B", "none". */
const char *edge_slot_name(enum edge_slot slot);

/* The slot that is not `slot` (A <-> B); NONE for NONE. */
enum edge_slot edge_slot_other(enum edge_slot slot);

/* The state of a device with nothing stored: slot A active, unconfirmed, no
 * slot trusted, generation 0. */
void edge_boot_factory(struct edge_boot_state *out);

/* Checks the invariants every stored state keeps (slots in range, the trial
 * slot is the other one and valid, no attempts without a trial, a confirmed
 * active slot is valid and at or above the counter, versions terminated).
 * FERRY_E_INVALID_ARG naming the broken rule. */
enum ferry_err edge_boot_check(const struct edge_boot_state *st,
                               struct ferry_diag *d) FERRY_MUST_CHECK;

/* Serialises a state that passes edge_boot_check() into exactly
 * EDGE_BOOT_STATE_LEN bytes (little-endian fields, CRC-32 last). */
enum ferry_err edge_boot_encode(const struct edge_boot_state *st, uint8_t out[EDGE_BOOT_STATE_LEN],
                                struct ferry_diag *d) FERRY_MUST_CHECK;

/* Parses a state record. FERRY_E_CORRUPT for a bad magic, length or CRC, or
 * a state that breaks an invariant; *out is written only on FERRY_OK. */
enum ferry_err edge_boot_decode(const uint8_t *buf, size_t len, struct edge_boot_state *out,
                                struct ferry_diag *d) FERRY_MUST_CHECK;

/* The LKG record: `slot` and the confirmed image it holds. Decode refuses
 * what edge_boot_decode() would (FERRY_E_CORRUPT). */
enum ferry_err edge_boot_lkg_encode(enum edge_slot slot, const struct edge_image *img,
                                    uint8_t out[EDGE_BOOT_LKG_LEN],
                                    struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err edge_boot_lkg_decode(const uint8_t *buf, size_t len, enum edge_slot *slot,
                                    struct edge_image *img, struct ferry_diag *d) FERRY_MUST_CHECK;

/* One stored record as read back: buf NULL when the record does not exist. */
struct edge_boot_raw {
    const uint8_t *buf;
    size_t len;
};

/* Picks the state to run from the three records (see the comment at the
 * top): the valid copy with the highest generation (copy 0 on a tie), else
 * the LKG record, else recovery/factory. *newest is the copy that holds the
 * chosen state (0 or 1), or -1 when it came from elsewhere; the next write
 * goes to the other copy. Never fails: some state always boots. */
void edge_boot_select(const struct edge_boot_raw copies[2], struct edge_boot_raw lkg,
                      struct edge_boot_state *out, int *newest, enum edge_boot_source *source);

/* The boot decision, a pure function of the state: writes the slot to boot
 * into *boot and the state to store before booting it into *next (which may
 * equal *st; returns true when it differs and must be stored first).
 *   trial pending, attempts left -> boot the trial slot, one attempt spent
 *   trial pending, none left     -> roll back: trial slot invalid, boot active
 *   no trial                     -> boot the active slot
 * With no slot trusted (factory/recovery) the active slot, A, boots. */
bool edge_boot_decide(const struct edge_boot_state *st, struct edge_boot_state *next,
                      enum edge_slot *boot);

/* The transitions below edit *st in place and only on FERRY_OK; each keeps
 * the invariants of edge_boot_check(). The generation is the store's job. */

/* Forgets what `slot` holds before it is overwritten. Refused for the active
 * slot and for a slot on trial (FERRY_E_BUSY). */
enum ferry_err edge_boot_invalidate(struct edge_boot_state *st, enum edge_slot slot,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

/* Records that `slot` (not active, not on trial) now holds *img, checked. */
enum ferry_err edge_boot_installed(struct edge_boot_state *st, enum edge_slot slot,
                                   const struct edge_image *img,
                                   struct ferry_diag *d) FERRY_MUST_CHECK;

/* Starts a trial of the inactive slot with 1..EDGE_BOOT_MAX_ATTEMPTS boots.
 * FERRY_E_BUSY if a trial is pending, FERRY_E_NOT_FOUND if the slot holds no
 * valid image, FERRY_E_DOWNGRADE if its seq is not above the counter. */
enum ferry_err edge_boot_set_trial(struct edge_boot_state *st, unsigned attempts,
                                   struct ferry_diag *d) FERRY_MUST_CHECK;

/* Confirms the running slot after its health check: the trial slot becomes
 * the active, confirmed slot, and only then does the counter advance to its
 * seq. Also confirms an adopted (valid, unconfirmed) active slot; confirming
 * a confirmed active slot again is a no-op. FERRY_E_INVALID_ARG when
 * `running` is neither the trial slot nor a valid active slot. */
enum ferry_err edge_boot_confirm(struct edge_boot_state *st, enum edge_slot running,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;

/* Ends a pending trial after a failed health check: the trial slot becomes
 * invalid and *boot is the slot to reboot into (the active one). FERRY_E_
 * INVALID_ARG when no trial is pending. */
enum ferry_err edge_boot_rollback(struct edge_boot_state *st, enum edge_slot *boot,
                                  struct ferry_diag *d) FERRY_MUST_CHECK;

/* Makes `slot`, holding *img (checked by the caller), the active slot,
 * unconfirmed: its first boot's health check confirms it. Only for a state
 * that trusts no slot yet (factory or recovery; FERRY_E_BUSY otherwise): the
 * factory image, or a technician's recovery image. */
enum ferry_err edge_boot_adopt(struct edge_boot_state *st, enum edge_slot slot,
                               const struct edge_image *img, struct ferry_diag *d) FERRY_MUST_CHECK;

/* Checks an image description: size 1..FERRY_ARTIFACT_MAX_SIZE, version a
 * terminated printable string of at most FERRY_VERSION_MAX bytes. */
enum ferry_err edge_image_check(const struct edge_image *img,
                                struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
