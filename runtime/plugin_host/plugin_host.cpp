#include "runtime/plugin_host/plugin_host.hpp"

#include <unistd.h>

#include <cxxabi.h>
#include <algorithm>
#include <cctype>
#include <map>
#include <system_error>
#include <typeinfo>

#include <flowrt/plugin_abi.h>
#include <boost/dll/shared_library.hpp>

#include "runtime/plugin_host/build_paths.hpp"
#include "runtime/plugin_host/checks.hpp"
#include "runtime/plugin_host/probe.hpp"

namespace flowrt::runtime::plugin_host {

// The dlopen'ed plugin and its factory/destroy pair. Shared by every Provider made from
// it; unloaded (dlclose) when the last one goes.
class LoadedLibrary {
 public:
  explicit LoadedLibrary(const std::filesystem::path& file)
      : library_(boost::dll::fs::path(file.string()),
                 boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local) {}

  const boost::dll::shared_library& library() const { return library_; }
  flowrt_create_fn* create = nullptr;
  flowrt_destroy_fn* destroy = nullptr;

 private:
  boost::dll::shared_library library_;
};

namespace {

constexpr size_t kMaxOutput = 8 << 20;  // a plugin call's output beyond this is an error
constexpr int kMaxHttpTimeoutMs = 30000;

// Collects what a plugin writes through a flowrt_sink. Never throws into the plugin.
class Sink {
 public:
  const flowrt_sink* get() { return &sink_; }
  const std::string& text() const { return text_; }
  bool overflowed() const { return overflowed_; }

 private:
  static void write(void* context, const char* data, size_t size) noexcept {
    auto* self = static_cast<Sink*>(context);
    if (data == nullptr || self->overflowed_) return;
    if (self->text_.size() + size > kMaxOutput) {
      self->overflowed_ = true;
      return;
    }
    try {
      self->text_.append(data, size);
    } catch (...) {
      self->overflowed_ = true;
    }
  }
  std::string text_;
  bool overflowed_ = false;
  flowrt_sink sink_{this, &Sink::write};
};

flowrt_bytes bytes(const std::string& text) {
  return {text.data(), text.size()};
}
std::string text_of(flowrt_bytes b) {
  return b.data == nullptr ? std::string() : std::string(b.data, b.size);
}

// Field arrays that point into strings owned by the caller.
std::vector<flowrt_field> fields(const HeaderList& list) {
  std::vector<flowrt_field> result;
  result.reserve(list.size());
  for (const auto& [name, value] : list) result.push_back({bytes(name), bytes(value)});
  return result;
}

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string exception_text() {
  CurrentException current = describe_current_exception();
  return current.what ? current.type + " (" + *current.what + ")" : current.type;
}

// Host-side views of an inbound request: every pointer the plugin sees points into this.
struct InboundView {
  explicit InboundView(const InboundRequest& request) : headers(request.headers) {
    for (auto& header : headers) header.first = lower(header.first);
    query_fields = fields(request.query);
    header_fields = fields(headers);
    raw = {bytes(request.method), bytes(request.path),   query_fields.data(),
           query_fields.size(),   header_fields.data(),  header_fields.size(),
           bytes(request.body),   request.received_at_ms};
  }
  HeaderList headers;
  std::vector<flowrt_field> query_fields, header_fields;
  flowrt_inbound raw;
};

struct ChannelView {
  explicit ChannelView(const ChannelSettings& settings)
      : config(settings.config.is_null() ? "{}" : settings.config.dump()),
        secrets(settings.secrets.is_null() ? "{}" : settings.secrets.dump()) {
    raw = {bytes(config), bytes(secrets)};
  }
  std::string config, secrets;
  flowrt_channel raw;
};

// Lends a runtime::HttpClient to a plugin for one send call.
struct HttpLoan {
  HttpClient* client;

