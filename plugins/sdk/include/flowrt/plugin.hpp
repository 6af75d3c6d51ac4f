// The flowrt provider SDK: everything a plugin author includes.
//
// A provider connects flows to one messaging channel. It is a class derived from
// flowrt::sdk::Provider, exported with FLOWRT_PROVIDER:
//
//   #include <flowrt/plugin.hpp>
//
//   class Echo final : public flowrt::sdk::Provider {
//    public:
//     void check_signature(const Request&, const Channel&) const override {}  // no auth
//     std::vector<Event> parse(const Request& request, const Channel&) const override {
//       auto body = request.json_body();
//       return {Event{.contact_id = body.at("user"), .text = body.at("text")}};
//     }
//     Sent send(const Message& m, const Channel& c, Http& http) const override {
//       return {http.post_json(c.config_string("url"), {{"text", m.text}}).body};
//     }
//   };
//   FLOWRT_PROVIDER(Echo, "echo", "1.0.0", "Echoes JSON messages")
//
// Contract (see docs/plugins.md for the full guide):
//  - Every method is const and may be called from several threads at once.
//  - Report problems by throwing: Rejected (the request is refused: bad signature or
//    malformed payload), BadConfig (the channel's config or secrets are wrong), Retry (a
//    transient failure; the host will try again). Any other exception is a plugin failure.
//    No exception ever leaves the plugin: the code FLOWRT_PROVIDER generates catches it
//    and hands the host a status and a message.
//  - Nothing crosses the boundary but plain C data (flowrt/plugin_abi.h): the host never
//    holds an object, a std::function or an exception made by the plugin after a call.
//  - Outbound HTTP goes through the Http object the host lends to `send`; it is valid only
//    during that call.
//
// Depends on the C++ standard library, nlohmann_json and Boost's header-only
// <boost/dll/alias.hpp> (for BOOST_DLL_ALIAS, used with BOOST_DLL_USE_STD_FS so that no
// Boost library is linked); nothing of the flowrt runtime.
#pragma once

#include <flowrt/plugin_abi.h>
#include <flowrt/plugin_fingerprint.hpp>

// BOOST_DLL_ALIAS is all the SDK takes from Boost.DLL; with std::filesystem it pulls in no
// Boost library that would need linking (or exported Boost.System symbols in the plugin).
#ifndef BOOST_DLL_USE_STD_FS
#define BOOST_DLL_USE_STD_FS
#endif
#include <boost/dll/alias.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace flowrt::sdk {

using Fields = std::vector<std::pair<std::string, std::string>>;

// The request is refused: a bad signature or token, a malformed payload, an unsupported
// handshake. The host answers the caller with a 4xx and does not retry.
class Rejected : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The channel's config or secrets are missing or invalid; say which key and what to set.
class BadConfig : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A transient failure (network error, timeout, 429, 5xx): the host retries later.
class Retry : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
inline char lower_ascii(char c) {
  return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
}
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower_ascii(a[i]) != lower_ascii(b[i])) return false;
  return true;
}
inline const std::string* find_field(const Fields& fields, std::string_view name,
                                     bool case_insensitive) {
  for (const auto& [key, value] : fields)
    if (case_insensitive ? iequals(key, name) : key == name) return &value;
  return nullptr;
}
}  // namespace detail

// An HTTP request that reached the channel's webhook URL.
struct Request {
  std::string method{};  // "GET", "POST"
  std::string path{};
  Fields query{};    // decoded, in order
  Fields headers{};  // names in lower case
  std::string body{};
  int64_t received_at_ms = 0;  // the host's clock (Unix ms): use it, not your own

  // The first header called `name` (case-insensitive), or "" when absent.
  std::string header(std::string_view name) const {
    const std::string* value = detail::find_field(headers, name, true);
    return value ? *value : std::string();
  }
  bool has_header(std::string_view name) const {
    return detail::find_field(headers, name, true) != nullptr;
  }
  // The first query parameter called `name`, or "" when absent.
  std::string query_param(std::string_view name) const {
    const std::string* value = detail::find_field(query, name, false);
    return value ? *value : std::string();
  }
  // The body parsed as JSON. Throws Rejected when it is not valid JSON.
  nlohmann::json json_body() const {
    auto parsed = nlohmann::json::parse(body, nullptr, false);
    if (parsed.is_discarded()) throw Rejected("the request body is not valid JSON");
    return parsed;
  }
};

