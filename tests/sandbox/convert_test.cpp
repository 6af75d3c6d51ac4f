// JSON <-> Lua value rules (docs/scripting.md, "Values").
#include <string>
#include <vector>

#include "tests/sandbox/sandbox_test_support.hpp"

namespace flowrt::sandbox::testing {
namespace {

Result with_vars(const std::string& source, const json& vars) {
  Environment env;
  env.vars = &vars;
  return run_once(source, env);
}

void expect_bad_value(const Result& r, const std::string& fragment) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->kind, ErrorKind::bad_value) << r.error->message;
  EXPECT_NE(r.error->message.find(fragment), std::string::npos) << r.error->message;
}

TEST(Convert, IntegersAndFloatsKeepTheirSubtype) {
  json vars = {{"i", 3}, {"f", 3.5}, {"g", 2.0}};
  Result r = with_vars(
      "return math.type(vars.i), math.type(vars.f), math.type(vars.g), vars.i, vars.f", vars);
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.values[0], "integer");
  EXPECT_EQ(r.values[1], "float");
  EXPECT_EQ(r.values[2], "float");
  EXPECT_TRUE(r.values[3].is_number_integer());
  EXPECT_TRUE(r.values[4].is_number_float());
  EXPECT_EQ(r.values[4], 3.5);
}

TEST(Convert, IntegralLuaFloatStaysFloat) {
  Result r = run_once("return 2.0, 7 // 2, 7 / 2");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.values[0].is_number_float());
  EXPECT_EQ(r.values[0].dump(), "2.0");
  EXPECT_TRUE(r.values[1].is_number_integer());
  EXPECT_EQ(r.values[2], 3.5);
}

TEST(Convert, HugeUnsignedBecomesFloat) {
  json vars = {{"u", 18446744073709551615ULL}};
  Result r = with_vars("return math.type(vars.u)", vars);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.values[0], "float");
}

TEST(Convert, ArraysAndObjectsRoundTripIncludingEmptyOnes) {
  json vars = {{"empty_array", json::array()},
               {"empty_object", json::object()},
               {"list", {1, "two", 3.5, true}},
               {"nested", {{"a", {{"b", json::array({json::object()})}}}}}};
  Result r = with_vars("return vars", vars);
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.vars, vars);
  EXPECT_EQ(r.values[0], vars);
}

TEST(Convert, EmptyLuaTableIsAnObjectAndSequenceIsAnArray) {
  Result r = run_once("return {}, {1, 2, 3}, {a = 1}");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.values[0].dump(), "{}");
  EXPECT_EQ(r.values[1].dump(), "[1,2,3]");
  EXPECT_EQ(r.values[2].dump(), "{\"a\":1}");
}

TEST(Convert, ArrayEmptiedByTheScriptStaysAnArray) {
  json vars = {{"list", {1, 2}}};
  Result r = with_vars("vars.list[1] = nil\nvars.list[2] = nil", vars);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.vars["list"].dump(), "[]");
}

TEST(Convert, HolesBecomeNullAndNullInArrayBecomesHole) {
  json vars = {{"a", {1, nullptr, 3}}};
  Result r = with_vars("return vars.a[2] == nil, #vars.a == 3 or #vars.a == 1, {1, nil, 3}", vars);
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.values[0], true);
  EXPECT_EQ(r.values[1], true);
  EXPECT_EQ(r.values[2].dump(), "[1,null,3]");
  EXPECT_EQ(r.vars["a"].dump(), "[1,null,3]");
}

TEST(Convert, NullInObjectIsAnAbsentKey) {
  json vars = {{"x", nullptr}, {"y", 1}};
  Result r = with_vars("return vars.x == nil", vars);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.values[0], true);
  EXPECT_EQ(r.vars, (json{{"y", 1}}));
}

TEST(Convert, TooSparseArrayIsABadValue) {
  expect_bad_value(run_once("return {[1] = 1, [1000] = 2}"),
                   "sparse array (largest key 1000, 2 elements)");
}

TEST(Convert, MixedKeysAreABadValue) {
  expect_bad_value(run_once("return {1, a = 2}"), "table mixes array keys and object keys");
}

TEST(Convert, NonStringKeysAreABadValue) {
  expect_bad_value(run_once("return {[true] = 1}"), "table with a boolean key");
  expect_bad_value(run_once("return {[1.5] = 1}"), "not a positive integer");
  expect_bad_value(run_once("return {[0] = 1}"), "not a positive integer");
}

TEST(Convert, NanAndInfinityAreBadValues) {
  expect_bad_value(run_once("return 0/0"), "NaN or infinity");
  expect_bad_value(run_once("return {x = -math.huge}"),
                   "return value 1.x: cannot convert NaN or infinity");
}

TEST(Convert, Utf8PassesUnchanged) {
  json vars = {{"s", "h\xC3\xA9llo \xF0\x9F\x8C\x8D"}};
  Result r = with_vars("return vars.s, #vars.s, utf8.len(vars.s), 'ol\\u{E1}'", vars);
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.values[0], vars["s"]);
  EXPECT_EQ(r.values[1], 11);
  EXPECT_EQ(r.values[2], 7);
  EXPECT_EQ(r.values[3], "ol\xC3\xA1");
}

