// Schema migrations: numbered SQL files (`NNNN_name.sql`) in one folder, applied in order.
//
// Each file runs in its own transaction together with the row that records it (version,
// name, SHA-256 of the text) in `schema_migrations`, so a file is applied entirely or not
// at all. All migrators of all processes serialise on a PostgreSQL advisory lock held for
// the whole run, so two `flowrt serve` processes starting together apply each file once.
// A file that was applied and has changed since is refused, with its name, before anything
// is applied: edit the schema with a new file instead.
//
// The folder is given by the caller (the `flowrt` binary passes the installed or source
// `migrations/` folder); files are read at run time, so a deployment ships the folder next
// to the binary.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace flowrt::runtime::store {

class ConnectionPool;

struct MigrationFile {
  int version = 0;   // the number the file name starts with
  std::string name;  // the file name, e.g. "0001_initial.sql"
  std::string sql;
  std::string checksum;  // hex SHA-256 of `sql`
};

struct MigrationStatus {
  std::vector<std::string> applied;  // file names, in order
  std::vector<std::string> pending;  // file names not applied yet, in order
  std::vector<std::string> changed;  // applied files whose text differs from the folder's
  std::vector<std::string> unknown;  // applied versions with no file in the folder
  bool current() const { return pending.empty() && changed.empty(); }
};

// Thrown for a bad folder, a changed applied file, or a failed migration (the message names
// the file and carries PostgreSQL's error).
class MigrationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads `NNNN_*.sql` from `folder`, sorted by number. Throws MigrationError on duplicate
// numbers or an unreadable folder.
std::vector<MigrationFile> load_migrations(const std::filesystem::path& folder);

class Migrator {
 public:
  Migrator(ConnectionPool& pool, std::filesystem::path folder);

  // Applies every pending file in order; returns the names applied by this call (empty if
  // another process applied them first). Throws MigrationError.
  std::vector<std::string> migrate();

  // Compares the database with the folder without changing anything (for /readyz).
  MigrationStatus status();

 private:
  ConnectionPool& pool_;
  std::filesystem::path folder_;
};

// The advisory lock key every migrator takes ("flowrt migrations").
inline constexpr long long kMigrationLockKey = 0x666c6f77'72746d67LL;

}  // namespace flowrt::runtime::store
