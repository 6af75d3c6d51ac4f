// Validation of flow documents (SPEC §2 "Validation"): every problem class, reported all
// at once with exact JSON pointers, and the warnings for unreachable nodes and cycles.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/flow.hpp"
#include "tests/runtime/runtime_test_util.hpp"

namespace flowrt::runtime::testing {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

Problems problems_of(const Json& document, const ParseOptions& options = {}) {
  return parse_flow(document, options).problems;
}

Problems problems_of_nodes(const std::string& nodes_json) {
  return problems_of(flow_document(nodes_json));
}

TEST(Validation, ValidFlowParsesWithoutProblems) {
  ParseResult result = parse_flow(flow_document(R"([
    {"id": "hi", "type": "text", "text": "Hi", "next": "bye", "label": "greeting",
     "ui": {"x": 1, "y": 2}},
    {"id": "bye", "type": "end"}])"));
  ASSERT_NE(result.flow, nullptr) << describe(result.problems);
  EXPECT_THAT(result.problems, IsEmpty());
  EXPECT_EQ(result.flow->id, "test-flow");
  EXPECT_EQ(result.flow->start, "hi");
  ASSERT_EQ(result.flow->nodes().size(), 2u);
  EXPECT_EQ(result.flow->find("bye")->type, "end");
  EXPECT_EQ(result.flow->find("hi")->label, "greeting");
  EXPECT_EQ(result.flow->find("nope"), nullptr);
}

TEST(Validation, MalformedJsonNamesLineAndColumn) {
  ParseResult result = parse_flow_text("{\n  \"format\": \"flowrt.flow/1\",\n  \"id\": ,\n}");
  EXPECT_EQ(result.flow, nullptr);
  ASSERT_THAT(result.problems, SizeIs(1));
  EXPECT_EQ(result.problems[0].path, "");
  EXPECT_THAT(result.problems[0].message, HasSubstr("malformed JSON at line 3, column 9"));
}

TEST(Validation, MalformedJsonOnFirstLineCountsColumnsFromOne) {
  ParseResult result = parse_flow_text(R"({"a": 1,})");
  ASSERT_THAT(result.problems, SizeIs(1));
  EXPECT_THAT(result.problems[0].message, HasSubstr("line 1, column 9"));
}

TEST(Validation, DocumentMustBeAnObject) {
  EXPECT_THAT(problems_of(Json::array()), ElementsAre(ProblemAt("", "must be a JSON object")));
}

TEST(Validation, UnknownFormatIsRejected) {
  Json doc = flow_document(R"([{"id": "a", "type": "end"}])");
  doc["format"] = "flowrt.flow/2";
  EXPECT_THAT(problems_of(doc),
              ElementsAre(ProblemAt("/format", "unknown format \"flowrt.flow/2\"")));
  doc.erase("format");
  EXPECT_THAT(problems_of(doc), ElementsAre(ProblemAt("", "missing \"format\"")));
}

TEST(Validation, MissingTopLevelFieldsAreEachReported) {
  Json doc = {{"format", "flowrt.flow/1"}};
  EXPECT_THAT(problems_of(doc),
              UnorderedElementsAre(ProblemAt("", "missing required field \"id\""),
                                   ProblemAt("", "missing required field \"start\""),
                                   ProblemAt("", "missing required field \"nodes\"")));
}

TEST(Validation, UnknownTopLevelFieldSuggestsTheKnownOne) {
  Json doc = flow_document(R"([{"id": "a", "type": "end"}])");
  doc["descripton"] = "typo";
  EXPECT_THAT(problems_of(doc),
              ElementsAre(ProblemAt("/descripton", "(did you mean \"description\"?)")));
}

TEST(Validation, DuplicateNodeIdNamesTheFirstUse) {
  EXPECT_THAT(
      problems_of_nodes(R"([
    {"id": "a", "type": "text", "text": "1", "next": "b"},
    {"id": "b", "type": "end"},
    {"id": "a", "type": "end"}])"),
      ElementsAre(ProblemAt("/nodes/2/id", "duplicate node id \"a\" (first used at /nodes/0)")));
}

