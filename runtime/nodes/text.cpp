// `text`: sends one message.
#include <algorithm>

#include "runtime/nodes/common.hpp"

namespace flowrt::runtime::nodes {
namespace {

class TextNode : public Node {
 public:
  Template text;

  // A script may return a string (sent instead of `text`), an array of strings (each
  // sent) or nothing (`text` is sent).
  Step enter(Turn& turn) const override {
    if (script.empty()) {
      turn.send(turn.render(text));
      return Step::go(next);
    }
    auto outcome = turn.run_script(*this, script);
    if (!outcome.ok) return Step::fail("script failed: " + outcome.error);
    const Json returned = outcome.values.empty() ? Json() : outcome.values[0];
    if (returned.is_null()) {
      turn.send(turn.render(text));
    } else if (returned.is_string()) {
      turn.send(returned.get<std::string>());
    } else if (returned.is_array() && std::all_of(returned.begin(), returned.end(),
                                                  [](const Json& j) { return j.is_string(); })) {
      for (const auto& line : returned) turn.send(line.get<std::string>());
    } else {
      return Step::fail("script must return a string, an array of strings or nothing, not " +
                        returned.dump());
    }
    return Step::go(next);
  }
  bool owns_script() const override { return true; }
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
