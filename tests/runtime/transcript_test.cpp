// The transcript runner (SPEC §8) — its steps, canned HTTP, jumps between flow files, and
// above all its own failure messages: a runner that passes a broken flow is worse than none.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "runtime/transcript.hpp"
#include "tests/runtime/runtime_test_util.hpp"

namespace flowrt::runtime::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::testing::StartsWith;

// A scratch folder with flow files and transcript files, removed afterwards.
class Transcripts : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("flowrt-transcripts-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    write("support.json", R"({
      "format": "flowrt.flow/1", "id": "support", "start": "hello",
      "nodes": [
        {"id": "hello", "type": "text", "text": "Hi {{contact.name}}!", "next": "ask"},
        {"id": "ask", "type": "question", "text": "Order number?", "save_as": "order",
         "expect": {"type": "integer"}, "retry": {"text": "Digits only, please."},
         "timeout": {"after_s": 60, "next": "slow"}, "next": "lookup"},
        {"id": "lookup", "type": "api_call", "method": "GET",
         "url": "https://shop.example/orders/{{vars.order}}", "save": {"state": "/state"},
         "save_status": "http_status", "on_error": "human", "next": "route"},
        {"id": "route", "type": "condition",
         "branches": [{"when": {"var": "state", "op": "eq", "value": "lost"}, "next": "human"}],
         "else": "billing"},
        {"id": "billing", "type": "jump", "flow": "billing"},
        {"id": "slow", "type": "end", "text": "Talk later!"},
        {"id": "human", "type": "handoff", "queue": "support", "text": "An agent will help.",
         "next": "bye"},
        {"id": "bye", "type": "end", "text": "Bye!"}
      ]})");
    write("billing.json", R"({
      "format": "flowrt.flow/1", "id": "billing", "start": "b1",
      "nodes": [
        {"id": "b1", "type": "question", "text": "Pay order {{vars.order}} now?", "save_as": "pay",
         "expect": {"type": "boolean"}, "next": "b2"},
        {"id": "b2", "type": "end", "text": "Done ({{flow.id}})."}
      ]})");
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }

  // Writes `test_json` as a transcript file and runs it.
  std::vector<TranscriptOutcome> run(const std::string& test_json) {
    write("case.test.json", test_json);
    return run_transcript_file(dir_ / "case.test.json", TranscriptOptions{});
  }

  TranscriptOutcome run_one(const std::string& test_json) {
    auto outcomes = run(test_json);
    if (outcomes.size() != 1) {
      ADD_FAILURE() << "expected one outcome, got " << outcomes.size();
      return {};
    }
    return outcomes[0];
  }

  fs::path dir_;
};

TEST_F(Transcripts, FullConversationWithHttpJumpAndVarsPasses) {
  TranscriptOutcome outcome = run_one(R"({"flow": "support.json", "contact": {"name": "Ana"},
    "http": [{"method": "GET", "url": "https://shop.example/orders/42", "status": 200,
              "body": {"state": "shipped"}}],
    "steps": [
      {"user": "hi"}, {"bot": "Hi Ana!"}, {"bot": "Order number?"},
      {"user": "forty-two"}, {"bot": "Digits only, please."}, {"status": "waiting"},
      {"user": "42"}, {"bot": "Pay order 42 now?"},
      {"vars": {"order": 42, "state": "shipped", "http_status": 200}},
      {"user": "yes"}, {"bot_matches": "^Done \\(billing\\)\\.$"}, {"status": "ended"}]})");
  EXPECT_TRUE(outcome.passed) << outcome.failure;
}

TEST_F(Transcripts, TimeoutAndResumeStepsDriveTheConversation) {
  auto outcomes = run(R"([
    {"name": "timeout", "flow": "support.json",
     "steps": [{"user": "hi"}, {"timeout": true}, {"bot": "Talk later!"}, {"status": "ended"}]},
    {"name": "resume", "flow": "support.json",
     "http": [{"method": "GET", "url": "https://shop.example/orders/7", "error": "timeout"}],
     "steps": [{"user": "hi"}, {"user": "7"}, {"bot": "An agent will help."},
               {"status": "handoff"}, {"vars": {"http_status": 0}},
               {"resume": true}, {"bot": "Bye!"}, {"status": "ended"}]}])");
  ASSERT_THAT(outcomes, SizeIs(2));
  EXPECT_TRUE(outcomes[0].passed) << outcomes[0].failure;
  EXPECT_THAT(outcomes[0].name, HasSubstr("#1 (timeout)"));
  EXPECT_TRUE(outcomes[1].passed) << outcomes[1].failure;
}

TEST_F(Transcripts, WrongBotStepFailsNamingTheStep) {
  TranscriptOutcome outcome = run_one(R"({"flow": "support.json", "contact": {"name": "Ana"},
    "steps": [{"user": "hi"}, {"bot": "Hi Ana!"}, {"bot": "Your order number?"}]})");
  EXPECT_FALSE(outcome.passed);
  EXPECT_THAT(outcome.failure, StartsWith(R"(step 3 {"bot":"Your order number?"}:)"));
  EXPECT_THAT(outcome.failure,
              HasSubstr(R"(expected bot message "Your order number?", got "Order number?")"));
}

TEST_F(Transcripts, BotStepWithNothingLeftToReadFails) {
  TranscriptOutcome outcome = run_one(R"({"flow": "support.json",
    "steps": [{"user": "hi"}, {"bot_matches": "^Hi"}, {"bot": "Order number?"}, {"bot": "More?"}]})");
  EXPECT_FALSE(outcome.passed);
  EXPECT_THAT(outcome.failure, StartsWith("step 4 "));
  EXPECT_THAT(outcome.failure, HasSubstr("the bot sent nothing more"));
}

