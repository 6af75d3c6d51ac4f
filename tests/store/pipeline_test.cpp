// The pipeline under the durable turn, driven directly: what a failing statement does to the
// round trip, to the session and to the statements prepared in it.
#include "runtime/store/pipeline.hpp"
#include "tests/store/fixture.hpp"

namespace flowrt::store_tests {
namespace {

st::PoolOptions one_connection() {
  st::PoolOptions options;
  options.url = database_url();
  options.size = 1;
  return options;
}

// A statement that fails stops the round trip: it throws with its SQLSTATE and constraint,
// the statements behind it do not run, a PREPARE that did not run is prepared again next
// time, and the connection is out of pipeline mode and usable.
TEST(Pipeline, AFailingStatementStopsTheRoundTripAndLeavesTheSessionUsable) {
  st::ConnectionPool pool(one_connection());
  auto lease = pool.acquire();
  {
    pqxx::nontransaction tx(*lease);
    tx.exec("CREATE TEMP TABLE seen (id int PRIMARY KEY)");
    tx.exec("INSERT INTO seen VALUES (1)");
  }
  st::Pipeline pipeline(*lease);
  pipeline.prepared("insert_seen", "INSERT INTO seen VALUES ($1::int)", {"1"});
  pipeline.prepared("count_seen", "SELECT count(*) FROM seen", {});
  try {
    pipeline.run();
    FAIL() << "the duplicate key did not throw";
  } catch (const st::PipelineError& error) {
    EXPECT_EQ(error.sqlstate(), "23505");
    EXPECT_EQ(error.constraint, "seen_pkey");
    EXPECT_NE(std::string(error.what()).find("duplicate key"), std::string::npos) << error.what();
  }
  EXPECT_EQ(PQpipelineStatus(lease->handle()), PQ_PIPELINE_OFF);
  EXPECT_EQ(PQtransactionStatus(lease->handle()), PQTRANS_IDLE);
  // count_seen's PREPARE was skipped with the rest of the round trip: it is prepared anew.
  pipeline.prepared("insert_seen", "INSERT INTO seen VALUES ($1::int)", {"2"});
  pipeline.prepared("count_seen", "SELECT count(*) FROM seen", {});
  auto results = pipeline.run();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[1][0][0].as<int>(), 2);
}

// A transaction left without a commit is rolled back and its connection left idle; one
// whose session is gone is discarded, and the pool opens a new one.
TEST(Pipeline, ATransactionLeftWithoutCommitRollsBackOrDiscardsItsConnection) {
  st::ConnectionPool pool(one_connection());
  int backend;
  {
    auto lease = pool.acquire();
    backend = PQbackendPID(lease->handle());
    st::PipelinedTransaction transaction(lease);
    transaction.pipeline().prepared("now", "SELECT now()", {});
    transaction.run();
    EXPECT_EQ(PQtransactionStatus(lease->handle()), PQTRANS_INTRANS);
  }
  {
    auto lease = pool.acquire();
    EXPECT_EQ(PQbackendPID(lease->handle()), backend) << "an idle connection was not kept";
    EXPECT_EQ(PQtransactionStatus(lease->handle()), PQTRANS_IDLE);
    st::PipelinedTransaction transaction(lease);
    transaction.run();
    pqxx::connection admin(database_url());
    pqxx::nontransaction tx(admin);
    tx.exec("SELECT pg_terminate_backend(" + std::to_string(backend) + ")");
    transaction.pipeline().prepared("now", "SELECT now()", {});
    EXPECT_THROW(transaction.commit(), pqxx::in_doubt_error);
  }
  auto lease = pool.acquire();
  EXPECT_NE(PQbackendPID(lease->handle()), backend) << "a lost session came back to the pool";
  EXPECT_EQ(PQstatus(lease->handle()), CONNECTION_OK);
}

}  // namespace
}  // namespace flowrt::store_tests
