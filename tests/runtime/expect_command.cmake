# Runs a command and checks what it did. Used by CTest entries in this folder:
#
#   cmake -DCOMMAND=prog|arg|arg -DEXPECT_EXIT=N [-DEXPECT_REGEX=re] [-DEXPECT_STDERR_REGEX=re]
#         [-DEXPECT_LINES_FILE=file] -P expect_command.cmake
#
# EXPECT_REGEX is matched against standard output, EXPECT_STDERR_REGEX against standard
# error. EXPECT_LINES_FILE lists the exact lines standard output must consist of (in any
# order, each once, and no others). Any mismatch fails with both outputs shown.
cmake_minimum_required(VERSION 3.25)

string(REPLACE "|" ";" argv "${COMMAND}")
execute_process(COMMAND ${argv} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)

set(problems "")
if(NOT "${status}" STREQUAL "${EXPECT_EXIT}")
  string(APPEND problems "exit status ${status}, expected ${EXPECT_EXIT}\n")
endif()
if(DEFINED EXPECT_REGEX AND NOT out MATCHES "${EXPECT_REGEX}")
  string(APPEND problems "standard output does not match \"${EXPECT_REGEX}\"\n")
endif()
if(DEFINED EXPECT_STDERR_REGEX AND NOT err MATCHES "${EXPECT_STDERR_REGEX}")
  string(APPEND problems "standard error does not match \"${EXPECT_STDERR_REGEX}\"\n")
endif()
if(DEFINED EXPECT_LINES_FILE)
  # Messages contain ';' and '[', which CMake lists treat specially: protect them while
  # splitting into lines.
  file(READ "${EXPECT_LINES_FILE}" expected_text)
  string(REPLACE ";" "<semicolon>" expected_text "${expected_text}")
  string(REPLACE "[" "<open>" expected_text "${expected_text}")
  string(REPLACE "]" "<close>" expected_text "${expected_text}")
  string(REPLACE "\n" ";" expected_lines "${expected_text}")
  set(remaining "\n${out}")
  set(count 0)
  foreach(line IN LISTS expected_lines)
    string(REPLACE "<semicolon>" ";" line "${line}")
    string(REPLACE "<open>" "[" line "${line}")
    string(REPLACE "<close>" "]" line "${line}")
    if(line STREQUAL "")
      continue()
    endif()
    math(EXPR count "${count} + 1")
    string(FIND "${remaining}" "\n${line}\n" at)
    if(at EQUAL -1)
      string(APPEND problems "missing line: ${line}\n")
    else()
      # Remove the match so that a line expected twice must be printed twice.
      string(LENGTH "\n${line}" length)
      string(SUBSTRING "${remaining}" 0 ${at} before)
      math(EXPR after_at "${at} + ${length}")
      string(SUBSTRING "${remaining}" ${after_at} -1 after)
      set(remaining "${before}${after}")
    endif()
  endforeach()
  string(STRIP "${remaining}" leftover)
  if(NOT leftover STREQUAL "")
    string(APPEND problems "unexpected output lines:\n${leftover}\n")
  endif()
  if(count EQUAL 0)
    string(APPEND problems "${EXPECT_LINES_FILE} lists no lines\n")
  endif()
endif()

if(NOT problems STREQUAL "")
  message(FATAL_ERROR "${COMMAND}\n${problems}--- stdout ---\n${out}--- stderr ---\n${err}")
endif()
message(STATUS "ok: ${COMMAND}")
