#include <algorithm>
#include <atomic>
#include <fstream>
#include <latch>
#include <thread>

#include "runtime/store/migrator.hpp"
#include "tests/store/fixture.hpp"

namespace flowrt::store_tests {
namespace {

class MigrationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "flowrt-migrations-XXXXXX").string();
    ASSERT_TRUE(mkdtemp(pattern.data()));
    folder = pattern;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    url = cluster().create_database(std::string("mig_") + info->name());
  }
  void TearDown() override { std::filesystem::remove_all(folder); }

  void write(const std::string& name, const std::string& sql) {
    std::ofstream(folder / name) << sql;
  }
  std::unique_ptr<st::ConnectionPool> pool() {
    return std::make_unique<st::ConnectionPool>(st::PoolOptions{url, 2});
  }
  std::vector<std::string> recorded() {
    pqxx::connection connection(url);
    pqxx::nontransaction tx(connection);
    std::vector<std::string> names;
    for (const auto& row :
         tx.exec("SELECT name FROM schema_migrations ORDER BY applied_at, version")) {
      names.push_back(row[0].as<std::string>());
    }
    return names;
  }

  std::filesystem::path folder;
  std::string url;
};

TEST_F(MigrationsTest, AppliesFilesInNumericOrderAndRecordsThem) {
  // "10_" sorts before "9_" as text: applying by name would alter a table not created yet.
  write("9_create.sql", "CREATE TABLE t (a int);");
  write("10_alter.sql", "ALTER TABLE t ADD COLUMN b int;");
  auto p = pool();
  st::Migrator migrator(*p, folder);
  EXPECT_FALSE(migrator.status().current());
  EXPECT_EQ(migrator.migrate(), (std::vector<std::string>{"9_create.sql", "10_alter.sql"}));
  EXPECT_EQ(recorded(), (std::vector<std::string>{"9_create.sql", "10_alter.sql"}));
  EXPECT_TRUE(migrator.status().current());
  EXPECT_TRUE(migrator.migrate().empty());  // nothing left to do
}

TEST_F(MigrationsTest, FailedFileRollsBackAndIsNotRecorded) {
  write("1_ok.sql", "CREATE TABLE ok (a int);");
  write("2_bad.sql", "CREATE TABLE half (a int); SELECT no_such_function();");
  auto p = pool();
  st::Migrator migrator(*p, folder);
  try {
    migrator.migrate();
    FAIL() << "a failing migration must throw";
  } catch (const st::MigrationError& error) {
    EXPECT_NE(std::string(error.what()).find("2_bad.sql"), std::string::npos) << error.what();
  }
  EXPECT_EQ(recorded(), (std::vector<std::string>{"1_ok.sql"}));
  pqxx::connection connection(url);
  pqxx::nontransaction tx(connection);
  EXPECT_TRUE(tx.exec("SELECT to_regclass('half') IS NULL")[0][0].as<bool>());
}

TEST_F(MigrationsTest, RefusesAChangedAppliedFileByName) {
  write("1_create.sql", "CREATE TABLE t (a int);");
  auto p = pool();
  st::Migrator migrator(*p, folder);
  migrator.migrate();
  write("1_create.sql", "CREATE TABLE t (a bigint);");
  write("2_more.sql", "CREATE TABLE u (a int);");
  try {
    migrator.migrate();
    FAIL() << "a changed migration must be refused";
  } catch (const st::MigrationError& error) {
    EXPECT_NE(std::string(error.what()).find("1_create.sql"), std::string::npos) << error.what();
  }
  EXPECT_EQ(recorded(), (std::vector<std::string>{"1_create.sql"}));  // 2 not applied either
  auto status = migrator.status();
  EXPECT_EQ(status.changed, (std::vector<std::string>{"1_create.sql"}));
  EXPECT_FALSE(status.current());
}

TEST_F(MigrationsTest, ConcurrentMigratorsApplyEachFileOnce) {
  // Without the advisory lock both would run the slow file; the second CREATE TABLE fails.
  write("1_slow.sql", "SELECT pg_sleep(0.4); CREATE TABLE once (a int);");
  write("2_next.sql", "CREATE TABLE twice_guard (a int);");
  std::vector<std::string> a, b;
  std::string error_a, error_b;
  auto run = [&](std::vector<std::string>& out, std::string& error) {
    try {
      auto p = pool();
      out = st::Migrator(*p, folder).migrate();
    } catch (const std::exception& e) {
      error = e.what();
    }
  };
  std::thread first(run, std::ref(a), std::ref(error_a));
  std::thread second(run, std::ref(b), std::ref(error_b));
  first.join();
  second.join();
  EXPECT_EQ(error_a, "");
  EXPECT_EQ(error_b, "");
  EXPECT_EQ(a.size() + b.size(), 2u);
  EXPECT_TRUE(a.empty() || b.empty());
  EXPECT_EQ(recorded().size(), 2u);
}

