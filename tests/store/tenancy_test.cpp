#include <map>
#include <set>

#include "tests/store/fixture.hpp"

namespace flowrt::store_tests {
namespace {

using Code = st::StoreError::Code;

template <class F>
void expect_error(Code code, F&& f) {
  try {
    f();
    ADD_FAILURE() << "expected a StoreError";
  } catch (const st::StoreError& error) {
    EXPECT_EQ(error.code(), code) << error.what();
  }
}

TEST_F(StoreTest, TenantAQueriesNeverSeeTenantBRows) {
  World a = make_world(*store, kAskFlow);
  World b = make_world(*store, kAskFlow);
  // B has a flow A lacks, a secret, a key, and a conversation with the same contact id as A.
  Json other = Json::parse(kAskFlow);
  other["id"] = "b-only";
  store->create_flow(b.tenant, "b-only", "", other);
  store->publish_flow(b.tenant, "b-only", "test");
  store->put_secret(b.tenant, "token", "b-secret");
  auto b_key = store->create_key(b.tenant, st::Role::agent, "agent");
  auto in_a = turns->accept_and_process(message(a, "same", "hi", "x"), st::Delivery::outbox);
  auto in_b = turns->accept_and_process(message(b, "same", "hi", "x"), st::Delivery::outbox);
  ASSERT_EQ(in_a.kind, st::TurnOutcome::Kind::processed);
  ASSERT_EQ(in_b.kind, st::TurnOutcome::Kind::processed);  // same message id, other tenant
  EXPECT_NE(in_a.conversation_id, in_b.conversation_id);

  // Reads.
  EXPECT_FALSE(store->get_conversation(a.tenant, in_b.conversation_id));
  EXPECT_FALSE(store->list_events(a.tenant, in_b.conversation_id, {}));
  auto listed = store->list_conversations(a.tenant, {}, {});
  ASSERT_EQ(listed.items.size(), 1u);
  EXPECT_EQ(listed.items[0].id, in_a.conversation_id);
  EXPECT_FALSE(store->get_channel(a.tenant, b.channel));
  for (const auto& c : store->list_channels(a.tenant, {}).items) EXPECT_EQ(c.tenant_id, a.tenant);
  EXPECT_FALSE(store->get_flow(a.tenant, "b-only"));
  EXPECT_FALSE(store->get_version(a.tenant, "b-only", 1));
  EXPECT_FALSE(store->flow_exists(a.tenant, "b-only"));
  EXPECT_TRUE(store->list_versions(a.tenant, "b-only", {}).items.empty());
  EXPECT_EQ(store->list_flows(a.tenant, {}).items.size(), 1u);
  EXPECT_TRUE(store->list_secret_names(a.tenant).empty());
  EXPECT_FALSE(store->secret_exists(a.tenant, "token"));
  for (const auto& k : store->list_keys(a.tenant, {}).items) EXPECT_NE(k.id, b_key.key.id);
  EXPECT_EQ(store->authenticate(b_key.secret)->tenant_id, b.tenant);

  // Writes.
  EXPECT_FALSE(store->delete_channel(a.tenant, b.channel));
  EXPECT_FALSE(store->delete_key(a.tenant, b_key.key.id));
  EXPECT_FALSE(store->delete_secret(a.tenant, "token"));
  EXPECT_FALSE(store->delete_flow(a.tenant, "b-only"));
  st::Channel hijack;
  hijack.tenant_id = a.tenant;
  hijack.id = b.channel;
  hijack.flow_id = a.flow;
  expect_error(Code::not_found, [&] { store->update_channel(hijack); });
  expect_error(Code::not_found, [&] { store->update_flow(a.tenant, "b-only", "", other); });
  expect_error(Code::not_found, [&] { store->publish_flow(a.tenant, "b-only", "x"); });
  expect_error(Code::not_found, [&] { turns->resume(a.tenant, in_b.conversation_id, ""); });
  expect_error(Code::not_found, [&] { turns->close(a.tenant, in_b.conversation_id, "x"); });
  expect_error(Code::not_found,
               [&] { turns->agent_message(a.tenant, in_b.conversation_id, "hi", "x"); });
  expect_error(Code::invalid, [&] {
    turns->start_run(a.tenant, a.flow, b.channel, {"z", "", ""}, {});
  });
  // A message for A naming B's channel reaches nothing of B's.
  auto cross = turns->accept_and_process(message(World{a.tenant, a.flow, b.channel}, "same", "x"),
                                         st::Delivery::outbox);
  EXPECT_EQ(cross.kind, st::TurnOutcome::Kind::failed);

  // B is untouched.
  EXPECT_TRUE(store->get_channel(b.tenant, b.channel));
  EXPECT_TRUE(store->get_flow(b.tenant, "b-only"));
  EXPECT_TRUE(store->secret_exists(b.tenant, "token"));
  auto b_conversation = store->get_conversation(b.tenant, in_b.conversation_id);
  ASSERT_TRUE(b_conversation);
  EXPECT_EQ(b_conversation->state.status, runtime::Status::waiting);
  EXPECT_EQ(events(b.tenant, in_b.conversation_id).size(),
            events(a.tenant, in_a.conversation_id).size());
}

// The tables turns append to have no foreign keys (migration 0004): deleting a tenant must
// still leave no row of it anywhere, and must not touch another tenant's rows.
TEST_F(StoreTest, DeletingATenantLeavesNoRowOfItInAnyTable) {
  World gone = make_world(*store, kTimeoutFlow);
  World kept = make_world(*store, kTimeoutFlow);
  for (const World& world : {gone, kept}) {
    store->put_secret(world.tenant, "token", "value");
    store->create_key(world.tenant, st::Role::agent, "agent");
    // A processed message (events, outbox, a timer) and one left pending in the inbox.
    auto first = turns->accept_and_process(message(world, "c1", "hi", "m1"), st::Delivery::outbox);
    ASSERT_EQ(first.kind, st::TurnOutcome::Kind::processed);
    turns->accept_inbound(message(world, "c2", "hi", "m2"));
  }
  // Every table with a tenant_id column, so that a table added later is checked too.
  std::vector<std::string> tables;
  {
    pqxx::connection connection(database_url());
    pqxx::nontransaction tx(connection);
    for (const auto& row : tx.exec(
             "SELECT table_name FROM information_schema.columns WHERE column_name = 'tenant_id' "
             "AND table_schema = 'public' ORDER BY table_name")) {
      tables.push_back(row[0].as<std::string>());
    }
  }
  ASSERT_GE(tables.size(), 12u);
  auto rows_of = [&](const std::string& table, const std::string& tenant) {
    return scalar("SELECT count(*) FROM " + table + " WHERE tenant_id = '" + tenant + "'");
  };
  std::map<std::string, int64_t> kept_before;
  for (const auto& table : tables) kept_before[table] = rows_of(table, kept.tenant);
  for (const char* table : {"inbox", "events", "outbox", "timers", "contacts", "conversations"}) {
    EXPECT_GT(rows_of(table, gone.tenant), 0) << table << " has nothing to delete";
  }

  ASSERT_TRUE(store->delete_tenant(gone.tenant));
  for (const auto& table : tables) {
    EXPECT_EQ(rows_of(table, gone.tenant), 0) << table;
    EXPECT_EQ(rows_of(table, kept.tenant), kept_before[table]) << table;
  }
  EXPECT_FALSE(store->delete_tenant(gone.tenant));
}

TEST_F(StoreTest, PaginationWalksEveryConversationOnce) {
  World world = make_world(*store, kAskFlow);
  for (int i = 0; i < 7; ++i) {
    turns->accept_and_process(message(world, "p" + std::to_string(i), "hi"), st::Delivery::outbox);
  }
  st::PageRequest page;
  page.limit = 3;
  std::set<std::string> seen;
  int pages = 0;
  for (;;) {
    auto got = store->list_conversations(world.tenant, {}, page);
    ++pages;
    for (const auto& c : got.items) EXPECT_TRUE(seen.insert(c.id).second);
    if (!got.next_cursor) break;
    page.cursor = *got.next_cursor;
  }
  EXPECT_EQ(seen.size(), 7u);
  EXPECT_EQ(pages, 3);
  st::ConversationFilter ended;
  ended.status = runtime::Status::ended;
  EXPECT_TRUE(store->list_conversations(world.tenant, ended, {}).items.empty());
}

TEST_F(StoreTest, IdempotencyKeysReplayTheFirstResponse) {
  std::string tenant = store->create_tenant("t").first.id;
  EXPECT_FALSE(store->claim_idempotency_key(tenant, "POST /runs", "k1", "h1"));
  auto running = store->claim_idempotency_key(tenant, "POST /runs", "k1", "h1");
  ASSERT_TRUE(running);
  EXPECT_EQ(running->status, 0);
  store->finish_idempotent(tenant, "POST /runs", "k1", {201, Json{{"id", "cv_1"}}});
  auto replay = store->claim_idempotency_key(tenant, "POST /runs", "k1", "h1");
  ASSERT_TRUE(replay);
  EXPECT_EQ(replay->status, 201);
  EXPECT_EQ(replay->body["id"], "cv_1");
  expect_error(Code::invalid,
               [&] { store->claim_idempotency_key(tenant, "POST /runs", "k1", "h2"); });
  std::string other = store->create_tenant("u").first.id;
  EXPECT_FALSE(store->claim_idempotency_key(other, "POST /runs", "k1", "h2"));
}

// Moves a key's claim `age` (an SQL interval) into the past.
void backdate_idempotency_key(const std::string& tenant, const std::string& key,
                              const std::string& age) {
  pqxx::connection connection(database_url());
  pqxx::work tx(connection);
  tx.exec_params(
      "UPDATE idempotency_keys SET created_at = now() - $3::interval "
      "WHERE tenant_id = $1 AND key = $2",
      tenant, key, age);
  tx.commit();
}

TEST_F(StoreTest, IdempotencyKeysExpireAfterADay) {
  std::string tenant = store->create_tenant("t").first.id;
  EXPECT_FALSE(store->claim_idempotency_key(tenant, "POST /runs", "old", "h1"));
  store->finish_idempotent(tenant, "POST /runs", "old", {201, Json{{"id", "cv_1"}}});
  backdate_idempotency_key(tenant, "old", "25 hours");
  // A different request under the expired key is a new claim, not a mismatch.
  EXPECT_FALSE(store->claim_idempotency_key(tenant, "POST /runs", "old", "h2"));
}

TEST_F(StoreTest, AnAbandonedClaimStopsBlockingItsKeyAfterFiveMinutes) {
  std::string tenant = store->create_tenant("t").first.id;
  EXPECT_FALSE(store->claim_idempotency_key(tenant, "POST /runs", "k", "h1"));  // never finished
  EXPECT_EQ(store->claim_idempotency_key(tenant, "POST /runs", "k", "h1")->status, 0);
  backdate_idempotency_key(tenant, "k", "6 minutes");
  EXPECT_FALSE(store->claim_idempotency_key(tenant, "POST /runs", "k", "h1"));
}

}  // namespace
}  // namespace flowrt::store_tests
