// A Lua chunk carried by a flow, ready to run.
#pragma once

#include <string>

namespace flowrt::runtime {

// The source as the sandbox compiles it (a `when` expression already wrapped as
// `return (...)`) and the name its errors and compile cache use ("ask_budget.script").
struct LuaChunk {
  std::string source;
  std::string name;
  bool expression = false;  // a `when` string: it reads vars but cannot change them
  bool empty() const { return source.empty(); }
};

}  // namespace flowrt::runtime
