#include "api/app/plugin_sender.hpp"

namespace flowrt::api {

PluginSender::PluginSender(store::Store& store, const plugin_host::PluginRegistry& plugins,
                           runtime::HttpClient& http, const runtime::Clock& clock,
                           CounterFamily* plugin_errors)
    : store_(store), plugins_(plugins), http_(http), clock_(clock), plugin_errors_(plugin_errors) {}

store::SendResult PluginSender::send(const store::OutboxMessage& message) {
  if (message.channel_id.empty()) {
    return store::SendResult::fail("the conversation has no channel to deliver through");
  }
  auto channel = store_.get_channel(message.tenant_id, message.channel_id);
  if (!channel) return store::SendResult::fail("channel " + message.channel_id + " was deleted");
  auto provider = plugins_.find(channel->provider);
  if (!provider) {
    return store::SendResult::retry("provider \"" + channel->provider + "\" is not loaded here");
  }
  if (provider->info().replies_in_response) return store::SendResult::hold();
  plugin_host::OutboundMessage outbound{message.conversation_id, message.contact.id, message.text,
                                        clock_.now_ms()};
  auto receipt = provider->send(outbound, {channel->config, channel->secrets}, http_);
  if (receipt) return store::SendResult::sent();
  const auto& error = receipt.error();
  switch (error.status) {
    case plugin_host::CallStatus::rejected:
      return store::SendResult::fail(error.message);
    case plugin_host::CallStatus::bad_config:
      if (plugin_errors_) plugin_errors_->labels({channel->provider, "send"}).inc();
      return store::SendResult::fail(error.message);
    case plugin_host::CallStatus::failed:
      if (plugin_errors_) plugin_errors_->labels({channel->provider, "send"}).inc();
      return store::SendResult::retry(error.message);
    case plugin_host::CallStatus::retry:
      return store::SendResult::retry(error.message);
  }
  return store::SendResult::retry(error.message);
}

}  // namespace flowrt::api
