// The context a node runs in during one turn: the conversation's state, the inbound
// event, the services, and the effects collected so far. Only the executor creates Turns.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/executor.hpp"
#include "runtime/lua_chunk.hpp"
#include "runtime/scripting.hpp"
#include "runtime/template.hpp"

namespace flowrt::runtime {

class Turn {
 public:
  Turn(const Executor& executor, const TurnInput& input, TurnResult& result);

  ConversationState& state() { return result_.state; }
  Json& vars() { return result_.state.vars; }
  const Contact& contact() const { return input_.contact; }
  const TenantContext& tenant() const { return *tenant_; }
  const Flow& flow() const { return *flow_; }
  const ExecutorOptions& options() const { return executor_.options(); }
  const ExecutorServices& services() const { return executor_.services(); }
  // The contact's message this turn, or null when the turn started otherwise.
  const InboundEvent* message() const { return message_; }

  int64_t now_ms() const { return executor_.services().clock->now_ms(); }

  // Renders a template against vars, contact, message, flow and tenant (and secrets when
  // `with_secrets`, for api_call only).
  std::string render(const Template& text, bool with_secrets = false) const;

  void send(std::string text);
  void journal(std::string type, Json data = Json::object());
  // Starts waiting on `node`: a new wait sequence, and a timer when `timeout_s` > 0.
  void begin_wait(const Node& node, int timeout_s);

  // The read-only globals scripts see, built once per turn on first use.
  struct ScriptGlobals {
    Json contact;  // {id, name, phone}
    Json message;  // {text, data}; empty text when the turn has no message
    Json flow;     // {id, name}
    Json tenant;   // {id, name}
  };
  const ScriptGlobals& script_globals();

  // Runs `chunk` for `node` through the executor's ScriptRunner (see runtime/scripting.hpp).
  ScriptRunner::Outcome run_script(
      const Node& node, const LuaChunk& chunk,
      const std::vector<std::pair<std::string_view, const Json*>>& extra = {});

  // Used by the executor when a jump switches flows.
  void switch_flow(std::shared_ptr<const Flow> flow, int version);

 private:
  const Executor& executor_;
  const TurnInput& input_;
  TurnResult& result_;
  std::shared_ptr<const Flow> flow_;
  const TenantContext* tenant_;
  const InboundEvent* message_ = nullptr;
  std::optional<ScriptGlobals> script_globals_;
};

}  // namespace flowrt::runtime
