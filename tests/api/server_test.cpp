// The server over real sockets: a HttpServer on 127.0.0.1, ephemeral port, driven by libcurl
// and raw sockets.
#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "api/server/operations.hpp"
#include "api/server/pagination.hpp"
#include "api/server/server.hpp"
#include "api/server/signals.hpp"
#include "test_client.hpp"

namespace flowrt::api {
namespace {

using testing::http_request;
using testing::raw_exchange;

// Tokens: "op" is the operator; "<role>-a" a key of tenant A with that role; "viewer-b" a
// viewer of tenant B.
class FakeAuthenticator : public Authenticator {
 public:
  std::optional<Principal> authenticate(std::string_view token) override {
    if (token == "op") return Principal::make_operator();
    for (Role role : {Role::viewer, Role::agent, Role::editor, Role::admin}) {
      std::string name(to_string(role));
      if (token == name + "-a") return Principal::tenant_key("tenant-a", "key-" + name, role);
      if (token == name + "-b") return Principal::tenant_key("tenant-b", "key-" + name, role);
    }
    return std::nullopt;
  }
};

class LogCapture {
 public:
  LogSink sink() {
    return [this](std::string_view line) {
      std::lock_guard lock(mutex_);
      lines_.emplace_back(line);
    };
  }
  std::vector<std::string> lines() const {
    std::lock_guard lock(mutex_);
    return lines_;
  }
  std::string all() const {
    std::string out;
    for (const auto& l : lines()) out += l + "\n";
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

class ServerTest : public ::testing::Test {
 protected:
  void start(ServerOptions options = {}) {
    options.address = "127.0.0.1";
    options.port = 0;
    options.threads = 2;
    if (options.shutdown_grace == std::chrono::milliseconds(30000)) {
      options.shutdown_grace = std::chrono::milliseconds(5000);
    }
    Router router;
    router.add(
        "GET", "/v1/flows/{flow_id}/versions/{n}",
        [](const Request& r) {
          return Response::json(
              200,
              {{"flow_id", r.param("flow_id")}, {"n", r.param("n")}, {"tenant", r.tenant_id()}});
        },
        Access::tenant(Role::viewer));
    router.add(
        "POST", "/v1/flows",
        [this](const Request& r) {
          ++handler_runs;
          auto body = parse_json_body(r);
          return Response::json(201, {{"received", body}});
        },
        Access::tenant(Role::editor));
    router.add(
        "POST", "/v1/conversations/{id}/messages",
        [](const Request&) {
          return Response::json(202, {{"ok", true}});
        },
        Access::tenant(Role::agent));
    router.add(
        "POST", "/v1/keys", [](const Request&) { return Response::json(201, {}); },
        Access::tenant(Role::admin));
    router.add(
        "GET", "/v1/tenants", [](const Request&) { return Response::json(200, {}); },
        Access::operator_only());
    router.add(
        "GET", "/v1/items",
        [](const Request& r) {
          auto page = parse_page_request(r);
          int start = page.after ? page.after->value("after", 0) : 0;
          nlohmann::json items = nlohmann::json::array();
          for (int i = start; i < std::min(start + page.limit, 7); ++i) items.push_back(i);
          std::optional<nlohmann::json> next;
          if (start + page.limit < 7) next = nlohmann::json{{"after", start + page.limit}};
          return Response::json(200, page_envelope(items, next));
        },
        Access::tenant(Role::viewer));
    router.add(
        "GET", "/slow",
        [this](const Request&) {
          slow_started.set_value();
          std::this_thread::sleep_for(std::chrono::milliseconds(slow_ms));
          slow_finished = true;
          return Response::json(200, {{"slow", "done"}});
        },
        Access::anyone());
    add_operational_routes(router, {&metrics, [this] { return readiness; },
                                    [this] { return server && server->draining(); }});
    server = std::make_unique<HttpServer>(
        options, std::move(router), ServerServices{&auth, limiter.get(), &metrics, log.sink(), {}});
    server->start();
    base = server->base_url();
  }

  void TearDown() override {
    if (server) server->shutdown();
  }

  FakeAuthenticator auth;
  MetricsRegistry metrics;
  LogCapture log;
  std::unique_ptr<RateLimiter> limiter;
  std::unique_ptr<HttpServer> server;
  std::string base;
  std::atomic<int> handler_runs{0};
  std::promise<void> slow_started;
  std::atomic<bool> slow_finished{false};
  int slow_ms = 500;
  std::vector<ReadinessCheck> readiness{{"database", true, ""}};
};

nlohmann::json json_of(const testing::ClientResponse& r) {
  return nlohmann::json::parse(r.body, nullptr, false);
}

void expect_problem(const testing::ClientResponse& r, int status, const std::string& type) {
  EXPECT_EQ(r.status, status) << r.body << r.error;
  EXPECT_EQ(r.header("content-type"), "application/problem+json");
  auto body = json_of(r);
  ASSERT_TRUE(body.is_object()) << r.body;
  EXPECT_EQ(body["type"], type);
  EXPECT_EQ(body["status"], status);
  EXPECT_TRUE(body["title"].is_string());
  EXPECT_TRUE(body["detail"].is_string());
  EXPECT_TRUE(body["errors"].is_array());
}

TEST_F(ServerTest, RoutesWithPathParameters) {
  start();
  auto r = http_request("GET", base + "/v1/flows/lead%20q/versions/3",
                        {"Authorization: Bearer viewer-a"});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json_of(r)["flow_id"], "lead q");
  EXPECT_EQ(json_of(r)["n"], "3");
  EXPECT_EQ(json_of(r)["tenant"], "tenant-a");
  EXPECT_NE(server->port(), 0);
}

TEST_F(ServerTest, UnknownPathIs404AndWrongMethodIs405WithAllow) {
  start();
  expect_problem(http_request("GET", base + "/v1/nope"), 404, "not_found");
  auto r = http_request("DELETE", base + "/v1/flows", {"Authorization: Bearer admin-a"});
  expect_problem(r, 405, "method_not_allowed");
  EXPECT_EQ(r.header("allow"), "POST");
}

TEST_F(ServerTest, MalformedJsonIs400WithLineAndColumn) {
  start();
  auto r = http_request("POST", base + "/v1/flows",
                        {"Authorization: Bearer editor-a", "Content-Type: application/json"},
                        "{\n  \"id\": \"x\",\n  \"nodes\": [1, 2,,]\n}");
  expect_problem(r, 400, "malformed_json");
  EXPECT_EQ(json_of(r)["line"], 3);
  EXPECT_NE(json_of(r)["detail"].get<std::string>().find("line 3, column"), std::string::npos);
  auto wrong_type =
      http_request("POST", base + "/v1/flows",
                   {"Authorization: Bearer editor-a", "Content-Type: text/plain"}, "{}");
  expect_problem(wrong_type, 415, "unsupported_media_type");
}

TEST_F(ServerTest, OversizeBodyIs413AndHandlerNeverRuns) {
  ServerOptions options;
  options.max_body_bytes = 1000;
  start(options);
  std::string big(5000, 'x');
  auto r = http_request("POST", base + "/v1/flows",
                        {"Authorization: Bearer editor-a", "Content-Type: application/json"},
                        "\"" + big + "\"");
  expect_problem(r, 413, "payload_too_large");
  EXPECT_FALSE(r.header("x-request-id").empty());
  EXPECT_EQ(handler_runs.load(), 0);

  // Refused from the head alone: the server does not wait for 100 MB that never come.
  auto started = std::chrono::steady_clock::now();
  std::string raw =
      raw_exchange(server->port(),
                   "POST /v1/flows HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer editor-a\r\n"
                   "Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{",
                   3000);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(2500))
      << "the connection was closed after the answer";
  EXPECT_TRUE(raw.starts_with("HTTP/1.1 413 ")) << raw;
  EXPECT_NE(raw.find("application/problem+json"), std::string::npos);
  EXPECT_NE(raw.find("Connection: close"), std::string::npos);

