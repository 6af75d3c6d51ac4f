// Access control and the API's hygiene, end to end against a real `flowrt serve` (SPEC §4):
// who may call which route, tenant isolation, malformed input, the flow lifecycle,
// Idempotency-Key, pagination, secrets and the audit log, revoking keys and tenants, and the
// discovery routes (OpenAPI, metrics).
//
// Each suite starts one server on its own database. Tests that change what others read
// build their own tenant (populate() below), so the tests of a suite stay independent.
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "tests/e2e/serve_process.hpp"

namespace flowrt::e2e {
namespace {

using Strings = std::vector<std::string>;
using Ids = std::map<std::string, std::string>;

// Small enough that 413 is cheap to provoke, large enough for every ordinary request.
constexpr size_t kMaxBodyBytes = 64 * 1024;

// --- one server per suite -------------------------------------------------------------------

// `Suite` derives from ServedSuite<Suite>, which gives it its own server (on a database named
// after the suite), started once before its first test and stopped after its last.
template <class Suite>
class ServedSuite : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_suite()->name();
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    database_url_ = database_url(name);
    // The role matrix alone sends hundreds of requests per tenant: no rate limit in the way.
    server_ = std::make_unique<ServeProcess>(
        database_url_, Strings{},
        std::map<std::string, std::string>{
            {"FLOWRT_RATE_LIMIT_PER_S", "100000"},
            {"FLOWRT_RATE_LIMIT_BURST", "100000"},
            {"FLOWRT_MAX_BODY_BYTES", std::to_string(kMaxBodyBytes)}});
  }
  static void TearDownTestSuite() { server_.reset(); }

 protected:
  void SetUp() override { ASSERT_NE(server_, nullptr) << "flowrt serve did not start"; }
  void TearDown() override {
    if (HasFailure() && server_) std::cout << "server log:\n" << server_->log_tail() << std::endl;
  }
  static const ServeProcess& server() { return *server_; }
  static const std::string& db_url() { return database_url_; }

 private:
  static inline std::unique_ptr<ServeProcess> server_;
  static inline std::string database_url_;
};

class AccessRoles : public ServedSuite<AccessRoles> {};
class AccessIsolation : public ServedSuite<AccessIsolation> {};
class AccessInput : public ServedSuite<AccessInput> {};
class AccessFlows : public ServedSuite<AccessFlows> {};
class AccessIdempotency : public ServedSuite<AccessIdempotency> {};
class AccessPagination : public ServedSuite<AccessPagination> {};
class AccessAudit : public ServedSuite<AccessAudit> {};
class AccessRevocation : public ServedSuite<AccessRevocation> {};
class AccessDiscovery : public ServedSuite<AccessDiscovery> {};

// --- flows ------------------------------------------------------------------------------------

// Asks a question and waits for the answer: its conversations stay open.
Json question_flow(const std::string& id) {
  return {{"format", "flowrt.flow/1"},
          {"id", id},
          {"name", "Greeter " + id},
          {"start", "ask"},
          {"nodes",
           {{{"id", "ask"},
             {"type", "question"},
             {"text", "What is your name?"},
             {"save_as", "name"},
             {"next", "bye"}},
            {{"id", "bye"}, {"type", "end"}, {"text", "Bye {{vars.name}}"}}}}};
}

// Hands over to a human at once and ends when resumed. Its texts start with `tag`, so that a
// reply shows which version of the flow ran.
Json handoff_flow(const std::string& id, const std::string& tag) {
  return {{"format", "flowrt.flow/1"},
          {"id", id},
          {"name", "Help desk"},
          {"start", "desk"},
          {"nodes",
           {{{"id", "desk"},
             {"type", "handoff"},
             {"queue", "support"},
             {"text", tag + ": connecting you"},
             {"next", "done"}},
            {{"id", "done"}, {"type", "end"}, {"text", tag + ": back to the bot"}}}}};
}

// --- helpers ----------------------------------------------------------------------------------

// Replaces every "{name}" in `text` by ids[name].
std::string expand(std::string text, const Ids& ids) {
  for (const auto& [name, value] : ids) {
    std::string placeholder = "{" + name + "}";
    for (size_t at = text.find(placeholder); at != std::string::npos;
         at = text.find(placeholder, at + value.size())) {
      text.replace(at, placeholder.size(), value);
    }
  }
  return text;
}

// `r`'s JSON, after checking its status.
Json expect_status(const ApiResponse& r, int status) {
  EXPECT_EQ(r.status, status) << r.body;
  return r.json;
}

// Whether `r` is an application/problem+json answer of SPEC §4's shape with `status` and
// `type`, every error having a path and a message.
::testing::AssertionResult IsProblem(const ApiResponse& r, int status, const std::string& type) {
  auto failure = [&](const std::string& why) {
    return ::testing::AssertionFailure() << why << "; got " << r.status << " " << r.body;
  };
  if (r.status != status) return failure("expected status " + std::to_string(status));
  if (r.header("content-type").rfind("application/problem+json", 0) != 0)
    return failure("Content-Type is '" + r.header("content-type") + "'");
  const Json& j = r.json;
  if (!j.is_object()) return failure("the body is not a JSON object");
  if (j.value("type", "") != type) return failure("expected type " + type);
  if (j.value("status", 0) != status) return failure("member status differs");
  if (!j.contains("title") || !j["title"].is_string() || j["title"].get<std::string>().empty())
    return failure("no title");
  if (!j.contains("detail") || !j["detail"].is_string() || j["detail"].get<std::string>().empty())
    return failure("no detail");
  if (!j.contains("errors") || !j["errors"].is_array()) return failure("no errors array");
  for (const auto& e : j["errors"]) {
    if (!e.contains("path") || !e["path"].is_string() || !e.contains("message") ||
        !e["message"].is_string() || e["message"].get<std::string>().empty())
      return failure("an error lacks its path or message");
  }
  return ::testing::AssertionSuccess();
}

