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

// 0006 changes the type of columns that already hold rows. A database at 0005 with a turn's
// conversation, inbox and outbox rows keeps them through it; the store that ran the turn goes
// on, though the statements every session of its pool prepared now return other types (as a
// process running while another one migrates); and the new types refuse values outside their
// sets as the CHECK constraints did.
TEST_F(MigrationsTest, StateDomainsKeepExistingRowsAndRefuseUnknownValues) {
  namespace fs = std::filesystem;
  std::vector<fs::path> project;
  for (const auto& entry : fs::directory_iterator(FLOWRT_SOURCE_MIGRATIONS_DIR)) {
    project.push_back(entry.path());
  }
  std::sort(project.begin(), project.end());
  auto domains = std::find_if(project.begin(), project.end(), [](const fs::path& file) {
    return file.filename() == "0006_state_domains.sql";
  });
  ASSERT_NE(domains, project.end());
  auto apply = [&](auto from, auto to) {
    for (auto file = from; file != to; ++file) fs::copy_file(*file, folder / file->filename());
    auto p = pool();
    st::Migrator(*p, folder).migrate();
  };
  apply(project.begin(), domains);

  // Three sessions, and two attempts per transaction: a turn after the migration fails
  // unless the first session found stale takes the other idle ones with it.
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

  apply(domains, project.end());
  pqxx::connection connection(url);
  auto value = [&](const std::string& sql) {
    pqxx::nontransaction tx(connection);
    return tx.exec(sql)[0][0].as<std::string>();
  };
  EXPECT_EQ(value("SELECT string_agg(status, ' ') FROM conversations"), "ended ended ended");
  EXPECT_EQ(value("SELECT count(*) FROM inbox WHERE kind = 'message' AND state = 'done'"), "6");
  EXPECT_EQ(value("SELECT count(*) FROM outbox WHERE state = 'pending'"), "6");
  EXPECT_EQ(value("SELECT pg_typeof(status)::text FROM conversations LIMIT 1"),
            "conversation_status");

  auto after =
      turns.accept_and_process(message(world, "ana", "again", "ana-3"), st::Delivery::outbox);
  ASSERT_EQ(after.kind, st::TurnOutcome::Kind::processed) << after.error;
  EXPECT_EQ(value("SELECT count(*) FROM conversations WHERE status = 'waiting'"), "1");

  for (const char* refused :
       {"UPDATE conversations SET status = 'paused'", "UPDATE inbox SET kind = 'poke'",
        "UPDATE inbox SET state = 'lost'", "UPDATE outbox SET state = 'queued'"}) {
    pqxx::work tx(connection);
    EXPECT_THROW(tx.exec(refused), pqxx::check_violation) << refused;
  }
}

}  // namespace
}  // namespace flowrt::store_tests
