// records.jsonl: the append-only log of a run's completed sweep points in `--out DIR`, written one line per
// point as soon as the point completes (and flushed), so a sweep can be plotted while it runs, resumed after
// an interruption (`--resume`), or joined from shards (`tailsim merge`).
//
//   line 1:  {"tailsim_records": 1, "scenario": NAME, "fingerprint": HEX, "seed": N, "steps": N,
//             "replications": N, "points": N, "param_names": [...], "shard": "I/N" or null}
//   then:    {"point": P, "records": [RECORD, ...]}        one line per completed point, in completion order
//
// RECORD is a results.json record plus "wall_seconds" (slowdown_vs_k1 is left out: it needs other points,
// and is computed when the results are assembled). Numbers are written in their shortest round-trip form,
// so results assembled from the log are byte-identical to those of an uninterrupted run. The fingerprint
// hashes everything that decides the results (every point's scenario document with --set and --sweep
// applied, seed, steps, replications), so a log never mixes two different runs.
#pragma once
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "sim/run/runner.hpp"

namespace tailsim {

// One record in results.json form; `timing` adds wall_seconds, `slowdown` adds slowdown_vs_k1 when set.
Json record_json(const Record& record, bool timing, bool slowdown = true);
// The inverse of record_json for a record of point `point`; throws InputError(file, where) when malformed.
Record record_from_json(const Json& j, std::size_t point, const std::vector<std::string>& param_names,
                        const std::string& file, const std::string& where);

std::string scenario_fingerprint(const Scenario& scenario);
// `sketch`: the run keeps quantiles in the sketch; it changes the results, so it is part of the fingerprint.
Json records_header(const Scenario& scenario, const std::string& shard, bool sketch = false);

struct RecordLog {
  std::string file;
  Json header;
  std::map<std::size_t, std::vector<Record>> points;  // completed points
};

// Reads a log; a last line cut short (a run killed while writing it) is ignored. Throws InputError naming
// the file and line for anything else that is malformed.
RecordLog read_record_log(const std::string& file);
// The same from the log's text; `file` is only used in error messages.
RecordLog parse_record_log(const std::string& text, const std::string& file);

// One point's line of the log (with wall_seconds when `timing`).
std::string records_line(const std::vector<Record>& point_records, bool timing = true);

// Appends completed points to DIR/records.jsonl, one flushed line each.
class RecordWriter {
 public:
  // `resume`: keep the points already in the file (it must belong to the same scenario: same fingerprint)
  // and return them through completed(); otherwise start a new file with `header`.
  RecordWriter(const std::string& dir, const Json& header, bool resume);
  ~RecordWriter();
  RecordWriter(const RecordWriter&) = delete;
  RecordWriter& operator=(const RecordWriter&) = delete;

  const std::map<std::size_t, std::vector<Record>>& completed() const { return completed_; }
  void append(const std::vector<Record>& point_records);

 private:
  std::string file_;
  int fd_ = -1;  // records.jsonl, open for appending
  std::map<std::size_t, std::vector<Record>> completed_;
};

}  // namespace tailsim
