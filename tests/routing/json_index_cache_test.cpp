#include "routing/json_index_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "routing/json_escapes.h"
#include "routing/webhook.h"

namespace alertrouter::routing {
namespace {

// A one-alert group as Alertmanager posts it (compact, Go's field and key order), for a rule
// whose summary templates {{ $value }}: the text that changes from one resend to the next.
std::string one_alert_body(const std::string& value, const std::string& status = "firing",
                           const std::string& external_url = "http://alertmanager.example:9093") {
  const std::string labels =
      R"({"alertname":"CephSlowOps","cluster":"wmcs","instance":"cloudcephmon1001:9283",)"
      R"("job":"ceph_eqiad","prometheus":"cloud","severity":"critical","site":"eqiad","team":"wmcs"})";
  const std::string annotations =
      R"({"description":"Ceph cluster in eqiad has )" + value +
      R"( slow ops, which might be blocking some writes","runbook":"https://wikitech.wikimedia.org/wiki/Portal:Cloud_VPS/Admin/Runbooks/CephSlowOps","summary":"Ceph cluster in eqiad has )" +
      value + R"( slow ops"})";
  return R"({"receiver":"alertrouter","status":")" + status + R"(","alerts":[{"status":")" +
         status + R"(","labels":)" + labels + R"(,"annotations":)" + annotations +
         R"(,"startsAt":"2026-11-26T10:00:00.123456789Z","endsAt":"0001-01-01T00:00:00Z",)"
         R"("generatorURL":"http://prometheus.example:9090/graph?g0.expr=ceph_healthcheck_slow_ops+%3E+0\u0026g0.tab=1",)"
         R"("fingerprint":"5d2b5d2e8a6e1c3f"}],"groupLabels":{"alertname":"CephSlowOps"},)"
         R"("commonLabels":)" +
         labels + R"(,"commonAnnotations":)" + annotations + R"(,"externalURL":")" + external_url +
         R"(","version":"4","groupKey":"{}/{team=\"wmcs\"}:{alertname=\"CephSlowOps\"}","truncatedAlerts":0})";
}

// What the first stage and json_escapes find in a text.
struct index {
  std::vector<std::uint32_t> tokens;   // then the text's length
  std::vector<std::uint32_t> escapes;  // then kEnd
};

index index_of(const std::string& text) {
  index out;
  const auto tokens = detail::first_stage_tokens(text);
  EXPECT_TRUE(tokens.has_value()) << text;
  if (tokens) out.tokens = *tokens;
  json_escapes escapes;
  EXPECT_TRUE(escapes.find(text)) << text;
  out.escapes = escapes.offsets();
  return out;
}

// derive_json_index from `before` to `after`: the derived index, or nullopt if it declined.
std::optional<index> derive(const std::string& before, const std::string& after,
                            std::size_t* changed = nullptr) {
  const index from = index_of(before);
  const std::size_t count = from.tokens.size() - 1;
  std::vector<std::uint32_t> tokens(count + 3);
  index out;
  std::vector<std::uint32_t> strings;
  if (!derive_json_index(before, from.tokens.data(), count, from.escapes.data(), after,
                         tokens.data(), out.escapes, strings)) {
    return std::nullopt;
  }
  // The changed strings, ascending, each a string token of both texts.
  EXPECT_TRUE(std::is_sorted(strings.begin(), strings.end()));
  for (const std::uint32_t t : strings) {
    EXPECT_LT(t, count);
    if (t < count) {
      EXPECT_EQ(before[from.tokens[t]], '"');
      EXPECT_EQ(after[tokens[t]], '"');
    }
  }
  const std::size_t n = strings.size();
  EXPECT_EQ(tokens[count], after.size());
  EXPECT_EQ(tokens[count + 1], after.size());
  EXPECT_EQ(tokens[count + 2], 0u);
  out.tokens.assign(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(count) + 1);
  if (changed != nullptr) *changed = n;
  return out;
}

