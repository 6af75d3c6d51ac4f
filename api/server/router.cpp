#include "api/server/router.hpp"

#include <algorithm>
#include <set>
#include <stdexcept>

namespace flowrt::api {

namespace {
std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  if (path.empty() || path.front() != '/') return out;
  size_t start = 1;
  while (true) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) {
      out.push_back(path.substr(start));
      break;
    }
    out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool is_param(std::string_view segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

std::string shape_of(const Route& route) {
  std::string shape = route.method + " ";
  for (const auto& s : route.segments) shape += "/" + (is_param(s) ? std::string("{}") : s);
  return shape;
}
}  // namespace

void Router::add(std::string method, std::string pattern, Handler handler, Access access) {
  if (pattern.empty() || pattern.front() != '/') {
    throw std::invalid_argument("route pattern must start with '/': " + pattern);
  }
  if (!handler) throw std::invalid_argument("route has no handler: " + pattern);
  Route route;
  std::transform(method.begin(), method.end(), method.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  route.method = std::move(method);
  route.pattern = pattern;
  route.handler = std::move(handler);
  route.access = access;
  std::set<std::string> names;
  for (auto segment : split_path(pattern)) {
    if (is_param(segment)) {
      std::string name(segment.substr(1, segment.size() - 2));
      if (name.find_first_of("{}/") != std::string::npos || !names.insert(name).second) {
        throw std::invalid_argument("bad or duplicated parameter in route pattern: " + pattern);
      }
    } else {
      if (segment.find_first_of("{}") != std::string_view::npos) {
        throw std::invalid_argument("'{' must enclose a whole segment in: " + pattern);
      }
      if (segment.empty() && pattern != "/") {
        throw std::invalid_argument("empty segment in route pattern: " + pattern);
      }
      ++route.literal_segments;
    }
    route.segments.emplace_back(segment);
  }
  for (const auto& existing : routes_) {
    if (shape_of(existing) == shape_of(route)) {
      throw std::invalid_argument("route registered twice: " + shape_of(route));
    }
  }
  routes_.push_back(std::move(route));
}

RouteMatch Router::match(std::string_view method, std::string_view path) const {
  RouteMatch result;
  auto segments = split_path(path);
  std::set<std::string> allowed;
  int best_literals = -1;
  for (const auto& route : routes_) {
    if (route.segments.size() != segments.size()) continue;
    std::map<std::string, std::string> params;
    bool matches = true;
    for (size_t i = 0; i < segments.size() && matches; ++i) {
      const std::string& want = route.segments[i];
      if (is_param(want)) {
        auto decoded = percent_decode(segments[i]);
        if (segments[i].empty() || !decoded) {
          matches = false;
        } else {
          params[want.substr(1, want.size() - 2)] = *decoded;
        }
      } else {
        matches = want == segments[i];
      }
    }
    if (!matches) continue;
    allowed.insert(route.method);
    if (route.method == method && route.literal_segments > best_literals) {
      best_literals = route.literal_segments;
      result.outcome = RouteMatch::Outcome::found;
      result.route = &route;
      result.params = std::move(params);
    }
  }
  if (result.outcome == RouteMatch::Outcome::found) return result;
  if (!allowed.empty()) {
    result.outcome = RouteMatch::Outcome::method_not_allowed;
    result.allowed_methods.assign(allowed.begin(), allowed.end());
  }
  return result;
}

}  // namespace flowrt::api
