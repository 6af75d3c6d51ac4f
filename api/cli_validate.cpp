// flowrt validate FILE... [--flows DIR]
#include <filesystem>

#include "api/cli.hpp"
#include "api/cli_flows.hpp"

namespace flowrt::api {

int validate_command(const Args& given, std::ostream& out, std::ostream& err) {
  Args args = given;
  std::string flows_dir;
  take_option(args, "--flows", flows_dir);
  if (args.empty() || args[0] == "--help") {
    err << "usage: flowrt validate FILE... [--flows DIR]\n"
           "Checks flow documents and prints one line per problem: FILE:/json/pointer: message.\n"
           "`jump` targets are looked up as <id>.json next to each file (or in --flows DIR).\n"
           "Exit status 1 if any file has an error; warnings alone exit 0.\n";
    return args.empty() ? 2 : 0;
  }
  size_t errors = 0, warnings = 0;
  for (const auto& file : args) {
    runtime::ParseResult result = load_cli_flow(file, flows_dir);
    for (const auto& problem : result.problems) {
      // A problem with the whole document has an empty pointer: "FILE: message".
      out << file << (problem.path.empty() ? "" : ":" + problem.path) << ": "
          << (problem.is_error() ? "" : "warning: ") << problem.message << "\n";
      (problem.is_error() ? errors : warnings)++;
    }
  }
  err << args.size() << (args.size() == 1 ? " file" : " files") << " checked: " << errors
      << (errors == 1 ? " error, " : " errors, ") << warnings
      << (warnings == 1 ? " warning\n" : " warnings\n");
  return errors ? 1 : 0;
}

}  // namespace flowrt::api
