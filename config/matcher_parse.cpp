#include "config/matcher_parse.h"

#include <re2/re2.h>

namespace alertrouter::config {
namespace {

// Go's regexp `\s`, which Alertmanager's matcher grammar uses.
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'; }

bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }

bool is_name_char(char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

bool is_valid_label_name(std::string_view name) {
  if (name.empty() || !is_name_start(name[0])) return false;
  for (char c : name) {
    if (!is_name_char(c)) return false;
  }
  return true;
}

bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t extra = 0;
    char32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0Fu;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (s.size() - i <= extra) return false;
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid, as in Go.
    static constexpr char32_t min_for_length[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_for_length[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

std::string quote(std::string_view s) {
  // Built by appends: gcc 12 at -O3 flags `"'" + std::string(s)` with a false -Wrestrict.
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('\'');
  out.append(s);
  out.push_back('\'');
  return out;
}

}  // namespace

std::variant<matcher_spec, std::string> parse_matcher(std::string_view text) {
  // The grammar and escape rules follow Alertmanager's pkg/labels.ParseMatcher:
  //   ^\s*(NAME)\s*(=~|=|!=|!~)\s*((?s).*?)\s*$
  // then an optional leading '"' demands a trailing one, and the value is unescaped.
  std::size_t i = 0;
  while (i < text.size() && is_space(text[i])) ++i;
  const std::size_t name_begin = i;
  while (i < text.size() && !is_space(text[i]) && text[i] != '=' && text[i] != '!' &&
         text[i] != '~' && text[i] != '"') {
    ++i;
  }
  const std::string_view name = text.substr(name_begin, i - name_begin);
  if (name.empty()) {
    return "matcher " + quote(text) + " has no label name (expected NAME=\"VALUE\")";
  }
  if (!is_valid_label_name(name)) {
    return "invalid label name " + quote(name) + " in matcher " + quote(text) +
           " (must match [a-zA-Z_][a-zA-Z0-9_]*)";
  }
  while (i < text.size() && is_space(text[i])) ++i;

  matcher_spec spec;
  spec.name = std::string(name);
  const std::string_view rest = text.substr(i);
  if (rest.starts_with("=~")) {
    spec.op = matcher_op::regex;
    i += 2;
  } else if (rest.starts_with("=")) {
    spec.op = matcher_op::equal;
    i += 1;
  } else if (rest.starts_with("!=")) {
    spec.op = matcher_op::not_equal;
    i += 2;
  } else if (rest.starts_with("!~")) {
    spec.op = matcher_op::not_regex;
    i += 2;
  } else {
    return "matcher " + quote(text) + " needs an operator (=, !=, =~ or !~) after " + quote(name);
  }

  while (i < text.size() && is_space(text[i])) ++i;
  std::size_t end = text.size();
  while (end > i && is_space(text[end - 1])) --end;
  std::string_view raw = text.substr(i, end - i);
  const std::string_view raw_for_messages = raw;

  bool expect_trailing_quote = false;
  if (raw.starts_with('"')) {
    raw.remove_prefix(1);
    expect_trailing_quote = true;
  }
  if (!is_valid_utf8(raw)) {
    return "matcher value for " + quote(name) + " is not valid UTF-8";
  }

  // Alertmanager's unescaping: \n, \" and \\ are escapes; any other backslash is literal (so
  // `"tools\..+"` keeps its regex escape), as is a backslash at the very end.
  std::string value;
  value.reserve(raw.size());
  bool escaped = false;
  for (std::size_t k = 0; k < raw.size(); ++k) {
    const char c = raw[k];
    if (escaped) {
      escaped = false;
      if (c == 'n') {
        value.push_back('\n');
      } else if (c == '"' || c == '\\') {
        value.push_back(c);
      } else {
        value.push_back('\\');
        value.push_back(c);
      }
      continue;
    }
    if (c == '\\') {
      if (k + 1 < raw.size()) {
        escaped = true;
      } else {
        value.push_back('\\');
      }
    } else if (c == '"') {
      if (!expect_trailing_quote || k + 1 < raw.size()) {
        return "matcher value " + std::string(raw_for_messages) + " for " + quote(name) +
               " contains an unescaped double quote (write \\\")";
      }
      expect_trailing_quote = false;
    } else {
      value.push_back(c);
    }
  }
  if (expect_trailing_quote) {
    return "matcher value " + std::string(raw_for_messages) + " for " + quote(name) +
           " is missing its closing double quote";
  }

  if (spec.op == matcher_op::regex || spec.op == matcher_op::not_regex) {
    if (auto why = regex_error(value)) {
      return "invalid regex " + quote(value) + " for " + quote(name) + ": " + *why;
    }
  }
  spec.value = std::move(value);
  return spec;
}

std::optional<std::string> regex_error(std::string_view pattern) {
  RE2::Options options;
  options.set_log_errors(false);
  const std::string p(pattern);
  // The pattern must be a regex on its own, not only once wrapped: `a)|(b` would otherwise
  // close the anchoring group early as `^(?:a)|(b)$` and match unanchored. (Go's regexp, and so
  // Alertmanager, accepts that silently; routing::matcher rejects it, and both must agree.)
  const RE2 bare(p, options);
  if (!bare.ok()) return bare.error();
  const RE2 anchored("^(?:" + p + ")$", options);
  if (!anchored.ok()) return anchored.error();
  return std::nullopt;
}

}  // namespace alertrouter::config
