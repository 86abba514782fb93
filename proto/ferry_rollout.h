/* Progressive rollouts on the wire and in the inventory. PROTOCOL.md,
 * "Rollouts", is the contract; this is its C form.
 *
 * Three documents:
 *   plan    the operator's rules for one rollout (targets, waves, success
 *           gate, halt, windows, rate cap), as `ferry-cloud rollout create`
 *           took them; kept in the inventory, never sent to gateways;
 *   doc     what one gateway needs to enforce the rollout on its own nodes
 *           (cloud -> gateway, retained, ferry/v1/<fleet>/rollout/<gw>/<product>):
 *           the signed release and revert envelopes, the state, which waves
 *           are open, the halt rule, the rate cap, the windows, and that
 *           gateway's targets with their wave and window;
 *   report  what a gateway decided by itself (gateway -> cloud, retained,
 *           ferry/v1/<fleet>/rollout-report/<gw>): a halt on its own nodes'
 *           failures, made with or without its uplink.
 *
 * Selections. A term is key=value on what the inventory knows of a node:
 * node, gateway, hw-model, hw-revision, version (the version it last
 * reported), or a tag it declares (ferry_nodeinfo.h). A node matches a
 * selection when, for every key named, one of that key's terms matches:
 * different keys AND, the same key repeated ORs ("site=a site=b").
 *
 * Shares are cumulative percentages with up to two decimals, kept as basis
 * points (1 % = 100). */
#ifndef FERRY_ROLLOUT_H
#define FERRY_ROLLOUT_H

#include "ferry_err.h"
#include "ferry_names.h"
#include "ferry_nodeinfo.h"
#include "ferry_status.h"
#include "ferry_window.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FERRY_ROLLOUT_FORMAT        1
#define FERRY_ROLLOUT_MAX_WAVES     16
#define FERRY_ROLLOUT_MAX_WINDOWS   8
#define FERRY_SEL_MAX               8
#define FERRY_SEL_KEY_MAX           FERRY_TAG_KEY_MAX
#define FERRY_SEL_VALUE_MAX         FERRY_VERSION_MAX
#define FERRY_SEL_TEXT_MAX          (FERRY_SEL_MAX * (FERRY_SEL_KEY_MAX + FERRY_SEL_VALUE_MAX + 2))
#define FERRY_ROLLOUT_PLAN_MAX      16384
#define FERRY_ROLLOUT_DOC_MAX_BYTES (16u << 20)
#define FERRY_ROLLOUT_DOC_MAX_NODES 200000
#define FERRY_ROLLOUT_REPORT_MAX    65536
#define FERRY_ROLLOUT_REPORT_ITEMS  64 /* products one report covers */
#define FERRY_ROLLOUT_REASON_MAX    200
#define FERRY_SHARE_FULL            10000 /* 100 % in basis points */

enum ferry_rollout_state {
    FERRY_ROLLOUT_SCHEDULED = 0, /* waiting for its start time */
    FERRY_ROLLOUT_RUNNING,       /* waves open as their gates pass */
    FERRY_ROLLOUT_PAUSED,        /* by the operator: nobody new starts */
    FERRY_ROLLOUT_HALTED,        /* by the halt rule: nobody new starts, downloads stop */
    FERRY_ROLLOUT_CANCELLED,     /* by the operator, for good */
    FERRY_ROLLOUT_COMPLETED,     /* every wave open and every target final */
    FERRY_ROLLOUT__COUNT
};

const char *ferry_rollout_state_name(enum ferry_rollout_state s); /* "running"; static */
enum ferry_err ferry_rollout_state_from_name(const char *name,
                                             enum ferry_rollout_state *out) FERRY_MUST_CHECK;
/* Cancelled and completed: nothing changes any more. */
bool ferry_rollout_state_is_final(enum ferry_rollout_state s);

/* ---- selections ------------------------------------------------------------ */

struct ferry_sel_term {
    char key[FERRY_SEL_KEY_MAX + 1];
    char value[FERRY_SEL_VALUE_MAX + 1];
};

struct ferry_sel {
    struct ferry_sel_term t[FERRY_SEL_MAX];
    size_t n; /* 0: every node */
};

/* What a selection is matched against; NULL or "" fields match nothing. */
struct ferry_sel_subject {
    const char *node, *gateway, *hw_model, *hw_revision, *version;
    const struct ferry_nodeinfo *info; /* tags; may be NULL */
};

