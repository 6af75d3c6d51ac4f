#include "runtime/scripting.hpp"

#include "runtime/turn.hpp"

namespace flowrt::runtime {

LuaChunk LuaSyntaxChecker::expression_chunk(std::string_view expression, std::string name) {
  return {sandbox::expression_chunk(expression), std::move(name), true};
}

std::string LuaSyntaxChecker::check(std::string_view source, bool expression) const {
  std::string chunk = expression ? sandbox::expression_chunk(source) : std::string(source);
  auto error = sandbox::check_syntax(chunk, expression ? "when" : "script");
  return error ? error->message : std::string();
}

ScriptRunner::ScriptRunner(sandbox::SandboxPool& pool, sandbox::Limits limits)
    : pool_(pool), limits_(limits) {}

ScriptRunner::Outcome ScriptRunner::run(
    Turn& turn, const Node& node, const LuaChunk& chunk,
    const std::vector<std::pair<std::string_view, const Json*>>& extra) {
  const TenantContext& tenant = turn.tenant();
  sandbox::Limits limits =
      tenant.script_limits ? limits_.lowered_by(*tenant.script_limits) : limits_;

  const Turn::ScriptGlobals& globals = turn.script_globals();
  sandbox::Environment env;
  env.add("contact", globals.contact)
      .add("message", globals.message)
      .add("flow", globals.flow)
      .add("tenant", globals.tenant);
  for (const auto& [name, value] : extra) env.add(name, *value);
  env.vars = &turn.vars();
  // A `when` expression only reads vars; not converting them back saves a third of its cost.
  env.return_vars = !chunk.expression;
  env.log = [&turn, &node](std::string_view line) {
    turn.journal("log", Json{{"node", node.id}, {"line", std::string(line)}});
  };
  env.now_ms = [&turn] { return turn.now_ms(); };

  sandbox::Result result;
  {
    auto lease = pool_.acquire(tenant.id);
    result = lease->run(chunk.source, chunk.name, env, limits);
  }
  Outcome outcome;
  if (result.error) {
    outcome.error = result.error->message;
    outcome.kind = std::string(sandbox::to_string(result.error->kind));
    turn.journal("script_error", Json{{"node", node.id},
                                      {"kind", outcome.kind},
                                      {"line", result.error->line},
                                      {"message", outcome.error}});
    return outcome;
  }
  outcome.ok = true;
  outcome.values = std::move(result.values);
  if (result.vars.is_object()) turn.vars() = std::move(result.vars);
  return outcome;
}

}  // namespace flowrt::runtime
