// `script`: runs Lua for its effect on vars, then `next`.
#include "runtime/nodes/common.hpp"

namespace flowrt::runtime::nodes {
namespace {

class ScriptNode : public Node {
 public:
  Step enter(Turn& turn) const override {
    auto outcome = turn.run_script(*this, script);
    if (!outcome.ok) return Step::fail("script failed: " + outcome.error);
    return Step::go(next);
  }
  bool owns_script() const override { return true; }
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
