// Who is calling, and what they may do.
//
// Two kinds of caller hold a bearer token (SPEC §4):
//  - the operator, whose token is the server's FLOWRT_ADMIN_TOKEN and who manages tenants;
//  - a tenant API key, which belongs to one tenant and carries one role.
//
// Role matrix. A route names the least role it needs; a key may call it when its role
// "covers" that role:
//
//   key role \ route needs   viewer   agent   editor   admin
//   viewer                     yes      -        -        -
//   agent                      yes     yes       -        -
//   editor                     yes      -       yes       -
//   admin                      yes     yes      yes      yes
//
// So admin ⊇ editor ⊇ viewer and admin ⊇ agent ⊇ viewer: the admin of a tenant can do
// everything inside it (including the agent's conversation work), an editor cannot touch
// conversations and an agent cannot touch flows, and every role can read what a viewer can.
// The operator is not a tenant key: it passes operator routes only, and a tenant key never
// passes an operator route (403 either way).
//
// Tenant API keys look like `frt_<48 hex digits>` (192 random bits). The store keeps only
// the token's SHA-256 digest (unique, so a token is found by its digest) and a short prefix
// to show in lists; the token itself is shown once, when the key is created
// (runtime/store/store.hpp, create_key and authenticate).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "runtime/role.hpp"

namespace flowrt::api {

using flowrt::parse_role;
using flowrt::Role;  // runtime/role.hpp: shared with the store, which keeps keys' roles
// True when a key holding `held` may call a route that needs `required` (matrix above).
bool role_covers(Role held, Role required);

struct Principal {
  enum class Kind { operator_token, tenant_key };
  Kind kind = Kind::tenant_key;
  std::string tenant_id;  // empty for the operator
  std::string key_id;     // empty for the operator
  Role role = Role::viewer;

  bool is_operator() const { return kind == Kind::operator_token; }
  static Principal make_operator() { return Principal{Kind::operator_token, {}, {}, Role::admin}; }
  static Principal tenant_key(std::string tenant_id, std::string key_id, Role role) {
    return Principal{Kind::tenant_key, std::move(tenant_id), std::move(key_id), role};
  }
};

// Resolves a bearer token to a principal. Implemented over the store (tenant keys) and by
// OperatorTokenAuthenticator; tests supply fakes. Must be safe to call from several threads.
class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // The principal `token` stands for, or nullopt when the token is unknown or revoked.
  virtual std::optional<Principal> authenticate(std::string_view token) = 0;
};

// Recognises the operator token (compared in constant time) and hands every other token to
// `tenant_keys` (which may be null while no store exists: then only the operator passes).
class OperatorTokenAuthenticator : public Authenticator {
 public:
  OperatorTokenAuthenticator(std::string operator_token, Authenticator* tenant_keys);
  std::optional<Principal> authenticate(std::string_view token) override;

 private:
  std::string operator_token_;
  Authenticator* tenant_keys_;
};

// The token of an `Authorization: Bearer <token>` header value; nullopt when the scheme is
// not Bearer (case-insensitive) or the token is empty or contains whitespace.
std::optional<std::string> parse_bearer_token(std::string_view authorization);

// Compares in time that depends only on the lengths, never on where the inputs differ.
bool constant_time_equals(std::string_view a, std::string_view b);

std::string sha256_hex(std::string_view data);
// `n` bytes from RAND_bytes; throws std::runtime_error on failure.
std::string random_bytes(size_t n);
std::string hex_encode(std::string_view bytes);

}  // namespace flowrt::api
