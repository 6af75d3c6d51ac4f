// The conversation store: the one place in flowrt that speaks SQL.
//
// Store holds the connection pool and offers the tenant-scoped reads and writes the HTTP
// API needs (tenants, keys, secrets, flows and versions, channels, conversations, the
// journal, idempotency keys, the audit log). Every method that touches tenant data takes
// the tenant id and puts it in the WHERE clause of every statement, so a row of tenant B
// is invisible to a call made for tenant A: it answers "not found", exactly as if it did
// not exist. Every value travels as a statement parameter, never inside the SQL text.
//
// Turn processing (inbox -> executor -> state, journal, outbox, timers) lives in
// turns.hpp; delivery and timers in workers.hpp. All of them share this Store's pool.
//
// Errors: reads return std::nullopt / false for "not found"; writes throw StoreError with a
// code the API maps to a status (not_found 404, conflict 409, invalid 422). Database
// failures that survive the pool's retries propagate as pqxx exceptions (503).
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/conversation.hpp"
#include "runtime/role.hpp"
#include "runtime/store/migrator.hpp"
#include "runtime/store/pool.hpp"

namespace flowrt::runtime::store {

struct StoreOptions {
  std::string database_url;  // e.g. LocalPostgres::url() or --database-url
  int pool_size = 8;         // connections; give at least one per worker thread plus API threads
  int max_attempts = 5;      // of a transaction that hit a retryable error
  std::filesystem::path migrations_folder;  // for migrate() / migration_status()
};

class StoreError : public std::runtime_error {
 public:
  // bad_cursor: a PageRequest cursor this store did not issue (the API answers 400).
  enum class Code { not_found, conflict, invalid, bad_cursor };
  StoreError(Code code, const std::string& message) : std::runtime_error(message), code_(code) {}
  Code code() const { return code_; }

 private:
  Code code_;
};

// Times are Unix milliseconds.
struct Tenant {
  std::string id;
  std::string name;
  Json settings = Json::object();
  int64_t created_at_ms = 0;
};

using flowrt::parse_role;
using flowrt::Role;

struct ApiKey {
  std::string tenant_id;
  std::string id;
  std::string name;
  Role role = Role::viewer;
  std::string prefix;  // first characters of the key, safe to show
  int64_t created_at_ms = 0;
};

// A key as created: `secret` is the bearer token, returned this once and never stored.
struct NewApiKey {
  ApiKey key;
  std::string secret;
};

struct FlowRecord {
  std::string tenant_id;
  std::string id;
  std::string name;
  Json draft;
  int latest_version = 0;  // 0: never published
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
};

struct FlowVersion {
  std::string tenant_id;
  std::string flow_id;
  int version = 0;
  Json document;
  std::string published_by;
  int64_t published_at_ms = 0;
};

struct Channel {
  std::string tenant_id;
  std::string id;
  std::string name;
  std::string provider;
  Json config = Json::object();
  Json secrets = Json::object();
  std::string flow_id;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
};

struct ConversationRecord {
  std::string tenant_id;
  std::string id;
  std::string channel_id;  // "" for runs started without a channel
  Contact contact;         // contact.id is the channel's id for the person
  ConversationState state;
  int64_t turns = 0;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  int64_t ended_at_ms = 0;  // 0 while open
};

struct EventRecord {
  int64_t id = 0;  // grows with time within a conversation
  std::string conversation_id;
  std::string type;
  Json data = Json::object();
  int64_t at_ms = 0;
};

struct AuditEntry {
  std::string tenant_id;  // "" for operator actions outside a tenant
  std::string actor;      // "operator" or "key:<id>"
  std::string action;     // e.g. "flow.publish"
  std::string resource_type;
  std::string resource_id;
  std::optional<Json> before;
  std::optional<Json> after;
  std::string request_id;
};

// One page of a list. `next_cursor` is opaque; pass it back to get the following page.
template <class T>
struct Page {
  std::vector<T> items;
  std::optional<std::string> next_cursor;
};

struct PageRequest {
  int limit = 50;      // clamped to [1, 200]
  std::string cursor;  // "" for the first page
};

struct ConversationFilter {
  std::optional<Status> status;
  std::string queue;  // non-empty: only conversations in handoff to this queue
};

// The stored answer to an Idempotency-Key.
struct IdempotentResponse {
  int status = 0;
  Json body;
};

class Store {
 public:
  explicit Store(StoreOptions options);
  ~Store();

  ConnectionPool& pool() { return *pool_; }
  const StoreOptions& options() const { return options_; }

  // --- schema ---------------------------------------------------------------------------
  std::vector<std::string> migrate();  // see Migrator::migrate
  MigrationStatus migration_status();
  // True if the database answers a trivial query (for /readyz).
  bool ping();

  // --- tenants (operator) ---------------------------------------------------------------
  // Creates a tenant (id generated when empty) and its first admin key.
  std::pair<Tenant, NewApiKey> create_tenant(const std::string& name, std::string id = "");
  std::optional<Tenant> get_tenant(const std::string& tenant_id);
  Page<Tenant> list_tenants(const PageRequest& page);
  // Deletes the tenant and everything it owns. False if there was no such tenant.
  bool delete_tenant(const std::string& tenant_id);

