// `text`: sends one message.
#include "runtime/nodes/common.hpp"

namespace flowrt::runtime::nodes {
namespace {

class TextNode : public Node {
 public:
  Template text;

  Step enter(Turn& turn) const override {
    turn.send(turn.render(text));
    return Step::go(next);
  }
};

}  // namespace

void register_text_node(NodeRegistry& registry) {
  registry.add("text", [](NodeParseContext& ctx) {
    ctx.reject_unknown_fields({"text"});
    auto node = std::make_unique<TextNode>();
    node->text = template_field(ctx, "text", true);
    return node;
  });
}

}  // namespace flowrt::runtime::nodes
