// Journeys through a real `flowrt serve`: each provider end to end against local stand-ins
// for Meta's Graph API, Telegram's Bot API, a CRM and a webhook receiver; the delivery
// guarantees of SPEC §5 (deduplication, signatures, outbox retries); rate limits; webchat's
// held messages; and a clean shutdown.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "tests/e2e/journeys_support.hpp"
#include "tests/e2e/serve_process.hpp"

namespace flowrt::e2e::journeys {
namespace {

constexpr const char* kPhoneNumberId = "106540352242922";
constexpr const char* kWaId = "16505551234";
constexpr const char* kAppSecret = "meta-app-secret";
constexpr const char* kAccessToken = "graph-access-token";
constexpr const char* kBotToken = "123456:ABC-bot-token";
constexpr const char* kTelegramSecret = "telegram-secret_1";
constexpr int64_t kChatId = 1111111;
constexpr const char* kSigningSecret = "flowrt-signing-secret";

// --- Flows -------------------------------------------------------------------------------

// Asks for a name and says goodbye with it: two turns, two replies.
Json greeter_flow() {
  return Json::parse(R"json({
    "format": "flowrt.flow/1", "id": "greeter", "start": "ask_name",
    "nodes": [
      {"id": "ask_name", "type": "question", "text": "What's your name?", "save_as": "name",
       "next": "bye"},
      {"id": "bye", "type": "end", "text": "Nice to meet you, {{vars.name}}!"}
    ]})json");
}

// Asks for a name, registers a lead in the CRM at `crm_url` (bearer secret crm_token), hands
// over to the sales queue, and after the agent asks whether it helped: no → the agent again.
Json sales_flow(const std::string& crm_url) {
  Json flow = Json::parse(R"json({
    "format": "flowrt.flow/1", "id": "sales", "start": "ask_name",
    "nodes": [
      {"id": "ask_name", "type": "question", "text": "Hi! What's your name?", "save_as": "name",
       "next": "register"},
      {"id": "register", "type": "api_call", "method": "POST", "url": "set below",
       "headers": {"Authorization": "Bearer {{secrets.crm_token}}"},
       "body": {"name": "{{vars.name}}", "phone": "{{contact.phone}}", "source": "whatsapp"},
       "save": {"lead_id": "/id"}, "next": "agent"},
      {"id": "agent", "type": "handoff", "queue": "sales",
       "text": "Thanks {{vars.name}}, lead {{vars.lead_id}} is registered. An agent will join you.",
       "note": "Lead {{vars.lead_id}}: {{vars.name}}", "next": "survey"},
      {"id": "survey", "type": "question", "text": "Did the agent help? (yes/no)",
       "save_as": "helped", "expect": {"type": "boolean"}, "next": "check"},
      {"id": "check", "type": "condition",
       "branches": [{"when": {"var": "helped", "op": "eq", "value": true}, "next": "bye"}],
       "else": "agent"},
      {"id": "bye", "type": "end", "text": "Thanks for your feedback!"}
    ]})json");
  flow["nodes"][1]["url"] = crm_url;
  return flow;
}

// Asks what went wrong, hands over to support, and asks for feedback when resumed.
Json helpdesk_flow() {
  return Json::parse(R"json({
    "format": "flowrt.flow/1", "id": "helpdesk", "start": "ask_issue",
    "nodes": [
      {"id": "ask_issue", "type": "question", "text": "What went wrong with your order?",
       "save_as": "issue", "next": "agent"},
      {"id": "agent", "type": "handoff", "queue": "support",
       "text": "Thanks, I'm passing you to a colleague.", "next": "survey"},
      {"id": "survey", "type": "question", "text": "Did we solve your problem? (yes/no)",
       "save_as": "solved", "expect": {"type": "boolean"}, "next": "bye"},
      {"id": "bye", "type": "end", "text": "Thanks for your feedback!"}
    ]})json");
}

// --- Tenants and channels ----------------------------------------------------------------

// A tenant with `flow` published, an agent key, and one channel bound to the flow.
struct Bot {
  TenantKey tenant;
  std::string agent;  // an agent key
  std::string channel_id;
};

// Four tenant API calls (flow, publish, key, channel): the rate-limit test counts on it.
Bot make_bot(const ServeProcess& server, const std::string& tenant_name, const Json& flow,
             const std::string& provider, const Json& config = Json::object(),
             const Json& secrets = Json::object()) {
  Bot bot;
  bot.tenant = server.create_tenant(tenant_name);
  server.publish_flow(bot.tenant, flow);
  bot.agent = server.create_key(bot.tenant, "agent");
  Json channel =
      server.create_channel(bot.tenant, provider, flow["id"].get<std::string>(), config, secrets);
  bot.channel_id = channel.value("id", "");
  return bot;
}

// The id of the tenant's only conversation (an empty string and a test failure otherwise).
std::string only_conversation(const ServeProcess& server, const Bot& bot) {
  auto r = server.call("GET", "/v1/conversations", bot.agent);
  EXPECT_EQ(r.status, 200) << r.body;
  if (!r.json.is_object() || r.json["items"].size() != 1) {
    ADD_FAILURE() << "expected exactly one conversation: " << r.body;
    return "";
  }
  return r.json["items"][0]["id"].get<std::string>();
}

