#include "routing/json_escapes.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace alertrouter::routing {
namespace {

using offsets = std::vector<std::uint32_t>;

offsets found(std::string_view text) {
  json_escapes escapes;
  EXPECT_TRUE(escapes.find(text)) << text;
  return escapes.offsets();
}

constexpr std::uint32_t kEnd = json_escapes::kEnd;

TEST(JsonEscapes, FindsEachEscapeOnceAndEndsTheListWithKEnd) {
  EXPECT_EQ(found(""), (offsets{kEnd}));
  EXPECT_EQ(found(R"({"a":"b"})"), (offsets{kEnd}));
  EXPECT_EQ(found(R"({"a\"b":"c\\d"})"), (offsets{3, 10, kEnd}));
  // Every escape there is, next to each other.
  EXPECT_EQ(found(R"("\"\\\/\b\f\n\r\t\u00e9\u0026")"),
            (offsets{1, 3, 5, 7, 9, 11, 13, 15, 17, 23, kEnd}));
  // An escaped backslash does not escape what follows it.
  EXPECT_EQ(found(R"("\\\\" "\\\"")"), (offsets{1, 3, 8, 10, kEnd}));
  EXPECT_EQ(found(R"("\\u0041")"), (offsets{1, kEnd}));
}

TEST(JsonEscapes, FindsEscapesPastManyBlocksOfText) {
  std::string text = "\"";
  offsets want;
  for (int i = 0; i < 40; ++i) {
    text += std::string(static_cast<std::size_t>(i * 7), 'x');
    want.push_back(static_cast<std::uint32_t>(text.size()));
    text += i % 2 == 0 ? "\\u0026" : "\\\"";
  }
  text += "\"";
  want.push_back(kEnd);
  EXPECT_EQ(found(text), want);
}

TEST(JsonEscapes, RejectsWhatAParserRejectsAndTheSurrogates) {
  for (const std::string text :
       {R"("\x")", R"("\U0041")", R"("\u004")", R"("\u004g")", R"("\uGHIJ")", R"("\')", R"(\)",
        R"("a\)", R"(\u12)", R"("\ud800")", R"("\uDBFF\uDC00")", R"("\udfff")", R"("ok\n" "\q")"}) {
    json_escapes escapes;
    EXPECT_FALSE(escapes.find(text)) << text;
  }
  // The code points around the surrogates are fine.
  EXPECT_EQ(found(R"("\ud7ff\ue000")"), (offsets{1, 7, kEnd}));
}

TEST(JsonEscapes, KeepsNothingOfTheLastText) {
  json_escapes escapes;
  ASSERT_TRUE(escapes.find(R"("\n\n\n")"));
  ASSERT_TRUE(escapes.find(R"("a\tb")"));
  EXPECT_EQ(escapes.offsets(), (offsets{2, kEnd}));
}

TEST(JsonEscapes, PutUnescapedWritesWhatEachEscapeStandsFor) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"(\")", "\""},
      {R"(\\)", "\\"},
      {R"(\/)", "/"},
      {R"(\b)", "\b"},
      {R"(\f)", "\f"},
      {R"(\n)", "\n"},
      {R"(\r)", "\r"},
      {R"(\t)", "\t"},
      {R"(\u0041)", "A"},
      {R"(\u0000)", std::string(1, '\0')},
      {R"(\u007F)", "\x7F"},
      {R"(\u0080)", "\xC2\x80"},
      {R"(\u00e9)", "\xC3\xA9"},
      {R"(\u07FF)", "\xDF\xBF"},
      {R"(\u0800)", "\xE0\xA0\x80"},
      {R"(\u20AC)", "\xE2\x82\xAC"},
      {R"(\uFFFF)", "\xEF\xBF\xBF"},
  };
  for (const auto& [escape, want] : cases) {
    char out[4] = {};
    const char* const end = put_unescaped(escape.data(), out);
    const auto n = static_cast<std::size_t>(end - out);
    EXPECT_EQ(std::string(out, n), want) << escape;
    EXPECT_EQ(escape_length(escape.data()), escape.size()) << escape;
  }
}

}  // namespace
}  // namespace alertrouter::routing
