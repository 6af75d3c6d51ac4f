#include "runtime/conversation.hpp"

#include <stdexcept>

namespace flowrt::runtime {

std::string_view to_string(Status status) {
  switch (status) {
    case Status::active:
      return "active";
    case Status::waiting:
      return "waiting";
    case Status::handoff:
      return "handoff";
    case Status::ended:
      return "ended";
    case Status::failed:
      return "failed";
  }
  return "active";
}

std::optional<Status> parse_status(std::string_view text) {
  for (Status s :
       {Status::active, Status::waiting, Status::handoff, Status::ended, Status::failed}) {
    if (to_string(s) == text) return s;
  }
  return std::nullopt;
}

Json ConversationState::to_json() const {
  return Json{{"flow_id", flow_id},
              {"flow_version", flow_version},
              {"node", node},
              {"status", to_string(status)},
              {"vars", vars},
              {"attempts", attempts},
              {"wait_seq", wait_seq},
              {"handoff_queue", handoff_queue},
              {"handoff_note", handoff_note},
              {"error", error}};
}

ConversationState ConversationState::from_json(const Json& json) {
  if (!json.is_object()) throw std::invalid_argument("conversation state must be a JSON object");
  ConversationState state;
  try {
    state.flow_id = json.value("flow_id", "");
    state.flow_version = json.value("flow_version", 0);
    state.node = json.value("node", "");
    auto status = parse_status(json.value("status", "active"));
    if (!status) throw std::invalid_argument("unknown conversation status");
    state.status = *status;
    state.vars = json.value("vars", Json::object());
    if (!state.vars.is_object()) throw std::invalid_argument("vars must be a JSON object");
    state.attempts = json.value("attempts", 0);
    state.wait_seq = json.value("wait_seq", uint64_t{0});
    state.handoff_queue = json.value("handoff_queue", "");
    state.handoff_note = json.value("handoff_note", "");
    state.error = json.value("error", "");
  } catch (const Json::exception& e) {
    throw std::invalid_argument(std::string("malformed conversation state: ") + e.what());
  }
  return state;
}

}  // namespace flowrt::runtime
