// `question`: sends the prompt and waits. The answer is checked by `expect`; an invalid
// answer sends the retry text and waits again, except that the `max_attempts`-th invalid
// answer moves the run to `retry.next` (or fails it). `timeout` arms a timer whose firing
// moves the run to `timeout.next`.
#include "runtime/answer.hpp"
#include "runtime/nodes/common.hpp"

namespace flowrt::runtime::nodes {
namespace {

class QuestionNode : public Node {
 public:
  Template text;
  std::string save_as;
  Expectation expect;
  bool has_retry = false;
  Template retry_text;
  bool has_retry_text = false;
  int max_attempts = 0;  // 0: unlimited
  std::string retry_next;
  int timeout_s = 0;
  std::string timeout_next;

  Step enter(Turn& turn) const override {
    turn.state().attempts = 0;
    turn.send(turn.render(text));
    turn.begin_wait(*this, timeout_s);
    return Step::wait();
  }

  Step on_message(Turn& turn, const InboundEvent& event) const override {
    std::optional<Json> value = validate_answer(expect, event.text);
    std::string refusal;  // a script's own retry message
    if (value && !script.empty()) {
      auto verdict = check_with_script(turn, value, refusal);
      if (!verdict.ok) return Step::fail("script failed: " + verdict.error);
    }
    if (value) {
      turn.vars()[save_as] = std::move(*value);
      turn.state().attempts = 0;
      return Step::go(next);
    }
    int attempts = ++turn.state().attempts;
    turn.journal("invalid_answer", Json{{"node", id}, {"attempt", attempts}});
    if (has_retry && max_attempts > 0 && attempts >= max_attempts) {
      turn.state().attempts = 0;
      if (retry_next.empty()) {
        return Step::fail("no valid answer after " + std::to_string(max_attempts) +
                          " attempts and no retry.next to go to");
      }
      return Step::go(retry_next);
    }
    if (!refusal.empty()) {
      turn.send(refusal);
    } else {
      turn.send(turn.render(has_retry_text ? retry_text : text));
    }
    turn.begin_wait(*this, timeout_s);
    return Step::wait();
  }

  // The script sees `answer` (the value `expect` produced) and returns true or nothing
  // (valid), false or false, "message" (invalid), or another value (stored instead).
  // Clears `value` when the answer is refused.
  ScriptRunner::Outcome check_with_script(Turn& turn, std::optional<Json>& value,
                                          std::string& refusal) const {
    const Json answer = *value;
    auto outcome = turn.run_script(*this, script, {{"answer", &answer}});
    if (!outcome.ok) return outcome;
    const Json verdict = outcome.values.empty() ? Json() : outcome.values[0];
    if (verdict.is_boolean() && !verdict.get<bool>()) {
      value.reset();
      if (outcome.values.size() > 1 && outcome.values[1].is_string()) {
        refusal = outcome.values[1].get<std::string>();
      }
    } else if (!verdict.is_null() && !verdict.is_boolean()) {
      value = verdict;
    }
    return outcome;
  }
  bool owns_script() const override { return true; }

  Step on_timeout(Turn&) const override { return Step::go(timeout_next); }