TEST_F(MigrationsTest, ProjectMigrationsApplyToAnEmptyDatabase) {
  auto p = pool();
  st::Migrator migrator(*p, FLOWRT_SOURCE_MIGRATIONS_DIR);
  EXPECT_FALSE(migrator.migrate().empty());
  EXPECT_TRUE(migrator.status().current());
}

// Copies the project's migrations into `folder` up to (not including) the file named
// `stop`, or all of them, and applies what is new there.
class ProjectMigrationsTest : public MigrationsTest {
 protected:
  void SetUp() override {
    MigrationsTest::SetUp();
    for (const auto& entry : std::filesystem::directory_iterator(FLOWRT_SOURCE_MIGRATIONS_DIR)) {
      project.push_back(entry.path());
    }
    std::sort(project.begin(), project.end());
  }
  void apply_until(const std::string& stop = "") {
    for (const auto& file : project) {
      if (file.filename() == stop) break;
      if (!std::filesystem::exists(folder / file.filename())) {
        std::filesystem::copy_file(file, folder / file.filename());
      }
    }
    st::Migrator(*pool(), folder).migrate();
  }
  // The database's answer to `sql`, one value.
  std::string value(const std::string& sql) {
    pqxx::connection connection(url);
    pqxx::nontransaction tx(connection);
    return tx.exec(sql)[0][0].as<std::string>();
  }
  std::unique_ptr<st::Store> store() {
    st::StoreOptions options;
    options.database_url = url;
    return std::make_unique<st::Store>(options);
  }
  // A contact and its conversation, written as SQL so that any schema version takes them.
  void insert_conversation(const World& world, const std::string& conversation) {
    value("WITH c AS (INSERT INTO contacts (tenant_id, channel_id, external_id) VALUES ('" +
          world.tenant + "', '" + world.channel +
          "', 'ana') RETURNING id) "
          "INSERT INTO conversations (tenant_id, id, channel_id, contact_id, flow_id, "
          "flow_version, status) SELECT '" +
          world.tenant + "', '" + conversation + "', '" + world.channel + "', c.id, '" +
          world.flow + "', 1, 'waiting' FROM c RETURNING 1");
  }
  std::vector<std::filesystem::path> project;
};

// 0006 changes the type of columns that already hold rows: the rows stay, and the new types
// refuse values outside their sets as the CHECK constraints did.
TEST_F(ProjectMigrationsTest, StateDomainsKeepExistingRowsAndRefuseUnknownValues) {
  apply_until("0006_state_domains.sql");
  World world = make_world(*store(), kAskFlow);
  insert_conversation(world, "cv_old");
  value(
      "INSERT INTO inbox (tenant_id, channel_id, provider_message_id, contact_id, kind, state) "
      "SELECT tenant_id, channel_id, 'm1', id, 'message', 'done' FROM contacts RETURNING 1");
  value(
      "INSERT INTO outbox (tenant_id, conversation_id, channel_id, contact_id, payload) "
      "SELECT tenant_id, 'cv_old', channel_id, id, '{\"text\": \"hi\"}' FROM contacts "
      "RETURNING 1");
  apply_until();
  EXPECT_EQ(value("SELECT status || ' ' || pg_typeof(status) FROM conversations"),
            "waiting conversation_status");
  EXPECT_EQ(value("SELECT kind || ' ' || state || ' ' || pg_typeof(state) FROM inbox"),
            "message done inbox_state");
  EXPECT_EQ(value("SELECT state || ' ' || pg_typeof(state) FROM outbox"), "pending outbox_state");

  pqxx::connection connection(url);
  for (const char* refused :
       {"UPDATE conversations SET status = 'paused'", "UPDATE inbox SET kind = 'poke'",
        "UPDATE inbox SET state = 'lost'", "UPDATE outbox SET state = 'queued'"}) {
    pqxx::work tx(connection);
    EXPECT_THROW(tx.exec(refused), pqxx::check_violation) << refused;
  }
}

