// Helpers shared by the runtime suites: flows from compact JSON, a conversation driver
// around the real Executor, and matchers over validation problems.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/executor.hpp"
#include "runtime/flow.hpp"

namespace flowrt::runtime {

// Readable problems in GoogleTest's failure messages.
inline void PrintTo(const Problem& p, std::ostream* os) {
  *os << (p.is_error() ? "error [" : "warning [") << p.path << "] " << p.message;
}

}  // namespace flowrt::runtime

namespace flowrt::runtime::testing {

// "[{...node...}, ...]" -> a flowrt.flow/1 document whose start is the first node.
inline Json flow_document(const std::string& nodes_json, const std::string& id = "test-flow") {
  Json nodes = Json::parse(nodes_json);
  return Json{{"format", "flowrt.flow/1"},
              {"id", id},
              {"name", "Test flow"},
              {"start", nodes.at(0).at("id")},
              {"nodes", nodes}};
}

inline std::string describe(const Problems& problems) {
  std::string out;
  for (const auto& p : problems) {
    out += std::string(p.is_error() ? "  error " : "  warning ") + "[" + p.path + "] " + p.message +
           "\n";
  }
  return out;
}

// Parses a document that must be valid; a test that needs a flow fails loudly otherwise.
inline std::shared_ptr<const Flow> must_parse(const Json& document,
                                              const ParseOptions& options = {}) {
  ParseResult result = parse_flow(document, options);
  if (!result.flow) {
    ADD_FAILURE() << "flow does not parse:\n" << describe(result.problems);
    throw std::runtime_error("flow does not parse");
  }
  return result.flow;
}

inline std::shared_ptr<const Flow> must_parse_nodes(const std::string& nodes_json,
                                                    const std::string& id = "test-flow") {
  return must_parse(flow_document(nodes_json, id));
}

inline Problems errors_of(const Problems& problems) {
  Problems out;
  for (const auto& p : problems) {
    if (p.is_error()) out.push_back(p);
  }
  return out;
}

inline Problems warnings_of(const Problems& problems) {
  Problems out;
  for (const auto& p : problems) {
    if (!p.is_error()) out.push_back(p);
  }
  return out;
}

MATCHER_P2(ProblemAt, path, text,
           std::string("a problem at ") + ::testing::PrintToString(path) + " whose message has " +
               ::testing::PrintToString(text)) {
  if (arg.path != path || arg.message.find(text) == std::string::npos) return false;
  return true;
}

MATCHER(IsError, "an error") {
  return arg.is_error();
}

// A FlowResolver over flows held in memory (published version numbers chosen by the test).
class MapFlowResolver : public FlowResolver {
 public:
  void add(std::shared_ptr<const Flow> flow, int version = 1) {
    std::string id = flow->id;
    flows_[id] = {std::move(flow), version};
  }
  Found find(const std::string& flow_id) const override {
    ++lookups;
    auto it = flows_.find(flow_id);
    return it == flows_.end() ? Found{} : it->second;
  }
  mutable int lookups = 0;

 private:
  std::map<std::string, Found> flows_;
};

// Drives one conversation turn by turn with the real executor, a manual clock and whatever
// HTTP client the test gives it. After a jump, the next turn runs in the flow the state names.
class Conversation {
 public:
  explicit Conversation(std::shared_ptr<const Flow> flow, HttpClient* http = nullptr,
                        ExecutorOptions options = {})
      : flow_(std::move(flow)), options_(options), http_(http) {
    tenant.name = "Acme";
  }

  TurnResult message(const std::string& text, Json data = Json::object()) {
    InboundEvent event;
    event.text = text;
    event.data = std::move(data);
    return run(std::move(event));
  }
  TurnResult start() {
    InboundEvent event;
    event.kind = InboundEvent::Kind::start;
    return run(std::move(event));
  }
  TurnResult timeout(uint64_t wait_seq) {
    InboundEvent event;
    event.kind = InboundEvent::Kind::timeout;
    event.wait_seq = wait_seq;
    return run(std::move(event));
  }
  TurnResult resume(const std::string& node = "") {
    InboundEvent event;
    event.kind = InboundEvent::Kind::resume;
    event.node = node;
    return run(std::move(event));
  }

  TurnResult run(InboundEvent event) {
    Executor executor(ExecutorServices{&clock, http_, scripts}, options_);
    TurnInput input{current_flow(), state, contact, std::move(event), &tenant};
    TurnResult result = executor.run_turn(std::move(input));
    state = result.state;
    return result;
  }

  std::shared_ptr<const Flow> current_flow() const {
    if (state.flow_id.empty() || state.flow_id == flow_->id || !tenant.flows) return flow_;
    auto found = tenant.flows->find(state.flow_id);
    return found.flow ? found.flow : flow_;
  }

  ManualClock clock{1'700'000'000'000};
  ConversationState state;
  Contact contact{"contact-1", "Ana", "+5511912345678"};
  TenantContext tenant;
  ScriptRunner* scripts = nullptr;  // Lua runs only when a test gives a runner

 private:
  std::shared_ptr<const Flow> flow_;
  ExecutorOptions options_;
  HttpClient* http_;
};

inline std::vector<std::string> texts(const TurnResult& result) {
  std::vector<std::string> out;
  for (const auto& m : result.messages) out.push_back(m.text);
  return out;
}

inline bool journal_has(const TurnResult& result, const std::string& type) {
  for (const auto& e : result.journal) {
    if (e.type == type) return true;
  }
  return false;
}

}  // namespace flowrt::runtime::testing
