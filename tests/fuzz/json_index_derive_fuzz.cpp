// libFuzzer target: two texts, `before` and `after`, split at the input's first 0xFF byte (never
// part of valid UTF-8, so never of a JSON text either first stage accepts). When simdjson's first
// stage and json_escapes accept `before`, derive_json_index from its index to `after` must either
// decline or give exactly what the first stage and json_escapes find in `after` (both accepting
// it). decode_webhook, which derives indexes from recent bodies, must then decode `after` as the
// DOM path does.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "routing/json_escapes.h"
#include "routing/json_index_cache.h"
#include "routing/webhook.h"

namespace {

using namespace alertrouter::routing;

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t split = input.find('\xff');
  if (split == std::string_view::npos) return 0;
  const std::string_view before = input.substr(0, split);
  const std::string_view after = input.substr(split + 1);

  const auto before_tokens = detail::first_stage_tokens(before);
  if (!before_tokens) return 0;
  json_escapes before_escapes;
  if (!before_escapes.find(before)) return 0;

  const std::size_t count = before_tokens->size() - 1;
  std::vector<std::uint32_t> tokens(count + 3);
  std::vector<std::uint32_t> escapes;
  std::vector<std::uint32_t> changed;
  if (derive_json_index(before, before_tokens->data(), count, before_escapes.offsets().data(),
                        after, tokens.data(), escapes, changed)) {
    const auto after_tokens = detail::first_stage_tokens(after);
    check(after_tokens.has_value());
    check(after_tokens->size() == count + 1);
    check(std::memcmp(after_tokens->data(), tokens.data(), (count + 1) * sizeof tokens[0]) == 0);
    json_escapes after_escapes;
    check(after_escapes.find(after));
    check(after_escapes.offsets() == escapes);
    check(changed.empty() ? before == after : before != after);
    for (const std::uint32_t t : changed) check(t < count && after[tokens[t]] == '"');
  }

  // Through decode_webhook: `before` first, so that `after` may start from its index.
  (void)decode_webhook(before, nullptr);
  check(decode_webhook(after, nullptr) == detail::decode_webhook_dom(after, nullptr));
  return 0;
}
