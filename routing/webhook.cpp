#include "routing/webhook.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "routing/json_escapes.h"
#include "routing/json_index_cache.h"

namespace alertrouter::routing {
namespace {

namespace dom = simdjson::dom;

// Deeper documents are rejected by the parser itself. Alertmanager's bodies are 4 deep.
constexpr std::size_t kMaxDepth = 32;

// Parser buffers start this big and double as bodies grow, up to kRetainedCapacity. They cost
// about 16 bytes per byte of capacity, so a thread keeps at most ~16 MiB (resident only as far
// as bodies have touched it); a larger body gets buffers of its own, freed when it is decoded.
constexpr std::size_t kMinCapacity = std::size_t{16} << 10;
constexpr std::size_t kRetainedCapacity = std::size_t{1} << 20;

constexpr std::size_t kPadding = simdjson::SIMDJSON_PADDING;

// The recent bodies a thread keeps the index of (json_index_cache), bounded by count and bytes.
constexpr std::size_t kIndexCacheEntries = 8192;
constexpr std::size_t kIndexCacheBytes = std::size_t{16} << 20;

// Buffers of the scanner (webhook_scanner below) that outlive one body, so that scanning
// allocates nothing once a thread has seen a body of each size.
struct scan_memory {
  // Strings that had escapes, unescaped; as long as the longest body (unescaping never
  // lengthens a string).
  std::unique_ptr<char[]> strings;
  // The texts of the map being copied into a label set.
  std::vector<std::pair<std::string_view, std::string_view>> map;
  // The last RFC 3339 text parsed for startsAt and endsAt (a group's alerts share their times,
  // and endsAt is Go's zero time until they resolve), copied if short enough.
  struct memo_timestamp {
    std::array<char, 40> text{};
    std::size_t size = 0;  // 0: nothing remembered
    timestamp value{};
  };
  memo_timestamp starts_at, ends_at;
  std::size_t last_alerts = 0;  // alerts in the last body scanned: the next one's likely count
  // Per alert of the body being scanned, what is left to copy once the body has been checked.
  struct pending_alert {
    const std::uint32_t* labels;       // the token opening its last "labels"
    const std::uint32_t* annotations;  // ... its last "annotations", nullptr if null or absent
    const std::uint32_t* url;          // ... its last "generatorURL", nullptr if null or absent
    std::uint32_t labels_tokens;       // how many tokens that "labels" object spans
    std::uint32_t annotations_tokens;  // ... that "annotations" object
    bool has_fingerprint;
  };
  std::vector<pending_alert> pending;
  std::string outline;  // written by webhook_scanner::write_outline
  // Token numbers of the strings whose text the scanner kept in the webhook (root strings, alert
  // statuses, times and fingerprints), ascending: a body differing in one cannot be replayed.
  std::vector<std::uint32_t> kept_strings;
};

// simdjson's DOM parser with its buffers and a padded copy of the input (simdjson's second stage
// reads up to SIMDJSON_PADDING bytes past the end, which a caller's string_view does not
// promise), and the scanner's memory. Reused for every body a thread decodes, so steady-state
// decoding allocates nothing but its result.
class json_reader {
 public:
  // Parses and fully validates `body` (structure, strings, numbers, literals, UTF-8, depth).
  // On success `root` points into this reader, valid until the next parse.
  simdjson::error_code parse(std::string_view body, dom::element& root) {
    if (const auto err = reserve(body.size())) return err;
    std::memcpy(input_.get(), body.data(), body.size());
    return parser_.parse_into_document(doc_, input_.get(), body.size(), false).get(root);
  }

  // Indexes `body` for the scanner: where each token starts (simdjson's first stage, which checks
  // structure, that strings are closed, unescaped control characters and UTF-8 in strings) and
  // where each escape is (json_escapes, which checks them). False when either rejects the body.
  // From the index of a recent body when `body` differs from it only inside strings
  // (json_index_cache), else by running both. Valid until the next call.
  bool index(std::string_view body) {
    key_ = reuse_ ? json_index_cache::key_of(body) : 0;  // unused unless reusing
    source_ = index_source::first_stage;
    entry_ = nullptr;
    changed_.clear();
    if (reuse_ && index_from_recent(body)) return true;
    if (reserve(body.size())) return false;
    // The SIMD kernels' first stage reads nothing past the end (whole blocks while they fit, the
    // rest copied), so they take the body where it lies; the portable fallback kernel reads a
    // byte past a string cut short in a multi-byte character, so it takes the padded copy (the
    // tokens' offsets are the same either way).
    const char* data = body.data();
    if (!stage1_in_place_ && !body.empty()) {
      std::memcpy(input_.get(), body.data(), body.size());
      data = input_.get();
    }
    if (stages().stage1(reinterpret_cast<const std::uint8_t*>(data), body.size(),
                        simdjson::stage1_mode::regular) != simdjson::SUCCESS) {
      return false;
    }
    ++counts_.first_stage;
    tokens_ = stages().structural_indexes.get();
    token_count_ = stages().n_structural_indexes;
    if (!escapes_.find(body)) return false;
    escape_offsets_ = escapes_.offsets().data();
    source_ = index_source::first_stage;
    return true;
  }
  // Offsets of the tokens found by index(), token_count() of them, followed by the body's length.
  const std::uint32_t* tokens() const { return tokens_; }
  std::uint32_t token_count() const { return token_count_; }
  // Offsets of the escapes found by index(), followed by json_escapes::kEnd.
  const std::uint32_t* escapes() const { return escape_offsets_; }

  // What the scanner wrote (webhook_scanner::write_outline) of the recent body the index of the
  // body index() last accepted came from, if it was scanned with a filter; else empty. The two
  // bodies differ in changed_strings(). Valid until remember().
  std::string_view outline() const {
    return source_ == index_source::first_stage || entry_ == nullptr
               ? std::string_view()
               : std::string_view(entry_->extra);
  }
  // The strings, by token number, in which that body differs from the recent one.
  const std::vector<std::uint32_t>& changed_strings() const { return changed_; }
  bool derived() const { return source_ == index_source::derived; }

  // Keeps the index of the body index() last accepted (and the scanner then accepted), to derive
  // the next ones' from, with the scanner's `outline` of it unless that is empty.
  void remember(std::string_view body, std::string_view outline) {
    if (!reuse_) return;
    switch (source_) {
      case index_source::first_stage:
        entry_ = index_cache_.put(key_, body, tokens_, token_count_, escapes_.offsets());
        break;
      case index_source::derived:
        // The derived index moves into the cache; its old one comes back for the next.
        derived_tokens_.resize(token_count_ + 1);
        entry_ = index_cache_.put(key_, body, derived_tokens_, derived_escapes_);
        break;
      case index_source::recent:
        break;
    }
    if (entry_ != nullptr && !outline.empty() && entry_->extra.empty()) {
      index_cache_.attach(entry_, outline);
    }
  }

  // Counts a body decoded from its outline; one derived from a recent body's index paid.
  void replayed() {
    ++counts_.replayed;
    if (source_ == index_source::derived && entry_ != nullptr) {
      index_cache_.derivation_paid(entry_, true);
    }
  }

  // A body derived from a recent one (and decoded with a filter) was then scanned rather than
  // replayed: deriving did not pay for that key (json_index_cache::derivation_paid). Call before
  // remember().
  void derived_but_scanned() {
    if (source_ == index_source::derived && entry_ != nullptr) {
      index_cache_.derivation_paid(entry_, false);
    }
  }

  // Whether index() may start from a recent body's index, and remember() keeps any (by default
  // they do).
  void reuse_indexes(bool on) { reuse_ = on; }
  bool reusing() const { return reuse_; }
  const index_counts& counts() const { return counts_; }

  // simdjson's stages as its DOM parser runs them (the implementation chosen for this CPU).
  simdjson::internal::dom_parser_implementation& stages() { return *parser_.implementation; }
  scan_memory& memory() { return memory_; }

