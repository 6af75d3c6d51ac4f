// Tenant-scoped reads and writes for the HTTP API. Every statement names tenant_id.
#include "runtime/store/store.hpp"

#include <algorithm>

#include "runtime/store/util.hpp"

namespace flowrt::runtime::store {
namespace {

#define MS(column) "(extract(epoch from " column ") * 1000)::bigint"

int clamp_limit(int limit) {
  return std::clamp(limit, 1, 200);
}

Json json_of(const pqxx::field& field) {
  if (field.is_null()) return nullptr;
  return Json::parse(field.as<std::string>());
}

Tenant tenant_from(const pqxx::row& row) {
  return {row[0].as<std::string>(), row[1].as<std::string>(), json_of(row[2]),
          row[3].as<int64_t>()};
}

constexpr const char* kTenantColumns = "id, name, settings::text, " MS("created_at");

ApiKey key_from(const pqxx::row& row) {
  ApiKey key;
  key.tenant_id = row[0].as<std::string>();
  key.id = row[1].as<std::string>();
  key.name = row[2].as<std::string>();
  key.role = parse_role(row[3].as<std::string>()).value_or(Role::viewer);
  key.prefix = row[4].as<std::string>();
  key.created_at_ms = row[5].as<int64_t>();
  return key;
}

constexpr const char* kKeyColumns = "tenant_id, id, name, role, key_prefix, " MS("created_at");

FlowRecord flow_from(const pqxx::row& row) {
  FlowRecord flow;
  flow.tenant_id = row[0].as<std::string>();
  flow.id = row[1].as<std::string>();
  flow.name = row[2].as<std::string>();
  flow.draft = json_of(row[3]);
  flow.latest_version = row[4].as<int>();
  flow.created_at_ms = row[5].as<int64_t>();
  flow.updated_at_ms = row[6].as<int64_t>();
  return flow;
}

constexpr const char* kFlowColumns =
    "tenant_id, id, name, draft::text, latest_version, " MS("created_at") ", " MS("updated_at");

FlowVersion version_from(const pqxx::row& row) {
  FlowVersion version;
  version.tenant_id = row[0].as<std::string>();
  version.flow_id = row[1].as<std::string>();
  version.version = row[2].as<int>();
  version.document = json_of(row[3]);
  version.published_by = row[4].as<std::string>();
  version.published_at_ms = row[5].as<int64_t>();
  return version;
}

Channel channel_from(const pqxx::row& row) {
  Channel channel;
  channel.tenant_id = row[0].as<std::string>();
  channel.id = row[1].as<std::string>();
  channel.name = row[2].as<std::string>();
  channel.provider = row[3].as<std::string>();
  channel.config = json_of(row[4]);
  channel.secrets = json_of(row[5]);
  channel.flow_id = row[6].as<std::string>();
  channel.created_at_ms = row[7].as<int64_t>();
  channel.updated_at_ms = row[8].as<int64_t>();
  return channel;
}

constexpr const char* kChannelColumns =
    "tenant_id, id, name, provider, config::text, secrets::text, flow_id, " MS(
        "created_at") ", " MS("updated_at");

ConversationRecord conversation_from(const pqxx::row& row) {
  ConversationRecord c;
  c.tenant_id = row[0].as<std::string>();
  c.id = row[1].as<std::string>();
  c.channel_id = row[2].as<std::string>();
  c.contact = {row[3].as<std::string>(), row[4].as<std::string>(), row[5].as<std::string>()};
  c.state.flow_id = row[6].as<std::string>();
  c.state.flow_version = row[7].as<int>();
  c.state.status = parse_status(row[8].as<std::string>()).value_or(Status::failed);
  c.state.node = row[9].as<std::string>();
  c.state.vars = json_of(row[10]);
  c.state.attempts = row[11].as<int>();
  c.state.wait_seq = static_cast<uint64_t>(row[12].as<int64_t>());
  c.state.handoff_queue = row[13].as<std::string>();
  c.state.handoff_note = row[14].as<std::string>();
  c.state.error = row[15].as<std::string>();
  c.turns = row[16].as<int64_t>();
  c.created_at_ms = row[17].as<int64_t>();
  c.updated_at_ms = row[18].as<int64_t>();
  c.ended_at_ms = row[19].is_null() ? 0 : row[19].as<int64_t>();
  return c;
}

constexpr const char* kConversationSelect =
    "SELECT v.tenant_id, v.id, v.channel_id, k.external_id, k.name, k.phone, v.flow_id, "
    "v.flow_version, v.status, v.node, v.vars::text, v.attempts, v.wait_seq, v.handoff_queue, "
    "v.handoff_note, v.error, v.turns, " MS("v.created_at") ", " MS("v.updated_at") ", " MS(
        "v.ended_at") ", v.seq "
    "FROM conversations v JOIN contacts k ON k.tenant_id = v.tenant_id AND k.id = v.contact_id ";

// Text cursors (ids) order lists by id; "" is before every id.
template <class T, class Key>
Page<T> make_page(std::vector<T> items, int limit, Key key) {
  Page<T> page;
  if (static_cast<int>(items.size()) > limit) {
    items.resize(limit);
    page.next_cursor = key(items.back());
  }
  page.items = std::move(items);
  return page;
}

int64_t numeric_cursor(const std::string& cursor, int64_t fallback) {
  if (cursor.empty()) return fallback;
  try {
    size_t used = 0;
    int64_t value = std::stoll(cursor, &used);
    if (used == cursor.size()) return value;
  } catch (...) {
  }
  throw StoreError(StoreError::Code::bad_cursor, "the cursor " + cursor + " is not valid");
}

NewApiKey insert_key(pqxx::transaction_base& tx, const std::string& tenant_id, Role role,
                     const std::string& name) {
  NewApiKey created;
  created.secret = random_token("frt_", 24);
  std::string id = random_token("key_", 8);
  auto rows = tx.exec_params(std::string("INSERT INTO api_keys (tenant_id, id, name, role, "
                                         "key_hash, key_prefix) VALUES ($1, $2, $3, $4, $5, $6) "
                                         "RETURNING ") +
                                 kKeyColumns,
                             tenant_id, id, name, std::string(to_string(role)),
                             sha256_hex(created.secret), created.secret.substr(0, 8));
  created.key = key_from(rows[0]);
  return created;
}

}  // namespace

Store::Store(StoreOptions options)
    : options_(std::move(options)),
      pool_(std::make_unique<ConnectionPool>(
          PoolOptions{options_.database_url, options_.pool_size, options_.max_attempts})) {}

Store::~Store() = default;

std::vector<std::string> Store::migrate() {
  return Migrator(*pool_, options_.migrations_folder).migrate();
}

MigrationStatus Store::migration_status() {
  return Migrator(*pool_, options_.migrations_folder).status();
}

bool Store::ping() {
  try {
    return pool_->autocommit(
        [](pqxx::nontransaction& tx) { return tx.exec("SELECT 1")[0][0].as<int>() == 1; });
  } catch (const std::exception&) {
    return false;
  }
}

// --- tenants ------------------------------------------------------------------------------

std::pair<Tenant, NewApiKey> Store::create_tenant(const std::string& name, std::string id) {
  if (id.empty()) id = random_token("ten_", 8);
  try {
    return pool_->transact([&](pqxx::work& tx) {
      auto rows = tx.exec_params(
          std::string("INSERT INTO tenants (id, name) VALUES ($1, $2) RETURNING ") + kTenantColumns,
          id, name);
      Tenant tenant = tenant_from(rows[0]);
      NewApiKey key = insert_key(tx, tenant.id, Role::admin, "first admin key");
      return std::make_pair(tenant, key);
    });
  } catch (const pqxx::unique_violation&) {
    throw StoreError(StoreError::Code::conflict, "a tenant with id " + id + " already exists");
  }
}

std::optional<Tenant> Store::get_tenant(const std::string& tenant_id) {
  return pool_->transact([&](pqxx::work& tx) -> std::optional<Tenant> {
    auto rows = tx.exec_params(
        std::string("SELECT ") + kTenantColumns + " FROM tenants WHERE id = $1", tenant_id);
    if (rows.empty()) return std::nullopt;
    return tenant_from(rows[0]);
  });
}

Page<Tenant> Store::list_tenants(const PageRequest& page) {
  int limit = clamp_limit(page.limit);
  return pool_->transact([&](pqxx::work& tx) {
    std::vector<Tenant> items;
    for (const auto& row : tx.exec_params(std::string("SELECT ") + kTenantColumns +
                                              " FROM tenants WHERE id > $1 ORDER BY id LIMIT $2",
                                          page.cursor, limit + 1)) {
      items.push_back(tenant_from(row));
    }
    return make_page(std::move(items), limit, [](const Tenant& t) { return t.id; });
  });
}

bool Store::delete_tenant(const std::string& tenant_id) {
  return pool_->transact([&](pqxx::work& tx) {
    // Channels reference flows without cascading from them; both go with the tenant. The
    // tables turns append to have no foreign keys (migration 0004), so nothing cascades there.
    for (const char* table : {"events", "outbox", "inbox", "timers", "channels"}) {
      tx.exec_params(std::string("DELETE FROM ") + table + " WHERE tenant_id = $1", tenant_id);
    }
    tx.exec_params("DELETE FROM conversations WHERE tenant_id = $1", tenant_id);
    return tx.exec_params("DELETE FROM tenants WHERE id = $1 RETURNING 1", tenant_id).size() == 1;
  });
}

// --- keys -----------------------------------------------------------------------------------

NewApiKey Store::create_key(const std::string& tenant_id, Role role, const std::string& name) {
  try {
    return pool_->transact([&](pqxx::work& tx) { return insert_key(tx, tenant_id, role, name); });
  } catch (const pqxx::foreign_key_violation&) {
    throw StoreError(StoreError::Code::not_found, "tenant " + tenant_id + " does not exist");
  }
}

Page<ApiKey> Store::list_keys(const std::string& tenant_id, const PageRequest& page) {
  int limit = clamp_limit(page.limit);
  return pool_->transact([&](pqxx::work& tx) {
    std::vector<ApiKey> items;
    for (const auto& row : tx.exec_params(std::string("SELECT ") + kKeyColumns +
                                              " FROM api_keys WHERE tenant_id = $1 AND id > $2 "
                                              "ORDER BY tenant_id, id LIMIT $3",
                                          tenant_id, page.cursor, limit + 1)) {
      items.push_back(key_from(row));
    }
    return make_page(std::move(items), limit, [](const ApiKey& k) { return k.id; });
  });
}

bool Store::delete_key(const std::string& tenant_id, const std::string& key_id) {
  return pool_->transact([&](pqxx::work& tx) {
    return tx.exec_params("DELETE FROM api_keys WHERE tenant_id = $1 AND id = $2 RETURNING 1",
                          tenant_id, key_id)
               .size() == 1;
  });
}

std::optional<ApiKey> Store::authenticate(const std::string& bearer_token) {
  if (bearer_token.empty()) return std::nullopt;
  std::string hash = sha256_hex(bearer_token);
  return pool_->transact([&](pqxx::work& tx) -> std::optional<ApiKey> {
    auto rows = tx.exec_params(
        std::string("SELECT ") + kKeyColumns + " FROM api_keys WHERE key_hash = $1", hash);
    if (rows.empty()) return std::nullopt;
    return key_from(rows[0]);
  });
}

// --- secrets --------------------------------------------------------------------------------

void Store::put_secret(const std::string& tenant_id, const std::string& name,
                       const std::string& value) {
  try {
    pool_->transact([&](pqxx::work& tx) {
      tx.exec_params(
          "INSERT INTO secrets (tenant_id, name, value) VALUES ($1, $2, $3) "
          "ON CONFLICT (tenant_id, name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
          tenant_id, name, value);
    });
  } catch (const pqxx::foreign_key_violation&) {
    throw StoreError(StoreError::Code::not_found, "tenant " + tenant_id + " does not exist");
  }
}

bool Store::delete_secret(const std::string& tenant_id, const std::string& name) {
  return pool_->transact([&](pqxx::work& tx) {
    return tx.exec_params("DELETE FROM secrets WHERE tenant_id = $1 AND name = $2 RETURNING 1",
                          tenant_id, name)
               .size() == 1;
  });
}

std::vector<std::string> Store::list_secret_names(const std::string& tenant_id) {
  return pool_->transact([&](pqxx::work& tx) {
    std::vector<std::string> names;
    for (const auto& row : tx.exec_params(
             "SELECT name FROM secrets WHERE tenant_id = $1 ORDER BY tenant_id, name", tenant_id)) {
      names.push_back(row[0].as<std::string>());
    }
    return names;
  });
}

bool Store::secret_exists(const std::string& tenant_id, const std::string& name) {
  return pool_->transact([&](pqxx::work& tx) {
    return !tx.exec_params("SELECT 1 FROM secrets WHERE tenant_id = $1 AND name = $2", tenant_id,
                           name)
                .empty();
  });
}

// --- flows ----------------------------------------------------------------------------------

FlowRecord Store::create_flow(const std::string& tenant_id, const std::string& flow_id,
                              const std::string& name, const Json& draft) {
  try {
    return pool_->transact([&](pqxx::work& tx) {
      // A soft-deleted flow with the same id comes back with the new draft; its version
      // numbers continue.
      auto rows = tx.exec_params(
          std::string("INSERT INTO flows AS f (tenant_id, id, name, draft) "
                      "VALUES ($1, $2, $3, $4::jsonb) "
                      "ON CONFLICT (tenant_id, id) DO UPDATE SET name = EXCLUDED.name, "
                      "  draft = EXCLUDED.draft, deleted_at = NULL, updated_at = now() "
                      "  WHERE f.deleted_at IS NOT NULL "
                      "RETURNING ") +
              kFlowColumns,
          tenant_id, flow_id, name, draft.dump());
      if (rows.empty()) {
        throw StoreError(StoreError::Code::conflict, "flow " + flow_id + " already exists");
      }
      return flow_from(rows[0]);
    });
  } catch (const pqxx::foreign_key_violation&) {
    throw StoreError(StoreError::Code::not_found, "tenant " + tenant_id + " does not exist");
  }
}

std::optional<FlowRecord> Store::get_flow(const std::string& tenant_id,
                                          const std::string& flow_id) {
  return pool_->transact([&](pqxx::work& tx) -> std::optional<FlowRecord> {
    auto rows = tx.exec_params(std::string("SELECT ") + kFlowColumns +
                                   " FROM flows WHERE tenant_id = $1 AND id = $2 AND "
                                   "deleted_at IS NULL",
                               tenant_id, flow_id);
    if (rows.empty()) return std::nullopt;
    return flow_from(rows[0]);
  });
}

Page<FlowRecord> Store::list_flows(const std::string& tenant_id, const PageRequest& page) {
  int limit = clamp_limit(page.limit);
  return pool_->transact([&](pqxx::work& tx) {
    std::vector<FlowRecord> items;
    for (const auto& row : tx.exec_params(std::string("SELECT ") + kFlowColumns +
                                              " FROM flows WHERE tenant_id = $1 AND id > $2 "
                                              "AND deleted_at IS NULL ORDER BY tenant_id, id "
                                              "LIMIT $3",
                                          tenant_id, page.cursor, limit + 1)) {
      items.push_back(flow_from(row));
    }
    return make_page(std::move(items), limit, [](const FlowRecord& f) { return f.id; });
  });
}

FlowRecord Store::update_flow(const std::string& tenant_id, const std::string& flow_id,
                              const std::string& name, const Json& draft) {
  return pool_->transact([&](pqxx::work& tx) {
    auto rows = tx.exec_params(
        std::string("UPDATE flows SET name = $3, draft = $4::jsonb, updated_at = now() "
                    "WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING ") +
            kFlowColumns,
        tenant_id, flow_id, name, draft.dump());
    if (rows.empty()) {
      throw StoreError(StoreError::Code::not_found, "flow " + flow_id + " does not exist");
    }
    return flow_from(rows[0]);
  });
}

bool Store::delete_flow(const std::string& tenant_id, const std::string& flow_id) {
  return pool_->transact([&](pqxx::work& tx) {
    auto bound = tx.exec_params(
        "SELECT id FROM channels WHERE tenant_id = $1 AND flow_id = $2 ORDER BY id LIMIT 1",
        tenant_id, flow_id);
    auto exists = tx.exec_params(
        "SELECT 1 FROM flows WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE",
        tenant_id, flow_id);
    if (exists.empty()) return false;
    if (!bound.empty()) {
      throw StoreError(StoreError::Code::conflict, "flow " + flow_id + " is used by channel " +
                                                       bound[0][0].as<std::string>() +
                                                       "; bind the channel to another flow first");
    }
    tx.exec_params("UPDATE flows SET deleted_at = now() WHERE tenant_id = $1 AND id = $2",
                   tenant_id, flow_id);
    return true;
  });
}

FlowVersion Store::publish_flow(const std::string& tenant_id, const std::string& flow_id,
                                const std::string& published_by) {
  return pool_->transact([&](pqxx::work& tx) {
    auto rows = tx.exec_params(
        "UPDATE flows SET latest_version = latest_version + 1, updated_at = now() "
        "WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL "
        "RETURNING latest_version, draft::text",
        tenant_id, flow_id);
    if (rows.empty()) {
      throw StoreError(StoreError::Code::not_found, "flow " + flow_id + " does not exist");
    }
    auto inserted = tx.exec_params(
        "INSERT INTO flow_versions (tenant_id, flow_id, version, document, published_by) "
        "VALUES ($1, $2, $3, $4::jsonb, $5) "
        "RETURNING tenant_id, flow_id, version, document::text, published_by, " MS("published_at"),
        tenant_id, flow_id, rows[0][0].as<int>(), rows[0][1].as<std::string>(), published_by);
    return version_from(inserted[0]);
  });
}

Page<FlowVersion> Store::list_versions(const std::string& tenant_id, const std::string& flow_id,
                                       const PageRequest& page) {
  int limit = clamp_limit(page.limit);
  int64_t after = numeric_cursor(page.cursor, 0);
  return pool_->transact([&](pqxx::work& tx) {
    std::vector<FlowVersion> items;
    for (const auto& row :
         tx.exec_params("SELECT tenant_id, flow_id, version, NULL, published_by, " MS(
                            "published_at") " FROM flow_versions WHERE tenant_id = $1 AND flow_id "
                                            "= $2 AND version > $3 "
                                            "ORDER BY tenant_id, flow_id, version LIMIT $4",
                        tenant_id, flow_id, after, limit + 1)) {
      items.push_back(version_from(row));
    }
    return make_page(std::move(items), limit,
                     [](const FlowVersion& v) { return std::to_string(v.version); });
  });
}

std::optional<FlowVersion> Store::get_version(const std::string& tenant_id,
                                              const std::string& flow_id, int version) {
  return pool_->transact([&](pqxx::work& tx) -> std::optional<FlowVersion> {
    auto rows = tx.exec_params(
        "SELECT tenant_id, flow_id, version, document::text, published_by, " MS("published_at")
        " FROM flow_versions WHERE tenant_id = $1 AND flow_id = $2 AND version = $3",
        tenant_id, flow_id, version);
    if (rows.empty()) return std::nullopt;
    return version_from(rows[0]);
  });
}

bool Store::flow_exists(const std::string& tenant_id, const std::string& flow_id) {
  return pool_->transact([&](pqxx::work& tx) {
    return !tx.exec_params(
                  "SELECT 1 FROM flows WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
                  tenant_id, flow_id)
                .empty();
  });
}

// --- channels -------------------------------------------------------------------------------

Channel Store::create_channel(Channel channel) {
  if (channel.id.empty()) channel.id = random_token("ch_", 8);
  try {
    return pool_->transact([&](pqxx::work& tx) {
      auto flow = tx.exec_params(
          "SELECT 1 FROM flows WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
          channel.tenant_id, channel.flow_id);
      if (flow.empty()) {
        throw StoreError(StoreError::Code::invalid, "flow " + channel.flow_id + " does not exist");
      }
      auto rows = tx.exec_params(
          std::string("INSERT INTO channels (tenant_id, id, name, provider, config, secrets, "
                      "flow_id) VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7) RETURNING ") +
              kChannelColumns,
          channel.tenant_id, channel.id, channel.name, channel.provider, channel.config.dump(),
          channel.secrets.dump(), channel.flow_id);
      return channel_from(rows[0]);
    });
  } catch (const pqxx::unique_violation&) {
    throw StoreError(StoreError::Code::conflict, "channel " + channel.id + " already exists");
  }
}

std::optional<Channel> Store::get_channel(const std::string& tenant_id,
                                          const std::string& channel_id) {
  return pool_->transact([&](pqxx::work& tx) -> std::optional<Channel> {
    auto rows = tx.exec_params(std::string("SELECT ") + kChannelColumns +
                                   " FROM channels WHERE tenant_id = $1 AND id = $2",
                               tenant_id, channel_id);
    if (rows.empty()) return std::nullopt;
    return channel_from(rows[0]);
  });
}

std::optional<Channel> Store::find_channel_for_webhook(const std::string& channel_id) {
  return pool_->transact([&](pqxx::work& tx) -> std::optional<Channel> {
    auto rows = tx.exec_params(
        std::string("SELECT ") + kChannelColumns + " FROM channels WHERE id = $1", channel_id);
    if (rows.empty()) return std::nullopt;
    return channel_from(rows[0]);
  });
}

Page<Channel> Store::list_channels(const std::string& tenant_id, const PageRequest& page) {
  int limit = clamp_limit(page.limit);
  return pool_->transact([&](pqxx::work& tx) {
    std::vector<Channel> items;
    for (const auto& row : tx.exec_params(std::string("SELECT ") + kChannelColumns +
                                              " FROM channels WHERE tenant_id = $1 AND id > $2 "
                                              "ORDER BY tenant_id, id LIMIT $3",
                                          tenant_id, page.cursor, limit + 1)) {
      items.push_back(channel_from(row));
    }
    return make_page(std::move(items), limit, [](const Channel& c) { return c.id; });
  });
}

Channel Store::update_channel(const Channel& channel) {
  return pool_->transact([&](pqxx::work& tx) {
    auto flow = tx.exec_params(
        "SELECT 1 FROM flows WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
        channel.tenant_id, channel.flow_id);
    if (flow.empty()) {
      throw StoreError(StoreError::Code::invalid, "flow " + channel.flow_id + " does not exist");
    }
    auto rows = tx.exec_params(
        std::string("UPDATE channels SET name = $3, config = $4::jsonb, secrets = $5::jsonb, "
                    "flow_id = $6, updated_at = now() WHERE tenant_id = $1 AND id = $2 "
                    "RETURNING ") +
            kChannelColumns,
        channel.tenant_id, channel.id, channel.name, channel.config.dump(), channel.secrets.dump(),
        channel.flow_id);
    if (rows.empty()) {
      throw StoreError(StoreError::Code::not_found, "channel " + channel.id + " does not exist");
    }
    return channel_from(rows[0]);
  });
}

bool Store::delete_channel(const std::string& tenant_id, const std::string& channel_id) {
  return pool_->transact([&](pqxx::work& tx) {
    return tx.exec_params("DELETE FROM channels WHERE tenant_id = $1 AND id = $2 RETURNING 1",
                          tenant_id, channel_id)
               .size() == 1;
  });
}

// --- conversations --------------------------------------------------------------------------

std::optional<ConversationRecord> Store::get_conversation(const std::string& tenant_id,
                                                          const std::string& conversation_id) {
  return pool_->transact([&](pqxx::work& tx) -> std::optional<ConversationRecord> {
    auto rows =
        tx.exec_params(std::string(kConversationSelect) + "WHERE v.tenant_id = $1 AND v.id = $2",
                       tenant_id, conversation_id);
    if (rows.empty()) return std::nullopt;
    return conversation_from(rows[0]);
  });
}

Page<ConversationRecord> Store::list_conversations(const std::string& tenant_id,
                                                   const ConversationFilter& filter,
                                                   const PageRequest& page) {
  int limit = clamp_limit(page.limit);
  int64_t before = numeric_cursor(page.cursor, INT64_MAX);
  return pool_->transact([&](pqxx::work& tx) {
    pqxx::result result;
    if (!filter.queue.empty()) {
      // A queue only has conversations in handoff.
      if (filter.status && *filter.status != Status::handoff) return Page<ConversationRecord>{};
      result = tx.exec_params(std::string(kConversationSelect) +
                                  "WHERE v.tenant_id = $1 AND v.status = 'handoff' AND "
                                  "v.handoff_queue = $2 AND v.seq < $3 ORDER BY v.seq DESC "
                                  "LIMIT $4",
                              tenant_id, filter.queue, before, limit + 1);
    } else if (filter.status) {
      result = tx.exec_params(std::string(kConversationSelect) +
                                  "WHERE v.tenant_id = $1 AND v.status = $2 AND v.seq < $3 "
                                  "ORDER BY v.seq DESC LIMIT $4",
                              tenant_id, std::string(to_string(*filter.status)), before, limit + 1);
    } else {
      result = tx.exec_params(std::string(kConversationSelect) +
                                  "WHERE v.tenant_id = $1 AND v.seq < $2 ORDER BY v.seq DESC "
                                  "LIMIT $3",
                              tenant_id, before, limit + 1);
    }
    Page<ConversationRecord> out;
    for (const auto& row : result) {
      if (static_cast<int>(out.items.size()) == limit) {
        out.next_cursor = std::to_string(result[limit - 1][20].as<int64_t>());
        break;
      }
      out.items.push_back(conversation_from(row));
    }
    return out;
  });
}

std::optional<Page<EventRecord>> Store::list_events(const std::string& tenant_id,
                                                    const std::string& conversation_id,
                                                    const PageRequest& page) {
  int limit = clamp_limit(page.limit);
  int64_t after = numeric_cursor(page.cursor, 0);
  return pool_->transact([&](pqxx::work& tx) -> std::optional<Page<EventRecord>> {
    auto exists = tx.exec_params("SELECT 1 FROM conversations WHERE tenant_id = $1 AND id = $2",
                                 tenant_id, conversation_id);
    if (exists.empty()) return std::nullopt;
    std::vector<EventRecord> items;
    // A row holds up to kEventsPerRow events, numbered from its id on: rows that far before
    // the cursor may still hold events after it.
    constexpr const char* kEventsAfter =
        "SELECT e.id + x.n - 1, e.conversation_id, x.value->>'type', (x.value->'data')::text, "
        "  COALESCE((x.value->>'at')::bigint, " MS("e.at") ") "
        "FROM events e, jsonb_array_elements(e.entries) WITH ORDINALITY AS x(value, n) "
        "WHERE e.tenant_id = $1 AND e.conversation_id = $2 "
        "  AND e.id > $3::bigint - $5::integer AND e.id + x.n - 1 > $3::bigint "
        "ORDER BY e.id, x.n LIMIT $4";
    for (const auto& row : tx.exec_params(kEventsAfter, tenant_id, conversation_id, after,
                                          limit + 1, kEventsPerRow)) {
      items.push_back({row[0].as<int64_t>(), row[1].as<std::string>(), row[2].as<std::string>(),
                       json_of(row[3]), row[4].as<int64_t>()});
    }
    return make_page(std::move(items), limit,
                     [](const EventRecord& e) { return std::to_string(e.id); });
  });
}

// --- idempotency ----------------------------------------------------------------------------

std::optional<IdempotentResponse> Store::claim_idempotency_key(const std::string& tenant_id,
                                                               const std::string& scope,
                                                               const std::string& key,
                                                               const std::string& request_hash) {
  return pool_->transact([&](pqxx::work& tx) -> std::optional<IdempotentResponse> {
    // Keys are kept for a day: an expired record of this key no longer counts, and now and
    // then every expired record goes (idempotency_keys_by_age makes that cheap).
    // A claim still running after five minutes belonged to a process that died mid-request
    // (a live request is long finished by then): it no longer blocks the key.
    tx.exec_params(
        "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND scope = $2 AND key = $3 "
        "AND (created_at < now() - interval '24 hours' "
        "     OR (status IS NULL AND created_at < now() - interval '5 minutes'))",
        tenant_id, scope, key);
    thread_local unsigned claims = 0;
    if (++claims % 64 == 0) {
      tx.exec("DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'");
    }
    auto claimed = tx.exec_params(
        "INSERT INTO idempotency_keys (tenant_id, scope, key, request_hash) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
        tenant_id, scope, key, request_hash);
    if (!claimed.empty()) return std::nullopt;
    auto rows = tx.exec_params(
        "SELECT request_hash, status, response::text FROM idempotency_keys "
        "WHERE tenant_id = $1 AND scope = $2 AND key = $3",
        tenant_id, scope, key);
    if (rows.empty()) {
      // Released between our insert attempt and the read: treat as still running.
      return IdempotentResponse{0, nullptr};
    }
    if (rows[0][0].as<std::string>() != request_hash) {
      throw StoreError(StoreError::Code::invalid,
                       "the Idempotency-Key " + key + " was used with a different request body");
    }
    if (rows[0][1].is_null()) return IdempotentResponse{0, nullptr};
    return IdempotentResponse{rows[0][1].as<int>(), json_of(rows[0][2])};
  });
}

void Store::finish_idempotent(const std::string& tenant_id, const std::string& scope,
                              const std::string& key, const IdempotentResponse& response) {
  pool_->transact([&](pqxx::work& tx) {
    tx.exec_params(
        "UPDATE idempotency_keys SET status = $4, response = $5::jsonb "
        "WHERE tenant_id = $1 AND scope = $2 AND key = $3",
        tenant_id, scope, key, response.status, response.body.dump());
  });
}

void Store::release_idempotency_key(const std::string& tenant_id, const std::string& scope,
                                    const std::string& key) {
  pool_->transact([&](pqxx::work& tx) {
    tx.exec_params(
        "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND scope = $2 AND key = $3 "
        "AND status IS NULL",
        tenant_id, scope, key);
  });
}

// --- audit ------------------------------------------------------------------------------------

void Store::audit(const AuditEntry& entry) {
  pool_->transact([&](pqxx::work& tx) {
    tx.exec_params(
        "INSERT INTO audit_log (tenant_id, actor, action, resource_type, resource_id, before, "
        "after, request_id) VALUES (NULLIF($1, ''), $2, $3, $4, $5, NULLIF($6, '')::jsonb, "
        "NULLIF($7, '')::jsonb, $8)",
        entry.tenant_id, entry.actor, entry.action, entry.resource_type, entry.resource_id,
        entry.before ? entry.before->dump() : std::string(),
        entry.after ? entry.after->dump() : std::string(), entry.request_id);
  });
}

std::vector<Json> Store::take_held_messages(const std::string& tenant_id,
                                            const std::string& channel_id,
                                            const std::string& contact_external_id) {
  return pool_->transact([&](pqxx::work& tx) {
    auto rows = tx.exec_params(
        "WITH taken AS ("
        "  SELECT o.id FROM outbox o JOIN contacts c "
        "    ON c.tenant_id = o.tenant_id AND c.id = o.contact_id "
        "  WHERE o.tenant_id = $1 AND o.channel_id = $2 AND o.state = 'held' "
        "    AND c.channel_id = $2 AND c.external_id = $3 "
        "  FOR UPDATE OF o SKIP LOCKED) "
        "UPDATE outbox SET state = 'sent', sent_at = now() "
        "WHERE tenant_id = $1 AND id IN (SELECT id FROM taken) RETURNING id, payload::text",
        tenant_id, channel_id, contact_external_id);
    std::vector<std::pair<int64_t, Json>> taken;
    for (const auto& row : rows) {
      taken.emplace_back(row[0].as<int64_t>(), Json::parse(row[1].as<std::string>()));
    }
    std::sort(taken.begin(), taken.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<Json> out;
    for (auto& [id, payload] : taken) out.push_back(std::move(payload));
    return out;
  });
}

Store::Depths Store::depths() {
  return pool_->transact([&](pqxx::work& tx) {
    auto row = tx.exec(
        "SELECT (SELECT count(*) FROM inbox WHERE state = 'pending'), "
        "(SELECT count(*) FROM outbox WHERE state = 'pending'), "
        "(SELECT count(*) FROM outbox WHERE state = 'failed'), "
        "(SELECT count(*) FROM timers)")[0];
    return Depths{row[0].as<int64_t>(), row[1].as<int64_t>(), row[2].as<int64_t>(),
                  row[3].as<int64_t>()};
  });
}

}  // namespace flowrt::runtime::store
