// Sandbox: one lua_State per tenant, reused across runs.
//
// Design. A state is opened once with the safe library (library.cpp) and a hidden table of
// base globals. Each run gets a fresh, empty _ENV table that shares one metatable:
//
//   _ENV (raw: vars and the script's own globals)
//     metatable {__index = base, __newindex = guard, __metatable = false}  -- per state
//   base (the library functions and read-only library tables)
//     metatable {__index = read_only_global}                              -- per state
//
// so nothing a script writes survives its run, and library tables cannot be modified.
// Read-only globals (contact, message, ...) are converted lazily: the first read of a name
// that the base lacks converts that global of the current run to a read-only proxy tree and
// keeps it in a per-run table, so a `when` expression pays only for what it reads. The
// guard refuses assignments to read-only global names.
// Compiled chunks are cached per state (LRU), keyed by source; their _ENV upvalue is
// replaced on every run.
//
// Limits. A custom lua_Alloc accounts every byte of the state; during a run the cap is
// "bytes held at the start + Limits::memory_bytes", and only growth can fail. A count+call
// hook counts instructions, checks the deadline and the call depth. A kill is sticky (see
// internal.hpp) and the state is closed after the run. Everything that touches the Lua API
// runs inside lua_pcall, so a memory error can never reach the panic function.
#include "sandbox/sandbox.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "sandbox/internal.hpp"

namespace flowrt::sandbox {

using detail::Clock;
using detail::RunContext;

// ---------------------------------------------------------------------------------------
// Small public helpers

std::string_view to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::syntax:
      return "syntax";
    case ErrorKind::runtime:
      return "runtime";
    case ErrorKind::instruction_limit:
      return "instruction_limit";
    case ErrorKind::memory_limit:
      return "memory_limit";
    case ErrorKind::time_limit:
      return "time_limit";
    case ErrorKind::depth_limit:
      return "depth_limit";
    case ErrorKind::bad_value:
      return "bad_value";
  }
  return "unknown";
}

bool Error::is_limit() const {
  return kind == ErrorKind::instruction_limit || kind == ErrorKind::memory_limit ||
         kind == ErrorKind::time_limit || kind == ErrorKind::depth_limit;
}

Limits Limits::lowered_by(const Limits& tenant) const {
  Limits out;
  out.instructions = std::min(instructions, tenant.instructions);
  out.memory_bytes = std::min(memory_bytes, tenant.memory_bytes);
  out.wall_clock = std::min(wall_clock, tenant.wall_clock);
  out.call_depth = std::min(call_depth, tenant.call_depth);
  out.json_depth = std::min(json_depth, tenant.json_depth);
  return out;
}

std::string expression_chunk(std::string_view expression) {
  std::string chunk;
  chunk.reserve(expression.size() + 10);
  chunk.append("return (").append(expression).append("\n)");
  return chunk;
}

bool truthy(const nlohmann::json& value) {
  return !(value.is_null() || (value.is_boolean() && !value.get<bool>()));
}

// ---------------------------------------------------------------------------------------
// Allocator

struct Sandbox::Heap {
  size_t used = 0;
  size_t cap = std::numeric_limits<size_t>::max();
  size_t churn = 0;  // bytes grown since the last deadline check
  RunContext* run = nullptr;
  lua_State* L = nullptr;
};

