// Measured per-microbatch compute times of a pipeline-parallel job, replayed by the `pipeline` workload
// with every rank keeping its own measured behaviour (nothing is resampled). Two formats:
//  - "bytedance": the op-level traces of ByteDance's straggler study (StragglerAnalysis artifact; CSV,
//    optionally gzipped, columns dp_rank,stage,rank,step,optype,start_ts,duration,seq_id,mc,mb_id,gmc).
//    Besides forward/backward compute it yields, per stage, the median p2p transfer time and the median
//    time of the ops around the flush (parameter all-gather, gradient reduce-scatter, embedding and
//    layernorm all-reduces, gradient clipping, optimizer, gc), each collective's transfer time taken as
//    its group's earliest end minus latest start (the artifact's transfer_duration);
//  - "simple": our own CSV, header step,dp_rank,stage,microbatch,forward_s,backward_s, one row per
//    (step, dp_rank, stage, microbatch) with every combination present.
// A trace missing a rank's op, or with a malformed row, fails with the file and line.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tailsim {

struct PipelineTrace {
  std::string file;
  int dp = 0, pp = 0, microbatches = 0;
  std::vector<std::int64_t> steps;  // the trace's step numbers, ascending; replayed in turn (cycling)
  std::vector<double> fwd_s, bwd_s;  // seconds, at index(step position, d, stage, mb)
  // Per stage, 0 when the format has none: p2p transfer from stage s to s + 1 (and its gradient back), and
  // what the ops outside the pipeline schedule add to the step.
  std::vector<double> p2p_fwd_s, p2p_bwd_s, tail_s;
  std::size_t index(std::size_t step, int d, int stage, int mb) const {
    return ((step * static_cast<std::size_t>(dp) + static_cast<std::size_t>(d)) * static_cast<std::size_t>(pp) +
            static_cast<std::size_t>(stage)) * static_cast<std::size_t>(microbatches) + static_cast<std::size_t>(mb);
  }
  double mean_fwd_s() const;  // over every step, rank and microbatch: the counterfactual's op time
  double mean_bwd_s() const;
};

const std::vector<std::string>& pipeline_trace_formats();
// Reads `path` (gzipped when it ends in .gz) in `format`; `dp`, `pp` > 0: the job's sizes (a rank absent from
// the whole trace is then caught), 0: taken from the trace.
PipelineTrace read_pipeline_trace(const std::string& path, const std::string& format, int dp = 0, int pp = 0);
PipelineTrace parse_bytedance_trace(const std::string& text, const std::string& path, int dp, int pp);
PipelineTrace parse_simple_trace(const std::string& text, const std::string& path, int dp, int pp);
// The content of a gzip file as text; InputError(path) when it is not valid gzip.
std::string gunzip(const std::string& bytes, const std::string& path);

}  // namespace tailsim
