// flowrt plugins [--plugins DIR] and flowrt migrate [--database-url URL] [--data-dir DIR]
#include <filesystem>

#include "api/cli.hpp"
#include "api/config.hpp"
#include "runtime/plugin_host/plugin_host.hpp"
#include "runtime/store/local_postgres.hpp"
#include "runtime/store/store.hpp"

namespace flowrt::api {

int plugins_command(const Args& given, std::ostream& out, std::ostream&) {
  Args args = given;
  ServerConfig config = load_server_config(args);
  std::filesystem::path directory = config.plugins_dir.empty()
                                        ? runtime::plugin_host::bundled_plugin_directory()
                                        : std::filesystem::path(config.plugins_dir);
  return runtime::plugin_host::run_plugins_command(directory, out);
}

int migrate_command(const Args& given, std::ostream& out, std::ostream&) {
  Args args = given;
  ServerConfig config = load_server_config(args);
  std::unique_ptr<runtime::store::LocalPostgres> local;
  std::string url = config.database_url;
  if (url.empty()) {
    runtime::store::LocalPostgresOptions options;
    options.folder = std::filesystem::absolute(config.data_dir) / "postgres";
    local = std::make_unique<runtime::store::LocalPostgres>(options);
    local->start();
    url = local->url();
  }
  runtime::store::StoreOptions options;
  options.database_url = url;
  options.pool_size = 1;
  options.migrations_folder = FLOWRT_SOURCE_MIGRATIONS_DIR;
  runtime::store::Store store(options);
  auto applied = store.migrate();
  for (const auto& name : applied) out << "applied " << name << "\n";
  out << (applied.empty() ? "migrations are current\n" : "done\n");
  return 0;
}

}  // namespace flowrt::api
