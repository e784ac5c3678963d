#include "store/incident_codec.h"

#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "routing/json_text.h"
#include "store/state_store.h"

namespace alertrouter::store {
namespace {

namespace json = boost::json;
using routing::timestamp;

// Bumped if the document's shape changes incompatibly; decode refuses other versions.
constexpr std::int64_t kFormat = 1;

std::int64_t micros(timestamp t) { return t.time_since_epoch().count(); }

[[noreturn]] void bad(std::string_view field, std::string_view why) {
  throw store_error("stored incident: " + std::string(field) + ": " + std::string(why));
}

// Field access that names the field when the document is not what encode wrote.
class reader {
 public:
  explicit reader(const json::value& v, std::string path) : path_(std::move(path)) {
    o_ = v.if_object();
    if (o_ == nullptr) bad(path_, "expected an object");
  }

  const json::value& at(std::string_view key) const {
    const json::value* v = o_->if_contains(key);
    if (v == nullptr) bad(name(key), "missing");
    return *v;
  }
  std::string name(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  std::int64_t int64(std::string_view key) const {
    const json::value& v = at(key);
    if (const std::int64_t* i = v.if_int64()) return *i;
    if (const std::uint64_t* u = v.if_uint64(); u != nullptr && *u <= INT64_MAX) {
      return static_cast<std::int64_t>(*u);
    }
    bad(name(key), "expected a 64-bit integer");
  }
  std::uint64_t uint64(std::string_view key) const {
    const json::value& v = at(key);
    if (const std::uint64_t* u = v.if_uint64()) return *u;
    if (const std::int64_t* i = v.if_int64(); i != nullptr && *i >= 0) {
      return static_cast<std::uint64_t>(*i);
    }
    bad(name(key), "expected an unsigned integer");
  }
  timestamp time(std::string_view key) const {
    return timestamp{std::chrono::microseconds{int64(key)}};
  }
  std::string_view string(std::string_view key) const {
    const json::string* s = at(key).if_string();
    if (s == nullptr) bad(name(key), "expected a string");
    return *s;
  }
  bool boolean(std::string_view key) const {
    const bool* b = at(key).if_bool();
    if (b == nullptr) bad(name(key), "expected true or false");
    return *b;
  }
  const json::array& array(std::string_view key) const {
    const json::array* a = at(key).if_array();
    if (a == nullptr) bad(name(key), "expected an array");
    return *a;
  }
  routing::fingerprint fp(std::string_view key) const {
    auto f = routing::parse_fingerprint(string(key));
    if (!f) bad(name(key), "expected 16 hex digits");
    return *f;
  }
  routing::label_set labels(std::string_view key) const {
    const json::object* o = at(key).if_object();
    if (o == nullptr) bad(name(key), "expected an object");
    routing::label_set::builder b;
    b.reserve(o->size(), 0);
    for (const json::key_value_pair& kv : *o) {
      const json::string* v = kv.value().if_string();
      if (v == nullptr) bad(name(key) + "." + std::string(kv.key()), "expected a string");
      b.add(kv.key(), *v);
    }
    return std::move(b).build();
  }

 private:
  const json::object* o_ = nullptr;
  std::string path_;
};

// The value of enum E whose to_string is `text`; E's values are 0..last.
template <class E>
std::optional<E> parse_enum(std::string_view text, E last) {
  for (int i = 0; i <= static_cast<int>(last); ++i) {
    const E e = static_cast<E>(i);
    if (to_string(e) == text) return e;
  }
  return std::nullopt;
}

routing::alert_status parse_status(const reader& r, std::string_view key) {
  auto s = parse_enum(r.string(key), routing::alert_status::resolved);
  if (!s) bad(r.name(key), "expected firing or resolved");
  return *s;
}

}  // namespace

// The incident is written straight into its text rather than through a JSON DOM: the store's
// writer encodes every incident a webhook changes, and building the DOM (a node and a copy per
// label) was a fifth of its CPU.
std::string encode_incident(const routing::incident& inc) {
  const routing::alert& a = inc.last;
  std::size_t reserve = 256 + a.generator_url.size();
  for (auto [name, value] : a.labels) reserve += name.size() + value.size() + 6;
  for (auto [name, value] : a.annotations) reserve += name.size() + value.size() + 6;
  for (const std::string& r : inc.routes) reserve += r.size() + 3;
  for (const routing::paged_target& t : inc.paged) reserve += t.name.size() + t.person.size() + 40;
  routing::json_text out(reserve);

  out.key("format", '{').integer(kFormat);
  out.key("id").integer(inc.id);
  out.key("fp").string(routing::to_hex(inc.fp));
  out.key("starts").integer(micros(inc.starts_at));
  out.key("opened").integer(micros(inc.opened_at));
  if (inc.closed_at) out.key("closed").integer(micros(*inc.closed_at));
  out.key("owner").string(to_string(inc.owner));
  out.key("routes").open('[');
  for (const std::string& r : inc.routes) out.item().string(r);
  out.close(']');
  out.key("paged").open('[');
  for (const routing::paged_target& t : inc.paged) {
    out.item().open('{');
    out.key("type").string(config::to_string(t.type));
    out.key("name").string(t.name);
    out.key("person").string(t.person);
    out.close('}');
  }
  out.close(']');
  out.key("last").open('{');
  out.key("status").string(to_string(a.status));
  out.key("labels").labels(a.labels);
  out.key("annotations").labels(a.annotations);
  out.key("starts").integer(micros(a.starts_at));
  out.key("ends").integer(micros(a.ends_at));
  out.key("url").string(a.generator_url);
  out.key("fp").string(routing::to_hex(a.fp));
  out.key("details_omitted").boolean(a.details_omitted);
  out.key("labels_omitted").boolean(a.labels_omitted);
  out.close('}');
  out.close('}');
  return std::move(out).text();
}

routing::incident decode_incident(std::string_view text) {
  json::parse_options opts;
  // Labels come from simdjson-validated bodies, but the store must give back whatever it was
  // given rather than refuse to start over one odd byte.
  opts.allow_invalid_utf8 = true;
  boost::system::error_code ec;
  json::value doc = json::parse(text, ec, {}, opts);
  if (ec) bad("document", ec.message());

  const reader r(doc, "");
  if (r.int64("format") != kFormat) bad("format", "unsupported version");
  routing::incident inc;
  inc.id = r.uint64("id");
  inc.fp = r.fp("fp");
  inc.starts_at = r.time("starts");
  inc.opened_at = r.time("opened");
  if (doc.as_object().contains("closed")) inc.closed_at = r.time("closed");
  auto owner = parse_enum(r.string("owner"), routing::ownership::unowned);
  if (!owner) bad("owner", "expected owned, user or unowned");
  inc.owner = *owner;
  for (const json::value& v : r.array("routes")) {
    const json::string* s = v.if_string();
    if (s == nullptr) bad("routes", "expected strings");
    inc.routes.emplace_back(*s);
  }
  for (const json::value& v : r.array("paged")) {
    const reader t(v, "paged[]");
    routing::paged_target p;
    auto type = parse_enum(t.string("type"), config::target_type::project);
    if (!type) bad("paged[].type", "expected schedule, receiver or project");
    p.type = *type;
    p.name = t.string("name");
    p.person = t.string("person");
    inc.paged.push_back(std::move(p));
  }

  const reader l(r.at("last"), "last");
  routing::alert& a = inc.last;
  a.status = parse_status(l, "status");
  a.labels = l.labels("labels");
  a.annotations = l.labels("annotations");
  a.starts_at = l.time("starts");
  a.ends_at = l.time("ends");
  a.generator_url = l.string("url");
  a.fp = l.fp("fp");
  a.details_omitted = l.boolean("details_omitted");
  a.labels_omitted = l.boolean("labels_omitted");
  return inc;
}

}  // namespace alertrouter::store
