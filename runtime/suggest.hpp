// Wording helpers for messages that name things a user wrote.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace flowrt::runtime {

// Returns ` (did you mean "x"?)` for the closest candidate within a small edit distance,
// or "" when nothing is close.
// `"text"`, for naming ids and fields in messages.
inline std::string in_quotes(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

std::string did_you_mean(std::string_view wrong, const std::vector<std::string_view>& candidates);

}  // namespace flowrt::runtime
