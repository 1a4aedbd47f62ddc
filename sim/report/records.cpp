#include "sim/report/records.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim/core/hash.hpp"
#include "sim/report/report.hpp"
#include "sim/config/configs.hpp"
#include "sim/config/files.hpp"
#include "sim/config/error.hpp"

namespace tailsim {

namespace fs = std::filesystem;

std::string scenario_fingerprint(const Scenario& sc, const std::vector<InputFiles::File>& inputs) {
  Json all = Json::array({sc.seed, sc.steps, sc.replications});
  for (const ScenarioPoint& p : sc.points) {
    Json doc = p.doc;
    for (const char* label : {"description", "expect"}) doc.erase(label);  // do not change the results
    all.push_back(std::move(doc));
  }
  Json contents = Json::array();
  for (const InputFiles::File& f : inputs) contents.push_back(hex16(f.hash));
  all.push_back(std::move(contents));
  return hex16(fnv1a64(all.dump()));  // of the canonical text (nlohmann sorts object keys)
}

namespace {

constexpr int kRecordsFormat = 2;

// What records_header() writes and every reader relies on.
const std::vector<const char*> kHeaderKeys = {"tailsim_records", "scenario", "fingerprint", "seed",     "steps",
                                              "replications",    "points",   "param_names", "param_values",
                                              "policies",        "inputs"};

}  // namespace

Json records_header(const Scenario& sc, const std::vector<PointModel>& models,
                    const std::vector<InputFiles::File>& inputs, const std::string& shard, bool sketch) {
  Json names = Json::array(), values = Json::array();
  for (const SweepAxis& a : sc.axes) {
    names.push_back(a.path);
    values.push_back(a.values);
  }
  Json per_point = Json::array();
  for (const PointModel& m : models) {
    Json labels = Json::array();
    for (const auto& p : m.policies) labels.push_back(p->label());
    per_point.push_back(std::move(labels));
  }
  const bool same = std::all_of(per_point.begin(), per_point.end(), [&](const Json& l) { return l == per_point.front(); });
  Json files = Json::array();
  for (const InputFiles::File& f : inputs) files.push_back(Json::array({f.path, hex16(f.hash)}));
  return Json{{"tailsim_records", kRecordsFormat},
              {"scenario", sc.name},
              {"fingerprint", scenario_fingerprint(sc, inputs) + (sketch ? "-sketch" : "")},
              {"seed", sc.seed},
              {"steps", sc.steps},
              {"replications", sc.replications},
              {"points", sc.points.size()},
              {"param_names", names},
              {"param_values", values},
              {"policies", same && !per_point.empty() ? per_point.front() : per_point},
              {"inputs", files},
              {"shard", shard.empty() ? Json() : Json(shard)}};
}

std::string records_check_key(const Json& header) {
  Json key = header;
  key.erase("shard");
  return key.dump();
}

namespace {

// The checksum of a point line's body ({"point":P,"records":[...]} as dump() writes it).
std::string line_check(const std::string& check_key, const std::string& body) {
  return hex16(fnv1a64(body, fnv1a64("\n", fnv1a64(check_key))));
}

std::string point_body(const std::vector<Record>& records, bool timing) {
  Json list = Json::array();
  for (const Record& r : records) list.push_back(record_json(r, timing, false));
  return Json{{"point", records.empty() ? 0 : records.front().point}, {"records", list}}.dump();
}

// What a header promises about every point line, read from it once.
struct LogShape {
  std::size_t points = 0;
  std::int64_t steps = 0;
  std::vector<std::string> names;
  std::vector<std::vector<Json>> values;  // per axis
  Json policies;                          // a list of labels, or one list per point
  std::string check_key;

