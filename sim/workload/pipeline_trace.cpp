#include "sim/workload/pipeline_trace.hpp"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <tuple>

#include "sim/config/error.hpp"
#include "sim/config/files.hpp"

namespace tailsim {

const std::vector<std::string>& pipeline_trace_formats() {
  static const std::vector<std::string> formats = {"bytedance", "simple"};
  return formats;
}

std::string gunzip(const std::string& bytes, const std::string& path) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) throw InputError(path, "", "cannot start gzip decompression");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  std::string out;
  char buffer[1 << 16];
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buffer);
    z.avail_out = sizeof buffer;
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buffer, sizeof buffer - z.avail_out);
    if (rc == Z_BUF_ERROR && z.avail_in == 0) break;
  }
  inflateEnd(&z);
  if (rc != Z_STREAM_END) throw InputError(path, "", "not a complete gzip file (zlib: " + std::to_string(rc) + ")");
  return out;
}

namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  if (v.size() % 2) return *mid;
  return (*mid + *std::max_element(v.begin(), mid)) / 2;
}

template <class T>
std::optional<T> parse_number(std::string_view f) {
  T v{};
  const auto [ptr, ec] = std::from_chars(f.data(), f.data() + f.size(), v);
  if (ec != std::errc() || ptr != f.data() + f.size()) return std::nullopt;
  return v;
}

// Rows of a CSV with a fixed header: calls row(fields, line) for each non-empty line after it.
template <class F>
void for_rows(const std::string& text, const std::string& path, const std::string& header, F&& row) {
  std::size_t pos = 0;
  int line_no = 0;
  bool seen_header = false;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line = trim_blanks(std::string_view(text).substr(pos, end - pos));
    pos = end + 1;
    ++line_no;
    if (line.empty()) continue;
    if (!seen_header) {
      if (line != header) throw InputError(path, "line " + std::to_string(line_no), "expected the header '" + header + "', got " + quote_input(line));
      seen_header = true;
      continue;
    }
    row(split_csv_fields(line), line_no);
  }
  if (!seen_header) throw InputError(path, "", "empty trace: expected the header '" + header + "'");
}

struct Fail {
  const std::string& path;
  [[noreturn]] void operator()(int line, const std::string& message) const {
    throw InputError(path, "line " + std::to_string(line), message);
  }
};

// One compute op of a trace before the sizes are known.
struct ComputeRow {
  std::int64_t step;
  int d, stage, mb, line;
  bool backward;
  double seconds;
};

// Fills the trace's arrays from its compute rows; fails naming the first (step, rank, microbatch) without
// both ops, at the last line of that step.
void fill_compute(PipelineTrace& t, const std::vector<ComputeRow>& rows, int dp, int pp, const Fail& fail) {
  std::map<std::int64_t, int> last_line;
  int max_d = -1, max_s = -1, max_mb = -1;
  for (const ComputeRow& r : rows) {
    last_line[r.step] = std::max(last_line[r.step], r.line);
    max_d = std::max(max_d, r.d);
    max_s = std::max(max_s, r.stage);
    max_mb = std::max(max_mb, r.mb);
  }
  if (rows.empty()) throw InputError(t.file, "", "the trace has no forward or backward compute ops");
  t.dp = dp > 0 ? dp : max_d + 1;
  t.pp = pp > 0 ? pp : max_s + 1;
  t.microbatches = max_mb + 1;
  for (const auto& [step, line] : last_line) t.steps.push_back(step);
  std::map<std::int64_t, std::size_t> step_pos;
  for (std::size_t i = 0; i < t.steps.size(); ++i) step_pos[t.steps[i]] = i;
  const std::size_t n = t.steps.size() * static_cast<std::size_t>(t.dp * t.pp * t.microbatches);
  t.fwd_s.assign(n, std::numeric_limits<double>::quiet_NaN());
  t.bwd_s.assign(n, std::numeric_limits<double>::quiet_NaN());
  for (const ComputeRow& r : rows) {
    if (r.d >= t.dp || r.stage >= t.pp)
      fail(r.line, "dp_rank " + std::to_string(r.d) + " stage " + std::to_string(r.stage) + " is outside the job's " +
                       std::to_string(t.dp) + " x " + std::to_string(t.pp) + " ranks");
    double& slot = (r.backward ? t.bwd_s : t.fwd_s)[t.index(step_pos[r.step], r.d, r.stage, r.mb)];
    if (!std::isnan(slot)) fail(r.line, "a second " + std::string(r.backward ? "backward" : "forward") + " of microbatch " + std::to_string(r.mb) + " on dp_rank " + std::to_string(r.d) + " stage " + std::to_string(r.stage) + " in step " + std::to_string(r.step));
    slot = r.seconds;
  }
  for (std::size_t sp = 0; sp < t.steps.size(); ++sp)
    for (int d = 0; d < t.dp; ++d)
      for (int s = 0; s < t.pp; ++s)
        for (int mb = 0; mb < t.microbatches; ++mb)
          for (const bool bwd : {false, true}) {
            if (!std::isnan((bwd ? t.bwd_s : t.fwd_s)[t.index(sp, d, s, mb)])) continue;
            fail(last_line[t.steps[sp]], "step " + std::to_string(t.steps[sp]) + " (ending here) has no " + (bwd ? "backward" : "forward") + " of microbatch " + std::to_string(mb) + " on dp_rank " + std::to_string(d) + " stage " + std::to_string(s) + ": a trace needs every op of every rank");
          }
}

