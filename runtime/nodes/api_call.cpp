// `api_call`: one HTTP request. 2xx: `save` mappings (var -> JSON pointer into the response
// body) are applied, then `next`. Network error, timeout or non-2xx: `on_error` if given,
// else the run fails. `save_status` records the status (0 when no response arrived) in
// every case, so an `on_error` branch can look at it.
#include <chrono>

#include "runtime/nodes/common.hpp"

namespace flowrt::runtime::nodes {
namespace {

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// A JSON body whose string leaves are templates.
struct BodyTemplate {
  Json shape;  // the body with string leaves kept
  std::vector<std::pair<Json::json_pointer, Template>> leaves;
};

void collect_leaves(NodeParseContext& ctx, const Json& value, const Json::json_pointer& at,
                    BodyTemplate& body) {
  if (value.is_string()) {
    body.leaves.emplace_back(at, template_at(ctx, value, "/body" + at.to_string(), true));
  } else if (value.is_object()) {
    for (const auto& [key, child] : value.items()) collect_leaves(ctx, child, at / key, body);
  } else if (value.is_array()) {
    for (size_t i = 0; i < value.size(); ++i) collect_leaves(ctx, value[i], at / i, body);
  }
}

class ApiCallNode : public Node {
 public:
  std::string method = "GET";
  Template url;
  std::vector<std::pair<std::string, Template>> headers;
  std::vector<std::pair<std::string, Template>> query;
  bool has_body = false;
  BodyTemplate body;
  int timeout_ms = 10000;
  std::vector<std::pair<std::string, Json::json_pointer>> save;
  std::string save_status;
  std::string on_error;

  Step enter(Turn& turn) const override {
    HttpRequest request;
    request.method = method;
    request.url = turn.render(url, true);
    char separator = request.url.find('?') == std::string::npos ? '?' : '&';
    for (const auto& [name, value] : query) {
      request.url += separator + url_encode(name) + "=" + url_encode(turn.render(value, true));
      separator = '&';
    }
    bool content_type_set = false;
    for (const auto& [name, value] : headers) {
      if (strcasecmp(name.c_str(), "content-type") == 0) content_type_set = true;
      request.headers.emplace_back(name, turn.render(value, true));
    }
    if (has_body) {
      Json rendered = body.shape;
      for (const auto& [pointer, leaf] : body.leaves) rendered[pointer] = turn.render(leaf, true);
      request.body = rendered.dump();
      if (!content_type_set) request.headers.emplace_back("Content-Type", "application/json");
    }
    request.timeout_ms = std::min(timeout_ms, turn.options().max_api_timeout_ms);

    HttpClient* http = turn.services().http;
    auto started = std::chrono::steady_clock::now();
    HttpResponse response;
    if (http) {
      response = http->send(request);
    } else {
      response.error = "no HTTP client is configured";
    }
    auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - started)
                       .count();
    // Errors name the URL as written in the flow: the rendered one may carry secrets.
    const std::string& shown_url = url.source();
    Json event{{"node", id},
               {"method", method},
               {"url", url.source()},
               {"status", response.status},
               {"ms", elapsed}};
    if (!response.error.empty()) event["error"] = response.error;
    turn.journal("api_call", std::move(event));
    if (!save_status.empty()) turn.vars()[save_status] = response.status;

    std::string problem;
    if (!response.error.empty()) {
      problem = method + " " + shown_url + " failed: " + response.error;
    } else if (!response.ok()) {
      problem = method + " " + shown_url + " answered HTTP " + std::to_string(response.status);
    } else if (!save.empty()) {
      Json parsed = Json::parse(response.body, nullptr, false);
      if (parsed.is_discarded()) {
        problem = method + " " + shown_url +
                  " answered a body that is not JSON, so \"save\" cannot read it";
      } else {
        for (const auto& [var, pointer] : save) {
          turn.vars()[var] = parsed.contains(pointer) ? parsed[pointer] : Json();
        }
      }
    }
    if (problem.empty() && !script.empty()) {
      Json body = Json::parse(response.body, nullptr, false);
      if (body.is_discarded()) body = response.body;
      Json headers = Json::object();
      for (const auto& [name, value] : response.headers) headers[name] = value;
      const Json seen{{"status", response.status}, {"headers", headers}, {"body", body}};
      auto outcome = turn.run_script(*this, script, {{"response", &seen}});
      if (!outcome.ok) return Step::fail("script failed: " + outcome.error);
    }
    if (problem.empty()) return Step::go(next);
    if (!on_error.empty()) {
      turn.journal("api_error", Json{{"node", id}, {"message", problem}});
      return Step::go(on_error);
    }
    return Step::fail(problem);
  }