// A channel's settings: `config` (visible to admins) and `secrets` (never shown again).
struct Channel {
  nlohmann::json config = nlohmann::json::object();
  nlohmann::json secrets = nlohmann::json::object();

  // config[key] as a string, or `fallback` when absent or null. Throws BadConfig when
  // the value is not a string.
  std::string config_string(std::string_view key, std::string_view fallback = {}) const {
    return string_at(config, "config", key, fallback);
  }
  // secrets[key]. Throws BadConfig naming the secret when it is absent or empty.
  std::string secret(std::string_view key) const {
    std::string value = optional_secret(key);
    if (value.empty())
      throw BadConfig("the channel secret \"" + std::string(key) +
                      "\" is not set; add it to the channel's secrets");
    return value;
  }
  // secrets[key], or "" when absent.
  std::string optional_secret(std::string_view key) const {
    return string_at(secrets, "secrets", key, {});
  }

 private:
  static std::string string_at(const nlohmann::json& object, std::string_view where,
                               std::string_view key, std::string_view fallback) {
    if (!object.is_object()) return std::string(fallback);
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) return std::string(fallback);
    if (!it->is_string())
      throw BadConfig("channel " + std::string(where) + " \"" + std::string(key) +
                      "\" must be a string");
    return it->get<std::string>();
  }
};

// The answer to a verification handshake.
struct Reply {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body{};
};

// One inbound message, normalised.
struct Event {
  std::string message_id{};  // the provider's id, for deduplication ("" when it has none)
  std::string contact_id{};  // required: whom the conversation is with
  std::string contact_name{};
  std::string contact_phone{};                     // E.164 when known
  std::string text{};                              // what a question node sees as the answer
  nlohmann::json data = nlohmann::json::object();  // structured extras: message.data
  int64_t timestamp_ms = 0;                        // when the provider says it was sent
};

// One outbound message.
struct Message {
  std::string conversation_id{};
  std::string contact_id{};
  std::string text{};
  int64_t now_ms = 0;  // the host's clock (Unix ms)
};

// What a successful send returns.
struct Sent {
  std::string provider_message_id{};  // "" when the provider returns none
};

struct HttpRequest {
  std::string method = "POST";
  std::string url{};
  Fields headers{};
  std::string body{};
  int timeout_ms = 10000;
};

struct HttpResponse {
  int status = 0;  // 0: no response arrived, `error` says why
  Fields headers{};
  std::string body{};
  std::string error{};
  bool timed_out = false;

  bool ok() const { return error.empty() && status >= 200 && status < 300; }
  // No answer, a timeout, 408, 429 or 5xx: worth trying again later.
  bool transient() const {
    return status == 0 || timed_out || status == 408 || status == 429 || status >= 500;
  }
  std::string header(std::string_view name) const {
    const std::string* value = detail::find_field(headers, name, true);
    return value ? *value : std::string();
  }
};

// The host's HTTP client, lent to Provider::send for the duration of that call. The host
// applies its network policy and timeouts. Not copyable: do not keep it.
class Http {
 public:
  explicit Http(const flowrt_http* host) : host_(host) {}
  Http(const Http&) = delete;
  Http& operator=(const Http&) = delete;

  // Performs the request. Never throws for HTTP or network failures: inspect the response.
  HttpResponse send(const HttpRequest& request);

  // POSTs `body` as JSON with the given extra headers.
  HttpResponse post_json(const std::string& url, const nlohmann::json& body, Fields headers = {}) {
    HttpRequest request;
    request.url = url;
    request.headers = std::move(headers);
    request.headers.emplace_back("Content-Type", "application/json");
    request.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return send(request);
  }

 private:
  const flowrt_http* host_;
};

