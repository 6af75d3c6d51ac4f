// The bundled providers, loaded through the host exactly as the server loads them, driven
// with the providers' documented sample payloads, tampered signatures, and a local HTTP
// server standing in for the Graph API, the Bot API and webhook callback receivers.
#include <gtest/gtest.h>

#include <optional>

#include "runtime/curl_http_client.hpp"
#include "tests/plugins/plugin_test_support.hpp"
#include "tests/support/http_server.hpp"

namespace flowrt::testing::plugins {
namespace {

using runtime::CurlHttpClient;
using runtime::NetworkPolicy;

constexpr int64_t kNowMs = 1750000000000;  // the "server clock" of these tests

CannedResponse canned(int status, std::string body) {
  CannedResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

class Providers : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    registry_ = new PluginRegistry(PluginRegistry::load(options_for(FLOWRT_TEST_PLUGIN_DIR)));
  }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
  }

  static std::shared_ptr<const Provider> provider(const std::string& name) {
    auto found = registry_->find(name);
    if (!found) {
      std::string failures;
      for (const auto& f : registry_->failures())
        failures += f.path.string() + ": " + f.reason + "\n";
      ADD_FAILURE() << "provider " << name << " did not load\n" << failures;
    }
    return found;
  }

  static InboundRequest post(std::string body, runtime::HeaderList headers = {}) {
    InboundRequest request;
    request.method = "POST";
    request.path = "/v1/webhooks/ch_1";
    request.body = std::move(body);
    request.headers = std::move(headers);
    request.received_at_ms = kNowMs;
    return request;
  }

  CurlHttpClient http_{NetworkPolicy{.allow_private_addresses = true}};
  static PluginRegistry* registry_;
};
PluginRegistry* Providers::registry_ = nullptr;

TEST_F(Providers, AllFourBundledProvidersLoadWithSchemas) {
  EXPECT_TRUE(registry_->failures().empty()) << registry_->to_json().dump(2);
  auto list = registry_->providers();
  ASSERT_EQ(list.size(), 4u);
  EXPECT_EQ(list[0].name, "telegram");
  EXPECT_EQ(list[1].name, "webchat");
  EXPECT_EQ(list[2].name, "webhook");
  EXPECT_EQ(list[3].name, "whatsapp_cloud");
  for (const auto& info : list) {
    EXPECT_EQ(info.abi_version, 1u);
    EXPECT_EQ(info.version, "1.0.0");
    EXPECT_EQ(info.config_schema["type"], "object") << info.name;
    EXPECT_EQ(info.secrets_schema["type"], "object") << info.name;
  }
  auto whatsapp = registry_->find("whatsapp_cloud")->info();
  EXPECT_EQ(whatsapp.secrets_schema["required"],
            nlohmann::json({"app_secret", "access_token", "verify_token"}));
  EXPECT_EQ(whatsapp.config_schema["required"], nlohmann::json({"phone_number_id"}));
}

// ---------------------------------------------------------------------------- webchat

TEST_F(Providers, WebchatParsesUserTextMessageIdAndName) {
  auto webchat = provider("webchat");
  ASSERT_TRUE(webchat);
  auto events = webchat->parse(
      post(R"({"user": "visitor-7", "text": "hi", "message_id": "m-1", "name": "Ana"})"), {});
  ASSERT_TRUE(events) << events.error().message;
  ASSERT_EQ(events.value().size(), 1u);
  const auto& event = events.value()[0];
  EXPECT_EQ(event.contact_id, "visitor-7");
  EXPECT_EQ(event.text, "hi");
  EXPECT_EQ(event.message_id, "m-1");
  EXPECT_EQ(event.contact_name, "Ana");
  EXPECT_EQ(event.timestamp_ms, kNowMs);
  EXPECT_TRUE(webchat->info().replies_in_response);
}

TEST_F(Providers, WebchatWithoutSecretAcceptsUnsignedRequests) {
  auto webchat = provider("webchat");
  ASSERT_TRUE(webchat);
  EXPECT_TRUE(webchat->check_signature(post(R"({"user":"u","text":"x"})"), {}));
}

