// The executor alone: nodes executed per second for a 10-node turn without Lua, and
// validation of a 500-node flow. Run: build/bench/runtime/executor_bench
#include <benchmark/benchmark.h>

#include "runtime/executor.hpp"

namespace {

using flowrt::runtime::Json;
namespace rt = flowrt::runtime;

// question -> 8 text nodes -> condition -> back to the question: one answer runs 10 nodes.
Json ten_node_flow() {
  Json nodes = Json::array();
  nodes.push_back({{"id", "ask"},
                   {"type", "question"},
                   {"text", "Budget, {{contact.name}}?"},
                   {"save_as", "budget"},
                   {"expect", {{"type", "number"}, {"min", 0}}},
                   {"retry", {{"text", "A number please"}, {"max_attempts", 3}, {"next", "t1"}}},
                   {"next", "t1"}});
  for (int i = 1; i <= 8; ++i) {
    nodes.push_back(
        {{"id", "t" + std::to_string(i)},
         {"type", "text"},
         {"text", "Step " + std::to_string(i) + ": {{vars.budget}} for {{contact.name}}"},
         {"next", i == 8 ? "route" : "t" + std::to_string(i + 1)}});
  }
  nodes.push_back({{"id", "route"},
                   {"type", "condition"},
                   {"branches",
                    {{{"when",
                       {{"all",
                         {{{"var", "budget"}, {"op", "gte"}, {"value", 1000}},
                          {{"var", "budget"}, {"op", "exists"}}}}}},
                      {"next", "ask"}}}},
                   {"else", "ask"}});
  return {{"format", "flowrt.flow/1"}, {"id", "bench"}, {"start", "ask"}, {"nodes", nodes}};
}

void BM_TenNodeTurn(benchmark::State& bench) {
  auto parsed = rt::parse_flow(ten_node_flow());
  if (!parsed.flow) {
    bench.SkipWithError("flow did not parse");
    return;
  }
  rt::ManualClock clock;
  rt::Executor executor({&clock, nullptr, nullptr});
  rt::TenantContext tenant{"t1", "Acme", Json::object(), nullptr};
  rt::Contact contact{"c1", "Ana", "+5511912345678"};
  rt::ConversationState state;
  rt::InboundEvent start;
  state = executor.run_turn({parsed.flow, state, contact, start, &tenant}).state;
  rt::InboundEvent answer;
  answer.text = "1500";
  int64_t nodes = 0;
  for (auto _ : bench) {
    rt::TurnResult result = executor.run_turn({parsed.flow, state, contact, answer, &tenant});
    nodes += result.nodes_executed;
    benchmark::DoNotOptimize(result.messages.data());
  }
  bench.counters["nodes/turn"] =
      static_cast<double>(nodes) / static_cast<double>(bench.iterations());
  bench.SetItemsProcessed(nodes);
}
BENCHMARK(BM_TenNodeTurn);

Json big_flow(int size) {
  Json nodes = Json::array();
  for (int i = 0; i < size; ++i) {
    std::string id = "n" + std::to_string(i);
    std::string next = "n" + std::to_string((i + 1) % size);
    switch (i % 5) {
      case 0:
        nodes.push_back({{"id", id},
                         {"type", "question"},
                         {"text", "Q {{vars.x}}"},
                         {"save_as", "x"},
                         {"expect", {{"type", "choice"}, {"choices", {"a", "b", "c"}}}},
                         {"retry", {{"text", "again"}, {"max_attempts", 2}, {"next", next}}},
                         {"next", next}});
        break;
      case 1:
        nodes.push_back(
            {{"id", id},
             {"type", "condition"},
             {"branches",
              {{{"when", {{"var", "x"}, {"op", "eq"}, {"value", "a"}}}, {"next", next}}}},
             {"else", next}});
        break;
      case 2:
        nodes.push_back({{"id", id},
                         {"type", "api_call"},
                         {"method", "POST"},
                         {"url", "https://crm.example/{{vars.x}}"},
                         {"body", {{"x", "{{vars.x}}"}}},
                         {"save", {{"y", "/y"}}},
                         {"on_error", next},
                         {"next", next}});
        break;
      default:
        nodes.push_back({{"id", id},
                         {"type", "text"},
                         {"text", "Hello {{contact.name}} {{vars.x}}"},
                         {"next", next},
                         {"ui", {{"x", i}, {"y", 0}}}});
    }
  }
  return {{"format", "flowrt.flow/1"}, {"id", "big"}, {"start", "n0"}, {"nodes", nodes}};
}

void BM_Validate500NodeFlow(benchmark::State& bench) {
  std::string text = big_flow(500).dump();
  for (auto _ : bench) {
    auto parsed = rt::parse_flow_text(text);
    if (!parsed.flow) bench.SkipWithError("flow did not parse");
    benchmark::DoNotOptimize(parsed.flow.get());
  }
  bench.SetItemsProcessed(bench.iterations() * 500);
}
BENCHMARK(BM_Validate500NodeFlow)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
