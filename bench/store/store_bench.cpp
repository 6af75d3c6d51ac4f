// Durable turns per second through the store, next to pgbench on the same cluster.
//
//   store_bench [--seconds S] [--clients 1,8,32] [--threads T] [--repeat N] [--folder DIR]
//               [--database-url URL] [--pgbench no] [--own-sql yes]
//
// Without --database-url it starts a LocalPostgres (default, durable settings: fsync on,
// synchronous commit) in a temporary folder. For each client count it runs that many
// conversations (on as many threads, or on at most --threads), each sending messages through
// TurnProcessor::accept_and_process (inbox insert, contact lock, load state, executor turn,
// state + journal + outbox + timers write, commit), then runs pgbench with turn.sql (BEGIN;
// SELECT ... FOR UPDATE; UPDATE; INSERT; COMMIT) at the same client count on the same
// database, and prints both rates and their ratio. With --own-sql yes it also has pgbench run
// flowrt_turn.sql, the statements of the store's turn, to tell the SQL's cost from the client's,
// and the same without its journal row and outbox row: about the most a turn that keeps
// its message and state durably can do on this machine.
// --repeat N runs the store and pgbench N times each, alternately, and prints the median of
// each rate and the lowest and highest ratio of a store run to the pgbench run after it: on a
// small shared machine one run's rate moves by ±20 %, and alternating keeps a slow spell from
// landing on one side only.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "runtime/executor.hpp"
#include "runtime/store/local_postgres.hpp"
#include "runtime/store/turns.hpp"

using namespace flowrt::runtime;

namespace {

const char* kFlow = R"({"format":"flowrt.flow/1","id":"loop","start":"ask","nodes":[
  {"id":"ask","type":"question","text":"Say","save_as":"last","next":"ask"}]})";

// `clients` conversations, each sending its next message as soon as its last turn is done,
// taken by `threads` threads (each owns every threads-th conversation and serves its own in
// turn), as flowrt serve's HTTP threads take the requests of more conversations than threads.
// `round` names the conversations, `run` keeps the message ids of a repeated round new.
double store_rate(store::TurnProcessor& turns, const std::string& tenant,
                  const std::string& channel, int clients, int threads, int seconds, int round,
                  int run) {
  std::atomic<bool> stop{false};
  std::atomic<long> done{0};
  std::atomic<long> failed{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::vector<store::InboundMessage> conversations;
      for (int c = t; c < clients; c += threads) {
        store::InboundMessage m;
        m.tenant_id = tenant;
        m.channel_id = channel;
        m.contact.id = "bench-" + std::to_string(round) + "-" + std::to_string(c);
        conversations.push_back(std::move(m));
      }
      for (long i = 0; !stop; ++i) {
        for (auto& m : conversations) {
          m.event.text = "message " + std::to_string(i);
          m.provider_message_id =
              m.contact.id + "-" + std::to_string(run) + "-" + std::to_string(i);
          auto outcome = turns.accept_and_process(m, store::Delivery::outbox);
          if (outcome.kind == store::TurnOutcome::Kind::processed) {
            ++done;
          } else {
            ++failed;
          }
        }
      }
    });
  }
  auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  for (auto& t : pool) t.join();
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (failed) std::cerr << failed << " turns did not process\n";
  return done / elapsed;
}

// flowrt_turn.sql without the lines between its "-- journal and outbox: from here" and "-- end
// of journal and outbox" markers, written to a file pgbench (run as the cluster's user) can
// read.
std::string least_turn_script(const std::string& own_sql) {
  std::ifstream in(own_sql);
  std::string path = "/tmp/flowrt-least-turn-" + std::to_string(getpid()) + ".sql";
  std::ofstream out(path);
  bool skipping = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("-- journal and outbox: from here", 0) == 0) skipping = true;
    if (!skipping) out << line << "\n";
    if (line.rfind("-- end of journal and outbox", 0) == 0) skipping = false;
  }
  return path;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const auto n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

double pgbench_rate(const store::LocalPostgres* server, const std::string& database_url,
                    const std::string& script, int clients, int seconds,
                    const std::string& extra_args = "") {
  std::string out = "/tmp/flowrt-pgbench-" + std::to_string(getpid()) + ".txt";
  std::string args = "-n -f '" + script + "' -c " + std::to_string(clients) + " -j " +
                     std::to_string(std::min(clients, 2)) + " -T " + std::to_string(seconds) +
                     extra_args;
  int status;
  if (server) {
    status = server->run_client("pgbench", args + " flowrt > " + out + " 2>&1");
  } else {
    status = std::system(("/usr/lib/postgresql/15/bin/pgbench " + args + " '" + database_url +
                          "' > " + out + " 2>&1")
                             .c_str());
  }
  std::ifstream in(out);
  std::stringstream text;
  text << in.rdbuf();
  std::remove(out.c_str());
  auto at = text.str().find("tps = ");
  if (status != 0 || at == std::string::npos) {
    std::cerr << "pgbench failed:\n" << text.str();
    return 0;
  }
  return std::stod(text.str().substr(at + 6));
}

}  // namespace

