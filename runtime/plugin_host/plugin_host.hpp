// The plugin host: finds provider plugins in a directory, vets each one in a throw-away
// child process, loads the ones that pass, and lets the rest of the runtime call them
// without ever being taken down by them.
//
// Loading, in order, for every regular file in the directory (sorted by name, dot-files
// skipped):
//   1. file checks, without loading anything: not world-writable, an ELF shared object
//      for this machine, not truncated (elf_check.hpp);
//   2. the probe: `flowrt-plugin-probe FILE` in a child process dlopens it (RTLD_NOW), reads
//      and checks the manifest, calls the factory and describe() once, and reports. A
//      static constructor that throws, exits, crashes or hangs kills only the child; the
//      parent maps the outcome to a reason (probe.hpp);
//   3. in-process: Boost.DLL (RTLD_NOW), the manifest checked again, the factory called
//      again, describe() parsed; a provider name already taken fails the later file.
// A file that fails any step is recorded with its reason and the scan goes on.
//
// Calls: every provider call goes through the plugin's C vtable (flowrt/plugin_abi.h);
// inputs are views into host memory, outputs are copied out through a sink during the
// call, and an exception that escapes anyway is caught here. Each call returns a
// CallResult: a value, or a CallError saying whether the input was rejected, the channel
// is misconfigured, the call may be retried, or the plugin failed.
//
// Lifetime: a Provider owns the object the plugin's factory made (destroyed by the
// plugin's own destroy function) and a reference to the loaded library, so the library
// stays mapped while any Provider from it is alive, even after the registry is gone.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/http.hpp"

namespace flowrt::runtime::plugin_host {

struct PluginHostOptions {
  std::filesystem::path directory;  // the plugin directory to scan
  // The probe executable. Empty: default_probe_path().
  std::filesystem::path probe_path;
  // How long the probe may take per file before it is killed.
  std::chrono::milliseconds probe_timeout{5000};
};

// `flowrt-plugin-probe` next to the running executable if it exists there, else the one
// in the build tree this library was built in.
std::filesystem::path default_probe_path();
// The directory the build put the bundled providers in (for defaults in a build tree).
std::filesystem::path bundled_plugin_directory();

// What GET /v1/plugins shows for a loaded provider.
struct ProviderInfo {
  std::string name;
  std::string version;
  std::string description;
  uint32_t abi_version = 0;
  std::string fingerprint;
  std::filesystem::path path;
  nlohmann::json config_schema;
  nlohmann::json secrets_schema;
  bool replies_in_response = false;  // webchat: replies go back in the webhook response
};

// A file in the plugin directory (or the directory itself) that did not load, and why.
struct LoadFailure {
  std::filesystem::path path;
  std::string reason;
};

enum class CallStatus {
  rejected,    // the input is refused (bad signature, malformed payload): answer 4xx
  bad_config,  // the channel's config or secrets are wrong: fix the channel
  retry,       // transient: the same call may succeed later (outbox backoff)
  failed,      // the plugin failed (threw, returned garbage): a bug in the plugin
};
std::string_view to_string(CallStatus status);

struct CallError {
  CallStatus status = CallStatus::failed;
  std::string message;  // names the provider and the operation
};

// A value or a CallError.
template <class T>
class CallResult {
 public:
  CallResult(T value) : state_(std::move(value)) {}
  CallResult(CallError error) : state_(std::move(error)) {}

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  const CallError& error() const { return std::get<1>(state_); }

