// The library a script sees (SPEC §3), built once per state.
//
// Taken from Lua as is: assert error ipairs next pairs select tostring type rawequal rawlen
// rawget, string.{format len sub pack packsize unpack}, math.*, table.pack, utf8.{charpattern
// codes}. Replaced or wrapped:
//  - pcall/xpcall: a killed run is re-raised at once (the kill cannot be caught), and
//    xpcall's message handler is not called after a kill.
//  - getmetatable returns nil for strings (the string metatable is unreachable);
//    setmetatable refuses metatables with __gc (finalizers run with hooks off).
//  - string.find/match/gmatch/gsub: pattern.cpp (step budget).
//  - string.rep: size checked against the memory budget before allocating; "" results are
//    immediate.
//  - C functions whose work grows with their input (table.concat/unpack/move/insert/remove/
//    sort, string.byte/char/upper/lower/reverse, utf8.char/codepoint/len/offset, tonumber)
//    charge that work to the instruction budget before doing it.
//  - json.encode/json.decode, log(...), now().
// Library tables are exposed as read-only proxies; the string metatable's __index is the
// safe string table itself.
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>

#include "sandbox/internal.hpp"

namespace flowrt::sandbox::detail {

namespace {

lua_CFunction original(lua_State* L) {
  return lua_tocfunction(L, lua_upvalueindex(1));
}

uint64_t range_size(lua_Integer first, lua_Integer last) {
  if (last < first) return 0;
  uint64_t n = static_cast<uint64_t>(last) - static_cast<uint64_t>(first);
  return n == UINT64_MAX ? n : n + 1;
}

// ---- base

int safe_pcall(lua_State* L) {
  luaL_checkany(L, 1);
  int status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  RunContext* ctx = context(L);
  if (ctx && ctx->killed) lua_error(L);
  if (status == LUA_ERRMEM) {
    kill(L, ErrorKind::memory_limit,
         "memory limit of " + std::to_string(ctx ? ctx->limits.memory_bytes : 0) +
             " bytes exceeded");
  }
  lua_pushboolean(L, status == LUA_OK);
  lua_insert(L, 1);
  return lua_gettop(L);
}

int xpcall_handler(lua_State* L) {
  RunContext* ctx = context(L);
  if (ctx && ctx->killed) return 1;  // no tenant code after a kill
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

int safe_xpcall(lua_State* L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, xpcall_handler, 1);
  lua_rotate(L, 1, 1);  // [1] handler closure, [2] f, [3] h, [4..] args
  lua_remove(L, 3);
  int status = lua_pcall(L, n - 2, LUA_MULTRET, 1);
  RunContext* ctx = context(L);
  if (ctx && ctx->killed) lua_error(L);
  if (status == LUA_ERRMEM) {
    kill(L, ErrorKind::memory_limit,
         "memory limit of " + std::to_string(ctx ? ctx->limits.memory_bytes : 0) +
             " bytes exceeded");
  }
  lua_pushboolean(L, status == LUA_OK);
  lua_replace(L, 1);
  return lua_gettop(L);
}

int safe_getmetatable(lua_State* L) {
  if (lua_type(L, 1) == LUA_TSTRING) {
    lua_pushnil(L);
    return 1;
  }
  return original(L)(L);
}

int safe_setmetatable(lua_State* L) {
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) != LUA_TNIL)
      return luaL_error(L, "setmetatable: __gc metamethods are not allowed in scripts");
    lua_pop(L, 1);
  }
  return original(L)(L);
}

// Charges the byte length of argument 1 (when it is a string), then calls the original.
int charge_arg_bytes(lua_State* L) {
  if (lua_type(L, 1) == LUA_TSTRING) charge_bytes(L, lua_rawlen(L, 1));
  return original(L)(L);
}

// Charges one step per argument, then calls the original (string.char, utf8.char).
int charge_args(lua_State* L) {
  charge(L, static_cast<uint64_t>(lua_gettop(L)) + 1);
  return original(L)(L);
}

