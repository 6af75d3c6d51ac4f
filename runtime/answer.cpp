#include "runtime/answer.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

namespace flowrt::runtime {
namespace {

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool within(double value, const Expectation& e) {
  return (!e.min || value >= *e.min) && (!e.max || value <= *e.max);
}

// "1,500", "1 500", "-3.25", "+7". A comma followed by exactly three digits groups
// thousands; any other comma is a decimal separator ("2,5").
std::optional<double> parse_number(const std::string& text) {
  std::string cleaned;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == ' ' || c == '_') continue;
    if (c == ',') {
      size_t digits = 0;
      while (i + 1 + digits < text.size() &&
             std::isdigit(static_cast<unsigned char>(text[i + 1 + digits])))
        ++digits;
      cleaned += digits == 3 ? "" : ".";
      continue;
    }
    cleaned += c;
  }
  if (cleaned.empty() || std::count(cleaned.begin(), cleaned.end(), '.') > 1) return std::nullopt;
  if (cleaned[0] == '+') {
    cleaned.erase(0, 1);
    if (!cleaned.empty() && (cleaned[0] == '-' || cleaned[0] == '+')) return std::nullopt;
  }
  double value = 0;
  auto [end, ec] = std::from_chars(cleaned.data(), cleaned.data() + cleaned.size(), value);
  if (ec != std::errc() || end != cleaned.data() + cleaned.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

Json number_json(double value) {
  if (std::floor(value) == value && std::fabs(value) < 9.0e15) {
    return Json(static_cast<long long>(value));
  }
  return Json(value);
}

bool valid_email(const std::string& s) {
  auto at = s.find('@');
  if (at == std::string::npos || at == 0 || s.find('@', at + 1) != std::string::npos) return false;
  if (s.size() > 254) return false;
  std::string domain = s.substr(at + 1);
  auto dot = domain.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 2 > domain.size()) return false;
  if (domain.find("..") != std::string::npos || domain.front() == '-' || domain.front() == '.') {
    return false;
  }
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == ',' || c == ';' || c == '<' ||
        c == '>') {
      return false;
    }
  }
  return true;
}

}  // namespace

std::optional<Expectation::Type> parse_expect_type(std::string_view name) {
  using T = Expectation::Type;
  static const std::pair<std::string_view, T> names[] = {
      {"text", T::text},   {"number", T::number}, {"integer", T::integer}, {"boolean", T::boolean},
      {"email", T::email}, {"phone", T::phone},   {"choice", T::choice},   {"regex", T::regex}};
  for (const auto& [n, t] : names) {
    if (n == name) return t;
  }
  return std::nullopt;
}

std::optional<std::string> normalise_phone(std::string_view raw) {
  std::string s = trim(raw);
  std::string digits;
  bool international = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      digits += c;
    } else if (c == '+' && i == 0) {
      international = true;
    } else if (c != ' ' && c != '-' && c != '.' && c != '(' && c != ')') {
      return std::nullopt;
    }
  }
  if (!international && digits.rfind("00", 0) == 0) {
    digits.erase(0, 2);
    international = true;
  }
  // E.164: a country code (no leading zero) and at most 15 digits in all.
  if (!international || digits.size() < 8 || digits.size() > 15 || digits[0] == '0') {
    return std::nullopt;
  }
  return "+" + digits;
}

std::optional<Json> validate_answer(const Expectation& expect, const std::string& answer) {
  if (answer.size() > kMaxAnswerLength) return std::nullopt;
  std::string value = trim(answer);
  using T = Expectation::Type;
  switch (expect.type) {
    case T::text:
      if (value.empty() || !within(static_cast<double>(value.size()), expect)) return std::nullopt;
      return Json(value);
    case T::number: {
      auto n = parse_number(value);
      if (!n || !within(*n, expect)) return std::nullopt;
      return number_json(*n);
    }
    case T::integer: {
      auto n = parse_number(value);
      if (!n || std::floor(*n) != *n || std::fabs(*n) >= 9.0e15 || !within(*n, expect)) {
        return std::nullopt;
      }
      return Json(static_cast<long long>(*n));
    }
    case T::boolean: {
      std::string v = lower(value);
      if (v == "yes" || v == "y" || v == "true" || v == "1") return Json(true);
      if (v == "no" || v == "n" || v == "false" || v == "0") return Json(false);
      return std::nullopt;
    }
    case T::email:
      if (!valid_email(value)) return std::nullopt;
      return Json(value);
    case T::phone: {
      auto phone = normalise_phone(value);
      if (!phone) return std::nullopt;
      return Json(*phone);
    }
    case T::choice: {
      std::string wanted = lower(value);
      for (const auto& choice : expect.choices) {
        if (lower(trim(choice)) == wanted) return Json(choice);
      }
      size_t position = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), position);
      if (ec == std::errc() && end == value.data() + value.size() && position >= 1 &&
          position <= expect.choices.size()) {
        return Json(expect.choices[position - 1]);
      }
      return std::nullopt;
    }
    case T::regex:
      if (!std::regex_match(value, expect.compiled)) return std::nullopt;
      return Json(value);
  }
  return std::nullopt;
}

}  // namespace flowrt::runtime
