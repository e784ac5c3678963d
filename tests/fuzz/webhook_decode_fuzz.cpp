// libFuzzer target: arbitrary bytes as a webhook body. decode_webhook must never crash or throw,
// and what it accepts must be internally consistent.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <variant>

#include "routing/webhook.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace alertrouter::routing;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const auto result = decode_webhook(body);
  if (const auto* w = std::get_if<webhook>(&result)) {
    for (const alert& a : w->alerts) {
      // Label sets come out sorted by name with unique names.
      bool first = true;
      std::string_view previous;
      for (const auto& [name, value] : a.labels) {
        if (!first && !(previous < name)) std::abort();
        if (a.labels.get(name) != value) std::abort();
        previous = name;
        first = false;
      }
      // A fingerprint survives printing and parsing.
      const auto fp = parse_fingerprint(to_hex(a.fp));
      if (!fp || *fp != a.fp) std::abort();
    }
  } else {
    // Every rejection says something.
    if (std::get<decode_error>(result).message.empty()) std::abort();
  }
  return 0;
}
