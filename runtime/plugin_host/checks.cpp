#include "runtime/plugin_host/checks.hpp"

#include <cxxabi.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include <flowrt/plugin_fingerprint.hpp>

namespace flowrt::runtime::plugin_host {

CurrentException describe_current_exception() {
  CurrentException current{"an exception", std::nullopt};
  if (const std::type_info* info = abi::__cxa_current_exception_type()) {
    int status = 0;
    char* demangled = abi::__cxa_demangle(info->name(), nullptr, nullptr, &status);
    current.type = status == 0 && demangled ? demangled : info->name();
    std::free(demangled);
  }
  try {
    throw;
  } catch (const std::exception& e) {
    current.what = e.what();
  } catch (...) {
  }
  return current;
}

namespace {

#if defined(__x86_64__)
constexpr uint16_t kHostMachine = EM_X86_64;
#elif defined(__aarch64__)
constexpr uint16_t kHostMachine = EM_AARCH64;
#else
#error "flowrt's plugin host knows x86-64 and aarch64 only"
#endif

std::string machine_name(uint16_t machine) {
  switch (machine) {
    case EM_386:
      return "x86 (32-bit)";
    case EM_ARM:
      return "arm (32-bit)";
    case EM_X86_64:
      return "x86-64";
    case EM_AARCH64:
      return "aarch64";
    case EM_PPC64:
      return "ppc64";
    case EM_S390:
      return "s390x";
    case EM_RISCV:
      return "riscv";
    case EM_MIPS:
      return "mips";
    default:
      return "an unknown machine";
  }
}

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// The file's first bytes, printable, to show what a non-ELF file is.
std::string preview(const unsigned char* bytes, size_t size) {
  std::string text;
  for (size_t i = 0; i < size && i < 16; ++i) {
    unsigned char c = bytes[i];
    if (c >= 0x20 && c < 0x7f) {
      text.push_back(static_cast<char>(c));
    } else {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
      text += escaped;
    }
  }
  return text;
}

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

bool read_at(int fd, uint64_t offset, void* buffer, size_t size) {
  ssize_t got = ::pread(fd, buffer, size, static_cast<off_t>(offset));
  return got == static_cast<ssize_t>(size);
}

std::string truncated(uint64_t size, uint64_t needed, const std::string& what) {
  return "truncated ELF file: it is " + std::to_string(size) + " bytes long but its " + what +
         " extends to byte " + std::to_string(needed) +
         "; the file was cut short (an interrupted copy or download): copy the plugin again";
}

}  // namespace

std::optional<std::string> check_plugin_file(const std::filesystem::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0)
    return "cannot read the file: " + std::string(std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return "not a regular file; only plugin .so files belong here";
  if (st.st_mode & S_IWOTH)
    return "the file is writable by every user (mode " + octal_mode(st.st_mode) +
           "), so anyone could replace the code the server runs; refused. Fix it with "
           "`chmod o-w " +
           file.string() + "`";

  Fd fd{::open(file.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.fd < 0) return "cannot open the file: " + std::string(std::strerror(errno));
  const uint64_t size = static_cast<uint64_t>(st.st_size);

  unsigned char ident[EI_NIDENT] = {};
  size_t ident_size = size < EI_NIDENT ? static_cast<size_t>(size) : EI_NIDENT;
  if (!read_at(fd.fd, 0, ident, ident_size)) return "cannot read the file";
  if (ident_size < SELFMAG || std::memcmp(ident, ELFMAG, SELFMAG) != 0)
    return "not an ELF shared object (the file starts with \"" + preview(ident, ident_size) +
           "\"); only compiled provider plugins (.so) belong in the plugin directory: remove "
           "or move this file";
  if (ident_size < EI_NIDENT || size < sizeof(Elf64_Ehdr))
    return truncated(size, sizeof(Elf64_Ehdr), "ELF header");
  if (ident[EI_CLASS] != ELFCLASS64)
    return std::string("a ") + (ident[EI_CLASS] == ELFCLASS32 ? "32-bit" : "unknown-class") +
           " ELF file; this host loads 64-bit plugins only: rebuild the plugin for 64-bit";
  if (ident[EI_DATA] != ELFDATA2LSB)
    return "a big-endian ELF file; this host is little-endian: rebuild the plugin for this "
           "machine";

  Elf64_Ehdr header;
  if (!read_at(fd.fd, 0, &header, sizeof header)) return "cannot read the ELF header";
  if (header.e_machine != kHostMachine)
    return "built for " + machine_name(header.e_machine) + " (ELF machine " +
           std::to_string(header.e_machine) + "), but this host is " + machine_name(kHostMachine) +
           ": rebuild the plugin for " + machine_name(kHostMachine);
  if (header.e_type != ET_DYN)
    return std::string("an ELF ") +
           (header.e_type == ET_EXEC  ? "executable"
            : header.e_type == ET_REL ? "object file (.o)"
                                      : "file") +
           ", not a shared library: build the plugin with flowrt_add_provider() (a MODULE "
           "library)";

  if (header.e_phoff != 0 && header.e_phnum != 0) {
    uint64_t end = header.e_phoff + uint64_t(header.e_phnum) * header.e_phentsize;
    if (end > size) return truncated(size, end, "program header table");
    if (header.e_phentsize == sizeof(Elf64_Phdr)) {
      std::vector<Elf64_Phdr> segments(header.e_phnum);
      if (!read_at(fd.fd, header.e_phoff, segments.data(), segments.size() * sizeof(Elf64_Phdr)))
        return "cannot read the program headers";
      for (const Elf64_Phdr& segment : segments) {
        uint64_t segment_end = segment.p_offset + segment.p_filesz;
        if (segment.p_type == PT_LOAD && segment_end > size)
          return truncated(size, segment_end, "loadable segment");
      }
    }
  }
  if (header.e_shoff != 0 && header.e_shnum != 0) {
    uint64_t end = header.e_shoff + uint64_t(header.e_shnum) * header.e_shentsize;
    if (end > size) return truncated(size, end, "section header table");
  }
  return std::nullopt;
}

const char* host_fingerprint() {
  return FLOWRT_PLUGIN_FINGERPRINT;
}

namespace {

// "k=v;k=v" → pairs.
std::vector<std::pair<std::string, std::string>> fingerprint_parts(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> parts;
  while (!text.empty()) {
    size_t end = text.find(';');
    std::string_view part = text.substr(0, end);
    size_t eq = part.find('=');
    if (eq == std::string_view::npos)
      parts.emplace_back(std::string(part), "");
    else
      parts.emplace_back(std::string(part.substr(0, eq)), std::string(part.substr(eq + 1)));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return parts;
}

std::string fingerprint_differences(std::string_view plugin, std::string_view host) {
  auto plugin_parts = fingerprint_parts(plugin);
  auto host_parts = fingerprint_parts(host);
  std::string differences;
  for (const auto& [key, host_value] : host_parts) {
    std::string plugin_value = "(missing)";
    for (const auto& [k, v] : plugin_parts)
      if (k == key) plugin_value = v;
    if (plugin_value != host_value) {
      if (!differences.empty()) differences += ", ";
      differences +=
          key + " is " + plugin_value + " in the plugin but " + host_value + " in the host";
    }
  }
  return differences.empty() ? "the fingerprints differ" : differences;
}

bool valid_name(const char* name) {
  size_t length = 0;
  for (; name[length] != '\0'; ++length) {
    char c = name[length];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    if (length >= 64) return false;
  }
  return length >= 1;
}

std::string hex32(uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08X", value);
  return text;
}

}  // namespace

std::optional<std::string> check_manifest(const flowrt_manifest* manifest, ManifestInfo* out) {
  if (manifest == nullptr)
    return "the flowrt_plugin_manifest symbol points nowhere: rebuild the plugin with the "
           "flowrt SDK's FLOWRT_PROVIDER macro";
  if (manifest->magic != FLOWRT_PLUGIN_MAGIC)
    return "wrong magic number in the manifest: " + hex32(manifest->magic) + ", expected " +
           hex32(FLOWRT_PLUGIN_MAGIC) +
           " (\"FLWP\"); the flowrt_plugin_manifest symbol is not a flowrt manifest: rebuild "
           "the plugin with the flowrt SDK's FLOWRT_PROVIDER macro";
  if (manifest->abi_version != FLOWRT_PLUGIN_ABI_VERSION)
    return "plugin ABI version mismatch: the plugin was built for plugin ABI version " +
           std::to_string(manifest->abi_version) + ", this host supports plugin ABI version " +
           std::to_string(FLOWRT_PLUGIN_ABI_VERSION) +
           ": rebuild the plugin against this flowrt release's SDK";
  if (manifest->fingerprint == nullptr)
    return "the manifest has no build fingerprint: rebuild the plugin with FLOWRT_PROVIDER";
  if (std::strcmp(manifest->fingerprint, host_fingerprint()) != 0)
    return "build fingerprint mismatch: " +
           fingerprint_differences(manifest->fingerprint, host_fingerprint()) + " (plugin \"" +
           manifest->fingerprint + "\", host \"" + host_fingerprint() +
           "\"); rebuild the plugin with the same compiler, standard-library settings "
           "(e.g. _GLIBCXX_USE_CXX11_ABI) and nlohmann_json version as the host";
  if (manifest->name == nullptr || !valid_name(manifest->name))
    return "the provider name in the manifest is missing or invalid (it must match "
           "[a-z0-9_]{1,64})";
  if (manifest->version == nullptr || manifest->version[0] == '\0')
    return "the manifest of provider \"" + std::string(manifest->name) + "\" has no version";
  if (out != nullptr) {
    out->abi_version = manifest->abi_version;
    out->fingerprint = manifest->fingerprint;
    out->name = manifest->name;
    out->version = manifest->version;
    out->description = manifest->description != nullptr ? manifest->description : "";
  }
  return std::nullopt;
}

std::optional<std::string> check_description(const std::string& text, nlohmann::json* out) {
  auto parsed = nlohmann::json::parse(text, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object())
    return "describe() did not return a JSON object";
  for (const char* key : {"config_schema", "secrets_schema"}) {
    auto it = parsed.find(key);
    if (it == parsed.end() || !it->is_object())
      return std::string("describe() returned no JSON Schema object in \"") + key + "\"";
  }
  auto replies = parsed.find("replies");
  if (replies == parsed.end() || !replies->is_string() ||
      (*replies != "push" && *replies != "response"))
    return "describe() must say \"replies\": \"push\" or \"response\"";
  if (out != nullptr) *out = std::move(parsed);
  return std::nullopt;
}

std::string dlerror_from_boost(const std::string& what) {
  static constexpr std::string_view kMarker = "dlerror system message: ";
  size_t start = what.find(kMarker);
  if (start == std::string::npos) return what;
  start += kMarker.size();
  size_t end = what.rfind(')');
  if (end == std::string::npos || end < start) end = what.size();
  return what.substr(start, end - start);
}

std::string explain_load_error(const std::string& text) {
  static constexpr std::string_view kNoFile = ": cannot open shared object file";
  size_t no_file = text.find(kNoFile);
  if (no_file != std::string::npos) {
    // "libfoo.so.1: cannot open shared object file: No such file or directory"
    std::string library = text.substr(0, no_file);
    size_t slash = library.rfind(": ");
    if (slash != std::string::npos) library = library.substr(slash + 2);
    return "unresolved dependency: the plugin needs " + library +
           ", which the dynamic loader cannot find (" + text +
           "); install that library, or put it where the loader looks (the plugin's RUNPATH, "
           "/etc/ld.so.conf, LD_LIBRARY_PATH)";
  }
  static constexpr std::string_view kUndefined = "undefined symbol: ";
  size_t undefined = text.find(kUndefined);
  if (undefined != std::string::npos) {
    std::string symbol = text.substr(undefined + kUndefined.size());
    size_t end = symbol.find_first_of(" ,\t\n(");
    if (end != std::string::npos) symbol = symbol.substr(0, end);
    std::string readable = symbol;
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> demangled(
        abi::__cxa_demangle(symbol.c_str(), nullptr, nullptr, &status), std::free);
    if (status == 0 && demangled) readable = std::string(demangled.get()) + " (" + symbol + ")";
    return "undefined symbol " + readable +
           ": the plugin uses a function or variable that neither it nor the libraries it "
           "links define; link the library that provides it, or rebuild against the "
           "libraries installed here";
  }
  return "the dynamic loader refused the plugin: " + text;
}

}  // namespace flowrt::runtime::plugin_host
