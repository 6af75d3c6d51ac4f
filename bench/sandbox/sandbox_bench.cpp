// Cost of one sandboxed execution: a `when` expression and a 20-line node script on a
// reused state, a cold state (new lua_State + libraries + run) for comparison, and the same
// script in a bare lua_State (no sandbox, no limits, globals prepared once) to isolate the
// sandbox's own overhead. Figures: docs/performance.md, "Lua sandbox".
#include <benchmark/benchmark.h>

#include <lua.hpp>
#include <nlohmann/json.hpp>

#include "sandbox/sandbox.hpp"

namespace {

using flowrt::sandbox::Environment;
using flowrt::sandbox::Limits;
using flowrt::sandbox::Result;
using flowrt::sandbox::Sandbox;
using nlohmann::json;

const char* const kWhen = "vars.budget >= 1000 and contact.phone ~= ''";

const char* const kScript = R"(local total = 0
local items = message.data.items
for i = 1, #items do
  total = total + items[i]
end
vars.total = total
if vars.budget >= 1000 then
  vars.segment = 'high'
else
  vars.segment = 'low'
end
local name = contact.name or 'friend'
vars.greeting = string.format('Hello, %s!', name)
vars.visits = (vars.visits or 0) + 1
local tags = vars.tags or {}
tags[#tags + 1] = 'seen'
vars.tags = tags
if contact.phone:match('^%+55') then
  vars.country = 'BR'
end
return vars.greeting
)";

struct Globals {
  json contact = {{"id", "c-1"}, {"name", "Ana"}, {"phone", "+5511912345678"}};
  json message = {{"text", "500"}, {"data", {{"items", {1, 2, 3, 4}}}}};
  json flow = {{"id", "lead-qualification"}};
  json tenant = {{"name", "acme"}};
  json vars = {{"budget", 1500}, {"tags", json::array({"lead"})}};

  Environment full() const {
    Environment env;
    env.add("contact", contact).add("message", message).add("flow", flow).add("tenant", tenant);
    env.vars = &vars;
    return env;
  }
};

void check(benchmark::State& state, const Result& r) {
  if (!r.ok()) state.SkipWithError(r.error->message.c_str());
}

void BM_WhenExpression_ReusedState(benchmark::State& state) {
  Globals g;
  Environment env = g.full();
  env.return_vars = false;  // a condition only needs the value
  Sandbox sandbox;
  const std::string chunk = flowrt::sandbox::expression_chunk(kWhen);
  check(state, sandbox.run(chunk, "when", env, {}));
  for (auto _ : state) {
    Result r = sandbox.run(chunk, "when", env, {});
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_WhenExpression_ReusedState);

void BM_WhenExpression_ReusedState_VarsBack(benchmark::State& state) {
  Globals g;
  Environment env = g.full();  // return_vars = true: vars converted back to JSON too
  Sandbox sandbox;
  const std::string chunk = flowrt::sandbox::expression_chunk(kWhen);
  check(state, sandbox.run(chunk, "when", env, {}));
  for (auto _ : state) {
    Result r = sandbox.run(chunk, "when", env, {});
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_WhenExpression_ReusedState_VarsBack);

void BM_Script20Lines_ReusedState(benchmark::State& state) {
  Globals g;
  Environment env = g.full();
  Sandbox sandbox;
  check(state, sandbox.run(kScript, "script", env, {}));
  for (auto _ : state) {
    Result r = sandbox.run(kScript, "script", env, {});
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_Script20Lines_ReusedState);

void BM_WhenExpression_ColdState(benchmark::State& state) {
  Globals g;
  Environment env = g.full();
  env.return_vars = false;
  const std::string chunk = flowrt::sandbox::expression_chunk(kWhen);
  for (auto _ : state) {
    Sandbox sandbox;
    Result r = sandbox.run(chunk, "when", env, {});
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_WhenExpression_ColdState);

// The same script in a plain lua_State: standard libraries, globals built once as plain
// tables, chunk compiled once, no hook, no allocator accounting, no JSON conversion.
void push_plain(lua_State* L, const json& j) {
  if (j.is_object()) {
    lua_newtable(L);
    for (const auto& [k, v] : j.items()) {
      push_plain(L, v);
      lua_setfield(L, -2, k.c_str());
    }
  } else if (j.is_array()) {
    lua_newtable(L);
    lua_Integer i = 0;
    for (const auto& v : j) {
      push_plain(L, v);
      lua_rawseti(L, -2, ++i);
    }
  } else if (j.is_number_integer()) {
    lua_pushinteger(L, j.get<int64_t>());
  } else if (j.is_number()) {
    lua_pushnumber(L, j.get<double>());
  } else if (j.is_string()) {
    lua_pushstring(L, j.get<std::string>().c_str());
  } else if (j.is_boolean()) {
    lua_pushboolean(L, j.get<bool>());
  } else {
    lua_pushnil(L);
  }
}

void bare(benchmark::State& state, const std::string& source, bool fresh_vars) {
  Globals g;
  lua_State* L = luaL_newstate();
  luaL_openlibs(L);
  push_plain(L, g.contact);
  lua_setglobal(L, "contact");
  push_plain(L, g.message);
  lua_setglobal(L, "message");
  push_plain(L, g.flow);
  lua_setglobal(L, "flow");
  push_plain(L, g.tenant);
  lua_setglobal(L, "tenant");
  if (luaL_loadstring(L, source.c_str()) != LUA_OK) {
    state.SkipWithError(lua_tostring(L, -1));
    lua_close(L);
    return;
  }
  int fn = luaL_ref(L, LUA_REGISTRYINDEX);
  for (auto _ : state) {
    if (fresh_vars) {
      push_plain(L, g.vars);
      lua_setglobal(L, "vars");
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, fn);
    if (lua_pcall(L, 0, 1, 0) != LUA_OK) state.SkipWithError(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_close(L);
}

void BM_WhenExpression_BareLua(benchmark::State& state) {
  bare(state, flowrt::sandbox::expression_chunk(kWhen), true);
}
BENCHMARK(BM_WhenExpression_BareLua);

void BM_Script20Lines_BareLua(benchmark::State& state) {
  bare(state, kScript, true);
}
BENCHMARK(BM_Script20Lines_BareLua);

void BM_CpuLoop_ReusedState(benchmark::State& state) {
  // 100,000 VM instructions or so: the cost of instruction counting on real work.
  Sandbox sandbox;
  const char* loop = "local x = 0\nfor i = 1, 25000 do x = x + i % 7 end\nreturn x";
  check(state, sandbox.run(loop, "loop", {}, {}));
  for (auto _ : state) {
    Result r = sandbox.run(loop, "loop", {}, {});
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_CpuLoop_ReusedState);

void BM_CpuLoop_BareLua(benchmark::State& state) {
  bare(state, "local x = 0\nfor i = 1, 25000 do x = x + i % 7 end\nreturn x", false);
}
BENCHMARK(BM_CpuLoop_BareLua);

}  // namespace
