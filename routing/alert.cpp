#include "routing/alert.h"

#include <algorithm>

namespace alertrouter::routing {
namespace {

struct name_less {
  bool operator()(const label_set::label& a, const label_set::label& b) const {
    return a.first < b.first;
  }
  bool operator()(const label_set::label& a, std::string_view b) const { return a.first < b; }
};

constexpr std::uint64_t kFnvOffset = 14695981039346656037ULL;
constexpr std::uint64_t kFnvPrime = 1099511628211ULL;
// Cannot occur in UTF-8, so "a"+"bc" and "ab"+"c" hash differently (prometheus/common's
// SeparatorByte).
constexpr unsigned char kSeparator = 0xFF;

std::uint64_t fnv1a(std::uint64_t h, std::string_view bytes) {
  for (const char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= kFnvPrime;
  }
  return h;
}

std::uint64_t fnv1a_byte(std::uint64_t h, unsigned char b) { return (h ^ b) * kFnvPrime; }

// a.first < b.first, deciding on the first byte when it differs (as it usually does between
// label names) without a call to memcmp. std::string orders bytes as unsigned char.
bool name_before(const label_set::label& a, const label_set::label& b) {
  if (!a.first.empty() && !b.first.empty() && a.first[0] != b.first[0]) {
    return static_cast<unsigned char>(a.first[0]) < static_cast<unsigned char>(b.first[0]);
  }
  return a.first < b.first;
}

}  // namespace

label_set::label_set(std::vector<label> labels) : labels_(std::move(labels)) {
  // Alertmanager marshals maps with sorted keys, so the common case is already sorted and unique:
  // one pass to check, nothing to move.
  const auto strictly_sorted =
      std::adjacent_find(labels_.begin(), labels_.end(),
                         [](const label& a, const label& b) { return !name_before(a, b); });
  if (strictly_sorted == labels_.end()) return;

  std::stable_sort(labels_.begin(), labels_.end(), name_less{});
  // Keep the last of each run of equal names: stable_sort kept input order within a run.
  auto out = labels_.begin();
  for (auto it = labels_.begin(); it != labels_.end();) {
    auto run_end = it + 1;
    while (run_end != labels_.end() && run_end->first == it->first) ++run_end;
    if (out != run_end - 1) *out = std::move(*(run_end - 1));
    ++out;
    it = run_end;
  }
  labels_.erase(out, labels_.end());
}

std::string_view label_set::get(std::string_view name) const {
  const auto it = std::lower_bound(labels_.begin(), labels_.end(), name, name_less{});
  if (it != labels_.end() && it->first == name) return it->second;
  return {};
}

bool label_set::contains(std::string_view name) const {
  const auto it = std::lower_bound(labels_.begin(), labels_.end(), name, name_less{});
  return it != labels_.end() && it->first == name;
}

void label_set::set(std::string_view name, std::string_view value) {
  const auto it = std::lower_bound(labels_.begin(), labels_.end(), name, name_less{});
  if (it != labels_.end() && it->first == name) {
    it->second.assign(value);
  } else {
    labels_.emplace(it, std::string(name), std::string(value));
  }
}

fingerprint compute_fingerprint(const label_set& labels) {
  std::uint64_t h = kFnvOffset;
  for (const auto& [name, value] : labels) {
    h = fnv1a_byte(fnv1a(h, name), kSeparator);
    h = fnv1a_byte(fnv1a(h, value), kSeparator);
  }
  return fingerprint{h};
}

std::string to_hex(fingerprint fp) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(16, '0');
  std::uint64_t v = fp.value;
  for (std::size_t i = 16; i-- > 0;) {
    out[i] = kDigits[v & 0xF];
    v >>= 4;
  }
  return out;
}

std::optional<fingerprint> parse_fingerprint(std::string_view hex) {
  if (hex.empty() || hex.size() > 16) return std::nullopt;
  std::uint64_t v = 0;
  for (const char c : hex) {
    unsigned digit = 0;
    if (c >= '0' && c <= '9') {
      digit = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<unsigned>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      digit = static_cast<unsigned>(c - 'A' + 10);
    } else {
      return std::nullopt;
    }
    v = (v << 4) | digit;
  }
  return fingerprint{v};
}

std::string_view to_string(alert_status s) {
  switch (s) {
    case alert_status::firing:
      return "firing";
    case alert_status::resolved:
      return "resolved";
  }
  return "firing";
}

}  // namespace alertrouter::routing
