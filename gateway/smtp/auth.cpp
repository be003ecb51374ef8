#include "gateway/smtp/auth.hpp"

namespace gw::smtp::auth {

std::string advertisement(const config::ListenerConfig&, const config::Config&, const Connection&) { return ""; }

boost::asio::awaitable<Outcome> run(std::string_view, net::Stream&, net::Deadline&, const config::ListenerConfig&,
                                    const config::Config&, Connection&) {
  co_return Outcome{"502 5.5.1 AUTH not available\r\n", false, false};
}

}  // namespace gw::smtp::auth
