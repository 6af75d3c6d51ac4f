// Helpers shared by the node types' parsers.
#pragma once

#include <string>

#include "runtime/flow.hpp"
#include "runtime/template.hpp"
#include "runtime/turn.hpp"

namespace flowrt::runtime::nodes {

// Compiles a template string found at `relative_path`; reports a problem if it is not a
// string or does not compile.
inline Template template_at(NodeParseContext& ctx, const Json& value,
                            const std::string& relative_path, bool allow_secrets = false) {
  Template compiled;
  if (!value.is_string()) {
    ctx.error(relative_path, "must be a string (a template)");
    return compiled;
  }
  std::string problem;
  if (!Template::compile(value.get<std::string>(), allow_secrets, compiled, problem)) {
    ctx.error(relative_path, problem);
  }
  return compiled;
}

// Reads a template field; a missing required field is reported.
inline Template template_field(NodeParseContext& ctx, const char* field, bool required) {
  auto it = ctx.node().find(field);
  if (it == ctx.node().end() || it->is_null()) {
    if (required) {
      ctx.error("", std::string("missing required field \"") + field + "\" for " + ctx.node_kind());
    }
    return Template();
  }
  return template_at(ctx, *it, std::string("/") + field);
}

// Reads an optional node-id field (e.g. "on_error"); "" if absent.
inline std::string node_id_field(NodeParseContext& ctx, const Json& object, const char* field,
                                 const std::string& relative_path) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return {};
  if (!it->is_string()) {
    ctx.error(relative_path, std::string(field) + " must be a node id (a string)");
    return {};
  }
  return it->get<std::string>();
}

}  // namespace flowrt::runtime::nodes
