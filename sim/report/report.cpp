#include "sim/report/report.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <unistd.h>

#include "sim/report/records.hpp"
#include "sim/config/error.hpp"

namespace tailsim {

namespace fs = std::filesystem;

namespace {

std::string param_text(const Json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (const char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// Shortest decimal text that reads back to the same double, as nlohmann writes numbers.
std::string number(double v) { return Json(v).dump(); }

// The what-if cells: the slowdown, then each decomposition as its entries joined by ';' (empty cells where
// the record has none).
void write_whatif(std::ostream& os, const std::optional<WhatIfRecord>& w) {
  os << ',' << (w ? number(w->slowdown) : std::string());
  for (const std::vector<double>* values : {w ? &w->by_dp_rank : nullptr, w ? &w->by_stage : nullptr}) {
    os << ',';
    if (!values) continue;
    for (std::size_t i = 0; i < values->size(); ++i) os << (i ? ";" : "") << number((*values)[i]);
  }
}

}  // namespace

Json results_json(const RunResults& r, const ReportOptions& options) {
  Json records = Json::array();
  for (const Record& rec : r.records) records.push_back(record_json(rec, options.timing));
  Json j{{"scenario", r.scenario}, {"seed", r.seed}, {"records", records}};
  if (r.stopped) j["incomplete"] = true;
  if (r.sketch_quantiles) j["quantiles"] = "sketch: relative error <= 2^-11";  // stopped early (--time-limit, Ctrl-C): some points are missing
  return j;
}

std::string results_csv(const RunResults& r, const ReportOptions& options) {
  std::ostringstream os;
  for (const std::string& p : r.param_names) os << csv_field(p) << ',';
  os << "policy,steps,step_time.mean,step_time.stddev,step_time.ci95_low,step_time.ci95_high,step_time.p50,"
        "step_time.p90,step_time.p99,step_time.p999,step_time.max,slowdown_vs_k1,vs_baseline.policy,"
        "vs_baseline.speedup,vs_baseline.ci95_low,vs_baseline.ci95_high,idle_fraction,extra_work_fraction,"
        "load_imbalance,time_split.compute,time_split.communication,time_split.barrier_wait,bytes_moved,"
        "throughput.tokens_per_s,throughput.tokens_per_s_per_gpu,dropped_fraction,rerouted_fraction,dropped_gate_mass,events";
  // What-if columns only where a record has them (training replays), so other results keep their columns.
  const bool whatif = std::any_of(r.records.begin(), r.records.end(), [](const Record& rec) { return rec.whatif.has_value(); });
  if (whatif) os << ",whatif_slowdown,whatif_by_dp_rank,whatif_by_stage";
  if (options.timing) os << ",wall_seconds";
  os << '\n';
  // An empty cell: the field does not apply to the record.
  const auto cell = [](const std::optional<double>& v) { return v ? number(*v) : std::string(); };
  for (const Record& rec : r.records) {
    for (const auto& [k, v] : rec.params) os << csv_field(param_text(v)) << ',';
    const StepTimeSummary& s = rec.step_time;
    os << csv_field(rec.policy) << ',' << s.count;
    for (const double v : {s.mean, s.stddev, s.ci95_low, s.ci95_high, s.p50, s.p90, s.p99, s.p999, s.max})
      os << ',' << number(v);
    os << ',' << cell(rec.slowdown_vs_k1) << ',';
    if (const auto& v = rec.vs_baseline)
      os << csv_field(v->policy) << ',' << number(v->speedup) << ',' << cell(v->ci95_low) << ',' << cell(v->ci95_high);
    else
      os << ",,,";
    os << ',' << number(rec.idle_fraction) << ',' << cell(rec.extra_work_fraction) << ',';
    if (rec.moe) {
      os << number(rec.moe->load_imbalance) << ',' << number(rec.moe->compute_fraction) << ','
         << number(rec.moe->communication_fraction) << ',' << number(rec.moe->barrier_wait_fraction) << ','
         << number(rec.moe->bytes_moved) << ',' << number(rec.moe->tokens_per_s) << ','
         << number(rec.moe->tokens_per_s_per_gpu) << ',';
    } else {
      os << ",,,,,,,";
    }
    if (const auto& c = rec.moe ? rec.moe->routing : std::nullopt)
      os << number(c->dropped_fraction) << ',' << number(c->rerouted_fraction) << ',' << number(c->dropped_gate_mass) << ',';
    else
      os << ",,,";
    os << rec.events;
    if (whatif) write_whatif(os, rec.whatif);
    if (options.timing) os << ',' << number(rec.wall_seconds);
    os << '\n';
  }
  return os.str();
}

namespace {

std::string fixed(double v, int digits) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(digits) << v;
  return os.str();
}

std::string percent(double fraction, int digits) { return fixed(100.0 * fraction, digits) + "%"; }

// Which of the optional column groups the table has: each appears when some record has its fields.
struct TableColumns {
  bool moe = false, routing = false, speedup = false, timing = false, whatif = false;
  std::string baseline;  // the label the speed-ups are against
  // Digits of the step-time columns (mean, p50, p99, p99.9): 6 where any value of the column is under
  // 0.1 s, else 3, one precision per column so its numbers line up.
  std::array<int, 4> step_digits{3, 3, 3, 3};
};

std::array<double, 4> step_columns(const StepTimeSummary& s) { return {s.mean, s.p50, s.p99, s.p999}; }

// The index with the largest what-if slowdown and its value ("0: 1.97x").
std::string culprit(const std::vector<double>& by) {
  const auto top = std::max_element(by.begin(), by.end());
  return std::to_string(top - by.begin()) + ": " + fixed(*top, 3) + "x";
}

std::vector<std::string> table_row(const Record& rec, const TableColumns& cols) {
  std::vector<std::string> row;
  for (const auto& [k, v] : rec.params) row.push_back(param_text(v));
  const StepTimeSummary& s = rec.step_time;
  row.push_back(rec.policy);
  const std::array<double, 4> times = step_columns(s);
  for (std::size_t c = 0; c < times.size(); ++c) row.push_back(fixed(times[c], cols.step_digits[c]));
  row.push_back(rec.slowdown_vs_k1 ? fixed(*rec.slowdown_vs_k1, 2) + "x" : "-");
  if (cols.speedup) {
    const auto& v = rec.vs_baseline;
    row.push_back(v ? fixed(v->speedup, 3) + "x" : "-");
    row.push_back(v && v->ci95_high ? "±" + fixed(*v->ci95_high - v->speedup, 3) : "-");
  }
  row.push_back(percent(rec.idle_fraction, 1));
  row.push_back(rec.extra_work_fraction ? percent(*rec.extra_work_fraction, 1) : "-");
  if (cols.moe) {
    if (rec.moe) {
      row.push_back(fixed(rec.moe->load_imbalance, 2));
      // The barrier wait is the idle column already.
      for (const double f : {rec.moe->compute_fraction, rec.moe->communication_fraction}) row.push_back(percent(f, 1));
      row.push_back(fixed(rec.moe->tokens_per_s_per_gpu, 0));
    } else {
      row.insert(row.end(), 4, "-");
    }
  }
  if (cols.routing) {
    if (const auto& c = rec.moe ? rec.moe->routing : std::nullopt) {
      for (const double f : {c->dropped_fraction, c->rerouted_fraction, c->dropped_gate_mass}) row.push_back(percent(f, 2));
    } else {
      row.insert(row.end(), 3, "-");
    }
  }
  if (cols.whatif) {
    const auto& w = rec.whatif;
    row.push_back(w ? fixed(w->slowdown, 3) + "x" : "-");
    row.push_back(w && !w->by_dp_rank.empty() ? culprit(w->by_dp_rank) : "-");
    row.push_back(w && !w->by_stage.empty() ? culprit(w->by_stage) : "-");
  }
  if (cols.timing) row.push_back(fixed(rec.wall_seconds, 3));
  return row;
}

// Display width of a cell: its UTF-8 code points ("±" is two bytes, one column).
std::size_t cell_width(const std::string& text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

}  // namespace

void print_table(std::ostream& out, const RunResults& r, const ReportOptions& options) {
  TableColumns cols;
  cols.timing = options.timing;
  for (const Record& rec : r.records) {
    cols.moe = cols.moe || rec.moe;
    cols.whatif = cols.whatif || rec.whatif;
    cols.routing = cols.routing || (rec.moe && rec.moe->routing);
    if (rec.vs_baseline && !cols.speedup) cols.baseline = rec.vs_baseline->policy;
    cols.speedup = cols.speedup || rec.vs_baseline;
    const std::array<double, 4> times = step_columns(rec.step_time);
    for (std::size_t c = 0; c < times.size(); ++c)
      if (times[c] < 0.1) cols.step_digits[c] = 6;
  }
  std::vector<std::string> header = r.param_names;
  for (const char* h : {"policy", "E[step] s", "p50 s", "p99 s", "p99.9 s", "slowdown"}) header.emplace_back(h);
  if (cols.speedup) header.insert(header.end(), {"vs " + cols.baseline, "95% CI"});
  header.insert(header.end(), {"idle", "extra work"});
  if (cols.moe) header.insert(header.end(), {"imbalance", "compute", "comm", "tok/s/GPU"});
  if (cols.routing) header.insert(header.end(), {"dropped", "rerouted", "gate mass"});
  if (cols.whatif) header.insert(header.end(), {"what-if", "top dp rank", "top stage"});
  if (cols.timing) header.emplace_back("wall s");
  std::vector<std::vector<std::string>> rows;
  for (const Record& rec : r.records) rows.push_back(table_row(rec, cols));
  std::vector<std::size_t> width(header.size());
  for (std::size_t c = 0; c < header.size(); ++c) {
    width[c] = cell_width(header[c]);
    for (const auto& row : rows) width[c] = std::max(width[c], cell_width(row[c]));
  }
  out << r.scenario << ": " << r.steps << " steps per point, seed " << r.seed << "\n";
  auto line = [&](const std::vector<std::string>& cells) {
    for (std::size_t c = 0; c < cells.size(); ++c) {
      const std::string pad(width[c] - cell_width(cells[c]), ' ');
      const bool text = c == r.param_names.size();  // policy: left-aligned
      out << (c ? " | " : "") << (text ? cells[c] + pad : pad + cells[c]);
    }
    out << '\n';
  };
  line(header);
  std::size_t total = 0;
  for (const std::size_t w : width) total += w;
  out << std::string(total + 3 * (width.size() - 1), '-') << '\n';
  for (const auto& row : rows) line(row);
}

}  // namespace tailsim
