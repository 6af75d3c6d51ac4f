// The flowrt HTTP application: every route of SPEC §4 over the store, the turn processor
// and the plugin registry. Routes live in routes_<area>.cpp and are registered here; the
// HTTP machinery (Pistache, routing, auth, limits, logs, metrics) is api/server/.
#pragma once

#include <memory>
#include <string>

#include "api/config.hpp"
#include "api/server/metrics.hpp"
#include "api/server/problem.hpp"
#include "api/server/rate_limit.hpp"
#include "api/server/router.hpp"
#include "runtime/executor.hpp"
#include "runtime/plugin_host/plugin_host.hpp"
#include "runtime/store/store.hpp"
#include "runtime/store/turns.hpp"

namespace flowrt::api {

namespace store = runtime::store;
namespace plugin_host = runtime::plugin_host;
using Json = nlohmann::json;

// What the routes share. Everything is owned by the serve command and outlives the App.
struct AppContext {
  const ServerConfig& config;
  store::Store& store;
  store::TurnProcessor& turns;
  const plugin_host::PluginRegistry& plugins;
  const runtime::Clock& clock;
  // Wakes the inbox workers and the dispatcher after a request stored work for them.
  std::function<void()> wake_workers;
  // Webhooks count against their channel's tenant (the pipeline cannot: it runs before the
  // tenant is known). Null: no limit.
  RateLimiter* rate_limiter = nullptr;
  // flowrt_plugin_errors_total{provider, operation}. Null: not counted.
  CounterFamily* plugin_errors = nullptr;
};

// Registers every route on `router`.
void register_routes(Router& router, AppContext& app);

// --- helpers shared by the route files ---------------------------------------------------

// Maps a StoreError to its problem (not_found 404, conflict 409, invalid 422).
[[noreturn]] void rethrow_store_error(const store::StoreError& error);
// The 404 for a `what` (flow, channel, ...) named `id` that does not exist: no flow "lead".
inline ApiError no_such(const std::string& what, const std::string& id) {
  return ApiError(problems::not_found("no " + what + " \"" + id + "\""));
}

// Runs `body`, turning StoreError into the matching ApiError.
template <class F>
auto with_store_errors(F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const store::StoreError& e) {
    rethrow_store_error(e);
  }
}

// The caller for the audit log: "operator" or "key:<id>".
std::string actor_of(const Request& request);
void audit(AppContext& app, const Request& request, std::string action, std::string type,
           std::string id, std::optional<Json> before, std::optional<Json> after);

store::PageRequest store_page(const Request& request);
template <class T, class F>
Json page_json(const store::Page<T>& page, F&& to_json) {
  Json items = Json::array();
  for (const auto& item : page.items) items.push_back(to_json(item));
  return Json{{"items", std::move(items)},
              {"next_cursor", page.next_cursor ? Json(*page.next_cursor) : Json()}};
}

// A required string member of a JSON body, with a 422 naming its path otherwise.
std::string required_string(const Json& body, const char* field);
std::string optional_string(const Json& body, const char* field, std::string fallback = "");

std::string iso_time(int64_t unix_ms);

// Where providers reach this server: the configured public_url, else "http://" + the Host
// the caller used (so a server on an ephemeral port still prints working webhook URLs).
std::string public_base_url(const AppContext& app, const Request& request);

// Runs `handler` under the Idempotency-Key rules of api/server/idempotency.hpp, with the
// keys kept in the store (24 hours).
Response idempotent_response(AppContext& app, const Request& request,
                             const std::function<Response()>& handler);
// {"conversation_id", "status", "replies": [{"text"}], "error"?}
Json turn_outcome_json(const store::TurnOutcome& outcome);

void register_tenant_routes(Router& router, AppContext& app);
void register_key_routes(Router& router, AppContext& app);
void register_secret_routes(Router& router, AppContext& app);
void register_flow_routes(Router& router, AppContext& app);
void register_channel_routes(Router& router, AppContext& app);
void register_webhook_routes(Router& router, AppContext& app);
void register_conversation_routes(Router& router, AppContext& app);

}  // namespace flowrt::api