// ByteDance op types outside the schedule's compute.
enum class OpGroup { kCompute, kP2p, kStageDp, kRankPair, kGlobal, kLocal };

std::optional<std::pair<OpGroup, int>> classify(std::string_view op) {
  static const std::pair<const char*, std::pair<OpGroup, int>> table[] = {
      {"forward-compute", {OpGroup::kCompute, 0}}, {"backward-compute", {OpGroup::kCompute, 1}},
      {"forward-send", {OpGroup::kP2p, 0}}, {"forward-recv", {OpGroup::kP2p, 1}},
      {"backward-send", {OpGroup::kP2p, 2}}, {"backward-recv", {OpGroup::kP2p, 3}},
      {"grads-reduce-scatter", {OpGroup::kStageDp, 0}}, {"params-all-gather", {OpGroup::kStageDp, 1}},
      {"embedding-grads-all-reduce", {OpGroup::kRankPair, 2}}, {"layernorm-grads-all-reduce", {OpGroup::kLocal, 3}},
      {"optimizer-clip-main-grad", {OpGroup::kGlobal, 4}}, {"optimizer", {OpGroup::kLocal, 5}}, {"gc", {OpGroup::kLocal, 6}}};
  for (const auto& [name, g] : table)
    if (op == name) return g;
  return std::nullopt;
}

// A collective's group: its members' latest start and earliest end give its transfer time.
struct Span {
  double start = -1e300, end = 1e300;
  void add(double s, double e) { start = std::max(start, s), end = std::min(end, e); }
  double transfer() const { return std::max(0.0, end - start); }
};
using GroupKey = std::tuple<std::int64_t, int, int, int, int>;  // step, op, seq, and two group coordinates

}  // namespace

