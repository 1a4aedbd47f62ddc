// `tailsim merge`.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "sim/cli/verbs.hpp"
#include "sim/config/error.hpp"
#include "sim/config/files.hpp"
#include "sim/report/records.hpp"

namespace po = boost::program_options;

namespace tailsim {

namespace {

// 5000 as "5,000".
std::string with_commas(std::size_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// Sorted point numbers as ranges, "3-99, 120, 200-4000", the first kShown ranges at most ("..., and N
// more ranges" after them).
std::string point_ranges(const std::vector<std::size_t>& points) {
  constexpr std::size_t kShown = 12;
  std::vector<std::string> ranges;
  std::size_t count = 0;
  for (std::size_t i = 0; i < points.size();) {
    std::size_t j = i;
    while (j + 1 < points.size() && points[j + 1] == points[j] + 1) ++j;
    if (++count <= kShown)
      ranges.push_back(std::to_string(points[i]) + (j > i ? "-" + std::to_string(points[j]) : ""));
    i = j + 1;
  }
  std::string out = join(ranges);
  if (count > kShown) out += ", ... (" + with_commas(count - kShown) + " more ranges)";
  return out;
}

}  // namespace

// Joins the records.jsonl of shard (or partial) runs of one scenario into results as if run at once.
int verb_merge(const std::vector<std::string>& args, std::ostream& out) {
  po::options_description opts("merge options");
  std::vector<std::string> dirs;
  std::string out_dir;
  opts.add_options()("dirs", po::value(&dirs), "folders written by tailsim run --out")(
      "out", po::value(&out_dir)->value_name("DIR"),
      "folder for the merged records.jsonl, results.json and results.csv (required)");
  if (wants_help(args)) return print_verb_help(out, "merge", opts, "dirs");
  parse_verb_args(args, opts, "dirs");
  if (dirs.empty()) throw InputError("", "merge", "expected at least one folder to merge");
  if (out_dir.empty()) throw InputError("", "--out", "merge needs --out DIR");
  std::vector<RecordLog> logs;
  for (const std::string& d : dirs) logs.push_back(read_record_log((std::filesystem::path(d) / "records.jsonl").string()));
  const Json& first = logs.front().header;
  std::map<std::size_t, std::vector<Record>> points;
  std::map<std::size_t, std::string> origin;
  for (const RecordLog& log : logs) {
    if (log.header.at("fingerprint") != first.at("fingerprint"))
      throw InputError(log.file, "",
                       "comes from another scenario or other settings than " + logs.front().file + " (scenario '" +
                           log.header.value("scenario", "?") + "' fingerprint " + log.header.value("fingerprint", "?") +
                           " vs '" + first.value("scenario", "?") + "' " + first.value("fingerprint", "?") + ")");
    if (records_check_key(log.header) != records_check_key(first))  // the same run, yet another header
      throw InputError(log.file, "line 1",
                       "its header differs from that of " + logs.front().file + " with the same fingerprint: one of them was edited or is corrupt");
    for (const auto& [p, records] : log.points) {
      if (points.count(p) && records_line(points[p], "", false) != records_line(records, "", false))
        throw InputError(log.file, "", "point " + std::to_string(p) + " differs from the same point in " + origin[p]);
      points[p] = records;
      origin[p] = log.file;
    }
  }
  const std::size_t total = first.at("points").get<std::size_t>();
  std::vector<std::size_t> missing;
  for (std::size_t p = 0; p < total; ++p)
    if (!points.count(p)) missing.push_back(p);
  if (!missing.empty())
    throw InputError("", "merge", "points " + point_ranges(missing) + " missing (" + with_commas(missing.size()) + " of " +
                                      with_commas(total) +
                                      "): they are in none of the folders; is a shard missing or unfinished? (finish "
                                      "it with tailsim run --resume)");
  RunResults results;
  results.scenario = first.at("scenario").get<std::string>();
  results.seed = first.at("seed").get<std::uint64_t>();
  results.steps = first.at("steps").get<std::int64_t>();
  results.param_names = first.at("param_names").get<std::vector<std::string>>();
  Json header = first;
  header["shard"] = nullptr;
  prepare_output_dir(out_dir, "--out");
  std::string log_text = header.dump() + "\n";
  const std::string check_key = records_check_key(header);
  for (const auto& [p, records] : points) {
    results.records.insert(results.records.end(), records.begin(), records.end());
    log_text += records_line(records, check_key);
  }
  assemble_results(results);
  const std::filesystem::path dir(out_dir);
  write_atomically_all({{(dir / "records.jsonl").string(), log_text},
                        {(dir / "results.json").string(), results_json(results, ReportOptions{}).dump(2) + "\n"},
                        {(dir / "results.csv").string(), results_csv(results, ReportOptions{})}});
  out << "merged " << dirs.size() << " folder" << (dirs.size() == 1 ? "" : "s") << ", " << total << " points into " << out_dir << "\n";
  return 0;
}

}  // namespace tailsim
