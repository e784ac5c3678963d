// alertrouterd: takes Alertmanager webhooks, pages whoever is on call, serves metrics and the
// operator API. The only place that wires the daemon's parts together.
//
//   alertrouterd --config FILE [--listen HOST:PORT] [--state-dir DIR] [--log-level LEVEL]
//
// Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT), 1 when the configuration does not load,
// the state store cannot be opened or the listen address cannot be bound, 2 for a usage error.

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>

#include "daemon/http_server.h"
#include "daemon/metrics.h"
#include "daemon/outbox.h"
#include "daemon/service.h"
#include "daemon/systemd_notifier.h"
#include "daemon/webhook_sender.h"
#include "routing/incident.h"
#include "store/group_commit.h"
#include "store/state_store.h"

#ifndef ALERTROUTER_VERSION
#define ALERTROUTER_VERSION "unknown"
#endif

namespace {

using namespace alertrouter;
using daemon::http_request;
using daemon::http_response;

// How long SIGTERM waits for requests being answered and deliveries in flight.
constexpr std::chrono::seconds kShutdownGrace{10};
// How often closed incidents and finished notifications older than `retention` are pruned.
constexpr std::chrono::minutes kPruneInterval{10};

std::int64_t unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// The outbox's progress goes to the store through the committer's queue (never blocking).
class store_journal final : public daemon::outbox_journal {
 public:
  explicit store_journal(store::group_committer& c) : committer_(c) {}
  void attempted(const std::string& id, std::uint32_t attempts, std::int64_t next_attempt_ms,
                 std::string_view last_error) override {
    committer_.record_attempt(id, attempts, next_attempt_ms, last_error);
  }
  void delivered(const std::string& id, std::uint32_t attempts, std::int64_t at_ms) override {
    committer_.mark_delivered(id, attempts, at_ms);
  }
  void dead(const std::string& id, std::uint32_t attempts, std::int64_t at_ms,
            std::string_view last_error) override {
    committer_.mark_dead(id, attempts, at_ms, last_error);
  }

