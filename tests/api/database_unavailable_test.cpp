// Which exceptions `flowrt serve` answers with 503 instead of 500 (api/app/serve_support.hpp).
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include "api/app/serve_support.hpp"

namespace flowrt::api {
namespace {

TEST(DatabaseUnavailable, AnUnreachableDatabaseIs503WithRetryAfter) {
  for (const auto& error : std::vector<std::exception_ptr>{
           std::make_exception_ptr(pqxx::broken_connection("server closed the connection")),
           std::make_exception_ptr(pqxx::sql_error("too many clients", "", "53300")),
           std::make_exception_ptr(pqxx::sql_error("shutting down", "", "57P01")),
           std::make_exception_ptr(pqxx::sql_error("connection failure", "", "08006"))}) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      auto problem = database_unavailable(e);
      ASSERT_TRUE(problem) << e.what();
      EXPECT_EQ(problem->status, 503);
      EXPECT_EQ(problem->detail, "The database is not reachable right now; retry shortly.");
      EXPECT_EQ(problem->headers.get("Retry-After").value_or(""), "2");
    }
  }
}

// The store reports a connection lost while COMMIT was in flight as in doubt and never retries
// it; the answer says that the outcome is unknown.
TEST(DatabaseUnavailable, ACommitLostInFlightIs503SayingTheOutcomeIsUnknown) {
  auto problem = database_unavailable(pqxx::in_doubt_error("lost while committing"));
  ASSERT_TRUE(problem);
  EXPECT_EQ(problem->status, 503);
  EXPECT_NE(problem->detail.find("may or may not have taken effect"), std::string::npos)
      << problem->detail;
  EXPECT_EQ(problem->headers.get("Retry-After").value_or(""), "2");
}

TEST(DatabaseUnavailable, OtherErrorsAreNot) {
  EXPECT_FALSE(database_unavailable(pqxx::sql_error("duplicate key", "", "23505")));
  EXPECT_FALSE(database_unavailable(pqxx::usage_error("bad parameter count")));
  EXPECT_FALSE(database_unavailable(std::runtime_error("disk on fire")));
}

}  // namespace
}  // namespace flowrt::api
