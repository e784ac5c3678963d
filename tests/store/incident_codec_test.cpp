#include "store/incident_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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