// Derives and checks the result against running the first stage and json_escapes on `after`.
void expect_derived(const std::string& before, const std::string& after,
                    std::size_t changed_strings) {
  std::size_t changed = 0;
  const auto derived = derive(before, after, &changed);
  ASSERT_TRUE(derived.has_value()) << after;
  const index expected = index_of(after);
  EXPECT_EQ(derived->tokens, expected.tokens);
  EXPECT_EQ(derived->escapes, expected.escapes);
  EXPECT_EQ(changed, changed_strings);
}

TEST(DeriveJsonIndex, SameTextIsItsOwnIndex) {
  const std::string body = one_alert_body("3");
  expect_derived(body, body, 0);
}

TEST(DeriveJsonIndex, ResendWithANewValueChangesFourStrings) {
  // The value is in two annotations of the alert and the same two of commonAnnotations.
  expect_derived(one_alert_body("3"), one_alert_body("17"), 4);
  expect_derived(one_alert_body("1234.5"), one_alert_body("7"), 4);
}

TEST(DeriveJsonIndex, ResolvedResendChangesBothStatuses) {
  expect_derived(one_alert_body("3"), one_alert_body("3", "resolved"), 2);
}

TEST(DeriveJsonIndex, AnotherClusterPeersExternalUrl) {
  expect_derived(one_alert_body("3"),
                 one_alert_body("3", "firing", "http://alertmanager-2.example:9093"), 1);
}

