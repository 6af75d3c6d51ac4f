// `handoff`, `jump` and `end` nodes (SPEC §2).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/runtime/runtime_test_util.hpp"

namespace flowrt::runtime::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::shared_ptr<const Flow> handoff_flow() {
  return must_parse_nodes(R"([
    {"id": "ask", "type": "question", "text": "Budget?", "save_as": "budget",
     "expect": {"type": "number"}, "next": "human"},
    {"id": "human", "type": "handoff", "queue": "sales",
     "text": "Connecting you, {{contact.name}}…", "note": "Budget {{vars.budget}} from {{contact.phone}}",
     "next": "after"},
    {"id": "after", "type": "end", "text": "Back with the bot"},
    {"id": "survey", "type": "end", "text": "Rate us"}])");
}

TEST(Handoff, SetsStatusQueueAndRenderedNote) {
  Conversation chat(handoff_flow());
  chat.message("hi");
  TurnResult result = chat.message("2500");
  EXPECT_THAT(texts(result), ElementsAre("Connecting you, Ana…"));
  EXPECT_EQ(result.state.status, Status::handoff);
  EXPECT_EQ(result.state.node, "human");
  EXPECT_EQ(result.state.handoff_queue, "sales");
  EXPECT_EQ(result.state.handoff_note, "Budget 2500 from +5511912345678");
  EXPECT_TRUE(journal_has(result, "handoff"));
  EXPECT_FALSE(result.timer.has_value());
}

TEST(Handoff, DefaultQueueAndNoTextSendsNothing) {
  Conversation chat(must_parse_nodes(R"([{"id": "h", "type": "handoff"}])"));
  TurnResult result = chat.message("hi");
  EXPECT_THAT(texts(result), IsEmpty());
  EXPECT_EQ(result.state.status, Status::handoff);
  EXPECT_EQ(result.state.handoff_queue, "default");
}

TEST(Handoff, BotStaysSilentWhileWithAnAgentButStoresMessages) {
  Conversation chat(handoff_flow());
  chat.message("hi");
  chat.message("2500");
  for (const char* text : {"hello?", "anyone there?"}) {
    TurnResult result = chat.message(text);
    EXPECT_THAT(texts(result), IsEmpty()) << text;
    EXPECT_EQ(result.state.status, Status::handoff);
    EXPECT_EQ(result.state.handoff_queue, "sales");
    EXPECT_EQ(result.nodes_executed, 0);
    ASSERT_FALSE(result.journal.empty());
    EXPECT_EQ(result.journal[0].type, "message_in");  // kept for the agent
    EXPECT_EQ(result.journal[0].data["text"], text);
  }
}

TEST(Handoff, ResumeContinuesAtNext) {
  Conversation chat(handoff_flow());
  chat.message("hi");
  chat.message("2500");
  TurnResult result = chat.resume();
  EXPECT_THAT(texts(result), ElementsAre("Back with the bot"));
  EXPECT_EQ(result.state.status, Status::ended);
  EXPECT_EQ(result.state.handoff_queue, "");
  EXPECT_EQ(result.state.handoff_note, "");
  EXPECT_TRUE(journal_has(result, "resume"));
}

TEST(Handoff, ResumeAtANamedNode) {
  Conversation chat(handoff_flow());
  chat.message("hi");
  chat.message("2500");
  EXPECT_THAT(texts(chat.resume("survey")), ElementsAre("Rate us"));
  EXPECT_EQ(chat.state.status, Status::ended);
}

TEST(Handoff, ResumeAtAnUnknownNodeIsIgnored) {
  Conversation chat(handoff_flow());
  chat.message("hi");
  chat.message("2500");
  TurnResult result = chat.resume("no_such_node");
  EXPECT_THAT(texts(result), IsEmpty());
  EXPECT_EQ(result.state.status, Status::handoff);
  EXPECT_TRUE(journal_has(result, "ignored"));
}

TEST(Handoff, ResumeWhenNotInHandoffIsIgnored) {
  Conversation chat(handoff_flow());
  chat.message("hi");  // waiting on the question
  TurnResult result = chat.resume("survey");
  EXPECT_THAT(texts(result), IsEmpty());
  EXPECT_EQ(result.state.status, Status::waiting);
  EXPECT_EQ(result.state.node, "ask");
}

TEST(Handoff, WithoutNextResumeEndsTheConversation) {
  Conversation chat(must_parse_nodes(R"([{"id": "h", "type": "handoff", "queue": "q"}])"));
  chat.message("hi");
  TurnResult result = chat.resume();
  EXPECT_EQ(result.state.status, Status::ended);
}

