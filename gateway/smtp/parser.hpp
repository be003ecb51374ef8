// SMTP command lines (RFC 5321 §4.1, RFC 1869 parameters). Pure functions over string_views: no I/O,
// no allocation beyond the results. Fuzzed by tests/fuzz.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gw::smtp {

enum class Verb { helo, ehlo, mail, rcpt, data, rset, noop, quit, vrfy, expn, help, starttls, auth, bdat, unknown };

struct Command {
  Verb verb = Verb::unknown;
  std::string_view arg;  // the text after the verb and its separating space; for MAIL/RCPT after "FROM:"/"TO:"
  bool bad_form = false; // e.g. "MAIL" without "FROM:"
};

// `line` has no CRLF.
Command parse_command(std::string_view line);

struct Param {
  std::string keyword;  // upper-cased
  std::string value;    // may be empty (no '=')
};

struct Path {
  std::string address;       // without angle brackets and without a source route; empty for <>
  std::string source_route;  // "@a,@b" when the path had one
  std::string local_part;
  std::string domain;        // lower-cased; empty for <> and a bare <postmaster>
  bool utf8 = false;         // holds non-ASCII octets
  std::vector<Param> params;
};

struct PathResult {
  std::optional<Path> path;
  std::string error;  // why the syntax is bad, for the 501 text
};

// MAIL FROM argument: "<reverse-path> [params]"; `null_ok` allows "<>".
PathResult parse_path(std::string_view arg, bool null_ok);

// The ESMTP parameters of MAIL FROM (RFC 1870 SIZE, RFC 6152 BODY, RFC 4954 AUTH, RFC 6531
// SMTPUTF8), checked against what this listener offers.
struct MailParams {
  std::uint64_t size = 0;  // SIZE=, 0 when absent
  std::string body;        // BODY= upper-cased, empty when absent
  bool smtputf8 = false;
  // Set when a parameter is refused: the reply to give (501 5.5.4, 552 5.3.4, 555 5.5.4).
  int error_code = 0;
  std::string error_enhanced;
  std::string error_text;
};
MailParams parse_mail_params(const std::vector<Param>& params, std::uint64_t max_message_size, bool auth_offered);

bool valid_domain(std::string_view d, bool allow_utf8);
bool valid_helo(std::string_view name);

}  // namespace gw::smtp
