// loadgen: the load benchmark's open-loop, fixed-rate HTTP client (bench/load/run.sh,
// bench/README.md "Load benchmark"). It replays the requests bench/load/alerts.lua prepares
// (dumped with a third script argument) in alerts.lua's order, request i due at
// start + i / rate, each sent on a free keep-alive connection at or after its due time, and
// measures each latency from the due time to the end of the response (coordinated omission
// corrected, as wrk2 does): a server that stalls, or falls behind, makes every request due in the
// meantime wait, and that wait is in the figures.
//
//   loadgen --rate 20000 --duration 10 --warmup 2 --connections 64 --requests FILE URL
//
// with URL http://127.0.0.1:PORT (the requests carry their own path and Host).
//
// One thread, one io_context. Prints a human summary, then one line for run.sh:
//   LOADGEN rate=R duration_s=D connections=C requests=N achieved_rps=A p50_us=.. p90_us=..
//     p99_us=.. p999_us=.. max_us=.. errors=E status_errors=.. connection_errors=.. timeouts=..
//     backlog_end=B unsent=U warmup_requests=W max_backlog=M cpu_pct=P
// Exits 2 on a usage or setup error (unreadable file, no connection), 0 otherwise: a run whose
// server answered badly is a result, read from `errors`.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using boost::system::error_code;

// The requests alerts.lua prepared (its dump format is described at the top of alerts.lua).
struct request_set {
  std::int64_t t0 = 0;  // the script's os.time(): new groups start at t0 - 3000 + pass
  int resolve_lag = 0;
  int alerts = 0;                                  // alerts per request
  std::vector<std::string> repeats;                // whole requests
  std::vector<std::vector<std::string>> firing;    // new groups, split at every startsAt
  std::vector<std::vector<std::string>> resolved;  // the same groups' resolves
};

// Reads `path`; an error message on a missing or malformed file.
std::optional<request_set> load_requests(const std::string& path, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read " + path;
    return std::nullopt;
  }
  std::string header;
  std::getline(in, header);
  request_set set;
  int repeats = 0, new_pool = 0, version = 0;
  if (std::sscanf(header.c_str(),
                  "alertrouter-loadgen-requests %d t0=%ld repeats=%d new_pool=%d "
                  "resolve_lag=%d alerts=%d",
                  &version, &set.t0, &repeats, &new_pool, &set.resolve_lag, &set.alerts) != 6 ||
      version != 2 || repeats < 1 || new_pool < 1 || set.resolve_lag < 0) {
    error = path + ": not a request file of alerts.lua (header '" + header.substr(0, 100) + "')";
    return std::nullopt;
  }
  auto count = [&](std::size_t limit) -> std::optional<std::size_t> {
    std::string line;
    if (!std::getline(in, line) || line.empty() ||
        line.find_first_not_of("0123456789") != std::string::npos || line.size() > 9) {
      return std::nullopt;
    }
    const auto n = std::stoul(line);
    if (n > limit) return std::nullopt;
    return n;
  };
  auto blob = [&]() -> std::optional<std::string> {
    const auto n = count(std::size_t{64} << 20);
    if (!n) return std::nullopt;
    std::string s(*n, '\0');
    if (!in.read(s.data(), static_cast<std::streamsize>(*n))) return std::nullopt;
    return s;
  };
  auto pieces = [&]() -> std::optional<std::vector<std::string>> {
    const auto n = count(100000);
    if (!n || *n == 0) return std::nullopt;
    std::vector<std::string> v;
    for (std::size_t i = 0; i < *n; ++i) {
      auto b = blob();
      if (!b) return std::nullopt;
      v.push_back(std::move(*b));
    }
    return v;
  };
  for (int g = 0; g < repeats; ++g) {
    auto b = blob();
    if (!b) {
      error = path + ": truncated or malformed (repeat request " + std::to_string(g) + ")";
      return std::nullopt;
    }
    set.repeats.push_back(std::move(*b));
  }
  for (int p = 0; p < new_pool; ++p) {
    auto f = pieces();
    auto r = f ? pieces() : std::nullopt;
    if (!r) {
      error = path + ": truncated or malformed (new group " + std::to_string(p) + ")";
      return std::nullopt;
    }
    set.firing.push_back(std::move(*f));
    set.resolved.push_back(std::move(*r));
  }
  return set;
}

