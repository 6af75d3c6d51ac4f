// Lua <-> JSON conversion.
//
// Rules (docs/scripting.md has the author's version):
//  - JSON integers become Lua integers, JSON floats Lua floats; Lua floats stay floats even
//    when integral (2.0 -> 2.0). Unsigned JSON integers above 2^63-1 become floats.
//  - JSON arrays become tables with keys 1..n carrying the "json.array" marker metatable,
//    so that an empty array converts back to []. A Lua table is an array when all its keys
//    are positive integers (holes allowed while the largest key is at most twice the number
//    of keys; holes become null), or when it is empty and marked; an object when all its
//    keys are strings; an empty unmarked table is {}. Other keys, or mixed keys, are
//    bad values.
//  - JSON null becomes nil: absent key in an object, hole in an array.
//  - Strings must be valid UTF-8 and pass unchanged. NaN and infinities are bad values.
//  - Lua -> JSON never calls a metamethod (metatables are ignored, except the array marker
//    and read-only proxies, which convert as the value they wrap), detects cycles, bounds
//    the depth by Limits::json_depth, charges one step per value against the instruction
//    budget and the size of the JSON value it builds against Limits::memory_bytes.
//  - json.decode parses straight into Lua values (SAX), so its memory is the Lua heap's.
#include <cmath>
#include <cstring>
#include <vector>

#include "sandbox/internal.hpp"