  bool owns_script() const override { return true; }

  void links(std::vector<NodeLink>& out) const override {
    Node::links(out);
    if (!on_error.empty()) out.push_back({"/on_error", on_error});
  }
};

void parse_string_map(NodeParseContext& ctx, const char* field,
                      std::vector<std::pair<std::string, Template>>& out) {
  const Json* object = ctx.optional_object(field);
  if (!object) return;
  for (const auto& [key, value] : object->items()) {
    std::string path = std::string("/") + field + "/" + key;
    if (!value.is_string() && !value.is_number() && !value.is_boolean()) {
      ctx.error(path, "must be a string (a template)");
      continue;
    }
    Json text = value.is_string() ? value : Json(value.dump());
    out.emplace_back(key, template_at(ctx, text, path, true));
  }
}

}  // namespace

void register_api_call_node(NodeRegistry& registry) {
  registry.add("api_call", [](NodeParseContext& ctx) {
    ctx.reject_unknown_fields({"method", "url", "headers", "query", "body", "timeout_ms", "save",
                               "save_status", "on_error"});
    auto node = std::make_unique<ApiCallNode>();
    node->method = ctx.optional_string("method", "GET");
    static const std::string_view methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};
    if (std::find(std::begin(methods), std::end(methods), node->method) == std::end(methods)) {
      ctx.error("/method", "method must be GET, POST, PUT, PATCH, DELETE or HEAD, not \"" +
                               node->method + "\"");
    }
    auto url = ctx.node().find("url");
    if (url == ctx.node().end()) {
      ctx.error("", "missing required field \"url\" for an api_call node");
    } else {
      node->url = template_at(ctx, *url, "/url", true);
      if (url->is_string()) {
        std::string u = url->get<std::string>();
        if (u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0 && u.rfind("{{", 0) != 0) {
          ctx.error("/url", "url must start with http:// or https://");
        }
      }
    }
    parse_string_map(ctx, "headers", node->headers);
    parse_string_map(ctx, "query", node->query);
    if (auto body = ctx.node().find("body"); body != ctx.node().end() && !body->is_null()) {
      node->has_body = true;
      node->body.shape = *body;
      collect_leaves(ctx, *body, Json::json_pointer(), node->body);
    }
    if (auto timeout = ctx.node().find("timeout_ms"); timeout != ctx.node().end()) {
      node->timeout_ms =
          static_cast<int>(ctx.integer_in(*timeout, "/timeout_ms", 1, 30000).value_or(10000));
    }
    if (const Json* save = ctx.optional_object("save")) {
      for (const auto& [var, pointer] : save->items()) {
        std::string path = "/save/" + var;
        if (!pointer.is_string()) {
          ctx.error(path, "must be a JSON pointer into the response body, e.g. \"/id\"");
          continue;
        }
        try {
          node->save.emplace_back(var, Json::json_pointer(pointer.get<std::string>()));
        } catch (const Json::exception&) {
          ctx.error(path, "\"" + pointer.get<std::string>() +
                              "\" is not a JSON pointer (it must be empty or start with \"/\")");
        }
      }
    }
    node->save_status = ctx.optional_string("save_status");
    node->on_error = node_id_field(ctx, ctx.node(), "on_error", "/on_error");
    return node;
  });
}

}  // namespace flowrt::runtime::nodes
