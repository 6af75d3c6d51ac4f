// Outbound HTTP as the runtime sees it: a narrow interface so that the executor's
// api_call nodes, the outbox dispatcher and the plugin host can be driven by libcurl in
// production and by canned responses in tests.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace flowrt::runtime {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  HeaderList headers;
  std::string body;
  int timeout_ms = 10000;
};

struct HttpResponse {
  // 0 when no HTTP response arrived; `error` then says why (timeout, refused, ...).
  int status = 0;
  HeaderList headers;
  std::string body;
  std::string error;
  bool timed_out = false;

  bool ok() const { return error.empty() && status >= 200 && status < 300; }
};

// Performs requests. Implementations must be safe to call from several threads at once.
class HttpClient {
 public:
  virtual ~HttpClient() = default;
  virtual HttpResponse send(const HttpRequest& request) = 0;
};

// Which destinations outbound requests may reach.
struct NetworkPolicy {
  // Loopback, link-local, private (RFC 1918, RFC 4193), CGNAT and unspecified addresses
  // are refused unless this is set (SPEC §2, api_call).
  bool allow_private_addresses = false;
};

}  // namespace flowrt::runtime
