// Socket-free tests of the server's building blocks.
#include <gtest/gtest.h>

#include <thread>

#include "api/server/access_log.hpp"
#include "api/server/auth.hpp"
#include "api/server/idempotency.hpp"
#include "api/server/metrics.hpp"
#include "api/server/operations.hpp"
#include "api/server/pagination.hpp"
#include "api/server/pipeline.hpp"
#include "api/server/problem.hpp"
#include "api/server/rate_limit.hpp"
#include "api/server/router.hpp"

namespace flowrt::api {
namespace {

Handler named(std::string name) {
  return [name](const Request& r) {
    nlohmann::json params = r.params;
    return Response::json(200, {{"handler", name}, {"params", params}});
  };
}

TEST(Router, LiteralSegmentsBeatParameters) {
  Router router;
  router.add("GET", "/v1/flows/{flow_id}", named("get"));
  router.add("POST", "/v1/flows/validate", named("validate"));
  auto m = router.match("POST", "/v1/flows/validate");
  ASSERT_EQ(m.outcome, RouteMatch::Outcome::found);
  EXPECT_EQ(m.route->pattern, "/v1/flows/validate");
  m = router.match("GET", "/v1/flows/validate");
  ASSERT_EQ(m.outcome, RouteMatch::Outcome::found);
  EXPECT_EQ(m.params.at("flow_id"), "validate");
}

TEST(Router, DecodesPathParametersAndRejectsEmptyOnes) {
  Router router;
  router.add("GET", "/v1/flows/{flow_id}/versions/{n}", named("v"));
  auto m = router.match("GET", "/v1/flows/a%2Fb%20c/versions/3");
  ASSERT_EQ(m.outcome, RouteMatch::Outcome::found);
  EXPECT_EQ(m.params.at("flow_id"), "a/b c");
  EXPECT_EQ(m.params.at("n"), "3");
  EXPECT_EQ(router.match("GET", "/v1/flows//versions/3").outcome, RouteMatch::Outcome::not_found);
  EXPECT_EQ(router.match("GET", "/v1/flows/x/versions/3/").outcome, RouteMatch::Outcome::not_found);
}

TEST(Router, KnownPathWithOtherMethodListsAllowedMethods) {
  Router router;
  router.add("GET", "/v1/flows/{flow_id}", named("get"));
  router.add("DELETE", "/v1/flows/{flow_id}", named("delete"));
  router.add("PUT", "/v1/flows/{id}", named("put"));  // other name, same shape: allowed
  auto m = router.match("PATCH", "/v1/flows/x");
  ASSERT_EQ(m.outcome, RouteMatch::Outcome::method_not_allowed);
  EXPECT_EQ(m.allowed_methods, (std::vector<std::string>{"DELETE", "GET", "PUT"}));
}

TEST(Router, RejectsMalformedAndDuplicatePatterns) {
  Router router;
  router.add("GET", "/a/{x}", named("a"));
  EXPECT_THROW(router.add("GET", "/a/{y}", named("dup")), std::invalid_argument);
  EXPECT_THROW(router.add("GET", "a", named("a")), std::invalid_argument);
  EXPECT_THROW(router.add("GET", "/a/x{y}", named("a")), std::invalid_argument);
  EXPECT_THROW(router.add("GET", "/b/{x}/{x}", named("a")), std::invalid_argument);
}

TEST(Problem, HasExactlyTheSpecShape) {
  auto json = problem_json(problems::validation({{"/nodes/2/next", "names no node"}}));
  EXPECT_EQ(json["type"], "validation_error");
  EXPECT_EQ(json["status"], 422);
  EXPECT_TRUE(json["title"].is_string());
  EXPECT_TRUE(json["detail"].is_string());
  ASSERT_EQ(json["errors"].size(), 1u);
  EXPECT_EQ(json["errors"][0]["path"], "/nodes/2/next");
  EXPECT_EQ(json["errors"][0]["message"], "names no node");
  auto empty = problem_json(problems::not_found("x"));
  EXPECT_TRUE(empty["errors"].is_array());
  EXPECT_TRUE(empty["errors"].empty());
}

TEST(Problem, MalformedJsonSaysLineAndColumn) {
  try {
    parse_json_text("{\n  \"a\": 1,\n  \"b\": tru\n}");
    FAIL() << "no exception";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.problem().status, 400);
    EXPECT_EQ(e.problem().type, "malformed_json");
    EXPECT_EQ(e.problem().extensions["line"], 3);
    EXPECT_NE(e.problem().detail.find("line 3, column"), std::string::npos) << e.problem().detail;
  }
}

TEST(Problem, JsonBodyNeedsJsonContentType) {
  Request r;
  r.body = "{}";
  r.headers.set("Content-Type", "text/plain");
  try {
    parse_json_body(r);
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.problem().status, 415);
  }
  r.headers.set("content-type", "application/json; charset=utf-8");
  EXPECT_EQ(parse_json_body(r), nlohmann::json::object());
}