namespace {

constexpr size_t kChurnCheckBytes = 256 << 10;
constexpr int kQuantum = 250;  // instructions between two hook calls

void* allocate(void* ud, void* ptr, size_t osize, size_t nsize) {
  auto* heap = static_cast<Sandbox::Heap*>(ud);
  size_t old = ptr ? osize : 0;  // for a new block, osize encodes the object's type
  if (nsize == 0) {
    std::free(ptr);
    heap->used -= old;
    return nullptr;
  }
  if (nsize <= old) {  // shrinking never fails: keep the block if realloc cannot shrink it
    void* block = std::realloc(ptr, nsize);
    heap->used -= old - nsize;
    return block ? block : ptr;
  }
  size_t growth = nsize - old;
  if (growth > heap->cap - std::min(heap->cap, heap->used)) return nullptr;
  void* block = std::realloc(ptr, nsize);
  if (!block) return nullptr;
  heap->used += growth;
  heap->churn += growth;
  if (heap->churn >= kChurnCheckBytes) {
    heap->churn = 0;
    // Allocation-heavy loops can make each instruction slow: check the deadline here too.
    // A hit only records the kill; the sticky hook raises it before the next instruction.
    RunContext* run = heap->run;
    if (run && !run->killed && Clock::now() > run->deadline) {
      detail::kill(
          heap->L, ErrorKind::time_limit,
          "time limit of " + std::to_string(run->limits.wall_clock.count()) + " ms exceeded",
          /*raise=*/false);
    }
  }
  return block;
}

int panic(lua_State* L) {
  // Unreachable by design: every Lua API call is made inside lua_pcall.
  const char* msg = lua_tostring(L, -1);
  std::fprintf(stderr, "flowrt sandbox: unprotected Lua error: %s\n", msg ? msg : "?");
  std::abort();
}

std::string short_source(std::string_view chunk_name) {
  // What Lua's luaO_chunkid makes of "=" + chunk_name.
  return std::string(chunk_name.substr(0, LUA_IDSIZE - 1));
}

// Splits "src:12: message" into line 12 and "message" if the prefix names our chunk.
bool strip_position(std::string& message, const std::string& short_src, int& line) {
  if (short_src.empty() || message.compare(0, short_src.size(), short_src) != 0) return false;
  size_t i = short_src.size();
  if (i >= message.size() || message[i] != ':') return false;
  size_t j = i + 1;
  int n = 0;
  while (j < message.size() && message[j] >= '0' && message[j] <= '9' && n < 100'000'000) {
    n = n * 10 + (message[j] - '0');
    ++j;
  }
  if (j == i + 1 || j + 1 >= message.size() || message[j] != ':' || message[j + 1] != ' ')
    return false;
  line = n;
  message.erase(0, j + 2);
  return true;
}

std::string with_line(int line, const std::string& message) {
  if (line <= 0) return message;
  return "line " + std::to_string(line) + ": " + message;
}

Error make_error(ErrorKind kind, int line, const std::string& message) {
  return Error{kind, line, with_line(line, message)};
}

// Line of the innermost active Lua function of the script (0 if none).
int current_line(lua_State* L, int first_level) {
  lua_Debug ar;
  for (int level = first_level; level < first_level + 400 && lua_getstack(L, level, &ar); ++level) {
    if (lua_getinfo(L, "l", &ar) && ar.currentline > 0) return ar.currentline;
  }
  return 0;
}

[[noreturn]] void raise_kill(lua_State* L, RunContext* ctx) {
  lua_pushlstring(L, ctx->kill_message.data(), ctx->kill_message.size());
  lua_error(L);
  std::abort();  // lua_error does not return
}

// Message handler of the outer lua_pcall: records a runtime error with its line. Reads the
// error object without calling any of its metamethods.
int message_handler(lua_State* L) {
  RunContext* ctx = detail::context(L);
  if (!ctx || ctx->killed || ctx->has_error) return 1;
  try {
    std::string message;
    int type = lua_type(L, 1);
    if (type == LUA_TSTRING || type == LUA_TNUMBER) {
      size_t n = 0;
      const char* s = lua_tolstring(L, 1, &n);
      message.assign(s, n);
    } else {
      message = std::string("error object is a ") + lua_typename(L, type) + " value";
    }
    int line = 0;
    if (!strip_position(message, ctx->short_src, line)) line = current_line(L, 1);
    ErrorKind kind = ctx->default_kind;
    if (message == "stack overflow" || message == "C stack overflow") {
      kind = ErrorKind::depth_limit;
      message = "call depth limit exceeded (Lua " + message + ")";
      ctx->killed = true;  // discard the state; nothing is raised from here
      ctx->kill_kind = kind;
      ctx->kill_message = message;
      ctx->kill_line = line;
    }
    ctx->has_error = true;
    ctx->error = make_error(kind, line, message);
  } catch (const std::exception&) {
    // Out of host memory while describing an error: the caller reports a generic error.
  }
  return 1;
}

}  // namespace

