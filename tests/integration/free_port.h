#pragma once

#include <cstdint>

namespace alertrouter::integration {

// A TCP port on 127.0.0.1 that was free a moment ago: binds port 0, reads the port the kernel
// chose, closes the socket. For programs that must be told a port up front (Alertmanager's web
// and cluster listeners); a program that can bind port 0 itself and report it is better.
// Ephemeral ports are handed out in sequence, so two concurrent tests do not get the same one in
// practice; another process may still take it before the child binds (the child then fails to
// start and says so in its log). Throws std::runtime_error if no socket can be bound.
std::uint16_t pick_free_port();

}  // namespace alertrouter::integration
