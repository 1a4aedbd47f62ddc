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

// Joins the records.jsonl of shard (or partial) runs of one scenario into results as if run at once.
int verb_merge(const std::vector<std::string>& args, std::ostream& out) {
  po::options_description opts("merge options");
  std::vector<std::string> dirs;
  std::string out_dir;
  opts.add_options()("dirs", po::value(&dirs), "folders written by tailsim run --out")(
      "out", po::value(&out_dir), "folder for the merged records.jsonl, results.json and results.csv");
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
  std::vector<std::string> missing;
  for (std::size_t p = 0; p < total; ++p)
    if (!points.count(p)) missing.push_back(std::to_string(p));
  if (!missing.empty())
    throw InputError("", "merge", std::to_string(missing.size()) + " of " + std::to_string(total) +
                                      " points are in none of the folders (points " + join(missing) +
                                      "); is a shard missing or unfinished? (finish it with tailsim run --resume)");
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
  write_atomically((std::filesystem::path(out_dir) / "records.jsonl").string(), log_text);
  write_results(out_dir, results, ReportOptions{});
  out << "merged " << dirs.size() << " folder" << (dirs.size() == 1 ? "" : "s") << ", " << total << " points into " << out_dir << "\n";
  return 0;
}

}  // namespace tailsim
