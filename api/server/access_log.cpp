#include "api/server/access_log.hpp"

#include <unistd.h>

#include <cmath>
#include <ctime>

#include "api/server/auth.hpp"

namespace flowrt::api {

LogSink stderr_log_sink() {
  return [](std::string_view line) {
    std::string buffer;
    buffer.reserve(line.size() + 1);
    buffer.append(line);
    buffer.push_back('\n');
    const char* data = buffer.data();
    size_t left = buffer.size();
    while (left > 0) {
      ssize_t n = ::write(STDERR_FILENO, data, left);
      if (n <= 0) break;  // nowhere to report a failing stderr
      data += n;
      left -= static_cast<size_t>(n);
    }
  };
}

std::string iso8601_utc(std::chrono::system_clock::time_point time) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[96];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buffer;
}

std::string format_access_log(const AccessLogEntry& entry) {
  nlohmann::ordered_json line;
  line["time"] = iso8601_utc(entry.time);
  line["level"] = entry.status >= 500 ? "error" : "info";
  line["event"] = "request";
  line["request_id"] = entry.request_id;
  line["method"] = entry.method;
  line["route"] = entry.route;
  line["status"] = entry.status;
  line["latency_ms"] = std::round(entry.latency_ms * 1000.0) / 1000.0;
  line["tenant"] =
      entry.tenant.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(entry.tenant);
  if (!entry.principal.empty()) line["principal"] = entry.principal;
  // Replace invalid UTF-8 rather than throw: a log line must never fail a request.
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string format_error_log(std::string_view event, std::string_view request_id,
                             std::string_view route, std::string_view message) {
  nlohmann::ordered_json line;
  line["time"] = iso8601_utc(std::chrono::system_clock::now());
  line["level"] = "error";
  line["event"] = event;
  line["request_id"] = request_id;
  line["route"] = route;
  line["message"] = message;
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string format_event_log(std::string_view level, std::string_view event,
                             const nlohmann::json& fields) {
  nlohmann::ordered_json line;
  line["time"] = iso8601_utc(std::chrono::system_clock::now());
  line["level"] = level;
  line["event"] = event;
  for (const auto& [key, value] : fields.items()) line[key] = value;
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool is_acceptable_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string generate_request_id() {
  return hex_encode(random_bytes(16));
}

}  // namespace flowrt::api
