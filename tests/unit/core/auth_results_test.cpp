#include "gateway/core/auth_results.hpp"

#include <gtest/gtest.h>

using namespace gw;

TEST(AuthResults, AuthservIdParsing) {
  EXPECT_EQ(authserv_id_of("gw.test; spf=pass"), "gw.test");
  EXPECT_EQ(authserv_id_of("  (comment (nested)) GW.test 1; none"), "GW.test");
  EXPECT_EQ(authserv_id_of("\"gw.test\"; spf=pass"), "gw.test");
  EXPECT_EQ(authserv_id_of("gw.test(c);x"), "gw.test");
  EXPECT_FALSE(authserv_id_of("   "));
  EXPECT_FALSE(authserv_id_of("(only a comment)"));
}

TEST(AuthResults, RemovesOnlyOurs) {
  Message m;
  m.buffer() =
      "Authentication-Results: gw.test;\r\n\tspf=pass smtp.mailfrom=x@y\r\n"
      "Authentication-Results: other.example; spf=fail\r\n"
      "authentication-results: (forged) GW.TEST; dkim=pass\r\n"
      "Subject: hi\r\n"
      "\r\n"
      "Authentication-Results: gw.test; in the body, untouched\r\n";
  EXPECT_EQ(remove_forged_auth_results(m, "gw.test"), 2u);
  auto kept = m.headers("Authentication-Results");
  int live = 0;
  for (auto& f : m.fields())
    if (!f.removed && iequals(m.field_name(f), "Authentication-Results")) ++live;
  EXPECT_EQ(live, 1);
  EXPECT_EQ(remove_forged_auth_results(m, "gw.test"), 0u);
  EXPECT_EQ(remove_forged_auth_results(m, "gw.tes"), 0u);
}
