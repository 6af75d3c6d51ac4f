// Several statements in one round trip, on a pooled connection, through libpq's pipeline mode
// (libpqxx 6.4 has none). A durable turn uses it to send BEGIN, the contact's lock and the
// turn's read together, and later its write with COMMIT: two round trips instead of five,
// each of which blocks the calling thread and wakes the server (docs/performance.md).
//
// Statements are prepared on the session on first use, under their own names ("pipelined_"
// and the caller's name), apart from the statements libpqxx prepares.
//
// Not thread-safe: one Pipeline per leased connection at a time.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/store/pool.hpp"

namespace flowrt::runtime::store {

// A statement of a pipeline failed; the ones after it in the same round trip did not run.
// Thrown as a pqxx::sql_error so that ConnectionPool retries what it retries for libpqxx.
class PipelineError : public pqxx::sql_error {
 public:
  PipelineError(const std::string& message, const std::string& query, const std::string& sqlstate,
                std::string constraint)
      : pqxx::sql_error(message, query, sqlstate.c_str()), constraint(std::move(constraint)) {}
  std::string constraint;  // of a constraint violation; "" otherwise
};

// One field of a pipelined result, read like a pqxx::field.
class PipelineField {
 public:
  PipelineField(const PGresult* result, int row, int column)
      : result_(result), row_(row), column_(column) {}
  bool is_null() const { return PQgetisnull(result_, row_, column_) != 0; }
  template <class T>
  T as() const {
    T value;
    pqxx::from_string(PQgetvalue(result_, row_, column_), value);
    return value;
  }

 private:
  const PGresult* result_;
  int row_, column_;
};

// One row of a pipelined result, read like a pqxx::row.
class PipelineRow {
 public:
  PipelineRow(const PGresult* result, int row) : result_(result), row_(row) {}
  PipelineField operator[](int column) const { return {result_, row_, column}; }

 private:
  const PGresult* result_;
  int row_;
};

class PipelineResult {
 public:
  explicit PipelineResult(PGresult* result) : result_(result, PQclear) {}
  int size() const { return PQntuples(result_.get()); }
  bool empty() const { return size() == 0; }
  PipelineRow operator[](int row) const { return {result_.get(), row}; }

 private:
  std::shared_ptr<PGresult> result_;
};

class Pipeline {
 public:
  explicit Pipeline(PooledConnection& connection) : connection_(connection) {}

  // Queues a statement without parameters (BEGIN, COMMIT).
  void command(const std::string& sql);
  // Queues the statement `sql`, prepared under `name` on first use on this session.
  void prepared(const std::string& name, const std::string& sql, std::vector<std::string> params);

  // Sends what is queued in one round trip and returns one result per statement, in order.
  // Throws PipelineError for the first statement that failed, pqxx::broken_connection if the
  // session was lost. Either way the connection is out of pipeline mode when this returns,
  // or is broken; the queue is empty.
  std::vector<PipelineResult> run();

 private:
  struct Queued {
    std::string name;  // "" for a command
    std::string sql;
    std::vector<std::string> params;
    bool prepare = false;
  };
  PooledConnection& connection_;
  std::vector<Queued> queue_;
};

// A transaction block opened with BEGIN at the head of a pipeline and ended here: commit()
// sends COMMIT behind whatever is queued, in the same round trip. Left without a commit (an
// early return, an exception), it rolls back, or discards the connection if the session's
// state is not known.
class PipelinedTransaction {
 public:
  explicit PipelinedTransaction(ConnectionPool::Lease& lease);
  ~PipelinedTransaction();
  PipelinedTransaction(const PipelinedTransaction&) = delete;
  PipelinedTransaction& operator=(const PipelinedTransaction&) = delete;

  // Where to queue statements; the first run() sends BEGIN ahead of them (its result first).
  Pipeline& pipeline() { return pipeline_; }
  std::vector<PipelineResult> run() { return pipeline_.run(); }
  // Runs what is queued, then COMMIT. A connection lost in this round trip leaves the outcome
  // unknown: pqxx::in_doubt_error.
  std::vector<PipelineResult> commit();
  bool ended() const { return ended_; }

 private:
  ConnectionPool::Lease& lease_;
  Pipeline pipeline_;
  bool ended_ = false;
};

}  // namespace flowrt::runtime::store
