// string.find / match / gmatch / gsub with a step budget.
//
// Lua's own pattern matcher is a C function and so runs without hooks: a short pattern
// such as ('a*'):rep(12)..'b' against 5000 'a's backtracks for minutes. This is an
// independent implementation of Lua 5.4's pattern language (same syntax, same results,
// same error messages) that counts one step per matcher call, per character tried by a
// repetition or a balance, and per start position, and charges the steps to the run's
// instruction budget every few hundred steps. Plain searches charge the bytes they scan.
#include <cctype>
#include <cstring>

#include "sandbox/internal.hpp"

namespace flowrt::sandbox::detail {

namespace {

constexpr int kMaxCaptures = 32;
constexpr int kMaxMatchDepth = 200;
constexpr ptrdiff_t kCapUnfinished = -1;
constexpr ptrdiff_t kCapPosition = -2;
constexpr uint32_t kChargeEvery = 512;

inline int uchar(char c) {
  return static_cast<unsigned char>(c);
}

class Matcher {
 public:
  Matcher(lua_State* L, const char* src, size_t src_len, const char* pattern, size_t pattern_len)
      : L_(L), src_begin_(src), src_end_(src + src_len), pat_end_(pattern + pattern_len) {}
  ~Matcher() = default;

  void reset() {
    level_ = 0;
    depth_left_ = kMaxMatchDepth;
  }
  void step() {
    if (++steps_ >= kChargeEvery) flush();
  }
  void flush() {
    if (steps_) charge(L_, steps_);
    steps_ = 0;
  }
  const char* src_begin() const { return src_begin_; }
  const char* src_end() const { return src_end_; }

  // Returns the end of the match of pattern `p` at `s`, or nullptr.
  const char* match(const char* s, const char* p) {
    if (depth_left_-- == 0) luaL_error(L_, "pattern too complex");
    step();
    while (p != pat_end_) {
      switch (*p) {
        case '(':
          if (p + 1 < pat_end_ && p[1] == ')')
            s = start_capture(s, p + 2, kCapPosition);
          else
            s = start_capture(s, p + 1, kCapUnfinished);
          goto done;
        case ')':
          s = end_capture(s, p + 1);
          goto done;
        case '$':
          if (p + 1 == pat_end_) {
            s = (s == src_end_) ? s : nullptr;
            goto done;
          }
          goto single;
        case '%':
          if (p + 1 >= pat_end_) goto single;  // class_end reports the error
          switch (p[1]) {
            case 'b':
              s = match_balance(s, p + 2);
              if (s) {
                p += 4;
                continue;
              }
              goto done;
            case 'f': {
              p += 2;
              if (p >= pat_end_ || *p != '[') luaL_error(L_, "missing '[' after '%%f' in pattern");
              const char* ep = class_end(p);
              int previous = (s == src_begin_) ? 0 : uchar(s[-1]);
              int current = (s < src_end_) ? uchar(*s) : 0;
              if (!match_bracket(previous, p, ep - 1) && match_bracket(current, p, ep - 1)) {
                p = ep;
                continue;
              }
              s = nullptr;
              goto done;
            }
            case '0':
            case '1':
            case '2':
            case '3':
            case '4':
            case '5':
            case '6':
            case '7':
            case '8':
            case '9':
              s = match_capture(s, uchar(p[1]));
              if (s) {
                p += 2;
                continue;
              }
              goto done;
            default:
              goto single;
          }
        default:
        single : {
          const char* ep = class_end(p);
          char suffix = ep < pat_end_ ? *ep : '\0';
          if (!single_match(s, p, ep)) {
            if (suffix == '*' || suffix == '?' || suffix == '-') {
              p = ep + 1;  // accept empty
              continue;
            }
            s = nullptr;
            goto done;
          }
          switch (suffix) {
            case '?': {
              const char* res = match(s + 1, ep + 1);
              if (res) {
                s = res;
                goto done;
              }
              p = ep + 1;
              continue;
            }
            case '+':
              s = max_expand(s + 1, p, ep);
              goto done;
            case '*':
              s = max_expand(s, p, ep);
              goto done;
            case '-':
              s = min_expand(s, p, ep);
              goto done;
            default:
              ++s;
              p = ep;
              continue;
          }
        }
      }
    }
  done:
    ++depth_left_;
    return s;
  }

