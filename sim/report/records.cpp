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

#include "sim/report/report.hpp"
#include "sim/config/configs.hpp"
#include "sim/config/files.hpp"
#include "sim/config/error.hpp"

namespace tailsim {

namespace fs = std::filesystem;

Json record_json(const Record& rec, bool timing, bool slowdown) {
  Json params = Json::object();
  for (const auto& [k, v] : rec.params) params[k] = v;
  const StepTimeSummary& s = rec.step_time;
  Json j = {{"params", params},
            {"policy", rec.policy},
            {"steps", s.count},
            {"step_time",
             {{"mean", s.mean}, {"stddev", s.stddev}, {"ci95_low", s.ci95_low}, {"ci95_high", s.ci95_high}, {"p50", s.p50},
              {"p90", s.p90}, {"p99", s.p99}, {"p999", s.p999}, {"max", s.max}}}};
  if (slowdown && rec.slowdown_vs_k1) j["slowdown_vs_k1"] = *rec.slowdown_vs_k1;
  j["idle_fraction"] = rec.idle_fraction;
  if (rec.extra_work_fraction) j["extra_work_fraction"] = *rec.extra_work_fraction;
  if (rec.moe) {
    j["load_imbalance"] = rec.moe->load_imbalance;
    j["time_split"] = {{"compute", rec.moe->compute_fraction},
                       {"communication", rec.moe->communication_fraction},
                       {"barrier_wait", rec.moe->barrier_wait_fraction}};
    j["bytes_moved"] = rec.moe->bytes_moved;
  }
  j["events"] = rec.events;
  if (timing) j["wall_seconds"] = rec.wall_seconds;
  return j;
}

namespace {

// The values are taken with nlohmann's at() and get(): the message of a malformed record quotes their
// exception ("malformed record: [json.exception.out_of_range.403] key 'p99' not found"), and merge and
// --resume print it as it is; JsonReader only answers which optional keys are present.
StepTimeSummary step_time_from_json(const Json& j) {
  const Json& st = j.at("step_time");
  StepTimeSummary s;
  s.count = json_integer<std::int64_t>(j.at("steps"), "steps");
  s.mean = st.at("mean").get<double>();
  s.stddev = st.at("stddev").get<double>();
  s.ci95_low = st.at("ci95_low").get<double>();
  s.ci95_high = st.at("ci95_high").get<double>();
  s.p50 = st.at("p50").get<double>();
  s.p90 = st.at("p90").get<double>();
  s.p99 = st.at("p99").get<double>();
  s.p999 = st.at("p999").get<double>();
  s.max = st.at("max").get<double>();
  return s;
}

MoeRecord moe_from_json(const Json& j) {
  MoeRecord m;
  m.load_imbalance = j.at("load_imbalance").get<double>();
  const Json& split = j.at("time_split");
  m.compute_fraction = split.at("compute").get<double>();
  m.communication_fraction = split.at("communication").get<double>();
  m.barrier_wait_fraction = split.at("barrier_wait").get<double>();
  m.bytes_moved = j.at("bytes_moved").get<double>();
  return m;
}

}  // namespace

Record record_from_json(const Json& j, std::size_t point, const std::vector<std::string>& param_names,
                        const std::string& file, const std::string& where) {
  try {
    const JsonReader r(j, file, where);
    Record rec;
    rec.point = point;
    const Json& params = j.at("params");
    for (const std::string& name : param_names) rec.params.emplace_back(name, params.at(name));
    if (params.size() != param_names.size()) throw std::invalid_argument("params do not match the header's param_names");
    rec.policy = j.at("policy").get<std::string>();
    rec.step_time = step_time_from_json(j);
    rec.idle_fraction = j.at("idle_fraction").get<double>();
    if (r.has("extra_work_fraction")) rec.extra_work_fraction = j.at("extra_work_fraction").get<double>();
    if (r.has("load_imbalance")) rec.moe = moe_from_json(j);
    rec.events = json_integer<std::uint64_t>(j.at("events"), "events");
    if (r.has("wall_seconds")) rec.wall_seconds = j.at("wall_seconds").get<double>();
    return rec;
  } catch (const Json::exception& e) {
    throw InputError(file, where, std::string("malformed record: ") + e.what());
  } catch (const std::invalid_argument& e) {
    throw InputError(file, where, std::string("malformed record: ") + e.what());
  }
}

std::string scenario_fingerprint(const Scenario& sc) {
  Json all = Json::array({sc.seed, sc.steps, sc.replications});
  for (const ScenarioPoint& p : sc.points) {
    Json doc = p.doc;
    for (const char* label : {"description", "expect"}) doc.erase(label);  // do not change the results
    all.push_back(std::move(doc));
  }
  // FNV-1a, 64 bits, of the canonical text (nlohmann sorts object keys).
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const unsigned char c : all.dump()) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  std::ostringstream hex;
  hex << std::hex << h;
  return hex.str();
}

