#pragma once

// Test support: runs a task on a single-threaded io_context's thread and waits for its result,
// so a test thread can touch objects that live on that thread (servers, senders).

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <utility>

namespace alertrouter::testing {

// Posts `f` to `io` and returns its result. Throws std::runtime_error if the io thread has not
// run it within `deadline` (the io thread is stuck or not running).
template <class F>
std::invoke_result_t<F> run_on_io(boost::asio::io_context& io, F f,
                                  std::chrono::milliseconds deadline) {
  auto task = std::make_shared<std::packaged_task<std::invoke_result_t<F>()>>(std::move(f));
  auto result = task->get_future();
  boost::asio::post(io, [task] { (*task)(); });
  if (result.wait_for(deadline) != std::future_status::ready) {
    throw std::runtime_error("io thread did not run the task in time");
  }
  return result.get();
}

// Runs `pred` on the io thread, again and again, until it returns true (then true) or
// `deadline` passes (then false). For waiting on something the io thread will do.
template <class Pred>
bool eventually_on_io(boost::asio::io_context& io, Pred pred, std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    if (run_on_io(io, pred, deadline)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

}  // namespace alertrouter::testing
