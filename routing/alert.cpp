#include "routing/alert.h"

#include <algorithm>
#include <array>
#include <functional>
#include <limits>
#include <stdexcept>

namespace alertrouter::routing {
namespace {

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

// a < b, deciding on the first byte when it differs (as it usually does between label names)
// without a call to memcmp. std::string_view orders bytes as unsigned char.
bool name_before(std::string_view a, std::string_view b) {
  if (!a.empty() && !b.empty() && a[0] != b[0]) {
    return static_cast<unsigned char>(a[0]) < static_cast<unsigned char>(b[0]);
  }
  return a < b;
}

constexpr std::size_t kMaxText = std::numeric_limits<std::uint32_t>::max();

}  // namespace

void label_set::builder::grow(std::size_t n) {
  if (n > kMaxText - used_) throw std::length_error("label set larger than 4 GiB");
  buf_.resize(std::max(used_ + n, std::min(2 * buf_.size(), kMaxText)));
}

label_set label_set::builder::build() && {
  label_set out;
  buf_.resize(used_);  // shrinking keeps the capacity: the spare bytes stay for set()
  // A reserve far above what came (a caller's guess gone wrong) is not kept for the set's life.
  if (buf_.capacity() - used_ > used_ / 4 + 64) buf_.shrink_to_fit();
  out.buf_ = std::move(buf_);
  out.entries_ = std::move(entries_);
  // Alertmanager marshals maps with sorted keys, so the common case is already sorted and unique:
  // checked as labels were added, nothing to move.
  if (sorted_) return out;

  auto& entries = out.entries_;
  const char* data = out.buf_.data();
  const auto name = [data](const entry& e) {
    return std::string_view(data + e.name_off, e.name_len);
  };
  std::stable_sort(entries.begin(), entries.end(), [&name](const entry& a, const entry& b) {
    return name_before(name(a), name(b));
  });
  // Keep the last of each run of equal names: stable_sort kept input order within a run. The
  // text of dropped duplicates stays in the buffer, unreferenced.
  auto keep = entries.begin();
  for (auto it = entries.begin(); it != entries.end();) {
    auto run_end = it + 1;
    while (run_end != entries.end() && name(*run_end) == name(*it)) ++run_end;
    *keep++ = *(run_end - 1);
    it = run_end;
  }
  entries.erase(keep, entries.end());
  return out;
}

label_set::label_set(const std::vector<label>& labels) {
  builder b;
  std::size_t bytes = 0;
  for (const auto& [name, value] : labels) bytes += name.size() + value.size();
  b.reserve(labels.size(), bytes);
  for (const auto& [name, value] : labels) b.add(name, value);
  *this = std::move(b).build();
}

label_set::label_set(std::initializer_list<label> labels) {
  builder b;
  std::size_t bytes = 0;
  for (const auto& [name, value] : labels) bytes += name.size() + value.size();
  b.reserve(labels.size(), bytes);
  for (const auto& [name, value] : labels) b.add(name, value);
  *this = std::move(b).build();
}

std::vector<label_set::entry>::const_iterator label_set::find(std::string_view name) const {
  return std::lower_bound(
      entries_.begin(), entries_.end(), name,
      [this](const entry& e, std::string_view n) { return name_before(name_of(e), n); });
}

std::string_view label_set::get(std::string_view name) const {
  const auto it = find(name);
  if (it != entries_.end() && name_of(*it) == name) return value_of(*it);
  return {};
}

bool label_set::contains(std::string_view name) const {
  const auto it = find(name);
  return it != entries_.end() && name_of(*it) == name;
}

void label_set::reserve_text(std::size_t extra) {
  if (extra <= buf_.capacity() - buf_.size()) return;
  // The buffer must grow anyway: copy only the text entries refer to (replaced values and
  // dropped duplicates are left behind), so repeated set() calls cannot grow it without bound.
  std::size_t live = 0;
  for (const entry& e : entries_) live += std::size_t{e.name_len} + e.value_len;
  if (extra > kMaxText - live) throw std::length_error("label set larger than 4 GiB");
  // Room to spare, so that labels added one at a time do not copy the text each time.
  const std::size_t want = live + extra;
  std::string text;
  text.reserve(want + std::min(want / 2, kMaxText - want));
  for (entry& e : entries_) {
    const std::size_t at = text.size();
    text.append(buf_, e.name_off, e.name_len);
    text.append(buf_, e.value_off, e.value_len);
    e.name_off = static_cast<std::uint32_t>(at);
    e.value_off = static_cast<std::uint32_t>(at + e.name_len);
  }
  buf_ = std::move(text);
}

bool label_set::aliases(std::string_view s) const {
  const std::less<const char*> less;
  return !s.empty() && !less(s.data(), buf_.data()) && less(s.data(), buf_.data() + buf_.size());
}

void label_set::set(std::string_view name, std::string_view value) {
  if (aliases(name) || aliases(value)) {
    // Text from this set (e.g. set(a, get(b))): the buffer may move under it.
    const std::string n(name), v(value);
    set(n, v);
    return;
  }
  const auto index = static_cast<std::size_t>(find(name) - entries_.begin());
  if (index < entries_.size() && name_of(entries_[index]) == name) {
    entry& e = entries_[index];
    if (value.size() > e.value_len) {
      reserve_text(value.size());  // may move text, but keeps entries where they are
      e.value_off = static_cast<std::uint32_t>(buf_.size());
      buf_.append(value);
    } else {
      buf_.replace(e.value_off, value.size(), value);  // where the old value was
    }
    e.value_len = static_cast<std::uint32_t>(value.size());
    return;
  }
  reserve_text(name.size() + value.size());
  const std::size_t at = buf_.size();
  const entry e{static_cast<std::uint32_t>(at), static_cast<std::uint32_t>(name.size()),
                static_cast<std::uint32_t>(at + name.size()),
                static_cast<std::uint32_t>(value.size())};
  buf_.append(name);
  buf_.append(value);
  entries_.insert(entries_.begin() + static_cast<std::ptrdiff_t>(index), e);
}

bool operator==(const label_set& a, const label_set& b) {
  if (a.entries_.size() != b.entries_.size()) return false;
  for (std::size_t i = 0; i < a.entries_.size(); ++i) {
    if (a.name_of(a.entries_[i]) != b.name_of(b.entries_[i]) ||
        a.value_of(a.entries_[i]) != b.value_of(b.entries_[i])) {
      return false;
    }
  }
  return true;
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

namespace {

// Hex digit values, 0xFF for every other byte: one load per digit instead of three range tests.
constexpr std::array<std::uint8_t, 256> kHexValue = [] {
  std::array<std::uint8_t, 256> t{};
  t.fill(0xFF);
  for (std::size_t c = 0; c < 10; ++c) t['0' + c] = static_cast<std::uint8_t>(c);
  for (std::size_t c = 0; c < 6; ++c) {
    t['a' + c] = static_cast<std::uint8_t>(10 + c);
    t['A' + c] = static_cast<std::uint8_t>(10 + c);
  }
  return t;
}();

}  // namespace

std::optional<fingerprint> parse_fingerprint(std::string_view hex) {
  if (hex.size() == 16) {
    // Alertmanager's, always 16 digits: each digit's place is known, so the digits are combined
    // independently rather than through a chain of shifts.
    std::uint64_t v = 0;
    std::uint8_t bad = 0;
    for (std::size_t i = 0; i < 16; ++i) {
      const std::uint8_t digit = kHexValue[static_cast<unsigned char>(hex[i])];
      bad |= digit;
      v |= std::uint64_t{digit & 0x0Fu} << (60 - 4 * i);
    }
    if (bad & 0x80) return std::nullopt;
    return fingerprint{v};
  }
  if (hex.empty() || hex.size() > 16) return std::nullopt;
  std::uint64_t v = 0;
  std::uint8_t bad = 0;
  for (const char c : hex) {
    const std::uint8_t digit = kHexValue[static_cast<unsigned char>(c)];
    bad |= digit;  // only 0xFF has bit 7 set
    v = (v << 4) | (digit & 0x0F);
  }
  if (bad & 0x80) return std::nullopt;
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
