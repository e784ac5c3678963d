#include "routing/alert.h"

#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <vector>

namespace alertrouter::routing {
namespace {

std::vector<label_set::label> labels_of(const label_set& s) { return {s.begin(), s.end()}; }

TEST(LabelSet, SortsByNameAndKeepsLastDuplicate) {
  const label_set s({{"team", "wmcs"},
                     {"alertname", "CephClusterInError"},
                     {"severity", "warning"},
                     {"instance", "cloudvirt1031:9100"},
                     {"severity", "page"}});
  const std::vector<label_set::label> want = {{"alertname", "CephClusterInError"},
                                              {"instance", "cloudvirt1031:9100"},
                                              {"severity", "page"},
                                              {"team", "wmcs"}};
  EXPECT_EQ(labels_of(s), want);
  EXPECT_EQ(s.size(), 4u);
}

TEST(LabelSet, SortedInputIsKeptAsIs) {
  const std::vector<label_set::label> sorted = {{"a", "1"}, {"b", "2"}, {"c", "3"}};
  EXPECT_EQ(labels_of(label_set(sorted)), sorted);
}

TEST(LabelSet, ManyDuplicatesOfOneName) {
  const label_set s({{"x", "1"}, {"a", "0"}, {"x", "2"}, {"x", "3"}});
  const std::vector<label_set::label> want = {{"a", "0"}, {"x", "3"}};
  EXPECT_EQ(labels_of(s), want);
}

TEST(LabelSet, GetAndContains) {
  const label_set s({{"project", "tools"}, {"empty", ""}});
  EXPECT_EQ(s.get("project"), "tools");
  EXPECT_TRUE(s.contains("project"));
  // A missing label reads as "" (Alertmanager), but contains() tells them apart.
  EXPECT_EQ(s.get("severity"), "");
  EXPECT_FALSE(s.contains("severity"));
  EXPECT_EQ(s.get("empty"), "");
  EXPECT_TRUE(s.contains("empty"));
  EXPECT_FALSE(s.contains("proj"));
  EXPECT_FALSE(s.contains("projects"));
  EXPECT_TRUE(label_set().empty());
  EXPECT_EQ(label_set().get("anything"), "");
}

TEST(LabelSet, SetInsertsInOrderOrReplaces) {
  label_set s({{"b", "2"}});
  s.set("c", "3");
  s.set("a", "1");
  s.set("b", "two");
  const std::vector<label_set::label> want = {{"a", "1"}, {"b", "two"}, {"c", "3"}};
  EXPECT_EQ(labels_of(s), want);
}

TEST(LabelSet, EqualityIgnoresInputOrder) {
  EXPECT_EQ(label_set({{"a", "1"}, {"b", "2"}}), label_set({{"b", "2"}, {"a", "1"}}));
  EXPECT_NE(label_set({{"a", "1"}}), label_set({{"a", "2"}}));
}

TEST(LabelSet, EqualityIgnoresStaleText) {
  // Replacing values leaves unreferenced text behind in one set but not the other.
  label_set a({{"a", "long value"}, {"b", "2"}});
  a.set("a", "1");
  a.set("b", "a much longer value than before");
  a.set("b", "2");
  EXPECT_EQ(a, label_set({{"a", "1"}, {"b", "2"}}));
  EXPECT_NE(a, label_set({{"a", "1"}, {"b", "2"}, {"c", ""}}));
  EXPECT_NE(a, label_set({{"a", "1"}, {"bb", "2"}}));
}

TEST(LabelSet, SetWithTextFromTheSameSet) {
  label_set s({{"project", "tools"}, {"team", "wmcs"}});
  s.set("owner", s.get("project"));  // new label, value points into the set
  s.set("team", s.get("project"));   // longer replacement from inside the set
  s.set(s.get("owner"), "x");        // name points into the set
  const std::vector<label_set::label> want = {
      {"owner", "tools"}, {"project", "tools"}, {"team", "tools"}, {"tools", "x"}};
  EXPECT_EQ(labels_of(s), want);
}

TEST(LabelSet, RepeatedSetsKeepEveryLabel) {
  // Values that keep growing force the buffer to grow and drop the replaced text each time.
  label_set s({{"a", "0"}, {"z", "end"}});
  std::string value;
  for (int i = 0; i < 200; ++i) {
    value += static_cast<char>('a' + i % 26);
    s.set("m", value);
    s.set("a", std::to_string(i));
  }
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s.get("a"), "199");
  EXPECT_EQ(s.get("m"), value);
  EXPECT_EQ(s.get("z"), "end");
}

TEST(LabelSet, CopiesAndMovesKeepTheirLabels) {
  label_set original({{"alertname", "InstanceDown"}, {"instance", "cloudvirt1031:9100"}});
  const label_set copy = original;
  label_set moved = std::move(original);
  moved.set("severity", "page");
  EXPECT_EQ(copy.get("instance"), "cloudvirt1031:9100");
  EXPECT_FALSE(copy.contains("severity"));
  EXPECT_EQ(moved.get("alertname"), "InstanceDown");
  EXPECT_EQ(moved.get("severity"), "page");
}

TEST(LabelSet, IteratesAsPairsOfViews) {
  const label_set s({{"b", "2"}, {"a", "1"}, {"c", "3"}});
  std::string joined;
  for (const auto& [name, value] : s) joined += std::string(name) + "=" + std::string(value) + ";";
  EXPECT_EQ(joined, "a=1;b=2;c=3;");
  auto it = s.begin();
  EXPECT_EQ(s.end() - it, 3);
  EXPECT_EQ(it[2].first, "c");
  EXPECT_EQ((*(it + 1)).second, "2");
  it += 3;
  EXPECT_EQ(it, s.end());
  --it;
  EXPECT_EQ((*it).first, "c");
}

struct builder_case {
  std::string name;
  std::vector<label_set::label> input;
  std::vector<label_set::label> want;
};

class LabelSetBuilder : public testing::TestWithParam<builder_case> {};

TEST_P(LabelSetBuilder, BuildsSortedUniqueSet) {
  const builder_case& c = GetParam();
  label_set::builder b;
  b.reserve(c.input.size() + 1, 8);  // too small a byte estimate is only a hint
  for (const auto& [name, value] : c.input) b.add(name, value);
  const label_set s = std::move(b).build();
  EXPECT_EQ(labels_of(s), c.want);
  EXPECT_EQ(s, label_set(c.input));
  for (const auto& [name, value] : c.want) EXPECT_EQ(s.get(name), value) << name;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, LabelSetBuilder,
    testing::Values(builder_case{"empty", {}, {}}, builder_case{"one", {{"a", "1"}}, {{"a", "1"}}},
                    builder_case{"sorted",
                                 {{"a", "1"}, {"ab", "2"}, {"b", ""}},
                                 {{"a", "1"}, {"ab", "2"}, {"b", ""}}},
                    builder_case{"reversed",
                                 {{"c", "3"}, {"b", "2"}, {"a", "1"}},
                                 {{"a", "1"}, {"b", "2"}, {"c", "3"}}},
                    builder_case{"adjacent duplicate", {{"a", "1"}, {"a", "2"}}, {{"a", "2"}}},
                    builder_case{"duplicate after sorted run",
                                 {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"b", "4"}},
                                 {{"a", "1"}, {"b", "4"}, {"c", "3"}}},
                    builder_case{"prefix names",
                                 {{"ab", "1"}, {"a", "2"}, {"abc", "3"}},
                                 {{"a", "2"}, {"ab", "1"}, {"abc", "3"}}},
                    // Bytes order as unsigned: UTF-8 names sort after ASCII ones.
                    builder_case{"non-ascii",
                                 {{"\xc3\xa9t\xc3\xa9", "1"}, {"z", "2"}},
                                 {{"z", "2"}, {"\xc3\xa9t\xc3\xa9", "1"}}},
                    builder_case{"empty name", {{"b", "1"}, {"", "0"}}, {{"", "0"}, {"b", "1"}}}),
    [](const testing::TestParamInfo<builder_case>& p) {
      std::string n = p.param.name;
      for (char& ch : n) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return n;
    });

