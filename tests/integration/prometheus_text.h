#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace alertrouter::integration {

// One sample of a Prometheus text exposition: `name{labels} value`.
struct metric_sample {
  std::string name;
  std::map<std::string, std::string> labels;  // unescaped values
  double value = 0;
};

// Every sample in `text` (Prometheus text format 0.0.4); comments, blank lines and lines that do
// not parse are skipped. Pure.
std::vector<metric_sample> parse_metrics(std::string_view text);

// The sum of the samples named `name` whose labels include all of `labels` (other labels may
// be present); nullopt when no sample matches. Pure.
std::optional<double> metric_sum(std::string_view text, std::string_view name,
                                 const std::map<std::string, std::string>& labels = {});

}  // namespace alertrouter::integration