// The agent's reply in `conversation`, sent through its channel.
ApiResponse agent_reply(const ServeProcess& server, const Bot& bot, const std::string& conversation,
                        const std::string& text) {
  return server.call("POST", "/v1/conversations/" + conversation + "/messages", bot.agent,
                     Json{{"text", text}});
}

// Hands `conversation` back to the bot; `body` may name the node ({"node": "..."}).
ApiResponse resume(const ServeProcess& server, const Bot& bot, const std::string& conversation,
                   const std::string& body = "") {
  return server.call("POST", "/v1/conversations/" + conversation + "/resume", bot.agent, body);
}

// --- WhatsApp Cloud ----------------------------------------------------------------------

Json whatsapp_config(const LocalHttpServer& graph) {
  return {{"phone_number_id", kPhoneNumberId}, {"graph_base_url", graph.url("/v21.0")}};
}

Json whatsapp_secrets() {
  return {
      {"app_secret", kAppSecret}, {"access_token", kAccessToken}, {"verify_token", "verify-me"}};
}

// What the Graph API answers a successful send.
CannedResponse graph_accepts() {
  return answer(200, R"({"messaging_product": "whatsapp", "messages": [{"id": "wamid.out"}]})");
}

// Posts a text message from kWaId, signed with the app secret as Meta does.
ApiResponse post_whatsapp(const ServeProcess& server, const Bot& bot, const std::string& message_id,
                          const std::string& text) {
  std::string body = whatsapp_text(kPhoneNumberId, kWaId, message_id, text).dump();
  return server.call("POST", webhook_path(bot.channel_id), "", body,
                     {hub_signature(kAppSecret, body)});
}

TEST(JourneyWhatsApp, VerificationHandshakeEchoesTheChallengeOnlyForTheVerifyToken) {
  LocalHttpServer graph([](const ReceivedRequest&) { return graph_accepts(); });
  ServeProcess server(database_url("journey_whatsapp_verify"));
  Bot bot = make_bot(server, "Acme", greeter_flow(), "whatsapp_cloud", whatsapp_config(graph),
                     whatsapp_secrets());
  std::string query = webhook_path(bot.channel_id) + "?hub.mode=subscribe&hub.challenge=1158201444";

  auto right = server.call("GET", query + "&hub.verify_token=verify-me", "");
  EXPECT_EQ(right.status, 200) << right.body << server.log_tail();
  EXPECT_EQ(right.body, "1158201444");
  EXPECT_EQ(right.header("content-type").rfind("text/plain", 0), 0u)
      << right.header("content-type");

  auto wrong = server.call("GET", query + "&hub.verify_token=guess", "");
  EXPECT_EQ(wrong.status, 403) << wrong.body;
  EXPECT_EQ(wrong.body.find("1158201444"), std::string::npos) << wrong.body;
  EXPECT_EQ(server.call("GET", query, "").status, 403);
}

TEST(JourneyWhatsApp, ReceiptsAndOtherNumbersTrafficAreAcknowledgedAndStoreNothing) {
  LocalHttpServer graph([](const ReceivedRequest&) { return graph_accepts(); });
  std::string url = database_url("journey_whatsapp_ignored");
  ServeProcess server(url);
  Bot bot = make_bot(server, "Acme", greeter_flow(), "whatsapp_cloud", whatsapp_config(graph),
                     whatsapp_secrets());
  auto post_signed = [&](const Json& payload) {
    std::string body = payload.dump();
    return server.call("POST", webhook_path(bot.channel_id), "", body,
                       {hub_signature(kAppSecret, body)});
  };

  auto receipt = post_signed(whatsapp_status(kPhoneNumberId, kWaId, "wamid.out.1"));
  EXPECT_EQ(receipt.status, 200) << receipt.body << server.log_tail();
  EXPECT_EQ(receipt.json, (Json{{"accepted", 0}, {"duplicates", 0}}));
  auto elsewhere = post_signed(whatsapp_text("999999999999999", kWaId, "wamid.in.1", "hi"));
  EXPECT_EQ(elsewhere.status, 200) << elsewhere.body;
  EXPECT_EQ(elsewhere.json, (Json{{"accepted", 0}, {"duplicates", 0}}));

  for (const char* table : {"contacts", "inbox", "conversations", "events", "outbox"}) {
    EXPECT_EQ(sql_count(url, std::string("SELECT count(*) FROM ") + table), 0) << table;
  }
  EXPECT_EQ(graph.request_count(), 0u);
}

