#include "runtime/store/pool.hpp"

#include <random>
#include <string_view>

namespace flowrt::runtime::store {

PooledConnection::PooledConnection(const std::string& url)
    : pqxx::connection_base(policy_), policy_(url) {
  init();  // as pqxx::basic_connection_base does: connects once the policy exists
}

PooledConnection::~PooledConnection() noexcept {
  close();
}

pqxx::connectionpolicy::handle PooledConnection::Policy::do_completeconnect(handle orig) {
  live = connect_direct::do_completeconnect(orig);
  pipeline_statements.clear();
  return live;
}

pqxx::connectionpolicy::handle PooledConnection::Policy::do_dropconnect(handle orig) noexcept {
  live = nullptr;
  pipeline_statements.clear();
  return connect_direct::do_dropconnect(orig);
}

pqxx::connectionpolicy::handle PooledConnection::Policy::do_disconnect(handle orig) noexcept {
  live = nullptr;
  pipeline_statements.clear();
  return connect_direct::do_disconnect(orig);
}

ConnectionPool::ConnectionPool(PoolOptions options) : options_(std::move(options)) {
  if (options_.size < 1) options_.size = 1;
  if (options_.max_attempts < 1) options_.max_attempts = 1;
}

ConnectionPool::~ConnectionPool() = default;

ConnectionPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_), connection_(std::move(other.connection_)), discard_(other.discard_) {
  other.pool_ = nullptr;
}

ConnectionPool::Lease::~Lease() {
  if (pool_ && connection_) pool_->release(std::move(connection_), discard_);
}

ConnectionPool::Lease ConnectionPool::acquire() {
  std::unique_lock lock(mutex_);
  auto deadline = std::chrono::steady_clock::now() + options_.acquire_timeout;
  for (;;) {
    if (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(connection));
    }
    if (open_ < options_.size) {
      ++open_;
      lock.unlock();
      try {
        auto connection = std::make_unique<PooledConnection>(options_.url);
        return Lease(this, std::move(connection));
      } catch (...) {
        lock.lock();
        --open_;
        available_.notify_one();
        throw;
      }
    }
    if (available_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
        open_ >= options_.size) {
      throw PoolTimeout("no database connection became free within " +
                        std::to_string(options_.acquire_timeout.count()) +
                        " ms; raise the pool size or look for long transactions");
    }
  }
}

void ConnectionPool::release(std::unique_ptr<PooledConnection> connection, bool discard) {
  std::lock_guard lock(mutex_);
  if (discard || !connection->is_open()) {
    --open_;
  } else {
    idle_.push_back(std::move(connection));
  }
  available_.notify_one();
}

void ConnectionPool::drop_idle() {
  // Declared before the lock, so that the connections close after it is released.
  std::vector<std::unique_ptr<PooledConnection>> dropped;
  std::lock_guard lock(mutex_);
  dropped.swap(idle_);
  open_ -= static_cast<int>(dropped.size());
  available_.notify_all();
}

bool ConnectionPool::retryable(const std::exception& error) {
  if (dynamic_cast<const pqxx::in_doubt_error*>(&error)) return false;
  if (dynamic_cast<const pqxx::serialization_failure*>(&error)) return true;
  if (dynamic_cast<const pqxx::deadlock_detected*>(&error)) return true;
  if (spoils_session(error)) return true;  // a new session runs it afresh
  if (auto* sql = dynamic_cast<const pqxx::sql_error*>(&error)) {
    const std::string& state = sql->sqlstate();
    // 40001 serialization_failure, 40P01 deadlock, 57P01 admin_shutdown, 08xxx connection.
    return state == "40001" || state == "40P01" || state == "57P01" || state.rfind("08", 0) == 0;
  }
  return false;
}

bool ConnectionPool::spoils_session(const std::exception& error) {
  if (dynamic_cast<const pqxx::broken_connection*>(&error)) return true;
  // A statement prepared before a migration changed the type of a column it returns: the
  // server refuses to run it (0A000) before it does anything, and goes on refusing for as
  // long as the session keeps it.
  auto* sql = dynamic_cast<const pqxx::sql_error*>(&error);
  return sql && sql->sqlstate() == "0A000" &&
         std::string_view(sql->what()).find("cached plan must not change result type") !=
             std::string_view::npos;
}

void ConnectionPool::backoff(int attempt) {
  thread_local std::minstd_rand random(std::random_device{}());
  int base = std::min(1000, 10 << std::min(attempt, 7));
  std::uniform_int_distribution<int> jitter(base / 2, base);
  std::this_thread::sleep_for(std::chrono::milliseconds(jitter(random)));
}

}  // namespace flowrt::runtime::store
