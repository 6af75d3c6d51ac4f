// Delivers outbox messages through the channel's provider plugin (SPEC §5.4, §6).
#pragma once

#include "api/app/app.hpp"
#include "runtime/store/workers.hpp"

namespace flowrt::api {

class PluginSender : public store::OutboundSender {
 public:
  // `http` is lent to providers for each send; it enforces the server's network policy.
  // `plugin_errors` (may be null) counts provider faults by {provider, operation}.
  PluginSender(store::Store& store, const plugin_host::PluginRegistry& plugins,
               runtime::HttpClient& http, const runtime::Clock& clock,
               CounterFamily* plugin_errors = nullptr);

  // A provider's `retry` and `failed` outcomes are retried (a plugin failure may be a
  // transient fault in one call); `rejected` and `bad_config` are permanent: the
  // same message to the same channel will not start working by itself.
  store::SendResult send(const store::OutboxMessage& message) override;

 private:
  store::Store& store_;
  const plugin_host::PluginRegistry& plugins_;
  runtime::HttpClient& http_;
  const runtime::Clock& clock_;
  CounterFamily* plugin_errors_;
};

}  // namespace flowrt::api
