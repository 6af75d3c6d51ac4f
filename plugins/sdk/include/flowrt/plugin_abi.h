/* flowrt plugin ABI, version 1: the only things that cross between the host and a plugin.
 *
 * Everything here is plain C so that no C++ object, exception, allocator or standard-library
 * layout ever crosses the boundary. Inputs are read-only views that stay valid for the
 * duration of one call; outputs are copied out through a host-owned sink during the call.
 * Nothing a plugin allocates is ever freed by the host, and nothing the host lends (sink,
 * HTTP client, request views) may be kept after the call returns.
 *
 * Plugin authors do not use this header directly: <flowrt/plugin.hpp> wraps it in a small
 * C++ API and generates the exported symbols with FLOWRT_PROVIDER.
 *
 * Compatibility rule: a change to any struct, function signature or status code below
 * bumps FLOWRT_PLUGIN_ABI_VERSION. The first two fields of flowrt_manifest (magic and
 * abi_version) never move, so a host can always read them to reject a plugin it does not
 * understand.
 */
#ifndef FLOWRT_PLUGIN_ABI_H
#define FLOWRT_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* "FLWP" read as a little-endian uint32. */
#define FLOWRT_PLUGIN_MAGIC 0x50574C46u
#define FLOWRT_PLUGIN_ABI_VERSION 1u

/* Names of the symbols a plugin exports with BOOST_DLL_ALIAS. */
#define FLOWRT_PLUGIN_MANIFEST_SYMBOL "flowrt_plugin_manifest"
#define FLOWRT_PLUGIN_CREATE_SYMBOL "flowrt_plugin_create"
#define FLOWRT_PLUGIN_DESTROY_SYMBOL "flowrt_plugin_destroy"

/* Checked by the host before it calls anything in the plugin. All strings are
 * NUL-terminated and static. */
typedef struct flowrt_manifest {
  uint32_t magic;          /* FLOWRT_PLUGIN_MAGIC */
  uint32_t abi_version;    /* FLOWRT_PLUGIN_ABI_VERSION the plugin was built against */
  const char* fingerprint; /* FLOWRT_PLUGIN_FINGERPRINT: toolchain and library ABI */
  const char* name;        /* provider name, [a-z0-9_]{1,64}, e.g. "whatsapp_cloud" */
  const char* version;     /* the plugin's own version, e.g. "1.2.0" */
  const char* description; /* one line for humans */
} flowrt_manifest;

/* A byte string that is not NUL-terminated. */
typedef struct flowrt_bytes {
  const char* data;
  size_t size;
} flowrt_bytes;

typedef struct flowrt_field {
  flowrt_bytes name;
  flowrt_bytes value;
} flowrt_field;

/* Result of every provider call. On anything but FLOWRT_OK the sink holds a message for
 * humans (what was wrong, and what to do). */
typedef enum flowrt_status {
  FLOWRT_OK = 0,
  FLOWRT_REJECTED = 1,   /* the input is refused: bad signature, malformed payload (4xx) */
  FLOWRT_RETRY = 2,      /* a transient failure; the same call may succeed later */
  FLOWRT_BAD_CONFIG = 3, /* the channel's config or secrets are missing or invalid */
  FLOWRT_FAILED = 4      /* the plugin failed (an exception, a bug) */
} flowrt_status;

/* Where a call writes its output; may be called several times (the bytes are appended).
 * Valid only during the call that received it. */
typedef struct flowrt_sink {
  void* context;
  void (*write)(void* context, const char* data, size_t size);
} flowrt_sink;

/* An HTTP request that reached the channel's webhook. */
typedef struct flowrt_inbound {
  flowrt_bytes method;
  flowrt_bytes path;
  const flowrt_field* query; /* decoded query parameters, in order */
  size_t query_count;
  const flowrt_field* headers; /* names in lower case */
  size_t header_count;
  flowrt_bytes body;
  int64_t received_at_ms; /* the host's clock, Unix time in milliseconds */
} flowrt_inbound;

/* A channel's settings, as JSON object texts. */
typedef struct flowrt_channel {
  flowrt_bytes config_json;
  flowrt_bytes secrets_json;
} flowrt_channel;

/* A message the flow sends to a contact. */
typedef struct flowrt_outbound {
  flowrt_bytes conversation_id;
  flowrt_bytes contact_id;
  flowrt_bytes text;
  int64_t now_ms; /* the host's clock, Unix time in milliseconds */
} flowrt_outbound;

typedef struct flowrt_http_request {
  flowrt_bytes method;
  flowrt_bytes url;
  const flowrt_field* headers;
  size_t header_count;
  flowrt_bytes body;
  int32_t timeout_ms;
} flowrt_http_request;

typedef struct flowrt_http_response {
  int32_t status; /* 0 when no response arrived; error says why */
  const flowrt_field* headers;
  size_t header_count;
  flowrt_bytes body;
  flowrt_bytes error;
  int32_t timed_out;
} flowrt_http_response;

/* Receives the response; the pointers are valid only during this callback. */
typedef void (*flowrt_http_response_fn)(void* user, const flowrt_http_response* response);

/* The host's HTTP client, lent for the duration of one send call. `send` blocks, calls
 * `on_response` exactly once, and never unwinds into the plugin. */
typedef struct flowrt_http {
  void* context;
  void (*send)(void* context, const flowrt_http_request* request,
               flowrt_http_response_fn on_response, void* user);
} flowrt_http;

typedef struct flowrt_provider flowrt_provider;

/* A provider's operations. Each may be called from several threads at once and must not
 * unwind (the SDK's trampolines catch every exception). */
typedef struct flowrt_provider_vtable {
  /* Writes {"config_schema": {...}, "secrets_schema": {...}, "replies": "push"|"response"}. */
  int (*describe)(const flowrt_provider* self, const flowrt_sink* out);
  /* A verification handshake (GET). Writes {"status": 200, "content_type": "...",
   * "body": "..."}; FLOWRT_REJECTED when the handshake is refused or not supported. */
  int (*verify)(const flowrt_provider* self, const flowrt_inbound* request,
                const flowrt_channel* channel, const flowrt_sink* out);
  /* FLOWRT_OK when the request is authentic; FLOWRT_REJECTED with the reason when not. */
  int (*check_signature)(const flowrt_provider* self, const flowrt_inbound* request,
                         const flowrt_channel* channel, const flowrt_sink* out);
  /* Writes {"events": [{"message_id", "contact_id", "contact_name", "contact_phone",
   * "text", "data", "timestamp_ms"}, ...]}. */
  int (*parse)(const flowrt_provider* self, const flowrt_inbound* request,
               const flowrt_channel* channel, const flowrt_sink* out);
  /* Delivers one message through `http`. Writes {"provider_message_id": "..."}. */
  int (*send)(const flowrt_provider* self, const flowrt_outbound* message,
              const flowrt_channel* channel, const flowrt_http* http, const flowrt_sink* out);
} flowrt_provider_vtable;

/* The head of every provider object; the rest belongs to the plugin. */
struct flowrt_provider {
  const flowrt_provider_vtable* vtable;
};

/* The factory: returns a new provider, or NULL after writing why to `error`. */
typedef flowrt_provider* flowrt_create_fn(const flowrt_sink* error);
/* Destroys what the factory created. Never unwinds. */
typedef void flowrt_destroy_fn(flowrt_provider* provider);

#ifdef __cplusplus
}
#endif

#endif /* FLOWRT_PLUGIN_ABI_H */
