// Request ids and the structured access log.
//
// Every request gets an id: the caller's X-Request-Id when it is a sane token
// ([A-Za-z0-9._:-], 1..128 characters: anything else could forge log lines), otherwise a
// fresh random one. The id is echoed in the response's X-Request-Id header.
//
// The server writes one JSON object per line per request to a LogSink that `main`
// provides (stderr by default):
//
//   {"time":"2026-11-23T09:14:31.123Z","level":"info","event":"request","request_id":"…",
//    "method":"GET","route":"/v1/flows/{flow_id}","status":200,"latency_ms":3.2,
//    "tenant":"ten_1"}
//
// It never contains bodies, query strings, headers or tokens: the route is the pattern,
// not the path, so even ids in the path stay out. Errors are logged the same way with
// "level":"error" and a "message".
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace flowrt::api {

// Receives one complete line (without the trailing newline). Must be thread-safe.
using LogSink = std::function<void(std::string_view line)>;

// Writes each line to stderr with a single write(2), so lines from threads never interleave.
LogSink stderr_log_sink();

struct AccessLogEntry {
  std::chrono::system_clock::time_point time;
  std::string request_id;
  std::string method;
  std::string route;  // the matched pattern, or "unmatched"
  int status = 0;
  double latency_ms = 0;
  std::string tenant;     // "" for the operator and anonymous calls
  std::string principal;  // "operator", "key:<key id>" or ""
};

std::string format_access_log(const AccessLogEntry& entry);
// {"time", "level":"error", "event", "request_id", "route", "message"} for failures that
// the client only sees as a 500.
std::string format_error_log(std::string_view event, std::string_view request_id,
                             std::string_view route, std::string_view message);

// {"time", "level", "event", ...fields}: the server's own events (start-up, shutdown),
// in the same shape as the request lines.
std::string format_event_log(std::string_view level, std::string_view event,
                             const nlohmann::json& fields);

std::string iso8601_utc(std::chrono::system_clock::time_point time);  // millisecond precision

bool is_acceptable_request_id(std::string_view id);
std::string generate_request_id();  // 32 hex digits from RAND_bytes

}  // namespace flowrt::api
