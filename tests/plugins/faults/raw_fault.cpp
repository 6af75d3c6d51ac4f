// A plugin written against the C ABI by hand, without FLOWRT_PROVIDER, so that it can
// break the rules the SDK enforces: a wrong magic number or ABI version, no manifest, a
// factory that returns null or lets an exception escape, calls that throw across the
// boundary or return garbage. One RAW_* macro picks the fault.
#include <cstring>
#include <stdexcept>
#include <string>

#include <flowrt/plugin_abi.h>
#include <flowrt/plugin_fingerprint.hpp>
#define BOOST_DLL_USE_STD_FS
#include <boost/dll/alias.hpp>

#ifndef RAW_MAGIC
#define RAW_MAGIC FLOWRT_PLUGIN_MAGIC
#endif
#ifndef RAW_ABI
#define RAW_ABI FLOWRT_PLUGIN_ABI_VERSION
#endif

namespace {

void put(const flowrt_sink* out, const char* text) {
  out->write(out->context, text, std::strlen(text));
}

int describe(const flowrt_provider*, const flowrt_sink* out) {
#if defined(RAW_DESCRIBE_FAILS)
  put(out, "schema generator is broken");
  return FLOWRT_FAILED;
#elif defined(RAW_DESCRIBE_GARBAGE)
  put(out, R"({"config_schema": 5})");
  return FLOWRT_OK;
#else
  put(out, R"({"config_schema":{},"secrets_schema":{},"replies":"push"})");
  return FLOWRT_OK;
#endif
}
int verify(const flowrt_provider*, const flowrt_inbound* request, const flowrt_channel*,
           const flowrt_sink* out) {
  if (request->body.size == 5 && std::memcmp(request->body.data, "flood", 5) == 0) {
    std::string chunk(1 << 20, 'x');  // 9 MiB in 1 MiB writes: over the host's limit
    for (int i = 0; i < 9; ++i) out->write(out->context, chunk.data(), chunk.size());
    return FLOWRT_OK;
  }
  put(out, "not json at all");  // malformed output
  return FLOWRT_OK;
}
int check_signature(const flowrt_provider*, const flowrt_inbound*, const flowrt_channel*,
                    const flowrt_sink*) {
  return 77;  // a status that does not exist
}
[[maybe_unused]] int parse(const flowrt_provider*, const flowrt_inbound*, const flowrt_channel*,
                           const flowrt_sink*) {
  throw std::runtime_error("thrown straight through the C boundary");
}
int send(const flowrt_provider*, const flowrt_outbound*, const flowrt_channel*, const flowrt_http*,
         const flowrt_sink* out) {
  put(out, "[1, 2, 3]");  // JSON, but not the object send must return
  return FLOWRT_OK;
}

#if defined(RAW_NULL_ENTRY)
const flowrt_provider_vtable vtable = {&describe, &verify, &check_signature, nullptr, &send};
#else
const flowrt_provider_vtable vtable = {&describe, &verify, &check_signature, &parse, &send};
#endif
[[maybe_unused]] flowrt_provider the_provider = {&vtable};

const flowrt_manifest manifest = {RAW_MAGIC, RAW_ABI, FLOWRT_PLUGIN_FINGERPRINT,
                                  RAW_NAME,  "0.0.1", "a hand-written plugin for the fault suite"};

flowrt_provider* create(const flowrt_sink*) {
#if defined(RAW_FACTORY_NULL)
  return nullptr;
#elif defined(RAW_FACTORY_THROWS)
  throw std::runtime_error("factory exploded");
#else
  return &the_provider;
#endif
}
void destroy(flowrt_provider*) {}

}  // namespace

#if !defined(RAW_NO_MANIFEST)
BOOST_DLL_ALIAS(manifest, flowrt_plugin_manifest)
#endif
BOOST_DLL_ALIAS(create, flowrt_plugin_create)
BOOST_DLL_ALIAS(destroy, flowrt_plugin_destroy)
