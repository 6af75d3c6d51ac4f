// Background work every flowrt process runs against the shared database:
//
//   * inbox workers   process pending inbox rows (left by the asynchronous webhook path, by
//                     a process that died mid-turn, or by fired timers);
//   * the dispatcher  delivers outbox rows through an OutboundSender, at least once;
//   * the timer worker fires due question timeouts as `timeout` turns.
//
// Processes coordinate only through PostgreSQL: inbox rows through the contact lock (see
// turns.hpp), timers through `FOR UPDATE SKIP LOCKED` + DELETE in the transaction that turns
// them into inbox rows, outbox rows through a lease (claiming a row pushes its
// next_attempt_at a lease into the future; a process that dies leaves the row to be claimed
// again when the lease runs out, hence "at least once").
//
// Outbox order: a row is claimed only when no older pending row of the same conversation
// exists, so one conversation's messages leave in order, and a message that is being retried
// holds back the ones after it (until it is sent, fails permanently, or is given up).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/executor.hpp"
#include "runtime/store/turns.hpp"

namespace flowrt::runtime::store {

// One outbound message to deliver.
struct OutboxMessage {
  int64_t id = 0;
  std::string tenant_id;
  std::string conversation_id;
  std::string channel_id;  // "" for runs without a channel
  Contact contact;         // contact.id: the person's id on the channel
  std::string text;
  Json payload;     // the whole stored payload ({"text": ..., "agent": ...})
  int attempt = 0;  // 1 for the first try
};

struct SendResult {
  enum class Kind {
    ok,         // delivered
    retryable,  // network error, timeout, 5xx, 429: try again later
    permanent,  // 4xx or a channel that cannot deliver: do not retry
    held,       // the provider cannot push: keep for the contact's next request (webchat),
                // see Store::take_held_messages
  };
  Kind kind = Kind::ok;
  std::string error;  // for the journal when not ok

  static SendResult sent() { return {Kind::ok, {}}; }
  static SendResult retry(std::string why) { return {Kind::retryable, std::move(why)}; }
  static SendResult fail(std::string why) { return {Kind::permanent, std::move(why)}; }
  static SendResult hold() { return {Kind::held, {}}; }
};

// Delivers outbox messages (the HTTP API implements it over the provider plugins). Called
// from dispatcher threads, several at once; an exception counts as a retryable error.
class OutboundSender {
 public:
  virtual ~OutboundSender() = default;
  virtual SendResult send(const OutboxMessage& message) = 0;
};

struct DispatcherOptions {
  int batch = 16;                                       // rows claimed per round
  std::chrono::milliseconds lease{60'000};              // a claimed row's time to be sent
  std::chrono::milliseconds initial_backoff{1'000};     // before the second attempt
  std::chrono::milliseconds max_backoff{300'000};       // cap of one delay
  std::chrono::milliseconds give_up_after{86'400'000};  // since the row was written
};

// Retry delay before attempt `attempt + 1`: initial * 2^(attempt-1), capped, then jittered
// uniformly within [delay/2, delay] so that a burst of failures does not retry in lockstep.
std::chrono::milliseconds backoff_delay(const DispatcherOptions& options, int attempt,
                                        double unit_random);

class OutboxDispatcher {
 public:
  OutboxDispatcher(Store& store, OutboundSender& sender, DispatcherOptions options = {});

  // Claims and sends one batch. Returns the number of rows attempted.
  int dispatch_once();

 private:
  void record(const OutboxMessage& message, const SendResult& result, int64_t age_ms);

  Store& store_;
  OutboundSender& sender_;
  DispatcherOptions options_;
};

struct WorkerOptions {
  int inbox_threads = 1;
  int outbox_threads = 1;
  bool timers = true;
  std::chrono::milliseconds poll_interval{200};  // idle wait between database polls
  int batch = 32;
  DispatcherOptions dispatcher;
};

// Runs the three kinds of workers on their own threads until stop().
class BackgroundWorkers {
 public:
  // `sender` may be null: then no dispatcher runs (outbox rows wait for a process that has
  // one). `clock` decides when timers are due.
  BackgroundWorkers(TurnProcessor& turns, OutboundSender* sender, const Clock& clock,
                    WorkerOptions options = {});
  ~BackgroundWorkers();  // stop()

  void start();
  // Asks every thread to finish the turn or send in progress and exit; waits for them.
  void stop();
  // Wakes idle workers now (e.g. after accept_inbound or a turn that wrote outbox rows).
  void notify();
  // After stop(): sends the outbox rows that are due, batch after batch, until none is left
  // or `budget` has passed (a batch in progress is finished). For a graceful shutdown, so
  // that replies written by the last turns leave now rather than at the next start. Returns
  // the number of rows attempted.
  int flush_outbox(std::chrono::milliseconds budget);

 private:
  void loop(const std::function<int()>& step);

  TurnProcessor& turns_;
  OutboundSender* sender_;
  const Clock& clock_;
  WorkerOptions options_;
  std::unique_ptr<OutboxDispatcher> dispatcher_;
  std::mutex mutex_;
  std::condition_variable wake_;
  uint64_t wakeups_ = 0;
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> threads_;
};

}  // namespace flowrt::runtime::store
