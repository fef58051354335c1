// Signature enrollment databases (pipeline/src/signature.cpp): EnrollmentDb::load on any bytes
// stored as writer "w" (the JSON of one enrolled writer).
#include <string>

#include "bpkit/signature.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bpkit::EnrollmentDb db(bpkit_fuzz::scratch_dir());
  bpkit_fuzz::write_scratch("w.json", data, size);
  bpkit_fuzz::expect_clean("enrollment", [&] {
    const bpkit::EnrollmentDb::Writer w = db.load("w");
    (void)w;
  });
  return 0;
}
