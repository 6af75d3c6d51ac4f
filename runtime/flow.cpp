// Parsing and validation of flow documents.
//
// One pass over the document builds the typed nodes and records every problem; a second
// pass checks what needs the whole graph (ids that name no node, jumps, reachability,
// cycles without a question). A Flow is only returned when nothing is an error, so the
// executor never sees a dangling reference.
#include "runtime/flow.hpp"

#include <algorithm>
#include <functional>
#include <regex>
#include <set>
#include <unordered_map>

#include "runtime/scripting.hpp"
#include "runtime/suggest.hpp"

namespace flowrt::runtime {
namespace {

const std::regex& id_pattern() {
  static const std::regex pattern("[A-Za-z0-9_-]{1,64}");
  return pattern;
}

bool valid_id(const std::string& id) {
  return std::regex_match(id, id_pattern());
}

std::string type_name(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::object:
      return "an object";
    case Json::value_t::binary:
      return "binary";
    case Json::value_t::discarded:
      return "invalid";
    default:
      return "a number";
  }
}

constexpr std::string_view kCommonFields[] = {"id", "type", "next", "label", "ui", "script"};

}  // namespace

// --- Node defaults -------------------------------------------------------------------

Step Node::on_message(Turn&, const InboundEvent&) const {
  return Step::fail("node " + in_quotes(id) + " does not wait for messages");
}

Step Node::on_timeout(Turn&) const {
  return Step::fail("node " + in_quotes(id) + " has no timeout");
}

void Node::links(std::vector<NodeLink>& out) const {
  if (!next.empty()) out.push_back({"/next", next});
}

// --- NodeParseContext ------------------------------------------------------------------

void NodeParseContext::error(const std::string& relative_path, const std::string& message) {
  problems_.push_back({Problem::Severity::error, path_ + relative_path, message});
}

void NodeParseContext::warning(const std::string& relative_path, const std::string& message) {
  problems_.push_back({Problem::Severity::warning, path_ + relative_path, message});
}

std::string NodeParseContext::required_string(const char* field) {
  auto it = node_.find(field);
  if (it == node_.end()) {
    error("", std::string("missing required field ") + in_quotes(field) + " for " + node_kind());
    return {};
  }
  if (!it->is_string()) {
    error(std::string("/") + field,
          std::string(field) + " must be a string, not " + type_name(*it));
    return {};
  }
  return it->get<std::string>();
}

std::string NodeParseContext::optional_string(const char* field, std::string fallback) {
  auto it = node_.find(field);
  if (it == node_.end() || it->is_null()) return fallback;
  if (!it->is_string()) {
    error(std::string("/") + field,
          std::string(field) + " must be a string, not " + type_name(*it));
    return fallback;
  }
  return it->get<std::string>();
}

const Json* NodeParseContext::optional_object(const char* field) {
  auto it = node_.find(field);
  if (it == node_.end() || it->is_null()) return nullptr;
  if (!it->is_object()) {
    error(std::string("/") + field,
          std::string(field) + " must be an object, not " + type_name(*it));
    return nullptr;
  }
  return &*it;
}

std::optional<long long> NodeParseContext::integer_in(const Json& value,
                                                      const std::string& relative_path,
                                                      long long min, long long max) {
  bool integral = value.is_number_integer() ||
                  (value.is_number_float() &&
                   value.get<double>() == static_cast<long long>(value.get<double>()));
  if (!integral) {
    error(relative_path,
          "must be a whole number, not " + (value.is_number() ? value.dump() : type_name(value)));
    return std::nullopt;
  }
  long long n = value.is_number_float() ? static_cast<long long>(value.get<double>())
                                        : value.get<long long>();
  if (n < min || n > max) {
    error(relative_path, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                             ", not " + std::to_string(n));
    return std::nullopt;
  }
  return n;
}

void NodeParseContext::check_lua(const std::string& source, const std::string& relative_path,
                                 bool expression) {
  used_lua_ = true;
  static const LuaSyntaxChecker builtin;
  const ScriptChecker& checker = scripts_ ? *scripts_ : builtin;
  std::string problem = checker.check(source, expression);
  if (!problem.empty()) error(relative_path, "Lua does not compile: " + problem);
}