TEST(Validation, MalformedIdsAreRejected) {
  std::string long_id(65, 'x');
  EXPECT_THAT(errors_of(problems_of_nodes(R"([
    {"id": "ok_id-1", "type": "text", "text": "1", "next": "has space"},
    {"id": "has space", "type": "text", "text": "2", "next": ")" +
                                          long_id + R"("},
    {"id": ")" + long_id + R"(", "type": "text", "text": "3", "next": "ünïcode"},
    {"id": "ünïcode", "type": "end"}])")),
              ElementsAre(ProblemAt("/nodes/1/id", "node id \"has space\" must be 1-64 letters"),
                          ProblemAt("/nodes/2/id", "must be 1-64 letters"),
                          ProblemAt("/nodes/3/id", "must be 1-64 letters")));
  Json doc = flow_document(R"([{"id": "a", "type": "end"}])");
  doc["id"] = "my flow";
  EXPECT_THAT(problems_of(doc), ElementsAre(ProblemAt("/id", "flow id \"my flow\" must be 1-64")));
}

TEST(Validation, DanglingReferencesSuggestTheClosestId) {
  Json doc = flow_document(R"([
    {"id": "welcome", "type": "text", "text": "Hi", "next": "ask_bugdet"},
    {"id": "ask_budget", "type": "question", "text": "Budget?", "save_as": "budget",
     "retry": {"max_attempts": 2, "next": "humam"},
     "timeout": {"after_s": 10, "next": "zzzzzz"}, "next": "route"},
    {"id": "route", "type": "condition",
     "branches": [{"when": {"var": "budget", "op": "exists"}, "next": "crn"}], "else": "byee"},
    {"id": "crm", "type": "api_call", "url": "https://crm.example/x", "on_error": "humn",
     "next": "human"},
    {"id": "human", "type": "handoff", "next": "bye"},
    {"id": "bye", "type": "end"}])");
  doc["start"] = "welcom";
  EXPECT_THAT(
      problems_of(doc),
      UnorderedElementsAre(
          ProblemAt("/start", "no node has id \"welcom\" (did you mean \"welcome\"?)"),
          ProblemAt("/nodes/0/next",
                    "no node has id \"ask_bugdet\" (did you mean \"ask_budget\"?)"),
          ProblemAt("/nodes/1/retry/next", "no node has id \"humam\" (did you mean \"human\"?)"),
          ProblemAt("/nodes/1/timeout/next", "no node has id \"zzzzzz\""),
          ProblemAt("/nodes/2/branches/0/next", "no node has id \"crn\" (did you mean \"crm\"?)"),
          ProblemAt("/nodes/2/else", "no node has id \"byee\" (did you mean \"bye\"?)"),
          ProblemAt("/nodes/3/on_error", "no node has id \"humn\" (did you mean \"human\"?)")));
}

TEST(Validation, FarOffIdGetsNoSuggestion) {
  Problems problems = problems_of_nodes(R"([
    {"id": "a", "type": "text", "text": "x", "next": "completely_different"},
    {"id": "b", "type": "end"}])");
  ASSERT_THAT(problems, ElementsAre(ProblemAt("/nodes/0/next", "no node has id")));
  EXPECT_THAT(problems[0].message, Not(HasSubstr("did you mean")));
}

TEST(Validation, UnknownNodeTypeSuggestsAndListsKnownTypes) {
  EXPECT_THAT(problems_of_nodes(R"([{"id": "a", "type": "handof"}])"),
              ElementsAre(ProblemAt("/nodes/0/type",
                                    "unknown node type \"handof\" (did you mean "
                                    "\"handoff\"?); known types: text, question")));
}

TEST(Validation, MissingRequiredFieldsOfEachNodeType) {
  EXPECT_THAT(errors_of(problems_of_nodes(R"([
        {"id": "t"},
        {"type": "end"},
        {"id": "text", "type": "text", "next": "q"},
        {"id": "q", "type": "question", "next": "c"},
        {"id": "c", "type": "condition"},
        {"id": "api", "type": "api_call"},
        {"id": "s", "type": "script"},
        {"id": "j", "type": "jump"}])")),
              UnorderedElementsAre(
                  ProblemAt("/nodes/0", "missing required field \"type\""),
                  ProblemAt("/nodes/1", "missing required field \"id\""),
                  ProblemAt("/nodes/2", "missing required field \"text\" for a text node"),
                  ProblemAt("/nodes/3", "missing required field \"text\" for a question node"),
                  ProblemAt("/nodes/3", "missing required field \"save_as\" for a question node"),
                  ProblemAt("/nodes/4", "a condition needs \"branches\""),
                  ProblemAt("/nodes/5", "missing required field \"url\" for an api_call node"),
                  ProblemAt("/nodes/6", "missing required field \"script\" for a script node"),
                  ProblemAt("/nodes/7", "missing required field \"flow\"")));
}

