// The executor runs one turn of a conversation on in-memory state:
//
//   (flow, state, contact, inbound event) -> (new state, messages, timer, journal)
//
// It knows nothing of HTTP servers or PostgreSQL. Time, outbound HTTP, other flows (for
// `jump`) and Lua come in through interfaces, so `flowrt chat`, `flowrt test`, the server
// and the benchmarks drive the same code, and tests control every input.
//
// An Executor is immutable after construction and may run turns on many threads at once;
// the services it is given must be thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "runtime/conversation.hpp"
#include "runtime/flow.hpp"
#include "runtime/http.hpp"

namespace flowrt::sandbox {
struct Limits;
}

namespace flowrt::runtime {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t now_ms() const = 0;  // Unix time in milliseconds
};

class SystemClock : public Clock {
 public:
  int64_t now_ms() const override;
};

// A clock that only moves when told to: transcript tests, `flowrt chat` timeouts, tests.
class ManualClock : public Clock {
 public:
  explicit ManualClock(int64_t start_ms = 1'700'000'000'000) : now_(start_ms) {}
  int64_t now_ms() const override { return now_.load(); }
  void set(int64_t ms) { now_.store(ms); }
  void advance(int64_t ms) { now_.fetch_add(ms); }

 private:
  std::atomic<int64_t> now_;
};

// Finds the published flows of the conversation's tenant, for `jump`.
class FlowResolver {
 public:
  virtual ~FlowResolver() = default;
  struct Found {
    std::shared_ptr<const Flow> flow;
    int version = 0;
  };
  // Returns a null flow if the tenant has no published flow with that id.
  virtual Found find(const std::string& flow_id) const = 0;
};

// Runs the Lua that flows carry. Implemented over the sandbox library.
class ScriptRunner;

struct TenantContext {
  std::string id;
  std::string name;
  Json secrets = Json::object();        // name -> string, for {{secrets.X}} in api_call
  const FlowResolver* flows = nullptr;  // null: `jump` fails the run
  // The tenant's own script limits; they can only lower the server's. Null: the server's.
  const sandbox::Limits* script_limits = nullptr;
};

struct ExecutorOptions {
  int max_nodes_per_turn = 200;
  int max_api_timeout_ms = 30000;
};

// Sees every finished turn, e.g. to count turns, node executions and script failures for
// /metrics. Called on the thread that ran the turn; must be thread-safe and must not throw.
class TurnObserver {
 public:
  virtual ~TurnObserver() = default;
  virtual void on_turn(const TurnResult& result) = 0;
};

struct ExecutorServices {
  const Clock* clock = nullptr;  // required
  HttpClient* http = nullptr;    // null: api_call nodes fail with "no HTTP client"
  ScriptRunner* scripts = nullptr;
  TurnObserver* observer = nullptr;
};

struct TurnInput {
  std::shared_ptr<const Flow> flow;  // the flow state.flow_id/flow_version names
  ConversationState state;
  Contact contact;
  InboundEvent event;
  const TenantContext* tenant = nullptr;
};

class Executor {
 public:
  Executor(ExecutorServices services, ExecutorOptions options = {});

  // Runs one turn. Never throws for anything a flow, a message or a remote service does:
  // such failures end in status `failed` with `state.error` and an `error` journal event.
  TurnResult run_turn(TurnInput input) const;

  const ExecutorOptions& options() const { return options_; }
  const ExecutorServices& services() const { return services_; }

 private:
  TurnResult run_turn_unobserved(TurnInput input) const;

  ExecutorServices services_;
  ExecutorOptions options_;
};

}  // namespace flowrt::runtime
