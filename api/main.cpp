// flowrt: the command line of SPEC §7.
#include <cstring>
#include <exception>

#include "api/cli.hpp"

namespace {

constexpr const char* kUsage = R"(usage: flowrt <command> [options]

commands:
  validate FILE...                 check flow documents; prints FILE:/json/pointer: message
  chat FILE [--vars JSON]          talk to a flow in the terminal (also reads a pipe)
  test FILE... [--flows DIR]       run transcript tests; prints "N passed, N failed"
  script FILE [--vars JSON]        run a Lua file in the flow-script sandbox
  plugins [--plugins DIR]          list the providers that load, and why others fail
  migrate [--database-url URL]     apply pending migrations (default: local PostgreSQL)
  serve [--listen HOST:PORT] [--database-url URL] [--demo FLOWS_DIR]
                                   run the HTTP API, workers and (by default) a local
                                   PostgreSQL under .flowrt/; see docs/operations.md

Run `flowrt <command> --help` for a command's options.
)";

}  // namespace

int main(int argc, char** argv) {
  using namespace flowrt::api;
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  std::string command = argv[1];
  Args args(argv + 2, argv + argc);
  try {
    if (command == "validate") return validate_command(args, std::cout, std::cerr);
    if (command == "chat") return chat_command(args, std::cin, std::cout, std::cerr);
    if (command == "test") return test_command(args, std::cout, std::cerr);
    if (command == "script") return script_command(args, std::cout, std::cerr);
    if (command == "plugins") return plugins_command(args, std::cout, std::cerr);
    if (command == "migrate") return migrate_command(args, std::cout, std::cerr);
    if (command == "serve") return serve_command(args, std::cout, std::cerr);
  } catch (const std::exception& e) {
    std::cerr << "flowrt " << command << ": " << e.what() << "\n";
    return 2;
  }
  std::cerr << "flowrt: unknown command \"" << command << "\"\n\n" << kUsage;
  return 2;
}