TEST(Convert, InvalidUtf8IsABadValue) {
  expect_bad_value(run_once("return 'a\\xff'"), "string is not valid UTF-8");
  expect_bad_value(run_once("return {['\\xc0\\x80'] = 1}"), "object key is not valid UTF-8");
}

TEST(Convert, ScriptFunctionsAndCyclesAreNamedInTheError) {
  expect_bad_value(run_once("return 1, {f = {g = string.len}}"),
                   "return value 2.f.g: cannot convert a function to JSON");
  json vars = json::object();
  expect_bad_value(with_vars("vars.me = vars", vars), "vars.me: table contains a cycle");
}

TEST(Convert, SharedTablesThatAreNotCyclesAreFine) {
  Result r = run_once("local t = {1}\nreturn {a = t, b = t}");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.values[0].dump(), "{\"a\":[1],\"b\":[1]}");
}

TEST(Convert, InputDeeperThanTheLimitIsABadValue) {
  json deep = 1;
  for (int i = 0; i < 70; ++i) deep = json::array({deep});
  json vars = {{"deep", deep}};
  Result r = with_vars("return 1", vars);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->kind, ErrorKind::bad_value);
  EXPECT_NE(r.error->message.find("nested deeper than 64 levels"), std::string::npos);
  Limits limits;
  limits.json_depth = 100;
  Environment env;
  env.vars = &vars;
  EXPECT_TRUE(run_once("return 1", env, limits).ok());
}

TEST(Convert, ReadOnlyGlobalDeeperThanTheLimitFailsWhenRead) {
  json deep = 1;
  for (int i = 0; i < 70; ++i) deep = json::array({deep});
  Environment env;
  env.add("answer", deep);
  EXPECT_TRUE(run_once("return 1", env).ok());  // converted on first read only
  Result r = run_once("local ok = pcall(function() return answer end)\nreturn ok", env);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->kind, ErrorKind::bad_value);
  EXPECT_EQ(r.error->message, "line 1: global 'answer' is nested deeper than 64 levels");
}

TEST(Convert, MetatablesAreIgnoredWhenConverting) {
  Result r = run_once(
      "return setmetatable({a = 1}, {__index = function() error('never') end, __pairs = error})");
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.values[0], (json{{"a", 1}}));
}

TEST(Convert, ReadOnlyGlobalsConvertBackToTheirValue) {
  StandardGlobals g;
  Result r = run_once("return contact, message.data.items, {c = contact}", g.environment());
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.values[0], g.contact);
  EXPECT_EQ(r.values[1], g.message["data"]["items"]);
  EXPECT_EQ(r.values[2]["c"], g.contact);
}

TEST(Convert, JsonEncodeDecodeUseTheSameRules) {
  Result r = run_once(
      "local v = json.decode('{\"a\":[1,2.5,\"x\",true,[]],\"b\":{},\"n\":null}')\n"
      "return json.encode(v), math.type(v.a[1]), math.type(v.a[2]), getmetatable(v.a),\n"
      "  json.encode(json.decode('[]')), json.encode({}), v.n == nil");
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(json::parse(r.values[0].get<std::string>()),
            json::parse(R"({"a":[1,2.5,"x",true,[]],"b":{}})"));
  EXPECT_EQ(r.values[1], "integer");
  EXPECT_EQ(r.values[2], "float");
  EXPECT_EQ(r.values[3], "json.array");
  EXPECT_EQ(r.values[4], "[]");
  EXPECT_EQ(r.values[5], "{}");
  EXPECT_EQ(r.values[6], true);
}

TEST(Convert, JsonDecodeErrorsAreCatchableRuntimeErrors) {
  Result r = run_once("local ok, e = pcall(json.decode, '{\"a\":')\nreturn ok, e");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.values[0], false);
  EXPECT_NE(r.values[1].get<std::string>().find("json.decode: parse error"), std::string::npos);
  Result bad = run_once("return json.decode('\"\\xff\"')");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error->kind, ErrorKind::runtime);
  EXPECT_NE(bad.error->message.find("json.decode"), std::string::npos);
}

TEST(Convert, VarsMutationsAreReturned) {
  json vars = {{"count", 1}, {"list", {"a"}}};
  Result r = with_vars(
      "vars.count = vars.count + 1\nvars.list[#vars.list + 1] = 'b'\nvars.new = {x = 1.5}", vars);
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.vars, (json{{"count", 2}, {"list", {"a", "b"}}, {"new", {{"x", 1.5}}}}));
  EXPECT_EQ(vars["count"], 1);  // the caller's value is not modified
}

TEST(Convert, VarsMayBeReplacedButMustStayAnObject) {
  json vars = {{"a", 1}};
  Result r = with_vars("vars = {b = 2}", vars);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.vars, (json{{"b", 2}}));
  expect_bad_value(with_vars("vars = {1, 2}", vars), "vars must stay an object");
  expect_bad_value(with_vars("vars = nil", vars), "vars must stay a table");
  json not_object = json::array();
  expect_bad_value(with_vars("return 1", not_object), "vars must be a JSON object");
}

}  // namespace
}  // namespace flowrt::sandbox::testing
