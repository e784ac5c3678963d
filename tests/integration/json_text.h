#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>

namespace alertrouter::integration {

// The string member `key` of the JSON object `v`; empty when `v` is not an object or the member
// is absent or not a string. Pure; for assertions on recorded bodies.
inline std::string json_string(const boost::json::value& v, std::string_view key) {
  if (!v.is_object()) return {};
  const auto* p = v.as_object().if_contains(key);
  return p && p->is_string() ? std::string(p->as_string()) : std::string();
}

}  // namespace alertrouter::integration
