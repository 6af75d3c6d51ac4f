// `api_call` nodes over real HTTP (libcurl) against a local server started by each test:
// success with `save`/`save_status`, templated requests, errors, timeouts, secrets, and
// the refusal of private destinations under the default network policy (SPEC §2).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

#include "runtime/curl_http_client.hpp"
#include "tests/runtime/runtime_test_util.hpp"
#include "tests/support/http_server.hpp"

namespace flowrt::runtime::testing {
namespace {

using flowrt::testing::CannedResponse;
using flowrt::testing::LocalHttpServer;
using flowrt::testing::ReceivedRequest;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// A flow: call (the api_call given as JSON fields) -> ok | failed (on_error).
std::shared_ptr<const Flow> call_flow(const Json& call_fields) {
  Json call = {{"id", "call"}, {"type", "api_call"}, {"next", "ok"}};
  call.update(call_fields);
  Json nodes =
      Json::array({call,
                   {{"id", "ok"}, {"type", "end"}, {"text", "ok {{vars.lead_id}}"}},
                   {{"id", "failed"}, {"type", "end"}, {"text", "failed {{vars.status}}"}}});
  return must_parse_nodes(nodes.dump(), "crm-flow");
}

LocalHttpServer::Handler answer(int status, std::string body, int delay_ms = 0) {
  return [=](const ReceivedRequest&) {
    CannedResponse response;
    response.status = status;
    response.body = body;
    response.delay_ms = delay_ms;
    return response;
  };
}

class ApiCall : public ::testing::Test {
 protected:
  CurlHttpClient http{NetworkPolicy{true}};
};

TEST_F(ApiCall, SuccessSavesByJsonPointerAndSavesStatus) {
  LocalHttpServer server(answer(201, R"({"id": 7, "lead": {"score": 0.9}, "tags": ["hot"]})"));
  Conversation chat(call_flow({{"method", "POST"},
                               {"url", server.url("/leads")},
                               {"save",
                                {{"lead_id", "/id"},
                                 {"score", "/lead/score"},
                                 {"first_tag", "/tags/0"},
                                 {"whole", ""},
                                 {"absent", "/nope"}}},
                               {"save_status", "status"},
                               {"on_error", "failed"}}),
                    &http);
  TurnResult result = chat.message("hi");
  EXPECT_THAT(texts(result), ElementsAre("ok 7"));
  EXPECT_EQ(result.state.status, Status::ended);
  const Json& vars = result.state.vars;
  EXPECT_EQ(vars["lead_id"], 7);
  EXPECT_EQ(vars["score"], 0.9);
  EXPECT_EQ(vars["first_tag"], "hot");
  EXPECT_EQ(vars["whole"]["lead"]["score"], 0.9);
  EXPECT_TRUE(vars.contains("absent") && vars["absent"].is_null());
  EXPECT_EQ(vars["status"], 201);
  ASSERT_EQ(server.request_count(), 1u);
  EXPECT_EQ(server.requests()[0].method, "POST");
  EXPECT_EQ(server.requests()[0].target, "/leads");
}

TEST_F(ApiCall, RendersUrlQueryHeadersAndBodyTemplates) {
  LocalHttpServer server(answer(200, R"({"id": 1})"));
  Conversation chat(call_flow({{"method", "PUT"},
                               {"url", server.url("/contacts/{{contact.id}}")},
                               {"query", {{"city", "{{vars.city}}"}, {"limit", 5}}},
                               {"headers",
                                {{"Authorization", "Bearer {{secrets.crm_token}}"},
                                 {"X-Flow", "{{flow.id}}/{{tenant.name}}"}}},
                               {"body",
                                {{"name", "{{contact.name}}"},
                                 {"budget", "{{vars.budget}}"},
                                 {"fixed", 3},
                                 {"flag", true},
                                 {"nested", {{"tags", {"{{vars.city}}", nullptr}}}}}}}),
                    &http);
  chat.state.vars = {{"city", "São Paulo & Co"}, {"budget", 1500}};
  chat.tenant.secrets = {{"crm_token", "tok-123"}};
  TurnResult result = chat.message("hi");
  ASSERT_EQ(result.state.status, Status::ended) << result.state.error;

  ASSERT_EQ(server.request_count(), 1u);
  ReceivedRequest got = server.requests()[0];
  EXPECT_EQ(got.method, "PUT");
  EXPECT_EQ(got.target, "/contacts/contact-1?city=S%C3%A3o%20Paulo%20%26%20Co&limit=5");
  EXPECT_EQ(got.header("authorization"), "Bearer tok-123");
  EXPECT_EQ(got.header("x-flow"), "crm-flow/Acme");
  EXPECT_EQ(got.header("content-type"), "application/json");
  // String leaves are templates (so they render as strings); other leaves are kept as JSON.
  EXPECT_EQ(Json::parse(got.body), Json::parse(R"({"name": "Ana", "budget": "1500", "fixed": 3,
      "flag": true, "nested": {"tags": ["São Paulo & Co", null]}})"));
}

TEST_F(ApiCall, ExplicitContentTypeIsNotDuplicated) {
  LocalHttpServer server(answer(200, "{}"));
  Conversation chat(call_flow({{"method", "POST"},
                               {"url", server.url("/x")},
                               {"headers", {{"Content-Type", "application/vnd.crm+json"}}},
                               {"body", {{"a", 1}}}}),
                    &http);
  chat.message("hi");
  ASSERT_EQ(server.request_count(), 1u);
  EXPECT_EQ(server.requests()[0].header("content-type"), "application/vnd.crm+json");
}

TEST_F(ApiCall, Non2xxGoesToOnErrorWithTheStatusSaved) {
  LocalHttpServer server(answer(503, R"({"id": 99})"));
  Conversation chat(call_flow({{"method", "POST"},
                               {"url", server.url("/leads")},
                               {"save", {{"lead_id", "/id"}}},
                               {"save_status", "status"},
                               {"on_error", "failed"}}),
                    &http);
  TurnResult result = chat.message("hi");
  EXPECT_THAT(texts(result), ElementsAre("failed 503"));
  EXPECT_FALSE(result.state.vars.contains("lead_id"));  // save applies to 2xx only
  EXPECT_TRUE(journal_has(result, "api_error"));
}

TEST_F(ApiCall, Non2xxWithoutOnErrorFailsWithAClearError) {
  LocalHttpServer server(answer(500, "boom"));
  Conversation chat(
      call_flow({{"method", "POST"}, {"url", server.url("/leads?key={{secrets.api_key}}")}}),
      &http);
  chat.tenant.secrets = {{"api_key", "QUERYSECRET"}};
  TurnResult result = chat.message("hi");
  EXPECT_THAT(texts(result), IsEmpty());
  EXPECT_EQ(result.state.status, Status::failed);
  EXPECT_THAT(result.state.error, HasSubstr("node \"call\" (api_call)"));
  // The error names the URL as written in the flow: the rendered one may carry secrets.
  EXPECT_THAT(result.state.error, HasSubstr("POST " + server.url("/leads?key={{secrets.api_key}}") +
                                            " answered HTTP 500"));
  EXPECT_THAT(result.state.error, Not(HasSubstr("QUERYSECRET")));
  EXPECT_TRUE(journal_has(result, "error"));
  ASSERT_EQ(server.request_count(), 1u);
  EXPECT_EQ(server.requests()[0].target, "/leads?key=QUERYSECRET");
}

TEST_F(ApiCall, TimeoutGoesToOnError) {
  LocalHttpServer server(answer(200, R"({"id": 1})", /*delay_ms=*/3000));
  Conversation chat(call_flow({{"url", server.url("/slow")},
                               {"timeout_ms", 200},
                               {"save_status", "status"},
                               {"on_error", "failed"}}),
                    &http);
  auto started = std::chrono::steady_clock::now();
  TurnResult result = chat.message("hi");
  auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_THAT(texts(result), ElementsAre("failed 0"));
  EXPECT_LT(elapsed, std::chrono::milliseconds(2000)) << "timeout_ms was not honoured";
  bool journaled_timeout = false;
  for (const auto& e : result.journal) {
    if (e.type == "api_call" && e.data.value("error", "").find("timed out") != std::string::npos) {
      journaled_timeout = true;
    }
  }
  EXPECT_TRUE(journaled_timeout);
}

TEST_F(ApiCall, TimeoutWithoutOnErrorFails) {
  LocalHttpServer server(answer(200, "{}", /*delay_ms=*/3000));
  Conversation chat(call_flow({{"url", server.url("/slow")}, {"timeout_ms", 200}}), &http);
  TurnResult result = chat.message("hi");
  EXPECT_EQ(result.state.status, Status::failed);
  EXPECT_THAT(result.state.error, HasSubstr("timed out after 200 ms"));
}

TEST_F(ApiCall, ConnectionRefusedGoesToOnError) {
  int port;
  {
    LocalHttpServer gone(answer(200, "{}"));
    port = gone.port();
  }
  Conversation chat(call_flow({{"url", "http://127.0.0.1:" + std::to_string(port) + "/x"},
                               {"save_status", "status"},
                               {"on_error", "failed"}}),
                    &http);
  EXPECT_THAT(texts(chat.message("hi")), ElementsAre("failed 0"));
}

TEST_F(ApiCall, BodyThatIsNotJsonCannotBeSaved) {
  LocalHttpServer server(answer(200, "<html>not json</html>"));
  Conversation chat(call_flow({{"url", server.url("/x")}, {"save", {{"lead_id", "/id"}}}}), &http);
  TurnResult result = chat.message("hi");
  EXPECT_EQ(result.state.status, Status::failed);
  EXPECT_THAT(result.state.error, HasSubstr("not JSON"));
}

TEST_F(ApiCall, SecretsAreSentButNeverJournaled) {
  LocalHttpServer server(answer(200, R"({"id": 5})"));
  Conversation chat(call_flow({{"method", "POST"},
                               {"url", server.url("/hook/{{secrets.path_key}}")},
                               {"query", {{"key", "{{secrets.api_key}}"}}},
                               {"headers", {{"X-Token", "{{secrets.token}}"}}},
                               {"body", {{"sig", "{{secrets.token}}"}}}}),
                    &http);
  chat.tenant.secrets = {
      {"path_key", "PATHSECRET"}, {"api_key", "QUERYSECRET"}, {"token", "HEADERSECRET"}};
  TurnResult result = chat.message("hi");
  ASSERT_EQ(result.state.status, Status::ended) << result.state.error;
  ReceivedRequest got = server.requests().at(0);
  EXPECT_EQ(got.target, "/hook/PATHSECRET?key=QUERYSECRET");
  EXPECT_EQ(got.header("x-token"), "HEADERSECRET");
  EXPECT_EQ(Json::parse(got.body)["sig"], "HEADERSECRET");
  for (const auto& e : result.journal) {
    std::string line = e.type + " " + e.data.dump();
    EXPECT_THAT(line, Not(HasSubstr("SECRET"))) << "a secret reached the journal";
  }
  EXPECT_THAT(result.state.to_json().dump(), Not(HasSubstr("SECRET")));
}

TEST_F(ApiCall, WithoutHttpClientFailsClearly) {
  Conversation chat(call_flow({{"url", "https://crm.example/x"}}), nullptr);
  TurnResult result = chat.message("hi");
  EXPECT_EQ(result.state.status, Status::failed);
  EXPECT_THAT(result.state.error, HasSubstr("no HTTP client"));
}

TEST(ApiCallPolicy, DefaultPolicyRefusesLoopbackTargets) {
  LocalHttpServer server(answer(200, R"({"id": 1})"));
  CurlHttpClient default_client;  // NetworkPolicy{}: private addresses refused
  Conversation chat(call_flow({{"url", server.url("/leads")}}), &default_client);
  TurnResult result = chat.message("hi");
  EXPECT_EQ(result.state.status, Status::failed);
  EXPECT_THAT(result.state.error, HasSubstr("refused to connect to 127.0.0.1"));
  EXPECT_EQ(server.request_count(), 0u) << "the request reached the loopback server";
}

TEST(ApiCallPolicy, DefaultPolicyRefusesLocalhostByName) {
  LocalHttpServer server(answer(200, "{}"));
  CurlHttpClient default_client;
  HttpRequest request;
  request.url = "http://localhost:" + std::to_string(server.port()) + "/x";
  request.timeout_ms = 2000;
  HttpResponse response = default_client.send(request);
  EXPECT_FALSE(response.ok());
  EXPECT_EQ(response.status, 0);
  EXPECT_THAT(response.error, HasSubstr("refused to connect"));
  EXPECT_EQ(server.request_count(), 0u);
}

TEST(ApiCallPolicy, AllowingPrivateAddressesReachesLoopback) {
  LocalHttpServer server(answer(204, ""));
  CurlHttpClient client(NetworkPolicy{true});
  HttpRequest request;
  request.url = server.url("/ping");
  HttpResponse response = client.send(request);
  EXPECT_TRUE(response.ok()) << response.error;
  EXPECT_EQ(response.status, 204);
  EXPECT_EQ(server.request_count(), 1u);
}

TEST(ApiCallPolicy, IsPrivateAddressCoversEveryPrivateRange) {
  for (const char* address : {"127.0.0.1",
                              "127.255.0.9",
                              "10.0.0.1",
                              "10.255.255.255",
                              "172.16.0.1",
                              "172.31.255.1",
                              "192.168.1.1",
                              "169.254.169.254",
                              "100.64.0.1",
                              "100.127.255.255",
                              "0.0.0.0",
                              "::1",
                              "::",
                              "fe80::1",
                              "fc00::1",
                              "fd12:3456::1",
                              "::ffff:127.0.0.1",
                              "::ffff:10.1.2.3",
                              "::ffff:192.168.0.1",
                              "224.0.0.1",
                              "ff02::1",
                              "not an address",
                              ""}) {
    EXPECT_TRUE(is_private_address(address)) << address;
  }
  for (const char* address : {"8.8.8.8", "1.1.1.1", "172.15.255.255", "172.32.0.1", "192.169.0.1",
                              "100.63.255.255", "100.128.0.1", "169.255.0.1", "11.0.0.1",
                              "2001:4860:4860::8888", "::ffff:8.8.8.8", "2606:4700::1111"}) {
    EXPECT_FALSE(is_private_address(address)) << address;
  }
}

}  // namespace
}  // namespace flowrt::runtime::testing
