#include "tests/integration/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/version.hpp>
#include <functional>

namespace alertrouter::integration {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

tcp::endpoint loopback(std::uint16_t port) {
  return {asio::ip::make_address_v4("127.0.0.1"), port};
}

http_reply to_reply(http::response<http::string_body>&& res) {
  http_reply reply;
  reply.status = res.result_int();
  for (const auto& field : res) {
    reply.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  reply.body = std::move(res.body());
  return reply;
}

}  // namespace

std::string http_reply::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (iequals(n, name)) return v;
  }
  return {};
}

boost::system::result<http_reply> http_request(std::uint16_t port, std::string_view method,
                                               std::string_view target, std::string_view body,
                                               std::string_view content_type,
                                               std::chrono::milliseconds timeout) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  beast::flat_buffer buffer;
  http::request<http::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  req.set(http::field::user_agent, "alertrouter-integration-test");
  req.set(http::field::connection, "close");
  if (!body.empty() || method == "POST" || method == "PUT") {
    if (!content_type.empty()) req.set(http::field::content_type, content_type);
    req.body() = std::string(body);
    req.prepare_payload();
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(boost::none);
  parser.header_limit(1024 * 1024);

  // One deadline for the whole exchange: connect, write, read.
  error_code result = asio::error::would_block;
  stream.expires_after(timeout);
  stream.async_connect(loopback(port), [&](const error_code& ec) {
    if (ec) {
      result = ec;
      return;
    }
    http::async_write(stream, req, [&](const error_code& wec, std::size_t) {
      if (wec) {
        result = wec;
        return;
      }
      http::async_read(stream, buffer, parser,
                       [&](const error_code& rec, std::size_t) { result = rec; });
    });
  });
  io.run();
  if (result) return result;
  return to_reply(parser.release());
}

struct raw_connection::impl {
  asio::io_context io;
  beast::tcp_stream stream{io};
  beast::flat_buffer buffer;
  bool connected = false;

  error_code run(std::chrono::milliseconds timeout,
                 const std::function<void(std::function<void(const error_code&)>)>& start) {
    error_code result = asio::error::would_block;
    stream.expires_after(timeout);
    start([&result](const error_code& ec) { result = ec; });
    io.restart();
    io.run();
    return result;
  }
};

raw_connection::raw_connection(std::uint16_t port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<impl>()) {
  const auto ec = impl_->run(timeout, [&](auto done) {
    impl_->stream.async_connect(loopback(port), [done](const error_code& e) { done(e); });
  });
  impl_->connected = !ec;
}

raw_connection::~raw_connection() = default;

bool raw_connection::connected() const { return impl_->connected; }

bool raw_connection::send(std::string_view bytes, std::chrono::milliseconds timeout) {
  const auto ec = impl_->run(timeout, [&](auto done) {
    asio::async_write(impl_->stream, asio::buffer(bytes.data(), bytes.size()),
                      [done](const error_code& e, std::size_t) { done(e); });
  });
  return !ec;
}

raw_connection::read_result raw_connection::read_until_close(std::chrono::milliseconds timeout) {
  read_result r;
  r.data = beast::buffers_to_string(impl_->buffer.data());
  impl_->buffer.consume(impl_->buffer.size());
  std::array<char, 4096> chunk{};
  error_code final_error;
  std::function<void()> next = [&] {
    impl_->stream.async_read_some(asio::buffer(chunk), [&](const error_code& ec, std::size_t n) {
      r.data.append(chunk.data(), n);
      if (ec) {
        final_error = ec;
        return;
      }
      next();
    });
  };
  impl_->stream.expires_after(timeout);
  next();
  impl_->io.restart();
  impl_->io.run();
  r.closed = final_error && final_error != beast::error::timeout;
  return r;
}

http_reply raw_connection::read_response(std::chrono::milliseconds timeout) {
  http::response_parser<http::string_body> parser;
  parser.body_limit(boost::none);
  const auto ec = impl_->run(timeout, [&](auto done) {
    http::async_read(impl_->stream, impl_->buffer, parser,
                     [done](const error_code& e, std::size_t) { done(e); });
  });
  if (ec) return {};
  return to_reply(parser.release());
}

}  // namespace alertrouter::integration
