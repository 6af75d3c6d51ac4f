// `script`: runs Lua for its effect on vars, then `next`.
#include "runtime/nodes/common.hpp"

namespace flowrt::runtime::nodes {
namespace {

class ScriptNode : public Node {
 public:
  Step enter(Turn&) const override {
    // Flows with Lua are rejected when parsed until the sandbox is linked in.
    return Step::fail("Lua scripting not available");
  }
};

}  // namespace

void register_script_node(NodeRegistry& registry) {
  registry.add("script", [](NodeParseContext& ctx) {
    ctx.reject_unknown_fields({});
    if (!ctx.node().contains("script")) {
      ctx.error("", "missing required field \"script\" for a script node");
    }
    return std::make_unique<ScriptNode>();
  });
}

}  // namespace flowrt::runtime::nodes