 private:
  bool index_from_recent(std::string_view body) {
    const json_index_cache::entry* const recent = index_cache_.find(key_);
    if (recent == nullptr) return false;
    // The scanner unescapes strings into buffers as long as the body (kept bodies were decoded by
    // this reader, which never shrinks them, so this only checks).
    if (reserve(body.size())) return false;
    if (recent->text == body) {  // the common resend: the same bytes
      index_cache_.derivation_paid(recent, true);
      ++counts_.reused;
      source_ = index_source::recent;
      entry_ = recent;
      tokens_ = recent->tokens.data();
      token_count_ = static_cast<std::uint32_t>(recent->tokens.size() - 1);
      escape_offsets_ = recent->escapes.data();
      return true;
    }
    // Bodies under this key have lately differed from their predecessor too much to be worth
    // deriving (another group sharing the key, or a group whose alerts keep changing).
    if (index_cache_.take_skip(recent)) return false;
    const std::size_t count = recent->tokens.size() - 1;
    derived_tokens_.resize(count + 3);
    if (!derive_json_index(recent->text, recent->tokens.data(), count, recent->escapes.data(), body,
                           derived_tokens_.data(), derived_escapes_, changed_)) {
      changed_.clear();
      index_cache_.derivation_paid(recent, false);
      return false;
    }
    ++counts_.derived;
    entry_ = recent;
    tokens_ = derived_tokens_.data();
    token_count_ = static_cast<std::uint32_t>(count);
    escape_offsets_ = derived_escapes_.data();
    source_ = index_source::derived;
    return true;
  }

  simdjson::error_code reserve(std::size_t size) {
    if (size > capacity_ || capacity_ == 0) return grow(size);
    return simdjson::SUCCESS;
  }

  simdjson::error_code grow(std::size_t needed) {
    std::size_t capacity = std::max(needed, kMinCapacity);
    if (needed <= kRetainedCapacity) {
      capacity = std::max(capacity, std::min(capacity_ * 2, kRetainedCapacity));
    }
    capacity_ = 0;  // until every buffer has been reallocated
    input_.reset(new (std::nothrow) char[capacity + kPadding]());
    memory_.strings.reset(new (std::nothrow) char[capacity]);
    if (!input_ || !memory_.strings) return simdjson::MEMALLOC;
    if (parser_.implementation == nullptr) {
      // As parser_.allocate would, keeping hold of which kernel will run the stages.
      const simdjson::implementation* const kernel = simdjson::get_active_implementation();
      if (const auto err = kernel->create_dom_parser_implementation(capacity, kMaxDepth,
                                                                    parser_.implementation)) {
        return err;
      }
      stage1_in_place_ = stage1_reads_only_input(kernel->name());
    } else if (const auto err = parser_.allocate(capacity, kMaxDepth)) {
      return err;
    }
    if (const auto err = doc_.allocate(capacity)) return err;
    capacity_ = capacity;
    return simdjson::SUCCESS;
  }

  // The kernels whose first stage goes through simdjson's generic block reader, which reads
  // whole blocks only while they lie within the input and copies the rest to a buffer of its
  // own. Any other (the fallback, or a kernel this list predates) is given the padded copy.
  static bool stage1_reads_only_input(std::string_view kernel) {
    return kernel == "icelake" || kernel == "haswell" || kernel == "westmere" ||
           kernel == "arm64" || kernel == "ppc64";
  }

  dom::parser parser_;
  dom::document doc_;
  std::unique_ptr<char[]> input_;
  bool stage1_in_place_ = false;  // whether index() may run stage 1 on the body where it lies
  scan_memory memory_;
  std::size_t capacity_ = 0;  // the longest body all buffers can hold

  // The index of the body index() last took (where it lies: source_).
  json_escapes escapes_;
  const std::uint32_t* tokens_ = nullptr;
  std::uint32_t token_count_ = 0;
  const std::uint32_t* escape_offsets_ = nullptr;
  std::uint64_t key_ = 0;  // json_index_cache::key_of that body
  enum class index_source : std::uint8_t {
    first_stage,  // tokens_ in the first stage's buffer, escapes in escapes_
    recent,       // a recent body's, as is: both in index_cache_
    derived,      // derived from a recent body's: both in derived_*
  };
  index_source source_ = index_source::first_stage;
  std::vector<std::uint32_t> derived_tokens_, derived_escapes_;
  std::vector<std::uint32_t> changed_;  // derived: the strings that differ, by token number
  // The cache's entry that body's index came from (source_ recent or derived), then (after
  // remember()) the one it went to; nullptr if none.
  const json_index_cache::entry* entry_ = nullptr;
  // Bodies whose index later ones may start from: enough for a few thousand one-alert groups.
  json_index_cache index_cache_{kIndexCacheEntries, kIndexCacheBytes, kRetainedCapacity};
  bool reuse_ = true;
  index_counts counts_;
};

// Text reserved for each spare label slot: the `ownership` label and its longest value.
constexpr std::size_t kSpareBytes = 16;

// Fields we read. The root's and an alert's are disjoint so one enum serves both levels.
enum class field : std::uint8_t {
  unknown,
  version,
  group_key,
  truncated_alerts,
  status,
  receiver,
  group_labels,
  common_labels,
  common_annotations,
  external_url,
  alerts,
  alert_status,
  alert_labels,
  alert_annotations,
  starts_at,
  ends_at,
  generator_url,
  fingerprint,
};

std::string_view field_name(field f) {
  switch (f) {
    case field::unknown:
      return "";
    case field::version:
      return "version";
    case field::group_key:
      return "groupKey";
    case field::truncated_alerts:
      return "truncatedAlerts";
    case field::status:
    case field::alert_status:
      return "status";
    case field::receiver:
      return "receiver";
    case field::group_labels:
      return "groupLabels";
    case field::common_labels:
      return "commonLabels";
    case field::common_annotations:
      return "commonAnnotations";
    case field::external_url:
      return "externalURL";
    case field::alerts:
      return "alerts";
    case field::alert_labels:
      return "labels";
    case field::alert_annotations:
      return "annotations";
    case field::starts_at:
      return "startsAt";
    case field::ends_at:
      return "endsAt";
    case field::generator_url:
      return "generatorURL";
    case field::fingerprint:
      return "fingerprint";
  }
  return "";
}

field root_field(std::string_view key) {
  switch (key.size()) {
    case 6:
      if (key == "status") return field::status;
      if (key == "alerts") return field::alerts;
      break;
    case 7:
      if (key == "version") return field::version;
      break;
    case 8:
      if (key == "groupKey") return field::group_key;
      if (key == "receiver") return field::receiver;
      break;
    case 11:
      if (key == "groupLabels") return field::group_labels;
      if (key == "externalURL") return field::external_url;
      break;
    case 12:
      if (key == "commonLabels") return field::common_labels;
      break;
    case 15:
      if (key == "truncatedAlerts") return field::truncated_alerts;
      break;
    case 17:
      if (key == "commonAnnotations") return field::common_annotations;
      break;
    default:
      break;
  }
  return field::unknown;
}

field alert_field(std::string_view key) {
  switch (key.size()) {
    case 6:
      if (key == "status") return field::alert_status;
      if (key == "labels") return field::alert_labels;
      if (key == "endsAt") return field::ends_at;
      break;
    case 8:
      if (key == "startsAt") return field::starts_at;
      break;
    case 11:
      if (key == "annotations") return field::alert_annotations;
      if (key == "fingerprint") return field::fingerprint;
      break;
    case 12:
      if (key == "generatorURL") return field::generator_url;
      break;
    default:
      break;
  }
  return field::unknown;
}

std::optional<alert_status> parse_status(std::string_view s) {
  if (s == "firing") return alert_status::firing;
  if (s == "resolved") return alert_status::resolved;
  return std::nullopt;
}

// Builds a `webhook` from a validated DOM, walking each object's fields in document order so
// that the first wrong field is the one reported and a repeated key's last value wins. Strings
// are copied once, from the parser's buffer into their final place. Paths for error messages
// are only built on failure.
class webhook_builder {
 public:
  explicit webhook_builder(const detail_filter* filter) : filter_(filter) {}