// Throws Retry for a transient failure and Rejected otherwise, with `what` (e.g. "Graph
// API: (#100) Invalid parameter") in the message. Call it when !response.ok().
[[noreturn]] inline void fail_delivery(const HttpResponse& response, const std::string& what) {
  std::string message = what;
  if (!response.error.empty())
    message += ": " + response.error;
  else
    message += " (HTTP " + std::to_string(response.status) + ")";
  if (response.transient()) throw Retry(message);
  throw Rejected(message);
}

// The interface a provider implements. See the file comment for the contract.
class Provider {
 public:
  using Request = sdk::Request;
  using Channel = sdk::Channel;
  using Reply = sdk::Reply;
  using Event = sdk::Event;
  using Message = sdk::Message;
  using Sent = sdk::Sent;
  using Http = sdk::Http;

  virtual ~Provider() = default;

  // JSON Schemas of the channel's `config` and `secrets` objects, shown by GET /v1/plugins.
  virtual nlohmann::json config_schema() const { return {{"type", "object"}}; }
  virtual nlohmann::json secrets_schema() const { return {{"type", "object"}}; }

  // True when the turn's replies go back in the webhook's own response (web chat) rather
  // than through send().
  virtual bool replies_in_response() const { return false; }

  // Answers a verification handshake (a GET to the webhook URL). Default: not supported.
  virtual Reply verify(const Request&, const Channel&) const {
    throw Rejected("this provider has no verification handshake");
  }

  // Throws Rejected when the request is not authentic. Mandatory, so that skipping
  // authentication is a decision written down, not an omission.
  virtual void check_signature(const Request& request, const Channel& channel) const = 0;

  // Turns an authentic request into zero or more events (zero: e.g. delivery receipts).
  // Throws Rejected for a payload that cannot be understood.
  virtual std::vector<Event> parse(const Request& request, const Channel& channel) const = 0;

  // Delivers one message. Throws Retry, Rejected or BadConfig when it could not.
  virtual Sent send(const Message& message, const Channel& channel, Http& http) const = 0;
};

