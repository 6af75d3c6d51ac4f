// Helpers for the plugin suites: build-tree paths, temporary plugin directories, sample
// payloads, and HMAC signatures computed independently of the plugins (OpenSSL here).
#pragma once

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "runtime/plugin_host/plugin_host.hpp"

namespace flowrt::testing::plugins {

namespace fs = std::filesystem;
using namespace flowrt::runtime::plugin_host;

inline fs::path bundled(const std::string& name) {
  return fs::path(FLOWRT_TEST_PLUGIN_DIR) / (name + ".so");
}
inline fs::path fault(const std::string& name) {
  return fs::path(FLOWRT_TEST_FAULT_DIR) / (name + ".so");
}

inline std::string sample(const std::string& name) {
  std::ifstream in(fs::path(FLOWRT_TEST_SAMPLES_DIR) / name, std::ios::binary);
  if (!in) throw std::runtime_error("missing sample " + name);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

inline std::string hmac_hex(const std::string& key, const std::string& data) {
  unsigned char digest[32];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest, &length);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < length; ++i) {
    out.push_back(hex[digest[i] >> 4]);
    out.push_back(hex[digest[i] & 15]);
  }
  return out;
}

// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "flowrt-plugins-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  // Copies `file` in as `name` (default: its own name), mode 0755; returns the new path.
  fs::path add(const fs::path& file, const std::string& name = "") const {
    fs::path target = path_ / (name.empty() ? file.filename().string() : name);
    fs::copy_file(file, target, fs::copy_options::overwrite_existing);
    ::chmod(target.c_str(), 0755);
    return target;
  }
  fs::path write(const std::string& name, const std::string& content) const {
    fs::path target = path_ / name;
    std::ofstream(target, std::ios::binary) << content;
    return target;
  }

 private:
  fs::path path_;
};

inline PluginHostOptions options_for(const fs::path& directory) {
  PluginHostOptions options;
  options.directory = directory;
  options.probe_path = FLOWRT_TEST_PROBE;
  options.probe_timeout = std::chrono::milliseconds(10000);
  return options;
}

}  // namespace flowrt::testing::plugins
