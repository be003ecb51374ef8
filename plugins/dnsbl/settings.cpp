#include "plugins/dnsbl/settings.hpp"

namespace gw::plugins::dnsbl {
namespace {

constexpr std::int64_t kMaxWeight = 1000000;  // keeps every sum far from int overflow

ListSpec parse_list(const config::Table& t, bool domain) {
  if (domain) t.allow_only({"zone", "weight", "codes"});
  else t.allow_only({"zone", "weight", "codes", "ipv6"});
  ListSpec l;
  l.domain = domain;
  auto zone = t.string("zone");
  if (!zone) t.fail("", "a list needs zone = \"<DNS zone>\", e.g. \"zen.spamhaus.org\"");
  auto z = normalize_zone(*zone);
  if (!z) t.fail("zone", "not a DNS zone name: \"" + *zone + "\"");
  l.zone = *z;
  if (auto w = t.integer("weight")) {
    if (*w < -kMaxWeight || *w > kMaxWeight) t.fail("weight", "weight must be between -1000000 and 1000000");
    l.weight = static_cast<int>(*w);
  }
  for (auto& c : t.strings("codes").value_or(std::vector<std::string>{})) {
    std::string error;
    auto r = parse_code_range(c, error);
    if (!r) t.fail("codes", error);
    l.codes.push_back(*r);
  }
  if (!domain) l.ipv6 = t.boolean("ipv6").value_or(true);
  auto& m = observe::Metrics::instance();
  const std::string labels = "zone=\"" + l.zone + "\"";
  l.hits = &m.counter("smtpgw_dnsbl_hits_total", "DNS list lookups that hit (an answer that counts), by zone", labels);
  l.errors = &m.counter("smtpgw_dnsbl_errors_total", "DNS list lookups that failed or timed out, by zone", labels);
  l.list_errors = &m.counter("smtpgw_dnsbl_list_error_answers_total",
                             "Answers in 127.255.255.0/24 (the list refused the query), by zone", labels);
  return l;
}

}  // namespace

std::shared_ptr<const Settings> parse_settings(const config::Table& t, std::chrono::milliseconds dns_timeout) {
  auto s = std::make_shared<Settings>();
  t.allow_only({"threshold", "reject_at", "on_error", "lists", "domain_lists"});
  if (auto v = t.integer("threshold")) {
    if (*v < 1 || *v > kMaxWeight) t.fail("threshold", "threshold must be between 1 and 1000000");
    s->threshold = static_cast<int>(*v);
  }
  s->reject_at_connect = t.choice("reject_at", {"rcpt", "connect"}).value_or("rcpt") == "connect";
  s->tempfail_on_error = t.choice("on_error", {"ignore", "tempfail"}).value_or("ignore") == "tempfail";
  s->timeout = dns_timeout;
  for (auto& lt : t.tables("lists")) s->lists.push_back(parse_list(lt, false));
  for (auto& lt : t.tables("domain_lists")) s->domain_lists.push_back(parse_list(lt, true));
  return s;
}

}  // namespace gw::plugins::dnsbl
