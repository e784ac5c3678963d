#pragma once

#include <algorithm>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "routing/time.h"

namespace alertrouter::routing {

// A set of labels (or annotations), kept sorted by name with unique names so that lookups are a
// binary search and the fingerprint needs no sorting. Value type; not thread-safe to mutate.
//
// Compact: all names and values live in one string buffer and a small vector of entries holds
// their offsets, so a set costs two allocations however many labels it has. Iteration yields
// std::pair<std::string_view, std::string_view> by value; the views stay valid until the set is
// next mutated, moved from or destroyed.
class label_set {
 public:
  using label = std::pair<std::string, std::string>;
  using value_type = std::pair<std::string_view, std::string_view>;

 private:
  struct entry {
    std::uint32_t name_off;
    std::uint32_t name_len;
    std::uint32_t value_off;
    std::uint32_t value_len;
  };

 public:
  // Random access over the labels in name order; dereferences to a value_type (not a reference).
  class const_iterator {
   public:
    using iterator_concept = std::random_access_iterator_tag;
    using iterator_category = std::input_iterator_tag;  // operator* returns by value
    using value_type = label_set::value_type;
    using difference_type = std::ptrdiff_t;
    using reference = value_type;
    using pointer = void;

    const_iterator() = default;

    value_type operator*() const {
      return {std::string_view(data_ + e_->name_off, e_->name_len),
              std::string_view(data_ + e_->value_off, e_->value_len)};
    }
    value_type operator[](difference_type n) const { return *(*this + n); }

    const_iterator& operator++() {
      ++e_;
      return *this;
    }
    const_iterator operator++(int) {
      const_iterator t = *this;
      ++e_;
      return t;
    }
    const_iterator& operator--() {
      --e_;
      return *this;
    }
    const_iterator operator--(int) {
      const_iterator t = *this;
      --e_;
      return t;
    }
    const_iterator& operator+=(difference_type n) {
      e_ += n;
      return *this;
    }
    const_iterator& operator-=(difference_type n) {
      e_ -= n;
      return *this;
    }
    friend const_iterator operator+(const_iterator it, difference_type n) { return it += n; }
    friend const_iterator operator+(difference_type n, const_iterator it) { return it += n; }
    friend const_iterator operator-(const_iterator it, difference_type n) { return it -= n; }
    friend difference_type operator-(const const_iterator& a, const const_iterator& b) {
      return a.e_ - b.e_;
    }
    friend bool operator==(const const_iterator& a, const const_iterator& b) {
      return a.e_ == b.e_;
    }
    friend auto operator<=>(const const_iterator& a, const const_iterator& b) {
      return a.e_ <=> b.e_;
    }

   private:
    friend class label_set;
    const_iterator(const char* data, const entry* e) : data_(data), e_(e) {}

    const char* data_ = nullptr;
    const entry* e_ = nullptr;
  };
  using iterator = const_iterator;

  // Builds a set from labels added one at a time, with one copy of each name and value. Input
  // that is already sorted with unique names (as Alertmanager sends it) is kept as it is;
  // otherwise entries are sorted, and a later duplicate name replaces an earlier one.
  //
  //   label_set::builder b;
  //   b.reserve(count, bytes);
  //   b.add(name, value);
  //   label_set s = std::move(b).build();
  class builder {
   public:
    // Room for `count` labels whose names and values total `bytes`.
    void reserve(std::size_t count, std::size_t bytes) {
      entries_.reserve(count);
      // A hint: text beyond 4 GiB is refused by add() anyway.
      bytes = std::min<std::size_t>(bytes, UINT32_MAX);
      if (bytes > buf_.size()) buf_.resize(bytes);
    }
    // Throws std::length_error if the set's text would exceed 4 GiB.
    void add(std::string_view name, std::string_view value) {
      const std::size_t n = name.size() + value.size();
      if (n > buf_.size() - used_) grow(n);
      char* at = buf_.data() + used_;
      if (!name.empty()) std::memcpy(at, name.data(), name.size());
      if (!value.empty()) std::memcpy(at + name.size(), value.data(), value.size());
      const entry e{static_cast<std::uint32_t>(used_), static_cast<std::uint32_t>(name.size()),
                    static_cast<std::uint32_t>(used_ + name.size()),
                    static_cast<std::uint32_t>(value.size())};
      used_ += n;
      if (sorted_ && !entries_.empty()) check_order(entries_.back(), name);
      entries_.push_back(e);
    }
    label_set build() &&;

