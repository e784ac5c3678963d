// libFuzzer target: arbitrary bytes as a webhook body. decode_webhook must never crash or throw,
// and what it accepts must be internally consistent. Decoding with a detail_filter (as the daemon
// does) must accept and reject exactly the same bodies, with the same errors, and differ only in
// the details of the alerts the filter declined.
//
// decode_webhook's fast path (detail::scan_webhook, straight from simdjson's first stage on the
// body where it lies) is held to the DOM path (detail::decode_webhook_dom): whatever the scanner
// accepts, the DOM must decode to an equal webhook, with and without a filter, and decode_webhook
// must say exactly what the DOM says. The scanner reads the body where it lies, so it is also fed
// an exact-size heap copy (for ASan) and a copy that ends where an unreadable page begins (for
// simdjson's first stage, which lives in an uninstrumented shared library: an over-read there
// faults instead of going unseen). decode_webhook sees the same bytes several times, and bodies
// close to the last ones, so what it reuses of a recent body (its index, derived or as is, and
// with a filter what its scan read: json_index_cache.h) is held to the DOM as well.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string_view>
#include <variant>

#include "routing/webhook.h"

namespace {

using namespace alertrouter::routing;

// Keeps the details of alerts with an even fingerprint.
class even_filter final : public detail_filter {
 public:
  bool keep_details(fingerprint fp, alert_status, timestamp) const override {
    return fp.value % 2 == 0;
  }
  // Of the others, drops the labels of every second one.
  bool keep_labels(fingerprint fp, alert_status, timestamp) const override {
    return fp.value % 4 != 1;
  }
};

// A readable region followed by an unreadable page: a body copied to end at the boundary
// faults on any read past its end, instrumented or not.
class guarded_region {
 public:
  static constexpr std::size_t kSize = std::size_t{2} << 20;

  guarded_region() {
    page_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    void* p =
        mmap(nullptr, kSize + page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    base_ = static_cast<char*>(p);
    if (mprotect(base_ + kSize, page_, PROT_NONE) != 0) std::abort();
  }

  // `body` copied to end at the unreadable page; nullopt if it does not fit.
  std::optional<std::string_view> place(std::string_view body) {
    if (body.size() > kSize) return std::nullopt;
    char* at = base_ + kSize - body.size();
    if (!body.empty()) std::memcpy(at, body.data(), body.size());
    return std::string_view(at, body.size());
  }

 private:
  char* base_ = nullptr;
  std::size_t page_ = 0;
};

// The scanner against the DOM, for `body` wherever it lies.
void check_paths(std::string_view body, const detail_filter* filter,
                 const std::variant<webhook, decode_error>& dom) {
  if (const auto scanned = detail::scan_webhook(body, filter)) {
    const auto* w = std::get_if<webhook>(&dom);
    if (w == nullptr || *scanned != *w) std::abort();
  }
  if (decode_webhook(body, filter) != dom) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const auto result = decode_webhook(body);
  const even_filter filter;
  const auto filtered = decode_webhook(body, &filter);

  // The fast path against the DOM path, with and without the filter, on the fuzzer's buffer, on
  // an exact-size heap copy, and on a copy that ends at an unreadable page.
  const auto dom = detail::decode_webhook_dom(body, nullptr);
  const auto dom_filtered = detail::decode_webhook_dom(body, &filter);
  if (!(result == dom) || !(filtered == dom_filtered)) std::abort();
  check_paths(body, nullptr, dom);
  check_paths(body, &filter, dom_filtered);
  {
    const std::unique_ptr<char[]> copy(new char[size]);
    if (size != 0) std::memcpy(copy.get(), data, size);
    const std::string_view exact(copy.get(), size);
    check_paths(exact, nullptr, dom);
    check_paths(exact, &filter, dom_filtered);
  }
  {
    static guarded_region region;
    if (const auto guarded = region.place(body)) {
      check_paths(*guarded, nullptr, dom);
      check_paths(*guarded, &filter, dom_filtered);
    }
  }

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
