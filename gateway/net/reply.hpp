// An SMTP reply: a code and its text lines, with the enhanced status code (RFC 3463) split out.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace gw::net {

struct Reply {
  int code = 0;
  std::string enhanced;            // "2.0.0"; empty when the text had none
  std::vector<std::string> lines;  // text after the code (and after the enhanced code)

  static Reply make(int code, std::string enhanced, std::string text) {
    return Reply{code, std::move(enhanced), {std::move(text)}};
  }
  bool positive() const { return code >= 200 && code < 400; }
  bool temporary() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500 && code < 600; }
  std::string text() const;        // lines joined by " / " for logs
  // Wire form: "250-2.1.0 a\r\n250 2.1.0 b\r\n". Missing enhanced codes get `default_enhanced`.
  void append_to(std::string& out, std::string_view default_enhanced = {}) const;
  std::string summary() const;     // "250 2.0.0 text" for logs
};

// One line of a reply as read from a peer. Returns false when the line is not a reply line.
// `last` is set for "ddd " / "ddd" lines.
bool parse_reply_line(std::string_view line, int& code, bool& last, std::string_view& text);
// Splits "2.1.0 rest" into enhanced code and rest when the text starts with one of class `cls`.
bool split_enhanced(std::string_view text, int cls, std::string& enhanced, std::string_view& rest);

}  // namespace gw::net
