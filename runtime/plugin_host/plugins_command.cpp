// `flowrt plugins`: what the plugin directory holds, what loaded and why anything did not.
#include <ostream>

#include "runtime/plugin_host/plugin_host.hpp"

namespace flowrt::runtime::plugin_host {

int run_plugins_command(const PluginHostOptions& options, std::ostream& out) {
  PluginRegistry registry = PluginRegistry::load(options);
  auto providers = registry.providers();
  out << "plugin directory: " << options.directory.string() << "\n";
  for (const auto& info : providers)
    out << "loaded  " << info.name << " " << info.version << " (plugin ABI " << info.abi_version
        << ")  " << info.path.string() << "\n";
  for (const auto& failure : registry.failures())
    out << "FAILED  " << failure.path.string() << ": " << failure.reason << "\n";
  out << providers.size() << " loaded, " << registry.failures().size() << " failed\n";
  return registry.failures().empty() && !providers.empty() ? 0 : 1;
}

int run_plugins_command(const std::filesystem::path& directory, std::ostream& out) {
  PluginHostOptions options;
  options.directory = directory;
  return run_plugins_command(options, out);
}

}  // namespace flowrt::runtime::plugin_host
