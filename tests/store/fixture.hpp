// Shared set-up of the store tests: the cluster (one per binary, started by main.cpp), a
// migrated database, and a tenant with a published flow and a channel per test.
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "runtime/executor.hpp"
#include "runtime/store/store.hpp"
#include "runtime/store/turns.hpp"
#include "tests/support/postgres_cluster.hpp"

namespace flowrt::store_tests {

using runtime::Json;
namespace st = runtime::store;

// Set by main.cpp before the tests run.
testing::PostgresCluster& cluster();
// The shared database, migrated once.
const std::string& database_url();

inline const char* kAskFlow = R"({"format":"flowrt.flow/1","id":"f","start":"ask","nodes":[
  {"id":"ask","type":"question","text":"Name?","save_as":"name","next":"bye"},
  {"id":"bye","type":"end","text":"Bye {{vars.name}}"}]})";

// Asks forever: every message after the first is an answer, and the question asks again.
inline const char* kLoopFlow = R"({"format":"flowrt.flow/1","id":"loop","start":"ask","nodes":[
  {"id":"ask","type":"question","text":"Say","save_as":"last","next":"ask"}]})";

inline const char* kTimeoutFlow = R"({"format":"flowrt.flow/1","id":"slow","start":"ask","nodes":[
  {"id":"ask","type":"question","text":"Name?","save_as":"name","timeout":{"after_s":1,"next":"late"},"next":"bye"},
  {"id":"late","type":"end","text":"Too late"},
  {"id":"bye","type":"end","text":"Bye"}]})";

struct World {
  std::string tenant;
  std::string flow;
  std::string channel;
};

// Creates a tenant, publishes `flow_text` and binds a channel to it.
inline World make_world(st::Store& store, const std::string& flow_text,
                        const std::string& provider = "webhook") {
  World world;
  Json flow = Json::parse(flow_text);
  world.tenant = store.create_tenant("test tenant").first.id;
  world.flow = flow["id"];
  store.create_flow(world.tenant, world.flow, "test flow", flow);
  store.publish_flow(world.tenant, world.flow, "test");
  st::Channel channel;
  channel.tenant_id = world.tenant;
  channel.provider = provider;
  channel.flow_id = world.flow;
  world.channel = store.create_channel(channel).id;
  return world;
}

inline st::InboundMessage message(const World& world, const std::string& contact,
                                  const std::string& text, const std::string& message_id = "") {
  st::InboundMessage m;
  m.tenant_id = world.tenant;
  m.channel_id = world.channel;
  m.provider_message_id = message_id;
  m.contact.id = contact;
  m.event.text = text;
  return m;
}

// A store, an executor and a turn processor over the shared database.
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    st::StoreOptions options;
    options.database_url = database_url();
    options.pool_size = 8;
    store = std::make_unique<st::Store>(options);
    executor =
        std::make_unique<runtime::Executor>(runtime::ExecutorServices{&clock, nullptr, nullptr});
    turns = std::make_unique<st::TurnProcessor>(*store, *executor);
  }

  // Runs a scalar query (tests only).
  int64_t scalar(const std::string& sql) {
    pqxx::connection connection(database_url());
    pqxx::nontransaction tx(connection);
    return tx.exec(sql)[0][0].as<int64_t>();
  }

  std::vector<st::EventRecord> events(const std::string& tenant, const std::string& conversation) {
    std::vector<st::EventRecord> all;
    st::PageRequest page;
    page.limit = 200;
    for (;;) {
      auto got = store->list_events(tenant, conversation, page);
      if (!got) return all;
      all.insert(all.end(), got->items.begin(), got->items.end());
      if (!got->next_cursor) return all;
      page.cursor = *got->next_cursor;
    }
  }

  std::vector<std::string> texts_of(const std::vector<st::EventRecord>& list,
                                    const std::string& type) {
    std::vector<std::string> out;
    for (const auto& e : list) {
      if (e.type == type) out.push_back(e.data.value("text", std::string()));
    }
    return out;
  }

  runtime::SystemClock clock;
  std::unique_ptr<st::Store> store;
  std::unique_ptr<runtime::Executor> executor;
  std::unique_ptr<st::TurnProcessor> turns;
};

// A child process running store_test_helper, with its standard output readable line by line.
class Helper {
 public:
  explicit Helper(std::vector<std::string> args) {
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    args.insert(args.begin(), STORE_TEST_HELPER);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, STORE_TEST_HELPER, &actions, nullptr, argv.data(), environ) != 0) {
      throw std::runtime_error("cannot start " STORE_TEST_HELPER);
    }
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    out_ = fds[0];
  }
  ~Helper() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(out_);
  }
  // The next line of output, or "" after `timeout_ms` or at end of output.
  std::string read_line(int timeout_ms) {
    std::string line;
    for (;;) {
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, timeout_ms) <= 0) return line;
      char c;
      if (read(out_, &c, 1) != 1) return line;
      if (c == '\n') return line;
      line += c;
    }
  }
  void kill_hard() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // Exit status of the helper (waits).
  int wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
};

}  // namespace flowrt::store_tests
