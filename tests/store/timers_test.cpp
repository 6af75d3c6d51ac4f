#include <thread>

#include "tests/store/fixture.hpp"

namespace flowrt::store_tests {
namespace {

// Answering a question with a timeout drops its timer: all of the conversation's timers when
// the conversation ends, all but the current question's when it waits again. Both turns
// write the same kinds of rows with different statements, on one connection here; each
// must run as written (and the old timer be gone, the new question have none).
TEST_F(StoreTest, AnsweredQuestionsDropTheirTimersWhetherTheConversationEndsOrWaits) {
  st::StoreOptions options;
  options.database_url = database_url();
  options.pool_size = 1;
  st::Store one_connection(options);
  st::TurnProcessor on_one(one_connection, *executor);
  World ends = make_world(*store, kTimeoutFlow);
  World waits = make_world(*store, R"({"format":"flowrt.flow/1","id":"two","start":"ask1",
    "nodes":[
    {"id":"ask1","type":"question","text":"First?","save_as":"a",
     "timeout":{"after_s":60,"next":"ask2"},"next":"ask2"},
    {"id":"ask2","type":"question","text":"Second?","save_as":"b","next":"ask2"}]})");
  for (const auto& [world, status] :
       {std::pair{&ends, runtime::Status::ended}, std::pair{&waits, runtime::Status::waiting}}) {
    auto first = on_one.accept_and_process(message(*world, "c", "hi"), st::Delivery::outbox);
    ASSERT_EQ(first.kind, st::TurnOutcome::Kind::processed) << first.error;
    EXPECT_EQ(scalar("SELECT count(*) FROM timers WHERE tenant_id = '" + world->tenant + "'"), 1);
    auto answer = on_one.accept_and_process(message(*world, "c", "Ann"), st::Delivery::outbox);
    ASSERT_EQ(answer.kind, st::TurnOutcome::Kind::processed) << answer.error;
    EXPECT_EQ(answer.status, status);
    EXPECT_EQ(scalar("SELECT count(*) FROM timers WHERE tenant_id = '" + world->tenant + "'"), 0);
  }
}

TEST_F(StoreTest, TimersFireOnceAcrossTwoProcesses) {
  World world = make_world(*store, kTimeoutFlow);
  constexpr int kConversations = 12;
  std::vector<std::string> conversations;
  for (int i = 0; i < kConversations; ++i) {
    auto outcome = turns->accept_and_process(message(world, "t" + std::to_string(i), "hi"),
                                             st::Delivery::outbox);
    ASSERT_EQ(outcome.status, runtime::Status::waiting);
    conversations.push_back(outcome.conversation_id);
  }
  EXPECT_EQ(scalar("SELECT count(*) FROM timers WHERE tenant_id = '" + world.tenant + "'"),
            kConversations);
  // Both processes poll from before the timers are due (after_s = 1) until well after.
  Helper other({"timers", database_url(), "2500"});
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(2500);
  while (std::chrono::steady_clock::now() < until) {
    turns->fire_due_timers(8, clock.now_ms());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(other.read_line(30000).rfind("fired ", 0), 0u);
  EXPECT_EQ(other.wait(), 0);
  // Anything the other process converted but could not process yet (contact busy) is in
  // the inbox; run it here.
  turns->process_pending(100);
  for (const auto& id : conversations) {
    auto journal = events(world.tenant, id);
    int timeouts = 0;
    for (const auto& e : journal) timeouts += e.type == "timeout";
    EXPECT_EQ(timeouts, 1) << id;
    EXPECT_EQ(store->get_conversation(world.tenant, id)->state.status, runtime::Status::ended);
    EXPECT_EQ(texts_of(journal, "message_out").back(), "Too late");
  }
  EXPECT_EQ(scalar("SELECT count(*) FROM timers WHERE tenant_id = '" + world.tenant + "'"), 0);
  EXPECT_EQ(scalar("SELECT count(*) FROM inbox WHERE tenant_id = '" + world.tenant +
                   "' AND kind = 'timeout'"),
            kConversations);
}

TEST_F(StoreTest, AnsweringCancelsTheTimerAndALateTimerIsIgnored) {
  World world = make_world(*store, kTimeoutFlow);
  auto first = turns->accept_and_process(message(world, "ann", "hi"), st::Delivery::outbox);
  ASSERT_EQ(first.status, runtime::Status::waiting);
  EXPECT_EQ(
      scalar("SELECT count(*) FROM timers WHERE conversation_id = '" + first.conversation_id + "'"),
      1);
  auto answer = turns->accept_and_process(message(world, "ann", "Ann"), st::Delivery::outbox);
  EXPECT_EQ(answer.status, runtime::Status::ended);
  EXPECT_EQ(
      scalar("SELECT count(*) FROM timers WHERE conversation_id = '" + first.conversation_id + "'"),
      0);
  EXPECT_EQ(turns->fire_due_timers(100, clock.now_ms() + 10'000), 0);
}

}  // namespace
}  // namespace flowrt::store_tests
