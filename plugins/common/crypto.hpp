// HMAC-SHA256 and constant-time comparison for the bundled providers (OpenSSL).
#pragma once

#include <string>
#include <string_view>

namespace flowrt::plugins {

// Lower-case hex of HMAC-SHA256(key, data).
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

// True when `hex` (either case) is the HMAC-SHA256 of `data` under `key`. Compares the
// digests in constant time (CRYPTO_memcmp); malformed hex is simply false.
bool hmac_sha256_matches(std::string_view hex, std::string_view key, std::string_view data);

// Constant-time equality for secrets such as verification tokens. The length of `a` and
// `b` may leak, their content does not.
bool secrets_equal(std::string_view a, std::string_view b);

}  // namespace flowrt::plugins