class Jump : public ::testing::Test {
 protected:
  void SetUp() override {
    resolver.add(must_parse_nodes(R"([
      {"id": "billing_start", "type": "text", "text": "Billing for {{vars.customer}}", "next": "ask_invoice"},
      {"id": "ask_invoice", "type": "question", "text": "Invoice number?", "save_as": "invoice",
       "expect": {"type": "integer"}, "next": "thanks"},
      {"id": "thanks", "type": "end", "text": "Invoice {{vars.invoice}} for {{vars.customer}} in {{flow.id}}"}
    ])",
                                  "billing"),
                 /*version=*/4);
  }
  std::shared_ptr<const Flow> main_flow(const std::string& jump_fields) {
    return must_parse_nodes(R"([
      {"id": "hello", "type": "question", "text": "Your name?", "save_as": "customer", "next": "go"},
      {"id": "go", "type": "jump", )" +
                                jump_fields + R"(}])",
                            "main");
  }
  MapFlowResolver resolver;
};

TEST_F(Jump, ContinuesAtTheOtherFlowsStartWithVars) {
  Conversation chat(main_flow(R"("flow": "billing")"));
  chat.tenant.flows = &resolver;
  chat.message("hi");
  TurnResult result = chat.message("Bea");
  EXPECT_THAT(texts(result), ElementsAre("Billing for Bea", "Invoice number?"));
  EXPECT_EQ(result.state.status, Status::waiting);
  EXPECT_EQ(result.state.flow_id, "billing");
  EXPECT_EQ(result.state.flow_version, 4);
  EXPECT_EQ(result.state.node, "ask_invoice");
  EXPECT_TRUE(journal_has(result, "jump"));
  // The next turn runs in the flow the state names.
  EXPECT_THAT(texts(chat.message("42")), ElementsAre("Invoice 42 for Bea in billing"));
  EXPECT_EQ(chat.state.status, Status::ended);
}

TEST_F(Jump, ContinuesAtANamedNode) {
  Conversation chat(main_flow(R"("flow": "billing", "node": "ask_invoice")"));
  chat.tenant.flows = &resolver;
  chat.message("hi");
  TurnResult result = chat.message("Bea");
  EXPECT_THAT(texts(result), ElementsAre("Invoice number?"));
  EXPECT_EQ(result.state.node, "ask_invoice");
}

TEST_F(Jump, MissingFlowFailsTheRun) {
  Conversation chat(main_flow(R"("flow": "shipping")"));
  chat.tenant.flows = &resolver;
  chat.message("hi");
  TurnResult result = chat.message("Bea");
  EXPECT_EQ(result.state.status, Status::failed);
  EXPECT_THAT(result.state.error, HasSubstr("node \"go\" (jump)"));
  EXPECT_THAT(result.state.error, HasSubstr("jump to flow \"shipping\""));
  EXPECT_EQ(result.state.flow_id, "main");
}

TEST_F(Jump, MissingNodeInTheOtherFlowFailsTheRun) {
  Conversation chat(main_flow(R"("flow": "billing", "node": "nowhere")"));
  chat.tenant.flows = &resolver;
  chat.message("hi");
  TurnResult result = chat.message("Bea");
  EXPECT_EQ(result.state.status, Status::failed);
  EXPECT_THAT(result.state.error, HasSubstr("has no node \"nowhere\""));
}

TEST_F(Jump, WithoutAFlowResolverFails) {
  Conversation chat(main_flow(R"("flow": "billing")"));
  chat.message("hi");
  TurnResult result = chat.message("Bea");
  EXPECT_EQ(result.state.status, Status::failed);
  EXPECT_THAT(result.state.error, HasSubstr("jump to flow \"billing\""));
}

TEST(End, SendsItsTextAndEnds) {
  Conversation chat(must_parse_nodes(R"([
    {"id": "bye", "type": "end", "text": "Bye {{contact.name}}"}])"));
  TurnResult result = chat.message("hi");
  EXPECT_THAT(texts(result), ElementsAre("Bye Ana"));
  EXPECT_EQ(result.state.status, Status::ended);
  EXPECT_TRUE(journal_has(result, "ended"));
}

TEST(End, WithoutTextEndsSilently) {
  Conversation chat(must_parse_nodes(R"([
    {"id": "q", "type": "question", "text": "?", "save_as": "v", "next": "bye"},
    {"id": "bye", "type": "end"}])"));
  chat.message("hi");
  TurnResult result = chat.message("x");
  EXPECT_THAT(texts(result), IsEmpty());
  EXPECT_EQ(result.state.status, Status::ended);
}

}  // namespace
}  // namespace flowrt::runtime::testing