TEST(JourneyWhatsApp, QuestionCrmCallHandoffAgentReplyAndResume) {
  LocalHttpServer crm([](const ReceivedRequest&) { return answer(201, R"({"id": "L-42"})"); });
  LocalHttpServer graph([](const ReceivedRequest&) { return graph_accepts(); });
  ServeProcess server(database_url("journey_whatsapp"));
  Bot bot = make_bot(server, "Acme", sales_flow(crm.url("/leads")), "whatsapp_cloud",
                     whatsapp_config(graph), whatsapp_secrets());
  auto secret =
      server.call("PUT", "/v1/secrets/crm_token", bot.tenant.token, Json{{"value", "crm-token-7"}});
  ASSERT_EQ(secret.status, 201) << secret.body;

  // "hi" starts the flow: the name question. The name registers a lead and hands over.
  auto first = post_whatsapp(server, bot, "wamid.in.1", "hi");
  ASSERT_EQ(first.status, 200) << first.body << server.log_tail();
  EXPECT_EQ(first.json, (Json{{"accepted", 1}, {"duplicates", 0}}));
  ASSERT_TRUE(received(graph, 1)) << server.log_tail();
  ASSERT_EQ(post_whatsapp(server, bot, "wamid.in.2", "Ana").status, 200);
  ASSERT_TRUE(received(graph, 2)) << server.log_tail();

  ASSERT_EQ(crm.request_count(), 1u);
  ReceivedRequest lead = crm.requests()[0];
  EXPECT_EQ(lead.method, "POST");
  EXPECT_EQ(lead.target, "/leads");
  EXPECT_EQ(lead.header("authorization"), "Bearer crm-token-7");
  EXPECT_EQ(Json::parse(lead.body, nullptr, false),
            (Json{{"name", "Ana"}, {"phone", "+16505551234"}, {"source", "whatsapp"}}));

  // The agent finds the conversation in the sales queue (and not in another queue).
  auto queue = server.call("GET", "/v1/conversations?status=handoff&queue=sales", bot.agent);
  ASSERT_EQ(queue.status, 200) << queue.body;
  ASSERT_EQ(queue.json["items"].size(), 1u) << queue.body;
  Json handed = queue.json["items"][0];
  std::string conversation = handed["id"].get<std::string>();
  EXPECT_EQ(handed["contact"]["id"], kWaId);
  EXPECT_EQ(handed["contact"]["name"], "Ana Lima");
  EXPECT_EQ(handed["handoff"], (Json{{"queue", "sales"}, {"note", "Lead L-42: Ana"}}));
  auto other = server.call("GET", "/v1/conversations?status=handoff&queue=billing", bot.agent);
  EXPECT_EQ(other.json["items"], Json::array()) << other.body;

  // During the handoff the contact's messages are journaled for the agent, not answered.
  ASSERT_EQ(post_whatsapp(server, bot, "wamid.in.3", "Are you there?").status, 200);
  EXPECT_TRUE(eventually([&] {
    return events_of(journal(server, bot.agent, conversation), "message_in").size() == 3;
  }));

  // The agent's reply goes out through the channel.
  auto reply = agent_reply(server, bot, conversation, "Hi Ana, Bob from sales here.");
  EXPECT_EQ(reply.status, 202) << reply.body;
  ASSERT_TRUE(received(graph, 3)) << server.log_tail();

  // Back to the bot at the handoff's next: the survey. "no" hands over again.
  auto resumed = resume(server, bot, conversation);
  EXPECT_EQ(resumed.status, 200) << resumed.body;
  EXPECT_EQ(resumed.json["status"], "waiting");
  ASSERT_TRUE(received(graph, 4)) << server.log_tail();
  ASSERT_EQ(post_whatsapp(server, bot, "wamid.in.4", "no").status, 200);
  ASSERT_TRUE(received(graph, 5)) << server.log_tail();

  // Resuming at a node the flow does not have is refused; at "bye" the conversation ends.
  auto nowhere = resume(server, bot, conversation, R"({"node": "nowhere"})");
  EXPECT_EQ(nowhere.status, 422) << nowhere.body;
  auto finished = resume(server, bot, conversation, R"({"node": "bye"})");
  EXPECT_EQ(finished.status, 200) << finished.body;
  EXPECT_EQ(finished.json["status"], "ended");
  ASSERT_TRUE(received(graph, 6)) << server.log_tail();

  EXPECT_EQ(texts_received(graph, "/text/body"),
            (Texts{"Hi! What's your name?",
                   "Thanks Ana, lead L-42 is registered. An agent will join you.",
                   "Hi Ana, Bob from sales here.", "Did the agent help? (yes/no)",
                   "Thanks Ana, lead L-42 is registered. An agent will join you.",
                   "Thanks for your feedback!"}));
  for (const auto& sent : graph.requests()) {
    EXPECT_EQ(sent.method, "POST");
    EXPECT_EQ(sent.target, std::string("/v21.0/") + kPhoneNumberId + "/messages");
    EXPECT_EQ(sent.header("authorization"), std::string("Bearer ") + kAccessToken);
    Json body = Json::parse(sent.body, nullptr, false);
    EXPECT_EQ(body["to"], kWaId) << sent.body;
    EXPECT_EQ(body["messaging_product"], "whatsapp") << sent.body;
  }
  EXPECT_EQ(crm.request_count(), 1u);

  Json events = journal(server, bot.agent, conversation);
  EXPECT_EQ(event_types(events, {"message_in", "message_out", "api_call", "handoff", "resume",
                                 "ended", "error", "delivery_error"}),
            (Texts{"message_in", "message_out",                         // hi → question
                   "message_in", "api_call", "message_out", "handoff",  // Ana → CRM → agent
                   "message_in",                                        // during handoff
                   "message_out",                                       // the agent
                   "resume", "message_out",                             // survey
                   "message_in", "message_out", "handoff",              // no → agent again
                   "resume", "message_out", "ended"}));                 // resumed at bye
  ASSERT_EQ(events_of(events, "message_out").size(), 6u);
  Json agent_out = events_of(events, "message_out")[2]["data"];
  EXPECT_EQ(agent_out["text"], "Hi Ana, Bob from sales here.");
  EXPECT_TRUE(agent_out.contains("agent")) << agent_out;
  ASSERT_EQ(events_of(events, "message_in").size(), 4u);
  EXPECT_EQ(events_of(events, "message_in")[2]["data"]["text"], "Are you there?");
}