  // --- API keys -------------------------------------------------------------------------
  NewApiKey create_key(const std::string& tenant_id, Role role, const std::string& name);
  Page<ApiKey> list_keys(const std::string& tenant_id, const PageRequest& page);
  bool delete_key(const std::string& tenant_id, const std::string& key_id);
  // Finds the key a bearer token belongs to (compares SHA-256 digests).
  std::optional<ApiKey> authenticate(const std::string& bearer_token);

  // --- secrets --------------------------------------------------------------------------
  void put_secret(const std::string& tenant_id, const std::string& name, const std::string& value);
  bool delete_secret(const std::string& tenant_id, const std::string& name);
  std::vector<std::string> list_secret_names(const std::string& tenant_id);
  bool secret_exists(const std::string& tenant_id, const std::string& name);

  // --- flows ----------------------------------------------------------------------------
  // The caller validates the document first. conflict if the id exists (and is not deleted).
  FlowRecord create_flow(const std::string& tenant_id, const std::string& flow_id,
                         const std::string& name, const Json& draft);
  std::optional<FlowRecord> get_flow(const std::string& tenant_id, const std::string& flow_id);
  Page<FlowRecord> list_flows(const std::string& tenant_id, const PageRequest& page);
  // Replaces the draft; not_found if absent.
  FlowRecord update_flow(const std::string& tenant_id, const std::string& flow_id,
                         const std::string& name, const Json& draft);
  // Soft delete: the flow disappears from lists and gets; its versions stay so that running
  // conversations finish. conflict while a channel is bound to it.
  bool delete_flow(const std::string& tenant_id, const std::string& flow_id);
  // Freezes the current draft as version latest+1.
  FlowVersion publish_flow(const std::string& tenant_id, const std::string& flow_id,
                           const std::string& published_by);
  Page<FlowVersion> list_versions(const std::string& tenant_id, const std::string& flow_id,
                                  const PageRequest& page);  // documents omitted (null)
  std::optional<FlowVersion> get_version(const std::string& tenant_id, const std::string& flow_id,
                                         int version);
  // True if the tenant has a (not deleted) flow with this id, for `jump` validation.
  bool flow_exists(const std::string& tenant_id, const std::string& flow_id);

  // --- channels -------------------------------------------------------------------------
  // not_found (as invalid) if the flow does not exist. `channel.id` generated when empty.
  Channel create_channel(Channel channel);
  std::optional<Channel> get_channel(const std::string& tenant_id, const std::string& channel_id);
  // Webhook routing: the channel by id alone, before the tenant is known.
  std::optional<Channel> find_channel_for_webhook(const std::string& channel_id);
  Page<Channel> list_channels(const std::string& tenant_id, const PageRequest& page);
  // Replaces name, config, secrets and flow_id with `channel`'s; not_found if absent.
  Channel update_channel(const Channel& channel);
  bool delete_channel(const std::string& tenant_id, const std::string& channel_id);

  // --- conversations and journal --------------------------------------------------------
  std::optional<ConversationRecord> get_conversation(const std::string& tenant_id,
                                                     const std::string& conversation_id);
  // Newest first.
  Page<ConversationRecord> list_conversations(const std::string& tenant_id,
                                              const ConversationFilter& filter,
                                              const PageRequest& page);
  // Oldest first. nullopt if the conversation does not exist for this tenant.
  std::optional<Page<EventRecord>> list_events(const std::string& tenant_id,
                                               const std::string& conversation_id,
                                               const PageRequest& page);

  // Takes the messages held for `contact_external_id` on the channel (SendResult::held),
  // oldest first, and marks them sent: each is returned by exactly one call.
  std::vector<Json> take_held_messages(const std::string& tenant_id, const std::string& channel_id,
                                       const std::string& contact_external_id);

  // --- idempotency ----------------------------------------------------------------------
  // Claims (tenant, scope, key) for a request whose body hashes to `request_hash`.
  //   nullopt            -> claimed: run the request, then call finish_idempotent.
  //   response.status 0  -> the first request with this key is still running (answer 409).
  //   otherwise          -> replay the stored response.
  // A different request_hash under the same key throws StoreError(invalid). Records expire
  // 24 hours after the claim; then the key may be used again. A claim left unfinished for
  // five minutes (its process died) is dropped, so the key does not answer 409 for a day.
  std::optional<IdempotentResponse> claim_idempotency_key(const std::string& tenant_id,
                                                          const std::string& scope,
                                                          const std::string& key,
                                                          const std::string& request_hash);
  void finish_idempotent(const std::string& tenant_id, const std::string& scope,
                         const std::string& key, const IdempotentResponse& response);
  // Forgets a claim whose request failed before producing a response.
  void release_idempotency_key(const std::string& tenant_id, const std::string& scope,
                               const std::string& key);

  // --- audit ----------------------------------------------------------------------------
  void audit(const AuditEntry& entry);

  // --- operational counts (metrics) -----------------------------------------------------
  struct Depths {
    int64_t inbox_pending = 0;
    int64_t outbox_pending = 0;
    int64_t outbox_failed = 0;
    int64_t timers = 0;
  };
  Depths depths();

 private:
  StoreOptions options_;
  std::unique_ptr<ConnectionPool> pool_;
};

}  // namespace flowrt::runtime::store
