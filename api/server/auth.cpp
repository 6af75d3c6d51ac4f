#include "api/server/auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdexcept>

#include "api/server/http_types.hpp"
#include "api/server/pagination.hpp"

namespace flowrt::api {

bool role_covers(Role held, Role required) {
  if (held == required || held == Role::admin) return true;
  return required == Role::viewer;  // agent and editor each cover viewer, nothing else
}

OperatorTokenAuthenticator::OperatorTokenAuthenticator(std::string operator_token,
                                                       Authenticator* tenant_keys)
    : operator_token_(std::move(operator_token)), tenant_keys_(tenant_keys) {}

std::optional<Principal> OperatorTokenAuthenticator::authenticate(std::string_view token) {
  if (!operator_token_.empty() && constant_time_equals(token, operator_token_)) {
    return Principal::make_operator();
  }
  if (tenant_keys_ == nullptr) return std::nullopt;
  return tenant_keys_->authenticate(token);
}

std::optional<std::string> parse_bearer_token(std::string_view authorization) {
  auto is_space = [](char c) { return c == ' ' || c == '\t'; };
  while (!authorization.empty() && is_space(authorization.front())) authorization.remove_prefix(1);
  while (!authorization.empty() && is_space(authorization.back())) authorization.remove_suffix(1);
  constexpr std::string_view scheme = "bearer";
  if (authorization.size() <= scheme.size() || !iequals(authorization.substr(0, 6), scheme) ||
      !is_space(authorization[6])) {
    return std::nullopt;
  }
  std::string_view token = authorization.substr(7);
  while (!token.empty() && is_space(token.front())) token.remove_prefix(1);
  if (token.empty()) return std::nullopt;
  for (char c : token) {
    if (is_space(c) || static_cast<unsigned char>(c) < 0x21 || c == 0x7f) return std::nullopt;
  }
  return std::string(token);
}

bool constant_time_equals(std::string_view a, std::string_view b) {
  // Compare digests so that the time does not even depend on the common prefix length of
  // inputs of different sizes; CRYPTO_memcmp does the constant-time comparison.
  std::string da = sha256_hex(a);
  std::string db = sha256_hex(b);
  return CRYPTO_memcmp(da.data(), db.data(), da.size()) == 0 && a.size() == b.size();
}

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    throw std::runtime_error("OpenSSL RAND_bytes failed: no secure random bytes available");
  }
  return out;
}

std::string hex_encode(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 0xf]);
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("OpenSSL SHA-256 failed");
  }
  return hex_encode(std::string_view(reinterpret_cast<const char*>(digest), length));
}

}  // namespace flowrt::api
