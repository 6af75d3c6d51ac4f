// A JSON Schema validator for the subset provider plugins use to describe their channel
// config and secrets: type, properties, required, additionalProperties, enum, const,
// minLength, maxLength, pattern, minimum, maximum, items, minItems, maxItems, format
// "uri". Unknown keywords (description, default, title, ...) are ignored, as the
// specification asks of annotations.
#pragma once

#include <string>
#include <vector>

#include "runtime/conversation.hpp"
#include "runtime/problem.hpp"

namespace flowrt::runtime {

// Appends one error per violation, with the JSON pointer of the offending value prefixed
// by `base_path` (e.g. "/config").
void validate_against_schema(const Json& schema, const Json& value, const std::string& base_path,
                             Problems& problems);

}  // namespace flowrt::runtime