std::string NodeParseContext::node_kind() const {
  std::string type = node_.value("type", std::string("node"));
  bool vowel = !type.empty() && std::string_view("aeiou").find(type[0]) != std::string_view::npos;
  return (vowel ? "an " : "a ") + type + (type == "node" ? "" : " node");
}

bool NodeParseContext::flow_exists(const std::string& flow_id) const {
  return !flow_exists_ || (*flow_exists_)(flow_id);
}

void NodeParseContext::reject_unknown_fields(std::initializer_list<std::string_view> allowed) {
  std::vector<std::string_view> known(std::begin(kCommonFields), std::end(kCommonFields));
  known.insert(known.end(), allowed.begin(), allowed.end());
  for (const auto& [key, value] : node_.items()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    error("/" + key,
          "unknown field " + in_quotes(key) + " for " + node_kind() + did_you_mean(key, known));
  }
}

// --- NodeRegistry ----------------------------------------------------------------------

void NodeRegistry::add(std::string type, NodeParser parser) {
  parsers_[std::move(type)] = std::move(parser);
}

const NodeParser* NodeRegistry::find(std::string_view type) const {
  auto it = parsers_.find(type);
  return it == parsers_.end() ? nullptr : &it->second;
}

std::vector<std::string> NodeRegistry::types() const {
  std::vector<std::string> names;
  for (const auto& [name, parser] : parsers_) names.push_back(name);
  return names;
}

// Defined in runtime/nodes/builtin.cpp.
void register_builtin_nodes(NodeRegistry& registry);

const NodeRegistry& NodeRegistry::builtin() {
  static const NodeRegistry registry = [] {
    NodeRegistry r;
    register_builtin_nodes(r);
    return r;
  }();
  return registry;
}

// --- Flow ------------------------------------------------------------------------------

const Node* Flow::find(std::string_view node_id) const {
  auto it = by_id_.find(node_id);
  return it == by_id_.end() ? nullptr : it->second;
}

struct FlowBuilder {
  static void add(Flow& flow, std::unique_ptr<Node> node) {
    flow.by_id_.emplace(node->id, node.get());
    flow.nodes_.push_back(std::move(node));
  }
  static void set_uses_lua(Flow& flow) { flow.uses_lua_ = true; }
  // by_id_ keys view into the nodes' own id strings, which never move (unique_ptr).
};

namespace {

void check_top_level(const Json& doc, Problems& problems) {
  static constexpr std::string_view allowed[] = {"format", "id",    "name", "description",
                                                 "start",  "nodes", "ui",   "$schema"};
  for (const auto& [key, value] : doc.items()) {
    if (std::find(std::begin(allowed), std::end(allowed), key) != std::end(allowed)) continue;
    std::vector<std::string_view> names(std::begin(allowed), std::end(allowed));
    problems.push_back({Problem::Severity::error, "/" + key,
                        "unknown top-level field " + in_quotes(key) + did_you_mean(key, names)});
  }
}

// Warns about nodes the start can never reach.
void warn_unreachable(const Flow& flow, const std::unordered_map<std::string, const Node*>& ids,
                      Problems& problems) {
  std::set<std::string> seen;
  std::vector<std::string> stack{flow.start};
  std::vector<NodeLink> links;
  while (!stack.empty()) {
    std::string id = stack.back();
    stack.pop_back();
    auto it = ids.find(id);
    if (it == ids.end() || !seen.insert(id).second) continue;
    links.clear();
    it->second->links(links);
    for (auto& link : links) stack.push_back(link.target);
  }
  for (const auto& node : flow.nodes()) {
    if (!seen.count(node->id)) {
      problems.push_back(
          {Problem::Severity::warning, node->path(),
           "node " + in_quotes(node->id) + " is unreachable from start " + in_quotes(flow.start)});
    }
  }
}

// Warns about cycles that no question or handoff interrupts: a turn that enters one runs
// until the node limit unless a condition leaves it. Tarjan's strongly connected components
// over the edges out of nodes that do not stop the turn.
void warn_cycles(const Flow& flow, Problems& problems) {
  const auto& nodes = flow.nodes();
  std::unordered_map<const Node*, int> index_of;
  for (size_t i = 0; i < nodes.size(); ++i) index_of[nodes[i].get()] = static_cast<int>(i);
  std::vector<std::vector<int>> edges(nodes.size());
  std::vector<bool> self_loop(nodes.size(), false);
  std::vector<NodeLink> links;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i]->stops_turn()) continue;
    links.clear();
    nodes[i]->links(links);
    for (const auto& link : links) {
      const Node* target = flow.find(link.target);
      if (!target) continue;
      int j = index_of[target];
      edges[i].push_back(j);
      if (j == static_cast<int>(i)) self_loop[i] = true;
    }
  }
  int counter = 0;
  std::vector<int> index(nodes.size(), -1), low(nodes.size(), 0);
  std::vector<bool> on_stack(nodes.size(), false);
  std::vector<int> stack;
  std::function<void(int)> visit = [&](int v) {
    index[v] = low[v] = counter++;
    stack.push_back(v);
    on_stack[v] = true;
    for (int w : edges[v]) {
      if (index[w] < 0) {
        visit(w);
        low[v] = std::min(low[v], low[w]);
      } else if (on_stack[w]) {
        low[v] = std::min(low[v], index[w]);
      }
    }
    if (low[v] != index[v]) return;
    std::vector<int> component;
    int w;
    do {
      w = stack.back();
      stack.pop_back();
      on_stack[w] = false;
      component.push_back(w);
    } while (w != v);
    if (component.size() < 2 && !self_loop[v]) return;
    std::sort(component.begin(), component.end());
    std::string names;
    for (int c : component) names += (names.empty() ? "" : ", ") + in_quotes(nodes[c]->id);
    problems.push_back({Problem::Severity::warning, nodes[component.front()]->path(),
                        "nodes " + names +
                            " form a cycle with no question: a turn that enters it runs until "
                            "the per-turn node limit unless a condition leaves it"});
  };
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (index[i] < 0) visit(static_cast<int>(i));
  }
}

}  // namespace

