#include "routing/ownership.h"

#include <gtest/gtest.h>

#include <string>

namespace alertrouter::routing {
namespace {

config::matcher_spec spec(std::string name, config::matcher_op op, std::string value) {
  config::matcher_spec s;
  s.name = std::move(name);
  s.op = op;
  s.value = std::move(value);
  return s;
}

// The ownership section of issue 2's example configuration.
config::ownership_config wmcs_config() {
  config::ownership_config c;
  c.label = "project";
  c.owned = {"tools", "toolsbeta", "admin", "cloudinfra", "metricsinfra", "paws", "quarry"};
  c.owned_regex = {"tools\\..+"};
  c.infrastructure = {spec("team", config::matcher_op::equal, "wmcs")};
  return c;
}

ownership_classifier compiled(const config::ownership_config& c) {
  auto result = ownership_classifier::compile(c);
  if (auto* error = std::get_if<std::string>(&result)) ADD_FAILURE() << *error;
  return std::get<ownership_classifier>(std::move(result));
}

struct classify_case {
  const char* what;
  label_set labels;
  ownership want;
};

TEST(OwnershipClassifier, ClassifiesLikeIssueTwo) {
  const ownership_classifier c = compiled(wmcs_config());
  const classify_case cases[] = {
      {"owned project",
       {{"project", "tools"}, {"alertname", "ToolforgeKubernetesNodeNotReady"}},
       ownership::owned},
      {"another owned project", {{"project", "paws"}}, ownership::owned},
      {"owned project without team label", {{"project", "metricsinfra"}}, ownership::owned},
      {"owned_regex matches tools.foo", {{"project", "tools.foo"}}, ownership::owned},
      {"owned_regex matches tools.a.b", {{"project", "tools.a.b"}}, ownership::owned},
      {"owned_regex is anchored: toolsx", {{"project", "toolsx"}}, ownership::user},
      {"owned_regex needs a suffix: tools.", {{"project", "tools."}}, ownership::user},
      {"owned_regex is anchored at start", {{"project", "xtools.foo"}}, ownership::user},
      {"owned list is exact", {{"project", "Tools"}}, ownership::user},
      {"user project", {{"project", "deployment-prep"}, {"severity", "critical"}}, ownership::user},
      // A user project stays user even with the team's label on it: it may not page.
      {"user project with team=wmcs",
       {{"project", "deployment-prep"}, {"team", "wmcs"}},
       ownership::user},
      {"infrastructure without project",
       {{"alertname", "CephClusterInError"},
        {"severity", "page"},
        {"team", "wmcs"},
        {"instance", "cloudvirt1031:9100"}},
       ownership::owned},
      {"empty project counts as absent", {{"project", ""}, {"team", "wmcs"}}, ownership::owned},
      {"empty project, not infrastructure", {{"project", ""}}, ownership::unowned},
      {"no project and other team", {{"team", "sre"}}, ownership::unowned},
      {"no labels at all", {}, ownership::unowned},
  };
  for (const auto& tc : cases) {
    EXPECT_EQ(c.classify(tc.labels), tc.want) << tc.what;
  }
}

TEST(OwnershipClassifier, SeveralRegexesAreAlternatives) {
  auto cfg = wmcs_config();
  cfg.owned = {};
  cfg.owned_regex = {"tools\\..+", "cloud-(dev|infra)", "a|b"};
  const ownership_classifier c = compiled(cfg);
  EXPECT_EQ(c.classify({{"project", "tools.x"}}), ownership::owned);
  EXPECT_EQ(c.classify({{"project", "cloud-dev"}}), ownership::owned);
  EXPECT_EQ(c.classify({{"project", "cloud-infra"}}), ownership::owned);
  EXPECT_EQ(c.classify({{"project", "b"}}), ownership::owned);
  // Every alternative is anchored on its own.
  EXPECT_EQ(c.classify({{"project", "cloud-devx"}}), ownership::user);
  EXPECT_EQ(c.classify({{"project", "ab"}}), ownership::user);
  EXPECT_EQ(c.classify({{"project", "tools"}}), ownership::user);
}

TEST(OwnershipClassifier, InfrastructureNeedsAllMatchersAndAtLeastOne) {
  auto cfg = wmcs_config();
  cfg.infrastructure.push_back(spec("source", config::matcher_op::regex, "prom.*"));
  const ownership_classifier c = compiled(cfg);
  EXPECT_EQ(c.classify({{"team", "wmcs"}, {"source", "prometheus"}}), ownership::owned);
  EXPECT_EQ(c.classify({{"team", "wmcs"}, {"source", "icinga"}}), ownership::unowned);
  EXPECT_EQ(c.classify({{"team", "wmcs"}}), ownership::unowned);

  cfg.infrastructure.clear();
  const ownership_classifier none = compiled(cfg);
  // No infrastructure matchers: nothing without a project is owned, not everything.
  EXPECT_EQ(none.classify({{"team", "wmcs"}}), ownership::unowned);
  EXPECT_EQ(none.classify({}), ownership::unowned);
}

TEST(OwnershipClassifier, CustomProjectLabel) {
  auto cfg = wmcs_config();
  cfg.label = "tenant";
  const ownership_classifier c = compiled(cfg);
  EXPECT_EQ(c.label(), "tenant");
  EXPECT_EQ(c.classify({{"tenant", "tools"}}), ownership::owned);
  EXPECT_EQ(c.classify({{"tenant", "other"}}), ownership::user);
  // `project` means nothing now: this alert has no tenant and is the team's infrastructure.
  EXPECT_EQ(c.classify({{"project", "other"}, {"team", "wmcs"}}), ownership::owned);
}

TEST(OwnershipClassifier, AnnotateSetsLabelAndNormalisesWarn) {
  const ownership_classifier c = compiled(wmcs_config());

  label_set user{{"project", "deployment-prep"}, {"severity", "warn"}};
  EXPECT_EQ(c.annotate(user), ownership::user);
  EXPECT_EQ(
      user,
      (label_set{{"ownership", "user"}, {"project", "deployment-prep"}, {"severity", "warning"}}));

  label_set infra{{"team", "wmcs"}, {"severity", "page"}};
  EXPECT_EQ(c.annotate(infra), ownership::owned);
  EXPECT_EQ(infra.get("ownership"), "owned");
  EXPECT_EQ(infra.get("severity"), "page");

  label_set nobody{{"alertname", "X"}};
  EXPECT_EQ(c.annotate(nobody), ownership::unowned);
  EXPECT_EQ(nobody.get("ownership"), "unowned");
  EXPECT_FALSE(nobody.contains("severity"));  // nothing to normalise, nothing invented

  // A stale or forged ownership label from the payload is overwritten.
  label_set forged{{"ownership", "owned"}, {"project", "someone-else"}};
  EXPECT_EQ(c.annotate(forged), ownership::user);
  EXPECT_EQ(forged.get("ownership"), "user");

  // Only the exact spelling "warn" is rewritten.
  label_set warning{{"severity", "Warn"}};
  c.annotate(warning);
  EXPECT_EQ(warning.get("severity"), "Warn");
}

TEST(OwnershipClassifier, CompileErrors) {
  auto bad_regex = wmcs_config();
  bad_regex.owned_regex = {"tools\\..+", "(unclosed"};
  auto r1 = ownership_classifier::compile(bad_regex);
  ASSERT_TRUE(std::holds_alternative<std::string>(r1));
  EXPECT_NE(std::get<std::string>(r1).find("(unclosed"), std::string::npos);

  // A pattern that would only be valid by breaking out of its group is rejected.
  auto breakout = wmcs_config();
  breakout.owned_regex = {"a)|(b"};
  EXPECT_TRUE(std::holds_alternative<std::string>(ownership_classifier::compile(breakout)));

  auto bad_infra = wmcs_config();
  bad_infra.infrastructure = {spec("team", config::matcher_op::regex, "[")};
  auto r2 = ownership_classifier::compile(bad_infra);
  ASSERT_TRUE(std::holds_alternative<std::string>(r2));
  EXPECT_NE(std::get<std::string>(r2).find("infrastructure"), std::string::npos);

  auto no_label = wmcs_config();
  no_label.label = "";
  EXPECT_TRUE(std::holds_alternative<std::string>(ownership_classifier::compile(no_label)));
}

TEST(Ownership, ToString) {
  EXPECT_EQ(to_string(ownership::owned), "owned");
  EXPECT_EQ(to_string(ownership::user), "user");
  EXPECT_EQ(to_string(ownership::unowned), "unowned");
}

}  // namespace
}  // namespace alertrouter::routing
