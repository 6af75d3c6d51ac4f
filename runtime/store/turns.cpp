// Turn processing over PostgreSQL. See turns.hpp for the design; this file is the SQL.
#include "runtime/store/turns.hpp"

#include <algorithm>

#include "runtime/store/pipeline.hpp"
#include "runtime/store/util.hpp"

namespace flowrt::runtime::store {
namespace {

// Something other than the database failed while running a turn (the executor or flow
// loading threw). The turn's transaction is rolled back and the inbox row's attempt counted.
class TurnError : public std::runtime_error {
 public:
  TurnError(int64_t inbox_id, const std::string& message)
      : std::runtime_error(message), inbox_id(inbox_id) {}
  int64_t inbox_id;
};

const char* kind_name(InboundEvent::Kind kind) {
  switch (kind) {
    case InboundEvent::Kind::message:
      return "message";
    case InboundEvent::Kind::timeout:
      return "timeout";
    case InboundEvent::Kind::resume:
      return "resume";
    case InboundEvent::Kind::start:
      return "start";
  }
  return "message";
}

InboundEvent::Kind parse_kind(const std::string& kind) {
  if (kind == "timeout") return InboundEvent::Kind::timeout;
  if (kind == "resume") return InboundEvent::Kind::resume;
  if (kind == "start") return InboundEvent::Kind::start;
  return InboundEvent::Kind::message;
}

// What the inbox row keeps of an InboundEvent and the contact's latest name and phone.
Json event_payload(const InboundEvent& event, const Contact& contact) {
  Json payload = Json::object();
  if (!event.text.empty()) payload["text"] = event.text;
  if (!event.data.is_null() && !(event.data.is_object() && event.data.empty())) {
    payload["data"] = event.data;
  }
  if (event.wait_seq) payload["wait_seq"] = event.wait_seq;
  if (!event.node.empty()) payload["node"] = event.node;
  if (!contact.name.empty()) payload["name"] = contact.name;
  if (!contact.phone.empty()) payload["phone"] = contact.phone;
  return payload;
}

InboundEvent event_from(const std::string& kind, const Json& payload) {
  InboundEvent event;
  event.kind = parse_kind(kind);
  event.text = payload.value("text", std::string());
  if (payload.contains("data")) event.data = payload["data"];
  event.wait_seq = payload.value("wait_seq", uint64_t{0});
  event.node = payload.value("node", std::string());
  return event;
}

// A message stored by another transaction while this turn ran (the inbox's unique key
// turned the turn's insert into nothing): the turn is rolled back and the message handled
// as the duplicate it is.
class StoredConcurrently : public std::runtime_error {
 public:
  StoredConcurrently() : std::runtime_error("the message was stored concurrently") {}
};

constexpr const char* kOpenStatuses = "('active', 'waiting', 'handoff')";

// Locks a contact ($1 tenant, $2 channel, $3 its id on the channel) until the transaction ends.
constexpr const char* kContactLock =
    "SELECT id FROM contacts WHERE tenant_id = $1 AND channel_id = $2 AND external_id = $3 "
    "FOR NO KEY UPDATE";

// Runs a statement of the turn's hot path as a prepared statement of the connection
// (prepared on first use; preparing again with the same text is a no-op in libpqxx).
template <class... Args>
pqxx::result prepared(pqxx::transaction_base& tx, const char* name, const std::string& sql,
                      Args&&... args) {
  tx.conn().prepare(name, sql);
  return tx.exec_prepared(name, std::forward<Args>(args)...);
}

// One statement assembled from parts: data-modifying CTEs, then a main statement. Parameters
// are named and numbered in order of first use. Each distinct text is prepared once per
// connection, under a name derived from the text itself.
class Statement {
 public:
  // "$n" for the parameter `name` (bound to `value` at its first use).
  std::string param(const std::string& name, std::string value) {
    auto [at, fresh] = numbers_.emplace(name, values_.size() + 1);
    if (fresh) values_.push_back(std::move(value));
    return "$" + std::to_string(at->second);
  }
  void part(const std::string& sql) {
    ctes_ +=
        (ctes_.empty() ? "WITH " : ", ") + ("p" + std::to_string(++parts_)) + " AS (" + sql + ")";
  }
  void finish(const std::string& sql) { main_ = sql; }
  std::string text() const { return ctes_ + " " + main_; }
  // The name the statement `text` is prepared under: one per distinct text.
  static std::string name(const std::string& prefix, const std::string& text) {
    return prefix + std::to_string(std::hash<std::string>()(text));
  }
  const std::vector<std::string>& values() const { return values_; }
  pqxx::result run(pqxx::transaction_base& tx, const std::string& prefix) const {
    const std::string text = this->text(), name = Statement::name(prefix, text);
    tx.conn().prepare(name, text);
    return tx.exec_prepared(name, pqxx::prepare::make_dynamic_params(values_));
  }

 private:
  std::map<std::string, size_t> numbers_;
  std::vector<std::string> values_;
  std::string ctes_, main_;
  int parts_ = 0;
};

// How a turn's write reaches the database: inside a transaction the caller commits
// (written_in), or pipelined with its COMMIT (process_new_message). Returns the inbox row's id.
using WriteTurn = std::function<int64_t(const Statement&)>;

}  // namespace

class TurnProcessor::Impl {
 public:
  Impl(Store& store, const Executor& executor, TurnProcessorOptions options)
      : store(store), executor(executor), options(std::move(options)) {}

  Store& store;
  const Executor& executor;
  TurnProcessorOptions options;

  // --- parsed flow versions, shared by all turns -----------------------------------------
  std::mutex cache_mutex;
  std::map<std::tuple<std::string, std::string, int>, std::shared_ptr<const Flow>> cache;

