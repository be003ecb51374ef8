#include "plugins/milter/settings.hpp"

#include <set>

namespace gw::milter {

Settings parse_settings(const config::Table& t) {
  Settings s;
  t.allow_only({"servers"});
  auto servers = t.tables("servers");
  if (servers.empty())
    t.fail("", "the milter plugin needs at least one [[" + t.name() + ".servers]] entry (name, address)");
  std::set<std::string> names;
  for (auto& st : servers) {
    st.allow_only({"name", "address", "connect_timeout", "command_timeout", "on_error"});
    ServerSettings srv;
    auto address = st.string("address");
    if (!address) st.fail("", "a milter server needs an address (\"unix:/path\" or \"inet:host:port\")");
    auto parsed = Address::parse(*address);
    if (!parsed)
      st.fail("address", "not a milter address: \"" + *address + "\" (expected \"unix:/path\" or \"inet:host:port\")");
    srv.address = *parsed;
    srv.address_text = *address;
    srv.name = st.string("name").value_or(*address);
    if (srv.name.empty()) st.fail("name", "name must not be empty");
    if (!names.insert(srv.name).second) st.fail("name", "two milter servers named \"" + srv.name + "\"");
    if (auto v = st.duration("connect_timeout")) srv.connect_timeout = *v;
    if (auto v = st.duration("command_timeout")) srv.command_timeout = *v;
    if (srv.connect_timeout.count() <= 0) st.fail("connect_timeout", "connect_timeout must be positive");
    if (srv.command_timeout.count() <= 0) st.fail("command_timeout", "command_timeout must be positive");
    srv.tempfail_on_error = st.choice("on_error", {"tempfail", "accept"}).value_or("tempfail") == "tempfail";
    s.servers.push_back(std::move(srv));
  }
  return s;
}

}  // namespace gw::milter
