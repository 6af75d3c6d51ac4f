// flowrt::sandbox — run tenant Lua safely and fast.
//
// The sandbox runs one Lua chunk with the globals it is given, under limits, and converts
// values between Lua and JSON. It knows nothing about flows: the runtime decides which
// globals a node's script sees and what its return values mean (SPEC §2, §3).
//
// A script sees exactly: assert error ipairs next pairs pcall select tonumber tostring type
// xpcall rawequal rawlen rawget setmetatable getmetatable, string (no dump), table, math,
// utf8, json.encode, json.decode, log(...), now(), `vars` (read/write) and the read-only
// globals passed in an Environment. docs/scripting.md is the author-facing manual,
// including the JSON<->Lua value rules implemented here.
//
// Thread-safety: a Sandbox is not thread-safe; use one from one thread at a time (the
// SandboxPool hands each one to a single holder). Different Sandboxes are independent and
// may run concurrently. The free functions are thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

struct lua_State;

namespace flowrt::sandbox {

// Limits of ONE execution (one call to Sandbox::run). The server configures one Limits;
// a tenant's own Limits can only lower it (see lowered_by).
struct Limits {
  // Lua VM instructions, plus steps charged by library functions whose cost grows with
  // their input (pattern matching, string.rep, table.concat, json.*, ...).
  uint64_t instructions = 1'000'000;
  // Bytes the run may allocate in the Lua heap on top of what the state held when the run
  // started; also the cap on the size of a JSON value built from Lua.
  size_t memory_bytes = 16 << 20;
  // Wall-clock deadline of the run, measured with a monotonic clock.
  std::chrono::milliseconds wall_clock{100};
  // Maximum number of active function calls (Lua or library) of the script.
  int call_depth = 200;
  // Maximum nesting of tables/arrays/objects crossing the Lua<->JSON boundary.
  int json_depth = 64;

  // Returns, field by field, the smaller of *this and `tenant`: per-tenant limits can lower
  // the server's limits, never raise them. Zero or negative tenant values count as-is
  // (e.g. instructions = 0 forbids running anything).
  Limits lowered_by(const Limits& tenant) const;
};

enum class ErrorKind {
  syntax,             // the chunk does not compile (or is a binary chunk)
  runtime,            // the script raised an error (error(), a failed operation, ...)
  instruction_limit,  // Limits::instructions exhausted
  memory_limit,       // Limits::memory_bytes exhausted
  time_limit,         // Limits::wall_clock passed
  depth_limit,        // Limits::call_depth exceeded, or Lua's own stack overflow
  bad_value,          // a value could not cross the Lua<->JSON boundary
};

// "syntax", "runtime", "instruction_limit", ...
std::string_view to_string(ErrorKind kind);

struct Error {
  ErrorKind kind = ErrorKind::runtime;
  int line = 0;  // Lua source line of the failure, 0 if unknown
  // Human sentence, prefixed with "line N: " when the line is known, e.g.
  // "line 3: attempt to index a nil value (field 'x')" or
  // "line 1: instruction limit of 1000000 exceeded".
  std::string message;

  // True for the kinds that kill a run (instruction, memory, time and depth limits).
  bool is_limit() const;
};

// Checks that `source` compiles as a text chunk, without running it. Returns the syntax
// error (kind syntax, with line) or nothing. `chunk_name` is used in messages only.
// Compilation memory is bounded by Limits{}.memory_bytes. Thread-safe.
std::optional<Error> check_syntax(std::string_view source, std::string_view chunk_name = "script");

// The chunk the runtime runs for a `when` expression: "return (" + expr + "\n)". Line 1 of
// the expression stays line 1 of the chunk.
std::string expression_chunk(std::string_view expression);

// The globals and callbacks one run sees. Nothing here is copied by run(): the referenced
// JSON values and callbacks must stay alive until run() returns.
struct Environment {
  struct Global {
    std::string_view name;  // a Lua identifier, not a keyword or a library name
    // Read-only in the script: converted on the first read of `name` in a run, to proxy
    // tables (writes raise an error); scalars become plain Lua values.
    const nlohmann::json* value;
  };
  // Read-only globals (contact, message, flow, tenant, answer, response, ...). A value
  // nested deeper than Limits::json_depth fails the run with bad_value when first read.
  std::vector<Global> globals;
  // The read/write global `vars`; must be a JSON object. Null: the script has no `vars`.
  const nlohmann::json* vars = nullptr;
  // False when the caller ignores the final `vars` (e.g. for `when` expressions): the run
  // then skips converting it back and Result::vars stays null.
  bool return_vars = true;
  // Receives one line per log(...) call (arguments joined by spaces; see docs). Empty: log()
  // does nothing. Called on the thread that called run(); must not call back into the
  // Sandbox. At most kMaxLogLines lines of at most kMaxLogLineBytes bytes are delivered.
  std::function<void(std::string_view line)> log;
  // Value returned by now() in Unix milliseconds. Empty: the system clock.
  std::function<int64_t()> now_ms;

