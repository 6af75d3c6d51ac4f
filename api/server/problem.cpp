#include "api/server/problem.hpp"

#include <algorithm>

namespace flowrt::api {

nlohmann::json problem_json(const Problem& problem) {
  nlohmann::json errors = nlohmann::json::array();
  for (const auto& e : problem.errors) {
    errors.push_back({{"path", e.path}, {"message", e.message}});
  }
  nlohmann::json body =
      problem.extensions.is_object() ? problem.extensions : nlohmann::json::object();
  body["type"] = problem.type;
  body["title"] = problem.title;
  body["status"] = problem.status;
  body["detail"] = problem.detail;
  body["errors"] = std::move(errors);
  return body;
}

Response problem_response(const Problem& problem) {
  Response r;
  r.status = problem.status;
  r.headers = problem.headers;
  r.headers.set("Content-Type", "application/problem+json");
  r.body = problem_json(problem).dump();
  return r;
}

ApiError::ApiError(Problem problem)
    : std::runtime_error(problem.type + ": " + problem.detail), problem_(std::move(problem)) {}

namespace problems {
namespace {
Problem make(int status, std::string type, std::string title, std::string detail) {
  Problem p;
  p.status = status;
  p.type = std::move(type);
  p.title = std::move(title);
  p.detail = std::move(detail);
  return p;
}
}  // namespace

Problem bad_request(std::string detail, std::vector<FieldError> errors) {
  Problem p = make(400, "bad_request", "Bad request", std::move(detail));
  p.errors = std::move(errors);
  return p;
}

Problem malformed_json(int line, int column, std::string reason) {
  Problem p = make(400, "malformed_json", "Malformed JSON",
                   "The request body is not valid JSON: line " + std::to_string(line) +
                       ", column " + std::to_string(column) + ": " + reason);
  p.extensions["line"] = line;
  p.extensions["column"] = column;
  p.errors.push_back({"", p.detail});
  return p;
}

Problem unauthorized(std::string detail) {
  Problem p = make(401, "unauthorized", "Unauthorized", std::move(detail));
  p.headers.set("WWW-Authenticate", "Bearer");
  return p;
}

Problem forbidden(std::string detail) {
  return make(403, "forbidden", "Forbidden", std::move(detail));
}

Problem not_found(std::string detail) {
  return make(404, "not_found", "Not found", std::move(detail));
}

Problem method_not_allowed(const std::vector<std::string>& allowed) {
  std::string list;
  for (const auto& m : allowed) list += (list.empty() ? "" : ", ") + m;
  Problem p = make(405, "method_not_allowed", "Method not allowed",
                   "This path accepts only: " + list + ".");
  p.headers.set("Allow", list);
  return p;
}

Problem conflict(std::string detail) {
  return make(409, "conflict", "Conflict", std::move(detail));
}

Problem payload_too_large(size_t limit_bytes) {
  Problem p = make(413, "payload_too_large", "Request body too large",
                   "The request body is larger than this server accepts (" +
                       std::to_string(limit_bytes) + " bytes). Send a smaller body.");
  p.extensions["limit_bytes"] = limit_bytes;
  return p;
}

Problem unsupported_media_type(std::string detail) {
  return make(415, "unsupported_media_type", "Unsupported media type", std::move(detail));
}

Problem validation(std::vector<FieldError> errors, std::string detail) {
  if (detail.empty()) {
    detail = std::to_string(errors.size()) +
             (errors.size() == 1 ? " problem was" : " problems were") +
             " found in the request; see errors.";
  }
  Problem p = make(422, "validation_error", "Validation failed", std::move(detail));
  p.errors = std::move(errors);
  return p;
}

Problem rate_limited(std::chrono::seconds retry_after) {
  auto seconds = std::max<long long>(1, retry_after.count());
  Problem p = make(429, "rate_limited", "Too many requests",
                   "This tenant's request rate limit is exhausted; retry after " +
                       std::to_string(seconds) + " s.");
  p.headers.set("Retry-After", std::to_string(seconds));
  return p;
}

Problem internal_error(const std::string& request_id) {
  return make(500, "internal_error", "Internal server error",
              "The server failed to handle this request. It has been logged with request id " +
                  request_id + "; quote it when reporting the problem.");
}

Problem unavailable(std::string detail) {
  return make(503, "unavailable", "Service unavailable", std::move(detail));
}
}  // namespace problems

namespace {
// "[json.exception.parse_error.101] parse error at line 1, column 2: syntax error while
// parsing value - invalid literal; last read: 'x'" -> "syntax error while parsing value -
// invalid literal; last read: 'x'".
std::string parse_error_reason(const std::string& what) {
  auto colon = what.find(": ");
  if (colon == std::string::npos) return what;
  return what.substr(colon + 2);
}
}  // namespace

nlohmann::json parse_json_text(std::string_view text) {
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is the 1-based offset of the offending byte; count lines up to it.
    size_t end = std::min<size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
    int line = 1;
    int column = 1;
    for (size_t i = 0; i < end; ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    if (text.empty()) {
      throw ApiError(problems::malformed_json(1, 1, "the body is empty; send a JSON document"));
    }
    throw ApiError(problems::malformed_json(line, column, parse_error_reason(e.what())));
  }
}

nlohmann::json parse_json_body(const Request& request) {
  std::string type = request.headers.get("Content-Type").value_or("");
  std::string media = type.substr(0, type.find(';'));
  while (!media.empty() && media.back() == ' ') media.pop_back();
  std::transform(media.begin(), media.end(), media.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  bool json = media == "application/json" ||
              (media.starts_with("application/") && media.ends_with("+json"));
  if (!json) {
    throw ApiError(problems::unsupported_media_type(
        type.empty() ? "The request has no Content-Type; send the body as application/json."
                     : "The body is '" + media + "'; send it as application/json."));
  }
  return parse_json_text(request.body);
}

}  // namespace flowrt::api
