// Metrics in the Prometheus text exposition format (version 0.0.4), served at /metrics.
//
// A MetricsRegistry is an ordinary object, created in `main` and passed to whatever
// records metrics (the HTTP server, the turn processor, the outbox dispatcher, the plugin
// host); there is no global registry. Families are registered once by name and return
// references that stay valid as long as the registry, so hot paths keep the reference and
// pay only for an atomic add:
//
//   auto& turns = registry.counter("flowrt_turns_total", "Turns processed.", {"outcome"});
//   turns.labels({"ok"}).inc();
//   registry.gauge_callback("flowrt_outbox_depth", "Messages waiting.", [&] { return depth(); });
//
// Registering a name again with the same kind and label names returns the same family;
// with a different kind or labels it throws std::logic_error. All operations are
// thread-safe. Label values are escaped on output; keep their number bounded (route
// patterns, not paths; status codes, not ids).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace flowrt::api {

using LabelValues = std::vector<std::string>;

class Counter {
 public:
  void inc(double amount = 1.0);  // amount must be >= 0 (negative amounts are ignored)
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void set(double value) { value_.store(value, std::memory_order_relaxed); }
  void inc(double amount = 1.0);
  void dec(double amount = 1.0) { inc(-amount); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  const std::vector<double>& upper_bounds() const { return bounds_; }
  // Cumulative counts per bound, then +Inf; sum; count.
  std::vector<uint64_t> cumulative_counts() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // non-cumulative, last is +Inf
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

// Seconds, from 5 ms to 30 s: covers a cached GET up to a turn that waits on an api_call.
std::vector<double> default_latency_buckets();

template <typename Metric>
class Family {
 public:
  using Factory = std::function<std::unique_ptr<Metric>()>;
  Family(std::string name, std::string help, std::vector<std::string> label_names, Factory make)
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        make_(std::move(make)) {}

  // The series with these label values (in the order of the family's label names),
  // created on first use. Throws std::invalid_argument if the count does not match.
  Metric& labels(const LabelValues& values);
  // For families without labels.
  Metric& get() { return labels({}); }

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  // A consistent copy of the series pointers, for rendering.
  std::vector<std::pair<LabelValues, const Metric*>> series() const;

 private:
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  Factory make_;
  mutable std::mutex mutex_;
  std::map<LabelValues, std::unique_ptr<Metric>> series_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

class MetricsRegistry {
 public:
  // `name` must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*;
  // std::invalid_argument otherwise. Counter names should end in `_total`.
  CounterFamily& counter(const std::string& name, const std::string& help,
                         std::vector<std::string> label_names = {});
  GaugeFamily& gauge(const std::string& name, const std::string& help,
                     std::vector<std::string> label_names = {});
  HistogramFamily& histogram(const std::string& name, const std::string& help,
                             std::vector<std::string> label_names = {},
                             std::vector<double> upper_bounds = default_latency_buckets());
  // A gauge whose value is read at each scrape (e.g. the outbox depth from the database).
  // The callback runs on the scraping thread with the registry locked: it must not call the
  // registry, and should be quick. An exception from it omits the sample.
  void gauge_callback(const std::string& name, const std::string& help,
                      std::function<double()> read);

  // Every family in the text format, families sorted by name.
  std::string render() const;

 private:
  enum class Kind { counter, gauge, histogram, callback };
  struct Entry {
    Kind kind;
    std::vector<std::string> label_names;
    std::unique_ptr<CounterFamily> counter;
    std::unique_ptr<GaugeFamily> gauge;
    std::unique_ptr<HistogramFamily> histogram;
    std::string help;
    std::function<double()> read;
  };
  Entry& find_or_add(const std::string& name, Kind kind, const std::vector<std::string>& labels);

  mutable std::mutex mutex_;
  std::map<std::string, Entry> entries_;
};

// Escapes a label value: backslash, double quote and newline (text format rules).
std::string escape_label_value(const std::string& value);

template <typename Metric>
Metric& Family<Metric>::labels(const LabelValues& values) {
  if (values.size() != label_names_.size()) {
    throw std::invalid_argument("metric " + name_ + " takes " +
                                std::to_string(label_names_.size()) + " label values");
  }
  std::lock_guard lock(mutex_);
  auto it = series_.find(values);
  if (it == series_.end()) it = series_.emplace(values, make_()).first;
  return *it->second;
}

template <typename Metric>
std::vector<std::pair<LabelValues, const Metric*>> Family<Metric>::series() const {
  std::lock_guard lock(mutex_);
  std::vector<std::pair<LabelValues, const Metric*>> out;
  for (const auto& [values, metric] : series_) out.emplace_back(values, metric.get());
  return out;
}

}  // namespace flowrt::api