// --- Telegram ----------------------------------------------------------------------------

TEST(JourneyTelegram, UpdatesAreAnsweredThroughSendMessage) {
  LocalHttpServer bot_api([](const ReceivedRequest&) {
    return answer(200, R"({"ok": true, "result": {"message_id": 1366}})");
  });
  ServeProcess server(database_url("journey_telegram"));
  Bot bot = make_bot(server, "Acme", greeter_flow(), "telegram", {{"api_base_url", bot_api.url()}},
                     {{"bot_token", kBotToken}, {"secret_token", kTelegramSecret}});
  auto send = [&](int64_t update_id, const std::string& text) {
    return server.call("POST", webhook_path(bot.channel_id), "",
                       telegram_text(update_id, kChatId, text).dump(),
                       {telegram_secret(kTelegramSecret)});
  };

  auto start = send(10000, "/start");
  ASSERT_EQ(start.status, 200) << start.body << server.log_tail();
  EXPECT_EQ(start.json, (Json{{"accepted", 1}, {"duplicates", 0}}));
  ASSERT_TRUE(received(bot_api, 1)) << server.log_tail();
  ASSERT_EQ(send(10001, "Ana").status, 200);
  ASSERT_TRUE(received(bot_api, 2)) << server.log_tail();

  EXPECT_EQ(texts_received(bot_api, "/text"),
            (Texts{"What's your name?", "Nice to meet you, Ana!"}));
  for (const auto& sent : bot_api.requests()) {
    EXPECT_EQ(sent.method, "POST");
    EXPECT_EQ(sent.target, std::string("/bot") + kBotToken + "/sendMessage");
    EXPECT_EQ(Json::parse(sent.body, nullptr, false)["chat_id"], kChatId) << sent.body;
  }
  auto conversation =
      server.call("GET", "/v1/conversations/" + only_conversation(server, bot), bot.agent);
  EXPECT_EQ(conversation.json["status"], "ended") << conversation.body;
  EXPECT_EQ(conversation.json["contact"]["id"], std::to_string(kChatId));
  EXPECT_EQ(conversation.json["contact"]["name"], "Ana Lima");
  EXPECT_EQ(conversation.json["vars"], (Json{{"name", "Ana"}}));
}

// --- webhook -----------------------------------------------------------------------------

ApiResponse post_webhook_event(const ServeProcess& server, const Bot& bot, const Json& event) {
  std::string body = event.dump();
  return server.call("POST", webhook_path(bot.channel_id), "", body,
                     webhook_signature(kSigningSecret, body, unix_seconds()));
}

TEST(JourneyWebhook, SignedEventsInSignedRepliesToTheCallbackUrl) {
  LocalHttpServer receiver([](const ReceivedRequest&) { return answer(200, "{}"); });
  ServeProcess server(database_url("journey_webhook"));
  Bot bot = make_bot(server, "Acme", greeter_flow(), "webhook",
                     {{"callback_url", receiver.url("/hooks/flowrt")}},
                     {{"signing_secret", kSigningSecret}});

  auto first = post_webhook_event(
      server, bot, {{"contact_id", "c-7"}, {"message_id", "evt-1"}, {"text", "hello"}});
  ASSERT_EQ(first.status, 200) << first.body << server.log_tail();
  ASSERT_TRUE(received(receiver, 1)) << server.log_tail();
  ASSERT_EQ(post_webhook_event(server, bot,
                               {{"contact_id", "c-7"},
                                {"message_id", "evt-2"},
                                {"text", "Ana"},
                                {"extra", {{"plan", "pro"}}}})
                .status,
            200);
  ASSERT_TRUE(received(receiver, 2)) << server.log_tail();

  std::string conversation = only_conversation(server, bot);
  EXPECT_EQ(texts_received(receiver, "/text"),
            (Texts{"What's your name?", "Nice to meet you, Ana!"}));
  for (const auto& sent : receiver.requests()) {
    EXPECT_EQ(sent.method, "POST");
    EXPECT_EQ(sent.target, "/hooks/flowrt");
    std::string stamp = sent.header("x-flowrt-timestamp");
    ASSERT_FALSE(stamp.empty());
    EXPECT_LE(std::llabs(std::stoll(stamp) - unix_seconds()), 60) << stamp;
    EXPECT_EQ(sent.header("x-flowrt-signature"),
              "sha256=" + hmac_sha256_hex(kSigningSecret, stamp + "." + sent.body));
    Json body = Json::parse(sent.body, nullptr, false);
    EXPECT_EQ(body["conversation_id"], conversation) << sent.body;
    EXPECT_EQ(body["contact_id"], "c-7") << sent.body;
  }
  // The whole event is the message's data.
  auto answers = events_of(journal(server, bot.agent, conversation), "message_in");
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[1]["data"]["data"]["extra"], (Json{{"plan", "pro"}}));
}

