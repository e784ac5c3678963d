// Feeds arbitrary bytes to config::load_string. Besides "no crash, no sanitizer report, no
// exception", it checks the loader's contract on every input: the value is present iff there
// is no error, diagnostics are in file order and name the file, and a value that loads is
// internally consistent (every reference resolves, every layer has members, overrides are
// non-empty and disjoint).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/loader.h"

namespace {

using namespace alertrouter::config;

void check(bool ok) {
  if (!ok) std::abort();
}

void check_consistent(const config& c) {
  for (const schedule& s : c.schedules) {
    check(!s.timezone.empty());
    check(!s.layers.empty() || !s.overrides.empty());
    for (const layer& l : s.layers) {
      check(!l.name.empty());
      check(!l.members.empty());
      check(l.shift.count() > 0);
      if (l.active) check(l.active->begin != l.active->end);
      for (const std::string& m : l.members) check(c.find_person(m) != nullptr);
    }
    for (std::size_t i = 0; i < s.overrides.size(); ++i) {
      const schedule_override& o = s.overrides[i];
      check(o.from < o.to);
      check(c.find_person(o.person) != nullptr);
      for (std::size_t j = 0; j < i; ++j) {
        check(!(o.from < s.overrides[j].to && s.overrides[j].from < o.to));
      }
    }
  }
  for (const route& r : c.routes) {
    for (const target& t : r.notify) {
      switch (t.type) {
        case target_type::schedule:
          check(c.find_schedule(t.name) != nullptr);
          break;
        case target_type::receiver:
          check(c.find_receiver(t.name) != nullptr);
          break;
        case target_type::project:
          check(t.name.empty());
          break;
      }
    }
  }
  check(c.dedup.max_incidents >= 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const load_result result = load_string(text, "fuzz.yaml");
  check(result.value.has_value() == !has_errors(result.diagnostics));
  position previous{};
  for (const diagnostic& d : result.diagnostics) {
    check(d.file == "fuzz.yaml");
    check(!d.message.empty());
    check(d.where.line >= 0 && d.where.column >= 0);
    check(d.where.line > previous.line ||
          (d.where.line == previous.line && d.where.column >= previous.column));
    previous = d.where;
    check(d.to_string().starts_with("fuzz.yaml:"));
  }
  if (result.value) check_consistent(*result.value);
  return 0;
}
