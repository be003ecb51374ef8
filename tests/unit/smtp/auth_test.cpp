#include <gtest/gtest.h>

#include <crypt.h>

#include <cstdio>
#include <fstream>
#include <vector>

#include "gateway/config/table.hpp"
#include "gateway/config/users_file.hpp"
#include "gateway/smtp/auth.hpp"

using namespace gw::smtp::auth;
using namespace std::chrono_literals;

TEST(Auth, Base64RoundTrip) {
  for (std::string s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0user\0pass", 10)}) {
    auto enc = base64_encode(s);
    auto dec = base64_decode(enc);
    ASSERT_TRUE(dec) << enc;
    EXPECT_EQ(*dec, s);
  }
  EXPECT_EQ(base64_encode("Username:"), "VXNlcm5hbWU6");
}

TEST(Auth, Base64RejectsMalformed) {
  EXPECT_FALSE(base64_decode("abc"));      // not a multiple of 4
  EXPECT_FALSE(base64_decode("ab!d"));     // bad character
  EXPECT_FALSE(base64_decode("a==="));     // too much padding
  EXPECT_FALSE(base64_decode("ab=c"));     // data after padding
  EXPECT_FALSE(base64_decode("YQ==YQ=="));  // padding in the middle
  EXPECT_FALSE(base64_decode("YW Jj"));
}

TEST(Auth, FailureDelayGrowsAndIsCapped) {
  EXPECT_EQ(failure_delay(1), 500ms);
  EXPECT_EQ(failure_delay(2), 1000ms);
  EXPECT_EQ(failure_delay(3), 2000ms);
  EXPECT_EQ(failure_delay(4), 4000ms);
  for (unsigned n = 5; n < 100; ++n) EXPECT_EQ(failure_delay(n), 5000ms);
}

TEST(Auth, CheckPasswordSchemes) {
  for (const char* prefix : {"$y$", "$6$", "$2b$"}) {
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    ASSERT_TRUE(crypt_gensalt_rn(prefix, prefix[1] == '2' ? 4 : 0, nullptr, 0, setting, sizeof setting)) << prefix;
    struct crypt_data data {};
    std::string hash = crypt_rn("s3cret", setting, &data, sizeof data);
    EXPECT_TRUE(check_password("s3cret", hash)) << hash;
    EXPECT_FALSE(check_password("s3cret!", hash)) << hash;
    EXPECT_FALSE(check_password("", hash)) << hash;
  }
}

TEST(Auth, UsersFile) {
  std::string path = ::testing::TempDir() + "/users_test";
  {
    std::ofstream f(path);
    f << "# comment\n\n  # indented comment\n"
      << "alice:{SHA512-CRYPT}$6$abcdefgh$0123456789\n"
      << "bob:$y$j9T$abc$def:1000:1000::/home/bob\n";
  }
  auto users = gw::config::load_users_file(path);
  ASSERT_EQ(users.size(), 2u);
  EXPECT_EQ(users.at("alice"), "$6$abcdefgh$0123456789");
  EXPECT_EQ(users.at("bob"), "$y$j9T$abc$def");
  {
    std::ofstream f(path);
    f << "alice:$6$abc$def\nbroken line\n";
  }
  try {
    gw::config::load_users_file(path);
    FAIL() << "no error";
  } catch (const gw::config::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ":2: ", 0), 0u) << e.what();
  }
  {
    std::ofstream f(path);
    f << "carol:{PLAIN}secret\n";
  }
  EXPECT_THROW(gw::config::load_users_file(path), gw::config::ConfigError);
  EXPECT_THROW(gw::config::load_users_file(path + ".missing"), gw::config::ConfigError);
  std::remove(path.c_str());
}
