// A real `flowrt serve` process for end-to-end tests, and a small client for its API.
//
//   ServeProcess server(database_url("journeys"));      // fresh database, ephemeral port
//   auto tenant = server.create_tenant("Acme");         // operator route; an admin key
//   auto r = server.call("POST", "/v1/flows", tenant.token, flow_json);
//   EXPECT_EQ(r.status, 201) << r.body;
//
// The process listens on 127.0.0.1 with an ephemeral port (read from its stdout), uses the
// operator token kOperatorToken, may reach loopback servers (--allow-private-network), and
// logs to a file whose tail is printed when a test fails (see log_tail()).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/api/test_client.hpp"

namespace flowrt::e2e {

using Json = nlohmann::json;
using api::testing::ClientResponse;

inline constexpr const char* kOperatorToken = "e2e-operator-token";

// A fresh, migrated-on-start database `name` in the binary's cluster.
std::string database_url(const std::string& name);

struct TenantKey {
  std::string tenant_id;
  std::string token;
};

// A response with its body parsed (null when it is not JSON).
struct ApiResponse : ClientResponse {
  Json json;
};

class ServeProcess {
 public:
  // Starts `flowrt serve` and waits until it accepts requests. `extra_args` are added to the
  // command line, `env` to the environment (e.g. {"FLOWRT_RATE_LIMIT_PER_S", "1"}).
  explicit ServeProcess(const std::string& database_url, std::vector<std::string> extra_args = {},
                        std::map<std::string, std::string> env = {});
  // SIGTERM, then waits for a clean exit (SIGKILL after 30 s).
  ~ServeProcess();
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  const std::string& base_url() const { return base_url_; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }

  // A request with `Authorization: Bearer token` (none when token is empty) and, when the
  // body is not empty, Content-Type application/json. `headers` are "Name: value" lines.
  ApiResponse call(const std::string& method, const std::string& path, const std::string& token,
                   const std::string& body = "", std::vector<std::string> headers = {}) const;
  ApiResponse call(const std::string& method, const std::string& path, const std::string& token,
                   const Json& body, std::vector<std::string> headers = {}) const {
    return call(method, path, token, body.dump(), std::move(headers));
  }

  // POST /v1/tenants as the operator; fails the test (ADD_FAILURE) if it does not answer 201.
  TenantKey create_tenant(const std::string& name) const;
  // POST /v1/keys with `role` for the tenant of `admin`; returns the new token.
  std::string create_key(const TenantKey& admin, const std::string& role) const;
  // Creates and publishes a flow document; returns the published version number.
  int publish_flow(const TenantKey& tenant, const Json& document) const;
  // Creates a channel; returns the response's JSON (id, webhook_url, ...).
  Json create_channel(const TenantKey& tenant, const std::string& provider,
                      const std::string& flow_id, const Json& config = Json::object(),
                      const Json& secrets = Json::object()) const;

  // Stops with SIGTERM and returns the exit status (as waitpid's WEXITSTATUS, or 128 +
  // signal). Idempotent.
  int stop();
  // The last `lines` lines of the process's stderr (JSON log lines).
  std::string log_tail(size_t lines = 40) const;
  // The whole stderr log so far.
  std::string log() const;

 private:
  std::filesystem::path folder_;
  std::string base_url_;
  int port_ = 0;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;  // the read end of the process's stdout
  int exit_status_ = -1;
};

// Waits (polling every 20 ms, up to `timeout_ms`) until `ready` returns true.
bool eventually(const std::function<bool()>& ready, int timeout_ms = 10000);

// The example flow `name` (flows/examples/<name>.json).
Json example_flow(const std::string& name);

// HMAC-SHA256 of `body` with `secret`, as lower-case hex.
std::string hmac_sha256_hex(const std::string& secret, const std::string& body);

}  // namespace flowrt::e2e