TEST_F(Providers, WebchatWithSecretRequiresTheBodysSignature) {
  auto webchat = provider("webchat");
  ASSERT_TRUE(webchat);
  ChannelSettings channel;
  channel.secrets = {{"signing_secret", "s3cret"}};
  std::string body = R"({"user":"u","text":"x"})";
  std::string good = "sha256=" + hmac_hex("s3cret", body);

  EXPECT_TRUE(webchat->check_signature(post(body, {{"X-Flowrt-Signature", good}}), channel));

  auto tampered = webchat->check_signature(
      post(R"({"user":"u","text":"y"})", {{"X-Flowrt-Signature", good}}), channel);
  ASSERT_FALSE(tampered);
  EXPECT_EQ(tampered.error().status, CallStatus::rejected);
  EXPECT_NE(tampered.error().message.find("does not match"), std::string::npos);

  auto missing = webchat->check_signature(post(body), channel);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("missing X-Flowrt-Signature"), std::string::npos);

  auto other_key = webchat->check_signature(
      post(body, {{"X-Flowrt-Signature", "sha256=" + hmac_hex("other", body)}}), channel);
  EXPECT_FALSE(other_key);
}

TEST_F(Providers, WebchatRejectsBodiesItCannotUse) {
  auto webchat = provider("webchat");
  ASSERT_TRUE(webchat);
  auto not_json = webchat->parse(post("hello"), {});
  ASSERT_FALSE(not_json);
  EXPECT_EQ(not_json.error().status, CallStatus::rejected);
  EXPECT_NE(not_json.error().message.find("not valid JSON"), std::string::npos);
  auto no_user = webchat->parse(post(R"({"text":"x"})"), {});
  ASSERT_FALSE(no_user);
  EXPECT_NE(no_user.error().message.find("missing \"user\""), std::string::npos);
}

TEST_F(Providers, WebchatCannotPushMessages) {
  auto webchat = provider("webchat");
  ASSERT_TRUE(webchat);
  auto sent = webchat->send({"conv", "visitor-7", "hello", kNowMs}, {}, http_);
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error().status, CallStatus::rejected);
}

// ---------------------------------------------------------------------------- webhook

struct SignedWebhook {
  std::string body;
  runtime::HeaderList headers;
};

SignedWebhook sign_webhook(const std::string& secret, const std::string& body, int64_t seconds) {
  std::string timestamp = std::to_string(seconds);
  return {body,
          {{"X-Flowrt-Timestamp", timestamp},
           {"X-Flowrt-Signature", "sha256=" + hmac_hex(secret, timestamp + "." + body)}}};
}

ChannelSettings webhook_channel(const std::string& callback_url = "http://127.0.0.1:1/none") {
  ChannelSettings channel;
  channel.config = {{"callback_url", callback_url}};
  channel.secrets = {{"signing_secret", "hook-secret"}};
  return channel;
}

TEST_F(Providers, WebhookAcceptsSignedEventAndExposesIt) {
  auto webhook = provider("webhook");
  ASSERT_TRUE(webhook);
  auto event = sign_webhook(
      "hook-secret",
      R"({"contact_id": "crm-42", "message_id": "evt-1", "text": "paid", "amount": 12})",
      kNowMs / 1000 - 20);
  auto checked = webhook->check_signature(post(event.body, event.headers), webhook_channel());
  ASSERT_TRUE(checked) << checked.error().message;
  auto events = webhook->parse(post(event.body, event.headers), webhook_channel());
  ASSERT_TRUE(events) << events.error().message;
  ASSERT_EQ(events.value().size(), 1u);
  EXPECT_EQ(events.value()[0].contact_id, "crm-42");
  EXPECT_EQ(events.value()[0].message_id, "evt-1");
  EXPECT_EQ(events.value()[0].text, "paid");
  EXPECT_EQ(events.value()[0].data["amount"], 12);
}

