#include "api/server/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace flowrt::api {

void Counter::inc(double amount) {
  if (!(amount >= 0)) return;
  value_.fetch_add(amount, std::memory_order_relaxed);
}

void Gauge::inc(double amount) {
  value_.fetch_add(amount, std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
  std::sort(bounds_.begin(), bounds_.end());
  bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
  buckets_ = std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::observe(double value) {
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::cumulative_counts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    out[i] = running;
  }
  return out;
}

std::vector<double> default_latency_buckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
}

std::string escape_label_value(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

namespace {
std::string escape_help(const std::string& help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

bool valid_name(const std::string& name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = std::isalpha(static_cast<unsigned char>(c)) || c == '_' ||
              (allow_colon && c == ':') || (i > 0 && std::isdigit(static_cast<unsigned char>(c)));
    if (!ok) return false;
  }
  return true;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<long long>(v));
  }
  char buffer[64];
  auto result = std::to_chars(buffer, buffer + sizeof buffer, v);  // shortest round-trip form
  return std::string(buffer, result.ptr);
}

std::string label_block(const std::vector<std::string>& names, const LabelValues& values,
                        const std::string& extra_name = {}, const std::string& extra_value = {}) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    out += (out.empty() ? "" : ",") + names[i] + "=\"" + escape_label_value(values[i]) + "\"";
  }
  if (!extra_name.empty()) {
    out += (out.empty() ? "" : ",") + extra_name + "=\"" + extra_value + "\"";
  }
  return out.empty() ? out : "{" + out + "}";
}
}  // namespace

MetricsRegistry::Entry& MetricsRegistry::find_or_add(const std::string& name, Kind kind,
                                                     const std::vector<std::string>& labels) {
  if (!valid_name(name, true)) throw std::invalid_argument("bad metric name: " + name);
  for (const auto& l : labels) {
    if (!valid_name(l, false) || l.starts_with("__") || l == "le") {
      throw std::invalid_argument("bad label name '" + l + "' for metric " + name);
    }
  }
  auto it = entries_.find(name);
  if (it != entries_.end()) {
    if (it->second.kind != kind || it->second.label_names != labels) {
      throw std::logic_error("metric " + name +
                             " is already registered with another kind or labels");
    }
    return it->second;
  }
  Entry entry;
  entry.kind = kind;
  entry.label_names = labels;
  return entries_.emplace(name, std::move(entry)).first->second;
}

CounterFamily& MetricsRegistry::counter(const std::string& name, const std::string& help,
                                        std::vector<std::string> label_names) {
  std::lock_guard lock(mutex_);
  Entry& e = find_or_add(name, Kind::counter, label_names);
  if (!e.counter) {
    e.counter = std::make_unique<CounterFamily>(name, help, std::move(label_names),
                                                [] { return std::make_unique<Counter>(); });
  }
  return *e.counter;
}

GaugeFamily& MetricsRegistry::gauge(const std::string& name, const std::string& help,
                                    std::vector<std::string> label_names) {
  std::lock_guard lock(mutex_);
  Entry& e = find_or_add(name, Kind::gauge, label_names);
  if (!e.gauge) {
    e.gauge = std::make_unique<GaugeFamily>(name, help, std::move(label_names),
                                            [] { return std::make_unique<Gauge>(); });
  }
  return *e.gauge;
}

HistogramFamily& MetricsRegistry::histogram(const std::string& name, const std::string& help,
                                            std::vector<std::string> label_names,
                                            std::vector<double> upper_bounds) {
  std::lock_guard lock(mutex_);
  Entry& e = find_or_add(name, Kind::histogram, label_names);
  if (!e.histogram) {
    e.histogram = std::make_unique<HistogramFamily>(
        name, help, std::move(label_names),
        [bounds = std::move(upper_bounds)] { return std::make_unique<Histogram>(bounds); });
  }
  return *e.histogram;
}

void MetricsRegistry::gauge_callback(const std::string& name, const std::string& help,
                                     std::function<double()> read) {
  std::lock_guard lock(mutex_);
  Entry& e = find_or_add(name, Kind::callback, {});
  e.help = help;
  e.read = std::move(read);
}

std::string MetricsRegistry::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& [name, e] : entries_) {
    switch (e.kind) {
      case Kind::counter: {
        out += "# HELP " + name + " " + escape_help(e.counter->help()) + "\n";
        out += "# TYPE " + name + " counter\n";
        for (const auto& [values, c] : e.counter->series()) {
          out += name + label_block(e.label_names, values) + " " + format_value(c->value()) + "\n";
        }
        break;
      }
      case Kind::gauge: {
        out += "# HELP " + name + " " + escape_help(e.gauge->help()) + "\n";
        out += "# TYPE " + name + " gauge\n";
        for (const auto& [values, g] : e.gauge->series()) {
          out += name + label_block(e.label_names, values) + " " + format_value(g->value()) + "\n";
        }
        break;
      }
      case Kind::histogram: {
        out += "# HELP " + name + " " + escape_help(e.histogram->help()) + "\n";
        out += "# TYPE " + name + " histogram\n";
        for (const auto& [values, h] : e.histogram->series()) {
          auto counts = h->cumulative_counts();
          const auto& bounds = h->upper_bounds();
          for (size_t i = 0; i < bounds.size(); ++i) {
            out += name + "_bucket" +
                   label_block(e.label_names, values, "le", format_value(bounds[i])) + " " +
                   std::to_string(counts[i]) + "\n";
          }
          out += name + "_bucket" + label_block(e.label_names, values, "le", "+Inf") + " " +
                 std::to_string(counts.back()) + "\n";
          out += name + "_sum" + label_block(e.label_names, values) + " " + format_value(h->sum()) +
                 "\n";
          out += name + "_count" + label_block(e.label_names, values) + " " +
                 std::to_string(h->count()) + "\n";
        }
        break;
      }
      case Kind::callback: {
        std::string sample;
        try {
          sample = name + " " + format_value(e.read()) + "\n";
        } catch (...) {
          sample.clear();  // a failing source omits its sample rather than failing the scrape
        }
        out += "# HELP " + name + " " + escape_help(e.help) + "\n";
        out += "# TYPE " + name + " gauge\n" + sample;
        break;
      }
    }
  }
  return out;
}

}  // namespace flowrt::api
