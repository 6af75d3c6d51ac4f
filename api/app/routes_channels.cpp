// Channels bind a provider plugin (with its config and secrets) to a flow; their webhook
// URL is where the provider delivers traffic (routes_webhooks.cpp).
#include "api/app/app.hpp"
#include "runtime/json_schema.hpp"
#include "runtime/suggest.hpp"

namespace flowrt::api {
namespace {

Json channel_json(const AppContext& app, const Request& request, const store::Channel& c) {
  Json secrets = Json::object();
  for (const auto& [name, value] : c.secrets.items()) secrets[name] = "[set]";
  return {{"id", c.id},
          {"name", c.name},
          {"provider", c.provider},
          {"flow_id", c.flow_id},
          {"config", c.config},
          {"secrets", secrets},  // names only: values are write-only
          {"webhook_url", public_base_url(app, request) + "/v1/webhooks/" + c.id},
          {"created_at", iso_time(c.created_at_ms)},
          {"updated_at", iso_time(c.updated_at_ms)}};
}

// Audit form: like channel_json but without the URL.
Json channel_audit(const store::Channel& c) {
  Json secrets = Json::array();
  for (const auto& [name, value] : c.secrets.items()) secrets.push_back(name);
  return {{"name", c.name},
          {"provider", c.provider},
          {"flow_id", c.flow_id},
          {"config", c.config},
          {"secret_names", secrets}};
}

// Checks provider, flow, config and secrets; throws 422 with every problem.
void validate_channel(AppContext& app, const store::Channel& channel) {
  std::vector<FieldError> errors;
  auto provider = app.plugins.find(channel.provider);
  if (!provider) {
    std::vector<std::string> names;
    for (const auto& info : app.plugins.providers()) names.push_back(info.name);
    std::vector<std::string_view> views(names.begin(), names.end());
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    errors.push_back({"/provider", "no provider \"" + channel.provider + "\" is loaded" +
                                       runtime::did_you_mean(channel.provider, views) +
                                       "; loaded: " + (known.empty() ? "none" : known)});
  }
  if (!channel.config.is_object()) errors.push_back({"/config", "config must be an object"});
  if (!channel.secrets.is_object()) errors.push_back({"/secrets", "secrets must be an object"});
  if (provider && channel.config.is_object() && channel.secrets.is_object()) {
    runtime::Problems problems;
    runtime::validate_against_schema(provider->info().config_schema, channel.config, "/config",
                                     problems);
    runtime::validate_against_schema(provider->info().secrets_schema, channel.secrets, "/secrets",
                                     problems);
    for (auto& p : problems) errors.push_back({p.path, p.message});
  }
  if (channel.flow_id.empty()) {
    errors.push_back({"/flow_id", "flow_id is required: the flow this channel runs"});
  } else if (!app.store.flow_exists(channel.tenant_id, channel.flow_id)) {
    errors.push_back({"/flow_id", "no flow \"" + channel.flow_id + "\""});
  }
  if (!errors.empty())
    throw ApiError(problems::validation(std::move(errors), "the channel was not saved"));
}

Json object_member(const Json& body, const char* field) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return Json::object();
  return *it;
}

}  // namespace

void register_channel_routes(Router& router, AppContext& app) {
  router.add(
      "POST", "/v1/channels",
      [&app](const Request& request) {
        Json body = parse_json_body(request);
        if (!body.is_object())
          throw ApiError(problems::validation({{"", "the body must be a JSON object"}}));
        store::Channel channel;
        channel.tenant_id = request.tenant_id();
        channel.name = optional_string(body, "name");
        channel.provider = required_string(body, "provider");
        channel.flow_id = optional_string(body, "flow_id");
        channel.config = object_member(body, "config");
        channel.secrets = object_member(body, "secrets");
        validate_channel(app, channel);
        store::Channel created =
            with_store_errors([&] { return app.store.create_channel(channel); });
        audit(app, request, "channel.create", "channel", created.id, std::nullopt,
              channel_audit(created));
        return Response::json(201, channel_json(app, request, created));
      },
      Access::tenant(Role::admin));

  router.add(
      "GET", "/v1/channels",
      [&app](const Request& request) {
        return Response::json(
            200, page_json(app.store.list_channels(request.tenant_id(), store_page(request)),
                           [&](const store::Channel& c) { return channel_json(app, request, c); }));
      },
      Access::tenant(Role::admin));

  router.add(
      "GET", "/v1/channels/{id}",
      [&app](const Request& request) {
        auto channel = app.store.get_channel(request.tenant_id(), request.param("id"));
        if (!channel) throw no_such("channel", request.param("id"));
        return Response::json(200, channel_json(app, request, *channel));
      },
      Access::tenant(Role::admin));

  // JSON merge patch (RFC 7396) of name, flow_id, config and secrets; a secret set to null
  // is removed.
  router.add(
      "PATCH", "/v1/channels/{id}",
      [&app](const Request& request) {
        auto before = app.store.get_channel(request.tenant_id(), request.param("id"));
        if (!before) throw no_such("channel", request.param("id"));
        Json patch = parse_json_body(request);
        if (!patch.is_object())
          throw ApiError(problems::validation({{"", "the body must be a JSON object"}}));
        for (const auto& [key, value] : patch.items()) {
          if (key != "name" && key != "flow_id" && key != "config" && key != "secrets") {
            throw ApiError(problems::validation(
                {{"/" + key,
                  "\"" + key + "\" cannot be changed; patch name, flow_id, config or secrets"}}));
          }
        }
        store::Channel channel = *before;
        channel.name = optional_string(patch, "name", channel.name);
        channel.flow_id = optional_string(patch, "flow_id", channel.flow_id);
        if (patch.contains("config")) channel.config.merge_patch(patch["config"]);
        if (patch.contains("secrets")) channel.secrets.merge_patch(patch["secrets"]);
        validate_channel(app, channel);
        store::Channel updated =
            with_store_errors([&] { return app.store.update_channel(channel); });
        audit(app, request, "channel.update", "channel", updated.id, channel_audit(*before),
              channel_audit(updated));
        return Response::json(200, channel_json(app, request, updated));
      },
      Access::tenant(Role::admin));

  router.add(
      "DELETE", "/v1/channels/{id}",
      [&app](const Request& request) {
        auto before = app.store.get_channel(request.tenant_id(), request.param("id"));
        if (!before || !app.store.delete_channel(request.tenant_id(), before->id)) {
          throw no_such("channel", request.param("id"));
        }
        audit(app, request, "channel.delete", "channel", before->id, channel_audit(*before),
              std::nullopt);
        return Response::no_content();
      },
      Access::tenant(Role::admin));

  router.add(
      "GET", "/v1/plugins",
      [&app](const Request&) { return Response::json(200, app.plugins.to_json()); },
      Access::tenant(Role::viewer));
}

}  // namespace flowrt::api