  // Returns the parsed version, or null with `error` set.
  std::shared_ptr<const Flow> load_flow(pqxx::transaction_base& tx, const std::string& tenant,
                                        const std::string& flow_id, int version,
                                        std::string& error) {
    auto key = std::make_tuple(tenant, flow_id, version);
    {
      std::lock_guard lock(cache_mutex);
      auto it = cache.find(key);
      if (it != cache.end()) return it->second;
    }
    auto rows = tx.exec_params(
        "SELECT document::text FROM flow_versions WHERE tenant_id = $1 AND flow_id = $2 AND "
        "version = $3",
        tenant, flow_id, version);
    if (rows.empty()) {
      error = "flow " + flow_id + " version " + std::to_string(version) + " does not exist";
      return nullptr;
    }
    ParseResult parsed = parse_flow(Json::parse(rows[0][0].as<std::string>()), options.parse);
    if (!parsed.flow) {
      error = "flow " + flow_id + " version " + std::to_string(version) + " cannot be loaded";
      for (const auto& problem : parsed.problems) {
        if (problem.is_error()) error += "; " + problem.path + ": " + problem.message;
      }
      return nullptr;
    }
    std::lock_guard lock(cache_mutex);
    if (cache.size() >= options.flow_cache_entries) cache.clear();
    cache.emplace(key, parsed.flow);
    return parsed.flow;
  }

  // Finds `jump` targets inside the turn's transaction.
  class Resolver : public FlowResolver {
   public:
    Resolver(Impl& impl, pqxx::transaction_base& tx, std::string tenant)
        : impl_(impl), tx_(tx), tenant_(std::move(tenant)) {}
    Found find(const std::string& flow_id) const override {
      auto rows = tx_.exec_params(
          "SELECT latest_version FROM flows WHERE tenant_id = $1 AND id = $2 AND deleted_at IS "
          "NULL",
          tenant_, flow_id);
      if (rows.empty() || rows[0][0].as<int>() == 0) return {};
      int version = rows[0][0].as<int>();
      std::string error;
      auto flow = impl_.load_flow(tx_, tenant_, flow_id, version, error);
      if (!flow) return {};
      return {flow, version};
    }

   private:
    Impl& impl_;
    pqxx::transaction_base& tx_;
    std::string tenant_;
  };

  // --- contacts --------------------------------------------------------------------------

  // Locks the contact's row until the transaction ends; nullopt if it does not exist.
  std::optional<int64_t> lock_existing_contact(pqxx::transaction_base& tx,
                                               const std::string& tenant,
                                               const std::string& channel,
                                               const std::string& external_id) {
    auto rows = prepared(tx, "contact_lock", kContactLock, tenant, channel, external_id);
    if (rows.empty()) return std::nullopt;
    return rows[0][0].as<int64_t>();
  }