 private:
  std::variant<T, CallError> state_;
};

struct Accepted {};  // the value of a successful signature check

// An HTTP request that reached a channel's webhook.
struct InboundRequest {
  std::string method = "POST";
  std::string path;
  HeaderList query;    // decoded parameters
  HeaderList headers;  // any case; lower-cased before the plugin sees them
  std::string body;
  int64_t received_at_ms = 0;  // the server's clock, Unix ms
};

// A channel's provider settings.
struct ChannelSettings {
  nlohmann::json config = nlohmann::json::object();
  nlohmann::json secrets = nlohmann::json::object();
};

// The answer to a verification handshake, to be sent as the HTTP response.
struct VerifyReply {
  int status = 200;
  std::string content_type;
  std::string body;
};

struct InboundEvent {
  std::string message_id;  // "" when the provider has none (no deduplication possible)
  std::string contact_id;  // never empty
  std::string contact_name;
  std::string contact_phone;
  std::string text;
  nlohmann::json data = nlohmann::json::object();
  int64_t timestamp_ms = 0;
};

struct OutboundMessage {
  std::string conversation_id;
  std::string contact_id;
  std::string text;
  int64_t now_ms = 0;
};

struct SendReceipt {
  std::string provider_message_id;
};

class LoadedLibrary;  // the dlopen'ed file; private to the host

// A loaded provider. Thread-safe: every method may be called concurrently. Keeps its
// plugin library loaded for as long as it lives.
class Provider {
 public:
  ~Provider();
  Provider(const Provider&) = delete;
  Provider& operator=(const Provider&) = delete;

  const ProviderInfo& info() const { return info_; }
  const std::string& name() const { return info_.name; }

  // Answers a GET verification handshake (e.g. WhatsApp's hub.challenge).
  CallResult<VerifyReply> verify(const InboundRequest& request,
                                 const ChannelSettings& channel) const;
  // Accepted when the request is authentic; rejected (→ 401) when not.
  CallResult<Accepted> check_signature(const InboundRequest& request,
                                       const ChannelSettings& channel) const;
  // The request's normalised events (possibly none). Call after check_signature.
  CallResult<std::vector<InboundEvent>> parse(const InboundRequest& request,
                                              const ChannelSettings& channel) const;
  // Delivers one message; outbound HTTP goes through `http`, lent for this call only.
  CallResult<SendReceipt> send(const OutboundMessage& message, const ChannelSettings& channel,
                               HttpClient& http) const;

 private:
  friend class PluginRegistry;
  Provider(std::shared_ptr<const LoadedLibrary> library, void* object, ProviderInfo info);

  // Declared first so that it is destroyed last: the object is destroyed (by the plugin's
  // own destroy function) while the library is still mapped.
  std::shared_ptr<const LoadedLibrary> library_;
  void* object_;  // flowrt_provider*
  ProviderInfo info_;
};

// The providers found in one plugin directory. Built once at start; immutable afterwards,
// so it can be shared by every thread.
class PluginRegistry {
 public:
  // Scans options.directory. Never throws for a faulty plugin or directory: those become
  // failures(). Throws only when the host itself cannot work (e.g. no probe executable).
  static PluginRegistry load(const PluginHostOptions& options);

  PluginRegistry(PluginRegistry&&) noexcept = default;
  PluginRegistry& operator=(PluginRegistry&&) noexcept = default;
  ~PluginRegistry();

  // Loaded providers, sorted by name.
  std::vector<ProviderInfo> providers() const;
  // Files that failed, in scan order (the directory itself when it is missing or empty).
  const std::vector<LoadFailure>& failures() const { return failures_; }
  // The provider called `name`, or null. The handle stays valid after the registry dies.
  std::shared_ptr<const Provider> find(std::string_view name) const;

  // The body of GET /v1/plugins:
  //   {"directory": "...",
  //    "providers": [{"name", "version", "description", "abi_version", "path",
  //                   "config_schema", "secrets_schema", "replies"}],
  //    "failures": [{"path", "reason"}]}
  nlohmann::json to_json() const;

 private:
  PluginRegistry() = default;
  std::filesystem::path directory_;
  std::vector<std::shared_ptr<const Provider>> providers_;
  std::vector<LoadFailure> failures_;
};

// `flowrt plugins`: scans the directory and prints one line per loaded provider (name,
// version, ABI, path) and one per failure (path: reason). Returns 0 when every file
// loaded and there was at least one, 1 otherwise.
int run_plugins_command(const PluginHostOptions& options, std::ostream& out);
int run_plugins_command(const std::filesystem::path& directory, std::ostream& out);

}  // namespace flowrt::runtime::plugin_host
