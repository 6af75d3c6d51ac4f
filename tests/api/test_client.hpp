// A blocking HTTP client for the server tests: libcurl for ordinary requests, a raw socket
// for requests curl would not send (a lying Content-Length, a request kept open).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace flowrt::api::testing {

struct ClientResponse {
  int status = 0;                              // 0: no response (error says why)
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string body;
  std::string error;

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

ClientResponse http_request(const std::string& method, const std::string& url,
                            const std::vector<std::string>& headers = {},
                            const std::string& body = {}, long timeout_ms = 10000);

// Sends `raw` bytes on a new connection to 127.0.0.1:`port` and reads until the server
// closes or `timeout_ms` passes. Returns everything read.
std::string raw_exchange(int port, const std::string& raw, int timeout_ms = 5000);

}  // namespace flowrt::api::testing