namespace detail {

void kill(lua_State* L, ErrorKind kind, std::string message, bool raise) {
  RunContext* ctx = context(L);
  if (!ctx->killed) {
    ctx->killed = true;
    ctx->kill_kind = kind;
    ctx->kill_message = std::move(message);
    ctx->kill_line = raise ? current_line(L, 0) : 0;
  }
  // From now on every instruction and every call of a Lua function raises again.
  ctx->hook_mask = LUA_MASKCOUNT | LUA_MASKCALL;
  ctx->quantum = 1;
  lua_sethook(L, hook, ctx->hook_mask, 1);
  if (raise) raise_kill(L, ctx);
}

void charge(lua_State* L, uint64_t steps) {
  RunContext* ctx = context(L);
  if (!ctx) return;
  if (ctx->killed) raise_kill(L, ctx);
  ctx->charged += steps;
  if (ctx->executed + ctx->charged > ctx->limits.instructions) {
    kill(L, ErrorKind::instruction_limit,
         "instruction limit of " + std::to_string(ctx->limits.instructions) + " exceeded");
  }
  if (ctx->charged >= ctx->next_clock_check) {
    ctx->next_clock_check = ctx->charged + 1024;
    if (Clock::now() > ctx->deadline) {
      kill(L, ErrorKind::time_limit,
           "time limit of " + std::to_string(ctx->limits.wall_clock.count()) + " ms exceeded");
    }
  }
}

void check_memory(lua_State* L, size_t bytes) {
  void* ud = nullptr;
  lua_getallocf(L, &ud);
  auto* heap = static_cast<Sandbox::Heap*>(ud);
  if (bytes > heap->cap - std::min(heap->cap, heap->used)) {
    RunContext* ctx = context(L);
    kill(L, ErrorKind::memory_limit,
         "memory limit of " + std::to_string(ctx ? ctx->limits.memory_bytes : heap->cap) +
             " bytes exceeded");
  }
}

void hook(lua_State* L, lua_Debug* ar) {
  RunContext* ctx = context(L);
  if (!ctx) return;
  if (ctx->killed) {
    if (ar->event == LUA_HOOKCALL || ar->event == LUA_HOOKTAILCALL) {
      // C functions (our message handlers among them) may run; Lua code may not.
      lua_getinfo(L, "S", ar);
      if (ar->what[0] == 'C') return;
    }
    if (ctx->kill_line == 0 && lua_getinfo(L, "l", ar) && ar->currentline > 0)
      ctx->kill_line = ar->currentline;
    raise_kill(L, ctx);
  }
  if (ar->event == LUA_HOOKCOUNT) {
    ctx->executed += static_cast<uint64_t>(ctx->quantum);
    uint64_t used = ctx->executed + ctx->charged;
    if (used > ctx->limits.instructions) {
      kill(L, ErrorKind::instruction_limit,
           "instruction limit of " + std::to_string(ctx->limits.instructions) + " exceeded");
    }
    if (Clock::now() > ctx->deadline) {
      kill(L, ErrorKind::time_limit,
           "time limit of " + std::to_string(ctx->limits.wall_clock.count()) + " ms exceeded");
    }
    uint64_t remaining = ctx->limits.instructions - used;
    int quantum = static_cast<int>(std::min<uint64_t>(kQuantum, remaining + 1));
    if (quantum != ctx->quantum) {
      ctx->quantum = quantum;
      lua_sethook(L, hook, ctx->hook_mask, quantum);
    }
  } else if (ar->event == LUA_HOOKCALL) {
    // Level 0 is the called function; the script's main chunk sits right above the host's
    // protected function, so "call_depth + 1" levels above level 0 is one too many.
    lua_Debug deep;
    if (lua_getstack(L, ctx->limits.call_depth + 1, &deep)) {
      kill(L, ErrorKind::depth_limit,
           "call depth limit of " + std::to_string(ctx->limits.call_depth) + " exceeded");
    }
  }
}

}  // namespace detail

// ---------------------------------------------------------------------------------------
// check_syntax

std::optional<Error> check_syntax(std::string_view source, std::string_view chunk_name) {
  if (!source.empty() && source[0] == LUA_SIGNATURE[0])
    return make_error(ErrorKind::syntax, 0, "binary chunks are not allowed");
  Sandbox::Heap heap;
  heap.cap = Limits{}.memory_bytes;
  lua_State* L = lua_newstate(allocate, &heap);
  if (!L) return make_error(ErrorKind::memory_limit, 0, "out of memory while compiling");
  lua_atpanic(L, panic);
  *static_cast<RunContext**>(lua_getextraspace(L)) = nullptr;
  std::string name = "=" + std::string(chunk_name);
  int status = luaL_loadbufferx(L, source.data(), source.size(), name.c_str(), "t");
  std::optional<Error> error;
  if (status == LUA_ERRMEM) {
    error = make_error(
        ErrorKind::memory_limit, 0,
        "memory limit of " + std::to_string(heap.cap) + " bytes exceeded while compiling");
  } else if (status != LUA_OK) {
    size_t n = 0;
    const char* s = lua_tolstring(L, -1, &n);
    std::string message = s ? std::string(s, n) : "syntax error";
    int line = 0;
    strip_position(message, short_source(chunk_name), line);
    error = make_error(ErrorKind::syntax, line, message);
  }
  lua_close(L);
  return error;
}

