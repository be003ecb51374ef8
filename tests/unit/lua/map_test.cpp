// gateway.map's lists (lua/map.hpp): parsing, CIDR edges, domain and string matching, the process-wide
// registry and refresh of a changed file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "lua/map.hpp"

namespace gw::lua {
namespace {

std::string write_list(const std::string& name, const std::string& text) {
  auto dir = std::filesystem::temp_directory_path() / ("gw_map_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = (dir / name).string();
  std::ofstream(path) << text;
  return path;
}

MapData parse(MapKind kind, const std::string& text) {
  MapData d;
  std::string error;
  EXPECT_TRUE(parse_map(write_list("l.list", text), kind, d, error)) << error;
  return d;
}

TEST(LuaMap, IpNetworks) {
  auto d = parse(MapKind::ip, "# c\n10.0.0.0/8\n192.0.2.255\n192.0.2.254 # x\n2001:db8::/126\n\n198.51.100.0/31\n");
  EXPECT_TRUE(d.contains(MapKind::ip, "10.255.255.255"));
  EXPECT_FALSE(d.contains(MapKind::ip, "11.0.0.0"));
  EXPECT_FALSE(d.contains(MapKind::ip, "9.255.255.255"));
  EXPECT_TRUE(d.contains(MapKind::ip, "192.0.2.254"));
  EXPECT_TRUE(d.contains(MapKind::ip, "192.0.2.255"));
  EXPECT_FALSE(d.contains(MapKind::ip, "192.0.2.253"));
  EXPECT_TRUE(d.contains(MapKind::ip, "198.51.100.1"));
  EXPECT_FALSE(d.contains(MapKind::ip, "198.51.100.2"));
  EXPECT_TRUE(d.contains(MapKind::ip, "2001:db8::3"));
  EXPECT_FALSE(d.contains(MapKind::ip, "2001:db8::4"));
  EXPECT_TRUE(d.contains(MapKind::ip, "::ffff:10.1.2.3"));
  EXPECT_TRUE(d.contains(MapKind::ip, "[2001:db8::1]"));
  EXPECT_FALSE(d.contains(MapKind::ip, "example.org"));
  EXPECT_EQ(d.entries, 5u);
  EXPECT_EQ(d.v4.size(), 3u);  // the two adjacent hosts are one range
  auto all = parse(MapKind::ip, "0.0.0.0/0\n::/0\n");
  EXPECT_TRUE(all.contains(MapKind::ip, "255.255.255.255"));
  EXPECT_TRUE(all.contains(MapKind::ip, "ffff::1"));
}

TEST(LuaMap, BadEntriesNameTheLine) {
  for (const char* bad : {"10.0.0.0/33\n", "1.2.3\n", "::/129\n", "10.0.0.0/x\n", "example.org\n"}) {
    MapData d;
    std::string error;
    auto path = write_list("bad.list", std::string("192.0.2.1\n") + bad);
    EXPECT_FALSE(parse_map(path, MapKind::ip, d, error)) << bad;
    EXPECT_NE(error.find("bad.list:2: not an IP address"), std::string::npos) << error;
  }
  MapData d;
  std::string error;
  EXPECT_FALSE(parse_map(write_list("d.list", "ok.test\nnot ok.test\n"), MapKind::domain, d, error));
  EXPECT_NE(error.find("d.list:2: not a domain"), std::string::npos) << error;
}

TEST(LuaMap, DomainsAndStrings) {
  auto d = parse(MapKind::domain, "Example.ORG\n.sub.test.\n");
  EXPECT_TRUE(d.contains(MapKind::domain, "example.org"));
  EXPECT_TRUE(d.contains(MapKind::domain, "a.b.EXAMPLE.org."));
  EXPECT_TRUE(d.contains(MapKind::domain, "user@mx.example.org"));
  EXPECT_TRUE(d.contains(MapKind::domain, "sub.test"));
  EXPECT_FALSE(d.contains(MapKind::domain, "badexample.org"));
  EXPECT_FALSE(d.contains(MapKind::domain, "org"));
  EXPECT_FALSE(d.contains(MapKind::domain, ""));
  auto s = parse(MapKind::string, "Alice@Example.org\n  spaced  \n");
  EXPECT_TRUE(s.contains(MapKind::string, "ALICE@example.org"));
  EXPECT_TRUE(s.contains(MapKind::string, "spaced"));
  EXPECT_FALSE(s.contains(MapKind::string, "alice@example"));
}

TEST(LuaMap, SharedAndRefreshed) {
  auto path = write_list("shared.list", "192.0.2.1\n");
  std::string error;
  auto a = open_map(path, MapKind::ip, error);
  auto b = open_map(path, MapKind::ip, error);
  ASSERT_TRUE(a && b) << error;
  EXPECT_EQ(a.get(), b.get());  // one list per process
  EXPECT_EQ(a->data().get(), b->data().get());
  EXPECT_TRUE(a->contains("192.0.2.1"));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::ofstream(path) << "192.0.2.2\n";
  EXPECT_TRUE(a->refresh(error)) << error;
  EXPECT_FALSE(a->contains("192.0.2.1"));
  EXPECT_TRUE(a->contains("192.0.2.2"));
  std::ofstream(path) << "192.0.2.3\nnot an address\n";  // a bad version: the last good one stays
  EXPECT_FALSE(a->refresh(error));
  EXPECT_TRUE(a->contains("192.0.2.2"));
  EXPECT_EQ(open_map("/nonexistent/x.list", MapKind::ip, error), nullptr);
  EXPECT_NE(error.find("cannot open"), std::string::npos);
}

}  // namespace
}  // namespace gw::lua
