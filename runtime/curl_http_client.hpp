// HttpClient over libcurl. Each call uses its own easy handle, so one client can serve
// every worker thread. Destinations are checked against the NetworkPolicy at connect
// time (after DNS resolution), so a public host name that resolves to 127.0.0.1 is refused
// just like the literal address.
#pragma once

#include "runtime/http.hpp"

namespace flowrt::runtime {

class CurlHttpClient : public HttpClient {
 public:
  explicit CurlHttpClient(NetworkPolicy policy = {});
  HttpResponse send(const HttpRequest& request) override;

 private:
  NetworkPolicy policy_;
};

// True for loopback, private, link-local, CGNAT, unspecified and multicast addresses (IPv4
// and IPv6, including IPv4-mapped IPv6). `address` is numeric; anything unparsable is
// reported as private so that it is refused.
bool is_private_address(const std::string& address);

}  // namespace flowrt::runtime
