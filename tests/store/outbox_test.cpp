#include <chrono>
#include <mutex>
#include <thread>

#include "runtime/curl_http_client.hpp"
#include "runtime/store/workers.hpp"
#include "tests/store/fixture.hpp"
#include "tests/support/http_server.hpp"

namespace flowrt::store_tests {
namespace {

using Clock = std::chrono::steady_clock;

testing::CannedResponse respond(int status) {
  testing::CannedResponse response;
  response.status = status;
  response.body = "{}";
  return response;
}

// Delivers over HTTP like a provider would: 2xx ok, 4xx (but 429) permanent, else retry.
class HttpSender : public st::OutboundSender {
 public:
  explicit HttpSender(std::string url)
      : url_(std::move(url)), http_(runtime::NetworkPolicy{true}) {}
  st::SendResult send(const st::OutboxMessage& message) override {
    {
      std::lock_guard lock(mutex_);
      times_.push_back(Clock::now());
    }
    runtime::HttpRequest request;
    request.method = "POST";
    request.url = url_;
    request.headers = {{"Content-Type", "application/json"}};
    request.body =
        Json{{"conversation_id", message.conversation_id}, {"text", message.text}}.dump();
    request.timeout_ms = 2000;
    auto response = http_.send(request);
    if (response.ok()) return st::SendResult::sent();
    std::string why =
        response.error.empty() ? "HTTP " + std::to_string(response.status) : response.error;
    if (response.status >= 400 && response.status < 500 && response.status != 429) {
      return st::SendResult::fail(why);
    }
    return st::SendResult::retry(why);
  }
  std::vector<Clock::time_point> times() {
    std::lock_guard lock(mutex_);
    return times_;
  }