  std::vector<std::pair<std::string, Json>> params(std::size_t point) const {
    std::vector<std::pair<std::string, Json>> out(names.size());
    for (std::size_t a = names.size(); a-- > 0;) {
      out[a] = {names[a], values[a][point % values[a].size()]};
      point /= values[a].size();
    }
    return out;
  }
  const Json& labels(std::size_t point) const {
    return policies.front().is_string() ? policies : policies.at(point);
  }
};

bool is_list_of_strings(const Json& j) {
  return j.is_array() && !j.empty() && std::all_of(j.begin(), j.end(), [](const Json& s) { return s.is_string(); });
}

// Checks the header's types and that its counts agree with each other; std::invalid_argument or a
// Json::exception when they do not (the caller names the line).
LogShape read_header(const Json& j, const std::string& file, const std::string& where) {
  if (j.is_object() && j.contains("tailsim_records") && j.at("tailsim_records") != kRecordsFormat) {
    if (j.at("tailsim_records") == 1)
      throw InputError(file, where,
                       "this log was written by an older tailsim (records format 1, whose lines carry no checksum, so "
                       "its results cannot be verified); start a fresh run: leave out --resume, or use another --out");
    throw InputError(file, where, "records format " + j.at("tailsim_records").dump() + " is not one this tailsim reads (" +
                                      std::to_string(kRecordsFormat) + ")");
  }
  if (!j.is_object() || !std::all_of(kHeaderKeys.begin(), kHeaderKeys.end(), [&](const char* k) { return j.contains(k); }))
    throw InputError(file, where, "expected a tailsim records header ({\"tailsim_records\": 2, ...})");
  LogShape shape;
  shape.names = j.at("param_names").get<std::vector<std::string>>();
  shape.points = json_integer<std::size_t>(j.at("points"), "points");
  if (shape.points < 1 || shape.points > kMaxSweepPoints)
    throw std::invalid_argument("'points': expected 1 to " + std::to_string(kMaxSweepPoints) + ", got " +
                                std::to_string(shape.points));
  (void)json_integer<std::uint64_t>(j.at("seed"), "seed");
  shape.steps = json_integer<std::int64_t>(j.at("steps"), "steps");
  if (shape.steps < 1) throw std::invalid_argument("'steps': expected an integer >= 1");
  if (json_integer<std::int64_t>(j.at("replications"), "replications") < 1)
    throw std::invalid_argument("'replications': expected an integer >= 1");
  (void)j.at("scenario").get<std::string>();  // type_error unless strings
  (void)j.at("fingerprint").get<std::string>();
  shape.values = j.at("param_values").get<std::vector<std::vector<Json>>>();
  std::size_t product = 1;
  for (const auto& v : shape.values) product = v.empty() || product > kMaxSweepPoints ? 0 : product * v.size();
  if (shape.values.size() != shape.names.size() || product != shape.points)
    throw std::invalid_argument("'param_values': expected one list of values per name in 'param_names', " +
                                std::to_string(shape.points) + " points in all");
  shape.policies = j.at("policies");
  if (!is_list_of_strings(shape.policies) &&
      !(shape.policies.is_array() && shape.policies.size() == shape.points &&
        std::all_of(shape.policies.begin(), shape.policies.end(), is_list_of_strings)))
    throw std::invalid_argument("'policies': expected the policies' labels, or a list of them per point");
  for (const Json& f : j.at("inputs"))
    if (!f.is_array() || f.size() != 2 || !f[0].is_string() || !f[1].is_string())
      throw std::invalid_argument("'inputs': expected [path, hash] pairs");
  if (j.contains("shard") && !j.at("shard").is_null() && !j.at("shard").is_string())
    throw std::invalid_argument("'shard': expected \"I/N\" or null");
  shape.check_key = records_check_key(j);
  return shape;
}

// Why --resume cannot use a log whose header is `old` for the run whose header is `run` ("" if it can).
std::string header_mismatch(const Json& old, const Json& run) {
  const auto cannot = [](const std::string& why) {
    return "cannot resume: " + why + "; start over (leave out --resume) or use another --out";
  };
  if (old.at("fingerprint") != run.at("fingerprint")) {
    // The same files read, one with other content: say which (the likeliest cause after an edit).
    const Json &was = old.at("inputs"), &is = run.at("inputs");
    if (was.size() == is.size())
      for (std::size_t i = 0; i < is.size(); ++i)
        if (was[i][0] == is[i][0] && was[i][1] != is[i][1])
          return cannot("the file " + is[i][0].get<std::string>() + " changed since this run began (content hash " +
                        was[i][1].get<std::string>() + " then, " + is[i][1].get<std::string>() +
                        " now), and the results in the folder would mix with new ones");
    return cannot("the folder holds results of another run (scenario '" + old.at("scenario").get<std::string>() +
                  "', fingerprint " + old.at("fingerprint").get<std::string>() + ", shard " +
                  old.value("shard", Json()).dump() + "; this run: fingerprint " +
                  run.at("fingerprint").get<std::string>() + ")");
  }
  if (old.value("shard", Json()) != run.at("shard"))
    return cannot("the folder holds results of another shard (" + old.value("shard", Json()).dump() + "; this run: " +
                  run.at("shard").dump() + ")");
  // "inputs": their contents are in the fingerprint; their paths may differ (the project moved) and do not matter.
  for (const auto& [key, value] : run.items())
    if (key != "shard" && key != "inputs" && old.at(key) != value) {
      const std::string was = old.at(key).dump(), is = value.dump();
      return cannot("the header's '" + key + "' is " + (was.size() > 60 ? was.substr(0, 57) + "..." : was) +
                    " but this run's is " + (is.size() > 60 ? is.substr(0, 57) + "..." : is) +
                    " with the same fingerprint: the log was edited or is corrupt");
    }
  return "";
}

// The records of a point line whose structure and point index are sound, or why they cannot be trusted.
// Throws InputError for what is an error even when lenient (a point beyond the header's).
std::string read_point_line(const Json& j, const LogShape& shape, const std::string& file, const std::string& where,
                            std::size_t& point, std::vector<Record>& records, std::string& body) {
  if (!j.is_object() || !j.contains("point") || !j.at("point").is_number_unsigned() || !j.contains("records") ||
      !j.at("records").is_array())
    return "expected {\"point\": N, \"records\": [...], \"check\": HEX}";
  point = json_integer<std::size_t>(j.at("point"), "point");
  if (point >= shape.points)
    throw InputError(file, where, "point " + std::to_string(point) + " is out of range (the run has " +
                                      std::to_string(shape.points) + " points)");
  try {
    for (const Json& r : j.at("records")) records.push_back(record_from_json(r, point, shape.names, file, where));
  } catch (const InputError& e) {
    return e.message();
  }
  Json rest = j;
  rest.erase("check");
  body = rest.dump();
  if (!j.contains("check") || !j.at("check").is_string()) return "no \"check\" (the line's checksum)";
  if (j.at("check") != line_check(shape.check_key, body))
    return "checksum mismatch: the line was changed or corrupted after tailsim wrote it, or comes from another run";
  const Json& labels = shape.labels(point);
  if (records.size() != labels.size())
    return std::to_string(records.size()) + " records, but the run has " + std::to_string(labels.size()) + " policies";
  const auto params = shape.params(point);
  for (std::size_t k = 0; k < records.size(); ++k) {
    const Record& r = records[k];
    if (r.policy != labels[k])
      return "record " + std::to_string(k) + " is of policy '" + r.policy + "', expected '" +
             labels[k].get<std::string>() + "'";
    if (r.params != params)
      return "record " + std::to_string(k) + " has other params than point " + std::to_string(point) + " of the sweep";
    if (r.step_time.count != shape.steps)
      return "record " + std::to_string(k) + " has " + std::to_string(r.step_time.count) + " steps, expected " +
             std::to_string(shape.steps);
  }
  return "";
}

// One pass over a log's lines (scan_record_log): the header, then each point line checked and kept once.
class LogScanner {
 public:
  LogScanner(const std::string& file, const LogChecks& checks) : file_(file), checks_(checks) { out_.log.file = file; }

