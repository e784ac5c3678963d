#include "routing/json_index_cache.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <new>

#include "routing/json_escapes.h"

namespace alertrouter::routing {

namespace {

constexpr std::size_t kNotFound = static_cast<std::size_t>(-1);

std::uint64_t load64(const char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// How many leading bytes `a` and `b` (`n` bytes each) have in common. glibc's memcmp (vectorised
// for the CPU) clears equal runs, doubling while they are equal; a run that differs is halved
// down to kRun bytes with memcmp, then searched a word at a time.
std::size_t common_prefix(const char* a, const char* b, std::size_t n) {
  constexpr std::size_t kRun = 128;
  constexpr std::size_t kMaxRun = 4096;
  std::size_t i = 0;
  std::size_t run = kRun;
  while (n - i >= run) {
    if (std::memcmp(a + i, b + i, run) != 0) {
      while (run > kRun) {
        run /= 2;
        if (std::memcmp(a + i, b + i, run) == 0) i += run;
      }
      break;
    }
    i += run;
    run = std::min(run * 2, kMaxRun);
  }
  if constexpr (std::endian::native == std::endian::little) {
    for (; n - i >= 8; i += 8) {
      if (const std::uint64_t x = load64(a + i) ^ load64(b + i); x != 0) {
        return i + static_cast<std::size_t>(std::countr_zero(x) / 8);
      }
    }
  }
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// Whether any of the eight bytes in `x` may need a look of its own in a string: a quote, a
// backslash, a control character or a byte of a multi-byte character. May say yes for a byte
// above one that does (a borrow), never no for one that does.
bool may_be_special(std::uint64_t x) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
  const std::uint64_t quote = x ^ (kOnes * '"');
  const std::uint64_t backslash = x ^ (kOnes * '\\');
  const std::uint64_t zero_or_below =
      ((quote - kOnes) & ~quote) | ((backslash - kOnes) & ~backslash) | (x - kOnes * 0x20);
  return ((zero_or_below | x) & kHigh) != 0;
}

// Whether `s` is valid UTF-8 as simdjson's first stage checks it (shortest forms only, no
// surrogates, nothing above U+10FFFF).
bool valid_utf8(const unsigned char* s, std::size_t n) {
  const auto continuation = [](unsigned char c) { return (c & 0xC0) == 0x80; };
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
    } else if (c < 0xC2) {
      return false;
    } else if (c < 0xE0) {
      if (n - i < 2 || !continuation(s[i + 1])) return false;
      i += 2;
    } else if (c < 0xF0) {
      if (n - i < 3 || !continuation(s[i + 1]) || !continuation(s[i + 2])) return false;
      if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] > 0x9F)) return false;
      i += 3;
    } else if (c < 0xF5) {
      if (n - i < 4 || !continuation(s[i + 1]) || !continuation(s[i + 2]) ||
          !continuation(s[i + 3])) {
        return false;
      }
      if ((c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] > 0x8F)) return false;
      i += 4;
    } else {
      return false;
    }
  }
  return true;
}

// Reads the string whose opening quote is at text[open] as the first stage and json_escapes read
// it, appending its escapes to `escapes`: the offset of its closing quote, or kNotFound if it is
// not closed, holds a control character or an escape json_escapes rejects, or is not UTF-8.
std::size_t read_string(std::string_view text, std::size_t open,
                        std::vector<std::uint32_t>& escapes) {
  const auto* const bytes = reinterpret_cast<const unsigned char*>(text.data());
  bool ascii = true;
  std::size_t at = open + 1;
  while (true) {
    while (text.size() - at >= 8 && !may_be_special(load64(text.data() + at))) at += 8;
    if (at >= text.size()) return kNotFound;
    const unsigned char c = bytes[at];
    if (c == '"') break;
    if (c == '\\') {
      const std::size_t length = valid_escape_length(text, at);
      if (length == 0) return kNotFound;
      escapes.push_back(static_cast<std::uint32_t>(at));
      at += length;  // its bytes are ASCII: letters, digits, or the escaped character
      continue;
    }
    if (c < 0x20) return kNotFound;
    ascii = ascii && c < 0x80;
    ++at;
  }
  if (!ascii && !valid_utf8(bytes + open + 1, at - open - 1)) return kNotFound;
  return at;
}