  // Pushes capture `i` (or the whole match s..e when there are no captures and i == 0).
  void push_capture(int i, const char* s, const char* e) {
    const char* cap = nullptr;
    ptrdiff_t len = get_capture(i, s, e, &cap);
    if (len != kCapPosition) lua_pushlstring(L_, cap, static_cast<size_t>(len));
  }

  // Pushes all captures (or the whole match when `s` is not null and there are none).
  int push_captures(const char* s, const char* e) {
    int n = (level_ == 0 && s) ? 1 : level_;
    luaL_checkstack(L_, n, "too many captures");
    for (int i = 0; i < n; ++i) push_capture(i, s, e);
    return n;
  }

  // Capture `i` as a pointer and length; a position capture is pushed instead and
  // kCapPosition returned.
  ptrdiff_t get_capture(int i, const char* s, const char* e, const char** cap) {
    if (i >= level_) {
      if (i != 0) luaL_error(L_, "invalid capture index %%%d", i + 1);
      *cap = s;
      return e - s;
    }
    ptrdiff_t len = capture_[i].len;
    *cap = capture_[i].start;
    if (len == kCapUnfinished) luaL_error(L_, "unfinished capture");
    if (len == kCapPosition)
      lua_pushinteger(L_, static_cast<lua_Integer>(capture_[i].start - src_begin_) + 1);
    return len;
  }

 private:
  const char* class_end(const char* p) {
    char c = *p++;
    if (c == '%') {
      if (p >= pat_end_) luaL_error(L_, "malformed pattern (ends with '%%')");
      return p + 1;
    }
    if (c == '[') {
      if (p < pat_end_ && *p == '^') ++p;
      for (;;) {  // the first character after '[' or '[^' is never the closing ']'
        if (p >= pat_end_) luaL_error(L_, "malformed pattern (missing ']')");
        c = *p++;
        if (c == '%' && p < pat_end_) ++p;
        if (p < pat_end_ && *p == ']') break;
      }
      return p + 1;
    }
    return p;
  }

  static bool match_class(int c, int cl) {
    bool res;
    switch (std::tolower(cl)) {
      case 'a':
        res = std::isalpha(c);
        break;
      case 'c':
        res = std::iscntrl(c);
        break;
      case 'd':
        res = std::isdigit(c);
        break;
      case 'g':
        res = std::isgraph(c);
        break;
      case 'l':
        res = std::islower(c);
        break;
      case 'p':
        res = std::ispunct(c);
        break;
      case 's':
        res = std::isspace(c);
        break;
      case 'u':
        res = std::isupper(c);
        break;
      case 'w':
        res = std::isalnum(c);
        break;
      case 'x':
        res = std::isxdigit(c);
        break;
      default:
        return cl == c;
    }
    return std::isupper(cl) ? !res : res;
  }

  // `p` points at '[', `ec` at the closing ']'.
  static bool match_bracket(int c, const char* p, const char* ec) {
    bool sig = true;
    if (p[1] == '^') {
      sig = false;
      ++p;
    }
    while (++p < ec) {
      if (*p == '%') {
        ++p;
        if (match_class(c, uchar(*p))) return sig;
      } else if (p[1] == '-' && p + 2 < ec) {
        p += 2;
        if (uchar(p[-2]) <= c && c <= uchar(*p)) return sig;
      } else if (uchar(*p) == c) {
        return sig;
      }
    }
    return !sig;
  }

  bool single_match(const char* s, const char* p, const char* ep) const {
    if (s >= src_end_) return false;
    int c = uchar(*s);
    switch (*p) {
      case '.':
        return true;
      case '%':
        return match_class(c, uchar(p[1]));
      case '[':
        return match_bracket(c, p, ep - 1);
      default:
        return uchar(*p) == c;
    }
  }