// ---------------------------------------------------------------------------------------
// Sandbox

namespace {

char kBaseKey;        // registry: table of base globals
char kEnvMetaKey;     // registry: the metatable shared by every run's _ENV
char kRunGlobalsKey;  // registry: read-only globals converted so far in this run (or nil)

// __index of the base table: a read-only global of the current run, converted on first use.
int read_only_global(lua_State* L) {
  RunContext* ctx = detail::context(L);
  if (!ctx || !ctx->env || lua_type(L, 2) != LUA_TSTRING) return 0;
  size_t n = 0;
  const char* key = lua_tolstring(L, 2, &n);
  std::string_view name(key, n);
  for (const auto& global : ctx->env->globals) {
    if (global.name != name) continue;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &kRunGlobalsKey) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_createtable(L, 0, 4);
      lua_pushvalue(L, -1);
      lua_rawsetp(L, LUA_REGISTRYINDEX, &kRunGlobalsKey);
    }
    lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    if (detail::json_depth_exceeds(*global.value, ctx->limits.json_depth)) {
      detail::kill(L, ErrorKind::bad_value,
                   "global '" + std::string(name) + "' is nested deeper than " +
                       std::to_string(ctx->limits.json_depth) + " levels");
    }
    detail::push_readonly(L, *global.value, ctx->limits.json_depth);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
    return 1;
  }
  return 0;
}

struct RunArgs {
  Sandbox* sandbox;
  std::string_view source;
  std::string_view chunk_name;
  const Environment* env;
  RunContext* ctx;
  Result* result;
};

int env_newindex(lua_State* L);

int setup_state(lua_State* L) {
  luaL_requiref(L, "_G", luaopen_base, 1);
  luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 0);
  luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 0);
  luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 0);
  luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 0);
  lua_settop(L, 0);
  detail::setup_convert(L);
  detail::push_base_globals(L);
  int base = lua_gettop(L);
  lua_pushvalue(L, base);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kBaseKey);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, read_only_global);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, base);
  lua_createtable(L, 0, 3);
  lua_pushvalue(L, base);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, env_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kEnvMetaKey);
  lua_settop(L, 0);
  // The real global table (with load, dofile, ...) is replaced by an empty one; no script
  // ever runs with it as _ENV, this only removes the last reference to those functions.
  lua_newtable(L);
  lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  lua_gc(L, LUA_GCCOLLECT);
  return 0;
}

// __newindex of each run's _ENV: a read-only global cannot be replaced.
int env_newindex(lua_State* L) {
  RunContext* ctx = detail::context(L);
  if (ctx && ctx->env && lua_type(L, 2) == LUA_TSTRING) {
    size_t n = 0;
    const char* key = lua_tolstring(L, 2, &n);
    for (const auto& global : ctx->env->globals)
      if (global.name == std::string_view(key, n))
        return luaL_error(L, "cannot assign to read-only global '%s'", key);
  }
  lua_rawset(L, 1);
  return 0;
}

bool valid_global_name(lua_State* L, std::string_view name) {
  if (name.empty() || name.size() > 64 || name == "vars" || name == "_ENV" || name == "_G")
    return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  if (detail::is_keyword(name)) return false;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kBaseKey);
  lua_pushlstring(L, name.data(), name.size());
  bool taken = lua_rawget(L, -2) != LUA_TNIL;
  lua_pop(L, 2);
  return !taken;
}

void host_error(RunContext* ctx, ErrorKind kind, const std::string& message) {
  ctx->has_error = true;
  ctx->error = Error{kind, 0, message};
}

}  // namespace

