// `text` nodes and templates (SPEC §2 "Templates"): every root a template can read, nested
// vars, and missing values rendering as "".
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/template.hpp"
#include "tests/runtime/runtime_test_util.hpp"

namespace flowrt::runtime::testing {
namespace {

using ::testing::ElementsAre;

TEST(TextNode, SendsTextAndFollowsNextToTheEnd) {
  Conversation chat(must_parse_nodes(R"([
    {"id": "a", "type": "text", "text": "one", "next": "b"},
    {"id": "b", "type": "text", "text": "two"}])"));
  TurnResult result = chat.message("hi");
  EXPECT_THAT(texts(result), ElementsAre("one", "two"));
  // A node without `next` ends the run.
  EXPECT_EQ(result.state.status, Status::ended);
  EXPECT_EQ(result.nodes_executed, 2);
  EXPECT_FALSE(result.timer.has_value());
}

TEST(TextNode, RendersEveryTemplateRoot) {
  Conversation chat(must_parse_nodes(R"([
    {"id": "a", "type": "text",
     "text": "{{contact.name}}|{{contact.id}}|{{contact.phone}}|{{message.text}}|{{flow.id}}|{{tenant.name}}"}
  ])",
                                     "greeting-flow"));
  chat.tenant.name = "Acme Corp";
  TurnResult result = chat.message("hello there");
  EXPECT_THAT(texts(result),
              ElementsAre("Ana|contact-1|+5511912345678|hello there|greeting-flow|Acme Corp"));
}

TEST(TextNode, RendersNestedVarsAndJsonValues) {
  Conversation chat(must_parse_nodes(R"([
    {"id": "a", "type": "text",
     "text": "{{vars.address.city}} {{ vars.items.1.name }} {{vars.count}} {{vars.ratio}} {{vars.vip}} {{vars.tags}}"}
  ])"));
  chat.state.vars = Json::parse(R"({"address": {"city": "Recife"},
      "items": [{"name": "first"}, {"name": "second"}], "count": 3, "ratio": 2.5, "vip": true,
      "tags": ["a", "b"]})");
  EXPECT_THAT(texts(chat.message("x")), ElementsAre(R"(Recife second 3 2.5 true ["a","b"])"));
}

TEST(TextNode, MissingValuesRenderAsEmpty) {
  Conversation chat(must_parse_nodes(R"([
    {"id": "a", "type": "text",
     "text": "[{{vars.nope}}][{{vars.address.zip}}][{{vars.null_value}}][{{message.data.order.id}}][{{contact.phone}}]"}
  ])"));
  chat.state.vars = Json::parse(R"({"address": {"city": "Recife"}, "null_value": null})");
  chat.contact.phone = "";
  EXPECT_THAT(texts(chat.message("x")), ElementsAre("[][][][][]"));
}

TEST(TextNode, RendersMessageData) {
  Conversation chat(must_parse_nodes(R"([
    {"id": "a", "type": "text", "text": "order {{message.data.order.id}} by {{message.data.buyer}}"}
  ])"));
  TurnResult result = chat.message("", Json::parse(R"({"order": {"id": 991}, "buyer": "Bea"})"));
  EXPECT_THAT(texts(result), ElementsAre("order 991 by Bea"));
}

TEST(TextNode, MessageTemplatesAreEmptyWhenTheTurnHasNoMessage) {
  Conversation chat(must_parse_nodes(R"([
    {"id": "a", "type": "text", "text": "[{{message.text}}]"}])"));
  TurnResult result = chat.start();
  EXPECT_THAT(texts(result), ElementsAre("[]"));
  EXPECT_EQ(result.state.status, Status::ended);
}

TEST(TextNode, TextIsJournaledAsMessageOut) {
  Conversation chat(must_parse_nodes(R"([{"id": "a", "type": "text", "text": "hey"}])"));
  TurnResult result = chat.message("hi");
  ASSERT_GE(result.journal.size(), 3u);
  EXPECT_EQ(result.journal[0].type, "message_in");
  EXPECT_EQ(result.journal[0].data["text"], "hi");
  EXPECT_EQ(result.journal[0].at_ms, chat.clock.now_ms());
  bool found = false;
  for (const auto& e : result.journal) {
    if (e.type == "message_out" && e.data["text"] == "hey") found = true;
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(result.journal.back().type, "ended");
}

TEST(Template, SecretsOnlyRenderWhereAllowed) {
  Template with_secrets;
  std::string error;
  ASSERT_TRUE(Template::compile("Bearer {{secrets.token}}", true, with_secrets, error)) << error;
  Json secrets{{"token", "s3cr3t"}};
  TemplateScope scope;
  scope.secrets = &secrets;
  EXPECT_EQ(with_secrets.render(scope), "Bearer s3cr3t");

  Template without;
  EXPECT_FALSE(Template::compile("Bearer {{secrets.token}}", false, without, error));
  EXPECT_NE(error.find("secrets can only be used in api_call"), std::string::npos) << error;
}

TEST(Template, LiteralTextIsKeptVerbatim) {
  Template t;
  std::string error;
  ASSERT_TRUE(Template::compile("no placeholders { here }", false, t, error));
  EXPECT_TRUE(t.is_literal());
  EXPECT_EQ(t.render({}), "no placeholders { here }");
}

}  // namespace
}  // namespace flowrt::runtime::testing