int main(int argc, char** argv) {
  int seconds = 5;
  int max_threads = 0;  // 0: a thread per conversation
  int repeat = 1;
  std::vector<int> client_counts{1, 8, 32};
  std::string folder, url;
  bool with_pgbench = true;   // --pgbench no: only the store side, e.g. under a profiler
  bool with_own_sql = false;  // --own-sql yes: also pgbench running flowrt_turn.sql
  std::string script = std::string(FLOWRT_BENCH_STORE_DIR) + "/turn.sql";
  const std::string own_sql = std::string(FLOWRT_BENCH_STORE_DIR) + "/flowrt_turn.sql";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--seconds") {
      seconds = std::stoi(value);
    } else if (flag == "--folder") {
      folder = value;
    } else if (flag == "--database-url") {
      url = value;
    } else if (flag == "--threads") {
      max_threads = std::stoi(value);
    } else if (flag == "--repeat") {
      repeat = std::max(1, std::stoi(value));
    } else if (flag == "--own-sql") {
      with_own_sql = value == "yes";
    } else if (flag == "--pgbench") {
      with_pgbench = value != "no";
    } else if (flag == "--clients") {
      client_counts.clear();
      std::stringstream list(value);
      for (std::string item; std::getline(list, item, ',');)
        client_counts.push_back(std::stoi(item));
    } else {
      std::cerr << "unknown flag " << flag << "\n";
      return 2;
    }
  }
  std::unique_ptr<store::LocalPostgres> server;
  bool remove_folder = false;
  if (url.empty()) {
    if (folder.empty()) {
      char pattern[] = "/tmp/flowrt-bench-XXXXXX";
      folder = mkdtemp(pattern);
      remove_folder = true;
    }
    store::LocalPostgresOptions options;
    options.folder = folder;
    server = std::make_unique<store::LocalPostgres>(options);
    server->start();
    url = server->url();
  }
  int max_clients = *std::max_element(client_counts.begin(), client_counts.end());
  store::StoreOptions options;
  options.database_url = url;
  options.pool_size = max_clients + 2;
  options.migrations_folder = FLOWRT_SOURCE_MIGRATIONS_DIR;
  store::Store db(options);
  db.migrate();
  {
    pqxx::connection c(url);
    pqxx::work tx(c);
    tx.exec("DROP TABLE IF EXISTS bench_conversations, bench_journal");
    tx.exec(
        "CREATE TABLE bench_conversations (id int PRIMARY KEY, n bigint NOT NULL, "
        "state text NOT NULL)");
    tx.exec(
        "INSERT INTO bench_conversations SELECT g, 0, 'waiting' FROM generate_series(1, 1000) g");
    tx.exec(
        "CREATE TABLE bench_journal (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        "conversation int NOT NULL, data jsonb NOT NULL, at timestamptz DEFAULT now())");
    tx.commit();
  }
  auto tenant = db.create_tenant("bench").first.id;
  db.create_flow(tenant, "loop", "", Json::parse(kFlow));
  db.publish_flow(tenant, "loop", "bench");
  store::Channel channel;
  channel.tenant_id = tenant;
  channel.provider = "webhook";
  channel.flow_id = "loop";
  auto channel_id = db.create_channel(channel).id;

  SystemClock clock;
  Executor executor(ExecutorServices{&clock, nullptr, nullptr});
  store::TurnProcessor turns(db, executor);

  const std::string least_sql = with_own_sql ? least_turn_script(own_sql) : "";
  std::printf("%-8s %8s %14s %14s %8s", "clients", "threads", "store turns/s", "pgbench tps",
              "ratio");
  if (repeat > 1) std::printf(" %12s", "ratio range");
  if (with_own_sql) {
    std::printf(" %18s %8s %18s %8s", "pgbench flowrt SQL", "ratio", "pgbench least turn", "ratio");
  }
  std::printf("\n");
  for (int round = 0; round < static_cast<int>(client_counts.size()); ++round) {
    int clients = client_counts[round];
    int threads = max_threads > 0 ? std::min(clients, max_threads) : clients;
    std::vector<double> ours, theirs, same_sql, least, ratios;
    for (int run = 0; run < repeat; ++run) {
      ours.push_back(store_rate(turns, tenant, channel_id, clients, threads, seconds, round, run));
      theirs.push_back(with_pgbench ? pgbench_rate(server.get(), url, script, clients, seconds)
                                    : 0);
      if (theirs.back() > 0) ratios.push_back(ours.back() / theirs.back());
      if (with_own_sql) {
        // The same statements on this round's conversations, sent by pgbench instead; then
        // the least of them a durable turn needs.
        const std::string values = " -M prepared -D tenant=" + tenant +
                                   " -D channel=" + channel_id +
                                   " -D round=" + std::to_string(round);
        same_sql.push_back(pgbench_rate(server.get(), url, own_sql, clients, seconds, values));
        least.push_back(pgbench_rate(server.get(), url, least_sql, clients, seconds, values));
      }
    }
    const double reference = median(theirs);
    std::printf("%-8d %8d %14.0f %14.0f %8.2f", clients, threads, median(ours), reference,
                reference > 0 ? median(ours) / reference : 0.0);
    if (repeat > 1 && !ratios.empty()) {
      std::printf("  %5.2f-%4.2f", *std::min_element(ratios.begin(), ratios.end()),
                  *std::max_element(ratios.begin(), ratios.end()));
    }
    if (with_own_sql) {
      for (const auto* rates : {&same_sql, &least}) {
        std::printf(" %18.0f %8.2f", median(*rates),
                    reference > 0 ? median(*rates) / reference : 0.0);
      }
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  if (!least_sql.empty()) std::remove(least_sql.c_str());
  if (server) server->stop();
  if (remove_folder) std::filesystem::remove_all(folder);
  return 0;
}
