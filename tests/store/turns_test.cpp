#include <algorithm>
#include <set>
#include <thread>

#include "runtime/store/util.hpp"
#include "runtime/store/workers.hpp"
#include "tests/store/fixture.hpp"

namespace flowrt::store_tests {
namespace {

using Kind = st::TurnOutcome::Kind;

// How many journal events the rows of `events` hold (a statement to end with a WHERE).
const std::string kJournalLength =
    "SELECT coalesce(sum(jsonb_array_length(entries)), 0) FROM events";

TEST_F(StoreTest, SynchronousTurnRunsTheFlowAndPersistsState) {
  World world = make_world(*store, kAskFlow);
  auto first = turns->accept_and_process(message(world, "ana", "hi", "m1"), st::Delivery::inline_);
  ASSERT_EQ(first.kind, Kind::processed) << first.error;
  ASSERT_EQ(first.replies.size(), 1u);
  EXPECT_EQ(first.replies[0].text, "Name?");
  EXPECT_EQ(first.status, runtime::Status::waiting);

  auto second = turns->accept_and_process(message(world, "ana", "Ana", "m2"), st::Delivery::outbox);
  ASSERT_EQ(second.kind, Kind::processed) << second.error;
  EXPECT_EQ(second.conversation_id, first.conversation_id);
  ASSERT_EQ(second.replies.size(), 1u);
  EXPECT_EQ(second.replies[0].text, "Bye Ana");

  auto record = store->get_conversation(world.tenant, first.conversation_id);
  ASSERT_TRUE(record);
  EXPECT_EQ(record->state.status, runtime::Status::ended);
  EXPECT_EQ(record->state.vars["name"], "Ana");
  EXPECT_EQ(record->contact.id, "ana");
  EXPECT_EQ(record->turns, 2);
  // The inline reply was recorded as sent; the second turn's reply waits in the outbox.
  EXPECT_EQ(scalar("SELECT count(*) FROM outbox WHERE conversation_id = '" + first.conversation_id +
                   "' AND state = 'sent'"),
            1);
  EXPECT_EQ(scalar("SELECT count(*) FROM outbox WHERE conversation_id = '" + first.conversation_id +
                   "' AND state = 'pending'"),
            1);
  auto journal = events(world.tenant, first.conversation_id);
  EXPECT_EQ(texts_of(journal, "message_in"), (std::vector<std::string>{"hi", "Ana"}));
  EXPECT_EQ(texts_of(journal, "message_out"), (std::vector<std::string>{"Name?", "Bye Ana"}));

  // The conversation ended: the next message starts a new one.
  auto third =
      turns->accept_and_process(message(world, "ana", "again", "m3"), st::Delivery::inline_);
  ASSERT_EQ(third.kind, Kind::processed);
  EXPECT_NE(third.conversation_id, first.conversation_id);
}

// A turn's journal is one `events` row of up to kEventsPerRow entries; a longer one takes
// several rows, and the events still list in order with increasing ids, page by page across
// the rows' boundary.
TEST_F(StoreTest, AJournalLongerThanARowListsInOrderAcrossRows) {
  Json flow = Json::parse(R"({"format":"flowrt.flow/1","id":"long","start":"t0","nodes":[]})");
  const int texts = 60;  // each journals a node and a message out: 121 events with the message
  for (int i = 0; i < texts; ++i) {
    Json node{{"id", "t" + std::to_string(i)}, {"type", "text"}, {"text", std::to_string(i)}};
    if (i + 1 < texts) node["next"] = "t" + std::to_string(i + 1);
    flow["nodes"].push_back(node);
  }
  flow["nodes"].push_back(Json{{"id", "end"}, {"type", "end"}});
  flow["nodes"][texts - 1]["next"] = "end";
  World world = make_world(*store, flow.dump());
  auto turn = turns->accept_and_process(message(world, "lo", "go", "l1"), st::Delivery::inline_);
  ASSERT_EQ(turn.kind, Kind::processed) << turn.error;
  ASSERT_EQ(turn.replies.size(), static_cast<size_t>(texts));
  EXPECT_EQ(scalar("SELECT count(*) FROM events WHERE tenant_id = '" + world.tenant + "'"), 2);

  std::vector<st::EventRecord> listed;
  st::PageRequest page;
  page.limit = 7;  // pages that end inside rows and cross from one row to the next
  for (int pages = 0; pages < 50; ++pages) {
    auto got = store->list_events(world.tenant, turn.conversation_id, page);
    ASSERT_TRUE(got);
    listed.insert(listed.end(), got->items.begin(), got->items.end());
    if (!got->next_cursor) break;
    page.cursor = *got->next_cursor;
  }
  ASSERT_GT(listed.size(), static_cast<size_t>(st::kEventsPerRow));
  EXPECT_EQ(listed.front().type, "message_in");
  std::vector<std::string> replies;
  for (size_t i = 0; i < listed.size(); ++i) {
    if (i > 0) {
      EXPECT_GT(listed[i].id, listed[i - 1].id) << "at " << i;
    }
    if (listed[i].type == "message_out") replies.push_back(listed[i].data["text"]);
  }
  ASSERT_EQ(replies.size(), static_cast<size_t>(texts));
  for (int i = 0; i < texts; ++i) EXPECT_EQ(replies[i], std::to_string(i));
  auto ids = [](const std::vector<st::EventRecord>& events) {
    std::vector<int64_t> out;
    for (const auto& e : events) out.push_back(e.id);
    return out;
  };
  auto whole = store->list_events(world.tenant, turn.conversation_id, {200, ""});
  EXPECT_EQ(ids(listed), ids(whole->items));
}

TEST_F(StoreTest, DuplicateDeliveryIsAcknowledgedAndIgnored) {
  World world = make_world(*store, kAskFlow);
  auto first =
      turns->accept_and_process(message(world, "bo", "hi", "dup-1"), st::Delivery::inline_);
  ASSERT_EQ(first.kind, Kind::processed);
  auto again =
      turns->accept_and_process(message(world, "bo", "hi", "dup-1"), st::Delivery::inline_);
  EXPECT_EQ(again.kind, Kind::duplicate);
  EXPECT_EQ(again.conversation_id, first.conversation_id);
  EXPECT_TRUE(again.replies.empty());
  // The asynchronous path recognises it too.
  auto accepted = turns->accept_inbound(message(world, "bo", "hi", "dup-1"));
  EXPECT_TRUE(accepted.duplicate);
  EXPECT_EQ(accepted.inbox_id, first.inbox_id);

  // An async first delivery, then a redelivery before and after processing.
  auto a = turns->accept_inbound(message(world, "cy", "hello", "dup-2"));
  EXPECT_FALSE(a.duplicate);
  EXPECT_TRUE(turns->accept_inbound(message(world, "cy", "hello", "dup-2")).duplicate);
  EXPECT_EQ(turns->process_pending(10), 1);
  EXPECT_TRUE(turns->accept_inbound(message(world, "cy", "hello", "dup-2")).duplicate);
  EXPECT_EQ(turns->process_pending(10), 0);

  EXPECT_EQ(scalar("SELECT count(*) FROM inbox WHERE tenant_id = '" + world.tenant + "'"), 2);
  auto journal = events(world.tenant, first.conversation_id);
  EXPECT_EQ(texts_of(journal, "message_in"), (std::vector<std::string>{"hi"}));
  EXPECT_EQ(scalar("SELECT count(*) FROM events, jsonb_array_elements(entries) e "
                   "WHERE tenant_id = '" +
                   world.tenant + "' AND e->>'type' = 'message_in'"),
            2);
}

TEST_F(StoreTest, ConversationsStayPinnedToTheirFlowVersion) {
  World world = make_world(*store, kAskFlow);
  auto first = turns->accept_and_process(message(world, "di", "hi"), st::Delivery::inline_);
  Json v2 = Json::parse(kAskFlow);
  v2["nodes"][1]["text"] = "Ciao {{vars.name}}";
  store->update_flow(world.tenant, world.flow, "v2", v2);
  EXPECT_EQ(store->publish_flow(world.tenant, world.flow, "test").version, 2);
  auto answer = turns->accept_and_process(message(world, "di", "Di"), st::Delivery::inline_);
  ASSERT_EQ(answer.replies.size(), 1u);
  EXPECT_EQ(answer.replies[0].text, "Bye Di");  // still version 1
  auto fresh = turns->accept_and_process(message(world, "el", "hi"), st::Delivery::inline_);
  auto record = store->get_conversation(world.tenant, fresh.conversation_id);
  EXPECT_EQ(record->state.flow_version, 2);
  (void)first;
}

// Polls (up to 5 s) until some session of the test database waits for another transaction.
bool a_transaction_waits_for_another() {
  pqxx::connection connection(database_url());
  for (int i = 0; i < 500; ++i) {
    pqxx::nontransaction tx(connection);
    if (tx.exec("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event = 'transactionid'")[0][0]
            .as<int64_t>() > 0) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// Runs accept_and_process on a message while another transaction stores a copy of it, which
// commits only once the turn waits for it: a redelivery racing the first delivery's turn.
st::TurnOutcome accept_while_a_copy_is_stored(st::TurnProcessor& turns, const World& world,
                                              const std::string& contact,
                                              const std::string& message_id,
                                              const std::string& text) {
  pqxx::connection other(database_url());
  pqxx::work racing(other);
  racing.exec_params(
      "INSERT INTO inbox (tenant_id, channel_id, provider_message_id, contact_id, kind, payload) "
      "SELECT tenant_id, channel_id, $3, id, 'message', jsonb_build_object('text', $4::text) "
      "FROM contacts WHERE tenant_id = $1 AND external_id = $2",
      world.tenant, contact, message_id, text);
  st::TurnOutcome outcome;
  std::thread turn([&] {
    outcome =
        turns.accept_and_process(message(world, contact, text, message_id), st::Delivery::inline_);
  });
  EXPECT_TRUE(a_transaction_waits_for_another()) << "the turn never waited for the insert";
  racing.commit();
  turn.join();
  return outcome;
}

TEST_F(StoreTest, UnpublishedFlowSetsTheMessageAsideWithAReason) {
  World world;
  world.tenant = store->create_tenant("t").first.id;
  store->create_flow(world.tenant, "draft", "", Json::parse(kAskFlow));
  st::Channel channel;
  channel.tenant_id = world.tenant;
  channel.provider = "webhook";
  channel.flow_id = "draft";
  world.channel = store->create_channel(channel).id;
  auto outcome = turns->accept_and_process(message(world, "x", "hi"), st::Delivery::inline_);
  EXPECT_EQ(outcome.kind, Kind::failed);
  EXPECT_NE(outcome.error.find("no published version"), std::string::npos) << outcome.error;
  EXPECT_EQ(scalar("SELECT count(*) FROM inbox WHERE tenant_id = '" + world.tenant +
                   "' AND state = 'failed'"),
            1);
  // The contact exists now: its next message takes the path that stores the row with the
  // turn's own write, and is set aside all the same.
  auto again = turns->accept_and_process(message(world, "x", "hello", "m2"), st::Delivery::inline_);
  EXPECT_EQ(again.kind, Kind::failed);
  EXPECT_NE(again.error.find("no published version"), std::string::npos) << again.error;
  EXPECT_EQ(scalar("SELECT count(*) FROM inbox WHERE tenant_id = '" + world.tenant +
                   "' AND state = 'failed' AND provider_message_id = 'm2' AND id = " +
                   std::to_string(again.inbox_id)),
            1);
  // A copy stored concurrently: the turn finds it when it stores its failed row, and reports
  // the message as the duplicate it is.
  auto raced = accept_while_a_copy_is_stored(*turns, world, "x", "m3", "hey");
  EXPECT_EQ(raced.kind, Kind::duplicate);
  // The stored copy is set aside in turn when a worker gets to it.
  auto worked = turns->process_contact(world.tenant,
                                       scalar("SELECT id FROM contacts WHERE tenant_id = '" +
                                              world.tenant + "' AND external_id = 'x'"),
                                       true);
  ASSERT_TRUE(worked);
  EXPECT_EQ(worked->kind, Kind::failed);
  EXPECT_EQ(scalar("SELECT count(*) FROM inbox WHERE tenant_id = '" + world.tenant +
                   "' AND provider_message_id = 'm3' AND state = 'failed'"),
            1);
}

// A redelivery stored through accept_inbound while the first delivery's turn runs: the turn
// finds the row only when it inserts its own, and must then undo everything and report the
// message as the duplicate it is.
TEST_F(StoreTest, AMessageStoredConcurrentlyWithItsTurnRollsTheTurnBack) {
  World world = make_world(*store, kLoopFlow);
  auto first = turns->accept_and_process(message(world, "ra", "one", "r1"), st::Delivery::inline_);
  ASSERT_EQ(first.kind, Kind::processed);
  const std::string where = " WHERE tenant_id = '" + world.tenant + "'";
  const int64_t events_before = scalar(kJournalLength + where);
  const int64_t outbox_before = scalar("SELECT count(*) FROM outbox" + where);

  // The turn waits on the uncommitted row once it inserts its own.
  auto outcome = accept_while_a_copy_is_stored(*turns, world, "ra", "r2", "two");
  EXPECT_EQ(outcome.kind, Kind::duplicate);
  EXPECT_EQ(scalar(kJournalLength + where), events_before);
  EXPECT_EQ(scalar("SELECT count(*) FROM outbox" + where), outbox_before);
  EXPECT_EQ(scalar("SELECT count(*) FROM inbox" + where + " AND provider_message_id = 'r2'"), 1);
  // The stored copy is processed as usual, once.
  EXPECT_EQ(turns->process_pending(10), 1);
  auto journal = events(world.tenant, first.conversation_id);
  EXPECT_EQ(texts_of(journal, "message_in"), (std::vector<std::string>{"one", "two"}));
}

// Checks that every sender's messages reached the journal once each and in its order.
void expect_in_order(const std::vector<std::string>& journal,
                     const std::vector<std::string>& prefixes, int per_sender) {
  EXPECT_EQ(journal.size(), prefixes.size() * per_sender);
  std::set<std::string> unique(journal.begin(), journal.end());
  EXPECT_EQ(unique.size(), journal.size()) << "a message was processed twice";
  for (const auto& prefix : prefixes) {
    std::vector<std::string> mine;
    for (const auto& text : journal) {
      if (text.rfind(prefix + "-", 0) == 0) mine.push_back(text);
    }
    EXPECT_EQ(static_cast<int>(mine.size()), per_sender) << prefix;
    EXPECT_TRUE(std::is_sorted(mine.begin(), mine.end())) << prefix << " out of order";
  }
}

TEST_F(StoreTest, TwoThreadsHammeringOneConversationKeepOrderAndLoseNothing) {
  World world = make_world(*store, kLoopFlow);
  constexpr int kPerThread = 40;
  auto sender = [&](const std::string& prefix) {
    for (int i = 0; i < kPerThread; ++i) {
      char text[32];
      std::snprintf(text, sizeof text, "%s-%04d", prefix.c_str(), i);
      auto outcome =
          turns->accept_and_process(message(world, "hammer", text, text), st::Delivery::outbox);
      ASSERT_EQ(outcome.kind, Kind::processed) << outcome.error;
    }
  };
  std::thread a(sender, "a"), b(sender, "b");
  a.join();
  b.join();
  auto list = store->list_conversations(world.tenant, {}, {});
  ASSERT_EQ(list.items.size(), 1u);
  auto journal = texts_of(events(world.tenant, list.items[0].id), "message_in");
  expect_in_order(journal, {"a", "b"}, kPerThread);
  // Processing order is inbox order: the journal lists messages by ascending inbox id.
  std::vector<std::string> by_inbox;
  pqxx::connection connection(database_url());
  pqxx::nontransaction tx(connection);
  for (const auto& row : tx.exec_params("SELECT payload->>'text' FROM inbox WHERE tenant_id = $1 "
                                        "ORDER BY id",
                                        world.tenant)) {
    by_inbox.push_back(row[0].as<std::string>());
  }
  EXPECT_EQ(journal, by_inbox);
  EXPECT_EQ(list.items[0].turns, 2 * kPerThread);
}

TEST_F(StoreTest, TwoProcessesHammeringOneConversationKeepOrderAndLoseNothing) {
  World world = make_world(*store, kLoopFlow);
  constexpr int kEach = 40;
  // The other process uses the synchronous path; this one the durable inbox + workers.
  Helper other({"hammer", database_url(), world.tenant, world.channel, "shared", "p", "40"});
  runtime::SystemClock clock;
  st::WorkerOptions options;
  options.inbox_threads = 2;
  options.timers = false;
  options.poll_interval = std::chrono::milliseconds(5);
  st::BackgroundWorkers workers(*turns, nullptr, clock, options);
  workers.start();
  for (int i = 0; i < kEach; ++i) {
    char text[32];
    std::snprintf(text, sizeof text, "q-%04d", i);
    auto accepted = turns->accept_inbound(message(world, "shared", text, text));
    ASSERT_FALSE(accepted.duplicate);
    workers.notify();
  }
  EXPECT_EQ(other.read_line(60000), "done");
  EXPECT_EQ(other.wait(), 0);
  for (int i = 0; i < 600 && scalar("SELECT count(*) FROM inbox WHERE tenant_id = '" +
                                    world.tenant + "' AND state = 'pending'") > 0;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  workers.stop();
  auto list = store->list_conversations(world.tenant, {}, {});
  ASSERT_EQ(list.items.size(), 1u);
  auto journal = texts_of(events(world.tenant, list.items[0].id), "message_in");
  expect_in_order(journal, {"p", "q"}, kEach);
  EXPECT_EQ(scalar("SELECT count(*) FROM inbox WHERE tenant_id = '" + world.tenant +
                   "' AND state = 'done' AND attempts = 1"),
            2 * kEach);
}

TEST_F(StoreTest, ProcessKilledMidTurnLeavesTheRowToBeProcessedOnceBySurvivor) {
  World world = make_world(*store, kAskFlow);
  auto accepted = turns->accept_inbound(message(world, "kim", "hello", "kill-1"));
  Helper victim({"block", database_url()});
  std::string line = victim.read_line(60000);
  ASSERT_EQ(line, "blocked " + std::to_string(accepted.inbox_id));
  // The victim holds the contact: a survivor does not run the same row meanwhile.
  EXPECT_FALSE(turns->process_contact(world.tenant, accepted.contact_id, false));
  victim.kill_hard();
  // The victim's transaction is gone with its connection; the row is still pending.
  std::optional<st::TurnOutcome> outcome;
  for (int i = 0; i < 200 && !outcome; ++i) {
    outcome = turns->process_contact(world.tenant, accepted.contact_id, false);
    if (!outcome) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_TRUE(outcome);
  EXPECT_EQ(outcome->kind, Kind::processed);
  EXPECT_EQ(outcome->inbox_id, accepted.inbox_id);
  EXPECT_FALSE(turns->process_contact(world.tenant, accepted.contact_id, false));
  EXPECT_EQ(turns->process_pending(10), 0);
  EXPECT_EQ(scalar("SELECT attempts FROM inbox WHERE id = " + std::to_string(accepted.inbox_id)),
            1);
  auto journal = events(world.tenant, outcome->conversation_id);
  EXPECT_EQ(texts_of(journal, "message_in"), (std::vector<std::string>{"hello"}));
  EXPECT_EQ(scalar("SELECT count(*) FROM outbox WHERE tenant_id = '" + world.tenant + "'"), 1);
  EXPECT_EQ(scalar("SELECT count(*) FROM conversations WHERE tenant_id = '" + world.tenant + "'"),
            1);
}

TEST_F(StoreTest, StartRunResumeAgentMessageAndClose) {
  Json handoff = Json::parse(R"({"format":"flowrt.flow/1","id":"h","start":"human","nodes":[
    {"id":"human","type":"handoff","queue":"sales","text":"Hold on","note":"n","next":"bye"},
    {"id":"bye","type":"end","text":"Bye {{vars.who}}"}]})");
  std::string tenant = store->create_tenant("t").first.id;
  store->create_flow(tenant, "h", "", handoff);
  store->publish_flow(tenant, "h", "test");
  auto run = turns->start_run(tenant, "h", "", {"api-1", "Ann", ""}, Json{{"who", "Ann"}});
  ASSERT_EQ(run.kind, Kind::processed) << run.error;
  EXPECT_EQ(run.status, runtime::Status::handoff);
  st::ConversationFilter queue;
  queue.queue = "sales";
  EXPECT_EQ(store->list_conversations(tenant, queue, {}).items.size(), 1u);
  try {
    turns->start_run(tenant, "h", "", {"api-1", "Ann", ""}, Json::object());
    FAIL() << "a second open conversation for the contact must be refused";
  } catch (const st::StoreError& error) {
    EXPECT_EQ(error.code(), st::StoreError::Code::conflict);
  }
  EXPECT_GT(turns->agent_message(tenant, run.conversation_id, "Hi from Bob", "key:1"), 0);
  auto resumed = turns->resume(tenant, run.conversation_id, "");
  ASSERT_EQ(resumed.kind, Kind::processed) << resumed.error;
  EXPECT_EQ(resumed.status, runtime::Status::ended);
  ASSERT_EQ(resumed.replies.size(), 1u);
  EXPECT_EQ(resumed.replies[0].text, "Bye Ann");
  EXPECT_FALSE(turns->close(tenant, run.conversation_id, "key:1"));  // already ended

  auto second = turns->start_run(tenant, "h", "", {"api-1", "Ann", ""}, Json::object());
  EXPECT_TRUE(turns->close(tenant, second.conversation_id, "key:1"));
  EXPECT_EQ(store->get_conversation(tenant, second.conversation_id)->state.status,
            runtime::Status::ended);
  auto journal = events(tenant, run.conversation_id);
  EXPECT_EQ(texts_of(journal, "message_out"),
            (std::vector<std::string>{"Hold on", "Hi from Bob", "Bye Ann"}));
}

// A turn that keeps failing (here: the commit seam throws) is retried with backoff and,
// after max_inbox_attempts, set aside as failed with its error, so that it stops
// occupying the workers; the contact's later events still run.
TEST_F(StoreTest, AnEventThatKeepsFailingIsSetAsideAfterItsAttempts) {
  World world = make_world(*store, kLoopFlow);
  st::TurnProcessorOptions options;
  options.max_inbox_attempts = 3;
  options.before_commit = [](int64_t) { throw std::runtime_error("disk on fire"); };
  st::TurnProcessor failing(*store, *executor, options);
  int64_t inbox_id = failing.accept_inbound(message(world, "c1", "hi", "m1")).inbox_id;
  auto make_due = [&] {
    pqxx::connection connection(database_url());
    pqxx::work tx(connection);
    tx.exec_params("UPDATE inbox SET available_at = now() WHERE id = $1", inbox_id);
    tx.commit();
  };
  for (int attempt = 1; attempt <= 3; ++attempt) {
    make_due();
    failing.process_pending(10);
    EXPECT_EQ(scalar("SELECT attempts FROM inbox WHERE id = " + std::to_string(inbox_id)), attempt);
  }
  EXPECT_EQ(scalar("SELECT count(*) FROM inbox WHERE state = 'failed' AND error LIKE "
                   "'%disk on fire%' AND id = " +
                   std::to_string(inbox_id)),
            1);
  make_due();
  EXPECT_EQ(turns->process_pending(10), 0) << "a set-aside event is not run again";

  auto next = turns->accept_and_process(message(world, "c1", "again", "m2"), st::Delivery::inline_);
  EXPECT_EQ(next.kind, st::TurnOutcome::Kind::processed);
}

// A pooled connection that the server drops (here: terminated by an administrator) is
// noticed by the next transaction, discarded and replaced; the caller sees no error.
TEST_F(StoreTest, ADroppedConnectionIsReplacedAndTheTransactionRetried) {
  World world = make_world(*store, kLoopFlow);
  ASSERT_TRUE(store->ping());
  {
    pqxx::connection admin(database_url());
    pqxx::nontransaction tx(admin);
    tx.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend'");
  }
  auto outcome = turns->accept_and_process(message(world, "c9", "hi", "m1"), st::Delivery::inline_);
  EXPECT_EQ(outcome.kind, st::TurnOutcome::Kind::processed) << outcome.error;
  EXPECT_TRUE(store->ping());
}

// The fast path of accept_and_process opens its transaction block itself (BEGIN pipelined
// with the turn's first statements). Every way out of it leaves the connection idle for the
// next turn: stepping aside for a new contact or a duplicate, and a turn that throws between
// its write and COMMIT, which must also leave nothing of itself behind.
TEST_F(StoreTest, EveryWayOutOfAPipelinedTurnLeavesItsConnectionIdle) {
  st::StoreOptions options;
  options.database_url = database_url();
  options.pool_size = 1;
  st::Store one_connection(options);
  bool failing = false;
  st::TurnProcessorOptions turn_options;
  turn_options.before_commit = [&](int64_t) {
    if (failing) throw std::runtime_error("disk on fire");
  };
  st::TurnProcessor on_one(one_connection, *executor, turn_options);
  auto idle = [&] {
    auto lease = one_connection.pool().acquire();
    return PQtransactionStatus(lease->handle()) == PQTRANS_IDLE;
  };
  World world = make_world(*store, kLoopFlow);
  const std::string where = " WHERE tenant_id = '" + world.tenant + "'";

  auto first = on_one.accept_and_process(message(world, "c", "one", "p1"), st::Delivery::outbox);
  ASSERT_EQ(first.kind, Kind::processed) << first.error;  // a new contact: the slow path
  EXPECT_TRUE(idle());
  auto again = on_one.accept_and_process(message(world, "c", "one", "p1"), st::Delivery::outbox);
  EXPECT_EQ(again.kind, Kind::duplicate);
  EXPECT_TRUE(idle());

  const int64_t events_before = scalar(kJournalLength + where);
  failing = true;
  auto thrown = on_one.accept_and_process(message(world, "c", "two", "p2"), st::Delivery::outbox);
  EXPECT_EQ(thrown.kind, Kind::pending);
  EXPECT_NE(thrown.error.find("disk on fire"), std::string::npos) << thrown.error;
  EXPECT_TRUE(idle());
  EXPECT_EQ(scalar(kJournalLength + where), events_before);
  EXPECT_EQ(scalar("SELECT count(*) FROM inbox" + where +
                   " AND provider_message_id = 'p2' AND state = 'pending' AND attempts = 1"),
            1);

  failing = false;
  auto third = on_one.accept_and_process(message(world, "c", "three", "p3"), st::Delivery::outbox);
  EXPECT_TRUE(idle());
  EXPECT_EQ(scalar("SELECT count(*) FROM inbox" + where + " AND provider_message_id = 'p3'"), 1);
  // The earlier message waits out its retry delay; the turns run in order once it is due.
  EXPECT_EQ(third.kind, Kind::pending);
  pqxx::connection connection(database_url());
  pqxx::work tx(connection);
  tx.exec("UPDATE inbox SET available_at = now()" + where);
  tx.commit();
  EXPECT_EQ(on_one.process_pending(10), 2);
  EXPECT_EQ(texts_of(events(world.tenant, first.conversation_id), "message_in"),
            (std::vector<std::string>{"one", "two", "three"}));
}

// The connection is lost while the round trip with COMMIT is out (here: its server process
// is terminated just before COMMIT is sent). Whether the turn committed is unknown to the
// store, so it is reported in doubt, never retried on its own, and the connection replaced.
// Here it did not commit: nothing of it is stored, and the provider's redelivery of the same
// message runs it, once.
TEST_F(StoreTest, ACommitLostInFlightIsReportedInDoubtAndTheRedeliveryRunsOnce) {
  st::StoreOptions options;
  options.database_url = database_url();
  options.pool_size = 1;
  st::Store one_connection(options);
  int backend = 0;
  bool lose_commit = false;
  st::TurnProcessorOptions turn_options;
  turn_options.before_commit = [&](int64_t) {
    if (!lose_commit) return;
    pqxx::connection admin(database_url());
    pqxx::nontransaction tx(admin);
    tx.exec_params("SELECT pg_terminate_backend($1, 5000)", backend);
  };
  st::TurnProcessor on_one(one_connection, *executor, turn_options);
  World world = make_world(*store, kLoopFlow);
  const std::string where = " WHERE tenant_id = '" + world.tenant + "'";

  auto first = on_one.accept_and_process(message(world, "c", "one", "p1"), st::Delivery::outbox);
  ASSERT_EQ(first.kind, Kind::processed) << first.error;
  backend = PQbackendPID(one_connection.pool().acquire()->handle());
  const int64_t events_before = scalar(kJournalLength + where);

  lose_commit = true;
  EXPECT_THROW(on_one.accept_and_process(message(world, "c", "two", "p2"), st::Delivery::outbox),
               pqxx::in_doubt_error);
  EXPECT_EQ(scalar("SELECT count(*) FROM inbox" + where + " AND provider_message_id = 'p2'"), 0);
  EXPECT_EQ(scalar(kJournalLength + where), events_before);

  lose_commit = false;
  auto redelivered =
      on_one.accept_and_process(message(world, "c", "two", "p2"), st::Delivery::outbox);
  EXPECT_EQ(redelivered.kind, Kind::processed) << redelivered.error;
  EXPECT_NE(PQbackendPID(one_connection.pool().acquire()->handle()), backend);
  auto again = on_one.accept_and_process(message(world, "c", "two", "p2"), st::Delivery::outbox);
  EXPECT_EQ(again.kind, Kind::duplicate);
  EXPECT_EQ(texts_of(events(world.tenant, first.conversation_id), "message_in"),
            (std::vector<std::string>{"one", "two"}));
}

}  // namespace
}  // namespace flowrt::store_tests