  const char* max_expand(const char* s, const char* p, const char* ep) {
    ptrdiff_t i = 0;
    while (single_match(s + i, p, ep)) {
      ++i;
      step();
    }
    while (i >= 0) {  // try the longest repetition first
      const char* res = match(s + i, ep + 1);
      if (res) return res;
      --i;
    }
    return nullptr;
  }

  const char* min_expand(const char* s, const char* p, const char* ep) {
    for (;;) {
      const char* res = match(s, ep + 1);
      if (res) return res;
      if (!single_match(s, p, ep)) return nullptr;
      ++s;
    }
  }

  const char* start_capture(const char* s, const char* p, ptrdiff_t what) {
    if (level_ >= kMaxCaptures) luaL_error(L_, "too many captures");
    capture_[level_].start = s;
    capture_[level_].len = what;
    ++level_;
    const char* res = match(s, p);
    if (!res) --level_;
    return res;
  }

  const char* end_capture(const char* s, const char* p) {
    int l = level_ - 1;
    while (l >= 0 && capture_[l].len != kCapUnfinished) --l;
    if (l < 0) luaL_error(L_, "invalid pattern capture");
    capture_[l].len = s - capture_[l].start;
    const char* res = match(s, p);
    if (!res) capture_[l].len = kCapUnfinished;
    return res;
  }

  const char* match_balance(const char* s, const char* p) {
    if (p + 1 >= pat_end_) luaL_error(L_, "malformed pattern (missing arguments to '%%b')");
    if (s >= src_end_ || *s != *p) return nullptr;
    char open = *p, close = p[1];
    int depth = 1;
    while (++s < src_end_) {
      step();
      if (*s == close) {
        if (--depth == 0) return s + 1;
      } else if (*s == open) {
        ++depth;
      }
    }
    return nullptr;
  }

  const char* match_capture(const char* s, int l) {
    int i = l - '1';
    if (i < 0 || i >= level_ || capture_[i].len == kCapUnfinished)
      luaL_error(L_, "invalid capture index %%%d", i + 1);
    auto len = static_cast<size_t>(capture_[i].len);
    if (static_cast<size_t>(src_end_ - s) >= len && std::memcmp(capture_[i].start, s, len) == 0) {
      steps_ += static_cast<uint32_t>(len / 64);
      return s + len;
    }
    return nullptr;
  }

  struct Capture {
    const char* start;
    ptrdiff_t len;
  };

