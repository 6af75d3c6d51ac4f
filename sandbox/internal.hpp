// Internals shared by the sandbox's translation units. Not part of the public API.
//
// Every C function a script can reach finds the current run through the lua_State's extra
// space (a RunContext*). Work whose cost grows with its input is charged with charge();
// exhausting a limit calls kill(), which makes the state "poisoned": the count hook then
// fires before every instruction and on every Lua call and raises again, so pcall/xpcall
// cannot swallow the kill, and the Sandbox discards the state after the run (for the limit
// kinds; a bad_value kill only ends the run).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <lua.hpp>
#include <nlohmann/json.hpp>

#include "sandbox/sandbox.hpp"

namespace flowrt::sandbox::detail {

using Clock = std::chrono::steady_clock;

struct RunContext {
  Limits limits;
  const Environment* env = nullptr;
  Clock::time_point deadline;
  uint64_t executed = 0;  // VM instructions counted by the hook
  uint64_t charged = 0;   // steps charged by library functions
  uint64_t next_clock_check = 0;
  int quantum = 0;  // current count of the hook
  int hook_mask = 0;
  bool killed = false;
  ErrorKind kill_kind = ErrorKind::runtime;
  std::string kill_message;  // without "line N: "
  int kill_line = 0;
  std::string short_src;  // e.g. "script", to recognise "script:3: ..." prefixes
  // Error captured by the message handler (runtime errors) or set by host-side steps.
  bool has_error = false;
  Error error;
  // Kind given to errors raised outside the script (e.g. converting the globals).
  ErrorKind default_kind = ErrorKind::runtime;
  int log_lines = 0;
};

inline RunContext* context(lua_State* L) {
  return *static_cast<RunContext**>(lua_getextraspace(L));
}

// Charges `steps` against Limits::instructions (and checks the deadline now and then).
// Raises a kill when a limit is exhausted. Must be called from inside a run.
void charge(lua_State* L, uint64_t steps);
// Charges one step per 64 bytes of work.
inline void charge_bytes(lua_State* L, size_t bytes) {
  charge(L, bytes / 64 + 1);
}
// Raises (or only records, when `raise` is false) a kill of the given kind.
void kill(lua_State* L, ErrorKind kind, std::string message, bool raise = true);
// Raises a memory kill if `bytes` more would not fit in this run's memory budget.
void check_memory(lua_State* L, size_t bytes);

// The sticky hook, installed for the duration of a run.
void hook(lua_State* L, lua_Debug* ar);

// ---- Lua <-> JSON (convert.cpp) ----

// Pushes `value` as a plain Lua value (arrays carry the array marker metatable).
// Raises a Lua error if `value` is deeper than `depth_limit`.
void push_json(lua_State* L, const nlohmann::json& value, int depth_limit);
// Pushes `value` as a read-only proxy tree (scalars are pushed as-is).
void push_readonly(lua_State* L, const nlohmann::json& value, int depth_limit);
// True if `value` nests containers deeper than `limit`.
bool json_depth_exceeds(const nlohmann::json& value, int limit);
// Converts the Lua value at `index` to JSON without calling any metamethod. On failure
// returns false and sets `error` (e.g. "cannot convert a function to JSON"), with a path
// prefix. Charges steps and host memory; limit exhaustion raises a kill.
bool to_json(lua_State* L, int index, nlohmann::json& out, std::string& error);
// Decodes JSON text straight into Lua values (json.decode). Raises on error.
void decode_json(lua_State* L, std::string_view text, int depth_limit);
// Wraps the table on top of the stack in a read-only proxy (replacing it on the stack).
void make_readonly(lua_State* L);
// Creates the array marker metatable; called once per state.
void setup_convert(lua_State* L);
// Sets the array marker metatable on the table at `index`.
void mark_array(lua_State* L, int index);

// ---- safe library (library.cpp, pattern.cpp) ----

// Builds the base table of globals at the top of the stack from the opened libraries.
// Leaves it on the stack.
void push_base_globals(lua_State* L);
// Replacements of string.find/match/gmatch/gsub with a step budget. Sets them in the table
// at `index`.
void register_patterns(lua_State* L, int index);
// True if `name` is a global of the base table (cannot be used for a read-only global).
bool is_keyword(std::string_view name);

}  // namespace flowrt::sandbox::detail
