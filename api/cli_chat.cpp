// flowrt chat FILE [--vars JSON] [--flows DIR] [--name NAME] [--allow-private-network]
//
// Talks to a flow in the terminal with the real executor and real HTTP; no server or
// database. Reads lines from standard input, so it also works in a pipe. Lines that start
// with "/" are commands: /timeout, /resume [node], /vars, /restart, /quit.
#include <unistd.h>

#include "api/cli.hpp"
#include "api/cli_flows.hpp"
#include "runtime/curl_http_client.hpp"

namespace flowrt::api {
namespace {

constexpr const char* kChatHelp =
    "commands: /timeout (fire the waiting question's timeout), /resume [node] (agent hands "
    "back to the bot), /vars (show variables), /restart, /quit\n";

}  // namespace

int chat_command(const Args& given, std::istream& in, std::ostream& out, std::ostream& err) {
  Args args = given;
  std::string vars_text, flows_dir, name;
  take_option(args, "--vars", vars_text);
  take_option(args, "--flows", flows_dir);
  take_option(args, "--name", name);
  bool allow_private = take_flag(args, "--allow-private-network");
  if (args.size() != 1 || args[0] == "--help") {
    err << "usage: flowrt chat FILE [--vars JSON] [--flows DIR] [--name NAME] "
           "[--allow-private-network]\n"
        << kChatHelp;
    return args.empty() || args.size() > 1 ? 2 : 0;
  }
  const std::string& file = args[0];
  runtime::ParseOptions parse_options = cli_parse_options(file, flows_dir);
  runtime::ParseResult parsed = runtime::load_flow_file(file, parse_options);
  if (!parsed.flow) {
    for (const auto& p : parsed.problems) {
      if (p.is_error()) err << file << ":" << p.path << ": " << p.message << "\n";
    }
    return 1;
  }
  runtime::Json initial_vars = runtime::Json::object();
  if (!vars_text.empty()) {
    initial_vars = runtime::Json::parse(vars_text, nullptr, false);
    if (!initial_vars.is_object()) {
      err << "flowrt chat: --vars must be a JSON object, e.g. --vars '{\"plan\": \"pro\"}'\n";
      return 2;
    }
  }

  runtime::SystemClock clock;
  runtime::CurlHttpClient http(runtime::NetworkPolicy{allow_private});
  CliScripting scripting;
  runtime::Executor executor({&clock, &http, &scripting.runner});
  runtime::FlowFolder folder(flows_dir.empty() ? std::filesystem::path(file).parent_path()
                                               : std::filesystem::path(flows_dir),
                             parse_options);
  runtime::TenantContext tenant;
  tenant.name = "local";
  tenant.flows = &folder;
  runtime::Contact contact{"terminal", name.empty() ? "friend" : name, ""};

  auto fresh_state = [&] {
    runtime::ConversationState state;
    state.vars = initial_vars;
    return state;
  };
  runtime::ConversationState state = fresh_state();
  std::optional<runtime::TimerRequest> timer;
  const bool interactive = isatty(STDIN_FILENO) && &in == &std::cin;
  if (interactive) out << "Chatting with " << parsed.flow->id << ". Say something; " << kChatHelp;

  auto run = [&](runtime::InboundEvent event) {
    auto current = parsed.flow;
    if (!state.flow_id.empty() && state.flow_id != current->id)
      current = folder.find(state.flow_id).flow;
    runtime::TurnResult result =
        executor.run_turn({current, state, contact, std::move(event), &tenant});
    state = std::move(result.state);
    if (result.timer) timer = result.timer;
    for (const auto& m : result.messages) out << "bot> " << m.text << "\n";
    switch (state.status) {
      case runtime::Status::handoff:
        out << "[handoff to queue \"" << state.handoff_queue << "\""
            << (state.handoff_note.empty() ? "" : ": " + state.handoff_note)
            << "] type /resume to hand back to the bot\n";
        break;
      case runtime::Status::ended:
        out << "[conversation ended]\n";
        break;
      case runtime::Status::failed:
        out << "[conversation failed: " << state.error << "]\n";
        break;
      default:
        break;
    }
    out.flush();
  };

  std::string line;
  while (true) {
    if (interactive) out << "you> " << std::flush;
    if (!std::getline(in, line)) break;
    if (line == "/quit") break;
    if (line == "/help") {
      out << kChatHelp;
    } else if (line == "/vars") {
      out << state.vars.dump(2) << "\n";
    } else if (line == "/restart") {
      state = fresh_state();
      timer.reset();
    } else if (line == "/timeout") {
      if (state.status != runtime::Status::waiting || !timer || timer->wait_seq != state.wait_seq) {
        out << "[no question with a timeout is waiting]\n";
        continue;
      }
      runtime::InboundEvent event;
      event.kind = runtime::InboundEvent::Kind::timeout;
      event.wait_seq = timer->wait_seq;
      run(std::move(event));
    } else if (line.rfind("/resume", 0) == 0) {
      if (state.status != runtime::Status::handoff) {
        out << "[the conversation is not with an agent]\n";
        continue;
      }
      runtime::InboundEvent event;
      event.kind = runtime::InboundEvent::Kind::resume;
      if (line.size() > 8) event.node = line.substr(8);
      run(std::move(event));
    } else {
      if (state.status == runtime::Status::ended || state.status == runtime::Status::failed) {
        state = fresh_state();  // a new message after the end starts a new conversation
        timer.reset();
      }
      if (state.status == runtime::Status::handoff) {
        out << "[with an agent: the bot stays silent; /resume hands back]\n";
        continue;
      }
      runtime::InboundEvent event;
      event.text = line;
      run(std::move(event));
    }
  }
  return 0;
}

}  // namespace flowrt::api
