// flowrt-plugin-probe FILE
//
// Vets one plugin file in a process of its own, so that whatever the plugin does while it
// loads (static constructors that throw, call exit(), crash or hang) cannot take the
// server down: the server runs this program, waits for it with a timeout, and reads the
// report (the same idea as GStreamer's gst-plugin-scanner).
//
// Report, on standard output, one JSON object per line:
//   {"stage": "check" | "open" | "manifest" | "create" | "describe" | "destroy" | "unload"}
//       written before each step, so that the parent knows where a crash happened;
//   {"result": "ok", "manifest": {...}, "description": {...}} or
//   {"result": "error", "reason": "..."} as the last line.
// Anything the plugin itself prints to standard output is redirected to standard error,
// so it cannot corrupt the report. Exit status 0 whenever a result line was written.
#include <cxxabi.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <typeinfo>

#include <boost/dll/shared_library.hpp>
#include <nlohmann/json.hpp>

#include "runtime/plugin_host/checks.hpp"

namespace {

using flowrt::runtime::plugin_host::check_description;
using flowrt::runtime::plugin_host::check_manifest;
using flowrt::runtime::plugin_host::check_plugin_file;
using flowrt::runtime::plugin_host::CurrentException;
using flowrt::runtime::plugin_host::describe_current_exception;
using flowrt::runtime::plugin_host::dlerror_from_boost;
using flowrt::runtime::plugin_host::explain_load_error;
using flowrt::runtime::plugin_host::ManifestInfo;

class Reporter {
 public:
  explicit Reporter(int fd) : fd_(fd) {}

  void stage(const char* name) { line({{"stage", name}}); }
  int fail(const std::string& reason) {
    line({{"result", "error"}, {"reason", reason}});
    return 0;
  }
  int ok(const ManifestInfo& m, const nlohmann::json& description) {
    line({{"result", "ok"},
          {"manifest",
           {{"abi_version", m.abi_version},
            {"fingerprint", m.fingerprint},
            {"name", m.name},
            {"version", m.version},
            {"description", m.description}}},
          {"description", description}});
    return 0;
  }

 private:
  void line(const nlohmann::json& value) {
    std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    text.push_back('\n');
    const char* data = text.data();
    size_t left = text.size();
    while (left > 0) {
      ssize_t written = ::write(fd_, data, left);
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) return;
      data += written;
      left -= static_cast<size_t>(written);
    }
  }
  int fd_;
};

// "std::runtime_error: message" for the exception being handled.
std::string current_exception_text() {
  CurrentException current = describe_current_exception();
  return current.what ? current.type + ": " + *current.what : current.type;
}

void append_to_string(void* context, const char* data, size_t size) {
  try {
    static_cast<std::string*>(context)->append(data, size);
  } catch (...) {
  }
}

int probe(const char* file, Reporter& report) {
  report.stage("check");
  if (auto reason = check_plugin_file(file)) return report.fail(*reason);

  report.stage("open");
  std::optional<boost::dll::shared_library> library;
  try {
    library.emplace(boost::dll::fs::path(file),
                    boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const boost::dll::fs::system_error& e) {
    return report.fail(explain_load_error(dlerror_from_boost(e.what())));
  } catch (...) {
    // A static constructor threw and the exception unwound through dlopen (this happens
    // when the loader is intercepted, e.g. under AddressSanitizer); otherwise it aborts.
    return report.fail(
        "a static constructor threw an exception while loading the library (running its static "
        "constructors): " +
        current_exception_text() + "; fix it or catch the exception inside the plugin");
  }

  report.stage("manifest");
  if (!library->has(FLOWRT_PLUGIN_MANIFEST_SYMBOL))
    return report.fail(
        "no flowrt_plugin_manifest symbol: this is not a flowrt provider plugin, or it was "
        "built without the FLOWRT_PROVIDER macro (or with the symbol hidden)");
  ManifestInfo manifest;
  const auto& raw_manifest =
      library->get_alias<const flowrt_manifest>(FLOWRT_PLUGIN_MANIFEST_SYMBOL);
  if (auto reason = check_manifest(&raw_manifest, &manifest)) return report.fail(*reason);
  for (const char* symbol : {FLOWRT_PLUGIN_CREATE_SYMBOL, FLOWRT_PLUGIN_DESTROY_SYMBOL})
    if (!library->has(symbol))
      return report.fail(std::string("no ") + symbol +
                         " symbol: the plugin has a manifest but no factory/destroy pair; "
                         "export them with FLOWRT_PROVIDER");
  auto& create = library->get_alias<flowrt_create_fn>(FLOWRT_PLUGIN_CREATE_SYMBOL);
  auto& destroy = library->get_alias<flowrt_destroy_fn>(FLOWRT_PLUGIN_DESTROY_SYMBOL);

  report.stage("create");
  std::string error;
  flowrt_sink error_sink{&error, &append_to_string};
  flowrt_provider* provider = nullptr;
  try {
    provider = create(&error_sink);
  } catch (...) {
    return report.fail("the factory threw " + current_exception_text() +
                       " (it must not let exceptions escape; FLOWRT_PROVIDER's factory catches "
                       "them for you)");
  }
  if (provider == nullptr) {
    if (!error.empty()) return report.fail("the factory failed: " + error);
    return report.fail(
        "the factory returned null without saying why: it must return a provider object");
  }
  const flowrt_provider_vtable* vtable = provider->vtable;
  if (vtable == nullptr || !vtable->describe || !vtable->verify || !vtable->check_signature ||
      !vtable->parse || !vtable->send) {
    destroy(provider);
    return report.fail("the provider's function table is incomplete (a null entry)");
  }

  report.stage("describe");
  std::string output;
  flowrt_sink out{&output, &append_to_string};
  int status = FLOWRT_FAILED;
  try {
    status = vtable->describe(provider, &out);
  } catch (...) {
    status = FLOWRT_FAILED;
    output = "describe() threw " + current_exception_text();
  }
  nlohmann::json description;
  std::optional<std::string> problem;
  if (status != FLOWRT_OK)
    problem = "describe() failed: " + output;
  else
    problem = check_description(output, &description);

  report.stage("destroy");
  try {
    destroy(provider);
  } catch (...) {
    return report.fail("destroying the provider threw " + current_exception_text());
  }
  if (problem) return report.fail(*problem);

  report.stage("unload");
  library.reset();
  return report.ok(manifest, description);
}

}  // namespace

// When the probe is built with AddressSanitizer, let a crashing plugin die by its signal
// (as without ASan) instead of ASan's report-and-exit(1), and do not let leak reports
// change the exit status the plugin chose: the parent maps both to a reason.
extern "C" const char* __asan_default_options() {
  return "handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_abort=0:detect_leaks=0";
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s PLUGIN_FILE\n", argv[0]);
    return 2;
  }
  // The report goes to the original standard output; the plugin's own output to stderr.
  int report_fd = ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  if (report_fd < 0 || ::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
    std::perror("flowrt-plugin-probe");
    return 2;
  }
  Reporter report(report_fd);
  int status = probe(argv[1], report);
  std::fflush(stdout);
  return status;
}
