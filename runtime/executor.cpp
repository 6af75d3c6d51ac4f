// The turn loop. A turn starts from the conversation's status and the inbound event,
// then follows Steps from node to node until one waits, hands off, ends or fails, or the
// per-turn node limit trips.
#include "runtime/executor.hpp"

#include "runtime/suggest.hpp"
#include "runtime/turn.hpp"

namespace flowrt::runtime {
namespace {

const TenantContext& no_tenant() {
  static const TenantContext empty;
  return empty;
}

}  // namespace

int64_t SystemClock::now_ms() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// --- Turn ----------------------------------------------------------------------------------

Turn::Turn(const Executor& executor, const TurnInput& input, TurnResult& result)
    : executor_(executor),
      input_(input),
      result_(result),
      flow_(input.flow),
      tenant_(input.tenant ? input.tenant : &no_tenant()) {
  if (input.event.kind == InboundEvent::Kind::message) message_ = &input.event;
}

std::string Turn::render(const Template& text, bool with_secrets) const {
  if (text.is_literal()) return text.source();
  static const std::string empty;
  TemplateScope scope;
  scope.vars = &result_.state.vars;
  scope.contact = &input_.contact;
  scope.message_text = message_ ? &message_->text : &empty;
  scope.message_data = message_ ? &message_->data : nullptr;
  scope.flow_id = &flow_->id;
  scope.tenant_name = &tenant_->name;
  if (with_secrets) scope.secrets = &tenant_->secrets;
  return text.render(scope);
}

void Turn::send(std::string text) {
  journal("message_out", Json{{"text", text}});
  result_.messages.push_back({std::move(text)});
}

void Turn::journal(std::string type, Json data) {
  result_.journal.push_back({std::move(type), std::move(data), now_ms()});
}

void Turn::begin_wait(const Node& node, int timeout_s) {
  ++result_.state.wait_seq;
  result_.timer.reset();
  if (timeout_s > 0) {
    result_.timer =
        TimerRequest{node.id, result_.state.wait_seq, now_ms() + int64_t{timeout_s} * 1000};
  }
}

const Turn::ScriptGlobals& Turn::script_globals() {
  if (!script_globals_) {
    ScriptGlobals g;
    g.contact = Json{
        {"id", input_.contact.id}, {"name", input_.contact.name}, {"phone", input_.contact.phone}};
    g.message = Json{{"text", message_ ? message_->text : std::string()},
                     {"data", message_ ? message_->data : Json::object()}};
    g.flow = Json{{"id", flow_->id}, {"name", flow_->name}};
    g.tenant = Json{{"id", tenant_->id}, {"name", tenant_->name}};
    script_globals_ = std::move(g);
  }
  return *script_globals_;
}

ScriptRunner::Outcome Turn::run_script(
    const Node& node, const LuaChunk& chunk,
    const std::vector<std::pair<std::string_view, const Json*>>& extra) {
  ScriptRunner* runner = executor_.services().scripts;
  if (!runner) {
    ScriptRunner::Outcome outcome;
    outcome.error = "no Lua script runner is configured in this executor";
    return outcome;
  }
  return runner->run(*this, node, chunk, extra);
}

void Turn::switch_flow(std::shared_ptr<const Flow> flow, int version) {
  flow_ = std::move(flow);
  script_globals_.reset();
  result_.state.flow_id = flow_->id;
  result_.state.flow_version = version;
}

// --- Executor --------------------------------------------------------------------------

Executor::Executor(ExecutorServices services, ExecutorOptions options)
    : services_(services), options_(options) {}

namespace {

class TurnLoop {
 public:
  TurnLoop(const Executor& executor, const TurnInput& input, TurnResult& result)
      : executor_(executor), turn_(executor, input, result), result_(result) {}

  // Follows steps until the turn stops. `from` is the node that produced `step` (null when
  // the run is starting or resuming).
  void run(Step step, const Node* from) {
    const Node* current = from;
    while (true) {
      switch (step.kind) {
        case Step::Kind::next: {
          if (step.target.empty()) {
            finish_ended();
            return;
          }
          const Node* node = turn_.flow().find(step.target);
          if (!node) {
            fail("flow " + in_quotes(turn_.flow().id) + " has no node " + in_quotes(step.target),
                 current);
            return;
          }
          if (result_.nodes_executed >= executor_.options().max_nodes_per_turn) {
            fail("stopped after " + std::to_string(executor_.options().max_nodes_per_turn) +
                     " nodes in one turn (the per-turn limit); the flow probably loops without "
                     "a question — last node " +
                     in_quotes(node->id),
                 node);
            return;
          }
          ++result_.nodes_executed;
          current = node;
          result_.state.node = node->id;
          turn_.journal("node", Json{{"node", node->id}, {"type", node->type}});
          step = enter(*node);
          break;
        }
        case Step::Kind::wait:
          result_.state.status = Status::waiting;
          result_.state.node = current->id;
          return;
        case Step::Kind::handoff:
          result_.state.status = Status::handoff;
          result_.state.node = current->id;
          return;
        case Step::Kind::end:
          finish_ended();
          return;
        case Step::Kind::fail:
          fail(step.error, current);
          return;
        case Step::Kind::jump: {
          const FlowResolver* flows = turn_.tenant().flows;
          FlowResolver::Found found = flows ? flows->find(step.flow) : FlowResolver::Found{};
          if (!found.flow) {
            fail("jump to flow " + in_quotes(step.flow) + ", which has no published version",
                 current);
            return;
          }
          turn_.journal("jump", Json{{"from_flow", turn_.flow().id},
                                     {"flow", step.flow},
                                     {"version", found.version}});
          std::string target = step.target.empty() ? found.flow->start : step.target;
          turn_.switch_flow(std::move(found.flow), found.version);
          step = Step::go(target);
          break;
        }
      }
    }
  }

