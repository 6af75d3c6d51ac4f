#include "api/server/pagination.hpp"

#include <charconv>

#include "api/server/problem.hpp"

namespace flowrt::api {

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int decode_char(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}
}  // namespace

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                 (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                 static_cast<unsigned char>(bytes[i + 2]);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  size_t rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
  } else if (rest == 2) {
    uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                 (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
  }
  return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    int v = decode_char(c);
    if (v < 0) return std::nullopt;
    buffer = (buffer << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  // Leftover bits must be zero, so that each byte string has exactly one encoding.
  if (bits > 0 && (buffer & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

std::string encode_cursor(const nlohmann::json& position) {
  return base64url_encode(position.dump());
}

nlohmann::json decode_cursor(std::string_view cursor) {
  auto bad = [] {
    return ApiError(problems::bad_request(
        "The cursor is not valid. Pass the next_cursor value of the previous page unchanged, "
        "or omit cursor to start from the first page.",
        {{"?cursor", "not a cursor issued by this server"}}));
  };
  if (cursor.size() > 2048) throw bad();
  auto raw = base64url_decode(cursor);
  if (!raw) throw bad();
  auto value = nlohmann::json::parse(*raw, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded() || !value.is_object()) throw bad();
  return value;
}

PageRequest parse_page_request(const Request& request) {
  PageRequest page;
  if (auto limit = request.query_param("limit")) {
    int value = 0;
    auto [end, ec] = std::from_chars(limit->data(), limit->data() + limit->size(), value);
    if (ec != std::errc() || end != limit->data() + limit->size() || value < 1 ||
        value > kMaxPageLimit) {
      throw ApiError(problems::bad_request(
          "limit must be an integer from 1 to " + std::to_string(kMaxPageLimit) + " (default " +
              std::to_string(kDefaultPageLimit) + ").",
          {{"?limit", "expected an integer from 1 to " + std::to_string(kMaxPageLimit)}}));
    }
    page.limit = value;
  }
  if (auto cursor = request.query_param("cursor"); cursor && !cursor->empty()) {
    page.after = decode_cursor(*cursor);
  }
  return page;
}

nlohmann::json page_envelope(nlohmann::json items, const std::optional<nlohmann::json>& next) {
  return {{"items", std::move(items)},
          {"next_cursor", next ? nlohmann::json(encode_cursor(*next)) : nlohmann::json(nullptr)}};
}

}  // namespace flowrt::api
