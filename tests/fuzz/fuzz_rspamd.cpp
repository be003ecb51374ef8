// rspamd's answer (an untrusted HTTP body) through the JSON -> decision mapping and the header edits:
// never a crash, every reply text one clean line, every added field a valid name with a value that
// cannot start a new field, and the message body untouched.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "plugins/rspamd/answer.hpp"
#include "plugins/rspamd/edits.hpp"

using namespace gw::plugins::rspamd;

namespace {
void check_value(std::string_view v) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\0') std::abort();
    if (v[i] == '\r' && !(i + 2 < v.size() && v[i + 1] == '\n' && (v[i + 2] == ' ' || v[i + 2] == '\t'))) std::abort();
    if (v[i] == '\n' && !(i > 0 && v[i - 1] == '\r')) std::abort();
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Parsed p = parse_answer(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!p.answer) {
    if (p.error.empty()) std::abort();
    return 0;
  }
  const Answer& a = *p.answer;
  gw::Verdict v = verdict_for(a);
  for (char c : v.text)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) std::abort();
  if (v.text.size() > 400) std::abort();
  for (auto& h : a.add_headers) {
    if (!valid_field_name(h.name)) std::abort();
    check_value(h.value);
  }
  for (auto& r : a.remove_headers)
    if (!valid_field_name(r.name)) std::abort();
  if (a.subject) check_value(*a.subject);

  gw::Message m;
  m.buffer() = "Received: from x\r\nSubject: s\r\nX-Spam: 1\r\nX-Spam: 2\r\nFrom: a@b.test\r\n\r\nbody\r\n.\r\n";
  apply_edits(a, m);
  if (m.body() != "body\r\n.\r\n") std::abort();
  size_t fields = 0;
  for (auto& f : m.fields())
    if (!f.removed) ++fields;
  if (fields > 5 + a.add_headers.size() + 1) std::abort();
  return 0;
}
