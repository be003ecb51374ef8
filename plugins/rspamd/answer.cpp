#include "plugins/rspamd/answer.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace gw::plugins::rspamd {

namespace json = boost::json;

namespace {

constexpr std::pair<Action, std::string_view> kActions[] = {
    {Action::no_action, "no action"},     {Action::add_header, "add header"},
    {Action::rewrite_subject, "rewrite subject"}, {Action::greylist, "greylist"},
    {Action::soft_reject, "soft reject"}, {Action::reject, "reject"},
};

std::optional<double> number(const json::value* v) {
  if (!v) return std::nullopt;
  if (v->is_int64()) return static_cast<double>(v->get_int64());
  if (v->is_uint64()) return static_cast<double>(v->get_uint64());
  if (v->is_double() && std::isfinite(v->get_double())) return v->get_double();
  return std::nullopt;
}

// rspamd reads a count or an order as an integer; a float is truncated, as its UCL does.
std::optional<std::int64_t> integer(const json::value* v) {
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(std::min<std::uint64_t>(v->get_uint64(), 1ull << 53));
  if (v->is_double() && std::isfinite(v->get_double())) {
    double d = std::trunc(v->get_double());
    constexpr double lim = 9007199254740992.0;  // 2^53
    return static_cast<std::int64_t>(std::clamp(d, -lim, lim));
  }
  return std::nullopt;
}

std::optional<std::string_view> string(const json::value* v) {
  if (!v || !v->is_string()) return std::nullopt;
  const json::string& s = v->get_string();
  return std::string_view(s.data(), s.size());
}

// One entry of add_headers[NAME]: a string or {value, order}; a list is unrolled by the caller.
void add_one(Answer& a, std::string_view name, const json::value& v) {
  if (auto s = string(&v)) {
    a.add_headers.push_back({std::string(name), clean_field_value(*s), std::nullopt});
    return;
  }
  if (const json::object* o = v.if_object()) {
    auto value = string(o->if_contains("value"));
    if (!value) {
      a.ignored.push_back(std::string(name) + " (no string value)");
      return;
    }
    const json::value* ord = o->if_contains("order");
    if (!ord) ord = o->if_contains("index");  // rspamd's own milter accepts both words
    a.add_headers.push_back({std::string(name), clean_field_value(*value), integer(ord)});
    return;
  }
  a.ignored.push_back(std::string(name) + " (not a string or {value, order})");
}

void read_milter(Answer& a, const json::object& milter) {
  if (const json::value* rm = milter.if_contains("remove_headers")) {
    if (const json::object* o = rm->if_object()) {
      for (auto& kv : *o) {
        std::string_view name(kv.key().data(), kv.key().size());
        auto count = integer(&kv.value());
        if (!valid_field_name(name) || !count) {
          a.ignored.push_back("remove " + std::string(name));
          continue;
        }
        a.remove_headers.push_back({std::string(name), *count});
      }
    }
  }
  if (const json::value* add = milter.if_contains("add_headers")) {
    if (const json::object* o = add->if_object()) {
      for (auto& kv : *o) {
        std::string_view name(kv.key().data(), kv.key().size());
        if (!valid_field_name(name)) {
          a.ignored.push_back("add " + std::string(name));
          continue;
        }
        if (const json::array* list = kv.value().if_array()) {
          for (auto& e : *list) add_one(a, name, e);
        } else {
          add_one(a, name, kv.value());
        }
      }
    }
  }
}

}  // namespace

const char* action_name(Action a) {
  for (auto& [act, word] : kActions)
    if (act == a) return word.data();
  return "no action";
}

std::optional<Action> parse_action(std::string_view word) {
  for (auto& [act, w] : kActions)
    if (w == word) return act;
  return std::nullopt;
}

