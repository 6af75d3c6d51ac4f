// Validation of a contact's answer to a question (`expect`, SPEC §2). Pure functions, so
// every expect type can be tested without running a flow.
#pragma once

#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "runtime/conversation.hpp"

namespace flowrt::runtime {

struct Expectation {
  enum class Type { text, number, integer, boolean, email, phone, choice, regex };
  Type type = Type::text;
  std::optional<double> min;  // number/integer: value bounds; text: length bounds
  std::optional<double> max;
  std::vector<std::string> choices;  // choice
  std::string pattern;               // regex (source, for messages)
  std::regex compiled;               // regex
};

// Parses the name of an expect type; nullopt if unknown.
std::optional<Expectation::Type> parse_expect_type(std::string_view name);

// Answers longer than this are refused before any regex runs, which bounds std::regex's
// recursion on hostile input.
inline constexpr size_t kMaxAnswerLength = 4096;

// Returns the value to store in vars, or nullopt if the answer is invalid.
// text: trimmed string; number: integer if whole else float; integer; boolean; email:
// trimmed; phone: E.164 ("+5511912345678"); choice: the choice as written; regex: trimmed.
std::optional<Json> validate_answer(const Expectation& expect, const std::string& answer);

// Normalises a phone number to E.164, or nullopt. Accepts spaces, dashes, dots and
// parentheses, a leading "+" or "00".
std::optional<std::string> normalise_phone(std::string_view raw);

}  // namespace flowrt::runtime
