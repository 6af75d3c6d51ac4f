#include "runtime/suggest.hpp"

#include <algorithm>
#include <cctype>

namespace flowrt::runtime {
namespace {

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                  std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string did_you_mean(std::string_view wrong, const std::vector<std::string_view>& candidates) {
  size_t limit = std::max<size_t>(1, std::min<size_t>(3, wrong.size() / 3));
  size_t best = limit + 1;
  std::string_view choice;
  for (auto candidate : candidates) {
    size_t d = edit_distance(wrong, candidate);
    if (d < best) {
      best = d;
      choice = candidate;
    }
  }
  if (choice.empty()) return "";
  return " (did you mean \"" + std::string(choice) + "\"?)";
}

}  // namespace flowrt::runtime