Parsed parse_answer(std::string_view body) {
  Parsed out;
  boost::system::error_code ec;
  json::parse_options opt;
  opt.max_depth = 32;
  json::value root = json::parse(body, ec, json::storage_ptr(), opt);
  if (ec) {
    out.error = "not JSON: " + ec.message();
    return out;
  }
  const json::object* o = root.if_object();
  if (!o) {
    out.error = "not a JSON object";
    return out;
  }
  auto word = string(o->if_contains("action"));
  if (!word) {
    out.error = "no action";
    return out;
  }
  auto action = parse_action(*word);
  if (!action) {
    out.error = "unknown action \"" + clean_reply_text(*word) + "\"";
    return out;
  }
  Answer a;
  a.action = *action;
  a.score = number(o->if_contains("score")).value_or(0);
  a.required_score = number(o->if_contains("required_score")).value_or(0);
  if (const json::value* syms = o->if_contains("symbols")) {
    if (const json::object* so = syms->if_object()) {
      a.symbols.reserve(so->size());
      for (auto& kv : *so) {
        std::optional<double> score;
        if (const json::object* s = kv.value().if_object()) score = number(s->if_contains("score"));
        else score = number(&kv.value());
        a.symbols.emplace_back(std::string(kv.key().data(), kv.key().size()), score.value_or(0));
      }
    }
  }
  if (const json::value* msgs = o->if_contains("messages")) {
    if (const json::object* mo = msgs->if_object()) {
      if (auto m = string(mo->if_contains("smtp_message"))) {
        auto text = clean_reply_text(*m);
        if (!text.empty()) a.smtp_message = std::move(text);
      }
    }
  }
  if (auto s = string(o->if_contains("subject"))) a.subject = clean_field_value(*s);
  if (const json::value* m = o->if_contains("milter")) {
    if (const json::object* mo = m->if_object()) read_milter(a, *mo);
  }
  out.answer = std::move(a);
  return out;
}

Verdict verdict_for(const Answer& a) {
  switch (a.action) {
    case Action::reject:
      return Verdict::reject(550, "5.7.1", a.smtp_message ? *a.smtp_message : "Spam message rejected");
    case Action::soft_reject:
    case Action::greylist:
      return Verdict::tempfail(451, "4.7.1", "Try again later");
    case Action::no_action:
    case Action::add_header:
    case Action::rewrite_subject:
      break;
  }
  return Verdict::next();
}

bool valid_field_name(std::string_view name) {
  if (name.empty() || name.size() > 998) return false;
  for (unsigned char c : name)
    if (c < 33 || c > 126 || c == ':') return false;
  return true;
}

std::string clean_field_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  const size_t n = v.size();
  size_t i = 0;
  while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n' || v[i] == '\0')) ++i;
  while (i < n) {
    char c = v[i];
    if (c == '\0') {
      ++i;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      // A run of whitespace and line breaks: with a break in it, it becomes one fold (CRLF and the
      // whitespace after the last break) or, when no whitespace follows the break, one space.
      size_t j = i;
      size_t last_break = std::string_view::npos;
      while (j < n && (v[j] == ' ' || v[j] == '\t' || v[j] == '\r' || v[j] == '\n' || v[j] == '\0')) {
        if (v[j] == '\r' || v[j] == '\n') last_break = j;
        ++j;
      }
      if (j == n) break;  // trailing whitespace
      if (last_break == std::string_view::npos) {
        for (size_t k = i; k < j; ++k)
          if (v[k] != '\0') out += v[k];
      } else {
        std::string wsp;
        for (size_t k = last_break + 1; k < j; ++k)
          if (v[k] != '\0') wsp += v[k];
        if (wsp.empty()) out += ' ';
        else out += "\r\n" + wsp;
      }
      i = j;
      continue;
    }
    out += c;
    ++i;
  }
  return out;
}

std::string clean_reply_text(std::string_view text) {
  std::string out;
  out.reserve(std::min<size_t>(text.size(), 400));
  for (unsigned char c : text) {
    bool space = c < 0x20 || c == 0x7f;
    if (space) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += static_cast<char>(c);
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  size_t start = 0;
  while (start < out.size() && out[start] == ' ') ++start;
  out.erase(0, start);
  if (out.size() > 400) {
    size_t cut = 400;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;  // never split a UTF-8 sequence
    out.resize(cut);
  }
  return out;
}

}  // namespace gw::plugins::rspamd
