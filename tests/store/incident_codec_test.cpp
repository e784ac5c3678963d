#include "store/incident_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

#include "store/state_store.h"
#include "tests/store/store_fixtures.h"

namespace alertrouter::store {
namespace {

using testing::expect_incident_eq;
using ::testing::HasSubstr;
using testing::make_incident;

TEST(IncidentCodec, RoundTripsAnOpenIncident) {
  const routing::incident inc = make_incident(7, 0x9f3c0a1b2c3d4e5full, false);
  expect_incident_eq(decode_incident(encode_incident(inc)), inc);
}

TEST(IncidentCodec, RoundTripsAClosedIncident) {
  const routing::incident inc = make_incident(8, 1, true);
  const routing::incident back = decode_incident(encode_incident(inc));
  ASSERT_TRUE(back.closed_at.has_value());
  expect_incident_eq(back, inc);
}

TEST(IncidentCodec, RoundTripsEmptyAndFlaggedFields) {
  routing::incident inc;
  inc.id = UINT64_MAX;  // beyond int64: stored as unsigned
  inc.fp = routing::fingerprint{UINT64_MAX};
  inc.last.details_omitted = true;
  inc.last.labels_omitted = true;
  inc.owner = routing::ownership::user;
  inc.paged = {{config::target_type::project, "deployment-prep", ""}};
  expect_incident_eq(decode_incident(encode_incident(inc)), inc);
}

TEST(IncidentCodec, KeepsBytesThatAreNotUtf8) {
  routing::incident inc = make_incident(1, 2, false);
  inc.last.annotations.set("description", "\xff\xfe bytes");
  expect_incident_eq(decode_incident(encode_incident(inc)), inc);
}

TEST(IncidentCodec, EscapesWhatJsonRequiresAndKeepsTheRest) {
  std::string every_control;
  for (int c = 0; c < 0x20; ++c) every_control += static_cast<char>(c);
  routing::incident inc = make_incident(3, 4, true);
  inc.last.labels.set("tricky",
                      every_control + "\"quoted\" back\\slash \x7f caf\xc3\xa9 \xe2\x9c\x93");
  inc.last.annotations.set("", "empty name");
  inc.last.generator_url =
      "http://prometheus.example/graph?g0.expr=up%7Bjob%3D%22node%22%7D&g0.tab=1";
  inc.routes = {"owned \"page\"", "fallback"};
  const std::string doc = encode_incident(inc);
  // Strict JSON (valid UTF-8 here): the escapes are right, and nothing raw is left inside.
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(doc, ec);
  ASSERT_FALSE(ec) << ec.message() << " in " << doc;
  EXPECT_EQ(v.at("last").at("labels").at("tricky").as_string(), inc.last.labels.get("tricky"));
  EXPECT_EQ(doc.find('\n'), std::string::npos);
  EXPECT_THAT(doc, HasSubstr(R"(\u0000\u0001)"));
  EXPECT_THAT(doc, HasSubstr(R"(\b\t\n\u000b\f\r)"));
  expect_incident_eq(decode_incident(doc), inc);
}

TEST(IncidentCodec, RefusesOtherDocumentsNamingTheField) {
  EXPECT_THROW(decode_incident("not json"), store_error);
  try {
    decode_incident(R"({"format":1,"id":"x"})");
    FAIL() << "no error";
  } catch (const store_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("id"));
  }
  std::string doc = encode_incident(make_incident(1, 2, false));
  doc.replace(doc.find("\"format\":1"), 10, "\"format\":9");
  EXPECT_THROW(decode_incident(doc), store_error);
}

}  // namespace
}  // namespace alertrouter::store