  void links(std::vector<NodeLink>& out) const override {
    Node::links(out);
    if (!retry_next.empty()) out.push_back({"/retry/next", retry_next});
    if (!timeout_next.empty()) out.push_back({"/timeout/next", timeout_next});
  }
  bool waits_for_input() const override { return true; }
};

void parse_expect(NodeParseContext& ctx, const Json& json, Expectation& expect) {
  for (const auto& [key, value] : json.items()) {
    if (key != "type" && key != "min" && key != "max" && key != "pattern" && key != "choices") {
      ctx.error("/expect/" + key,
                "unknown field \"" + key + "\" in expect (use type, min, max, pattern, choices)");
    }
  }
  auto type = json.find("type");
  if (type == json.end() || !type->is_string()) {
    ctx.error("/expect/type",
              "expect.type must be one of text, number, integer, boolean, email, "
              "phone, choice, regex");
    return;
  }
  auto parsed = parse_expect_type(type->get<std::string>());
  if (!parsed) {
    ctx.error("/expect/type", "unknown expect type " + type->dump() +
                                  "; use text, number, integer, boolean, email, phone, choice or "
                                  "regex");
    return;
  }
  expect.type = *parsed;
  for (const char* bound : {"min", "max"}) {
    auto it = json.find(bound);
    if (it == json.end()) continue;
    if (!it->is_number()) {
      ctx.error(std::string("/expect/") + bound, std::string(bound) + " must be a number");
    } else {
      (bound[1] == 'i' ? expect.min : expect.max) = it->get<double>();
    }
  }
  if (expect.min && expect.max && *expect.min > *expect.max) {
    ctx.error("/expect", "expect.min is greater than expect.max");
  }
  if (expect.type == Expectation::Type::choice) {
    auto choices = json.find("choices");
    if (choices == json.end() || !choices->is_array() || choices->empty()) {
      ctx.error("/expect/choices",
                "a choice question needs \"choices\": a non-empty array of strings");
    } else {
      for (size_t i = 0; i < choices->size(); ++i) {
        if (!(*choices)[i].is_string() || (*choices)[i].get<std::string>().empty()) {
          ctx.error("/expect/choices/" + std::to_string(i),
                    "each choice must be a non-empty string");
        } else {
          expect.choices.push_back((*choices)[i].get<std::string>());
        }
      }
    }
  }
  if (expect.type == Expectation::Type::regex) {
    auto pattern = json.find("pattern");
    if (pattern == json.end() || !pattern->is_string()) {
      ctx.error("/expect/pattern",
                "a regex question needs \"pattern\": a regular expression string");
    } else {
      expect.pattern = pattern->get<std::string>();
      try {
        expect.compiled = std::regex(expect.pattern, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        ctx.error("/expect/pattern",
                  "invalid regular expression " + pattern->dump() + ": " + e.what());
      }
    }
  }
}

}  // namespace

void register_question_node(NodeRegistry& registry) {
  registry.add("question", [](NodeParseContext& ctx) {
    ctx.reject_unknown_fields({"text", "save_as", "expect", "retry", "timeout"});
    auto node = std::make_unique<QuestionNode>();
    node->text = template_field(ctx, "text", true);
    node->save_as = ctx.required_string("save_as");
    if (ctx.node().contains("save_as") && ctx.node()["save_as"].is_string() &&
        !std::regex_match(node->save_as, std::regex("[A-Za-z_][A-Za-z0-9_]{0,63}"))) {
      ctx.error("/save_as",
                "save_as must be a variable name: letters, digits and '_', not "
                "starting with a digit (so templates and conditions can read it), not \"" +
                    node->save_as + "\"");
    }
    if (const Json* expect = ctx.optional_object("expect"))
      parse_expect(ctx, *expect, node->expect);
    if (const Json* retry = ctx.optional_object("retry")) {
      node->has_retry = true;
      for (const auto& [key, value] : retry->items()) {
        if (key != "text" && key != "max_attempts" && key != "next") {
          ctx.error("/retry/" + key,
                    "unknown field \"" + key + "\" in retry (use text, max_attempts, next)");
        }
      }
      if (auto it = retry->find("text"); it != retry->end()) {
        node->has_retry_text = true;
        node->retry_text = template_at(ctx, *it, "/retry/text");
      }
      if (auto it = retry->find("max_attempts"); it != retry->end()) {
        node->max_attempts =
            static_cast<int>(ctx.integer_in(*it, "/retry/max_attempts", 1, 100).value_or(0));
      }
      node->retry_next = node_id_field(ctx, *retry, "next", "/retry/next");
    }
    if (const Json* timeout = ctx.optional_object("timeout")) {
      for (const auto& [key, value] : timeout->items()) {
        if (key != "after_s" && key != "next") {
          ctx.error("/timeout/" + key,
                    "unknown field \"" + key + "\" in timeout (use after_s, next)");
        }
      }
      auto after = timeout->find("after_s");
      if (after == timeout->end()) {
        ctx.error("/timeout", "timeout needs \"after_s\" (seconds to wait)");
      } else {
        node->timeout_s = static_cast<int>(
            ctx.integer_in(*after, "/timeout/after_s", 1, 30 * 24 * 3600).value_or(0));
      }
      node->timeout_next = node_id_field(ctx, *timeout, "next", "/timeout/next");
      if (node->timeout_next.empty()) {
        ctx.error("/timeout", "timeout needs \"next\": the node to go to when no answer arrives");
      }
    }
    return node;
  });
}

}  // namespace flowrt::runtime::nodes