// alerts.lua's rfc3339(): UTC seconds, fixed nanoseconds; always 30 characters (for years 1000
// to 9999), the length of the STARTS_AT placeholder, so Content-Length holds.
std::string rfc3339(std::int64_t t) {
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char text[40];
  const std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  return std::string(text, n) + ".123456789Z";
}

// The request sequence of alerts.lua's request() and new_group_request(), in the same order;
// keep the two in sync. Out of every 20 requests: slot 0 opens a new group, slot 10 resolves the
// group opened resolve_lag new groups earlier (a repeat until there is one), the rest repeat the
// fixed groups round robin.
class traffic {
 public:
  explicit traffic(const request_set& set) : set_(set) {}

  // The next request's bytes: stored ones, or `scratch` (which must outlive the write).
  asio::const_buffer next(std::string& scratch) {
    ++requests_sent_;
    const std::int64_t slot = requests_sent_ % 20;
    if (slot == 0) {
      ++new_groups_;
      return new_group(new_groups_ - 1, false, scratch);
    }
    if (slot == 10) {
      const std::int64_t g = requests_sent_ / 20 - set_.resolve_lag;
      if (g >= 0) return new_group(g, true, scratch);
    }
    ++repeats_sent_;
    const auto& r = set_.repeats[index(repeats_sent_, set_.repeats.size())];
    return asio::buffer(r);
  }

 private:
  static std::size_t index(std::int64_t n, std::size_t size) {
    return static_cast<std::size_t>(n) % size;
  }

  asio::const_buffer new_group(std::int64_t g, bool resolved, std::string& scratch) {
    const std::size_t pool = set_.firing.size();
    const auto& pieces = (resolved ? set_.resolved : set_.firing)[index(g, pool)];
    const std::int64_t pass = g / static_cast<std::int64_t>(pool);
    if (pass != starts_at_pass_) {
      starts_at_ = rfc3339(set_.t0 - 3000 + pass);
      starts_at_pass_ = pass;
    }
    scratch.clear();
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      if (i > 0) scratch += starts_at_;
      scratch += pieces[i];
    }
    return asio::buffer(scratch);
  }

  const request_set& set_;
  std::int64_t requests_sent_ = 0, new_groups_ = 0, repeats_sent_ = 0;
  std::int64_t starts_at_pass_ = -1;
  std::string starts_at_;
};

struct options {
  double rate = 0;       // requests per second
  double duration = 10;  // recorded seconds
  double warmup = 2;     // seconds sent at the rate before recording
  double drain = 5;      // seconds to wait for late answers after the recorded window
  int connections = 64;
  std::string timeline;  // if set, a file of "due_ms latency_us late_us" per recorded request
};

// CPU time of this process so far (user + system), in seconds.
double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

// One open-loop run. Owns its connections; everything runs on `io`'s one thread.
class open_loop {
 public:
  open_loop(asio::io_context& io, const request_set& set, const options& opt)
      : io_(io), opt_(opt), traffic_(set), pacer_(io), window_timer_(io), drain_timer_(io) {
    total_ = static_cast<std::int64_t>(std::ceil((opt.warmup + opt.duration) * opt.rate));
    warmup_n_ = static_cast<std::int64_t>(std::ceil(opt.warmup * opt.rate));
    latencies_us_.reserve(static_cast<std::size_t>(total_ - warmup_n_));
  }

  // Opens every connection (synchronously: this is setup); false with `error` if one fails.
  bool connect(const tcp::endpoint& endpoint, std::string& error) {
    endpoint_ = endpoint;
    for (int i = 0; i < opt_.connections; ++i) {
      auto c = std::make_unique<connection>(io_);
      error_code ec;
      c->socket.connect(endpoint, ec);
      if (!ec) c->socket.set_option(tcp::no_delay(true), ec);
      if (ec) {
        error = "connection " + std::to_string(i) + " to " + endpoint_text() + ": " + ec.message();
        return false;
      }
      free_.push_back(c.get());
      connections_.push_back(std::move(c));
    }
    return true;
  }

  // Starts sending 100 ms from now; returns when the run is over.
  void start() {
    start_ = clock_type::now() + std::chrono::milliseconds(100);
    window_start_ = start_ + seconds(opt_.warmup);
    window_end_ = window_start_ + seconds(opt_.duration);
    window_timer_.expires_at(window_start_);
    window_timer_.async_wait([this](error_code ec) {
      if (ec) return;
      cpu_start_ = cpu_seconds();
      window_timer_.expires_at(window_end_);
      window_timer_.async_wait([this](error_code ec2) {
        if (!ec2) end_window();
      });
    });
    arm(start_);
  }

