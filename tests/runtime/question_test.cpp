// `question` nodes: every `expect` type through a running flow, retries, exhaustion,
// re-prompting without retry, and timeouts as armed timers (SPEC §2).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/answer.hpp"
#include "tests/runtime/runtime_test_util.hpp"

namespace flowrt::runtime::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A flow that asks one question with `expect` and then says what it stored.
std::shared_ptr<const Flow> ask(const std::string& expect_json) {
  return must_parse_nodes(R"([
    {"id": "q", "type": "question", "text": "Answer?", "save_as": "v", "expect": )" +
                          expect_json + R"(, "next": "done"},
    {"id": "done", "type": "end", "text": "got {{vars.v}}"}])");
}

struct AnswerCase {
  std::string expect;
  std::string answer;
  Json stored;  // null: the answer must be refused
};

void PrintTo(const AnswerCase& c, std::ostream* os) {
  *os << c.expect << " <- \"" << c.answer << "\"";
}

class ExpectTypes : public ::testing::TestWithParam<AnswerCase> {};

TEST_P(ExpectTypes, StoresTheTypedValueOrRefusesTheAnswer) {
  const AnswerCase& c = GetParam();
  Conversation chat(ask(c.expect));
  TurnResult first = chat.message("start");
  ASSERT_EQ(first.state.status, Status::waiting);
  ASSERT_THAT(texts(first), ElementsAre("Answer?"));
  TurnResult result = chat.message(c.answer);
  if (c.stored.is_null()) {
    EXPECT_EQ(result.state.status, Status::waiting) << "answer should be refused";
    EXPECT_FALSE(result.state.vars.contains("v"));
    EXPECT_EQ(result.state.attempts, 1);
    EXPECT_THAT(texts(result), ElementsAre("Answer?"));  // no retry: the prompt again
  } else {
    EXPECT_EQ(result.state.status, Status::ended) << result.state.error;
    ASSERT_TRUE(result.state.vars.contains("v"));
    // Exact JSON type: 1500 must be stored as a number, "1500" would be a different value.
    EXPECT_EQ(result.state.vars["v"].type(), c.stored.type()) << result.state.vars["v"].dump();
    EXPECT_EQ(result.state.vars["v"], c.stored);
  }
}

const Json kRefused;

INSTANTIATE_TEST_SUITE_P(
    Question, ExpectTypes,
    ::testing::Values(
        // text: trimmed, non-empty; min/max bound the length.
        AnswerCase{R"({"type": "text"})", "  Ana Lima  ", "Ana Lima"},
        AnswerCase{R"({"type": "text"})", "   ", kRefused},
        AnswerCase{R"({"type": "text", "min": 2, "max": 4})", "abcde", kRefused},
        AnswerCase{R"({"type": "text", "min": 2, "max": 4})", "abcd", "abcd"},
        // number: integers stay integers, thousands separators, decimals.
        AnswerCase{R"({"type": "number"})", "1,500", 1500},
        AnswerCase{R"({"type": "number"})", "2.75", 2.75},
        AnswerCase{R"({"type": "number"})", "-3", -3},
        AnswerCase{R"({"type": "number"})", "lots", kRefused},
        AnswerCase{R"({"type": "number"})", "12abc", kRefused},
        AnswerCase{R"({"type": "number", "min": 0})", "-5", kRefused},
        AnswerCase{R"({"type": "number", "min": 0, "max": 100})", "100", 100},
        AnswerCase{R"({"type": "number", "min": 0, "max": 100})", "100.5", kRefused},
        // integer
        AnswerCase{R"({"type": "integer"})", "42", 42},
        AnswerCase{R"({"type": "integer"})", " 1,500 ", 1500},
        AnswerCase{R"({"type": "integer"})", "3.5", kRefused},
        AnswerCase{R"({"type": "integer", "max": 10})", "11", kRefused},
        // boolean words, case-insensitive
        AnswerCase{R"({"type": "boolean"})", "Yes", true},
        AnswerCase{R"({"type": "boolean"})", "y", true},
        AnswerCase{R"({"type": "boolean"})", "TRUE", true},
        AnswerCase{R"({"type": "boolean"})", "1", true},
        AnswerCase{R"({"type": "boolean"})", "No", false},
        AnswerCase{R"({"type": "boolean"})", "n", false},
        AnswerCase{R"({"type": "boolean"})", "false", false},
        AnswerCase{R"({"type": "boolean"})", "0", false},
        AnswerCase{R"({"type": "boolean"})", "maybe", kRefused},
        // email: the trimmed address
        AnswerCase{R"({"type": "email"})", "  ana@example.com ", "ana@example.com"},
        AnswerCase{R"({"type": "email"})", "ana.example.com", kRefused},
        AnswerCase{R"({"type": "email"})", "ana@example", kRefused},
        AnswerCase{R"({"type": "email"})", "ana @example.com", kRefused},
        // phone: E.164 after removing punctuation; "00" means international
        AnswerCase{R"({"type": "phone"})", "+55 (11) 91234-5678", "+5511912345678"},
        AnswerCase{R"({"type": "phone"})", "0055 11 91234.5678", "+5511912345678"},
        AnswerCase{R"({"type": "phone"})", "+5511912345678", "+5511912345678"},
        AnswerCase{R"({"type": "phone"})", "+55 11 9123x5678", kRefused},
        AnswerCase{R"({"type": "phone"})", "+1234", kRefused},
        // choice: case-insensitive text, or a position; stores the choice as written
        AnswerCase{R"({"type": "choice", "choices": ["Basic", "Pro Plan"]})", "  pro plan ",
                   "Pro Plan"},
        AnswerCase{R"({"type": "choice", "choices": ["Basic", "Pro Plan"]})", "2", "Pro Plan"},
        AnswerCase{R"({"type": "choice", "choices": ["Basic", "Pro Plan"]})", "1", "Basic"},
        AnswerCase{R"({"type": "choice", "choices": ["Basic", "Pro Plan"]})", "3", kRefused},
        AnswerCase{R"({"type": "choice", "choices": ["Basic", "Pro Plan"]})", "0", kRefused},
        AnswerCase{R"({"type": "choice", "choices": ["Basic", "Pro Plan"]})", "Enterprise",
                   kRefused},
        // regex: the whole answer must match, not a part of it
        AnswerCase{R"({"type": "regex", "pattern": "[A-Z]{3}-[0-9]{3}"})", "ABC-123", "ABC-123"},
        AnswerCase{R"({"type": "regex", "pattern": "[A-Z]{3}-[0-9]{3}"})", "xABC-123", kRefused},
        AnswerCase{R"({"type": "regex", "pattern": "[A-Z]{3}-[0-9]{3}"})", "ABC-1234", kRefused}));

