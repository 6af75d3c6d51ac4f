#include "runtime/plugin_host/probe.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <vector>

extern char** environ;

namespace flowrt::runtime::plugin_host {
namespace {

constexpr size_t kMaxReport = 1 << 20;  // the probe's report never needs more
constexpr size_t kStderrTail = 600;     // how much of the plugin's stderr a reason quotes

struct Pipe {
  int read = -1, write = -1;
  ~Pipe() {
    if (read >= 0) ::close(read);
    if (write >= 0) ::close(write);
  }
  bool open() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    read = fds[0];
    write = fds[1];
    return true;
  }
  void close_write() {
    if (write >= 0) ::close(write);
    write = -1;
  }
};

std::string stage_description(const std::string& stage) {
  if (stage == "check") return "checking the file";
  if (stage == "open") return "loading the library (running its static constructors)";
  if (stage == "manifest") return "reading the manifest";
  if (stage == "create") return "calling the factory";
  if (stage == "describe") return "calling describe()";
  if (stage == "destroy") return "destroying the provider object";
  if (stage == "unload") return "unloading the library (running its static destructors)";
  return "starting";
}

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

// The last lines the child wrote to stderr, on one line.
std::string tail(const std::string& text) {
  std::string t = text.size() > kStderrTail ? "…" + text.substr(text.size() - kStderrTail) : text;
  for (char& c : t)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  while (!t.empty() && t.back() == ' ') t.pop_back();
  return t;
}

std::string crash_hint(const std::string& stage, int sig) {
  if (stage == "open")
    return sig == SIGABRT ? "a static constructor probably threw an exception (or called abort)"
                          : "a static constructor crashed";
  if (stage == "create") return "the factory or the provider's constructor crashed";
  if (stage == "unload") return "a static destructor crashed";
  return "the plugin crashed";
}

void read_available(int fd, std::string& into, size_t cap, bool& eof) {
  char buffer[4096];
  for (;;) {
    ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got > 0) {
      if (into.size() < cap)
        into.append(buffer, std::min(static_cast<size_t>(got), cap - into.size()));
      continue;
    }
    if (got < 0 && errno == EINTR) continue;
    if (got == 0) eof = true;
    return;  // EAGAIN or EOF or error
  }
}

}  // namespace

ProbeReport run_probe(const std::filesystem::path& probe, const std::filesystem::path& plugin,
                      std::chrono::milliseconds timeout) {
  ProbeReport report;
  Pipe out, err;
  if (!out.open() || !err.open()) {
    report.reason =
        "cannot create pipes for the plugin probe: " + std::string(std::strerror(errno));
    return report;
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out.write, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err.write, STDERR_FILENO);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t no_signals, default_signals;
  sigemptyset(&no_signals);
  sigfillset(&default_signals);
  posix_spawnattr_setsigmask(&attributes, &no_signals);
  posix_spawnattr_setsigdefault(&attributes, &default_signals);
  posix_spawnattr_setpgroup(&attributes, 0);  // its own group, so a hang kills all of it
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

  std::string probe_text = probe.string(), plugin_text = plugin.string();
  std::vector<char*> argv = {probe_text.data(), plugin_text.data(), nullptr};
  pid_t pid = -1;
  int spawn_error =
      ::posix_spawn(&pid, probe_text.c_str(), &actions, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (spawn_error != 0) {
    report.reason = "cannot run the plugin probe " + probe_text + ": " +
                    std::strerror(spawn_error) +
                    " (install flowrt-plugin-probe next to the flowrt executable, or set its path)";
    return report;
  }
  out.close_write();
  err.close_write();
  ::fcntl(out.read, F_SETFL, O_NONBLOCK);
  ::fcntl(err.read, F_SETFL, O_NONBLOCK);

  std::string stdout_text, stderr_text;
  bool out_eof = false, err_eof = false, exited = false, timed_out = false;
  int wait_status = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!exited || !out_eof || !err_eof) {
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      timed_out = !exited;
      break;
    }
    pollfd fds[2] = {{out.read, POLLIN, 0}, {err.read, POLLIN, 0}};
    int wait_ms = static_cast<int>(std::min<int64_t>(
        50, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1));
    ::poll(fds, 2, wait_ms);
    if (!out_eof) read_available(out.read, stdout_text, kMaxReport, out_eof);
    if (!err_eof) read_available(err.read, stderr_text, kMaxReport, err_eof);
    if (!exited) {
      pid_t done = ::waitpid(pid, &wait_status, WNOHANG);
      if (done == pid) exited = true;
    } else if (!out_eof || !err_eof) {
      // The child is gone but something it started still holds the pipes: stop reading
      // once what is buffered has been drained.
      break;
    }
  }
  if (!exited) {
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
    }
  } else {
    ::kill(-pid, SIGKILL);  // anything the plugin left behind in the probe's group
  }

  // Parse the report lines.
  std::string last_stage;
  nlohmann::json result;
  std::istringstream lines(stdout_text);
  for (std::string line; std::getline(lines, line);) {
    auto value = nlohmann::json::parse(line, nullptr, false);
    if (!value.is_object()) continue;
    if (value.contains("stage") && value["stage"].is_string()) last_stage = value["stage"];
    if (value.contains("result")) result = std::move(value);
  }
  const std::string where = stage_description(last_stage);

  if (timed_out) {
    report.reason = "the plugin did not finish " + where + " within " +
                    std::to_string(timeout.count()) +
                    " ms and was killed: a static constructor or the factory blocks or loops";
    return report;
  }
  if (result.is_object() && result.value("result", "") == "ok") {
    try {
      const auto& m = result.at("manifest");
      report.manifest.abi_version = m.at("abi_version").get<uint32_t>();
      report.manifest.fingerprint = m.at("fingerprint").get<std::string>();
      report.manifest.name = m.at("name").get<std::string>();
      report.manifest.version = m.at("version").get<std::string>();
      report.manifest.description = m.at("description").get<std::string>();
      report.description = result.at("description");
      report.ok = true;
    } catch (const std::exception& e) {
      report.reason = std::string("the plugin probe's report is malformed: ") + e.what();
    }
    return report;
  }
  if (result.is_object() && result.value("result", "") == "error") {
    report.reason = result.value("reason", "the probe reported an error without a reason");
    return report;
  }
  if (WIFSIGNALED(wait_status)) {
    int sig = WTERMSIG(wait_status);
    report.reason = "the plugin crashed the probe process with " + signal_name(sig) + " while " +
                    where + ": " + crash_hint(last_stage, sig);
    std::string said = tail(stderr_text);
    if (!said.empty()) report.reason += "; it printed: " + said;
    return report;
  }
  int code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
  report.reason =
      "the plugin ended the probe process with exit status " + std::to_string(code) + " while " +
      where + ", before the check finished: " +
      (last_stage == "open" ? "a static constructor calls exit()" : "the plugin calls exit()") +
      "; a plugin must never end the process";
  if (last_stage.empty())
    report.reason = "the plugin probe " + probe_text + " exited with status " +
                    std::to_string(code) + " before reporting anything (is it the right program?)";
  std::string said = tail(stderr_text);
  if (!said.empty()) report.reason += "; it printed: " + said;
  return report;
}

}  // namespace flowrt::runtime::plugin_host