// --- Duplicate deliveries ----------------------------------------------------------------

TEST(JourneyDuplicates, WhatsAppRedeliveryIsAcknowledgedAndProcessedOnce) {
  LocalHttpServer graph([](const ReceivedRequest&) { return graph_accepts(); });
  std::string url = database_url("journey_duplicates_whatsapp");
  ServeProcess server(url);
  Bot bot = make_bot(server, "Acme", greeter_flow(), "whatsapp_cloud", whatsapp_config(graph),
                     whatsapp_secrets());

  auto first = post_whatsapp(server, bot, "wamid.dup", "hi");
  auto again = post_whatsapp(server, bot, "wamid.dup", "hi");
  EXPECT_EQ(first.status, 200) << first.body << server.log_tail();
  EXPECT_EQ(first.json, (Json{{"accepted", 1}, {"duplicates", 0}}));
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.json, (Json{{"accepted", 0}, {"duplicates", 1}}));

  // A later message is a barrier: a second "hi" would have been answered before it.
  ASSERT_EQ(post_whatsapp(server, bot, "wamid.next", "Ana").status, 200);
  ASSERT_TRUE(received(graph, 2)) << server.log_tail();
  EXPECT_EQ(texts_received(graph, "/text/body"),
            (Texts{"What's your name?", "Nice to meet you, Ana!"}));

  Json events = journal(server, bot.agent, only_conversation(server, bot));
  EXPECT_EQ(events_of(events, "message_in").size(), 2u);
  EXPECT_EQ(events_of(events, "message_out").size(), 2u);
  EXPECT_EQ(sql_count(url, "SELECT count(*) FROM inbox WHERE provider_message_id = 'wamid.dup'"),
            1);
}

TEST(JourneyDuplicates, WebchatRedeliveryIsAcknowledgedAndProcessedOnce) {
  std::string url = database_url("journey_duplicates_webchat");
  ServeProcess server(url);
  Bot bot = make_bot(server, "Acme", greeter_flow(), "webchat");
  Json message{{"user", "ana"}, {"text", "hi"}, {"message_id", "web-1"}};

  auto first = server.call("POST", webhook_path(bot.channel_id), "", message);
  auto again = server.call("POST", webhook_path(bot.channel_id), "", message);
  ASSERT_EQ(first.status, 200) << first.body << server.log_tail();
  EXPECT_EQ(reply_texts(first), (Texts{"What's your name?"}));
  EXPECT_EQ(first.json["status"], "waiting");
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.json["duplicate"], true) << again.body;
  EXPECT_EQ(again.json["conversation_id"], first.json["conversation_id"]) << again.body;
  EXPECT_EQ(again.json["status"], "waiting") << again.body;
  EXPECT_EQ(reply_texts(again), Texts{}) << again.body;

  Json events = journal(server, bot.agent, only_conversation(server, bot));
  EXPECT_EQ(events_of(events, "message_in").size(), 1u);
  EXPECT_EQ(events_of(events, "message_out").size(), 1u);
  EXPECT_EQ(sql_count(url, "SELECT count(*) FROM outbox"), 1);
}

// --- Bad signatures ----------------------------------------------------------------------

void expect_refused(const ApiResponse& response, const std::string& because) {
  EXPECT_EQ(response.status, 401) << response.body;
  EXPECT_EQ(response.header("content-type"), "application/problem+json");
  std::string detail = response.json.is_object() ? response.json.value("detail", "") : "";
  EXPECT_NE(detail.find(because), std::string::npos) << response.body;
}