  // Finds or creates the contact and locks its row until the transaction ends.
  int64_t lock_contact(pqxx::transaction_base& tx, const std::string& tenant,
                       const std::string& channel, const Contact& contact) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (auto id = lock_existing_contact(tx, tenant, channel, contact.id)) return *id;
      auto rows = prepared(tx, "contact_insert",
                           "INSERT INTO contacts (tenant_id, channel_id, external_id, name, phone) "
                           "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING id",
                           tenant, channel, contact.id, contact.name, contact.phone);
      if (!rows.empty()) return rows[0][0].as<int64_t>();  // our own insert locks it
    }
    throw std::runtime_error("could not create contact " + contact.id);
  }

  // --- one turn --------------------------------------------------------------------------

  // The event a turn runs on: a pending inbox row, or a message that is not stored yet and
  // that the turn's own write inserts, already done, so the common case writes it once.
  struct TurnEvent {
    int64_t inbox_id = 0;  // 0: not stored yet
    std::string channel_id;
    std::string provider_message_id;  // of a message not stored yet; "" for none
    std::string kind;
    std::string payload;          // inbox.payload as JSON text
    std::string conversation_id;  // the conversation it is aimed at; "" for the open one
  };

  // What a turn reads besides its event: the contact (c), its tenant (t) with its secrets,
  // and the conversation (v) the event goes to: the one `aimed_at` names if that is not
  // NULL, else the contact's open one (conversation_join). The reads of a turn select these columns
  // after their own ($1 is the tenant, $2 the contact); run_turn reads them by position.
  static std::string context_columns() {
    return "c.external_id, c.name, c.phone, t.name, "
           "COALESCE((SELECT jsonb_object_agg(s.name, s.value) FROM secrets s "
           "          WHERE s.tenant_id = $1), '{}'::jsonb)::text, "
           "v.id, v.channel_id, v.flow_id, v.flow_version, v.status, v.node, v.vars::text, "
           "v.attempts, v.wait_seq, v.handoff_queue, v.handoff_note, v.error, "
           "EXISTS (SELECT 1 FROM timers tm WHERE tm.tenant_id = $1 "
           "        AND tm.conversation_id = v.id) ";
  }
  // The columns of a conversation that context_columns() reads, as `alias`.x: only these,
  // as every column a statement carries costs it a little at each execution.
  static std::string conversation_columns(const std::string& alias) {
    std::string out;
    for (const char* column :
         {"id", "channel_id", "flow_id", "flow_version", "status", "node", "vars", "attempts",
          "wait_seq", "handoff_queue", "handoff_note", "error"}) {
      out += (out.empty() ? "" : ", ") + alias + "." + column;
    }
    return out;
  }
  // `aimed_at` "": only the contact's open conversation (a new message names none). `contact`:
  // the contact's id in the statement.
  static std::string conversation_join(const std::string& aimed_at,
                                       const std::string& contact = "$2") {
    const std::string open =
        "SELECT " + conversation_columns("v2") + " FROM conversations v2 WHERE " +
        (aimed_at.empty() ? "" : aimed_at + " IS NULL AND ") +
        "v2.tenant_id = $1 AND v2.contact_id = " + contact + " AND v2.status IN " + kOpenStatuses;
    if (aimed_at.empty()) return "LEFT JOIN LATERAL (" + open + " LIMIT 1) v ON true ";
    return "LEFT JOIN LATERAL ("
           "  (SELECT " +
           conversation_columns("v1") + " FROM conversations v1 WHERE " + aimed_at +
           " IS NOT NULL AND v1.tenant_id = $1 AND v1.id = " + aimed_at + ") UNION ALL (" + open +
           ") LIMIT 1) v ON true ";
  }

  // The common case of accept_and_process: the contact exists, it has no pending inbox row
  // to run first, and the message is new. Then the turn takes two round trips: BEGIN, the
  // contact's lock and the turn's read; then the write, inbox row included, and COMMIT.
  // nullopt otherwise, with nothing written.
  std::optional<TurnOutcome> process_new_message(const InboundMessage& message, const Json& payload,
                                                 Delivery delivery) {
    return store.pool().with_connection([&](ConnectionPool::Lease& lease)
                                            -> std::optional<TurnOutcome> {
      PipelinedTransaction transaction(lease);
      transaction.pipeline().prepared("contact_lock", kContactLock,
                                      {message.tenant_id, message.channel_id, message.contact.id});
      // A statement of its own after the lock: in READ COMMITTED it reads what the
      // previous holder of the lock committed. No conversation row lock is needed, as
      // process_one says. Its text is the same for every turn, so it is built once.
      static const std::string read =
          "SELECT EXISTS (SELECT 1 FROM inbox p WHERE p.tenant_id = $1 "
          "               AND p.contact_id = c.id AND p.state = 'pending'), "
          "       $4 <> '' AND EXISTS (SELECT 1 FROM inbox d WHERE d.tenant_id = $1 "
          "               AND d.channel_id = $2 AND d.provider_message_id = $4), " +
          context_columns() + "FROM contacts c JOIN tenants t ON t.id = c.tenant_id " +
          conversation_join("", "c.id") +
          "WHERE c.tenant_id = $1 AND c.channel_id = $2 AND c.external_id = $3";
      transaction.pipeline().prepared(
          "message_context", read,
          {message.tenant_id, message.channel_id, message.contact.id, message.provider_message_id});
      auto opening = transaction.run();  // BEGIN, the lock, the read
      const auto &lock = opening[1], &context = opening[2];
      if (lock.empty() || context[0][0].as<bool>() || context[0][1].as<bool>()) {
        return std::nullopt;  // a new contact, an earlier pending row, or a duplicate
      }
      const int64_t contact_id = lock[0][0].as<int64_t>();
      TurnEvent event;
      event.channel_id = message.channel_id;
      event.provider_message_id = message.provider_message_id;
      event.kind = kind_name(message.event.kind);
      event.payload = payload.dump();
      // The turn's other statements (flow loading, a new conversation's channel) run
      // inside the transaction block opened above.
      pqxx::nontransaction inside(*lease);
      auto write = [&](const Statement& statement) {
        const std::string text = statement.text();
        transaction.pipeline().prepared(Statement::name("turn_write_", text), text,
                                        statement.values());
        try {
          if (!options.before_commit) return transaction.commit()[0][0][0].as<int64_t>();
          int64_t inbox_id = transaction.run()[0][0][0].as<int64_t>();
          options.before_commit(inbox_id);
          transaction.commit();
          return inbox_id;
        } catch (const PipelineError& error) {
          // A copy of the message stored since the read: the write stopped at the inbox's
          // unique key, before COMMIT, and the turn is rolled back.
          if (error.constraint == "inbox_dedup") throw StoredConcurrently();
          throw;
        }
      };
      auto outcome =
          run_turn(inside, message.tenant_id, contact_id, event, context[0], 2, delivery, write);
      if (!transaction.ended()) transaction.commit();  // the event failed (fail())
      return outcome;
    });
  }

  // Processes the contact's oldest pending inbox row inside `tx` (the contact is locked).
  // nullopt if there is none, or if it is waiting out a retry delay. Rows other than
  // `target` always deliver through the outbox.
  std::optional<TurnOutcome> process_one(pqxx::transaction_base& tx, const std::string& tenant,
                                         int64_t contact_id, int64_t target, Delivery delivery) {
    // The conversation needs no row lock of its own: every writer of a conversation holds
    // its contact's lock, taken before this statement, so this read sees the latest state.
    static const std::string oldest =
        "SELECT i.id, i.kind, i.payload::text, COALESCE(i.conversation_id, ''), i.channel_id, "
        "       i.available_at <= clock_timestamp(), " +
        context_columns() +
        "FROM inbox i "
        "JOIN contacts c ON c.tenant_id = i.tenant_id AND c.id = i.contact_id "
        "JOIN tenants t ON t.id = i.tenant_id " +
        conversation_join("i.conversation_id") +
        "WHERE i.tenant_id = $1 AND i.contact_id = $2 AND i.state = 'pending' "
        "ORDER BY i.id LIMIT 1";
    auto rows = prepared(tx, "inbox_oldest", oldest, tenant, contact_id);
    if (rows.empty()) return std::nullopt;
    const auto& row = rows[0];
    TurnEvent event;
    event.inbox_id = row[0].as<int64_t>();
    if (!row[5].as<bool>() && event.inbox_id != target) return std::nullopt;
    if (event.inbox_id != target) delivery = Delivery::outbox;
    event.kind = row[1].as<std::string>();
    event.payload = row[2].as<std::string>();
    event.conversation_id = row[3].as<std::string>();
    event.channel_id = row[4].as<std::string>();
    return run_turn(tx, tenant, contact_id, event, row, 6, delivery, written_in(tx));
  }

  // Runs the turn of `event` inside `tx` (the contact is locked) and hands its write to
  // `write`. `row` (a pqxx::row or a PipelineRow) holds context_columns() from position
  // `context` on.
  template <class Row>
  TurnOutcome run_turn(pqxx::transaction_base& tx, const std::string& tenant, int64_t contact_id,
                       const TurnEvent& event, const Row& row, int context, Delivery delivery,
                       const WriteTurn& write) {
    auto column = [&](int i) { return row[context + i]; };
    try {
      Json payload = Json::parse(event.payload);
      InboundEvent inbound = event_from(event.kind, payload);
      Contact contact{column(0).template as<std::string>(), column(1).template as<std::string>(),
                      column(2).template as<std::string>()};
      Before before;
      before.contact_name = contact.name;
      before.contact_phone = contact.phone;
      std::string new_name = payload.value("name", std::string());
      std::string new_phone = payload.value("phone", std::string());
      if (!new_name.empty()) contact.name = new_name;
      if (!new_phone.empty()) contact.phone = new_phone;
      TenantContext tenant_context;
      tenant_context.id = tenant;
      tenant_context.name = column(3).template as<std::string>();
      tenant_context.secrets = Json::parse(column(4).template as<std::string>());

      // The conversation.
      const bool found = !column(5).is_null();
      before.conversation_exists = found;
      before.has_timers = column(17).template as<bool>();
      if (!found && !event.conversation_id.empty()) {
        return fail(tx, tenant, contact_id, event,
                    "conversation " + event.conversation_id + " does not exist");
      }
      ConversationState state;
      std::string conversation_id;
      std::string channel_id = event.channel_id;
      if (found) {
        conversation_id = column(5).template as<std::string>();
        channel_id = column(6).template as<std::string>();
        state.flow_id = column(7).template as<std::string>();
        state.flow_version = column(8).template as<int>();
        state.status = parse_status(column(9).template as<std::string>()).value_or(Status::failed);
        state.node = column(10).template as<std::string>();
        state.vars = Json::parse(column(11).template as<std::string>());
        state.attempts = column(12).template as<int>();
        state.wait_seq = static_cast<uint64_t>(column(13).template as<int64_t>());
        state.handoff_queue = column(14).template as<std::string>();
        state.handoff_note = column(15).template as<std::string>();
        state.error = column(16).template as<std::string>();
      } else {
        auto bound = tx.exec_params(
            "SELECT ch.flow_id, f.latest_version FROM channels ch "
            "JOIN flows f ON f.tenant_id = ch.tenant_id AND f.id = ch.flow_id "
            "WHERE ch.tenant_id = $1 AND ch.id = $2",
            tenant, event.channel_id);
        if (bound.empty()) {
          return fail(tx, tenant, contact_id, event,
                      "channel " + event.channel_id + " does not exist");
        }
        if (bound[0][1].as<int>() == 0) {
          return fail(tx, tenant, contact_id, event,
                      "channel " + event.channel_id + " is bound to flow " +
                          bound[0][0].as<std::string>() +
                          ", which has no published version; publish it");
        }
        conversation_id = random_token("cv_", 12);
        state.flow_id = bound[0][0].as<std::string>();
        state.flow_version = bound[0][1].as<int>();
      }

      // The turn.
      TurnResult result;
      std::string error;
      auto flow = load_flow(tx, tenant, state.flow_id, state.flow_version, error);
      if (flow) {
        Resolver resolver(*this, tx, tenant);
        tenant_context.flows = &resolver;
        TurnInput input{flow, state, contact, inbound, &tenant_context};
        result = executor.run_turn(std::move(input));
      } else {
        result.state = state;
        result.state.status = Status::failed;
        result.state.error = error;
        result.journal.push_back({"error", Json{{"message", error}}, 0});
      }
      TurnOutcome outcome;
      outcome.inbox_id = write(turn_write(tenant, conversation_id, channel_id, contact_id, contact,
                                          result, delivery, event, before));
      outcome.kind = TurnOutcome::Kind::processed;
      outcome.conversation_id = conversation_id;
      outcome.status = result.state.status;
      outcome.error = result.state.error;
      outcome.replies = std::move(result.messages);
      return outcome;
    } catch (const pqxx::failure&) {
      throw;
    } catch (const StoredConcurrently&) {
      throw;
    } catch (const std::exception& error) {
      throw TurnError(event.inbox_id, error.what());
    }
  }

  // The event cannot run (its conversation or channel is gone): it is kept as failed.
  TurnOutcome fail(pqxx::transaction_base& tx, const std::string& tenant, int64_t contact_id,
                   const TurnEvent& event, const std::string& error) {
    auto rows = prepared(
        tx, "inbox_failed",
        "WITH ud AS (UPDATE inbox SET state = 'failed', error = $7, attempts = attempts + 1, "
        "    processed_at = now() WHERE id = $3 RETURNING id), "
        "ins AS (INSERT INTO inbox (tenant_id, channel_id, provider_message_id, contact_id, kind, "
        "    payload, state, attempts, error, processed_at) "
        "  SELECT $1, $4, NULLIF($5, ''), $2, $6, $8::jsonb, 'failed', 1, $7, now() "
        "  WHERE $3 = 0 "
        "  ON CONFLICT (tenant_id, channel_id, provider_message_id) DO NOTHING RETURNING id) "
        "SELECT id FROM ud UNION ALL SELECT id FROM ins",
        tenant, contact_id, event.inbox_id, event.channel_id, event.provider_message_id, event.kind,
        error, event.payload);
    if (rows.empty()) throw StoredConcurrently();
    TurnOutcome outcome;
    outcome.kind = TurnOutcome::Kind::failed;
    outcome.inbox_id = rows[0][0].as<int64_t>();
    outcome.error = error;
    return outcome;
  }

  // What a turn's write needs to know of the rows as they were, to leave out what it need
  // not touch.
  struct Before {
    bool conversation_exists = false;
    bool has_timers = false;  // the conversation has timers that may need dropping
    std::string contact_name, contact_phone;
  };

  // The turn's write, one statement: state, journal, outbox, timers, the contact's name and
  // phone, and the inbox row (marked done, or inserted done), returning the inbox row's id.
  // The statement holds only the parts this turn needs (a reply, a timer to drop or arm, a
  // changed contact), because PostgreSQL sets up every part of a statement at each run; each
  // distinct statement is prepared once per connection.
  static Statement turn_write(const std::string& tenant, const std::string& conversation_id,
                              const std::string& channel_id, int64_t contact_id,
                              const Contact& contact, const TurnResult& result, Delivery delivery,
                              const TurnEvent& event, const Before& before) {
    const ConversationState& s = result.state;
    Statement st;
    auto T = [&] { return st.param("tenant", tenant); };
    auto C = [&] { return st.param("conversation", conversation_id); };
    auto K = [&] { return st.param("contact", std::to_string(contact_id)) + "::bigint"; };
    auto W = [&] { return st.param("wait_seq", std::to_string(s.wait_seq)) + "::bigint"; };
    auto S = [&] { return st.param("status", std::string(to_string(s.status))) + "::text"; };
    // The conversation's state columns, shared by the insert and the update.
    const std::vector<std::pair<std::string, std::string>> state_columns{
        {"flow_id", st.param("flow", s.flow_id)},
        {"flow_version", st.param("version", std::to_string(s.flow_version)) + "::integer"},
        {"status", S()},
        {"node", st.param("node", s.node)},
        {"vars", st.param("vars", s.vars.dump()) + "::jsonb"},
        {"attempts", st.param("attempts", std::to_string(s.attempts)) + "::integer"},
        {"wait_seq", W()},
        {"handoff_queue", st.param("queue", s.handoff_queue)},
        {"handoff_note", st.param("note", s.handoff_note)},
        {"error", st.param("error", s.error)}};
    const std::string ended = "CASE WHEN " + S() + " IN ('ended', 'failed') THEN now() END";
    if (before.conversation_exists) {
      std::string set;
      for (const auto& [column, value] : state_columns) set += column + " = " + value + ", ";
      st.part("UPDATE conversations SET " + set +
              "turns = turns + 1, updated_at = now(), ended_at = COALESCE(ended_at, " + ended +
              ") WHERE tenant_id = " + T() + " AND id = " + C());
    } else {
      std::string columns, values;
      for (const auto& [column, value] : state_columns) {
        columns += ", " + column;
        values += ", " + value;
      }
      st.part("INSERT INTO conversations (tenant_id, id, channel_id, contact_id" + columns +
              ", turns, ended_at) VALUES (" + T() + ", " + C() + ", " +
              st.param("channel", channel_id) + ", " + K() + values + ", 1, " + ended + ")");
    }
    if (!result.journal.empty()) {
      // One row per kEventsPerRow events, so nearly always one; entries the executor did
      // not time (at 0) take the row's `at`.
      std::vector<Json> rows(1, Json::array());
      for (const auto& entry : result.journal) {
        if (rows.back().size() == static_cast<size_t>(kEventsPerRow)) rows.push_back(Json::array());
        Json line{{"type", entry.type}, {"data", entry.data}};
        if (entry.at_ms > 0) line["at"] = entry.at_ms;
        rows.back().push_back(std::move(line));
      }
      if (rows.size() == 1) {
        st.part("INSERT INTO events (tenant_id, conversation_id, entries) VALUES (" + T() + ", " +
                C() + ", " + st.param("journal", rows[0].dump()) + "::jsonb)");
      } else {
        st.part("INSERT INTO events (tenant_id, conversation_id, entries) SELECT " + T() + ", " +
                C() + ", r.value FROM jsonb_array_elements(" +
                st.param("journal", Json(rows).dump()) +
                "::jsonb) WITH ORDINALITY AS r(value, n) ORDER BY r.n");
      }
    }
    if (!result.messages.empty()) {
      const std::string state =
          st.param("outbox_state", delivery == Delivery::inline_ ? "sent" : "pending") + "::text";
      const std::string columns =
          "INSERT INTO outbox (tenant_id, conversation_id, channel_id, contact_id, payload, "
          "state, sent_at) ";
      const std::string fixed =
          T() + ", " + C() + ", " + st.param("channel", channel_id) + ", " + K() + ", ";
      const std::string sent_at = "CASE WHEN " + state + " = 'sent' THEN now() END";
      if (result.messages.size() == 1) {  // most turns send one message
        st.part(columns + "VALUES (" + fixed +
                st.param("messages", Json{{"text", result.messages[0].text}}.dump()) + "::jsonb, " +
                state + ", " + sent_at + ")");
      } else {
        Json messages = Json::array();
        for (const auto& message : result.messages) messages.push_back({{"text", message.text}});
        st.part(columns + "SELECT " + fixed + "m.value, " + state + ", " + sent_at +
                " FROM jsonb_array_elements(" + st.param("messages", messages.dump()) +
                "::jsonb) WITH ORDINALITY AS m(value, n) ORDER BY m.n");
      }
    }
    if (before.has_timers) {
      // A turn that keeps waiting on the same question keeps that question's timer.
      st.part("DELETE FROM timers WHERE tenant_id = " + T() + " AND conversation_id = " + C() +
              (s.status == Status::waiting ? " AND wait_seq <> " + W() : ""));
    }
    if (result.timer) {
      st.part(
          "INSERT INTO timers (tenant_id, conversation_id, contact_id, node, wait_seq, "
          "fire_at) VALUES (" +
          T() + ", " + C() + ", " + K() + ", " + st.param("timer_node", result.timer->node) + ", " +
          st.param("timer_seq", std::to_string(result.timer->wait_seq)) +
          "::bigint, to_timestamp(" +
          st.param("timer_at", std::to_string(result.timer->fire_at_ms)) + "::float8 / 1000.0))");
    }
    if (contact.name != before.contact_name || contact.phone != before.contact_phone) {
      st.part("UPDATE contacts SET name = " + st.param("name", contact.name) + ", phone = " +
              st.param("phone", contact.phone) + " WHERE tenant_id = " + T() + " AND id = " + K());
    }
    if (event.inbox_id != 0) {
      st.finish(
          "UPDATE inbox SET state = 'done', processed_at = now(), "
          "attempts = attempts + 1, result_conversation = " +
          C() +
          ", error = '' "
          "WHERE id = " +
          st.param("inbox", std::to_string(event.inbox_id)) + "::bigint RETURNING id");
    } else {
      st.finish(
          "INSERT INTO inbox (tenant_id, channel_id, provider_message_id, contact_id, "
          "kind, payload, state, attempts, result_conversation, processed_at) "
          "VALUES (" +
          T() + ", " + st.param("inbox_channel", event.channel_id) + ", NULLIF(" +
          st.param("message_id", event.provider_message_id) + ", ''), " + K() + ", " +
          st.param("kind", event.kind) + ", " + st.param("payload", event.payload) +
          "::jsonb, 'done', 1, " + C() +
          ", now()) "
          "RETURNING id");
    }
    return st;
  }

  // Runs a turn's write inside `tx`, which the caller commits.
  WriteTurn written_in(pqxx::transaction_base& tx) {
    return [this, &tx](const Statement& write) {
      auto rows = write.run(tx, "turn_write_");
      if (rows.empty()) throw StoredConcurrently();
      int64_t inbox_id = rows[0][0].as<int64_t>();
      if (options.before_commit) options.before_commit(inbox_id);
      return inbox_id;
    };
  }

  // Processes the contact's pending rows, oldest first, until `target` is done.
  TurnOutcome drain_until(pqxx::transaction_base& tx, const std::string& tenant, int64_t contact_id,
                          int64_t target, Delivery delivery) {
    for (;;) {
      auto outcome = process_one(tx, tenant, contact_id, target, delivery);
      if (!outcome) {
        TurnOutcome pending;
        pending.kind = TurnOutcome::Kind::pending;
        pending.inbox_id = target;
        pending.error = "an earlier message of this contact is waiting to be retried";
        return pending;
      }
      if (outcome->inbox_id == target) return *outcome;
    }
  }

  // Counts a failed attempt at `inbox_id`; after max_inbox_attempts the row is set aside.
  void record_failure(int64_t inbox_id, const std::string& error) {
    store.pool().transact([&](pqxx::transaction_base& tx) {
      tx.exec_params(
          "UPDATE inbox SET attempts = attempts + 1, error = $2, "
          "  available_at = now() + make_interval(secs => LEAST(60, power(2, attempts))), "
          "  state = CASE WHEN attempts + 1 >= $3 THEN 'failed' ELSE 'pending' END, "
          "  processed_at = CASE WHEN attempts + 1 >= $3 THEN now() END "
          "WHERE id = $1 AND state = 'pending'",
          inbox_id, error, options.max_inbox_attempts);
    });
  }

  std::optional<int64_t> insert_inbox(pqxx::transaction_base& tx, const std::string& tenant,
                                      const std::string& channel, const std::string& message_id,
                                      int64_t contact_id, const std::string& conversation_id,
                                      InboundEvent::Kind kind, const Json& payload) {
    auto rows = prepared(
        tx, "inbox_insert",
        "INSERT INTO inbox (tenant_id, channel_id, provider_message_id, contact_id, "
        "  conversation_id, kind, payload) "
        "VALUES ($1, $2, NULLIF($3, ''), $4, NULLIF($5, ''), $6, $7::jsonb) "
        "ON CONFLICT (tenant_id, channel_id, provider_message_id) DO NOTHING RETURNING id",
        tenant, channel, message_id, contact_id, conversation_id, kind_name(kind), payload.dump());
    if (rows.empty()) return std::nullopt;
    return rows[0][0].as<int64_t>();
  }
};