  Turn& turn() { return turn_; }

  void fail(const std::string& message, const Node* node) {
    std::string where = node ? "node " + in_quotes(node->id) + " (" + node->type + "): " : "";
    result_.state.status = Status::failed;
    result_.state.error = where + message;
    result_.timer.reset();
    turn_.journal("error", Json{{"node", node ? node->id : ""}, {"message", result_.state.error}});
  }

 private:
  Step enter(const Node& node) {
    try {
      if (!node.script.empty() && !node.owns_script()) {
        auto outcome = turn_.run_script(node, node.script);
        if (!outcome.ok) return Step::fail("script failed: " + outcome.error);
      }
      return node.enter(turn_);
    } catch (const std::exception& e) {
      return Step::fail(std::string("internal error: ") + e.what());
    }
  }

  void finish_ended() {
    result_.state.status = Status::ended;
    result_.timer.reset();
    turn_.journal("ended");
  }

  const Executor& executor_;
  Turn turn_;
  TurnResult& result_;
};

}  // namespace

TurnResult Executor::run_turn(TurnInput input) const {
  TurnResult result = run_turn_unobserved(std::move(input));
  if (services_.observer) services_.observer->on_turn(result);
  return result;
}

TurnResult Executor::run_turn_unobserved(TurnInput input) const {
  TurnResult result;
  result.state = std::move(input.state);
  if (!input.flow) {
    result.state.status = Status::failed;
    result.state.error = "no flow to run";
    return result;
  }
  if (result.state.flow_id.empty()) result.state.flow_id = input.flow->id;
  TurnLoop loop(*this, input, result);
  Turn& turn = loop.turn();
  const InboundEvent& event = input.event;
  ConversationState& state = result.state;

  if (event.kind == InboundEvent::Kind::message) {
    Json data{{"text", event.text}};
    if (!event.data.empty()) data["data"] = event.data;
    turn.journal("message_in", std::move(data));
  }

  if (!state.started()) {
    if (event.kind == InboundEvent::Kind::message || event.kind == InboundEvent::Kind::start) {
      state.status = Status::active;
      loop.run(Step::go(input.flow->start), nullptr);
    } else {
      turn.journal("ignored", Json{{"reason", "the conversation has not started"}});
    }
    return result;
  }

  const Node* node = input.flow->find(state.node);
  switch (state.status) {
    case Status::waiting: {
      if (!node || !node->waits_for_input()) {
        loop.fail("the conversation waits on node " + in_quotes(state.node) +
                      ", which its flow version does not have as a question",
                  nullptr);
        return result;
      }
      if (event.kind == InboundEvent::Kind::message) {
        state.status = Status::active;
        Step step;
        try {
          step = node->on_message(turn, event);
        } catch (const std::exception& e) {
          step = Step::fail(std::string("internal error: ") + e.what());
        }
        loop.run(std::move(step), node);
      } else if (event.kind == InboundEvent::Kind::timeout) {
        if (event.wait_seq != state.wait_seq) {
          turn.journal("ignored", Json{{"reason", "stale timer"}, {"wait_seq", event.wait_seq}});
          return result;
        }
        state.status = Status::active;
        turn.journal("timeout", Json{{"node", node->id}});
        loop.run(node->on_timeout(turn), node);
      } else {
        turn.journal("ignored", Json{{"reason", "the conversation is not in handoff"}});
      }
      return result;
    }
    case Status::handoff: {
      if (event.kind != InboundEvent::Kind::resume) {
        // Inbound messages during a handoff are only stored (journaled) for the agent.
        if (event.kind != InboundEvent::Kind::message) {
          turn.journal("ignored", Json{{"reason", "the conversation is with an agent"}});
        }
        return result;
      }
      std::string target = event.node;
      if (target.empty() && node) target = node->next;
      if (!event.node.empty() && !input.flow->find(event.node)) {
        turn.journal("ignored", Json{{"reason", "resume at unknown node"}, {"node", event.node}});
        return result;
      }
      state.status = Status::active;
      state.handoff_queue.clear();
      state.handoff_note.clear();
      turn.journal("resume", Json{{"node", target}});
      loop.run(Step::go(target), node);
      return result;
    }
    case Status::active:
      // A state saved mid-turn cannot happen; treat it as a waiting-less run at its node.
      loop.fail("conversation was left active at node " + in_quotes(state.node), node);
      return result;
    case Status::ended:
    case Status::failed:
      turn.journal("ignored", Json{{"reason", "the conversation has " +
                                                  std::string(to_string(state.status))}});
      return result;
  }
  return result;
}

}  // namespace flowrt::runtime