  // Convenience: adds a read-only global and returns *this.
  Environment& add(std::string_view name, const nlohmann::json& value) {
    globals.push_back({name, &value});
    return *this;
  }
};

inline constexpr int kMaxLogLines = 100;
inline constexpr size_t kMaxLogLineBytes = 4096;

struct Result {
  std::optional<Error> error;          // set when the run failed; then the rest is empty
  std::vector<nlohmann::json> values;  // the chunk's return values in order (nil -> null)
  nlohmann::json vars;  // final `vars` (null when Environment::vars was null or !return_vars)

  bool ok() const { return !error; }
};

// Lua truthiness of a JSON value: false only for null and false.
bool truthy(const nlohmann::json& value);

struct SandboxOptions {
  // Compiled chunks kept per state (least recently used evicted first).
  size_t chunk_cache_entries = 64;
  // Sources longer than this are compiled for every run instead of being cached.
  size_t max_cached_source_bytes = 64 << 10;
};

// One lua_State for ONE tenant, reused across many runs. Each run gets a fresh _ENV; nothing
// a script does is visible to the next run except compiled-chunk caching and the state of
// math.random. After a run killed by a limit (or by a memory error) the lua_State is closed
// at once and a new one is opened by the next run, so a poisoned state is never reused.
// Not thread-safe; not copyable; movable only as a unique_ptr.
class Sandbox {
 public:
  explicit Sandbox(SandboxOptions options = {});
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  // Runs `source` (a text chunk; binary chunks are refused) with `env`, under `limits`.
  // `chunk_name` names the chunk in the compile cache and debug info. Never throws on
  // script failure: the failure is in Result::error. May throw std::bad_alloc if the host
  // itself runs out of memory.
  Result run(std::string_view source, std::string_view chunk_name, const Environment& env,
             const Limits& limits);

  // Bytes currently held by the Lua heap of this sandbox (0 while no state is open).
  size_t memory_in_use() const;
  // Runs a full garbage collection (for idle time and tests).
  void collect_garbage();
  // Number of lua_States this Sandbox has opened so far (a new one after each kill).
  uint64_t states_opened() const { return states_opened_; }

  struct Heap;  // allocator accounting; defined in sandbox.cpp

 private:
  struct CacheEntry {
    std::string name;
    std::string short_src;  // Lua's short source name, to strip "name:line:" prefixes
    int ref = 0;            // registry reference of the compiled function
    uint64_t last_used = 0;
  };

  void open_state();
  void close_state();
  friend struct SandboxAccess;

  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  SandboxOptions options_;
  std::unique_ptr<Heap> heap_;
  lua_State* L_ = nullptr;
  uint64_t states_opened_ = 0;
  uint64_t clock_ = 0;
  std::unordered_map<std::string, CacheEntry, StringHash, std::equal_to<>> cache_;
  std::vector<std::string> valid_names_;  // read-only global names already validated
};

struct PoolOptions {
  size_t max_idle_per_tenant = 4;  // idle states kept per tenant
  size_t max_idle_total = 256;     // idle states kept overall (least recently used dropped)
  SandboxOptions sandbox;
};

// Hands out Sandboxes keyed by tenant id: a Sandbox (and its lua_State) only ever serves
// the tenant it was created for, and only one holder at a time. Idle Sandboxes are kept
// per tenant and reused; a holder on any thread may take one. Thread-safe.
class SandboxPool {
 public:
  // Exclusive use of one Sandbox until destroyed; then it returns to the pool. Movable.
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    ~Lease();
    Sandbox& operator*() const { return *sandbox_; }
    Sandbox* operator->() const { return sandbox_.get(); }

   private:
    friend class SandboxPool;
    Lease(SandboxPool* pool, std::string tenant, std::unique_ptr<Sandbox> sandbox);
    SandboxPool* pool_;
    std::string tenant_;
    std::unique_ptr<Sandbox> sandbox_;
  };

  explicit SandboxPool(PoolOptions options = {});
  ~SandboxPool();  // all Leases must have been destroyed

  // A Sandbox that serves `tenant_id` only: an idle one of that tenant, or a new one.
  Lease acquire(std::string_view tenant_id);

  size_t idle_count() const;
  // Lua heap bytes held by idle Sandboxes (leased ones are not counted).
  size_t idle_memory() const;

 private:
  void release(std::string tenant, std::unique_ptr<Sandbox> sandbox);
  struct Idle {
    std::string tenant;
    std::unique_ptr<Sandbox> sandbox;
  };
  PoolOptions options_;
  mutable std::mutex mutex_;
  std::list<Idle> idle_;  // most recently released first
};

}  // namespace flowrt::sandbox
