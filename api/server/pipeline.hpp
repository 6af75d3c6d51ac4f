// What happens to every request, in order, independent of the socket:
//
//   1. request id: X-Request-Id echoed when sane, else generated; set on the response
//   2. body size: over the limit → 413 (the transport normally refuses earlier, from
//      Content-Length, before reading the body)
//   3. routing: 404 unknown path, 405 + Allow for a known path with another method
//   4. auth (the route's Access): 401 without or with a bad token, 403 for a principal of the
//      wrong kind or a role that does not cover the route's
//   5. rate limit for tenant principals: 429 + Retry-After
//   6. the handler; ApiError → its problem; any other exception → the problem
//      ServerServices::classify_exception gives it, else 500 with nothing of the cause (which
//      is logged with the request id instead)
//   7. metrics (requests by method, route pattern and status; latency histogram) and one
//      access-log line
//
// HttpServer drives this from Pistache; tests can call handle() directly.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>

#include "api/server/access_log.hpp"
#include "api/server/auth.hpp"
#include "api/server/metrics.hpp"
#include "api/server/problem.hpp"
#include "api/server/rate_limit.hpp"
#include "api/server/router.hpp"

namespace flowrt::api {

// The collaborators the server uses; all optional, none owned (they must outlive the server).
struct ServerServices {
  Authenticator* authenticator = nullptr;  // null: every route that needs a token answers 401
  RateLimiter* rate_limiter = nullptr;     // null: no rate limiting
  MetricsRegistry* metrics = nullptr;      // null: no request metrics
  LogSink log;                             // empty: stderr_log_sink()
  // Turns an exception a handler let through into the problem to answer (e.g. the database
  // is unreachable: 503 instead of 500). Empty, or nullopt from it: 500.
  std::function<std::optional<Problem>(const std::exception&)> classify_exception;
};

// Takes one request from `tenant_id`'s bucket or throws ApiError 429 with Retry-After. The
// pipeline does this for routes with a tenant principal; routes without one (webhooks) call
// it themselves once they know the tenant. A null limiter allows everything.
void enforce_rate_limit(RateLimiter* limiter, const std::string& tenant_id);

class RequestPipeline {
 public:
  RequestPipeline(Router router, ServerServices services, size_t max_body_bytes);

  // Runs steps 1-7 for `request` (method, path, query, headers and body filled in).
  Response handle(Request request) const;
  // Answers a request that will not reach routing (refused by the transport: too large,
  // malformed, server draining) with `problem`, still with a request id, metrics and a log
  // line. `request` holds whatever was parsed (method and path may be empty).
  Response reject(Request request, const Problem& problem) const;

  const Router& router() const { return router_; }
  RateLimiter* rate_limiter() const { return services_.rate_limiter; }
  size_t max_body_bytes() const { return max_body_bytes_; }
  void log_error(std::string_view event, const Request& request, std::string_view message) const;

 private:
  void authorize(Request& request, const Access& access) const;
  Response finish(const Request& request, Response response,
                  std::chrono::steady_clock::time_point started) const;

  Router router_;
  ServerServices services_;
  size_t max_body_bytes_;
  CounterFamily* requests_ = nullptr;
  HistogramFamily* latency_ = nullptr;
};

}  // namespace flowrt::api