TEST(JourneyBadSignatures, AreRefusedWith401AndStoreNothing) {
  LocalHttpServer stand_in([](const ReceivedRequest&) { return graph_accepts(); });
  std::string url = database_url("journey_bad_signatures");
  ServeProcess server(url);
  TenantKey tenant = server.create_tenant("Acme");
  server.publish_flow(tenant, greeter_flow());
  auto channel = [&](const std::string& provider, const Json& config, const Json& secrets) {
    Json created = server.create_channel(tenant, provider, "greeter", config, secrets);
    return webhook_path(created.value("id", ""));
  };
  std::string whatsapp = channel("whatsapp_cloud", whatsapp_config(stand_in), whatsapp_secrets());
  std::string telegram = channel("telegram", {{"api_base_url", stand_in.url()}},
                                 {{"bot_token", kBotToken}, {"secret_token", kTelegramSecret}});
  std::string webhook = channel("webhook", {{"callback_url", stand_in.url("/hook")}},
                                {{"signing_secret", kSigningSecret}});
  std::string webchat = channel("webchat", Json::object(), {{"signing_secret", kSigningSecret}});
  auto post = [&](const std::string& path, const std::string& body, const Headers& headers) {
    return server.call("POST", path, "", body, headers);
  };

  std::string wa = whatsapp_text(kPhoneNumberId, kWaId, "wamid.forged", "hi").dump();
  expect_refused(post(whatsapp, wa, {}), "missing X-Hub-Signature-256");
  expect_refused(post(whatsapp, wa, {hub_signature("not-the-app-secret", wa)}), "does not match");
  expect_refused(post(whatsapp, wa, {"X-Hub-Signature-256: " + hmac_sha256_hex(kAppSecret, wa)}),
                 "sha256=<hex>");

  std::string tg = telegram_text(20000, kChatId, "hi").dump();
  expect_refused(post(telegram, tg, {}), "missing X-Telegram-Bot-Api-Secret-Token");
  expect_refused(post(telegram, tg, {telegram_secret("guessed")}), "does not match");

  std::string hook = Json{{"contact_id", "c-1"}, {"message_id", "m-1"}, {"text", "hi"}}.dump();
  expect_refused(post(webhook, hook, {}), "missing X-Flowrt-Timestamp");
  expect_refused(post(webhook, hook, webhook_signature("wrong", hook, unix_seconds())),
                 "does not match");
  expect_refused(post(webhook, hook, webhook_signature(kSigningSecret, hook, unix_seconds() - 900)),
                 "replay");

  std::string chat = Json{{"user", "ana"}, {"text", "hi"}}.dump();
  expect_refused(post(webchat, chat, {}), "missing X-Flowrt-Signature");
  expect_refused(post(webchat, chat, {flowrt_signature("wrong", chat)}), "does not match");

  auto listed = server.call("GET", "/v1/conversations", tenant.token);
  EXPECT_EQ(listed.json["items"], Json::array()) << listed.body;
  for (const char* table : {"contacts", "inbox", "conversations", "events", "outbox"}) {
    EXPECT_EQ(sql_count(url, std::string("SELECT count(*) FROM ") + table), 0) << table;
  }
  EXPECT_EQ(stand_in.request_count(), 0u);

  // The control: the same webchat message, signed, is stored and answered.
  auto signed_chat = post(webchat, chat, {flowrt_signature(kSigningSecret, chat)});
  EXPECT_EQ(signed_chat.status, 200) << signed_chat.body << server.log_tail();
  EXPECT_EQ(sql_count(url, "SELECT count(*) FROM conversations"), 1);
}

// --- Rate limits -------------------------------------------------------------------------

void expect_rate_limited(const ApiResponse& response) {
  EXPECT_EQ(response.status, 429) << response.body;
  std::string retry_after = response.header("retry-after");
  EXPECT_FALSE(retry_after.empty());
  EXPECT_GE(std::atoi(retry_after.c_str()), 1) << retry_after;
  EXPECT_EQ(response.json.is_object() ? response.json.value("type", "") : "", "rate_limited")
      << response.body;
}

TEST(JourneyRateLimit, ATenantOverItsLimitGets429AndOtherTenantsDoNot) {
  std::string url = database_url("journey_rate_limit");
  ServeProcess server(url, {},
                      {{"FLOWRT_RATE_LIMIT_PER_S", "0.01"}, {"FLOWRT_RATE_LIMIT_BURST", "6"}});
  Bot busy = make_bot(server, "Busy", greeter_flow(), "webchat");  // 4 of its 6 calls
  Bot calm = make_bot(server, "Calm", greeter_flow(), "webchat");

  EXPECT_EQ(server.call("GET", "/v1/flows", busy.tenant.token).status, 200);
  EXPECT_EQ(server.call("GET", "/v1/flows", busy.tenant.token).status, 200);
  expect_rate_limited(server.call("GET", "/v1/flows", busy.tenant.token));
  expect_rate_limited(server.call("GET", "/v1/conversations", busy.agent));
  // The tenant's webhooks share its budget, and a refused message is not stored.
  expect_rate_limited(server.call("POST", webhook_path(busy.channel_id), "",
                                  Json{{"user", "ana"}, {"text", "hi"}}));
  EXPECT_EQ(
      sql_count(url, "SELECT count(*) FROM inbox WHERE tenant_id = $1", busy.tenant.tenant_id), 0);

  EXPECT_EQ(server.call("GET", "/v1/flows", calm.tenant.token).status, 200);
  auto answered =
      server.call("POST", webhook_path(calm.channel_id), "", Json{{"user", "ana"}, {"text", "hi"}});
  EXPECT_EQ(answered.status, 200) << answered.body;
  EXPECT_EQ(reply_texts(answered), (Texts{"What's your name?"}));
}

// --- Webchat held messages ---------------------------------------------------------------

// One entry of a webchat answer's "replies"; `from` is "agent" for an agent's message.
Json reply(const std::string& text, const std::string& from = "") {
  Json entry = Json::object();
  entry["text"] = text;
  if (!from.empty()) entry["from"] = from;
  return entry;
}

