/* The database a unit test of the inventory runs on: an SQLite file in the
 * test's folder, or, when FERRY_TEST_PG names a PostgreSQL server (set by
 * tests/unit/pg_server.sh, which starts a real one in a temporary folder),
 * a database of that server. The same tests run on both (ctest runs them
 * twice: unit.<test> and unit.<test>.pg). */
#ifndef FERRY_TEST_DB_FIXTURE_H
#define FERRY_TEST_DB_FIXTURE_H

#include <stdbool.h>

/* The --db target for the database called name: the same name gives the
 * same database within one test process (a reopen sees what was stored);
 * on PostgreSQL the database is created on first use. Valid until the next
 * call. */
const char *ferry_test_db(const char *name);

/* The first column of the first row of sql run on target (0 when no row),
 * through a connection of its own: what a test checks behind the
 * inventory's back. */
long long ferry_test_db_scalar(const char *target, const char *sql);

/* Whether the tests run on PostgreSQL. A test of what only SQLite has (the
 * file's journal mode, an upgrade from an old file) says SKIP and returns. */
bool ferry_test_db_is_pg(void);

#endif
