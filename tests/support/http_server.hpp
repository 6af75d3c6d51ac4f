// A small HTTP/1.1 server on 127.0.0.1 for tests that need an external service (a CRM,
// Graph API, Bot API, a webhook receiver). One request per connection, handled on the
// server's own thread by a handler the test supplies; every request is recorded.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace flowrt::testing {

struct ReceivedRequest {
  std::string method;
  std::string target;  // path and query, as sent
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct CannedResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  int delay_ms = 0;  // sleep before answering, to provoke client timeouts
};

class LocalHttpServer {
 public:
  using Handler = std::function<CannedResponse(const ReceivedRequest&)>;

  // Starts listening on an ephemeral loopback port. Throws std::runtime_error on failure.
  explicit LocalHttpServer(Handler handler);
  ~LocalHttpServer();
  LocalHttpServer(const LocalHttpServer&) = delete;
  LocalHttpServer& operator=(const LocalHttpServer&) = delete;

  int port() const { return port_; }
  std::string url(const std::string& path = "") const;  // "http://127.0.0.1:PORT" + path

  std::vector<ReceivedRequest> requests() const;
  size_t request_count() const;
  void set_handler(Handler handler);

 private:
  void serve();
  void handle_connection(int fd);

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::vector<ReceivedRequest> requests_;
  std::thread thread_;
};

}  // namespace flowrt::testing
