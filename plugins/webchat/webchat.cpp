// webchat: JSON in, replies in the webhook's own response (SPEC §6). For web widgets and
// tests.
//
// Inbound: POST {"user": "<contact id>", "text": "...", "message_id": "<optional>",
// "name": "<optional>", "data": {<optional object>}}. With the optional secret
// `signing_secret`, `X-Flowrt-Signature: sha256=<hex HMAC-SHA256 of the body>` is
// required. The server answers the POST with the turn's replies; send() is never needed.
#include <flowrt/plugin.hpp>

#include "common/crypto.hpp"

namespace {

using namespace flowrt::sdk;

class WebChat final : public Provider {
 public:
  nlohmann::json config_schema() const override {
    return {{"type", "object"},
            {"additionalProperties", false},
            {"properties", nlohmann::json::object()}};
  }
  nlohmann::json secrets_schema() const override {
    return {{"type", "object"},
            {"additionalProperties", false},
            {"properties",
             {{"signing_secret",
               {{"type", "string"},
                {"description",
                 "Optional. When set, requests must carry X-Flowrt-Signature: sha256=<hex "
                 "HMAC-SHA256 of the body>"}}}}}};
  }
  bool replies_in_response() const override { return true; }

  void check_signature(const Request& request, const Channel& channel) const override {
    std::string secret = channel.optional_secret("signing_secret");
    if (secret.empty()) return;  // an open widget endpoint, by the channel's choice
    std::string signature = request.header("x-flowrt-signature");
    if (signature.empty())
      throw Rejected("missing X-Flowrt-Signature header (this channel has a signing_secret)");
    if (!signature.starts_with("sha256="))
      throw Rejected("X-Flowrt-Signature must look like sha256=<hex>");
    if (!flowrt::plugins::hmac_sha256_matches(std::string_view(signature).substr(7), secret,
                                              request.body))
      throw Rejected(
          "X-Flowrt-Signature does not match the body (HMAC-SHA256 with signing_secret)");
  }

  std::vector<Event> parse(const Request& request, const Channel&) const override {
    nlohmann::json body = request.json_body();
    if (!body.is_object()) throw Rejected("the body must be a JSON object");
    Event event;
    event.contact_id = string_member(body, "user", true);
    if (event.contact_id.empty()) throw Rejected("\"user\" must not be empty");
    event.text = string_member(body, "text", false);
    event.message_id = string_member(body, "message_id", false);
    event.contact_name = string_member(body, "name", false);
    if (auto data = body.find("data"); data != body.end() && !data->is_null()) {
      if (!data->is_object()) throw Rejected("\"data\" must be a JSON object");
      event.data = *data;
    }
    event.timestamp_ms = request.received_at_ms;
    return {event};
  }

  Sent send(const Message&, const Channel&, Http&) const override {
    throw Rejected(
        "webchat has no way to push a message: its replies travel in the response to the "
        "widget's own request; deliver this message when the widget next posts");
  }

 private:
  static std::string string_member(const nlohmann::json& body, const char* key, bool required) {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) {
      if (required) throw Rejected(std::string("missing \"") + key + "\"");
      return {};
    }
    if (!it->is_string()) throw Rejected(std::string("\"") + key + "\" must be a string");
    return it->get<std::string>();
  }
};

}  // namespace

FLOWRT_PROVIDER(WebChat, "webchat", "1.0.0", "Web chat widgets: JSON in, replies in the response")