// out[k] = from[k] + shift for k in [0, n): offsets past the last differing string. In uint32_t
// arithmetic, which wraps to the right offset for a negative shift and lets the loop vectorise.
void put_shifted(const std::uint32_t* from, std::size_t n, std::int64_t shift, std::uint32_t* out) {
  const auto delta = static_cast<std::uint32_t>(shift);
  for (std::size_t k = 0; k < n; ++k) out[k] = from[k] + delta;
}

}  // namespace

// Why the result is exact: `after` is `before` with some strings' contents replaced, each opening
// and closing where the first stage found quotes. Every such quote is unescaped, so the first
// stage and json_escapes enter and leave each string with the same state in both texts (outside
// any escape, at a character boundary, after a quote), and read everything outside the replaced
// contents alike, only shifted; a string holds no tokens. What is left to check is what the first
// stage and json_escapes check inside a string, which read_string does.
bool derive_json_index(std::string_view before, const std::uint32_t* before_tokens,
                       std::size_t token_count, const std::uint32_t* before_escapes,
                       std::string_view after, std::uint32_t* tokens_out,
                       std::vector<std::uint32_t>& escapes_out,
                       std::vector<std::uint32_t>& changed) {
  escapes_out.clear();
  changed.clear();
  const std::size_t budget = after.size() / 4;
  std::size_t read = 0;    // bytes of `after` read as differing strings
  std::size_t i = 0;       // in `before`; after[i + shift] is the byte that corresponds
  std::int64_t shift = 0;  // after's offsets minus before's, past the last differing string
  std::size_t next = 0;    // the next token to write
  const std::uint32_t* escape = before_escapes;  // the next of before's escapes to write
  // Where before[offset] lies in `after`, past the last differing string.
  const auto shifted = [&shift](std::size_t offset) {
    return static_cast<std::size_t>(static_cast<std::int64_t>(offset) + shift);
  };
  while (true) {
    const std::size_t j = shifted(i);
    const std::size_t n = std::min(before.size() - i, after.size() - j);
    i += common_prefix(before.data() + i, after.data() + j, n);
    if (i == before.size() && shifted(i) == after.size()) break;

    // The texts differ at before[i]: only inside the content of one of before's strings (the
    // token at or before i) may they.
    const std::uint32_t* const token =
        std::upper_bound(before_tokens, before_tokens + token_count, i) - 1;
    if (token < before_tokens) return false;
    const std::size_t open = *token;
    if (before[open] != '"' || open == i) return false;
    std::size_t close = token[1] - 1;  // the last quote before the next token
    while (before[close] != '"') --close;
    if (i > close) return false;

    const auto t = static_cast<std::size_t>(token - before_tokens);
    put_shifted(before_tokens + next, t + 1 - next, shift, tokens_out + next);
    next = t + 1;
    for (; *escape < open; ++escape) {
      escapes_out.push_back(static_cast<std::uint32_t>(shifted(*escape)));
    }
    while (*escape < close) ++escape;  // inside the string, read again below

    const std::size_t open_after = shifted(open);
    const std::size_t close_after = read_string(after, open_after, escapes_out);
    if (close_after == kNotFound) return false;
    read += close_after - open_after;
    if (read > budget) return false;
    changed.push_back(static_cast<std::uint32_t>(t));
    shift = static_cast<std::int64_t>(close_after) - static_cast<std::int64_t>(close);
    i = close;  // both closing quotes: the same byte
  }
  put_shifted(before_tokens + next, token_count - next, shift, tokens_out + next);
  tokens_out[token_count] = static_cast<std::uint32_t>(after.size());
  tokens_out[token_count + 1] = static_cast<std::uint32_t>(after.size());
  tokens_out[token_count + 2] = 0;
  for (; *escape != json_escapes::kEnd; ++escape) {
    escapes_out.push_back(static_cast<std::uint32_t>(shifted(*escape)));
  }
  escapes_out.push_back(json_escapes::kEnd);
  return true;
}

