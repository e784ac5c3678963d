// alertrouterd: takes Alertmanager webhooks, pages whoever is on call, serves metrics and the
// operator API. The only place that wires the daemon's parts together.
//
//   alertrouterd --config FILE [--listen HOST:PORT] [--log-level LEVEL]
//
// Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT), 1 when the configuration does not load
// or the listen address cannot be bound, 2 for a usage error.

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "daemon/http_server.h"
#include "daemon/metrics.h"
#include "daemon/service.h"
#include "daemon/systemd_notifier.h"
#include "daemon/webhook_sender.h"
#include "routing/incident.h"

#ifndef ALERTROUTER_VERSION
#define ALERTROUTER_VERSION "unknown"
#endif

namespace {

using namespace alertrouter;
using daemon::http_request;
using daemon::http_response;

// How long SIGTERM waits for requests being answered and deliveries in flight.
constexpr std::chrono::seconds kShutdownGrace{10};

void log_line(daemon::log_level level, std::string_view message) {
  switch (level) {
    case daemon::log_level::debug:
      spdlog::debug("{}", message);
      break;
    case daemon::log_level::info:
      spdlog::info("{}", message);
      break;
    case daemon::log_level::warn:
      spdlog::warn("{}", message);
      break;
    case daemon::log_level::error:
      spdlog::error("{}", message);
      break;
  }
}

// Registers `handler` for `path`, timing each request into the handler's duration histogram.
void route(daemon::http_server& server, daemon::metrics& stats, std::string path,
           std::vector<std::string> methods, std::function<http_response(http_request&)> handler) {
  daemon::http_handler_metrics timer = stats.register_handler(path);
  server.handle(std::move(path), std::move(methods),
                [timer, handler = std::move(handler)](http_request& req) {
                  const auto start = std::chrono::steady_clock::now();
                  http_response r = handler(req);
                  timer.observe(std::chrono::steady_clock::now() - start);
                  return r;
                });
}

int run(const std::string& config_path, const std::string& listen_flag,
        daemon::log_level min_level) {
  auto loaded = daemon::load_config(config_path);
  if (auto* errors = std::get_if<std::vector<std::string>>(&loaded)) {
    for (const std::string& e : *errors)
      spdlog::error("msg=\"configuration refused\" error=\"{}\"", e);
    return 1;
  }
  daemon::loaded_config initial = std::get<daemon::loaded_config>(std::move(loaded));
  const config::config& cfg = initial.table->config();

  std::string host;
  std::uint16_t port = 0;
  const std::string listen = listen_flag.empty() ? cfg.listen : listen_flag;
  if (!daemon::split_listen(listen, host, port)) {
    spdlog::error("msg=\"bad listen address\" listen=\"{}\" (expected HOST:PORT)", listen);
    return 1;
  }

  boost::asio::io_context io(1);
  daemon::metrics stats(ALERTROUTER_VERSION);

  daemon::http_limits limits;
  limits.max_body = cfg.limits.max_body;
  limits.max_connections = cfg.limits.max_connections;
  limits.read_timeout = cfg.limits.read_timeout;
  limits.idle_timeout = cfg.limits.idle_timeout;
  daemon::http_server server(
      io, limits, [](std::string_view m) { spdlog::warn("msg=\"http\" detail=\"{}\"", m); });

  routing::memory_incident_table incidents(cfg.dedup.retention, cfg.dedup.max_incidents);

  daemon::webhook_sender_options delivery_options;
  delivery_options.connect_timeout = cfg.delivery.connect_timeout;
  delivery_options.request_timeout = cfg.delivery.request_timeout;
  delivery_options.max_attempts = static_cast<unsigned>(cfg.delivery.max_attempts);
  delivery_options.backoff_initial = cfg.delivery.initial_backoff;
  delivery_options.backoff_cap = cfg.delivery.max_backoff;
  delivery_options.max_in_flight_per_destination = cfg.delivery.max_in_flight_per_destination;
  // Webhooks are refused (503) at limits.max_pending_notifications; one body's notifications may
  // go past it, and the sender must take them all rather than drop what was answered 200.
  delivery_options.max_pending = cfg.limits.max_pending_notifications * 2 + 100000;
  delivery_options.user_agent = std::string("alertrouter/") + ALERTROUTER_VERSION;

  // The sender reports to the service, which is built after it: forward through a pointer.
  struct forwarding_observer final : daemon::delivery_observer {
    daemon::delivery_observer* target = nullptr;
    void on_attempt(const daemon::delivery_request& r, unsigned n) override {
      target->on_attempt(r, n);
    }
    void on_retry(const daemon::delivery_request& r, unsigned n, std::string_view why,
                  std::chrono::milliseconds delay) override {
      target->on_retry(r, n, why, delay);
    }
    void on_done(const daemon::delivery_request& r, daemon::delivery_result res, unsigned n,
                 std::chrono::steady_clock::duration latency, std::string_view detail) override {
      target->on_done(r, res, n, latency, detail);
    }
  } forward;
  daemon::webhook_sender sender(io, delivery_options, &forward, [](std::string_view m) {
    spdlog::warn("msg=\"delivery\" detail=\"{}\"", m);
  });

  daemon::service svc(config_path, std::move(initial), incidents, stats, sender, log_line);
  svc.set_log_level(min_level);
  forward.target = &svc;
  stats.config_reloaded(true, std::chrono::system_clock::now());
  stats.set_http_stats_source([&server] { return server.stats(); });
  server.set_refusal_observer([&stats](std::string_view path, unsigned status) {
    if (status == 413 && path == "/webhook/alertmanager") {
      stats.webhook_received(daemon::webhook_result::too_large);
    }
  });

  route(server, stats, "/webhook/alertmanager", {"POST"},
        [&svc](http_request& r) { return svc.webhook(r); });
  route(server, stats, "/metrics", {"GET"},
        [&svc](http_request& r) { return svc.metrics_page(r); });
  route(server, stats, "/api/v1/oncall", {"GET"},
        [&svc](http_request& r) { return svc.oncall(r); });
  route(server, stats, "/api/v1/incidents", {"GET"},
        [&svc](http_request& r) { return svc.incidents(r); });
  route(server, stats, "/-/healthy", {"GET", "HEAD"},
        [&svc](http_request& r) { return svc.healthy(r); });
  route(server, stats, "/-/ready", {"GET", "HEAD"},
        [&svc](http_request& r) { return svc.ready(r); });

  daemon::systemd_notifier notifier(
      io, [](std::string_view m) { spdlog::warn("msg=\"sd_notify\" detail=\"{}\"", m); });
  route(server, stats, "/-/reload", {"POST"}, [&svc, &notifier](http_request& r) {
    notifier.reloading();
    http_response resp = svc.reload_endpoint(r);
    notifier.ready();
    return resp;
  });

  auto bound = server.bind(host, port);
  if (!bound) {
    spdlog::error("msg=\"cannot listen\" listen=\"{}\" error=\"{}\"", listen,
                  bound.error().message());
    return 1;
  }
  server.start();
  const auto endpoint = bound.value();
  const std::string where =
      endpoint.address().is_v6()
          ? "[" + endpoint.address().to_string() + "]:" + std::to_string(endpoint.port())
          : endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  spdlog::info("msg=\"listening on {}\" version={} config={}", where, ALERTROUTER_VERSION,
               config_path);

  boost::asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
  bool stopping = false;
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int signo) {
        if (ec) return;
        if (signo == SIGHUP) {
          spdlog::info("msg=\"SIGHUP: reloading\" config={}", config_path);
          notifier.reloading();
          svc.reload();
          notifier.ready();
          signals.async_wait(on_signal);
          return;
        }
        if (stopping) return;
        stopping = true;
        spdlog::info("msg=\"signal {}: shutting down\" grace_s={}", signo, kShutdownGrace.count());
        notifier.stopping();
        notifier.stop_watchdog();
        svc.begin_shutdown();
        auto remaining = std::make_shared<int>(2);
        auto done = [&io, remaining] {
          if (--*remaining == 0) io.stop();
        };
        server.stop(kShutdownGrace, done);
        sender.stop(kShutdownGrace, done);
        signals.cancel();
      };
  signals.async_wait(on_signal);

