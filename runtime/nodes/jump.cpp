// `jump`: continues in the published version of another flow of the same tenant, at its
// start or at `node`; vars carry over.
#include "runtime/nodes/common.hpp"

namespace flowrt::runtime::nodes {
namespace {

class JumpNode : public Node {
 public:
  std::string flow;
  std::string node;

  Step enter(Turn&) const override { return Step::jump(flow, node); }
  void links(std::vector<NodeLink>&) const override {}  // its targets live in another flow
};

}  // namespace

void register_jump_node(NodeRegistry& registry) {
  registry.add("jump", [](NodeParseContext& ctx) {
    ctx.reject_unknown_fields({"flow", "node"});
    auto node = std::make_unique<JumpNode>();
    node->flow = ctx.required_string("flow");
    if (ctx.node().contains("flow") && ctx.node()["flow"].is_string() && node->flow.empty()) {
      ctx.error("/flow", "flow must name the flow to continue in");
    }
    node->node = ctx.optional_string("node");
    if (ctx.node().contains("next")) {
      ctx.error("/next", "a jump continues in another flow; remove \"next\"");
    }
    if (!node->flow.empty() && !ctx.flow_exists(node->flow)) {
      ctx.error("/flow", "jump to flow \"" + node->flow +
                             "\", which does not exist (or has no published version)");
    }
    return node;
  });
}

}  // namespace flowrt::runtime::nodes
