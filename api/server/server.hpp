// The HTTP server: a Pistache 0.0.5 endpoint that feeds complete requests to a
// RequestPipeline (routing, auth, limits, metrics, logs — see pipeline.hpp).
//
// Threads. Pistache runs `threads` I/O threads; a handler runs on the I/O thread of its
// connection, so `threads` is also the number of requests handled at once, and a slow
// handler delays only the connections of its own thread.
//
// Request size. Pistache's own `maxRequestSize` (0.0.5) caps the bytes buffered for one
// request, head and body together, and when it trips it answers a text/plain 413 and then
// parses the rest of the body as if it were a new request. We therefore do the request
// parsing loop ourselves on top of Pistache's parser: Pistache's cap is set to
// max_body_bytes + max_header_bytes as a backstop, and
//   - a Content-Length over max_body_bytes is refused as soon as the head has arrived,
//     before any of the body is read;
//   - a chunked body that grows past the limit is refused when the buffer overflows;
//   - a head over max_header_bytes answers 431;
// each with a problem+json answer, `Connection: close`, and the rest of the connection's
// input discarded until the client closes it. The handler never runs for such a request.
//
// Shutdown. shutdown() (called by `flowrt serve` when TerminationSignals::wait returns):
//   1. drains: every request completed from now on is answered 503 + Connection: close
//      (Pistache 0.0.5 cannot close its listening socket before it stops its threads, so
//      "stop accepting" means "stop accepting work"; a load balancer sees /readyz fail too);
//   2. waits, up to `shutdown_grace`, for the requests already in handlers to finish and
//      their responses to be written;
//   3. runs the shutdown hooks in the order they were added (flush outbox workers, ...);
//   4. stops Pistache's threads and closes every connection.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "api/server/pipeline.hpp"

namespace flowrt::api {

struct ServerOptions {
  std::string address = "127.0.0.1";  // IPv4 literal, "localhost" or "0.0.0.0"
  uint16_t port = 8080;               // 0: an ephemeral port, see HttpServer::port()
  int threads = 4;
  size_t max_body_bytes = 1024 * 1024;  // SPEC §4: bodies over this answer 413
  size_t max_header_bytes = 64 * 1024;  // request line and headers; over this answers 431
  std::chrono::milliseconds shutdown_grace{30000};
};

// Parses "HOST:PORT" (or ":PORT", or "PORT") for --listen. Throws std::invalid_argument.
void parse_listen_address(const std::string& text, ServerOptions& options);

class HttpServer {
 public:
  HttpServer(ServerOptions options, Router router, ServerServices services);
  // Shuts down (as shutdown()) if still running.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts the I/O threads; returns once the server accepts connections. Throws
  // std::runtime_error naming the address when it cannot bind.
  void start();
  // The bound port (the ephemeral one when options.port was 0). Valid after start().
  uint16_t port() const { return port_; }
  // "http://ADDRESS:PORT".
  std::string base_url() const;

  // Adds work to do during shutdown, after in-flight requests finished and before the
  // threads stop. Call before shutdown(). Hooks must not throw (exceptions are logged).
  void add_shutdown_hook(std::function<void()> hook);
  // Graceful stop, as described above; returns when done. Idempotent and thread-safe.
  void shutdown();

  bool draining() const;
  size_t in_flight() const;
  const RequestPipeline& pipeline() const;

  struct State;  // shared with the Pistache handler clones

 private:
  ServerOptions options_;
  std::shared_ptr<State> state_;
  struct Endpoint;
  std::unique_ptr<Endpoint> endpoint_;
  uint16_t port_ = 0;
  std::mutex lifecycle_mutex_;
  bool started_ = false;
  bool stopped_ = false;
  std::vector<std::function<void()>> hooks_;
};

}  // namespace flowrt::api
