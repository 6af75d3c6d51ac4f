// A fixed-size pool of PostgreSQL connections and the retry loop every store transaction
// runs in.
//
// Connections are opened lazily, up to `size`; a caller that finds every connection in use
// waits for one. A connection that broke is dropped and replaced on next use.
//
// transact() runs a function inside one READ COMMITTED transaction and commits it. It
// retries the whole function when retrying is safe: serialization failures, deadlocks, and
// a connection lost before COMMIT was sent (the server rolled the transaction back), and a
// prepared statement whose result columns changed type under it (another process applied a
// migration; the session is dropped, and its statements prepared again on a new one). When a
// session is dropped for either reason, the idle ones go too: they were opened no later and
// share its fate (a restarted server, a migration), and each would cost a retry of its own. A
// connection lost during COMMIT (pqxx::in_doubt_error) is never retried: the outcome is
// unknown, and the error reaches the caller. The function may therefore run more than once
// and must not keep effects outside the transaction from an attempt that failed.
// with_connection() is the same retry loop for callers that run their own transaction block
// (the pipelined turn, runtime/store/pipeline.hpp).
//
// Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include <libpq-fe.h>
#include <pqxx/pqxx>

namespace flowrt::runtime::store {

struct PoolOptions {
  std::string url;       // libpq connection string or postgresql:// URL
  int size = 8;          // most connections open at once
  int max_attempts = 5;  // attempts of a transaction before a retryable error is rethrown
  std::chrono::milliseconds acquire_timeout{30'000};
};

// Thrown when no connection could be had within acquire_timeout.
class PoolTimeout : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A libpqxx connection that also gives its libpq handle, for pipeline mode (libpqxx 6.4 keeps
// the handle private; its connection-policy hooks are the documented way to see it).
class PooledConnection : public pqxx::connection_base {
 public:
  explicit PooledConnection(const std::string& url);
  ~PooledConnection() noexcept;
  PGconn* handle() const { return policy_.live; }
  // Names prepared on this session outside libpqxx (by Pipeline); a new session has none.
  std::unordered_set<std::string>& pipeline_statements() { return policy_.pipeline_statements; }

 private:
  struct Policy : pqxx::connect_direct {
    using connect_direct::connect_direct;
    handle do_completeconnect(handle orig) override;
    handle do_dropconnect(handle orig) noexcept override;
    handle do_disconnect(handle orig) noexcept override;
    PGconn* live = nullptr;
    std::unordered_set<std::string> pipeline_statements;
  };
  Policy policy_;
};

class ConnectionPool {
 public:
  explicit ConnectionPool(PoolOptions options);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // Exclusive use of one connection until the Lease is destroyed.
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    PooledConnection& operator*() { return *connection_; }
    PooledConnection* operator->() { return connection_.get(); }
    // The connection is not returned to the pool (it broke, or its session state is odd).
    void discard() { discard_ = true; }

   private:
    friend class ConnectionPool;
    Lease(ConnectionPool* pool, std::unique_ptr<PooledConnection> connection)
        : pool_(pool), connection_(std::move(connection)) {}
    ConnectionPool* pool_;
    std::unique_ptr<PooledConnection> connection_;
    bool discard_ = false;
  };

  // Waits for a free connection (opening one if fewer than `size` exist).
  Lease acquire();

  // Runs fn(pqxx::work&) in a transaction, commits, returns fn's result. See the file comment
  // for what is retried.
  template <class F>
  auto transact(F&& fn) -> decltype(fn(std::declval<pqxx::work&>()));

  // Runs fn(Lease&) with transact()'s retries. fn leaves the session outside any transaction
  // block, or discards the lease.
  template <class F>
  auto with_connection(F&& fn) -> decltype(fn(std::declval<Lease&>()));

  // Same, outside any transaction block (each statement commits on its own).
  template <class F>
  auto autocommit(F&& fn) -> decltype(fn(std::declval<pqxx::nontransaction&>()));

  const PoolOptions& options() const { return options_; }

  // True for errors after which the same transaction may simply be run again.
  static bool retryable(const std::exception& error);
  // True for errors after which the session must not be used again.
  static bool spoils_session(const std::exception& error);

 private:
  void release(std::unique_ptr<PooledConnection> connection, bool discard);
  // Closes every idle connection; those in use are kept.
  void drop_idle();
  void backoff(int attempt);

  PoolOptions options_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<PooledConnection>> idle_;
  int open_ = 0;
};

template <class F>
auto ConnectionPool::with_connection(F&& fn) -> decltype(fn(std::declval<Lease&>())) {
  for (int attempt = 1;; ++attempt) {
    std::optional<Lease> lease;
    try {
      lease.emplace(acquire());
      return fn(*lease);
    } catch (const pqxx::in_doubt_error&) {
      if (lease) lease->discard();
      throw;
    } catch (const std::exception& error) {
      if (lease && spoils_session(error)) {
        lease->discard();
        drop_idle();
      }
      if (!retryable(error) || attempt >= options_.max_attempts) throw;
    }
    lease.reset();
    backoff(attempt);
  }
}

template <class F>
auto ConnectionPool::transact(F&& fn) -> decltype(fn(std::declval<pqxx::work&>())) {
  return with_connection([&](Lease& lease) {
    pqxx::work work(*lease);
    if constexpr (std::is_void_v<decltype(fn(work))>) {
      fn(work);
      work.commit();
    } else {
      auto result = fn(work);
      work.commit();
      return result;
    }
  });
}

template <class F>
auto ConnectionPool::autocommit(F&& fn) -> decltype(fn(std::declval<pqxx::nontransaction&>())) {
  return with_connection([&](Lease& lease) {
    pqxx::nontransaction work(*lease);
    return fn(work);
  });
}

}  // namespace flowrt::runtime::store