TEST(DeriveJsonIndex, StringsGainingAndLosingEscapesAndUtf8) {
  const std::string before = one_alert_body("3");
  expect_derived(before, one_alert_body(R"(\"3\" \u00e9 \\ \n)"), 4);
  expect_derived(one_alert_body(R"(\"3\" \u00e9)"), before, 4);
  expect_derived(before, one_alert_body("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), 4);
  // Escapes before and after the changed strings keep their places, shifted.
  expect_derived(one_alert_body("\\u0026"), one_alert_body("x\\u0026yz\\t"), 4);
}

TEST(DeriveJsonIndex, KeysAreStringsToo) {
  const std::string rest = R"(,"unchanged":"a longer string, so that the edits stay small")";
  const std::string before = R"({"a":"x","bb":[1,"y",true])" + rest + "}";
  expect_derived(before, R"({"aaa":"x","b":[1,"yyy",true])" + rest + "}", 3);
}

TEST(DeriveJsonIndex, DeclinesChangesOutsideStrings) {
  const std::string body = one_alert_body("3");
  std::string more_truncated = body;
  more_truncated.replace(more_truncated.rfind(":0}"), 3, ":5}");
  EXPECT_FALSE(derive(body, more_truncated));
  std::string spaced = body;
  spaced.insert(1, " ");
  EXPECT_FALSE(derive(body, spaced));
  EXPECT_FALSE(derive(body, body + " "));
  EXPECT_FALSE(derive(body + " ", body));
  EXPECT_FALSE(derive(body, body.substr(0, body.size() - 1)));
  // A label more: the strings after it no longer line up with the tokens.
  std::string more_labels = body;
  more_labels.insert(more_labels.find(R"("cluster")"), R"("a":"b",)");
  EXPECT_FALSE(derive(body, more_labels));
  // A quote gone: the string now runs on past where the first stage found its end.
  std::string unquoted = body;
  unquoted.erase(unquoted.find("alertrouter") + 11, 1);
  EXPECT_FALSE(derive(body, unquoted));
  // Only a changed opening quote (a string becoming a number).
  EXPECT_FALSE(derive(R"({"a":"1"})", R"({"a":11})"));
}

TEST(DeriveJsonIndex, DeclinesStringsTheFirstStageOrEscapesWouldReject) {
  const std::string body = one_alert_body("3");
  EXPECT_FALSE(derive(body, one_alert_body("a\tb")));  // unescaped control character
  EXPECT_FALSE(derive(body, one_alert_body(std::string("a\0b", 3))));
  EXPECT_FALSE(derive(body, one_alert_body("\xc3")));              // cut short
  EXPECT_FALSE(derive(body, one_alert_body("\xc0\xaf")));          // overlong
  EXPECT_FALSE(derive(body, one_alert_body("\xed\xa0\x80")));      // a surrogate in UTF-8
  EXPECT_FALSE(derive(body, one_alert_body("\xf4\x90\x80\x80")));  // above U+10FFFF
  EXPECT_FALSE(derive(body, one_alert_body("\xff")));
  EXPECT_FALSE(derive(body, one_alert_body(R"(\x)")));  // not an escape
  EXPECT_FALSE(derive(body, one_alert_body(R"(\u12g4)")));
  EXPECT_FALSE(derive(body, one_alert_body(R"(\ud83d\ude00)")));  // left to the DOM
}

TEST(DeriveJsonIndex, DeclinesWhenMostOfTheTextChanged) {
  const std::string before = R"({"a":"x"})";
  EXPECT_FALSE(derive(before, R"({"a":"a much longer value than the rest"})"));
  const std::string body = one_alert_body("3");
  EXPECT_FALSE(derive(body, one_alert_body(std::string(body.size() / 8, 'v'))));
}

// Random edits of the strings of a body, valid or not, held to the first stage: whatever
// derive_json_index accepts, the first stage and json_escapes accept with the same index.
TEST(DeriveJsonIndex, RandomStringEditsMatchTheFirstStage) {
  const std::string base = one_alert_body("3");
  const index base_index = index_of(base);
  std::vector<std::size_t> strings;  // opening quotes of the base's strings
  for (std::size_t t = 0; t + 1 < base_index.tokens.size(); ++t) {
    if (base[base_index.tokens[t]] == '"') strings.push_back(base_index.tokens[t]);
  }
  ASSERT_GT(strings.size(), 40u);

  static const std::vector<std::string> kPieces = {"a",       "Z",        "0",
                                                   " ",       "\"",       "\\",
                                                   "\\\"",    "\\\\",     "\\n",
                                                   "\\u0041", "\\u00e9",  "\\ud800",
                                                   "\\q",     "\t",       std::string(1, '\0'),
                                                   "\x7f",    "\xc3\xa9", "\xe2\x82\xac",
                                                   "\xc3",    "\x80",     "{",
                                                   "}",       ":",        ",",
                                                   "[",       "]"};
  std::mt19937 random(20261127);
  std::size_t derived = 0, declined_valid = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string after = base;
    // Edit 1 to 3 strings, from the last so earlier offsets hold.
    std::vector<std::size_t> picked;
    const int edits = 1 + static_cast<int>(random() % 3);
    for (int e = 0; e < edits; ++e) picked.push_back(strings[random() % strings.size()]);
    std::sort(picked.rbegin(), picked.rend());
    picked.erase(std::unique(picked.begin(), picked.end()), picked.end());
    for (const std::size_t open : picked) {
      const std::size_t close = after.find('"', open + 1);  // the base's strings hold no \"
      std::string content;
      const int pieces = static_cast<int>(random() % 6);
      const bool clean = random() % 2 == 0;  // letters only: mostly a valid edit
      for (int p = 0; p < pieces; ++p) {
        content += clean ? kPieces[random() % 4] : kPieces[random() % kPieces.size()];
      }
      after.replace(open + 1, close - open - 1, content);
    }
    std::size_t changed = 0;
    const auto got = derive(base, after, &changed);
    const auto tokens = detail::first_stage_tokens(after);
    json_escapes escapes;
    const bool escapes_ok = escapes.find(after);
    if (got) {
      ++derived;
      ASSERT_TRUE(tokens.has_value()) << after;
      ASSERT_TRUE(escapes_ok) << after;
      ASSERT_EQ(got->tokens, *tokens) << after;
      ASSERT_EQ(got->escapes, escapes.offsets()) << after;
      EXPECT_LE(changed, picked.size());
    } else if (tokens && escapes_ok && tokens->size() == base_index.tokens.size()) {
      ++declined_valid;  // e.g. an edit adding a quote and a colon that still lines up
    }
  }
  // Both outcomes must have been exercised for the test to mean anything.
  EXPECT_GT(derived, 1000u);
  EXPECT_LT(declined_valid, 300u);
}

TEST(JsonIndexCache, FindsWhatWasPutUnderItsKey) {
  json_index_cache cache(16, 1 << 20, 1 << 16);
  EXPECT_EQ(cache.find(1), nullptr);
  const std::string text = R"({"alertname":"CephSlowOps","a":"b"})";
  const index i = index_of(text);
  cache.put(7, text, i.tokens.data(), i.tokens.size() - 1, i.escapes);
  const auto* e = cache.find(7);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->text, text);
  EXPECT_EQ(e->tokens, i.tokens);
  EXPECT_EQ(e->escapes, i.escapes);
  EXPECT_EQ(cache.find(8), nullptr);
  EXPECT_EQ(cache.entries(), 1u);
  EXPECT_GE(cache.bytes(), text.size() + 4 * (i.tokens.size() + i.escapes.size()));

  // The same key again replaces the entry.
  const std::string other = R"({"alertname":"CephSlowOps","a":"c"})";
  cache.put(7, other, i.tokens.data(), i.tokens.size() - 1, i.escapes);
  ASSERT_NE(cache.find(7), nullptr);
  EXPECT_EQ(cache.find(7)->text, other);
  EXPECT_EQ(cache.entries(), 1u);
}