  void scan(const std::string& all) {
    std::size_t pos = 0, line_no = 0;
    while (pos < all.size()) {
      const std::size_t end = all.find('\n', pos);
      ++line_no;
      if (end == std::string::npos) break;  // a line cut short by a killed run: ignored
      const std::string text = all.substr(pos, end - pos);
      pos = end + 1;
      out_.good_bytes = pos;
      line(text, line_no);
    }
  }

  ParsedLog finish() {
    if (out_.log.header.is_null()) throw InputError(file_, "", "empty records log (no header line)");
    for (const auto& [why, point] : rejected_)
      out_.log.rejected.push_back(why + (point == kNoPoint || out_.log.points.count(point)
                                             ? "; left out"
                                             : "; point " + std::to_string(point) + " runs again"));
    if (out_.dropped) {  // rebuild `kept` from the lines still kept, in their order
      std::string kept = out_.kept.substr(0, out_.kept.find('\n') + 1);
      std::vector<std::pair<std::size_t, std::size_t>> lines;
      for (const auto& [p, s] : seen_)
        if (!s.bad) lines.emplace_back(s.kept_at, s.kept_size);
      std::sort(lines.begin(), lines.end());
      for (const auto& [at, size] : lines) kept += out_.kept.substr(at, size);
      out_.kept = std::move(kept);
    }
    return std::move(out_);
  }

