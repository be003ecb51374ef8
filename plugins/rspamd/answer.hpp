// rspamd's answer to POST /checkv2, read into plain data, and the SMTP verdict it stands for.
// A pure function of the response body (no I/O, no transaction): unit tested and fuzzed on its own.
//
// What is read (docs/rspamd.md): `action` (required, one of the six actions rspamd 3 knows),
// `score`, `required_score`, `symbols` ({NAME: {score}}), `messages.smtp_message`, `subject`,
// `milter.remove_headers` ({NAME: count}) and `milter.add_headers` ({NAME: value}, where value is a
// string, {value, order} or a list of those). Header names that are not RFC 5322 field names are
// dropped; values are cleaned so that they never hold NUL, a bare CR/LF or a line break that is not a
// fold (CRLF WSP).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/core/verdict.hpp"

namespace gw::plugins::rspamd {

enum class Action { no_action, add_header, rewrite_subject, greylist, soft_reject, reject };
const char* action_name(Action a);  // rspamd's own words: "no action", "add header", ...
std::optional<Action> parse_action(std::string_view word);

struct RemoveHeader {
  std::string name;
  std::int64_t count = 0;  // 0 = every occurrence, N > 0 the Nth, N < 0 the Nth from the end
};

struct AddHeader {
  std::string name;
  std::string value;
  std::optional<std::int64_t> order;  // absent: after the last field; >= 0: insert at; < 0: from the end
};

struct Answer {
  Action action = Action::no_action;
  double score = 0;
  double required_score = 0;
  std::vector<std::pair<std::string, double>> symbols;  // in the order of the answer
  std::optional<std::string> smtp_message;              // cleaned to one line of printable text
  std::optional<std::string> subject;                   // for "rewrite subject"
  std::vector<RemoveHeader> remove_headers;
  std::vector<AddHeader> add_headers;
  std::vector<std::string> ignored;  // what was dropped from milter.* (bad names, bad values), for the log
};

struct Parsed {
  std::optional<Answer> answer;  // absent: a bad answer
  std::string error;             // why, when absent
};

// The body of a 200 answer. A body that is not a JSON object, or has no known `action`, is a bad answer.
Parsed parse_answer(std::string_view body);

// reject -> 550 5.7.1 (smtp_message when present), soft reject and greylist -> 451 4.7.1, the others
// let the message go on (Verdict::next()).
Verdict verdict_for(const Answer& a);

// RFC 5322 field name: 1 to 998 printable US-ASCII characters other than ':' (and no space).
bool valid_field_name(std::string_view name);
// A header value safe to write after "Name: ": NUL removed, a line break followed by WSP kept as a
// CRLF fold, any other line break (bare CR, bare LF or CRLF) turned into one space; trailing
// whitespace removed.
std::string clean_field_value(std::string_view value);
// One line of printable text for an SMTP reply: control characters become spaces, at most 400 octets.
std::string clean_reply_text(std::string_view text);

}  // namespace gw::plugins::rspamd
