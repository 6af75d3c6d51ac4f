#include "runtime/json_schema.hpp"

#include <regex>

#include "runtime/suggest.hpp"

namespace flowrt::runtime {
namespace {

bool has_type(const Json& value, const std::string& type) {
  if (type == "object") return value.is_object();
  if (type == "array") return value.is_array();
  if (type == "string") return value.is_string();
  if (type == "boolean") return value.is_boolean();
  if (type == "null") return value.is_null();
  if (type == "number") return value.is_number();
  if (type == "integer") {
    return value.is_number_integer() ||
           (value.is_number_float() &&
            value.get<double>() == static_cast<long long>(value.get<double>()));
  }
  return false;
}

std::string escape_pointer_token(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

void validate(const Json& schema, const Json& value, const std::string& path, Problems& problems) {
  auto fail = [&](const std::string& message) {
    problems.push_back({Problem::Severity::error, path, message});
  };
  if (schema.is_boolean()) {
    if (!schema.get<bool>()) fail("no value is allowed here");
    return;
  }
  if (!schema.is_object()) return;

  if (auto type = schema.find("type"); type != schema.end()) {
    bool ok = false;
    std::string wanted;
    if (type->is_string()) {
      ok = has_type(value, type->get<std::string>());
      wanted = type->get<std::string>();
    } else if (type->is_array()) {
      for (const auto& t : *type) {
        if (t.is_string() && has_type(value, t.get<std::string>())) ok = true;
        wanted += (wanted.empty() ? "" : " or ") + t.get<std::string>();
      }
    } else {
      ok = true;
    }
    if (!ok) {
      fail("must be " + wanted + ", not " + std::string(value.type_name()));
      return;
    }
  }
  if (auto e = schema.find("enum"); e != schema.end() && e->is_array()) {
    if (std::find(e->begin(), e->end(), value) == e->end()) fail("must be one of " + e->dump());
  }
  if (auto c = schema.find("const"); c != schema.end() && *c != value) {
    fail("must be " + c->dump());
  }
  if (value.is_string()) {
    const auto& s = value.get_ref<const std::string&>();
    if (auto m = schema.find("minLength");
        m != schema.end() && m->is_number() && s.size() < m->get<size_t>()) {
      fail("must be at least " + m->dump() + " characters long");
    }
    if (auto m = schema.find("maxLength");
        m != schema.end() && m->is_number() && s.size() > m->get<size_t>()) {
      fail("must be at most " + m->dump() + " characters long");
    }
    if (auto p = schema.find("pattern"); p != schema.end() && p->is_string()) {
      try {
        if (!std::regex_search(s, std::regex(p->get<std::string>(), std::regex::ECMAScript))) {
          fail("must match the pattern " + p->dump());
        }
      } catch (const std::regex_error&) {
      }
    }
    if (auto f = schema.find("format"); f != schema.end() && *f == "uri" &&
                                        s.rfind("http://", 0) != 0 && s.rfind("https://", 0) != 0) {
      fail("must be an absolute http:// or https:// URL");
    }
  }
  if (value.is_number()) {
    double n = value.get<double>();
    if (auto m = schema.find("minimum");
        m != schema.end() && m->is_number() && n < m->get<double>()) {
      fail("must be at least " + m->dump());
    }
    if (auto m = schema.find("maximum");
        m != schema.end() && m->is_number() && n > m->get<double>()) {
      fail("must be at most " + m->dump());
    }
  }
  if (value.is_array()) {
    if (auto m = schema.find("minItems");
        m != schema.end() && m->is_number() && value.size() < m->get<size_t>()) {
      fail("needs at least " + m->dump() + " items");
    }
    if (auto m = schema.find("maxItems");
        m != schema.end() && m->is_number() && value.size() > m->get<size_t>()) {
      fail("takes at most " + m->dump() + " items");
    }
    if (auto items = schema.find("items"); items != schema.end()) {
      for (size_t i = 0; i < value.size(); ++i) {
        validate(*items, value[i], path + "/" + std::to_string(i), problems);
      }
    }
  }
  if (value.is_object()) {
    const Json empty = Json::object();
    auto props = schema.find("properties");
    const Json& properties = props != schema.end() && props->is_object() ? *props : empty;
    if (auto required = schema.find("required"); required != schema.end() && required->is_array()) {
      for (const auto& name : *required) {
        if (name.is_string() && !value.contains(name.get<std::string>())) {
          problems.push_back({Problem::Severity::error, path,
                              "missing required field \"" + name.get<std::string>() + "\""});
        }
      }
    }
    auto additional = schema.find("additionalProperties");
    std::vector<std::string_view> known;
    for (const auto& [key, sub] : properties.items()) known.push_back(key);
    for (const auto& [key, child] : value.items()) {
      std::string child_path = path + "/" + escape_pointer_token(key);
      if (auto p = properties.find(key); p != properties.end()) {
        validate(*p, child, child_path, problems);
      } else if (additional != schema.end()) {
        if (additional->is_boolean() && !additional->get<bool>()) {
          problems.push_back({Problem::Severity::error, child_path,
                              "unknown field \"" + key + "\"" + did_you_mean(key, known)});
        } else if (additional->is_object()) {
          validate(*additional, child, child_path, problems);
        }
      }
    }
  }
}

}  // namespace

void validate_against_schema(const Json& schema, const Json& value, const std::string& base_path,
                             Problems& problems) {
  validate(schema, value, base_path, problems);
}

}  // namespace flowrt::runtime
