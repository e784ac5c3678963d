#include "tests/integration/free_port.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <stdexcept>

namespace alertrouter::integration {

std::uint16_t pick_free_port() {
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io);
  boost::system::error_code ec;
  const asio::ip::tcp::endpoint any(asio::ip::make_address_v4("127.0.0.1"), 0);
  acceptor.open(any.protocol(), ec);
  if (!ec) acceptor.bind(any, ec);
  if (ec) throw std::runtime_error("pick_free_port: " + ec.message());
  return acceptor.local_endpoint().port();
}

}  // namespace alertrouter::integration
