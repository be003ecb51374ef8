#include "plugins/spf/libspf2_run.hpp"

#include <netdb.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>

#include <algorithm>
#include <cctype>
#include <cstring>

extern "C" {
#include <spf2/spf.h>
#include <spf2/spf_dns.h>
#include <spf2/spf_dns_rr.h>
}

namespace gw::spf::detail {
namespace {

std::optional<dns::Type> to_type(ns_type t) {
  switch (static_cast<int>(t)) {
    case ns_t_a: return dns::Type::A;
    case ns_t_aaaa: return dns::Type::AAAA;
    case ns_t_mx: return dns::Type::MX;
    case ns_t_ptr: return dns::Type::PTR;
    case ns_t_txt: return dns::Type::TXT;
    default: return std::nullopt;
  }
}

bool ieq_prefix(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  return true;
}

thread_local CheckState* g_state = nullptr;

SPF_dns_rr_t* make_rr(SPF_dns_server_t* server, const char* domain, ns_type type, int herrno) {
  return SPF_dns_rr_new_init(server, domain, type, 0, herrno);
}

SPF_dns_rr_t* layer_lookup(SPF_dns_server_t* server, const char* domain, ns_type rr_type, int should_cache) {
  CheckState* st = g_state;
  auto type = to_type(rr_type);
  auto seen = dns::normalize_name(domain ? domain : "");
  if (!st || !type || !seen) return make_rr(server, domain ? domain : "", rr_type, HOST_NOT_FOUND);
  auto name = dns::normalize_name(st->real(*seen));
  if (!name) return make_rr(server, domain, rr_type, HOST_NOT_FOUND);
  const bool zero = (*type == dns::Type::A || *type == dns::Type::AAAA) &&
                    (st->zero_a.count(*seen) || st->zero_targets.count(*seen));

  const bool address = *type == dns::Type::A || *type == dns::Type::AAAA;
  const bool sub = address && should_cache && st->sub_targets.count(*seen);
  const bool term = (address && !sub) || *type == dns::Type::MX || *type == dns::Type::PTR;
  if (term) {
    st->sub_targets.clear();
    st->zero_targets.clear();
    st->count_term();
  }
  const bool zero_mx = *type == dns::Type::MX && st->zero_mx.count(*seen);
  const dns::Answer* a = st->find(*name, *type);
  if (!a) return make_rr(server, domain, rr_type, TRY_AGAIN);

  switch (a->status) {
    case dns::Status::ok: break;
    case dns::Status::nodata:
      if (term) st->count_void();
      return make_rr(server, domain, rr_type, NO_DATA);
    case dns::Status::nxdomain:
    case dns::Status::permerror:
      if (term) st->count_void();
      return make_rr(server, domain, rr_type, HOST_NOT_FOUND);
    case dns::Status::temperror:
      return make_rr(server, domain, rr_type, TRY_AGAIN);
  }

  SPF_dns_rr_t* rr = make_rr(server, domain, rr_type, NETDB_SUCCESS);
  if (!rr) return nullptr;
  std::size_t limit = a->records.size();
  if (*type == dns::Type::PTR) limit = std::min(limit, kMaxNamesPerAnswer);  // RFC 7208 §5.5: first 10 only
  int n = 0;
  for (std::size_t i = 0; i < limit; ++i) {
    std::string rec = a->records[i];
    if (zero) rec = st->ctx.ip;  // a /0 prefix: every address matches, the client's own included
    switch (*type) {
      case dns::Type::A: {
        in_addr v4;
        if (inet_pton(AF_INET, rec.c_str(), &v4) != 1) continue;
        if (SPF_dns_rr_buf_realloc(rr, n, sizeof(v4)) != SPF_E_SUCCESS) break;
        rr->rr[n]->a = v4;
        ++n;
        break;
      }
      case dns::Type::AAAA: {
        in6_addr v6;
        if (inet_pton(AF_INET6, rec.c_str(), &v6) != 1) continue;
        if (SPF_dns_rr_buf_realloc(rr, n, sizeof(v6)) != SPF_E_SUCCESS) break;
        rr->rr[n]->aaaa = v6;
        ++n;
        break;
      }
      case dns::Type::MX:
      case dns::Type::PTR:
      case dns::Type::TXT: {
        std::string value = rec;
        if (*type == dns::Type::MX) {
          auto sp = rec.find(' ');
          value = sp == std::string::npos ? rec : rec.substr(sp + 1);
        }
        // TXT: only libspf2's own explanation path comes here, and exp= never reaches libspf2
        if (*type == dns::Type::TXT && unsafe_for_compile(value, kMaxExplanation)) continue;
        if (*type != dns::Type::TXT) {
          if (auto v = dns::normalize_name(value)) {
            st->sub_targets.insert(*v);
            if (zero_mx) st->zero_targets.insert(*v);
          }
        }
        if (SPF_dns_rr_buf_realloc(rr, n, value.size() + 1) != SPF_E_SUCCESS) break;
        std::memcpy(rr->rr[n]->txt, value.c_str(), value.size() + 1);
        ++n;
        break;
      }
      default: break;
    }
  }
  rr->num_rr = n;
  if (n == 0) {
    rr->herrno = NO_DATA;
    if (term) st->count_void();
  }
  return rr;
}

// The record of spf_request->cur_dom (RFC 7208 §4.4-4.5): TXT only, exactly one "v=spf1" record.
SPF_errcode_t layer_get_spf(SPF_server_t* server, SPF_request_t* request, SPF_response_t* response, SPF_record_t** out) {
  *out = nullptr;
  CheckState* st = g_state;
  const bool top = st && st->get_spf_calls++ == 0;
  auto decide_top = [&](const char* result, std::string problem) {
    if (top) {
      st->top = result;
      st->top_problem = std::move(problem);
    }
  };
  if (!st) return SPF_E_DNS_ERROR;
  if (top) {
    // libspf2 has passed its built-in "localhost gets a free ride" test by now: the evaluation
    // from here on sees the client's real address.
    if (st->real_v4) request->ipv4 = *st->real_v4;
    if (st->real_v6) request->ipv6 = *st->real_v6;
    st->real_v4.reset();
    st->real_v6.reset();
  }
  if (!top) {
    st->sub_targets.clear();
    st->count_term();  // include / redirect
  }
  auto seen = dns::normalize_name(request->cur_dom ? request->cur_dom : "");
  auto name = seen ? dns::normalize_name(st->real(*seen)) : std::nullopt;
  if (!name) {
    decide_top("none", "not a domain name");
    return SPF_response_add_error(response, SPF_E_NOT_SPF, "Invalid domain name");
  }
  const dns::Answer* a = st->find(*name, dns::Type::TXT);
  if (!a) {
    decide_top("temperror", "lookup pending");
    return SPF_response_add_error(response, SPF_E_DNS_ERROR, "pending");
  }
  if (a->status == dns::Status::temperror) {
    decide_top("temperror", "DNS lookup of " + *name + " failed");
    return SPF_response_add_error(response, SPF_E_DNS_ERROR, "Temporary DNS failure");
  }
  if (a->status != dns::Status::ok) {
    if (!top && a->status != dns::Status::permerror) st->count_void();
    decide_top("none", "no SPF record");
    return SPF_response_add_error(response, SPF_E_NOT_SPF, "No SPF record");
  }
  const std::string* found = nullptr;
  int count = 0;
  for (auto& rec : a->records) {
    if (ieq_prefix(rec, "v=spf1") && (rec.size() == 6 || rec[6] == ' ')) {
      found = &rec;
      ++count;
    }
  }
  if (count == 0) {
    decide_top("none", "no SPF record");
    return SPF_response_add_error(response, SPF_E_NOT_SPF, "No SPF record");
  }
  if (count > 1) {
    decide_top("permerror", "more than one SPF record");
    return SPF_response_add_error(response, SPF_E_MULTIPLE_RECORDS, "Multiple SPF records");
  }
  if (found->size() > kMaxRecord) {
    decide_top("permerror", "SPF record longer than 2048 octets");
    return SPF_response_add_error(response, SPF_E_SYNTAX, "Record refused");
  }
  std::string error;
  auto record = parse_record(*found, error);
  if (!record) {
    decide_top("permerror", "SPF record syntax: " + error);
    return SPF_response_add_error(response, SPF_E_SYNTAX, "Record syntax");
  }
  // Expand the macros here; libspf2 gets plain names (an alias for anything else).
  st->ctx.domain = *name;
  if (CheckState::uses_p(*found)) st->ctx.p = st->validated_p();
  auto name_for = [st](const std::string& spec) -> std::string {
    auto e = expand(spec, st->ctx, false, true);
    std::string v = e ? *e : std::string();
    if (auto n = dns::normalize_name(v)) {
      bool plain = true;
      for (char c : *n)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) plain = false;
      if (plain && n->find('.') != std::string::npos) return *n;
    }
    std::string a = "a" + std::to_string(st->alias.size()) + ".alias.spf.invalid";
    st->alias[a] = v;
    return a;
  };
  std::vector<ZeroCidr> zeros;
  const std::string text = libspf2_record(*record, st->addr_type == dns::Type::A, name_for, zeros);
  for (auto& z : zeros) (z.mechanism == "a" ? st->zero_a : st->zero_mx).insert(z.domain.empty() ? *seen : z.domain);
  // the redirect chain, for exp= (RFC 7208 §6.2: the record that gave the result)
  std::string next;
  if (record->redirect && !record->has_all) {
    if (auto e = expand(*record->redirect, st->ctx, false, true))
      if (auto n = dns::normalize_name(*e)) next = *n;
  }
  if (top || (!st->chain.empty() && st->chain.back().next == *name))
    st->chain.push_back({*name, std::move(*record), next});
  if (unsafe_for_compile(text, kMaxRecord)) {
    decide_top("permerror", "SPF record refused: too long or a term too long");
    return SPF_response_add_error(response, SPF_E_SYNTAX, "Record refused");
  }
  SPF_errcode_t err = SPF_record_compile(server, response, out, text.c_str());
  if (err != SPF_E_SUCCESS) {
    if (*out) {
      SPF_record_free(*out);
      *out = nullptr;
    }
    decide_top("permerror", std::string("SPF record syntax: ") + SPF_strerror(err));
    return err == SPF_E_DNS_ERROR ? SPF_E_SYNTAX : err;
  }
  return SPF_E_SUCCESS;
}

void quiet(const char*, int, const char*) {}

// libspf2's server object, one per thread (it is not shared across threads), rebuilt when the
// receiver name or the default explanation change.
struct ThreadServer {
  SPF_dns_server_t layer{};
  SPF_server_t* server = nullptr;
  std::string receiver;
  ~ThreadServer() {
    if (server) SPF_server_free(server);
  }
  SPF_server_t* get(const std::string& rec) {
    if (server && rec == receiver) return server;
    if (server) SPF_server_free(server);
    layer = SPF_dns_server_t{};
    layer.destroy = nullptr;  // not owned by the SPF_server_t
    layer.lookup = layer_lookup;
    layer.get_spf = layer_get_spf;
    layer.name = "gateway";
    server = SPF_server_new_dns(&layer, 0);
    if (!server) return nullptr;
    SPF_server_set_rec_dom(server, rec.c_str());
    // libspf2 computes an explanation for every result; ours is built in check(), so give it
    // a constant without macros
    SPF_response_t* errs = nullptr;
    SPF_server_set_explanation(server, "-", &errs);
    if (errs) SPF_response_free(errs);
    SPF_server_set_max_dns_mech(server, kMaxTerms);
    SPF_server_set_max_dns_mx(server, static_cast<int>(kMaxNamesPerAnswer));
    SPF_server_set_max_dns_ptr(server, static_cast<int>(kMaxNamesPerAnswer));
    receiver = rec;
    return server;
  }
};

std::string word(SPF_result_t r) {
  switch (r) {
    case SPF_RESULT_PASS: return "pass";
    case SPF_RESULT_FAIL: return "fail";
    case SPF_RESULT_SOFTFAIL: return "softfail";
    case SPF_RESULT_NEUTRAL: return "neutral";
    case SPF_RESULT_NONE: return "none";
    case SPF_RESULT_TEMPERROR: return "temperror";
    case SPF_RESULT_PERMERROR: return "permerror";
    default: return "permerror";
  }
}

}  // namespace

