// Flows from files, for the command line: `jump` finds another flow by id as `<id>.json`
// in a folder (the flow file's own, or `--flows DIR`).
#pragma once

#include <filesystem>
#include <map>
#include <mutex>

#include "runtime/executor.hpp"

namespace flowrt::runtime {

// Reads a file and parses it as a flow; problems carry no file name.
ParseResult load_flow_file(const std::filesystem::path& path, const ParseOptions& options = {});

class FlowFolder : public FlowResolver {
 public:
  explicit FlowFolder(std::filesystem::path folder, ParseOptions options = {});
  // Loads `<flow_id>.json` once and keeps it. A file that does not parse is not found.
  Found find(const std::string& flow_id) const override;
  bool exists(const std::string& flow_id) const;

 private:
  std::filesystem::path folder_;
  ParseOptions options_;
  mutable std::mutex mutex_;
  mutable std::map<std::string, std::shared_ptr<const Flow>> cache_;
};

}  // namespace flowrt::runtime