  // Writes the timeline (see options::timeline), in due-time order; false if it cannot.
  bool write_timeline() {
    if (opt_.timeline.empty()) return true;
    std::sort(timeline_.begin(), timeline_.end());
    std::FILE* f = std::fopen(opt_.timeline.c_str(), "w");
    if (f == nullptr) return false;
    // The window's start on the steady clock (CLOCK_MONOTONIC: `perf record -k monotonic`), to
    // line the timeline up with other traces.
    std::fprintf(f, "# window_start_monotonic_s %.6f\n",
                 std::chrono::duration<double>(window_start_.time_since_epoch()).count());
    for (const auto& [due_us, latency_us, late_us] : timeline_) {
      std::fprintf(f, "%.3f %d %d\n", static_cast<double>(due_us) / 1000, latency_us, late_us);
    }
    return std::fclose(f) == 0;
  }

  // Prints the summary and the LOADGEN line.
  void report(std::ostream& out) {
    std::sort(latencies_us_.begin(), latencies_us_.end());
    auto pct = [&](double q) -> std::int64_t {
      if (latencies_us_.empty()) return 0;
      auto rank =
          static_cast<std::size_t>(std::ceil(q * static_cast<double>(latencies_us_.size())));
      return latencies_us_[std::clamp<std::size_t>(rank, 1, latencies_us_.size()) - 1];
    };
    const double achieved = static_cast<double>(completed_in_window_) / opt_.duration;
    const std::int64_t errors = status_errors_ + connection_errors_ + timeouts_;
    const double cpu_pct = 100 * (cpu_end_ - cpu_start_) / opt_.duration;
    auto ms = [](std::int64_t us) { return static_cast<double>(us) / 1000; };
    char line[512];
    std::snprintf(line, sizeof line,
                  "offered %.0f requests/s for %.1f s (after %.1f s warmup) on %d connections "
                  "to %s\n"
                  "achieved %.0f requests/s; %zu latencies recorded\n"
                  "latency from due time: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, "
                  "max %.2f ms\n"
                  "errors %ld (non-2xx %ld, connection %ld, timeouts %ld); due but unsent at the "
                  "window's end %ld, never sent %ld, largest backlog %ld; client CPU %.0f%%\n",
                  opt_.rate, opt_.duration, opt_.warmup, opt_.connections, endpoint_text().c_str(),
                  achieved, latencies_us_.size(), ms(pct(0.5)), ms(pct(0.9)), ms(pct(0.99)),
                  ms(pct(0.999)), ms(pct(1.0)), errors, status_errors_, connection_errors_,
                  timeouts_, backlog_end_, unsent_, max_backlog_, cpu_pct);
    out << line;
    std::snprintf(line, sizeof line,
                  "LOADGEN rate=%.1f duration_s=%.3f connections=%d requests=%zu "
                  "achieved_rps=%.1f p50_us=%ld p90_us=%ld p99_us=%ld p999_us=%ld max_us=%ld "
                  "errors=%ld status_errors=%ld connection_errors=%ld timeouts=%ld "
                  "backlog_end=%ld unsent=%ld warmup_requests=%ld max_backlog=%ld cpu_pct=%.1f\n",
                  opt_.rate, opt_.duration, opt_.connections, latencies_us_.size(), achieved,
                  pct(0.5), pct(0.9), pct(0.99), pct(0.999), pct(1.0), errors, status_errors_,
                  connection_errors_, timeouts_, backlog_end_, unsent_, warmup_n_, max_backlog_,
                  cpu_pct);
    out << line;
  }

 private:
  struct connection {
    explicit connection(asio::io_context& io) : socket(io) {}
    tcp::socket socket;
    beast::flat_buffer buffer;
    std::optional<http::response_parser<http::string_body>> parser;
    std::string scratch;  // a new group's request while it is written
    std::int64_t index = 0;
    clock_type::time_point due;
    clock_type::time_point sent;  // when its write began
  };