 private:
  store::group_committer& committer_;
};

daemon::outbox_entry to_entry(store::outbox_message m) {
  daemon::outbox_entry e;
  e.req.id = std::move(m.id);
  e.req.url = std::move(m.url);
  e.req.body = std::move(m.body);
  e.req.channel = std::move(m.channel);
  e.req.kind = m.kind;
  e.created_ms = m.created_ms;
  e.attempts = m.attempts;
  e.next_attempt_ms = m.next_attempt_ms;
  e.last_error = std::move(m.last_error);
  e.dead = m.state == store::message_state::dead;
  e.finished_ms = m.finished_ms;
  return e;
}

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
        const std::string& state_dir_flag, daemon::log_level min_level) {
  auto loaded = daemon::load_config(config_path);
  if (auto* errors = std::get_if<std::vector<std::string>>(&loaded)) {
    for (const std::string& e : *errors)
      spdlog::error("msg=\"configuration refused\" error={}", daemon::log_value(e));
    return 1;
  }
  daemon::loaded_config initial = std::get<daemon::loaded_config>(std::move(loaded));
  const config::config& cfg = initial.table->config();

  std::string host;
  std::uint16_t port = 0;
  const std::string listen = listen_flag.empty() ? cfg.listen : listen_flag;
  if (!daemon::split_listen(listen, host, port)) {
    spdlog::error("msg=\"bad listen address\" listen={} expected=HOST:PORT",
                  daemon::log_value(listen));
    return 1;
  }

  boost::asio::io_context io(1);
  daemon::metrics stats(ALERTROUTER_VERSION);

  daemon::http_limits limits;
  limits.max_body = cfg.limits.max_body;
  limits.max_connections = cfg.limits.max_connections;
  limits.read_timeout = cfg.limits.read_timeout;
  limits.idle_timeout = cfg.limits.idle_timeout;
  // Room for 16 bodies of the largest size at once, and never less than 64 MiB.
  limits.max_bodies_in_flight = std::max<std::size_t>(std::size_t{64} << 20, 16 * limits.max_body);
  daemon::http_server server(io, limits, [](std::string_view m) {
    spdlog::warn("msg=http detail={}", daemon::log_value(m));
  });

  routing::memory_incident_table incidents(cfg.dedup.retention, cfg.dedup.max_incidents);

  // The durable state: opened and read before anything listens, so a store that cannot be
  // used stops the start with a clear error instead of accepting what it cannot keep.
  const std::string state_dir = state_dir_flag.empty() ? cfg.state_dir : state_dir_flag;
  std::unique_ptr<store::state_store> db;
  store::recovered_state recovered;
  std::vector<store::outbox_message> dead_listed;
  std::uint64_t dead_in_store = 0;
  try {
    db = store::open_sqlite_store(state_dir);
    recovered = db->load();
    dead_listed = db->list_dead(1000);
    dead_in_store = db->stats().dead;
  } catch (const std::exception& e) {
    spdlog::error("msg=\"cannot open the state store\" state_dir={} error={}",
                  daemon::log_value(state_dir), daemon::log_value(e.what()));
    return 1;
  }
  incidents.reserve_ids(recovered.next_incident_id);
  for (routing::incident& inc : recovered.incidents) incidents.restore(std::move(inc));
  recovered.incidents.clear();
  spdlog::info("msg=\"state recovered\" state_dir={} incidents={} open={} pending={}",
               daemon::log_value(state_dir), incidents.size(), incidents.open_count(),
               recovered.pending.size());

  daemon::service* svc_ptr = nullptr;  // set once the service exists; commits start after that
  store::group_committer::options commit_options;
  commit_options.hold_after_failure = true;  // see durable_state
  // Delivery progress (no fsync of its own) is gathered for up to 10 ms per transaction.
  commit_options.progress_linger = std::chrono::milliseconds(10);
  commit_options.commit_delay = cfg.commit_delay;
  commit_options.on_commit = [&stats](std::size_t sets, std::chrono::nanoseconds took) {
    stats.state_commit(sets, took);
  };
  commit_options.on_error = [](std::string_view what, std::exception_ptr error) {
    std::string why = "unknown";
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      why = e.what();
    } catch (...) {
    }
    spdlog::error("msg=\"state store write failed\" what={} error={}", daemon::log_value(what),
                  daemon::log_value(why));
  };
  store::group_committer committer(
      std::move(db),
      [&io, &svc_ptr](std::uint64_t ticket, std::exception_ptr error) {
        boost::asio::post(io, [&svc_ptr, ticket, error] { svc_ptr->committed(ticket, error); });
      },
      commit_options);
  store_journal journal(committer);

  daemon::outbox_options box_options;
  box_options.initial_backoff = cfg.delivery.initial_backoff;
  box_options.max_backoff = cfg.delivery.max_backoff;
  box_options.give_up_after = cfg.delivery.give_up_after;
  box_options.max_attempts = static_cast<std::uint32_t>(cfg.delivery.max_attempts);

  // The outbox reports to the service, which is built after it: forward through a pointer.
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
                 std::chrono::steady_clock::duration latency, std::string_view detail,
                 std::optional<std::chrono::milliseconds> retry_after) override {
      target->on_done(r, res, n, latency, detail, retry_after);
    }
  } forward;
  daemon::outbox box(io, journal, box_options, forward);

  daemon::webhook_sender_options delivery_options;
  delivery_options.connect_timeout = cfg.delivery.connect_timeout;
  delivery_options.request_timeout = cfg.delivery.request_timeout;
  delivery_options.max_attempts = 1;  // the outbox retries, durably
  delivery_options.max_in_flight_per_destination = cfg.delivery.max_in_flight_per_destination;
  // The outbox sends one notification per URL at a time; this bound is never the one that bites.
  delivery_options.max_pending = cfg.limits.max_pending_notifications * 2 + 100000;
  delivery_options.user_agent = std::string("alertrouter/") + ALERTROUTER_VERSION;
  // No warn log for the sender: each of its lines (an attempt failed, a 4xx, a full queue) is
  // also reported to the outbox, whose observer (the service) logs it as flat logfmt fields,
  // with the attempt count across retries and restarts rather than the sender's single attempt.
  daemon::webhook_sender sender(io, delivery_options, &box);
  for (store::outbox_message& m : dead_listed) box.remember_dead(to_entry(std::move(m)));
  box.set_dead_count(dead_in_store);  // all of them, not only the ones listed
  for (store::outbox_message& m : recovered.pending) box.resume(to_entry(std::move(m)));
  recovered.pending.clear();
  box.set_transport(sender);

  daemon::service svc(config_path, std::move(initial), incidents, stats, box, log_line);
  svc.set_log_level(min_level);
  forward.target = &svc;
  svc_ptr = &svc;
  boost::asio::steady_timer store_retry(io);
  svc.enable_durability(daemon::durable_state{
      &committer, [&io](std::function<void()> task) { boost::asio::post(io, std::move(task)); },
      [&store_retry](std::function<void()> task) {
        store_retry.expires_after(std::chrono::seconds(1));
        store_retry.async_wait([task = std::move(task)](const boost::system::error_code& ec) {
          if (!ec) task();
        });
      }});

  // State metrics, read at each scrape.
  const std::filesystem::path db_file = store::sqlite_store_file(state_dir);
  stats.add_scrape_value(daemon::metrics::value_type::gauge, "alertrouter_outbox_pending",
                         "Notifications accepted and not yet delivered or dead-lettered.",
                         [&box] { return static_cast<double>(box.pending()); });
  stats.add_scrape_value(daemon::metrics::value_type::gauge, "alertrouter_outbox_dead",
                         "Dead-lettered notifications the state store holds (kept for "
                         "`retention`; the latest listed at /api/v1/outbox).",
                         [&box] { return static_cast<double>(box.dead_count()); });
  stats.add_scrape_value(
      daemon::metrics::value_type::gauge, "alertrouter_outbox_oldest_pending_age_seconds",
      "Age of the oldest pending notification; 0 when none is pending.", [&box] {
        const auto oldest = box.oldest_pending_ms();
        if (!oldest) return 0.0;
        return static_cast<double>(unix_ms(std::chrono::system_clock::now()) - *oldest) / 1000.0;
      });
  stats.add_scrape_value(
      daemon::metrics::value_type::gauge, "alertrouter_state_store_bytes",
      "Size of the state store: the database file and its write-ahead log.", [db_file] {
        std::error_code ec;
        double total = 0;
        for (const auto& f : {db_file, std::filesystem::path(db_file.string() + "-wal")}) {
          const auto n = std::filesystem::file_size(f, ec);
          if (!ec) total += static_cast<double>(n);
        }
        return total;
      });
  stats.add_scrape_value(
      daemon::metrics::value_type::counter, "alertrouter_state_wal_checkpoints_total",
      "WAL checkpoints done in the background (as of the last commit).",
      [&committer] { return static_cast<double>(committer.stats().checkpoints.checkpoints); });
  stats.add_scrape_value(
      daemon::metrics::value_type::counter, "alertrouter_state_wal_checkpoint_failures_total",
      "Background WAL checkpoints that failed (as of the last commit); the WAL keeps the pages.",
      [&committer] { return static_cast<double>(committer.stats().checkpoints.failures); });
  stats.add_scrape_value(
      daemon::metrics::value_type::counter, "alertrouter_state_wal_forced_checkpoints_total",
      "WAL checkpoints the store writer did inside a commit because the background ones fell "
      "behind (as of the last commit): those commits took longer.",
      [&committer] { return static_cast<double>(committer.stats().checkpoints.forced); });
  stats.add_scrape_value(
      daemon::metrics::value_type::counter, "alertrouter_state_commit_failures_total",
      "State store transactions that failed (webhooks answered 503).",
      [&committer] { return static_cast<double>(committer.stats().failed_commits); });
  stats.add_scrape_value(
      daemon::metrics::value_type::counter, "alertrouter_state_progress_dropped_total",
      "Delivery progress records (failed attempts first, then delivered or dead marks) given up "
      "on after failed commits: a notification whose delivered mark was dropped is sent again "
      "after a restart, with the same id.",
      [&committer] { return static_cast<double>(committer.stats().progress_dropped); });
  stats.add_scrape_value(
      daemon::metrics::value_type::counter, "alertrouter_state_task_failures_total",
      "State store maintenance tasks (pruning) that failed; each is logged.",
      [&committer] { return static_cast<double>(committer.stats().task_failures); });

  // Pruning: closed incidents and finished notifications older than `retention`. Never sooner
  // than the dedup table forgets them: a restart must not forget what dedup still relies on.
  const auto retention = std::max<std::chrono::seconds>(cfg.retention, cfg.dedup.retention);
  boost::asio::steady_timer prune_timer(io);
  std::function<void()> schedule_prune = [&] {
    prune_timer.expires_after(kPruneInterval);
    prune_timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      const std::int64_t before = unix_ms(std::chrono::system_clock::now() - retention);
      committer.run([before, &io, &box](store::state_store& st) {
        const store::prune_result r = st.prune(before);
        if (r.dead > 0) boost::asio::post(io, [&box, n = r.dead] { box.forget_dead(n); });
        if (r.incidents + r.delivered + r.dead > 0) {
          spdlog::info("msg=\"state pruned\" incidents={} delivered={} dead={}", r.incidents,
                       r.delivered, r.dead);
        }
      });
      schedule_prune();
    });
  };
  schedule_prune();
  stats.config_reloaded(true, std::chrono::system_clock::now());
  stats.set_http_stats_source([&server] { return server.stats(); });
  server.set_refusal_observer([&stats](std::string_view path, unsigned status) {
    if (status == 413 && path == "/webhook/alertmanager") {
      stats.webhook_received(daemon::webhook_result::too_large);
    }
  });

  {
    daemon::http_handler_metrics timer = stats.register_handler("/webhook/alertmanager");
    server.handle_async("/webhook/alertmanager", {"POST"},
                        [&svc, timer](http_request& r, daemon::http_responder respond) {
                          const auto start = std::chrono::steady_clock::now();
                          auto shared =
                              std::make_shared<daemon::http_responder>(std::move(respond));
                          svc.webhook(r, [shared, timer, start](http_response res) {
                            timer.observe(std::chrono::steady_clock::now() - start);
                            shared->send(std::move(res));
                          });
                        });
  }
  route(server, stats, "/api/v1/outbox", {"GET"},
        [&box](http_request& r) { return daemon::outbox_page(box, r); });
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

  daemon::systemd_notifier notifier(io, [](std::string_view m) {
    spdlog::warn("msg=sd_notify detail={}", daemon::log_value(m));
  });
  route(server, stats, "/-/reload", {"POST"}, [&svc, &notifier](http_request& r) {
    // Refused without the bearer token: systemd is not told of a reload that does not happen.
    if (svc.check_token(r)) return svc.reload_endpoint(r);
    notifier.reloading();
    http_response resp = svc.reload_endpoint(r);
    notifier.ready();
    return resp;
  });
  // Without the bearer token (when one is configured), a webhook or reload is refused before
  // its body is read or reserved, and before a 100 Continue asks the client to send it.
  server.check_before_body("/webhook/alertmanager", [&svc](const http_request& head) {
    return svc.check_webhook_header(head);
  });
  server.check_before_body("/-/reload",
                           [&svc](const http_request& head) { return svc.check_token(head); });

  auto bound = server.bind(host, port);
  if (!bound) {
    spdlog::error("msg=\"cannot listen\" listen={} error={}", daemon::log_value(listen),
                  daemon::log_value(bound.error().message()));
    return 1;
  }
  server.start();
  const auto endpoint = bound.value();
  const std::string where =
      endpoint.address().is_v6()
          ? "[" + endpoint.address().to_string() + "]:" + std::to_string(endpoint.port())
          : endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  spdlog::info("msg=listening listen={} version={} config={}", where,
               daemon::log_value(ALERTROUTER_VERSION), daemon::log_value(config_path));

  boost::asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
  bool stopping = false;
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int signo) {
        if (ec) return;
        if (signo == SIGHUP) {
          spdlog::info("msg=reloading signal=SIGHUP config={}", daemon::log_value(config_path));
          notifier.reloading();
          svc.reload();
          notifier.ready();
          signals.async_wait(on_signal);
          return;
        }
        if (stopping) return;
        stopping = true;
        spdlog::info("msg=\"shutting down\" signal={} grace_s={}",
                     signo == SIGINT ? "SIGINT" : "SIGTERM", kShutdownGrace.count());
        notifier.stopping();
        notifier.stop_watchdog();
        svc.begin_shutdown();
        auto remaining = std::make_shared<int>(2);
        auto done = [&io, remaining] {
          if (--*remaining == 0) io.stop();
        };
        server.stop(kShutdownGrace, done);
        box.stop(kShutdownGrace, done);
        prune_timer.cancel();
        store_retry.cancel();
        signals.cancel();
      };
  signals.async_wait(on_signal);

  notifier.start_watchdog();
  notifier.ready();
  io.run();
  // Delivery progress still queued is written before exit; what is not delivered stays pending
  // in the store for the next start.
  committer.stop();
  spdlog::info("msg=stopped delivered={} pending={} state_dir={}", sender.stats().delivered,
               box.pending(), daemon::log_value(state_dir));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"alertrouterd: routes Alertmanager alerts to whoever is on call"};
  std::string config_path;
  std::string listen;
  std::string state_dir;
  std::string level = "info";
  app.add_option("--config", config_path, "configuration file (YAML)")->required();
  app.add_option("--listen", listen, "HOST:PORT to listen on, overriding the config's `listen`");
  app.add_option("--state-dir", state_dir,
                 "directory of the durable state, overriding the config's `state_dir`");
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
  auto logger = spdlog::stderr_logger_mt("alertrouterd");
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
    return run(config_path, listen, state_dir, min_level);
  } catch (const std::exception& e) {
    spdlog::critical("msg=fatal error={}", daemon::log_value(e.what()));
    return 1;
  }
}