/* Parses one "key=value" term. */
enum ferry_err ferry_sel_term_parse(const char *kv, struct ferry_sel_term *out,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;
/* Adds a term ("key=value"); FERRY_E_TOO_LARGE beyond FERRY_SEL_MAX. */
enum ferry_err ferry_sel_add(struct ferry_sel *s, const char *kv,
                             struct ferry_diag *d) FERRY_MUST_CHECK;
bool ferry_sel_term_match(const struct ferry_sel_term *t, const struct ferry_sel_subject *who);
bool ferry_sel_match(const struct ferry_sel *s, const struct ferry_sel_subject *who);
/* "ring=canary,site=a" ("" for the empty selection). */
void ferry_sel_format(const struct ferry_sel *s, char out[FERRY_SEL_TEXT_MAX]);

/* ---- plan --------------------------------------------------------------------- */

struct ferry_wave_spec {
    bool group;                /* a named group: the nodes matching sel */
    struct ferry_sel_term sel; /* group only */
    uint32_t share_bp;         /* percentage wave: cumulative share, 1..FERRY_SHARE_FULL */
};

struct ferry_rollout_window {
    struct ferry_sel sel; /* the nodes it applies to; empty: all the others */
    struct ferry_window w;
};

struct ferry_rollout_plan {
    struct ferry_sel select; /* targets among the product's nodes; empty: all */
    struct ferry_wave_spec waves[FERRY_ROLLOUT_MAX_WAVES];
    size_t nwaves;         /* groups first, then shares ascending to 100 % */
    uint32_t success_pct;  /* gate: 0..100 */
    uint32_t min_final;    /* gate and halt: final states needed, >= 1 */
    int64_t soak_s;        /* gate: since the wave's last success */
    uint32_t halt_pct;     /* halt above this share failed, 0..100 (100: never) */
    uint32_t rate_per_min; /* starts per gateway per minute; 0: no cap */
    struct ferry_rollout_window windows[FERRY_ROLLOUT_MAX_WINDOWS];
    size_t nwindows; /* a node takes the first whose selection matches */
};

/* "ring=canary,10,50,100" -> waves. FERRY_E_INVALID_ARG naming the item. */
enum ferry_err ferry_waves_parse(const char *text, struct ferry_rollout_plan *p,
                                 struct ferry_diag *d) FERRY_MUST_CHECK;
/* The same text back. */
void ferry_waves_format(const struct ferry_rollout_plan *p, char *out, size_t cap);
/* "12.5" for 1250 basis points. */
void ferry_share_format(uint32_t bp, char out[16]);

/* Checks the rules hold together (as the decoder does). */
enum ferry_err ferry_rollout_plan_check(const struct ferry_rollout_plan *p,
                                        struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err ferry_rollout_plan_to_json(const struct ferry_rollout_plan *p, char **out,
                                          size_t *len, struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err ferry_rollout_plan_from_json(const uint8_t *buf, size_t len,
                                            struct ferry_rollout_plan *out,
                                            struct ferry_diag *d) FERRY_MUST_CHECK;

/* ---- the document a gateway enforces ------------------------------------------ */

struct ferry_rollout_target {
    char node[FERRY_ID_MAX + 1];
    uint8_t wave;  /* index into the plan's waves */
    int8_t window; /* index into doc.windows, -1: no window */
    int8_t state;  /* the cloud's last state for the release, -1: none yet */
};

struct ferry_rollout_doc {
    uint64_t rollout;  /* id, >= 1 */
    uint64_t revision; /* grows with every change; older ones are ignored */
    uint64_t resume;   /* grows with every operator resume or retry */
    char gateway[FERRY_ID_MAX + 1];
    char product[FERRY_ID_MAX + 1];
    enum ferry_rollout_state state;
    uint8_t *release; /* signed envelope, exact bytes; owned */
    size_t release_len;
    uint8_t *revert; /* NULL when the rollout has no revert release; owned */
    size_t revert_len;
    uint32_t halt_pct, min_final, rate_per_min;
    uint32_t nwaves, open_waves; /* waves 0..open_waves-1 are open */
    struct ferry_window windows[FERRY_ROLLOUT_MAX_WINDOWS];
    size_t nwindows;
    struct ferry_rollout_target *targets; /* owned; this gateway's only */
    size_t ntargets;
};

/* Encodes doc; the caller frees *out. */
enum ferry_err ferry_rollout_doc_to_json(const struct ferry_rollout_doc *doc, char **out,
                                         size_t *len, struct ferry_diag *d) FERRY_MUST_CHECK;
/* Decodes into a new doc (free with ferry_rollout_doc_free()). Envelopes
 * are only copied: verifying them is the receiver's job. */
enum ferry_err ferry_rollout_doc_from_json(const uint8_t *buf, size_t len,
                                           struct ferry_rollout_doc **out,
                                           struct ferry_diag *d) FERRY_MUST_CHECK;
void ferry_rollout_doc_free(struct ferry_rollout_doc *doc); /* NULL is fine */

/* ---- the gateway's report ------------------------------------------------------- */

struct ferry_rollout_report_item {
    uint64_t rollout, revision, resume; /* the doc the gateway holds */
    char product[FERRY_ID_MAX + 1];
    bool halted;             /* the gateway halted it on its own nodes' failures */
    int64_t halted_at;       /* unix seconds, gateway clock */
    bool offline;            /* the uplink was down when it halted */
    uint64_t finals, failed; /* the counts it halted on */
    char reason[FERRY_ROLLOUT_REASON_MAX + 1];
};

struct ferry_rollout_report {
    char gateway[FERRY_ID_MAX + 1];
    int64_t at;
    struct ferry_rollout_report_item items[FERRY_ROLLOUT_REPORT_ITEMS];
    size_t n;
};

enum ferry_err ferry_rollout_report_to_json(const struct ferry_rollout_report *r, char **out,
                                            size_t *len, struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err ferry_rollout_report_from_json(const uint8_t *buf, size_t len,
                                              struct ferry_rollout_report *out,
                                              struct ferry_diag *d) FERRY_MUST_CHECK;

/* ---- what `rollout show --json` prints (and an HTTP API would serve) ---------------- */

#define FERRY_ROLLOUT_ACTOR_MAX 80

struct ferry_rollout_view_wave {
    bool open;
    int64_t opened_at; /* 0: not yet */
    uint64_t targets;
    uint64_t by_state[FERRY_STATE__COUNT]; /* latest state for the release */
    int64_t last_success_at;
};

struct ferry_rollout_view_log {
    int64_t at;
    char actor[FERRY_ROLLOUT_ACTOR_MAX + 1];
    char action[32];
    char reason[256];
};

struct ferry_rollout_view {
    uint64_t id;
    char product[FERRY_ID_MAX + 1];
    char release[FERRY_NAME_MAX + 1];
    char version[FERRY_VERSION_MAX + 1];
    uint64_t seq;
    char revert_release[FERRY_NAME_MAX + 1]; /* "" without */
    uint64_t revert_seq;
    enum ferry_rollout_state state;
    const struct ferry_rollout_plan *plan; /* borrowed */
    uint32_t open_waves;
    int64_t created_at, start_at, state_at;
    uint64_t revision;
    char created_by[FERRY_ROLLOUT_ACTOR_MAX + 1];
    char waiting[256]; /* why it waits, or the last decision */
    struct ferry_rollout_view_wave waves[FERRY_ROLLOUT_MAX_WAVES]; /* plan->nwaves */
    uint64_t halt_finals, halt_failed;                             /* since the last retry */
    const struct ferry_rollout_view_log *log; /* borrowed; NULL: leave it out */
    size_t nlog;
};

/* One JSON object (PROTOCOL.md, "Rollouts": the operator's view). */
enum ferry_err ferry_rollout_view_to_json(const struct ferry_rollout_view *v, char **out,
                                          size_t *len, struct ferry_diag *d) FERRY_MUST_CHECK;

/* ---- the fleet's configuration --------------------------------------------------- */

#define FERRY_FLEET_CONFIG_MAX 4096

/* {"format":1,"require_rollout":true}: kept in the cloud's store. */
struct ferry_fleet_config {
    bool require_rollout; /* `publish` stages releases; only a rollout offers them */
};

enum ferry_err ferry_fleet_config_to_json(const struct ferry_fleet_config *c, char **out,
                                          size_t *len, struct ferry_diag *d) FERRY_MUST_CHECK;
enum ferry_err ferry_fleet_config_from_json(const uint8_t *buf, size_t len,
                                            struct ferry_fleet_config *out,
                                            struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