TEST(Question, WithoutExpectAcceptsAnyNonEmptyText) {
  Conversation chat(must_parse_nodes(R"([
    {"id": "q", "type": "question", "text": "Name?", "save_as": "name", "next": "e"},
    {"id": "e", "type": "end", "text": "Hi {{vars.name}}"}])"));
  chat.message("hi");
  EXPECT_THAT(texts(chat.message(" Bea ")), ElementsAre("Hi Bea"));
}

TEST(Question, PromptIsATemplate) {
  Conversation chat(must_parse_nodes(R"json([
    {"id": "q", "type": "question", "text": "{{contact.name}}, your plan? ({{vars.default}})",
     "save_as": "plan"}])json"));
  chat.state.vars = {{"default", "basic"}};
  EXPECT_THAT(texts(chat.message("hi")), ElementsAre("Ana, your plan? (basic)"));
}

std::shared_ptr<const Flow> retry_flow(const std::string& retry_json) {
  return must_parse_nodes(R"([
    {"id": "q", "type": "question", "text": "Budget?", "save_as": "budget",
     "expect": {"type": "number"}, "retry": )" +
                          retry_json + R"(, "next": "ok"},
    {"id": "ok", "type": "end", "text": "ok {{vars.budget}}"},
    {"id": "human", "type": "handoff", "queue": "sales", "text": "A human will help"}])");
}

TEST(Question, InvalidAnswerSendsTheRetryTextAndWaitsAgain) {
  Conversation chat(retry_flow(
      R"({"text": "Numbers only, {{contact.name}}", "max_attempts": 3, "next": "human"})"));
  TurnResult asked = chat.message("hi");
  uint64_t first_wait = asked.state.wait_seq;
  TurnResult retried = chat.message("lots");
  EXPECT_THAT(texts(retried), ElementsAre("Numbers only, Ana"));
  EXPECT_EQ(retried.state.status, Status::waiting);
  EXPECT_EQ(retried.state.node, "q");
  EXPECT_EQ(retried.state.attempts, 1);
  EXPECT_GT(retried.state.wait_seq, first_wait);  // a new wait began
  EXPECT_TRUE(journal_has(retried, "invalid_answer"));
  TurnResult answered = chat.message("700");
  EXPECT_THAT(texts(answered), ElementsAre("ok 700"));
  EXPECT_EQ(answered.state.attempts, 0);
}