TEST_F(Providers, WebhookRejectsTamperedForgedAndReplayedRequests) {
  auto webhook = provider("webhook");
  ASSERT_TRUE(webhook);
  auto channel = webhook_channel();
  std::string body = R"({"contact_id": "crm-42"})";
  auto good = sign_webhook("hook-secret", body, kNowMs / 1000);

  auto tampered =
      webhook->check_signature(post(R"({"contact_id": "crm-43"})", good.headers), channel);
  ASSERT_FALSE(tampered);
  EXPECT_EQ(tampered.error().status, CallStatus::rejected);

  auto forged = sign_webhook("guessed", body, kNowMs / 1000);
  EXPECT_FALSE(webhook->check_signature(post(body, forged.headers), channel));

  // Re-signing with another timestamp needs the secret: moving the header alone fails.
  auto moved = good.headers;
  moved[0].second = std::to_string(kNowMs / 1000 + 1);
  EXPECT_FALSE(webhook->check_signature(post(body, moved), channel));

  auto old = sign_webhook("hook-secret", body, kNowMs / 1000 - 301);
  auto replay = webhook->check_signature(post(body, old.headers), channel);
  ASSERT_FALSE(replay);
  EXPECT_NE(replay.error().message.find("replay"), std::string::npos) << replay.error().message;

  channel.config["replay_window_s"] = 600;
  EXPECT_TRUE(webhook->check_signature(post(body, old.headers), channel));

  auto no_timestamp = webhook->check_signature(post(body, {good.headers[1]}), channel);
  ASSERT_FALSE(no_timestamp);
  EXPECT_NE(no_timestamp.error().message.find("X-Flowrt-Timestamp"), std::string::npos);
}

TEST_F(Providers, WebhookWithoutSigningSecretIsAConfigError) {
  auto webhook = provider("webhook");
  ASSERT_TRUE(webhook);
  ChannelSettings channel;
  channel.config = {{"callback_url", "http://127.0.0.1:1/"}};
  auto event = sign_webhook("x", "{}", kNowMs / 1000);
  auto checked = webhook->check_signature(post(event.body, event.headers), channel);
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().status, CallStatus::bad_config);
  EXPECT_NE(checked.error().message.find("signing_secret"), std::string::npos);
}

TEST_F(Providers, WebhookReadsConfiguredPointers) {
  auto webhook = provider("webhook");
  ASSERT_TRUE(webhook);
  auto channel = webhook_channel();
  channel.config["contact_id_pointer"] = "/sender/id";
  channel.config["message_id_pointer"] = "/meta/event";
  channel.config["text_pointer"] = "/payload/answer";
  auto events = webhook->parse(
      post(R"({"sender": {"id": 991}, "meta": {"event": "e-5"}, "payload": {"answer": "yes"}})"),
      channel);
  ASSERT_TRUE(events) << events.error().message;
  EXPECT_EQ(events.value()[0].contact_id, "991");
  EXPECT_EQ(events.value()[0].message_id, "e-5");
  EXPECT_EQ(events.value()[0].text, "yes");

  auto missing = webhook->parse(post(R"({"other": 1})"), channel);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("/sender/id"), std::string::npos);
}

TEST_F(Providers, WebhookPostsSignedRepliesToTheCallbackUrl) {
  auto webhook = provider("webhook");
  ASSERT_TRUE(webhook);
  LocalHttpServer receiver([](const ReceivedRequest&) { return canned(200, "{}"); });
  auto channel = webhook_channel(receiver.url("/hooks/flowrt"));
  auto sent = webhook->send({"conv-1", "crm-42", "Thanks!", kNowMs}, channel, http_);
  ASSERT_TRUE(sent) << sent.error().message;

  ASSERT_EQ(receiver.request_count(), 1u);
  auto request = receiver.requests()[0];
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.target, "/hooks/flowrt");
  auto body = nlohmann::json::parse(request.body);
  EXPECT_EQ(body,
            nlohmann::json(
                {{"conversation_id", "conv-1"}, {"contact_id", "crm-42"}, {"text", "Thanks!"}}));
  std::string timestamp = request.header("x-flowrt-timestamp");
  EXPECT_EQ(timestamp, std::to_string(kNowMs / 1000));
  EXPECT_EQ(request.header("x-flowrt-signature"),
            "sha256=" + hmac_hex("hook-secret", timestamp + "." + request.body));
}

