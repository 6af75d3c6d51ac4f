#include "tests/support/postgres_cluster.hpp"

#include <stdlib.h>

#include <pqxx/pqxx>

namespace flowrt::testing {

PostgresCluster::PostgresCluster() {
  std::string pattern = (std::filesystem::temp_directory_path() / "flowrt-pg-test-XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
  folder_ = pattern;
  runtime::store::LocalPostgresOptions options;
  options.folder = folder_;
  options.unsafe_fast = true;
  server_ = std::make_unique<runtime::store::LocalPostgres>(options);
  server_->start();
}

PostgresCluster::~PostgresCluster() {
  try {
    server_->stop();
  } catch (...) {
  }
  server_.reset();
  std::error_code ignored;
  std::filesystem::remove_all(folder_, ignored);
}

std::string PostgresCluster::create_database(const std::string& name) {
  pqxx::connection admin(server_->url_for("postgres"));
  pqxx::nontransaction tx(admin);
  tx.exec("DROP DATABASE IF EXISTS " + tx.quote_name(name) + " WITH (FORCE)");
  tx.exec("CREATE DATABASE " + tx.quote_name(name));
  return server_->url_for(name);
}

}  // namespace flowrt::testing
