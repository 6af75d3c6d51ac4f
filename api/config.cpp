#include "api/config.hpp"

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

namespace flowrt::api {
namespace {

using Json = nlohmann::json;

long long parse_integer(const std::string& source, const std::string& text, long long min) {
  char* end = nullptr;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || value < min) {
    throw std::invalid_argument(source + ": must be an integer >= " + std::to_string(min) +
                                ", not \"" + text + "\"");
  }
  return value;
}

double parse_number(const std::string& source, const std::string& text) {
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(value > 0)) {
    throw std::invalid_argument(source + ": must be a positive number, not \"" + text + "\"");
  }
  return value;
}

bool parse_bool(const std::string& source, const std::string& text) {
  if (text == "1" || text == "true" || text == "yes") return true;
  if (text == "0" || text == "false" || text == "no") return false;
  throw std::invalid_argument(source + ": must be true or false, not \"" + text + "\"");
}

// Applies one key/value from any source. `source` names it in errors.
void apply(ServerConfig& c, const std::string& key, const std::string& value,
           const std::string& source) {
  if (key == "listen") {
    if (value.find(':') == std::string::npos) {
      throw std::invalid_argument(source + ": must be host:port, not \"" + value + "\"");
    }
    c.listen = value;
  } else if (key == "public_url") {
    c.public_url = value;
  } else if (key == "database_url") {
    c.database_url = value;
  } else if (key == "data_dir") {
    c.data_dir = value;
  } else if (key == "plugins") {
    c.plugins_dir = value;
  } else if (key == "threads") {
    c.threads = static_cast<int>(parse_integer(source, value, 1));
  } else if (key == "workers") {
    c.workers = static_cast<int>(parse_integer(source, value, 1));
  } else if (key == "db_pool_size") {
    c.db_pool_size = static_cast<int>(parse_integer(source, value, 1));
  } else if (key == "admin_token") {
    c.admin_token = value;
  } else if (key == "max_body_bytes") {
    c.max_body_bytes = static_cast<size_t>(parse_integer(source, value, 1024));
  } else if (key == "rate_limit_per_s") {
    c.rate_limit_per_s = parse_number(source, value);
  } else if (key == "rate_limit_burst") {
    c.rate_limit_burst = parse_number(source, value);
  } else if (key == "allow_private_network") {
    c.allow_private_network = parse_bool(source, value);
  } else if (key == "migrate") {
    c.migrate_on_start = parse_bool(source, value);
  } else if (key == "script_instructions") {
    c.script_limits.instructions = static_cast<uint64_t>(parse_integer(source, value, 1));
  } else if (key == "script_memory_mb") {
    c.script_limits.memory_bytes = static_cast<size_t>(parse_integer(source, value, 1)) << 20;
  } else if (key == "script_timeout_ms") {
    c.script_limits.wall_clock = std::chrono::milliseconds(parse_integer(source, value, 1));
  } else if (key == "outbox_give_up_after_s") {
    c.outbox_give_up_after = std::chrono::seconds(parse_integer(source, value, 1));
  } else {
    throw std::invalid_argument(source + ": unknown setting");
  }
}

constexpr const char* kKeys[] = {"listen",
                                 "public_url",
                                 "database_url",
                                 "data_dir",
                                 "plugins",
                                 "threads",
                                 "workers",
                                 "db_pool_size",
                                 "admin_token",
                                 "max_body_bytes",
                                 "rate_limit_per_s",
                                 "rate_limit_burst",
                                 "allow_private_network",
                                 "migrate",
                                 "script_instructions",
                                 "script_memory_mb",
                                 "script_timeout_ms",
                                 "outbox_give_up_after_s"};

std::string env_name(const std::string& key) {
  std::string name = "FLOWRT_";
  for (char c : key) name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (key == "plugins") name = "FLOWRT_PLUGINS";
  return name;
}

}  // namespace

sandbox::Limits script_limits_from_env() {
  ServerConfig config;
  for (const char* key : {"script_instructions", "script_memory_mb", "script_timeout_ms"}) {
    std::string name = env_name(key);
    if (const char* value = std::getenv(name.c_str())) apply(config, key, value, name);
  }
  return config.script_limits;
}

ServerConfig load_server_config(Args& args) {
  ServerConfig config;
  std::string file;
  if (!take_option(args, "--config", file)) {
    if (const char* env = std::getenv("FLOWRT_CONFIG")) file = env;
  }
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) throw std::invalid_argument("--config " + file + ": cannot read the file");
    Json doc = Json::parse(in, nullptr, false);
    if (!doc.is_object()) {
      throw std::invalid_argument("--config " + file + ": must be a JSON object of settings");
    }
    for (const auto& [key, value] : doc.items()) {
      std::string text = value.is_string() ? value.get<std::string>() : value.dump();
      apply(config, key, text, file + ": \"" + key + "\"");
    }
  }
  for (const char* key : kKeys) {
    std::string name = env_name(key);
    if (const char* value = std::getenv(name.c_str())) apply(config, key, value, name);
  }
  for (const char* key : kKeys) {
    std::string flag = "--" + std::string(key);
    for (auto& c : flag) c = c == '_' ? '-' : c;
    std::string value;
    // Switches: bare `--allow-private-network` means true; a value needs `=`.
    bool is_switch =
        std::string_view(key) == "allow_private_network" || std::string_view(key) == "migrate";
    if (is_switch && take_flag(args, flag)) {
      apply(config, key, "true", flag);
    } else if (is_switch ? take_assignment(args, flag, value) : take_option(args, flag, value)) {
      apply(config, key, value, flag);
    }
  }
  if (take_flag(args, "--no-migrate")) config.migrate_on_start = false;
  // A handler holds its thread while its turn waits on PostgreSQL (and on api_call), so
  // more threads than cores keep the cores busy: on 2 cores, 8 threads served 1.5x the
  // turns/s of 2 (docs/performance.md).
  if (config.threads == 0)
    config.threads = static_cast<int>(std::max(8u, 4 * std::thread::hardware_concurrency()));
  return config;
}

}  // namespace flowrt::api