struct SandboxAccess {
  // Pushes the compiled chunk; returns false (with ctx->error set) on a syntax error.
  static bool push_chunk(lua_State* L, RunArgs* args) {
    Sandbox& sb = *args->sandbox;
    RunContext* ctx = args->ctx;
    std::string_view source = args->source;
    auto it = sb.cache_.find(source);
    if (it != sb.cache_.end() && it->second.name == args->chunk_name) {
      it->second.last_used = ++sb.clock_;
      ctx->short_src = it->second.short_src;
      lua_rawgeti(L, LUA_REGISTRYINDEX, it->second.ref);
      return true;
    }
    ctx->short_src = short_source(args->chunk_name);
    if (!source.empty() && source[0] == LUA_SIGNATURE[0]) {
      host_error(ctx, ErrorKind::syntax, "binary chunks are not allowed");
      return false;
    }
    std::string name = "=" + std::string(args->chunk_name);
    int status = luaL_loadbufferx(L, source.data(), source.size(), name.c_str(), "t");
    if (status == LUA_ERRMEM) lua_error(L);  // reported as a memory kill
    if (status != LUA_OK) {
      size_t n = 0;
      const char* s = lua_tolstring(L, -1, &n);
      std::string message(s, n);
      int line = 0;
      strip_position(message, ctx->short_src, line);
      ctx->has_error = true;
      ctx->error = make_error(ErrorKind::syntax, line, message);
      return false;
    }
    if (source.size() > sb.options_.max_cached_source_bytes || sb.options_.chunk_cache_entries == 0)
      return true;
    if (it != sb.cache_.end()) {  // same source, other name: replace
      luaL_unref(L, LUA_REGISTRYINDEX, it->second.ref);
      sb.cache_.erase(it);
    }
    if (sb.cache_.size() >= sb.options_.chunk_cache_entries) {
      auto oldest = sb.cache_.begin();
      for (auto i = sb.cache_.begin(); i != sb.cache_.end(); ++i)
        if (i->second.last_used < oldest->second.last_used) oldest = i;
      luaL_unref(L, LUA_REGISTRYINDEX, oldest->second.ref);
      sb.cache_.erase(oldest);
    }
    lua_pushvalue(L, -1);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    sb.cache_.emplace(std::string(source), Sandbox::CacheEntry{std::string(args->chunk_name),
                                                               ctx->short_src, ref, ++sb.clock_});
    return true;
  }

  static int protected_run(lua_State* L) {
    auto* args = static_cast<RunArgs*>(lua_touserdata(L, 1));
    RunContext* ctx = args->ctx;
    const Environment& env = *args->env;
    lua_settop(L, 0);
    if (!push_chunk(L, args)) return 0;  // [1] = chunk

    // Fresh _ENV.
    ctx->default_kind = ErrorKind::bad_value;
    for (const auto& global : env.globals) {
      auto& known = args->sandbox->valid_names_;
      if (global.value && std::find(known.begin(), known.end(), global.name) != known.end())
        continue;
      if (global.value && valid_global_name(L, global.name) && known.size() < 32) {
        known.emplace_back(global.name);
        continue;
      }
      if (!global.value || !valid_global_name(L, global.name)) {
        host_error(ctx, ErrorKind::bad_value,
                   "invalid read-only global name '" + std::string(global.name) + "'");
        return 0;
      }
    }
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &kRunGlobalsKey);
    lua_createtable(L, 0, 4);  // [2] = _ENV
    lua_rawgetp(L, LUA_REGISTRYINDEX, &kEnvMetaKey);
    lua_setmetatable(L, 2);
    if (env.vars) {
      if (!env.vars->is_object()) {
        host_error(ctx, ErrorKind::bad_value, "vars must be a JSON object");
        return 0;
      }
      lua_pushliteral(L, "vars");
      detail::push_json(L, *env.vars, ctx->limits.json_depth);
      lua_rawset(L, 2);
    }
    lua_pushvalue(L, 2);
    if (!lua_setupvalue(L, 1, 1)) lua_pop(L, 1);  // a chunk's only upvalue is _ENV

    // Run.
    ctx->default_kind = ErrorKind::runtime;
    ctx->hook_mask = LUA_MASKCOUNT | LUA_MASKCALL;
    ctx->quantum = static_cast<int>(std::min<uint64_t>(kQuantum, ctx->limits.instructions + 1));
    lua_sethook(L, detail::hook, ctx->hook_mask, ctx->quantum);
    lua_pushvalue(L, 1);
    lua_call(L, 0, LUA_MULTRET);
    if (!ctx->killed) lua_sethook(L, nullptr, 0, 0);
    if (ctx->killed) return 0;

