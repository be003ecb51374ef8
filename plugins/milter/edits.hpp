// Applies a milter's end-of-message modifications to the message, in the order the milter sent
// them, with the Message edit functions. Indices count the header fields the milter was given (the
// fields as the client sent them, those an earlier plugin removed left out): insert 0 = above the
// first field; change/delete N = the Nth field of that name (1-based; past the last one, a change
// adds the field and a delete does nothing). Pure: unit-tested without a socket.
#pragma once
#include <string>
#include <vector>

#include "gateway/core/message.hpp"
#include "plugins/milter/codec.hpp"

namespace gw::milter {

struct EditOutcome {
  bool ok = true;
  std::string error;                     // a malformed or unoffered modification
  std::vector<std::string> quarantine;   // SMFIR_QUARANTINE reasons
  int applied = 0;
};

// `leadspc`: SMFIP_HDR_LEADSPC was negotiated (values carry their leading space).
// `max_size`: the replaced body may not make the message larger than this.
EditOutcome apply_edits(Message& message, const std::vector<Packet>& edits, bool leadspc, std::size_t max_size);

// The header fields a milter is sent: indices into message.fields() of the fields not removed.
std::vector<std::size_t> visible_fields(const Message& message);
// A field's value as a milter gets it: folds as LF (like Sendmail and Postfix), no final line break,
// leading whitespace kept only with `leadspc`.
std::string milter_value(const Message& message, const HeaderField& f, bool leadspc);

}  // namespace gw::milter
