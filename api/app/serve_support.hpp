// The pieces `flowrt serve` assembles around the routes: tenant keys checked against the
// store, turn metrics for /metrics, and the demo tenant of the README's run command.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "api/server/auth.hpp"
#include "api/server/metrics.hpp"
#include "api/server/problem.hpp"
#include "runtime/executor.hpp"
#include "runtime/store/store.hpp"

namespace flowrt::api {

// Resolves `frt_…` bearer tokens to the tenant key they belong to (hashes compared in the
// store); anything else is unknown.
class StoreKeyAuthenticator : public Authenticator {
 public:
  explicit StoreKeyAuthenticator(runtime::store::Store& store) : store_(store) {}
  std::optional<Principal> authenticate(std::string_view token) override;

 private:
  runtime::store::Store& store_;
};

// 503 for exceptions that mean "the database cannot answer now" (a dropped or refused
// connection, a server shutting down or out of resources): the client may retry. Also 503,
// saying so, for a connection lost while COMMIT was in flight (pqxx::in_doubt_error): the
// outcome is unknown. nullopt for anything else (a 500).
std::optional<Problem> database_unavailable(const std::exception& error);

// Counts every turn for /metrics: flowrt_turns_total{status}, flowrt_node_executions_total
// and flowrt_script_failures_total.
class TurnMetrics : public runtime::TurnObserver {
 public:
  explicit TurnMetrics(MetricsRegistry& registry);
  void on_turn(const runtime::TurnResult& result) override;

 private:
  CounterFamily& turns_;
  Counter& nodes_;
  Counter& script_failures_;
};

struct DemoTenant {
  std::string tenant_id;
  std::string token;  // an admin key of the tenant
  std::string channel_id;
  std::string flow_id;                 // the flow the webchat channel runs
  std::vector<std::string> published;  // "flow_id v3"
};

// Makes sure the demo tenant exists with every flow of `flows_folder` (files named
// *.json, transcript tests *.test.json excluded) published at its current content and a
// webchat channel running `channel_flow`. Its admin token is kept in `credentials_file`
// (mode 0600) because the store keeps only its hash; a missing or revoked one is replaced.
// Throws std::runtime_error naming the file of a flow that does not validate.
DemoTenant seed_demo_tenant(runtime::store::Store& store, const std::filesystem::path& flows_folder,
                            const std::string& channel_flow,
                            const std::filesystem::path& credentials_file);

}  // namespace flowrt::api