  // A chunked body growing past the limit is refused as well.
  std::string chunked =
      "POST /v1/flows HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer editor-a\r\n"
      "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 400; ++i) chunked += "100\r\n" + std::string(256, 'a') + "\r\n";
  chunked += "0\r\n\r\n";
  auto chunk_started = std::chrono::steady_clock::now();
  raw = raw_exchange(server->port(), chunked, 3000);
  EXPECT_LT(std::chrono::steady_clock::now() - chunk_started, std::chrono::milliseconds(2500));
  EXPECT_TRUE(raw.starts_with("HTTP/1.1 413 ")) << raw.substr(0, 200);
  EXPECT_EQ(handler_runs.load(), 0);

  // Just under the limit still works.
  auto ok = http_request("POST", base + "/v1/flows",
                         {"Authorization: Bearer editor-a", "Content-Type: application/json"},
                         "\"" + std::string(900, 'y') + "\"");
  EXPECT_EQ(ok.status, 201) << ok.body;
  EXPECT_EQ(handler_runs.load(), 1);
}

TEST_F(ServerTest, DefaultBodyLimitIsOneMebibyte) {
  start();
  std::string body = "\"" + std::string(1024 * 1024, 'x') + "\"";
  auto r = http_request("POST", base + "/v1/flows",
                        {"Authorization: Bearer editor-a", "Content-Type: application/json"}, body);
  expect_problem(r, 413, "payload_too_large");
  EXPECT_EQ(json_of(r)["limit_bytes"], 1024 * 1024);
  EXPECT_EQ(handler_runs.load(), 0);
}

TEST_F(ServerTest, RateLimitAnswers429WithRetryAfterPerTenant) {
  limiter = std::make_unique<RateLimiter>(RateLimit{0.2, 3});
  start();
  std::vector<std::string> a{"Authorization: Bearer viewer-a"};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(http_request("GET", base + "/v1/flows/f/versions/1", a).status, 200);
  }
  auto r = http_request("GET", base + "/v1/flows/f/versions/1", a);
  expect_problem(r, 429, "rate_limited");
  EXPECT_EQ(r.header("retry-after"), "5");
  EXPECT_EQ(http_request("GET", base + "/v1/flows/f/versions/1", {"Authorization: Bearer viewer-b"})
                .status,
            200)
      << "another tenant is not limited by tenant A's traffic";
  EXPECT_EQ(http_request("GET", base + "/healthz").status, 200) << "public routes are not limited";
}

TEST_F(ServerTest, AuthMatrix) {
  start();
  struct Case {
    std::string method, path, token;
    int status;
  } cases[] = {
      {"GET", "/v1/flows/f/versions/1", "", 401},
      {"GET", "/v1/flows/f/versions/1", "nonsense", 401},
      {"GET", "/v1/flows/f/versions/1", "viewer-a", 200},
      {"GET", "/v1/flows/f/versions/1", "agent-a", 200},
      {"GET", "/v1/flows/f/versions/1", "editor-a", 200},
      {"GET", "/v1/flows/f/versions/1", "admin-a", 200},
      {"GET", "/v1/flows/f/versions/1", "op", 403},
      {"POST", "/v1/flows", "viewer-a", 403},
      {"POST", "/v1/flows", "agent-a", 403},
      {"POST", "/v1/flows", "editor-a", 201},
      {"POST", "/v1/flows", "admin-a", 201},
      {"POST", "/v1/conversations/c1/messages", "viewer-a", 403},
      {"POST", "/v1/conversations/c1/messages", "editor-a", 403},
      {"POST", "/v1/conversations/c1/messages", "agent-a", 202},
      {"POST", "/v1/conversations/c1/messages", "admin-a", 202},
      {"POST", "/v1/keys", "editor-a", 403},
      {"POST", "/v1/keys", "admin-a", 201},
      {"GET", "/v1/tenants", "admin-a", 403},
      {"GET", "/v1/tenants", "op", 200},
      {"GET", "/v1/tenants", "", 401},
  };
  for (const auto& c : cases) {
    std::vector<std::string> headers{"Content-Type: application/json"};
    if (!c.token.empty()) headers.push_back("Authorization: Bearer " + c.token);
    auto r = http_request(c.method, base + c.path, headers, c.method == "POST" ? "{}" : "");
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.path << " as '" << c.token
                                  << "': " << r.body;
    if (c.status == 401) {
      expect_problem(r, 401, "unauthorized");
      EXPECT_EQ(r.header("www-authenticate"), "Bearer");
    }
    if (c.status == 403) expect_problem(r, 403, "forbidden");
  }
  auto basic = http_request("GET", base + "/v1/tenants", {"Authorization: Basic b3A6b3A="});
  expect_problem(basic, 401, "unauthorized");
}

TEST_F(ServerTest, RequestIdIsEchoedOrGenerated) {
  start();
  auto echoed = http_request("GET", base + "/healthz", {"X-Request-Id: trace-123.abc"});
  EXPECT_EQ(echoed.header("x-request-id"), "trace-123.abc");
  auto generated = http_request("GET", base + "/healthz");
  EXPECT_EQ(generated.header("x-request-id").size(), 32u);
  auto forged = http_request("GET", base + "/healthz", {"X-Request-Id: a\"b"});
  EXPECT_NE(forged.header("x-request-id"), "a\"b");
  EXPECT_EQ(forged.header("x-request-id").size(), 32u);
  auto problem = http_request("GET", base + "/nowhere", {"X-Request-Id: on-errors-too"});
  EXPECT_EQ(problem.header("x-request-id"), "on-errors-too");
}

TEST_F(ServerTest, AccessLogHasOneLinePerRequestWithoutSecrets) {
  start();
  std::string secret_token = "editor-a";
  std::string secret_body = R"({"password":"body-secret-987"})";
  auto r = http_request("POST", base + "/v1/flows?api_key=query-secret-654",
                        {"Authorization: Bearer " + secret_token, "Content-Type: application/json",
                         "X-Request-Id: log-test-1"},
                        secret_body);
  ASSERT_EQ(r.status, 201);
  http_request("GET", base + "/v1/flows/flow-secret-id/versions/1",
               {"Authorization: Bearer viewer-b"});
  auto lines = log.lines();
  ASSERT_EQ(lines.size(), 2u) << log.all();
  auto line = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(line["request_id"], "log-test-1");
  EXPECT_EQ(line["method"], "POST");
  EXPECT_EQ(line["route"], "/v1/flows");
  EXPECT_EQ(line["status"], 201);
  EXPECT_TRUE(line["latency_ms"].is_number());
  EXPECT_EQ(line["tenant"], "tenant-a");
  EXPECT_TRUE(line["time"].is_string());
  auto second = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(second["route"], "/v1/flows/{flow_id}/versions/{n}");
  EXPECT_EQ(second["tenant"], "tenant-b");
  std::string all = log.all();
  for (std::string secret : {std::string("Bearer"), secret_token, std::string("body-secret-987"),
                             std::string("query-secret-654"), std::string("flow-secret-id")}) {
    EXPECT_EQ(all.find(secret), std::string::npos) << secret << " leaked into: " << all;
  }
}

TEST_F(ServerTest, MetricsCountRequestsByRouteAndStatus) {
  start();
  http_request("GET", base + "/v1/flows/x/versions/1", {"Authorization: Bearer viewer-a"});
  http_request("GET", base + "/v1/flows/y/versions/2", {"Authorization: Bearer viewer-a"});
  http_request("GET", base + "/v1/flows/y/versions/2");
  http_request("GET", base + "/not/here");
  auto r = http_request("GET", base + "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = r.body;
  EXPECT_NE(text.find("# TYPE flowrt_http_requests_total counter"), std::string::npos) << text;
  EXPECT_NE(text.find("flowrt_http_requests_total{method=\"GET\",route=\"/v1/flows/{flow_id}/"
                      "versions/{n}\",status=\"200\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("flowrt_http_requests_total{method=\"GET\",route=\"/v1/flows/{flow_id}/"
                      "versions/{n}\",status=\"401\"} 1\n"),
            std::string::npos);
  EXPECT_NE(
      text.find(
          "flowrt_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1\n"),
      std::string::npos);
  EXPECT_NE(text.find("# TYPE flowrt_http_request_duration_seconds histogram"), std::string::npos);
  EXPECT_NE(text.find("flowrt_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/"
                      "flows/{flow_id}/versions/{n}\",le=\"+Inf\"} 3\n"),
            std::string::npos);
  EXPECT_EQ(text.find("/v1/flows/x/"), std::string::npos) << "paths never become labels";
}

TEST_F(ServerTest, PaginationRoundTripsCursorsAndRejectsBadOnes) {
  start();
  std::vector<std::string> a{"Authorization: Bearer viewer-a"};
  std::vector<int> seen;
  std::string url = base + "/v1/items?limit=3";
  for (int pages = 0; pages < 5; ++pages) {
    auto r = http_request("GET", url, a);
    ASSERT_EQ(r.status, 200) << r.body;
    auto body = json_of(r);
    for (auto& i : body["items"]) seen.push_back(i.get<int>());
    if (body["next_cursor"].is_null()) break;
    url = base + "/v1/items?limit=3&cursor=" + body["next_cursor"].get<std::string>();
  }
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3, 4, 5, 6}));
  auto bad = http_request("GET", base + "/v1/items?cursor=not-a-cursor!", a);
  expect_problem(bad, 400, "bad_request");
  EXPECT_EQ(json_of(bad)["errors"][0]["path"], "?cursor");
  expect_problem(http_request("GET", base + "/v1/items?limit=500", a), 400, "bad_request");
}