TurnProcessor::TurnProcessor(Store& store, const Executor& executor, TurnProcessorOptions options)
    : store_(store), impl_(std::make_unique<Impl>(store, executor, std::move(options))) {}

TurnProcessor::~TurnProcessor() = default;

AcceptResult TurnProcessor::accept_inbound(const InboundMessage& message) {
  if (message.contact.id.empty()) {
    throw StoreError(StoreError::Code::invalid, "an inbound message needs a contact id");
  }
  const Json payload = event_payload(message.event, message.contact);
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto result =
        store_.pool().autocommit([&](pqxx::nontransaction& tx) -> std::optional<AcceptResult> {
          auto rows = tx.exec_params(
              "WITH found AS (SELECT id FROM contacts WHERE tenant_id = $1 AND channel_id = $2 "
              "                 AND external_id = $3), "
              "ins AS (INSERT INTO contacts (tenant_id, channel_id, external_id, name, phone) "
              "        SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM found) "
              "        ON CONFLICT DO NOTHING RETURNING id), "
              "c AS (SELECT id FROM found UNION ALL SELECT id FROM ins) "
              "INSERT INTO inbox (tenant_id, channel_id, provider_message_id, contact_id, kind, "
              "  payload) "
              "SELECT $1, $2, NULLIF($6, ''), c.id, $7, $8::jsonb FROM c "
              "ON CONFLICT (tenant_id, channel_id, provider_message_id) DO NOTHING "
              "RETURNING id, contact_id",
              message.tenant_id, message.channel_id, message.contact.id, message.contact.name,
              message.contact.phone, message.provider_message_id, kind_name(message.event.kind),
              payload.dump());
          if (!rows.empty()) {
            return AcceptResult{false, rows[0][0].as<int64_t>(), rows[0][1].as<int64_t>()};
          }
          if (!message.provider_message_id.empty()) {
            auto dup = tx.exec_params(
                "SELECT id, contact_id FROM inbox WHERE tenant_id = $1 AND channel_id = $2 AND "
                "provider_message_id = $3",
                message.tenant_id, message.channel_id, message.provider_message_id);
            if (!dup.empty()) {
              return AcceptResult{true, dup[0][0].as<int64_t>(), dup[0][1].as<int64_t>()};
            }
          }
          return std::nullopt;  // the contact was being created concurrently: try again
        });
    if (result) return *result;
  }
  throw std::runtime_error("could not store the inbound message for contact " + message.contact.id);
}