// string.byte / utf8.codepoint (s [, i [, j]]): charges the size of the clamped range.
int charge_string_range(lua_State* L) {
  if (lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER) {
    auto len = static_cast<lua_Integer>(lua_rawlen(L, 1));
    if (lua_type(L, 1) == LUA_TNUMBER) len = 64;  // converted by the original; small
    lua_Integer i = luaL_optinteger(L, 2, 1);
    lua_Integer j = luaL_optinteger(L, 3, i);
    if (i < 0) i = i < -len ? 1 : len + i + 1;
    if (i == 0) i = 1;
    if (j < 0) j = j < -len ? 0 : len + j + 1;
    if (j > len) j = len;
    charge(L, range_size(i, j) + 1);
  }
  return original(L)(L);
}

lua_Integer table_length(lua_State* L) {
  return lua_type(L, 1) == LUA_TTABLE ? luaL_len(L, 1) : 0;
}

int table_concat(lua_State* L) {
  if (lua_type(L, 1) == LUA_TTABLE) {
    lua_Integer i = luaL_optinteger(L, 3, 1);
    lua_Integer j = lua_isnoneornil(L, 4) ? luaL_len(L, 1) : luaL_checkinteger(L, 4);
    charge(L, range_size(i, j) + 1);
  }
  return original(L)(L);
}

int table_unpack(lua_State* L) {
  lua_Integer i = luaL_optinteger(L, 2, 1);
  lua_Integer j = lua_isnoneornil(L, 3) ? luaL_len(L, 1) : luaL_checkinteger(L, 3);
  charge(L, range_size(i, j) + 1);
  return original(L)(L);
}

int table_move(lua_State* L) {
  lua_Integer f = luaL_checkinteger(L, 2);
  lua_Integer e = luaL_checkinteger(L, 3);
  charge(L, range_size(f, e) + 1);
  return original(L)(L);
}

int table_insert(lua_State* L) {
  if (lua_gettop(L) >= 3)
    charge(L, static_cast<uint64_t>(std::max<lua_Integer>(0, table_length(L))) + 1);
  return original(L)(L);
}

int table_remove(lua_State* L) {
  if (lua_gettop(L) >= 2)
    charge(L, static_cast<uint64_t>(std::max<lua_Integer>(0, table_length(L))) + 1);
  return original(L)(L);
}

int table_sort(lua_State* L) {
  lua_Integer n = table_length(L);
  if (n > 1) {
    double cost = static_cast<double>(n) * (std::log2(static_cast<double>(n)) + 1);
    charge(L, cost > 1e18 ? UINT64_MAX / 2 : static_cast<uint64_t>(cost));
  }
  return original(L)(L);
}

