#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace alertrouter::routing {

// What the webhook scanner needs of a JSON text before reading its grammar: where each token
// starts (simdjson's first stage: every structural character, every string's opening quote, the
// first byte of every other scalar), and where each escape's backslash is (json_escapes).
//
// Alertmanager resends a group's notification every repeat_interval and whenever the group
// changes, and its bodies for an unchanged group are the same bytes (firing alerts' endsAt is
// zeroed, alerts are sorted, Go writes map keys in order); when they differ it is mostly inside
// strings: an annotation templating the alert's {{ $value }}, an alert's status, or another
// cluster peer's externalURL. The index of such a body follows from the index of the last one
// without running the first stage again.

// Derives the index of `after` from that of `before` when the two texts differ only inside
// strings: each string of `before` that differs is replaced by one that is valid as the first
// stage and json_escapes read strings (closed, no unescaped control character, valid UTF-8,
// escapes as json_escapes::find accepts them), and everything between strings is the same.
//
// `before_tokens` holds the `token_count` token offsets the first stage found in `before`,
// followed by before.size(); `before_escapes` what json_escapes::find found in it (ending with
// json_escapes::kEnd). On success, writes `after`'s token offsets to `tokens_out` followed by
// after.size(), after.size() and 0 (as the first stage ends its list; room for token_count + 3),
// sets `escapes_out` to `after`'s escapes ending with kEnd and returns true: exactly what the
// first stage and json_escapes::find would have found in `after`; `changed` lists the differing
// strings by token number (ascending). Returns false, with the outputs unspecified, when the
// texts differ elsewhere,
// when a differing string would be rejected, or when more than about a quarter of `after` lies in
// differing strings (the first stage is faster then). Both texts shorter than 4 GiB.
bool derive_json_index(std::string_view before, const std::uint32_t* before_tokens,
                       std::size_t token_count, const std::uint32_t* before_escapes,
                       std::string_view after, std::uint32_t* tokens_out,
                       std::vector<std::uint32_t>& escapes_out,
                       std::vector<std::uint32_t>& changed);

// The indexes of recent texts, kept to derive the next ones' from: per thread (not
// synchronised), bounded in entries and in bytes. Texts are found by a key of their group key
// (key_of); a text found by key is only a candidate, which derive_json_index then compares byte
// for byte.
class json_index_cache {
 public:
  struct entry {
    std::string text;
    std::vector<std::uint32_t> tokens;   // token offsets, then text.size()
    std::vector<std::uint32_t> escapes;  // escape offsets, then json_escapes::kEnd
    std::string extra;                   // the caller's, about the text (attach); may be empty
    // Derivations from this key's texts that did not pay, in a row (see derivation_paid), and
    // how many of the next texts under it to index without trying (the backoff they earned).
    // Kept when a put() stores a new text under the same key.
    std::uint8_t fruitless = 0;
    std::uint8_t skip = 0;
  };

  // At most `max_entries` texts (rounded up to a multiple of kWays) of at most `max_text` bytes
  // each, holding at most `max_bytes` in all (text, tokens and escapes).
  json_index_cache(std::size_t max_entries, std::size_t max_bytes, std::size_t max_text);

  // The key of `text`: a hash of up to 128 bytes from Alertmanager's "groupKey" field on when it
  // is among the last KiB, else of the last 128 bytes.
  static std::uint64_t key_of(std::string_view text);

  // The entry last stored under `key`, or nullptr. Valid until the next put().
  const entry* find(std::uint64_t key);

  // Stores `text` with its index under `key` (`tokens`: token_count offsets then text.size()),
  // replacing the entry of the same key, else the least recently used of its set; then, while
  // more than max_bytes are held, drops other entries in slot order (round robin). Texts longer
  // than max_text are not stored. Allocation failure drops the entry instead of throwing.
  // Returns the entry stored, or nullptr if none was.
  const entry* put(std::uint64_t key, std::string_view text, const std::uint32_t* tokens,
                   std::size_t token_count, const std::vector<std::uint32_t>& escapes);

  // The same, taking `tokens` (token offsets then text.size()) and `escapes` by swapping them
  // with the vectors of the entry replaced, which the caller gets back (emptied or not) to reuse.
  const entry* put(std::uint64_t key, std::string_view text, std::vector<std::uint32_t>& tokens,
                   std::vector<std::uint32_t>& escapes);

  // Keeps `extra` with entry `e` (returned by find or put since the last put), replacing what
  // it had; a put() replacing the entry drops it. Nothing is kept if it would take the cache
  // over max_bytes.
  void attach(const entry* e, std::string_view extra);

  // Records whether deriving from entry `e` paid (the same bytes, or a derived index whose
  // decoding then used `extra`) or not (derive_json_index declined, or the text it derived was
  // decoded afresh anyway): after n fruitless ones in a row, the next 2^n - 1 (at most 63) texts
  // under its key should be indexed without trying (take_skip).
  void derivation_paid(const entry* e, bool paid);
  // Whether to index the next text under `e`'s key without deriving from `e`, counting it.
  bool take_skip(const entry* e);

  std::size_t entries() const;
  // Bytes allocated for the entries' text, tokens, escapes and extra.
  std::size_t bytes() const { return bytes_; }

  static constexpr std::size_t kWays = 8;

 private:
  static std::size_t footprint(const entry& e);
  // The slot `key`'s text goes to (see put), with its bytes no longer counted; nullptr if the
  // slots cannot be allocated.
  entry* slot_for(std::uint64_t key);
  // slot_for(key) with `text` stored in it (and its extra emptied); nullptr if `text` is too
  // long or memory runs out.
  entry* take_slot(std::uint64_t key, std::string_view text);
  // Empties `e`, a slot taken by slot_for() but not stored().
  void drop(entry& e);
  // Counts `e`, stored under `key`, then keeps to max_bytes: false if `e` itself had to go.
  bool stored(entry& e, std::uint64_t key);
  void release(std::size_t slot);

  const std::size_t max_bytes_;
  const std::size_t max_text_;
  const std::size_t sets_;  // a power of two
  // sets_ * kWays slots, a set's kWays next to each other, allocated on the first put(). The
  // keys and use stamps of a set fill a cache line each, apart from the entries, so that a
  // lookup reads two lines, not one per way.
  std::unique_ptr<entry[]> slots_;
  std::unique_ptr<std::uint64_t[]> keys_;
  std::unique_ptr<std::uint64_t[]> last_used_;  // 0: an empty slot
  std::size_t bytes_ = 0;
  std::uint64_t clock_ = 0;     // stamps last_used_
  std::size_t evict_next_ = 0;  // the next slot the byte bound evicts
};

}  // namespace alertrouter::routing
