// Idempotency-Key support for the routes that honour it (run creation, agent messages).
//
// A client that retries a POST sends the same `Idempotency-Key`; the first request runs,
// later ones get the stored response replayed (with `Idempotent-Replayed: true`). The key is
// scoped to the tenant and the route, and bound to a fingerprint of the request (method,
// route, path parameters and body): the same key with a different request is a client bug
// and answers 422; the same key while the first request is still running answers 409.
//
// The storage is the store's (a table keyed by tenant and key, with an expiry); this file
// defines what the handler needs from it and the helper that applies the rules above.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "api/server/http_types.hpp"

namespace flowrt::api {

struct StoredResponse {
  int status = 200;
  std::string content_type;
  std::string body;
};

struct IdempotencyScope {
  std::string tenant_id;
  std::string route;  // the route pattern with the method, e.g. "POST /v1/flows/{flow_id}/runs"
  std::string key;
};

class IdempotencyStore {
 public:
  virtual ~IdempotencyStore() = default;

  struct Claim {
    enum class Outcome { claimed, replay, fingerprint_mismatch, in_progress };
    Outcome outcome = Outcome::claimed;
    std::optional<StoredResponse> response;  // for replay
  };
  // Atomically: if no record exists for `scope`, create one marked in progress with
  // `fingerprint` and answer `claimed`; otherwise compare fingerprints and report.
  virtual Claim claim(const IdempotencyScope& scope, const std::string& fingerprint) = 0;
  // Stores the response of a claimed request (only 2xx and 4xx other than 409/429 are
  // stored by with_idempotency; others are released so that the client may retry).
  virtual void complete(const IdempotencyScope& scope, const StoredResponse& response) = 0;
  // Forgets a claim whose request failed in a way worth retrying.
  virtual void release(const IdempotencyScope& scope) = 0;
};

// The Idempotency-Key of `request`; nullopt when absent. Throws ApiError 400 when present but
// not 1..255 visible ASCII characters.
std::optional<std::string> idempotency_key(const Request& request);
// SHA-256 hex over method, route, path parameters and body.
std::string request_fingerprint(const Request& request);

// Runs `handler` under the rules above when the request has an Idempotency-Key (and a
// tenant), and directly when it has none.
Response with_idempotency(IdempotencyStore& store, const Request& request,
                          const std::function<Response()>& handler);

// A map in memory: for tests and single-process development only (never expires entries).
class InMemoryIdempotencyStore : public IdempotencyStore {
 public:
  Claim claim(const IdempotencyScope& scope, const std::string& fingerprint) override;
  void complete(const IdempotencyScope& scope, const StoredResponse& response) override;
  void release(const IdempotencyScope& scope) override;

 private:
  struct Record {
    std::string fingerprint;
    std::optional<StoredResponse> response;
  };
  static std::string key_of(const IdempotencyScope& scope);
  std::mutex mutex_;
  std::map<std::string, Record> records_;
};

}  // namespace flowrt::api
