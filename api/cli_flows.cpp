#include "api/cli_flows.hpp"

namespace flowrt::api {

runtime::ParseOptions cli_parse_options(const std::string& file, const std::string& flows_dir) {
  runtime::ParseOptions options;
  std::filesystem::path folder = flows_dir.empty() ? std::filesystem::path(file).parent_path()
                                                   : std::filesystem::path(flows_dir);
  options.flow_exists = [folder](const std::string& id) {
    return id.find('/') == std::string::npos &&
           std::filesystem::is_regular_file(folder / (id + ".json"));
  };
  return options;
}

runtime::ParseResult load_cli_flow(const std::string& file, const std::string& flows_dir) {
  return runtime::load_flow_file(file, cli_parse_options(file, flows_dir));
}

}  // namespace flowrt::api