TEST(JourneyWebchat, HeldMessagesAreReturnedOnceByAPollOrWithTheNextMessage) {
  std::string url = database_url("journey_webchat_held");
  ServeProcess server(url);
  Bot bot = make_bot(server, "Acme", helpdesk_flow(), "webchat", Json::object(),
                     {{"signing_secret", kSigningSecret}});
  std::string webhook = webhook_path(bot.channel_id);
  auto say = [&](const std::string& text) {
    std::string body = Json{{"user", "ana"}, {"name", "Ana"}, {"text", text}}.dump();
    return server.call("POST", webhook, "", body, {flowrt_signature(kSigningSecret, body)});
  };
  auto poll = [&](const std::string& signed_text) {
    return server.call("GET", webhook + "?user=ana", "", std::string(),
                       {flowrt_signature(kSigningSecret, signed_text)});
  };
  auto held = [&](int64_t count) {
    return eventually([&] {
      return sql_count(url, "SELECT count(*) FROM outbox WHERE state = 'held'") == count;
    });
  };

  EXPECT_EQ(reply_texts(say("hi")), (Texts{"What went wrong with your order?"}));
  auto handed = say("It arrived cold");
  ASSERT_EQ(handed.status, 200) << handed.body << server.log_tail();
  EXPECT_EQ(handed.json["status"], "handoff");
  EXPECT_EQ(reply_texts(handed), (Texts{"Thanks, I'm passing you to a colleague."}));
  std::string conversation = handed.json.value("conversation_id", "");

  // The agent's reply waits for the widget; only a poll signed for this user collects it.
  EXPECT_EQ(agent_reply(server, bot, conversation, "Sorry! A new one is on its way.").status, 202);
  ASSERT_TRUE(held(1)) << server.log_tail();
  expect_refused(server.call("GET", webhook + "?user=ana", ""), "missing X-Flowrt-Signature");
  expect_refused(poll("user=bob"), "does not match");
  auto collected = poll("user=ana");
  EXPECT_EQ(collected.status, 200) << collected.body;
  EXPECT_EQ(collected.json["replies"],
            Json::array({reply("Sorry! A new one is on its way.", "agent")}));
  auto nothing = poll("user=ana");
  EXPECT_EQ(nothing.status, 200) << nothing.body;
  EXPECT_EQ(nothing.json["replies"], Json::array());

  // Another agent message and the resumed bot's question come first in the next answer.
  EXPECT_EQ(agent_reply(server, bot, conversation, "Anything else?").status, 202);
  auto resumed = resume(server, bot, conversation);
  EXPECT_EQ(resumed.status, 200) << resumed.body;
  ASSERT_TRUE(held(2)) << server.log_tail();
  auto last = say("yes");
  EXPECT_EQ(last.status, 200) << last.body;
  EXPECT_EQ(last.json["replies"], Json::array({reply("Anything else?", "agent"),
                                               reply("Did we solve your problem? (yes/no)"),
                                               reply("Thanks for your feedback!")}));
  EXPECT_EQ(last.json["status"], "ended");
  EXPECT_EQ(poll("user=ana").json["replies"], Json::array());
}

// --- Outbox retries ----------------------------------------------------------------------

// A Graph stand-in that answers the first send with `first` and later ones with success.
class FlakyGraph {
 public:
  explicit FlakyGraph(CannedResponse first)
      : server_([this, first](const ReceivedRequest&) {
          return calls_++ == 0 ? first : graph_accepts();
        }) {}
  const LocalHttpServer& server() const { return server_; }

 private:
  std::atomic<int> calls_{0};
  LocalHttpServer server_;
};

// The greeter with a welcome message first: its first turn sends two messages.
Json welcome_flow() {
  Json flow = greeter_flow();
  flow["start"] = "welcome";
  flow["nodes"].push_back(
      {{"id", "welcome"}, {"type", "text"}, {"text", "Welcome to Acme!"}, {"next", "ask_name"}});
  return flow;
}

TEST(JourneyOutbox, AServerErrorIsRetriedUntilDeliveredAndHoldsBackTheNextMessage) {
  FlakyGraph graph(
      answer(500, R"({"error": {"message": "Service temporarily unavailable", "code": 2}})"));
  std::string url = database_url("journey_outbox_retry");
  ServeProcess server(url);
  Bot bot = make_bot(server, "Acme", welcome_flow(), "whatsapp_cloud",
                     whatsapp_config(graph.server()), whatsapp_secrets());

  ASSERT_EQ(post_whatsapp(server, bot, "wamid.in.1", "hi").status, 200);
  ASSERT_TRUE(received(graph.server(), 3)) << server.log_tail();
  EXPECT_EQ(texts_received(graph.server(), "/text/body"),
            (Texts{"Welcome to Acme!", "Welcome to Acme!", "What's your name?"}));
  EXPECT_TRUE(eventually(
      [&] { return sql_count(url, "SELECT count(*) FROM outbox WHERE state = 'sent'") == 2; }));

  auto errors =
      events_of(journal(server, bot.agent, only_conversation(server, bot)), "delivery_error");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0]["data"]["outcome"], "retrying") << errors[0];
  EXPECT_EQ(errors[0]["data"]["attempt"], 1) << errors[0];
  EXPECT_NE(errors[0]["data"].value("error", "").find("500"), std::string::npos) << errors[0];
}