namespace flowrt::sandbox::detail {

namespace {

char kArrayMetaKey;  // registry: the array marker metatable

bool valid_utf8(const char* s, size_t n) {
  const auto* p = reinterpret_cast<const unsigned char*>(s);
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

int ro_newindex(lua_State* L) {
  if (lua_type(L, 2) == LUA_TSTRING)
    return luaL_error(L, "attempt to modify a read-only table (field '%s')", lua_tostring(L, 2));
  return luaL_error(L, "attempt to modify a read-only table");
}

// Pushes the table wrapped by the proxy at `index`.
void push_proxied(lua_State* L, int index) {
  lua_getmetatable(L, index);
  lua_pushliteral(L, "__index");
  lua_rawget(L, -2);
  lua_remove(L, -2);
}

int ro_len(lua_State* L) {
  push_proxied(L, 1);
  lua_pushinteger(L, static_cast<lua_Integer>(lua_rawlen(L, -1)));
  return 1;
}

int ro_next(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  push_proxied(L, 1);
  lua_insert(L, 2);  // [2] = data, [3] = key
  if (lua_next(L, 2)) return 2;
  lua_pushnil(L);
  return 1;
}

int ro_pairs(lua_State* L) {
  lua_pushcfunction(L, ro_next);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

[[noreturn]] void too_deep(lua_State* L, int limit) {
  luaL_error(L, "JSON value nested deeper than %d levels", limit);
  std::abort();
}

void push_value(lua_State* L, const nlohmann::json& j, int depth, int limit, bool readonly) {
  using T = nlohmann::json::value_t;
  switch (j.type()) {
    case T::null:
      lua_pushnil(L);
      return;
    case T::boolean:
      lua_pushboolean(L, j.get<bool>());
      return;
    case T::number_integer:
      lua_pushinteger(L, static_cast<lua_Integer>(j.get<int64_t>()));
      return;
    case T::number_unsigned: {
      auto v = j.get<uint64_t>();
      if (v <= static_cast<uint64_t>(LUA_MAXINTEGER))
        lua_pushinteger(L, static_cast<lua_Integer>(v));
      else
        lua_pushnumber(L, static_cast<lua_Number>(v));
      return;
    }
    case T::number_float:
      lua_pushnumber(L, j.get<double>());
      return;
    case T::string: {
      const auto& s = j.get_ref<const std::string&>();
      lua_pushlstring(L, s.data(), s.size());
      return;
    }
    case T::array: {
      if (depth >= limit) too_deep(L, limit);
      luaL_checkstack(L, 4, "JSON value too deep");
      lua_createtable(L, static_cast<int>(std::min<size_t>(j.size(), 1 << 20)), 0);
      lua_Integer i = 0;
      for (const auto& item : j) {
        ++i;
        push_value(L, item, depth + 1, limit, readonly);
        if (lua_isnil(L, -1))
          lua_pop(L, 1);
        else
          lua_rawseti(L, -2, i);
      }
      mark_array(L, -1);
      if (readonly) make_readonly(L);
      return;
    }
    case T::object: {
      if (depth >= limit) too_deep(L, limit);
      luaL_checkstack(L, 4, "JSON value too deep");
      lua_createtable(L, 0, static_cast<int>(std::min<size_t>(j.size(), 1 << 20)));
      for (const auto& [key, item] : j.items()) {
        if (item.is_null()) continue;
        lua_pushlstring(L, key.data(), key.size());
        push_value(L, item, depth + 1, limit, readonly);
        lua_rawset(L, -3);
      }
      if (readonly) make_readonly(L);
      return;
    }
    default:
      luaL_error(L, "binary JSON values are not supported");
  }
}

// Approximate host memory of a JSON value built from Lua (nlohmann::json with std::map
// objects and std::vector arrays, malloc headers included), charged to the byte budget.
constexpr size_t kValueBytes = 16;      // every value, also an array slot
constexpr size_t kContainerBytes = 64;  // the vector or map object of a container
constexpr size_t kEntryBytes = 96;      // a map node with its key string, plus key length
constexpr size_t kStringBytes = 32;     // a std::string, plus its length

// Lua -> JSON, see the rules at the top of the file.
class ToJson {
 public:
  explicit ToJson(lua_State* L) : L_(L) {
    RunContext* ctx = context(L);
    if (ctx) {
      depth_limit_ = ctx->limits.json_depth;
      byte_budget_ = ctx->limits.memory_bytes;
    }
  }
  ~ToJson() = default;

  bool run(int index, nlohmann::json& out, std::string& error) {
    bool ok = convert(lua_absindex(L_, index), out);
    if (pending_) charge(L_, pending_);
    if (!ok) error = path_ + ": " + message_;
    return ok;
  }

 private:
  void step(size_t bytes) {
    bytes_ += bytes;
    if (bytes_ > byte_budget_) {
      kill(L_, ErrorKind::memory_limit,
           "memory limit of " + std::to_string(byte_budget_) +
               " bytes exceeded (JSON value too large)");
    }
    if (++pending_ >= 256) {
      charge(L_, pending_);
      pending_ = 0;
    }
  }

  bool fail(std::string message) {
    message_ = std::move(message);
    return false;
  }

  bool convert(int index, nlohmann::json& out) {
    step(kValueBytes);
    switch (lua_type(L_, index)) {
      case LUA_TNIL:
        out = nullptr;
        return true;
      case LUA_TBOOLEAN:
        out = static_cast<bool>(lua_toboolean(L_, index));
        return true;
      case LUA_TNUMBER:
        if (lua_isinteger(L_, index)) {
          out = static_cast<int64_t>(lua_tointeger(L_, index));
        } else {
          double d = lua_tonumber(L_, index);
          if (!std::isfinite(d)) return fail("cannot convert NaN or infinity to JSON");
          out = d;
        }
        return true;
      case LUA_TSTRING: {
        size_t n = 0;
        const char* s = lua_tolstring(L_, index, &n);
        if (!valid_utf8(s, n)) return fail("string is not valid UTF-8");
        step(n + kStringBytes);
        out = std::string(s, n);
        return true;
      }
      case LUA_TTABLE:
        return convert_table(index, out);
      default:
        return fail(std::string("cannot convert a ") + luaL_typename(L_, index) + " to JSON");
    }
  }

  bool convert_table(int index, nlohmann::json& out) {
    const void* self = lua_topointer(L_, index);
    for (const void* p : path_tables_)
      if (p == self) return fail("table contains a cycle");
    if (static_cast<int>(path_tables_.size()) >= depth_limit_)
      return fail("value nested deeper than " + std::to_string(depth_limit_) + " levels");
    if (!lua_checkstack(L_, 6)) return fail("value nested too deeply");
    step(kContainerBytes);

    bool marked_array = false;
    if (lua_getmetatable(L_, index)) {
      lua_rawgetp(L_, LUA_REGISTRYINDEX, &kArrayMetaKey);
      marked_array = lua_rawequal(L_, -1, -2);
      lua_pop(L_, 1);
      lua_pushliteral(L_, "__newindex");
      lua_rawget(L_, -2);
      bool proxy = lua_tocfunction(L_, -1) == ro_newindex;
      lua_pop(L_, 2);
      if (proxy) {
        push_proxied(L_, index);
        bool ok = convert_table(lua_gettop(L_), out);
        lua_pop(L_, 1);
        return ok;
      }
    }

    // Classify the keys.
    size_t count = 0;
    lua_Integer max_key = 0;
    bool has_int = false, has_string = false;
    lua_pushnil(L_);
    while (lua_next(L_, index)) {
      lua_pop(L_, 1);
      step(0);
      ++count;
      int key_type = lua_type(L_, -1);
      if (key_type == LUA_TNUMBER && lua_isinteger(L_, -1) && lua_tointeger(L_, -1) > 0) {
        has_int = true;
        max_key = std::max(max_key, lua_tointeger(L_, -1));
      } else if (key_type == LUA_TSTRING) {
        has_string = true;
      } else {
        std::string what = key_type == LUA_TNUMBER
                               ? "a number key that is not a positive integer"
                               : std::string("a ") + luaL_typename(L_, -1) + " key";
        lua_pop(L_, 1);
        return fail("table with " + what + " cannot be converted to JSON");
      }
    }
    if (has_int && has_string) return fail("table mixes array keys and object keys");

    path_tables_.push_back(self);
    bool ok = true;
    if (has_int || (count == 0 && marked_array)) {
      if (static_cast<uint64_t>(max_key) > 2 * static_cast<uint64_t>(count)) {
        path_tables_.pop_back();
        return fail("sparse array (largest key " + std::to_string(max_key) + ", " +
                    std::to_string(count) + " elements)");
      }
      out = nlohmann::json::array();
      auto& array = out.get_ref<nlohmann::json::array_t&>();
      array.reserve(static_cast<size_t>(max_key));
      for (lua_Integer i = 1; ok && i <= max_key; ++i) {
        lua_rawgeti(L_, index, i);
        array.emplace_back();
        ok = convert(lua_gettop(L_), array.back());
        lua_pop(L_, 1);
        if (!ok) path_ = "[" + std::to_string(i) + "]" + path_;
      }
    } else {
      out = nlohmann::json::object();
      lua_pushnil(L_);
      while (lua_next(L_, index)) {
        size_t n = 0;
        const char* key = lua_tolstring(L_, -2, &n);  // keys are strings here
        std::string name(key, n);
        if (!valid_utf8(key, n)) {
          lua_pop(L_, 2);
          ok = fail("object key is not valid UTF-8");
          break;
        }
        step(n + kEntryBytes);
        ok = convert(lua_gettop(L_), out[name]);
        lua_pop(L_, 1);
        if (!ok) {
          lua_pop(L_, 1);
          path_ = "." + name + path_;
          break;
        }
      }
    }
    path_tables_.pop_back();
    return ok;
  }

  lua_State* L_;
  int depth_limit_ = Limits{}.json_depth;
  size_t byte_budget_ = Limits{}.memory_bytes;
  size_t bytes_ = 0;
  uint64_t pending_ = 0;
  std::vector<const void*> path_tables_;
  std::string path_;
  std::string message_;
};

// json.decode: nlohmann's SAX events build Lua values directly on the Lua stack.
class SaxToLua {
 public:
  using json = nlohmann::json;
  SaxToLua(lua_State* L, int depth_limit) : L_(L), depth_limit_(depth_limit) {}

  bool null() {
    step();
    lua_pushnil(L_);
    return pushed(true);
  }
  bool boolean(bool value) {
    step();
    lua_pushboolean(L_, value);
    return pushed(false);
  }
  bool number_integer(json::number_integer_t value) {
    step();
    lua_pushinteger(L_, static_cast<lua_Integer>(value));
    return pushed(false);
  }
  bool number_unsigned(json::number_unsigned_t value) {
    step();
    if (value <= static_cast<uint64_t>(LUA_MAXINTEGER))
      lua_pushinteger(L_, static_cast<lua_Integer>(value));
    else
      lua_pushnumber(L_, static_cast<lua_Number>(value));
    return pushed(false);
  }
  bool number_float(json::number_float_t value, const json::string_t&) {
    step();
    if (!std::isfinite(value)) return fail("number out of range");
    lua_pushnumber(L_, value);
    return pushed(false);
  }
  bool string(json::string_t& value) {
    step();
    lua_pushlstring(L_, value.data(), value.size());
    return pushed(false);
  }
  bool binary(json::binary_t&) { return fail("binary values are not supported"); }
  bool start_object(std::size_t) { return open(false); }
  bool key(json::string_t& value) {
    step();
    lua_pushlstring(L_, value.data(), value.size());
    return true;
  }
  bool end_object() { return close(); }
  bool start_array(std::size_t) { return open(true); }
  bool end_array() { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) {
    std::string what = ex.what();
    size_t bracket = what.find("] ");
    return fail(bracket == std::string::npos ? what : what.substr(bracket + 2));
  }

  void finish() {
    if (pending_) charge(L_, pending_);
  }
  const std::string& error() const { return error_; }

 private:
  struct Frame {
    bool array;
    lua_Integer next;
  };

  void step() {
    if (++pending_ >= 256) {
      charge(L_, pending_);
      pending_ = 0;
    }
  }
  bool fail(std::string message) {
    error_ = std::move(message);
    return false;
  }
  bool open(bool array) {
    step();
    if (static_cast<int>(frames_.size()) >= depth_limit_)
      return fail("nested deeper than " + std::to_string(depth_limit_) + " levels");
    if (!lua_checkstack(L_, 4)) return fail("nested too deeply");
    lua_newtable(L_);
    if (array) mark_array(L_, -1);
    frames_.push_back({array, 0});
    return true;
  }
  bool close() {
    frames_.pop_back();
    return pushed(false);
  }
  // A value is on top of the stack: store it in the enclosing container, if any.
  bool pushed(bool is_nil) {
    if (frames_.empty()) return true;
    Frame& frame = frames_.back();
    if (frame.array) {
      ++frame.next;
      if (is_nil)
        lua_pop(L_, 1);
      else
        lua_rawseti(L_, -2, frame.next);
    } else if (is_nil) {
      lua_pop(L_, 2);  // value and key
    } else {
      lua_rawset(L_, -3);
    }
    return true;
  }

  lua_State* L_;
  int depth_limit_;
  uint64_t pending_ = 0;
  std::vector<Frame> frames_;
  std::string error_;
};

}  // namespace

bool json_depth_exceeds(const nlohmann::json& value, int limit) {
  if (!value.is_structured()) return false;
  if (limit <= 0) return true;
  for (const auto& item : value)
    if (json_depth_exceeds(item, limit - 1)) return true;
  return false;
}

void setup_convert(lua_State* L) {
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "json.array");
  lua_setfield(L, -2, "__metatable");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kArrayMetaKey);
}

void mark_array(lua_State* L, int index) {
  index = lua_absindex(L, index);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kArrayMetaKey);
  lua_setmetatable(L, index);
}

