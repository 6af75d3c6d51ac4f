// telegram: the Telegram Bot API (SPEC §6).
//
// Authentication: the secret_token given to setWebhook comes back in every request as
//   X-Telegram-Bot-Api-Secret-Token; compared in constant time. Telegram has no GET
//   handshake (the webhook is registered with setWebhook).
// Inbound: Update objects. `message` (and `edited_message`) with text or a caption, and
//   `callback_query` (an inline-keyboard button: its `data` is the text) become events;
//   every other update kind is acknowledged and ignored. The contact id is the chat id
//   (what sendMessage needs); the message id for deduplication is the update_id, which
//   is unique per bot. A shared contact of the sender fills the phone number.
// Outbound: POST {api_base_url}/bot{bot_token}/sendMessage {"chat_id", "text"}. The token
//   is part of the URL, so it is kept out of every error message.
#include <charconv>

#include <flowrt/plugin.hpp>

#include "common/crypto.hpp"

namespace {

using namespace flowrt::sdk;

constexpr const char* kDefaultApiBaseUrl = "https://api.telegram.org";

std::string id_text(const nlohmann::json& value) {
  if (value.is_number_integer() || value.is_number_unsigned()) return value.dump();
  if (value.is_string()) return value.get<std::string>();
  return {};
}

std::string string_or_empty(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return {};
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string full_name(const nlohmann::json& user) {
  std::string name = string_or_empty(user, "first_name");
  std::string last = string_or_empty(user, "last_name");
  if (!last.empty()) name += (name.empty() ? "" : " ") + last;
  return name;
}

class Telegram final : public Provider {
 public:
  nlohmann::json config_schema() const override {
    return {{"type", "object"},
            {"properties",
             {{"api_base_url",
               {{"type", "string"}, {"format", "uri"}, {"default", kDefaultApiBaseUrl}}}}}};
  }
  nlohmann::json secrets_schema() const override {
    return {{"type", "object"},
            {"required", {"bot_token", "secret_token"}},
            {"properties",
             {{"bot_token", {{"type", "string"}, {"description", "The token @BotFather gave"}}},
              {"secret_token",
               {{"type", "string"},
                {"pattern", "^[A-Za-z0-9_-]{1,256}$"},
                {"description", "The secret_token passed to setWebhook"}}}}}};
  }

  void check_signature(const Request& request, const Channel& channel) const override {
    std::string expected = channel.secret("secret_token");
    if (!request.has_header("x-telegram-bot-api-secret-token"))
      throw Rejected("missing X-Telegram-Bot-Api-Secret-Token header");
    if (!flowrt::plugins::secrets_equal(request.header("x-telegram-bot-api-secret-token"),
                                        expected))
      throw Rejected("X-Telegram-Bot-Api-Secret-Token does not match the channel's secret_token");
  }

  std::vector<Event> parse(const Request& request, const Channel&) const override {
    nlohmann::json update = request.json_body();
    if (!update.is_object() || !update.contains("update_id") ||
        !update["update_id"].is_number_integer())
      throw Rejected("not a Telegram Update (no integer update_id)");
    std::string update_id = update["update_id"].dump();

    if (auto it = update.find("callback_query"); it != update.end() && it->is_object()) {
      const auto& query = *it;
      const auto& from = query.value("from", nlohmann::json::object());
      Event event;
      event.message_id = update_id;
      // The chat the button was in; an inline-mode button has no message, so the user.
      const auto& message = query.value("message", nlohmann::json::object());
      event.contact_id =
          id_text(message.value("chat", nlohmann::json::object()).value("id", nlohmann::json()));
      if (event.contact_id.empty()) event.contact_id = id_text(from.value("id", nlohmann::json()));
      if (event.contact_id.empty()) throw Rejected("a callback_query without a chat or a sender");
      event.contact_name = full_name(from);
      event.text = string_or_empty(query, "data");
      event.data = {{"type", "callback_query"},
                    {"callback_query_id", string_or_empty(query, "id")},
                    {"data", event.text},
                    {"from", from}};
      event.timestamp_ms = request.received_at_ms;
      return {event};
    }

    for (const char* kind : {"message", "edited_message"}) {
      auto it = update.find(kind);
      if (it == update.end() || !it->is_object()) continue;
      const auto& message = *it;
      const auto& chat = message.value("chat", nlohmann::json::object());
      const auto& from = message.value("from", nlohmann::json::object());
      Event event;
      event.message_id = update_id;
      event.contact_id = id_text(chat.value("id", nlohmann::json()));
      if (event.contact_id.empty()) throw Rejected(std::string("a ") + kind + " without chat.id");
      event.contact_name = full_name(from.empty() ? chat : from);
      event.text = message.contains("text") ? string_or_empty(message, "text")
                                            : string_or_empty(message, "caption");
      if (const auto& contact = message.value("contact", nlohmann::json::object());
          contact.is_object() && contact.contains("phone_number") &&
          id_text(contact.value("user_id", nlohmann::json())) ==
              id_text(from.value("id", nlohmann::json()))) {
        std::string phone = string_or_empty(contact, "phone_number");
        event.contact_phone = phone.starts_with("+") || phone.empty() ? phone : "+" + phone;
      }
      event.data = {{"type", kind},
                    {"message_id", message.value("message_id", nlohmann::json())},
                    {"chat", chat}};
      for (const char* extra : {"entities", "reply_to_message", "forward_from", "contact",
                                "location", "photo", "document"})
        if (message.contains(extra)) event.data[extra] = message[extra];
      if (message.contains("date") && message["date"].is_number_integer())
        event.timestamp_ms = message["date"].get<int64_t>() * 1000;
      return {event};
    }
    return {};  // channel posts, inline queries, member updates…: nothing for a flow
  }

  Sent send(const Message& message, const Channel& channel, Http& http) const override {
    std::string token = channel.secret("bot_token");
    std::string base = channel.config_string("api_base_url", kDefaultApiBaseUrl);
    while (!base.empty() && base.back() == '/') base.pop_back();
    nlohmann::json chat_id = message.contact_id;
    int64_t numeric = 0;
    auto [end, error] = std::from_chars(
        message.contact_id.data(), message.contact_id.data() + message.contact_id.size(), numeric);
    if (error == std::errc() && end == message.contact_id.data() + message.contact_id.size())
      chat_id = numeric;
    HttpResponse response = http.post_json(base + "/bot" + token + "/sendMessage",
                                           {{"chat_id", chat_id}, {"text", message.text}});
    auto answer = nlohmann::json::parse(response.body, nullptr, false);
    if (!response.ok() || !answer.is_object() || answer.value("ok", false) != true) {
      std::string detail = "Bot API sendMessage";
      if (answer.is_object()) {
        std::string description = string_or_empty(answer, "description");
        if (!description.empty()) detail += ": " + description;
      }
      if (!response.error.empty()) {
        // The URL (with the token) must never reach a log; the transport error names the
        // host at most, but scrub it anyway.
        HttpResponse scrubbed = response;
        for (size_t at; (at = scrubbed.error.find(token)) != std::string::npos;)
          scrubbed.error.replace(at, token.size(), "<bot_token>");
        fail_delivery(scrubbed, detail);
      }
      if (response.status == 401 || response.status == 404)
        throw BadConfig(detail + " (check bot_token)");
      fail_delivery(response, detail);
    }
    std::string id;
    if (answer.contains("result") && answer["result"].is_object())
      id = id_text(answer["result"].value("message_id", nlohmann::json()));
    return {id};
  }
};

}  // namespace

FLOWRT_PROVIDER(Telegram, "telegram", "1.0.0",
                "Telegram bots via the Bot API (webhook updates, sendMessage)")
