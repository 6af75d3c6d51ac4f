// Lua in flows (SPEC §3): the bridge between the executor and the sandbox library.
//
// The sandbox knows nothing of flows; this file decides what a node's script sees
// (`vars` read/write; `contact`, `message`, `flow`, `tenant` read-only; `answer` or
// `response` where the node type says so), sends `log(...)` lines to the journal and
// `now()` to the executor's clock, and turns sandbox errors into run failures that name
// the line and the cause.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/flow.hpp"
#include "runtime/lua_chunk.hpp"
#include "sandbox/sandbox.hpp"

namespace flowrt::runtime {

class Turn;

// Checks Lua syntax for the validator with the sandbox's own compiler settings.
class LuaSyntaxChecker : public ScriptChecker {
 public:
  // The chunk the runtime runs for a `when` expression string.
  static LuaChunk expression_chunk(std::string_view expression, std::string name);

 public:
  std::string check(std::string_view source, bool expression) const override;
};

// Runs flow scripts on sandboxes leased from a pool, one tenant per lua_State.
// Thread-safe: each run leases its own Sandbox.
class ScriptRunner {
 public:
  // `limits` are the server's; a tenant's TenantContext::script_limits can only lower them.
  ScriptRunner(sandbox::SandboxPool& pool, sandbox::Limits limits);

  struct Outcome {
    bool ok = false;
    std::vector<Json> values;  // the script's return values
    std::string error;         // "line 3: attempt to ..." when !ok
    std::string kind;          // sandbox error kind, e.g. "instruction_limit"
  };

  // Runs `chunk` for `node` in `turn`: `vars` is replaced by the script's result on
  // success and left untouched on failure, which is also journaled. `extra` adds read-only
  // globals such as `answer` or `response`.
  Outcome run(Turn& turn, const Node& node, const LuaChunk& chunk,
              const std::vector<std::pair<std::string_view, const Json*>>& extra = {});

  const sandbox::Limits& limits() const { return limits_; }

 private:
  sandbox::SandboxPool& pool_;
  sandbox::Limits limits_;
};

}  // namespace flowrt::runtime
