#include "cunit_main.h"

#include "cloud_db.h"
#include "db_fixture.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static struct cloud_db *open_db(const char *name)
{
    struct cloud_db *db = NULL;
    struct ferry_diag d = {{0}};
    enum ferry_err err = cloud_db_open(ferry_test_db(name), true, &db, &d);
    if (err != FERRY_OK)
        fprintf(stderr, "open: %s\n", d.msg);
    CU_ASSERT_EQUAL_FATAL(err, FERRY_OK);
    return db;
}

static enum ferry_err add_event(struct cloud_db *db, int64_t at, const char *kind,
                                struct ferry_diag *d)
{
    return cloud_db_run(db, CLOUD_Q_INSERT_EVENT,
                        DB_ARGS(DB_INT(at), DB_TEXT(kind), DB_TEXT("n1"), DB_TEXT("")), NULL, NULL,
                        NULL, "logging an event", d);
}

static enum ferry_err count_row(void *arg, const struct cloud_db_row *r)
{
    (void)r;
    (*(int *)arg)++;
    return FERRY_OK;
}

static int count_events(struct cloud_db *db)
{
    int n = 0;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(cloud_db_run(db, CLOUD_Q_SELECT_EVENTS, NULL, 0, count_row, &n, NULL,
                                 "counting events", &d),
                    FERRY_OK);
    return n;
}

static void a_url_with_a_password_is_refused_unechoed(void)
{
    struct cloud_db *db = NULL;
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(cloud_db_open("postgresql://ferry:s3cret@db.example/ferry", true, &db, &d),
                    FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NULL(db);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "password file"));
    CU_ASSERT_PTR_NULL(strstr(d.msg, "s3cret"));
    CU_ASSERT_EQUAL(cloud_db_open("postgres://db.example/ferry?password=s3cret", true, &db, &d),
                    FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NULL(strstr(d.msg, "s3cret"));
    struct stat st;
    CU_ASSERT_NOT_EQUAL(stat("postgresql:", &st), 0); /* nothing made of the URL */
    CU_ASSERT_EQUAL(cloud_db_open("", true, &db, &d), FERRY_E_INVALID_ARG);
}

/* Walk the events and, for each, walk them all again: the inner run must
 * not reset the outer one's statement. */
struct nested {
    struct cloud_db *db;
    int outer, inner;
};

static enum ferry_err walk_again(void *arg, const struct cloud_db_row *r)
{
    struct nested *x = arg;
    int64_t at = 0;
    CU_ASSERT_TRUE(cloud_db_int(r, 0, &at));
    CU_ASSERT_EQUAL(at, 100 + x->outer);
    x->outer++;
    struct ferry_diag d = {{0}};
    return cloud_db_run(x->db, CLOUD_Q_SELECT_EVENTS, NULL, 0, count_row, &x->inner, NULL,
                        "walking again", &d);
}

static void a_callback_may_run_the_same_query(void)
{
    struct cloud_db *db = open_db("nested");
    struct ferry_diag d = {{0}};
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL_FATAL(add_event(db, 100 + i, "bound", &d), FERRY_OK);
    struct nested x = {db, 0, 0};
    CU_ASSERT_EQUAL(
        cloud_db_run(db, CLOUD_Q_SELECT_EVENTS, NULL, 0, walk_again, &x, NULL, "walking", &d),
        FERRY_OK);
    CU_ASSERT_EQUAL(x.outer, 3);
    CU_ASSERT_EQUAL(x.inner, 9);
    cloud_db_close(db);
}