  lua_State* L_;
  const char* src_begin_;
  const char* src_end_;
  const char* pat_end_;
  int depth_left_ = kMaxMatchDepth;
  int level_ = 0;
  uint32_t steps_ = 0;
  Capture capture_[kMaxCaptures];
};

// Start offset (0-based) of string.find's `init`, as Lua 5.4 computes it.
size_t start_offset(lua_Integer pos, size_t len) {
  if (pos > 0) return static_cast<size_t>(pos) - 1;
  if (pos == 0) return 0;
  if (pos < -static_cast<lua_Integer>(len)) return 0;
  return len - static_cast<size_t>(-pos);
}

bool no_specials(const char* p, size_t len) {
  static constexpr char kSpecials[] = "^$*+?.([%-";
  for (size_t i = 0; i < len; ++i)
    if (std::memchr(kSpecials, p[i], sizeof(kSpecials) - 1)) return false;
  return true;
}

// Plain substring search, charging the bytes it compares.
const char* find_plain(lua_State* L, const char* s, size_t ls, const char* p, size_t lp) {
  if (lp == 0) return s;
  if (lp > ls) return nullptr;
  uint64_t work = 0;
  const char* end = s + (ls - lp) + 1;  // last possible start + 1
  const char* cur = s;
  while (cur < end) {
    const char* hit =
        static_cast<const char*>(std::memchr(cur, *p, static_cast<size_t>(end - cur)));
    if (!hit) break;
    work += static_cast<uint64_t>(hit - cur) / 64 + lp / 64 + 1;
    if (work >= kChargeEvery) {
      charge(L, work);
      work = 0;
    }
    if (std::memcmp(hit + 1, p + 1, lp - 1) == 0) {
      charge(L, work);
      return hit;
    }
    cur = hit + 1;
  }
  charge(L, work + static_cast<uint64_t>(end - cur) / 64);
  return nullptr;
}

int find_aux(lua_State* L, bool find) {
  size_t ls = 0, lp = 0;
  const char* s = luaL_checklstring(L, 1, &ls);
  const char* p = luaL_checklstring(L, 2, &lp);
  size_t init = start_offset(luaL_optinteger(L, 3, 1), ls);
  if (init > ls) {
    lua_pushnil(L);
    return 1;
  }
  if (find && (lua_toboolean(L, 4) || no_specials(p, lp))) {
    const char* hit = find_plain(L, s + init, ls - init, p, lp);
    if (hit) {
      lua_pushinteger(L, static_cast<lua_Integer>(hit - s) + 1);
      lua_pushinteger(L, static_cast<lua_Integer>(hit - s + static_cast<ptrdiff_t>(lp)));
      return 2;
    }
  } else {
    Matcher m(L, s, ls, p, lp);
    bool anchor = lp > 0 && *p == '^';
    if (anchor) ++p;
    const char* s1 = s + init;
    do {
      m.reset();
      m.step();
      const char* e = m.match(s1, p);
      if (e) {
        m.flush();
        if (find) {
          lua_pushinteger(L, static_cast<lua_Integer>(s1 - s) + 1);
          lua_pushinteger(L, static_cast<lua_Integer>(e - s));
          return m.push_captures(nullptr, nullptr) + 2;
        }
        return m.push_captures(s1, e);
      }
    } while (s1++ < m.src_end() && !anchor);
    m.flush();
  }
  lua_pushnil(L);
  return 1;
}

int str_find(lua_State* L) {
  return find_aux(L, true);
}
int str_match(lua_State* L) {
  return find_aux(L, false);
}

struct GmatchState {
  size_t src_len;
  size_t pattern_len;
  size_t position;     // next start offset
  ptrdiff_t last_end;  // end offset of the last match, -1 if none
};

int gmatch_next(lua_State* L) {
  size_t ls = 0, lp = 0;
  const char* s = lua_tolstring(L, lua_upvalueindex(1), &ls);
  const char* p = lua_tolstring(L, lua_upvalueindex(2), &lp);
  auto* state = static_cast<GmatchState*>(lua_touserdata(L, lua_upvalueindex(3)));
  Matcher m(L, s, ls, p, lp);
  for (const char* src = s + state->position; src <= m.src_end(); ++src) {
    m.reset();
    m.step();
    const char* e = m.match(src, p);
    if (e && e - s != state->last_end) {
      state->position = static_cast<size_t>(e - s);
      state->last_end = e - s;
      m.flush();
      return m.push_captures(src, e);
    }
  }
  state->position = ls + 1;
  m.flush();
  return 0;
}

int str_gmatch(lua_State* L) {
  size_t ls = 0, lp = 0;
  luaL_checklstring(L, 1, &ls);
  luaL_checklstring(L, 2, &lp);
  size_t init = start_offset(luaL_optinteger(L, 3, 1), ls);
  lua_settop(L, 2);
  auto* state = static_cast<GmatchState*>(lua_newuserdatauv(L, sizeof(GmatchState), 0));
  *state = GmatchState{ls, lp, init > ls ? ls + 1 : init, -1};
  lua_pushcclosure(L, gmatch_next, 3);
  return 1;
}

void add_string_replacement(lua_State* L, Matcher& m, luaL_Buffer* b, const char* s,
                            const char* e) {
  size_t l = 0;
  const char* news = lua_tolstring(L, 3, &l);
  const char* p;
  m.step();
  while ((p = static_cast<const char*>(std::memchr(news, '%', l))) != nullptr) {
    luaL_addlstring(b, news, static_cast<size_t>(p - news));
    ++p;  // the character after '%' ('\0' at the end of the string)
    if (*p == '%') {
      luaL_addchar(b, *p);
    } else if (*p == '0') {
      luaL_addlstring(b, s, static_cast<size_t>(e - s));
    } else if (std::isdigit(uchar(*p))) {
      const char* cap = nullptr;
      ptrdiff_t len = m.get_capture(*p - '1', s, e, &cap);
      if (len == kCapPosition)
        luaL_addvalue(b);
      else
        luaL_addlstring(b, cap, static_cast<size_t>(len));
    } else {
      luaL_error(L, "invalid use of '%c' in replacement string", '%');
    }
    l -= static_cast<size_t>(p + 1 - news);
    news = p + 1;
    m.step();
  }
  luaL_addlstring(b, news, l);
}

// Returns true if the match was replaced by something else than itself.
bool add_replacement(lua_State* L, Matcher& m, luaL_Buffer* b, const char* s, const char* e,
                     int repl_type) {
  switch (repl_type) {
    case LUA_TFUNCTION: {
      lua_pushvalue(L, 3);
      int n = m.push_captures(s, e);
      lua_call(L, n, 1);
      break;
    }
    case LUA_TTABLE:
      m.push_capture(0, s, e);
      lua_gettable(L, 3);
      break;
    default:
      add_string_replacement(L, m, b, s, e);
      return true;
  }
  if (!lua_toboolean(L, -1)) {  // nil or false: keep the original text
    lua_pop(L, 1);
    luaL_addlstring(b, s, static_cast<size_t>(e - s));
    return false;
  }
  if (!lua_isstring(L, -1)) luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  luaL_addvalue(b);
  return true;
}

int str_gsub(lua_State* L) {
  size_t ls = 0, lp = 0;
  const char* src = luaL_checklstring(L, 1, &ls);
  const char* p = luaL_checklstring(L, 2, &lp);
  const char* last_match = nullptr;
  int repl_type = lua_type(L, 3);
  lua_Integer max_n = luaL_optinteger(L, 4, static_cast<lua_Integer>(ls) + 1);
  luaL_argexpected(L,
                   repl_type == LUA_TNUMBER || repl_type == LUA_TSTRING ||
                       repl_type == LUA_TFUNCTION || repl_type == LUA_TTABLE,
                   3, "string/function/table");
  bool anchor = lp > 0 && *p == '^';
  if (anchor) ++p;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  Matcher m(L, src, ls, p - (anchor ? 1 : 0), lp);
  lua_Integer n = 0;
  bool changed = false;
  while (n < max_n) {
    m.reset();
    m.step();
    const char* e = m.match(src, p);
    if (e && e != last_match) {
      ++n;
      changed = add_replacement(L, m, &b, src, e, repl_type) || changed;
      src = last_match = e;
    } else if (src < m.src_end()) {
      luaL_addchar(&b, *src++);
    } else {
      break;
    }
    if (anchor) break;
  }
  m.flush();
  if (!changed) {
    lua_pushvalue(L, 1);
  } else {
    luaL_addlstring(&b, src, static_cast<size_t>(m.src_end() - src));
    luaL_pushresult(&b);
  }
  lua_pushinteger(L, n);
  return 2;
}

}  // namespace

void register_patterns(lua_State* L, int index) {
  index = lua_absindex(L, index);
  lua_pushcfunction(L, str_find);
  lua_setfield(L, index, "find");
  lua_pushcfunction(L, str_match);
  lua_setfield(L, index, "match");
  lua_pushcfunction(L, str_gmatch);
  lua_setfield(L, index, "gmatch");
  lua_pushcfunction(L, str_gsub);
  lua_setfield(L, index, "gsub");
}

}  // namespace flowrt::sandbox::detail
