// records.jsonl: the append-only log of a run's completed sweep points in `--out DIR`, written one line per
// point as soon as the point completes (and flushed), so a sweep can be plotted while it runs, resumed after
// an interruption (`--resume`), or joined from shards (`tailsim merge`).
//
//   line 1:  {"fingerprint": HEX, "inputs": [[PATH, HEX], ...], "param_names": [...], "param_values": [[...], ...],
//             "points": N, "policies": [LABEL, ...] or [[LABEL, ...], ...], "replications": N, "scenario": NAME,
//             "seed": N, "shard": "I/N" or null, "steps": N, "tailsim_records": 2}
//   then:    {"point": P, "records": [RECORD, ...], "check": HEX}   one line per completed point, in completion order
//
// RECORD is a results.json record plus "wall_seconds" (slowdown_vs_k1 is left out: it needs other points,
// and is computed when the results are assembled). Numbers are written in their shortest round-trip form,
// so results assembled from the log are byte-identical to those of an uninterrupted run.
//
// The fingerprint hashes everything that decides the results (every point's scenario document with --set
// and --sweep applied, seed, steps, replications, and the content of every file the run read: configs,
// routing traces, profile tables, samples files), so a log never mixes two different runs. "inputs" lists
// those files with their content hashes (to say which one changed), "param_values" the sweep's values per
// axis (point P is their cartesian product's P-th, last axis fastest), "policies" the policy labels of every
// point (one list when all points have the same, else one list per point).
//
// "check" (16 hex digits) is a 64-bit FNV-1a of the header without "shard" (records_check_key), a newline,
// and the line without "check" as tailsim writes it ({"point":P,"records":[...]}, keys sorted, compact): a
// line edited, corrupted, or copied from another run's log fails it. Readers also check every point line
// against the header: its point in range, its records one per policy with the point's labels, params and
// steps. A log of format 1 (no "check") is refused: its results cannot be verified.
#pragma once
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "sim/config/files.hpp"
#include "sim/run/runner.hpp"

namespace tailsim {

// One record in results.json form; `timing` adds wall_seconds, `slowdown` adds slowdown_vs_k1 when set.
Json record_json(const Record& record, bool timing, bool slowdown = true);
// The inverse of record_json for a record of point `point`; throws InputError(file, where) when malformed.
Record record_from_json(const Json& j, std::size_t point, const std::vector<std::string>& param_names,
                        const std::string& file, const std::string& where);

// `inputs`: the files the run read while loading the scenario and building its points (InputFiles), in the
// order first read; their contents are hashed in that order, their paths are not (a project folder moved
// between an interruption and --resume still resumes).
std::string scenario_fingerprint(const Scenario& scenario, const std::vector<InputFiles::File>& inputs = {});
// The header line of a run of `scenario` whose points built `models` (their policy labels) after reading
// `inputs`. `sketch`: the run keeps quantiles in the sketch; it changes the results, so it is part of the
// fingerprint.
Json records_header(const Scenario& scenario, const std::vector<PointModel>& models,
                    const std::vector<InputFiles::File>& inputs, const std::string& shard, bool sketch = false);
// What a point line's "check" hashes besides the line: the header without "shard" (shards of one run share it).
std::string records_check_key(const Json& header);

struct RecordLog {
  std::string file;
  Json header;
  std::map<std::size_t, std::vector<Record>> points;  // completed points, each line verified
  // With LogChecks::lenient: "line N: why" for each point line left out (its point must run again).
  std::vector<std::string> rejected;
};

struct LogChecks {
  // --resume: the header this run would write; the log's must be the same (InputError naming line 1
  // otherwise: another run, a changed input file, or an edited header).
  const Json* run_header = nullptr;
  // --resume: a point line that fails its checksum or its checks against the header, and every line of a
  // point logged twice with different records, are left out and listed in RecordLog::rejected instead of
  // being an InputError (merge). A point logged twice alike is kept once either way.
  bool lenient = false;
};

// Reads a log; a last line cut short (a run killed while writing it) is ignored. Throws InputError naming
// the file and line for anything else that is malformed or fails its checks (see LogChecks). A point index
// beyond the header's points, or a header that is not this format's, is an error even when lenient.
RecordLog read_record_log(const std::string& file, const LogChecks& checks = {});
// The same from the log's text; `file` is only used in error messages.
RecordLog parse_record_log(const std::string& text, const std::string& file, const LogChecks& checks = {});

// A log's text checked line by line, for RecordWriter's --resume.
struct ParsedLog {
  RecordLog log;
  std::uintmax_t good_bytes = 0;  // end of the last complete line
  std::string kept;               // the header and the lines kept, each with its newline
  bool dropped = false;           // a complete line was left out (kept is not the first good_bytes)
};
ParsedLog scan_record_log(const std::string& text, const std::string& file, const LogChecks& checks);

// One point's line of the log (with wall_seconds when `timing`), checksummed with `check_key`
// (records_check_key of the log's header).
std::string records_line(const std::vector<Record>& point_records, const std::string& check_key, bool timing = false);

// Appends completed points to DIR/records.jsonl, one flushed line each.
class RecordWriter {
 public:
  // `resume`: keep the points already in the file (its header must be `header`: same run, same inputs) and
  // return them through completed(); lines that fail their checks are left out (warnings()), and the file
  // rewritten without them. Otherwise start a new file with `header`. `timing` (--timing) adds each
  // record's wall_seconds to the lines appended; without it the log is the same bytes every run.
  RecordWriter(const std::string& dir, const Json& header, bool resume, bool timing = false);
  ~RecordWriter();
  RecordWriter(const RecordWriter&) = delete;
  RecordWriter& operator=(const RecordWriter&) = delete;

  const std::map<std::size_t, std::vector<Record>>& completed() const { return completed_; }
  // With `resume`: "file: line N: why; point P runs again" for each line of the old log left out.
  const std::vector<std::string>& warnings() const { return warnings_; }
  void append(const std::vector<Record>& point_records);

 private:
  std::string file_;
  std::string check_key_;
  std::vector<std::string> warnings_;
  bool timing_ = false;
  int fd_ = -1;  // records.jsonl, open for appending
  std::map<std::size_t, std::vector<Record>> completed_;
};

}  // namespace tailsim