  webhook out;
  decode_error error;

  // False, with `error` set, when the document is not a valid webhook.
  bool build(dom::element root) {
    dom::object object;
    if (root.get(object) != simdjson::SUCCESS) return fail("", "expected a JSON object");
    bool has_alerts = false;
    for (const dom::key_value_pair& kv : object) {
      const field f = root_field(kv.key);
      switch (f) {
        case field::unknown:
          break;  // fields Alertmanager may add later are ignored, whatever they hold
        case field::version:
          if (!string_field(kv.value, f, out.version)) return false;
          // Version 4 is the only format there is; another would change what fields mean.
          if (!out.version.empty() && out.version != "4") {
            return fail("version", "unsupported webhook version \"" + out.version.substr(0, 32) +
                                       "\" (expected \"4\")");
          }
          break;
        case field::group_key:
          if (!string_field(kv.value, f, out.group_key)) return false;
          break;
        case field::receiver:
          if (!string_field(kv.value, f, out.receiver)) return false;
          break;
        case field::external_url:
          if (!string_field(kv.value, f, out.external_url)) return false;
          break;
        case field::truncated_alerts: {
          std::int64_t n = 0;
          if (kv.value.is_null()) break;
          // simdjson types integers above INT64_MAX as uint64 and anything with a fraction or
          // exponent as double; both are rejected.
          if (kv.value.type() == dom::element_type::INT64 && kv.value.get(n) == simdjson::SUCCESS &&
              n >= 0) {
            out.truncated_alerts = n;
            break;
          }
          return expected(f, "a non-negative integer");
        }
        case field::status: {
          if (kv.value.is_null()) break;
          std::string_view s;
          std::optional<alert_status> st;
          if (kv.value.get(s) == simdjson::SUCCESS) st = parse_status(s);
          if (!st) return expected(f, "\"firing\" or \"resolved\"");
          out.status = *st;
          break;
        }
        case field::group_labels:
        case field::common_labels:
        case field::common_annotations:
          // Routing reads only each alert's own labels: with a filter these are checked, not kept.
          if (filter_ != nullptr) {
            if (!check_map(kv.value, f, false)) return false;
            break;
          }
          if (!map_field(kv.value, f, false,
                         f == field::group_labels    ? out.group_labels
                         : f == field::common_labels ? out.common_labels
                                                     : out.common_annotations)) {
            return false;
          }
          break;
        case field::alerts:
          if (!alerts(kv.value)) return false;
          has_alerts = true;
          break;
        default:
          break;  // alert fields: not looked up at this level
      }
    }
    if (!has_alerts) return fail("alerts", "required");
    return true;
  }

 private:
  bool fail(std::string path, std::string message) {
    error = decode_error{std::move(path), std::move(message)};
    return false;
  }

  std::string alert_path() const { return "alerts[" + std::to_string(alert_index_) + "]"; }

  // The JSON path of field `f` in the current alert, or at the root.
  std::string field_path(field f) const {
    if (f >= field::alert_status) return alert_path() + "." + std::string(field_name(f));
    return std::string(field_name(f));
  }

  bool expected(field f, std::string_view what) {
    return fail(field_path(f), "expected " + std::string(what));
  }

  bool string_field(dom::element value, field f, std::string& target) {
    std::string_view s;
    if (value.get(s) == simdjson::SUCCESS) {
      target.assign(s);
      return true;
    }
    if (value.is_null()) return true;
    return expected(f, "a string");
  }

  bool timestamp_field(dom::element value, field f, bool required, timestamp& target) {
    std::string_view s;
    if (value.get(s) == simdjson::SUCCESS) {
      // The alerts of a group mostly share their times (endsAt is Go's zero time until they
      // resolve), so the last text parsed for each field usually comes again.
      memo_timestamp& memo = f == field::starts_at ? last_starts_at_ : last_ends_at_;
      if (!memo.text.empty() && memo.text == s) {
        target = memo.value;
        return true;
      }
      if (auto t = parse_rfc3339(s)) {
        target = *t;
        memo = {s, *t};  // `s` points into the parser's document, which outlives the builder
        return true;
      }
    } else if (value.is_null() && !required) {
      return true;
    }
    return expected(f, "an RFC 3339 string");
  }

  // An object of strings into `target`, replacing what it held. `spare` slots are reserved for
  // labels added later.
  bool map_field(dom::element value, field f, bool required, label_set& target,
                 std::size_t spare = 0) {
    dom::object object;
    if (value.get(object) != simdjson::SUCCESS) {
      if (value.is_null() && !required) return true;
      return expected(f, "an object of strings");
    }
    // simdjson stores the size (saturating at 2^24 - 1, where it is only a hint). The text is
    // guessed from the last set of this field (the alerts of a group are alike) so that the
    // buffer is usually allocated once, without a first pass to measure it.
    std::size_t& last_bytes = f == field::alert_labels        ? last_label_bytes_
                              : f == field::alert_annotations ? last_annotation_bytes_
                                                              : last_other_bytes_;
    const std::size_t count = object.size();
    const std::size_t guess = last_bytes != 0 ? last_bytes + last_bytes / 8 : count * 32;
    label_set::builder labels;
    labels.reserve(count + spare, guess + spare * kSpareBytes);
    std::size_t bytes = 0;
    for (const dom::key_value_pair& kv : object) {
      std::string_view s;
      if (kv.value.get(s) != simdjson::SUCCESS) {
        return fail(field_path(f) + "." + std::string(kv.key), "expected a string");
      }
      bytes += kv.key.size() + s.size();
      labels.add(kv.key, s);
    }
    last_bytes = bytes;
    // Alertmanager sends keys sorted, which the builder checks for and then keeps as they are.
    target = std::move(labels).build();
    return true;
  }

  // Checks that `value` is an object of strings (or null when not required) without copying it.
  bool check_map(dom::element value, field f, bool required) {
    dom::object object;
    if (value.get(object) != simdjson::SUCCESS) {
      if (value.is_null() && !required) return true;
      return expected(f, "an object of strings");
    }
    for (const dom::key_value_pair& kv : object) {
      if (!kv.value.is_string()) {
        return fail(field_path(f) + "." + std::string(kv.key), "expected a string");
      }
    }
    return true;
  }

  bool copy_labels(dom::element value, alert& a) {
    // make_plan adds the `ownership` label to every alert; a spare slot (entry and text) saves it
    // from reallocating the set.
    return map_field(value, field::alert_labels, true, a.labels, 1);
  }

  bool alerts(dom::element value) {
    dom::array array;
    if (value.get(array) != simdjson::SUCCESS) return expected(field::alerts, "an array");
    out.alerts.clear();  // a repeated key replaces, as in Go's encoding/json
    out.alerts.reserve(array.size());
    alert_index_ = 0;
    for (const dom::element item : array) {
      dom::object object;
      if (item.get(object) != simdjson::SUCCESS) return fail(alert_path(), "expected an object");
      if (!one_alert(object, out.alerts.emplace_back())) return false;
      ++alert_index_;
    }
    return true;
  }

