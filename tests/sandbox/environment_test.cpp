// The environment of SPEC §3, error reporting, limits configuration, the pool and the
// compile cache.
#include <string>
#include <thread>
#include <vector>

#include "tests/sandbox/sandbox_test_support.hpp"

namespace flowrt::sandbox::testing {
namespace {

TEST(Environment, ExposesExactlyTheSpecGlobals) {
  StandardGlobals g;
  Result r = run_once(R"(
    local present = {}
    for _, name in ipairs({'assert', 'error', 'ipairs', 'next', 'pairs', 'pcall', 'select',
        'tonumber', 'tostring', 'type', 'xpcall', 'rawequal', 'rawlen', 'rawget',
        'setmetatable', 'getmetatable', 'string', 'table', 'math', 'utf8', 'json', 'log', 'now',
        'vars', 'contact', 'message', 'flow', 'tenant'}) do
      if _ENV[name] == nil then return 'missing ' .. name end
    end
    for _, name in ipairs({'load', 'loadstring', 'loadfile', 'dofile', 'require',
        'collectgarbage', 'io', 'os', 'debug', 'package', 'coroutine', 'rawset', 'print', '_G',
        'module', 'setfenv', 'getfenv', 'unpack'}) do
      if _ENV[name] ~= nil then return 'present ' .. name end
    end
    if string.dump ~= nil then return 'present string.dump' end
    if json.encode == nil or json.decode == nil then return 'json incomplete' end
    return 'ok'
  )",
                      g.environment());
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.values[0], "ok");
}

TEST(Environment, StringMethodsWorkButTheMetatableIsHidden) {
  Result r = run_once(
      "return ('x'):upper(), ('%d-%s'):format(5, 'a'), getmetatable('abc'), ('a,b'):find(',', 1, "
      "true), ('key=val'):match('(%w+)=(%w+)')");
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(json(r.values).dump(), R"(["X","5-a",null,2,"key","val"])");
}

