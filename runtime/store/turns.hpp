// Turn processing: inbound events become durable inbox rows, and each row becomes one turn
// committed in one transaction.
//
// Design
//   * accept_inbound() inserts the event into `inbox` (unique on tenant, channel and the
//     provider's message id, so a redelivery is recognised and changes nothing) in its own
//     transaction and returns once it is committed. Nothing has run yet.
//   * process_contact() runs one turn: BEGIN; lock the contact's row (FOR NO KEY UPDATE, with
//     SKIP LOCKED for workers); read the contact's OLDEST pending inbox row together with its
//     conversation (or decide to create one); run the executor; write the state, journal
//     events, outbox rows and timers and mark the inbox row done in one statement; COMMIT.
//   * The contact row is the conversation's lock and the serialisation point: a contact has
//     at most one open conversation, and every writer of a conversation (turns, resume,
//     close, agent messages) takes its contact's lock first. So turns of one conversation run
//     one at a time and in inbox order across all processes, while different contacts run
//     in parallel. NO KEY UPDATE (not FOR UPDATE) so that a foreign-key check against the
//     contact (a new conversation's) never waits for a running turn. Because the inbox row is
//     marked done in the turn's own transaction, a process that dies mid-turn leaves the row
//     pending and its lock released; the next worker processes it, once.
//   * Which conversation: an event aimed at a conversation (timeout, resume, start) goes to
//     that one; a message goes to the contact's open conversation (active, waiting or
//     handoff; at most one exists), or starts a new conversation on the latest published
//     version of the channel's flow when the last one ended or failed. The conversation stays
//     pinned to that version (a `jump` re-pins it to the target flow's latest version).
//   * accept_and_process() is the synchronous path for providers that answer in the webhook
//     response (webchat): the inbox insert and the turn share ONE transaction (older pending
//     rows of the same contact are processed first, in the same transaction), so a 2xx still
//     means "stored and processed"; if the turn cannot run the event is stored durably on its
//     own and left to the workers. In the common case (a known contact, nothing pending, a new
//     message) the transaction is three statements: lock the contact; read the contact, tenant,
//     conversation and whether anything is pending or the message was seen; write the turn
//     with the inbox row inserted already done. They take two round trips through libpq's
//     pipeline mode (runtime/store/pipeline.hpp): BEGIN, the lock and the read; then the write
//     and COMMIT. Should a copy of the message be stored concurrently, the write stops at the
//     inbox's unique key before COMMIT runs, the turn is rolled back and the message reported
//     as a duplicate.
//   * The write statement holds only the parts a turn needs (conversation insert or update,
//     journal, outbox, timers to drop or arm, a changed contact, the inbox row): PostgreSQL
//     sets up every part of a statement at each execution, and that set-up was the largest
//     single cost of a turn (docs/performance.md).
//
// Thread-safe; every method may be called from any number of threads and processes.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "runtime/executor.hpp"
#include "runtime/flow.hpp"
#include "runtime/store/store.hpp"

namespace flowrt::runtime::store {

// An inbound event as the webhook layer hands it over.
struct InboundMessage {
  std::string tenant_id;
  std::string channel_id;
  std::string provider_message_id;  // "" if the provider gave none: no deduplication
  Contact contact;                  // contact.id: the person's id on the channel (required)
  InboundEvent event;               // kind message (timeout/resume/start come from the store)
};

struct AcceptResult {
  bool duplicate = false;  // the same (channel, provider_message_id) was accepted before
  int64_t inbox_id = 0;    // of the new row, or of the original for a duplicate
  int64_t contact_id = 0;  // internal contact row id (the unit process_contact works on)
};

struct TurnOutcome {
  enum class Kind {
    processed,  // the turn ran and committed
    duplicate,  // a redelivery; nothing changed
    pending,    // stored durably, but not processed now (the workers will)
    failed,     // the event could not be processed and was set aside (see error)
  };
  Kind kind = Kind::processed;
  int64_t inbox_id = 0;
  std::string conversation_id;
  Status status = Status::active;
  std::vector<OutboundMessage> replies;
  std::string error;
};

// How a turn's outbound messages are delivered.
enum class Delivery {
  outbox,   // written as pending outbox rows for the dispatcher
  inline_,  // returned to the caller in TurnOutcome::replies and recorded as sent (webchat)
};

struct TurnProcessorOptions {
  ParseOptions parse;                // for loading published flows (Lua checker, node registry)
  size_t flow_cache_entries = 4096;  // parsed flow versions kept in memory
  int max_inbox_attempts = 5;        // turns that threw before the row is set aside as failed
  // Test seam: called inside the turn's transaction, after the writes and before COMMIT.
  // With it set, a pipelined turn sends COMMIT in a round trip of its own, after the call.
  std::function<void(int64_t inbox_id)> before_commit;
};

class TurnProcessor {
 public:
  TurnProcessor(Store& store, const Executor& executor, TurnProcessorOptions options = {});
  ~TurnProcessor();

  // Stores an inbound message durably; returns after COMMIT.
  AcceptResult accept_inbound(const InboundMessage& message);

  // Stores and processes in one transaction, waiting for the contact's lock.
  TurnOutcome accept_and_process(const InboundMessage& message, Delivery delivery);

  // Runs the oldest pending inbox row of the contact. With `wait_for_lock` false, returns
  // nullopt at once if another turn of the contact is in progress. nullopt also when the
  // contact has no pending row that is due.
  std::optional<TurnOutcome> process_contact(const std::string& tenant_id, int64_t contact_id,
                                             bool wait_for_lock,
                                             Delivery delivery = Delivery::outbox);

  // Worker step: processes up to `max_turns` due inbox rows of any tenant, oldest first,
  // skipping contacts another worker holds. Returns the number of turns run.
  int process_pending(int max_turns);

  // Timer step: turns up to `max` due timers (by `clock`) into timeout inbox rows, once
  // across processes, then processes them. Returns the number of timers fired.
  int fire_due_timers(int max, int64_t now_ms);

  // Starts a conversation on the latest published version of `flow_id` for `contact` (on
  // `channel_id`, or no channel when empty) with initial `vars`, and runs its first turn.
  // conflict if the contact already has an open conversation; invalid if the flow has no
  // published version or the channel does not exist.
  TurnOutcome start_run(const std::string& tenant_id, const std::string& flow_id,
                        const std::string& channel_id, const Contact& contact, const Json& vars,
                        Delivery delivery = Delivery::outbox);

  // Hands a conversation in handoff back to the bot (at the handoff's next, or `node`), and
  // runs that turn. not_found if absent; the executor journals "ignored" if not in handoff.
  TurnOutcome resume(const std::string& tenant_id, const std::string& conversation_id,
                     const std::string& node, Delivery delivery = Delivery::outbox);

  // An agent's reply: one outbox row and a `message_out` journal event (data.agent = actor).
  // Returns the outbox id. not_found if absent.
  int64_t agent_message(const std::string& tenant_id, const std::string& conversation_id,
                        const std::string& text, const std::string& actor);

  // Ends a conversation (any open status): status ended, timers dropped, `ended` journaled.
  // not_found if absent; returns false if it had already ended or failed.
  bool close(const std::string& tenant_id, const std::string& conversation_id,
             const std::string& actor);

  Store& store() { return store_; }

  class Impl;

 private:
  Store& store_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flowrt::runtime::store