TEST(Validation, WrongFieldTypesAreReportedWithTheirPath) {
  EXPECT_THAT(errors_of(problems_of_nodes(R"([
        {"id": "a", "type": "text", "text": 42, "next": 7, "label": [], "ui": "left"},
        {"id": "q", "type": "question", "text": "?", "save_as": 3, "expect": "number",
         "retry": {"max_attempts": "three"}, "next": "api"},
        {"id": "api", "type": "api_call", "url": "https://x.example", "headers": [],
         "timeout_ms": 99999, "save": {"id": 5}, "save_status": true},
        {"id": "n", "type": 5}])")),
              UnorderedElementsAre(
                  ProblemAt("/nodes/0/text", "must be a string (a template)"),
                  ProblemAt("/nodes/0/next", "next must be a string, not a number"),
                  ProblemAt("/nodes/0/label", "label must be a string, not an array"),
                  ProblemAt("/nodes/0/ui", "ui must be an object"),
                  ProblemAt("/nodes/1/save_as", "save_as must be a string, not a number"),
                  ProblemAt("/nodes/1/expect", "expect must be an object, not a string"),
                  ProblemAt("/nodes/1/retry/max_attempts", "must be a whole number"),
                  ProblemAt("/nodes/2/headers", "headers must be an object, not an array"),
                  ProblemAt("/nodes/2/timeout_ms", "must be between 1 and 30000, not 99999"),
                  ProblemAt("/nodes/2/save/id", "must be a JSON pointer"),
                  ProblemAt("/nodes/2/save_status", "save_status must be a string, not a boolean"),
                  ProblemAt("/nodes/3/type", "type must be a string, not a number")));
}

TEST(Validation, InvalidExpectTypeAndChoicesAreRejected) {
  EXPECT_THAT(
      errors_of(problems_of_nodes(R"([
    {"id": "a", "type": "question", "text": "?", "save_as": "x", "expect": {"type": "date"},
     "next": "b"},
    {"id": "b", "type": "question", "text": "?", "save_as": "y",
     "expect": {"type": "choice", "choices": ["ok", 3]}, "next": "c"},
    {"id": "c", "type": "question", "text": "?", "save_as": "z",
     "expect": {"type": "number", "min": 10, "max": 1, "step": 2}}])")),
      UnorderedElementsAre(ProblemAt("/nodes/0/expect/type", "unknown expect type \"date\""),
                           ProblemAt("/nodes/1/expect/choices/1", "non-empty string"),
                           ProblemAt("/nodes/2/expect", "min is greater than expect.max"),
                           ProblemAt("/nodes/2/expect/step", "unknown field \"step\"")));
}

TEST(Validation, InvalidRegexesAreRejectedInExpectAndMatches) {
  EXPECT_THAT(
      errors_of(problems_of_nodes(R"([
    {"id": "q", "type": "question", "text": "Code?", "save_as": "code",
     "expect": {"type": "regex", "pattern": "([A-Z]+"}, "next": "c"},
    {"id": "c", "type": "condition", "branches": [
       {"when": {"all": [{"var": "code", "op": "exists"},
                         {"var": "code", "op": "matches", "value": "*x"}]}, "next": "e"}],
     "else": "e"},
    {"id": "e", "type": "end"}])")),
      UnorderedElementsAre(
          ProblemAt("/nodes/0/expect/pattern", "invalid regular expression \"([A-Z]+\""),
          ProblemAt("/nodes/1/branches/0/when/all/1/value", "invalid regular expression \"*x\"")));
}

TEST(Validation, UnknownFieldsAreRejectedOnEveryNodeType) {
  EXPECT_THAT(errors_of(problems_of_nodes(R"([
        {"id": "a", "type": "text", "text": "x", "nxt": "b"},
        {"id": "b", "type": "end", "colour": "red"},
        {"id": "c", "type": "question", "text": "?", "save_as": "v", "retry": {"tries": 2}},
        {"id": "d", "type": "condition", "branches": [
          {"when": {"var": "v", "op": "eq", "valu": 1}, "next": "b", "extra": 1}], "else": "b"},
        {"id": "e", "type": "handoff", "queue": "q", "agent": "x"}])")),
              UnorderedElementsAre(
                  ProblemAt("/nodes/0/nxt",
                            "unknown field \"nxt\" for a text node (did you mean \"next\"?)"),
                  ProblemAt("/nodes/1/colour", "unknown field \"colour\""),
                  ProblemAt("/nodes/2/retry/tries", "unknown field \"tries\" in retry"),
                  ProblemAt("/nodes/3/branches/0/when/valu", "(did you mean \"value\"?)"),
                  ProblemAt("/nodes/3/branches/0/when", "operator \"eq\" needs a \"value\""),
                  ProblemAt("/nodes/3/branches/0/extra", "unknown field \"extra\" in a branch"),
                  ProblemAt("/nodes/4/agent", "unknown field \"agent\" for a handoff node")));
}

