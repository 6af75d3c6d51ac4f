// `{{ path }}` templates (SPEC §2), compiled once when the flow is parsed so that rendering
// is a walk over prepared segments.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "runtime/conversation.hpp"

namespace flowrt::runtime {

// What a template can read. Pointers may be null (the value renders as "").
struct TemplateScope {
  const Json* vars = nullptr;
  const Contact* contact = nullptr;
  const std::string* message_text = nullptr;
  const Json* message_data = nullptr;
  const std::string* flow_id = nullptr;
  const std::string* tenant_name = nullptr;
  const Json* secrets = nullptr;  // only api_call templates may read these
};

class Template {
 public:
  enum class Root {
    vars,
    contact_id,
    contact_name,
    contact_phone,
    message_text,
    message_data,
    flow_id,
    tenant_name,
    secrets
  };

  Template() = default;

  // Compiles `text`. On a malformed placeholder or unknown path returns false and sets
  // `error` to a sentence; `allow_secrets` permits `secrets.X` (api_call only).
  static bool compile(std::string_view text, bool allow_secrets, Template& out, std::string& error);

  // Renders with the scope. Strings are inserted as they are, numbers and booleans as
  // JSON, objects and arrays as compact JSON, missing values and null as "".
  std::string render(const TemplateScope& scope) const;
  void render_to(const TemplateScope& scope, std::string& out) const;

  bool is_literal() const { return segments_.size() <= 1 && !has_placeholders_; }
  const std::string& source() const { return source_; }

 private:
  struct Segment {
    std::string literal;  // text before the placeholder
    bool placeholder = false;
    Root root = Root::vars;
    std::vector<std::string> keys;  // remaining dotted keys
  };
  std::string source_;
  std::vector<Segment> segments_;
  bool has_placeholders_ = false;
};

// Looks up a dotted path (`address.city`, `items.0.name`) in a JSON value; null if absent.
const Json* lookup_dotted(const Json& root, const std::vector<std::string>& keys);
std::vector<std::string> split_dotted(std::string_view path);

// Appends a JSON value the way templates show it.
void append_json_value(const Json& value, std::string& out);

}  // namespace flowrt::runtime
