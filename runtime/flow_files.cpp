#include "runtime/flow_files.hpp"

#include <fstream>
#include <sstream>

namespace flowrt::runtime {

ParseResult load_flow_file(const std::filesystem::path& path, const ParseOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ParseResult result;
    result.problems.push_back({Problem::Severity::error, "", "cannot read the file"});
    return result;
  }
  std::stringstream text;
  text << in.rdbuf();
  return parse_flow_text(text.str(), options);
}

FlowFolder::FlowFolder(std::filesystem::path folder, ParseOptions options)
    : folder_(std::move(folder)), options_(std::move(options)) {}

bool FlowFolder::exists(const std::string& flow_id) const {
  return std::filesystem::is_regular_file(folder_ / (flow_id + ".json"));
}

FlowResolver::Found FlowFolder::find(const std::string& flow_id) const {
  std::lock_guard lock(mutex_);
  auto it = cache_.find(flow_id);
  if (it == cache_.end()) {
    std::shared_ptr<const Flow> flow;
    if (flow_id.find('/') == std::string::npos && exists(flow_id)) {
      ParseResult parsed = load_flow_file(folder_ / (flow_id + ".json"), options_);
      if (parsed.flow && parsed.flow->id == flow_id) flow = parsed.flow;
    }
    it = cache_.emplace(flow_id, std::move(flow)).first;
  }
  return {it->second, it->second ? 1 : 0};
}

}  // namespace flowrt::runtime
