#include "api/server/server.hpp"

#include <sys/socket.h>

#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/peer.h>

#include <charconv>
#include <sstream>
#include <stdexcept>

namespace flowrt::api {

namespace Http = Pistache::Http;
namespace Tcp = Pistache::Tcp;

struct HttpServer::State {
  State(Router router, ServerServices services, const ServerOptions& options)
      : pipeline(std::move(router), std::move(services), options.max_body_bytes),
        max_body_bytes(options.max_body_bytes),
        max_header_bytes(options.max_header_bytes) {}

  RequestPipeline pipeline;
  size_t max_body_bytes;
  size_t max_header_bytes;
  std::atomic<bool> draining{false};
  std::mutex mutex;
  std::condition_variable idle;
  size_t in_flight = 0;  // requests from complete head+body until their response is written

  void begin() {
    std::lock_guard lock(mutex);
    ++in_flight;
  }
  void end() {
    std::lock_guard lock(mutex);
    if (--in_flight == 0) idle.notify_all();
  }
};

namespace {

constexpr const char* kPeerStateKey = "flowrt.peer";

std::string serialize(const Response& response, bool close, bool head_only) {
  std::string reason(reason_phrase(response.status));
  std::string out = "HTTP/1.1 " + std::to_string(response.status) + " " +
                    (reason.empty() ? std::string("Status") : reason) + "\r\n";
  for (const auto& [name, value] : response.headers.entries()) {
    if (iequals(name, "Content-Length") || iequals(name, "Connection") ||
        iequals(name, "Transfer-Encoding")) {
      continue;  // framing is ours
    }
    // Header values come from handlers; never let one split the response.
    if (name.find_first_of("\r\n:") != std::string::npos ||
        value.find_first_of("\r\n") != std::string::npos) {
      continue;
    }
    out += name + ": " + value + "\r\n";
  }
  bool no_body = response.status == 204 || response.status == 304 ||
                 (response.status >= 100 && response.status < 200);
  if (!no_body) out += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
  out += close ? "Connection: close\r\n" : "Connection: keep-alive\r\n";
  out += "\r\n";
  if (!no_body && !head_only) out += response.body;
  return out;
}

// Converts what Pistache parsed into our Request (everything but routing results).
Request convert(const Http::Request& in) {
  Request out;
  out.method = Http::methodString(in.method());
  out.path = in.resource();
  for (auto it = in.query().parameters_begin(); it != in.query().parameters_end(); ++it) {
    auto name = percent_decode(it->first, true);
    auto value = percent_decode(it->second, true);
    out.query.emplace(name ? *name : it->first, value ? *value : it->second);
  }
  // Pistache keeps headers it knows as typed objects and the others raw; take both, raw first.
  for (const auto& [name, raw] : in.headers().rawList()) out.headers.add(raw.name(), raw.value());
  for (const auto& header : in.headers().list()) {
    if (out.headers.has(header->name())) continue;
    std::ostringstream value;
    header->write(value);
    out.headers.add(header->name(), value.str());
  }
  out.body = in.body();
  return out;
}

bool wants_close(const Http::Request& request) {
  std::string connection;
  if (auto raw = request.headers().tryGetRaw("Connection")) connection = raw->value();
  if (auto typed = request.headers().tryGet<Http::Header::Connection>()) {
    return typed->control() == Http::ConnectionControl::Close ||
           (request.version() == Http::Version::Http10 &&
            typed->control() != Http::ConnectionControl::KeepAlive);
  }
  for (auto& c : connection) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (connection.find("close") != std::string::npos) return true;
  if (request.version() == Http::Version::Http10) {
    return connection.find("keep-alive") == std::string::npos;
  }
  return false;
}

class PistacheHandler : public Http::Handler {
 public:
  HTTP_PROTOTYPE(PistacheHandler)

  explicit PistacheHandler(std::shared_ptr<HttpServer::State> state) : state_(std::move(state)) {}

  // Never called: onInput below feeds our pipeline instead of Pistache's onRequest.
  void onRequest(const Http::Request&, Http::ResponseWriter response) override {
    response.send(Http::Code::Internal_Server_Error);
  }

 private:
  // Per-connection bookkeeping, kept in the Pistache peer's data map.
  struct PeerState {
    size_t head_bytes = 0;       // bytes received while the current request's head is incomplete
    bool continue_sent = false;  // "100 Continue" already sent for the current request
    bool closing = false;        // a refusal was sent: discard input until the client closes
  };

