// null_server: the load benchmark's floor. An HTTP/1.1 server that reads each request (Beast's
// parser, keep-alive, any path), optionally spins for a fixed CPU time, and answers 200 with a
// short JSON body, as alertrouterd answers a webhook. It keeps no state and touches no disk, so
// its latency under loadgen is what this machine gives a server at that rate: the kernel's
// loopback TCP, the scheduler, and the virtual CPU's own speed (bench/README.md, "The floor").
//
//   null_server --listen 127.0.0.1:PORT [--listen 127.0.0.1:PORT2 ...] [--work-us N]
//
// --work-us N spins N microseconds of CPU (a busy loop on the thread's CPU clock) per request
// before answering, so a run shows the latency a server of that cost per request gets here.
// Several --listen give several listening sockets, served alike: the load benchmark points each
// of alertrouterd's contacts at a port of its own, as in production, where people's webhooks are
// different endpoints. One thread, one io_context, like alertrouterd's io thread. Prints
// `NULL_SERVER listening PORT...` once it accepts (for port 0, the port the kernel chose) and
// runs until SIGINT/SIGTERM; then prints `NULL_SERVER requests=N`. Exits 2 on a usage error or
// when it cannot listen.
#include <time.h>

#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

std::int64_t thread_cpu_ns() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

// Spins until this thread has used `ns` more nanoseconds of CPU: a slowed-down core makes the
// spin take longer in wall time, as it would real work.
void spin_cpu(std::int64_t ns) {
  if (ns <= 0) return;
  const std::int64_t until = thread_cpu_ns() + ns;
  while (thread_cpu_ns() < until) {
  }
}

struct server_options {
  std::int64_t work_ns = 0;
  std::uint64_t requests = 0;  // answered so far
};

class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket socket, server_options& options)
      : socket_(std::move(socket)), options_(options) {}

  void start() { read(); }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(16 * 1024 * 1024);
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](error_code ec, std::size_t) {
                       if (ec) return;  // the client closed, or sent something unparsable
                       self->answer();
                     });
  }

  void answer() {
    const bool keep_alive = parser_->get().keep_alive();
    spin_cpu(options_.work_ns);
    ++options_.requests;
    static constexpr std::string_view kBody = "{\"status\":\"ok\"}";
    response_ = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                std::to_string(kBody.size()) +
                (keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n");
    response_.append(kBody);
    asio::async_write(socket_, asio::buffer(response_),
                      [self = shared_from_this(), keep_alive](error_code ec, std::size_t) {
                        if (ec || !keep_alive) return;
                        self->read();
                      });
  }

  tcp::socket socket_;
  server_options& options_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string response_;
};

void accept(tcp::acceptor& acceptor, server_options& options) {
  acceptor.async_accept([&acceptor, &options](error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<session>(std::move(socket), options)->start();
    }
    accept(acceptor, options);
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"An HTTP server that answers every request 200 and does nothing else"};
  std::vector<std::string> listens{"127.0.0.1:0"};
  double work_us = 0;
  app.add_option("--listen", listens,
                 "HOST:PORT to listen on (port 0: the kernel picks); repeatable");
  app.add_option("--work-us", work_us, "microseconds of CPU to spin per request")
      ->check(CLI::Range(0.0, 1e6));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  asio::io_context io(1);
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  server_options options;
  options.work_ns = static_cast<std::int64_t>(work_us * 1000.0);
  std::string ports;
  for (const std::string& listen : listens) {
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos) {
      std::fprintf(stderr, "null_server: --listen wants HOST:PORT, not '%s'\n", listen.c_str());
      return 2;
    }
    auto acceptor = std::make_unique<tcp::acceptor>(io);
    try {
      const auto address = asio::ip::make_address(listen.substr(0, colon));
      const auto port = static_cast<unsigned short>(std::stoul(listen.substr(colon + 1)));
      const tcp::endpoint endpoint(address, port);
      acceptor->open(endpoint.protocol());
      acceptor->set_option(tcp::acceptor::reuse_address(true));
      acceptor->bind(endpoint);
      acceptor->listen(asio::socket_base::max_listen_connections);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "null_server: cannot listen on %s: %s\n", listen.c_str(), e.what());
      return 2;
    }
    ports += " " + std::to_string(acceptor->local_endpoint().port());
    acceptors.push_back(std::move(acceptor));
  }
  std::printf("NULL_SERVER listening%s\n", ports.c_str());
  std::fflush(stdout);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](error_code, int) {
    for (auto& acceptor : acceptors) acceptor->close();
    io.stop();
  });
  for (auto& acceptor : acceptors) accept(*acceptor, options);
  io.run();
  std::printf("NULL_SERVER requests=%llu\n", static_cast<unsigned long long>(options.requests));
  return 0;
}
