#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "routing/time.h"

namespace alertrouter::routing {

// A set of labels (or annotations), kept sorted by name with unique names so that lookups are a
// binary search and the fingerprint needs no sorting. Value type; not thread-safe to mutate.
class label_set {
 public:
  using label = std::pair<std::string, std::string>;

  label_set() = default;
  // Takes labels in any order; a later duplicate name replaces an earlier one.
  explicit label_set(std::vector<label> labels);
  label_set(std::initializer_list<label> labels) : label_set(std::vector<label>(labels)) {}

  // The value of `name`, or "" when absent (Alertmanager: a missing label equals "").
  std::string_view get(std::string_view name) const;
  bool contains(std::string_view name) const;
  // Inserts or replaces.
  void set(std::string_view name, std::string_view value);

  std::size_t size() const { return labels_.size(); }
  bool empty() const { return labels_.empty(); }
  auto begin() const { return labels_.begin(); }
  auto end() const { return labels_.end(); }

  friend bool operator==(const label_set&, const label_set&) = default;

 private:
  std::vector<label> labels_;
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
};

}  // namespace alertrouter::routing
