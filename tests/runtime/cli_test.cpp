// The `flowrt` executable (SPEC §7): `chat` fed by a pipe, `test` exit status and summary,
// `validate` output lines and exit status. Runs the built binary through a shell.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace flowrt::runtime::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

struct CliRun {
  int status = -1;  // exit status
  std::string out;  // standard output (standard error too when asked)
  std::vector<std::string> lines() const {
    std::vector<std::string> result;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) result.push_back(line);
    return result;
  }
};

// Runs `flowrt ARGS` through /bin/sh in the test data folder, with `input` as its standard
// input (through a pipe, as `flowrt chat` is used in scripts).
CliRun flowrt(const std::string& args, bool with_stderr = false, const std::string& input = "") {
  std::string input_file;
  if (!input.empty()) {
    input_file = (std::filesystem::temp_directory_path() /
                  ("flowrt-cli-input-" + std::to_string(::getpid())))
                     .string();
    std::ofstream(input_file) << input;
  }
  std::string command = std::string("cd '") + FLOWRT_RUNTIME_TEST_DATA + "' && " +
                        (input.empty() ? "" : "cat '" + input_file + "' | ") + "'" + FLOWRT_BINARY +
                        "' " + args + (with_stderr ? " 2>&1" : " 2>/dev/null");
  CliRun run;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) {
    ADD_FAILURE() << "popen failed: " << command;
    return run;
  }
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    run.out.append(buffer.data(), n);
  int raw = ::pclose(pipe);
  run.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  if (!input_file.empty()) std::filesystem::remove(input_file);
  return run;
}

TEST(CliChat, ReadsLinesFromAPipeAndPrintsBotLines) {
  CliRun run =
      flowrt(R"(chat chat-flow.json --vars '{"plan": "basic"}')", false, "hi\nBea\nforty\n41\n");
  EXPECT_EQ(run.status, 0) << run.out;
  EXPECT_THAT(run.lines(),
              ElementsAre("bot> Hello from chat-flow!", "bot> What's your name?",
                          "bot> How old are you, Bea?", "bot> Please answer with a whole number.",
                          "bot> Bye Bea (41, plan basic)", "[conversation ended]"));
}

TEST(CliChat, VarsCommandShowsVariables) {
  CliRun run = flowrt("chat chat-flow.json", false, "hi\nBea\n/vars\n");
  EXPECT_EQ(run.status, 0);
  EXPECT_THAT(run.out, HasSubstr("\"name\": \"Bea\""));
}

TEST(CliChat, InvalidFlowExitsOneWithProblems) {
  CliRun run = flowrt("chat bad-flow.json </dev/null", /*with_stderr=*/true);
  EXPECT_EQ(run.status, 1);
  EXPECT_THAT(run.out, HasSubstr("bad-flow.json:/nodes/0/next: no node has id \"ask_bugdet\""));
  EXPECT_THAT(run.out, Not(HasSubstr("bot>")));
}

TEST(CliChat, BadVarsIsAUsageError) {
  CliRun run = flowrt("chat chat-flow.json --vars '[1]' </dev/null", /*with_stderr=*/true);
  EXPECT_EQ(run.status, 2);
  EXPECT_THAT(run.out, HasSubstr("--vars must be a JSON object"));
}

TEST(CliScript, PrintsReturnedValuesAndVarsAndSendsLogToStderr) {
  CliRun run = flowrt("script scripts/count.lua --vars '{\"count\": 2}' --answer '\"yes\"'",
                      /*with_stderr=*/true);
  EXPECT_EQ(run.status, 0) << run.out;
  EXPECT_THAT(run.out, HasSubstr("log: counted 3"));
  auto json_start = run.out.find('{');
  ASSERT_NE(json_start, std::string::npos) << run.out;
  Json printed = Json::parse(run.out.substr(json_start));
  EXPECT_EQ(printed["returned"], Json::parse("[30, \"yes\"]"));
  EXPECT_EQ(printed["vars"], Json::parse("{\"count\": 3}"));
}

TEST(CliScript, ALimitExitsOneWithTheCause) {
  CliRun run = flowrt("script scripts/spin.lua", /*with_stderr=*/true);
  EXPECT_EQ(run.status, 1);
  EXPECT_THAT(run.out, HasSubstr("instruction_limit"));
  EXPECT_THAT(run.out, HasSubstr("instruction limit of 1000000 exceeded"));
}

