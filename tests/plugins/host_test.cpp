// The plugin host's fault suite: every way a plugin file can be broken gets its own
// plugin (built by tests/plugins/CMakeLists.txt) or file, placed in a directory next to
// good providers. Each test checks the host's message for the broken file and that the
// good providers loaded and answer calls in the same process.
#include <dlfcn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "runtime/curl_http_client.hpp"
#include "tests/plugins/plugin_test_support.hpp"

namespace flowrt::testing::plugins {
namespace {

using ::testing::HasSubstr;

// A plugin directory holding webchat and telegram (good) plus whatever a test adds.
class FaultSuite : public ::testing::Test {
 protected:
  FaultSuite() {
    dir_.add(bundled("webchat"));
    dir_.add(bundled("telegram"));
  }

  PluginRegistry load(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
    auto options = options_for(dir_.path());
    options.probe_timeout = timeout;
    return PluginRegistry::load(options);
  }

  // The registry's one failure must be for `file` and mention every fragment; the good
  // providers must have loaded and must still work.
  void expect_only_failure(const PluginRegistry& registry, const fs::path& file,
                           std::initializer_list<std::string> fragments) {
    ASSERT_EQ(registry.failures().size(), 1u) << registry.to_json().dump(2);
    const LoadFailure& failure = registry.failures()[0];
    EXPECT_EQ(failure.path, file);
    for (const auto& fragment : fragments) EXPECT_THAT(failure.reason, HasSubstr(fragment));
    expect_good_providers_work(registry);
  }

  static void expect_good_providers_work(const PluginRegistry& registry) {
    auto webchat = registry.find("webchat");
    ASSERT_TRUE(webchat) << registry.to_json().dump(2);
    InboundRequest request;
    request.body = R"({"user": "u1", "text": "still here"})";
    auto events = webchat->parse(request, {});
    ASSERT_TRUE(events) << events.error().message;
    EXPECT_EQ(events.value().at(0).text, "still here");
    EXPECT_TRUE(registry.find("telegram"));
  }