// Expected values are copied from prometheus/common model/signature_test.go
// (TestLabelsToSignature, TestMetricToFingerprint and the BenchmarkLabelToSignature* cases),
// the functions behind Alertmanager's alert fingerprint (LabelSet.Fingerprint).
struct known_case {
  std::vector<label_set::label> labels;
  std::uint64_t want;
};

TEST(Fingerprint, MatchesPrometheusKnownValues) {
  const known_case cases[] = {
      {{}, 14695981039346656037ULL},
      {{{"name", "garland, briggs"}, {"fear", "love is not enough"}}, 5799056148416392346ULL},
      {{{"first-label", "first-label-value"}}, 5146282821936882169ULL},
      {{{"first-label", "first-label-value"}, {"second-label", "second-label-value"}},
       3195800080984914717ULL},
      {{{"first-label", "first-label-value"},
        {"second-label", "second-label-value"},
        {"third-label", "third-label-value"}},
       13843036195897128121ULL},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(compute_fingerprint(label_set(c.labels)).value, c.want) << to_hex({c.want});
  }
}

TEST(Fingerprint, EmptySetIsFnvOffsetBasis) {
  EXPECT_EQ(to_hex(compute_fingerprint(label_set())), "cbf29ce484222325");
}

TEST(Fingerprint, IndependentOfInputOrder) {
  const label_set a({{"alertname", "ToolforgeKubernetesNodeNotReady"}, {"project", "tools"}});
  const label_set b({{"project", "tools"}, {"alertname", "ToolforgeKubernetesNodeNotReady"}});
  EXPECT_EQ(compute_fingerprint(a), compute_fingerprint(b));
}

