// The one place where a plugin's verdict becomes the reply the client gets (RFC 5321 + RFC 3463).
#pragma once
#include <string>

#include "gateway/core/plugin.hpp"
#include "gateway/net/reply.hpp"

namespace gw::smtp {

// For a reject or tempfail verdict at `stage`. At connect the reply replaces the greeting: a reject
// is 554 (the session then answers 503 to all but QUIT, RFC 5321 §3.1), a tempfail 421 (then close).
// At the other stages: the verdict's code when it is of the verdict's class (5xx / 4xx), else 550 /
// 451; an enhanced code of another class becomes X.7.1; an empty text gets a default.
net::Reply verdict_reply(const Verdict& v, Stage stage, const std::string& hostname);

}  // namespace gw::smtp