 private:
  static constexpr std::size_t kNoPoint = static_cast<std::size_t>(-1);
  struct Seen {
    std::string body;
    std::size_t kept_at = 0, kept_size = 0;  // its line in `kept`
    std::size_t line_no = 0;
    bool bad = false;  // logged twice with different records: left out
  };

  void reject(const std::string& where, const std::string& why, std::size_t point) {
    if (!checks_.lenient) throw InputError(file_, where, why);
    rejected_.emplace_back(where + ": " + why, point);
    out_.dropped = true;
  }

  void line(const std::string& text, std::size_t line_no) {
    const std::string where = "line " + std::to_string(line_no);
    Json j;
    try {
      j = parse_json_text(text, file_);
    } catch (const InputError& e) {
      if (line_no == 1) throw InputError(file_, where, "not valid JSON: " + e.message());
      return reject(where, "not valid JSON: " + e.message(), kNoPoint);
    }
    std::size_t point = kNoPoint;
    std::vector<Record> records;
    std::string body, why;
    try {
      if (line_no == 1) {
        shape_ = read_header(j, file_, where);
        if (checks_.run_header)
          if (const std::string m = header_mismatch(j, *checks_.run_header); !m.empty()) throw InputError(file_, where, m);
        out_.log.header = std::move(j);
        out_.kept = text + "\n";
        return;
      }
      why = read_point_line(j, shape_, file_, where, point, records, body);
    } catch (const Json::exception& e) {  // a field of the wrong type
      throw InputError(file_, where, "malformed records line: " + json_error_text(e));
    } catch (const std::invalid_argument& e) {
      throw InputError(file_, where, std::string("malformed records line: ") + e.what());
    }
    if (!why.empty()) return reject(where, why, point);
    keep(text, line_no, where, point, std::move(records), std::move(body));
  }

  void keep(const std::string& text, std::size_t line_no, const std::string& where, std::size_t point,
            std::vector<Record> records, std::string body) {
    if (const auto it = seen_.find(point); it != seen_.end()) {
      Seen& first = it->second;
      out_.dropped = true;  // the same point twice: one line at most is kept
      if (first.bad || first.body == body) return;
      reject(where, "point " + std::to_string(point) + " differs from its line " + std::to_string(first.line_no) +
                        " (both are left out)",
             point);
      first.bad = true;
      out_.log.points.erase(point);
      return;
    }
    seen_[point] = Seen{std::move(body), out_.kept.size(), text.size() + 1, line_no, false};
    out_.kept += text + "\n";
    out_.log.points[point] = std::move(records);
  }

  const std::string& file_;
  const LogChecks& checks_;
  ParsedLog out_;
  LogShape shape_;
  std::map<std::size_t, Seen> seen_;
  std::vector<std::pair<std::string, std::size_t>> rejected_;  // "line N: why", and its point if known
};

}  // namespace

ParsedLog scan_record_log(const std::string& all, const std::string& file, const LogChecks& checks) {
  LogScanner scanner(file, checks);
  scanner.scan(all);
  return scanner.finish();
}

namespace {

ParsedLog parse_log(const std::string& file, const LogChecks& checks) {
  return scan_record_log(read_text_file(file, "records log"), file, checks);
}

}  // namespace

RecordLog read_record_log(const std::string& file, const LogChecks& checks) { return parse_log(file, checks).log; }
RecordLog parse_record_log(const std::string& text, const std::string& file, const LogChecks& checks) {
  return scan_record_log(text, file, checks).log;
}

std::string records_line(const std::vector<Record>& records, const std::string& check_key, bool timing) {
  std::string body = point_body(records, timing);
  const std::string check = line_check(check_key, body);
  body.pop_back();  // the closing brace: "check" goes last, after the members it covers
  return body + ",\"check\":\"" + check + "\"}\n";
}

}  // namespace tailsim