  bool one_alert(dom::object object, alert& a) {
    bool has_status = false, has_labels = false, has_starts_at = false, has_fingerprint = false;
    // With a filter, labels, annotations and generatorURL are validated in document order but
    // copied only once the filter has seen the alert; the last occurrence of a repeated key wins.
    std::optional<dom::element> labels, annotations, generator_url;
    for (const dom::key_value_pair& kv : object) {
      const field f = alert_field(kv.key);
      switch (f) {
        case field::unknown:
          break;
        case field::alert_status: {
          std::string_view s;
          std::optional<alert_status> st;
          if (kv.value.get(s) == simdjson::SUCCESS) st = parse_status(s);
          if (!st) return expected(f, "\"firing\" or \"resolved\"");
          a.status = *st;
          has_status = true;
          break;
        }
        case field::alert_labels:
          if (filter_ != nullptr) {
            if (!check_map(kv.value, f, true)) return false;
            labels = kv.value;
          } else if (!copy_labels(kv.value, a)) {
            return false;
          }
          has_labels = true;
          break;
        case field::alert_annotations:
          if (!check_map(kv.value, f, false)) return false;
          annotations = kv.value;
          break;
        case field::starts_at:
          if (!timestamp_field(kv.value, f, true, a.starts_at)) return false;
          has_starts_at = true;
          break;
        case field::ends_at:
          if (!timestamp_field(kv.value, f, false, a.ends_at)) return false;
          break;
        case field::generator_url:
          if (!kv.value.is_string() && !kv.value.is_null()) return expected(f, "a string");
          generator_url = kv.value;
          break;
        case field::fingerprint: {
          if (kv.value.is_null()) break;
          std::string_view s;
          std::optional<fingerprint> fp;
          if (kv.value.get(s) == simdjson::SUCCESS) fp = parse_fingerprint(s);
          if (!fp) return expected(f, "1 to 16 hex digits");
          a.fp = *fp;
          has_fingerprint = true;
          break;
        }
        default:
          break;  // root fields: not looked up at this level
      }
    }
    if (!has_status) return fail(alert_path() + ".status", "required");
    if (!has_labels) return fail(alert_path() + ".labels", "required");
    if (!has_starts_at) return fail(alert_path() + ".startsAt", "required");
    // Everything was validated above, so no copy below can fail.
    if (!has_fingerprint) {
      // The fingerprint is computed from the labels, which are then needed whatever the filter
      // says.
      if (labels && !copy_labels(*labels, a)) return false;
      labels.reset();
      a.fp = compute_fingerprint(a.labels);
    }
    if (filter_ != nullptr && !filter_->keep_details(a.fp, a.status, a.starts_at)) {
      a.details_omitted = true;
      if (labels && !filter_->keep_labels(a.fp, a.status, a.starts_at)) {
        a.labels_omitted = true;
        return true;
      }
      return !labels || copy_labels(*labels, a);
    }
    if (labels && !copy_labels(*labels, a)) return false;
    if (annotations && !map_field(*annotations, field::alert_annotations, false, a.annotations)) {
      return false;
    }
    if (generator_url && !string_field(*generator_url, field::generator_url, a.generator_url)) {
      return false;
    }
    return true;
  }

  struct memo_timestamp {
    std::string_view text;
    timestamp value{};
  };

