// A provider built with the SDK, broken in one way chosen at compile time (see
// tests/plugins/CMakeLists.txt): FAULT_NAME is its provider name, and one FAULT_* macro
// picks the fault. Without one it is a working provider that misbehaves only at call time
// (FAULT_MISBEHAVES) or not at all.
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <stdexcept>
#include <thread>

#include <flowrt/plugin.hpp>

#if defined(FAULT_USES_DEP)
extern "C" int flowrt_fault_dependency_value();
#endif
#if defined(FAULT_UNDEFINED_SYMBOL)
namespace fault {
int function_nobody_defines(int);  // declared, defined nowhere
}
#endif

namespace {

struct AtLoad {
  AtLoad() {
#if defined(FAULT_CTOR_THROWS)
    throw std::runtime_error("static constructor of fault_ctor_throws failed");
#elif defined(FAULT_CTOR_EXITS)
    std::exit(3);
#elif defined(FAULT_CTOR_HANGS)
    std::this_thread::sleep_for(std::chrono::seconds(60));
#elif defined(FAULT_CTOR_CRASHES)
    std::raise(SIGSEGV);
#elif defined(FAULT_UNDEFINED_SYMBOL)
    value = fault::function_nobody_defines(1);
#elif defined(FAULT_USES_DEP)
    value = flowrt_fault_dependency_value();
#endif
  }
  int value = 0;
};
AtLoad at_load;

using namespace flowrt::sdk;

class Fault final : public Provider {
 public:
  Fault() {
#if defined(FAULT_FACTORY_THROWS)
    throw std::runtime_error("cannot reach the license server");
#endif
  }
  void check_signature(const Request& request, const Channel&) const override {
#if defined(FAULT_MISBEHAVES)
    if (request.header("x-throw") == "int") throw 42;
#endif
    (void)request;
  }
  std::vector<Event> parse(const Request& request, const Channel&) const override {
#if defined(FAULT_MISBEHAVES)
    if (request.body == "logic") throw std::logic_error("parse has a bug");
    if (request.body == "config") throw BadConfig("config foo is missing");
    if (request.body == "no-contact") return {Event {}};
#endif
    return {Event{.contact_id = "c1", .text = request.body}};
  }
  Sent send(const Message& message, const Channel&, Http&) const override {
#if defined(FAULT_MISBEHAVES)
    if (message.text == "retry") throw Retry("upstream is down");
#endif
    return {message.text};
  }
};

}  // namespace

FLOWRT_PROVIDER(Fault, FAULT_NAME, "0.0.1", "a deliberately broken provider for the fault suite")