Json records_header(const Scenario& sc, const std::string& shard, bool sketch) {
  Json names = Json::array();
  for (const SweepAxis& a : sc.axes) names.push_back(a.path);
  return Json{{"tailsim_records", 1},     {"scenario", sc.name},         {"fingerprint", scenario_fingerprint(sc) + (sketch ? "-sketch" : "")},
              {"seed", sc.seed},          {"steps", sc.steps},           {"replications", sc.replications},
              {"points", sc.points.size()}, {"param_names", names},        {"shard", shard.empty() ? Json() : Json(shard)}};
}

namespace {

struct ParsedLog {
  RecordLog log;
  std::uintmax_t good_bytes = 0;  // end of the last complete line
};

// What records_header() writes and every reader relies on.
const std::vector<const char*> kHeaderKeys = {"tailsim_records", "scenario",     "fingerprint", "seed",
                                              "steps",           "replications", "points",      "param_names"};

ParsedLog parse_log_text(const std::string& all, const std::string& file) {
  ParsedLog out;
  out.log.file = file;
  std::size_t pos = 0, line_no = 0;
  std::vector<std::string> names;
  const auto read_line = [&](Json& j, const std::string& where) {
    if (line_no == 1) {
      if (!j.is_object() ||
          !std::all_of(kHeaderKeys.begin(), kHeaderKeys.end(), [&](const char* k) { return j.contains(k); }))
        throw InputError(file, where, "expected a tailsim records header ({\"tailsim_records\": 1, ...})");
      names = j.at("param_names").get<std::vector<std::string>>();
      if (json_integer<std::size_t>(j.at("points"), "points") > kMaxSweepPoints)
        throw std::invalid_argument("'points': more than a sweep can have");
      (void)json_integer<std::uint64_t>(j.at("seed"), "seed");
      (void)json_integer<std::int64_t>(j.at("steps"), "steps");
      (void)j.at("scenario").get<std::string>();  // type_error unless strings
      (void)j.at("fingerprint").get<std::string>();
      out.log.header = std::move(j);
    } else {
      if (!j.is_object() || !j.contains("point") || !j.at("point").is_number_unsigned() || !j.contains("records"))
        throw InputError(file, where, "expected {\"point\": N, \"records\": [...]}");
      const auto point = json_integer<std::size_t>(j.at("point"), "point");
      if (point >= out.log.header.at("points").get<std::size_t>())
        throw InputError(file, where, "point " + std::to_string(point) + " is out of range");
      std::vector<Record> records;
      for (const Json& r : j.at("records")) records.push_back(record_from_json(r, point, names, file, where));
      out.log.points[point] = std::move(records);
    }
  };
  while (pos < all.size()) {
    const std::size_t end = all.find('\n', pos);
    ++line_no;
    const std::string where = "line " + std::to_string(line_no);
    if (end == std::string::npos) break;  // a line cut short by a killed run: ignored
    Json j;
    try {
      j = parse_json_text(all.substr(pos, end - pos), file);
    } catch (const InputError& e) {
      throw InputError(file, where, "not valid JSON: " + e.message());
    }
    try {
      read_line(j, where);
    } catch (const Json::exception& e) {  // a field of the wrong type
      throw InputError(file, where, "malformed records line: " + json_error_text(e));
    } catch (const std::invalid_argument& e) {
      throw InputError(file, where, std::string("malformed records line: ") + e.what());
    }
    pos = end + 1;
    out.good_bytes = pos;
  }
  if (out.log.header.is_null()) throw InputError(file, "", "empty records log (no header line)");
  return out;
}

ParsedLog parse_log(const std::string& file) { return parse_log_text(read_text_file(file, "records log"), file); }

}  // namespace

