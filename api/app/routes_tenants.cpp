// Tenants (operator), API keys and secrets (tenant admin).
#include <algorithm>
#include <regex>

#include "api/app/app.hpp"

namespace flowrt::api {
namespace {

Json tenant_json(const store::Tenant& t) {
  return {{"id", t.id}, {"name", t.name}, {"created_at", iso_time(t.created_at_ms)}};
}

Json key_json(const store::ApiKey& k) {
  return {{"id", k.id},
          {"name", k.name},
          {"role", std::string(to_string(k.role))},
          {"prefix", k.prefix},
          {"created_at", iso_time(k.created_at_ms)}};
}

// A secret as the API shows it: its name, never its value.
Json secret_json(const std::string& name) {
  return {{"name", name}, {"set", true}};
}

// A secret as the audit log records it: that it changed, never its value.
Json audited_secret(const std::string& name) {
  return {{"name", name}, {"value", "[redacted]"}};
}

const std::regex& secret_name_pattern() {
  static const std::regex pattern("[A-Za-z0-9_]{1,64}");
  return pattern;
}

// Tenant ids appear in paths and cursors, like flow ids.
const std::regex& tenant_id_pattern() {
  static const std::regex pattern("[A-Za-z0-9_-]{1,64}");
  return pattern;
}

// The tenant's key `key_id`, if it has one.
std::optional<store::ApiKey> find_key(AppContext& app, const std::string& tenant_id,
                                      const std::string& key_id) {
  store::PageRequest page;
  page.limit = 200;
  for (;;) {
    store::Page<store::ApiKey> keys = app.store.list_keys(tenant_id, page);
    for (const auto& key : keys.items) {
      if (key.id == key_id) return key;
    }
    if (!keys.next_cursor) return std::nullopt;
    page.cursor = *keys.next_cursor;
  }
}

}  // namespace

void register_tenant_routes(Router& router, AppContext& app) {
  router.add(
      "POST", "/v1/tenants",
      [&app](const Request& request) {
        Json body = parse_json_body(request);
        std::string name = required_string(body, "name");
        std::string id = optional_string(body, "id");
        if (!id.empty() && !std::regex_match(id, tenant_id_pattern())) {
          throw ApiError(problems::validation(
              {{"/id", "a tenant id is 1-64 letters, digits, '_' or '-', not \"" + id + "\""}}));
        }
        auto [tenant, key] = with_store_errors([&] { return app.store.create_tenant(name, id); });
        Json answer = tenant_json(tenant);
        answer["admin_key"] = key_json(key.key);
        answer["admin_key"]["token"] = key.secret;  // shown once
        audit(app, request, "tenant.create", "tenant", tenant.id, std::nullopt,
              tenant_json(tenant));
        return Response::json(201, answer);
      },
      Access::operator_only());

  router.add(
      "GET", "/v1/tenants",
      [&app](const Request& request) {
        return Response::json(200,
                              page_json(app.store.list_tenants(store_page(request)), tenant_json));
      },
      Access::operator_only());

  router.add(
      "GET", "/v1/tenants/{id}",
      [&app](const Request& request) {
        auto tenant = app.store.get_tenant(request.param("id"));
        if (!tenant) throw no_such("tenant", request.param("id"));
        return Response::json(200, tenant_json(*tenant));
      },
      Access::operator_only());

  router.add(
      "DELETE", "/v1/tenants/{id}",
      [&app](const Request& request) {
        auto tenant = app.store.get_tenant(request.param("id"));
        if (!tenant || !app.store.delete_tenant(tenant->id)) {
          throw no_such("tenant", request.param("id"));
        }
        audit(app, request, "tenant.delete", "tenant", tenant->id, tenant_json(*tenant),
              std::nullopt);
        return Response::no_content();
      },
      Access::operator_only());
}

void register_key_routes(Router& router, AppContext& app) {
  router.add(
      "POST", "/v1/keys",
      [&app](const Request& request) {
        Json body = parse_json_body(request);
        std::string role_text = required_string(body, "role");
        auto role = store::parse_role(role_text);
        if (!role) {
          throw ApiError(problems::validation(
              {{"/role",
                "role must be admin, editor, agent or viewer, not \"" + role_text + "\""}}));
        }
        std::string name = optional_string(body, "name");
        store::NewApiKey key = app.store.create_key(request.tenant_id(), *role, name);
        Json answer = key_json(key.key);
        answer["token"] = key.secret;  // shown once, stored only as a hash
        audit(app, request, "key.create", "key", key.key.id, std::nullopt, key_json(key.key));
        return Response::json(201, answer);
      },
      Access::tenant(Role::admin));

  router.add(
      "GET", "/v1/keys",
      [&app](const Request& request) {
        return Response::json(
            200,
            page_json(app.store.list_keys(request.tenant_id(), store_page(request)), key_json));
      },
      Access::tenant(Role::admin));

  router.add(
      "DELETE", "/v1/keys/{id}",
      [&app](const Request& request) {
        auto before = find_key(app, request.tenant_id(), request.param("id"));
        if (!before || !app.store.delete_key(request.tenant_id(), before->id)) {
          throw no_such("key", request.param("id"));
        }
        audit(app, request, "key.delete", "key", before->id, key_json(*before), std::nullopt);
        return Response::no_content();
      },
      Access::tenant(Role::admin));
}

void register_secret_routes(Router& router, AppContext& app) {
  router.add(
      "PUT", "/v1/secrets/{name}",
      [&app](const Request& request) {
        std::string name = request.param("name");
        if (!std::regex_match(name, secret_name_pattern())) {
          throw ApiError(problems::validation(
              {{"", "a secret name is 1-64 letters, digits or '_', not \"" + name + "\""}}));
        }
        Json body = parse_json_body(request);
        auto value = body.find("value");
        if (value == body.end() || !value->is_string()) {
          throw ApiError(
              problems::validation({{"/value", "value is required and must be a string"}}));
        }
        bool existed = app.store.secret_exists(request.tenant_id(), name);
        app.store.put_secret(request.tenant_id(), name, value->get<std::string>());
        // The audit log records that the secret changed, never its value.
        audit(app, request, existed ? "secret.update" : "secret.create", "secret", name,
              existed ? std::optional<Json>(audited_secret(name)) : std::nullopt,
              audited_secret(name));
        return Response::json(existed ? 200 : 201, secret_json(name));
      },
      Access::tenant(Role::admin));

  router.add(
      "GET", "/v1/secrets/{name}",
      [&app](const Request& request) {
        std::string name = request.param("name");
        if (!app.store.secret_exists(request.tenant_id(), name)) {
          throw no_such("secret", name);
        }
        return Response::json(200, secret_json(name));
      },
      Access::tenant(Role::admin));

  router.add(
      "GET", "/v1/secrets",
      [&app](const Request& request) {
        // Paginated like every list: by name, the cursor being the last name of a page.
        store::PageRequest page = store_page(request);
        std::vector<std::string> names = app.store.list_secret_names(request.tenant_id());
        std::sort(names.begin(), names.end());
        Json items = Json::array();
        Json next_cursor = nullptr;
        for (const auto& name : names) {
          if (name <= page.cursor) continue;
          if (static_cast<int>(items.size()) == page.limit) {
            next_cursor = items.back()["name"];
            break;
          }
          items.push_back(secret_json(name));
        }
        return Response::json(200, Json{{"items", items}, {"next_cursor", next_cursor}});
      },
      Access::tenant(Role::admin));

  router.add(
      "DELETE", "/v1/secrets/{name}",
      [&app](const Request& request) {
        std::string name = request.param("name");
        if (!app.store.delete_secret(request.tenant_id(), name)) {
          throw no_such("secret", name);
        }
        audit(app, request, "secret.delete", "secret", name, audited_secret(name), std::nullopt);
        return Response::no_content();
      },
      Access::tenant(Role::admin));
}

}  // namespace flowrt::api
