// libFuzzer target: arbitrary bytes as a webhook body. decode_webhook must never crash or throw,
// and what it accepts must be internally consistent. Decoding with a detail_filter (as the daemon
// does) must accept and reject exactly the same bodies, with the same errors, and differ only in
// the details of the alerts the filter declined.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <variant>

#include "routing/webhook.h"

namespace {

// Keeps the details of alerts with an even fingerprint.
class even_filter final : public alertrouter::routing::detail_filter {
 public:
  bool keep_details(alertrouter::routing::fingerprint fp, alertrouter::routing::alert_status,
                    alertrouter::routing::timestamp) const override {
    return fp.value % 2 == 0;
  }
  // Of the others, drops the labels of every second one.
  bool keep_labels(alertrouter::routing::fingerprint fp, alertrouter::routing::alert_status,
                   alertrouter::routing::timestamp) const override {
    return fp.value % 4 != 1;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace alertrouter::routing;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const auto result = decode_webhook(body);
  const even_filter filter;
  const auto filtered = decode_webhook(body, &filter);
  if (result.index() != filtered.index()) std::abort();
  if (const auto* e = std::get_if<decode_error>(&result)) {
    const decode_error& f = std::get<decode_error>(filtered);
    if (e->field != f.field || e->message != f.message) std::abort();
  } else {
    const webhook& full = std::get<webhook>(result);
    const webhook& part = std::get<webhook>(filtered);
    if (full.alerts.size() != part.alerts.size()) std::abort();
    for (std::size_t i = 0; i < full.alerts.size(); ++i) {
      const alert& a = full.alerts[i];
      const alert& b = part.alerts[i];
      if (a.fp != b.fp || a.status != b.status || a.starts_at != b.starts_at ||
          a.ends_at != b.ends_at || a.details_omitted || a.labels_omitted) {
        std::abort();
      }
      if (b.labels_omitted) {
        // Only when the filter said so (and the fingerprint came in the body).
        if (!b.labels.empty() || !b.details_omitted || a.fp.value % 4 != 1) std::abort();
      } else if (!(a.labels == b.labels)) {
        std::abort();
      }
      if (b.details_omitted != (a.fp.value % 2 != 0)) std::abort();
      if (!b.details_omitted &&
          (!(a.annotations == b.annotations) || a.generator_url != b.generator_url)) {
        std::abort();
      }
    }
  }
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