TEST_F(Providers, WebhookDeliveryFailuresSayWhetherToRetry) {
  auto webhook = provider("webhook");
  ASSERT_TRUE(webhook);
  int status = 503;
  LocalHttpServer receiver([&](const ReceivedRequest&) { return canned(status, "{}"); });
  auto channel = webhook_channel(receiver.url("/"));
  auto unavailable = webhook->send({"c", "u", "t", kNowMs}, channel, http_);
  ASSERT_FALSE(unavailable);
  EXPECT_EQ(unavailable.error().status, CallStatus::retry);
  status = 400;
  auto refused = webhook->send({"c", "u", "t", kNowMs}, channel, http_);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().status, CallStatus::rejected);
  EXPECT_NE(refused.error().message.find("HTTP 400"), std::string::npos);

  auto no_url = webhook->send({"c", "u", "t", kNowMs}, webhook_channel("ftp://x"), http_);
  ASSERT_FALSE(no_url);
  EXPECT_EQ(no_url.error().status, CallStatus::bad_config);
}

// --------------------------------------------------------------------- whatsapp_cloud

ChannelSettings whatsapp_channel(const std::string& graph = "https://graph.invalid/v21.0") {
  ChannelSettings channel;
  channel.config = {{"phone_number_id", "106540352242922"}, {"graph_base_url", graph}};
  channel.secrets = {{"app_secret", "meta-app-secret"},
                     {"access_token", "EAAG-token"},
                     {"verify_token", "verify-me"}};
  return channel;
}

runtime::HeaderList hub_signature(const std::string& body,
                                  const std::string& secret = "meta-app-secret") {
  return {{"X-Hub-Signature-256", "sha256=" + hmac_hex(secret, body)}};
}

TEST_F(Providers, WhatsAppAnswersTheHubChallenge) {
  auto whatsapp = provider("whatsapp_cloud");
  ASSERT_TRUE(whatsapp);
  InboundRequest get;
  get.method = "GET";
  get.query = {{"hub.mode", "subscribe"},
               {"hub.challenge", "1158201444"},
               {"hub.verify_token", "verify-me"}};
  auto reply = whatsapp->verify(get, whatsapp_channel());
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_EQ(reply.value().status, 200);
  EXPECT_EQ(reply.value().body, "1158201444");
  EXPECT_EQ(reply.value().content_type, "text/plain");

  get.query[2].second = "wrong";
  auto refused = whatsapp->verify(get, whatsapp_channel());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().status, CallStatus::rejected);
  EXPECT_NE(refused.error().message.find("verify_token"), std::string::npos);

  get.query = {
      {"hub.mode", "unsubscribe"}, {"hub.challenge", "1"}, {"hub.verify_token", "verify-me"}};
  EXPECT_FALSE(whatsapp->verify(get, whatsapp_channel()));
}

TEST_F(Providers, WhatsAppVerifiesXHubSignature256) {
  auto whatsapp = provider("whatsapp_cloud");
  ASSERT_TRUE(whatsapp);
  std::string body = sample("whatsapp_text_message.json");
  EXPECT_TRUE(whatsapp->check_signature(post(body, hub_signature(body)), whatsapp_channel()));

  std::string tampered = body;
  tampered.replace(tampered.find("another color"), 13, "another price");
  auto bad = whatsapp->check_signature(post(tampered, hub_signature(body)), whatsapp_channel());
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().status, CallStatus::rejected);
  EXPECT_NE(bad.error().message.find("X-Hub-Signature-256 does not match"), std::string::npos);

  EXPECT_FALSE(
      whatsapp->check_signature(post(body, hub_signature(body, "other-app")), whatsapp_channel()));
  auto missing = whatsapp->check_signature(post(body), whatsapp_channel());
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("missing X-Hub-Signature-256"), std::string::npos);
  auto truncated = whatsapp->check_signature(
      post(body, {{"X-Hub-Signature-256", hub_signature(body)[0].second.substr(0, 40)}}),
      whatsapp_channel());
  EXPECT_FALSE(truncated);
}