TEST(JsonIndexCache, PutBySwappingHandsBackTheReplacedVectors) {
  json_index_cache cache(16, 1 << 20, 1 << 16);
  const std::string first = one_alert_body("3");
  const index i = index_of(first);
  cache.put(5, first, i.tokens.data(), i.tokens.size() - 1, i.escapes);
  const std::size_t bytes_before = cache.bytes();

  const std::string second = one_alert_body("17");
  index j = index_of(second);
  const index expected = j;
  cache.put(5, second, j.tokens, j.escapes);
  const auto* e = cache.find(5);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->text, second);
  EXPECT_EQ(e->tokens, expected.tokens);
  EXPECT_EQ(e->escapes, expected.escapes);
  EXPECT_EQ(j.tokens, i.tokens);  // the replaced entry's, back to the caller
  EXPECT_EQ(j.escapes, i.escapes);
  EXPECT_EQ(cache.entries(), 1u);
  EXPECT_GE(cache.bytes(), bytes_before);  // one character more, and capacities
}

TEST(JsonIndexCache, ReplacesTheLeastRecentlyUsedOfASet) {
  // One set of kWays entries: every key lands in it.
  json_index_cache cache(json_index_cache::kWays, 1 << 20, 1 << 16);
  const std::string text = R"({"a":"b"})";
  const index i = index_of(text);
  for (std::uint64_t k = 1; k <= json_index_cache::kWays; ++k) {
    cache.put(k, text, i.tokens.data(), i.tokens.size() - 1, i.escapes);
  }
  EXPECT_NE(cache.find(1), nullptr);  // 2 is now the least recently used
  cache.put(100, text, i.tokens.data(), i.tokens.size() - 1, i.escapes);
  EXPECT_NE(cache.find(1), nullptr);
  EXPECT_EQ(cache.find(2), nullptr);
  EXPECT_NE(cache.find(3), nullptr);
  EXPECT_NE(cache.find(100), nullptr);
  EXPECT_EQ(cache.entries(), json_index_cache::kWays);
}

TEST(JsonIndexCache, KeepsToItsByteAndTextBounds) {
  const std::string text = one_alert_body("3");
  const index i = index_of(text);
  const std::size_t one = text.size() + 4 * (i.tokens.size() + i.escapes.size());
  json_index_cache cache(64, 3 * one + one / 2, text.size());
  for (std::uint64_t k = 1; k <= 20; ++k) {
    cache.put(k, text, i.tokens.data(), i.tokens.size() - 1, i.escapes);
    EXPECT_LE(cache.bytes(), 3 * one + one / 2);
    EXPECT_NE(cache.find(k), nullptr) << "the entry just stored is kept";
  }
  EXPECT_GE(cache.entries(), 1u);
  EXPECT_LE(cache.entries(), 3u);

  json_index_cache small(64, 1 << 20, text.size() - 1);
  small.put(1, text, i.tokens.data(), i.tokens.size() - 1, i.escapes);
  EXPECT_EQ(small.find(1), nullptr);
  EXPECT_EQ(small.bytes(), 0u);
}