TEST(Validation, ConditionOperatorsAreChecked) {
  EXPECT_THAT(errors_of(problems_of_nodes(R"([
    {"id": "c", "type": "condition", "branches": [
      {"when": {"var": "v", "op": "gte_", "value": 1}, "next": "e"},
      {"when": {"var": "v", "op": "exists", "value": 1}, "next": "e"},
      {"when": {"any": []}, "next": "e"},
      {"when": {"not": {"op": "eq", "value": 1}}, "next": "e"}], "next": "e"},
    {"id": "e", "type": "end"}])")),
              UnorderedElementsAre(
                  ProblemAt("/nodes/0/branches/0/when/op",
                            "unknown operator \"gte_\" (did you mean \"gte\"?)"),
                  ProblemAt("/nodes/0/branches/1/when/value", "takes no \"value\""),
                  ProblemAt("/nodes/0/branches/2/when/any", "non-empty array"),
                  ProblemAt("/nodes/0/branches/3/when/not/var", "a condition needs \"var\""),
                  ProblemAt("/nodes/0/next", "remove \"next\"")));
}

TEST(Validation, TemplatesWithUnknownPathsAreRejected) {
  EXPECT_THAT(errors_of(problems_of_nodes(R"([
    {"id": "a", "type": "text", "text": "Hi {{contact.email}}", "next": "b"},
    {"id": "b", "type": "text", "text": "Token {{secrets.token}}", "next": "c"},
    {"id": "c", "type": "end", "text": "Bye {{vars.name"}])")),
              UnorderedElementsAre(
                  ProblemAt("/nodes/0/text", "{{contact.email}} is not a known template path"),
                  ProblemAt("/nodes/1/text", "secrets can only be used in api_call"),
                  ProblemAt("/nodes/2/text", "is never closed")));
}

TEST(Validation, JumpToMissingFlowIsAnErrorOnlyWhenFlowsAreKnown) {
  Json doc = flow_document(R"([
    {"id": "a", "type": "jump", "flow": "billing"},
    {"id": "b", "type": "jump", "flow": "support", "node": "start_here"}])");
  ParseOptions options;
  options.flow_exists = [](const std::string& id) { return id == "support"; };
  EXPECT_THAT(
      errors_of(problems_of(doc, options)),
      ElementsAre(ProblemAt("/nodes/0/flow", "jump to flow \"billing\", which does not exist")));
  // Without a way to know the tenant's flows, jump targets are not checked.
  EXPECT_THAT(errors_of(problems_of(doc)), IsEmpty());
}

// Lua arrived with the sandbox: Lua that does not compile is a validation problem with the
// path of the field and the line of the mistake.
TEST(Validation, LuaThatDoesNotCompileIsReportedWithItsPath) {
  ParseResult result = parse_flow(flow_document(R"([
    {"id": "a", "type": "text", "text": "x", "script": "vars.x = = 1", "next": "b"},
    {"id": "b", "type": "script", "script": "vars.y = 2\nif then", "next": "c"},
    {"id": "c", "type": "condition",
     "branches": [{"when": "vars.budget >=", "next": "e"}], "else": "e"},
    {"id": "e", "type": "end"}])"));
  EXPECT_EQ(result.flow, nullptr);
  EXPECT_THAT(result.problems,
              UnorderedElementsAre(ProblemAt("/nodes/0/script", "Lua does not compile: line 1"),
                                   ProblemAt("/nodes/1/script", "Lua does not compile: line 2"),
                                   ProblemAt("/nodes/2/branches/0/when", "Lua does not compile")));
}

TEST(Validation, LuaThatCompilesIsAccepted) {
  ParseResult result = parse_flow(flow_document(R"([
    {"id": "c", "type": "condition",
     "branches": [{"when": "vars.budget >= 1000 and contact.phone ~= ''", "next": "e"}],
     "else": "e"},
    {"id": "e", "type": "end", "script": "vars.done = true"}])"));
  EXPECT_NE(result.flow, nullptr) << describe(result.problems);
  EXPECT_TRUE(result.flow && result.flow->uses_lua());
}

