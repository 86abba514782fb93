/* What the cloud does with one incoming status record: store it, take it as
 * a copy of one stored already, or refuse it for good. Pure: the inventory
 * (cloud_inventory.c) looks up what it holds about the record's node and
 * hands it here; the decision, and why, come back as data.
 *
 * The path. A record reaches the cloud through a chain of hops: the node,
 * the gateway that took it from the node, then (in a cascade) each parent
 * gateway, the last one being the gateway whose MQTT topic the batch came
 * on. path[0] is the node and path[npath - 1] that gateway; today a record
 * carries no path of its own, so the path is {node, gateway}. Each hop but
 * the last is bound to the next: a node to the gateway that serves it, a
 * child gateway to its parent (the inventory's bindings table, one parent
 * per child).
 *
 * The rules, in order:
 *   1. A record with the (node, seq) of a stored one and the same content
 *      (ferry_status_same: the gateway it names does not count) is
 *      CLOUD_DUPLICATE: acknowledged again, nothing changes. A gateway
 *      resends after a lost ack, and a node that moved resends through its
 *      new gateway what its old one had delivered.
 *   2. A hop bound to another parent than the next one on the path is
 *      refused: FERRY_E_WRONG_GATEWAY. Any gateway could otherwise write
 *      any node's state. A hop not bound yet is bound to the next one by
 *      this record (trust on first use), reported in `bind`. A legitimate
 *      move is the operator's explicit act (`ferry-cloud bind`), never
 *      inferred from traffic.
 *   3. A stored record with the same (node, seq) but other content makes
 *      this one FERRY_E_CONFLICT: one of the two is not the node's, and the
 *      one stored first stays (the gateway refuses the later one itself
 *      whenever it still knows the first, so the node can renumber).
 *   4. A seq more than FERRY_STATUS_SEQ_WINDOW beyond the node's highest
 *      stored one (0 for a node with none) is FERRY_E_SEQ_RANGE: one record
 *      must not be able to sit above every later real one.
 * Otherwise CLOUD_STORE. A refused record is acknowledged as refused (the
 * gateway drops it) and kept aside in the inventory for the operator. */
#ifndef FERRY_CLOUD_VERDICT_H
#define FERRY_CLOUD_VERDICT_H

#include "ferry_err.h"
#include "ferry_names.h"
#include "ferry_status.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hops on a path: node, gateway and room for parents in a cascade. */
#define CLOUD_PATH_MAX 8

/* What the inventory holds that bears on one record. */
struct cloud_facts {
    uint64_t last_seq;        /* the node's highest stored seq, 0: none */
    bool have_seq;            /* a record with the incoming (node, seq) is stored */
    struct ferry_status same; /* ... that record, when have_seq */
    /* bound[i]: the parent path[i] is bound to, "" when unbound; for
     * i < npath - 1. */
    char bound[CLOUD_PATH_MAX][FERRY_ID_MAX + 1];
};

enum cloud_verdict {
    CLOUD_STORE,     /* store it (and make the bindings in `bind`) */
    CLOUD_DUPLICATE, /* the very record is stored: acknowledge it again */
    CLOUD_REFUSE,    /* never store it: `reason` and `detail` say why */
};

struct cloud_judgement {
    enum cloud_verdict verdict;
    enum ferry_err reason; /* CLOUD_REFUSE: FERRY_E_WRONG_GATEWAY, _CONFLICT, _SEQ_RANGE */
    char detail[FERRY_DIAG_MAX];
    /* CLOUD_STORE: bind[i] set when path[i] is to be bound to path[i + 1]. */
    bool bind[CLOUD_PATH_MAX];
};

/* Judges rec, which arrived along path (npath 2..CLOUD_PATH_MAX, path[0]
 * being rec->node), against facts. */
void cloud_judge(const struct ferry_status *rec, const char *const *path, size_t npath,
                 const struct cloud_facts *facts, struct cloud_judgement *out);

#endif
