// The node types of SPEC §2. Each registers itself from its own file; this list is the
// only place that names them all.
#include "runtime/flow.hpp"

namespace flowrt::runtime {
namespace nodes {
void register_text_node(NodeRegistry&);
void register_question_node(NodeRegistry&);
void register_condition_node(NodeRegistry&);
void register_api_call_node(NodeRegistry&);
void register_handoff_node(NodeRegistry&);
void register_script_node(NodeRegistry&);
void register_jump_node(NodeRegistry&);
void register_end_node(NodeRegistry&);
}  // namespace nodes

void register_builtin_nodes(NodeRegistry& registry) {
  nodes::register_text_node(registry);
  nodes::register_question_node(registry);
  nodes::register_condition_node(registry);
  nodes::register_api_call_node(registry);
  nodes::register_handoff_node(registry);
  nodes::register_script_node(registry);
  nodes::register_jump_node(registry);
  nodes::register_end_node(registry);
}

}  // namespace flowrt::runtime
