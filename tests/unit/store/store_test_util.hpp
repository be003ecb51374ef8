// Runs a coroutine to completion on a fresh io_context (store tests).
#pragma once
#include <chrono>
#include <filesystem>
#include <future>
#include <random>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace gw::testing {

template <typename T>
T run_on(boost::asio::io_context& io, boost::asio::awaitable<T> a) {
  auto f = boost::asio::co_spawn(io, std::move(a), boost::asio::use_future);
  io.restart();
  // Not io.run(): a store may keep a read wait on its connection open for good.
  while (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) io.run_one();
  return f.get();
}

inline std::string temp_dir(const std::string& name) {
  std::random_device rd;
  auto p = std::filesystem::temp_directory_path() / ("gwtest-" + name + "-" + std::to_string(rd()));
  std::filesystem::remove_all(p);
  return p.string();
}

}  // namespace gw::testing