  TempDir dir_;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// ------------------------------------------------------------- files that never load

TEST_F(FaultSuite, NotAnElfFileIsRefusedWithWhatItStartsWith) {
  auto file = dir_.write("notes.txt", "hello, this is not a plugin\n");
  auto registry = load();
  expect_only_failure(registry, file,
                      {"not an ELF shared object", "hello, this is n", "remove or move"});
}

TEST_F(FaultSuite, TruncatedElfIsRefusedAsIncomplete) {
  std::string image = read_file(bundled("webchat"));
  auto file = dir_.write("cut.so", image.substr(0, image.size() / 2));
  auto registry = load();
  expect_only_failure(
      registry, file,
      {"truncated ELF file", std::to_string(image.size() / 2) + " bytes", "copy the plugin again"});
}

TEST_F(FaultSuite, ElfShorterThanItsHeaderIsTruncated) {
  std::string image = read_file(bundled("webchat"));
  auto file = dir_.write("stub.so", image.substr(0, 40));
  auto registry = load();
  expect_only_failure(registry, file, {"truncated ELF file", "ELF header"});
}

TEST_F(FaultSuite, WrongArchitectureNamesBothMachines) {
  std::string image = read_file(bundled("webchat"));
  image[18] = static_cast<char>(183);  // e_machine = EM_AARCH64 (little-endian)
  image[19] = 0;
  auto file = dir_.write("arm.so", image);
  auto registry = load();
  expect_only_failure(registry, file,
                      {"built for aarch64 (ELF machine 183)", "this host is x86-64"});
}

TEST_F(FaultSuite, ThirtyTwoBitBigEndianAndExecutableElfFilesAreRefused) {
  std::string image = read_file(bundled("webchat"));
  std::string elf32 = image, big_endian = image, executable = image;
  elf32[4] = 1;        // EI_CLASS = ELFCLASS32
  big_endian[5] = 2;   // EI_DATA = ELFDATA2MSB
  executable[16] = 2;  // e_type = ET_EXEC
  dir_.write("elf32.so", elf32);
  dir_.write("msb.so", big_endian);
  dir_.write("exec.so", executable);
  auto registry = load();
  ASSERT_EQ(registry.failures().size(), 3u) << registry.to_json().dump(2);
  std::map<std::string, std::string> reasons;
  for (const auto& failure : registry.failures())
    reasons[failure.path.filename().string()] = failure.reason;
  EXPECT_THAT(reasons["elf32.so"],
              HasSubstr("a 32-bit ELF file; this host loads 64-bit plugins only"));
  EXPECT_THAT(reasons["msb.so"], HasSubstr("big-endian ELF file"));
  EXPECT_THAT(reasons["exec.so"], HasSubstr("an ELF executable, not a shared library"));
  expect_good_providers_work(registry);
}

TEST_F(FaultSuite, WorldWritableFileIsRefused) {
  auto file = dir_.add(bundled("whatsapp_cloud"));
  ASSERT_EQ(::chmod(file.c_str(), 0666), 0);
  auto registry = load();
  expect_only_failure(registry, file, {"writable by every user (mode 0666)", "chmod o-w"});
  EXPECT_FALSE(registry.find("whatsapp_cloud"));
}

TEST_F(FaultSuite, MissingManifestSymbol) {
  auto file = dir_.add(fault("raw_no_manifest"));
  auto registry = load();
  expect_only_failure(registry, file, {"no flowrt_plugin_manifest symbol", "FLOWRT_PROVIDER"});
}

TEST_F(FaultSuite, WrongMagicNumber) {
  auto file = dir_.add(fault("raw_wrong_magic"));
  auto registry = load();
  expect_only_failure(registry, file,
                      {"wrong magic number in the manifest: 0x12345678", "expected 0x50574C46"});
}

TEST_F(FaultSuite, AbiVersionMismatchNamesBothVersions) {
  auto file = dir_.add(fault("raw_abi_mismatch"));
  auto registry = load();
  expect_only_failure(registry, file,
                      {"plugin ABI version mismatch", "built for plugin ABI version 2",
                       "this host supports plugin ABI version 1", "rebuild the plugin"});
}

TEST_F(FaultSuite, FingerprintMismatchNamesTheDualAbiSetting) {
  auto file = dir_.add(fault("fault_fingerprint"));
  auto registry = load();
  expect_only_failure(registry, file,
                      {"build fingerprint mismatch",
                       "cxx11_abi is 0 in the plugin but 1 in the host", "_GLIBCXX_USE_CXX11_ABI"});
}

TEST_F(FaultSuite, UnresolvedDependencyNamesTheMissingLibrary) {
  auto file = dir_.add(fault("fault_missing_dependency"));
  auto registry = load();
  expect_only_failure(registry, file,
                      {"unresolved dependency", "needs libflowrt_fault_dep.so", "cannot find"});
}

TEST_F(FaultSuite, UndefinedSymbolIsALoadErrorNamingTheSymbol) {
  auto file = dir_.add(fault("fault_undefined_symbol"));
  auto registry = load();
  expect_only_failure(registry, file, {"undefined symbol fault::function_nobody_defines(int)"});
}

TEST_F(FaultSuite, StaticConstructorThatThrowsKillsOnlyTheProbe) {
  auto file = dir_.add(fault("fault_ctor_throws"));
  auto registry = load();
  expect_only_failure(
      registry, file,
      {"while loading the library (running its static constructors)", "static constructor", "threw",
       "static constructor of fault_ctor_throws failed"});
}

TEST_F(FaultSuite, StaticConstructorThatCallsExitKillsOnlyTheProbe) {
  auto file = dir_.add(fault("fault_ctor_exits"));
  auto registry = load();
  expect_only_failure(
      registry, file,
      {"exit status 3", "while loading the library", "a static constructor calls exit()"});
}

TEST_F(FaultSuite, StaticConstructorThatCrashesKillsOnlyTheProbe) {
  auto file = dir_.add(fault("fault_ctor_crashes"));
  auto registry = load();
  expect_only_failure(registry, file,
                      {"SIGSEGV", "while loading the library", "static constructor crashed"});
}

TEST_F(FaultSuite, StaticConstructorThatHangsIsKilledAfterTheTimeout) {
  auto file = dir_.add(fault("fault_ctor_hangs"));
  auto started = std::chrono::steady_clock::now();
  auto registry = load(std::chrono::milliseconds(3000));
  auto took = std::chrono::steady_clock::now() - started;
  expect_only_failure(registry, file,
                      {"did not finish loading the library", "within 3000 ms and was killed"});
  EXPECT_LT(took, std::chrono::seconds(30));
}

TEST_F(FaultSuite, FactoryThatThrowsThroughTheSdk) {
  auto file = dir_.add(fault("fault_factory_throws"));
  auto registry = load();
  expect_only_failure(registry, file, {"the factory failed: cannot reach the license server"});
}

TEST_F(FaultSuite, FactoryThatLetsAnExceptionEscape) {
  auto file = dir_.add(fault("raw_factory_throws"));
  auto registry = load();
  expect_only_failure(registry, file, {"the factory threw std::runtime_error: factory exploded"});
}

TEST_F(FaultSuite, FactoryThatReturnsNull) {
  auto file = dir_.add(fault("raw_factory_null"));
  auto registry = load();
  expect_only_failure(registry, file, {"the factory returned null without saying why"});
}

TEST_F(FaultSuite, InvalidProviderNameInAHandWrittenManifest) {
  auto file = dir_.add(fault("raw_bad_name"));
  auto registry = load();
  expect_only_failure(registry, file,
                      {"provider name in the manifest is missing or invalid", "[a-z0-9_]{1,64}"});
}

TEST_F(FaultSuite, DescribeThatFailsOrReturnsGarbage) {
  auto fails = dir_.add(fault("raw_describe_fails"));
  auto registry = load();
  expect_only_failure(registry, fails, {"describe() failed: schema generator is broken"});
  fs::remove(fails);
  auto garbage = dir_.add(fault("raw_describe_garbage"));
  auto again = load();
  expect_only_failure(again, garbage,
                      {"describe() returned no JSON Schema object in \"config_schema\""});
}

TEST_F(FaultSuite, IncompleteFunctionTable) {
  auto file = dir_.add(fault("raw_null_entry"));
  auto registry = load();
  expect_only_failure(registry, file, {"function table is incomplete"});
}

TEST_F(FaultSuite, DuplicateProviderNameNamesBothFiles) {
  auto first = dir_.add(bundled("webhook"), "a_webhook.so");
  auto second = dir_.add(bundled("webhook"), "b_webhook.so");
  auto registry = load();
  expect_only_failure(
      registry, second,
      {"duplicate provider name \"webhook\"", first.string() + " already provides it",
       second.string() + " was not loaded"});
  EXPECT_EQ(registry.find("webhook")->info().path, first);
}

TEST_F(FaultSuite, EveryFaultAtOnceStillLeavesTheGoodProviders) {
  for (const char* name :
       {"raw_no_manifest", "raw_wrong_magic", "raw_abi_mismatch", "fault_fingerprint",
        "fault_missing_dependency", "fault_undefined_symbol", "fault_ctor_throws",
        "fault_ctor_exits", "fault_ctor_crashes", "fault_factory_throws", "raw_factory_throws",
        "raw_factory_null"})
    dir_.add(fault(name));
  dir_.write("README", "not a plugin");
  auto registry = load();
  EXPECT_EQ(registry.failures().size(), 13u) << registry.to_json().dump(2);
  EXPECT_EQ(registry.providers().size(), 2u);
  expect_good_providers_work(registry);
}

TEST(PluginDirectory, EmptyDirectoryIsReported) {
  TempDir dir;
  auto registry = PluginRegistry::load(options_for(dir.path()));
  EXPECT_TRUE(registry.providers().empty());
  ASSERT_EQ(registry.failures().size(), 1u);
  EXPECT_EQ(registry.failures()[0].path, dir.path());
  EXPECT_THAT(registry.failures()[0].reason, HasSubstr("the plugin directory is empty"));
}

TEST(PluginDirectory, MissingDirectoryIsReported) {
  TempDir dir;
  auto registry = PluginRegistry::load(options_for(dir.path() / "nope"));
  ASSERT_EQ(registry.failures().size(), 1u);
  EXPECT_THAT(registry.failures()[0].reason, HasSubstr("does not exist"));
}

TEST(PluginDirectory, MissingProbeFailsEveryFileWithoutLoadingIt) {
  TempDir dir;
  auto file = dir.add(bundled("webchat"));
  auto options = options_for(dir.path());
  options.probe_path = dir.path() / "no-such-probe";
  auto registry = PluginRegistry::load(options);
  EXPECT_TRUE(registry.providers().empty());
  ASSERT_EQ(registry.failures().size(), 1u);
  EXPECT_THAT(registry.failures()[0].reason, HasSubstr("cannot run the plugin probe"));
  // Nothing was loaded into this process.
  EXPECT_EQ(::dlopen(file.c_str(), RTLD_NOW | RTLD_NOLOAD), nullptr);
}

TEST(PluginDirectory, ProbeThatReportsNothingIsAnError) {
  TempDir dir;
  dir.add(bundled("webchat"));
  auto options = options_for(dir.path());
  options.probe_path = "/bin/true";
  auto registry = PluginRegistry::load(options);
  EXPECT_TRUE(registry.providers().empty());
  ASSERT_EQ(registry.failures().size(), 1u);
  EXPECT_THAT(registry.failures()[0].reason,
              HasSubstr("exited with status 0 before reporting anything"));
}

// ------------------------------------------------------- calls that fail at run time

TEST(PluginCalls, SdkPluginExceptionsBecomeErrorsOfThatCallOnly) {
  TempDir dir;
  dir.add(fault("fault_misbehaves"));
  auto registry = PluginRegistry::load(options_for(dir.path()));
  auto provider = registry.find("fault_misbehaves");
  ASSERT_TRUE(provider) << registry.to_json().dump(2);

  InboundRequest request;
  request.body = "logic";
  auto bug = provider->parse(request, {});
  ASSERT_FALSE(bug);
  EXPECT_EQ(bug.error().status, CallStatus::failed);
  EXPECT_EQ(bug.error().message, "provider fault_misbehaves: parse: parse has a bug");

  request.body = "config";
  auto config = provider->parse(request, {});
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().status, CallStatus::bad_config);

