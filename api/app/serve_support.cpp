#include "api/app/serve_support.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <pqxx/pqxx>

#include "runtime/flow.hpp"

namespace flowrt::api {

namespace store = runtime::store;
using Json = nlohmann::json;

std::optional<Problem> database_unavailable(const std::exception& error) {
  auto retry_shortly = [](const std::string& detail) {
    Problem problem = problems::unavailable(detail);
    problem.headers.set("Retry-After", "2");
    return problem;
  };
  if (dynamic_cast<const pqxx::in_doubt_error*>(&error)) {
    // The store never retries these itself; a webhook's redelivery is safe (a stored message
    // is recognised), other requests are the caller's to check.
    return retry_shortly(
        "The connection to the database was lost while committing: the request may or may "
        "not have taken effect.");
  }
  bool unavailable = dynamic_cast<const pqxx::broken_connection*>(&error) != nullptr;
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&error)) {
    // SQLSTATE classes 08 (connection), 53 (insufficient resources), 57P (shutting down).
    const std::string& state = sql->sqlstate();
    unavailable = state.starts_with("08") || state.starts_with("53") || state.starts_with("57P");
  }
  if (!unavailable) return std::nullopt;
  return retry_shortly("The database is not reachable right now; retry shortly.");
}

std::optional<Principal> StoreKeyAuthenticator::authenticate(std::string_view token) {
  if (!token.starts_with("frt_")) return std::nullopt;  // not a key: no database round trip
  auto key = store_.authenticate(std::string(token));
  if (!key) return std::nullopt;
  return Principal::tenant_key(key->tenant_id, key->id, key->role);
}

TurnMetrics::TurnMetrics(MetricsRegistry& registry)
    : turns_(registry.counter("flowrt_turns_total", "Turns run, by the status they ended in.",
                              {"status"})),
      nodes_(registry.counter("flowrt_node_executions_total", "Flow nodes executed.").get()),
      script_failures_(registry
                           .counter("flowrt_script_failures_total",
                                    "Lua scripts that failed (error, limit or bad result).")
                           .get()) {}

void TurnMetrics::on_turn(const runtime::TurnResult& result) {
  turns_.labels({std::string(runtime::to_string(result.state.status))}).inc();
  nodes_.inc(result.nodes_executed);
  for (const auto& event : result.journal) {
    if (event.type == "script_error") script_failures_.inc();
  }
}

namespace {

Json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::stringstream text;
  text << in.rdbuf();
  Json value = Json::parse(text.str(), nullptr, false);
  if (value.is_discarded()) throw std::runtime_error(path.string() + ": not valid JSON");
  return value;
}

std::string saved_token(const std::filesystem::path& credentials_file) {
  std::error_code ignored;
  if (!std::filesystem::exists(credentials_file, ignored)) return "";
  Json saved = Json::parse(std::ifstream(credentials_file), nullptr, false);
  return saved.is_object() ? saved.value("token", "") : "";
}

void save_credentials(const std::filesystem::path& file, const DemoTenant& demo) {
  std::filesystem::create_directories(file.parent_path());
  {
    std::ofstream out(file, std::ios::trunc);
    out << Json{{"tenant_id", demo.tenant_id}, {"token", demo.token}}.dump(2) << "\n";
    if (!out) throw std::runtime_error("cannot write " + file.string());
  }
  ::chmod(file.c_str(), 0600);
}

}  // namespace

DemoTenant seed_demo_tenant(store::Store& store, const std::filesystem::path& flows_folder,
                            const std::string& channel_flow,
                            const std::filesystem::path& credentials_file) {
  const std::string tenant_id = "demo";
  DemoTenant demo;
  demo.tenant_id = tenant_id;
  demo.flow_id = channel_flow;

  if (!store.get_tenant(tenant_id)) {
    demo.token = store.create_tenant("Demo agency", tenant_id).second.secret;
  } else {
    demo.token = saved_token(credentials_file);
    auto key = demo.token.empty() ? std::nullopt : store.authenticate(demo.token);
    if (!key || key->tenant_id != tenant_id || key->role != store::Role::admin) {
      demo.token = store.create_key(tenant_id, store::Role::admin, "demo").secret;
    }
  }
  save_credentials(credentials_file, demo);

  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(flows_folder)) {
    std::string name = entry.path().filename().string();
    if (entry.path().extension() == ".json" && !name.ends_with(".test.json")) {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());

  std::vector<std::pair<std::filesystem::path, Json>> documents;
  for (const auto& file : files) documents.emplace_back(file, read_json(file));
  runtime::ParseOptions options;
  options.flow_exists = [&](const std::string& id) {
    return std::any_of(documents.begin(), documents.end(),
                       [&](const auto& d) { return d.second.value("id", "") == id; });
  };
  for (const auto& [file, document] : documents) {
    runtime::ParseResult parsed = runtime::parse_flow(document, options);
    if (!parsed.flow) {
      std::string first;
      for (const auto& p : parsed.problems) {
        if (p.is_error()) {
          first = p.path + ": " + p.message;
          break;
        }
      }
      throw std::runtime_error(file.string() + " is not a valid flow: " + first);
    }
  }
  // Create or update every draft before publishing any, so that `jump` targets exist.
  for (const auto& [file, document] : documents) {
    std::string id = document["id"].get<std::string>();
    std::string name = document.value("name", "");
    auto existing = store.get_flow(tenant_id, id);
    if (!existing) {
      store.create_flow(tenant_id, id, name, document);
    } else if (existing->draft != document) {
      store.update_flow(tenant_id, id, name, document);
    }
  }
  for (const auto& [file, document] : documents) {
    std::string id = document["id"].get<std::string>();
    auto flow = store.get_flow(tenant_id, id);
    auto latest = flow->latest_version ? store.get_version(tenant_id, id, flow->latest_version)
                                       : std::nullopt;
    int version = latest ? latest->version : 0;
    if (!latest || latest->document != document) {
      version = store.publish_flow(tenant_id, id, "demo").version;
    }
    demo.published.push_back(id + " v" + std::to_string(version));
  }

  store::PageRequest page;
  page.limit = 200;
  for (const auto& channel : store.list_channels(tenant_id, page).items) {
    if (channel.provider == "webchat" && channel.flow_id == channel_flow) {
      demo.channel_id = channel.id;
    }
  }
  if (demo.channel_id.empty()) {
    store::Channel channel;
    channel.tenant_id = tenant_id;
    channel.name = "Demo web chat";
    channel.provider = "webchat";
    channel.flow_id = channel_flow;
    demo.channel_id = store.create_channel(channel).id;
  }
  return demo;
}

}  // namespace flowrt::api
