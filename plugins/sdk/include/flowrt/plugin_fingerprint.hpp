// The build fingerprint a plugin records in its manifest: the parts of the toolchain that
// decide whether C++ code built separately can share one process with the host. The host
// compares it with its own and refuses a plugin whose fingerprint differs, naming the
// components that differ (see docs/plugins.md, "ABI and versioning").
#pragma once

#include <nlohmann/json.hpp>

#define FLOWRT_FP_STR2(x) #x
#define FLOWRT_FP_STR(x) FLOWRT_FP_STR2(x)

#if defined(__GXX_ABI_VERSION)
#define FLOWRT_FP_CXX_ABI "gxx_abi=" FLOWRT_FP_STR(__GXX_ABI_VERSION)
#else
#define FLOWRT_FP_CXX_ABI "gxx_abi=none"
#endif

#if defined(_GLIBCXX_RELEASE)
#define FLOWRT_FP_STDLIB "stdlib=libstdc++" FLOWRT_FP_STR(_GLIBCXX_RELEASE)
#elif defined(_LIBCPP_VERSION)
#define FLOWRT_FP_STDLIB "stdlib=libc++" FLOWRT_FP_STR(_LIBCPP_VERSION)
#else
#define FLOWRT_FP_STDLIB "stdlib=unknown"
#endif

#if defined(_GLIBCXX_USE_CXX11_ABI)
#define FLOWRT_FP_DUAL_ABI "cxx11_abi=" FLOWRT_FP_STR(_GLIBCXX_USE_CXX11_ABI)
#else
#define FLOWRT_FP_DUAL_ABI "cxx11_abi=none"
#endif

#define FLOWRT_FP_JSON                                                           \
  "nlohmann_json=" FLOWRT_FP_STR(NLOHMANN_JSON_VERSION_MAJOR) "." FLOWRT_FP_STR( \
      NLOHMANN_JSON_VERSION_MINOR) "." FLOWRT_FP_STR(NLOHMANN_JSON_VERSION_PATCH)

#if defined(__x86_64__)
#define FLOWRT_FP_ARCH "arch=x86_64"
#elif defined(__aarch64__)
#define FLOWRT_FP_ARCH "arch=aarch64"
#else
#define FLOWRT_FP_ARCH "arch=other"
#endif

// e.g. "gxx_abi=1017;stdlib=libstdc++12;cxx11_abi=1;nlohmann_json=3.11.2;arch=x86_64"
#define FLOWRT_PLUGIN_FINGERPRINT                                                  \
  FLOWRT_FP_CXX_ABI ";" FLOWRT_FP_STDLIB ";" FLOWRT_FP_DUAL_ABI ";" FLOWRT_FP_JSON \
                    ";" FLOWRT_FP_ARCH
