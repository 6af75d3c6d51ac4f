#include "common/crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdexcept>

namespace flowrt::plugins {
namespace {

constexpr size_t kDigestSize = 32;

void hmac_sha256(std::string_view key, std::string_view data, unsigned char* digest) {
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest,
           &length) == nullptr ||
      length != kDigestSize)
    throw std::runtime_error("HMAC-SHA256 failed in OpenSSL");
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  unsigned char digest[kDigestSize];
  hmac_sha256(key, data, digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * kDigestSize);
  for (unsigned char byte : digest) {
    hex.push_back(kHex[byte >> 4]);
    hex.push_back(kHex[byte & 0xf]);
  }
  return hex;
}

bool hmac_sha256_matches(std::string_view hex, std::string_view key, std::string_view data) {
  if (hex.size() != 2 * kDigestSize) return false;
  unsigned char given[kDigestSize];
  for (size_t i = 0; i < kDigestSize; ++i) {
    int high = hex_value(hex[2 * i]), low = hex_value(hex[2 * i + 1]);
    if (high < 0 || low < 0) return false;
    given[i] = static_cast<unsigned char>(high * 16 + low);
  }
  unsigned char expected[kDigestSize];
  hmac_sha256(key, data, expected);
  return CRYPTO_memcmp(given, expected, kDigestSize) == 0;
}

bool secrets_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace flowrt::plugins
