// Small helpers shared by the store's files: hashing, random ids.
#pragma once

#include <string>
#include <string_view>

namespace flowrt::runtime::store {

// The most journal events one `events` row holds: the identity of `events.id` steps by this
// much (migrations/0007_journal_rows.sql), and the entries of a row take the ids from the
// row's own up.
constexpr int kEventsPerRow = 100;

// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

// `prefix` followed by `bytes` random bytes in hex (from OpenSSL's CSPRNG).
std::string random_token(std::string_view prefix, int bytes);

}  // namespace flowrt::runtime::store
