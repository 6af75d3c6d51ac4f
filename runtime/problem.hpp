// A problem found in a flow document: where (JSON pointer) and what, in one sentence.
#pragma once

#include <string>
#include <vector>

namespace flowrt::runtime {

struct Problem {
  enum class Severity { error, warning };
  Severity severity = Severity::error;
  std::string path;     // JSON pointer into the document, "" for the whole document
  std::string message;  // a sentence that says what is wrong and, where it can, what to do

  bool is_error() const { return severity == Severity::error; }
};

using Problems = std::vector<Problem>;

inline bool has_errors(const Problems& problems) {
  for (const auto& p : problems) {
    if (p.is_error()) return true;
  }
  return false;
}

}  // namespace flowrt::runtime
