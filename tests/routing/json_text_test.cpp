#include "routing/json_text.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdint>
#include <string>

namespace alertrouter::routing {
namespace {

// Parses `text` strictly (valid UTF-8 only): what a receiver does with a notification body.
boost::json::value parse(const std::string& text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  EXPECT_FALSE(ec) << ec.message() << " in " << text;
  return v;
}

TEST(JsonText, WritesNestedContainersWithCommasWhereTheyBelong) {
  json_text out(64);
  out.key("a", '{').integer(std::int64_t{-7});
  out.key("b").open('[');
  out.item().string("x");
  out.item().open('{');
  out.close('}');
  out.item().boolean(true);
  out.close(']');
  out.key("c").open('{');
  out.close('}');
  out.key("d").labels(label_set({{"k", "v"}, {"l", "w"}}));
  out.key("e").integer(std::uint64_t{18446744073709551615u});
  out.close('}');
  EXPECT_EQ(std::move(out).text(),
            R"({"a":-7,"b":["x",{},true],"c":{},"d":{"k":"v","l":"w"},"e":18446744073709551615})");
}

// put_string skips eight bytes at a time while none needs an escape: every character that needs
// one is tried at every offset of a 24-byte string, so each lands at every place in a word and
// in the tail, and the text must parse back to the same string.
TEST(JsonText, EscapesEveryCharacterThatNeedsItWhereverItStands) {
  std::string specials = "\"\\\x7f";
  for (int c = 0; c < 0x20; ++c) specials += static_cast<char>(c);
  for (const char special : specials) {
    for (std::size_t at = 0; at < 24; ++at) {
      std::string s(24, 'a');
      s[at] = special;
      s += "\xc3\xa9";  // UTF-8 after it, copied as it is
      json_text out(64);
      out.open('[').item().string(s).close(']');
      const std::string text = std::move(out).text();
      const boost::json::value v = parse(text);
      ASSERT_TRUE(v.is_array()) << text;
      ASSERT_EQ(v.as_array().at(0).as_string(), s)
          << "byte " << static_cast<int>(static_cast<unsigned char>(special)) << " at " << at;
      // The escape's length: 2 for a named one (\" \\ \b \f \n \r \t), 6 for \u00XX, 1 (the
      // byte itself) for DEL, which JSON allows as it is.
      const std::string named = "\"\\\b\f\n\r\t";
      const std::size_t escape = special == '\x7f'                          ? 1
                                 : named.find(special) != std::string::npos ? 2
                                                                            : 6;
      EXPECT_EQ(text.size(), 4 + s.size() - 1 + escape) << text;
    }
  }
}

TEST(JsonText, WritesNamedEscapesAndTheRestAsUnicode) {
  json_text out(64);
  out.open('[').item().string("\b\f\n\r\t\x01\x1f\"\\/").close(']');
  EXPECT_EQ(std::move(out).text(), R"(["\b\f\n\r\t\u0001\u001f\"\\/"])");
}

}  // namespace
}  // namespace alertrouter::routing
