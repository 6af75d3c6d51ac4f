// Flows: validate, drafts, publish, immutable versions, and runs started through the API.

#include "api/app/app.hpp"

namespace flowrt::api {
namespace {

Json problems_json(const runtime::Problems& problems, runtime::Problem::Severity severity) {
  Json out = Json::array();
  for (const auto& p : problems) {
    if (p.severity == severity) out.push_back(Json{{"path", p.path}, {"message", p.message}});
  }
  return out;
}

// Validates a flow document for a tenant; throws 422 with every problem. Returns warnings.
Json validate_document(AppContext& app, const std::string& tenant_id, const Json& document) {
  runtime::ParseOptions options;
  options.flow_exists = [&](const std::string& id) {
    return (document.is_object() && document.value("id", "") == id) ||
           app.store.flow_exists(tenant_id, id);
  };
  runtime::ParseResult result = runtime::parse_flow(document, options);
  if (!result.flow) {
    std::vector<FieldError> errors;
    for (const auto& p : result.problems) {
      if (p.is_error()) errors.push_back({p.path, p.message});
    }
    Problem problem =
        problems::validation(std::move(errors), "the flow has problems; nothing was saved");
    problem.extensions["warnings"] =
        problems_json(result.problems, runtime::Problem::Severity::warning);
    throw ApiError(std::move(problem));
  }
  return problems_json(result.problems, runtime::Problem::Severity::warning);
}

Json flow_json(const store::FlowRecord& f, bool with_draft = true) {
  Json out{{"id", f.id},
           {"name", f.name},
           {"latest_version", f.latest_version == 0 ? Json() : Json(f.latest_version)},
           {"created_at", iso_time(f.created_at_ms)},
           {"updated_at", iso_time(f.updated_at_ms)}};
  if (with_draft) out["draft"] = f.draft;
  return out;
}

Json version_json(const store::FlowVersion& v) {
  Json out{{"flow_id", v.flow_id},
           {"version", v.version},
           {"published_by", v.published_by},
           {"published_at", iso_time(v.published_at_ms)}};
  if (!v.document.is_null()) out["document"] = v.document;
  return out;
}

}  // namespace

Json turn_outcome_json(const store::TurnOutcome& outcome) {
  Json replies = Json::array();
  for (const auto& m : outcome.replies) replies.push_back(Json{{"text", m.text}});
  // An event set aside (e.g. the channel's flow has no published version) did not leave the
  // conversation in whatever status the outcome defaults to.
  std::string status = outcome.kind == store::TurnOutcome::Kind::failed
                           ? "failed"
                           : std::string(runtime::to_string(outcome.status));
  Json out{{"conversation_id", outcome.conversation_id}, {"status", status}, {"replies", replies}};
  if (!outcome.error.empty()) out["error"] = outcome.error;
  return out;
}

void register_flow_routes(Router& router, AppContext& app) {
  router.add(
      "POST", "/v1/flows/validate",
      [&app](const Request& request) {
        Json document = parse_json_body(request);
        runtime::ParseOptions options;
        options.flow_exists = [&](const std::string& id) {
          return (document.is_object() && document.value("id", "") == id) ||
                 app.store.flow_exists(request.tenant_id(), id);
        };
        runtime::ParseResult result = runtime::parse_flow(document, options);
        return Response::json(
            200, Json{{"valid", result.flow != nullptr},
                      {"errors", problems_json(result.problems, runtime::Problem::Severity::error)},
                      {"warnings",
                       problems_json(result.problems, runtime::Problem::Severity::warning)}});
      },
      Access::tenant(Role::editor));

  router.add(
      "POST", "/v1/flows",
      [&app](const Request& request) {
        Json document = parse_json_body(request);
        Json warnings = validate_document(app, request.tenant_id(), document);
        store::FlowRecord flow = with_store_errors([&] {
          return app.store.create_flow(request.tenant_id(), document["id"].get<std::string>(),
                                       document.value("name", ""), document);
        });
        audit(app, request, "flow.create", "flow", flow.id, std::nullopt, flow.draft);
        Json answer = flow_json(flow);
        answer["warnings"] = warnings;
        return Response::json(201, answer);
      },
      Access::tenant(Role::editor));

  router.add(
      "GET", "/v1/flows",
      [&app](const Request& request) {
        return Response::json(
            200, page_json(app.store.list_flows(request.tenant_id(), store_page(request)),
                           [](const store::FlowRecord& f) { return flow_json(f, false); }));
      },
      Access::tenant(Role::viewer));

  router.add(
      "GET", "/v1/flows/{flow_id}",
      [&app](const Request& request) {
        auto flow = app.store.get_flow(request.tenant_id(), request.param("flow_id"));
        if (!flow) throw no_such("flow", request.param("flow_id"));
        return Response::json(200, flow_json(*flow));
      },
      Access::tenant(Role::viewer));

  router.add(
      "PUT", "/v1/flows/{flow_id}",
      [&app](const Request& request) {
        std::string flow_id = request.param("flow_id");
        auto before = app.store.get_flow(request.tenant_id(), flow_id);
        if (!before) throw no_such("flow", flow_id);
        Json document = parse_json_body(request);
        if (document.is_object() && document.contains("id") && document["id"] != flow_id) {
          throw ApiError(problems::validation(
              {{"/id", "the document's id " + document["id"].dump() + " differs from the flow \"" +
                           flow_id + "\" in the URL; a flow's id cannot change"}}));
        }
        Json warnings = validate_document(app, request.tenant_id(), document);
        store::FlowRecord flow = with_store_errors([&] {
          return app.store.update_flow(request.tenant_id(), flow_id, document.value("name", ""),
                                       document);
        });
        audit(app, request, "flow.update", "flow", flow_id, before->draft, flow.draft);
        Json answer = flow_json(flow);
        answer["warnings"] = warnings;
        return Response::json(200, answer);
      },
      Access::tenant(Role::editor));

  router.add(
      "DELETE", "/v1/flows/{flow_id}",
      [&app](const Request& request) {
        std::string flow_id = request.param("flow_id");
        auto before = app.store.get_flow(request.tenant_id(), flow_id);
        if (!before) throw no_such("flow", flow_id);
        with_store_errors([&] { return app.store.delete_flow(request.tenant_id(), flow_id); });
        audit(app, request, "flow.delete", "flow", flow_id, before->draft, std::nullopt);
        return Response::no_content();
      },
      Access::tenant(Role::editor));

  router.add(
      "POST", "/v1/flows/{flow_id}/publish",
      [&app](const Request& request) {
        std::string flow_id = request.param("flow_id");
        auto flow = app.store.get_flow(request.tenant_id(), flow_id);
        if (!flow) throw no_such("flow", flow_id);
        // Publishing an unchanged draft again is a no-op: the latest version is the answer.
        if (flow->latest_version > 0) {
          auto latest = app.store.get_version(request.tenant_id(), flow_id, flow->latest_version);
          if (latest && latest->document == flow->draft) {
            return Response::json(200, version_json(*latest));
          }
        }
        validate_document(app, request.tenant_id(), flow->draft);  // other flows may have changed
        store::FlowVersion version = with_store_errors([&] {
          return app.store.publish_flow(request.tenant_id(), flow_id, actor_of(request));
        });
        audit(app, request, "flow.publish", "flow", flow_id, std::nullopt,
              Json{{"version", version.version}});
        return Response::json(201, version_json(version));
      },
      Access::tenant(Role::editor));

  router.add(
      "GET", "/v1/flows/{flow_id}/versions",
      [&app](const Request& request) {
        std::string flow_id = request.param("flow_id");
        if (!app.store.get_flow(request.tenant_id(), flow_id)) {
          throw no_such("flow", flow_id);
        }
        auto page = with_store_errors([&] {  // a cursor that is not a version number: 400
          return app.store.list_versions(request.tenant_id(), flow_id, store_page(request));
        });
        return Response::json(200, page_json(page, version_json));
      },
      Access::tenant(Role::viewer));

  router.add(
      "GET", "/v1/flows/{flow_id}/versions/{n}",
      [&app](const Request& request) {
        std::string n = request.param("n");
        char* end = nullptr;
        long version = std::strtol(n.c_str(), &end, 10);
        if (n.empty() || *end != '\0' || version < 1) {
          throw ApiError(
              problems::not_found("versions are numbered 1, 2, …; \"" + n + "\" is not one"));
        }
        auto found = app.store.get_version(request.tenant_id(), request.param("flow_id"),
                                           static_cast<int>(version));
        if (!found) {
          throw ApiError(
              problems::not_found("flow \"" + request.param("flow_id") + "\" has no version " + n));
        }
        return Response::json(200, version_json(*found));
      },
      Access::tenant(Role::viewer));

  router.add(
      "POST", "/v1/flows/{flow_id}/runs",
      [&app](const Request& request) {
        return idempotent_response(app, request, [&] {
          Json body = request.body.empty() ? Json::object() : parse_json_body(request);
          if (!body.is_object())
            throw ApiError(problems::validation({{"", "the body must be a JSON object"}}));
          Json contact_json = body.value("contact", Json::object());
          if (!contact_json.is_object()) {
            throw ApiError(problems::validation(
                {{"/contact", "contact must be an object {id, name, phone}"}}));
          }
          runtime::Contact contact;
          contact.id = optional_string(contact_json, "id");
          contact.name = optional_string(contact_json, "name");
          contact.phone = optional_string(contact_json, "phone");
          if (contact.id.empty()) {
            throw ApiError(problems::validation(
                {{"/contact/id", "contact.id is required: the person's id on the channel"}}));
          }
          Json vars = body.value("vars", Json::object());
          if (!vars.is_object())
            throw ApiError(problems::validation({{"/vars", "vars must be an object"}}));
          std::string channel_id = optional_string(body, "channel_id");
          if (!channel_id.empty() && !app.store.get_channel(request.tenant_id(), channel_id)) {
            throw ApiError(
                problems::validation({{"/channel_id", "no channel \"" + channel_id + "\""}}));
          }
          store::TurnOutcome outcome = with_store_errors([&] {
            return app.turns.start_run(
                request.tenant_id(), request.param("flow_id"), channel_id, contact, vars,
                channel_id.empty() ? store::Delivery::inline_ : store::Delivery::outbox);
          });
          audit(app, request, "run.start", "conversation", outcome.conversation_id, std::nullopt,
                Json{{"flow_id", request.param("flow_id")}, {"channel_id", channel_id}});
          return Response::json(201, turn_outcome_json(outcome));
        });
      },
      Access::tenant(Role::editor));
}

}  // namespace flowrt::api