TurnOutcome TurnProcessor::accept_and_process(const InboundMessage& message, Delivery delivery) {
  if (message.contact.id.empty()) {
    throw StoreError(StoreError::Code::invalid, "an inbound message needs a contact id");
  }
  const Json payload = event_payload(message.event, message.contact);
  // A second attempt follows only StoredConcurrently, and then finds the stored copy.
  for (int attempt = 0;; ++attempt) {
    try {
      if (auto outcome = impl_->process_new_message(message, payload, delivery)) return *outcome;
      return store_.pool().transact([&](pqxx::work& tx) -> TurnOutcome {
        // A new contact, earlier pending rows to run first, or a duplicate: store the row
        // pending, then run the contact's rows up to it.
        int64_t contact_id =
            impl_->lock_contact(tx, message.tenant_id, message.channel_id, message.contact);
        auto inbox_id = impl_->insert_inbox(tx, message.tenant_id, message.channel_id,
                                            message.provider_message_id, contact_id, "",
                                            message.event.kind, payload);
        if (!inbox_id) {
          // The conversation's status now, not the default: the caller shows it as the answer.
          auto dup = tx.exec_params(
              "SELECT i.id, COALESCE(i.result_conversation, ''), "
              "  COALESCE(c.status, CASE WHEN i.state = 'failed' THEN 'failed' ELSE '' END) "
              "FROM inbox i LEFT JOIN conversations c "
              "  ON c.tenant_id = i.tenant_id AND c.id = i.result_conversation "
              "WHERE i.tenant_id = $1 AND i.channel_id = $2 AND i.provider_message_id = $3",
              message.tenant_id, message.channel_id, message.provider_message_id);
          TurnOutcome outcome;
          outcome.kind = TurnOutcome::Kind::duplicate;
          if (!dup.empty()) {
            outcome.inbox_id = dup[0][0].as<int64_t>();
            outcome.conversation_id = dup[0][1].as<std::string>();
            outcome.status = parse_status(dup[0][2].as<std::string>()).value_or(outcome.status);
          }
          return outcome;
        }
        return impl_->drain_until(tx, message.tenant_id, contact_id, *inbox_id, delivery);
      });
    } catch (const StoredConcurrently&) {
      if (attempt > 0) throw;
    } catch (const TurnError& error) {
      // The turn itself threw: keep the message durably and let the workers retry it.
      AcceptResult accepted = accept_inbound(message);
      TurnOutcome outcome;
      outcome.inbox_id = accepted.inbox_id;
      if (accepted.duplicate) {
        outcome.kind = TurnOutcome::Kind::duplicate;
        return outcome;
      }
      impl_->record_failure(accepted.inbox_id, error.what());
      outcome.kind = TurnOutcome::Kind::pending;
      outcome.error = error.what();
      return outcome;
    }
  }
}

