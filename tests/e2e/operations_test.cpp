// `flowrt serve` as an operator meets it: its command line, a database that goes away and
// comes back, and the API's answers at the edges of a conversation's life.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/e2e/journeys_support.hpp"
#include "tests/e2e/serve_process.hpp"
#include "tests/support/postgres_cluster.hpp"

namespace flowrt::e2e {
namespace {

using journeys::sql_count;

struct Finished {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `flowrt ARGS...` to completion with `env` added (killed after 60 s).
Finished run_flowrt(const std::vector<std::string>& args,
                    const std::map<std::string, std::string>& env = {}) {
  char path[] = "/tmp/flowrt-e2e-out-XXXXXX";
  int fd = ::mkstemp(path);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    for (const auto& [name, value] : env) ::setenv(name.c_str(), value.c_str(), 1);
    std::vector<std::string> all = {FLOWRT_BINARY};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::alarm(60);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(fd);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  ::unlink(path);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), text.str()};
}

TEST(OperationsCli, HelpListsTheOptions) {
  Finished help = run_flowrt({"serve", "--help"});
  EXPECT_EQ(help.exit_code, 0) << help.output;
  EXPECT_NE(help.output.find("--database-url URL"), std::string::npos) << help.output;
}

TEST(OperationsCli, MistakesInTheCommandLineOrEnvironmentExitTwoAndSayWhere) {
  Finished unknown = run_flowrt({"serve", "--listne", "127.0.0.1:0"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.output.find("unknown argument \"--listne\""), std::string::npos)
      << unknown.output;

  Finished threads = run_flowrt({"serve", "--listen", "127.0.0.1:0"}, {{"FLOWRT_THREADS", "x"}});
  EXPECT_EQ(threads.exit_code, 2);
  EXPECT_NE(threads.output.find("FLOWRT_THREADS"), std::string::npos) << threads.output;
}

TEST(OperationsCli, NoMigrateRefusesAnOldSchemaAndSwitchesDoNotSwallowTheNextFlag) {
  // The bare switch --allow-private-network before --no-migrate: both must take effect,
  // and --no-migrate on a fresh database must refuse to start rather than migrate.
  Finished refused =
      run_flowrt({"serve", "--listen", "127.0.0.1:0", "--database-url", database_url("no_migrate"),
                  "--allow-private-network", "--no-migrate"});
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("the database schema is not current"), std::string::npos)
      << refused.output;
}

// As root, flowrt runs its PostgreSQL as the postgres user; a data folder that user cannot
// reach (under a private folder, as a clone under /root is) is refused with what to do.
TEST(OperationsCli, ALocalClusterThePostgresUserCannotReachIsExplained) {
  if (::geteuid() != 0) GTEST_SKIP() << "only root hands the cluster to the postgres user";
  char pattern[] = "/tmp/flowrt-e2e-private-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);  // mode 0700: private to root
  std::filesystem::path data_dir = std::filesystem::path(pattern) / "data";
  Finished refused = run_flowrt({"migrate", "--data-dir", data_dir.string()});
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("cannot reach " + (data_dir / "postgres").string()),
            std::string::npos)
      << refused.output;
  EXPECT_NE(refused.output.find("--data-dir"), std::string::npos) << refused.output;
  std::filesystem::remove_all(pattern);
}

// The server keeps running while PostgreSQL is down: requests that need it answer 503 (not
// 500), /readyz says why, and everything works again once the database is back.
TEST(OperationsDatabase, OutageAnswers503AndTheServerRecovers) {
  testing::PostgresCluster cluster;
  ServeProcess server(cluster.url());
  TenantKey tenant = server.create_tenant("Acme");
  ASSERT_EQ(server.call("GET", "/v1/flows", tenant.token).status, 200);

  cluster.server().stop();
  ApiResponse down = server.call("GET", "/v1/flows", tenant.token);
  EXPECT_EQ(down.status, 503) << down.body << server.log_tail();
  EXPECT_EQ(down.json.value("type", ""), "unavailable") << down.body;
  EXPECT_EQ(down.header("retry-after"), "2");
  ApiResponse ready = server.call("GET", "/readyz", "");
  EXPECT_EQ(ready.status, 503) << ready.body;

  cluster.server().start();
  // The workers noticed too, and said so in the server's log format.
  EXPECT_NE(server.log().find(R"("level":"error","event":"worker_failed")"), std::string::npos)
      << server.log_tail();
  EXPECT_TRUE(eventually([&] { return server.call("GET", "/readyz", "").status == 200; }))
      << server.log_tail();
  EXPECT_TRUE(eventually([&] {
    return server.call("GET", "/v1/flows", tenant.token).status == 200;
  })) << server.log_tail();
}

