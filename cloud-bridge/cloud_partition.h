/* Which `ferry-cloud serve` instance handles which gateway, when the broker
 * cannot split the work: a broker without shared subscriptions (ejabberd's
 * mod_mqtt; the keeper reports 0x9E, ferry_keeper.h), or bridged brokers,
 * whose shared groups are each broker's own (a message bridged to the other
 * broker reaches one member of each group).
 *
 * Model. Every instance of a fleet keeps a lease in the database (a row:
 * fleet, instance, expires_at), renewed at every beat, and reads at each
 * beat the instances whose lease has not expired: a view. A gateway belongs
 * to one instance of a view, chosen by rendezvous hashing of the gateway id
 * over the view's instances (highest hash of instance and gateway), so an
 * instance that joins takes gateways only from the others, and one that
 * leaves gives only its own away. Every instance subscribes to the
 * non-shared filters (stream requests, status batches) and drops what
 * belongs to other instances.
 *
 * Invariant: two instances never own one gateway at the same moment,
 * provided the hosts' clocks agree to within lease - settle (a few
 * seconds) and a beat completes within settle - beat. The rules that keep
 * it (time in ms, from the caller):
 *
 *   Losing is at once: a gateway that the newest view gives to another
 *   instance is dropped from the moment that view is known.
 *
 *   Gaining waits `settle`: this instance owns a gateway only when every
 *   view it read in the last settle ms, and the latest view read before
 *   them, give it the gateway, with less than settle ms between one view and
 *   the next (a longer gap may have let its lease expire and another
 *   instance take the gateway). Any other instance that owned it has read,
 *   within that time, a view that gives it away (each beat reads one).
 *
 *   A stale view owns nothing: with no view read in the last settle ms (the
 *   database out of reach, the loop held up), this instance owns nothing. So
 *   an instance cut off from the database stops before its lease expires,
 *   and before anyone who sees it expire can have waited settle more.
 *
 *   An instance missing from its own view owns nothing (its lease was not
 *   written, or more than CLOUD_PARTITION_MAX_MEMBERS instances are live
 *   and it is not among the first by name: every instance reads the same
 *   first ones, so the view stays one).
 *
 * Nothing is left unprocessed: a gateway whose owner changes is owned by
 * nobody for at most settle ms (longer only while the database cannot be
 * reached); what arrives meanwhile is dropped, and the protocols bring it
 * again: a gateway re-requests chunks it lacks and sends a status batch
 * again until it is acknowledged. A batch is acknowledged after its commit
 * only, so a batch the old owner committed and whose ack was lost, handled
 * again by the new owner, is de-duplicated by the inventory (records are
 * keyed by node and seq) and acknowledged then. An instance that dies is
 * taken over lease + settle ms (plus a beat) after its last beat; one that
 * stops cleanly removes its lease and is taken over after settle.
 *
 * Timing, from the lease: a beat every lease/10, settle 3 x lease/10.
 *
 * This module is pure: no clock, no database, no sockets. The caller
 * writes the lease and reads the live instances (cloud_partition_db.c),
 * passes the answer in (cloud_partition_view()), and asks, per message,
 * cloud_partition_owns(). */
#ifndef FERRY_CLOUD_PARTITION_H
#define FERRY_CLOUD_PARTITION_H

#include "cloud_db.h"
#include "ferry_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLOUD_PARTITION_MAX_MEMBERS 64   /* instances of one fleet a view holds */
#define CLOUD_PARTITION_MAX_VIEWS   16   /* views remembered (a settle's worth) */
#define CLOUD_PARTITION_LEASE_MIN   1000 /* ms */
#define CLOUD_PARTITION_LEASE_MAX   (3600 * 1000)
#define CLOUD_PARTITION_LEASE_DEF   10000

struct cloud_partition_opts {
    const char *self; /* this instance's name (an id, unique in the fleet) */
    int64_t lease_ms; /* CLOUD_PARTITION_LEASE_MIN..MAX */
};

struct cloud_partition;

/* FERRY_E_INVALID_ARG for a bad name or lease. */
enum ferry_err cloud_partition_new(const struct cloud_partition_opts *o,
                                   struct cloud_partition **out,
                                   struct ferry_diag *d) FERRY_MUST_CHECK;
void cloud_partition_free(struct cloud_partition *p); /* NULL is fine */

int64_t cloud_partition_beat_ms(const struct cloud_partition *p);   /* lease / 10 */
int64_t cloud_partition_settle_ms(const struct cloud_partition *p); /* 3 x lease / 10 */
int64_t cloud_partition_lease_ms(const struct cloud_partition *p);
const char *cloud_partition_self(const struct cloud_partition *p);

/* A view read at now: the live instances (any order; duplicates ignored),
 * at most CLOUD_PARTITION_MAX_MEMBERS. Returns whether it differs from the
 * previous view (for a log line). A view older than the last (the clock
 * stepped back) starts the history again: nothing is owned until settle ms
 * later. An invalid name is FERRY_E_PROTOCOL and the view is not taken. */
enum ferry_err cloud_partition_view(struct cloud_partition *p, int64_t now,
                                    const char *const *members, size_t n, bool *changed,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

/* Whether this instance handles gateway's work at now (the rules above). */
bool cloud_partition_owns(const struct cloud_partition *p, int64_t now, const char *gateway);

/* The owner of gateway by the newest view (for log lines), or NULL without
 * one; valid until the next view. */
const char *cloud_partition_owner(const struct cloud_partition *p, const char *gateway);

/* How many instances the newest view holds (0 without one). */
size_t cloud_partition_members(const struct cloud_partition *p);

/* ---- the lease table (cloud_partition_db.c), through cloud_db.h ---------- */

/* Once, before the first beat: creates the lease table where missing and
 * removes the fleet's leases that expired a day ago or more (instances
 * that were killed under names never used again). */
enum ferry_err cloud_partition_setup(struct cloud_db *db, const char *fleet, int64_t now,
                                     struct ferry_diag *d) FERRY_MUST_CHECK;

/* One beat on db: writes this instance's lease for fleet (expiring at now + lease), reads
 * the live instances and hands them to cloud_partition_view(). On an error
 * nothing is handed over (the view goes stale: this instance stops owning
 * after settle). */
enum ferry_err cloud_partition_beat(struct cloud_partition *p, struct cloud_db *db,
                                    const char *fleet, int64_t now, bool *changed,
                                    struct ferry_diag *d) FERRY_MUST_CHECK;

/* Removes this instance's lease (a clean stop: the others take over after
 * settle, not after the lease). */
enum ferry_err cloud_partition_leave(struct cloud_partition *p, struct cloud_db *db,
                                     const char *fleet, struct ferry_diag *d) FERRY_MUST_CHECK;

#endif
