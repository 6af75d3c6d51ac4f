#include "api/server/idempotency.hpp"

#include "api/server/auth.hpp"
#include "api/server/problem.hpp"

namespace flowrt::api {

std::optional<std::string> idempotency_key(const Request& request) {
  auto key = request.headers.get("Idempotency-Key");
  if (!key) return std::nullopt;
  bool ok = !key->empty() && key->size() <= 255;
  for (char c : *key) ok = ok && c > 0x20 && c < 0x7f;
  if (!ok) {
    throw ApiError(problems::bad_request(
        "Idempotency-Key must be 1 to 255 visible ASCII characters, e.g. a UUID.",
        {{"Idempotency-Key", "not 1 to 255 visible ASCII characters"}}));
  }
  return key;
}

std::string request_fingerprint(const Request& request) {
  std::string material = request.method + "\n" + request.route + "\n";
  for (const auto& [name, value] : request.params) {
    material += std::to_string(name.size()) + ":" + name + "=" + std::to_string(value.size()) +
                ":" + value + "\n";
  }
  material += request.body;
  return sha256_hex(material);
}

Response with_idempotency(IdempotencyStore& store, const Request& request,
                          const std::function<Response()>& handler) {
  auto key = idempotency_key(request);
  if (!key) return handler();
  IdempotencyScope scope{request.tenant_id(), request.method + " " + request.route, *key};
  auto claim = store.claim(scope, request_fingerprint(request));
  using Outcome = IdempotencyStore::Claim::Outcome;
  switch (claim.outcome) {
    case Outcome::replay: {
      Response r;
      r.status = claim.response->status;
      if (!claim.response->content_type.empty()) {
        r.headers.set("Content-Type", claim.response->content_type);
      }
      r.headers.set("Idempotent-Replayed", "true");
      r.body = claim.response->body;
      return r;
    }
    case Outcome::fingerprint_mismatch: {
      Problem p = problems::validation(
          {{"Idempotency-Key", "already used for a different request"}},
          "This Idempotency-Key was already used with a different request. Use a new key for "
          "a new request.");
      p.type = "idempotency_key_reused";
      throw ApiError(std::move(p));
    }
    case Outcome::in_progress:
      throw ApiError(problems::conflict(
          "A request with this Idempotency-Key is still being processed; retry shortly."));
    case Outcome::claimed:
      break;
  }
  Response response;
  try {
    response = handler();
  } catch (const ApiError& e) {
    int s = e.problem().status;
    if (s >= 400 && s < 500 && s != 409 && s != 429) {
      Response r = problem_response(e.problem());
      store.complete(scope, {s, "application/problem+json", r.body});
    } else {
      store.release(scope);
    }
    throw;
  } catch (...) {
    store.release(scope);
    throw;
  }
  if (response.status < 500 && response.status != 409 && response.status != 429) {
    store.complete(
        scope, {response.status, response.headers.get("Content-Type").value_or(""), response.body});
  } else {
    store.release(scope);
  }
  return response;
}

std::string InMemoryIdempotencyStore::key_of(const IdempotencyScope& scope) {
  return std::to_string(scope.tenant_id.size()) + ":" + scope.tenant_id + "|" + scope.route + "|" +
         scope.key;
}

IdempotencyStore::Claim InMemoryIdempotencyStore::claim(const IdempotencyScope& scope,
                                                        const std::string& fingerprint) {
  std::lock_guard lock(mutex_);
  auto [it, inserted] = records_.emplace(key_of(scope), Record{fingerprint, std::nullopt});
  if (inserted) return {Claim::Outcome::claimed, std::nullopt};
  if (it->second.fingerprint != fingerprint) return {Claim::Outcome::fingerprint_mismatch, {}};
  if (!it->second.response) return {Claim::Outcome::in_progress, {}};
  return {Claim::Outcome::replay, it->second.response};
}

void InMemoryIdempotencyStore::complete(const IdempotencyScope& scope,
                                        const StoredResponse& response) {
  std::lock_guard lock(mutex_);
  auto it = records_.find(key_of(scope));
  if (it != records_.end()) it->second.response = response;
}

void InMemoryIdempotencyStore::release(const IdempotencyScope& scope) {
  std::lock_guard lock(mutex_);
  records_.erase(key_of(scope));
}

}  // namespace flowrt::api