TEST(JsonIndexCache, DerivationsThatDoNotPayBackOff) {
  json_index_cache cache(16, 1 << 20, 1 << 16);
  const std::string text = one_alert_body("3");
  const index i = index_of(text);
  const auto* e = cache.put(9, text, i.tokens.data(), i.tokens.size() - 1, i.escapes);
  ASSERT_NE(e, nullptr);
  EXPECT_FALSE(cache.take_skip(e));
  // Fruitless n times in a row: the next 2^n - 1 texts skip deriving.
  for (int n = 1; n <= 3; ++n) {
    cache.derivation_paid(e, false);
    for (int k = 0; k < (1 << n) - 1; ++k) EXPECT_TRUE(cache.take_skip(e)) << n << " " << k;
    EXPECT_FALSE(cache.take_skip(e)) << n;
  }
  // A new text under the same key keeps the backoff; one that pays ends it.
  cache.derivation_paid(e, false);
  e = cache.put(9, text, i.tokens.data(), i.tokens.size() - 1, i.escapes);
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(cache.take_skip(e));
  cache.derivation_paid(e, true);
  EXPECT_FALSE(cache.take_skip(e));
  // The backoff stops growing at 63.
  for (int n = 0; n < 10; ++n) cache.derivation_paid(e, false);
  int skipped = 0;
  while (cache.take_skip(e)) ++skipped;
  EXPECT_EQ(skipped, 63);
  // Another key taking the slot starts afresh.
  cache.derivation_paid(e, false);
  json_index_cache one_set(json_index_cache::kWays, 1 << 20, 1 << 16);
  const auto* a = one_set.put(1, text, i.tokens.data(), i.tokens.size() - 1, i.escapes);
  one_set.derivation_paid(a, false);
  for (std::uint64_t k = 2; k <= json_index_cache::kWays + 1; ++k) {
    one_set.put(k, text, i.tokens.data(), i.tokens.size() - 1, i.escapes);
  }
  EXPECT_EQ(one_set.find(1), nullptr);  // replaced, as the least recently used
  const auto* b = one_set.find(json_index_cache::kWays + 1);
  ASSERT_NE(b, nullptr);
  EXPECT_FALSE(one_set.take_skip(b));
}

TEST(JsonIndexCache, KeyIsTheGroupKeysOn) {
  const std::string a = one_alert_body("3");
  EXPECT_EQ(json_index_cache::key_of(a), json_index_cache::key_of(one_alert_body("1000")));
  EXPECT_EQ(json_index_cache::key_of(a), json_index_cache::key_of(one_alert_body("3", "resolved")));
  EXPECT_EQ(json_index_cache::key_of(a),
            json_index_cache::key_of(one_alert_body("3", "firing", "http://am-2.example:9093")));
  std::string other_group = a;
  other_group.replace(other_group.rfind("CephSlowOps"), 11, "CephSlowOpz");
  EXPECT_NE(json_index_cache::key_of(a), json_index_cache::key_of(other_group));
  // Without a group key: the last bytes.
  const std::string plain = R"({"alerts":[],"x":"0123456789"})";
  EXPECT_NE(json_index_cache::key_of(plain),
            json_index_cache::key_of(R"({"alerts":[],"x":"0123456780"})"));
  EXPECT_EQ(json_index_cache::key_of(plain), json_index_cache::key_of(plain));
  EXPECT_EQ(json_index_cache::key_of(""), json_index_cache::key_of(""));
}

}  // namespace
}  // namespace alertrouter::routing