TEST(Question, RetriesThenFallsBackToRetryNext) {
  Conversation chat(retry_flow(R"({"text": "Numbers only", "max_attempts": 3, "next": "human"})"));
  chat.message("hi");
  EXPECT_THAT(texts(chat.message("a")), ElementsAre("Numbers only"));
  EXPECT_THAT(texts(chat.message("b")), ElementsAre("Numbers only"));
  // The third invalid answer sends no retry text and moves to retry.next.
  TurnResult third = chat.message("c");
  EXPECT_THAT(texts(third), ElementsAre("A human will help"));
  EXPECT_EQ(third.state.status, Status::handoff);
  EXPECT_EQ(third.state.attempts, 0);
  EXPECT_FALSE(third.state.vars.contains("budget"));
}

TEST(Question, ValidAnswerResetsTheAttemptCount) {
  Conversation chat(must_parse_nodes(R"([
    {"id": "q1", "type": "question", "text": "A?", "save_as": "a", "expect": {"type": "integer"},
     "retry": {"text": "int please", "max_attempts": 2, "next": "fallback"}, "next": "q2"},
    {"id": "q2", "type": "question", "text": "B?", "save_as": "b", "expect": {"type": "integer"},
     "retry": {"text": "int please", "max_attempts": 2, "next": "fallback"}, "next": "done"},
    {"id": "done", "type": "end", "text": "done"},
    {"id": "fallback", "type": "end", "text": "fallback"}])"));
  chat.message("hi");
  chat.message("x");                                                 // q1: 1 invalid
  EXPECT_THAT(texts(chat.message("1")), ElementsAre("B?"));          // valid
  EXPECT_THAT(texts(chat.message("y")), ElementsAre("int please"));  // q2: only 1 invalid
  EXPECT_THAT(texts(chat.message("2")), ElementsAre("done"));
}

TEST(Question, ExhaustionWithoutRetryNextFailsTheRun) {
  Conversation chat(retry_flow(R"({"text": "Numbers only", "max_attempts": 2})"));
  chat.message("hi");
  chat.message("a");
  TurnResult result = chat.message("b");
  EXPECT_THAT(texts(result), IsEmpty());
  EXPECT_EQ(result.state.status, Status::failed);
  EXPECT_THAT(result.state.error, HasSubstr("node \"q\""));
  EXPECT_THAT(result.state.error, HasSubstr("no valid answer after 2 attempts"));
  EXPECT_TRUE(journal_has(result, "error"));
}

TEST(Question, WithoutRetryRepromptsForever) {
  Conversation chat(must_parse_nodes(R"([
    {"id": "q", "type": "question", "text": "Yes or no?", "save_as": "v",
     "expect": {"type": "boolean"}, "next": "e"},
    {"id": "e", "type": "end", "text": "thanks"}])"));
  chat.message("hi");
  for (int i = 0; i < 25; ++i) {
    TurnResult result = chat.message("perhaps");
    ASSERT_THAT(texts(result), ElementsAre("Yes or no?")) << "attempt " << i;
    ASSERT_EQ(result.state.status, Status::waiting);
  }
  EXPECT_THAT(texts(chat.message("yes")), ElementsAre("thanks"));
}

TEST(Question, RetryWithoutMaxAttemptsNeverGivesUp) {
  Conversation chat(retry_flow(R"({"text": "Numbers only", "next": "human"})"));
  chat.message("hi");
  for (int i = 0; i < 10; ++i) {
    ASSERT_THAT(texts(chat.message("no")), ElementsAre("Numbers only")) << "attempt " << i;
  }
  EXPECT_EQ(chat.state.status, Status::waiting);
}

std::shared_ptr<const Flow> timeout_flow() {
  return must_parse_nodes(R"([
    {"id": "q", "type": "question", "text": "Email?", "save_as": "email",
     "expect": {"type": "email"}, "retry": {"text": "Not an email"},
     "timeout": {"after_s": 90, "next": "late"}, "next": "ok"},
    {"id": "ok", "type": "end", "text": "ok"},
    {"id": "late", "type": "end", "text": "Too slow, {{contact.name}}"}])");
}