// The sorted paths of a problem's errors.
Strings error_paths(const ApiResponse& r) {
  Strings paths;
  if (r.json.is_object() && r.json.contains("errors")) {
    for (const auto& e : r.json["errors"]) paths.push_back(e.value("path", "?"));
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

// The messages of a problem's errors, one per line.
std::string error_messages(const ApiResponse& r) {
  std::string out;
  if (r.json.is_object() && r.json.contains("errors")) {
    for (const auto& e : r.json["errors"]) out += e.value("message", "") + "\n";
  }
  return out;
}

// A tenant with a key of every role and one resource of every kind. `ids` names them for
// path templates: {tenant} {flow} {channel} {conversation} {handoff} {key} {secret}, and
// spares that a DELETE may take: {spare_flow} {spare_channel} {spare_secret} ({key} is
// a spare viewer key too). {flow_document} and {greeter_document} are flow documents.
struct TenantWorld {
  TenantKey admin;
  std::map<std::string, std::string> tokens;  // by role name
  Ids ids;
};

TenantWorld populate(const ServeProcess& server, const std::string& name) {
  TenantWorld w;
  w.admin = server.create_tenant(name);
  w.tokens["admin"] = w.admin.token;
  for (const char* role : {"editor", "agent", "viewer"}) {
    w.tokens[role] = server.create_key(w.admin, role);
  }
  const std::string& admin = w.admin.token;
  w.ids["tenant"] = w.admin.tenant_id;
  w.ids["key"] =
      expect_status(
          server.call("POST", "/v1/keys", admin, Json{{"role", "viewer"}, {"name", "spare"}}), 201)
          .value("id", "");
  w.ids["flow"] = "greeter";
  server.publish_flow(w.admin, question_flow("greeter"));
  server.publish_flow(w.admin, handoff_flow("helpdesk", "v1"));
  w.ids["spare_flow"] = "spare-flow";
  expect_status(server.call("POST", "/v1/flows", admin, question_flow("spare-flow")), 201);
  w.ids["channel"] = server.create_channel(w.admin, "webchat", "greeter").value("id", "");
  w.ids["spare_channel"] = server.create_channel(w.admin, "webchat", "greeter").value("id", "");
  w.ids["conversation"] =
      expect_status(server.call("POST", "/v1/webhooks/" + w.ids["channel"], "",
                                Json{{"user", "ana"}, {"name", "Ana"}, {"text", "hi"}}),
                    200)
          .value("conversation_id", "");
  w.ids["handoff"] = expect_status(server.call("POST", "/v1/flows/helpdesk/runs", admin,
                                               Json{{"contact", {{"id", "hana"}}}}),
                                   201)
                         .value("conversation_id", "");
  for (const char* secret : {"crm_token", "spare_secret"}) {
    expect_status(server.call("PUT", std::string("/v1/secrets/") + secret, admin,
                              Json{{"value", "tenant-secret"}}),
                  201);
  }
  w.ids["secret"] = "crm_token";
  w.ids["spare_secret"] = "spare_secret";
  w.ids["flow_document"] = question_flow("made-{call}").dump();
  // Named anew by every call, so that each PUT changes the draft and the next publish
  // makes a version (publishing an unchanged draft answers 200 with the latest one).
  Json greeter = question_flow("greeter");
  greeter["name"] = "Greeter {call}";
  w.ids["greeter_document"] = greeter.dump();
  return w;
}

// --- the routes of SPEC §4 ----------------------------------------------------------------------

enum class Least { anyone, operator_token, viewer, agent, editor, admin };

struct RouteCase {
  std::string method;
  std::string path;       // with TenantWorld::ids placeholders
  Least least;            // the least role (or kind of caller) the route needs
  int ok_status;          // what the first caller allowed gets, on a populated tenant
  std::string body = "";  // with placeholders too; {call} is new for every request
};

// Every route the server has (SPEC §4, and GET /v1/secrets, which lists the secrets' names), in
// an order in which each call finds what it needs: a DELETE after the reads of what it
// deletes, close after messages.
const std::vector<RouteCase>& all_routes() {
  static const std::vector<RouteCase> routes = {
      {"POST", "/v1/tenants", Least::operator_token, 201, R"({"name": "Made {call}"})"},
      {"GET", "/v1/tenants", Least::operator_token, 200},
      {"GET", "/v1/tenants/{tenant}", Least::operator_token, 200},
      {"DELETE", "/v1/tenants/{spare_tenant}", Least::operator_token, 204},
      {"POST", "/v1/keys", Least::admin, 201, R"({"role": "viewer", "name": "k{call}"})"},
      {"GET", "/v1/keys", Least::admin, 200},
      {"DELETE", "/v1/keys/{key}", Least::admin, 204},
      {"PUT", "/v1/secrets/{secret}", Least::admin, 200, R"({"value": "v{call}"})"},
      {"GET", "/v1/secrets/{secret}", Least::admin, 200},
      {"GET", "/v1/secrets", Least::admin, 200},
      {"DELETE", "/v1/secrets/{spare_secret}", Least::admin, 204},
      {"POST", "/v1/flows/validate", Least::editor, 200, "{flow_document}"},
      {"POST", "/v1/flows", Least::editor, 201, "{flow_document}"},
      {"GET", "/v1/flows", Least::viewer, 200},
      {"GET", "/v1/flows/{flow}", Least::viewer, 200},
      {"PUT", "/v1/flows/{flow}", Least::editor, 200, "{greeter_document}"},
      {"DELETE", "/v1/flows/{spare_flow}", Least::editor, 204},
      {"POST", "/v1/flows/{flow}/publish", Least::editor, 201},
      {"GET", "/v1/flows/{flow}/versions", Least::viewer, 200},
      {"GET", "/v1/flows/{flow}/versions/1", Least::viewer, 200},
      {"POST", "/v1/flows/{flow}/runs", Least::editor, 201, R"({"contact": {"id": "run-{call}"}})"},
      {"POST", "/v1/channels", Least::admin, 201,
       R"({"provider": "webchat", "flow_id": "greeter"})"},
      {"GET", "/v1/channels", Least::admin, 200},
      {"GET", "/v1/channels/{channel}", Least::admin, 200},
      {"PATCH", "/v1/channels/{channel}", Least::admin, 200, R"({"name": "renamed {call}"})"},
      {"DELETE", "/v1/channels/{spare_channel}", Least::admin, 204},
      {"GET", "/v1/webhooks/{channel}?user=ana", Least::anyone, 200},
      {"POST", "/v1/webhooks/{channel}", Least::anyone, 200,
       R"({"user": "web-{call}", "text": "hi"})"},
      {"GET", "/v1/conversations", Least::agent, 200},
      {"GET", "/v1/conversations/{conversation}", Least::agent, 200},
      {"GET", "/v1/conversations/{conversation}/events", Least::agent, 200},
      {"POST", "/v1/conversations/{conversation}/messages", Least::agent, 202,
       R"({"text": "An agent here, call {call}"})"},
      {"POST", "/v1/conversations/{handoff}/resume", Least::agent, 200},
      {"POST", "/v1/conversations/{conversation}/close", Least::agent, 200},
      {"GET", "/v1/plugins", Least::viewer, 200},
      {"GET", "/v1/openapi.json", Least::anyone, 200},
      {"GET", "/healthz", Least::anyone, 200},
      {"GET", "/readyz", Least::anyone, 200},
      {"GET", "/metrics", Least::anyone, 200},
  };
  return routes;
}

// The route's path without its query.
std::string route_path(const RouteCase& route) {
  return route.path.substr(0, route.path.find('?'));
}

struct Caller {
  enum class Kind { anonymous, operator_token, tenant_key };
  std::string name;
  Kind kind;
  std::string role;      // for tenant keys
  std::string token;     // "" sends no bearer token
  Strings headers = {};  // e.g. a malformed Authorization header
};

// auth.hpp's matrix: admin ⊇ editor ⊇ viewer and admin ⊇ agent ⊇ viewer.
bool role_covers(const std::string& held, Least needed) {
  if (held == "admin" || needed == Least::viewer) return true;
  return (held == "editor" && needed == Least::editor) ||
         (held == "agent" && needed == Least::agent);
}

// 0 when `caller` may call `route`, else the status that refuses it.
int refusal(const RouteCase& route, const Caller& caller) {
  if (route.least == Least::anyone) return 0;
  if (caller.kind == Caller::Kind::anonymous) return 401;
  if (route.least == Least::operator_token) {
    return caller.kind == Caller::Kind::operator_token ? 0 : 403;
  }
  if (caller.kind == Caller::Kind::operator_token) return 403;
  return role_covers(caller.role, route.least) ? 0 : 403;
}

// ===== 1. Authentication and the role matrix ================================================

TEST_F(AccessRoles, EveryRouteAnswersEveryKindOfCallerPerTheRoleMatrix) {
  TenantWorld world = populate(server(), "Matrix");
  world.ids["spare_tenant"] = server().create_tenant("Spare").tenant_id;
  const std::vector<Caller> callers = {
      {"no token", Caller::Kind::anonymous, "", ""},
      {"a Basic credential", Caller::Kind::anonymous, "", "", {"Authorization: Basic dXNlcjpw"}},
      {"Bearer without a token", Caller::Kind::anonymous, "", "", {"Authorization: Bearer"}},
      {"an unknown key", Caller::Kind::anonymous, "", "frt_" + std::string(48, '0')},
      {"the operator", Caller::Kind::operator_token, "", kOperatorToken},
      {"viewer", Caller::Kind::tenant_key, "viewer", world.tokens["viewer"]},
      {"agent", Caller::Kind::tenant_key, "agent", world.tokens["agent"]},
      {"editor", Caller::Kind::tenant_key, "editor", world.tokens["editor"]},
      {"admin", Caller::Kind::tenant_key, "admin", world.tokens["admin"]},
  };
  int call = 0;
  for (const auto& route : all_routes()) {
    bool first_allowed = true;
    for (const auto& caller : callers) {
      std::string path = expand(route.path, world.ids);
      std::string body = expand(expand(route.body, world.ids), {{"call", std::to_string(++call)}});
      SCOPED_TRACE(route.method + " " + path + " as " + caller.name);
      ApiResponse r = server().call(route.method, path, caller.token, body, caller.headers);
      switch (refusal(route, caller)) {
        case 401:
          EXPECT_TRUE(IsProblem(r, 401, "unauthorized"));
          EXPECT_EQ(r.header("www-authenticate"), "Bearer");
          break;
        case 403:
          EXPECT_TRUE(IsProblem(r, 403, "forbidden"));
          break;
        default:
          if (first_allowed) {
            EXPECT_EQ(r.status, route.ok_status) << r.body;
            first_allowed = false;
          } else {
            // Later callers may find the resource gone (404) or changed (409).
            EXPECT_TRUE(r.status != 401 && r.status != 403 && r.status < 500) << r.body;
          }
      }
    }
  }
}

// ===== 2. Tenant isolation ==================================================================

// What tenant A's admin reads of A's resources.
Json snapshot(const ServeProcess& server, const TenantWorld& tenant) {
  static const Strings paths = {"/v1/flows/{flow}",
                                "/v1/flows/{spare_flow}",
                                "/v1/flows/{flow}/versions",
                                "/v1/flows/{flow}/versions/1",
                                "/v1/channels/{channel}",
                                "/v1/channels/{spare_channel}",
                                "/v1/keys",
                                "/v1/secrets/{secret}",
                                "/v1/secrets/{spare_secret}",
                                "/v1/conversations/{conversation}",
                                "/v1/conversations/{conversation}/events",
                                "/v1/conversations/{handoff}",
                                "/v1/conversations/{handoff}/events"};
  Json out = Json::object();
  for (const auto& path : paths) {
    ApiResponse r = server.call("GET", expand(path, tenant.ids), tenant.admin.token);
    EXPECT_EQ(r.status, 200) << path << ": " << r.body;
    out[path] = r.json;
  }
  return out;
}

TEST_F(AccessIsolation, AnotherTenantsIdsAnswer404AndChangeNothing) {
  TenantWorld a = populate(server(), "Alpha");
  TenantKey b = server().create_tenant("Beta");
  Json before = snapshot(server(), a);

  int probes = 0;
  for (const auto& route : all_routes()) {
    bool tenant_route = route.least != Least::anyone && route.least != Least::operator_token;
    // PUT /v1/secrets/{name} writes into the caller's own tenant: not a probe of A's secret.
    bool upsert = route.method == "PUT" && route.path.starts_with("/v1/secrets/");
    if (!tenant_route || upsert || route.path.find('{') == std::string::npos) continue;
    std::string path = expand(route.path, a.ids);
    std::string body = expand(expand(route.body, a.ids), {{"call", "b"}});
    SCOPED_TRACE(route.method + " " + path + " with tenant B's admin key");
    EXPECT_TRUE(IsProblem(server().call(route.method, path, b.token, body), 404, "not_found"));
    ++probes;
  }
  EXPECT_GE(probes, 18);
  EXPECT_EQ(snapshot(server(), a), before);

  // B's lists hold nothing of A's.
  for (const char* list : {"/v1/flows", "/v1/channels", "/v1/conversations", "/v1/secrets"}) {
    Json page = expect_status(server().call("GET", list, b.token), 200);
    EXPECT_EQ(page["items"], Json::array()) << list;
  }
  Json keys = expect_status(server().call("GET", "/v1/keys", b.token), 200);
  EXPECT_EQ(keys["items"].size(), 1u) << keys;  // B's own first admin key
}

TEST_F(AccessIsolation, BodiesCannotReferToAnotherTenantsFlowOrChannel) {
  TenantWorld a = populate(server(), "Gamma");
  TenantKey b = server().create_tenant("Delta");
  ASSERT_EQ(server().publish_flow(b, question_flow("own")), 1);

  ApiResponse channel = server().call("POST", "/v1/channels", b.token,
                                      Json{{"provider", "webchat"}, {"flow_id", "greeter"}});
  EXPECT_TRUE(IsProblem(channel, 422, "validation_error"));
  EXPECT_EQ(error_paths(channel), Strings{"/flow_id"});

  ApiResponse run =
      server().call("POST", "/v1/flows/own/runs", b.token,
                    Json{{"contact", {{"id", "eve"}}}, {"channel_id", a.ids["channel"]}});
  EXPECT_TRUE(IsProblem(run, 422, "validation_error"));
  EXPECT_EQ(error_paths(run), Strings{"/channel_id"});

  Json conversations = expect_status(server().call("GET", "/v1/conversations", b.token), 200);
  EXPECT_EQ(conversations["items"], Json::array());
}

// ===== 3. Malformed input ===================================================================

TEST_F(AccessInput, BrokenJsonAnswers400SayingWhere) {
  TenantKey tenant = server().create_tenant("Broken");
  for (const char* path : {"/v1/flows", "/v1/flows/validate", "/v1/keys", "/v1/channels"}) {
    SCOPED_TRACE(path);
    ApiResponse r =
        server().call("POST", path, tenant.token, std::string("{\"id\": \"x\",\n  \"nodes\": ["));
    EXPECT_TRUE(IsProblem(r, 400, "malformed_json"));
    EXPECT_EQ(r.json.value("line", 0), 2) << r.body;
    EXPECT_NE(r.json.value("detail", "").find("line 2"), std::string::npos) << r.body;
  }
  Json flows = expect_status(server().call("GET", "/v1/flows", tenant.token), 200);
  EXPECT_EQ(flows["items"], Json::array());
}

TEST_F(AccessInput, WrongTypesAndMissingFieldsName422Paths) {
  TenantWorld world = populate(server(), "Types");
  struct Case {
    std::string method, path, role, body;
    Strings paths;
  };
  const std::vector<Case> cases = {
      {"POST", "/v1/tenants", "operator", R"({})", {"/name"}},
      {"POST", "/v1/tenants", "operator", R"({"name": 7})", {"/name"}},
      {"POST", "/v1/tenants", "operator", R"({"name": "Spaced", "id": "not an id"})", {"/id"}},
      {"POST", "/v1/keys", "admin", R"({})", {"/role"}},
      {"POST", "/v1/keys", "admin", R"({"role": "owner"})", {"/role"}},
      {"POST", "/v1/keys", "admin", R"({"role": "viewer", "name": 5})", {"/name"}},
      {"PUT", "/v1/secrets/crm_token", "admin", R"({"value": 42})", {"/value"}},
      {"PUT", "/v1/secrets/crm_token", "admin", R"({})", {"/value"}},
      {"POST", "/v1/flows/greeter/runs", "editor", R"({"contact": "ana"})", {"/contact"}},
      {"POST", "/v1/flows/greeter/runs", "editor", R"({"contact": {}})", {"/contact/id"}},
      {"POST",
       "/v1/flows/greeter/runs",
       "editor",
       R"({"contact": {"id": "x"}, "vars": [1]})",
       {"/vars"}},
      {"POST",
       "/v1/flows/greeter/runs",
       "editor",
       R"({"contact": {"id": "x"}, "channel_id": 5})",
       {"/channel_id"}},
      {"POST", "/v1/channels", "admin", R"({"flow_id": "greeter"})", {"/provider"}},
      {"POST",
       "/v1/channels",
       "admin",
       R"({"provider": "webchat", "flow_id": "greeter", "config": []})",
       {"/config"}},
      {"PATCH", "/v1/channels/{channel}", "admin", R"({"provider": "telegram"})", {"/provider"}},
      {"POST", "/v1/conversations/{conversation}/messages", "agent", R"({"text": ""})", {"/text"}},
      {"POST",
       "/v1/conversations/{conversation}/messages",
       "agent",
       R"({"text": ["hi"]})",
       {"/text"}},
      {"POST", "/v1/conversations/{handoff}/resume", "agent", R"({"node": "nowhere"})", {"/node"}},
  };
  for (const auto& c : cases) {
    std::string path = expand(c.path, world.ids);
    SCOPED_TRACE(c.method + " " + path + " " + c.body);
    std::string token = c.role == "operator" ? kOperatorToken : world.tokens[c.role];
    ApiResponse r = server().call(c.method, path, token, c.body);
    EXPECT_TRUE(IsProblem(r, 422, "validation_error"));
    EXPECT_EQ(error_paths(r), c.paths);
  }
}

TEST_F(AccessInput, AFlowWithSeveralErrorsListsThemAllAndIsNotStored) {
  TenantKey tenant = server().create_tenant("Planted");
  Json broken = {{"format", "flowrt.flow/1"},
                 {"id", "broken"},
                 {"start", "nowhere"},
                 {"nodes",
                  {{{"id", "hello"}, {"type", "text"}, {"text", "hi"}, {"next", "missing"}},
                   {{"id", "ask"},
                    {"type", "question"},
                    {"text", "?"},
                    {"save_as", "x"},
                    {"expect", {{"type", "colour"}}},
                    {"next", "hello"}},
                   {{"id", "odd"}, {"type", "teleport"}}}}};
  const Strings planted = {"/nodes/0/next", "/nodes/1/expect/type", "/nodes/2/type", "/start"};

  ApiResponse created = server().call("POST", "/v1/flows", tenant.token, broken);
  EXPECT_TRUE(IsProblem(created, 422, "validation_error"));
  EXPECT_EQ(error_paths(created), planted);

  ApiResponse validated = server().call("POST", "/v1/flows/validate", tenant.token, broken);
  Json verdict = expect_status(validated, 200);
  EXPECT_EQ(verdict["valid"], false);
  Strings validated_paths;
  for (const auto& e : verdict["errors"]) validated_paths.push_back(e["path"]);
  std::sort(validated_paths.begin(), validated_paths.end());
  EXPECT_EQ(validated_paths, planted);

  Json flows = expect_status(server().call("GET", "/v1/flows", tenant.token), 200);
  EXPECT_EQ(flows["items"], Json::array());
  EXPECT_TRUE(IsProblem(server().call("GET", "/v1/flows/broken", tenant.token), 404, "not_found"));

  // An update with the same errors leaves the stored draft as it was.
  ASSERT_EQ(server().call("POST", "/v1/flows", tenant.token, question_flow("broken")).status, 201);
  ApiResponse updated = server().call("PUT", "/v1/flows/broken", tenant.token, broken);
  EXPECT_TRUE(IsProblem(updated, 422, "validation_error"));
  EXPECT_EQ(error_paths(updated), planted);
  Json flow = expect_status(server().call("GET", "/v1/flows/broken", tenant.token), 200);
  EXPECT_EQ(flow["draft"], question_flow("broken"));
}

TEST_F(AccessInput, ChannelsAreCheckedAgainstTheProviderAndItsSchemas) {
  TenantKey tenant = server().create_tenant("Channels");
  ASSERT_EQ(server().publish_flow(tenant, question_flow("greeter")), 1);
  const Json whatsapp_secrets = {{"app_secret", "a"}, {"access_token", "b"}, {"verify_token", "c"}};
  struct Case {
    std::string what;
    Json body;
    Strings paths;
    std::string message;  // a part of some error's message ("": not checked)
  };
  const std::vector<Case> cases = {
      {"a misspelt provider",
       {{"provider", "whatsap_cloud"}, {"flow_id", "greeter"}},
       {"/provider"},
       "did you mean \"whatsapp_cloud\""},
      {"config members of the wrong type",
       {{"provider", "whatsapp_cloud"},
        {"flow_id", "greeter"},
        {"config", {{"phone_number_id", 5}, {"graph_base_url", 7}}},
        {"secrets", whatsapp_secrets}},
       {"/config/graph_base_url", "/config/phone_number_id"},
       ""},
      {"a required config member missing",
       {{"provider", "whatsapp_cloud"},
        {"flow_id", "greeter"},
        {"config", Json::object()},
        {"secrets", whatsapp_secrets}},
       {"/config"},
       "phone_number_id"},
      {"an unknown config member",
       {{"provider", "webchat"}, {"flow_id", "greeter"}, {"config", {{"colour", "red"}}}},
       {"/config/colour"},
       ""},
      {"every problem at once",
       {{"provider", "webchat"},
        {"flow_id", "nope"},
        {"config", {{"colour", 1}}},
        {"secrets", {{"signing_secret", 5}}}},
       {"/config/colour", "/flow_id", "/secrets/signing_secret"},
       ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    ApiResponse r = server().call("POST", "/v1/channels", tenant.token, c.body);
    EXPECT_TRUE(IsProblem(r, 422, "validation_error"));
    EXPECT_EQ(error_paths(r), c.paths);
    EXPECT_NE(error_messages(r).find(c.message), std::string::npos) << r.body;
  }
  Json channels = expect_status(server().call("GET", "/v1/channels", tenant.token), 200);
  EXPECT_EQ(channels["items"], Json::array());
}

TEST_F(AccessInput, OnlyJsonMediaTypesAreAccepted) {
  TenantKey tenant = server().create_tenant("Media");
  struct Case {
    std::string content_type;  // "" sends none
    int status;
  };
  const std::vector<Case> cases = {{"text/plain", 415},
                                   {"application/x-www-form-urlencoded", 415},
                                   {"", 415},
                                   {"application/json; charset=utf-8", 201},
                                   {"application/vnd.flowrt+json", 201}};
  int n = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE("Content-Type: " + c.content_type);
    std::string id = "media-" + std::to_string(++n);
    ApiResponse r = server().call("POST", "/v1/flows", tenant.token, question_flow(id).dump(),
                                  {"Content-Type: " + c.content_type});
    if (c.status == 415) {
      EXPECT_TRUE(IsProblem(r, 415, "unsupported_media_type"));
      EXPECT_EQ(server().call("GET", "/v1/flows/" + id, tenant.token).status, 404);
    } else {
      EXPECT_EQ(r.status, c.status) << r.body;
    }
  }
}

TEST_F(AccessInput, BodiesOverTheConfiguredLimitAnswer413AndStoreNothing) {
  TenantKey tenant = server().create_tenant("Sizes");
  // A valid flow whose description pads the body to exactly `size` bytes.
  auto flow_of_size = [](const std::string& id, size_t size) {
    Json flow = question_flow(id);
    flow["description"] = "";
    flow["description"] = std::string(size - flow.dump().size(), 'x');
    return flow.dump();
  };
  ApiResponse too_large = server().call("POST", "/v1/flows", tenant.token,
                                        flow_of_size("too-large", kMaxBodyBytes + 1));
  EXPECT_TRUE(IsProblem(too_large, 413, "payload_too_large"));
  EXPECT_EQ(server().call("GET", "/v1/flows/too-large", tenant.token).status, 404);

  ApiResponse at_limit =
      server().call("POST", "/v1/flows", tenant.token, flow_of_size("at-limit", kMaxBodyBytes));
  EXPECT_EQ(at_limit.status, 201) << at_limit.body.substr(0, 500);
  Json flows = expect_status(server().call("GET", "/v1/flows", tenant.token), 200);
  ASSERT_EQ(flows["items"].size(), 1u);
  EXPECT_EQ(flows["items"][0]["id"], "at-limit");
}

// ===== 4. The flow lifecycle ================================================================

TEST_F(AccessFlows, PublishedVersionsAreImmutableAndConversationsStayOnTheirs) {
  TenantKey tenant = server().create_tenant("Lifecycle");
  const std::string& token = tenant.token;
  auto run = [&](const std::string& contact) {
    return expect_status(
        server().call("POST", "/v1/flows/pinned/runs", token, Json{{"contact", {{"id", contact}}}}),
        201);
  };

  Json created = expect_status(
      server().call("POST", "/v1/flows", token, handoff_flow("pinned", "draft")), 201);
  EXPECT_EQ(created["latest_version"], nullptr);
  EXPECT_EQ(created["draft"], handoff_flow("pinned", "draft"));
  Json updated = expect_status(
      server().call("PUT", "/v1/flows/pinned", token, handoff_flow("pinned", "v1")), 200);
  EXPECT_EQ(updated["draft"], handoff_flow("pinned", "v1"));
  ApiResponse renamed =
      server().call("PUT", "/v1/flows/pinned", token, handoff_flow("other", "v1"));
  EXPECT_TRUE(IsProblem(renamed, 422, "validation_error"));
  EXPECT_EQ(error_paths(renamed), Strings{"/id"});

  EXPECT_EQ(expect_status(server().call("POST", "/v1/flows/pinned/publish", token), 201)["version"],
            1);
  Json first = run("first");
  EXPECT_EQ(first["status"], "handoff");
  EXPECT_EQ(first["replies"], Json::parse(R"([{"text": "v1: connecting you"}])"));

  expect_status(server().call("PUT", "/v1/flows/pinned", token, handoff_flow("pinned", "v2")), 200);
  EXPECT_EQ(expect_status(server().call("POST", "/v1/flows/pinned/publish", token), 201)["version"],
            2);
  // A later draft is not a version.
  expect_status(server().call("PUT", "/v1/flows/pinned", token, handoff_flow("pinned", "v3")), 200);
  EXPECT_EQ(expect_status(server().call("GET", "/v1/flows/pinned", token), 200)["latest_version"],
            2);

  Json versions = expect_status(server().call("GET", "/v1/flows/pinned/versions", token), 200);
  ASSERT_EQ(versions["items"].size(), 2u) << versions;
  for (int n : {1, 2}) {
    const Json& item = versions["items"][n - 1];
    EXPECT_EQ(item["version"], n);
    EXPECT_FALSE(item.contains("document")) << item;
    Json version = expect_status(
        server().call("GET", "/v1/flows/pinned/versions/" + std::to_string(n), token), 200);
    EXPECT_EQ(version["document"], handoff_flow("pinned", "v" + std::to_string(n)));
  }
  for (const char* missing : {"3", "0", "one"}) {
    EXPECT_TRUE(
        IsProblem(server().call("GET", std::string("/v1/flows/pinned/versions/") + missing, token),
                  404, "not_found"))
        << missing;
  }
  for (const char* method : {"PUT", "PATCH", "DELETE"}) {
    ApiResponse r = server().call(method, "/v1/flows/pinned/versions/1", token,
                                  handoff_flow("pinned", "forged").dump());
    EXPECT_TRUE(IsProblem(r, 405, "method_not_allowed")) << method;
    EXPECT_EQ(r.header("allow"), "GET");
  }

  // The first conversation stays on version 1, even when it moves on; a new one takes 2.
  Json pinned = expect_status(
      server().call("GET", "/v1/conversations/" + first["conversation_id"].get<std::string>(),
                    token),
      200);
  EXPECT_EQ(pinned["flow_version"], 1);
  Json resumed = expect_status(
      server().call("POST",
                    "/v1/conversations/" + first["conversation_id"].get<std::string>() + "/resume",
                    token),
      200);
  EXPECT_EQ(resumed["replies"], Json::parse(R"([{"text": "v1: back to the bot"}])"));
  Json second = run("second");
  EXPECT_EQ(second["replies"], Json::parse(R"([{"text": "v2: connecting you"}])"));
  Json fresh = expect_status(
      server().call("GET", "/v1/conversations/" + second["conversation_id"].get<std::string>(),
                    token),
      200);
  EXPECT_EQ(fresh["flow_version"], 2);
}

TEST_F(AccessFlows, AFlowBoundToAChannelCannotBeDeleted) {
  TenantKey tenant = server().create_tenant("Bound");
  ASSERT_EQ(server().publish_flow(tenant, question_flow("bound")), 1);
  std::string channel = server().create_channel(tenant, "webchat", "bound").value("id", "");

  EXPECT_TRUE(IsProblem(server().call("DELETE", "/v1/flows/bound", tenant.token), 409, "conflict"));
  EXPECT_EQ(server().call("GET", "/v1/flows/bound", tenant.token).status, 200);

  EXPECT_EQ(server().call("DELETE", "/v1/channels/" + channel, tenant.token).status, 204);
  EXPECT_EQ(server().call("DELETE", "/v1/flows/bound", tenant.token).status, 204);
  EXPECT_TRUE(IsProblem(server().call("GET", "/v1/flows/bound", tenant.token), 404, "not_found"));
  EXPECT_TRUE(
      IsProblem(server().call("DELETE", "/v1/flows/bound", tenant.token), 404, "not_found"));
}

// ===== 5. Idempotency-Key ===================================================================

// The conversations of `tenant` whose contact is `contact_id`.
size_t conversations_of(const ServeProcess& server, const std::string& token,
                        const std::string& contact_id) {
  Json page = server.call("GET", "/v1/conversations?limit=200", token).json;
  size_t n = 0;
  for (const auto& c : page["items"]) n += c["contact"]["id"] == contact_id ? 1 : 0;
  return n;
}

TEST_F(AccessIdempotency, ARepeatedRunIsReplayedAndStartsOneConversation) {
  TenantKey tenant = server().create_tenant("Runs");
  ASSERT_EQ(server().publish_flow(tenant, question_flow("greeter")), 1);
  const Strings key = {"Idempotency-Key: run-0001"};
  const Json body = {{"contact", {{"id", "idem"}, {"name", "Ida"}}}};

  ApiResponse first = server().call("POST", "/v1/flows/greeter/runs", tenant.token, body, key);
  ASSERT_EQ(first.status, 201) << first.body;
  EXPECT_EQ(first.header("idempotent-replayed"), "");
  ApiResponse again = server().call("POST", "/v1/flows/greeter/runs", tenant.token, body, key);
  EXPECT_EQ(again.status, 201) << again.body;
  EXPECT_EQ(again.header("idempotent-replayed"), "true");
  EXPECT_EQ(again.json, first.json);
  EXPECT_EQ(conversations_of(server(), tenant.token, "idem"), 1u);

  ApiResponse other = server().call("POST", "/v1/flows/greeter/runs", tenant.token,
                                    Json{{"contact", {{"id", "other"}}}}, key);
  EXPECT_TRUE(IsProblem(other, 422, "idempotency_key_reused"));
  EXPECT_EQ(conversations_of(server(), tenant.token, "other"), 0u);

  // Without the key the same request is a new one: the contact already has a conversation.
  EXPECT_TRUE(IsProblem(server().call("POST", "/v1/flows/greeter/runs", tenant.token, body), 409,
                        "conflict"));
}

TEST_F(AccessIdempotency, ARepeatedAgentMessageIsSentOnce) {
  TenantKey tenant = server().create_tenant("Messages");
  ASSERT_EQ(server().publish_flow(tenant, question_flow("greeter")), 1);
  std::string webhook =
      "/v1/webhooks/" + server().create_channel(tenant, "webchat", "greeter").value("id", "");
  std::string conversation =
      expect_status(server().call("POST", webhook, "", Json{{"user", "wes"}, {"text", "hi"}}), 200)
          .value("conversation_id", "");
  std::string messages = "/v1/conversations/" + conversation + "/messages";
  const Strings key = {"Idempotency-Key: msg-0001"};
  const Json body = {{"text", "An agent here"}};

  ApiResponse first = server().call("POST", messages, tenant.token, body, key);
  ASSERT_EQ(first.status, 202) << first.body;
  ApiResponse again = server().call("POST", messages, tenant.token, body, key);
  EXPECT_EQ(again.status, 202) << again.body;
  EXPECT_EQ(again.header("idempotent-replayed"), "true");
  EXPECT_EQ(again.json, first.json);
  EXPECT_TRUE(IsProblem(
      server().call("POST", messages, tenant.token, Json{{"text", "Something else"}}, key), 422,
      "idempotency_key_reused"));

  // Journaled once, and delivered once: the dispatcher holds it for the widget's next poll.
  Json events = expect_status(
      server().call("GET", "/v1/conversations/" + conversation + "/events", tenant.token), 200);
  int agent_messages = 0;
  for (const auto& e : events["items"]) {
    agent_messages += e["type"] == "message_out" && e["data"].contains("agent") ? 1 : 0;
  }
  EXPECT_EQ(agent_messages, 1) << events;
  Json delivered = Json::array();
  EXPECT_TRUE(eventually([&] {
    ApiResponse poll = server().call("GET", webhook + "?user=wes", "");
    for (const auto& reply : poll.json["replies"]) delivered.push_back(reply);
    return !delivered.empty();
  }));
  EXPECT_EQ(delivered, Json::parse(R"([{"text": "An agent here", "from": "agent"}])"));
}

// ===== 6. Pagination ========================================================================

// Every item of `path`, following next_cursor from the first page of `limit` items.
Json walk(const ServeProcess& server, const std::string& path, const std::string& token,
          int limit) {
  Json items = Json::array();
  std::string cursor;
  for (int page = 0; page < 100; ++page) {
    std::string url =
        path + "?limit=" + std::to_string(limit) + (cursor.empty() ? "" : "&cursor=" + cursor);
    Json body = expect_status(server.call("GET", url, token), 200);
    if (!body.is_object()) break;
    EXPECT_LE(body["items"].size(), static_cast<size_t>(limit)) << url;
    for (const auto& item : body["items"]) items.push_back(item);
    if (body["next_cursor"].is_null()) return items;
    EXPECT_EQ(body["items"].size(), static_cast<size_t>(limit)) << "a short page before the end";
    cursor = body["next_cursor"].get<std::string>();
  }
  ADD_FAILURE() << path << ": next_cursor never became null";
  return items;
}

struct ListCase {
  std::string path;
  std::string token;
  bool numbered = false;  // its cursors are numbers (versions, sequence numbers, event ids)
};

// Each list of SPEC §4 with at least five items.
std::vector<ListCase> filled_lists(const ServeProcess& server) {
  TenantWorld world = populate(server, "Pages");
  const std::string& admin = world.admin.token;
  for (const char* flow : {"fourth", "fifth"}) {
    server.publish_flow(world.admin, question_flow(flow));
  }
  for (int i = 0; i < 4; ++i) {
    Json changed = question_flow("greeter");
    changed["name"] = "Greeter " + std::to_string(i);
    server.call("PUT", "/v1/flows/greeter", admin, changed);
    server.call("POST", "/v1/flows/greeter/publish", admin);
  }
  for (int i = 0; i < 3; ++i) server.create_channel(world.admin, "webchat", "greeter");
  for (int i = 0; i < 3; ++i) {
    server.call("POST", "/v1/flows/greeter/runs", admin,
                Json{{"contact", {{"id", "page-" + std::to_string(i)}}}});
  }
  for (const char* secret : {"third", "fourth", "fifth"}) {
    server.call("PUT", std::string("/v1/secrets/") + secret, admin, Json{{"value", "x"}});
  }
  server.call("POST", "/v1/webhooks/" + world.ids["channel"], "",
              Json{{"user", "ana"}, {"text", "Ana"}});
  for (int i = 0; i < 4; ++i) server.create_tenant("Tenant " + std::to_string(i));
  return {{"/v1/tenants", kOperatorToken},
          {"/v1/keys", admin},
          {"/v1/secrets", admin},
          {"/v1/flows", admin},
          {"/v1/flows/greeter/versions", admin, true},
          {"/v1/channels", admin},
          {"/v1/conversations", admin, true},
          {"/v1/conversations/" + world.ids["conversation"] + "/events", admin, true}};
}

TEST_F(AccessPagination, CursorsWalkEveryListOnceAndBadParametersAnswer400) {
  for (const auto& list : filled_lists(server())) {
    SCOPED_TRACE(list.path);
    Json all = expect_status(server().call("GET", list.path + "?limit=200", list.token), 200);
    ASSERT_TRUE(all.is_object());
    EXPECT_EQ(all["next_cursor"], nullptr);
    EXPECT_GE(all["items"].size(), 5u);
    Json walked = walk(server(), list.path, list.token, 2);
    EXPECT_EQ(walked, all["items"]);
    std::set<std::string> distinct;
    for (const auto& item : walked) distinct.insert(item.dump());
    EXPECT_EQ(distinct.size(), walked.size());

    for (const char* limit : {"0", "201", "-1", "abc", "2x", ""}) {
      EXPECT_TRUE(IsProblem(server().call("GET", list.path + "?limit=" + limit, list.token), 400,
                            "bad_request"))
          << "limit=" << limit;
    }
    for (const char* cursor : {"not%20a%20cursor%21", "%7B%22after%22%7D"}) {
      ApiResponse r = server().call("GET", list.path + "?cursor=" + cursor, list.token);
      EXPECT_TRUE(IsProblem(r, 400, "bad_request")) << "cursor=" << cursor;
      EXPECT_EQ(error_paths(r), Strings{"?cursor"});
    }
    if (list.numbered) {
      // Well-formed, but an id where a number belongs: the same 400 as any other bad cursor.
      ApiResponse r = server().call("GET", list.path + "?cursor=abc", list.token);
      EXPECT_TRUE(IsProblem(r, 400, "bad_request"));
      EXPECT_EQ(error_paths(r), Strings{"?cursor"});
    }
  }
}

// ===== 7. Secrets and the audit log =========================================================

constexpr const char* kSecretValue = "crm-s3cr3t-first-value";
constexpr const char* kSecretUpdate = "crm-s3cr3t-second-value";
constexpr const char* kSigningSecret = "webchat-s1gning-secret";

// The audit row a response's request wrote (by its X-Request-Id).
struct AuditRow {
  std::string actor, action, resource_type, resource_id;
  Json before, after;
};

class AuditLog {
 public:
  explicit AuditLog(const std::string& url) : connection_(url) {}

  // The rows written while handling the request that `r` answers.
  std::vector<AuditRow> of(const ApiResponse& r) {
    pqxx::work tx(connection_);
    std::vector<AuditRow> rows;
    for (const auto& row : tx.exec_params(
             "SELECT actor, action, resource_type, resource_id, before::text, after::text "
             "FROM audit_log WHERE request_id = $1 ORDER BY id",
             r.header("x-request-id"))) {
      rows.push_back({row[0].as<std::string>(), row[1].as<std::string>(), row[2].as<std::string>(),
                      row[3].as<std::string>(),
                      row[4].is_null() ? Json() : Json::parse(row[4].as<std::string>()),
                      row[5].is_null() ? Json() : Json::parse(row[5].as<std::string>())});
    }
    return rows;
  }

  // Every row, as text.
  std::string all_text() {
    pqxx::work tx(connection_);
    std::string text;
    for (const auto& row : tx.exec("SELECT row_to_json(a)::text FROM audit_log a")) {
      text += row[0].as<std::string>() + "\n";
    }
    return text;
  }

 private:
  pqxx::connection connection_;
};

TEST_F(AccessAudit, MutationsAreAuditedAndSecretValuesAppearNowhere) {
  TenantKey tenant = server().create_tenant("Audited");
  ApiResponse auditor_key =
      server().call("POST", "/v1/keys", tenant.token, Json{{"role", "admin"}, {"name", "auditor"}});
  ASSERT_EQ(auditor_key.status, 201) << auditor_key.body;
  const std::string token = auditor_key.json["token"];
  const std::string actor = "key:" + auditor_key.json["id"].get<std::string>();
  AuditLog audit(db_url());
  Strings bodies;  // every answer, to search for the secrets

  // One mutation and the audit row it must write: which of before and after it records.
  enum Has { after_only = 1, before_only = 2, both = 3 };
  auto expect_audited = [&](const ApiResponse& r, int status, const std::string& action,
                            const std::string& type, const std::string& id, Has has) {
    SCOPED_TRACE(action);
    bodies.push_back(r.body);
    EXPECT_EQ(r.status, status) << r.body;
    std::vector<AuditRow> rows = audit.of(r);
    if (rows.size() != 1) {
      ADD_FAILURE() << rows.size() << " audit rows for request " << r.header("x-request-id");
      return AuditRow{};
    }
    const AuditRow& row = rows[0];
    EXPECT_EQ(row.actor, type == "tenant" ? "operator" : actor);
    EXPECT_EQ(row.action, action);
    EXPECT_EQ(row.resource_type, type);
    EXPECT_EQ(row.resource_id, id);
    EXPECT_EQ(row.before.is_object(), (has & before_only) != 0) << row.before;
    EXPECT_EQ(row.after.is_object(), (has & after_only) != 0) << row.after;
    return row;
  };

  AuditRow created = expect_audited(
      server().call("PUT", "/v1/secrets/crm_token", token, Json{{"value", kSecretValue}}), 201,
      "secret.create", "secret", "crm_token", after_only);
  EXPECT_EQ(created.after, Json::parse(R"({"name": "crm_token", "value": "[redacted]"})"));
  expect_audited(
      server().call("PUT", "/v1/secrets/crm_token", token, Json{{"value", kSecretUpdate}}), 200,
      "secret.update", "secret", "crm_token", both);
  for (const char* path : {"/v1/secrets/crm_token", "/v1/secrets"}) {
    ApiResponse read = server().call("GET", path, token);
    EXPECT_EQ(read.status, 200) << read.body;
    bodies.push_back(read.body);
  }

  AuditRow flow =
      expect_audited(server().call("POST", "/v1/flows", token, question_flow("audited")), 201,
                     "flow.create", "flow", "audited", after_only);
  EXPECT_EQ(flow.after, question_flow("audited"));
  Json renamed = question_flow("audited");
  renamed["name"] = "Renamed";
  AuditRow update = expect_audited(server().call("PUT", "/v1/flows/audited", token, renamed), 200,
                                   "flow.update", "flow", "audited", both);
  EXPECT_EQ(update.before["name"], "Greeter audited");
  EXPECT_EQ(update.after["name"], "Renamed");
  expect_audited(server().call("POST", "/v1/flows/audited/publish", token), 201, "flow.publish",
                 "flow", "audited", after_only);

  ApiResponse channel = server().call("POST", "/v1/channels", token,
                                      Json{{"provider", "webchat"},
                                           {"flow_id", "audited"},
                                           {"secrets", {{"signing_secret", kSigningSecret}}}});
  std::string channel_id = channel.json.value("id", "");
  expect_audited(channel, 201, "channel.create", "channel", channel_id, after_only);
  EXPECT_EQ(channel.json["secrets"], Json::parse(R"({"signing_secret": "[set]"})"));
  AuditRow patched = expect_audited(
      server().call("PATCH", "/v1/channels/" + channel_id, token, Json{{"name", "Web"}}), 200,
      "channel.update", "channel", channel_id, both);
  EXPECT_EQ(patched.after["name"], "Web");

  ApiResponse run = server().call("POST", "/v1/flows/audited/runs", token,
                                  Json{{"contact", {{"id", "ada"}}}, {"channel_id", channel_id}});
  std::string conversation = run.json.value("conversation_id", "");
  expect_audited(run, 201, "run.start", "conversation", conversation, after_only);
  expect_audited(server().call("POST", "/v1/conversations/" + conversation + "/messages", token,
                               Json{{"text", "Hello from a human"}}),
                 202, "conversation.message", "conversation", conversation, after_only);
  expect_audited(server().call("POST", "/v1/conversations/" + conversation + "/close", token), 200,
                 "conversation.close", "conversation", conversation, both);

  ApiResponse key = server().call("POST", "/v1/keys", token, Json{{"role", "viewer"}});
  std::string key_id = key.json.value("id", "");
  const std::string viewer_token = key.json.value("token", "");
  ASSERT_FALSE(viewer_token.empty()) << key.body;
  AuditRow key_created = expect_audited(key, 201, "key.create", "key", key_id, after_only);
  EXPECT_FALSE(key_created.after.contains("token")) << key_created.after;
  AuditRow key_deleted = expect_audited(server().call("DELETE", "/v1/keys/" + key_id, token), 204,
                                        "key.delete", "key", key_id, before_only);
  EXPECT_EQ(key_deleted.before["role"], "viewer");
  expect_audited(server().call("DELETE", "/v1/channels/" + channel_id, token), 204,
                 "channel.delete", "channel", channel_id, before_only);
  expect_audited(server().call("DELETE", "/v1/flows/audited", token), 204, "flow.delete", "flow",
                 "audited", before_only);
  expect_audited(server().call("DELETE", "/v1/secrets/crm_token", token), 204, "secret.delete",
                 "secret", "crm_token", before_only);

  ApiResponse other = server().call("POST", "/v1/tenants", kOperatorToken, Json{{"name", "Other"}});
  std::string other_id = other.json.value("id", "");
  expect_audited(other, 201, "tenant.create", "tenant", other_id, after_only);
  expect_audited(server().call("DELETE", "/v1/tenants/" + other_id, kOperatorToken), 204,
                 "tenant.delete", "tenant", other_id, before_only);

  std::string log = server().log();
  std::string audit_text = audit.all_text();
  for (const std::string& secret :
       Strings{kSecretValue, kSecretUpdate, kSigningSecret, token, viewer_token}) {
    SCOPED_TRACE(secret);
    EXPECT_EQ(log.find(secret), std::string::npos) << "in the server log";
    EXPECT_EQ(audit_text.find(secret), std::string::npos) << "in the audit log";
  }
  for (const std::string& body : bodies) {
    for (const char* secret : {kSecretValue, kSecretUpdate, kSigningSecret}) {
      EXPECT_EQ(body.find(secret), std::string::npos) << body;
    }
  }
}

// ===== 8, 9. Revoking keys and tenants ======================================================

TEST_F(AccessRevocation, AKeysTokenIsShownOnceAndStopsWorkingWhenDeleted) {
  TenantKey tenant = server().create_tenant("Keys");
  Json key = expect_status(
      server().call("POST", "/v1/keys", tenant.token, Json{{"role", "viewer"}, {"name", "ci"}}),
      201);
  const std::string token = key.value("token", "");
  ASSERT_TRUE(token.starts_with("frt_")) << key;
  EXPECT_EQ(key["role"], "viewer");
  EXPECT_EQ(key["prefix"], token.substr(0, 8));

  ApiResponse listed = server().call("GET", "/v1/keys", tenant.token);
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_EQ(listed.body.find(token), std::string::npos);
  for (const auto& item : listed.json["items"]) EXPECT_FALSE(item.contains("token")) << item;

  EXPECT_EQ(server().call("GET", "/v1/flows", token).status, 200);
  EXPECT_EQ(
      server().call("DELETE", "/v1/keys/" + key["id"].get<std::string>(), tenant.token).status,
      204);
  EXPECT_TRUE(IsProblem(server().call("GET", "/v1/flows", token), 401, "unauthorized"));
  EXPECT_TRUE(
      IsProblem(server().call("DELETE", "/v1/keys/" + key["id"].get<std::string>(), tenant.token),
                404, "not_found"));
  EXPECT_EQ(server().call("GET", "/v1/flows", tenant.token).status, 200);
}

TEST_F(AccessRevocation, DeletingATenantRevokesItsKeysAndOnlyItsKeys) {
  TenantKey doomed = server().create_tenant("Doomed");
  TenantKey survivor = server().create_tenant("Survivor");
  std::string agent = server().create_key(doomed, "agent");
  ASSERT_EQ(server().call("GET", "/v1/conversations", agent).status, 200);

  EXPECT_EQ(server().call("DELETE", "/v1/tenants/" + doomed.tenant_id, kOperatorToken).status, 204);
  EXPECT_TRUE(IsProblem(server().call("GET", "/v1/flows", doomed.token), 401, "unauthorized"));
  EXPECT_TRUE(IsProblem(server().call("GET", "/v1/conversations", agent), 401, "unauthorized"));
  EXPECT_TRUE(IsProblem(server().call("GET", "/v1/tenants/" + doomed.tenant_id, kOperatorToken),
                        404, "not_found"));
  EXPECT_TRUE(IsProblem(server().call("DELETE", "/v1/tenants/" + doomed.tenant_id, kOperatorToken),
                        404, "not_found"));
  EXPECT_EQ(server().call("GET", "/v1/flows", survivor.token).status, 200);
}

// ===== 10. Discovery: OpenAPI and metrics ===================================================

// Whether the concrete `path` matches the pattern `pattern` ("{x}" matches one segment).
bool matches(const std::string& pattern, const std::string& path) {
  auto split = [](const std::string& s) {
    Strings parts;
    std::stringstream in(s);
    for (std::string part; std::getline(in, part, '/');) parts.push_back(part);
    return parts;
  };
  Strings p = split(pattern), q = split(path);
  if (p.size() != q.size()) return false;
  for (size_t i = 0; i < p.size(); ++i) {
    if (!p[i].starts_with("{") && p[i] != q[i]) return false;
  }
  return true;
}

std::string upper(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

// A concrete path for a pattern: every "{parameter}" becomes "x1".
std::string concrete(const std::string& pattern) {
  std::string out;
  bool in_parameter = false;
  for (char c : pattern) {
    if (c == '{') {
      in_parameter = true;
      out += "x1";
    } else if (c == '}') {
      in_parameter = false;
    } else if (!in_parameter) {
      out += c;
    }
  }
  return out;
}

// The methods (upper case) the document gives to the patterns that match `path`.
std::set<std::string> documented_methods(const Json& paths, const std::string& path) {
  static const std::set<std::string> verbs = {"get", "put", "post", "delete", "patch", "head"};
  std::set<std::string> methods;
  for (const auto& [pattern, operations] : paths.items()) {
    if (!matches(pattern, path)) continue;
    for (const auto& [method, operation] : operations.items()) {
      if (verbs.contains(method)) methods.insert(upper(method));
    }
  }
  return methods;
}

TEST_F(AccessDiscovery, TheOpenApiDocumentDescribesExactlyTheRoutesServed) {
  ApiResponse r = server().call("GET", "/v1/openapi.json", "");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(r.json.is_object() && r.json["paths"].is_object()) << r.body.substr(0, 200);
  EXPECT_TRUE(r.json.value("openapi", "").starts_with("3.")) << r.json.value("openapi", "");
  const Json& paths = r.json["paths"];

  for (const auto& route : all_routes()) {
    EXPECT_TRUE(documented_methods(paths, concrete(route_path(route))).contains(route.method))
        << route.method << " " << route.path << " is not in the document";
  }

  // The routing table, seen through the router's answers to a method no route has: every
  // path the document or the matrix names, and each of its parents, allows exactly the
  // documented methods (405 with Allow), or none (404).
  std::set<std::string> probes;
  auto add_with_parents = [&](const std::string& path) {
    for (size_t at = path.find('/', 1);; at = path.find('/', at + 1)) {
      probes.insert(path.substr(0, at));
      if (at == std::string::npos) break;
    }
  };
  for (const auto& [pattern, operations] : paths.items()) add_with_parents(concrete(pattern));
  for (const auto& route : all_routes()) add_with_parents(concrete(route_path(route)));
  for (const auto& path : probes) {
    SCOPED_TRACE(path);
    ApiResponse probe = server().call("OPTIONS", path, "");
    std::set<std::string> expected = documented_methods(paths, path);
    if (expected.empty()) {
      EXPECT_TRUE(IsProblem(probe, 404, "not_found"));
      continue;
    }
    EXPECT_TRUE(IsProblem(probe, 405, "method_not_allowed"));
    std::set<std::string> allowed;
    std::stringstream in(probe.header("allow"));
    for (std::string method; std::getline(in >> std::ws, method, ',');) allowed.insert(method);
    EXPECT_EQ(allowed, expected) << "Allow: " << probe.header("allow");
  }
}

// The sum of the samples of metric `name` whose labels include every one of `labels`.
double metric_sum(const std::string& text, const std::string& name, const Strings& labels = {}) {
  double sum = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#' || line.substr(0, line.find_first_of("{ ")) != name) {
      continue;
    }
    bool all = std::all_of(labels.begin(), labels.end(),
                           [&](const std::string& l) { return line.find(l) != std::string::npos; });
    if (all) sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

TEST_F(AccessDiscovery, MetricsCountRequestsByRoutePatternAndTurnsByStatus) {
  TenantKey tenant = server().create_tenant("Metered");
  ASSERT_EQ(server().publish_flow(tenant, question_flow("metered")), 1);
  auto scrape = [&] {
    ApiResponse r = server().call("GET", "/metrics", "");
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.header("content-type").starts_with("text/plain")) << r.header("content-type");
    return r.body;
  };
  std::string before = scrape();
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(server().call("GET", "/v1/flows/metered", tenant.token).status, 200);
  }
  EXPECT_EQ(server().call("GET", "/v1/flows/unmetered", tenant.token).status, 404);
  EXPECT_EQ(
      server()
          .call("POST", "/v1/flows/metered/runs", tenant.token, Json{{"contact", {{"id", "mia"}}}})
          .status,
      201);
  std::string after = scrape();

  auto grew = [&](const std::string& name, const Strings& labels) {
    return metric_sum(after, name, labels) - metric_sum(before, name, labels);
  };
  const std::string route = R"(route="/v1/flows/{flow_id}")";
  EXPECT_EQ(grew("flowrt_http_requests_total", {R"(method="GET")", route, R"(status="200")"}), 2);
  EXPECT_EQ(grew("flowrt_http_requests_total", {R"(method="GET")", route, R"(status="404")"}), 1);
  EXPECT_EQ(grew("flowrt_http_request_duration_seconds_count", {route}), 3);
  EXPECT_EQ(grew("flowrt_turns_total", {R"(status="waiting")"}), 1);
  // Labels carry route patterns, never the ids in a request's path.
  EXPECT_EQ(after.find("unmetered"), std::string::npos);
}

}  // namespace
}  // namespace flowrt::e2e