TEST_F(Providers, WhatsAppParsesTheTextMessageSample) {
  auto whatsapp = provider("whatsapp_cloud");
  ASSERT_TRUE(whatsapp);
  auto events = whatsapp->parse(post(sample("whatsapp_text_message.json")), whatsapp_channel());
  ASSERT_TRUE(events) << events.error().message;
  ASSERT_EQ(events.value().size(), 1u);
  const auto& event = events.value()[0];
  EXPECT_EQ(event.message_id, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=");
  EXPECT_EQ(event.contact_id, "16505551234");
  EXPECT_EQ(event.contact_phone, "+16505551234");
  EXPECT_EQ(event.contact_name, "Sheena Nelson");
  EXPECT_EQ(event.text, "Does it come in another color?");
  EXPECT_EQ(event.timestamp_ms, 1749416383000);
  EXPECT_EQ(event.data["type"], "text");
}

TEST_F(Providers, WhatsAppParsesInteractiveButtonAndListReplies) {
  auto whatsapp = provider("whatsapp_cloud");
  ASSERT_TRUE(whatsapp);
  auto button = whatsapp->parse(post(sample("whatsapp_button_reply.json")), whatsapp_channel());
  ASSERT_TRUE(button) << button.error().message;
  ASSERT_EQ(button.value().size(), 1u);
  EXPECT_EQ(button.value()[0].text, "Cancel");
  EXPECT_EQ(button.value()[0].data["type"], "button_reply");
  EXPECT_EQ(button.value()[0].data["id"], "cancel-button");

  auto list = whatsapp->parse(post(sample("whatsapp_list_reply.json")), whatsapp_channel());
  ASSERT_TRUE(list) << list.error().message;
  ASSERT_EQ(list.value().size(), 1u);
  EXPECT_EQ(list.value()[0].text, "Priority Mail Express");
  EXPECT_EQ(list.value()[0].data["type"], "list_reply");
  EXPECT_EQ(list.value()[0].data["id"], "priority_express");
  EXPECT_EQ(list.value()[0].data["description"], "Next Day to 2 Days");
}

TEST_F(Providers, WhatsAppIgnoresStatusesAndOtherNumbers) {
  auto whatsapp = provider("whatsapp_cloud");
  ASSERT_TRUE(whatsapp);
  auto statuses = whatsapp->parse(post(sample("whatsapp_status_sent.json")), whatsapp_channel());
  ASSERT_TRUE(statuses) << statuses.error().message;
  EXPECT_TRUE(statuses.value().empty());

  auto channel = whatsapp_channel();
  channel.config["phone_number_id"] = "999";
  auto other = whatsapp->parse(post(sample("whatsapp_text_message.json")), channel);
  ASSERT_TRUE(other);
  EXPECT_TRUE(other.value().empty());

  auto not_meta = whatsapp->parse(post(R"({"object": "page", "entry": []})"), whatsapp_channel());
  ASSERT_FALSE(not_meta);
  EXPECT_EQ(not_meta.error().status, CallStatus::rejected);
}

TEST_F(Providers, WhatsAppSendsThroughTheGraphApi) {
  auto whatsapp = provider("whatsapp_cloud");
  ASSERT_TRUE(whatsapp);
  LocalHttpServer graph([](const ReceivedRequest&) {
    return canned(200, sample("graph_send_message_response.json"));
  });
  auto sent = whatsapp->send({"conv-1", "16505551234", "It comes in blue.", kNowMs},
                             whatsapp_channel(graph.url("/v21.0")), http_);
  ASSERT_TRUE(sent) << sent.error().message;
  EXPECT_EQ(sent.value().provider_message_id,
            "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA");

  ASSERT_EQ(graph.request_count(), 1u);
  auto request = graph.requests()[0];
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.target, "/v21.0/106540352242922/messages");
  EXPECT_EQ(request.header("authorization"), "Bearer EAAG-token");
  EXPECT_EQ(
      nlohmann::json::parse(request.body),
      nlohmann::json::parse(R"({"messaging_product": "whatsapp", "recipient_type": "individual",
              "to": "16505551234", "type": "text", "text": {"preview_url": false, "body": "It comes in blue."}})"));
}

