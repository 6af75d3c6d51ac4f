// The routes every server has, whatever else it serves:
//   GET /healthz          anyone  200 {"status":"ok"} while the process serves requests
//   GET /readyz           anyone  200 or 503 from the readiness callback (database reachable,
//                                 migrations current — supplied by `flowrt serve`)
//   GET /metrics          anyone  the registry in Prometheus text format
//   GET /v1/openapi.json  anyone  the OpenAPI 3 description of the API (api/openapi.json,
//                                 compiled in)
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "api/server/metrics.hpp"
#include "api/server/router.hpp"

namespace flowrt::api {

struct ReadinessCheck {
  std::string name;  // "database", "migrations"
  bool ok = false;
  std::string message;  // why not, in a sentence; never secrets (no connection strings)
};

// Runs the checks; must be thread-safe and reasonably quick (it runs on an I/O thread).
using ReadinessProbe = std::function<std::vector<ReadinessCheck>()>;

struct OperationalRoutes {
  const MetricsRegistry* metrics = nullptr;  // null: /metrics answers an empty document
  ReadinessProbe readiness;                  // empty: ready as soon as the server runs
  // Draining servers answer /readyz 503 so that load balancers stop sending work.
  std::function<bool()> draining;
};

void add_operational_routes(Router& router, OperationalRoutes routes);

// The OpenAPI document compiled in from api/openapi.json.
std::string_view openapi_document();

}  // namespace flowrt::api