  static clock_type::duration seconds(double s) {
    return std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(s));
  }

  clock_type::time_point due_at(std::int64_t i) const {
    return start_ +
           std::chrono::nanoseconds(std::llround(static_cast<double>(i) * 1e9 / opt_.rate));
  }

  // How many requests are due at `t` (those with due time <= t), at most total_.
  std::int64_t due_by(clock_type::time_point t) const {
    if (t < start_) return 0;
    const double s = std::chrono::duration<double>(t - start_).count();
    return std::min(total_, static_cast<std::int64_t>(std::floor(s * opt_.rate)) + 1);
  }

  std::string endpoint_text() const {
    std::ostringstream s;
    s << endpoint_;
    return s.str();
  }

  // Sends every request that is due while a connection is free; then waits for the next due
  // time, or (all connections busy) for an answer, whose handler calls pump() again.
  void pump() {
    if (stopping_) return;
    const auto now = clock_type::now();
    while (next_ < total_) {
      const auto due = due_at(next_);
      if (due > now) {
        arm(due);
        return;
      }
      if (free_.empty()) {
        max_backlog_ = std::max(max_backlog_, due_by(now) - next_);
        return;
      }
      connection* c = free_.back();
      free_.pop_back();
      send(*c, next_++, due);
    }
    finish_if_done();
  }

  void arm(clock_type::time_point due) {
    if (pacer_armed_) return;  // armed for an earlier time: it fires and pumps again
    pacer_armed_ = true;
    pacer_.expires_at(due);
    pacer_.async_wait([this](error_code ec) {
      pacer_armed_ = false;
      if (!ec) pump();
    });
  }

  void send(connection& c, std::int64_t index, clock_type::time_point due) {
    c.index = index;
    c.due = due;
    c.sent = clock_type::now();
    ++in_flight_;
    asio::async_write(c.socket, traffic_.next(c.scratch), [this, &c](error_code ec, std::size_t) {
      if (ec) return fail(c, ec);
      c.parser.emplace();
      c.parser->body_limit(1 << 20);
      http::async_read(c.socket, c.buffer, *c.parser, [this, &c](error_code ec2, std::size_t) {
        if (ec2) return fail(c, ec2);
        answered(c);
      });
    });
  }

  void answered(connection& c) {
    const auto now = clock_type::now();
    --in_flight_;
    if (now >= window_start_ && now < window_end_) ++completed_in_window_;
    if (c.index >= warmup_n_) {
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - c.due).count();
      latencies_us_.push_back(static_cast<std::int32_t>(std::min<std::int64_t>(us, INT32_MAX)));
      if (!opt_.timeline.empty()) {
        const auto late = std::chrono::duration_cast<std::chrono::microseconds>(c.sent - c.due);
        timeline_.push_back(
            {std::chrono::duration_cast<std::chrono::microseconds>(c.due - window_start_).count(),
             latencies_us_.back(),
             static_cast<std::int32_t>(std::min<std::int64_t>(late.count(), INT32_MAX))});
      }
    }
    const unsigned status = c.parser->get().result_int();
    if (status < 200 || status > 299) {
      if (status_errors_++ < 5) {
        std::cerr << "loadgen: HTTP " << status << ": " << c.parser->get().body().substr(0, 200)
                  << "\n";
      }
    }
    if (!c.parser->get().keep_alive()) return reconnect(c);
    free_.push_back(&c);
    pump();
  }

  // A connection error: counted; the connection is opened again and rejoins the free ones.
  void fail(connection& c, error_code ec) {
    --in_flight_;
    if (stopping_) return;
    if (connection_errors_++ < 5)
      std::cerr << "loadgen: connection error: " << ec.message() << "\n";
    reconnect(c);
  }

  void reconnect(connection& c) {
    error_code ignored;
    c.socket.close(ignored);
    c.buffer.clear();
    c.socket.async_connect(endpoint_, [this, &c](error_code ec) {
      if (stopping_) return;
      if (ec) {
        ++connection_errors_;
        // Try again shortly; a refused connect must not spin.
        auto retry = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(10));
        retry->async_wait([this, &c, retry](error_code) {
          if (!stopping_) reconnect(c);
        });
        return;
      }
      error_code ignored2;
      c.socket.set_option(tcp::no_delay(true), ignored2);
      free_.push_back(&c);
      pump();
    });
  }

  void end_window() {
    cpu_end_ = cpu_seconds();
    backlog_end_ = std::max<std::int64_t>(0, due_by(window_end_) - next_);
    if (finish_if_done()) return;
    drain_timer_.expires_at(window_end_ + seconds(opt_.drain));
    drain_timer_.async_wait([this](error_code ec) {
      if (ec) return;
      timeouts_ = in_flight_;
      unsent_ = total_ - next_;
      stop();
    });
  }

  // Stops once every request is sent and answered and the window is over.
  bool finish_if_done() {
    if (next_ < total_ || in_flight_ > 0 || clock_type::now() < window_end_ || cpu_end_ == 0) {
      return false;
    }
    stop();
    return true;
  }

  void stop() {
    stopping_ = true;
    io_.stop();
  }

  asio::io_context& io_;
  const options opt_;
  traffic traffic_;
  tcp::endpoint endpoint_;
  std::vector<std::unique_ptr<connection>> connections_;
  std::vector<connection*> free_;
  asio::steady_timer pacer_, window_timer_, drain_timer_;
  bool pacer_armed_ = false, stopping_ = false;
  clock_type::time_point start_, window_start_, window_end_;
  std::int64_t total_ = 0, warmup_n_ = 0, next_ = 0, in_flight_ = 0;
  std::int64_t completed_in_window_ = 0, status_errors_ = 0, connection_errors_ = 0;
  std::int64_t timeouts_ = 0, backlog_end_ = 0, unsent_ = 0, max_backlog_ = 0;
  double cpu_start_ = 0, cpu_end_ = 0;
  std::vector<std::int32_t> latencies_us_;
  // (due time from the window's start, latency, how late it was sent; all in us), when
  // options::timeline is set.
  std::vector<std::tuple<std::int64_t, std::int32_t, std::int32_t>> timeline_;
};