  static void send(void* context, const flowrt_http_request* raw,
                   flowrt_http_response_fn on_response, void* user) noexcept {
    auto* self = static_cast<HttpLoan*>(context);
    HttpResponse response;
    try {
      if (raw == nullptr) throw std::invalid_argument("no request");
      HttpRequest request;
      request.method = text_of(raw->method);
      request.url = text_of(raw->url);
      for (size_t i = 0; raw->headers != nullptr && i < raw->header_count; ++i)
        request.headers.emplace_back(text_of(raw->headers[i].name), text_of(raw->headers[i].value));
      request.body = text_of(raw->body);
      request.timeout_ms =
          std::clamp(raw->timeout_ms <= 0 ? 10000 : raw->timeout_ms, 1, kMaxHttpTimeoutMs);
      response = self->client->send(request);
    } catch (...) {
      response = HttpResponse{};
      response.error = "the host's HTTP client failed: " + exception_text();
    }
    if (on_response == nullptr) return;
    std::vector<flowrt_field> headers;
    try {
      headers = fields(response.headers);
    } catch (...) {
      headers.clear();
    }
    flowrt_http_response out{response.status,       headers.data(),
                             headers.size(),        bytes(response.body),
                             bytes(response.error), response.timed_out ? 1 : 0};
    try {
      on_response(user, &out);
    } catch (...) {
      // A callback that throws is the plugin's bug; it must not unwind through the host.
    }
  }
};

CallStatus status_from(int code) {
  switch (code) {
    case FLOWRT_REJECTED:
      return CallStatus::rejected;
    case FLOWRT_RETRY:
      return CallStatus::retry;
    case FLOWRT_BAD_CONFIG:
      return CallStatus::bad_config;
    default:
      return CallStatus::failed;
  }
}

}  // namespace

std::string_view to_string(CallStatus status) {
  switch (status) {
    case CallStatus::rejected:
      return "rejected";
    case CallStatus::bad_config:
      return "bad_config";
    case CallStatus::retry:
      return "retry";
    case CallStatus::failed:
      return "failed";
  }
  return "failed";
}

std::filesystem::path bundled_plugin_directory() {
  return kBuildPluginDirectory;
}

std::filesystem::path default_probe_path() {
  std::error_code error;
  auto self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (!error) {
    auto beside = self.parent_path() / "flowrt-plugin-probe";
    if (std::filesystem::exists(beside, error)) return beside;
  }
  return kBuildProbePath;
}

// ---------------------------------------------------------------------------------------
// Provider

namespace {

const flowrt_provider* as_provider(void* object) {
  return static_cast<const flowrt_provider*>(object);
}

// Runs one vtable call and turns the outcome into a CallError, or the output text.
template <class Call>
std::variant<std::string, CallError> invoke(const ProviderInfo& info, const char* operation,
                                            Call&& call) {
  Sink out;
  int code = FLOWRT_FAILED;
  try {
    code = call(out.get());
  } catch (...) {
    return CallError{CallStatus::failed,
                     "provider " + info.name + ": " + operation +
                         " let an exception escape into the host: " + exception_text()};
  }
  if (out.overflowed())
    return CallError{CallStatus::failed, "provider " + info.name + ": " + operation +
                                             " wrote more than 8 MiB of output"};
  if (code == FLOWRT_OK) return out.text();
  std::string message = out.text().empty() ? "no reason given" : out.text();
  if (code < FLOWRT_OK || code > FLOWRT_FAILED)
    message = "returned an unknown status " + std::to_string(code) + ": " + message;
  return CallError{status_from(code), "provider " + info.name + ": " + operation + ": " + message};
}

CallError malformed(const ProviderInfo& info, const char* operation, const std::string& why) {
  return CallError{CallStatus::failed, "provider " + info.name + ": " + operation +
                                           " returned malformed output: " + why};
}

std::string string_field(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return {};
  if (!it->is_string()) throw std::invalid_argument(std::string("\"") + key + "\" is not a string");
  return it->get<std::string>();
}

}  // namespace

Provider::Provider(std::shared_ptr<const LoadedLibrary> library, void* object, ProviderInfo info)
    : library_(std::move(library)), object_(object), info_(std::move(info)) {}

Provider::~Provider() {
  try {
    library_->destroy(static_cast<flowrt_provider*>(object_));
  } catch (...) {
    // destroy must not throw; if it does, there is nobody to tell. The library still
    // unloads below once no other provider needs it.
  }
}

CallResult<VerifyReply> Provider::verify(const InboundRequest& request,
                                         const ChannelSettings& channel) const {
  InboundView in(request);
  ChannelView ch(channel);
  auto outcome = invoke(info_, "verify", [&](const flowrt_sink* out) {
    return as_provider(object_)->vtable->verify(as_provider(object_), &in.raw, &ch.raw, out);
  });
  if (outcome.index() == 1) return std::get<1>(std::move(outcome));
  auto value = nlohmann::json::parse(std::get<0>(outcome), nullptr, false);
  try {
    if (!value.is_object()) throw std::invalid_argument("not a JSON object");
    VerifyReply reply;
    reply.status = value.value("status", 200);
    reply.content_type = string_field(value, "content_type");
    reply.body = string_field(value, "body");
    if (reply.status < 100 || reply.status > 599)
      throw std::invalid_argument("status out of range");
    return reply;
  } catch (const std::exception& e) {
    return malformed(info_, "verify", e.what());
  }
}

CallResult<Accepted> Provider::check_signature(const InboundRequest& request,
                                               const ChannelSettings& channel) const {
  InboundView in(request);
  ChannelView ch(channel);
  auto outcome = invoke(info_, "check_signature", [&](const flowrt_sink* out) {
    return as_provider(object_)->vtable->check_signature(as_provider(object_), &in.raw, &ch.raw,
                                                         out);
  });
  if (outcome.index() == 1) return std::get<1>(std::move(outcome));
  return Accepted{};
}

CallResult<std::vector<InboundEvent>> Provider::parse(const InboundRequest& request,
                                                      const ChannelSettings& channel) const {
  InboundView in(request);
  ChannelView ch(channel);
  auto outcome = invoke(info_, "parse", [&](const flowrt_sink* out) {
    return as_provider(object_)->vtable->parse(as_provider(object_), &in.raw, &ch.raw, out);
  });
  if (outcome.index() == 1) return std::get<1>(std::move(outcome));
  auto value = nlohmann::json::parse(std::get<0>(outcome), nullptr, false);
  try {
    if (!value.is_object() || !value.contains("events") || !value["events"].is_array())
      throw std::invalid_argument("expected {\"events\": [...]}");
    std::vector<InboundEvent> events;
    for (const auto& item : value["events"]) {
      if (!item.is_object()) throw std::invalid_argument("an event is not an object");
      InboundEvent event;
      event.message_id = string_field(item, "message_id");
      event.contact_id = string_field(item, "contact_id");
      event.contact_name = string_field(item, "contact_name");
      event.contact_phone = string_field(item, "contact_phone");
      event.text = string_field(item, "text");
      if (item.contains("data") && !item["data"].is_null()) event.data = item["data"];
      if (item.contains("timestamp_ms") && item["timestamp_ms"].is_number_integer())
        event.timestamp_ms = item["timestamp_ms"].get<int64_t>();
      if (event.contact_id.empty()) throw std::invalid_argument("an event has no contact_id");
      events.push_back(std::move(event));
    }
    return events;
  } catch (const std::exception& e) {
    return malformed(info_, "parse", e.what());
  }
}

CallResult<SendReceipt> Provider::send(const OutboundMessage& message,
                                       const ChannelSettings& channel, HttpClient& http) const {
  ChannelView ch(channel);
  flowrt_outbound raw{bytes(message.conversation_id), bytes(message.contact_id),
                      bytes(message.text), message.now_ms};
  HttpLoan loan{&http};
  flowrt_http lent{&loan, &HttpLoan::send};
  auto outcome = invoke(info_, "send", [&](const flowrt_sink* out) {
    return as_provider(object_)->vtable->send(as_provider(object_), &raw, &ch.raw, &lent, out);
  });
  if (outcome.index() == 1) return std::get<1>(std::move(outcome));
  auto value = nlohmann::json::parse(std::get<0>(outcome), nullptr, false);
  try {
    if (!value.is_object()) throw std::invalid_argument("not a JSON object");
    return SendReceipt{string_field(value, "provider_message_id")};
  } catch (const std::exception& e) {
    return malformed(info_, "send", e.what());
  }
}

// ---------------------------------------------------------------------------------------
// PluginRegistry

namespace {

struct Loaded {
  std::shared_ptr<const Provider> provider;
  std::string failure;
};

}  // namespace

PluginRegistry::~PluginRegistry() = default;

PluginRegistry PluginRegistry::load(const PluginHostOptions& options) {
  PluginRegistry registry;
  registry.directory_ = options.directory;
  const auto& directory = options.directory;

  std::error_code error;
  if (!std::filesystem::exists(directory, error)) {
    registry.failures_.push_back({directory,
                                  "the plugin directory does not exist: create it, or "
                                  "point the server at another one (--plugins DIR)"});
    return registry;
  }
  if (!std::filesystem::is_directory(directory, error)) {
    registry.failures_.push_back({directory, "the plugin directory is not a directory"});
    return registry;
  }
  std::vector<std::filesystem::path> files;
  for (auto it = std::filesystem::directory_iterator(directory, error);
       !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
    const auto& path = it->path();
    if (path.filename().string().starts_with(".")) continue;
    if (it->is_directory(error)) continue;
    files.push_back(path);
  }
  if (error) {
    registry.failures_.push_back(
        {directory, "cannot list the plugin directory: " + error.message()});
    return registry;
  }
  if (files.empty()) {
    registry.failures_.push_back(
        {directory,
         "the plugin directory is empty: no provider is available. Put provider "
         "plugins (.so files) here; the bundled ones are built into " +
             bundled_plugin_directory().string()});
    return registry;
  }
  std::sort(files.begin(), files.end());

  const auto probe = options.probe_path.empty() ? default_probe_path() : options.probe_path;
  std::map<std::string, std::filesystem::path> owners;  // provider name → file
  for (const auto& file : files) {
    auto fail = [&](std::string reason) {
      registry.failures_.push_back({file, std::move(reason)});
    };

    if (auto reason = check_plugin_file(file)) {
      fail(*reason);
      continue;
    }
    ProbeReport report = run_probe(probe, file, options.probe_timeout);
    if (!report.ok) {
      fail(report.reason);
      continue;
    }
    if (auto owner = owners.find(report.manifest.name); owner != owners.end()) {
      fail("duplicate provider name \"" + report.manifest.name + "\": " + owner->second.string() +
           " already provides it, so " + file.string() +
           " was not loaded; remove one of the two files (or give one provider another name)");
      continue;
    }

    // In process: the same checks again, then the factory; anything odd is a failure.
    std::shared_ptr<LoadedLibrary> library;
    try {
      library = std::make_shared<LoadedLibrary>(file);
    } catch (const std::exception& e) {
      fail(explain_load_error(dlerror_from_boost(e.what())));
      continue;
    }
    const auto& lib = library->library();
    ManifestInfo manifest;
    if (!lib.has(FLOWRT_PLUGIN_MANIFEST_SYMBOL) || !lib.has(FLOWRT_PLUGIN_CREATE_SYMBOL) ||
        !lib.has(FLOWRT_PLUGIN_DESTROY_SYMBOL)) {
      fail("the plugin's exported symbols changed between the probe and the load");
      continue;
    }
    if (auto reason = check_manifest(
            &lib.get_alias<const flowrt_manifest>(FLOWRT_PLUGIN_MANIFEST_SYMBOL), &manifest)) {
      fail(*reason);
      continue;
    }
    library->create = &lib.get_alias<flowrt_create_fn>(FLOWRT_PLUGIN_CREATE_SYMBOL);
    library->destroy = &lib.get_alias<flowrt_destroy_fn>(FLOWRT_PLUGIN_DESTROY_SYMBOL);

    Sink why;
    flowrt_provider* object = nullptr;
    try {
      object = library->create(why.get());
    } catch (...) {
      fail("the factory threw " + exception_text());
      continue;
    }
    if (object == nullptr) {
      fail(why.text().empty() ? "the factory returned null without saying why"
                              : "the factory failed: " + why.text());
      continue;
    }
    ProviderInfo info;
    info.name = manifest.name;
    info.version = manifest.version;
    info.description = manifest.description;
    info.abi_version = manifest.abi_version;
    info.fingerprint = manifest.fingerprint;
    info.path = file;
    // From here the Provider owns `object` (and destroys it if describe fails).
    std::shared_ptr<Provider> provider(new Provider(library, object, info));
    const flowrt_provider_vtable* vtable = object->vtable;
    if (vtable == nullptr || !vtable->describe || !vtable->verify || !vtable->check_signature ||
        !vtable->parse || !vtable->send) {
      fail("the provider's function table is incomplete (a null entry)");
      continue;
    }
    auto described = invoke(info, "describe",
                            [&](const flowrt_sink* out) { return vtable->describe(object, out); });
    if (described.index() == 1) {
      fail(std::get<1>(described).message);
      continue;
    }
    nlohmann::json description;
    if (auto problem = check_description(std::get<0>(described), &description)) {
      fail(*problem);
      continue;
    }
    provider->info_.config_schema = description["config_schema"];
    provider->info_.secrets_schema = description["secrets_schema"];
    provider->info_.replies_in_response = description["replies"] == "response";
    owners.emplace(info.name, file);
    registry.providers_.push_back(std::move(provider));
  }
  std::sort(registry.providers_.begin(), registry.providers_.end(),
            [](const auto& a, const auto& b) { return a->name() < b->name(); });
  return registry;
}

std::vector<ProviderInfo> PluginRegistry::providers() const {
  std::vector<ProviderInfo> list;
  for (const auto& provider : providers_) list.push_back(provider->info());
  return list;
}

std::shared_ptr<const Provider> PluginRegistry::find(std::string_view name) const {
  for (const auto& provider : providers_)
    if (provider->name() == name) return provider;
  return nullptr;
}

nlohmann::json PluginRegistry::to_json() const {
  nlohmann::json providers = nlohmann::json::array();
  for (const auto& provider : providers_) {
    const ProviderInfo& info = provider->info();
    providers.push_back({{"name", info.name},
                         {"version", info.version},
                         {"description", info.description},
                         {"abi_version", info.abi_version},
                         {"path", info.path.string()},
                         {"config_schema", info.config_schema},
                         {"secrets_schema", info.secrets_schema},
                         {"replies", info.replies_in_response ? "response" : "push"}});
  }
  nlohmann::json failures = nlohmann::json::array();
  for (const auto& failure : failures_)
    failures.push_back({{"path", failure.path.string()}, {"reason", failure.reason}});
  return {{"directory", directory_.string()}, {"providers", providers}, {"failures", failures}};
}

}  // namespace flowrt::runtime::plugin_host
