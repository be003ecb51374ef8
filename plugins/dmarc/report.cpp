// `smtp-gateway dmarc-report --config PATH --out DIR`: turns the results the dmarc plugin recorded
// in the store (log "dmarc") into one RFC 7489 Appendix C aggregate report per From domain, gzipped,
// prints "<domain> <rua URIs> <path>" per file, then erases exactly the records it reported, so
// results recorded while it runs go into the next report. Sending the files is the admin's (see
// docs/dmarc.md for a cron line and sendmail).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <map>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "gateway/config/config.hpp"
#include "gateway/core/command.hpp"
#include "gateway/store/store.hpp"
#include "plugins/dmarc/record.hpp"
#include "plugins/dmarc/report_xml.hpp"

namespace gw::dmarc {
namespace {

const char* kUsage = "dmarc-report [--config PATH] --out DIR";

template <typename T>
T run(boost::asio::io_context& io, boost::asio::awaitable<T> a) {
  auto f = boost::asio::co_spawn(io, std::move(a), boost::asio::use_future);
  io.restart();  // a previous run() may have left it stopped
  // not io.run(): the Redis store keeps a read pending on its connection
  while (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) io.run_one();
  return f.get();
}

int report_main(const std::vector<std::string>& args) {
  std::string config_path = "etc/smtp-gateway.toml", out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if ((a == "--config" || a == "-c" || a == "--out") && i + 1 < args.size()) {
      (a == "--out" ? out : config_path) = args[++i];
    } else {
      std::fprintf(stderr, "dmarc-report: unexpected argument '%s'\nusage: smtp-gateway %s\n", a.c_str(), kUsage);
      return 1;
    }
  }
  if (out.empty()) {
    std::fprintf(stderr, "dmarc-report: --out is required\nusage: smtp-gateway %s\n", kUsage);
    return 1;
  }
  try {
    auto cfg = config::load_config(config_path);
    config::Table t = cfg->plugin_table("dmarc");
    ReportMeta meta;
    meta.org_name = t.string("report_org").value_or(cfg->server.hostname);
    meta.email = t.string("report_email").value_or("postmaster@" + cfg->server.hostname);
    meta.receiver = cfg->server.hostname;
    meta.end = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();

    std::error_code ec;
    std::filesystem::create_directories(out, ec);
    if (ec) {
      std::fprintf(stderr, "dmarc-report: cannot create %s: %s\n", out.c_str(), ec.message().c_str());
      return 1;
    }
    boost::asio::io_context io;  // before the store: a Redis store must go before its io_context
    auto store = store::make_store(cfg->store);

    // Everything recorded so far, page by page; entries appended later stay for the next run.
    std::map<std::string, std::vector<ReportRecord>> by_domain;
    std::map<std::string, std::vector<std::string>> ids_by_domain;
    std::vector<std::string> unreadable;
    std::string after;
    for (;;) {
      auto page = run(io, store->log_read("dmarc", after, 1000));
      if (!page.ok) {
        std::fprintf(stderr, "dmarc-report: store: %s\n", page.error.c_str());
        return 1;
      }
      if (page.value.empty()) break;
      for (auto& e : page.value) {
        auto r = ReportRecord::decode(e.value);
        if (!r) {
          unreadable.push_back(e.id);
          continue;
        }
        ids_by_domain[r->header_from].push_back(e.id);
        by_domain[r->header_from].push_back(std::move(*r));
      }
      after = page.value.back().id;
    }
    if (!unreadable.empty()) {
      std::fprintf(stderr, "dmarc-report: dropped %zu unreadable records\n", unreadable.size());
      run(io, store->log_erase("dmarc", unreadable));
    }

    int status = 0;
    for (auto& [domain, recs] : by_domain) {
      ReportMeta m = meta;
      m.begin = recs.front().time;
      for (auto& r : recs) m.begin = std::min(m.begin, r.time);
      if (m.end < m.begin) m.end = m.begin;
      const std::string path = (std::filesystem::path(out) / report_file_name(m, domain)).string();
      std::string error;
      if (!write_gzip(path, report_xml(m, domain, recs), error)) {
        std::fprintf(stderr, "dmarc-report: %s (its records are kept)\n", error.c_str());
        status = 1;
        continue;
      }
      std::string rua;
      for (auto& u : recs.back().rua) rua += (rua.empty() ? "" : ",") + u;
      std::printf("%s %s %s\n", domain.c_str(), rua.c_str(), path.c_str());
      std::fflush(stdout);
      auto er = run(io, store->log_erase("dmarc", ids_by_domain[domain]));
      if (!er.ok) {
        std::fprintf(stderr, "dmarc-report: store: %s (the records of %s will be reported again)\n", er.error.c_str(),
                     domain.c_str());
        status = 1;
      }
    }
    return status;
  } catch (const config::ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dmarc-report: %s\n", e.what());
    return 1;
  }
}

}  // namespace
}  // namespace gw::dmarc

GW_REGISTER_COMMAND("dmarc-report", gw::dmarc::kUsage, gw::dmarc::report_main);