void make_readonly(lua_State* L) {
  // [-1] = data  ->  [-1] = proxy
  lua_createtable(L, 0, 0);
  lua_createtable(L, 0, 5);
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, ro_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, ro_len);
  lua_setfield(L, -2, "__len");
  lua_pushcfunction(L, ro_pairs);
  lua_setfield(L, -2, "__pairs");
  lua_pushliteral(L, "read-only");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_remove(L, -2);
}

void push_json(lua_State* L, const nlohmann::json& value, int depth_limit) {
  push_value(L, value, 0, depth_limit, false);
}

void push_readonly(lua_State* L, const nlohmann::json& value, int depth_limit) {
  push_value(L, value, 0, depth_limit, true);
}

bool to_json(lua_State* L, int index, nlohmann::json& out, std::string& error) {
  ToJson converter(L);
  return converter.run(index, out, error);
}

void decode_json(lua_State* L, std::string_view text, int depth_limit) {
  int top = lua_gettop(L);
  SaxToLua sax(L, depth_limit);
  bool ok = false;
  bool host_failure = false;
  try {
    ok = nlohmann::json::sax_parse(text.data(), text.data() + text.size(), &sax);
  } catch (const std::exception&) {  // host out of memory; Lua errors are not std::exception
    host_failure = true;
  }
  sax.finish();
  if (host_failure) luaL_error(L, "json.decode: out of memory");
  if (!ok) luaL_error(L, "json.decode: %s", sax.error().c_str());
  if (lua_gettop(L) != top + 1) luaL_error(L, "json.decode: no value");
}

}  // namespace flowrt::sandbox::detail
