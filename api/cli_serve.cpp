// flowrt serve: the product. PostgreSQL (a local cluster under the data folder unless
// --database-url), migrations, the plugins, the executor with its sandbox, turn processing
// and the background workers, and the HTTP API on top. SIGTERM/SIGINT shut it down
// gracefully (see HttpServer::shutdown): in-flight requests finish, then the workers finish
// their turn or send in progress; pending work stays in the database for the next start.
#include <filesystem>

#include "api/app/app.hpp"
#include "api/app/plugin_sender.hpp"
#include "api/app/serve_support.hpp"
#include "api/cli.hpp"
#include "api/config.hpp"
#include "api/server/operations.hpp"
#include "api/server/server.hpp"
#include "api/server/signals.hpp"
#include "runtime/curl_http_client.hpp"
#include "runtime/scripting.hpp"
#include "runtime/store/local_postgres.hpp"
#include "runtime/store/workers.hpp"

namespace flowrt::api {
namespace {

namespace store = runtime::store;

constexpr const char* kServeUsage = R"(usage: flowrt serve [options]

Runs the HTTP API, the inbox/outbox/timer workers and, unless --database-url is given, a
PostgreSQL cluster of its own under DATA_DIR/postgres. Stops cleanly on SIGTERM or Ctrl-C.

  --listen HOST:PORT         default 127.0.0.1:8080 (port 0: any free port)
  --database-url URL         an existing PostgreSQL (libpq URL)
  --data-dir DIR             default .flowrt
  --plugins DIR              provider plugins (default: the bundled ones)
  --threads N, --workers N   HTTP threads, worker threads
  --config FILE              settings as a JSON object
  --no-migrate               refuse to start on an old schema instead of migrating
  --allow-private-network    let api_call and providers reach private addresses
  --demo FLOWS_DIR           seed a demo tenant with these flows and a webchat channel

Every setting, its FLOWRT_* environment variable and its default: docs/operations.md.
)";

void log_event(const LogSink& log, std::string_view event, const Json& fields = Json::object(),
               std::string_view level = "info") {
  log(format_event_log(level, event, fields));
}

// The README's demo: the curl lines that talk to the demo tenant's webchat channel.
void print_demo(std::ostream& out, const DemoTenant& demo, const std::string& base_url) {
  std::string webhook = base_url + "/v1/webhooks/" + demo.channel_id;
  out << "\nDemo tenant \"" << demo.tenant_id << "\" ready; published: ";
  for (size_t i = 0; i < demo.published.size(); ++i) out << (i ? ", " : "") << demo.published[i];
  out << "\nIts webchat channel runs \"" << demo.flow_id << "\". Talk to it:\n\n"
      << "  curl -s " << webhook << " -H 'Content-Type: application/json' \\\n"
      << "       -d '{\"user\": \"alice\", \"name\": \"Alice\", \"text\": \"hi\"}'\n\n"
      << "Then answer its questions the same way. As the agency (admin key of the tenant):\n\n"
      << "  export FLOWRT_TOKEN=" << demo.token << "\n"
      << "  curl -s '" << base_url << "/v1/conversations?status=handoff'"
      << " -H \"Authorization: Bearer $FLOWRT_TOKEN\"\n\n"
      << "docs/api.md walks through the rest (agent replies, resume, publishing flows).\n"
      << std::endl;
}

std::string default_demo_flow(const std::filesystem::path& folder) {
  if (std::filesystem::exists(folder / "lead-qualification.json")) return "lead-qualification";
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    std::string name = entry.path().filename().string();
    if (entry.path().extension() == ".json" && !name.ends_with(".test.json")) {
      return entry.path().stem().string();
    }
  }
  throw std::invalid_argument("--demo: no flow files in " + folder.string());
}

}  // namespace