  static std::shared_ptr<PeerState> peer_state(const std::shared_ptr<Tcp::Peer>& peer) {
    auto data = peer->tryGetData(kPeerStateKey);
    if (data) return std::static_pointer_cast<PeerState>(data);
    auto created = std::make_shared<PeerState>();
    peer->putData(kPeerStateKey, created);
    return created;
  }

  static Problem headers_too_large(size_t limit) {
    Problem p = problems::bad_request("The request line and headers are larger than " +
                                      std::to_string(limit) + " bytes.");
    p.status = 431;
    p.type = "headers_too_large";
    p.title = "Request header fields too large";
    return p;
  }

  // Replaces Http::Handler::onInput (see the comment on request size in server.hpp).
  void onInput(const char* buffer, size_t len, const std::shared_ptr<Tcp::Peer>& peer) override {
    auto ps = peer_state(peer);
    if (ps->closing) return;
    auto parser = getParser(peer);
    bool in_body = parser->step()->id() == Http::Private::BodyStep::Id;
    if (!in_body) ps->head_bytes += len;
    if (!parser->feed(buffer, len)) {
      if (!in_body && ps->head_bytes - len > state_->max_header_bytes) {
        refuse(peer, *ps, Request{}, headers_too_large(state_->max_header_bytes));
      } else {
        refuse(peer, *ps, convert(parser->request),
               problems::payload_too_large(state_->max_body_bytes));
      }
      parser->reset();
      return;
    }
    Http::Private::State state;
    try {
      state = parser->parse();
    } catch (const std::exception& e) {
      refuse(peer, *ps, Request{},
             problems::bad_request(std::string("The HTTP request is malformed: ") + e.what()));
      parser->reset();
      return;
    }
    auto& request = parser->request;
    if (parser->step()->id() == Http::Private::BodyStep::Id) {
      auto length = request.headers().tryGet<Http::Header::ContentLength>();
      if (length && length->value() > state_->max_body_bytes) {
        // Refused from the head alone: none of the body is read or buffered.
        refuse(peer, *ps, convert(request), problems::payload_too_large(state_->max_body_bytes));
        parser->reset();
        return;
      }
      if (request.body().size() > state_->max_body_bytes) {
        // A chunked body, refused as soon as the chunks decoded so far pass the limit.
        refuse(peer, *ps, convert(request), problems::payload_too_large(state_->max_body_bytes));
        parser->reset();
        return;
      }
    } else if (ps->head_bytes > state_->max_header_bytes) {
      refuse(peer, *ps, Request{}, headers_too_large(state_->max_header_bytes));
      parser->reset();
      return;
    }
    if (state != Http::Private::State::Done) {
      if (parser->step()->id() == Http::Private::BodyStep::Id && !ps->continue_sent) {
        auto expect = request.headers().tryGetRaw("Expect");
        if (expect && iequals(expect->value(), "100-continue")) {
          // The head is acceptable: tell the client to send the body now rather than after
          // its own timeout (curl waits a second).
          ps->continue_sent = true;
          std::string interim = "HTTP/1.1 100 Continue\r\n\r\n";
          size_t size = interim.size();
          transport()->asyncWrite(peer->fd(), Pistache::RawBuffer(std::move(interim), size),
                                  MSG_NOSIGNAL);
        }
      }
      return;
    }

    Request ours = convert(request);
    bool close = wants_close(request);
    bool head_only = ours.method == "HEAD";
    parser->reset();
    ps->head_bytes = 0;
    ps->continue_sent = false;

    state_->begin();
    Response response;
    if (state_->draining.load()) {
      Problem p = problems::unavailable("The server is shutting down; retry on another instance.");
      p.headers.set("Retry-After", "1");
      response = state_->pipeline.reject(std::move(ours), p);
      close = true;
    } else {
      response = state_->pipeline.handle(std::move(ours));
    }
    write(peer, serialize(response, close, head_only), close);
  }

  void refuse(const std::shared_ptr<Tcp::Peer>& peer, PeerState& ps, Request partial,
              const Problem& problem) {
    ps.closing = true;
    state_->begin();
    Response response = state_->pipeline.reject(std::move(partial), problem);
    write(peer, serialize(response, /*close=*/true, false), /*close=*/true);
  }