  request.body = "no-contact";
  auto malformed = provider->parse(request, {});
  ASSERT_FALSE(malformed);
  EXPECT_EQ(malformed.error().status, CallStatus::failed);
  EXPECT_THAT(malformed.error().message, HasSubstr("an event has no contact_id"));

  request.headers = {{"X-Throw", "int"}};
  auto odd = provider->check_signature(request, {});
  ASSERT_FALSE(odd);
  EXPECT_THAT(odd.error().message, HasSubstr("not a std::exception"));

  runtime::CurlHttpClient http;
  auto retry = provider->send({"c", "u", "retry", 0}, {}, http);
  ASSERT_FALSE(retry);
  EXPECT_EQ(retry.error().status, CallStatus::retry);

  request.headers.clear();
  request.body = "fine";
  auto ok = provider->parse(request, {});
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok.value()[0].text, "fine");
}

TEST(PluginCalls, FaultsOfAHandWrittenPluginAreContainedAtTheBoundary) {
  TempDir dir;
  dir.add(fault("raw_bad_calls"));
  auto registry = PluginRegistry::load(options_for(dir.path()));
  auto provider = registry.find("raw_bad_calls");
  ASSERT_TRUE(provider) << registry.to_json().dump(2);
  InboundRequest request;

  auto escaped = provider->parse(request, {});
  ASSERT_FALSE(escaped);
  EXPECT_EQ(escaped.error().status, CallStatus::failed);
  EXPECT_THAT(
      escaped.error().message,
      HasSubstr(
          "let an exception escape into the host: std::runtime_error (thrown straight through"));

  auto garbage = provider->verify(request, {});
  ASSERT_FALSE(garbage);
  EXPECT_THAT(garbage.error().message, HasSubstr("verify returned malformed output"));

  request.body = "flood";
  auto flood = provider->verify(request, {});
  ASSERT_FALSE(flood);
  EXPECT_THAT(flood.error().message, HasSubstr("wrote more than 8 MiB of output"));
  request.body.clear();

  auto unknown = provider->check_signature(request, {});
  ASSERT_FALSE(unknown);
  EXPECT_THAT(unknown.error().message, HasSubstr("unknown status 77"));

  runtime::CurlHttpClient http;
  auto shape = provider->send({"c", "u", "t", 0}, {}, http);
  ASSERT_FALSE(shape);
  EXPECT_THAT(shape.error().message, HasSubstr("send returned malformed output"));
}

// --------------------------------------------------------------------- lifetime

TEST(PluginLifetime, ProviderKeepsItsLibraryLoadedUntilTheLastHandleGoes) {
  TempDir dir;
  auto file = dir.add(bundled("webchat"));
  std::shared_ptr<const Provider> webchat;
  {
    auto registry = PluginRegistry::load(options_for(dir.path()));
    webchat = registry.find("webchat");
    ASSERT_TRUE(webchat);
  }  // the registry is gone; the handle is not
  void* still_loaded = ::dlopen(file.c_str(), RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(still_loaded, nullptr) << "the library was unloaded while a provider lived";
  ::dlclose(still_loaded);

  InboundRequest request;
  request.body = R"({"user": "u", "text": "after the registry"})";
  auto events = webchat->parse(request, {});
  ASSERT_TRUE(events) << events.error().message;
  EXPECT_EQ(events.value()[0].text, "after the registry");

  webchat.reset();  // last handle: destroy the object, then dlclose
  EXPECT_EQ(::dlopen(file.c_str(), RTLD_NOW | RTLD_NOLOAD), nullptr)
      << "the library stayed mapped after its last provider was destroyed";
}

TEST(PluginCalls, ProvidersServeManyThreadsAtOnce) {
  TempDir dir;
  dir.add(bundled("whatsapp_cloud"));
  auto registry = PluginRegistry::load(options_for(dir.path()));
  auto whatsapp = registry.find("whatsapp_cloud");
  ASSERT_TRUE(whatsapp);
  ChannelSettings channel;
  channel.config = {{"phone_number_id", "106540352242922"}};
  channel.secrets = {{"app_secret", "k"}};
  InboundRequest request;
  request.body = sample("whatsapp_text_message.json");
  request.headers = {{"x-hub-signature-256", "sha256=" + hmac_hex("k", request.body)}};
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        auto checked = whatsapp->check_signature(request, channel);
        auto events = whatsapp->parse(request, channel);
        if (checked && events && events.value().size() == 1 &&
            events.value()[0].text == "Does it come in another color?")
          ++good;
      }
    });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(good.load(), 400);
}