TEST(Fingerprint, SeparatorKeepsNameValueBoundaries) {
  // Same concatenated bytes, different labels: the 0xFF separators must tell them apart.
  EXPECT_NE(compute_fingerprint(label_set({{"ab", "c"}})),
            compute_fingerprint(label_set({{"a", "bc"}})));
  EXPECT_NE(compute_fingerprint(label_set({{"a", ""}})), compute_fingerprint(label_set()));
  EXPECT_NE(compute_fingerprint(label_set({{"a", "1"}, {"b", "2"}})),
            compute_fingerprint(label_set({{"a", "1b"}})));
}

TEST(Fingerprint, HexFormatting) {
  EXPECT_EQ(to_hex({0}), "0000000000000000");
  EXPECT_EQ(to_hex({0xabcULL}), "0000000000000abc");
  EXPECT_EQ(to_hex({0xffffffffffffffffULL}), "ffffffffffffffff");
  EXPECT_EQ(to_hex({5799056148416392346ULL}), "507a62d79ee76c9a");
}

TEST(Fingerprint, ParseAcceptsOneToSixteenHexDigits) {
  EXPECT_EQ(parse_fingerprint("0"), fingerprint{0});
  EXPECT_EQ(parse_fingerprint("abc"), fingerprint{0xabc});
  EXPECT_EQ(parse_fingerprint("ABCdef"), fingerprint{0xabcdef});
  EXPECT_EQ(parse_fingerprint("cbf29ce484222325"), fingerprint{14695981039346656037ULL});
  EXPECT_EQ(parse_fingerprint("FFFFFFFFFFFFFFFF"), fingerprint{0xffffffffffffffffULL});
  const fingerprint fp{5146282821936882169ULL};
  EXPECT_EQ(parse_fingerprint(to_hex(fp)), fp);
}

TEST(Fingerprint, ParseRejectsMalformed) {
  for (const char* bad : {"", "g", "0x12", "12345678901234567", " 1", "1 ", "-1", "+1", "12.3"}) {
    EXPECT_FALSE(parse_fingerprint(bad).has_value()) << bad;
  }
  // Sixteen digits (Alertmanager's length, read by a path of its own): one bad byte anywhere.
  std::string digits = "0123456789abcdef";
  for (std::size_t i = 0; i < digits.size(); ++i) {
    for (const char c : {'g', 'G', ' ', '\0', '/', ':', '@', '`', '\xC3'}) {
      std::string bad = digits;
      bad[i] = c;
      EXPECT_FALSE(parse_fingerprint(bad).has_value()) << i << " " << c;
    }
  }
}

TEST(AlertStatus, ToString) {
  EXPECT_EQ(to_string(alert_status::firing), "firing");
  EXPECT_EQ(to_string(alert_status::resolved), "resolved");
}

}  // namespace
}  // namespace alertrouter::routing