   private:
    // Makes room for `n` more bytes of text (used_ + n stays below 4 GiB).
    void grow(std::size_t n);
    // Clears sorted_ unless `name` comes strictly after `last`'s name. Label names mostly
    // differ in their first byte, which decides without a call to memcmp.
    void check_order(const entry& last, std::string_view name) {
      const std::string_view prev(buf_.data() + last.name_off, last.name_len);
      if (!prev.empty() && !name.empty() && prev[0] != name[0]) {
        if (static_cast<unsigned char>(prev[0]) > static_cast<unsigned char>(name[0])) {
          sorted_ = false;
        }
        return;
      }
      if (!(prev < name)) sorted_ = false;
    }

    std::string buf_;       // sized, not just reserved: text is written with memcpy
    std::size_t used_ = 0;  // bytes of buf_ holding text
    std::vector<entry> entries_;
    bool sorted_ = true;  // strictly ascending names so far
  };

  label_set() = default;
  // Takes labels in any order; a later duplicate name replaces an earlier one.
  explicit label_set(const std::vector<label>& labels);
  label_set(std::initializer_list<label> labels);

  // The value of `name`, or "" when absent (Alertmanager: a missing label equals "").
  std::string_view get(std::string_view name) const;
  bool contains(std::string_view name) const;
  // Inserts or replaces. Appends to the buffer and inserts one entry; invalidates views and
  // iterators into the set.
  void set(std::string_view name, std::string_view value);

  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const_iterator begin() const { return {buf_.data(), entries_.data()}; }
  const_iterator end() const { return {buf_.data(), entries_.data() + entries_.size()}; }

  friend bool operator==(const label_set& a, const label_set& b);

 private:
  std::string_view name_of(const entry& e) const { return {buf_.data() + e.name_off, e.name_len}; }
  std::string_view value_of(const entry& e) const {
    return {buf_.data() + e.value_off, e.value_len};
  }
  // The first entry whose name is not less than `name`.
  std::vector<entry>::const_iterator find(std::string_view name) const;
  // Makes room for `extra` more bytes, dropping text no entry refers to if the buffer must grow.
  void reserve_text(std::size_t extra);
  // Whether `s` points into buf_.
  bool aliases(std::string_view s) const;

  std::string buf_;
  std::vector<entry> entries_;
};

// Alertmanager's alert fingerprint: 64-bit FNV-1a over each label name and value, sorted by name,
// each followed by the byte 0xFF.
struct fingerprint {
  std::uint64_t value = 0;
  friend bool operator==(fingerprint, fingerprint) = default;
  friend auto operator<=>(fingerprint, fingerprint) = default;
};

fingerprint compute_fingerprint(const label_set& labels);
// 16 lowercase hex digits, as Alertmanager prints it.
std::string to_hex(fingerprint fp);
// Accepts 1 to 16 hex digits (either case). Nullopt otherwise.
std::optional<fingerprint> parse_fingerprint(std::string_view hex);

struct fingerprint_hash {
  std::size_t operator()(fingerprint fp) const noexcept {
    // FNV output is already well mixed.
    return static_cast<std::size_t>(fp.value);
  }
};

enum class alert_status { firing, resolved };
std::string_view to_string(alert_status s);

// One alert as Alertmanager's webhook (version 4) carries it.
struct alert {
  alert_status status = alert_status::firing;
  label_set labels;
  label_set annotations;
  timestamp starts_at{};
  timestamp ends_at{};
  std::string generator_url;
  fingerprint fp;  // from the payload when present, else compute_fingerprint(labels)
  // True when the decoder was told to leave out `annotations` and `generator_url` (a repeat its
  // caller discards; see decode_webhook's detail_filter): they are empty, not absent.
  bool details_omitted = false;
  // True when the decoder was also told to leave out `labels` (a repeat of a known incident,
  // whose ownership and routes the incident already holds): they are empty. Implies
  // details_omitted.
  bool labels_omitted = false;

  friend bool operator==(const alert&, const alert&) = default;
};

}  // namespace alertrouter::routing
