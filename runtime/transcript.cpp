#include "runtime/transcript.hpp"

#include <algorithm>
#include <deque>
#include <fstream>
#include <regex>
#include <sstream>

#include "runtime/canned_http.hpp"
#include "runtime/flow_files.hpp"

namespace flowrt::runtime {
namespace {

class TestFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

bool json_equal(const Json& a, const Json& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  return a == b;
}

// True if every key of `expected` is in `actual` with an equal value (objects recursively).
bool json_subset(const Json& expected, const Json& actual) {
  if (expected.is_object() && actual.is_object()) {
    for (const auto& [key, value] : expected.items()) {
      auto it = actual.find(key);
      if (it == actual.end() || !json_subset(value, *it)) return false;
    }
    return true;
  }
  if (expected.is_array() && actual.is_array()) {
    if (expected.size() != actual.size()) return false;
    for (size_t i = 0; i < expected.size(); ++i) {
      if (!json_subset(expected[i], actual[i])) return false;
    }
    return true;
  }
  return json_equal(expected, actual);
}

std::regex compile_regex(const Json& step, const char* key) {
  if (!step[key].is_string()) throw TestFailure(std::string(key) + " must be a regex string");
  try {
    return std::regex(step[key].get<std::string>(), std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw TestFailure(std::string("invalid regex in ") + key + ": " + e.what());
  }
}

class TranscriptRun {
 public:
  TranscriptRun(const Json& test, const std::filesystem::path& base,
                const TranscriptOptions& options)
      : test_(test), options_(options), http_(test.value("http", Json::array())) {
    static const std::string_view known[] = {"name", "flow",  "contact", "vars",
                                             "http", "steps", "tenant"};
    for (const auto& [key, value] : test.items()) {
      if (std::find(std::begin(known), std::end(known), key) == std::end(known)) {
        throw TestFailure("unknown test field \"" + key +
                          "\"; use name, flow, contact, vars, http, steps, tenant");
      }
    }
    const Json contact_fields = test.value("contact", Json::object());
    for (const auto& [key, value] : contact_fields.items()) {
      if (key != "id" && key != "name" && key != "phone") {
        throw TestFailure("unknown contact field \"" + key + "\"; use id, name, phone");
      }
    }
    if (!test.contains("flow") || !test["flow"].is_string()) {
      throw TestFailure("the test needs \"flow\": the path of the flow file");
    }
    std::filesystem::path flow_path = base / test["flow"].get<std::string>();
    ParseResult parsed = load_flow_file(flow_path, options.parse);
    if (!parsed.flow) {
      std::string message = "flow " + flow_path.string() + " does not load:";
      for (const auto& p : parsed.problems) {
        if (p.is_error()) message += "\n    " + p.path + ": " + p.message;
      }
      throw TestFailure(message);
    }
    flow_ = parsed.flow;
    folder_ = std::make_unique<FlowFolder>(options.flows_dir.value_or(flow_path.parent_path()),
                                           options.parse);
    tenant_.name = test.value("tenant", Json::object()).value("name", "");
    tenant_.flows = folder_.get();
    const Json contact = test.value("contact", Json::object());
    contact_.id = contact.value("id", "test-contact");
    contact_.name = contact.value("name", "");
    contact_.phone = contact.value("phone", "");
    state_.vars = test.value("vars", Json::object());
    if (!state_.vars.is_object()) throw TestFailure("\"vars\" must be an object");
    executor_ = std::make_unique<Executor>(ExecutorServices{&clock_, &http_, options.scripts});
  }

  void run() {
    const Json steps = test_.value("steps", Json::array());
    if (!steps.is_array() || steps.empty())
      throw TestFailure("the test needs a non-empty \"steps\" array");
    for (size_t i = 0; i < steps.size(); ++i) {
      try {
        step(steps[i]);
      } catch (const TestFailure& e) {
        throw TestFailure("step " + std::to_string(i + 1) + " " + steps[i].dump() + ": " +
                          e.what());
      }
    }
    auto unmatched = http_.unmatched();
    if (!unmatched.empty()) {
      throw TestFailure("the flow made a request with no canned response: " + unmatched.front());
    }
  }

 private:
  void step(const Json& s) {
    if (!s.is_object() || s.size() != 1) throw TestFailure("a step is an object with one key");
    const std::string key = s.begin().key();
    const Json& value = s.begin().value();
    if (key == "user") {
      if (!value.is_string()) throw TestFailure("user must be a string");
      pending_.clear();
      InboundEvent event;
      event.text = value.get<std::string>();
      turn(std::move(event));
    } else if (key == "bot") {
      std::string got = next_message(value.dump());
      if (got != value.get<std::string>()) {
        throw TestFailure("expected bot message " + value.dump() + ", got " + Json(got).dump());
      }
    } else if (key == "bot_matches") {
      std::regex pattern = compile_regex(s, "bot_matches");
      std::string got = next_message("matching " + value.dump());
      if (!std::regex_search(got, pattern)) {
        throw TestFailure("bot message " + Json(got).dump() + " does not match " + value.dump());
      }
    } else if (key == "status") {
      std::string got(to_string(state_.status));
      if (!value.is_string() || got != value.get<std::string>()) {
        std::string why = state_.error.empty() ? "" : " (error: " + state_.error + ")";
        throw TestFailure("expected status " + value.dump() + ", got \"" + got + "\"" + why);
      }
    } else if (key == "vars") {
      if (!json_subset(value, state_.vars)) {
        throw TestFailure("vars " + state_.vars.dump() + " do not contain " + value.dump());
      }
    } else if (key == "error_matches") {
      std::regex pattern = compile_regex(s, "error_matches");
      if (state_.status != Status::failed) {
        throw TestFailure("expected a failed run, but the status is " +
                          std::string(to_string(state_.status)));
      }
      if (!std::regex_search(state_.error, pattern)) {
        throw TestFailure("error " + Json(state_.error).dump() + " does not match " + value.dump());
      }
    } else if (key == "handoff") {
      if (state_.status != Status::handoff) {
        throw TestFailure("expected a handoff, but the status is " +
                          std::string(to_string(state_.status)));
      }
      Json actual{{"queue", state_.handoff_queue}, {"note", state_.handoff_note}};
      if (!value.is_object() || !json_subset(value, actual)) {
        throw TestFailure("handoff " + actual.dump() + " does not contain " + value.dump());
      }
    } else if (key == "request") {
      // The next HTTP request the flow made that no `request` step has checked yet.
      auto requests = http_.requests();
      if (checked_requests_ >= requests.size()) {
        throw TestFailure("expected an HTTP request " + value.dump() +
                          ", but the flow made no more");
      }
      const HttpRequest& made = requests[checked_requests_++];
      Json actual{{"method", made.method}, {"url", made.url}};
      Json body = Json::parse(made.body, nullptr, false);
      actual["body"] = body.is_discarded() ? Json(made.body) : body;
      Json headers = Json::object();
      for (const auto& [name, header] : made.headers) headers[name] = header;
      actual["headers"] = headers;
      if (!value.is_object() || !json_subset(value, actual)) {
        throw TestFailure("request " + actual.dump() + " does not contain " + value.dump());
      }
    } else if (key == "timeout") {
      if (value != true) throw TestFailure("timeout takes true");
      if (!timer_ || state_.status != Status::waiting || timer_->wait_seq != state_.wait_seq) {
        throw TestFailure("no question with a timeout is waiting");
      }
      clock_.set(timer_->fire_at_ms);
      pending_.clear();
      InboundEvent event;
      event.kind = InboundEvent::Kind::timeout;
      event.wait_seq = timer_->wait_seq;
      turn(std::move(event));
    } else if (key == "resume") {
      if (state_.status != Status::handoff) throw TestFailure("the conversation is not in handoff");
      pending_.clear();
      InboundEvent event;
      event.kind = InboundEvent::Kind::resume;
      if (value.is_string()) {
        event.node = value.get<std::string>();
      } else if (value != true) {
        throw TestFailure("resume takes true (the handoff's next) or a node id");
      }
      turn(std::move(event));
    } else {
      throw TestFailure("unknown step \"" + key +
                        "\"; use user, bot, bot_matches, status, vars, handoff, request, "
                        "error_matches, timeout or resume");
    }
  }

  std::string next_message(const std::string& wanted) {
    if (pending_.empty()) {
      throw TestFailure("expected bot message " + wanted + ", but the bot sent nothing more");
    }
    std::string text = std::move(pending_.front());
    pending_.pop_front();
    return text;
  }

  void turn(InboundEvent event) {
    clock_.advance(1000);
    TurnInput input{current_flow(), state_, contact_, std::move(event), &tenant_};
    TurnResult result = executor_->run_turn(std::move(input));
    state_ = std::move(result.state);
    for (auto& m : result.messages) pending_.push_back(std::move(m.text));
    if (result.timer) timer_ = result.timer;
    if (state_.status != Status::waiting) timer_.reset();
  }

  std::shared_ptr<const Flow> current_flow() {
    if (state_.flow_id.empty() || state_.flow_id == flow_->id) return flow_;
    auto found = folder_->find(state_.flow_id);
    if (!found.flow) throw TestFailure("flow \"" + state_.flow_id + "\" is gone");
    return found.flow;
  }

  const Json& test_;
  const TranscriptOptions& options_;
  ManualClock clock_;
  CannedHttpClient http_;
  std::shared_ptr<const Flow> flow_;
  std::unique_ptr<FlowFolder> folder_;
  TenantContext tenant_;
  Contact contact_;
  ConversationState state_;
  std::unique_ptr<Executor> executor_;
  std::deque<std::string> pending_;
  std::optional<TimerRequest> timer_;
  size_t checked_requests_ = 0;
};

}  // namespace

std::vector<TranscriptOutcome> run_transcript_file(const std::filesystem::path& file,
                                                   const TranscriptOptions& options) {
  std::vector<TranscriptOutcome> outcomes;
  std::ifstream in(file, std::ios::binary);
  Json doc;
  std::string name = file.string();
  if (!in) {
    outcomes.push_back({name, false, "cannot read the file"});
    return outcomes;
  }
  std::stringstream text;
  text << in.rdbuf();
  try {
    doc = Json::parse(text.str());
  } catch (const Json::parse_error& e) {
    outcomes.push_back({name, false, std::string("malformed JSON: ") + e.what()});
    return outcomes;
  }
  std::vector<Json> tests = doc.is_array() ? doc.get<std::vector<Json>>() : std::vector<Json>{doc};
  if (tests.empty()) {
    outcomes.push_back({name, false, "the file holds no tests"});
    return outcomes;
  }
  for (size_t i = 0; i < tests.size(); ++i) {
    TranscriptOutcome outcome;
    outcome.name = name;
    if (tests.size() > 1) outcome.name += "#" + std::to_string(i + 1);
    if (tests[i].is_object() && tests[i].contains("name") && tests[i]["name"].is_string()) {
      outcome.name += " (" + tests[i]["name"].get<std::string>() + ")";
    }
    try {
      if (!tests[i].is_object()) throw TestFailure("a test must be a JSON object");
      TranscriptRun run(tests[i], file.parent_path(), options);
      run.run();
      outcome.passed = true;
    } catch (const TestFailure& e) {
      outcome.failure = e.what();
    } catch (const std::exception& e) {
      outcome.failure = std::string("invalid test: ") + e.what();
    }
    outcomes.push_back(std::move(outcome));
  }
  return outcomes;
}

}  // namespace flowrt::runtime
