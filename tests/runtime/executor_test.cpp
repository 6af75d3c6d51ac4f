// The turn loop itself: the per-turn node limit, events a conversation ignores, how a run
// starts, and the ConversationState JSON round trip.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/runtime/runtime_test_util.hpp"

namespace flowrt::runtime::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

std::shared_ptr<const Flow> loop_flow() {
  return must_parse_nodes(R"([
    {"id": "a", "type": "text", "text": "a", "next": "b"},
    {"id": "b", "type": "text", "text": "b", "next": "a"}])");
}

TEST(NodeLimit, QuestionFreeLoopFailsAfterExactlyTheLimit) {
  ExecutorOptions options;
  options.max_nodes_per_turn = 7;
  Conversation chat(loop_flow(), nullptr, options);
  TurnResult result = chat.message("hi");
  EXPECT_EQ(result.nodes_executed, 7);
  EXPECT_THAT(texts(result), ElementsAre("a", "b", "a", "b", "a", "b", "a"));
  EXPECT_EQ(result.state.status, Status::failed);
  EXPECT_THAT(result.state.error,
              HasSubstr("stopped after 7 nodes in one turn (the per-turn limit)"));
  EXPECT_THAT(result.state.error, HasSubstr("last node \"b\""));
  EXPECT_TRUE(journal_has(result, "error"));
}

TEST(NodeLimit, DefaultLimitIs200) {
  Conversation chat(loop_flow());
  TurnResult result = chat.message("hi");
  EXPECT_EQ(result.nodes_executed, 200);
  EXPECT_THAT(result.messages, SizeIs(200));
  EXPECT_THAT(result.state.error, HasSubstr("stopped after 200 nodes"));
}

TEST(NodeLimit, TurnWithinTheLimitIsUnaffected) {
  ExecutorOptions options;
  options.max_nodes_per_turn = 3;
  Conversation chat(must_parse_nodes(R"([
    {"id": "a", "type": "text", "text": "1", "next": "b"},
    {"id": "b", "type": "text", "text": "2", "next": "c"},
    {"id": "c", "type": "question", "text": "3", "save_as": "v", "next": "d"},
    {"id": "d", "type": "text", "text": "4", "next": "e"},
    {"id": "e", "type": "text", "text": "5", "next": "f"},
    {"id": "f", "type": "end", "text": "6"}])"),
                    nullptr, options);
  TurnResult first = chat.message("hi");
  EXPECT_EQ(first.nodes_executed, 3);
  EXPECT_EQ(first.state.status, Status::waiting);
  // The limit counts per turn, not per conversation.
  TurnResult second = chat.message("x");
  EXPECT_EQ(second.nodes_executed, 3);
  EXPECT_THAT(texts(second), ElementsAre("4", "5", "6"));
  EXPECT_EQ(second.state.status, Status::ended);
}

TEST(Executor, EndedConversationIgnoresEvents) {
  Conversation chat(must_parse_nodes(R"([{"id": "bye", "type": "end", "text": "bye"}])"));
  chat.message("hi");
  ASSERT_EQ(chat.state.status, Status::ended);
  ConversationState before = chat.state;
  for (auto result :
       {chat.message("hello again"), chat.timeout(before.wait_seq), chat.resume(), chat.start()}) {
    EXPECT_THAT(texts(result), IsEmpty());
    EXPECT_EQ(result.nodes_executed, 0);
    EXPECT_EQ(result.state.to_json(), before.to_json());
    EXPECT_TRUE(journal_has(result, "ignored"));
  }
}

TEST(Executor, FailedConversationIgnoresEvents) {
  Conversation chat(must_parse_nodes(R"([
    {"id": "q", "type": "question", "text": "?", "save_as": "v", "expect": {"type": "integer"},
     "retry": {"max_attempts": 1}}])"));
  chat.message("hi");
  chat.message("not a number");
  ASSERT_EQ(chat.state.status, Status::failed);
  ConversationState before = chat.state;
  TurnResult result = chat.message("5");
  EXPECT_THAT(texts(result), IsEmpty());
  EXPECT_EQ(result.state.to_json(), before.to_json());
  EXPECT_FALSE(result.state.vars.contains("v"));
  EXPECT_TRUE(journal_has(result, "ignored"));
}

TEST(Executor, StartEventRunsTheFlowWithoutAMessage) {
  Conversation chat(must_parse_nodes(R"([
    {"id": "a", "type": "text", "text": "Welcome {{contact.name}}", "next": "q"},
    {"id": "q", "type": "question", "text": "?", "save_as": "v"}])"));
  TurnResult result = chat.start();
  EXPECT_THAT(texts(result), ElementsAre("Welcome Ana", "?"));
  EXPECT_EQ(result.state.status, Status::waiting);
  EXPECT_FALSE(journal_has(result, "message_in"));
}

