// Checks shared by the plugin probe (a child process) and the in-process loader: what a
// plugin file must look like before it is loaded, what its manifest must say, and how a
// dynamic loader error reads to a plugin author. Each returns a reason that says what is
// wrong and what to do, or nothing when all is well.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <flowrt/plugin_abi.h>
#include <nlohmann/json.hpp>

namespace flowrt::runtime::plugin_host {

// The demangled type and what() of the exception being handled (what is empty for an
// exception not derived from std::exception). Call only inside a catch block.
struct CurrentException {
  std::string type;
  std::optional<std::string> what;
};
CurrentException describe_current_exception();

// File checks done without loading anything: a regular file, not writable by every user,
// an ELF shared object of this machine's class, byte order and architecture, with every
// header and loadable segment inside the file (so not truncated).
std::optional<std::string> check_plugin_file(const std::filesystem::path& file);

// The manifest a plugin exports, copied into host memory.
struct ManifestInfo {
  uint32_t abi_version = 0;
  std::string fingerprint;
  std::string name;
  std::string version;
  std::string description;
};

// The host's own build fingerprint (FLOWRT_PLUGIN_FINGERPRINT as compiled into the host).
const char* host_fingerprint();

// Checks magic, ABI version (before reading anything else), fingerprint, name and version;
// fills `out` when they are acceptable.
std::optional<std::string> check_manifest(const flowrt_manifest* manifest, ManifestInfo* out);

// Checks what describe() wrote: {"config_schema": {...}, "secrets_schema": {...},
// "replies": "push" | "response"}; stores the parsed object in `out`.
std::optional<std::string> check_description(const std::string& text, nlohmann::json* out);

// Turns a dlopen error (dlerror text) into an actionable reason: a missing dependency
// names the library, an undefined symbol names the (demangled) symbol.
std::string explain_load_error(const std::string& dlerror_text);

// dlerror's text out of a Boost.DLL exception message ("... (dlerror system message: X)").
std::string dlerror_from_boost(const std::string& what);

}  // namespace flowrt::runtime::plugin_host