std::optional<TurnOutcome> TurnProcessor::process_contact(const std::string& tenant_id,
                                                          int64_t contact_id, bool wait_for_lock,
                                                          Delivery delivery) {
  try {
    return store_.pool().transact([&](pqxx::work& tx) -> std::optional<TurnOutcome> {
      auto locked =
          prepared(tx, wait_for_lock ? "contact_lock_wait" : "contact_lock_skip",
                   wait_for_lock ? "SELECT 1 FROM contacts WHERE tenant_id = $1 AND id = $2 "
                                   "FOR NO KEY UPDATE"
                                 : "SELECT 1 FROM contacts WHERE tenant_id = $1 AND id = $2 "
                                   "FOR NO KEY UPDATE SKIP LOCKED",
                   tenant_id, contact_id);
      if (locked.empty()) return std::nullopt;
      return impl_->process_one(tx, tenant_id, contact_id, 0, delivery);
    });
  } catch (const TurnError& error) {
    impl_->record_failure(error.inbox_id, error.what());
    TurnOutcome outcome;
    outcome.kind = TurnOutcome::Kind::failed;
    outcome.inbox_id = error.inbox_id;
    outcome.error = error.what();
    return outcome;
  }
}

int TurnProcessor::process_pending(int max_turns) {
  auto candidates = store_.pool().autocommit([&](pqxx::nontransaction& tx) {
    std::vector<std::pair<std::string, int64_t>> out;
    auto rows = tx.exec_params(
        "SELECT tenant_id, contact_id FROM inbox WHERE state = 'pending' AND available_at <= now() "
        "ORDER BY id LIMIT $1",
        max_turns);
    for (const auto& row : rows) {
      std::pair<std::string, int64_t> candidate{row[0].as<std::string>(), row[1].as<int64_t>()};
      if (std::find(out.begin(), out.end(), candidate) == out.end()) out.push_back(candidate);
    }
    return out;
  });
  int turns = 0;
  for (const auto& [tenant, contact] : candidates) {
    while (turns < max_turns) {
      auto outcome = process_contact(tenant, contact, false);
      if (!outcome) break;
      ++turns;
    }
  }
  return turns;
}