PipelineTrace parse_bytedance_trace(const std::string& text, const std::string& path, int dp, int pp) {
  PipelineTrace t;
  t.file = path;
  const Fail fail{path};
  std::vector<ComputeRow> compute;
  std::map<GroupKey, Span> groups;
  struct Member { GroupKey key; std::int64_t step; int d, stage; };
  std::vector<Member> members;
  for_rows(text, path, "dp_rank,stage,rank,step,optype,start_ts,duration,seq_id,mc,mb_id,gmc",
           [&](const std::vector<std::string_view>& f, int line) {
             if (f.size() != 11) fail(line, "expected 11 fields, got " + std::to_string(f.size()));
             const auto d = parse_number<int>(f[0]), stage = parse_number<int>(f[1]), seq = parse_number<int>(f[7]),
                        mc = parse_number<int>(f[8]), mb = parse_number<int>(f[9]);
             const auto step = parse_number<std::int64_t>(f[3]);
             const auto start = parse_number<double>(f[5]), dur = parse_number<double>(f[6]);
             if (!d || *d < 0 || !stage || *stage < 0 || !step || !seq || !mc || !mb || !start || !dur || *dur < 0)
               fail(line, "malformed row: expected integers dp_rank, stage, step, seq_id, mc, mb_id and seconds start_ts, duration >= 0");
             const auto kind = classify(f[4]);
             if (!kind) fail(line, "unknown optype " + quote_input(f[4]));
             const auto [group, code] = *kind;
             if (group == OpGroup::kCompute) {
               if (*mc != 0) fail(line, "model chunk " + std::to_string(*mc) + ": interleaved traces are not supported");
               if (*mb < 0) fail(line, "a compute op needs mb_id >= 0");
               compute.push_back({*step, *d, *stage, *mb, line, code == 1, *dur});
               return;
             }
             // p2p: pair send on one stage with recv on the next by (step, dp_rank, boundary, seq_id).
             GroupKey key{*step, code, *seq, *d, *stage};
             if (group == OpGroup::kP2p) {
               const int boundary = code == 0 || code == 3 ? *stage : *stage - 1;  // fwd-send s->s+1; bwd-recv from s+1
               key = GroupKey{*step, code < 2 ? 0 : 1, *seq, *d, boundary};
             } else if (group == OpGroup::kStageDp) {
               key = GroupKey{*step, code + 10, *seq, -1, *stage};
             } else if (group == OpGroup::kRankPair) {
               key = GroupKey{*step, code + 10, *seq, *d, -1};
             } else if (group == OpGroup::kGlobal) {
               key = GroupKey{*step, code + 10, *seq, -1, -1};
             } else {
               key = GroupKey{*step, code + 10, *seq, *d, *stage};
             }
             groups[key].add(*start, *start + *dur);
             if (group != OpGroup::kP2p) members.push_back({key, *step, *d, *stage});
           });
  fill_compute(t, compute, dp, pp, fail);
  std::vector<std::vector<double>> p2p(2 * static_cast<std::size_t>(t.pp));
  for (const auto& [key, span] : groups) {
    const int op = std::get<1>(key), boundary = std::get<4>(key);
    if (op < 2 && boundary >= 0 && boundary < t.pp) p2p[static_cast<std::size_t>(op * t.pp + boundary)].push_back(span.transfer());
  }
  // Per (step, rank): the sum of its post-schedule ops' times; per stage the median over steps and ranks.
  std::map<std::tuple<std::int64_t, int, int>, double> per_rank;
  for (const Member& m : members) per_rank[{m.step, m.d, m.stage}] += groups[m.key].transfer();
  std::vector<std::vector<double>> tails(static_cast<std::size_t>(t.pp));
  for (const auto& [k, v] : per_rank)
    if (std::get<2>(k) < t.pp) tails[static_cast<std::size_t>(std::get<2>(k))].push_back(v);
  for (int s = 0; s < t.pp; ++s) {
    t.p2p_fwd_s.push_back(median(p2p[static_cast<std::size_t>(s)]));
    t.p2p_bwd_s.push_back(median(p2p[static_cast<std::size_t>(t.pp + s)]));
    t.tail_s.push_back(median(tails[static_cast<std::size_t>(s)]));
  }
  return t;
}

PipelineTrace parse_simple_trace(const std::string& text, const std::string& path, int dp, int pp) {
  PipelineTrace t;
  t.file = path;
  const Fail fail{path};
  std::vector<ComputeRow> compute;
  for_rows(text, path, "step,dp_rank,stage,microbatch,forward_s,backward_s",
           [&](const std::vector<std::string_view>& f, int line) {
             if (f.size() != 6) fail(line, "expected 6 fields (step,dp_rank,stage,microbatch,forward_s,backward_s), got " + std::to_string(f.size()));
             const auto step = parse_number<std::int64_t>(f[0]);
             const auto d = parse_number<int>(f[1]), stage = parse_number<int>(f[2]), mb = parse_number<int>(f[3]);
             const auto fwd = parse_number<double>(f[4]), bwd = parse_number<double>(f[5]);
             if (!step || !d || *d < 0 || !stage || *stage < 0 || !mb || *mb < 0)
               fail(line, "step, dp_rank, stage and microbatch must be non-negative integers");
             if (!fwd || *fwd < 0 || !bwd || *bwd < 0) fail(line, "forward_s and backward_s must be numbers >= 0 (seconds)");
             compute.push_back({*step, *d, *stage, *mb, line, false, *fwd});
             compute.push_back({*step, *d, *stage, *mb, line, true, *bwd});
           });
  fill_compute(t, compute, dp, pp, fail);
  t.p2p_fwd_s.assign(static_cast<std::size_t>(t.pp), 0);
  t.p2p_bwd_s.assign(static_cast<std::size_t>(t.pp), 0);
  t.tail_s.assign(static_cast<std::size_t>(t.pp), 0);
  return t;
}

double PipelineTrace::mean_fwd_s() const {
  double s = 0;
  for (const double v : fwd_s) s += v;
  return fwd_s.empty() ? 0 : s / static_cast<double>(fwd_s.size());
}

double PipelineTrace::mean_bwd_s() const {
  double s = 0;
  for (const double v : bwd_s) s += v;
  return bwd_s.empty() ? 0 : s / static_cast<double>(bwd_s.size());
}

PipelineTrace read_pipeline_trace(const std::string& path, const std::string& format, int dp, int pp) {
  std::string text = read_text_file(path, "trace file");
  if (path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0) text = gunzip(text, path);
  return format == "simple" ? parse_simple_trace(text, path, dp, pp) : parse_bytedance_trace(text, path, dp, pp);
}

}  // namespace tailsim