// http://HOST:PORT[/...] -> HOST, PORT; the path is ignored (the requests carry theirs).
bool parse_url(const std::string& url, std::string& host, std::string& port) {
  constexpr std::string_view scheme = "http://";
  if (url.compare(0, scheme.size(), scheme) != 0) return false;
  std::string rest = url.substr(scheme.size());
  rest = rest.substr(0, rest.find('/'));
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size()) return false;
  host = rest.substr(0, colon);
  port = rest.substr(colon + 1);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "loadgen: open-loop, fixed-rate HTTP load from alerts.lua's requests; latency from each "
      "request's due time"};
  options opt;
  std::string url, requests_file;
  app.add_option("URL", url, "http://HOST:PORT (the requests carry their own path)")->required();
  app.add_option("--requests", requests_file, "request file written by alerts.lua's dump mode")
      ->required();
  app.add_option("--rate", opt.rate, "requests per second")->required()->check(CLI::PositiveNumber);
  app.add_option("--duration", opt.duration, "recorded seconds")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup", opt.warmup, "seconds at the rate before recording")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--drain", opt.drain, "seconds to wait for answers after the recorded window")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--connections", opt.connections, "keep-alive connections")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--timeline", opt.timeline,
                 "write \"DUE_MS LATENCY_US LATE_US\" per recorded request to this file (due time "
                 "from the recorded window's start; LATE_US: from its due time to its sending, "
                 "waiting for a free connection), to see when slow answers happen");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (opt.rate * (opt.warmup + opt.duration) > 2e9) {
    std::cerr << "loadgen: rate x (warmup + duration) is too many requests\n";
    return 2;
  }

  std::string error;
  auto set = load_requests(requests_file, error);
  if (!set) {
    std::cerr << "loadgen: " << error << "\n";
    return 2;
  }
  std::string host, port;
  if (!parse_url(url, host, port)) {
    std::cerr << "loadgen: URL must be http://HOST:PORT, not '" << url << "'\n";
    return 2;
  }

  asio::io_context io(1);
  error_code ec;
  tcp::resolver resolver(io);
  const auto endpoints = resolver.resolve(host, port, ec);
  if (ec || endpoints.empty()) {
    std::cerr << "loadgen: cannot resolve " << host << ":" << port << ": " << ec.message() << "\n";
    return 2;
  }
  open_loop r(io, *set, opt);
  if (!r.connect(endpoints.begin()->endpoint(), error)) {
    std::cerr << "loadgen: " << error << "\n";
    return 2;
  }
  r.start();
  io.run();
  r.report(std::cout);
  if (!r.write_timeline()) {
    std::cerr << "loadgen: cannot write " << opt.timeline << "\n";
    return 1;
  }
  return 0;
}
