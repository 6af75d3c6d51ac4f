// The state of one conversation and what a turn does to it. These are plain values: the
// executor reads a ConversationState and an InboundEvent and returns a TurnResult; the
// store persists the state and turns the effects into outbox rows, timers and journal
// events. Nothing here knows about PostgreSQL or HTTP.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace flowrt::runtime {

using Json = nlohmann::json;

// `active` only exists inside a turn (and for a conversation created but not yet run);
// between turns a conversation is waiting, in handoff, ended or failed.
enum class Status { active, waiting, handoff, ended, failed };

std::string_view to_string(Status status);
// Returns nullopt for anything but the five names above.
std::optional<Status> parse_status(std::string_view text);

struct Contact {
  std::string id;
  std::string name;
  std::string phone;
};

struct ConversationState {
  std::string flow_id;   // the flow the run is in (changes on `jump`)
  int flow_version = 0;  // the version of that flow the conversation is pinned to
  std::string node;      // the question waiting or the handoff node; empty before start
  Status status = Status::active;
  Json vars = Json::object();
  int attempts = 0;           // invalid answers given to the waiting question so far
  uint64_t wait_seq = 0;      // grows each time a question starts waiting; timers carry it
  std::string handoff_queue;  // set while status is handoff
  std::string handoff_note;
  std::string error;  // why the run failed, when status is failed

  bool started() const { return !node.empty() || status != Status::active; }

  // Round-trips every field; from_json throws std::invalid_argument on a malformed object.
  Json to_json() const;
  static ConversationState from_json(const Json& json);
};

struct InboundEvent {
  enum class Kind {
    message,  // the contact wrote something (starts the run if it has not started)
    timeout,  // a question's timer fired; ignored unless wait_seq still matches
    resume,   // an agent hands the conversation back to the bot
    start,    // a run started through the API, with no inbound message
  };
  Kind kind = Kind::message;
  std::string text;            // message: the text, may be empty for structured input
  Json data = Json::object();  // message: provider's structured data (`message.data`)
  uint64_t wait_seq = 0;       // timeout: the sequence the timer was armed with
  std::string node;            // resume: node to continue at; empty = the handoff's next
};

struct OutboundMessage {
  std::string text;
};

// Asks the caller to fire a `timeout` event at `fire_at_ms` (Unix ms) unless the
// conversation has moved on; `wait_seq` identifies the wait it belongs to.
struct TimerRequest {
  std::string node;
  uint64_t wait_seq = 0;
  int64_t fire_at_ms = 0;
};

// One line of the conversation's journal: `type` is one of message_in, message_out, node,
// log, error, api_call, handoff, jump, timeout, resume, ended, ignored.
struct JournalEvent {
  std::string type;
  Json data = Json::object();
  int64_t at_ms = 0;
};

struct TurnResult {
  ConversationState state;
  std::vector<OutboundMessage> messages;
  std::optional<TimerRequest> timer;  // a question with a timeout started waiting
  std::vector<JournalEvent> journal;
  int nodes_executed = 0;
};

}  // namespace flowrt::runtime
