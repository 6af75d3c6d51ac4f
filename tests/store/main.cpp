// The store tests' main: one throwaway PostgreSQL cluster for the whole binary, with the
// project's migrations applied to its `flowrt` database.
#include <gtest/gtest.h>

#include "runtime/store/store.hpp"
#include "tests/store/fixture.hpp"

namespace flowrt::store_tests {
namespace {

testing::PostgresCluster* the_cluster = nullptr;
std::string the_url;

class ClusterEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    cluster_ = std::make_unique<testing::PostgresCluster>();
    the_cluster = cluster_.get();
    the_url = cluster_->url();
    st::StoreOptions options;
    options.database_url = the_url;
    options.migrations_folder = FLOWRT_SOURCE_MIGRATIONS_DIR;
    st::Store(options).migrate();
  }
  void TearDown() override {
    the_cluster = nullptr;
    cluster_.reset();
  }

 private:
  std::unique_ptr<testing::PostgresCluster> cluster_;
};

}  // namespace

testing::PostgresCluster& cluster() {
  return *the_cluster;
}
const std::string& database_url() {
  return the_url;
}

}  // namespace flowrt::store_tests

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new flowrt::store_tests::ClusterEnvironment);
  return RUN_ALL_TESTS();
}
