// The hostile suite: scripts that try to escape the sandbox, burn CPU or memory, or trick
// the host. Every case asserts the exact outcome (error kind and message), that it ends
// within a safety bound, that the sandbox's memory returns to its baseline, and that the
// next script on the same pooled sandbox runs normally.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "tests/sandbox/sandbox_test_support.hpp"

namespace flowrt::sandbox::testing {
namespace {

struct HostileCase {
  const char* name;
  std::string source;
  std::optional<ErrorKind> kind;  // nullopt: the script must succeed
  std::string message;            // substring of the error message (or of the JSON result)
  uint64_t instructions = Limits{}.instructions;
  int wall_clock_ms = 100;
  size_t memory_bytes = Limits{}.memory_bytes;
};

std::ostream& operator<<(std::ostream& os, const HostileCase& c) {
  return os << c.name;
}

// Safety bound, not a speed claim: a regression that runs for minutes fails here.
constexpr auto kBound = std::chrono::seconds(2);
// A cached compiled chunk and allocator noise.
constexpr size_t kMemorySlack = 48 << 10;

const std::string kBinaryChunk = std::string("\x1bLua\x54\x00\x19\x93\r\n\x1a\n", 12) + "xxxx";

std::vector<HostileCase> cases() {
  using K = ErrorKind;
  return {
      // ---- escapes
      {"OsExecute", "os.execute('id')", K::runtime,
       "line 1: attempt to index a nil value (global 'os')"},
      {"IoOpen", "return io.open('/etc/passwd')", K::runtime, "(global 'io')"},
      {"Require", "return require('os')", K::runtime,
       "attempt to call a nil value (global 'require')"},
      {"Load", "return load('return 1')()", K::runtime, "(global 'load')"},
      {"LoadBytecodeViaDump", "return load(string.dump(function() end), nil, 'b')", K::runtime,
       "(field 'dump')"},
      {"LoadBinaryString", "return load('\\27Lua\\84\\0', nil, 'b')", K::runtime,
       "(global 'load')"},
      {"Loadstring", "return loadstring('return 1')", K::runtime, "(global 'loadstring')"},
      {"Loadfile", "return loadfile('/etc/passwd')", K::runtime, "(global 'loadfile')"},
      {"Dofile", "return dofile('/etc/passwd')", K::runtime, "(global 'dofile')"},
      {"StringDump", "return string.dump(function() end)", K::runtime,
       "attempt to call a nil value (field 'dump')"},
      {"StringDumpAsMethod", "local f = function() end\nreturn ('x').dump(f)", K::runtime,
       "line 2: attempt to call a nil value (field 'dump')"},
      {"BinaryChunkAsSource", kBinaryChunk, K::syntax, "binary chunks are not allowed"},
      {"StringMetatableIndex", "return getmetatable('').__index", K::runtime,
       "attempt to index a nil value"},
      {"StringMetatableViaField", "return ('').__index.rep", K::runtime,
       "attempt to index a nil value (field '__index')"},
      {"DebugLibrary", "return debug.getregistry()", K::runtime, "(global 'debug')"},
      {"CollectGarbage", "collectgarbage('stop')", K::runtime, "(global 'collectgarbage')"},
      {"PackageLoadlib", "return package.loadlib('libc.so.6', 'system')", K::runtime,
       "(global 'package')"},
      {"Coroutine", "return coroutine.wrap(print)", K::runtime, "(global 'coroutine')"},
      {"GlobalTable", "_G.x = 1", K::runtime, "attempt to index a nil value (global '_G')"},
      {"EnvMetatable", "return getmetatable(_ENV).__index", K::runtime,
       "attempt to index a boolean value"},
      {"SetmetatableOnEnv", "setmetatable(_ENV, {})", K::runtime,
       "cannot change a protected metatable"},
      {"Rawset", "rawset(contact, 'name', 'x')", K::runtime,
       "attempt to call a nil value (global 'rawset')"},
      {"WriteReadOnly", "contact.name = 'x'", K::runtime,
       "attempt to modify a read-only table (field 'name')"},
      {"WriteReadOnlyNested", "message.data.items[1] = 0", K::runtime,
       "attempt to modify a read-only table"},
      {"TableInsertIntoReadOnly", "table.insert(message.data.items, 4)", K::runtime,
       "attempt to modify a read-only table"},
      {"SetmetatableOnReadOnly", "setmetatable(contact, {})", K::runtime,
       "cannot change a protected metatable"},
      {"ReadOnlyMetatableIsHidden", "return getmetatable(contact).__index.name", K::runtime,
       "attempt to index a nil value (field '__index')"},
      {"ReplaceReadOnlyGlobal", "contact = {name = 'x'}", K::runtime,
       "cannot assign to read-only global 'contact'"},
      {"ModifyStringLibrary", "string.upper = function() end", K::runtime,
       "attempt to modify a read-only table (field 'upper')"},
      {"ModifyMathLibrary", "math.floor = nil", K::runtime,
       "attempt to modify a read-only table (field 'floor')"},
      {"NextOnReadOnlyRevealsNothing",
       "return next(contact), rawget(contact, 'name'), contact.name", std::nullopt,
       "[null,null,\"Ana\"]"},
      // ---- CPU bombs
      {"InfiniteLoop", "while true do end", K::instruction_limit,
       "instruction limit of 1000000 exceeded"},
      {"LoopInsidePcall", "while true do pcall(function() while true do end end) end",
       K::instruction_limit, "instruction limit of 1000000 exceeded"},
      {"PcallSwallowsKill",
       "for i = 1, 10 do pcall(function() while true do end end) end\nreturn 'survived'",
       K::instruction_limit, "instruction limit"},
      {"XpcallHandlerLoops",
       "xpcall(function() while true do end end, function() while true do end end)\nreturn "
       "'survived'",
       K::instruction_limit, "instruction limit"},
      {"XpcallHandlerRecovers",
       "local r = xpcall(function() while true do end end, function() return 'caught' end)\nreturn "
       "'survived'",
       K::instruction_limit, "instruction limit"},
      {"ErrorInsideHandlerAfterKill",
       "xpcall(function() while true do end end, error)\nreturn 'survived'", K::instruction_limit,
       "instruction limit"},
      {"PatternFind", "return string.find(('a'):rep(5000), ('a*'):rep(12) .. 'b')",
       K::instruction_limit, "instruction limit", Limits{}.instructions, 1500},
      {"PatternMatch", "return string.match(('a'):rep(5000), ('a*'):rep(12) .. 'b')",
       K::instruction_limit, "instruction limit", Limits{}.instructions, 1500},
      {"PatternGmatch", "for x in (('a'):rep(5000)):gmatch(('a*'):rep(12) .. 'b') do end",
       K::instruction_limit, "instruction limit", Limits{}.instructions, 1500},
      {"PatternGsub", "return (('a'):rep(5000)):gsub(('a-'):rep(12) .. 'b', 'x')",
       K::instruction_limit, "instruction limit", Limits{}.instructions, 1500},
      {"PatternInsidePcall",
       "pcall(string.find, ('a'):rep(5000), ('a*'):rep(12) .. 'b')\nreturn 'survived'",
       K::instruction_limit, "instruction limit", Limits{}.instructions, 1500},
      {"PlainFindQuadratic",
       "return string.find(('a'):rep(1000000), ('a'):rep(500000) .. 'b', 1, true)",
       K::instruction_limit, "instruction limit", Limits{}.instructions, 1500},
      {"DeepRecursion", "local function f(n) return 1 + f(n + 1) end\nreturn f(1)", K::depth_limit,
       "line 1: call depth limit of 200 exceeded"},
      {"RecursionThroughPcall", "local function f() return pcall(f) end\nreturn f()",
       K::depth_limit, "call depth limit of 200 exceeded"},
      {"RecursionThroughMetamethod",
       "local t = setmetatable({}, {__index = function(t, k) return t[k] end})\nreturn t.x",
       K::depth_limit, "call depth limit exceeded (Lua C stack overflow)"},
      {"IndexChainLoop", "local t = setmetatable({}, {})\ngetmetatable(t).__index = t\nreturn t.x",
       K::runtime, "'__index' chain too long"},
      {"TableConcatHugeRange",
       "return table.concat(setmetatable({}, {__index = function() return 'x' end}), '', 1, 2^40)",
       K::instruction_limit, "instruction limit"},
      {"TableConcatCFunctionIndex",
       "return table.concat(setmetatable({}, {__index = rawlen}), '', 1, 1e15)",
       K::instruction_limit, "instruction limit"},
      {"TableUnpackHuge", "return select('#', table.unpack({}, 1, 1e8))", K::instruction_limit,
       "instruction limit"},
      {"TableMoveHuge", "return table.move({}, 1, 1e12, 2)", K::instruction_limit,
       "instruction limit"},
      {"StringByteHuge", "return select('#', string.byte(('x'):rep(2000000), 1, -1))",
       K::instruction_limit, "instruction limit"},
      {"TableInsertQuadratic",
       "local t = {}\nfor i = 1, 50000 do t[i] = i end\nfor i = 1, 50000 do table.insert(t, 1, i) "
       "end",
       K::instruction_limit, "instruction limit"},
      {"TableSortHuge", "local t = {}\nfor i = 1, 100000 do t[i] = -i end\ntable.sort(t)",
       K::instruction_limit, "line 3: instruction limit"},
      {"StringFormatHugeWidth", "return string.format('%099999999d', 1)", K::runtime,
       "invalid conversion"},
      {"StringRepEmptyHuge", "return #string.rep('', 2^62)", std::nullopt, "[0]"},
      {"WallClock", "while true do end", K::time_limit, "time limit of 50 ms exceeded",
       1'000'000'000'000ULL, 50},
      {"ConcatQuadraticHitsDeadline",
       "local s = ''\nfor i = 1, 1e7 do s = s .. 'xxxxxxxxxxxxxxxxxxxx' end", K::time_limit,
       "time limit of 100 ms exceeded", 1'000'000'000'000ULL},
      {"LongStringComparisonsHitDeadline",
       "local a, b = ('x'):rep(4e6), ('x'):rep(4e6)\nwhile true do local c = a == b end",
       K::time_limit, "line 2: time limit of 100 ms exceeded", 1'000'000'000'000ULL},
      {"CloseHandlerLoops",
       "do local x <close> = setmetatable({}, {__close = function() while true do end end}) end",
       K::instruction_limit, "instruction limit"},
      {"TostringMetamethodLoops",
       "return tostring(setmetatable({}, {__tostring = function() while true do end end}))",
       K::instruction_limit, "instruction limit"},
      // ---- memory bombs
      {"StringRepHuge", "return string.rep('x', 2^40)", K::memory_limit,
       "memory limit of 16777216 bytes exceeded"},
      {"StringRepSeparatorHuge", "return string.rep('', 2^62, ',')", K::memory_limit,
       "memory limit"},
      {"StringRepInsidePcall", "local ok = pcall(string.rep, 'x', 1e9)\nreturn 'survived'",
       K::memory_limit, "memory limit"},
      {"TableGrowth", "local t = {}\nfor i = 1, 1e9 do t[i] = i end", K::memory_limit,
       "memory limit", 1'000'000'000'000ULL, 2000},
      {"TableGrowthInsidePcall",
       "pcall(function() local t = {} for i = 1, 1e9 do t[i] = i end end)\nreturn 'survived'",
       K::memory_limit, "memory limit", 1'000'000'000'000ULL, 2000},
      {"ConcatDoubling", "local s = 'x'\nwhile true do s = s .. s end", K::memory_limit,
       "memory limit"},
      {"TableConcatHuge", "local s = ('x'):rep(4000000)\nreturn #table.concat({s, s, s, s, s})",
       K::memory_limit, "memory limit"},
      {"UpperOfHugeString", "return #(('x'):rep(1e7):upper())", K::memory_limit, "memory limit"},
      {"GsubExpansion",
       "return #(('x'):rep(100000):gsub('x', function() return ('y'):rep(1000) end))",
       K::memory_limit, "memory limit", 1'000'000'000'000ULL, 2000},
      {"JsonDecodeHuge", "return #json.decode('[' .. ('[],'):rep(2000000) .. '[]]')",
       K::memory_limit, "memory limit", 1'000'000'000'000ULL, 2000},
      {"JsonDecodeDeep", "return json.decode(('['):rep(100000) .. (']'):rep(100000))", K::runtime,
       "json.decode: nested deeper than 64 levels"},
      {"JsonEncodeSharedBlowup",
       "local t = {'x'}\nfor i = 1, 40 do t = {t, t} end\nreturn #json.encode(t)", K::memory_limit,
       "memory limit of 1048576 bytes exceeded (JSON value too large)", 1'000'000'000'000ULL, 1500,
       1 << 20},
      {"ReturnSharedBlowup", "local t = {'x'}\nfor i = 1, 40 do t = {t, t} end\nreturn t",
       K::memory_limit, "memory limit of 1048576 bytes exceeded (JSON value too large)",
       1'000'000'000'000ULL, 1500, 1 << 20},
      {"StringPackPadding", "return #string.pack('c2000000000', '')", K::memory_limit,
       "memory limit"},
      // ---- values that cannot cross, error objects with metamethods, __gc
      {"ReturnCycle", "local t = {}\nt[1] = t\nreturn t", K::bad_value,
       "return value 1[1]: table contains a cycle"},
      {"JsonEncodeCycle", "local t = {}\nt.t = t\nreturn json.encode(t)", K::runtime,
       "line 3: json.encode: value.t: table contains a cycle"},
      {"ReturnFunction", "return function() end", K::bad_value,
       "return value 1: cannot convert a function to JSON"},
      {"ReturnTooDeep", "local t = {}\nfor i = 1, 100 do t = {t} end\nreturn t", K::bad_value,
       "nested deeper than 64 levels"},
      {"ReturnInfinity", "return math.huge", K::bad_value,
       "cannot convert NaN or infinity to JSON"},
      {"VarsBecomesFunction", "vars = function() end", K::bad_value, "vars must stay a table"},
      {"ErrorObjectTostringLoops",
       "error(setmetatable({}, {__tostring = function() while true do end end}))", K::runtime,
       "error object is a table value"},
      {"ErrorObjectIndexLoops",
       "error(setmetatable({}, {__index = function() while true do end end, __name = 'x'}))",
       K::runtime, "error object is a table value"},
      {"GcMetamethodRefused", "setmetatable({}, {__gc = function() while true do end end})",
       K::runtime, "__gc metamethods are not allowed"},
      {"GcAddedAfterSetmetatableNeverRuns",
       "local mt = {}\nlocal t = setmetatable({}, mt)\nmt.__gc = function() while true do end "
       "end\nt = nil\nreturn 'done'",
       std::nullopt, "[\"done\"]"},
  };
}

class Hostile : public ::testing::TestWithParam<HostileCase> {
 protected:
  SandboxPool pool_;
  StandardGlobals globals_;
};

TEST_P(Hostile, FailsPreciselyBoundedAndRecovers) {
  const HostileCase& c = GetParam();
  Environment env = globals_.environment();
  auto lease = pool_.acquire("tenant-a");
  Sandbox& sandbox = *lease;

  // Baseline: a warm state that ran a normal script, after a full collection.
  const std::string normal = "vars.seen = (vars.seen or 0) + 1\nreturn contact.name, 1 + 1";
  ASSERT_TRUE(sandbox.run(normal, "normal", env, {}).ok());
  sandbox.collect_garbage();
  size_t baseline = sandbox.memory_in_use();
  uint64_t states_before = sandbox.states_opened();

  Limits limits;
  limits.instructions = c.instructions;
  limits.wall_clock = std::chrono::milliseconds(c.wall_clock_ms);
  limits.memory_bytes = c.memory_bytes;
  auto start = std::chrono::steady_clock::now();
  Result result = sandbox.run(c.source, "script", env, limits);
  auto elapsed = std::chrono::steady_clock::now() - start;

  EXPECT_LT(elapsed, kBound) << c.name;
  if (c.kind) {
    ASSERT_FALSE(result.ok()) << "expected " << to_string(*c.kind) << ", got success";
    EXPECT_EQ(to_string(result.error->kind), to_string(*c.kind)) << result.error->message;
    EXPECT_NE(result.error->message.find(c.message), std::string::npos)
        << "message: " << result.error->message << "\nexpected to contain: " << c.message;
    EXPECT_TRUE(result.values.empty());
    if (result.error->is_limit()) {
      // A killed state is closed at once: its memory is gone, a new state comes next.
      EXPECT_EQ(sandbox.memory_in_use(), 0u);
    }
  } else {
    ASSERT_TRUE(result.ok()) << result.error->message;
    EXPECT_EQ(json(result.values).dump(), c.message);
  }

  // The next script on the same pooled sandbox runs normally...
  Result next = sandbox.run(normal, "normal", env, {});
  ASSERT_TRUE(next.ok()) << next.error->message;
  EXPECT_EQ(next.values, (std::vector<json>{"Ana", 2}));
  EXPECT_EQ(next.vars["seen"], 1);  // vars come from the caller each run
  if (c.kind && result.error && result.error->is_limit()) {
    EXPECT_EQ(sandbox.states_opened(), states_before + 1);
  } else {
    EXPECT_EQ(sandbox.states_opened(), states_before);
  }
  // ...and memory is back to the baseline.
  sandbox.collect_garbage();
  EXPECT_LE(sandbox.memory_in_use(), baseline + kMemorySlack);
}

INSTANTIATE_TEST_SUITE_P(Sandbox, Hostile, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<HostileCase>& info) {
                           return std::string(info.param.name);
                         });

TEST(HostileSuite, HasAtLeastFortyCases) {
  EXPECT_GE(cases().size(), 40u);
}

TEST(HostilePool, KilledSandboxIsReplacedAndPoolMemoryReturnsToBaseline) {
  SandboxPool pool;
  StandardGlobals globals;
  Environment env = globals.environment();
  {
    auto lease = pool.acquire("t");
    ASSERT_TRUE(lease->run("return 1", "s", env, {}).ok());
    lease->collect_garbage();
  }
  size_t baseline = pool.idle_memory();
  ASSERT_GT(baseline, 0u);
  {
    auto lease = pool.acquire("t");
    Result r = lease->run("local s = 'x' while true do s = s .. s end", "s", env, {});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error->kind, ErrorKind::memory_limit);
  }
  EXPECT_EQ(pool.idle_memory(), 0u);  // the poisoned state is already closed
  {
    auto lease = pool.acquire("t");
    ASSERT_TRUE(lease->run("return 1", "s", env, {}).ok());
    lease->collect_garbage();
  }
  EXPECT_LE(pool.idle_memory(), baseline + kMemorySlack);
}

}  // namespace
}  // namespace flowrt::sandbox::testing