TEST(Executor, TimeoutOrResumeBeforeTheStartIsIgnored) {
  Conversation chat(must_parse_nodes(R"([{"id": "a", "type": "text", "text": "x"}])"));
  for (auto result : {chat.timeout(0), chat.resume()}) {
    EXPECT_THAT(texts(result), IsEmpty());
    EXPECT_FALSE(result.state.started());
    EXPECT_TRUE(journal_has(result, "ignored"));
  }
}

TEST(Executor, InitialVarsAreVisibleAndKept) {
  Conversation chat(must_parse_nodes(R"([
    {"id": "q", "type": "question", "text": "Plan {{vars.plan}}?", "save_as": "answer"}])"));
  chat.state.vars = {{"plan", "pro"}};
  chat.message("hi");
  chat.message("yes");
  EXPECT_EQ(chat.state.vars, (Json{{"plan", "pro"}, {"answer", "yes"}}));
}

TEST(Executor, WaitingOnANodeTheFlowLacksFails) {
  Conversation chat(
      must_parse_nodes(R"([{"id": "q", "type": "question", "text": "?", "save_as": "v"}])"));
  chat.state.status = Status::waiting;
  chat.state.node = "removed_question";
  TurnResult result = chat.message("x");
  EXPECT_EQ(result.state.status, Status::failed);
  EXPECT_THAT(result.state.error, HasSubstr("removed_question"));
}

TEST(Executor, NullFlowFails) {
  ManualClock clock;
  Executor executor({&clock, nullptr, nullptr});
  TurnResult result = executor.run_turn(TurnInput{});
  EXPECT_EQ(result.state.status, Status::failed);
  EXPECT_FALSE(result.state.error.empty());
}

TEST(ConversationStateJson, RoundTripsEveryField) {
  ConversationState state;
  state.flow_id = "lead";
  state.flow_version = 3;
  state.node = "ask_budget";
  state.status = Status::handoff;
  state.vars = Json::parse(R"({"budget": 1500, "tags": ["a"], "nested": {"x": null}})");
  state.attempts = 2;
  state.wait_seq = 12345678901234ULL;
  state.handoff_queue = "sales";
  state.handoff_note = "hot lead";
  state.error = "none";
  Json json = state.to_json();
  ConversationState back = ConversationState::from_json(json);
  EXPECT_EQ(back.flow_id, "lead");
  EXPECT_EQ(back.flow_version, 3);
  EXPECT_EQ(back.node, "ask_budget");
  EXPECT_EQ(back.status, Status::handoff);
  EXPECT_EQ(back.vars, state.vars);
  EXPECT_EQ(back.attempts, 2);
  EXPECT_EQ(back.wait_seq, 12345678901234ULL);
  EXPECT_EQ(back.handoff_queue, "sales");
  EXPECT_EQ(back.handoff_note, "hot lead");
  EXPECT_EQ(back.error, "none");
  EXPECT_EQ(back.to_json(), json);
  EXPECT_EQ(json["status"], "handoff");
}

TEST(ConversationStateJson, StateSurvivesBetweenTurnsThroughJson) {
  Conversation chat(must_parse_nodes(R"([
    {"id": "q", "type": "question", "text": "Budget?", "save_as": "budget",
     "expect": {"type": "number"}, "retry": {"text": "number!", "max_attempts": 2, "next": "h"},
     "next": "e"},
    {"id": "e", "type": "end", "text": "ok"},
    {"id": "h", "type": "end", "text": "escalated"}])"));
  chat.message("hi");
  chat.message("lots");  // attempts = 1
  chat.state = ConversationState::from_json(Json::parse(chat.state.to_json().dump()));
  EXPECT_THAT(texts(chat.message("still lots")), ElementsAre("escalated"));
}

TEST(ConversationStateJson, FromJsonRejectsMalformedStates) {
  for (const char* text : {R"([])", R"("waiting")", R"({"status": "paused"})", R"({"vars": []})",
                           R"({"flow_id": 5})", R"({"attempts": "two"})", R"({"wait_seq": "x"})"}) {
    EXPECT_THROW(ConversationState::from_json(Json::parse(text)), std::invalid_argument) << text;
  }
}

TEST(ConversationStateJson, StatusNamesRoundTrip) {
  for (Status s :
       {Status::active, Status::waiting, Status::handoff, Status::ended, Status::failed}) {
    EXPECT_EQ(parse_status(to_string(s)), s);
  }
  EXPECT_EQ(parse_status("Waiting"), std::nullopt);
}

}  // namespace
}  // namespace flowrt::runtime::testing
