// webhook: any JSON event in, replies POSTed to a callback URL (SPEC §6).
//
// Both directions are signed the same way, with the channel secret `signing_secret`:
//   X-Flowrt-Timestamp: <Unix seconds>
//   X-Flowrt-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">
// Inbound requests whose timestamp is more than `replay_window_s` (default 300) away from
// the server's clock are refused, so a captured request cannot be replayed later.
//
// Inbound: a JSON object; the contact id, message id and text are read from JSON pointers
// (config `contact_id_pointer` = "/contact_id", `message_id_pointer` = "/message_id",
// `text_pointer` = "/text"); the whole object becomes message.data.
// Outbound: POST callback_url {"conversation_id", "contact_id", "text"}.
#include <charconv>
#include <cstdlib>

#include <flowrt/plugin.hpp>

#include "common/crypto.hpp"

namespace {

using namespace flowrt::sdk;

constexpr int64_t kDefaultReplayWindowS = 300;

std::string signed_payload(std::string_view timestamp, std::string_view body) {
  std::string payload;
  payload.reserve(timestamp.size() + 1 + body.size());
  payload.append(timestamp).append(".").append(body);
  return payload;
}

// A scalar at `pointer` as text ("" when absent); objects and arrays are refused.
std::string scalar_at(const nlohmann::json& body, const std::string& pointer, const char* what) {
  nlohmann::json::json_pointer ptr;
  try {
    ptr = nlohmann::json::json_pointer(pointer);
  } catch (const nlohmann::json::exception&) {
    throw BadConfig(std::string("config ") + what + " \"" + pointer + "\" is not a JSON pointer");
  }
  if (!body.contains(ptr)) return {};
  const nlohmann::json& value = body.at(ptr);
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_integer() || value.is_number_unsigned()) return value.dump();
  if (value.is_null()) return {};
  throw Rejected(std::string("the value at ") + pointer + " (" + what +
                 ") must be a string or an integer");
}

class Webhook final : public Provider {
 public:
  nlohmann::json config_schema() const override {
    return {
        {"type", "object"},
        {"required", {"callback_url"}},
        {"properties",
         {{"callback_url",
           {{"type", "string"}, {"format", "uri"}, {"description", "Where replies are POSTed"}}},
          {"contact_id_pointer", {{"type", "string"}, {"default", "/contact_id"}}},
          {"message_id_pointer", {{"type", "string"}, {"default", "/message_id"}}},
          {"text_pointer", {{"type", "string"}, {"default", "/text"}}},
          {"replay_window_s",
           {{"type", "integer"}, {"minimum", 1}, {"default", kDefaultReplayWindowS}}}}}};
  }
  nlohmann::json secrets_schema() const override {
    return {{"type", "object"},
            {"required", {"signing_secret"}},
            {"properties",
             {{"signing_secret",
               {{"type", "string"},
                {"minLength", 1},
                {"description", "HMAC-SHA256 key for X-Flowrt-Signature, both directions"}}}}}};
  }

  void check_signature(const Request& request, const Channel& channel) const override {
    std::string secret = channel.secret("signing_secret");
    std::string timestamp = request.header("x-flowrt-timestamp");
    std::string signature = request.header("x-flowrt-signature");
    if (timestamp.empty()) throw Rejected("missing X-Flowrt-Timestamp header");
    if (signature.empty()) throw Rejected("missing X-Flowrt-Signature header");
    int64_t seconds = 0;
    auto [end, error] =
        std::from_chars(timestamp.data(), timestamp.data() + timestamp.size(), seconds);
    if (error != std::errc() || end != timestamp.data() + timestamp.size())
      throw Rejected("X-Flowrt-Timestamp must be Unix time in seconds");
    if (!signature.starts_with("sha256="))
      throw Rejected("X-Flowrt-Signature must look like sha256=<hex>");
    if (!flowrt::plugins::hmac_sha256_matches(std::string_view(signature).substr(7), secret,
                                              signed_payload(timestamp, request.body)))
      throw Rejected(
          "X-Flowrt-Signature does not match (HMAC-SHA256 of \"<timestamp>.<body>\" with "
          "signing_secret)");
    int64_t window = replay_window(channel);
    int64_t now = request.received_at_ms / 1000;
    if (std::llabs(now - seconds) > window)
      throw Rejected("X-Flowrt-Timestamp is " + std::to_string(now - seconds) +
                     " s away from the server's clock (more than the " + std::to_string(window) +
                     " s replay window): refused as a possible replay; check the sender's clock");
  }

  std::vector<Event> parse(const Request& request, const Channel& channel) const override {
    nlohmann::json body = request.json_body();
    if (!body.is_object()) throw Rejected("the body must be a JSON object");
    std::string contact_pointer = channel.config_string("contact_id_pointer", "/contact_id");
    Event event;
    event.contact_id = scalar_at(body, contact_pointer, "contact_id_pointer");
    if (event.contact_id.empty())
      throw Rejected("no contact id at " + contact_pointer +
                     " (set config contact_id_pointer to where your events carry it)");
    event.message_id = scalar_at(body, channel.config_string("message_id_pointer", "/message_id"),
                                 "message_id_pointer");
    event.text = scalar_at(body, channel.config_string("text_pointer", "/text"), "text_pointer");
    event.data = body;
    event.timestamp_ms = request.received_at_ms;
    return {event};
  }

  Sent send(const Message& message, const Channel& channel, Http& http) const override {
    std::string url = channel.config_string("callback_url");
    if (!(url.starts_with("http://") || url.starts_with("https://")))
      throw BadConfig("config callback_url must be an http:// or https:// URL");
    std::string secret = channel.secret("signing_secret");
    nlohmann::json payload = {{"conversation_id", message.conversation_id},
                              {"contact_id", message.contact_id},
                              {"text", message.text}};
    HttpRequest request;
    request.url = url;
    request.body = payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::string timestamp = std::to_string(message.now_ms / 1000);
    request.headers = {
        {"Content-Type", "application/json"},
        {"X-Flowrt-Timestamp", timestamp},
        {"X-Flowrt-Signature", "sha256=" + flowrt::plugins::hmac_sha256_hex(
                                               secret, signed_payload(timestamp, request.body))}};
    HttpResponse response = http.send(request);
    if (!response.ok()) fail_delivery(response, "callback_url answered");
    return {};
  }

 private:
  static int64_t replay_window(const Channel& channel) {
    auto it = channel.config.find("replay_window_s");
    if (it == channel.config.end() || it->is_null()) return kDefaultReplayWindowS;
    if (!it->is_number_integer() || it->get<int64_t>() < 1)
      throw BadConfig("config replay_window_s must be a positive integer (seconds)");
    return it->get<int64_t>();
  }
};

}  // namespace

FLOWRT_PROVIDER(Webhook, "webhook", "1.0.0",
                "Generic JSON webhook: signed events in, signed replies to a callback URL")
