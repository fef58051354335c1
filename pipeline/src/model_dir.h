// Model directories: what bpkit train writes and TrainedModel reads (internal to the pipeline
// library; the public side is bpkit/train.h).
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "bpkit/model_file.h"
#include "bpkit/pipeline.h"

namespace bpkit::model_dir {

// The member number N of an ensemble's file name model.N.bpk (N >= 2, decimal, no leading zero,
// at most 4 digits); 0 for any other name.
size_t member_number(const std::string& name);
// Removes DIR's ensemble members model.N.bpk with N > `members`, highest first (a reader meanwhile
// sees members 2..M without a gap). Throws FileError.
void remove_members_above(const std::string& dir, size_t members);
// The class names a class model stores ("class.0", "class.1", ... metadata).
std::vector<std::string> class_names(const Metadata& meta);
bool is_transcript_model(const Metadata& meta);
// DIR/fitted.yaml: a list of {stage, plugin, state}, one per fit stage, in stage order.
void write_fit_states(const std::string& path, const Pipeline& p,
                      const std::vector<std::pair<size_t, std::string>>& states);
// Gives the fit stages of `p` the states stored in DIR/fitted.yaml. Throws FileError (missing,
// damaged, not this pipeline's) or ConfigError (a state the stage refuses).
void read_fit_states(const std::string& dir, Pipeline& p);

}  // namespace bpkit::model_dir
