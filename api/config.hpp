// Configuration of `flowrt serve` and `flowrt migrate`: defaults, then a JSON file
// (`--config FILE` / FLOWRT_CONFIG), then FLOWRT_* environment variables, then flags —
// each later source overriding the earlier ones. Every key is listed in docs/operations.md.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

#include "api/cli.hpp"
#include "sandbox/sandbox.hpp"

namespace flowrt::api {

struct ServerConfig {
  std::string listen = "127.0.0.1:8080";  // host:port; port 0 picks a free one
  std::string public_url;                 // base of webhook URLs; empty: http://<Host header>
  std::string database_url;               // empty: a local PostgreSQL under data_dir
  std::string data_dir = ".flowrt";       // local PostgreSQL cluster and other state
  std::string plugins_dir;                // empty: the bundled providers next to the binary
  int threads = 0;                        // HTTP threads; 0: four per core, at least 8
  int workers = 2;                        // inbox/outbox/timer worker threads
  int db_pool_size = 8;
  std::string admin_token;  // operator token (FLOWRT_ADMIN_TOKEN)
  size_t max_body_bytes = 1 << 20;
  double rate_limit_per_s = 50;  // per tenant
  double rate_limit_burst = 100;
  bool allow_private_network = false;  // api_call / webhook callbacks to private addresses
  bool migrate_on_start = true;
  sandbox::Limits script_limits;
  std::chrono::seconds outbox_give_up_after{3600};
};

// Reads the configuration for a command. Removes the flags it consumed from `args`.
// Throws std::invalid_argument with the source and key when a value is malformed
// ("FLOWRT_THREADS: must be a positive integer, not \"x\"").
ServerConfig load_server_config(Args& args);

// Script limits alone: the defaults of SPEC §3 overridden by FLOWRT_SCRIPT_INSTRUCTIONS,
// FLOWRT_SCRIPT_MEMORY_MB and FLOWRT_SCRIPT_TIMEOUT_MS, as `serve` reads them.
sandbox::Limits script_limits_from_env();

}  // namespace flowrt::api