TEST_F(Transcripts, BotMatchesMismatchFails) {
  TranscriptOutcome outcome = run_one(R"({"flow": "support.json",
    "steps": [{"user": "hi"}, {"bot_matches": "^Hello"}]})");
  EXPECT_FALSE(outcome.passed);
  EXPECT_THAT(outcome.failure, StartsWith("step 2 "));
  EXPECT_THAT(outcome.failure, HasSubstr(R"(does not match "^Hello")"));
}

TEST_F(Transcripts, StatusAndVarsMismatchesFail) {
  TranscriptOutcome status = run_one(R"({"flow": "support.json",
    "steps": [{"user": "hi"}, {"status": "ended"}]})");
  EXPECT_FALSE(status.passed);
  EXPECT_THAT(status.failure, HasSubstr(R"(expected status "ended", got "waiting")"));

  TranscriptOutcome vars = run_one(R"({"flow": "support.json", "vars": {"order": 1},
    "steps": [{"user": "hi"}, {"vars": {"order": 2}}]})");
  EXPECT_FALSE(vars.passed);
  EXPECT_THAT(vars.failure, StartsWith("step 2 "));
  EXPECT_THAT(vars.failure, HasSubstr(R"(do not contain {"order":2})"));
}

TEST_F(Transcripts, UnmatchedHttpRequestFailsTheTest) {
  // The flow has on_error, so the conversation itself carries on: the runner must still
  // fail the test because the author forgot a canned response.
  TranscriptOutcome outcome = run_one(R"({"flow": "support.json",
    "steps": [{"user": "hi"}, {"user": "42"}, {"status": "handoff"}]})");
  EXPECT_FALSE(outcome.passed);
  EXPECT_THAT(outcome.failure, HasSubstr("no canned response: GET https://shop.example/orders/42"));
}

TEST_F(Transcripts, ErrorMatchesExpectsAFailedRun) {
  write("loop.json", R"({"format": "flowrt.flow/1", "id": "loop", "start": "a", "nodes": [
      {"id": "a", "type": "text", "text": "again", "next": "a"}]})");
  TranscriptOutcome failed = run_one(R"({"flow": "loop.json",
    "steps": [{"user": "hi"}, {"status": "failed"}, {"error_matches": "per-turn limit"}]})");
  EXPECT_TRUE(failed.passed) << failed.failure;

  TranscriptOutcome not_failed = run_one(R"({"flow": "support.json",
    "steps": [{"user": "hi"}, {"error_matches": "anything"}]})");
  EXPECT_FALSE(not_failed.passed);
  EXPECT_THAT(not_failed.failure, HasSubstr("expected a failed run"));
}

TEST_F(Transcripts, FlowThatDoesNotLoadFailsWithItsProblems) {
  write("broken.json", R"({"format": "flowrt.flow/1", "id": "broken", "start": "a", "nodes": [
      {"id": "a", "type": "text", "text": "x", "next": "b"}]})");
  TranscriptOutcome outcome = run_one(R"({"flow": "broken.json", "steps": [{"user": "hi"}]})");
  EXPECT_FALSE(outcome.passed);
  EXPECT_THAT(outcome.failure, HasSubstr("does not load"));
  EXPECT_THAT(outcome.failure, HasSubstr(R"(/nodes/0/next: no node has id "b")"));
}

TEST_F(Transcripts, UnknownStepIsRejected) {
  TranscriptOutcome outcome = run_one(R"({"flow": "support.json",
    "steps": [{"user": "hi"}, {"agent": "hello"}]})");
  EXPECT_FALSE(outcome.passed);
  EXPECT_THAT(outcome.failure, HasSubstr(R"(unknown step "agent")"));
}

TEST_F(Transcripts, TimeoutStepWithoutAWaitingTimeoutFails) {
  TranscriptOutcome outcome = run_one(R"({"flow": "billing.json",
    "steps": [{"user": "hi"}, {"timeout": true}]})");
  EXPECT_FALSE(outcome.passed);
  EXPECT_THAT(outcome.failure, HasSubstr("no question with a timeout is waiting"));
}

// Regression: the runner kept the timer of an earlier question after the conversation moved
// on to a question without a timeout, so a `{"timeout": true}` step "fired" the stale timer,
// the executor ignored it, and the step passed although no question with a timeout waited.
TEST_F(Transcripts, TimeoutStepAfterTheTimedQuestionWasAnsweredFails) {
  TranscriptOutcome outcome = run_one(R"({"flow": "support.json",
    "http": [{"method": "GET", "url": "https://shop.example/orders/42", "status": 200,
              "body": {"state": "shipped"}}],
    "steps": [{"user": "hi"}, {"user": "42"}, {"bot": "Pay order 42 now?"}, {"timeout": true}]})");
  EXPECT_FALSE(outcome.passed) << "the timeout step passed although billing's question has no "
                                  "timeout (the runner fired the stale timer of \"ask\")";
  EXPECT_THAT(outcome.failure, HasSubstr("no question with a timeout is waiting"));
}

TEST_F(Transcripts, MalformedTranscriptFileFails) {
  write("bad.test.json", "{\"flow\": ");
  auto outcomes = run_transcript_file(dir_ / "bad.test.json", TranscriptOptions{});
  ASSERT_THAT(outcomes, SizeIs(1));
  EXPECT_FALSE(outcomes[0].passed);
  EXPECT_THAT(outcomes[0].failure, HasSubstr("malformed JSON"));

  auto missing = run_transcript_file(dir_ / "nope.test.json", TranscriptOptions{});
  ASSERT_THAT(missing, SizeIs(1));
  EXPECT_FALSE(missing[0].passed);
}

}  // namespace
}  // namespace flowrt::runtime::testing
