#include "gateway/store/keys.hpp"

#include <cctype>

#include "gateway/config/network.hpp"

namespace gw::store::keys {

std::string client_net(const boost::asio::ip::address& address_in) {
  auto address = config::unmap(address_in);
  if (address.is_v4()) {
    // The same text as address_v4::to_string() of the masked address, without its sprintf (this
    // runs for every greylisted recipient).
    auto b = address.to_v4().to_bytes();
    return std::to_string(b[0]) + "." + std::to_string(b[1]) + "." + std::to_string(b[2]) + ".0/24";
  }
  auto b = address.to_v6().to_bytes();
  for (int i = 8; i < 16; ++i) b[i] = 0;
  return boost::asio::ip::address_v6(b).to_string() + "/64";
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string domain_of(std::string_view address) {
  auto at = address.rfind('@');
  if (at == std::string_view::npos) return "";
  return lower(address.substr(at + 1));
}

namespace {

bool looks_like_batv_tag(std::string_view t) {
  // K DDD SSSSSS: 10 characters, letters and digits (some senders use other lengths: allow 6..16).
  if (t.size() < 6 || t.size() > 16) return false;
  for (char c : t)
    if (!std::isalnum(static_cast<unsigned char>(c))) return false;
  return true;
}

}  // namespace

std::string normalize_sender(std::string_view address) {
  std::string a = lower(address);
  auto at = a.rfind('@');
  if (at == std::string::npos) return a;
  std::string local = a.substr(0, at), domain = a.substr(at + 1);

  // BATV
  if (local.rfind("prvs=", 0) == 0) {
    std::string rest = local.substr(5);
    auto eq = rest.find('=');
    if (eq != std::string::npos) {
      std::string first = rest.substr(0, eq), second = rest.substr(eq + 1);
      if (looks_like_batv_tag(first) && !second.empty()) local = second;       // prvs=tag=local
      else if (looks_like_batv_tag(second) && !first.empty()) local = first;   // prvs=local=tag
    }
  } else if (local.rfind("btv1==", 0) == 0) {
    auto sep = local.find("==", 6);
    if (sep != std::string::npos && sep + 2 < local.size()) local = local.substr(sep + 2);
  }

  // SRS: the original address is the last two '=' fields (domain=local) of the SRS0 part.
  auto srs_original = [](std::string_view srs0_fields) -> std::string {
    // HASH=TT=domain=local
    std::size_t p1 = srs0_fields.find('=');
    if (p1 == std::string_view::npos) return "";
    std::size_t p2 = srs0_fields.find('=', p1 + 1);
    if (p2 == std::string_view::npos) return "";
    std::size_t p3 = srs0_fields.find('=', p2 + 1);
    if (p3 == std::string_view::npos) return "";
    std::string_view d = srs0_fields.substr(p2 + 1, p3 - p2 - 1), l = srs0_fields.substr(p3 + 1);
    if (d.empty() || l.empty()) return "";
    return std::string(l) + "@" + std::string(d);
  };
  std::string original;
  if (local.rfind("srs0=", 0) == 0 || local.rfind("srs0+", 0) == 0 || local.rfind("srs0-", 0) == 0) {
    original = srs_original(std::string_view(local).substr(5));
  } else if (local.rfind("srs1=", 0) == 0 || local.rfind("srs1+", 0) == 0 || local.rfind("srs1-", 0) == 0) {
    auto sep = local.find("==");
    if (sep != std::string::npos) original = srs_original(std::string_view(local).substr(sep + 2));
  }
  if (!original.empty()) {
    auto oat = original.rfind('@');
    local = original.substr(0, oat);
    domain = original.substr(oat + 1);
  }

  // sub-address
  if (auto plus = local.find('+'); plus != std::string::npos && plus > 0) local.resize(plus);
  return local + "@" + domain;
}

}  // namespace gw::store::keys