TEST_F(ServerTest, HealthReadinessAndOpenApi) {
  start();
  EXPECT_EQ(http_request("GET", base + "/healthz").status, 200);
  EXPECT_EQ(http_request("GET", base + "/readyz").status, 200);
  readiness = {{"database", false, "connection refused"}};
  auto r = http_request("GET", base + "/readyz");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(json_of(r)["checks"][0]["message"], "connection refused");
  auto doc = http_request("GET", base + "/v1/openapi.json");
  ASSERT_EQ(doc.status, 200);
  EXPECT_TRUE(json_of(doc)["openapi"].get<std::string>().starts_with("3."));
}

TEST_F(ServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  start();
  std::string raw = raw_exchange(server->port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 300);
  EXPECT_TRUE(raw.starts_with("HTTP/1.1 200 OK")) << raw;
  EXPECT_NE(raw.find("Connection: keep-alive"), std::string::npos);
  raw = raw_exchange(server->port(),
                     "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 2000);
  EXPECT_NE(raw.find("Connection: close"), std::string::npos) << raw;
}

TEST_F(ServerTest, OversizeHeadIs431) {
  ServerOptions options;
  options.max_header_bytes = 8 * 1024;
  start(options);
  std::string raw = raw_exchange(
      server->port(),
      "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20 * 1024, 'h') + "\r\n\r\n",
      2000);
  EXPECT_TRUE(raw.starts_with("HTTP/1.1 431 ")) << raw.substr(0, 200);
  EXPECT_NE(raw.find("headers_too_large"), std::string::npos);
  EXPECT_EQ(http_request("GET", base + "/healthz").status, 200) << "other connections carry on";
}

TEST_F(ServerTest, HeadAnswersLikeGetWithoutBody) {
  start();
  std::string raw = raw_exchange(
      server->port(), "HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 2000);
  EXPECT_TRUE(raw.starts_with("HTTP/1.1 200 OK")) << raw;
  EXPECT_NE(raw.find("Content-Length: 15"), std::string::npos) << raw;
  EXPECT_TRUE(raw.ends_with("\r\n\r\n")) << "no body after the head: " << raw;
}

TEST_F(ServerTest, ExpectContinueGetsAnInterimAnswer) {
  start();
  std::string raw =
      raw_exchange(server->port(),
                   "POST /v1/flows HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer editor-a\r\n"
                   "Content-Type: application/json\r\nContent-Length: 2\r\n"
                   "Expect: 100-continue\r\n\r\n",
                   300);
  EXPECT_EQ(raw, "HTTP/1.1 100 Continue\r\n\r\n");
  auto r = http_request(
      "POST", base + "/v1/flows",
      {"Authorization: Bearer editor-a", "Content-Type: application/json", "Expect: 100-continue"},
      "{}");
  EXPECT_EQ(r.status, 201);
}

TEST_F(ServerTest, MalformedHttpIsA400Problem) {
  start();
  std::string raw = raw_exchange(server->port(), "BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", 2000);
  EXPECT_TRUE(raw.starts_with("HTTP/1.1 400 ")) << raw;
  EXPECT_NE(raw.find("application/problem+json"), std::string::npos);
}

TEST_F(ServerTest, GracefulShutdownFinishesInFlightRequest) {
  slow_ms = 700;
  start();
  bool hook_ran_after_slow = false;
  server->add_shutdown_hook([&] { hook_ran_after_slow = slow_finished.load(); });
  auto slow = std::async(std::launch::async, [&] { return http_request("GET", base + "/slow"); });
  slow_started.get_future().wait();
  auto stopper = std::async(std::launch::async, [&] { server->shutdown(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(server->draining());
  auto refused = http_request("GET", base + "/healthz");
  if (refused.status != 0) {  // the listener may already be closed; if not, it refuses work
    expect_problem(refused, 503, "unavailable");
    EXPECT_EQ(refused.header("retry-after"), "1");
  }
  auto r = slow.get();
  stopper.get();
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(json_of(r)["slow"], "done");
  EXPECT_TRUE(hook_ran_after_slow) << "hooks run after in-flight requests finished";
  EXPECT_EQ(server->in_flight(), 0u);
  auto after_started = std::chrono::steady_clock::now();
  auto after = http_request("GET", base + "/healthz", {}, {}, 1000);
  EXPECT_LT(std::chrono::steady_clock::now() - after_started, std::chrono::milliseconds(500))
      << after.error;
  EXPECT_EQ(after.status, 0) << "nothing listens after shutdown";
}

TEST(Signals, WaitReturnsTheSignalThatArrived) {
  TerminationSignals signals;
  std::thread sender([self = pthread_self()] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    pthread_kill(self, SIGTERM);
  });
  EXPECT_EQ(signals.wait(), SIGTERM);
  sender.join();
}

TEST(ListenAddress, ParsesHostAndPort) {
  ServerOptions o;
  parse_listen_address("0.0.0.0:9000", o);
  EXPECT_EQ(o.address, "0.0.0.0");
  EXPECT_EQ(o.port, 9000);
  parse_listen_address("localhost:0", o);
  EXPECT_EQ(o.address, "127.0.0.1");
  EXPECT_EQ(o.port, 0);
  EXPECT_THROW(parse_listen_address("host:99999", o), std::invalid_argument);
  EXPECT_THROW(parse_listen_address("host:http", o), std::invalid_argument);
}

TEST(Server, BindFailureNamesTheAddress) {
  HttpServer first({"127.0.0.1", 0, 1}, Router{},
                   {nullptr, nullptr, nullptr, [](std::string_view) {}, {}});
  first.start();
  ServerOptions clash{"127.0.0.1", first.port(), 1};
  HttpServer second(clash, Router{}, {nullptr, nullptr, nullptr, [](std::string_view) {}, {}});
  try {
    second.start();
    FAIL() << "bound the same port twice";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(first.port())),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace flowrt::api
