// A PostgreSQL cluster that flowrt runs itself, for the zero-set-up default and for tests.
//
// start() initialises the cluster under `folder` on first use (initdb, trust
// authentication, a `flowrt` database), then starts it with `pg_ctl` listening on a Unix
// socket only (no TCP port at all), so only the local user can reach it. The socket lives
// in `<folder>/run`, or, when that path is too long for a Unix socket, in a private folder
// under /tmp. The destructor stops a cluster this object started (`pg_ctl stop -m fast`);
// a cluster that was already running (another flowrt process owns it) is used and left
// running.
//
// PostgreSQL refuses to run as root. When the effective user is root, every server command
// runs as the `postgres` system user (via `runuser`), and the folder is handed to it.
//
// Not thread-safe; one object per folder.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>

namespace flowrt::runtime::store {

struct LocalPostgresOptions {
  std::filesystem::path folder;  // created if missing; holds data/, run/ and postgres.log
  std::filesystem::path bin_dir = "/usr/lib/postgresql/15/bin";
  std::string database = "flowrt";
  // For throwaway test clusters only: fsync off, no full-page writes, asynchronous commit.
  // A crash of the machine can lose or corrupt data with these.
  bool unsafe_fast = false;
  int max_connections = 200;
  std::string run_as = "postgres";  // the user server commands run as when we are root
};

class LocalPostgresError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class LocalPostgres {
 public:
  explicit LocalPostgres(LocalPostgresOptions options);
  ~LocalPostgres();  // stop() if this object started the server
  LocalPostgres(const LocalPostgres&) = delete;
  LocalPostgres& operator=(const LocalPostgres&) = delete;

  // Initialises (first run) and starts the server, then creates the database if missing.
  // Throws LocalPostgresError with the tool's output when a step fails.
  void start();
  void stop();

  // libpq URL of the database, e.g. "postgresql:///flowrt?host=/path/run&port=5432".
  std::string url() const { return url_for(options_.database); }
  std::string url_for(const std::string& database) const;
  const std::filesystem::path& socket_dir() const { return socket_dir_; }
  int port() const { return port_; }
  // The user to connect as ("postgres" when run as root, else the current user).
  const std::string& user() const { return user_; }
  // Runs a PostgreSQL client program from bin_dir with the connection environment set
  // (PGHOST, PGPORT, PGUSER); returns its exit status. For pgbench in benchmarks.
  int run_client(const std::string& program, const std::string& arguments) const;

 private:
  std::string server_command(const std::string& command) const;

  LocalPostgresOptions options_;
  std::filesystem::path data_dir_;
  std::filesystem::path socket_dir_;
  std::string user_;
  int port_ = 5432;
  bool as_root_ = false;
  bool started_here_ = false;
};

}  // namespace flowrt::runtime::store
