#pragma once

#include <string>
#include <string_view>

#include "routing/incident.h"

namespace alertrouter::store {

// An incident as one compact JSON document (the `data` column of the incidents table): every
// field, including the last alert's labels, annotations and flags, so that decoding gives back an
// equal incident. Times are integer microseconds since the Unix epoch; fingerprints are 16 hex
// digits; labels are JSON objects (readable with sqlite3's json_extract). Pure.
std::string encode_incident(const routing::incident& inc);

// The inverse of encode_incident. Throws store_error (saying which field) on a document it did
// not write.
routing::incident decode_incident(std::string_view json);

}  // namespace alertrouter::store
