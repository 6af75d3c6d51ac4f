// `handoff`: the conversation goes to a human agent; the bot stays silent until an agent
// resumes it (at `next` or a node the agent names) or closes it.
#include "runtime/nodes/common.hpp"

namespace flowrt::runtime::nodes {
namespace {

class HandoffNode : public Node {
 public:
  std::string queue;
  Template text;
  Template note;
  bool has_text = false;

  Step enter(Turn& turn) const override {
    if (has_text) turn.send(turn.render(text));
    ConversationState& state = turn.state();
    state.handoff_queue = queue;
    state.handoff_note = turn.render(note);
    turn.journal("handoff", Json{{"queue", queue}, {"note", state.handoff_note}});
    return Step::handoff();
  }
  bool stops_turn() const override { return true; }
};

}  // namespace

void register_handoff_node(NodeRegistry& registry) {
  registry.add("handoff", [](NodeParseContext& ctx) {
    ctx.reject_unknown_fields({"queue", "text", "note"});
    auto node = std::make_unique<HandoffNode>();
    node->queue = ctx.optional_string("queue", "default");
    if (node->queue.empty()) ctx.error("/queue", "queue must not be empty");
    node->has_text = ctx.node().contains("text") && !ctx.node()["text"].is_null();
    node->text = template_field(ctx, "text", false);
    node->note = template_field(ctx, "note", false);
    return node;
  });
}

}  // namespace flowrt::runtime::nodes
