// Inbound traffic from providers: GET /v1/webhooks/{channel_id} answers the provider's
// verification handshake; POST checks the signature, parses the request into events and
// stores them durably (SPEC §5.1) before answering 2xx. A request that fails the signature
// check gets 401 and stores nothing. For providers that answer in the webhook's response
// (webchat), the turn runs before the answer and its replies are the body.
#include "api/app/app.hpp"
#include "api/server/pipeline.hpp"

namespace flowrt::api {
namespace {

struct ResolvedChannel {
  store::Channel channel;
  std::shared_ptr<const plugin_host::Provider> provider;
  plugin_host::ChannelSettings settings;
};

// Unknown channels and channels whose provider is not loaded look the same to the caller.
ResolvedChannel resolve(AppContext& app, const Request& request) {
  auto channel = app.store.find_channel_for_webhook(request.param("channel_id"));
  if (!channel) throw no_such("channel", request.param("channel_id"));
  auto provider = app.plugins.find(channel->provider);
  if (!provider) {
    throw ApiError(problems::unavailable("the channel's provider \"" + channel->provider +
                                         "\" is not loaded on this server"));
  }
  return {*channel, provider, {channel->config, channel->secrets}};
}

plugin_host::InboundRequest inbound(const AppContext& app, const Request& request) {
  plugin_host::InboundRequest in;
  in.method = request.method;
  in.path = request.path;
  for (const auto& [name, value] : request.query) in.query.emplace_back(name, value);
  for (const auto& [name, value] : request.headers.entries()) in.headers.emplace_back(name, value);
  in.body = request.body;
  in.received_at_ms = app.clock.now_ms();
  return in;
}

// A provider that could not do its part (a plugin fault, a channel whose config it refuses)
// is the server's problem, not the caller's: 503, and counted for /metrics.
[[noreturn]] void throw_call_error(AppContext& app, const ResolvedChannel& resolved,
                                   const char* operation, const plugin_host::CallError& error) {
  if (error.status == plugin_host::CallStatus::rejected) {
    Problem problem = problems::unauthorized(error.message);
    problem.headers.remove("WWW-Authenticate");  // the provider signs; there is no token to send
    throw ApiError(std::move(problem));
  }
  if (app.plugin_errors) app.plugin_errors->labels({resolved.channel.provider, operation}).inc();
  throw ApiError(problems::unavailable(error.message));
}

Json held_replies(AppContext& app, const ResolvedChannel& resolved, const std::string& contact_id) {
  Json replies = Json::array();
  for (const auto& payload :
       app.store.take_held_messages(resolved.channel.tenant_id, resolved.channel.id, contact_id)) {
    Json reply{{"text", payload.value("text", "")}};
    if (payload.contains("agent")) reply["from"] = "agent";  // not which key: that is internal
    replies.push_back(std::move(reply));
  }
  return replies;
}

// GET /v1/webhooks/{channel_id}?user=ID on a provider that answers in the response
// (webchat): the messages held for that user since its last request. On a channel with a
// signing secret the signature covers the string "user=<ID>", so that one user's poll
// cannot be replayed for another.
Response poll_held_messages(AppContext& app, const ResolvedChannel& resolved,
                            const Request& request) {
  std::string user = request.query.at("user");
  if (user.empty())
    throw ApiError(problems::bad_request("the query parameter user must not be empty"));
  plugin_host::InboundRequest in = inbound(app, request);
  in.body = "user=" + user;
  auto signature = resolved.provider->check_signature(in, resolved.settings);
  if (!signature) throw_call_error(app, resolved, "check_signature", signature.error());
  enforce_rate_limit(app.rate_limiter, resolved.channel.tenant_id);
  Response response = Response::json(200, Json{{"replies", held_replies(app, resolved, user)}});
  response.log_tenant = resolved.channel.tenant_id;
  return response;
}

}  // namespace

void register_webhook_routes(Router& router, AppContext& app) {
  router.add(
      "GET", "/v1/webhooks/{channel_id}",
      [&app](const Request& request) {
        ResolvedChannel resolved = resolve(app, request);
        if (resolved.provider->info().replies_in_response && request.query.count("user")) {
          return poll_held_messages(app, resolved, request);
        }
        auto reply = resolved.provider->verify(inbound(app, request), resolved.settings);
        if (!reply) {
          if (reply.error().status == plugin_host::CallStatus::rejected) {
            throw ApiError(problems::forbidden(reply.error().message));
          }
          throw_call_error(app, resolved, "verify", reply.error());
        }
        return Response::text(
            reply.value().status, reply.value().body,
            reply.value().content_type.empty() ? "text/plain" : reply.value().content_type);
      },
      Access::anyone());

  router.add(
      "POST", "/v1/webhooks/{channel_id}",
      [&app](const Request& request) {
        ResolvedChannel resolved = resolve(app, request);
        plugin_host::InboundRequest in = inbound(app, request);
        auto signature = resolved.provider->check_signature(in, resolved.settings);
        if (!signature) throw_call_error(app, resolved, "check_signature", signature.error());
        // Only authentic traffic counts against the tenant's limit: a flood of forged requests
        // must not lock the tenant's real provider out.
        enforce_rate_limit(app.rate_limiter, resolved.channel.tenant_id);
        auto events = resolved.provider->parse(in, resolved.settings);
        if (!events) {
          if (events.error().status == plugin_host::CallStatus::rejected) {
            throw ApiError(problems::bad_request(events.error().message));
          }
          throw_call_error(app, resolved, "parse", events.error());
        }
        bool inline_replies = resolved.provider->info().replies_in_response;
        Json answer{{"accepted", 0}, {"duplicates", 0}};
        for (const auto& event : events.value()) {
          store::InboundMessage message;
          message.tenant_id = resolved.channel.tenant_id;
          message.channel_id = resolved.channel.id;
          message.provider_message_id = event.message_id;
          message.contact = {event.contact_id, event.contact_name, event.contact_phone};
          message.event.kind = runtime::InboundEvent::Kind::message;
          message.event.text = event.text;
          message.event.data = event.data.is_object() ? event.data : Json::object();
          if (inline_replies) {
            store::TurnOutcome outcome =
                app.turns.accept_and_process(message, store::Delivery::inline_);
            answer = turn_outcome_json(outcome);
            if (outcome.kind == store::TurnOutcome::Kind::duplicate) answer["duplicate"] = true;
            // Messages written while the widget was away (an agent's reply, a resumed bot) come
            // first: they are older than this turn's replies.
            Json replies = held_replies(app, resolved, event.contact_id);
            for (auto& reply : answer["replies"]) replies.push_back(std::move(reply));
            answer["replies"] = std::move(replies);
          } else {
            store::AcceptResult accepted = app.turns.accept_inbound(message);
            answer[accepted.duplicate ? "duplicates" : "accepted"] =
                answer[accepted.duplicate ? "duplicates" : "accepted"].get<int>() + 1;
          }
        }
        if (!inline_replies && app.wake_workers) app.wake_workers();
        Response response = Response::json(200, answer);
        response.log_tenant = resolved.channel.tenant_id;
        return response;
      },
      Access::anyone());
}

}  // namespace flowrt::api
