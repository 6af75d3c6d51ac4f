// The second process of the multi-process store tests.
//
//   store_test_helper hammer URL TENANT CHANNEL CONTACT PREFIX N
//       sends N messages "PREFIX-000i" one after another through accept_and_process.
//   store_test_helper block URL
//       runs inbox workers whose turns stop before COMMIT: prints "blocked <inbox id>" and
//       sleeps (the test kills it with SIGKILL).
//   store_test_helper timers URL MILLISECONDS
//       fires due timers in a loop for that long, then prints "fired <count>".
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "runtime/executor.hpp"
#include "runtime/store/turns.hpp"

using namespace flowrt::runtime;

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() < 2) {
    std::cerr << "usage: store_test_helper hammer|block|timers URL ...\n";
    return 2;
  }
  SystemClock clock;
  Executor executor(ExecutorServices{&clock, nullptr, nullptr});
  store::StoreOptions options;
  options.database_url = args[1];
  options.pool_size = 4;
  store::Store db(options);
  store::TurnProcessorOptions turn_options;
  if (args[0] == "block") {
    turn_options.before_commit = [](int64_t inbox_id) {
      std::printf("blocked %lld\n", static_cast<long long>(inbox_id));
      std::fflush(stdout);
      for (;;) std::this_thread::sleep_for(std::chrono::seconds(60));
    };
  }
  store::TurnProcessor turns(db, executor, turn_options);

  if (args[0] == "hammer" && args.size() == 7) {
    int n = std::stoi(args[6]);
    for (int i = 0; i < n; ++i) {
      store::InboundMessage m;
      m.tenant_id = args[2];
      m.channel_id = args[3];
      m.contact.id = args[4];
      char text[64];
      std::snprintf(text, sizeof text, "%s-%04d", args[5].c_str(), i);
      m.event.text = text;
      m.provider_message_id = text;
      auto outcome = turns.accept_and_process(m, store::Delivery::outbox);
      if (outcome.kind != store::TurnOutcome::Kind::processed) {
        std::cerr << "message " << text << " was not processed: " << outcome.error << "\n";
        return 1;
      }
    }
    std::printf("done\n");
    return 0;
  }
  if (args[0] == "block") {
    for (;;) {
      turns.process_pending(1);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  if (args[0] == "timers" && args.size() == 3) {
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::stoi(args[2]));
    int fired = 0;
    while (std::chrono::steady_clock::now() < until) {
      fired += turns.fire_due_timers(8, clock.now_ms());
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::printf("fired %d\n", fired);
    return 0;
  }
  std::cerr << "unknown mode or wrong arguments\n";
  return 2;
}