TEST_F(Providers, WhatsAppSendFailuresCarryTheGraphError) {
  auto whatsapp = provider("whatsapp_cloud");
  ASSERT_TRUE(whatsapp);
  int status = 400;
  LocalHttpServer graph([&](const ReceivedRequest&) {
    return canned(status, sample("graph_error_recipient_not_allowed.json"));
  });
  auto channel = whatsapp_channel(graph.url("/v21.0"));
  auto refused = whatsapp->send({"c", "16505551234", "hi", kNowMs}, channel, http_);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().status, CallStatus::rejected);
  EXPECT_NE(refused.error().message.find("131030"), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("Recipient phone number not in allowed list"),
            std::string::npos);

  status = 500;
  auto later = whatsapp->send({"c", "16505551234", "hi", kNowMs}, channel, http_);
  ASSERT_FALSE(later);
  EXPECT_EQ(later.error().status, CallStatus::retry);

  status = 401;
  auto token = whatsapp->send({"c", "16505551234", "hi", kNowMs}, channel, http_);
  ASSERT_FALSE(token);
  EXPECT_EQ(token.error().status, CallStatus::bad_config);

  channel.secrets.erase("access_token");
  auto no_token = whatsapp->send({"c", "16505551234", "hi", kNowMs}, channel, http_);
  ASSERT_FALSE(no_token);
  EXPECT_EQ(no_token.error().status, CallStatus::bad_config);
  EXPECT_NE(no_token.error().message.find("access_token"), std::string::npos);
}

// -------------------------------------------------------------------------- telegram

ChannelSettings telegram_channel(const std::string& api = "https://api.telegram.invalid") {
  ChannelSettings channel;
  channel.config = {{"api_base_url", api}};
  channel.secrets = {{"bot_token", "123456:ABC-DEF1234ghIkl"}, {"secret_token", "tg_secret-1"}};
  return channel;
}

TEST_F(Providers, TelegramChecksTheSecretTokenHeader) {
  auto telegram = provider("telegram");
  ASSERT_TRUE(telegram);
  std::string body = sample("telegram_message_text.json");
  EXPECT_TRUE(telegram->check_signature(
      post(body, {{"X-Telegram-Bot-Api-Secret-Token", "tg_secret-1"}}), telegram_channel()));
  auto wrong = telegram->check_signature(
      post(body, {{"X-Telegram-Bot-Api-Secret-Token", "tg_secret-2"}}), telegram_channel());
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().status, CallStatus::rejected);
  auto missing = telegram->check_signature(post(body), telegram_channel());
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("missing X-Telegram-Bot-Api-Secret-Token"),
            std::string::npos);

  auto channel = telegram_channel();
  channel.secrets.erase("secret_token");
  auto unconfigured =
      telegram->check_signature(post(body, {{"X-Telegram-Bot-Api-Secret-Token", ""}}), channel);
  ASSERT_FALSE(unconfigured);
  EXPECT_EQ(unconfigured.error().status, CallStatus::bad_config);
}

