// Conversations for agents: list by status and queue, read the journal, reply through the
// channel, hand back to the bot, close.
#include "api/app/app.hpp"

namespace flowrt::api {
namespace {

Json conversation_json(const store::ConversationRecord& c, bool full) {
  Json out{
      {"id", c.id},
      {"channel_id", c.channel_id.empty() ? Json() : Json(c.channel_id)},
      {"contact", {{"id", c.contact.id}, {"name", c.contact.name}, {"phone", c.contact.phone}}},
      {"flow_id", c.state.flow_id},
      {"flow_version", c.state.flow_version},
      {"status", std::string(runtime::to_string(c.state.status))},
      {"node", c.state.node},
      {"created_at", iso_time(c.created_at_ms)},
      {"updated_at", iso_time(c.updated_at_ms)}};
  if (c.state.status == runtime::Status::handoff) {
    out["handoff"] = {{"queue", c.state.handoff_queue}, {"note", c.state.handoff_note}};
  }
  if (!c.state.error.empty()) out["error"] = c.state.error;
  if (c.ended_at_ms) out["ended_at"] = iso_time(c.ended_at_ms);
  if (full) out["vars"] = c.state.vars;
  return out;
}

Json event_json(const store::EventRecord& e) {
  return {{"id", e.id}, {"type", e.type}, {"data", e.data}, {"at", iso_time(e.at_ms)}};
}

store::ConversationRecord find(AppContext& app, const Request& request) {
  auto conversation = app.store.get_conversation(request.tenant_id(), request.param("id"));
  if (!conversation) {
    throw no_such("conversation", request.param("id"));
  }
  return *conversation;
}

}  // namespace

void register_conversation_routes(Router& router, AppContext& app) {
  router.add(
      "GET", "/v1/conversations",
      [&app](const Request& request) {
        store::ConversationFilter filter;
        if (auto status = request.query_param("status")) {
          filter.status = runtime::parse_status(*status);
          if (!filter.status) {
            throw ApiError(problems::bad_request(
                "status must be active, waiting, handoff, ended or failed, not \"" + *status +
                "\""));
          }
        }
        filter.queue = request.query_param("queue").value_or("");
        auto page = with_store_errors([&] {  // a cursor that is not a sequence number: 400
          return app.store.list_conversations(request.tenant_id(), filter, store_page(request));
        });
        return Response::json(200, page_json(page, [](const store::ConversationRecord& c) {
                                return conversation_json(c, false);
                              }));
      },
      Access::tenant(Role::agent));

  router.add(
      "GET", "/v1/conversations/{id}",
      [&app](const Request& request) {
        return Response::json(200, conversation_json(find(app, request), true));
      },
      Access::tenant(Role::agent));

  router.add(
      "GET", "/v1/conversations/{id}/events",
      [&app](const Request& request) {
        auto page = with_store_errors([&] {  // a cursor that is not an event id: 400
          return app.store.list_events(request.tenant_id(), request.param("id"),
                                       store_page(request));
        });
        if (!page) throw no_such("conversation", request.param("id"));
        return Response::json(200, page_json(*page, event_json));
      },
      Access::tenant(Role::agent));

  router.add(
      "POST", "/v1/conversations/{id}/messages",
      [&app](const Request& request) {
        return idempotent_response(app, request, [&] {
          store::ConversationRecord conversation = find(app, request);
          Json body = parse_json_body(request);
          if (!body.is_object())
            throw ApiError(problems::validation({{"", "the body must be a JSON object"}}));
          std::string text = required_string(body, "text");
          if (conversation.state.status == runtime::Status::ended ||
              conversation.state.status == runtime::Status::failed) {
            throw ApiError(
                problems::conflict("the conversation has " +
                                   std::string(runtime::to_string(conversation.state.status)) +
                                   "; a reply would reach the contact in their next conversation"));
          }
          if (conversation.channel_id.empty()) {
            throw ApiError(problems::conflict("the conversation has no channel to send through"));
          }
          int64_t outbox_id = with_store_errors([&] {
            return app.turns.agent_message(request.tenant_id(), conversation.id, text,
                                           actor_of(request));
          });
          audit(app, request, "conversation.message", "conversation", conversation.id, std::nullopt,
                Json{{"outbox_id", outbox_id}});
          if (app.wake_workers) app.wake_workers();
          return Response::json(202, Json{{"conversation_id", conversation.id},
                                          {"message_id", outbox_id},
                                          {"status", "queued"}});
        });
      },
      Access::tenant(Role::agent));

  router.add(
      "POST", "/v1/conversations/{id}/resume",
      [&app](const Request& request) {
        store::ConversationRecord conversation = find(app, request);
        Json body = request.body.empty() ? Json::object() : parse_json_body(request);
        if (!body.is_object())
          throw ApiError(problems::validation({{"", "the body must be a JSON object"}}));
        std::string node = optional_string(body, "node");
        if (conversation.state.status != runtime::Status::handoff) {
          throw ApiError(problems::conflict(
              "the conversation is " + std::string(runtime::to_string(conversation.state.status)) +
              ", not in handoff"));
        }
        if (!node.empty()) {
          auto version = app.store.get_version(request.tenant_id(), conversation.state.flow_id,
                                               conversation.state.flow_version);
          bool known = false;
          if (version) {
            for (const auto& n : version->document.value("nodes", Json::array())) {
              if (n.is_object() && n.value("id", "") == node) known = true;
            }
          }
          if (!known) {
            throw ApiError(problems::validation(
                {{"/node", "flow \"" + conversation.state.flow_id + "\" version " +
                               std::to_string(conversation.state.flow_version) + " has no node \"" +
                               node + "\""}}));
          }
        }
        store::TurnOutcome outcome = with_store_errors([&] {
          return app.turns.resume(
              request.tenant_id(), conversation.id, node,
              conversation.channel_id.empty() ? store::Delivery::inline_ : store::Delivery::outbox);
        });
        audit(app, request, "conversation.resume", "conversation", conversation.id,
              Json{{"status", "handoff"}},
              Json{{"status", std::string(runtime::to_string(outcome.status))}, {"node", node}});
        if (app.wake_workers) app.wake_workers();
        return Response::json(200, turn_outcome_json(outcome));
      },
      Access::tenant(Role::agent));

  router.add(
      "POST", "/v1/conversations/{id}/close",
      [&app](const Request& request) {
        store::ConversationRecord conversation = find(app, request);
        bool closed = with_store_errors([&] {
          return app.turns.close(request.tenant_id(), conversation.id, actor_of(request));
        });
        if (!closed) {
          throw ApiError(
              problems::conflict("the conversation has already " +
                                 std::string(runtime::to_string(conversation.state.status))));
        }
        audit(app, request, "conversation.close", "conversation", conversation.id,
              Json{{"status", std::string(runtime::to_string(conversation.state.status))}},
              Json{{"status", "ended"}});
        return Response::json(200, Json{{"conversation_id", conversation.id}, {"status", "ended"}});
      },
      Access::tenant(Role::agent));
}

}  // namespace flowrt::api