// 0007 turns the journal into one row per write: events written before it keep their ids,
// types, data and times, and events written after it come after them.
TEST_F(ProjectMigrationsTest, JournalRowsKeepEarlierEventsAndTheirIds) {
  apply_until("0007_journal_rows.sql");
  World world = make_world(*store(), kAskFlow);
  insert_conversation(world, "cv_old");
  const std::string old_ids = value(
      "WITH e AS (INSERT INTO events (tenant_id, conversation_id, type, data, at) VALUES "
      "('" +
      world.tenant +
      "', 'cv_old', 'message_in', '{\"text\": \"hi\"}', "
      "  '2026-01-02T03:04:05.678Z'), "
      "('" +
      world.tenant +
      "', 'cv_old', 'node', '{\"node\": \"ask\"}', "
      "  '2026-01-02T03:04:05.679Z') RETURNING id) "
      "SELECT string_agg(id::text, ' ' ORDER BY id) FROM e");
  apply_until();

  auto migrated = store();
  auto journal = migrated->list_events(world.tenant, "cv_old", {});
  ASSERT_TRUE(journal);
  ASSERT_EQ(journal->items.size(), 2u);
  EXPECT_EQ(std::to_string(journal->items[0].id) + " " + std::to_string(journal->items[1].id),
            old_ids);
  EXPECT_EQ(journal->items[0].type, "message_in");
  EXPECT_EQ(journal->items[0].data, Json::parse(R"({"text": "hi"})"));
  EXPECT_EQ(journal->items[0].at_ms, 1767323045678);
  EXPECT_EQ(journal->items[1].type, "node");
  EXPECT_EQ(journal->items[1].at_ms, 1767323045679);

  runtime::SystemClock clock;
  runtime::Executor executor(runtime::ExecutorServices{&clock, nullptr, nullptr});
  st::TurnProcessor turns(*migrated, executor);
  turns.agent_message(world.tenant, "cv_old", "an agent here", "key:k");
  journal = migrated->list_events(world.tenant, "cv_old", {});
  ASSERT_EQ(journal->items.size(), 3u);
  EXPECT_EQ(journal->items[2].type, "message_out");
  EXPECT_GT(journal->items[2].id, journal->items[1].id);
}

// Every metrics scrape counts the pending and failed rows (Store::depths): each count must
// be read from an index, as the tables grow with traffic. Before 0008 the failed outbox rows
// were counted by reading the whole outbox.
TEST_F(ProjectMigrationsTest, MetricsDepthsAreCountedFromIndexes) {
  apply_until();
  pqxx::connection connection(url);
  pqxx::nontransaction tx(connection);
  tx.exec("SET enable_seqscan = off");  // a tiny table would otherwise rightly be scanned
  for (const std::string count : {"SELECT count(*) FROM inbox WHERE state = 'pending'",
                                  "SELECT count(*) FROM outbox WHERE state = 'pending'",
                                  "SELECT count(*) FROM outbox WHERE state = 'failed'"}) {
    std::string plan;
    for (const auto& row : tx.exec("EXPLAIN " + count)) plan += row[0].as<std::string>() + "\n";
    EXPECT_EQ(plan.find("Seq Scan"), std::string::npos) << count << "\n" << plan;
  }
}

// A process whose sessions prepared the turn's statements goes on when another one migrates
// a column those statements return: PostgreSQL refuses each such statement once per session
// ("cached plan must not change result type"), and the pool replaces the session. With
// three sessions and two attempts per transaction, a turn after the migration fails unless
// the first session found outdated takes the other idle ones with it.
TEST_F(ProjectMigrationsTest, ASessionOutdatedByAMigrationIsReplacedAndTheTurnGoesOn) {
  apply_until();
  st::StoreOptions options;
  options.database_url = url;
  options.pool_size = 3;
  options.max_attempts = 2;
  st::Store store(options);
  runtime::SystemClock clock;
  runtime::Executor executor(runtime::ExecutorServices{&clock, nullptr, nullptr});
  std::atomic<bool> hold{false};
  std::latch all_in_turns(3);
  st::TurnProcessorOptions turn_options;
  turn_options.before_commit = [&](int64_t) {
    if (hold) all_in_turns.arrive_and_wait();
  };
  st::TurnProcessor turns(store, executor, turn_options);
  World world = make_world(store, kAskFlow);
  const std::vector<std::string> contacts{"ana", "bia", "caio"};
  for (const auto& contact : contacts) {
    auto first = turns.accept_and_process(message(world, contact, "hi", contact + "-1"),
                                          st::Delivery::outbox);
    ASSERT_EQ(first.kind, st::TurnOutcome::Kind::processed) << first.error;
  }
  // Three turns at once, each on its own session, so that every session of the pool has
  // prepared the turn's statements.
  hold = true;
  std::vector<st::TurnOutcome> answers(contacts.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < contacts.size(); ++i) {
    threads.emplace_back([&, i] {
      answers[i] = turns.accept_and_process(message(world, contacts[i], "Ana", contacts[i] + "-2"),
                                            st::Delivery::outbox);
    });
  }
  for (auto& thread : threads) thread.join();
  hold = false;
  for (const auto& answer : answers) {
    ASSERT_EQ(answer.kind, st::TurnOutcome::Kind::processed) << answer.error;
  }

  write("9000_node_as_varchar.sql", "ALTER TABLE conversations ALTER COLUMN node TYPE varchar;");
  st::Migrator(*pool(), folder).migrate();
  auto after =
      turns.accept_and_process(message(world, "ana", "again", "ana-3"), st::Delivery::outbox);
  ASSERT_EQ(after.kind, st::TurnOutcome::Kind::processed) << after.error;
  EXPECT_EQ(value("SELECT count(*) FROM conversations WHERE status = 'waiting'"), "1");
}

}  // namespace
}  // namespace flowrt::store_tests
