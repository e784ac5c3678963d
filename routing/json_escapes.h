#pragma once

#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

namespace alertrouter::routing {

// Where a JSON text's escape sequences are, found in one pass over the whole text, for the
// webhook scanner: with every escape checked up front, a string needs no check of its own, and
// only the few strings holding one are unescaped.
//
// Every backslash that is not itself escaped starts an escape, read left to right across the
// whole text as a JSON parser reads them string by string (a string never ends inside an
// escape: the quote after a backslash is escaped). A backslash outside any string is read the
// same way; such a text is not valid JSON, and its reader must reject it on other grounds.
class json_escapes {
 public:
  // Past the last escape in offsets(): larger than any offset.
  static constexpr std::uint32_t kEnd = std::numeric_limits<std::uint32_t>::max();

  // Finds and checks the escapes of `text` (shorter than 4 GiB). True when each is one of \"
  // \\ \/ \b \f \n \r \t, or \u and four hex digits naming a code point outside the UTF-16
  // surrogates (U+D800..U+DFFF, which the caller leaves to a full parser). False at the first
  // other one; offsets() is then unspecified. Replaces what the last call found, keeping the
  // memory.
  bool find(std::string_view text);

  // The offset of each escape's backslash, ascending, then kEnd.
  const std::vector<std::uint32_t>& offsets() const { return offsets_; }
  // The same, for derive_json_index to fill in from a recent text's (json_index_cache.h).
  std::vector<std::uint32_t>& mutable_offsets() { return offsets_; }

 private:
  std::vector<std::uint32_t> offsets_;
};

// The length of the escape whose backslash is at text[at] if find() would accept it (6 for \uXXXX,
// else 2), or 0.
std::size_t valid_escape_length(std::string_view text, std::size_t at);

// The code point of the escape at `p` (after the backslash: `u` and four hex digits, checked by
// json_escapes::find), written to `dst` as UTF-8; returns the end of what it wrote, at most 3
// bytes. For every other escape, the one byte it stands for.
char* put_unescaped(const char* p, char* dst);

// How many bytes of text the escape at `p` (its backslash) spans: 6 for \uXXXX, else 2.
inline std::size_t escape_length(const char* p) { return p[1] == 'u' ? 6 : 2; }

}  // namespace alertrouter::routing