std::string key_of(const std::string& name, dns::Type t) { return std::to_string(static_cast<unsigned>(t)) + ":" + name; }

// A term or explanation libspf2 1.2.10 could mis-compile (CVE-2023-42118 class: ds_avail underflow
// when a term's compiled data nearly fills its 511-octet buffer): too long, or too many macros.
bool unsafe_for_compile(std::string_view record, std::size_t max_total) {
  if (record.size() > max_total) return true;
  std::size_t term = 0, percents = 0;
  for (char c : record) {
    if (c == ' ') {
      term = percents = 0;
      continue;
    }
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) return true;
    if (++term > kMaxTerm) return true;
    if (c == '%' && ++percents > kMaxPercents) return true;
  }
  return false;
}

RunOutcome run_libspf2(CheckState& st, const Request& req) {
  static const bool handlers = [] {
    SPF_warning_handler = quiet;
    SPF_info_handler = quiet;
    SPF_debug_handler = quiet;
    return true;
  }();
  (void)handlers;
  static thread_local ThreadServer thread_server;
  SPF_server_t* server = thread_server.get(req.receiver);
  if (!server) return {"temperror", "libspf2 setup failed"};
  RunOutcome out;
  st.new_run();
  SPF_request_t* r = SPF_request_new(server);
  if (!r) return {"temperror", "out of memory"};
  // libspf2 answers "pass" for any loopback client without looking at the record (its
  // SPF_request_is_loopback shortcut, checked once before the top-level record fetch). Trust comes
  // from [trusted] networks alone (README, docs/spf.md), so a loopback client is shown to libspf2 as
  // an unspecified address of the same family until layer_get_spf puts the real one back: every
  // mechanism is then evaluated against the client's real address.
  if (req.ip.is_v4()) {
    auto b = req.ip.to_v4().to_bytes();
    in_addr a;
    std::memcpy(&a, b.data(), 4);
    if (req.ip.is_loopback()) {
      st.real_v4 = a;
      in_addr stand_in{};
      SPF_request_set_ipv4(r, stand_in);
    } else {
      SPF_request_set_ipv4(r, a);
    }
  } else {
    auto b = req.ip.to_v6().to_bytes();
    in6_addr a;
    std::memcpy(&a, b.data(), 16);
    if (req.ip.is_loopback()) {
      st.real_v6 = a;
      in6_addr stand_in{};
      SPF_request_set_ipv6(r, stand_in);
    } else {
      SPF_request_set_ipv6(r, a);
    }
  }
  SPF_request_set_helo_dom(r, req.helo.c_str());
  SPF_request_set_env_from(r, req.sender.c_str());
  SPF_response_t* resp = nullptr;
  g_state = &st;
  SPF_request_query_mailfrom(r, &resp);
  g_state = nullptr;
  st.real_v4.reset();
  st.real_v6.reset();
  if (st.top) {
    out.result = *st.top;
    out.problem = st.top_problem;
  } else if (resp) {
    out.result = word(SPF_response_result(resp));
    if (out.result == "permerror" || out.result == "temperror") out.problem = SPF_strerror(SPF_response_errcode(resp));
  } else {
    out.result = "temperror";
  }
  if (st.limit_exceeded && out.result != "temperror") {
    out.result = "permerror";
    out.problem = st.limit_problem;
  }
  if (resp) SPF_response_free(resp);
  SPF_request_free(r);
  return out;
}

}  // namespace gw::spf::detail
