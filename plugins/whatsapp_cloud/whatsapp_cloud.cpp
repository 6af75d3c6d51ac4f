// whatsapp_cloud: Meta's WhatsApp Cloud API (SPEC §6).
//
// Verification: GET ?hub.mode=subscribe&hub.verify_token=<verify_token>&hub.challenge=<c>
//   → 200 text/plain <c>; anything else is refused (403).
// Signature: X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, key app_secret>.
// Inbound: webhook payloads {"object": "whatsapp_business_account", "entry": [{"changes":
//   [{"field": "messages", "value": {"metadata", "contacts", "messages", "statuses"}}]}]}.
//   Every message in `value.messages` for this channel's phone_number_id is one event:
//   text → its body; interactive button_reply/list_reply → the title as text and
//   {"type", "id", "title"[, "description"]} as data; a template quick-reply button → its
//   text, with the payload in data; media, location, contacts… → no text, the message's
//   typed object in data. Statuses (sent/delivered/read receipts), reactions and system
//   messages are ignored.
// Outbound: POST {graph_base_url}/{phone_number_id}/messages with a text message, bearer
//   access_token; the returned wamid is the provider message id.
#include <optional>

#include <flowrt/plugin.hpp>

#include "common/crypto.hpp"

namespace {

using namespace flowrt::sdk;

constexpr const char* kDefaultGraphBaseUrl = "https://graph.facebook.com/v21.0";

std::string string_or_empty(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return {};
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int64_t seconds_to_ms(const nlohmann::json& value) {
  try {
    if (value.is_string()) return std::stoll(value.get<std::string>()) * 1000;
    if (value.is_number_integer()) return value.get<int64_t>() * 1000;
  } catch (const std::exception&) {
  }
  return 0;
}

class WhatsAppCloud final : public Provider {
 public:
  nlohmann::json config_schema() const override {
    return {{"type", "object"},
            {"required", {"phone_number_id"}},
            {"properties",
             {{"phone_number_id",
               {{"type", "string"},
                {"description", "The business phone number's id in the Cloud API"}}},
              {"graph_base_url",
               {{"type", "string"}, {"format", "uri"}, {"default", kDefaultGraphBaseUrl}}}}}};
  }
  nlohmann::json secrets_schema() const override {
    return {
        {"type", "object"},
        {"required", {"app_secret", "access_token", "verify_token"}},
        {"properties",
         {{"app_secret",
           {{"type", "string"}, {"description", "The Meta app's secret: X-Hub-Signature-256 key"}}},
          {"access_token",
           {{"type", "string"}, {"description", "System-user access token for the Graph API"}}},
          {"verify_token",
           {{"type", "string"},
            {"description", "The token set in the webhook's configuration"}}}}}};
  }

  Reply verify(const Request& request, const Channel& channel) const override {
    std::string expected = channel.secret("verify_token");
    if (request.query_param("hub.mode") != "subscribe")
      throw Rejected("hub.mode must be \"subscribe\"");
    if (!flowrt::plugins::secrets_equal(request.query_param("hub.verify_token"), expected))
      throw Rejected("hub.verify_token does not match the channel's verify_token");
    std::string challenge = request.query_param("hub.challenge");
    if (challenge.empty()) throw Rejected("missing hub.challenge");
    return Reply{200, "text/plain", challenge};
  }

  void check_signature(const Request& request, const Channel& channel) const override {
    std::string secret = channel.secret("app_secret");
    std::string signature = request.header("x-hub-signature-256");
    if (signature.empty()) throw Rejected("missing X-Hub-Signature-256 header");
    if (!signature.starts_with("sha256="))
      throw Rejected("X-Hub-Signature-256 must look like sha256=<hex>");
    if (!flowrt::plugins::hmac_sha256_matches(std::string_view(signature).substr(7), secret,
                                              request.body))
      throw Rejected("X-Hub-Signature-256 does not match the body (HMAC-SHA256 with app_secret)");
  }

  std::vector<Event> parse(const Request& request, const Channel& channel) const override {
    nlohmann::json body = request.json_body();
    if (!body.is_object() || body.value("object", "") != "whatsapp_business_account")
      throw Rejected(
          "not a WhatsApp Business Account webhook (\"object\" must be "
          "\"whatsapp_business_account\")");
    std::string phone_number_id = channel.config_string("phone_number_id");
    std::vector<Event> events;
    for (const auto& entry : body.value("entry", nlohmann::json::array())) {
      if (!entry.is_object()) continue;
      for (const auto& change : entry.value("changes", nlohmann::json::array())) {
        if (!change.is_object() || change.value("field", "") != "messages") continue;
        const nlohmann::json& value = change.value("value", nlohmann::json::object());
        if (!value.is_object()) continue;
        std::string metadata_id =
            string_or_empty(value.value("metadata", nlohmann::json::object()), "phone_number_id");
        // A Meta app receives every number's traffic; keep only this channel's.
        if (!phone_number_id.empty() && !metadata_id.empty() && metadata_id != phone_number_id)
          continue;
        for (const auto& message : value.value("messages", nlohmann::json::array())) {
          if (auto event = to_event(message, value)) events.push_back(std::move(*event));
        }
      }
    }
    return events;
  }

  Sent send(const Message& message, const Channel& channel, Http& http) const override {
    std::string phone_number_id = channel.config_string("phone_number_id");
    if (phone_number_id.empty()) throw BadConfig("config phone_number_id is not set");
    std::string base = channel.config_string("graph_base_url", kDefaultGraphBaseUrl);
    while (!base.empty() && base.back() == '/') base.pop_back();
    nlohmann::json payload = {{"messaging_product", "whatsapp"},
                              {"recipient_type", "individual"},
                              {"to", message.contact_id},
                              {"type", "text"},
                              {"text", {{"preview_url", false}, {"body", message.text}}}};
    HttpResponse response =
        http.post_json(base + "/" + phone_number_id + "/messages", payload,
                       {{"Authorization", "Bearer " + channel.secret("access_token")}});
    if (!response.ok()) {
      std::string detail = "Graph API";
      auto error = nlohmann::json::parse(response.body, nullptr, false);
      if (error.is_object() && error.contains("error") && error["error"].is_object()) {
        const auto& e = error["error"];
        detail += " error";
        if (e.contains("code")) detail += " " + e["code"].dump();
        detail += ": " + string_or_empty(e, "message");
      }
      if (response.status == 401) throw BadConfig(detail + " (check access_token)");
      fail_delivery(response, detail);
    }
    auto answer = nlohmann::json::parse(response.body, nullptr, false);
    std::string id;
    if (answer.is_object() && answer.contains("messages") && answer["messages"].is_array() &&
        !answer["messages"].empty())
      id = string_or_empty(answer["messages"][0], "id");
    return {id};
  }

 private:
  static std::optional<Event> to_event(const nlohmann::json& message, const nlohmann::json& value) {
    if (!message.is_object()) return std::nullopt;
    std::string type = message.value("type", "");
    if (type == "reaction" || type == "system" || type == "unsupported" || type.empty())
      return std::nullopt;
    Event event;
    event.message_id = string_or_empty(message, "id");
    event.contact_id = string_or_empty(message, "from");
    if (event.contact_id.empty()) throw Rejected("a message has no \"from\"");
    event.contact_phone = "+" + event.contact_id;  // wa_id: the E.164 number without '+'
    event.timestamp_ms = seconds_to_ms(message.value("timestamp", nlohmann::json()));
    for (const auto& contact : value.value("contacts", nlohmann::json::array()))
      if (string_or_empty(contact, "wa_id") == event.contact_id)
        event.contact_name =
            string_or_empty(contact.value("profile", nlohmann::json::object()), "name");

    event.data = {{"type", type}};
    if (type == "text") {
      event.text = string_or_empty(message.value("text", nlohmann::json::object()), "body");
    } else if (type == "interactive") {
      const auto& interactive = message.value("interactive", nlohmann::json::object());
      std::string kind = string_or_empty(interactive, "type");
      const auto& reply = interactive.value(kind, nlohmann::json::object());
      if (kind != "button_reply" && kind != "list_reply") {
        event.data[type] = interactive;
      } else {
        event.text = string_or_empty(reply, "title");
        event.data = {{"type", kind}, {"id", string_or_empty(reply, "id")}, {"title", event.text}};
        if (kind == "list_reply") event.data["description"] = string_or_empty(reply, "description");
      }
    } else if (type == "button") {
      const auto& button = message.value("button", nlohmann::json::object());
      event.text = string_or_empty(button, "text");
      event.data["payload"] = string_or_empty(button, "payload");
    } else if (message.contains(type)) {
      event.data[type] = message[type];
      if (message[type].is_object()) event.text = string_or_empty(message[type], "caption");
    }
    if (message.contains("context") && message["context"].is_object())
      event.data["context"] = message["context"];
    return event;
  }
};

}  // namespace

FLOWRT_PROVIDER(WhatsAppCloud, "whatsapp_cloud", "1.0.0",
                "WhatsApp Business via Meta's Cloud API (webhooks and Graph API messages)")