 private:
  std::string url_;
  runtime::CurlHttpClient http_;
  std::mutex mutex_;
  std::vector<Clock::time_point> times_;
};

class OutboxTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    world = make_world(*store, kAskFlow);
    // Rows other tests left pending would be sent to this test's server.
    scalar(
        "WITH u AS (UPDATE outbox SET state = 'sent' WHERE state = 'pending' RETURNING 1) "
        "SELECT count(*) FROM u");
  }
  // One pending outbox row ("Name?") in a new conversation.
  std::string make_row(const std::string& contact) {
    auto outcome = turns->accept_and_process(message(world, contact, "hi"), st::Delivery::outbox);
    EXPECT_EQ(outcome.kind, st::TurnOutcome::Kind::processed);
    return outcome.conversation_id;
  }
  std::string state_of(const std::string& conversation) {
    pqxx::connection connection(database_url());
    pqxx::nontransaction tx(connection);
    return tx
        .exec_params(
            "SELECT string_agg(state, ',' ORDER BY id) FROM outbox "
            "WHERE conversation_id = $1",
            conversation)[0][0]
        .as<std::string>();
  }
  std::vector<std::string> outcomes(const std::string& conversation) {
    std::vector<std::string> out;
    for (const auto& e : events(world.tenant, conversation)) {
      if (e.type == "delivery_error") out.push_back(e.data.value("outcome", std::string()));
    }
    return out;
  }
  // Runs the dispatcher until `done` or the deadline.
  void dispatch_until(st::OutboxDispatcher& dispatcher, const std::function<bool()>& done) {
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (!done() && Clock::now() < deadline) {
      if (dispatcher.dispatch_once() == 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  World world;
};

TEST_F(OutboxTest, RetriesWithExponentialBackoffUntilTheServerAccepts) {
  std::atomic<int> calls{0};
  testing::LocalHttpServer server(
      [&](const testing::ReceivedRequest&) { return ++calls <= 2 ? respond(500) : respond(200); });
  HttpSender sender(server.url("/send"));
  st::DispatcherOptions options;
  options.initial_backoff = std::chrono::milliseconds(40);
  st::OutboxDispatcher dispatcher(*store, sender, options);
  std::string conversation = make_row("r1");
  dispatch_until(dispatcher, [&] { return state_of(conversation) == "sent"; });
  EXPECT_EQ(state_of(conversation), "sent");
  EXPECT_EQ(server.request_count(), 3u);
  EXPECT_EQ(outcomes(conversation), (std::vector<std::string>{"retrying", "retrying"}));
  auto times = sender.times();
  ASSERT_EQ(times.size(), 3u);
  // Delays are jittered within [d/2, d]: d = 40 ms, then 80 ms.
  EXPECT_GE(times[1] - times[0], std::chrono::milliseconds(20));
  EXPECT_GE(times[2] - times[1], std::chrono::milliseconds(40));
  auto body = Json::parse(server.requests()[2].body);
  EXPECT_EQ(body["text"], "Name?");
}

TEST_F(OutboxTest, ClientErrorIsNotRetriedAndIsJournaled) {
  testing::LocalHttpServer server([](const testing::ReceivedRequest&) { return respond(400); });
  HttpSender sender(server.url("/send"));
  st::DispatcherOptions options;
  options.initial_backoff = std::chrono::milliseconds(10);
  st::OutboxDispatcher dispatcher(*store, sender, options);
  std::string conversation = make_row("r2");
  dispatch_until(dispatcher, [&] { return state_of(conversation) == "failed"; });
  for (int i = 0; i < 5; ++i) {
    dispatcher.dispatch_once();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(state_of(conversation), "failed");
  EXPECT_EQ(server.request_count(), 1u);
  EXPECT_EQ(outcomes(conversation), (std::vector<std::string>{"permanent"}));
}

TEST_F(OutboxTest, GivesUpAfterTheConfiguredTimeAndJournalsIt) {
  testing::LocalHttpServer server([](const testing::ReceivedRequest&) { return respond(503); });
  HttpSender sender(server.url("/send"));
  st::DispatcherOptions options;
  options.initial_backoff = std::chrono::milliseconds(20);
  options.give_up_after = std::chrono::milliseconds(300);
  st::OutboxDispatcher dispatcher(*store, sender, options);
  std::string conversation = make_row("r3");
  dispatch_until(dispatcher, [&] { return state_of(conversation) == "failed"; });
  EXPECT_EQ(state_of(conversation), "failed");
  EXPECT_GE(server.request_count(), 2u);
  auto list = outcomes(conversation);
  ASSERT_FALSE(list.empty());
  EXPECT_EQ(list.back(), "gave_up");
  EXPECT_EQ(static_cast<size_t>(std::count(list.begin(), list.end(), "retrying")), list.size() - 1);
}

TEST_F(OutboxTest, MessagesOfOneConversationLeaveInOrderDespiteRetries) {
  Json flow = Json::parse(R"({"format":"flowrt.flow/1","id":"two","start":"one","nodes":[
    {"id":"one","type":"text","text":"one","next":"two"},
    {"id":"two","type":"text","text":"two","next":"ask"},
    {"id":"ask","type":"question","text":"three","save_as":"x"}]})");
  World two = make_world(*store, flow.dump());
  std::atomic<int> calls{0};
  testing::LocalHttpServer server(
      [&](const testing::ReceivedRequest&) { return ++calls == 1 ? respond(503) : respond(200); });
  HttpSender sender(server.url("/send"));
  st::DispatcherOptions options;
  options.initial_backoff = std::chrono::milliseconds(30);
  st::OutboxDispatcher dispatcher(*store, sender, options);
  auto outcome = turns->accept_and_process(message(two, "o", "hi"), st::Delivery::outbox);
  ASSERT_EQ(outcome.replies.size(), 3u);
  dispatch_until(dispatcher, [&] { return state_of(outcome.conversation_id) == "sent,sent,sent"; });
  std::vector<std::string> sent;
  for (const auto& r : server.requests()) sent.push_back(Json::parse(r.body)["text"]);
  EXPECT_EQ(sent, (std::vector<std::string>{"one", "one", "two", "three"}));
}

TEST_F(OutboxTest, AnExpiredClaimOfADeadDispatcherIsSentAgain) {
  testing::LocalHttpServer server([](const testing::ReceivedRequest&) { return respond(200); });
  std::string conversation = make_row("r5");
  // Claim with a short lease straight in SQL, the way dispatch_once does, and walk away.
  scalar(
      "WITH u AS (UPDATE outbox SET next_attempt_at = now() + interval '200 milliseconds', "
      "attempts = attempts + 1 WHERE conversation_id = '" +
      conversation + "' RETURNING 1) SELECT count(*) FROM u");
  HttpSender sender(server.url("/send"));
  st::OutboxDispatcher dispatcher(*store, sender, {});
  EXPECT_EQ(dispatcher.dispatch_once(), 0);  // still leased
  dispatch_until(dispatcher, [&] { return state_of(conversation) == "sent"; });
  EXPECT_EQ(state_of(conversation), "sent");
  EXPECT_EQ(server.request_count(), 1u);
}

TEST(Backoff, GrowsExponentiallyWithJitterAndACap) {
  st::DispatcherOptions options;
  options.initial_backoff = std::chrono::milliseconds(100);
  options.max_backoff = std::chrono::milliseconds(1000);
  EXPECT_EQ(st::backoff_delay(options, 1, 0.0).count(), 50);
  EXPECT_EQ(st::backoff_delay(options, 1, 1.0).count(), 100);
  EXPECT_EQ(st::backoff_delay(options, 3, 1.0).count(), 400);
  EXPECT_EQ(st::backoff_delay(options, 3, 0.0).count(), 200);
  EXPECT_EQ(st::backoff_delay(options, 20, 1.0).count(), 1000);
}

}  // namespace
}  // namespace flowrt::store_tests
