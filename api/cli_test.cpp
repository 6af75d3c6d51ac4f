// flowrt test FILE... [--flows DIR]
#include "api/cli.hpp"
#include "api/cli_flows.hpp"
#include "runtime/transcript.hpp"

namespace flowrt::api {

int test_command(const Args& given, std::ostream& out, std::ostream& err) {
  Args args = given;
  std::string flows_dir;
  take_option(args, "--flows", flows_dir);
  if (args.empty() || args[0] == "--help") {
    err << "usage: flowrt test FILE... [--flows DIR]\n"
           "Runs transcript tests (SPEC §8) and prints \"N passed, N failed\".\n";
    return args.empty() ? 2 : 0;
  }
  size_t passed = 0, failed = 0;
  CliScripting scripting;
  for (const auto& file : args) {
    runtime::TranscriptOptions options;
    options.scripts = &scripting.runner;
    if (!flows_dir.empty()) options.flows_dir = flows_dir;
    // A jump in a test's flow resolves like `validate` does (files next to the flow).
    for (const auto& outcome : runtime::run_transcript_file(file, options)) {
      if (outcome.passed) {
        ++passed;
        out << "PASS " << outcome.name << "\n";
      } else {
        ++failed;
        out << "FAIL " << outcome.name << "\n     " << outcome.failure << "\n";
      }
    }
  }
  out << passed << " passed, " << failed << " failed\n";
  return failed ? 1 : 0;
}

}  // namespace flowrt::api