    // Results: [3..top].
    ctx->default_kind = ErrorKind::bad_value;
    int top = lua_gettop(L);
    Result& result = *args->result;
    std::string error;
    result.values.reserve(static_cast<size_t>(top - 2));
    for (int i = 3; i <= top; ++i) {
      nlohmann::json value;
      if (!detail::to_json(L, i, value, error)) {
        host_error(ctx, ErrorKind::bad_value, "return value " + std::to_string(i - 2) + error);
        return 0;
      }
      result.values.push_back(std::move(value));
    }
    if (env.vars && env.return_vars) {
      lua_pushliteral(L, "vars");
      int type = lua_rawget(L, 2);
      if (type != LUA_TTABLE) {
        host_error(ctx, ErrorKind::bad_value,
                   std::string("vars must stay a table, but the script set it to a ") +
                       lua_typename(L, type));
        return 0;
      }
      if (!detail::to_json(L, -1, result.vars, error)) {
        host_error(ctx, ErrorKind::bad_value, "vars" + error);
        return 0;
      }
      if (!result.vars.is_object()) {
        host_error(ctx, ErrorKind::bad_value, "vars must stay an object, not an array");
        return 0;
      }
    }
    return 0;
  }
};

Sandbox::Sandbox(SandboxOptions options) : options_(options), heap_(std::make_unique<Heap>()) {}

Sandbox::~Sandbox() {
  close_state();
}

void Sandbox::open_state() {
  heap_->used = 0;
  heap_->cap = std::numeric_limits<size_t>::max();
  heap_->run = nullptr;
  lua_State* L = lua_newstate(allocate, heap_.get());
  if (!L) throw std::bad_alloc();
  heap_->L = L;
  *static_cast<RunContext**>(lua_getextraspace(L)) = nullptr;
  lua_atpanic(L, panic);
  lua_pushcfunction(L, setup_state);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    lua_close(L);
    throw std::bad_alloc();
  }
  L_ = L;
  ++states_opened_;
}

void Sandbox::close_state() {
  if (!L_) return;
  lua_sethook(L_, nullptr, 0, 0);
  *static_cast<RunContext**>(lua_getextraspace(L_)) = nullptr;
  heap_->run = nullptr;
  lua_close(L_);
  L_ = nullptr;
  heap_->L = nullptr;
  cache_.clear();
}

size_t Sandbox::memory_in_use() const {
  return L_ ? heap_->used : 0;
}

void Sandbox::collect_garbage() {
  if (L_) lua_gc(L_, LUA_GCCOLLECT);
}

Result Sandbox::run(std::string_view source, std::string_view chunk_name, const Environment& env,
                    const Limits& limits) {
  if (!L_) open_state();
  lua_State* L = L_;
  Result result;
  RunContext ctx;
  ctx.limits = limits;
  ctx.env = &env;
  ctx.deadline = Clock::now() + limits.wall_clock;
  ctx.next_clock_check = 1024;
  heap_->cap =
      heap_->used + std::min(limits.memory_bytes, std::numeric_limits<size_t>::max() - heap_->used);
  heap_->churn = 0;
  heap_->run = &ctx;
  *static_cast<RunContext**>(lua_getextraspace(L)) = &ctx;

  RunArgs args{this, source, chunk_name, &env, &ctx, &result};
  lua_settop(L, 0);
  lua_pushcfunction(L, message_handler);
  lua_pushcfunction(L, SandboxAccess::protected_run);
  lua_pushlightuserdata(L, &args);
  int status = lua_pcall(L, 1, 0, 1);
  lua_settop(L, 0);
  lua_sethook(L, nullptr, 0, 0);
  *static_cast<RunContext**>(lua_getextraspace(L)) = nullptr;
  heap_->run = nullptr;
  heap_->cap = std::numeric_limits<size_t>::max();

  if (ctx.killed) {
    result.error = make_error(ctx.kill_kind, ctx.kill_line, ctx.kill_message);
  } else if (status == LUA_ERRMEM) {
    result.error =
        make_error(ErrorKind::memory_limit, 0,
                   "memory limit of " + std::to_string(limits.memory_bytes) + " bytes exceeded");
  } else if (ctx.has_error) {
    result.error = ctx.error;
  } else if (status != LUA_OK) {
    result.error = make_error(ErrorKind::runtime, 0,
                              status == LUA_ERRERR ? "error in error handling" : "script failed");
  }
  if (result.error) {
    result.values.clear();
    result.vars = nullptr;
    // A state that hit a limit (or a memory error, which may have happened anywhere) is
    // never reused: close it now so its memory returns at once.
    if (result.error->is_limit()) close_state();
  }
  return result;
}

}  // namespace flowrt::sandbox
