// Routes: a method, a path pattern with {named} segments, who may call it, and a handler.
//
//   router.add("GET", "/v1/flows/{flow_id}/versions/{n}", handler, Access::tenant(Role::viewer));
//
// A pattern is matched segment by segment; `{name}` matches exactly one non-empty segment
// (percent-decoded into Request::params). When several routes match a path, the one with
// the most literal segments wins, so "/v1/flows/validate" beats "/v1/flows/{flow_id}".
// A path that no route matches is a 404; a path that some route matches, but not with this
// method, is a 405 whose Allow header lists the methods it has.
//
// Routes are added before the server starts; matching is then read-only and thread-safe.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "api/server/auth.hpp"
#include "api/server/http_types.hpp"

namespace flowrt::api {

using Handler = std::function<Response(const Request&)>;

// Who may call a route. The default is the safe one: any valid token.
struct Access {
  enum class Kind { anyone, any_principal, operator_only, tenant };
  Kind kind = Kind::any_principal;
  Role role = Role::viewer;  // for Kind::tenant: the least role needed (see auth.hpp)
  bool rate_limited = true;  // tenant calls count against the tenant's rate limit

  static Access anyone() { return Access{Kind::anyone, Role::viewer, true}; }
  static Access any_principal() { return Access{Kind::any_principal, Role::viewer, true}; }
  static Access operator_only() { return Access{Kind::operator_only, Role::admin, true}; }
  static Access tenant(Role least) { return Access{Kind::tenant, least, true}; }
};

struct Route {
  std::string method;
  std::string pattern;
  Handler handler;
  Access access;
  std::vector<std::string> segments;  // split pattern; "{name}" marks a parameter
  int literal_segments = 0;
};

struct RouteMatch {
  enum class Outcome { found, not_found, method_not_allowed };
  Outcome outcome = Outcome::not_found;
  const Route* route = nullptr;               // when found
  std::map<std::string, std::string> params;  // when found
  std::vector<std::string> allowed_methods;   // when method_not_allowed, sorted
};

class Router {
 public:
  // Adds a route. Throws std::invalid_argument on a malformed pattern (not starting with
  // '/', empty or duplicated parameter names, a '{' that is not a whole segment) or when
  // the same method and pattern shape is already registered.
  void add(std::string method, std::string pattern, Handler handler,
           Access access = Access::any_principal());

  RouteMatch match(std::string_view method, std::string_view path) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
};

}  // namespace flowrt::api
