// What a plugin says about one SMTP stage. Mapped to the client's reply in one place (the session).
#pragma once
#include <string>

namespace gw {

struct Verdict {
  enum class Kind { proceed, accept, reject, tempfail };
  Kind kind = Kind::proceed;
  int code = 0;           // 5xx for reject, 4xx for tempfail
  std::string enhanced;   // "5.7.1"
  std::string text;

  static Verdict next() { return {}; }
  static Verdict accept() { return {Kind::accept, 0, {}, {}}; }
  static Verdict reject(int code, std::string enhanced, std::string text) {
    return {Kind::reject, code, std::move(enhanced), std::move(text)};
  }
  static Verdict tempfail(int code, std::string enhanced, std::string text) {
    return {Kind::tempfail, code, std::move(enhanced), std::move(text)};
  }
  bool stops() const { return kind != Kind::proceed; }
  bool refuses() const { return kind == Kind::reject || kind == Kind::tempfail; }
  const char* kind_name() const {
    switch (kind) {
      case Kind::proceed: return "continue";
      case Kind::accept: return "accept";
      case Kind::reject: return "reject";
      case Kind::tempfail: return "tempfail";
    }
    return "continue";
  }
};

}  // namespace gw
