#include "runtime/store/pipeline.hpp"

#include <optional>

namespace flowrt::runtime::store {
namespace {

std::string field_of(const PGresult* result, int field) {
  const char* value = PQresultErrorField(result, field);
  return value ? value : "";
}

}  // namespace

void Pipeline::command(const std::string& sql) {
  queue_.push_back({"", sql, {}, false});
}

void Pipeline::prepared(const std::string& name, const std::string& sql,
                        std::vector<std::string> params) {
  // Counted as prepared from now on; run() forgets it again if the PREPARE does not succeed.
  bool fresh = connection_.pipeline_statements().insert(name).second;
  queue_.push_back({name, sql, std::move(params), fresh});
}

std::vector<PipelineResult> Pipeline::run() {
  std::vector<Queued> queue = std::move(queue_);
  queue_.clear();
  PGconn* session = connection_.handle();
  auto lost = [&] {
    for (const auto& item : queue) {
      if (item.prepare) connection_.pipeline_statements().erase(item.name);
    }
    return pqxx::broken_connection(std::string("lost the database connection: ") +
                                   (session ? PQerrorMessage(session) : "not connected"));
  };
  if (!session || PQstatus(session) != CONNECTION_OK || PQenterPipelineMode(session) != 1) {
    throw lost();
  }

  // Every statement gives one result and then a null; a PREPARE counts as a statement.
  for (const auto& item : queue) {
    int sent;
    if (item.name.empty()) {
      sent = PQsendQueryParams(session, item.sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0);
    } else {
      const std::string name = "pipelined_" + item.name;
      sent = !item.prepare || PQsendPrepare(session, name.c_str(), item.sql.c_str(), 0, nullptr);
      std::vector<const char*> values;
      for (const auto& param : item.params) values.push_back(param.c_str());
      sent = sent && PQsendQueryPrepared(session, name.c_str(), static_cast<int>(values.size()),
                                         values.data(), nullptr, nullptr, 0);
    }
    if (!sent) throw lost();
  }
  if (PQpipelineSync(session) != 1) throw lost();

  std::vector<PipelineResult> results;
  std::optional<PipelineError> failure;
  auto take = [&](const std::string& query) -> PGresult* {
    PGresult* result = PQgetResult(session);
    if (!result || PQstatus(session) != CONNECTION_OK) {
      PQclear(result);
      throw lost();
    }
    ExecStatusType status = PQresultStatus(result);
    if (status == PGRES_FATAL_ERROR && !failure) {
      failure.emplace(PQresultErrorMessage(result), query, field_of(result, PG_DIAG_SQLSTATE),
                      field_of(result, PG_DIAG_CONSTRAINT_NAME));
    }
    PQclear(PQgetResult(session));  // the null that ends this statement's results
    return result;
  };
  for (const auto& item : queue) {
    if (item.prepare) {
      PGresult* prepared = take(item.sql);
      if (PQresultStatus(prepared) != PGRES_COMMAND_OK) {
        connection_.pipeline_statements().erase(item.name);
      }
      PQclear(prepared);
    }
    PGresult* result = take(item.sql);
    ExecStatusType status = PQresultStatus(result);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
      results.emplace_back(result);
    } else {
      PQclear(result);
    }
  }
  PGresult* sync = PQgetResult(session);
  const bool synced = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
  PQclear(sync);
  if (!synced || PQexitPipelineMode(session) != 1) throw lost();
  if (failure) throw *failure;
  return results;
}

PipelinedTransaction::PipelinedTransaction(ConnectionPool::Lease& lease)
    : lease_(lease), pipeline_(*lease) {
  pipeline_.command("BEGIN");
}

std::vector<PipelineResult> PipelinedTransaction::commit() {
  pipeline_.command("COMMIT");
  try {
    auto results = pipeline_.run();
    ended_ = true;
    return results;
  } catch (const pqxx::broken_connection& error) {
    throw pqxx::in_doubt_error(std::string("the connection was lost while committing: ") +
                               error.what());
  }
}

PipelinedTransaction::~PipelinedTransaction() {
  if (ended_) return;
  PGconn* session = lease_->handle();
  if (!session || PQstatus(session) != CONNECTION_OK ||
      PQpipelineStatus(session) != PQ_PIPELINE_OFF) {
    lease_.discard();
    return;
  }
  PGresult* result = PQexec(session, "ROLLBACK");
  const bool rolled_back = PQresultStatus(result) == PGRES_COMMAND_OK;
  PQclear(result);
  if (!rolled_back || PQtransactionStatus(session) != PQTRANS_IDLE) lease_.discard();
}

}  // namespace flowrt::runtime::store