TEST_F(Providers, TelegramParsesTheGuidesUpdates) {
  auto telegram = provider("telegram");
  ASSERT_TRUE(telegram);
  auto message = telegram->parse(post(sample("telegram_message_text.json")), telegram_channel());
  ASSERT_TRUE(message) << message.error().message;
  ASSERT_EQ(message.value().size(), 1u);
  EXPECT_EQ(message.value()[0].message_id, "10000");
  EXPECT_EQ(message.value()[0].contact_id, "1111111");
  EXPECT_EQ(message.value()[0].contact_name, "Test Test Lastname");
  EXPECT_EQ(message.value()[0].text, "/start");
  EXPECT_EQ(message.value()[0].timestamp_ms, 1441645532000);
  EXPECT_EQ(message.value()[0].data["message_id"], 1365);

  auto edited = telegram->parse(post(sample("telegram_edited_message.json")), telegram_channel());
  ASSERT_TRUE(edited);
  ASSERT_EQ(edited.value().size(), 1u);
  EXPECT_EQ(edited.value()[0].text, "Edited text");
  EXPECT_EQ(edited.value()[0].data["type"], "edited_message");

  auto callback = telegram->parse(post(sample("telegram_callback_query.json")), telegram_channel());
  ASSERT_TRUE(callback) << callback.error().message;
  ASSERT_EQ(callback.value().size(), 1u);
  EXPECT_EQ(callback.value()[0].contact_id, "1111111");
  EXPECT_EQ(callback.value()[0].text, "Data from button callback");
  EXPECT_EQ(callback.value()[0].data["callback_query_id"], "4382bfdwdsb323b2d9");

  auto inline_query =
      telegram->parse(post(sample("telegram_inline_query.json")), telegram_channel());
  ASSERT_TRUE(inline_query);
  EXPECT_TRUE(inline_query.value().empty());

  auto not_update = telegram->parse(post(R"({"message": {}})"), telegram_channel());
  ASSERT_FALSE(not_update);
  EXPECT_EQ(not_update.error().status, CallStatus::rejected);
}

TEST_F(Providers, TelegramSendsMessagesThroughTheBotApi) {
  auto telegram = provider("telegram");
  ASSERT_TRUE(telegram);
  LocalHttpServer bot_api([](const ReceivedRequest&) {
    return canned(200, sample("telegram_send_message_response.json"));
  });
  auto sent = telegram->send({"conv-1", "1111111", "Hello!", kNowMs},
                             telegram_channel(bot_api.url()), http_);
  ASSERT_TRUE(sent) << sent.error().message;
  EXPECT_EQ(sent.value().provider_message_id, "1366");
  ASSERT_EQ(bot_api.request_count(), 1u);
  auto request = bot_api.requests()[0];
  EXPECT_EQ(request.target, "/bot123456:ABC-DEF1234ghIkl/sendMessage");
  EXPECT_EQ(nlohmann::json::parse(request.body),
            nlohmann::json({{"chat_id", 1111111}, {"text", "Hello!"}}));
}

TEST_F(Providers, TelegramSendFailuresNeverRevealTheToken) {
  auto telegram = provider("telegram");
  ASSERT_TRUE(telegram);
  int status = 400;
  LocalHttpServer bot_api([&](const ReceivedRequest&) {
    return canned(status, sample("telegram_error_chat_not_found.json"));
  });
  auto channel = telegram_channel(bot_api.url());
  auto refused = telegram->send({"c", "42", "hi", kNowMs}, channel, http_);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().status, CallStatus::rejected);
  EXPECT_NE(refused.error().message.find("chat not found"), std::string::npos);
  EXPECT_EQ(refused.error().message.find("ABC-DEF1234ghIkl"), std::string::npos);

  status = 429;
  auto later = telegram->send({"c", "42", "hi", kNowMs}, channel, http_);
  ASSERT_FALSE(later);
  EXPECT_EQ(later.error().status, CallStatus::retry);

  std::string closed_url;
  {
    LocalHttpServer gone([](const ReceivedRequest&) { return CannedResponse{}; });
    closed_url = gone.url();
  }
  auto unreachable = telegram->send({"c", "42", "hi", kNowMs}, telegram_channel(closed_url), http_);
  ASSERT_FALSE(unreachable);
  EXPECT_EQ(unreachable.error().status, CallStatus::retry);
  EXPECT_EQ(unreachable.error().message.find("ABC-DEF1234ghIkl"), std::string::npos)
      << unreachable.error().message;
}

}  // namespace
}  // namespace flowrt::testing::plugins