TEST(Problem, RateLimitedCarriesRetryAfter) {
  auto r = problem_response(problems::rate_limited(std::chrono::seconds(7)));
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.headers.get("retry-after"), "7");
  EXPECT_EQ(r.headers.get("Content-Type"), "application/problem+json");
}

TEST(Headers, LookupIgnoresCase) {
  Headers h;
  h.set("X-Request-Id", "a");
  EXPECT_EQ(h.get("x-request-id"), "a");
  h.set("x-REQUEST-id", "b");
  EXPECT_EQ(h.entries().size(), 1u);
  EXPECT_EQ(h.get("X-Request-Id"), "b");
}

TEST(Query, DecodesAndKeepsFirstOfRepeatedNames) {
  auto q = parse_query_string("a=1&b=x%20y+z&a=2&flag&c=%zz");
  EXPECT_EQ(q["a"], "1");
  EXPECT_EQ(q["b"], "x y z");
  EXPECT_EQ(q["flag"], "");
  EXPECT_EQ(q["c"], "%zz");
}

TEST(Pagination, CursorRoundTrips) {
  nlohmann::json position = {{"after", "flw_\xc3\xa9/+?"}, {"n", 42}};
  std::string cursor = encode_cursor(position);
  EXPECT_EQ(cursor.find_first_of("+/="), std::string::npos);
  EXPECT_EQ(decode_cursor(cursor), position);
  for (std::string s :
       std::vector<std::string>{"", "a", "ab", "abc", "abcd", "abcde", std::string("\0\xff", 2)}) {
    EXPECT_EQ(base64url_decode(base64url_encode(s)), s);
  }
}

TEST(Pagination, BadCursorAndLimitAreClear400s) {
  for (std::string bad : std::vector<std::string>{"!!!", "eyJ", base64url_encode("[1,2]"),
                                                  base64url_encode("{bad")}) {
    try {
      decode_cursor(bad);
      FAIL() << bad;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.problem().status, 400);
      EXPECT_EQ(e.problem().errors.at(0).path, "?cursor");
    }
  }
  for (std::string bad : std::vector<std::string>{"0", "201", "-1", "abc", "5x", "99999999999"}) {
    Request r;
    r.query["limit"] = bad;
    EXPECT_THROW(parse_page_request(r), ApiError) << bad;
  }
  Request r;
  EXPECT_EQ(parse_page_request(r).limit, 50);
  r.query["limit"] = "200";
  EXPECT_EQ(parse_page_request(r).limit, 200);
  auto envelope = page_envelope(nlohmann::json::array({1, 2}), std::nullopt);
  EXPECT_TRUE(envelope["next_cursor"].is_null());
  EXPECT_EQ(envelope["items"].size(), 2u);
}

TEST(Auth, RoleMatrix) {
  // rows: held; columns: required viewer, agent, editor, admin
  struct Row {
    Role held;
    bool viewer, agent, editor, admin;
  } rows[] = {{Role::viewer, true, false, false, false},
              {Role::agent, true, true, false, false},
              {Role::editor, true, false, true, false},
              {Role::admin, true, true, true, true}};
  for (const auto& row : rows) {
    EXPECT_EQ(role_covers(row.held, Role::viewer), row.viewer);
    EXPECT_EQ(role_covers(row.held, Role::agent), row.agent);
    EXPECT_EQ(role_covers(row.held, Role::editor), row.editor);
    EXPECT_EQ(role_covers(row.held, Role::admin), row.admin);
  }
  EXPECT_EQ(parse_role("editor"), Role::editor);
  EXPECT_FALSE(parse_role("Editor"));
}