// ------------------------------------------------------- registry JSON and CLI

TEST(PluginRegistryJson, ListsProvidersAndFailuresForTheApi) {
  TempDir dir;
  auto good = dir.add(bundled("webhook"));
  auto bad = dir.write("broken.so", "garbage");
  auto registry = PluginRegistry::load(options_for(dir.path()));
  auto json = registry.to_json();
  EXPECT_EQ(json["directory"], dir.path().string());
  ASSERT_EQ(json["providers"].size(), 1u);
  const auto& provider = json["providers"][0];
  EXPECT_EQ(provider["name"], "webhook");
  EXPECT_EQ(provider["version"], "1.0.0");
  EXPECT_EQ(provider["abi_version"], 1);
  EXPECT_EQ(provider["path"], good.string());
  EXPECT_EQ(provider["replies"], "push");
  EXPECT_EQ(provider["config_schema"]["required"], nlohmann::json({"callback_url"}));
  EXPECT_EQ(provider["secrets_schema"]["required"], nlohmann::json({"signing_secret"}));
  ASSERT_EQ(json["failures"].size(), 1u);
  EXPECT_EQ(json["failures"][0]["path"], bad.string());
  EXPECT_THAT(json["failures"][0]["reason"].get<std::string>(), HasSubstr("not an ELF"));
}

TEST(PluginsCommand, PrintsWhatLoadedAndWhatFailed) {
  TempDir dir;
  dir.add(bundled("telegram"));
  auto bad = dir.add(fault("raw_abi_mismatch"));
  std::ostringstream out;
  int status = run_plugins_command(options_for(dir.path()), out);
  EXPECT_EQ(status, 1);
  EXPECT_THAT(out.str(), HasSubstr("loaded  telegram 1.0.0 (plugin ABI 1)"));
  EXPECT_THAT(out.str(), HasSubstr("FAILED  " + bad.string() + ": plugin ABI version mismatch"));
  EXPECT_THAT(out.str(), HasSubstr("1 loaded, 1 failed"));

  fs::remove(bad);
  std::ostringstream clean;
  EXPECT_EQ(run_plugins_command(options_for(dir.path()), clean), 0) << clean.str();
}

}  // namespace
}  // namespace flowrt::testing::plugins
