// The smallest useful provider: JSON {"user", "text"} in, the reply POSTed as JSON to the
// channel's config "reply_url". Rename it, then replace each method with your channel's
// real formats. See docs/plugins.md.
#include <flowrt/plugin.hpp>

using namespace flowrt::sdk;

class Echo final : public Provider {
 public:
  void check_signature(const Request&, const Channel&) const override {}  // open endpoint
  std::vector<Event> parse(const Request& request, const Channel&) const override {
    auto body = request.json_body();
    return {Event{.contact_id = body.at("user"), .text = body.value("text", "")}};
  }
  Sent send(const Message& m, const Channel& channel, Http& http) const override {
    auto response = http.post_json(channel.config_string("reply_url"),
                                   {{"to", m.contact_id}, {"text", m.text}});
    if (!response.ok()) fail_delivery(response, "reply_url");
    return {};
  }
};

FLOWRT_PROVIDER(Echo, "echo", "1.0.0", "Echo: the plugin template")
