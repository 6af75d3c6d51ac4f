#include "runtime/canned_http.hpp"

#include <stdexcept>

namespace flowrt::runtime {

CannedHttpClient::CannedHttpClient(const Json& responses) {
  if (responses.is_null()) return;
  if (!responses.is_array()) throw std::invalid_argument("\"http\" must be an array of responses");
  for (size_t i = 0; i < responses.size(); ++i) {
    const Json& r = responses[i];
    std::string where = "http[" + std::to_string(i) + "]";
    if (!r.is_object() || !r.contains("url") || !r["url"].is_string()) {
      throw std::invalid_argument(where +
                                  " needs at least \"url\" (and usually method, status, body)");
    }
    Entry entry;
    entry.method = r.value("method", "GET");
    entry.url = r["url"].get<std::string>();
    if (r.contains("error")) {
      std::string error = r["error"].is_string() ? r["error"].get<std::string>() : "error";
      entry.response.timed_out = error == "timeout";
      entry.response.error = entry.response.timed_out ? "timed out" : error;
    } else {
      if (r.contains("status") && !r["status"].is_number_integer()) {
        throw std::invalid_argument(where + ".status must be an integer HTTP status");
      }
      entry.response.status = r.value("status", 200);
      if (r.contains("body")) {
        entry.response.body =
            r["body"].is_string() ? r["body"].get<std::string>() : r["body"].dump();
      }
      if (r.contains("headers") && r["headers"].is_object()) {
        for (const auto& [name, value] : r["headers"].items()) {
          entry.response.headers.emplace_back(
              name, value.is_string() ? value.get<std::string>() : value.dump());
        }
      }
    }
    entries_.push_back(std::move(entry));
  }
}

HttpResponse CannedHttpClient::send(const HttpRequest& request) {
  std::lock_guard lock(mutex_);
  requests_.push_back(request);
  Entry* last_match = nullptr;
  for (auto& entry : entries_) {
    if (entry.method != request.method || entry.url != request.url) continue;
    last_match = &entry;
    if (!entry.used) {
      entry.used = true;
      return entry.response;
    }
  }
  if (last_match) return last_match->response;
  unmatched_.push_back(request.method + " " + request.url);
  HttpResponse response;
  response.error = "no canned response for " + request.method + " " + request.url;
  return response;
}

std::vector<HttpRequest> CannedHttpClient::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

std::vector<std::string> CannedHttpClient::unmatched() const {
  std::lock_guard lock(mutex_);
  return unmatched_;
}

}  // namespace flowrt::runtime