RecordLog read_record_log(const std::string& file) { return parse_log(file).log; }
RecordLog parse_record_log(const std::string& text, const std::string& file) {
  return parse_log_text(text, file).log;
}

std::string records_line(const std::vector<Record>& records, bool timing) {
  Json list = Json::array();
  for (const Record& r : records) list.push_back(record_json(r, timing, false));
  return Json{{"point", records.empty() ? 0 : records.front().point}, {"records", list}}.dump() + "\n";
}

namespace {

// A descriptor closed at the end of its scope unless released.
struct OwnedFd {
  int fd = -1;
  ~OwnedFd() {
    if (fd >= 0) ::close(fd);
  }
  int release() { return std::exchange(fd, -1); }
};

std::string read_all(int fd, const std::string& file) {
  std::string text;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw IoError(file, "cannot read", errno);
    if (n == 0) return text;
    text.append(buffer, static_cast<std::size_t>(n));
  }
}

}  // namespace

RecordWriter::RecordWriter(const std::string& dir, const Json& header, bool resume)
    : file_((fs::path(dir) / "records.jsonl").string()) {
  OwnedFd log;
  if (resume) {
    // Never through a link: a records.jsonl planted as a link would have tailsim cut and append to
    // whatever file it points to.
    log.fd = ::open(file_.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (log.fd < 0 && errno == ELOOP)
      throw InputError(file_, "",
                       "cannot resume: it is a symbolic link, and tailsim does not follow links in its output folder "
                       "(remove it, or use another --out)");
    if (log.fd < 0 && errno != ENOENT)
      throw InputError(file_, "", std::string("cannot open to resume: ") + std::strerror(errno));
  }
  if (log.fd >= 0) {
    struct stat st {};
    if (::fstat(log.fd, &st) != 0 || !S_ISREG(st.st_mode))
      throw InputError(file_, "", "cannot resume: not a regular file");
    ParsedLog parsed = parse_log_text(read_all(log.fd, file_), file_);
    const Json& old = parsed.log.header;
    if (old.value("fingerprint", "") != header.at("fingerprint") || old.value("shard", Json()) != header.at("shard"))
      throw InputError(file_, "",
                       "cannot resume: the folder holds results of another run (scenario '" + old.value("scenario", "?") +
                           "', fingerprint " + old.value("fingerprint", "?") + ", shard " + old.value("shard", Json()).dump() +
                           "; this run: fingerprint " + header.at("fingerprint").get<std::string>() +
                           "); use another --out or leave out --resume to start over");
    if (::ftruncate(log.fd, static_cast<off_t>(parsed.good_bytes)) != 0)  // drop a line cut short
      throw IoError(file_, "cannot cut the unfinished last line", errno);
    if (::lseek(log.fd, 0, SEEK_END) < 0) throw IoError(file_, "cannot append", errno);
    completed_ = std::move(parsed.log.points);
  } else {
    log.fd = write_atomically_keep_open(file_, header.dump() + "\n");  // created anew, never through a link
  }
  fd_ = log.release();
}

RecordWriter::~RecordWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void RecordWriter::append(const std::vector<Record>& point_records) { write_all(fd_, records_line(point_records), file_); }

}  // namespace tailsim
