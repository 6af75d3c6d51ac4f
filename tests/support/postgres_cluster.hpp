// A throwaway PostgreSQL cluster for a test binary: LocalPostgres in a fresh temporary
// folder with the unsafe fast settings (fsync off), removed again when the object goes.
// Tests create one per binary (a GoogleTest global Environment) and a database per need.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "runtime/store/local_postgres.hpp"

namespace flowrt::testing {

class PostgresCluster {
 public:
  PostgresCluster();   // starts it; throws LocalPostgresError when PostgreSQL cannot start
  ~PostgresCluster();  // stops it and removes the folder

  // URL of the default database (`flowrt`).
  std::string url() const { return server_->url(); }
  // Creates database `name` (dropping an older one) and returns its URL.
  std::string create_database(const std::string& name);
  runtime::store::LocalPostgres& server() { return *server_; }

 private:
  std::filesystem::path folder_;
  std::unique_ptr<runtime::store::LocalPostgres> server_;
};

}  // namespace flowrt::testing