ParseResult parse_flow(const Json& doc, const ParseOptions& options) {
  ParseResult result;
  Problems& problems = result.problems;
  auto error = [&](std::string path, std::string message) {
    problems.push_back({Problem::Severity::error, std::move(path), std::move(message)});
  };
  if (!doc.is_object()) {
    error("", "a flow must be a JSON object, not " + type_name(doc));
    return result;
  }
  const NodeRegistry& registry = options.registry ? *options.registry : NodeRegistry::builtin();
  auto flow = std::make_shared<Flow>();

  auto format = doc.find("format");
  if (format == doc.end()) {
    error("", "missing \"format\": set it to \"" + std::string(kFlowFormat) + "\"");
  } else if (!format->is_string() || *format != kFlowFormat) {
    error("/format", "unknown format " + format->dump() + "; this runtime reads \"" +
                         std::string(kFlowFormat) + "\"");
  }
  auto read_string = [&](const char* field, bool required) -> std::string {
    auto it = doc.find(field);
    if (it == doc.end()) {
      if (required) error("", std::string("missing required field ") + in_quotes(field));
      return {};
    }
    if (!it->is_string()) {
      error(std::string("/") + field,
            std::string(field) + " must be a string, not " + type_name(*it));
      return {};
    }
    return it->get<std::string>();
  };
  flow->id = read_string("id", true);
  if (doc.contains("id") && doc["id"].is_string() && !valid_id(flow->id)) {
    error("/id", "flow id " + in_quotes(flow->id) + " must be 1-64 letters, digits, '_' or '-'");
  }
  flow->name = read_string("name", false);
  read_string("description", false);
  flow->start = read_string("start", true);
  if (doc.contains("start") && doc["start"].is_string() && flow->start.empty()) {
    error("/start", "start must name the first node");
  }
  if (auto ui = doc.find("ui"); ui != doc.end() && !ui->is_object()) {
    error("/ui", "ui must be an object (it is kept for visual editors), not " + type_name(*ui));
  }
  read_string("$schema", false);
  check_top_level(doc, problems);

  auto nodes_it = doc.find("nodes");
  if (nodes_it == doc.end()) {
    error("", "missing required field \"nodes\" (an array of nodes)");
  } else if (!nodes_it->is_array()) {
    error("/nodes", "nodes must be an array, not " + type_name(*nodes_it));
  } else if (nodes_it->empty()) {
    error("/nodes", "a flow needs at least one node");
  }

  std::unordered_map<std::string, const Node*> ids;
  std::unordered_map<std::string, int> first_index;
  std::vector<std::string> type_storage = registry.types();
  std::vector<std::string_view> type_names(type_storage.begin(), type_storage.end());

  if (nodes_it != doc.end() && nodes_it->is_array()) {
    for (size_t i = 0; i < nodes_it->size(); ++i) {
      const Json& json = (*nodes_it)[i];
      std::string path = "/nodes/" + std::to_string(i);
      if (!json.is_object()) {
        error(path, "a node must be an object, not " + type_name(json));
        continue;
      }
      NodeParseContext ctx(json, path, problems, options.scripts,
                           options.flow_exists ? &options.flow_exists : nullptr);
      std::string id = ctx.required_string("id");
      if (json.contains("id") && json["id"].is_string() && !valid_id(id)) {
        ctx.error("/id", "node id " + in_quotes(id) + " must be 1-64 letters, digits, '_' or '-'");
      }
      if (!id.empty()) {
        auto [it, fresh] = first_index.emplace(id, static_cast<int>(i));
        if (!fresh) {
          ctx.error("/id", "duplicate node id " + in_quotes(id) + " (first used at /nodes/" +
                               std::to_string(it->second) + ")");
        }
      }
      std::string type = ctx.required_string("type");
      const NodeParser* parser = type.empty() ? nullptr : registry.find(type);
      if (!type.empty() && !parser) {
        ctx.error("/type", "unknown node type " + in_quotes(type) + did_you_mean(type, type_names) +
                               "; known types: text, question, condition, api_call, handoff, "
                               "script, jump, end");
      }
      std::string next = ctx.optional_string("next");
      std::string label = ctx.optional_string("label");
      if (auto ui = json.find("ui"); ui != json.end() && !ui->is_object()) {
        ctx.error("/ui",
                  "ui must be an object (it is kept for visual editors), not " + type_name(*ui));
      }
      std::string script = ctx.optional_string("script");
      if (!script.empty()) ctx.check_lua(script, "/script", false);
      if (!parser) continue;
      std::unique_ptr<Node> node = (*parser)(ctx);
      if (!node) continue;
      node->id = id;
      node->type = type;
      node->next = next;
      node->label = label;
      node->script = LuaChunk{script, id + ".script", false};
      node->index = static_cast<int>(i);
      if (ctx.used_lua()) FlowBuilder::set_uses_lua(*flow);
      if (!id.empty() && !ids.count(id)) ids.emplace(id, node.get());
      FlowBuilder::add(*flow, std::move(node));
    }
  }

  // References between nodes.
  std::vector<std::string_view> id_names;
  for (const auto& [id, node] : ids) id_names.push_back(id);
  std::sort(id_names.begin(), id_names.end());
  if (!flow->start.empty() && !first_index.count(flow->start)) {
    error("/start", "start names no node: no node has id " + in_quotes(flow->start) +
                        did_you_mean(flow->start, id_names));
  }
  std::vector<NodeLink> links;
  for (const auto& node : flow->nodes()) {
    links.clear();
    node->links(links);
    for (const auto& link : links) {
      if (!first_index.count(link.target)) {
        error(node->path() + link.field,
              "no node has id " + in_quotes(link.target) + did_you_mean(link.target, id_names));
      }
    }
  }
  if (!has_errors(problems)) {
    warn_unreachable(*flow, ids, problems);
    warn_cycles(*flow, problems);
  }
  if (!has_errors(problems)) result.flow = std::move(flow);
  return result;
}

ParseResult parse_flow_text(std::string_view text, const ParseOptions& options) {
  Json doc;
  try {
    doc = Json::parse(text);
  } catch (const Json::parse_error& e) {
    size_t offset = std::min<size_t>(e.byte, text.size());
    size_t line = 1, column = 1;
    for (size_t i = 0; i + 1 < offset; ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    std::string what = e.what();
    auto colon = what.rfind(": ");
    ParseResult result;
    result.problems.push_back({Problem::Severity::error, "",
                               "malformed JSON at line " + std::to_string(line) + ", column " +
                                   std::to_string(column) + ": " +
                                   (colon == std::string::npos ? what : what.substr(colon + 2))});
    return result;
  }
  return parse_flow(doc, options);
}

}  // namespace flowrt::runtime
