// `condition`: the first branch whose `when` holds wins; none: `else`.
//
// Declarative conditions are compiled into a small tree when the flow is parsed:
//   {"var": "budget", "op": "gte", "value": 1000}, {"all": [...]}, {"any": [...]}, {"not": ...}
// Lua `when` strings arrive with the sandbox.
#include <cmath>
#include <regex>

#include "runtime/nodes/common.hpp"
#include "runtime/suggest.hpp"

namespace flowrt::runtime::nodes {
namespace {

enum class Op { eq, ne, gt, gte, lt, lte, contains, matches, exists, empty, all, any, not_ };

struct Condition {
  Op op = Op::eq;
  std::vector<std::string> var;  // dotted path into vars
  Json value;
  std::regex pattern;
  std::vector<Condition> children;
};

bool json_equal(const Json& a, const Json& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  return a == b;
}

// Orders numbers with numbers and strings with strings; anything else does not compare.
std::optional<int> compare(const Json& a, const Json& b) {
  if (a.is_number() && b.is_number()) {
    double x = a.get<double>(), y = b.get<double>();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    int c = a.get_ref<const std::string&>().compare(b.get_ref<const std::string&>());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  return std::nullopt;
}

bool is_empty(const Json* v) {
  if (!v || v->is_null()) return true;
  if (v->is_string()) return v->get_ref<const std::string&>().empty();
  if (v->is_array() || v->is_object()) return v->empty();
  return false;
}

bool holds(const Condition& c, const Json& vars) {
  switch (c.op) {
    case Op::all:
      for (const auto& child : c.children) {
        if (!holds(child, vars)) return false;
      }
      return true;
    case Op::any:
      for (const auto& child : c.children) {
        if (holds(child, vars)) return true;
      }
      return false;
    case Op::not_:
      return !holds(c.children[0], vars);
    default:
      break;
  }
  const Json* v = lookup_dotted(vars, c.var);
  switch (c.op) {
    case Op::exists:
      return v && !v->is_null();
    case Op::empty:
      return is_empty(v);
    case Op::eq:
      return v && json_equal(*v, c.value);
    case Op::ne:
      return !v || !json_equal(*v, c.value);
    case Op::gt:
    case Op::gte:
    case Op::lt:
    case Op::lte: {
      if (!v) return false;
      auto order = compare(*v, c.value);
      if (!order) return false;
      if (c.op == Op::gt) return *order > 0;
      if (c.op == Op::gte) return *order >= 0;
      if (c.op == Op::lt) return *order < 0;
      return *order <= 0;
    }
    case Op::contains:
      if (!v) return false;
      if (v->is_string() && c.value.is_string()) {
        return v->get_ref<const std::string&>().find(c.value.get_ref<const std::string&>()) !=
               std::string::npos;
      }
      if (v->is_array()) {
        for (const auto& item : *v) {
          if (json_equal(item, c.value)) return true;
        }
      }
      return false;
    case Op::matches:
      return v && v->is_string() && v->get_ref<const std::string&>().size() <= 4096 &&
             std::regex_search(v->get_ref<const std::string&>(), c.pattern);
    default:
      return false;
  }
}

const std::pair<std::string_view, Op> kOps[] = {{"eq", Op::eq},
                                                {"ne", Op::ne},
                                                {"gt", Op::gt},
                                                {"gte", Op::gte},
                                                {"lt", Op::lt},
                                                {"lte", Op::lte},
                                                {"contains", Op::contains},
                                                {"matches", Op::matches},
                                                {"exists", Op::exists},
                                                {"empty", Op::empty}};

bool parse_condition(NodeParseContext& ctx, const Json& json, const std::string& path,
                     Condition& out, int depth) {
  if (depth > 32) {
    ctx.error(path, "conditions nest deeper than 32 levels");
    return false;
  }
  if (!json.is_object()) {
    ctx.error(path,
              "a condition must be an object ({\"var\", \"op\", \"value\"}, {\"all\"}, "
              "{\"any\"} or {\"not\"}) or a Lua expression string");
    return false;
  }
  for (auto [key, op] : {std::pair{"all", Op::all}, std::pair{"any", Op::any}}) {
    auto it = json.find(key);
    if (it == json.end()) continue;
    out.op = op;
    if (json.size() != 1)
      ctx.error(path, std::string("\"") + key + "\" must be the only field of its object");
    if (!it->is_array() || it->empty()) {
      ctx.error(path + "/" + key, std::string(key) + " must be a non-empty array of conditions");
      return false;
    }
    bool ok = true;
    for (size_t i = 0; i < it->size(); ++i) {
      Condition child;
      ok &= parse_condition(ctx, (*it)[i], path + "/" + key + "/" + std::to_string(i), child,
                            depth + 1);
      out.children.push_back(std::move(child));
    }
    return ok;
  }
  if (auto it = json.find("not"); it != json.end()) {
    out.op = Op::not_;
    if (json.size() != 1) ctx.error(path, "\"not\" must be the only field of its object");
    Condition child;
    bool ok = parse_condition(ctx, *it, path + "/not", child, depth + 1);
    out.children.push_back(std::move(child));
    return ok;
  }
  for (const auto& [key, value] : json.items()) {
    if (key != "var" && key != "op" && key != "value") {
      std::vector<std::string_view> known{"var", "op", "value", "all", "any", "not"};
      ctx.error(path + "/" + key,
                "unknown field \"" + key + "\" in a condition" + did_you_mean(key, known));
    }
  }
  auto var = json.find("var");
  if (var == json.end() || !var->is_string() || var->get<std::string>().empty()) {
    ctx.error(path + "/var",
              "a condition needs \"var\": the name of a variable (dotted for nested values)");
    return false;
  }
  out.var = split_dotted(var->get<std::string>());
  auto op = json.find("op");
  if (op == json.end() || !op->is_string()) {
    ctx.error(
        path + "/op",
        "a condition needs \"op\": eq, ne, gt, gte, lt, lte, contains, matches, exists or empty");
    return false;
  }
  std::string op_name = op->get<std::string>();
  bool found = false;
  std::vector<std::string_view> names;
  for (const auto& [name, code] : kOps) {
    names.push_back(name);
    if (name == op_name) {
      out.op = code;
      found = true;
    }
  }
  if (!found) {
    ctx.error(path + "/op",
              "unknown operator \"" + op_name + "\"" + did_you_mean(op_name, names) +
                  "; use eq, ne, gt, gte, lt, lte, contains, matches, exists or empty");
    return false;
  }
  auto value = json.find("value");
  bool needs_value = out.op != Op::exists && out.op != Op::empty;
  if (needs_value && value == json.end()) {
    ctx.error(path, "operator \"" + op_name + "\" needs a \"value\"");
    return false;
  }
  if (!needs_value && value != json.end()) {
    ctx.error(path + "/value", "operator \"" + op_name + "\" takes no \"value\"");
  }
  if (value != json.end()) out.value = *value;
  if (out.op == Op::matches) {
    if (!out.value.is_string()) {
      ctx.error(path + "/value", "\"matches\" needs a regular expression string as its value");
      return false;
    }
    try {
      out.pattern = std::regex(out.value.get<std::string>(), std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      ctx.error(path + "/value",
                "invalid regular expression " + out.value.dump() + ": " + e.what());
      return false;
    }
  }
  return true;
}

class ConditionNode : public Node {
 public:
  struct Branch {
    Condition when;
    LuaChunk lua;  // set when `when` is a Lua expression string
    std::string next;
  };
  std::vector<Branch> branches;
  std::string otherwise;

  Step enter(Turn& turn) const override {
    for (const auto& branch : branches) {
      if (branch.lua.empty()) {
        if (holds(branch.when, turn.vars())) return Step::go(branch.next);
        continue;
      }
      auto outcome = turn.run_script(*this, branch.lua);
      if (!outcome.ok) return Step::fail("condition failed: " + outcome.error);
      if (!outcome.values.empty() && sandbox::truthy(outcome.values[0]))
        return Step::go(branch.next);
    }
    return Step::go(otherwise);
  }

  void links(std::vector<NodeLink>& out) const override {
    for (size_t i = 0; i < branches.size(); ++i) {
      out.push_back({"/branches/" + std::to_string(i) + "/next", branches[i].next});
    }
    if (!otherwise.empty()) out.push_back({"/else", otherwise});
  }
};

}  // namespace

void register_condition_node(NodeRegistry& registry) {
  registry.add("condition", [](NodeParseContext& ctx) {
    ctx.reject_unknown_fields({"branches", "else"});
    auto node = std::make_unique<ConditionNode>();
    if (ctx.node().contains("next")) {
      ctx.error("/next", "a condition continues at its branches or \"else\"; remove \"next\"");
    }
    auto branches = ctx.node().find("branches");
    if (branches == ctx.node().end() || !branches->is_array() || branches->empty()) {
      ctx.error(branches == ctx.node().end() ? "" : "/branches",
                "a condition needs \"branches\": a non-empty array of {\"when\", \"next\"}");
    } else {
      for (size_t i = 0; i < branches->size(); ++i) {
        const Json& branch = (*branches)[i];
        std::string path = "/branches/" + std::to_string(i);
        if (!branch.is_object()) {
          ctx.error(path, "a branch must be an object {\"when\", \"next\"}");
          continue;
        }
        ConditionNode::Branch parsed;
        auto when = branch.find("when");
        if (when == branch.end()) {
          ctx.error(path, "a branch needs \"when\"");
        } else if (when->is_string()) {
          ctx.check_lua(when->get<std::string>(), path + "/when", true);
          parsed.lua = LuaSyntaxChecker::expression_chunk(
              when->get<std::string>(), ctx.node().value("id", "") + ".when" + std::to_string(i));
        } else {
          parse_condition(ctx, *when, path + "/when", parsed.when, 0);
        }
        parsed.next = node_id_field(ctx, branch, "next", path + "/next");
        if (parsed.next.empty()) ctx.error(path, "a branch needs \"next\": the node to go to");
        for (const auto& [key, value] : branch.items()) {
          if (key != "when" && key != "next") {
            ctx.error(path + "/" + key,
                      "unknown field \"" + key + "\" in a branch (use when, next)");
          }
        }
        node->branches.push_back(std::move(parsed));
      }
    }
    node->otherwise = node_id_field(ctx, ctx.node(), "else", "/else");
    return node;
  });
}

}  // namespace flowrt::runtime::nodes