  // Queues `bytes` on the connection; once written, half-closes it when `close`, and ends
  // the in-flight count that begin() started.
  void write(const std::shared_ptr<Tcp::Peer>& peer, std::string bytes, bool close) {
    std::weak_ptr<Tcp::Peer> weak = peer;
    auto state = state_;
    auto done = [weak, close, state] {
      if (close) {
        // Half-close: the client reads the whole answer, then sees EOF; its remaining input
        // is discarded (PeerState::closing) until it closes, and Pistache frees the peer.
        if (auto p = weak.lock()) ::shutdown(p->fd(), SHUT_WR);
      }
      state->end();
    };
    size_t size = bytes.size();
    Pistache::RawBuffer raw(std::move(bytes), size);
    try {
      transport()
          ->asyncWrite(peer->fd(), raw, MSG_NOSIGNAL)
          .then([done](ssize_t) { done(); }, [done](std::exception_ptr) { done(); });
    } catch (...) {
      done();
    }
  }

  std::shared_ptr<HttpServer::State> state_;
};

}  // namespace

struct HttpServer::Endpoint {
  explicit Endpoint(const Pistache::Address& address) : endpoint(address) {}
  Http::Endpoint endpoint;
};

void parse_listen_address(const std::string& text, ServerOptions& options) {
  std::string host = options.address;
  std::string port_text = text;
  auto colon = text.rfind(':');
  if (colon != std::string::npos) {
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.empty()) host = "0.0.0.0";
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || value > 65535) {
    throw std::invalid_argument("--listen expects HOST:PORT, e.g. 127.0.0.1:8080; got '" + text +
                                "'");
  }
  options.address = host == "localhost" ? "127.0.0.1" : host;
  options.port = static_cast<uint16_t>(value);
}

HttpServer::HttpServer(ServerOptions options, Router router, ServerServices services)
    : options_(std::move(options)),
      state_(std::make_shared<State>(std::move(router), std::move(services), options_)) {}

HttpServer::~HttpServer() {
  shutdown();
}

void HttpServer::start() {
  std::lock_guard lock(lifecycle_mutex_);
  if (started_) throw std::logic_error("HttpServer::start called twice");
  std::string where = options_.address + ":" + std::to_string(options_.port);
  try {
    Pistache::Address address(options_.address == "localhost" ? "127.0.0.1" : options_.address,
                              Pistache::Port(options_.port));
    endpoint_ = std::make_unique<Endpoint>(address);
    auto opts = Http::Endpoint::options()
                    .threads(std::max(1, options_.threads))
                    .maxRequestSize(options_.max_body_bytes + options_.max_header_bytes)
                    .flags(Tcp::Options::ReuseAddr);
    endpoint_->endpoint.init(opts);
    endpoint_->endpoint.setHandler(Http::make_handler<PistacheHandler>(state_));
    endpoint_->endpoint.serveThreaded();
  } catch (const std::exception& e) {
    endpoint_.reset();
    throw std::runtime_error("cannot listen on " + where + ": " + e.what());
  }
  port_ = static_cast<uint16_t>(endpoint_->endpoint.getPort());
  started_ = true;
}

std::string HttpServer::base_url() const {
  return "http://" + options_.address + ":" + std::to_string(port_);
}

void HttpServer::add_shutdown_hook(std::function<void()> hook) {
  std::lock_guard lock(lifecycle_mutex_);
  hooks_.push_back(std::move(hook));
}

void HttpServer::shutdown() {
  std::lock_guard lock(lifecycle_mutex_);
  if (stopped_) return;
  stopped_ = true;
  state_->draining = true;
  if (started_) {
    std::unique_lock wait_lock(state_->mutex);
    bool idle = state_->idle.wait_for(wait_lock, options_.shutdown_grace,
                                      [&] { return state_->in_flight == 0; });
    if (!idle) {
      Request none;
      state_->pipeline.log_error("shutdown_grace_exceeded", none,
                                 std::to_string(state_->in_flight) +
                                     " request(s) still running when the grace period ended");
    }
  }
  for (auto& hook : hooks_) {
    try {
      hook();
    } catch (const std::exception& e) {
      Request none;
      state_->pipeline.log_error("shutdown_hook_failed", none, e.what());
    }
  }
  if (started_ && endpoint_) {
    endpoint_->endpoint.shutdown();
    endpoint_.reset();  // Pistache closes the listening socket only when the listener dies
  }
}

bool HttpServer::draining() const {
  return state_->draining.load();
}

size_t HttpServer::in_flight() const {
  std::lock_guard lock(state_->mutex);
  return state_->in_flight;
}

const RequestPipeline& HttpServer::pipeline() const {
  return state_->pipeline;
}

}  // namespace flowrt::api
