// Feeds arbitrary bytes to config::parse_matcher, and compiles every matcher it accepts with
// routing::matcher::compile: the loader's syntax check and the router's compilation must agree
// (a spec the loader accepted must never fail to compile at reload time). Also checks the
// equality operators' defining property on the parsed value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "config/matcher_parse.h"
#include "routing/alert.h"
#include "routing/matcher.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace alertrouter;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = config::parse_matcher(text);
  if (const auto* message = std::get_if<std::string>(&parsed)) {
    check(!message->empty());
    return 0;
  }
  const config::matcher_spec& spec = std::get<config::matcher_spec>(parsed);
  check(!spec.name.empty());
  const bool is_regex =
      spec.op == config::matcher_op::regex || spec.op == config::matcher_op::not_regex;
  check(!is_regex || !config::regex_error(spec.value).has_value());

  const auto compiled = routing::matcher::compile(spec);
  const auto* m = std::get_if<routing::matcher>(&compiled);
  check(m != nullptr);

  routing::label_set labels;
  labels.set(spec.name, spec.value);
  if (spec.op == config::matcher_op::equal) check(m->matches(labels));
  if (spec.op == config::matcher_op::not_equal) check(!m->matches(labels));
  (void)m->to_string();
  return 0;
}
