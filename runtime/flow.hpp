// The flow model: a `flowrt.flow/1` document parsed into typed nodes.
//
// Parsing and validation are one pass that collects every problem (a JSON pointer and a
// sentence each) rather than stopping at the first. A Flow is immutable once built and
// may be shared between threads and conversations.
//
// Node types are extensions: each lives in runtime/nodes/<type>.cpp, derives from Node and
// registers a parser under its type name in the NodeRegistry. The executor only calls the
// Node interface; nothing outside a node's own file switches on its type.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/conversation.hpp"
#include "runtime/lua_chunk.hpp"
#include "runtime/problem.hpp"

namespace flowrt::runtime {

class Turn;

// Where a node sends the run after it executed.
struct Step {
  enum class Kind {
    next,     // continue at `target` (empty target: the run ends)
    wait,     // stay on this node until the contact answers (or its timer fires)
    handoff,  // the conversation belongs to a human agent now
    end,      // the run ended
    fail,     // the run failed; `error` says why
    jump,     // continue in another flow: `flow`, at `target` or its start
  };
  Kind kind = Kind::next;
  std::string target;
  std::string flow;
  std::string error;

  static Step go(std::string target) { return {Kind::next, std::move(target), {}, {}}; }
  static Step wait() { return {Kind::wait, {}, {}, {}}; }
  static Step handoff() { return {Kind::handoff, {}, {}, {}}; }
  static Step end() { return {Kind::end, {}, {}, {}}; }
  static Step fail(std::string error) { return {Kind::fail, {}, {}, std::move(error)}; }
  static Step jump(std::string flow, std::string node) {
    return {Kind::jump, std::move(node), std::move(flow), {}};
  }
};

// A field of a node that names another node, for validation and reachability.
struct NodeLink {
  std::string field;  // JSON pointer relative to the node, e.g. "/next", "/branches/0/next"
  std::string target;
};

class Node {
 public:
  virtual ~Node() = default;

  std::string id;
  std::string type;
  std::string next;  // empty: the run ends after this node
  std::string label;
  LuaChunk script;  // the node's `script`, empty if none
  int index = 0;    // position in the document's `nodes` array

  std::string path() const { return "/nodes/" + std::to_string(index); }

  // Runs the node as the run arrives at it.
  virtual Step enter(Turn& turn) const = 0;
  // Called with the contact's message while this node waits. Only waiting nodes get it.
  virtual Step on_message(Turn& turn, const InboundEvent& event) const;
  // Called when the timer armed by this node fires while it still waits.
  virtual Step on_timeout(Turn& turn) const;
  // Appends every node id this node may continue at, including `next`.
  virtual void links(std::vector<NodeLink>& out) const;
  // True for node types that give `script` a meaning of their own (text, question,
  // api_call, script). For the others the executor runs the script for its effect on
  // vars before the node.
  virtual bool owns_script() const { return false; }
  // True for node types that stop the turn to wait for the contact (questions).
  virtual bool waits_for_input() const { return false; }
  // True if the node hands the conversation to a human (used by cycle detection: a cycle
  // through a waiting or handoff node cannot loop within one turn).
  virtual bool stops_turn() const { return waits_for_input(); }
};

// Checks the syntax of Lua the flow carries (runtime/scripting.hpp has the sandbox's).
class ScriptChecker {
 public:
  virtual ~ScriptChecker() = default;
  // Returns "" if `source` compiles; otherwise "line N: message". `expression` wraps the
  // source as `return (<source>)`, as condition `when` strings are run.
  virtual std::string check(std::string_view source, bool expression) const = 0;
};

// What a node parser gets: the node's JSON, where it is, and a place to put problems.
class NodeParseContext {
 public:
  using FlowExists = std::function<bool(const std::string& flow_id)>;

  NodeParseContext(const Json& node, std::string path, Problems& problems,
                   const ScriptChecker* scripts, const FlowExists* flow_exists = nullptr)
      : node_(node),
        path_(std::move(path)),
        problems_(problems),
        scripts_(scripts),
        flow_exists_(flow_exists) {}

  const Json& node() const { return node_; }
  const std::string& path() const { return path_; }

  void error(const std::string& relative_path, const std::string& message);
  void warning(const std::string& relative_path, const std::string& message);

  // Field readers: report a problem (missing / wrong type) and return a default on error.
  std::string required_string(const char* field);
  std::string optional_string(const char* field, std::string fallback = "");
  const Json* optional_object(const char* field);
  // Reports an error at `relative_path` when `value` is not an integer in [min, max].
  std::optional<long long> integer_in(const Json& value, const std::string& relative_path,
                                      long long min, long long max);
  // Checks Lua at `relative_path`; reports syntax errors or that Lua is unavailable.
  void check_lua(const std::string& source, const std::string& relative_path, bool expression);
  // True unless the caller knows the tenant's flows and `flow_id` is not among them.
  bool flow_exists(const std::string& flow_id) const;
  bool used_lua() const { return used_lua_; }
  // "a text node", "an api_call node": for messages.
  std::string node_kind() const;
  // Reports unknown fields (anything not in `allowed` plus the common node fields).
  void reject_unknown_fields(std::initializer_list<std::string_view> allowed);

 private:
  const Json& node_;
  std::string path_;
  Problems& problems_;
  const ScriptChecker* scripts_;
  const FlowExists* flow_exists_;
  bool used_lua_ = false;
};

using NodeParser = std::function<std::unique_ptr<Node>(NodeParseContext&)>;

// Maps a node type name to its parser. `builtin()` holds the eight types of SPEC §2.
class NodeRegistry {
 public:
  void add(std::string type, NodeParser parser);
  const NodeParser* find(std::string_view type) const;
  std::vector<std::string> types() const;

  static const NodeRegistry& builtin();

 private:
  std::map<std::string, NodeParser, std::less<>> parsers_;
};

class Flow {
 public:
  std::string id;
  std::string name;
  std::string start;

  const Node* find(std::string_view node_id) const;
  const std::vector<std::unique_ptr<Node>>& nodes() const { return nodes_; }
  bool uses_lua() const { return uses_lua_; }

 private:
  friend struct FlowBuilder;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::unordered_map<std::string_view, const Node*> by_id_;
  bool uses_lua_ = false;
};

struct ParseOptions {
  const NodeRegistry* registry = nullptr;  // null: NodeRegistry::builtin()
  const ScriptChecker* scripts = nullptr;  // null: the sandbox's LuaSyntaxChecker
  // Reports `jump` to flows this returns false for (the API knows the tenant's flows;
  // the CLI checks files next to the flow instead). Null: jump targets are not checked.
  std::function<bool(const std::string& flow_id)> flow_exists;
};

struct ParseResult {
  std::shared_ptr<const Flow> flow;  // null when there is any error
  Problems problems;                 // errors and warnings, in document order
};

// Parses and validates a document. Never throws on bad input.
ParseResult parse_flow(const Json& document, const ParseOptions& options = {});
// Same, from text: malformed JSON is one problem that names the line and column.
ParseResult parse_flow_text(std::string_view text, const ParseOptions& options = {});

// The format identifier this runtime reads.
inline constexpr std::string_view kFlowFormat = "flowrt.flow/1";

}  // namespace flowrt::runtime
