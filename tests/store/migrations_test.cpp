#include <fstream>
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

}  // namespace
}  // namespace flowrt::store_tests
