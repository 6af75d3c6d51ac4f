#include "api/app/app.hpp"

#include <chrono>
#include <regex>

#include "api/server/access_log.hpp"
#include "api/server/idempotency.hpp"

namespace flowrt::api {

namespace {

Problem bad_cursor_problem() {
  return problems::bad_request(
      "The cursor is not valid. Pass the next_cursor value of the previous page unchanged, "
      "or omit cursor to start from the first page.",
      {{"?cursor", "not a cursor issued by this server"}});
}

}  // namespace

void rethrow_store_error(const store::StoreError& error) {
  switch (error.code()) {
    case store::StoreError::Code::not_found:
      throw ApiError(problems::not_found(error.what()));
    case store::StoreError::Code::conflict:
      throw ApiError(problems::conflict(error.what()));
    case store::StoreError::Code::invalid:
      throw ApiError(problems::validation({{"", error.what()}}, error.what()));
    case store::StoreError::Code::bad_cursor:
      throw ApiError(bad_cursor_problem());
  }
  throw ApiError(problems::validation({{"", error.what()}}, error.what()));
}

std::string actor_of(const Request& request) {
  if (!request.principal) return "anonymous";
  if (request.principal->is_operator()) return "operator";
  return "key:" + request.principal->key_id;
}

void audit(AppContext& app, const Request& request, std::string action, std::string type,
           std::string id, std::optional<Json> before, std::optional<Json> after) {
  store::AuditEntry entry;
  entry.tenant_id = request.tenant_id();
  entry.actor = actor_of(request);
  entry.action = std::move(action);
  entry.resource_type = std::move(type);
  entry.resource_id = std::move(id);
  entry.before = std::move(before);
  entry.after = std::move(after);
  entry.request_id = request.request_id;
  app.store.audit(entry);
}

store::PageRequest store_page(const Request& request) {
  store::PageRequest page;
  if (auto limit = request.query_param("limit")) {
    char* end = nullptr;
    long value = std::strtol(limit->c_str(), &end, 10);
    if (limit->empty() || *end != '\0' || value < 1 || value > 200) {
      throw ApiError(
          problems::bad_request("limit must be an integer from 1 to 200, not \"" + *limit + "\""));
    }
    page.limit = static_cast<int>(value);
  }
  page.cursor = request.query_param("cursor").value_or("");
  // Cursors are the ids or sequence numbers of list items; anything else was not issued here.
  static const std::regex cursor_pattern("[A-Za-z0-9_-]{0,64}");
  if (!std::regex_match(page.cursor, cursor_pattern)) throw ApiError(bad_cursor_problem());
  return page;
}

std::string required_string(const Json& body, const char* field) {
  auto it = body.find(field);
  if (it == body.end() || !it->is_string() || it->get<std::string>().empty()) {
    throw ApiError(problems::validation(
        {{std::string("/") + field,
          std::string(field) + " is required and must be a non-empty string"}}));
  }
  return it->get<std::string>();
}

std::string optional_string(const Json& body, const char* field, std::string fallback) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_string()) {
    throw ApiError(problems::validation(
        {{std::string("/") + field, std::string(field) + " must be a string"}}));
  }
  return it->get<std::string>();
}

std::string iso_time(int64_t unix_ms) {
  if (unix_ms <= 0) return "";
  return iso8601_utc(std::chrono::system_clock::time_point(std::chrono::milliseconds(unix_ms)));
}

std::string public_base_url(const AppContext& app, const Request& request) {
  if (!app.config.public_url.empty()) return app.config.public_url;
  return "http://" + request.header("Host").value_or(app.config.listen);
}

namespace {

// The keys of api/server/idempotency.hpp in the idempotency_keys table. A stored answer is
// {"content_type", "body"} so that a problem+json answer replays as one.
class StoreIdempotency : public IdempotencyStore {
 public:
  explicit StoreIdempotency(store::Store& store) : store_(store) {}

  Claim claim(const IdempotencyScope& scope, const std::string& fingerprint) override {
    std::optional<store::IdempotentResponse> seen;
    try {
      seen = store_.claim_idempotency_key(scope.tenant_id, scope.route, scope.key, fingerprint);
    } catch (const store::StoreError& e) {
      if (e.code() != store::StoreError::Code::invalid) throw;
      return {Claim::Outcome::fingerprint_mismatch, std::nullopt};
    }
    if (!seen) return {Claim::Outcome::claimed, std::nullopt};
    if (seen->status == 0) return {Claim::Outcome::in_progress, std::nullopt};
    return {Claim::Outcome::replay,
            StoredResponse{seen->status, seen->body.value("content_type", ""),
                           seen->body.value("body", "")}};
  }

  void complete(const IdempotencyScope& scope, const StoredResponse& response) override {
    store_.finish_idempotent(
        scope.tenant_id, scope.route, scope.key,
        {response.status, Json{{"content_type", response.content_type}, {"body", response.body}}});
  }

  void release(const IdempotencyScope& scope) override {
    store_.release_idempotency_key(scope.tenant_id, scope.route, scope.key);
  }

 private:
  store::Store& store_;
};

}  // namespace

Response idempotent_response(AppContext& app, const Request& request,
                             const std::function<Response()>& handler) {
  StoreIdempotency keys(app.store);
  return with_idempotency(keys, request, handler);
}

void register_routes(Router& router, AppContext& app) {
  register_tenant_routes(router, app);
  register_key_routes(router, app);
  register_secret_routes(router, app);
  register_flow_routes(router, app);
  register_channel_routes(router, app);
  register_webhook_routes(router, app);
  register_conversation_routes(router, app);
}

}  // namespace flowrt::api