// ---------------------------------------------------------------------------------------
// What FLOWRT_PROVIDER generates. Not part of the API.
namespace detail {

inline std::string_view view(flowrt_bytes bytes) {
  return bytes.size == 0 ? std::string_view() : std::string_view(bytes.data, bytes.size);
}
inline flowrt_bytes bytes(std::string_view text) {
  return {text.data(), text.size()};
}

inline void write(const flowrt_sink* out, std::string_view text) noexcept {
  if (out != nullptr && out->write != nullptr) out->write(out->context, text.data(), text.size());
}

inline std::string dump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

inline Fields to_fields(const flowrt_field* fields, size_t count) {
  Fields result;
  if (fields == nullptr) return result;
  result.reserve(count);
  for (size_t i = 0; i < count; ++i)
    result.emplace_back(std::string(view(fields[i].name)), std::string(view(fields[i].value)));
  return result;
}

inline Request to_request(const flowrt_inbound* in) {
  Request request;
  if (in == nullptr) throw std::invalid_argument("the host passed no request");
  request.method = std::string(view(in->method));
  request.path = std::string(view(in->path));
  request.query = to_fields(in->query, in->query_count);
  request.headers = to_fields(in->headers, in->header_count);
  request.body = std::string(view(in->body));
  request.received_at_ms = in->received_at_ms;
  return request;
}

inline nlohmann::json settings_object(flowrt_bytes text, const char* what) {
  if (text.size == 0) return nlohmann::json::object();
  auto parsed = nlohmann::json::parse(view(text), nullptr, false);
  if (parsed.is_discarded() || !(parsed.is_object() || parsed.is_null()))
    throw BadConfig(std::string("the channel's ") + what + " must be a JSON object");
  return parsed.is_null() ? nlohmann::json::object() : parsed;
}

inline Channel to_channel(const flowrt_channel* in) {
  Channel channel;
  if (in == nullptr) return channel;
  channel.config = settings_object(in->config_json, "config");
  channel.secrets = settings_object(in->secrets_json, "secrets");
  return channel;
}

inline nlohmann::json event_json(const Event& event) {
  return {{"message_id", event.message_id},
          {"contact_id", event.contact_id},
          {"contact_name", event.contact_name},
          {"contact_phone", event.contact_phone},
          {"text", event.text},
          {"data", event.data},
          {"timestamp_ms", event.timestamp_ms}};
}

// Runs `body` (which returns the call's output text) and turns every exception into a
// status and a message, so that nothing unwinds into the host.
template <class Body>
int guarded(const flowrt_sink* out, Body&& body) noexcept {
  try {
    std::string output = body();
    write(out, output);
    return FLOWRT_OK;
  } catch (const Rejected& e) {
    write(out, e.what());
    return FLOWRT_REJECTED;
  } catch (const BadConfig& e) {
    write(out, e.what());
    return FLOWRT_BAD_CONFIG;
  } catch (const Retry& e) {
    write(out, e.what());
    return FLOWRT_RETRY;
  } catch (const nlohmann::json::exception& e) {
    // .at() on a missing key or a wrong type while reading a payload: the payload is bad.
    write(out, std::string("unexpected payload: ") + e.what());
    return FLOWRT_REJECTED;
  } catch (const std::exception& e) {
    write(out, e.what());
    return FLOWRT_FAILED;
  } catch (...) {
    write(out, "the plugin threw something that is not a std::exception");
    return FLOWRT_FAILED;
  }
}

template <class P>
struct Instance final : flowrt_provider {
  Instance();
  P impl;
};

template <class P>
const P& self(const flowrt_provider* provider) {
  return static_cast<const Instance<P>*>(provider)->impl;
}

template <class P>
int describe(const flowrt_provider* provider, const flowrt_sink* out) noexcept {
  return guarded(out, [&] {
    const P& p = self<P>(provider);
    return dump({{"config_schema", p.config_schema()},
                 {"secrets_schema", p.secrets_schema()},
                 {"replies", p.replies_in_response() ? "response" : "push"}});
  });
}

template <class P>
int verify(const flowrt_provider* provider, const flowrt_inbound* request,
           const flowrt_channel* channel, const flowrt_sink* out) noexcept {
  return guarded(out, [&] {
    Reply reply = self<P>(provider).verify(to_request(request), to_channel(channel));
    return dump(
        {{"status", reply.status}, {"content_type", reply.content_type}, {"body", reply.body}});
  });
}

template <class P>
int check_signature(const flowrt_provider* provider, const flowrt_inbound* request,
                    const flowrt_channel* channel, const flowrt_sink* out) noexcept {
  return guarded(out, [&] {
    self<P>(provider).check_signature(to_request(request), to_channel(channel));
    return std::string();
  });
}

template <class P>
int parse(const flowrt_provider* provider, const flowrt_inbound* request,
          const flowrt_channel* channel, const flowrt_sink* out) noexcept {
  return guarded(out, [&] {
    std::vector<Event> events = self<P>(provider).parse(to_request(request), to_channel(channel));
    nlohmann::json list = nlohmann::json::array();
    for (const Event& event : events) list.push_back(event_json(event));
    return dump({{"events", std::move(list)}});
  });
}

template <class P>
int send(const flowrt_provider* provider, const flowrt_outbound* message,
         const flowrt_channel* channel, const flowrt_http* http, const flowrt_sink* out) noexcept {
  return guarded(out, [&] {
    if (message == nullptr) throw std::invalid_argument("the host passed no message");
    Message m{std::string(view(message->conversation_id)), std::string(view(message->contact_id)),
              std::string(view(message->text)), message->now_ms};
    Http client(http);
    Sent sent = self<P>(provider).send(m, to_channel(channel), client);
    return dump({{"provider_message_id", sent.provider_message_id}});
  });
}

template <class P>
inline constexpr flowrt_provider_vtable kVtable = {&describe<P>, &verify<P>, &check_signature<P>,
                                                   &parse<P>, &send<P>};

template <class P>
Instance<P>::Instance() : flowrt_provider{&kVtable<P>}, impl() {}

template <class P>
flowrt_provider* create(const flowrt_sink* error) noexcept {
  static_assert(std::is_base_of_v<Provider, P>, "FLOWRT_PROVIDER needs a flowrt::sdk::Provider");
  static_assert(std::is_default_constructible_v<P>,
                "a provider is created with its default constructor");
  try {
    return new Instance<P>();
  } catch (const std::exception& e) {
    write(error, e.what());
  } catch (...) {
    write(error, "the provider's constructor threw something that is not a std::exception");
  }
  return nullptr;
}

template <class P>
void destroy(flowrt_provider* provider) noexcept {
  delete static_cast<Instance<P>*>(provider);
}

// [a-z0-9_]{1,64}, checked at compile time by FLOWRT_PROVIDER.
constexpr bool valid_name(const char* name) {
  int length = 0;
  for (; name[length] != '\0'; ++length) {
    char c = name[length];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return length >= 1 && length <= 64;
}
constexpr bool non_empty(const char* text) {
  return text[0] != '\0';
}

struct HttpCall {
  HttpResponse* response;
  bool answered = false;
  bool out_of_memory = false;
};

inline void on_http_response(void* user, const flowrt_http_response* in) noexcept {
  auto* call = static_cast<HttpCall*>(user);
  call->answered = true;
  if (in == nullptr) return;
  try {
    HttpResponse& out = *call->response;
    out.status = in->status;
    out.headers = to_fields(in->headers, in->header_count);
    out.body = std::string(view(in->body));
    out.error = std::string(view(in->error));
    out.timed_out = in->timed_out != 0;
  } catch (...) {
    call->out_of_memory = true;
  }
}

}  // namespace detail

inline HttpResponse Http::send(const HttpRequest& request) {
  HttpResponse response;
  if (host_ == nullptr || host_->send == nullptr) {
    response.error = "no HTTP client was lent for this call";
    return response;
  }
  std::vector<flowrt_field> headers;
  headers.reserve(request.headers.size());
  for (const auto& [name, value] : request.headers)
    headers.push_back({detail::bytes(name), detail::bytes(value)});
  flowrt_http_request raw{
      detail::bytes(request.method), detail::bytes(request.url), headers.data(), headers.size(),
      detail::bytes(request.body),   request.timeout_ms};
  detail::HttpCall call{&response};
  host_->send(host_->context, &raw, &detail::on_http_response, &call);
  if (call.out_of_memory) throw std::bad_alloc();
  if (!call.answered) response.error = "the host's HTTP client gave no response";
  return response;
}

}  // namespace flowrt::sdk