TEST(Validation, AllProblemsAreReportedAtOnceInOneDocument) {
  Json doc = flow_document(R"([
    {"id": "a", "type": "text", "text": "x", "next": "bb"},
    {"id": "a", "type": "texx"},
    {"id": "q", "type": "question", "text": "?", "save_as": "v",
     "expect": {"type": "regex", "pattern": "["}, "next": "a"},
    {"id": "e", "type": "end", "next": "a"}])");
  doc["format"] = "nope";
  ParseResult result = parse_flow(doc);
  EXPECT_EQ(result.flow, nullptr);
  EXPECT_THAT(
      result.problems,
      UnorderedElementsAre(ProblemAt("/format", "unknown format"),
                           ProblemAt("/nodes/1/id", "duplicate node id"),
                           ProblemAt("/nodes/1/type", "unknown node type \"texx\""),
                           ProblemAt("/nodes/2/expect/pattern", "invalid regular expression"),
                           ProblemAt("/nodes/3/next", "an end node ends the conversation"),
                           ProblemAt("/nodes/0/next", "no node has id \"bb\"")));
  for (const auto& p : result.problems) EXPECT_TRUE(p.is_error()) << p.path;
}

TEST(Validation, UnreachableNodeIsAWarningNotAnError) {
  ParseResult result = parse_flow(flow_document(R"([
    {"id": "a", "type": "text", "text": "x", "next": "b"},
    {"id": "b", "type": "end"},
    {"id": "orphan", "type": "text", "text": "never", "next": "b"}])"));
  ASSERT_NE(result.flow, nullptr);
  EXPECT_THAT(
      result.problems,
      ElementsAre(AllOf(ProblemAt("/nodes/2", "node \"orphan\" is unreachable from start \"a\""),
                        Not(IsError()))));
}

TEST(Validation, NodesReachedOnlyThroughRetryTimeoutOrErrorAreReachable) {
  ParseResult result = parse_flow(flow_document(R"([
    {"id": "q", "type": "question", "text": "?", "save_as": "v",
     "retry": {"max_attempts": 2, "next": "r"}, "timeout": {"after_s": 5, "next": "t"},
     "next": "api"},
    {"id": "api", "type": "api_call", "url": "https://x.example", "on_error": "err", "next": "c"},
    {"id": "c", "type": "condition", "branches": [{"when": {"var": "v", "op": "exists"}, "next": "br"}],
     "else": "el"},
    {"id": "r", "type": "end"}, {"id": "t", "type": "end"}, {"id": "err", "type": "end"},
    {"id": "br", "type": "end"}, {"id": "el", "type": "end"}])"));
  ASSERT_NE(result.flow, nullptr);
  EXPECT_THAT(result.problems, IsEmpty()) << describe(result.problems);
}

TEST(Validation, QuestionFreeCycleIsWarned) {
  ParseResult result = parse_flow(flow_document(R"([
    {"id": "a", "type": "text", "text": "x", "next": "b"},
    {"id": "b", "type": "condition",
     "branches": [{"when": {"var": "done", "op": "exists"}, "next": "e"}], "else": "a"},
    {"id": "e", "type": "end"}])"));
  ASSERT_NE(result.flow, nullptr);
  EXPECT_THAT(
      result.problems,
      ElementsAre(AllOf(ProblemAt("/nodes/0", "nodes \"a\", \"b\" form a cycle with no question"),
                        Not(IsError()))));
}

TEST(Validation, SelfLoopIsAQuestionFreeCycle) {
  ParseResult result = parse_flow(flow_document(R"([
    {"id": "a", "type": "text", "text": "x", "next": "a"}])"));
  ASSERT_NE(result.flow, nullptr);
  EXPECT_THAT(result.problems, ElementsAre(ProblemAt("/nodes/0", "form a cycle with no question")));
}

TEST(Validation, CycleThroughAQuestionIsNotWarned) {
  ParseResult result = parse_flow(flow_document(R"([
    {"id": "a", "type": "text", "text": "x", "next": "q"},
    {"id": "q", "type": "question", "text": "again?", "save_as": "v", "next": "a"}])"));
  ASSERT_NE(result.flow, nullptr);
  EXPECT_THAT(result.problems, IsEmpty()) << describe(result.problems);
}

TEST(Validation, CycleThroughAHandoffIsNotWarned) {
  ParseResult result = parse_flow(flow_document(R"([
    {"id": "a", "type": "text", "text": "x", "next": "h"},
    {"id": "h", "type": "handoff", "queue": "support", "next": "a"}])"));
  ASSERT_NE(result.flow, nullptr);
  EXPECT_THAT(result.problems, IsEmpty()) << describe(result.problems);
}

}  // namespace
}  // namespace flowrt::runtime::testing