int TurnProcessor::fire_due_timers(int max, int64_t now_ms) {
  auto fired = store_.pool().transact([&](pqxx::work& tx) {
    std::vector<std::pair<std::string, int64_t>> out;
    auto rows = tx.exec_params(
        "WITH due AS (SELECT id FROM timers WHERE fire_at <= to_timestamp($1::float8 / 1000.0) "
        "             ORDER BY fire_at, id LIMIT $2 FOR UPDATE SKIP LOCKED), "
        "del AS (DELETE FROM timers t USING due WHERE t.id = due.id "
        "        RETURNING t.id, t.tenant_id, t.conversation_id, t.contact_id, t.node, t.wait_seq) "
        "INSERT INTO inbox (tenant_id, channel_id, provider_message_id, contact_id, "
        "  conversation_id, kind, payload) "
        "SELECT tenant_id, '', 'timer:' || id, contact_id, conversation_id, 'timeout', "
        "  jsonb_build_object('wait_seq', wait_seq, 'node', node) FROM del "
        "ON CONFLICT (tenant_id, channel_id, provider_message_id) DO NOTHING "
        "RETURNING tenant_id, contact_id",
        now_ms, max);
    for (const auto& row : rows) out.emplace_back(row[0].as<std::string>(), row[1].as<int64_t>());
    return out;
  });
  for (const auto& [tenant, contact] : fired) process_contact(tenant, contact, false);
  return static_cast<int>(fired.size());
}

