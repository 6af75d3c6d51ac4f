#include "api/server/pipeline.hpp"

namespace flowrt::api {

void enforce_rate_limit(RateLimiter* limiter, const std::string& tenant_id) {
  if (limiter == nullptr) return;
  auto decision = limiter->acquire(tenant_id);
  if (!decision.allowed) throw ApiError(problems::rate_limited(decision.retry_after));
}

RequestPipeline::RequestPipeline(Router router, ServerServices services, size_t max_body_bytes)
    : router_(std::move(router)), services_(std::move(services)), max_body_bytes_(max_body_bytes) {
  if (!services_.log) services_.log = stderr_log_sink();
  if (services_.metrics != nullptr) {
    requests_ =
        &services_.metrics->counter("flowrt_http_requests_total",
                                    "HTTP requests answered, by method, route pattern and status.",
                                    {"method", "route", "status"});
    latency_ = &services_.metrics->histogram(
        "flowrt_http_request_duration_seconds",
        "Time from a complete request to its response, by method and route pattern.",
        {"method", "route"});
  }
}

void RequestPipeline::log_error(std::string_view event, const Request& request,
                                std::string_view message) const {
  services_.log(format_error_log(event, request.request_id,
                                 request.route.empty() ? "unmatched" : request.route, message));
}

void RequestPipeline::authorize(Request& request, const Access& access) const {
  if (access.kind == Access::Kind::anyone) return;
  auto header = request.headers.get("Authorization");
  if (!header) {
    throw ApiError(
        problems::unauthorized("This route needs an API key: send 'Authorization: Bearer <key>'."));
  }
  auto token = parse_bearer_token(*header);
  if (!token) {
    throw ApiError(problems::unauthorized(
        "The Authorization header is not 'Bearer <key>'. Send 'Authorization: Bearer <key>'."));
  }
  std::optional<Principal> principal;
  if (services_.authenticator != nullptr) principal = services_.authenticator->authenticate(*token);
  if (!principal) {
    throw ApiError(problems::unauthorized(
        "The API key is not valid (unknown, revoked or mistyped). Check the key you send."));
  }
  request.principal = principal;
  switch (access.kind) {
    case Access::Kind::anyone:
    case Access::Kind::any_principal:
      return;
    case Access::Kind::operator_only:
      if (!principal->is_operator()) {
        throw ApiError(problems::forbidden(
            "This route is for the server operator (FLOWRT_ADMIN_TOKEN); a tenant API key "
            "cannot call it."));
      }
      return;
    case Access::Kind::tenant:
      if (principal->is_operator()) {
        throw ApiError(problems::forbidden(
            "This route works inside a tenant: call it with one of the tenant's API keys, not "
            "the operator token."));
      }
      if (!role_covers(principal->role, access.role)) {
        throw ApiError(problems::forbidden(
            "This API key has the role '" + std::string(to_string(principal->role)) +
            "'; this route needs '" + std::string(to_string(access.role)) + "'" +
            (access.role == Role::admin ? "." : " or admin.")));
      }
      return;
  }
}

Response RequestPipeline::handle(Request request) const {
  auto started = std::chrono::steady_clock::now();
  auto incoming_id = request.headers.get("X-Request-Id");
  request.request_id =
      incoming_id && is_acceptable_request_id(*incoming_id) ? *incoming_id : generate_request_id();
  Response response;
  try {
    if (request.body.size() > max_body_bytes_) {
      throw ApiError(problems::payload_too_large(max_body_bytes_));
    }
    RouteMatch match = router_.match(request.method, request.path);
    if (request.method == "HEAD" && match.outcome == RouteMatch::Outcome::method_not_allowed) {
      // HEAD is GET without the body (the transport drops it), unless a route says otherwise.
      RouteMatch as_get = router_.match("GET", request.path);
      if (as_get.outcome == RouteMatch::Outcome::found) match = std::move(as_get);
    }
    if (match.outcome == RouteMatch::Outcome::not_found) {
      throw ApiError(problems::not_found("No route matches this path. See GET /v1/openapi.json."));
    }
    if (match.outcome == RouteMatch::Outcome::method_not_allowed) {
      throw ApiError(problems::method_not_allowed(match.allowed_methods));
    }
    request.route = match.route->pattern;
    request.params = std::move(match.params);
    authorize(request, match.route->access);
    if (match.route->access.rate_limited && request.principal &&
        !request.principal->is_operator()) {
      enforce_rate_limit(services_.rate_limiter, request.principal->tenant_id);
    }
    response = match.route->handler(request);
  } catch (const ApiError& e) {
    response = problem_response(e.problem());
  } catch (const std::exception& e) {
    log_error("handler_failed", request, e.what());
    std::optional<Problem> known;
    if (services_.classify_exception) known = services_.classify_exception(e);
    response = problem_response(known ? *known : problems::internal_error(request.request_id));
  } catch (...) {
    log_error("handler_failed", request, "a non-standard exception was thrown");
    response = problem_response(problems::internal_error(request.request_id));
  }
  return finish(request, std::move(response), started);
}

Response RequestPipeline::reject(Request request, const Problem& problem) const {
  auto started = std::chrono::steady_clock::now();
  auto incoming_id = request.headers.get("X-Request-Id");
  request.request_id =
      incoming_id && is_acceptable_request_id(*incoming_id) ? *incoming_id : generate_request_id();
  return finish(request, problem_response(problem), started);
}

Response RequestPipeline::finish(const Request& request, Response response,
                                 std::chrono::steady_clock::time_point started) const {
  response.headers.set("X-Request-Id", request.request_id);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::string route = request.route.empty() ? "unmatched" : request.route;
  // Unknown methods are folded so that a scanner cannot grow the label set without bound.
  static constexpr std::string_view known[] = {"GET",    "POST", "PUT",    "PATCH",
                                               "DELETE", "HEAD", "OPTIONS"};
  std::string method = "OTHER";
  for (auto m : known) {
    if (request.method == m) method = request.method;
  }
  if (requests_ != nullptr) {
    requests_->labels({method, route, std::to_string(response.status)}).inc();
    latency_->labels({method, route}).observe(seconds);
  }
  AccessLogEntry entry;
  entry.time = std::chrono::system_clock::now();
  entry.request_id = request.request_id;
  entry.method = method;
  entry.route = route;
  entry.status = response.status;
  entry.latency_ms = seconds * 1000.0;
  if (request.principal) {
    entry.tenant = request.principal->tenant_id;
    entry.principal =
        request.principal->is_operator() ? "operator" : "key:" + request.principal->key_id;
  } else {
    entry.tenant = response.log_tenant;
  }
  try {
    services_.log(format_access_log(entry));
  } catch (...) {
    // A failing log sink must not turn an answered request into a failure.
  }
  return response;
}

}  // namespace flowrt::api
