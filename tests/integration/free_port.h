#pragma once

#include <cstdint>

namespace alertrouter::integration {

// A port on 127.0.0.1 that was free for both TCP and UDP a moment ago and that this process has
// not handed out before: binds port 0, reads the port the kernel chose, checks that UDP can bind
// it too (Alertmanager's cluster listener takes both), closes the sockets. For programs that
// must be told a port up front (Alertmanager's web and cluster listeners); a program that can
// bind port 0 itself and report it is better.
//
// The kernel may hand the same port to two bind(0) calls in a row once the first socket is
// closed, so one test asking for a web port and a cluster port could get one number twice; the
// process-wide record of ports handed out rules that out. Another process may still take a port
// before the child binds it (the child then fails to start and says so in its log). Throws
// std::runtime_error if no socket can be bound or no new port turns up.
std::uint16_t pick_free_port();

}  // namespace alertrouter::integration