static void transactions_commit_roll_back_and_refuse_misuse(void)
{
    struct cloud_db *db = open_db("txn");
    struct ferry_diag d = {{0}};
    CU_ASSERT_EQUAL(cloud_db_commit(db, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(d.msg, "no transaction"));

    CU_ASSERT_EQUAL_FATAL(cloud_db_begin(db, CLOUD_DB_WRITE, &d), FERRY_OK);
    CU_ASSERT_TRUE(cloud_db_in_txn(db));
    CU_ASSERT_EQUAL(cloud_db_begin(db, CLOUD_DB_EXCLUSIVE, &d), FERRY_E_INVALID_ARG);
    CU_ASSERT_TRUE(cloud_db_in_txn(db)); /* the open one is untouched */
    CU_ASSERT_EQUAL(add_event(db, 1, "bound", &d), FERRY_OK);
    cloud_db_rollback(db);
    CU_ASSERT_FALSE(cloud_db_in_txn(db));
    CU_ASSERT_EQUAL(count_events(db), 0);

    CU_ASSERT_EQUAL_FATAL(cloud_db_begin(db, CLOUD_DB_EXCLUSIVE, &d), FERRY_OK);
    CU_ASSERT_EQUAL(add_event(db, 2, "bound", &d), FERRY_OK);
    CU_ASSERT_EQUAL(cloud_db_commit(db, &d), FERRY_OK);
    CU_ASSERT_FALSE(cloud_db_in_txn(db));
    cloud_db_close(db);

    /* committed means on disk: another connection sees it */
    db = open_db("txn");
    CU_ASSERT_EQUAL(count_events(db), 1);
    cloud_db_close(db);
}

static void changed_counts_what_a_statement_wrote(void)
{
    struct cloud_db *db = open_db("changed");
    struct ferry_diag d = {{0}};
    uint64_t n = 99;
    CU_ASSERT_EQUAL(cloud_db_run(db, CLOUD_Q_ROLLOUT_GW_HALT,
                                 DB_ARGS(DB_INT(1), DB_TEXT("gw-1"), DB_INT(0)), NULL, NULL, &n,
                                 "halting", &d),
                    FERRY_OK);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(cloud_db_run(db, CLOUD_Q_ROLLOUT_GW_HALT,
                                 DB_ARGS(DB_INT(1), DB_TEXT("gw-1"), DB_INT(0)), NULL, NULL, &n,
                                 "halting again", &d),
                    FERRY_OK);
    CU_ASSERT_EQUAL(n, 0); /* already there: ignored */
    /* a read says nothing changed */
    n = 99;
    CU_ASSERT_EQUAL(cloud_db_run(db, CLOUD_Q_SELECT_EVENTS, NULL, 0, NULL, NULL, &n, "reading", &d),
                    FERRY_OK);
    CU_ASSERT_EQUAL(n, 0);
    cloud_db_close(db);
}

static enum ferry_err stop_at_first(void *arg, const struct cloud_db_row *r)
{
    (void)r;
    (*(int *)arg)++;
    return FERRY_E_BUSY;
}

static void a_callback_error_stops_the_query(void)
{
    struct cloud_db *db = open_db("stop");
    struct ferry_diag d = {{0}};
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL_FATAL(add_event(db, i, "bound", &d), FERRY_OK);
    int seen = 0;
    CU_ASSERT_EQUAL(
        cloud_db_run(db, CLOUD_Q_SELECT_EVENTS, NULL, 0, stop_at_first, &seen, NULL, "reading", &d),
        FERRY_E_BUSY);
    CU_ASSERT_EQUAL(seen, 1);
    /* and the statement is usable again */
    CU_ASSERT_EQUAL(count_events(db), 3);
    cloud_db_close(db);
}

const char *const ferry_suite_name = "cloud_db";
const struct ferry_test_case ferry_tests[] = {
    {"a URL with a password is refused, unechoed", a_url_with_a_password_is_refused_unechoed},
    {"a callback may run the same query", a_callback_may_run_the_same_query},
    {"transactions commit, roll back and refuse misuse",
     transactions_commit_roll_back_and_refuse_misuse},
    {"changed counts what a statement wrote", changed_counts_what_a_statement_wrote},
    {"a callback error stops the query", a_callback_error_stops_the_query},
    {NULL, NULL},
};
