// How ratelimit and greylist turn a client and its addresses into store keys.
#pragma once
#include <string>
#include <string_view>

#include <boost/asio/ip/address.hpp>

namespace gw::store::keys {

// The client's network: "192.0.2.0/24" for IPv4, "2001:db8:1:2::/64" for IPv6 (IPv4-mapped IPv6
// counts as IPv4).
std::string client_net(const boost::asio::ip::address& address);

// The address in lower case.
std::string lower(std::string_view s);

// The part after the last '@', lower-cased ("" when there is none).
std::string domain_of(std::string_view address);

// A sender as greylisting sees it: lower case; a BATV tag (prvs=TAG=local, btv1==TAG==local) and an
// SRS rewrite (SRS0=HASH=TT=domain=local@fwd, SRS1=HASH=fwd==HASH=TT=domain=local@fwd: the original
// local@domain) removed; then a sub-address (local+tag) cut off. "" stays "" (the null sender).
std::string normalize_sender(std::string_view address);

}  // namespace gw::store::keys