// Exports `ProviderClass` as a flowrt provider plugin: the manifest (magic number, ABI
// version, build fingerprint, name, version, description), the factory and its destroy
// function, all through BOOST_DLL_ALIAS. Use it once per plugin, at namespace scope.
#define FLOWRT_PROVIDER(ProviderClass, Name, Version, Description)                              \
  static_assert(::flowrt::sdk::detail::valid_name(Name),                                        \
                "FLOWRT_PROVIDER: the name must match [a-z0-9_]{1,64}");                        \
  static_assert(::flowrt::sdk::detail::non_empty(Version),                                      \
                "FLOWRT_PROVIDER: the version must not be empty");                              \
  namespace flowrt_plugin_exports {                                                             \
  static const ::flowrt_manifest manifest = {                                                   \
      FLOWRT_PLUGIN_MAGIC, FLOWRT_PLUGIN_ABI_VERSION, FLOWRT_PLUGIN_FINGERPRINT, Name, Version, \
      Description};                                                                             \
  static ::flowrt_provider* create(const ::flowrt_sink* error) noexcept {                       \
    return ::flowrt::sdk::detail::create<ProviderClass>(error);                                 \
  }                                                                                             \
  static void destroy(::flowrt_provider* provider) noexcept {                                   \
    ::flowrt::sdk::detail::destroy<ProviderClass>(provider);                                    \
  }                                                                                             \
  }                                                                                             \
  BOOST_DLL_ALIAS(flowrt_plugin_exports::manifest, flowrt_plugin_manifest)                      \
  BOOST_DLL_ALIAS(flowrt_plugin_exports::create, flowrt_plugin_create)                          \
  BOOST_DLL_ALIAS(flowrt_plugin_exports::destroy, flowrt_plugin_destroy)
