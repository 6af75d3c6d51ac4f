#include "runtime/store/workers.hpp"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <iostream>
#include <random>

namespace flowrt::runtime::store {

std::chrono::milliseconds backoff_delay(const DispatcherOptions& options, int attempt,
                                        double unit_random) {
  double delay = static_cast<double>(options.initial_backoff.count()) *
                 std::pow(2.0, std::max(0, attempt - 1));
  delay = std::min(delay, static_cast<double>(options.max_backoff.count()));
  unit_random = std::clamp(unit_random, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<int64_t>(delay / 2 + delay / 2 * unit_random));
}

OutboxDispatcher::OutboxDispatcher(Store& store, OutboundSender& sender, DispatcherOptions options)
    : store_(store), sender_(sender), options_(options) {}

int OutboxDispatcher::dispatch_once() {
  struct Claimed {
    OutboxMessage message;
    int64_t age_ms;
  };
  auto claimed = store_.pool().transact([&](pqxx::work& tx) {
    std::vector<Claimed> out;
    auto rows = tx.exec_params(
        "UPDATE outbox o SET next_attempt_at = now() + make_interval(secs => $1::float8 / 1000), "
        "  attempts = o.attempts + 1 "
        "FROM contacts c "
        "WHERE c.tenant_id = o.tenant_id AND c.id = o.contact_id AND o.id IN ("
        "  SELECT p.id FROM outbox p WHERE p.state = 'pending' AND p.next_attempt_at <= now() "
        "    AND NOT EXISTS (SELECT 1 FROM outbox q WHERE q.conversation_id = p.conversation_id "
        "                    AND q.state = 'pending' AND q.id < p.id) "
        "  ORDER BY p.next_attempt_at, p.id LIMIT $2 FOR UPDATE SKIP LOCKED) "
        "RETURNING o.id, o.tenant_id, o.conversation_id, o.channel_id, c.external_id, c.name, "
        "  c.phone, o.payload::text, o.attempts, "
        "  (extract(epoch from now() - o.created_at) * 1000)::bigint",
        static_cast<int64_t>(options_.lease.count()), options_.batch);
    for (const auto& row : rows) {
      Claimed c;
      c.message.id = row[0].as<int64_t>();
      c.message.tenant_id = row[1].as<std::string>();
      c.message.conversation_id = row[2].as<std::string>();
      c.message.channel_id = row[3].as<std::string>();
      c.message.contact = {row[4].as<std::string>(), row[5].as<std::string>(),
                           row[6].as<std::string>()};
      c.message.payload = Json::parse(row[7].as<std::string>());
      c.message.text = c.message.payload.value("text", std::string());
      c.message.attempt = row[8].as<int>();
      c.age_ms = row[9].as<int64_t>();
      out.push_back(std::move(c));
    }
    return out;
  });
  // Send in id order so that rows of one conversation claimed together stay in order.
  std::sort(claimed.begin(), claimed.end(),
            [](const Claimed& a, const Claimed& b) { return a.message.id < b.message.id; });
  for (const auto& c : claimed) {
    SendResult result;
    try {
      result = sender_.send(c.message);
    } catch (const std::exception& error) {
      result = SendResult::retry(std::string("the sender threw: ") + error.what());
    } catch (...) {
      result = SendResult::retry("the sender threw an unknown exception");
    }
    record(c.message, result, c.age_ms);
  }
  return static_cast<int>(claimed.size());
}

void OutboxDispatcher::record(const OutboxMessage& message, const SendResult& result,
                              int64_t age_ms) {
  if (result.kind == SendResult::Kind::ok) {
    store_.pool().transact([&](pqxx::work& tx) {
      tx.exec_params(
          "UPDATE outbox SET state = 'sent', sent_at = now(), last_error = '' WHERE id = $1",
          message.id);
    });
    return;
  }
  if (result.kind == SendResult::Kind::held) {
    store_.pool().transact([&](pqxx::work& tx) {
      tx.exec_params("UPDATE outbox SET state = 'held', last_error = '' WHERE id = $1", message.id);
    });
    return;
  }
  thread_local std::mt19937 random(std::random_device{}());
  auto delay = backoff_delay(options_, message.attempt,
                             std::uniform_real_distribution<double>(0, 1)(random));
  bool give_up = result.kind == SendResult::Kind::permanent ||
                 age_ms + delay.count() > options_.give_up_after.count();
  Json data{{"outbox_id", message.id}, {"attempt", message.attempt}, {"error", result.error}};
  if (result.kind == SendResult::Kind::permanent) {
    data["outcome"] = "permanent";
  } else if (give_up) {
    data["outcome"] = "gave_up";
    data["after_ms"] = age_ms;
  } else {
    data["outcome"] = "retrying";
    data["retry_in_ms"] = delay.count();
  }
  store_.pool().transact([&](pqxx::work& tx) {
    tx.exec_params(
        "WITH up AS (UPDATE outbox SET last_error = $2, "
        "    state = CASE WHEN $3::boolean THEN 'failed' ELSE 'pending' END, "
        "    next_attempt_at = now() + make_interval(secs => $4::float8 / 1000) "
        "  WHERE id = $1 RETURNING tenant_id, conversation_id) "
        "INSERT INTO events (tenant_id, conversation_id, entries) "
        "SELECT tenant_id, conversation_id, "
        "  jsonb_build_array(jsonb_build_object('type', 'delivery_error', 'data', $5::jsonb)) "
        "FROM up",
        message.id, result.error, give_up, static_cast<int64_t>(delay.count()), data.dump());
  });
}

BackgroundWorkers::BackgroundWorkers(TurnProcessor& turns, OutboundSender* sender,
                                     const Clock& clock, WorkerOptions options)
    : turns_(turns), sender_(sender), clock_(clock), options_(options) {
  if (sender_) {
    dispatcher_ = std::make_unique<OutboxDispatcher>(turns_.store(), *sender_, options_.dispatcher);
  }
}

BackgroundWorkers::~BackgroundWorkers() {
  stop();
}

void BackgroundWorkers::start() {
  if (!threads_.empty()) return;
  stopping_ = false;
  for (int i = 0; i < options_.inbox_threads; ++i) {
    threads_.emplace_back(
        [this] { loop([this] { return turns_.process_pending(options_.batch); }); });
  }
  if (dispatcher_) {
    for (int i = 0; i < options_.outbox_threads; ++i) {
      threads_.emplace_back([this] { loop([this] { return dispatcher_->dispatch_once(); }); });
    }
  }
  if (options_.timers) {
    threads_.emplace_back([this] {
      loop([this] { return turns_.fire_due_timers(options_.batch, clock_.now_ms()); });
    });
  }
}

void BackgroundWorkers::stop() {
  stopping_ = true;
  notify();
  for (auto& thread : threads_) thread.join();
  threads_.clear();
}

namespace {

// One JSON log line like the server's own (time, level, event), on stderr.
void log_worker_error(const std::string& message, std::chrono::milliseconds retry_in) {
  auto now = std::chrono::system_clock::now();
  std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char seconds_text[24];
  std::strftime(seconds_text, sizeof seconds_text, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string time = seconds_text;
  time += "." + std::to_string(1000 + millis.count()).substr(1) + "Z";
  nlohmann::ordered_json line;
  line["time"] = time;
  line["level"] = "error";
  line["event"] = "worker_failed";
  line["message"] = message;
  line["retry_in_ms"] = retry_in.count();
  std::cerr << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace

int BackgroundWorkers::flush_outbox(std::chrono::milliseconds budget) {
  if (!dispatcher_) return 0;
  auto deadline = std::chrono::steady_clock::now() + budget;
  int attempted = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    int batch = 0;
    try {
      batch = dispatcher_->dispatch_once();
    } catch (const std::exception& error) {
      log_worker_error(error.what(), std::chrono::milliseconds{0});
      break;
    }
    if (batch == 0) break;
    attempted += batch;
  }
  return attempted;
}

void BackgroundWorkers::notify() {
  std::lock_guard lock(mutex_);
  ++wakeups_;
  wake_.notify_all();
}

void BackgroundWorkers::loop(const std::function<int()>& step) {
  // After a failed step (the database is unreachable, a statement failed) the wait doubles,
  // up to 10 s, so that an outage costs a few log lines and queries, not one per poll.
  std::chrono::milliseconds failure_wait{0};
  while (!stopping_) {
    uint64_t seen;
    {
      std::lock_guard lock(mutex_);
      seen = wakeups_;
    }
    int done = 0;
    std::chrono::milliseconds wait = options_.poll_interval;
    try {
      done = step();
      failure_wait = std::chrono::milliseconds{0};
    } catch (const std::exception& error) {
      failure_wait = std::min(std::chrono::milliseconds{10'000},
                              std::max(options_.poll_interval, failure_wait * 2));
      wait = failure_wait;
      log_worker_error(error.what(), wait);
    }
    if (done > 0) continue;
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, wait, [&] { return stopping_.load() || wakeups_ != seen; });
  }
}

}  // namespace flowrt::runtime::store
