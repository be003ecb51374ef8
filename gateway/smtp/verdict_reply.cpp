#include "gateway/smtp/verdict_reply.hpp"

namespace gw::smtp {

net::Reply verdict_reply(const Verdict& v, Stage stage, const std::string& hostname) {
  const bool reject = v.kind == Verdict::Kind::reject;
  int code = v.code;
  if (stage == Stage::connect) code = reject ? 554 : 421;
  else if (reject && (code < 500 || code > 599)) code = 550;
  else if (!reject && (code < 400 || code > 499)) code = 451;
  std::string enh = v.enhanced;
  if (enh.empty() || enh[0] - '0' != code / 100) enh = stage == Stage::connect && !reject ? "4.7.0" : std::to_string(code / 100) + ".7.1";
  std::string text = v.text;
  if (text.empty()) {
    if (stage == Stage::connect) text = hostname + (reject ? " Connection refused" : " Service not available, try again later");
    else text = reject ? "Rejected by policy" : "Try again later";
  }
  return net::Reply::make(code, std::move(enh), std::move(text));
}

}  // namespace gw::smtp
