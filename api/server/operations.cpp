#include "api/server/operations.hpp"

#include <nlohmann/json.hpp>

namespace flowrt::api {

void add_operational_routes(Router& router, OperationalRoutes routes) {
  router.add(
      "GET", "/healthz",
      [](const Request&) {
        return Response::json(200, {{"status", "ok"}});
      },
      Access::anyone());

  router.add(
      "GET", "/readyz",
      [routes](const Request&) {
        nlohmann::json checks = nlohmann::json::array();
        bool ready = true;
        if (routes.draining && routes.draining()) {
          ready = false;
          checks.push_back({{"name", "server"}, {"ok", false}, {"message", "shutting down"}});
        }
        if (routes.readiness) {
          std::vector<ReadinessCheck> results;
          try {
            results = routes.readiness();
          } catch (const std::exception&) {
            results.push_back({"readiness", false, "the readiness probe failed"});
          }
          for (const auto& c : results) {
            ready = ready && c.ok;
            checks.push_back({{"name", c.name}, {"ok", c.ok}, {"message", c.message}});
          }
        }
        Response r = Response::json(
            ready ? 200 : 503, {{"status", ready ? "ready" : "not_ready"}, {"checks", checks}});
        r.headers.set("Cache-Control", "no-store");
        return r;
      },
      Access::anyone());

  router.add(
      "GET", "/metrics",
      [metrics = routes.metrics](const Request&) {
        return Response::text(200, metrics ? metrics->render() : std::string(),
                              "text/plain; version=0.0.4; charset=utf-8");
      },
      Access::anyone());

  router.add(
      "GET", "/v1/openapi.json",
      [](const Request&) {
        return Response::text(200, std::string(openapi_document()), "application/json");
      },
      Access::anyone());
}

}  // namespace flowrt::api
