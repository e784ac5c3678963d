#include "routing/json_escapes.h"

#include <cstddef>
#include <cstring>

namespace alertrouter::routing {

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::size_t valid_escape_length(std::string_view text, std::size_t at) {
  if (at + 1 >= text.size()) return 0;
  switch (text[at + 1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
      return 2;
    case 'u': {
      if (at + 6 > text.size()) return 0;
      std::uint32_t cp = 0;
      for (std::size_t i = 2; i < 6; ++i) {
        const int digit = hex_digit(text[at + i]);
        if (digit < 0) return 0;
        cp = (cp << 4) | static_cast<std::uint32_t>(digit);
      }
      return cp >= 0xD800 && cp <= 0xDFFF ? 0 : 6;
    }
    default:
      return 0;
  }
}

bool json_escapes::find(std::string_view text) {
  offsets_.clear();
  // glibc's memchr is vectorised for each CPU (AVX-512 where there is one): faster here than a
  // pass of our own building a bit mask per block with SSE2, on bodies with a handful of
  // backslashes (Go escapes `&` in every generatorURL, the quotes of every groupKey).
  for (std::size_t at = 0; at < text.size();) {
    const void* found = std::memchr(text.data() + at, '\\', text.size() - at);
    if (found == nullptr) break;
    at = static_cast<std::size_t>(static_cast<const char*>(found) - text.data());
    const std::size_t length = valid_escape_length(text, at);
    if (length == 0) return false;
    offsets_.push_back(static_cast<std::uint32_t>(at));
    at += length;  // a backslash inside this escape is escaped
  }
  offsets_.push_back(kEnd);
  return true;
}

char* put_unescaped(const char* p, char* dst) {
  switch (p[1]) {
    case 'b':
      *dst++ = '\b';
      return dst;
    case 'f':
      *dst++ = '\f';
      return dst;
    case 'n':
      *dst++ = '\n';
      return dst;
    case 'r':
      *dst++ = '\r';
      return dst;
    case 't':
      *dst++ = '\t';
      return dst;
    case 'u':
      break;
    default:  // " \ /
      *dst++ = p[1];
      return dst;
  }
  std::uint32_t cp = 0;
  for (int i = 2; i < 6; ++i) cp = (cp << 4) | static_cast<std::uint32_t>(hex_digit(p[i]));
  if (cp < 0x80) {
    *dst++ = static_cast<char>(cp);
  } else if (cp < 0x800) {
    *dst++ = static_cast<char>(0xC0 | (cp >> 6));
    *dst++ = static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *dst++ = static_cast<char>(0xE0 | (cp >> 12));
    *dst++ = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *dst++ = static_cast<char>(0x80 | (cp & 0x3F));
  }
  return dst;
}

}  // namespace alertrouter::routing
