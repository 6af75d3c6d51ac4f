// `end`: sends its text, if any, and ends the conversation.
#include "runtime/nodes/common.hpp"

namespace flowrt::runtime::nodes {
namespace {

class EndNode : public Node {
 public:
  Template text;
  bool has_text = false;

  Step enter(Turn& turn) const override {
    if (has_text) turn.send(turn.render(text));
    return Step::end();
  }
  void links(std::vector<NodeLink>&) const override {}
};

}  // namespace

void register_end_node(NodeRegistry& registry) {
  registry.add("end", [](NodeParseContext& ctx) {
    ctx.reject_unknown_fields({"text"});
    auto node = std::make_unique<EndNode>();
    node->has_text = ctx.node().contains("text") && !ctx.node()["text"].is_null();
    node->text = template_field(ctx, "text", false);
    if (ctx.node().contains("next")) {
      ctx.error("/next", "an end node ends the conversation; remove \"next\"");
    }
    return node;
  });
}

}  // namespace flowrt::runtime::nodes
