// Shared fixtures of the sandbox suites.
#pragma once

#include <chrono>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "sandbox/sandbox.hpp"

namespace flowrt::sandbox::testing {

using nlohmann::json;

// The globals the runtime passes to a node script, with small realistic values.
struct StandardGlobals {
  json contact = {{"id", "c-1"}, {"name", "Ana"}, {"phone", "+5511912345678"}};
  json message = {{"text", "hello"}, {"data", {{"items", {1, 2, 3}}, {"kind", "order"}}}};
  json flow = {{"id", "lead-qualification"}};
  json tenant = {{"name", "acme"}};
  json vars = {{"budget", 1500}, {"tags", json::array({"a"})}};

  Environment environment() const {
    Environment env;
    env.add("contact", contact).add("message", message).add("flow", flow).add("tenant", tenant);
    env.vars = &vars;
    return env;
  }
};

inline Result run_once(const std::string& source, const Environment& env = {},
                       const Limits& limits = {}) {
  Sandbox sandbox;
  return sandbox.run(source, "script", env, limits);
}

}  // namespace flowrt::sandbox::testing