int serve_command(const Args& given, std::ostream& out, std::ostream& err) {
  // First, before any thread exists, so that every thread inherits the blocked mask.
  TerminationSignals signals;
  Args args = given;
  if (take_flag(args, "--help") || take_flag(args, "-h")) {
    out << kServeUsage;
    return 0;
  }
  std::string demo_folder;
  bool demo = take_option(args, "--demo", demo_folder);
  ServerConfig config = load_server_config(args);
  if (!args.empty()) {
    err << "flowrt serve: unknown argument \"" << args.front() << "\" (see docs/operations.md)\n";
    return 2;
  }
  ServerOptions server_options;
  parse_listen_address(config.listen, server_options);
  server_options.threads = config.threads;
  server_options.max_body_bytes = config.max_body_bytes;
  LogSink log = stderr_log_sink();

  std::unique_ptr<store::LocalPostgres> local_postgres;
  std::string database_url = config.database_url;
  if (database_url.empty()) {
    store::LocalPostgresOptions options;
    options.folder = std::filesystem::absolute(config.data_dir) / "postgres";
    local_postgres = std::make_unique<store::LocalPostgres>(options);
    local_postgres->start();
    database_url = local_postgres->url();
    log_event(log, "local_postgres", {{"folder", options.folder.string()}});
  }

  store::StoreOptions store_options;
  store_options.database_url = database_url;
  // Each HTTP thread and worker thread holds at most one connection at a time.
  store_options.pool_size = std::max(config.db_pool_size, config.threads + 2 * config.workers + 2);
  store_options.migrations_folder = FLOWRT_SOURCE_MIGRATIONS_DIR;
  store::Store store(store_options);
  if (config.migrate_on_start) {
    for (const auto& name : store.migrate()) log_event(log, "migration_applied", {{"name", name}});
  } else if (!store.migration_status().current()) {
    err << "flowrt serve: the database schema is not current; run `flowrt migrate` or drop "
           "--no-migrate\n";
    return 2;
  }

  std::filesystem::path plugin_folder = config.plugins_dir.empty()
                                            ? runtime::plugin_host::bundled_plugin_directory()
                                            : std::filesystem::path(config.plugins_dir);
  runtime::plugin_host::PluginHostOptions plugin_options;
  plugin_options.directory = plugin_folder;
  auto plugins = runtime::plugin_host::PluginRegistry::load(plugin_options);
  for (const auto& info : plugins.providers()) {
    log_event(log, "provider_loaded", {{"name", info.name}, {"version", info.version}});
  }
  for (const auto& failure : plugins.failures()) {
    log_event(log, "plugin_refused", {{"path", failure.path.string()}, {"reason", failure.reason}},
              "warning");
  }

  MetricsRegistry metrics;
  TurnMetrics turn_metrics(metrics);
  CounterFamily& plugin_errors = metrics.counter(
      "flowrt_plugin_errors_total", "Provider plugin calls that failed on the plugin's side.",
      {"provider", "operation"});
  runtime::SystemClock clock;
  runtime::CurlHttpClient http(runtime::NetworkPolicy{config.allow_private_network});
  sandbox::SandboxPool sandboxes;
  runtime::ScriptRunner scripts(sandboxes, config.script_limits);
  runtime::Executor executor(runtime::ExecutorServices{&clock, &http, &scripts, &turn_metrics});
  store::TurnProcessor turns(store, executor);
  PluginSender sender(store, plugins, http, clock, &plugin_errors);

  store::WorkerOptions worker_options;
  worker_options.inbox_threads = config.workers;
  worker_options.outbox_threads = config.workers;
  worker_options.dispatcher.give_up_after = config.outbox_give_up_after;
  store::BackgroundWorkers workers(turns, &sender, clock, worker_options);

  auto depth = [&store](int64_t store::Store::Depths::*member) {
    return [&store, member] { return static_cast<double>(store.depths().*member); };
  };
  metrics.gauge_callback("flowrt_inbox_pending", "Inbound events stored and not yet processed.",
                         depth(&store::Store::Depths::inbox_pending));
  metrics.gauge_callback("flowrt_outbox_depth", "Outbound messages waiting to be delivered.",
                         depth(&store::Store::Depths::outbox_pending));
  metrics.gauge_callback("flowrt_outbox_failed", "Outbound messages that failed or were given up.",
                         depth(&store::Store::Depths::outbox_failed));
  metrics.gauge_callback("flowrt_timers_pending", "Question timeouts waiting to fire.",
                         depth(&store::Store::Depths::timers));

  RateLimiter limiter(RateLimit{config.rate_limit_per_s, config.rate_limit_burst});
  StoreKeyAuthenticator tenant_keys(store);
  OperatorTokenAuthenticator authenticator(config.admin_token, &tenant_keys);
  if (config.admin_token.empty()) {
    log_event(log, "operator_routes_disabled",
              {{"why", "FLOWRT_ADMIN_TOKEN is not set; /v1/tenants answers 401"}});
  }

  Router router;
  AppContext app{config,   store,         turns, plugins, clock, [&workers] { workers.notify(); },
                 &limiter, &plugin_errors};
  register_routes(router, app);
  HttpServer* running = nullptr;  // set before start(), read by the I/O threads after it
  OperationalRoutes operational;
  operational.metrics = &metrics;
  operational.readiness = [&store] {
    std::vector<ReadinessCheck> checks;
    bool reachable = store.ping();
    checks.push_back({"database", reachable, reachable ? "" : "PostgreSQL does not answer"});
    bool current = false;
    std::string why = "cannot read the migrations table";
    if (reachable) {
      try {
        current = store.migration_status().current();
        why = current ? "" : "migrations are pending; run `flowrt migrate`";
      } catch (const std::exception&) {
      }
    }
    checks.push_back({"migrations", current, why});
    return checks;
  };
  operational.draining = [&running] { return running != nullptr && running->draining(); };
  add_operational_routes(router, operational);

  std::optional<DemoTenant> demo_tenant;
  if (demo) {
    std::filesystem::path folder = demo_folder;
    demo_tenant = seed_demo_tenant(store, folder, default_demo_flow(folder),
                                   std::filesystem::path(config.data_dir) / "demo.json");
  }

  HttpServer server(server_options, std::move(router),
                    ServerServices{&authenticator, &limiter, &metrics, log, database_unavailable});
  running = &server;
  server.add_shutdown_hook([&workers, &log] {
    workers.stop();  // each worker finishes the turn or send in progress
    int sent = workers.flush_outbox(std::chrono::seconds(10));
    log_event(log, "outbox_flushed", {{"attempted", sent}});
  });
  workers.start();
  server.start();
  log_event(log, "listening",
            {{"url", server.base_url()}, {"threads", config.threads}, {"workers", config.workers}});
  out << "flowrt is serving on " << server.base_url() << std::endl;
  if (demo_tenant) print_demo(out, *demo_tenant, server.base_url());

  int signal = signals.wait();
  log_event(log, "shutting_down", {{"signal", signal == SIGTERM ? "SIGTERM" : "SIGINT"}});
  server.shutdown();
  log_event(log, "stopped");
  return 0;
}

}  // namespace flowrt::api