TurnOutcome TurnProcessor::start_run(const std::string& tenant_id, const std::string& flow_id,
                                     const std::string& channel_id, const Contact& contact,
                                     const Json& vars, Delivery delivery) {
  if (contact.id.empty()) {
    throw StoreError(StoreError::Code::invalid, "a run needs a contact id");
  }
  if (!vars.is_object()) throw StoreError(StoreError::Code::invalid, "vars must be an object");
  try {
    return store_.pool().transact([&](pqxx::work& tx) -> TurnOutcome {
      if (!channel_id.empty()) {
        auto channel = tx.exec_params("SELECT 1 FROM channels WHERE tenant_id = $1 AND id = $2",
                                      tenant_id, channel_id);
        if (channel.empty()) {
          throw StoreError(StoreError::Code::invalid, "channel " + channel_id + " does not exist");
        }
      }
      auto flow = tx.exec_params(
          "SELECT latest_version FROM flows WHERE tenant_id = $1 AND id = $2 AND deleted_at IS "
          "NULL",
          tenant_id, flow_id);
      if (flow.empty()) {
        throw StoreError(StoreError::Code::not_found, "flow " + flow_id + " does not exist");
      }
      int version = flow[0][0].as<int>();
      if (version == 0) {
        throw StoreError(StoreError::Code::invalid,
                         "flow " + flow_id + " has no published version; publish it first");
      }
      int64_t contact_id = impl_->lock_contact(tx, tenant_id, channel_id, contact);
      auto open = tx.exec_params(
          std::string("SELECT id FROM conversations WHERE tenant_id = $1 AND contact_id = $2 AND "
                      "status IN ") +
              kOpenStatuses,
          tenant_id, contact_id);
      if (!open.empty()) {
        throw StoreError(StoreError::Code::conflict,
                         "contact " + contact.id + " already has the open conversation " +
                             open[0][0].as<std::string>() + "; close it first");
      }
      std::string conversation_id = random_token("cv_", 12);
      tx.exec_params(
          "INSERT INTO conversations (tenant_id, id, channel_id, contact_id, flow_id, "
          "  flow_version, status, vars) VALUES ($1, $2, $3, $4, $5, $6, 'active', $7::jsonb)",
          tenant_id, conversation_id, channel_id, contact_id, flow_id, version, vars.dump());
      InboundEvent start;
      start.kind = InboundEvent::Kind::start;
      auto inbox_id =
          impl_->insert_inbox(tx, tenant_id, channel_id, "", contact_id, conversation_id,
                              start.kind, event_payload(start, contact));
      return impl_->drain_until(tx, tenant_id, contact_id, *inbox_id, delivery);
    });
  } catch (const TurnError& error) {
    TurnOutcome outcome;
    outcome.kind = TurnOutcome::Kind::failed;
    outcome.error = error.what();
    return outcome;
  }
}

namespace {

struct LockedConversation {
  int64_t contact_id = 0;
  std::string channel_id;
};

// Finds a conversation of the tenant and takes its contact's lock, as every writer of a
// conversation must first (see turns.hpp). not_found if the tenant has no such conversation.
LockedConversation lock_conversation(pqxx::work& tx, const std::string& tenant_id,
                                     const std::string& conversation_id) {
  auto conv = tx.exec_params(
      "SELECT contact_id, channel_id FROM conversations WHERE tenant_id = $1 AND id = $2",
      tenant_id, conversation_id);
  if (conv.empty()) {
    throw StoreError(StoreError::Code::not_found,
                     "conversation " + conversation_id + " does not exist");
  }
  LockedConversation locked{conv[0][0].as<int64_t>(), conv[0][1].as<std::string>()};
  tx.exec_params("SELECT 1 FROM contacts WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE",
                 tenant_id, locked.contact_id);
  return locked;
}

}  // namespace

TurnOutcome TurnProcessor::resume(const std::string& tenant_id, const std::string& conversation_id,
                                  const std::string& node, Delivery delivery) {
  try {
    return store_.pool().transact([&](pqxx::work& tx) -> TurnOutcome {
      LockedConversation conversation = lock_conversation(tx, tenant_id, conversation_id);
      InboundEvent event;
      event.kind = InboundEvent::Kind::resume;
      event.node = node;
      auto inbox_id =
          impl_->insert_inbox(tx, tenant_id, conversation.channel_id, "", conversation.contact_id,
                              conversation_id, event.kind, event_payload(event, {}));
      return impl_->drain_until(tx, tenant_id, conversation.contact_id, *inbox_id, delivery);
    });
  } catch (const TurnError& error) {
    TurnOutcome outcome;
    outcome.kind = TurnOutcome::Kind::failed;
    outcome.conversation_id = conversation_id;
    outcome.error = error.what();
    return outcome;
  }
}

int64_t TurnProcessor::agent_message(const std::string& tenant_id,
                                     const std::string& conversation_id, const std::string& text,
                                     const std::string& actor) {
  return store_.pool().transact([&](pqxx::work& tx) -> int64_t {
    LockedConversation conversation = lock_conversation(tx, tenant_id, conversation_id);
    auto rows = tx.exec_params(
        "WITH ev AS (INSERT INTO events (tenant_id, conversation_id, entries) "
        "  VALUES ($1, $2, jsonb_build_array(jsonb_build_object('type', 'message_out', "
        "    'data', jsonb_build_object('text', $4::text, 'agent', $5::text)))) "
        "  RETURNING 1) "
        "INSERT INTO outbox (tenant_id, conversation_id, channel_id, contact_id, payload) "
        "VALUES ($1, $2, $3, $6, jsonb_build_object('text', $4::text, 'agent', $5::text)) "
        "RETURNING id",
        tenant_id, conversation_id, conversation.channel_id, text, actor, conversation.contact_id);
    return rows[0][0].as<int64_t>();
  });
}

bool TurnProcessor::close(const std::string& tenant_id, const std::string& conversation_id,
                          const std::string& actor) {
  return store_.pool().transact([&](pqxx::work& tx) -> bool {
    lock_conversation(tx, tenant_id, conversation_id);
    auto rows = tx.exec_params(
        std::string("WITH up AS (UPDATE conversations SET status = 'ended', ended_at = now(), "
                    "  updated_at = now(), handoff_queue = '' "
                    "  WHERE tenant_id = $1 AND id = $2 AND status IN ") +
            kOpenStatuses +
            " RETURNING 1), "
            "td AS (DELETE FROM timers WHERE tenant_id = $1 AND conversation_id = $2 "
            "  AND EXISTS (SELECT 1 FROM up) RETURNING 1) "
            "INSERT INTO events (tenant_id, conversation_id, entries) "
            "SELECT $1, $2, jsonb_build_array(jsonb_build_object('type', 'ended', "
            "  'data', jsonb_build_object('closed_by', $3::text))) FROM up "
            "RETURNING 1",
        tenant_id, conversation_id, actor);
    return !rows.empty();
  });
}

}  // namespace flowrt::runtime::store
