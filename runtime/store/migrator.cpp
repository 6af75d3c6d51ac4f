#include "runtime/store/migrator.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>

#include "runtime/store/pool.hpp"
#include "runtime/store/util.hpp"

namespace flowrt::runtime::store {
namespace {

constexpr const char* kCreateTable = R"(
CREATE TABLE IF NOT EXISTS schema_migrations (
  version    integer PRIMARY KEY,
  name       text NOT NULL,
  checksum   text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
))";

struct Applied {
  std::string name;
  std::string checksum;
};

std::map<int, Applied> read_applied(pqxx::transaction_base& tx) {
  std::map<int, Applied> applied;
  auto exists = tx.exec("SELECT to_regclass('schema_migrations') IS NOT NULL");
  if (!exists[0][0].as<bool>()) return applied;
  for (const auto& row : tx.exec("SELECT version, name, checksum FROM schema_migrations")) {
    applied[row[0].as<int>()] = {row[1].as<std::string>(), row[2].as<std::string>()};
  }
  return applied;
}

MigrationStatus compare(const std::vector<MigrationFile>& files,
                        const std::map<int, Applied>& applied) {
  MigrationStatus status;
  for (const auto& file : files) {
    auto it = applied.find(file.version);
    if (it == applied.end()) {
      status.pending.push_back(file.name);
    } else {
      status.applied.push_back(file.name);
      if (it->second.checksum != file.checksum) status.changed.push_back(file.name);
    }
  }
  for (const auto& [version, row] : applied) {
    bool known = std::any_of(files.begin(), files.end(),
                             [&](const MigrationFile& f) { return f.version == version; });
    if (!known) status.unknown.push_back(row.name);
  }
  return status;
}

}  // namespace

std::vector<MigrationFile> load_migrations(const std::filesystem::path& folder) {
  std::error_code error;
  if (!std::filesystem::is_directory(folder, error)) {
    throw MigrationError("migrations folder " + folder.string() +
                         " does not exist or is not a directory");
  }
  std::vector<MigrationFile> files;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    std::string name = entry.path().filename().string();
    // NNNN_anything.sql
    size_t digits = 0;
    while (digits < name.size() && std::isdigit(static_cast<unsigned char>(name[digits]))) {
      ++digits;
    }
    bool matches = digits > 0 && digits < 10 && name.size() > digits + 4 && name[digits] == '_' &&
                   name.ends_with(".sql");
    if (!entry.is_regular_file() || !matches) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    if (!in) throw MigrationError("cannot read migration " + entry.path().string());
    std::stringstream text;
    text << in.rdbuf();
    MigrationFile file;
    file.version = std::stoi(name.substr(0, digits));
    file.name = name;
    file.sql = text.str();
    file.checksum = sha256_hex(file.sql);
    files.push_back(std::move(file));
  }
  std::sort(files.begin(), files.end(),
            [](const auto& a, const auto& b) { return a.version < b.version; });
  for (size_t i = 1; i < files.size(); ++i) {
    if (files[i].version == files[i - 1].version) {
      throw MigrationError("migrations " + files[i - 1].name + " and " + files[i].name +
                           " have the same number; renumber one of them");
    }
  }
  return files;
}

Migrator::Migrator(ConnectionPool& pool, std::filesystem::path folder)
    : pool_(pool), folder_(std::move(folder)) {}

MigrationStatus Migrator::status() {
  auto files = load_migrations(folder_);
  auto applied = pool_.transact([](pqxx::work& tx) { return read_applied(tx); });
  return compare(files, applied);
}

std::vector<std::string> Migrator::migrate() {
  auto files = load_migrations(folder_);
  auto lease = pool_.acquire();
  pqxx::connection_base& connection = *lease;
  // A session-level lock, held while each file commits in its own transaction.
  {
    pqxx::nontransaction tx(connection);
    tx.exec_params("SELECT pg_advisory_lock($1)", kMigrationLockKey);
  }
  struct Unlock {
    pqxx::connection_base& connection;
    ConnectionPool::Lease& lease;
    ~Unlock() {
      try {
        pqxx::nontransaction tx(connection);
        tx.exec_params("SELECT pg_advisory_unlock($1)", kMigrationLockKey);
      } catch (...) {
        lease.discard();  // closing the session releases the lock
      }
    }
  } unlock{connection, lease};

  {
    pqxx::work tx(connection);
    tx.exec(kCreateTable);
    tx.commit();
  }
  std::map<int, Applied> applied;
  {
    pqxx::work tx(connection);
    applied = read_applied(tx);
    tx.commit();
  }
  MigrationStatus status = compare(files, applied);
  if (!status.changed.empty()) {
    std::string names;
    for (const auto& name : status.changed) names += (names.empty() ? "" : ", ") + name;
    throw MigrationError("migration " + names +
                         " changed after it was applied (its checksum no longer matches); "
                         "restore the original file and put schema changes in a new file");
  }
  std::vector<std::string> done;
  for (const auto& file : files) {
    if (applied.count(file.version)) continue;
    try {
      pqxx::work tx(connection);
      tx.exec(file.sql);
      tx.exec_params("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                     file.version, file.name, file.checksum);
      tx.commit();
    } catch (const std::exception& error) {
      throw MigrationError("migration " + file.name + " failed: " + error.what());
    }
    done.push_back(file.name);
  }
  return done;
}

}  // namespace flowrt::runtime::store