TEST(JourneyOutbox, AClientErrorFailsPermanentlyWithoutRetries) {
  FlakyGraph graph(answer(400, R"({"error": {"code": 131030, "type": "OAuthException",
      "message": "(#131030) Recipient phone number not in allowed list"}})"));
  std::string url = database_url("journey_outbox_permanent");
  ServeProcess server(url);
  Bot bot = make_bot(server, "Acme", greeter_flow(), "whatsapp_cloud",
                     whatsapp_config(graph.server()), whatsapp_secrets());

  ASSERT_EQ(post_whatsapp(server, bot, "wamid.in.1", "hi").status, 200);
  std::string conversation;
  ASSERT_TRUE(eventually([&] {
    auto r = server.call("GET", "/v1/conversations", bot.agent);
    if (r.json.is_object() && r.json["items"].size() == 1)
      conversation = r.json["items"][0]["id"].get<std::string>();
    return !conversation.empty() &&
           !events_of(journal(server, bot.agent, conversation), "delivery_error").empty();
  })) << server.log_tail();
  auto errors = events_of(journal(server, bot.agent, conversation), "delivery_error");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0]["data"]["outcome"], "permanent") << errors[0];
  EXPECT_NE(errors[0]["data"].value("error", "").find("131030"), std::string::npos) << errors[0];

  // A failed message does not hold back the next one, and is never tried again: had it been
  // retried, the retry would have gone out before this reply.
  ASSERT_EQ(post_whatsapp(server, bot, "wamid.in.2", "Ana").status, 200);
  ASSERT_TRUE(received(graph.server(), 2)) << server.log_tail();
  EXPECT_EQ(texts_received(graph.server(), "/text/body"),
            (Texts{"What's your name?", "Nice to meet you, Ana!"}));
  EXPECT_EQ(sql_count(url, "SELECT count(*) FROM outbox WHERE state = 'failed' AND attempts = 1"),
            1);
  EXPECT_EQ(events_of(journal(server, bot.agent, conversation), "delivery_error").size(), 1u);
}

// --- Shutdown ----------------------------------------------------------------------------

TEST(JourneyShutdown, SigtermExitsZeroAndTheNextProcessContinuesTheConversation) {
  std::string url = database_url("journey_shutdown");
  Json hi{{"user", "ana"}, {"text", "hi"}};
  Json name{{"user", "ana"}, {"text", "Ana"}};
  std::string channel_id;
  std::string conversation;
  {
    ServeProcess first(url);
    channel_id = make_bot(first, "Acme", greeter_flow(), "webchat").channel_id;
    auto asked = first.call("POST", webhook_path(channel_id), "", hi);
    ASSERT_EQ(asked.status, 200) << asked.body << first.log_tail();
    conversation = asked.json.value("conversation_id", "");
    EXPECT_EQ(first.stop(), 0) << first.log_tail();
    EXPECT_NE(first.log().find(R"("event":"stopped")"), std::string::npos) << first.log_tail();
  }
  ServeProcess second(url);
  auto answered = second.call("POST", webhook_path(channel_id), "", name);
  ASSERT_EQ(answered.status, 200) << answered.body << second.log_tail();
  EXPECT_EQ(answered.json["conversation_id"], conversation);
  EXPECT_EQ(reply_texts(answered), (Texts{"Nice to meet you, Ana!"}));
  EXPECT_EQ(second.stop(), 0) << second.log_tail();
}

// SIGTERM while a slow provider is still taking the first of two replies: the process
// finishes that send and then flushes the rest of the outbox before it exits.
TEST(JourneyShutdown, SigtermFlushesTheOutboxBeforeExiting) {
  CannedResponse slow = answer(200, R"({"messages": [{"id": "wamid.out"}]})");
  slow.delay_ms = 400;
  LocalHttpServer graph([slow](const ReceivedRequest&) { return slow; });
  std::string url = database_url("journey_shutdown_flush");
  ServeProcess server(url);
  Bot bot = make_bot(server, "Acme", welcome_flow(), "whatsapp_cloud", whatsapp_config(graph),
                     whatsapp_secrets());
  ASSERT_EQ(post_whatsapp(server, bot, "wamid.in.1", "hi").status, 200);
  ASSERT_TRUE(eventually([&] { return sql_count(url, "SELECT count(*) FROM outbox") == 2; }))
      << server.log_tail();
  EXPECT_EQ(server.stop(), 0) << server.log_tail();
  EXPECT_EQ(texts_received(graph, "/text/body"), (Texts{"Welcome to Acme!", "What's your name?"}))
      << server.log_tail();
  EXPECT_EQ(sql_count(url, "SELECT count(*) FROM outbox WHERE state = 'sent'"), 2);
}

}  // namespace
}  // namespace flowrt::e2e::journeys