json_index_cache::json_index_cache(std::size_t max_entries, std::size_t max_bytes,
                                   std::size_t max_text)
    : max_bytes_(max_bytes),
      max_text_(max_text),
      sets_(std::bit_ceil(std::max<std::size_t>((max_entries + kWays - 1) / kWays, 1))) {}

std::uint64_t json_index_cache::key_of(std::string_view text) {
  // From Alertmanager's "groupKey" on (it writes the field last but one), else the last bytes:
  // what precedes it changes from resend to resend (annotations, statuses, another peer's
  // externalURL), so it cannot be part of the key.
  constexpr std::size_t kTail = 128;
  constexpr std::size_t kSearch = 1024;
  constexpr std::string_view kField = "\"groupKey\":\"";
  std::string_view tail = text.substr(text.size() - std::min(text.size(), kTail));
  const std::string_view searched = text.substr(text.size() - std::min(text.size(), kSearch));
  for (std::size_t end = searched.size(); end > 0;) {
    const void* k = memrchr(searched.data(), 'K', end);
    if (k == nullptr) break;
    const auto at = static_cast<std::size_t>(static_cast<const char*>(k) - searched.data());
    if (at >= 6 && searched.substr(at - 6, kField.size()) == kField) {
      tail = searched.substr(at - 6, kTail);
      break;
    }
    end = at;
  }
  // FNV-1a, a word at a time, then splitmix64's final mix.
  std::uint64_t h = 0xcbf29ce484222325ULL;
  std::size_t at = 0;
  for (; tail.size() - at >= 8; at += 8) h = (h ^ load64(tail.data() + at)) * 0x100000001b3ULL;
  for (; at < tail.size(); ++at) h = (h ^ static_cast<unsigned char>(tail[at])) * 0x100000001b3ULL;
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

const json_index_cache::entry* json_index_cache::find(std::uint64_t key) {
  if (!slots_) return nullptr;
  const std::size_t first = (key & (sets_ - 1)) * kWays;
  for (std::size_t slot = first; slot < first + kWays; ++slot) {
    if (keys_[slot] == key && last_used_[slot] != 0) {
      last_used_[slot] = ++clock_;
      return &slots_[slot];
    }
  }
  return nullptr;
}

std::size_t json_index_cache::footprint(const entry& e) {
  // A string holds short texts in place, allocating nothing.
  const auto allocated = [](const std::string& s) {
    return s.capacity() > std::string().capacity() ? s.capacity() : 0;
  };
  return allocated(e.text) + allocated(e.extra) +
         (e.tokens.capacity() + e.escapes.capacity()) * sizeof(std::uint32_t);
}

void json_index_cache::release(std::size_t slot) {
  entry& e = slots_[slot];
  bytes_ -= footprint(e);
  // Swapped with empty ones: assigning an empty string keeps the memory it had.
  std::string().swap(e.text);
  std::string().swap(e.extra);
  std::vector<std::uint32_t>().swap(e.tokens);
  std::vector<std::uint32_t>().swap(e.escapes);
  e.fruitless = 0;
  e.skip = 0;
  keys_[slot] = 0;
  last_used_[slot] = 0;
}

json_index_cache::entry* json_index_cache::slot_for(std::uint64_t key) {
  const std::size_t slots = sets_ * kWays;
  if (!slots_) {
    slots_.reset(new (std::nothrow) entry[slots]);
    keys_.reset(new (std::nothrow) std::uint64_t[slots]());
    last_used_.reset(new (std::nothrow) std::uint64_t[slots]());
    if (!slots_ || !keys_ || !last_used_) {
      slots_.reset();
      return nullptr;
    }
  }
  const std::size_t first = (key & (sets_ - 1)) * kWays;
  std::size_t target = first;  // the same key's, else an empty slot, else the least recently used
  for (std::size_t slot = first; slot < first + kWays; ++slot) {
    if (last_used_[slot] != 0 && keys_[slot] == key) {
      target = slot;
      break;
    }
    if (last_used_[slot] < last_used_[target]) target = slot;
  }
  if (keys_[target] != key || last_used_[target] == 0) {  // another key's, or empty
    slots_[target].fruitless = 0;
    slots_[target].skip = 0;
  }
  bytes_ -= footprint(slots_[target]);
  keys_[target] = key;
  last_used_[target] = 0;  // until stored()
  return &slots_[target];
}

bool json_index_cache::stored(entry& e, std::uint64_t key) {
  const auto slot = static_cast<std::size_t>(&e - slots_.get());
  bytes_ += footprint(e);
  keys_[slot] = key;
  last_used_[slot] = ++clock_;
  // Over the byte bound: drop entries in slot order, a cheap stand-in for the oldest, sparing
  // the one just stored.
  const std::size_t slots = sets_ * kWays;
  for (std::size_t scanned = 0; bytes_ > max_bytes_ && scanned < slots; ++scanned) {
    const std::size_t victim = evict_next_;
    evict_next_ = (evict_next_ + 1) % slots;
    if (victim != slot && last_used_[victim] != 0) release(victim);
  }
  if (bytes_ > max_bytes_) {
    release(slot);
    return false;
  }
  return true;
}

json_index_cache::entry* json_index_cache::take_slot(std::uint64_t key, std::string_view text) {
  if (text.size() > max_text_) return nullptr;
  entry* const target = slot_for(key);
  if (target == nullptr) return nullptr;
  try {
    target->extra.clear();
    target->text.assign(text);
  } catch (const std::bad_alloc&) {
    drop(*target);
    return nullptr;
  }
  return target;
}

void json_index_cache::drop(entry& e) {
  bytes_ += footprint(e);  // slot_for() stopped counting it
  release(static_cast<std::size_t>(&e - slots_.get()));
}

const json_index_cache::entry* json_index_cache::put(std::uint64_t key, std::string_view text,
                                                     const std::uint32_t* tokens,
                                                     std::size_t token_count,
                                                     const std::vector<std::uint32_t>& escapes) {
  entry* const target = take_slot(key, text);
  if (target == nullptr) return nullptr;
  try {
    target->tokens.assign(tokens, tokens + token_count + 1);
    target->escapes.assign(escapes.begin(), escapes.end());
  } catch (const std::bad_alloc&) {
    drop(*target);
    return nullptr;
  }
  return stored(*target, key) ? target : nullptr;
}

const json_index_cache::entry* json_index_cache::put(std::uint64_t key, std::string_view text,
                                                     std::vector<std::uint32_t>& tokens,
                                                     std::vector<std::uint32_t>& escapes) {
  entry* const target = take_slot(key, text);
  if (target == nullptr) return nullptr;
  target->tokens.swap(tokens);
  target->escapes.swap(escapes);
  return stored(*target, key) ? target : nullptr;
}

void json_index_cache::attach(const entry* e, std::string_view extra) {
  entry& target = slots_[static_cast<std::size_t>(e - slots_.get())];
  const std::size_t before = footprint(target);
  try {
    target.extra.assign(extra);
  } catch (const std::bad_alloc&) {
    target.extra.clear();
  }
  bytes_ = bytes_ - before + footprint(target);
  if (bytes_ > max_bytes_) {
    bytes_ -= footprint(target);
    std::string().swap(target.extra);
    bytes_ += footprint(target);
  }
}

void json_index_cache::derivation_paid(const entry* e, bool paid) {
  constexpr std::uint8_t kMaxFruitless = 6;  // backoff up to 63 texts
  entry& target = slots_[static_cast<std::size_t>(e - slots_.get())];
  if (paid) {
    target.fruitless = 0;
    target.skip = 0;
    return;
  }
  if (target.fruitless < kMaxFruitless) ++target.fruitless;
  target.skip = static_cast<std::uint8_t>((1u << target.fruitless) - 1);
}

bool json_index_cache::take_skip(const entry* e) {
  entry& target = slots_[static_cast<std::size_t>(e - slots_.get())];
  if (target.skip == 0) return false;
  --target.skip;
  return true;
}

std::size_t json_index_cache::entries() const {
  if (!slots_) return 0;
  return static_cast<std::size_t>(std::count_if(last_used_.get(), last_used_.get() + sets_ * kWays,
                                                [](std::uint64_t used) { return used != 0; }));
}

}  // namespace alertrouter::routing
