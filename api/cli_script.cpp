// flowrt script FILE [--vars JSON] [--answer JSON] [--response JSON] [--message TEXT]
//
// Runs a Lua file in the same sandbox, environment and limits as flow scripts, so an
// author can try a script before putting it in a flow. Prints {"returned": [...],
// "vars": {...}} as JSON; log(...) lines go to standard error. A limit or error exits 1
// with the cause.
#include <fstream>
#include <sstream>

#include "api/cli.hpp"
#include "api/cli_flows.hpp"

namespace flowrt::api {
namespace {

bool json_option(Args& args, const char* name, runtime::Json& value, std::ostream& err) {
  std::string text;
  if (!take_option(args, name, text)) return true;
  value = runtime::Json::parse(text, nullptr, false);
  if (value.is_discarded()) {
    err << "flowrt script: " << name << " is not valid JSON: " << text << "\n";
    return false;
  }
  return true;
}

}  // namespace

int script_command(const Args& given, std::ostream& out, std::ostream& err) {
  Args args = given;
  runtime::Json vars = runtime::Json::object(), answer, response;
  std::string message_text;
  take_option(args, "--message", message_text);
  if (!json_option(args, "--vars", vars, err) || !json_option(args, "--answer", answer, err) ||
      !json_option(args, "--response", response, err)) {
    return 2;
  }
  if (args.size() != 1 || args[0] == "--help") {
    err << "usage: flowrt script FILE [--vars JSON] [--answer JSON] [--response JSON] "
           "[--message TEXT]\n"
           "Runs a Lua file in the flow-script sandbox; prints {\"returned\": [...], \"vars\": "
           "{...}}.\n"
           "Limits: FLOWRT_SCRIPT_INSTRUCTIONS, FLOWRT_SCRIPT_MEMORY_MB, "
           "FLOWRT_SCRIPT_TIMEOUT_MS.\n";
    return args.size() == 1 ? 0 : 2;
  }
  if (!vars.is_object()) {
    err << "flowrt script: --vars must be a JSON object\n";
    return 2;
  }
  std::ifstream in(args[0], std::ios::binary);
  if (!in) {
    err << "flowrt script: cannot read " << args[0] << "\n";
    return 2;
  }
  std::stringstream source;
  source << in.rdbuf();

  const runtime::Json contact{{"id", "terminal"}, {"name", ""}, {"phone", ""}};
  const runtime::Json message{{"text", message_text}, {"data", runtime::Json::object()}};
  const runtime::Json flow{{"id", "script"}, {"name", ""}};
  const runtime::Json tenant{{"id", "local"}, {"name", "local"}};
  sandbox::Environment env;
  env.add("contact", contact).add("message", message).add("flow", flow).add("tenant", tenant);
  if (!answer.is_null()) env.add("answer", answer);
  if (!response.is_null()) env.add("response", response);
  env.vars = &vars;
  env.log = [&err](std::string_view line) { err << "log: " << line << "\n"; };

  sandbox::Sandbox sandbox;
  sandbox::Result result = sandbox.run(source.str(), args[0], env, script_limits_from_env());
  if (!result.ok()) {
    err << args[0] << ": " << sandbox::to_string(result.error->kind) << ": "
        << result.error->message << "\n";
    return 1;
  }
  out << runtime::Json{{"returned", result.values}, {"vars", result.vars}}.dump(2) << "\n";
  return 0;
}

}  // namespace flowrt::api
