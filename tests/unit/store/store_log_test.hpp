// The append-only log contract (Store::log_*), run against each backend.
#pragma once
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gateway/store/store.hpp"
#include "tests/unit/store/store_test_util.hpp"

namespace gw::testing {

inline void check_store_log(boost::asio::io_context& io, store::Store& s) {
  // empty log
  auto r0 = run_on(io, s.log_read("t", "", 100));
  ASSERT_TRUE(r0.ok) << r0.error;
  EXPECT_TRUE(r0.value.empty());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(run_on(io, s.log_append("t", "v" + std::to_string(i))).ok);
  ASSERT_TRUE(run_on(io, s.log_append("other", "x")).ok);
  // order, paging with `after`
  auto r1 = run_on(io, s.log_read("t", "", 3));
  ASSERT_TRUE(r1.ok) << r1.error;
  ASSERT_EQ(r1.value.size(), 3u);
  EXPECT_EQ(r1.value[0].value, "v0");
  EXPECT_EQ(r1.value[2].value, "v2");
  auto r2 = run_on(io, s.log_read("t", r1.value.back().id, 100));
  ASSERT_EQ(r2.value.size(), 2u);
  EXPECT_EQ(r2.value[0].value, "v3");
  EXPECT_EQ(r2.value[1].value, "v4");
  // erase what was read; an entry appended meanwhile stays
  std::vector<std::string> ids;
  for (auto& e : r1.value) ids.push_back(e.id);
  for (auto& e : r2.value) ids.push_back(e.id);
  ASSERT_TRUE(run_on(io, s.log_append("t", "late")).ok);
  auto er = run_on(io, s.log_erase("t", ids));
  ASSERT_TRUE(er.ok) << er.error;
  EXPECT_EQ(er.value, 5);
  EXPECT_EQ(run_on(io, s.log_erase("t", ids)).value, 0);  // already gone
  auto r3 = run_on(io, s.log_read("t", "", 100));
  ASSERT_EQ(r3.value.size(), 1u);
  EXPECT_EQ(r3.value[0].value, "late");
  // other logs untouched; values are binary-safe
  auto r4 = run_on(io, s.log_read("other", "", 100));
  ASSERT_EQ(r4.value.size(), 1u);
  EXPECT_EQ(r4.value[0].value, "x");
  std::string bin("a\0b\tc\n", 6);
  ASSERT_TRUE(run_on(io, s.log_append("bin", bin)).ok);
  EXPECT_EQ(run_on(io, s.log_read("bin", "", 10)).value.at(0).value, bin);
}

}  // namespace gw::testing
