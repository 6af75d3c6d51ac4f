// The server starts, is ready, and a demo-like journey works over webchat.
#include <gtest/gtest.h>

#include <sstream>

#include "tests/e2e/serve_process.hpp"

namespace flowrt::e2e {
namespace {

TEST(Smoke, ReadyAndWebchatRepliesInTheResponse) {
  ServeProcess server(database_url("smoke"));
  auto ready = server.call("GET", "/readyz", "");
  EXPECT_EQ(ready.status, 200) << ready.body;

  TenantKey tenant = server.create_tenant("Acme");
  ASSERT_EQ(server.publish_flow(tenant, example_flow("lead-qualification")), 1);
  Json channel = server.create_channel(tenant, "webchat", "lead-qualification");
  std::string webhook = "/v1/webhooks/" + channel["id"].get<std::string>();

  auto first =
      server.call("POST", webhook, "", Json{{"user", "ana"}, {"name", "Ana"}, {"text", "hi"}});
  ASSERT_EQ(first.status, 200) << first.body << server.log_tail();
  ASSERT_EQ(first.json["replies"].size(), 2u) << first.body;
  EXPECT_EQ(first.json["replies"][0]["text"], "Hi Ana! I'm the Acme assistant.");
  EXPECT_EQ(first.json["status"], "waiting");
  // The access log names the tenant a webhook served, though the caller had no key.
  std::istringstream log(server.log());
  bool webhook_logged_with_tenant = false;
  for (std::string line; std::getline(log, line);) {
    Json entry = Json::parse(line, nullptr, false);
    if (entry.is_object() && entry.value("route", "") == "/v1/webhooks/{channel_id}") {
      webhook_logged_with_tenant = entry["tenant"] == tenant.tenant_id;
    }
  }
  EXPECT_TRUE(webhook_logged_with_tenant) << server.log_tail();
  EXPECT_EQ(server.stop(), 0) << server.log_tail();
}

}  // namespace
}  // namespace flowrt::e2e
