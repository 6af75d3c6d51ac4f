// An HttpClient that answers from a list of canned responses (transcript tests, SPEC §8):
// `{"method": "POST", "url": "https://crm.example/leads", "status": 201, "body": {...}}`.
// A response may instead be `"error": "timeout"` or `"error": "<message>"` to simulate a
// network failure. Matches are by method and exact URL; several entries for the same
// request are used in order, the last one repeating. Requests with no match are recorded.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "runtime/conversation.hpp"
#include "runtime/http.hpp"

namespace flowrt::runtime {

class CannedHttpClient : public HttpClient {
 public:
  // Throws std::invalid_argument naming the entry when `responses` is malformed.
  explicit CannedHttpClient(const Json& responses);
  HttpResponse send(const HttpRequest& request) override;

  std::vector<HttpRequest> requests() const;
  std::vector<std::string> unmatched() const;  // "METHOD URL" of requests with no answer

 private:
  struct Entry {
    std::string method;
    std::string url;
    HttpResponse response;
    bool used = false;
  };
  mutable std::mutex mutex_;
  std::vector<Entry> entries_;
  std::vector<HttpRequest> requests_;
  std::vector<std::string> unmatched_;
};

}  // namespace flowrt::runtime
