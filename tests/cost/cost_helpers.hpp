// Shared helpers for the cost-model tests: GPUs and cost models by name, the shipped tables, and a CSV reader
// independent of the one under test.
#pragma once
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "sim/cluster/cluster.hpp"
#include "sim/cost/cost_model.hpp"
#include "sim/cost/profile_table.hpp"
#include "sim/config/configs.hpp"

namespace tailsim::test {

// The Mixtral-8x7B expert (configs/models/mixtral-8x7b.json) and the Qwen3.6-35B-A3B one (hidden 2048,
// moe_intermediate 512; models/h100-sxm/qwen3.6-35b-a3b_fused_moe.csv).
inline const ExpertShape kMixtralExpert{4096, 14336, true, "bf16"};
inline const ExpertShape kQwen36Expert{2048, 512, true, "bf16"};

inline GpuSpec gpu_spec(const std::string& name) {
  const Json at(name);
  const ConfigDoc doc = load_config(JsonReader(at, ""), "gpus", name);
  return parse_gpu_spec(JsonReader(doc.json, doc.file));
}

inline std::unique_ptr<CostModel> cost_model(const Json& spec, const std::string& gpu,
                                             const ExpertShape& shape) {
  return make_cost_model(JsonReader(spec, "test.json"), CostContext{gpu_spec(gpu), shape});
}

inline std::string shipped(const std::string& relative) {
  return (models_root() / relative).string();
}

// The per-expert tables in models/, as (gpu config, path under models/).
inline std::vector<std::pair<std::string, std::string>> shipped_ffn_tables() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string gpu : {"a100-sxm-80gb", "h100-sxm"})
    for (const auto& e : std::filesystem::directory_iterator(models_root() / gpu))
      if (e.path().filename().string().ends_with("_ffn.csv"))
        out.emplace_back(gpu, gpu + "/" + e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// The data rows of a CSV file with '#' comment lines, as columns by header name (values parsed with stod).
inline std::map<std::string, std::vector<double>> read_csv_columns(const std::string& file) {
  std::ifstream in(file);
  std::string line;
  std::vector<std::string> header;
  std::map<std::string, std::vector<double>> columns;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> fields;
    std::stringstream s(line);
    for (std::string f; std::getline(s, f, ',');) fields.push_back(f);
    if (header.empty()) {
      header = fields;
      continue;
    }
    for (std::size_t i = 0; i < fields.size() && i < header.size(); ++i)
      columns[header[i]].push_back(std::stod(fields[i]));
  }
  return columns;
}

}  // namespace tailsim::test
