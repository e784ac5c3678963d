#include "tests/integration/free_port.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <mutex>
#include <stdexcept>
#include <unordered_set>

namespace alertrouter::integration {

std::uint16_t pick_free_port() {
  namespace asio = boost::asio;
  static std::mutex mutex;
  static std::unordered_set<std::uint16_t> handed_out;

  const auto loopback = asio::ip::make_address_v4("127.0.0.1");
  asio::io_context io;
  for (int attempt = 0; attempt < 64; ++attempt) {
    asio::ip::tcp::acceptor acceptor(io);
    boost::system::error_code ec;
    const asio::ip::tcp::endpoint any(loopback, 0);
    acceptor.open(any.protocol(), ec);
    if (!ec) acceptor.bind(any, ec);
    if (ec) throw std::runtime_error("pick_free_port: " + ec.message());
    const std::uint16_t port = acceptor.local_endpoint().port();

    asio::ip::udp::socket udp(io);
    const asio::ip::udp::endpoint same(loopback, port);
    udp.open(same.protocol(), ec);
    if (!ec) udp.bind(same, ec);
    if (ec) continue;  // taken for UDP: the cluster listener could not use it

    const std::lock_guard lock(mutex);
    if (handed_out.insert(port).second) return port;
  }
  throw std::runtime_error("pick_free_port: no port free for TCP and UDP and new to this process");
}

}  // namespace alertrouter::integration
