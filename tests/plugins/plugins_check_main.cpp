// flowrt-plugins-check DIR [PROBE]: `flowrt plugins` without the rest of flowrt, for the
// template test and for plugin authors checking a build folder.
#include <iostream>

#include "runtime/plugin_host/plugin_host.hpp"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::cerr << "usage: " << argv[0] << " PLUGIN_DIR [PROBE]\n";
    return 2;
  }
  flowrt::runtime::plugin_host::PluginHostOptions options;
  options.directory = argv[1];
  if (argc == 3) options.probe_path = argv[2];
  return flowrt::runtime::plugin_host::run_plugins_command(options, std::cout);
}
