#include "tests/integration/prometheus_text.h"

#include <cstdlib>
#include <string>

namespace alertrouter::integration {
namespace {

// Parses one sample line; false if it is not one.
bool parse_line(std::string_view line, metric_sample& out) {
  std::size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
  out.name = std::string(line.substr(0, i));
  if (out.name.empty()) return false;
  out.labels.clear();
  if (i < line.size() && line[i] == '{') {
    ++i;
    for (;;) {
      while (i < line.size() && (line[i] == ',' || line[i] == ' ')) ++i;
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      const auto eq = line.find('=', i);
      if (eq == std::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
        return false;
      }
      std::string name(line.substr(i, eq - i));
      std::string value;
      i = eq + 2;
      for (; i < line.size() && line[i] != '"'; ++i) {
        if (line[i] == '\\' && i + 1 < line.size()) {
          ++i;
          value += line[i] == 'n' ? '\n' : line[i];
        } else {
          value += line[i];
        }
      }
      if (i >= line.size()) return false;
      ++i;  // closing quote
      out.labels.emplace(std::move(name), std::move(value));
    }
  }
  while (i < line.size() && line[i] == ' ') ++i;
  const std::string number(line.substr(i, line.find(' ', i) - i));
  if (number.empty()) return false;
  char* end = nullptr;
  out.value = std::strtod(number.c_str(), &end);
  return end != nullptr && *end == '\0';
}

}  // namespace

std::vector<metric_sample> parse_metrics(std::string_view text) {
  std::vector<metric_sample> samples;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const auto line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (line.empty() || line[0] == '#') continue;
    metric_sample s;
    if (parse_line(line, s)) samples.push_back(std::move(s));
  }
  return samples;
}

std::optional<double> metric_sum(std::string_view text, std::string_view name,
                                 const std::map<std::string, std::string>& labels) {
  std::optional<double> sum;
  for (const auto& s : parse_metrics(text)) {
    if (s.name != name) continue;
    bool match = true;
    for (const auto& [k, v] : labels) {
      const auto it = s.labels.find(k);
      if (it == s.labels.end() || it->second != v) {
        match = false;
        break;
      }
    }
    if (match) sum = sum.value_or(0) + s.value;
  }
  return sum;
}

}  // namespace alertrouter::integration