TEST(CliScript, LimitsComeFromTheEnvironment) {
  CliRun lowered;
  std::string command = std::string("cd '") + FLOWRT_RUNTIME_TEST_DATA +
                        "' && FLOWRT_SCRIPT_INSTRUCTIONS=500 '" + FLOWRT_BINARY +
                        "' script scripts/spin.lua 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    lowered.out.append(buffer.data(), n);
  int raw = ::pclose(pipe);
  EXPECT_EQ(WEXITSTATUS(raw), 1);
  EXPECT_THAT(lowered.out, HasSubstr("instruction limit of 500 exceeded"));
}

TEST(CliScript, ASyntaxErrorExitsOneWithTheLine) {
  CliRun run = flowrt("script scripts/broken.lua", /*with_stderr=*/true);
  EXPECT_EQ(run.status, 1);
  EXPECT_THAT(run.out, HasSubstr("syntax"));
  EXPECT_THAT(run.out, HasSubstr("line 2"));
}

TEST(CliTest, PassingTranscriptExitsZero) {
  CliRun run = flowrt("test cli/passing.test.json");
  EXPECT_EQ(run.status, 0) << run.out;
  EXPECT_THAT(run.lines(),
              ElementsAre("PASS cli/passing.test.json (name and age)", "1 passed, 0 failed"));
}

TEST(CliTest, FailingTranscriptExitsOneAndSaysWhy) {
  CliRun run = flowrt("test cli/failing.test.json");
  EXPECT_EQ(run.status, 1) << run.out;
  EXPECT_THAT(run.out, HasSubstr("FAIL cli/failing.test.json (expects the wrong greeting)"));
  EXPECT_THAT(
      run.out,
      HasSubstr(
          R"(step 2 {"bot":"Good morning!"}: expected bot message "Good morning!", got "Hello from chat-flow!")"));
  EXPECT_EQ(run.lines().back(), "0 passed, 1 failed");
}

TEST(CliTest, CountsAcrossFiles) {
  CliRun run = flowrt("test cli/passing.test.json cli/failing.test.json");
  EXPECT_EQ(run.status, 1);
  EXPECT_EQ(run.lines().back(), "1 passed, 1 failed");
}

TEST(CliTest, ExampleTranscriptsPass) {
  CliRun run = flowrt(std::string("test '") + FLOWRT_EXAMPLES_DIR + "'/*.test.json");
  EXPECT_EQ(run.status, 0) << run.out;
  EXPECT_THAT(run.lines().back(), ::testing::MatchesRegex("[1-9][0-9]* passed, 0 failed"));
}

TEST(CliValidate, ValidFlowExitsZero) {
  CliRun run = flowrt("validate chat-flow.json", /*with_stderr=*/true);
  EXPECT_EQ(run.status, 0) << run.out;
  EXPECT_THAT(run.lines(), ElementsAre("1 file checked: 0 errors, 0 warnings"));
}

TEST(CliValidate, BadFlowPrintsFilePointerAndMessageAndExitsOne) {
  CliRun run = flowrt("validate bad-flow.json");
  EXPECT_EQ(run.status, 1);
  std::vector<std::string> lines = run.lines();
  EXPECT_EQ(lines.size(), 18u) << run.out;  // one per planted mistake (see bad-flow.expected)
  for (const auto& line : lines)
    EXPECT_THAT(line, ::testing::StartsWith("bad-flow.json:/")) << line;
  EXPECT_THAT(lines,
              ::testing::Contains(
                  "bad-flow.json:/nodes/4/else: no node has id \"byee\" (did you mean \"bye\"?)"));
}

TEST(CliValidate, WarningsAloneExitZero) {
  CliRun run = flowrt("validate cli/warnings.json", /*with_stderr=*/true);
  EXPECT_EQ(run.status, 0) << run.out;
  EXPECT_THAT(run.out,
              HasSubstr("cli/warnings.json:/nodes/2: warning: node \"orphan\" is unreachable"));
  EXPECT_THAT(run.out, HasSubstr("1 file checked: 0 errors, 1 warning"));
}

TEST(CliValidate, MissingFileIsAnError) {
  CliRun run = flowrt("validate no-such-file.json");
  EXPECT_EQ(run.status, 1);
  EXPECT_THAT(run.out, HasSubstr("no-such-file.json: cannot read the file"));
}

}  // namespace
}  // namespace flowrt::runtime::testing