int string_rep(lua_State* L) {
  size_t len = 0, sep_len = 0;
  const char* s = luaL_checklstring(L, 1, &len);
  lua_Integer n = luaL_checkinteger(L, 2);
  const char* sep = luaL_optlstring(L, 3, "", &sep_len);
  if (n <= 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  size_t unit = len + sep_len;
  auto count = static_cast<uint64_t>(n);
  // total = n * len + (n - 1) * sep_len, refused before anything is allocated if too big.
  if (unit != 0 && count > (SIZE_MAX / 2) / unit) {
    check_memory(L, SIZE_MAX / 2);
  }
  size_t total = static_cast<size_t>(count) * unit - sep_len;
  if (total == 0) {
    lua_pushliteral(L, "");
    return 1;
  }
  check_memory(L, total);
  charge_bytes(L, total);
  luaL_Buffer b;
  char* p = luaL_buffinitsize(L, &b, total);
  std::memcpy(p, s, len);
  size_t filled = len;
  if (count > 1) {
    std::memcpy(p + len, sep, sep_len);
    filled += sep_len;
  }
  while (filled < total) {  // the buffer is periodic: double it until full
    size_t chunk = std::min(filled, total - filled);
    std::memcpy(p + filled, p, chunk);
    filled += chunk;
  }
  luaL_pushresultsize(&b, total);
  return 1;
}

// ---- json, log, now

int json_encode(lua_State* L) {
  luaL_checkany(L, 1);
  nlohmann::json value;
  std::string error;
  if (!to_json(L, 1, value, error)) return luaL_error(L, "json.encode: value%s", error.c_str());
  std::string text;
  bool failed = false;
  try {
    text = value.dump();
  } catch (const std::exception&) {
    failed = true;
  }
  if (failed) return luaL_error(L, "json.encode: value cannot be encoded");
  check_memory(L, text.size());
  lua_pushlstring(L, text.data(), text.size());
  return 1;
}

int json_decode(lua_State* L) {
  size_t n = 0;
  const char* text = luaL_checklstring(L, 1, &n);
  charge_bytes(L, n);
  RunContext* ctx = context(L);
  decode_json(L, std::string_view(text, n), ctx ? ctx->limits.json_depth : Limits{}.json_depth);
  return 1;
}

void append_log_value(lua_State* L, int i, std::string& line) {
  switch (lua_type(L, i)) {
    case LUA_TSTRING:
    case LUA_TNUMBER: {
      lua_pushvalue(L, i);
      size_t n = 0;
      const char* s = lua_tolstring(L, -1, &n);
      line.append(s, std::min(n, kMaxLogLineBytes));
      lua_pop(L, 1);
      return;
    }
    case LUA_TBOOLEAN:
      line += lua_toboolean(L, i) ? "true" : "false";
      return;
    case LUA_TNIL:
      line += "nil";
      return;
    case LUA_TTABLE: {
      nlohmann::json value;
      std::string error;
      if (to_json(L, i, value, error)) {
        try {
          line += value.dump();
          return;
        } catch (const std::exception&) {
        }
      }
      line += "<table>";
      return;
    }
    default:
      line += std::string("<") + luaL_typename(L, i) + ">";
  }
}

int log_line(lua_State* L) {
  RunContext* ctx = context(L);
  int n = lua_gettop(L);
  charge(L, static_cast<uint64_t>(n) + 1);
  if (!ctx || !ctx->env || !ctx->env->log || ctx->log_lines > kMaxLogLines) return 0;
  std::string line;
  if (ctx->log_lines == kMaxLogLines) {
    line =
        "(log limit of " + std::to_string(kMaxLogLines) + " lines reached; further lines dropped)";
  } else {
    for (int i = 1; i <= n && line.size() < kMaxLogLineBytes; ++i) {
      if (i > 1) line += ' ';
      append_log_value(L, i, line);
    }
    if (line.size() > kMaxLogLineBytes) line.resize(kMaxLogLineBytes);
  }
  ++ctx->log_lines;
  bool failed = false;
  try {
    ctx->env->log(line);
  } catch (...) {  // the host callback makes no Lua calls, so nothing of Lua's is caught here
    failed = true;
  }
  if (failed) return luaL_error(L, "log: the host could not record the line");
  return 0;
}

int now_ms(lua_State* L) {
  RunContext* ctx = context(L);
  int64_t value = 0;
  bool failed = false;
  if (ctx && ctx->env && ctx->env->now_ms) {
    try {
      value = ctx->env->now_ms();
    } catch (...) {  // host callback, no Lua calls inside
      failed = true;
    }
  } else {
    value = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  }
  if (failed) return luaL_error(L, "now: the host clock failed");
  lua_pushinteger(L, static_cast<lua_Integer>(value));
  return 1;
}

// ---- building the tables

// Copies `name` from the table at `from` to the table at `to`, optionally wrapped.
void copy(lua_State* L, int from, int to, const char* name, lua_CFunction wrapper = nullptr) {
  lua_getfield(L, from, name);
  if (lua_isnil(L, -1)) luaL_error(L, "sandbox setup: missing library function %s", name);
  if (wrapper) lua_pushcclosure(L, wrapper, 1);
  lua_setfield(L, to, name);
}

void set(lua_State* L, int to, const char* name, lua_CFunction fn) {
  lua_pushcfunction(L, fn);
  lua_setfield(L, to, name);
}

// Pushes the module `name` from package.loaded.
int push_loaded(lua_State* L, const char* name) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  return lua_gettop(L);
}

}  // namespace

