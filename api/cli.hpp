// The `flowrt` command line (SPEC §7). Each command is a function from its arguments to an
// exit status; main() only dispatches.
#pragma once

#include <iostream>
#include <string>
#include <vector>

namespace flowrt::api {

using Args = std::vector<std::string>;

int validate_command(const Args& args, std::ostream& out, std::ostream& err);
int chat_command(const Args& args, std::istream& in, std::ostream& out, std::ostream& err);
int test_command(const Args& args, std::ostream& out, std::ostream& err);
int script_command(const Args& args, std::ostream& out, std::ostream& err);
int plugins_command(const Args& args, std::ostream& out, std::ostream& err);
int migrate_command(const Args& args, std::ostream& out, std::ostream& err);
int serve_command(const Args& args, std::ostream& out, std::ostream& err);

// Pulls `--name VALUE` (or `--name=VALUE`) out of args; returns whether it was there.
bool take_option(Args& args, const std::string& name, std::string& value);
bool take_flag(Args& args, const std::string& name);
// Pulls `--name=VALUE` only: for switches, whose bare form must not swallow the next argument.
bool take_assignment(Args& args, const std::string& name, std::string& value);

}  // namespace flowrt::api
