// A shared library that fault_missing_dependency links against and that the test build
// keeps out of the loader's search path, so that loading the plugin fails.
extern "C" __attribute__((visibility("default"))) int flowrt_fault_dependency_value() {
  return 7;
}
