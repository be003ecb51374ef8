// The ratelimit plugin ([plugins.ratelimit], docs/store.md): rules counting connections (at connect),
// messages (at MAIL) or recipients (at RCPT) per client address, client network, sender, sender
// domain, authenticated user or recipient, each a GCRA bucket in the shared store (Store::rate).
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/core/plugin.hpp"

namespace gw::plugins::ratelimit {

enum class Key { client_ip, client_net, sender, sender_domain, auth_user, recipient };
enum class Count { messages, recipients, connections };
enum class Action { tempfail, defer, reject, log };

struct Rule {
  Key key = Key::client_ip;
  Count count = Count::messages;
  std::int64_t limit = 0;
  std::chrono::milliseconds per{60000};
  std::string per_text = "1m";
  Action action = Action::tempfail;
  std::string name;  // for logs and metrics: "client_ip" unless the rule names itself
};

const char* key_name(Key k);
const char* count_name(Count c);

// The value a rule counts under for this transaction (recipient: the RCPT address), or nullopt when
// the rule does not apply (auth_user on an unauthenticated session).
std::optional<std::string> key_value(Key k, const Transaction& tx, const std::string* recipient);

// The store key of one bucket.
std::string store_key(const Rule& r, const std::string& value);

struct Settings {
  std::vector<Rule> rules;
  bool tempfail_on_store_error = false;
};

// Parses [plugins.ratelimit]; throws config::ConfigError.
Settings parse(const config::Table& t);

}  // namespace gw::plugins::ratelimit