// --demo seeds the demo tenant once: a second start on the same database publishes nothing
// new and binds no second channel; it only makes a new admin key when the saved one (in
// the data folder, here a new one) is missing.
TEST(OperationsDemo, ASecondStartReusesTheDemoTenant) {
  std::string url = database_url("demo_twice");
  for (int start = 0; start < 2; ++start) {
    ServeProcess server(url, {"--demo", FLOWRT_EXAMPLES_DIR});
    EXPECT_EQ(server.stop(), 0) << server.log_tail();
  }
  EXPECT_EQ(sql_count(url, "SELECT count(*) FROM flow_versions WHERE tenant_id = 'demo'"), 3);
  EXPECT_EQ(sql_count(url, "SELECT count(*) FROM channels WHERE tenant_id = 'demo'"), 1);
  EXPECT_EQ(sql_count(url, "SELECT count(*) FROM api_keys WHERE tenant_id = 'demo'"), 2);
}

TEST(OperationsDemo, AnInvalidFlowFileStopsTheServerNamingIt) {
  char pattern[] = "/tmp/flowrt-e2e-demo-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  std::filesystem::path folder = pattern;
  std::ofstream(folder / "broken.json") << R"({"format": "flowrt.flow/1", "id": "broken"})";
  Finished refused = run_flowrt({"serve", "--listen", "127.0.0.1:0", "--database-url",
                                 database_url("demo_invalid"), "--demo", folder.string()});
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find((folder / "broken.json").string() + " is not a valid flow"),
            std::string::npos)
      << refused.output;
  std::filesystem::remove_all(folder);
}

// A small flow: greet, hand off to "support", then say goodbye.
Json handoff_flow() {
  return Json::parse(R"({
    "format": "flowrt.flow/1", "id": "desk", "name": "Desk", "start": "hello",
    "nodes": [
      {"id": "hello", "type": "text", "text": "Hello!", "next": "human"},
      {"id": "human", "type": "handoff", "queue": "support", "text": "One moment.", "next": "bye"},
      {"id": "bye", "type": "end", "text": "Bye."}
    ]})");
}

TEST(OperationsConversations, AgentRepliesToEndedConversationsAreRefused) {
  ServeProcess server(database_url("ended_reply"));
  TenantKey tenant = server.create_tenant("Acme");
  ASSERT_EQ(server.publish_flow(tenant, handoff_flow()), 1);
  Json channel = server.create_channel(tenant, "webchat", "desk");
  std::string webhook = "/v1/webhooks/" + channel["id"].get<std::string>();
  ApiResponse first = server.call("POST", webhook, "", Json{{"user", "ana"}, {"text", "hi"}});
  ASSERT_EQ(first.json["status"], "handoff") << first.body;
  std::string conversation = first.json["conversation_id"];

  ASSERT_EQ(
      server.call("POST", "/v1/conversations/" + conversation + "/close", tenant.token).status,
      200);
  ApiResponse late = server.call("POST", "/v1/conversations/" + conversation + "/messages",
                                 tenant.token, Json{{"text", "Still there?"}});
  EXPECT_EQ(late.status, 409) << late.body;
  ApiResponse poll = server.call("GET", webhook + "?user=ana", "");
  EXPECT_EQ(poll.json["replies"], Json::array()) << "nothing was queued for the contact";
  EXPECT_EQ(server.call("GET", webhook + "?user=", "").status, 400) << "a poll names its user";
}

TEST(OperationsFlows, PublishingAnUnchangedDraftReturnsTheLatestVersion) {
  ServeProcess server(database_url("publish_twice"));
  TenantKey tenant = server.create_tenant("Acme");
  ASSERT_EQ(server.publish_flow(tenant, handoff_flow()), 1);
  ApiResponse again = server.call("POST", "/v1/flows/desk/publish", tenant.token);
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.json["version"], 1);
  ApiResponse versions = server.call("GET", "/v1/flows/desk/versions", tenant.token);
  EXPECT_EQ(versions.json["items"].size(), 1u) << versions.body;
}

TEST(OperationsFlows, AMessageForAFlowWithoutPublishedVersionReportsFailed) {
  ServeProcess server(database_url("unpublished"));
  TenantKey tenant = server.create_tenant("Acme");
  ASSERT_EQ(server.call("POST", "/v1/flows", tenant.token, handoff_flow()).status, 201);
  Json channel = server.create_channel(tenant, "webchat", "desk");
  std::string webhook = "/v1/webhooks/" + channel["id"].get<std::string>();
  Json message{{"user", "ana"}, {"text", "hi"}, {"message_id", "m1"}};
  ApiResponse answer = server.call("POST", webhook, "", message);
  EXPECT_EQ(answer.json["status"], "failed") << answer.body;
  EXPECT_NE(answer.json.value("error", "").find("published"), std::string::npos) << answer.body;
  ApiResponse again = server.call("POST", webhook, "", message);
  EXPECT_EQ(again.json["duplicate"], true) << again.body;
  EXPECT_EQ(again.json["status"], "failed") << again.body;
}

}  // namespace
}  // namespace flowrt::e2e
