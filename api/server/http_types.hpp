// Request and response as route handlers see them: plain values, independent of Pistache,
// so that a handler can be unit-tested by building a Request and calling it directly.
//
// Header names are case-insensitive (RFC 9110 §5.1): every lookup ignores case, and the
// names keep the spelling they were set with.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/server/auth.hpp"

namespace flowrt::api {

// An ordered list of header fields with case-insensitive lookup.
class Headers {
 public:
  // Replaces every field named `name` (any case) with one field.
  void set(std::string name, std::string value);
  // Appends a field, keeping any existing ones of that name.
  void add(std::string name, std::string value);
  void remove(std::string_view name);
  bool has(std::string_view name) const;
  // The first field named `name`, if any.
  std::optional<std::string> get(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

bool iequals(std::string_view a, std::string_view b);

struct Request {
  std::string method;  // upper case, as received: "GET", "POST", ...
  std::string path;    // the target's path, still percent-encoded, without the query
  Headers headers;
  std::map<std::string, std::string> query;  // percent-decoded; the first of repeated names wins
  std::string body;

  // Filled in by the server before the handler runs.
  std::string route;                          // the matched pattern, e.g. "/v1/flows/{flow_id}"
  std::map<std::string, std::string> params;  // path parameters, percent-decoded
  std::string request_id;                     // X-Request-Id, echoed or generated
  std::optional<Principal> principal;         // who called; empty on public routes

  // The path parameter `name`; "" when the route has none of that name.
  std::string param(std::string_view name) const;
  std::optional<std::string> query_param(std::string_view name) const;
  std::optional<std::string> header(std::string_view name) const { return headers.get(name); }
  // The tenant of the caller's key; "" for the operator and anonymous callers.
  std::string tenant_id() const;
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;
  // For the access log of routes without a tenant key (webhooks): the tenant served, once
  // the handler knows it. Never sent to the client.
  std::string log_tenant;

  // `status` with `value` serialised as the body and Content-Type application/json.
  static Response json(int status, const nlohmann::json& value);
  static Response text(int status, std::string body, std::string content_type = "text/plain");
  static Response no_content();  // 204
};

// Splits "a=1&b=x%20y" into decoded pairs ('+' is a space). The first of repeated names wins.
std::map<std::string, std::string> parse_query_string(std::string_view query);
// Percent-decodes `text`; nullopt if an escape is malformed.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space = false);
// The reason phrase of an HTTP status code ("Not Found"), "" for unknown codes.
std::string_view reason_phrase(int status);

}  // namespace flowrt::api
