#include "api/server/rate_limit.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace flowrt::api {

RateLimiter::RateLimiter(RateLimit default_limit, size_t max_keys, Clock clock)
    : default_limit_(default_limit),
      max_keys_(std::max<size_t>(1, max_keys)),
      clock_(clock ? std::move(clock) : Clock([] { return std::chrono::steady_clock::now(); })) {}

RateLimit RateLimiter::limit_for(const std::string& key) const {
  auto it = overrides_.find(key);
  return it == overrides_.end() ? default_limit_ : it->second;
}

void RateLimiter::set_limit(const std::string& key, RateLimit limit) {
  std::lock_guard lock(mutex_);
  overrides_[key] = limit;
}

size_t RateLimiter::tracked_keys() const {
  std::lock_guard lock(mutex_);
  return buckets_.size();
}

RateLimiter::Decision RateLimiter::acquire(const std::string& key) {
  auto now = clock_();
  std::lock_guard lock(mutex_);
  RateLimit limit = limit_for(key);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) evict_locked(now);
    it = buckets_.emplace(key, Bucket{limit.burst, now}).first;
  }
  Bucket& bucket = it->second;
  double elapsed = std::chrono::duration<double>(now - bucket.updated).count();
  bucket.tokens =
      std::min(limit.burst, bucket.tokens + std::max(0.0, elapsed) * limit.rate_per_second);
  bucket.updated = now;
  if (bucket.tokens >= 1.0) {
    bucket.tokens -= 1.0;
    return {};
  }
  double wait = limit.rate_per_second > 0 ? (1.0 - bucket.tokens) / limit.rate_per_second : 3600;
  auto seconds = static_cast<long long>(std::ceil(wait));
  return Decision{false, std::chrono::seconds(std::max<long long>(1, seconds))};
}

void RateLimiter::evict_locked(std::chrono::steady_clock::time_point now) {
  // First drop every bucket that has refilled completely: forgetting it changes nothing.
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    RateLimit limit = limit_for(it->first);
    double elapsed = std::chrono::duration<double>(now - it->second.updated).count();
    if (it->second.tokens + elapsed * limit.rate_per_second >= limit.burst) {
      it = buckets_.erase(it);
    } else {
      ++it;
    }
  }
  if (buckets_.size() < max_keys_) return;
  // Still full of active keys: drop the least recently used tenth (at least one).
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::string>> by_age;
  by_age.reserve(buckets_.size());
  for (const auto& [key, bucket] : buckets_) by_age.emplace_back(bucket.updated, key);
  size_t drop = std::max<size_t>(1, buckets_.size() / 10);
  std::nth_element(by_age.begin(), by_age.begin() + (drop - 1), by_age.end());
  for (size_t i = 0; i < drop; ++i) buckets_.erase(by_age[i].second);
}

}  // namespace flowrt::api
