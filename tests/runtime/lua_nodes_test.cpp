// Lua in every node type (SPEC §2, §3), through the real sandbox pool and script runner.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/canned_http.hpp"
#include "runtime/scripting.hpp"
#include "tests/runtime/runtime_test_util.hpp"

namespace flowrt::runtime::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class LuaNodes : public ::testing::Test {
 protected:
  std::unique_ptr<Conversation> conversation(const std::string& nodes_json,
                                             HttpClient* http = nullptr) {
    auto c = std::make_unique<Conversation>(must_parse_nodes(nodes_json), http);
    c->scripts = &runner;
    c->tenant.id = "tenant-a";
    return c;
  }
  sandbox::SandboxPool pool;
  ScriptRunner runner{pool, sandbox::Limits{}};
};

TEST_F(LuaNodes, TextScriptReturningAnArraySendsEachString) {
  auto c = conversation(R"J([{"id": "t", "type": "text", "text": "unused",
      "script": "return {'Hi ' .. contact.name, 'from ' .. tenant.name}"}])J");
  EXPECT_THAT(texts(c->message("hi")), ElementsAre("Hi Ana", "from Acme"));
}

TEST_F(LuaNodes, TextScriptReturningNothingSendsTheTemplate) {
  auto c = conversation(R"J([{"id": "t", "type": "text", "text": "plain {{vars.n}}",
      "script": "vars.n = 7"}])J");
  EXPECT_THAT(texts(c->message("hi")), ElementsAre("plain 7"));
}

TEST_F(LuaNodes, TextScriptOfTheWrongShapeFailsTheRun) {
  auto c =
      conversation(R"J([{"id": "t", "type": "text", "text": "x", "script": "return {a = 1}"}])J");
  c->message("hi");
  EXPECT_EQ(c->state.status, Status::failed);
  EXPECT_THAT(c->state.error, HasSubstr("must return a string, an array of strings or nothing"));
}

TEST_F(LuaNodes, QuestionScriptRefusesWithItsOwnMessageThenReplacesTheValue) {
  auto c = conversation(R"J([
    {"id": "q", "type": "question", "text": "Age?", "save_as": "age",
     "expect": {"type": "integer"},
     "script": "if answer < 18 then return false, 'Too young' end return answer * 2", "next": "e"},
    {"id": "e", "type": "end"}])J");
  c->message("hi");
  EXPECT_THAT(texts(c->message("12")), ElementsAre("Too young"));
  EXPECT_EQ(c->state.attempts, 1);
  c->message("30");
  EXPECT_EQ(c->state.status, Status::ended);
  EXPECT_EQ(c->state.vars["age"], 60);
}

TEST_F(LuaNodes, ConditionWhenStringReadsVarsAndMessage) {
  auto c = conversation(R"J([
    {"id": "s", "type": "script", "script": "vars.budget = 1500", "next": "c"},
    {"id": "c", "type": "condition",
     "branches": [{"when": "vars.budget >= 1000 and message.text == 'go'", "next": "big"}],
     "else": "small"},
    {"id": "big", "type": "end", "text": "big"},
    {"id": "small", "type": "end", "text": "small"}])J");
  EXPECT_THAT(texts(c->message("go")), ElementsAre("big"));
}

TEST_F(LuaNodes, ConditionWhenStringCannotChangeVars) {
  auto c = conversation(R"J([
    {"id": "c", "type": "condition", "branches": [{"when": "(function() vars.keep = 2 return true end)()", "next": "e"}]},
    {"id": "e", "type": "end"}])J");
  c->state.vars = Json{{"keep", 1}};
  c->message("x");
  EXPECT_EQ(c->state.vars, (Json{{"keep", 1}}));
  EXPECT_EQ(c->state.status, Status::ended);
}

TEST_F(LuaNodes, ApiCallScriptSeesTheResponse) {
  CannedHttpClient http(Json::parse(
      R"J([{"method": "GET", "url": "https://crm.example/o/1", "status": 200, "body": {"state": "shipped"}}])J"));
  auto c = conversation(R"J([
    {"id": "a", "type": "api_call", "url": "https://crm.example/o/1",
     "script": "vars.order = response.body.state .. '/' .. response.status", "next": "e"},
    {"id": "e", "type": "end"}])J",
                        &http);
  c->message("x");
  EXPECT_EQ(c->state.vars["order"], "shipped/200");
}

TEST_F(LuaNodes, LogLinesGoToTheJournal) {
  auto c = conversation(R"J([{"id": "s", "type": "script", "script": "log('seen', 42, true)"}])J");
  TurnResult result = c->message("x");
  bool found = false;
  for (const auto& e : result.journal) {
    if (e.type == "log" && e.data["line"] == "seen 42 true" && e.data["node"] == "s") found = true;
  }
  EXPECT_TRUE(found);
}

TEST_F(LuaNodes, NowComesFromTheExecutorsClock) {
  auto c = conversation(R"J([{"id": "s", "type": "script", "script": "vars.t = now()"}])J");
  c->message("x");
  EXPECT_EQ(c->state.vars["t"], c->clock.now_ms());
}

TEST_F(LuaNodes, ScriptOnAHandoffRunsBeforeTheNoteIsRendered) {
  auto c = conversation(R"J([{"id": "h", "type": "handoff", "queue": "sales",
      "note": "score {{vars.score}}", "script": "vars.score = 9"}])J");
  c->message("x");
  EXPECT_EQ(c->state.status, Status::handoff);
  EXPECT_EQ(c->state.handoff_note, "score 9");
}

TEST_F(LuaNodes, AScriptOverItsLimitFailsOnlyThatRunNamingNodeAndCause) {
  auto looping =
      conversation(R"J([{"id": "spin", "type": "script", "script": "while true do end"}])J");
  looping->message("x");
  EXPECT_EQ(looping->state.status, Status::failed);
  EXPECT_THAT(looping->state.error, HasSubstr("node \"spin\""));
  EXPECT_THAT(looping->state.error, HasSubstr("instruction limit"));
  EXPECT_THAT(looping->state.error, HasSubstr("line 1"));

  auto fine = conversation(R"J([{"id": "s", "type": "script", "script": "vars.ok = true"}])J");
  fine->message("x");
  EXPECT_EQ(fine->state.vars["ok"], true);
}

TEST_F(LuaNodes, ARuntimeErrorKeepsVarsUnchanged) {
  auto c =
      conversation(R"J([{"id": "s", "type": "script", "script": "vars.x = 2\nerror('boom')"}])J");
  c->state.vars = Json{{"x", 1}};
  c->message("x");
  EXPECT_EQ(c->state.status, Status::failed);
  EXPECT_THAT(c->state.error, HasSubstr("line 2"));
  EXPECT_EQ(c->state.vars["x"], 1);
}

TEST_F(LuaNodes, TenantLimitsLowerTheServers) {
  sandbox::Limits tenant_limits;
  tenant_limits.instructions = 1000;
  auto c =
      conversation(R"J([{"id": "s", "type": "script", "script": "for i = 1, 100000 do end"}])J");
  c->tenant.script_limits = &tenant_limits;
  c->message("x");
  EXPECT_EQ(c->state.status, Status::failed);
  EXPECT_THAT(c->state.error, HasSubstr("instruction limit of 1000"));
}

}  // namespace
}  // namespace flowrt::runtime::testing
