#include "runtime/store/local_postgres.hpp"

#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <functional>
#include <pqxx/pqxx>
#include <sstream>
#include <thread>

namespace flowrt::runtime::store {
namespace {

std::string quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// Runs a shell command, returns (exit status, combined output).
std::pair<int, std::string> run(const std::string& command) {
  std::string output;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) output.append(buffer.data(), n);
  int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

std::string current_user() {
  if (passwd* pw = getpwuid(geteuid())) return pw->pw_name;
  return "postgres";
}

}  // namespace

LocalPostgres::LocalPostgres(LocalPostgresOptions options) : options_(std::move(options)) {
  if (options_.folder.empty()) throw LocalPostgresError("LocalPostgres needs a folder");
  options_.folder = std::filesystem::absolute(options_.folder);
  data_dir_ = options_.folder / "data";
  as_root_ = geteuid() == 0;
  user_ = as_root_ ? options_.run_as : current_user();
  socket_dir_ = options_.folder / "run";
  // sun_path holds 107 bytes; the socket file is "<dir>/.s.PGSQL.5432".
  if (socket_dir_.string().size() + 20 > 100) {
    socket_dir_ = std::filesystem::path("/tmp") /
                  ("flowrt-pg-" + std::to_string(std::hash<std::string>()(options_.folder)) + "-" +
                   std::to_string(geteuid()));
  }
}

LocalPostgres::~LocalPostgres() {
  try {
    stop();
  } catch (...) {
  }
}

std::string LocalPostgres::server_command(const std::string& command) const {
  if (!as_root_) return command;
  return "runuser -u " + quote(options_.run_as) + " -- " + command;
}

std::string LocalPostgres::url_for(const std::string& database) const {
  return "postgresql:///" + database + "?host=" + socket_dir_.string() +
         "&port=" + std::to_string(port_) + "&user=" + user_;
}

void LocalPostgres::start() {
  namespace fs = std::filesystem;
  fs::create_directories(options_.folder);
  fs::create_directories(socket_dir_);
  ::chmod(options_.folder.c_str(), 0700);
  ::chmod(socket_dir_.c_str(), 0700);
  if (as_root_) {
    passwd* pw = getpwnam(options_.run_as.c_str());
    if (!pw) {
      throw LocalPostgresError("running as root, but there is no '" + options_.run_as +
                               "' user to run PostgreSQL as; create it or run as another user");
    }
    for (const auto& path : {options_.folder, socket_dir_}) {
      if (::chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        throw LocalPostgresError("cannot hand " + path.string() + " to user " + options_.run_as);
      }
    }
    // Every folder above ours must let that user through; a clone under /root does not.
    if (run(server_command("test -x " + quote(options_.folder.string()))).first != 0) {
      throw LocalPostgresError(
          "PostgreSQL refuses to run as root, so flowrt runs it as the '" + options_.run_as +
          "' user, who cannot reach " + options_.folder.string() +
          " (a folder above it is private). Give flowrt a data folder that user can reach "
          "(--data-dir /var/lib/flowrt, say) or run flowrt as a normal user.");
    }
    if (fs::exists(data_dir_)) {
      run("chown -R " + quote(options_.run_as) + ": " + quote(data_dir_.string()));
    }
  }
  const std::string bin = options_.bin_dir.string() + "/";
  if (!fs::exists(data_dir_ / "PG_VERSION")) {
    auto [status, output] = run(server_command(
        quote(bin + "initdb") + " -D " + quote(data_dir_.string()) + " -U " + quote(user_) +
        " --auth=trust --encoding=UTF8 --locale=C.UTF-8 --no-instructions" +
        (options_.unsafe_fast ? " --no-sync" : "")));
    if (status != 0) {
      throw LocalPostgresError("initdb failed for " + data_dir_.string() + ":\n" + output);
    }
    std::ofstream conf(data_dir_ / "postgresql.conf", std::ios::app);
    conf << "\n# flowrt: Unix socket only, no TCP\n"
         << "listen_addresses = ''\n"
         << "unix_socket_directories = '" << socket_dir_.string() << "'\n"
         << "unix_socket_permissions = 0700\n"
         << "port = " << port_ << "\n"
         << "max_connections = " << options_.max_connections << "\n";
    if (options_.unsafe_fast) {
      conf << "# throwaway cluster: speed over durability\n"
           << "fsync = off\nfull_page_writes = off\nsynchronous_commit = off\n";
    }
  }
  auto [running, ignored] =
      run(server_command(quote(bin + "pg_ctl") + " status -D " + quote(data_dir_.string())));
  (void)ignored;
  if (running != 0) {
    auto [status, output] = run(server_command(quote(bin + "pg_ctl") + " start -w -t 60 -D " +
                                               quote(data_dir_.string()) + " -l " +
                                               quote((options_.folder / "postgres.log").string()) +
                                               " -o " + quote("-k " + socket_dir_.string())));
    if (status != 0) {
      std::string log;
      std::ifstream in(options_.folder / "postgres.log");
      std::stringstream text;
      text << in.rdbuf();
      log = text.str();
      if (log.size() > 4000) log = log.substr(log.size() - 4000);
      throw LocalPostgresError("pg_ctl start failed for " + data_dir_.string() + ":\n" + output +
                               "\nserver log (end):\n" + log);
    }
    started_here_ = true;
  }
  // The database, created on first start.
  pqxx::connection admin(url_for("postgres"));
  pqxx::nontransaction tx(admin);
  auto exists = tx.exec_params("SELECT 1 FROM pg_database WHERE datname = $1", options_.database);
  if (exists.empty()) {
    try {
      tx.exec("CREATE DATABASE " + tx.quote_name(options_.database));
    } catch (const pqxx::sql_error& error) {
      if (error.sqlstate() != "42P04") throw;  // created concurrently by another process
    }
  }
}

void LocalPostgres::stop() {
  if (!started_here_) return;
  started_here_ = false;
  auto [status, output] = run(server_command(quote(options_.bin_dir.string() + "/pg_ctl") +
                                             " stop -w -m fast -D " + quote(data_dir_.string())));
  if (status != 0) {
    throw LocalPostgresError("pg_ctl stop failed for " + data_dir_.string() + ":\n" + output);
  }
}

int LocalPostgres::run_client(const std::string& program, const std::string& arguments) const {
  std::string command = "PGHOST=" + quote(socket_dir_.string()) +
                        " PGPORT=" + std::to_string(port_) + " PGUSER=" + quote(user_) + " " +
                        quote(options_.bin_dir.string() + "/" + program) + " " + arguments;
  return std::system(command.c_str());
}

}  // namespace flowrt::runtime::store
