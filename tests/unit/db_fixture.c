#include "db_fixture.h"

#include "cunit_main.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool ferry_test_db_is_pg(void)
{
    const char *pg = getenv("FERRY_TEST_PG");
    return pg && pg[0];
}

/* CREATE DATABASE, once per name: a second call finds it there. */
static void create_database(const char *host, const char *db)
{
    char conninfo[PATH_MAX + 64];
    snprintf(conninfo, sizeof(conninfo), "host=%s user=ferry dbname=postgres", host);
    PGconn *c = PQconnectdb(conninfo);
    CU_ASSERT_EQUAL_FATAL(PQstatus(c), CONNECTION_OK);
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
    PGresult *r = PQexec(c, sql);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || (state && strcmp(state, "42P04") == 0);
    if (!ok)
        fprintf(stderr, "CREATE DATABASE %s: %s\n", db, PQerrorMessage(c));
    CU_ASSERT_TRUE_FATAL(ok);
    PQclear(r);
    PQfinish(c);
}

const char *ferry_test_db(const char *name)
{
    static char target[PATH_MAX + 128];
    if (!ferry_test_db_is_pg()) {
        snprintf(target, sizeof(target), "%s/%s.db", ferry_test_tmpdir(), name);
        return target;
    }
    /* A database name from the test's name: lower case letters, digits, _ */
    char db[48] = "t_";
    size_t n = 2;
    for (const char *p = name; *p && n + 1 < sizeof(db); p++)
        db[n++] = isalnum((unsigned char)*p) ? (char)tolower((unsigned char)*p) : '_';
    db[n] = 0;
    const char *host = getenv("FERRY_TEST_PG");
    create_database(host, db);
    snprintf(target, sizeof(target), "postgresql://ferry@/%s?host=%s", db, host);
    return target;
}

long long ferry_test_db_scalar(const char *target, const char *sql)
{
    long long v = 0;
    if (ferry_test_db_is_pg()) {
        PGconn *c = PQconnectdb(target);
        CU_ASSERT_EQUAL_FATAL(PQstatus(c), CONNECTION_OK);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            fprintf(stderr, "%s: %s\n", sql, PQerrorMessage(c));
        CU_ASSERT_EQUAL_FATAL(PQresultStatus(r), PGRES_TUPLES_OK);
        if (PQntuples(r) > 0)
            v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(c);
        return v;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_open_v2(target, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    CU_ASSERT_EQUAL_FATAL(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}
