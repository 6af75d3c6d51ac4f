// Per-tenant rate limiting with token buckets.
//
// Each key (a tenant id) has a bucket of `burst` tokens that refills at `rate_per_second`;
// a request takes one token or is refused with the time until one is back (→ 429 with
// Retry-After). Memory is bounded: past `max_keys` buckets, full buckets (which carry no
// state a new bucket would not have) are dropped first, then the least recently used.
// One mutex guards the table; a decision is a few arithmetic operations under it.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

namespace flowrt::api {

struct RateLimit {
  double rate_per_second = 20;  // sustained requests per second
  double burst = 40;            // bucket size: requests allowed at once after idling
};

class RateLimiter {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  struct Decision {
    bool allowed = true;
    std::chrono::seconds retry_after{0};  // when refused: whole seconds until a token, >= 1
  };

  // `clock` defaults to std::chrono::steady_clock::now; tests pass a fake.
  explicit RateLimiter(RateLimit default_limit, size_t max_keys = 100000, Clock clock = {});

  // Takes one token from `key`'s bucket. Thread-safe.
  Decision acquire(const std::string& key);
  // Gives `key` its own limit (e.g. from the tenant's settings). Thread-safe.
  void set_limit(const std::string& key, RateLimit limit);
  size_t tracked_keys() const;

 private:
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point updated;
  };
  RateLimit limit_for(const std::string& key) const;
  void evict_locked(std::chrono::steady_clock::time_point now);

  RateLimit default_limit_;
  size_t max_keys_;
  Clock clock_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
  std::unordered_map<std::string, RateLimit> overrides_;
};

}  // namespace flowrt::api