TEST(QuestionTimeout, WaitingArmsATimerWithFireTimeAndWaitSeq) {
  Conversation chat(timeout_flow());
  int64_t now = chat.clock.now_ms();
  TurnResult result = chat.message("hi");
  ASSERT_TRUE(result.timer.has_value());
  EXPECT_EQ(result.timer->node, "q");
  EXPECT_EQ(result.timer->fire_at_ms, now + 90'000);
  EXPECT_EQ(result.timer->wait_seq, result.state.wait_seq);
  EXPECT_GT(result.state.wait_seq, 0u);
}

TEST(QuestionTimeout, MatchingTimeoutMovesToTimeoutNext) {
  Conversation chat(timeout_flow());
  TurnResult asked = chat.message("hi");
  ASSERT_TRUE(asked.timer.has_value());
  chat.clock.set(asked.timer->fire_at_ms);
  TurnResult fired = chat.timeout(asked.timer->wait_seq);
  EXPECT_THAT(texts(fired), ElementsAre("Too slow, Ana"));
  EXPECT_EQ(fired.state.status, Status::ended);
  EXPECT_TRUE(journal_has(fired, "timeout"));
}

TEST(QuestionTimeout, StaleWaitSeqIsIgnored) {
  Conversation chat(timeout_flow());
  TurnResult asked = chat.message("hi");
  ASSERT_TRUE(asked.timer.has_value());
  // An invalid answer starts a new wait (and a new timer); the old timer is stale.
  chat.clock.advance(30'000);
  TurnResult retried = chat.message("nope");
  ASSERT_TRUE(retried.timer.has_value());
  EXPECT_NE(retried.timer->wait_seq, asked.timer->wait_seq);
  EXPECT_EQ(retried.timer->fire_at_ms, chat.clock.now_ms() + 90'000);

  ConversationState before = chat.state;
  TurnResult stale = chat.timeout(asked.timer->wait_seq);
  EXPECT_THAT(texts(stale), IsEmpty());
  EXPECT_EQ(stale.state.status, Status::waiting);
  EXPECT_EQ(stale.state.node, "q");
  EXPECT_EQ(stale.state.to_json(), before.to_json());
  EXPECT_TRUE(journal_has(stale, "ignored"));
  EXPECT_FALSE(stale.timer.has_value());

  // The current timer still works.
  EXPECT_THAT(texts(chat.timeout(retried.timer->wait_seq)), ElementsAre("Too slow, Ana"));
}

TEST(QuestionTimeout, TimeoutAfterTheQuestionWasAnsweredIsIgnored) {
  Conversation chat(must_parse_nodes(R"([
    {"id": "q1", "type": "question", "text": "One?", "save_as": "a",
     "timeout": {"after_s": 5, "next": "late"}, "next": "q2"},
    {"id": "q2", "type": "question", "text": "Two?", "save_as": "b", "next": "ok"},
    {"id": "ok", "type": "end"},
    {"id": "late", "type": "end", "text": "late"}])"));
  TurnResult asked = chat.message("hi");
  ASSERT_TRUE(asked.timer.has_value());
  TurnResult second = chat.message("first answer");
  EXPECT_THAT(texts(second), ElementsAre("Two?"));
  EXPECT_FALSE(second.timer.has_value());  // q2 has no timeout
  TurnResult stale = chat.timeout(asked.timer->wait_seq);
  EXPECT_THAT(texts(stale), IsEmpty());
  EXPECT_EQ(stale.state.node, "q2");
  EXPECT_EQ(stale.state.status, Status::waiting);
}

TEST(QuestionTimeout, QuestionWithoutTimeoutArmsNoTimer) {
  Conversation chat(retry_flow(R"({"text": "Numbers only"})"));
  EXPECT_FALSE(chat.message("hi").timer.has_value());
}

TEST(AnswerValidation, NormalisePhoneHandlesPrefixesAndPunctuation) {
  EXPECT_EQ(normalise_phone("+1 (415) 555-2671"), "+14155552671");
  EXPECT_EQ(normalise_phone("0044 20 7946 0958"), "+442079460958");
  EXPECT_EQ(normalise_phone(" +49.30.123456 "), "+4930123456");
  EXPECT_EQ(normalise_phone("415 555 2671"), std::nullopt);       // no country code
  EXPECT_EQ(normalise_phone("+0 415 555 2671"), std::nullopt);    // no country starts with 0
  EXPECT_EQ(normalise_phone("+1234567890123456"), std::nullopt);  // 16 digits
  EXPECT_EQ(normalise_phone("+1 415 555 2671 ext 2"), std::nullopt);
}

TEST(AnswerValidation, OverlongAnswersAreRefusedBeforeAnyRegexRuns) {
  Expectation e;
  e.type = Expectation::Type::regex;
  e.compiled = std::regex("a*");
  EXPECT_TRUE(validate_answer(e, std::string(100, 'a')).has_value());
  EXPECT_FALSE(validate_answer(e, std::string(kMaxAnswerLength + 1, 'a')).has_value());
}

}  // namespace
}  // namespace flowrt::runtime::testing
