// Runs flowrt-plugin-probe on one file in a child process and turns what happened into a
// report: the manifest and description when the plugin passed, otherwise a reason that
// says at which step it failed and how (an error it reported, an exit, a signal, a hang).
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/plugin_host/checks.hpp"

namespace flowrt::runtime::plugin_host {

struct ProbeReport {
  bool ok = false;
  std::string reason;          // when !ok
  ManifestInfo manifest;       // when ok
  nlohmann::json description;  // when ok: what describe() returned
};

// Never throws for anything the plugin does; a probe that cannot be started is a failed
// report naming the probe.
ProbeReport run_probe(const std::filesystem::path& probe, const std::filesystem::path& plugin,
                      std::chrono::milliseconds timeout);

}  // namespace flowrt::runtime::plugin_host
