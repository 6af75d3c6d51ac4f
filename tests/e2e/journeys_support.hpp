// Helpers for the journey tests (journeys_test.cpp): provider payloads and signatures as the
// real providers send them, what the local stand-ins received, the conversation journal,
// and direct reads of the database.
#pragma once

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "tests/e2e/serve_process.hpp"
#include "tests/support/http_server.hpp"

namespace flowrt::e2e::journeys {

using flowrt::testing::CannedResponse;
using flowrt::testing::LocalHttpServer;
using flowrt::testing::ReceivedRequest;
using Headers = std::vector<std::string>;
using Texts = std::vector<std::string>;

inline std::string webhook_path(const std::string& channel_id) {
  return "/v1/webhooks/" + channel_id;
}

inline int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// --- Provider payloads -------------------------------------------------------------------

// A WhatsApp Cloud webhook (as Meta posts it) with one text message from `wa_id` to the
// business number `phone_number_id`.
inline Json whatsapp_text(const std::string& phone_number_id, const std::string& wa_id,
                          const std::string& message_id, const std::string& text) {
  Json message{{"from", wa_id},
               {"id", message_id},
               {"timestamp", std::to_string(unix_seconds())},
               {"type", "text"},
               {"text", {{"body", text}}}};
  Json contact{{"profile", {{"name", "Ana Lima"}}}, {"wa_id", wa_id}};
  Json metadata{{"display_phone_number", "15550783881"}, {"phone_number_id", phone_number_id}};
  Json value{{"messaging_product", "whatsapp"},
             {"metadata", metadata},
             {"contacts", Json::array({contact})},
             {"messages", Json::array({message})}};
  Json change{{"field", "messages"}, {"value", value}};
  Json entry{{"id", "102290129340398"}, {"changes", Json::array({change})}};
  return {{"object", "whatsapp_business_account"}, {"entry", Json::array({entry})}};
}

// A WhatsApp Cloud webhook with only a delivery receipt ("sent") for the message `wamid`.
inline Json whatsapp_status(const std::string& phone_number_id, const std::string& wa_id,
                            const std::string& wamid) {
  Json payload = whatsapp_text(phone_number_id, wa_id, "unused", "unused");
  Json& value = payload["entry"][0]["changes"][0]["value"];
  value.erase("contacts");
  value.erase("messages");
  value["statuses"] = Json::array({{{"id", wamid},
                                    {"status", "sent"},
                                    {"timestamp", std::to_string(unix_seconds())},
                                    {"recipient_id", wa_id}}});
  return payload;
}

// A Telegram Bot API Update carrying a text message in the private chat `chat_id`.
inline Json telegram_text(int64_t update_id, int64_t chat_id, const std::string& text) {
  Json user{{"id", chat_id}, {"first_name", "Ana"}, {"last_name", "Lima"}, {"username", "ana"}};
  Json chat = user;
  chat["type"] = "private";
  return {{"update_id", update_id},
          {"message",
           {{"message_id", update_id},
            {"date", unix_seconds()},
            {"chat", chat},
            {"from", user},
            {"text", text}}}};
}

// --- Signatures --------------------------------------------------------------------------

// WhatsApp Cloud: X-Hub-Signature-256, the HMAC of the raw body with the app secret.
inline std::string hub_signature(const std::string& app_secret, const std::string& body) {
  return "X-Hub-Signature-256: sha256=" + hmac_sha256_hex(app_secret, body);
}

// webchat (body, or "user=ID" for a poll) and webhook ("<timestamp>.<body>").
inline std::string flowrt_signature(const std::string& secret, const std::string& signed_text) {
  return "X-Flowrt-Signature: sha256=" + hmac_sha256_hex(secret, signed_text);
}

// The webhook provider's pair of headers for `body` sent at `timestamp` (Unix seconds).
inline Headers webhook_signature(const std::string& secret, const std::string& body,
                                 int64_t timestamp) {
  std::string stamp = std::to_string(timestamp);
  return {"X-Flowrt-Timestamp: " + stamp, flowrt_signature(secret, stamp + "." + body)};
}

inline std::string telegram_secret(const std::string& secret_token) {
  return "X-Telegram-Bot-Api-Secret-Token: " + secret_token;
}

// --- The stand-ins -----------------------------------------------------------------------

// A JSON answer for a stand-in to give.
inline CannedResponse answer(int status, std::string body) {
  CannedResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

// Waits until `stand_in` has received at least `count` requests.
inline bool received(const LocalHttpServer& stand_in, size_t count) {
  return eventually([&] { return stand_in.request_count() >= count; });
}

// The string at `pointer` in the JSON body of every request `stand_in` received, in order.
inline Texts texts_received(const LocalHttpServer& stand_in, const std::string& pointer) {
  Texts texts;
  for (const auto& request : stand_in.requests()) {
    Json body = Json::parse(request.body, nullptr, false);
    Json::json_pointer at(pointer);
    texts.push_back(body.is_object() && body.contains(at) && body[at].is_string()
                        ? body[at].get<std::string>()
                        : "<no text at " + pointer + " in " + request.body + ">");
  }
  return texts;
}

// The texts of a webchat answer's "replies".
inline Texts reply_texts(const ApiResponse& response) {
  Texts texts;
  if (!response.json.is_object() || !response.json.contains("replies")) return texts;
  for (const auto& reply : response.json["replies"]) texts.push_back(reply.value("text", ""));
  return texts;
}

// --- The conversation journal ------------------------------------------------------------

// The journal of `conversation_id` (oldest first), read with the agent key `token`.
inline Json journal(const ServeProcess& server, const std::string& token,
                    const std::string& conversation_id) {
  auto r = server.call("GET", "/v1/conversations/" + conversation_id + "/events?limit=200", token);
  EXPECT_EQ(r.status, 200) << r.body;
  return r.json.is_object() && r.json["items"].is_array() ? r.json["items"] : Json::array();
}

// The events of `journal` of type `type`, in order.
inline std::vector<Json> events_of(const Json& journal, const std::string& type) {
  std::vector<Json> found;
  for (const auto& event : journal)
    if (event.value("type", "") == type) found.push_back(event);
  return found;
}

// The types of the events of `journal` that are among `wanted`, in order.
inline Texts event_types(const Json& journal, const std::set<std::string>& wanted) {
  Texts types;
  for (const auto& event : journal)
    if (wanted.count(event.value("type", ""))) types.push_back(event.value("type", ""));
  return types;
}

// --- The database ------------------------------------------------------------------------

// The single number that `query` (with `$1`… bound to `params`) returns.
template <typename... Params>
int64_t sql_count(const std::string& database_url, const std::string& query,
                  const Params&... params) {
  pqxx::connection connection(database_url);
  pqxx::nontransaction tx(connection);
  return tx.exec_params(query, params...)[0][0].template as<int64_t>();
}

}  // namespace flowrt::e2e::journeys