  const detail_filter* const filter_;
  std::size_t alert_index_ = 0;
  // Text in the last set decoded for alerts' labels, alerts' annotations, and other maps.
  std::size_t last_label_bytes_ = 0;
  std::size_t last_annotation_bytes_ = 0;
  std::size_t last_other_bytes_ = 0;
  memo_timestamp last_starts_at_;
  memo_timestamp last_ends_at_;
};

// ---------------------------------------------------------------------------------------------
// Fast path: the same decoding as webhook_builder, straight from simdjson's first stage (where
// each token starts) without its second stage building a DOM, copying every string and parsing
// every number. It validates as it goes and accepts only what it can check itself: objects,
// arrays, strings, true/false/null, and integers of at most 18 digits, nested at most
// kMaxScanDepth deep. Anything else, every error included, makes it decline, and the body is
// decoded by the DOM path, which reports the error or decodes what the scanner declined.
// So the scanner needs to be right only about what it accepts: everything it accepts the DOM
// accepts too (its rules are a subset of simdjson's), and decodes to the same webhook.
//
// What the first stage has checked already (or, for a body indexed from a recent one by
// derive_json_index, what that checked in the strings that differ and the first stage in the
// rest): UTF-8 in strings (the fallback kernel checks it
// nowhere else; outside strings every byte is one the scanner checks itself), that strings are
// closed and hold no unescaped control characters, and where tokens start: every structural
// character, every string's opening quote, and the first byte of every other scalar. A string ends
// with the last quote before the next token (only whitespace can follow a string without starting a
// token). Left to check: the grammar (which token may follow which), escapes (all of the body's,
// in one pass before the grammar: json_escapes), literals and numbers, and depth. The escapes
// are read across the whole body, outside strings too, as a parser reads them string by string:
// a backslash outside a string lies in a token the grammar rejects (where a structural token
// belongs, or in a literal or a number, which must end in one of ends_scalar's bytes).

constexpr int kMaxScanDepth = 16;

bool is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Whether `c` may follow a literal or a number; simdjson accepts a few more (then rejects them
// as misplaced).
bool ends_scalar(char c) { return is_json_space(c) || c == ',' || c == '}' || c == ']'; }

// Eight bytes at `p` as one word, in memory order.
inline std::uint64_t load64(const char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline std::uint32_t load32(const char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// s == literal, for the short field names and values compared per body: a few word compares (the
// last one overlapping the one before), which the compiler folds against the literal's bytes,
// rather than a call to memcmp (which GCC does not expand inline here) or a loop per byte.
template <std::size_t N>
bool equals(std::string_view s, const char (&literal)[N]) {
  constexpr std::size_t n = N - 1;
  if (s.size() != n) return false;
  const char* const p = s.data();
  if constexpr (n >= 8) {
    std::uint64_t diff = load64(p + n - 8) ^ load64(literal + n - 8);
    for (std::size_t i = 0; i + 8 < n; i += 8) diff |= load64(p + i) ^ load64(literal + i);
    return diff == 0;
  } else if constexpr (n >= 4) {
    return ((load32(p) ^ load32(literal)) | (load32(p + n - 4) ^ load32(literal + n - 4))) == 0;
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      if (p[i] != literal[i]) return false;
    }
    return true;
  }
}

std::optional<alert_status> scan_status(std::string_view s) {
  if (equals(s, "firing")) return alert_status::firing;
  if (equals(s, "resolved")) return alert_status::resolved;
  return std::nullopt;
}

field scan_root_field(std::string_view key) {
  switch (key.size()) {
    case 6:
      if (equals(key, "status")) return field::status;
      if (equals(key, "alerts")) return field::alerts;
      break;
    case 7:
      if (equals(key, "version")) return field::version;
      break;
    case 8:
      if (equals(key, "groupKey")) return field::group_key;
      if (equals(key, "receiver")) return field::receiver;
      break;
    case 11:
      if (equals(key, "groupLabels")) return field::group_labels;
      if (equals(key, "externalURL")) return field::external_url;
      break;
    case 12:
      if (equals(key, "commonLabels")) return field::common_labels;
      break;
    case 15:
      if (equals(key, "truncatedAlerts")) return field::truncated_alerts;
      break;
    case 17:
      if (equals(key, "commonAnnotations")) return field::common_annotations;
      break;
    default:
      break;
  }
  return field::unknown;
}

field scan_alert_field(std::string_view key) {
  switch (key.size()) {
    case 6:
      if (equals(key, "status")) return field::alert_status;
      if (equals(key, "labels")) return field::alert_labels;
      if (equals(key, "endsAt")) return field::ends_at;
      break;
    case 8:
      if (equals(key, "startsAt")) return field::starts_at;
      break;
    case 11:
      if (equals(key, "annotations")) return field::alert_annotations;
      if (equals(key, "fingerprint")) return field::fingerprint;
      break;
    case 12:
      if (equals(key, "generatorURL")) return field::generator_url;
      break;
    default:
      break;
  }
  return field::unknown;
}

class webhook_scanner {
 public:
  webhook_scanner(std::string_view body, json_reader& reader, const detail_filter* filter)
      : body_(body),
        begin_(reader.tokens()),
        end_(reader.tokens() + reader.token_count()),
        next_(reader.tokens()),
        memory_(reader.memory()),
        filter_(filter),
        escapes_(reader.escapes()) {}

  // True with `out` set when the body is a valid webhook; false when the scanner declines.
  bool scan(webhook& out) {
    memory_.pending.clear();  // the last body's; skip_copy() looks at this one's
    memory_.kept_strings.clear();
    if (!take('{')) return false;
    bool has_alerts = false;
    if (!take('}')) {
      do {
        std::string_view key;
        if (!string(key) || !take(':')) return false;
        const field f = scan_root_field(key);
        switch (f) {
          case field::version:
            keep_string();
            if (!string_field(out.version)) return false;
            if (!out.version.empty() && !equals(out.version, "4")) return false;
            break;
          case field::group_key:
            keep_string();
            if (!string_field(out.group_key)) return false;
            break;
          case field::receiver:
            keep_string();
            if (!string_field(out.receiver)) return false;
            break;
          case field::external_url:
            keep_string();
            if (!string_field(out.external_url)) return false;
            break;
          case field::truncated_alerts:
            if (!null() && !integer(false, out.truncated_alerts)) return false;
            break;
          case field::status:
            keep_string();
            if (!null() && !status(out.status)) return false;
            break;
          case field::group_labels:
          case field::common_labels:
          case field::common_annotations: {
            if (null()) break;
            const std::uint32_t* const map = next_;
            if (!skip_copy(f) && !check_string_map()) return false;
            // Routing reads only each alert's own labels: with a filter these are not kept.
            if (filter_ == nullptr) {
              (f == field::group_labels    ? out.group_labels
               : f == field::common_labels ? out.common_labels
                                           : out.common_annotations) = build(map, 0);
            }
            break;
          }
          case field::alerts:
            if (!alerts(out.alerts)) return false;
            has_alerts = true;
            break;
          default:  // unknown fields, and alert fields at the top
            if (!skip_value(1)) return false;
            break;
        }
      } while (take(','));
      if (!take('}')) return false;
    }
    if (!has_alerts || next_ != end_) return false;
    for (std::size_t i = 0; i < out.alerts.size(); ++i) finish(out.alerts[i], memory_.pending[i]);
    return true;
  }

  // Appends to `outline` what scan(), having accepted the body into `out` with a filter, read
  // before the filter was asked (everything but the alerts' labels, annotations and
  // generatorURL), for replay() of the same bytes.
  void write_outline(const webhook& out, std::string& outline) const {
    const outline_header header{
        .truncated_alerts = out.truncated_alerts,
        .alerts = static_cast<std::uint32_t>(out.alerts.size()),
        .sizes = {static_cast<std::uint32_t>(out.version.size()),
                  static_cast<std::uint32_t>(out.group_key.size()),
                  static_cast<std::uint32_t>(out.receiver.size()),
                  static_cast<std::uint32_t>(out.external_url.size())},
        .status = out.status,
        .kept_strings = static_cast<std::uint32_t>(memory_.kept_strings.size()),
    };
    append_pod(outline, header);
    for (const std::string* text : {&out.version, &out.group_key, &out.receiver, &out.external_url})
      outline += *text;
    const auto index = [this](const std::uint32_t* token) {
      return token == nullptr ? kNoToken : static_cast<std::uint32_t>(token - begin_);
    };
    for (std::size_t i = 0; i < out.alerts.size(); ++i) {
      const alert& a = out.alerts[i];
      const scan_memory::pending_alert& p = memory_.pending[i];
      append_pod(outline, outline_alert{
                              .starts_at = a.starts_at,
                              .ends_at = a.ends_at,
                              .fp = a.fp,
                              .labels = index(p.labels),
                              .annotations = index(p.annotations),
                              .url = index(p.url),
                              .labels_tokens = p.labels_tokens,
                              .annotations_tokens = p.annotations_tokens,
                              .status = a.status,
                              .has_fingerprint = p.has_fingerprint,
                          });
    }
    outline.append(reinterpret_cast<const char*>(memory_.kept_strings.data()),
                   memory_.kept_strings.size() * sizeof(std::uint32_t));
  }

  // Whether `outline`, written by write_outline for a body whose index this body's was derived
  // from, holds for this body too: none of the `changed` strings (token numbers) is a key or one
  // the outline kept.
  bool replayable(std::string_view outline, const std::vector<std::uint32_t>& changed) const {
    if (changed.empty()) return true;
    const char* p = outline.data();
    const auto header = read_pod<outline_header>(p);
    for (const std::uint32_t size : header.sizes) p += size;
    p += std::size_t{header.alerts} * sizeof(outline_alert);
    const auto tokens = static_cast<std::size_t>(end_ - begin_);
    for (const std::uint32_t t : changed) {
      if (t + 1 < tokens && body_[begin_[t + 1]] == ':') return false;  // a key
      // The kept strings, ascending: a binary search over the unaligned list.
      std::size_t lo = 0, hi = header.kept_strings;
      while (lo < hi) {
        const std::size_t mid = (lo + hi) / 2;
        std::uint32_t kept;
        std::memcpy(&kept, p + mid * sizeof kept, sizeof kept);
        if (kept == t) return false;
        if (kept < t) {
          lo = mid + 1;
        } else {
          hi = mid;
        }
      }
    }
    return true;
  }

  // Decodes the body into `out` (as decode_webhook_into leaves it before decoding) from the
  // `outline` write_outline wrote for the same bytes, as scan() would with this scanner's
  // filter: only the filter is asked again, and only what it keeps is copied.
  void replay(std::string_view outline, webhook& out) {
    const char* p = outline.data();
    const auto header = read_pod<outline_header>(p);
    out.truncated_alerts = header.truncated_alerts;
    out.status = header.status;
    std::string* const texts[] = {&out.version, &out.group_key, &out.receiver, &out.external_url};
    for (std::size_t i = 0; i < std::size(texts); ++i) {
      texts[i]->append(p, header.sizes[i]);
      p += header.sizes[i];
    }
    const auto token = [this](std::uint32_t index) {
      return index == kNoToken ? nullptr : begin_ + index;
    };
    memory_.pending.clear();
    out.alerts.reserve(header.alerts);
    for (std::uint32_t i = 0; i < header.alerts; ++i) {
      const auto item = read_pod<outline_alert>(p);
      alert& a = out.alerts.emplace_back();
      a.status = item.status;
      a.starts_at = item.starts_at;
      a.ends_at = item.ends_at;
      if (item.has_fingerprint) a.fp = item.fp;
      memory_.pending.push_back({token(item.labels), token(item.annotations), token(item.url),
                                 item.labels_tokens, item.annotations_tokens,
                                 item.has_fingerprint});
    }
    for (std::size_t i = 0; i < out.alerts.size(); ++i) finish(out.alerts[i], memory_.pending[i]);
  }

 private:
  // The outline's layout: a header, the four root strings' bytes, an outline_alert per alert,
  // then the kept strings' token numbers; each copied bytewise (all trivially copyable) and read
  // back with memcpy.
  struct outline_header {
    std::int64_t truncated_alerts;
    std::uint32_t alerts;
    std::array<std::uint32_t, 4> sizes;  // version, groupKey, receiver, externalURL
    alert_status status;
    std::uint32_t kept_strings;  // token numbers after the alerts (scan_memory::kept_strings)
  };
  struct outline_alert {
    timestamp starts_at;
    timestamp ends_at;
    fingerprint fp;        // when has_fingerprint
    std::uint32_t labels;  // token indexes (from begin_), kNoToken for none
    std::uint32_t annotations;
    std::uint32_t url;
    std::uint32_t labels_tokens;
    std::uint32_t annotations_tokens;
    alert_status status;
    bool has_fingerprint;
  };
  static constexpr std::uint32_t kNoToken = std::numeric_limits<std::uint32_t>::max();

  template <class T>
  static void append_pod(std::string& out, const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    out.append(reinterpret_cast<const char*>(&value), sizeof value);
  }
  template <class T>
  static T read_pod(const char*& p) {
    T value;
    std::memcpy(&value, p, sizeof value);
    p += sizeof value;
    return value;
  }

  // Notes the next token as a string whose text goes into the webhook (see kept_strings).
  void keep_string() { memory_.kept_strings.push_back(static_cast<std::uint32_t>(next_ - begin_)); }

  // The first byte of the next token; '\0' when there is none.
  char peek() const { return next_ < end_ ? body_[*next_] : '\0'; }

  bool take(char c) {
    if (peek() != c) return false;
    ++next_;
    return true;
  }

  // Asked of most optional fields, which are mostly not null: the first byte decides that.
  bool null() { return peek() == 'n' && literal("null"); }

  // The literal `word` with a byte after it that ends it.
  template <std::size_t N>
  bool literal(const char (&word)[N]) {
    if (next_ >= end_) return false;
    const std::size_t at = *next_;
    if (at + N - 1 >= body_.size() || !equals(body_.substr(at, N - 1), word) ||
        !ends_scalar(body_[at + N - 1])) {
      return false;
    }
    ++next_;
    return true;
  }

  // An integer without fraction or exponent, at most 18 digits (so it fits an int64 whatever
  // they are), without leading zeros, negative only if `allow_negative`.
  bool integer(bool allow_negative, std::int64_t& value) {
    if (next_ >= end_) return false;
    std::size_t at = *next_;
    const bool negative = allow_negative && body_[at] == '-';
    if (negative) ++at;
    const std::size_t first = at;
    std::int64_t v = 0;
    while (at < body_.size() && body_[at] >= '0' && body_[at] <= '9' && at - first < 18) {
      v = v * 10 + (body_[at] - '0');
      ++at;
    }
    const std::size_t digits = at - first;
    if (digits == 0 || (digits > 1 && body_[first] == '0') || at >= body_.size() ||
        !ends_scalar(body_[at])) {
      return false;
    }
    value = negative ? -v : v;
    ++next_;
    return true;
  }

  // The first escape at or after offset `at` (json_escapes::kEnd if none). Strings are mostly
  // visited in order, so the search goes on from the last answer; maps are visited again to copy
  // them, which goes back.
  std::uint32_t escape_at_or_after(std::uint32_t at) {
    const std::uint32_t* const offsets = escapes_;
    if (escape_ > 0 && offsets[escape_ - 1] >= at) {
      escape_ =
          static_cast<std::size_t>(std::lower_bound(offsets, offsets + escape_, at) - offsets);
    } else {
      while (offsets[escape_] < at) ++escape_;  // the list ends with kEnd
    }
    return offsets[escape_];
  }

  // The string token at `token`, unescaped into `out`: a view into the body when it has no
  // escapes, else into the scanner's memory; both valid until the next body.
  void content(const std::uint32_t* token, std::string_view& out) {
    if (escape_at_or_after(token[0]) < token[1]) {
      unescape(token, out);
      return;
    }
    const std::size_t first = token[0] + 1;
    // Only whitespace lies between a string's closing quote and the next token (and the opening
    // quote stops the loop in any case).
    std::size_t end = token[1];
    while (body_[end - 1] != '"') --end;
    out = std::string_view(body_.data() + first, end - 1 - first);
  }

  // Unescapes a string holding escapes (the first at escape_at_or_after(token[0]), all checked by
  // json_escapes::find) into the scanner's memory.
  [[gnu::noinline]] void unescape(const std::uint32_t* token, std::string_view& out) {
    const char* const body = body_.data();
    std::size_t close = token[1] - 1;
    while (body[close] != '"') --close;
    std::size_t at = token[0] + 1;  // the next byte to copy
    char* const start = memory_.strings.get() + strings_used_;
    char* dst = start;
    for (const std::uint32_t* e = escapes_ + escape_; *e < close; ++e) {
      std::memcpy(dst, body + at, *e - at);
      dst = put_unescaped(body + *e, dst + (*e - at));
      at = *e + escape_length(body + *e);
    }
    // No escape runs past the closing quote (the first stage reads a quote after a backslash as
    // escaped, and \u's four digits hold none), so `at` is at most `close`; the guard keeps a
    // mistake in that reasoning from becoming a wild copy.
    if (at < close) {
      std::memcpy(dst, body + at, close - at);
      dst += close - at;
    }
    out = std::string_view(start, static_cast<std::size_t>(dst - start));
    strings_used_ += out.size();
  }

  // The next token as a string, into `out` (see content()).
  bool string(std::string_view& out) {
    if (peek() != '"') return false;
    content(next_, out);
    ++next_;
    return true;
  }

  // Checks an object of strings (the next token is its '{').
  bool check_string_map() {
    if (!take('{')) return false;
    if (take('}')) return true;
    const std::uint32_t* t = next_;
    const char* const body = body_.data();
    while (true) {
      if (end_ - t < 4) return false;  // key, ':', value, and ',' or '}'
      if (body[t[0]] != '"' || body[t[1]] != ':' || body[t[2]] != '"') return false;
      const char after = body[t[3]];
      t += 4;
      if (after == '}') break;
      if (after != ',') return false;
    }
    next_ = t;
    return true;
  }

  // Skips the object at the next token if it is, byte for byte, the "labels" (for
  // commonLabels) or "annotations" (commonAnnotations) of the last alert, checked already: the
  // common labels and annotations of a group of one alert are its own, and Alertmanager writes
  // them the same way. The same text opening outside a string (both follow a ':') is split into
  // the same tokens at the same relative offsets, so it is as valid as the text it copies.
  bool skip_copy(field f) {
    if (memory_.pending.empty() || f == field::group_labels) return false;
    const scan_memory::pending_alert& last = memory_.pending.back();
    const bool labels = f == field::common_labels;
    const std::uint32_t* const copied = labels ? last.labels : last.annotations;
    const std::ptrdiff_t tokens = labels ? last.labels_tokens : last.annotations_tokens;
    if (copied == nullptr || tokens == 0 || end_ - next_ < tokens) return false;
    const std::uint32_t length = copied[tokens - 1] - copied[0];  // to its closing brace
    if (next_[tokens - 1] - next_[0] != length ||
        std::memcmp(body_.data() + copied[0], body_.data() + next_[0], length + 1) != 0) {
      return false;
    }
    next_ += tokens;
    return true;
  }

  // A label set of the object of strings at `map` (checked already by check_string_map), with
  // `spare` slots reserved for labels added later.
  label_set build(const std::uint32_t* map, std::size_t spare) {
    auto& texts = memory_.map;
    texts.clear();
    std::size_t bytes = 0;
    if (body_[map[1]] != '}') {
      for (const std::uint32_t* t = map + 1;; t += 4) {
        auto& kv = texts.emplace_back();
        content(t, kv.first);
        content(t + 2, kv.second);
        bytes += kv.first.size() + kv.second.size();
        if (body_[t[3]] == '}') break;
      }
    }
    label_set::builder labels;
    labels.reserve(texts.size() + spare, bytes + spare * kSpareBytes);
    for (const auto& [k, v] : texts) labels.add(k, v);
    return std::move(labels).build();
  }

  // Any valid value, checked and dropped. `depth` is that of the value's container.
  bool skip_value(int depth) {
    switch (peek()) {
      case '{': {
        if (depth >= kMaxScanDepth) return false;
        ++next_;
        if (take('}')) return true;
        do {
          if (peek() != '"') return false;
          ++next_;
          if (!take(':') || !skip_value(depth + 1)) return false;
        } while (take(','));
        return take('}');
      }
      case '[': {
        if (depth >= kMaxScanDepth) return false;
        ++next_;
        if (take(']')) return true;
        do {
          if (!skip_value(depth + 1)) return false;
        } while (take(','));
        return take(']');
      }
      case '"':
        ++next_;
        return true;
      case 't':
        return literal("true");
      case 'f':
        return literal("false");
      case 'n':
        return null();
      default: {
        std::int64_t n = 0;
        return integer(true, n);
      }
    }
  }

  // A string into `target`, or null leaving it as it was.
  bool string_field(std::string& target) {
    std::string_view s;
    if (string(s)) {
      // Not assign(), whose general case (the source may lie inside the target) cost more than
      // the copy; the target was emptied for this body, so it mostly has the room already.
      target.clear();
      target.append(s.data(), s.size());
      return true;
    }
    return null();
  }

  bool status(alert_status& target) {
    std::string_view s;
    if (!string(s)) return false;
    const std::optional<alert_status> st = scan_status(s);
    if (!st) return false;
    target = *st;
    return true;
  }

  // A string into `target` through `memo`, or null (leaving it as it was) unless `required`.
  bool timestamp_field(scan_memory::memo_timestamp& memo, bool required, timestamp& target) {
    if (!required && null()) return true;
    std::string_view s;
    if (!string(s)) return false;
    if (memo.size != 0 && std::string_view(memo.text.data(), memo.size) == s) {
      target = memo.value;
      return true;
    }
    const std::optional<timestamp> t = parse_rfc3339(s);
    if (!t) return false;
    target = *t;
    if (s.size() <= memo.text.size()) {
      std::memcpy(memo.text.data(), s.data(), s.size());
      memo.size = s.size();
      memo.value = *t;
    }
    return true;
  }

  bool alerts(std::vector<alert>& out) {
    if (!take('[')) return false;
    out.clear();  // a repeated key replaces, as in Go's encoding/json
    memory_.pending.clear();
    out.reserve(memory_.last_alerts);
    if (!take(']')) {
      do {
        if (!one_alert(out.emplace_back())) return false;
      } while (take(','));
      if (!take(']')) return false;
    }
    memory_.last_alerts = out.size();
    return true;
  }

  // As webhook_builder::one_alert: labels, annotations and generatorURL are validated in
  // document order and kept (by finish()) once the filter has seen the alert; the last of a
  // repeated key wins.
  bool one_alert(alert& a) {
    if (!take('{')) return false;
    bool has_status = false, has_starts_at = false, has_fingerprint = false;
    const std::uint32_t* labels = nullptr;       // the last "labels" object
    const std::uint32_t* annotations = nullptr;  // the last "annotations", if an object
    const std::uint32_t* url = nullptr;          // the last "generatorURL", if a string
    std::uint32_t labels_tokens = 0, annotations_tokens = 0;
    if (!take('}')) {
      do {
        std::string_view key;
        if (!string(key) || !take(':')) return false;
        switch (scan_alert_field(key)) {
          case field::alert_status:
            keep_string();
            if (!status(a.status)) return false;
            has_status = true;
            break;
          case field::alert_labels:
            labels = next_;
            if (!check_string_map()) return false;
            labels_tokens = static_cast<std::uint32_t>(next_ - labels);
            break;
          case field::alert_annotations:
            annotations = nullptr;
            if (null()) break;
            annotations = next_;
            if (!check_string_map()) return false;
            annotations_tokens = static_cast<std::uint32_t>(next_ - annotations);
            break;
          case field::starts_at:
            keep_string();
            if (!timestamp_field(memory_.starts_at, true, a.starts_at)) return false;
            has_starts_at = true;
            break;
          case field::ends_at:
            keep_string();
            if (!timestamp_field(memory_.ends_at, false, a.ends_at)) return false;
            break;
          case field::generator_url:
            // Checked now, unescaped by finish() only if kept.
            url = nullptr;
            if (peek() == '"') {
              url = next_++;
            } else if (!null()) {
              return false;
            }
            break;
          case field::fingerprint: {
            keep_string();
            if (null()) break;
            std::string_view s;
            if (!string(s)) return false;
            const std::optional<fingerprint> fp = parse_fingerprint(s);
            if (!fp) return false;
            a.fp = *fp;
            has_fingerprint = true;
            break;
          }
          default:  // unknown fields, and root fields in an alert
            if (!skip_value(3)) return false;
            break;
        }
      } while (take(','));
      if (!take('}')) return false;
    }
    if (!has_status || labels == nullptr || !has_starts_at) return false;
    memory_.pending.push_back(
        {labels, annotations, url, labels_tokens, annotations_tokens, has_fingerprint});
    return true;
  }

  // Copies what the filter wants of alert `a`, once the whole body has been checked (so that a
  // body the scanner declines asks the filter nothing: the DOM will).
  void finish(alert& a, const scan_memory::pending_alert& p) {
    const std::uint32_t* labels = p.labels;
    // make_plan adds the `ownership` label to every alert; a spare slot (entry and text) saves
    // it from reallocating the set.
    if (!p.has_fingerprint) {
      // The fingerprint is computed from the labels, which are then needed whatever the filter
      // says.
      a.labels = build(labels, 1);
      labels = nullptr;
      a.fp = compute_fingerprint(a.labels);
    }
    if (filter_ != nullptr && !filter_->keep_details(a.fp, a.status, a.starts_at)) {
      a.details_omitted = true;
      if (labels != nullptr && !filter_->keep_labels(a.fp, a.status, a.starts_at)) {
        a.labels_omitted = true;
        return;
      }
      if (labels != nullptr) a.labels = build(labels, 1);
      return;
    }
    if (labels != nullptr) a.labels = build(labels, 1);
    if (p.annotations != nullptr) a.annotations = build(p.annotations, 0);
    if (p.url != nullptr) {
      std::string_view url;
      content(p.url, url);  // checked by one_alert()
      a.generator_url.assign(url);
    }
  }

  const std::string_view body_;
  const std::uint32_t* const begin_;  // the first token
  const std::uint32_t* const end_;    // one past the last token; *end_ is the body's length
  const std::uint32_t* next_;         // the next token
  scan_memory& memory_;
  const detail_filter* const filter_;
  const std::uint32_t* const escapes_;  // offsets of every escape (checked), then kEnd
  std::size_t escape_ = 0;              // escapes_[escape_]: the last escape_at_or_after()
  std::size_t strings_used_ = 0;        // bytes of memory_.strings holding this body's strings
};

// ---------------------------------------------------------------------------------------------
// Error path only: simdjson says what kind of error a document has but not where, so the
// messages that need a position come from small scalar scans of the body.

// The index of the first byte that is not part of valid UTF-8, or npos.
std::size_t first_invalid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    if (i + len > s.size()) return i;
    for (std::size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      const unsigned char min = k == 1 ? lo : 0x80;
      const unsigned char max = k == 1 ? hi : 0xBF;
      if (b < min || b > max) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

std::size_t skip_space(std::string_view s, std::size_t i) {
  while (i < s.size() && is_json_space(s[i])) ++i;
  return i;
}

// The index of the quote closing the string that opens at `open`, or npos if the body ends first.
std::size_t string_end(std::string_view s, std::size_t open) {
  for (std::size_t i = open + 1; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      return i;
    }
  }
  return std::string_view::npos;
}

decode_error truncated() { return {"", "truncated JSON: unexpected end of input"}; }

// Finds where the root value ends by matching brackets and skipping strings (the rest of the
// grammar is not checked): a body that ends first is truncated, and one with more after the
// root value has trailing data. Nullopt when neither, nor a mismatched bracket, is the problem.
std::optional<decode_error> structure_error(std::string_view body) {
  std::size_t i = skip_space(body, 0);
  if (i == body.size()) return truncated();
  const char first = body[i];
  std::size_t end = 0;  // one past the root value
  if (first == '{' || first == '[') {
    std::string open;  // brackets not closed yet
    for (; i < body.size() && end == 0; ++i) {
      const char c = body[i];
      if (c == '"') {
        i = string_end(body, i);
        if (i == std::string_view::npos) return truncated();
      } else if (c == '{' || c == '[') {
        open.push_back(c);
      } else if (c == '}' || c == ']') {
        if (open.back() != (c == '}' ? '{' : '[')) {
          return decode_error{"", "invalid JSON at byte " + std::to_string(i) + ": mismatched '" +
                                      std::string(1, c) + "'"};
        }
        open.pop_back();
        if (open.empty()) end = i + 1;
      }
    }
    if (end == 0) return truncated();
  } else if (first == '"') {
    const std::size_t close = string_end(body, i);
    if (close == std::string_view::npos) return truncated();
    end = close + 1;
  } else if (first == '-' || (first >= '0' && first <= '9') || first == 't' || first == 'f' ||
             first == 'n') {
    end = body.find_first_of(" \t\r\n,:[]{}\"", i);
    if (end == std::string_view::npos) end = body.size();
  } else {
    return decode_error{"", "invalid JSON at byte " + std::to_string(i) + ": expected a value"};
  }
  const std::size_t after = skip_space(body, end);
  if (after < body.size()) {
    return decode_error{"",
                        "unexpected data after the JSON document at byte " + std::to_string(after)};
  }
  return std::nullopt;
}

std::string_view describe(simdjson::error_code code) {
  switch (code) {
    case simdjson::TAPE_ERROR:
      return "misplaced or missing comma, colon, bracket or quote, or an unexpected character";
    case simdjson::STRING_ERROR:
      return "invalid escape sequence or unpaired surrogate in a string";
    case simdjson::UNESCAPED_CHARS:
      return "unescaped control character in a string";
    case simdjson::UNCLOSED_STRING:
      return "unterminated string";
    case simdjson::T_ATOM_ERROR:
    case simdjson::F_ATOM_ERROR:
    case simdjson::N_ATOM_ERROR:
      return "invalid literal (expected true, false or null)";
    case simdjson::NUMBER_ERROR:
      // simdjson also rejects integers beyond 64 bits and numbers beyond double's range.
      return "malformed number, or one outside the 64-bit integer or double range";
    default:
      return simdjson::error_message(code);
  }
}

decode_error syntax_error(std::string_view body, simdjson::error_code code) {
  switch (code) {
    case simdjson::EMPTY:  // nothing but whitespace
      return truncated();
    case simdjson::UTF8_ERROR:
      if (const std::size_t bad = first_invalid_utf8(body); bad != std::string_view::npos) {
        return {"", "invalid UTF-8 at byte " + std::to_string(bad)};
      }
      return {"", "invalid UTF-8"};
    case simdjson::DEPTH_ERROR:
      return {"", "nesting deeper than " + std::to_string(kMaxDepth) + " levels"};
    case simdjson::MEMALLOC:
      return {"", "cannot decode body: out of memory"};
    case simdjson::CAPACITY:
      return {"", "cannot decode body: too large for the JSON parser"};
    default:
      break;
  }
  if (auto e = structure_error(body)) return std::move(*e);
  return {"", "invalid JSON: " + std::string(describe(code))};
}

// One per thread: decode_webhook stays safe from any thread and never re-enters itself.
json_reader& thread_reader() {
  thread_local json_reader reader;
  return reader;
}

// Decodes into `out` (default-constructed), or sets `error`. The scanner first, if `scan`.
bool decode_with(json_reader& reader, std::string_view body, const detail_filter* filter,
                 webhook& out, decode_error& error, bool scan = true) {
  if (scan && reader.index(body)) {
    webhook_scanner scanner(body, reader, filter);
    // The same bytes as a body scanned before with a filter (as the daemon decodes), or bytes
    // differing from it only in strings that scan did not keep (annotations, labels, URLs): what
    // it read is kept, and only the filter's choices are made again.
    if (filter != nullptr) {
      if (const std::string_view outline = reader.outline();
          !outline.empty() && scanner.replayable(outline, reader.changed_strings())) {
        scanner.replay(outline, out);
        reader.replayed();
        if (reader.derived()) {
          // The outline holds for this body too; remember() replaces the entry holding it.
          std::string& kept = reader.memory().outline;
          kept.assign(outline);
          reader.remember(body, kept);
        }
        return true;
      }
    }
    if (scanner.scan(out)) {
      if (filter != nullptr) reader.derived_but_scanned();
      std::string& outline = reader.memory().outline;
      outline.clear();
      if (filter != nullptr && reader.reusing()) scanner.write_outline(out, outline);
      reader.remember(body, outline);
      return true;
    }
    out = webhook{};  // the DOM starts over
  }
  // Declined or invalid: the DOM decides, and says what is wrong.
  dom::element root;
  if (const auto err = reader.parse(body, root)) {
    error = syntax_error(body, err);
    return false;
  }
  webhook_builder builder(filter);
  if (!builder.build(root)) {
    error = std::move(builder.error);
    return false;
  }
  out = std::move(builder.out);
  return true;
}

}  // namespace

std::string decode_error::to_string() const {
  if (field.empty()) return message;
  return field + ": " + message;
}

std::variant<webhook, decode_error> decode_webhook(std::string_view body) {
  return decode_webhook(body, nullptr);
}

std::variant<webhook, decode_error> decode_webhook(std::string_view body,
                                                   const detail_filter* filter) {
  std::variant<webhook, decode_error> result;
  decode_error error;
  if (!decode_webhook_into(body, filter, std::get<webhook>(result), error)) {
    result = std::move(error);
  }
  return result;
}

bool decode_webhook_into(std::string_view body, const detail_filter* filter, webhook& out,
                         decode_error& error) {
  // Back to a default webhook, keeping what the strings and vectors have allocated.
  out.version.clear();
  out.group_key.clear();
  out.truncated_alerts = 0;
  out.status = alert_status::firing;
  out.receiver.clear();
  out.group_labels = {};
  out.common_labels = {};
  out.common_annotations = {};
  out.external_url.clear();
  out.alerts.clear();
  try {
    if (body.size() > kRetainedCapacity) {
      json_reader once;
      return decode_with(once, body, filter, out, error);
    }
    return decode_with(thread_reader(), body, filter, out, error);
  } catch (const std::exception& e) {
    // Allocation failure while building the result from a huge body.
    error = decode_error{"", std::string("cannot decode body: ") + e.what()};
    return false;
  }
}

index_counts thread_index_counts() { return thread_reader().counts(); }

namespace detail {

std::optional<webhook> scan_webhook(std::string_view body, const detail_filter* filter) {
  thread_local json_reader reader;
  reader.reuse_indexes(false);
  webhook out;
  if (!reader.index(body)) return std::nullopt;
  if (!webhook_scanner(body, reader, filter).scan(out)) return std::nullopt;
  return out;
}

std::optional<std::vector<std::uint32_t>> first_stage_tokens(std::string_view body) {
  thread_local json_reader reader;
  reader.reuse_indexes(false);
  if (!reader.index(body)) return std::nullopt;
  return std::vector<std::uint32_t>(reader.tokens(), reader.tokens() + reader.token_count() + 1);
}

void reuse_indexes(bool on) { thread_reader().reuse_indexes(on); }

std::variant<webhook, decode_error> decode_webhook_dom(std::string_view body,
                                                       const detail_filter* filter) {
  thread_local json_reader reader;
  std::variant<webhook, decode_error> result;
  decode_error error;
  if (!decode_with(reader, body, filter, std::get<webhook>(result), error, false)) {
    result = std::move(error);
  }
  return result;
}

}  // namespace detail

}  // namespace alertrouter::routing
