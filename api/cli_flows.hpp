// What the command-line commands share to load flows: jump targets as files, and the Lua
// checker when the build has one.
#pragma once

#include <string>

#include "api/config.hpp"
#include "runtime/flow_files.hpp"
#include "runtime/scripting.hpp"

namespace flowrt::api {

// Parse options for flows read from files next to `file` (or in `flows_dir` if not empty).
runtime::ParseOptions cli_parse_options(const std::string& file, const std::string& flows_dir);

// The sandbox pool and script runner a command-line run uses.
struct CliScripting {
  sandbox::SandboxPool pool;
  runtime::ScriptRunner runner;
  CliScripting() : runner(pool, script_limits_from_env()) {}
};

runtime::ParseResult load_cli_flow(const std::string& file, const std::string& flows_dir);

}  // namespace flowrt::api
