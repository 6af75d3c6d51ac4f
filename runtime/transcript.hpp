// Transcript tests (SPEC §8): a conversation written down as steps, replayed against a flow
// with the real executor, a manual clock and canned HTTP responses.
//
//   {"flow": "lead.json", "contact": {"name": "Ana"}, "vars": {}, "http": [...],
//    "steps": [{"user": "hi"}, {"bot": "Hi Ana!"}, {"bot_matches": "^What"},
//              {"status": "waiting"}, {"vars": {"budget": 1500}}, {"timeout": true},
//              {"resume": true}, {"error_matches": "limit"},
//              {"handoff": {"queue": "sales"}},
//              {"request": {"method": "POST", "url": "...", "body": {"name": "Ana"}}}]}
//
// A file holds one test object or an array of them. `bot`/`bot_matches` consume the bot's
// messages in order; messages left unconsumed when the next `user` step comes are dropped.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "runtime/executor.hpp"

namespace flowrt::runtime {

struct TranscriptOptions {
  std::optional<std::filesystem::path> flows_dir;  // where `jump` looks; default: flow's folder
  ParseOptions parse;                              // Lua checker etc.
  ScriptRunner* scripts = nullptr;
};

struct TranscriptOutcome {
  std::string name;  // "file.test.json" or "file.test.json#2 (name)"
  bool passed = false;
  std::string failure;  // "step 4 {"bot": ...}: expected ..., got ..."
};

std::vector<TranscriptOutcome> run_transcript_file(const std::filesystem::path& file,
                                                   const TranscriptOptions& options);

}  // namespace flowrt::runtime
