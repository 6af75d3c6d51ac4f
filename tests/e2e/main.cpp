// The end-to-end tests' main: one throwaway PostgreSQL cluster for the whole binary; each
// suite takes its own database from it (database_url) and starts its own servers.
#include <gtest/gtest.h>

#include "tests/e2e/serve_process.hpp"
#include "tests/support/postgres_cluster.hpp"

namespace flowrt::e2e {
namespace {

std::unique_ptr<testing::PostgresCluster> the_cluster;

class ClusterEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { the_cluster = std::make_unique<testing::PostgresCluster>(); }
  void TearDown() override { the_cluster.reset(); }
};

}  // namespace

std::string database_url(const std::string& name) {
  return the_cluster->create_database(name);
}

}  // namespace flowrt::e2e

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new flowrt::e2e::ClusterEnvironment);
  return RUN_ALL_TESTS();
}
