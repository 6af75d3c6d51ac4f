// Cursor pagination (SPEC §4): `?limit=50&cursor=…` → {"items": [...], "next_cursor": "…"|null}.
//
// A cursor is opaque to clients: base64url (no padding) of a small JSON object that the
// route chooses (typically the sort key of the last item, e.g. {"after": "flw_123"}). It is
// not signed: every query is scoped to the caller's tenant anyway, so a forged cursor can at
// worst skip rows the caller may read. Routes must treat the decoded object as untrusted
// input and check its members.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "api/server/http_types.hpp"

namespace flowrt::api {

inline constexpr int kDefaultPageLimit = 50;
inline constexpr int kMaxPageLimit = 200;

struct PageRequest {
  int limit = kDefaultPageLimit;
  std::optional<nlohmann::json> after;  // the decoded cursor object; empty on the first page
};

// Reads `limit` (integer 1..200, default 50) and `cursor` from the query. Throws ApiError
// 400 naming the parameter and what to send instead.
PageRequest parse_page_request(const Request& request);

std::string encode_cursor(const nlohmann::json& position);
// Throws ApiError 400 when `cursor` is not one this server issued (bad base64url, not JSON,
// not an object).
nlohmann::json decode_cursor(std::string_view cursor);

// {"items": items, "next_cursor": encode_cursor(*next) or null}.
nlohmann::json page_envelope(nlohmann::json items, const std::optional<nlohmann::json>& next);

std::string base64url_encode(std::string_view bytes);  // RFC 4648 §5, no padding
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace flowrt::api
