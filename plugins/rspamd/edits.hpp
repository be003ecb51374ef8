// rspamd's header edits applied to the message: milter.remove_headers, then milter.add_headers, then
// the Subject of "rewrite subject" (the order rspamd's own milter proxy applies them in). Counts and
// orders refer to the message's own header fields as the client sent them (minus those an earlier
// plugin removed); the headers the gateway writes above the message are not counted.
#pragma once
#include <cstddef>

#include "gateway/core/message.hpp"
#include "plugins/rspamd/answer.hpp"

namespace gw::plugins::rspamd {

struct EditCount {
  size_t removed = 0;
  size_t added = 0;
  bool subject = false;  // Subject replaced (or added when the message had none)
};

EditCount apply_edits(const Answer& a, Message& m);

// "add header" adds `X-Spam: Yes` above the message, unless rspamd's own add_headers already adds an
// X-Spam field (its milter_headers module does with extended headers): one such field, not two.
bool needs_spam_header(const Answer& a);

}  // namespace gw::plugins::rspamd