TEST(Auth, ParsesBearerTokens) {
  EXPECT_EQ(parse_bearer_token("Bearer abc"), "abc");
  EXPECT_EQ(parse_bearer_token("bearer   abc  "), "abc");
  EXPECT_FALSE(parse_bearer_token("Basic abc"));
  EXPECT_FALSE(parse_bearer_token("Bearer"));
  EXPECT_FALSE(parse_bearer_token("Bearer "));
  EXPECT_FALSE(parse_bearer_token("Bearer a b"));
  EXPECT_FALSE(parse_bearer_token("Bearerabc"));
}

TEST(Auth, Sha256Hex) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Auth, OperatorTokenComparedExactly) {
  OperatorTokenAuthenticator auth("s3cret-operator", nullptr);
  EXPECT_TRUE(auth.authenticate("s3cret-operator")->is_operator());
  EXPECT_FALSE(auth.authenticate("s3cret-operato"));
  EXPECT_FALSE(auth.authenticate("s3cret-operatorX"));
  EXPECT_FALSE(auth.authenticate(""));
  OperatorTokenAuthenticator none("", nullptr);  // no operator token configured: nobody
  EXPECT_FALSE(none.authenticate(""));
  EXPECT_TRUE(constant_time_equals("abc", "abc"));
  EXPECT_FALSE(constant_time_equals("abc", "abd"));
}

TEST(RateLimiter, RefusesPastBurstAndRefillsAtRate) {
  auto now = std::chrono::steady_clock::time_point{};
  RateLimiter limiter({/*rate_per_second=*/0.5, /*burst=*/2}, 100, [&] { return now; });
  EXPECT_TRUE(limiter.acquire("t1").allowed);
  EXPECT_TRUE(limiter.acquire("t1").allowed);
  auto refused = limiter.acquire("t1");
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, std::chrono::seconds(2));
  EXPECT_TRUE(limiter.acquire("t2").allowed) << "tenants have separate buckets";
  now += std::chrono::seconds(2);
  EXPECT_TRUE(limiter.acquire("t1").allowed);
  EXPECT_FALSE(limiter.acquire("t1").allowed);
}

TEST(RateLimiter, MemoryStaysBounded) {
  auto now = std::chrono::steady_clock::time_point{};
  RateLimiter limiter({1, 5}, 50, [&] { return now; });
  for (int i = 0; i < 1000; ++i) limiter.acquire("tenant-" + std::to_string(i));
  EXPECT_LE(limiter.tracked_keys(), 50u);
}

TEST(RateLimiter, IsThreadSafe) {
  RateLimiter limiter({0.001, 1000}, 10);
  std::vector<std::thread> threads;
  std::atomic<int> allowed{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) allowed += limiter.acquire("t").allowed ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 1000);
}

