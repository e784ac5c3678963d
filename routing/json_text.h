#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include "routing/alert.h"

namespace alertrouter::routing {

// A JSON text written front to back, for the documents written for every incident and
// notification (store rows, notification bodies), where building a DOM first cost a node and a
// copy per value. Strings are escaped as Boost.JSON's serializer does: the quote, the backslash
// and control characters (\b \f \n \r \t by name, the rest as \u00XX); every other byte,
// invalid UTF-8 included, as it is. The caller writes a well-formed document: keys inside objects,
// values after keys or items, each container closed.
//
//   json_text out(256);
//   out.key("a", '{').integer(1);          // {"a":1
//   out.key("b").open('[');                 // ,"b":[
//   out.item().string("x");                 // "x"
//   out.close(']').close('}');              // ]}
class json_text {
 public:
  explicit json_text(std::size_t reserve) { out_.reserve(reserve); }

  // `"name":`, after a comma unless it opens the object (`open`, e.g. '{', is written first).
  json_text& key(std::string_view name, char open = '\0') {
    if (open != '\0') {
      out_ += open;
      first_ = true;
    }
    item();
    put_string(name);
    out_ += ':';
    return *this;
  }
  // Before an array's element: a comma unless it is the first.
  json_text& item() {
    if (!first_) out_ += ',';
    first_ = false;
    return *this;
  }
  json_text& open(char c) {
    out_ += c;
    first_ = true;
    return *this;
  }
  json_text& close(char c) {
    out_ += c;
    first_ = false;
    return *this;
  }
  json_text& string(std::string_view s) {
    put_string(s);
    first_ = false;
    return *this;
  }
  template <class Int>
  json_text& integer(Int v) {
    char digits[24];
    const auto r = std::to_chars(digits, digits + sizeof digits, v);
    out_.append(digits, r.ptr);
    first_ = false;
    return *this;
  }
  json_text& boolean(bool b) {
    out_ += b ? "true" : "false";
    first_ = false;
    return *this;
  }
  json_text& labels(const routing::label_set& set) {
    open('{');
    for (auto [name, value] : set) key(name).string(value);
    return close('}');
  }

  std::string text() && { return std::move(out_); }

 private:
  void put_string(std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out_ += '"';
    std::size_t run = 0;  // the first byte not written yet
    for (std::size_t i = 0; i < s.size(); ++i) {
      // Eight bytes at a time while none of them needs an escape (the common case by far).
      while (i + 8 <= s.size() && !needs_escape(load8(s.data() + i))) i += 8;
      if (i >= s.size()) break;
      const auto c = static_cast<unsigned char>(s[i]);
      if (c >= 0x20 && c != '"' && c != '\\') continue;
      out_.append(s.data() + run, i - run);
      run = i + 1;
      switch (c) {
        case '"':
          out_ += "\\\"";
          break;
        case '\\':
          out_ += "\\\\";
          break;
        case '\b':
          out_ += "\\b";
          break;
        case '\f':
          out_ += "\\f";
          break;
        case '\n':
          out_ += "\\n";
          break;
        case '\r':
          out_ += "\\r";
          break;
        case '\t':
          out_ += "\\t";
          break;
        default: {
          const char u[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
          out_.append(u, sizeof u);
        }
      }
    }
    out_.append(s.data() + run, s.size() - run);
    out_ += '"';
  }

  static std::uint64_t load8(const char* p) {
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    return w;
  }
  // Whether any byte of `w` is below 0x20, a quote or a backslash (bit tricks on eight bytes at
  // once: a byte's high bit is set in the result where it matches, exactly).
  static bool needs_escape(std::uint64_t w) {
    constexpr std::uint64_t kOnes = 0x0101010101010101ull;
    constexpr std::uint64_t kHigh = 0x8080808080808080ull;
    auto zero_byte = [](std::uint64_t v) { return (v - kOnes) & ~v & kHigh; };
    const std::uint64_t control = (w - kOnes * 0x20) & ~w & kHigh;  // bytes < 0x20
    return (control | zero_byte(w ^ (kOnes * '"')) | zero_byte(w ^ (kOnes * '\\'))) != 0;
  }

  std::string out_;
  bool first_ = true;  // nothing written yet in the innermost object or array
};

}  // namespace alertrouter::routing
