#include "runtime/template.hpp"

#include <cctype>

namespace flowrt::runtime {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool valid_key(std::string_view key) {
  if (key.empty()) return false;
  for (char c : key) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  }
  return true;
}

}  // namespace

std::vector<std::string> split_dotted(std::string_view path) {
  std::vector<std::string> keys;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    keys.emplace_back(path.substr(start, dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return keys;
}

const Json* lookup_dotted(const Json& root, const std::vector<std::string>& keys) {
  const Json* current = &root;
  for (const auto& key : keys) {
    if (current->is_object()) {
      auto it = current->find(key);
      if (it == current->end()) return nullptr;
      current = &*it;
    } else if (current->is_array()) {
      if (key.empty() || key.size() > 9) return nullptr;
      size_t index = 0;
      for (char c : key) {
        if (!std::isdigit(static_cast<unsigned char>(c))) return nullptr;
        index = index * 10 + static_cast<size_t>(c - '0');
      }
      if (index >= current->size()) return nullptr;
      current = &(*current)[index];
    } else {
      return nullptr;
    }
  }
  return current;
}

void append_json_value(const Json& value, std::string& out) {
  switch (value.type()) {
    case Json::value_t::null:
      break;
    case Json::value_t::string:
      out += value.get_ref<const std::string&>();
      break;
    default:
      out += value.dump();
      break;
  }
}

bool Template::compile(std::string_view text, bool allow_secrets, Template& out,
                       std::string& error) {
  Template result;
  result.source_ = std::string(text);
  std::string literal;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("{{", pos);
    if (open == std::string_view::npos) {
      literal.append(text.substr(pos));
      break;
    }
    literal.append(text.substr(pos, open - pos));
    size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) {
      error = "\"{{\" at character " + std::to_string(open + 1) + " is never closed with \"}}\"";
      return false;
    }
    std::string_view path = trim(text.substr(open + 2, close - open - 2));
    auto keys = split_dotted(path);
    for (const auto& key : keys) {
      if (!valid_key(key)) {
        error = "\"{{" + std::string(path) + "}}\" is not a valid path; use e.g. {{vars.name}}";
        return false;
      }
    }
    Segment segment;
    segment.literal = std::move(literal);
    literal.clear();
    segment.placeholder = true;
    const std::string& head = keys[0];
    auto rest = std::vector<std::string>(keys.begin() + 1, keys.end());
    auto exact = [&](const char* name, Root root) {
      if (rest.size() == 1 && rest[0] == name) {
        segment.root = root;
        return true;
      }
      return false;
    };
    bool known = false;
    if (head == "vars" && !rest.empty()) {
      segment.root = Root::vars;
      segment.keys = rest;
      known = true;
    } else if (head == "contact") {
      known = exact("id", Root::contact_id) || exact("name", Root::contact_name) ||
              exact("phone", Root::contact_phone);
    } else if (head == "message") {
      if (exact("text", Root::message_text)) {
        known = true;
      } else if (rest.size() >= 2 && rest[0] == "data") {
        segment.root = Root::message_data;
        segment.keys.assign(rest.begin() + 1, rest.end());
        known = true;
      }
    } else if (head == "flow") {
      known = exact("id", Root::flow_id);
    } else if (head == "tenant") {
      known = exact("name", Root::tenant_name);
    } else if (head == "secrets" && rest.size() == 1) {
      if (!allow_secrets) {
        error = "{{" + std::string(path) +
                "}}: secrets can only be used in api_call url, headers, query and body";
        return false;
      }
      segment.root = Root::secrets;
      segment.keys = rest;
      known = true;
    }
    if (!known) {
      error = "{{" + std::string(path) +
              "}} is not a known template path; use vars.X, contact.id|name|phone, "
              "message.text, message.data.X, flow.id, tenant.name" +
              (allow_secrets ? " or secrets.X" : "");
      return false;
    }
    result.has_placeholders_ = true;
    result.segments_.push_back(std::move(segment));
    pos = close + 2;
  }
  if (!literal.empty() || result.segments_.empty()) {
    Segment tail;
    tail.literal = std::move(literal);
    result.segments_.push_back(std::move(tail));
  }
  out = std::move(result);
  return true;
}

std::string Template::render(const TemplateScope& scope) const {
  std::string out;
  render_to(scope, out);
  return out;
}

void Template::render_to(const TemplateScope& scope, std::string& out) const {
  for (const auto& segment : segments_) {
    out += segment.literal;
    if (!segment.placeholder) continue;
    switch (segment.root) {
      case Root::vars:
        if (scope.vars) {
          if (const Json* v = lookup_dotted(*scope.vars, segment.keys)) append_json_value(*v, out);
        }
        break;
      case Root::contact_id:
        if (scope.contact) out += scope.contact->id;
        break;
      case Root::contact_name:
        if (scope.contact) out += scope.contact->name;
        break;
      case Root::contact_phone:
        if (scope.contact) out += scope.contact->phone;
        break;
      case Root::message_text:
        if (scope.message_text) out += *scope.message_text;
        break;
      case Root::message_data:
        if (scope.message_data) {
          if (const Json* v = lookup_dotted(*scope.message_data, segment.keys)) {
            append_json_value(*v, out);
          }
        }
        break;
      case Root::flow_id:
        if (scope.flow_id) out += *scope.flow_id;
        break;
      case Root::tenant_name:
        if (scope.tenant_name) out += *scope.tenant_name;
        break;
      case Root::secrets:
        if (scope.secrets) {
          if (const Json* v = lookup_dotted(*scope.secrets, segment.keys)) {
            append_json_value(*v, out);
          }
        }
        break;
    }
  }
}

}  // namespace flowrt::runtime