TEST(Metrics, RendersPrometheusTextFormat) {
  MetricsRegistry registry;
  auto& turns = registry.counter("flowrt_turns_total", "Turns processed.", {"outcome"});
  turns.labels({"ok"}).inc();
  turns.labels({"ok"}).inc(2);
  turns.labels({"fa\"il\n"}).inc();
  registry.gauge("flowrt_outbox_depth", "Messages waiting.").get().set(7);
  auto& h = registry.histogram("flowrt_x_seconds", "X.", {"route"}, {0.1, 1});
  h.labels({"/a"}).observe(0.05);
  h.labels({"/a"}).observe(0.5);
  h.labels({"/a"}).observe(5);
  registry.gauge_callback("flowrt_plugins_loaded", "Plugins.", [] { return 3.0; });
  std::string text = registry.render();
  EXPECT_NE(text.find("# TYPE flowrt_turns_total counter\n"), std::string::npos) << text;
  EXPECT_NE(text.find("flowrt_turns_total{outcome=\"ok\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("flowrt_turns_total{outcome=\"fa\\\"il\\n\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("flowrt_outbox_depth 7\n"), std::string::npos);
  EXPECT_NE(text.find("flowrt_x_seconds_bucket{route=\"/a\",le=\"0.1\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("flowrt_x_seconds_bucket{route=\"/a\",le=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("flowrt_x_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("flowrt_x_seconds_sum{route=\"/a\"} 5.55\n"), std::string::npos) << text;
  EXPECT_NE(text.find("flowrt_x_seconds_count{route=\"/a\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("flowrt_plugins_loaded 3\n"), std::string::npos);
}

TEST(Metrics, SameNameReturnsSameFamilyAndConflictsThrow) {
  MetricsRegistry registry;
  auto& a = registry.counter("flowrt_a_total", "A.", {"x"});
  EXPECT_EQ(&a, &registry.counter("flowrt_a_total", "A.", {"x"}));
  EXPECT_THROW(registry.gauge("flowrt_a_total", "A."), std::logic_error);
  EXPECT_THROW(registry.counter("flowrt_a_total", "A.", {"y"}), std::logic_error);
  EXPECT_THROW(registry.counter("bad name", "A."), std::invalid_argument);
  EXPECT_THROW(a.labels({"1", "2"}), std::invalid_argument);
}

TEST(AccessLog, RequestIdsAreSanitised) {
  EXPECT_TRUE(is_acceptable_request_id("abc-123_x.y:z"));
  EXPECT_FALSE(is_acceptable_request_id("abc\n{\"level\":\"forged\"}"));
  EXPECT_FALSE(is_acceptable_request_id(std::string(129, 'a')));
  EXPECT_EQ(generate_request_id().size(), 32u);
}

TEST(Idempotency, ReplaysSameRequestRejectsDifferentOne) {
  InMemoryIdempotencyStore store;
  Request r;
  r.method = "POST";
  r.route = "/v1/flows/{flow_id}/runs";
  r.params = {{"flow_id", "f1"}};
  r.principal = Principal::tenant_key("t1", "k1", Role::editor);
  r.headers.set("Idempotency-Key", "key-1");
  r.body = R"({"contact":{"id":"1"}})";
  int runs = 0;
  auto handler = [&] {
    ++runs;
    return Response::json(201, {{"run", runs}});
  };
  auto first = with_idempotency(store, r, handler);
  auto second = with_idempotency(store, r, handler);
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(second.status, 201);
  EXPECT_EQ(second.body, first.body);
  EXPECT_EQ(second.headers.get("Idempotent-Replayed"), "true");
  Request changed = r;
  changed.body = R"({"contact":{"id":"2"}})";
  try {
    with_idempotency(store, changed, handler);
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.problem().status, 422);
  }
  Request other_tenant = r;
  other_tenant.principal = Principal::tenant_key("t2", "k9", Role::editor);
  with_idempotency(store, other_tenant, handler);
  EXPECT_EQ(runs, 2) << "keys are scoped to the tenant";
}

TEST(Pipeline, HandlerExceptionsBecomeOpaque500sAndAreLogged) {
  Router router;
  router.add(
      "GET", "/boom",
      [](const Request&) -> Response {
        throw std::runtime_error("pq: connection refused at store.cpp:42");
      },
      Access::anyone());
  std::vector<std::string> lines;
  std::mutex m;
  RequestPipeline pipeline(std::move(router),
                           {nullptr,
                            nullptr,
                            nullptr,
                            [&](std::string_view l) {
                              std::lock_guard lock(m);
                              lines.emplace_back(l);
                            },
                            {}},
                           1024);
  Request r;
  r.method = "GET";
  r.path = "/boom";
  auto response = pipeline.handle(r);
  EXPECT_EQ(response.status, 500);
  EXPECT_EQ(response.body.find("store.cpp:42"), std::string::npos);
  auto id = *response.headers.get("X-Request-Id");
  EXPECT_NE(response.body.find(id), std::string::npos);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("store.cpp:42"), std::string::npos) << "the cause is logged";
  EXPECT_NE(lines[0].find(id), std::string::npos);
}

TEST(Pipeline, ClassifiedExceptionsAnswerTheirProblem) {
  struct DatabaseDown : std::runtime_error {
    using std::runtime_error::runtime_error;
  };
  Router router;
  router.add(
      "GET", "/down", [](const Request&) -> Response { throw DatabaseDown("no connection"); },
      Access::anyone());
  router.add(
      "GET", "/other", [](const Request&) -> Response { throw std::logic_error("bug"); },
      Access::anyone());
  ServerServices services;
  services.log = [](std::string_view) {};
  services.classify_exception = [](const std::exception& e) -> std::optional<Problem> {
    if (dynamic_cast<const DatabaseDown*>(&e)) return problems::unavailable("database down");
    return std::nullopt;
  };
  RequestPipeline pipeline(std::move(router), services, 1024);
  Request r;
  r.method = "GET";
  r.path = "/down";
  EXPECT_EQ(pipeline.handle(r).status, 503);
  r.path = "/other";
  EXPECT_EQ(pipeline.handle(r).status, 500);
}

}  // namespace
}  // namespace flowrt::api

namespace flowrt::api {
namespace {

TEST(OpenApi, DescribesEveryRouteOfTheSpec) {
  auto doc = nlohmann::json::parse(openapi_document());
  EXPECT_TRUE(doc["openapi"].get<std::string>().starts_with("3."));
  // SPEC §4, route by route.
  std::vector<std::pair<std::string, std::string>> spec = {
      {"post", "/v1/tenants"},
      {"get", "/v1/tenants"},
      {"get", "/v1/tenants/{id}"},
      {"delete", "/v1/tenants/{id}"},
      {"post", "/v1/keys"},
      {"get", "/v1/keys"},
      {"delete", "/v1/keys/{id}"},
      {"put", "/v1/secrets/{name}"},
      {"get", "/v1/secrets/{name}"},
      {"delete", "/v1/secrets/{name}"},
      {"post", "/v1/flows/validate"},
      {"post", "/v1/flows"},
      {"get", "/v1/flows"},
      {"get", "/v1/flows/{flow_id}"},
      {"put", "/v1/flows/{flow_id}"},
      {"delete", "/v1/flows/{flow_id}"},
      {"post", "/v1/flows/{flow_id}/publish"},
      {"get", "/v1/flows/{flow_id}/versions"},
      {"get", "/v1/flows/{flow_id}/versions/{n}"},
      {"post", "/v1/channels"},
      {"get", "/v1/channels"},
      {"get", "/v1/channels/{id}"},
      {"patch", "/v1/channels/{id}"},
      {"delete", "/v1/channels/{id}"},
      {"get", "/v1/webhooks/{channel_id}"},
      {"post", "/v1/webhooks/{channel_id}"},
      {"post", "/v1/flows/{flow_id}/runs"},
      {"get", "/v1/conversations"},
      {"get", "/v1/conversations/{id}"},
      {"get", "/v1/conversations/{id}/events"},
      {"post", "/v1/conversations/{id}/messages"},
      {"post", "/v1/conversations/{id}/resume"},
      {"post", "/v1/conversations/{id}/close"},
      {"get", "/v1/plugins"},
      {"get", "/v1/openapi.json"},
      {"get", "/healthz"},
      {"get", "/readyz"},
      {"get", "/metrics"}};
  for (const auto& [method, path] : spec) {
    ASSERT_TRUE(doc["paths"].contains(path)) << path;
    ASSERT_TRUE(doc["paths"][path].contains(method)) << method << " " << path;
    const auto& op = doc["paths"][path][method];
    EXPECT_TRUE(op.contains("security")) << method << " " << path;
    EXPECT_TRUE(op["responses"].contains("500")) << method << " " << path;
  }
  // Every operational route this library registers is described too.
  Router router;
  add_operational_routes(router, {});
  for (const auto& route : router.routes()) {
    std::string method = route.method;
    std::transform(method.begin(), method.end(), method.begin(), ::tolower);
    EXPECT_TRUE(doc["paths"][route.pattern].contains(method)) << route.pattern;
  }
}

}  // namespace
}  // namespace flowrt::api