TEST(Environment, PatternFunctionsFollowLuaSemantics) {
  Result r = run_once(R"(
    local out = {}
    out[#out + 1] = select(2, ('hello world from lua'):gsub('(%w+)', '<%1>'))
    out[#out + 1] = ('hello world'):gsub('o', {o = '0'})
    out[#out + 1] = ('abc'):gsub('', '-')
    out[#out + 1] = ('THE (quick) fox'):find('%((%a+)%)')
    out[#out + 1] = ('  trim  '):match('^%s*(.-)%s*$')
    local words = {}
    for w in ('one two  three'):gmatch('%a+') do words[#words + 1] = w end
    out[#out + 1] = table.concat(words, '|')
    out[#out + 1] = ('f(a(b)c)d'):match('%b()')
    out[#out + 1] = ('THE (quick) fox'):find('%f[%a]%a+', 5)
    out[#out + 1] = ('x = 1'):match('()=()')
    out[#out + 1] = ('hello'):gsub('l+', function(s) return #s end)
    out[#out + 1] = ('abab'):match('(ab)%1')
    out[#out + 1] = ('a.b'):find('.', 1, true)
    out[#out + 1] = ('aaa'):match('^a-$')
    out[#out + 1] = ('[x]'):match('[]]')
    return out
  )");
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(
      r.values[0].dump(),
      R"js([4,"hell0 w0rld","-a-b-c-",5,"trim","one|two|three","(a(b)c)",6,3,"he2o","ab",2,"aaa","]"])js");
}

TEST(Environment, PatternErrorsMatchLua) {
  for (auto [pattern, message] : std::vector<std::pair<std::string, std::string>>{
           {"'%'", "malformed pattern (ends with '%')"},
           {"'[a'", "malformed pattern (missing ']')"},
           {"'(a'", "unfinished capture"},
           {"'a)'", "invalid pattern capture"},
           {"'%1'", "invalid capture index %1"},
           {"'%b'", "missing arguments to '%b'"},
           {"'%fa'", "missing '[' after '%f' in pattern"}}) {
    Result r = run_once("return ('abc'):match(" + pattern + ")");
    ASSERT_FALSE(r.ok()) << pattern;
    EXPECT_NE(r.error->message.find(message), std::string::npos) << r.error->message;
  }
  Result r = run_once("return ('abc'):gsub('b', '%2')");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error->message.find("invalid capture index %2"), std::string::npos);
}

TEST(Environment, ReadOnlyGlobalsAreReadableAndIterable) {
  StandardGlobals g;
  Result r = run_once(R"(
    local keys = {}
    for k in pairs(contact) do keys[#keys + 1] = k end
    table.sort(keys)
    local sum = 0
    for _, v in ipairs(message.data.items) do sum = sum + v end
    return table.concat(keys, ','), sum, #message.data.items, flow.id, tenant.name,
           table.concat(message.data.items, '+'), getmetatable(contact)
  )",
                      g.environment());
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(json(r.values).dump(),
            R"(["id,name,phone",6,3,"lead-qualification","acme","1+2+3","read-only"])");
}

TEST(Environment, NothingLeaksFromOneRunToTheNext) {
  Sandbox sandbox;
  StandardGlobals g;
  Environment env = g.environment();
  ASSERT_TRUE(sandbox.run("x = 1\nvars.added = true", "a", env, {}).ok());
  Result r = sandbox.run("return x, vars.added", "b", env, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(json(r.values).dump(), "[null,null]");
}

TEST(Environment, ExtraReadOnlyGlobalsLikeAnswerAndResponse) {
  json answer = "42";
  json response = {{"status", 200},
                   {"headers", {{"content-type", "application/json"}}},
                   {"body", {{"ok", true}}}};
  Environment env;
  env.add("answer", answer).add("response", response);
  Result r = run_once("return tonumber(answer) > 40, response.status, response.body.ok", env);
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(json(r.values).dump(), "[true,200,true]");
}

TEST(Environment, InvalidGlobalNamesAreRefused) {
  json v = 1;
  for (const char* name : {"string", "end", "vars", "1x", "a-b", ""}) {
    Environment env;
    env.add(name, v);
    Result r = run_once("return 1", env);
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_EQ(r.error->kind, ErrorKind::bad_value);
  }
}

TEST(Environment, LogDeliversOneLinePerCall) {
  std::vector<std::string> lines;
  Environment env;
  env.log = [&](std::string_view line) { lines.emplace_back(line); };
  Result r = run_once("log('a', 1, 2.5, true, nil, {b = 1}, {1, 2})\nlog()", env);
  ASSERT_TRUE(r.ok()) << r.error->message;
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], R"(a 1 2.5 true nil {"b":1} [1,2])");
  EXPECT_EQ(lines[1], "");
}

TEST(Environment, LogIsBoundedInLinesAndBytes) {
  std::vector<std::string> lines;
  Environment env;
  env.log = [&](std::string_view line) { lines.emplace_back(line); };
  Result r = run_once("for i = 1, 500 do log(('x'):rep(10000)) end", env);
  ASSERT_TRUE(r.ok()) << r.error->message;
  ASSERT_EQ(lines.size(), static_cast<size_t>(kMaxLogLines) + 1);
  EXPECT_EQ(lines[0].size(), kMaxLogLineBytes);
  EXPECT_NE(lines.back().find("log limit"), std::string::npos);
}

TEST(Environment, NowUsesTheCallersClock) {
  Environment env;
  env.now_ms = [] { return int64_t{1700000000123}; };
  Result r = run_once("return now(), math.type(now())", env);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(json(r.values).dump(), R"([1700000000123,"integer"])");
  Result system = run_once("return now()");
  ASSERT_TRUE(system.ok());
  EXPECT_GT(system.values[0].get<int64_t>(), int64_t{1600000000000});
}

TEST(Environment, MathRandomWorks) {
  Result r = run_once("local x = math.random(1, 6)\nreturn x >= 1 and x <= 6, math.floor(2.7)");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(json(r.values).dump(), "[true,2]");
}

TEST(Errors, RuntimeErrorsCarryTheLine) {
  Result r = run_once("local t = nil\n\nreturn t.x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->kind, ErrorKind::runtime);
  EXPECT_EQ(r.error->line, 3);
  EXPECT_EQ(r.error->message, "line 3: attempt to index a nil value (local 't')");
}

TEST(Errors, FieldErrorsNameTheField) {
  StandardGlobals g;
  Result r = run_once("local a = 1\nreturn contact.address.city", g.environment());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->message, "line 2: attempt to index a nil value (field 'address')");
}

TEST(Errors, ErrorCallsReportTheirMessageAndLine) {
  Result r = run_once("\nerror('budget missing')");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->message, "line 2: budget missing");
  Result level0 = run_once("\n\nerror('plain', 0)");
  ASSERT_FALSE(level0.ok());
  EXPECT_EQ(level0.error->message, "line 3: plain");
  Result table = run_once("error({code = 1})");
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(table.error->message, "line 1: error object is a table value");
  Result number = run_once("error(42)");
  ASSERT_FALSE(number.ok());
  EXPECT_EQ(number.error->message, "line 1: 42");
}

TEST(Errors, SyntaxErrorsFromRunAndCheckSyntax) {
  Result r = run_once("local x = 1\nif x then\nreturn 1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->kind, ErrorKind::syntax);
  EXPECT_EQ(r.error->line, 3);
  EXPECT_NE(r.error->message.find("line 3: 'end' expected (to close 'if' at line 2)"),
            std::string::npos)
      << r.error->message;

  auto error = check_syntax("x = = 1", "node");
  ASSERT_TRUE(error);
  EXPECT_EQ(error->kind, ErrorKind::syntax);
  EXPECT_EQ(error->line, 1);
  EXPECT_EQ(error->message, "line 1: unexpected symbol near '='");
  EXPECT_FALSE(check_syntax("return vars.x + 1"));
  auto binary = check_syntax(std::string("\x1bLua", 4));
  ASSERT_TRUE(binary);
  EXPECT_EQ(binary->message, "binary chunks are not allowed");
}

TEST(Errors, WhenExpressionsAreWrapped) {
  EXPECT_FALSE(check_syntax(expression_chunk("vars.budget >= 1000 and contact.phone ~= ''")));
  EXPECT_FALSE(check_syntax(expression_chunk("vars.x -- trailing comment")));
  auto error = check_syntax(expression_chunk("vars.budget >="));
  ASSERT_TRUE(error);
  EXPECT_EQ(error->line, 2);
  StandardGlobals g;
  Result r =
      run_once(expression_chunk("vars.budget >= 1000 and contact.phone ~= ''"), g.environment());
  ASSERT_TRUE(r.ok()) << r.error->message;
  ASSERT_EQ(r.values.size(), 1u);
  EXPECT_TRUE(truthy(r.values[0]));
  EXPECT_EQ(r.vars, g.vars);
  Environment no_vars = g.environment();
  no_vars.return_vars = false;
  Result cheap = run_once(expression_chunk("vars.budget > 1"), no_vars);
  ASSERT_TRUE(cheap.ok());
  EXPECT_EQ(cheap.values[0], true);
  EXPECT_TRUE(cheap.vars.is_null());
  EXPECT_FALSE(truthy(nullptr));
  EXPECT_FALSE(truthy(false));
  EXPECT_TRUE(truthy(0));
}

TEST(Limits, TenantLimitsOnlyLower) {
  Limits server;
  Limits tenant;
  tenant.instructions = 5'000'000;
  tenant.memory_bytes = 1 << 20;
  tenant.wall_clock = std::chrono::milliseconds(20);
  tenant.call_depth = 500;
  tenant.json_depth = 10;
  Limits l = server.lowered_by(tenant);
  EXPECT_EQ(l.instructions, 1'000'000u);
  EXPECT_EQ(l.memory_bytes, size_t{1} << 20);
  EXPECT_EQ(l.wall_clock, std::chrono::milliseconds(20));
  EXPECT_EQ(l.call_depth, 200);
  EXPECT_EQ(l.json_depth, 10);
}

TEST(Limits, InstructionBudgetIsPerRun) {
  Sandbox sandbox;
  Limits limits;
  limits.instructions = 50'000;
  const std::string loop = "local x = 0\nfor i = 1, 5000 do x = x + i end\nreturn x";
  for (int i = 0; i < 20; ++i) {  // 20 runs use far more than 50,000 in total
    Result r = sandbox.run(loop, "s", {}, limits);
    ASSERT_TRUE(r.ok()) << r.error->message;
    EXPECT_EQ(r.values[0], 12502500);
  }
  limits.instructions = 5'000;
  Result r = sandbox.run(loop, "s", {}, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->message, "line 2: instruction limit of 5000 exceeded");
}

TEST(Limits, CallDepthIsExact) {
  Limits limits;
  limits.call_depth = 50;
  Result ok = run_once(
      "local function f(n) if n == 0 then return 0 end return 1 + f(n - 1) end\n"
      "local r = f(48) return r",  // main chunk + 49 calls of f = 50 active calls
      {}, limits);
  ASSERT_TRUE(ok.ok()) << ok.error->message;
  Result deep = run_once(
      "local function f(n) if n == 0 then return 0 end return 1 + f(n - 1) end\n"
      "local r = f(49) return r",  // 51
      {}, limits);
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.error->kind, ErrorKind::depth_limit);
  EXPECT_EQ(deep.error->message, "line 1: call depth limit of 50 exceeded");
}

TEST(Limits, MemoryBudgetIsPerRunAndLoweredPerTenant) {
  // string.rep builds in a buffer, then copies: 6 MiB needs 12 MiB at its peak.
  const std::string six_mib = "local s = ('x'):rep(6 * 1024 * 1024)\nreturn #s";
  Sandbox sandbox;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(sandbox.run(six_mib, "s", {}, {}).ok());
  Limits tenant;
  tenant.memory_bytes = 1 << 20;
  Result r = sandbox.run(six_mib, "s", {}, Limits{}.lowered_by(tenant));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->kind, ErrorKind::memory_limit);
  EXPECT_NE(r.error->message.find("memory limit of 1048576 bytes exceeded"), std::string::npos);
}

TEST(Limits, NoTenantCodeRunsAfterAKill) {
  std::vector<std::string> lines;
  Environment env;
  env.log = [&](std::string_view line) { lines.emplace_back(line); };
  Result r = run_once(
      "log('start')\n"
      "xpcall(function() while true do end end, function(m) log('handler ran') return m end)\n"
      "log('after xpcall')\n"
      "pcall(function() while true do end end)\n"
      "log('after pcall')",
      env);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->kind, ErrorKind::instruction_limit);
  EXPECT_EQ(r.error->line, 2);
  EXPECT_EQ(lines, std::vector<std::string>{"start"});
}

TEST(Limits, ZeroInstructionsRunsNothing) {
  Limits limits;
  limits.instructions = 0;
  Result r = run_once("return 1", {}, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->kind, ErrorKind::instruction_limit);
}

TEST(Pool, SandboxesAreReusedPerTenantAndNeverShared) {
  SandboxPool pool;
  Sandbox* a = nullptr;
  {
    auto lease = pool.acquire("tenant-a");
    a = &*lease;
    ASSERT_TRUE(lease->run("return 1", "s", {}, {}).ok());
  }
  {
    auto lease = pool.acquire("tenant-b");
    EXPECT_NE(&*lease, a);  // tenant-a's idle sandbox is not handed to tenant-b
  }
  {
    auto lease = pool.acquire("tenant-a");
    EXPECT_EQ(&*lease, a);  // reused
    EXPECT_EQ(lease->states_opened(), 1u);
    auto second = pool.acquire("tenant-a");
    EXPECT_NE(&*second, a);  // one holder at a time
  }
  EXPECT_EQ(pool.idle_count(), 3u);
}

TEST(Pool, IdleSandboxesAreBounded) {
  PoolOptions options;
  options.max_idle_per_tenant = 2;
  options.max_idle_total = 3;
  SandboxPool pool(options);
  {
    auto a1 = pool.acquire("a");
    auto a2 = pool.acquire("a");
    auto a3 = pool.acquire("a");
  }
  EXPECT_EQ(pool.idle_count(), 2u);
  {
    auto b1 = pool.acquire("b");
    auto b2 = pool.acquire("b");
  }
  EXPECT_EQ(pool.idle_count(), 3u);
}

TEST(Pool, ConcurrentTenantsRunIndependently) {
  SandboxPool pool;
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        auto lease = pool.acquire(t % 2 ? "odd" : "even");
        json vars = {{"n", i}};
        Environment env;
        env.vars = &vars;
        Result r =
            lease->run(i % 50 == 0 ? "while true do end" : "vars.n = vars.n * 2", "s", env, {});
        bool expected_ok = i % 50 != 0;
        if (r.ok() != expected_ok || (expected_ok && r.vars["n"] != i * 2)) ++failures[t];
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

TEST(Cache, CompiledChunksAreReusedAndBounded) {
  SandboxOptions options;
  options.chunk_cache_entries = 4;
  Sandbox sandbox(options);
  ASSERT_TRUE(sandbox.run("return 1", "s", {}, {}).ok());
  sandbox.collect_garbage();
  size_t one = sandbox.memory_in_use();
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(sandbox.run("return 1", "s", {}, {}).ok());
  sandbox.collect_garbage();
  EXPECT_EQ(sandbox.memory_in_use(), one);
  for (int i = 0; i < 100; ++i) {
    Result r = sandbox.run("return " + std::to_string(i), "s", {}, {});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.values[0], i);
  }
  sandbox.collect_garbage();
  EXPECT_LT(sandbox.memory_in_use(), one + 8 * 1024);
}

}  // namespace
}  // namespace flowrt::sandbox::testing