bool is_keyword(std::string_view name) {
  static constexpr std::string_view kKeywords[] = {
      "and",      "break",  "do",   "else", "elseif", "end",  "false", "for",
      "function", "goto",   "if",   "in",   "local",  "nil",  "not",   "or",
      "repeat",   "return", "then", "true", "until",  "while"};
  for (auto k : kKeywords)
    if (k == name) return true;
  return false;
}

void push_base_globals(lua_State* L) {
  int top = lua_gettop(L);
  lua_createtable(L, 0, 24);
  int base = lua_gettop(L);
  lua_pushglobaltable(L);
  int g = lua_gettop(L);
  for (const char* name : {"assert", "error", "ipairs", "next", "pairs", "select", "tostring",
                           "type", "rawequal", "rawlen", "rawget"})
    copy(L, g, base, name);
  copy(L, g, base, "tonumber", charge_arg_bytes);
  copy(L, g, base, "getmetatable", safe_getmetatable);
  copy(L, g, base, "setmetatable", safe_setmetatable);
  set(L, base, "pcall", safe_pcall);
  set(L, base, "xpcall", safe_xpcall);
  set(L, base, "log", log_line);
  set(L, base, "now", now_ms);
  lua_pop(L, 1);

  // string
  int lib = push_loaded(L, LUA_STRLIBNAME);
  lua_createtable(L, 0, 20);
  int safe = lua_gettop(L);
  for (const char* name : {"format", "len", "sub", "pack", "packsize", "unpack"})
    copy(L, lib, safe, name);
  for (const char* name : {"upper", "lower", "reverse"}) copy(L, lib, safe, name, charge_arg_bytes);
  copy(L, lib, safe, "byte", charge_string_range);
  copy(L, lib, safe, "char", charge_args);
  set(L, safe, "rep", string_rep);
  register_patterns(L, safe);
  // The string metatable (unreachable from scripts) indexes the safe table.
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushvalue(L, safe);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 2);
  // Defence in depth: the original table loses dump too.
  lua_pushnil(L);
  lua_setfield(L, lib, "dump");
  lua_pushvalue(L, safe);
  make_readonly(L);
  lua_setfield(L, base, "string");
  lua_settop(L, base);

  // table
  lib = push_loaded(L, LUA_TABLIBNAME);
  lua_createtable(L, 0, 8);
  safe = lua_gettop(L);
  copy(L, lib, safe, "pack");
  copy(L, lib, safe, "concat", table_concat);
  copy(L, lib, safe, "unpack", table_unpack);
  copy(L, lib, safe, "move", table_move);
  copy(L, lib, safe, "insert", table_insert);
  copy(L, lib, safe, "remove", table_remove);
  copy(L, lib, safe, "sort", table_sort);
  make_readonly(L);
  lua_setfield(L, base, "table");
  lua_settop(L, base);

  // math: everything, as is (math.random is seeded per state by Lua).
  lib = push_loaded(L, LUA_MATHLIBNAME);
  lua_createtable(L, 0, 32);
  safe = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, lib)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, safe);
  }
  make_readonly(L);
  lua_setfield(L, base, "math");
  lua_settop(L, base);

  // utf8
  lib = push_loaded(L, LUA_UTF8LIBNAME);
  lua_createtable(L, 0, 8);
  safe = lua_gettop(L);
  copy(L, lib, safe, "charpattern");
  copy(L, lib, safe, "codes");
  copy(L, lib, safe, "char", charge_args);
  copy(L, lib, safe, "codepoint", charge_string_range);
  copy(L, lib, safe, "len", charge_arg_bytes);
  copy(L, lib, safe, "offset", charge_arg_bytes);
  make_readonly(L);
  lua_setfield(L, base, "utf8");
  lua_settop(L, base);

  // json
  lua_createtable(L, 0, 2);
  set(L, lua_gettop(L), "encode", json_encode);
  set(L, lua_gettop(L), "decode", json_decode);
  make_readonly(L);
  lua_setfield(L, base, "json");

  lua_settop(L, base);
  (void)top;
}

}  // namespace flowrt::sandbox::detail
