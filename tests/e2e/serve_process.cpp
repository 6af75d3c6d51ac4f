#include "tests/e2e/serve_process.hpp"

#include <fcntl.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

namespace flowrt::e2e {

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Reads one line from `fd` (blocking, byte by byte: only used for the start-up banner).
bool read_line(int fd, std::string& line) {
  line.clear();
  char c;
  for (;;) {
    ssize_t n = ::read(fd, &c, 1);
    if (n <= 0) return !line.empty();
    if (c == '\n') return true;
    line.push_back(c);
  }
}

}  // namespace

ServeProcess::ServeProcess(const std::string& database_url, std::vector<std::string> extra_args,
                           std::map<std::string, std::string> env) {
  char pattern[] = "/tmp/flowrt-e2e-XXXXXX";
  if (!::mkdtemp(pattern)) throw std::runtime_error("mkdtemp failed");
  folder_ = pattern;

  std::vector<std::string> args = {FLOWRT_BINARY,
                                   "serve",
                                   "--listen",
                                   "127.0.0.1:0",
                                   "--database-url",
                                   database_url,
                                   "--data-dir",
                                   (folder_ / "data").string(),
                                   "--allow-private-network"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  env.emplace("FLOWRT_ADMIN_TOKEN", kOperatorToken);
  env.emplace("FLOWRT_THREADS", "2");

  int out_pipe[2];
  if (::pipe(out_pipe) != 0) throw std::runtime_error("pipe failed");
  std::string log_path = (folder_ / "stderr.log").string();
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (log_fd >= 0) ::dup2(log_fd, STDERR_FILENO);
    for (const auto& [name, value] : env) ::setenv(name.c_str(), value.c_str(), 1);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::perror("execv flowrt");
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  // The first stdout line is "flowrt is serving on http://127.0.0.1:PORT".
  std::string line;
  constexpr std::string_view banner = "flowrt is serving on ";
  while (read_line(out_pipe[0], line)) {
    auto at = line.find(banner);
    if (at != std::string::npos) {
      base_url_ = line.substr(at + banner.size());
      break;
    }
  }
  // Kept open until the process is gone: closing it would kill the server with SIGPIPE at
  // its next line on stdout (the --demo banner). The pipe's buffer holds what follows.
  stdout_fd_ = out_pipe[0];
  if (base_url_.empty()) {
    stop();
    throw std::runtime_error("flowrt serve did not start; its log:\n" + log_tail(60));
  }
  port_ = std::stoi(base_url_.substr(base_url_.rfind(':') + 1));
}

ServeProcess::~ServeProcess() {
  stop();
  std::error_code ignored;
  std::filesystem::remove_all(folder_, ignored);
}

int ServeProcess::stop() {
  if (pid_ <= 0) return exit_status_;
  ::kill(pid_, SIGTERM);
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid_ = -1;
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
  stdout_fd_ = -1;
  exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return exit_status_;
}

std::string ServeProcess::log() const {
  return read_file(folder_ / "stderr.log");
}

std::string ServeProcess::log_tail(size_t lines) const {
  std::istringstream in(log());
  std::deque<std::string> last;
  for (std::string line; std::getline(in, line);) {
    last.push_back(line);
    if (last.size() > lines) last.pop_front();
  }
  std::string out;
  for (const auto& line : last) out += line + "\n";
  return out;
}

ApiResponse ServeProcess::call(const std::string& method, const std::string& path,
                               const std::string& token, const std::string& body,
                               std::vector<std::string> headers) const {
  if (!token.empty()) headers.push_back("Authorization: Bearer " + token);
  if (!body.empty()) {
    bool has_type = false;
    for (const auto& h : headers) {
      if (h.size() >= 13 && strncasecmp(h.c_str(), "content-type:", 13) == 0) has_type = true;
    }
    if (!has_type) headers.push_back("Content-Type: application/json");
  }
  ApiResponse response;
  static_cast<ClientResponse&>(response) =
      api::testing::http_request(method, base_url_ + path, headers, body);
  response.json = Json::parse(response.body, nullptr, false);
  if (response.json.is_discarded()) response.json = nullptr;
  return response;
}

TenantKey ServeProcess::create_tenant(const std::string& name) const {
  auto r = call("POST", "/v1/tenants", kOperatorToken, Json{{"name", name}});
  if (r.status != 201) {
    ADD_FAILURE() << "POST /v1/tenants answered " << r.status << ": " << r.body;
    return {};
  }
  return {r.json["id"].get<std::string>(), r.json["admin_key"]["token"].get<std::string>()};
}

std::string ServeProcess::create_key(const TenantKey& admin, const std::string& role) const {
  auto r = call("POST", "/v1/keys", admin.token, Json{{"role", role}, {"name", role}});
  if (r.status != 201) {
    ADD_FAILURE() << "POST /v1/keys answered " << r.status << ": " << r.body;
    return "";
  }
  return r.json["token"].get<std::string>();
}

int ServeProcess::publish_flow(const TenantKey& tenant, const Json& document) const {
  auto created = call("POST", "/v1/flows", tenant.token, document);
  if (created.status != 201) {
    ADD_FAILURE() << "POST /v1/flows answered " << created.status << ": " << created.body;
    return 0;
  }
  auto published =
      call("POST", "/v1/flows/" + document["id"].get<std::string>() + "/publish", tenant.token);
  if (published.status != 201) {
    ADD_FAILURE() << "publish answered " << published.status << ": " << published.body;
    return 0;
  }
  return published.json["version"].get<int>();
}

Json ServeProcess::create_channel(const TenantKey& tenant, const std::string& provider,
                                  const std::string& flow_id, const Json& config,
                                  const Json& secrets) const {
  auto r = call("POST", "/v1/channels", tenant.token,
                Json{{"name", provider},
                     {"provider", provider},
                     {"flow_id", flow_id},
                     {"config", config},
                     {"secrets", secrets}});
  if (r.status != 201) {
    ADD_FAILURE() << "POST /v1/channels answered " << r.status << ": " << r.body;
    return Json::object();
  }
  return r.json;
}

bool eventually(const std::function<bool()>& ready, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return ready();
}

Json example_flow(const std::string& name) {
  return Json::parse(read_file(std::filesystem::path(FLOWRT_EXAMPLES_DIR) / (name + ".json")));
}

std::string hmac_sha256_hex(const std::string& secret, const std::string& body) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest, &length);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out.push_back(hex[digest[i] >> 4]);
    out.push_back(hex[digest[i] & 15]);
  }
  return out;
}

}  // namespace flowrt::e2e