  notifier.start_watchdog();
  notifier.ready();
  io.run();
  spdlog::info("msg=\"stopped\" delivered={} pending_dropped={}", sender.stats().delivered,
               sender.stats().dropped);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"alertrouterd: routes Alertmanager alerts to whoever is on call"};
  std::string config_path;
  std::string listen;
  std::string level = "info";
  app.add_option("--config", config_path, "configuration file (YAML)")->required();
  app.add_option("--listen", listen, "HOST:PORT to listen on, overriding the config's `listen`");
  app.add_option("--log-level", level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.set_version_flag("--version", ALERTROUTER_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  // One line per event on stderr, which journald keeps; its own timestamps make ours redundant
  // there, but not when run by hand.
  auto logger = spdlog::stderr_logger_st("alertrouterd");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ level=%l %v", spdlog::pattern_time_type::utc);
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);

  // A peer closing mid-write must be an error code, not a signal that kills the daemon.
  std::signal(SIGPIPE, SIG_IGN);
  try {
    const daemon::log_level min_level = level == "debug"  ? daemon::log_level::debug
                                        : level == "info" ? daemon::log_level::info
                                        : level == "warn" ? daemon::log_level::warn
                                                          : daemon::log_level::error;
    return run(config_path, listen, min_level);
  } catch (const std::exception& e) {
    spdlog::critical("msg=\"fatal\" error=\"{}\"", e.what());
    return 1;
  }
}
