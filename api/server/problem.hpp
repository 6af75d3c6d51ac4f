// Errors as application/problem+json (RFC 9457), in the one shape SPEC §4 promises:
//
//   {"type": "validation_error", "title": "...", "status": 422, "detail": "...",
//    "errors": [{"path": "/nodes/2/next", "message": "..."}]}
//
// `type` is a short snake_case word a client can switch on; `errors` is always present
// (empty when there is nothing per-field to say). A handler reports an error by throwing
// ApiError (or returning problem_response(...)); the server turns any other exception into
// a 500 that says nothing of the cause and logs the cause with the request id instead.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/server/http_types.hpp"

namespace flowrt::api {

struct FieldError {
  std::string path;     // JSON pointer into the request body ("" for the whole body)
  std::string message;  // one sentence: what is wrong and, where it can, what to do
};

struct Problem {
  std::string type;
  std::string title;
  int status = 500;
  std::string detail;
  std::vector<FieldError> errors;
  nlohmann::json extensions = nlohmann::json::object();  // extra members, e.g. line/column
  Headers headers;  // sent with the response (Allow, Retry-After, WWW-Authenticate)
};

nlohmann::json problem_json(const Problem& problem);
// The response for `problem`, Content-Type application/problem+json.
Response problem_response(const Problem& problem);

// Thrown by handlers (and the helpers below) to answer with a problem.
class ApiError : public std::runtime_error {
 public:
  explicit ApiError(Problem problem);
  const Problem& problem() const { return problem_; }

 private:
  Problem problem_;
};

namespace problems {
Problem bad_request(std::string detail, std::vector<FieldError> errors = {});
// Malformed JSON: `line` and `column` are 1-based, also sent as extension members.
Problem malformed_json(int line, int column, std::string reason);
Problem unauthorized(std::string detail);  // adds WWW-Authenticate: Bearer
Problem forbidden(std::string detail);
Problem not_found(std::string detail);
Problem method_not_allowed(const std::vector<std::string>& allowed);  // adds Allow
Problem conflict(std::string detail);
Problem payload_too_large(size_t limit_bytes);
Problem unsupported_media_type(std::string detail);
Problem validation(std::vector<FieldError> errors, std::string detail = {});
Problem rate_limited(std::chrono::seconds retry_after);  // adds Retry-After
Problem internal_error(const std::string& request_id);
Problem unavailable(std::string detail);  // 503
}  // namespace problems

// The request body as JSON. Throws ApiError: 415 unless Content-Type is application/json
// (or +json), 400 "malformed_json" with line and column when it does not parse.
nlohmann::json parse_json_body(const Request& request);
// Parses `text` as JSON, throwing ApiError 400 "malformed_json" that says where.
nlohmann::json parse_json_text(std::string_view text);

}  // namespace flowrt::api
