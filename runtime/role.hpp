// The role a tenant API key carries (SPEC §4). The store keeps it with the key; the HTTP
// API checks it against each route (the matrix is in api/server/auth.hpp).
#pragma once

#include <optional>
#include <string_view>

namespace flowrt {

enum class Role { viewer, agent, editor, admin };

inline std::string_view to_string(Role role) {
  switch (role) {
    case Role::viewer:
      return "viewer";
    case Role::agent:
      return "agent";
    case Role::editor:
      return "editor";
    case Role::admin:
      return "admin";
  }
  return "viewer";
}

// "admin", "editor", "agent", "viewer"; nullopt for anything else (case-sensitive).
inline std::optional<Role> parse_role(std::string_view text) {
  for (Role role : {Role::viewer, Role::agent, Role::editor, Role::admin}) {
    if (text == to_string(role)) return role;
  }
  return std::nullopt;
}

}  // namespace flowrt
