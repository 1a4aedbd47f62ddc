#include "sim/cli/cost_verb.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include <boost/program_options.hpp>

#include "sim/cli/verbs.hpp"
#include "sim/cluster/cluster.hpp"
#include "sim/cost/cost_model.hpp"
#include "sim/cost/profile_table.hpp"
#include "sim/cost/profiled.hpp"
#include "sim/cost/roofline.hpp"
#include "sim/config/configs.hpp"
#include "sim/config/error.hpp"
#include "sim/workload/moe.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace tailsim {

namespace {

const std::vector<std::int64_t> kDefaultTokens = {1, 8, 64, 256, 512, 1024, 2048, 4096};
constexpr std::int64_t kMaxTokens = std::int64_t{1} << 30;

std::vector<std::int64_t> parse_tokens(const std::string& text) {
  std::vector<std::int64_t> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    std::int64_t tokens = 0;
    const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), tokens);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || tokens < 1 ||
        tokens > kMaxTokens)
      throw InputError("", "--tokens",
                       "expected a comma-separated list of integers from 1 to " + std::to_string(kMaxTokens) +
                           " (e.g. 1,8,64,512), got '" + item + "' in '" + text + "'");
    out.push_back(tokens);
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

std::string fixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

std::string shape_text(const ExpertShape& s) {
  return std::to_string(s.hidden) + " -> " + std::to_string(s.intermediate) +
         (s.gated ? ", gated, " : ", ungated, ") + s.dtype;
}

bool same_shape(const ExpertShape& a, const ExpertShape& b) {
  return a.hidden == b.hidden && a.intermediate == b.intermediate && a.gated == b.gated &&
         a.bytes_per_element() == b.bytes_per_element();
}

// A table under models/ is shown as models/<gpu>/<file>; any other as given.
std::string display(const std::string& file) {
  const fs::path root = models_root();
  const fs::path rel = fs::path(file).lexically_relative(root);
  if (!rel.empty() && *rel.begin() != "..") return (fs::path("models") / rel).string();
  return file;
}

// The measured table the analytical kinds are compared with (and fitted to).
struct Reference {
  ProfileTable table;
  std::optional<ExpertShape> shape;  // what it was measured for, from its metadata
  bool for_model = false;            // for the model's own expert shape: the profiled kind applies
  ExpertShape error_shape;           // where models are evaluated for their error: `shape`, else the model's
};

// `own`: the model's table by name. Any other is the model's when its metadata says so or says nothing.
Reference make_reference(ProfileTable table, const ExpertShape& model_shape, bool own) {
  Reference r{std::move(table), std::nullopt, own, model_shape};
  r.shape = measured_shape(r.table, model_shape.dtype);
  r.for_model = own || !r.shape || same_shape(*r.shape, model_shape);
  if (r.shape) r.error_shape = *r.shape;
  return r;
}

// --table FILE; else models/<gpu>/<model>_expert_ffn.csv; else the GPU's *_ffn.csv (with shape metadata)
// whose expert weights are closest in size to the model's, names breaking ties.
std::optional<Reference> find_reference(const std::string& table_option, const std::string& gpu,
                                        const std::string& model, const ExpertShape& shape) {
  if (!table_option.empty()) {
    const fs::path file = resolve_model_file(table_option, fs::current_path(), "", "--table");
    return make_reference(read_profile_table(file.string()), shape, false);
  }
  const fs::path dir = models_root() / gpu;
  const fs::path own = dir / (model + "_expert_ffn.csv");
  if (fs::is_regular_file(own)) return make_reference(read_profile_table(own.string()), shape, true);
  if (!fs::is_directory(dir)) return std::nullopt;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && name.ends_with("_ffn.csv")) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::optional<Reference> best;
  double best_distance = 0;
  for (const fs::path& f : files) {
    Reference r = make_reference(read_profile_table(f.string()), shape, false);
    if (!r.shape) continue;
    const double distance = std::fabs(std::log(r.shape->weight_bytes() / shape.weight_bytes()));
    if (!best || distance < best_distance) {
      best_distance = distance;
      best = std::move(r);
    }
  }
  return best;
}

// One cost-model kind as the verb shows it.
struct Shown {
  std::string kind;
  std::unique_ptr<CostModel> model;  // for the model's expert shape
  std::optional<ErrorStats> error;   // of the same spec built for the reference table's shape, on that table
};

std::unique_ptr<CostModel> build(const Json& spec, const std::string& where, const CostContext& context) {
  return make_cost_model(JsonReader(spec, "", where), context);
}

// Where a model's numbers come from, in one line.
std::string describe(const CostModel& m, const GpuSpec& gpu, const std::string& dtype) {
  const auto roofline_text = [&](const RooflineParams& p) {
    const double peak = peak_flops_for(gpu, dtype);
    return fixed(p.peak_flops / 1e12, 1) + " TFLOP/s (" + fixed(100 * p.peak_flops / peak, 0) + " % of " +
           fixed(peak / 1e12, 1) + "), " + fixed(p.bandwidth_bytes_per_s / 1e12, 2) + " TB/s (" +
           fixed(100 * p.bandwidth_bytes_per_s / gpu.memory_bandwidth_bytes_per_s, 0) + " % of " +
           fixed(gpu.memory_bandwidth_bytes_per_s / 1e12, 2) + "), overhead " + fixed(p.overhead_s * 1e6, 2) +
           " us" +
           (p.grouped_overhead_s == p.overhead_s
                ? ""
                : " (grouped " + fixed(p.grouped_overhead_s * 1e6, 2) + " us)") +
           ", tiles " + std::to_string(p.tile_m) + " x " + std::to_string(p.tile_n) + " on " +
           std::to_string(p.sm_count) + " SMs";
  };
  if (const auto* p = dynamic_cast<const ProfiledCostModel*>(&m)) {
    const ProfileTable& t = p->table();
    return "measured, " + display(t.file) + " (" + std::to_string(t.tokens.size()) + " rows, tokens " +
           std::to_string(t.tokens.front()) + ".." + std::to_string(t.max_tokens()) + "; past " +
           std::to_string(t.max_tokens()) + ": +" + fixed(p->extrapolation_slope_s_per_token() * 1e6, 4) +
           " us per token)";
  }
  if (const auto* f = dynamic_cast<const FittedCostModel*>(&m))
    return "fitted to " + display(f->table_file()) + ": " + roofline_text(f->fit().params);
  if (const auto* r = dynamic_cast<const RooflineCostModel*>(&m))
    return "datasheet x efficiency: " + roofline_text(r->params());
  return m.kind();
}

void print_table(std::ostream& out, const std::vector<Shown>& shown, const std::vector<std::int64_t>& tokens,
                 const std::string& gpu, const MoeModel& model, const GpuSpec& spec,
                 const std::optional<Reference>& ref) {
  const ExpertShape shape = model.expert_shape();
  out << "one expert FFN of " << model.name << " (" << shape_text(shape) << ") on " << gpu
      << ", time per call in us\n";
  std::vector<std::vector<std::string>> cells;  // [row][column], row 0 the header
  cells.push_back({"tokens"});
  for (const Shown& s : shown) cells[0].push_back(s.kind);
  bool extrapolated = false;
  for (const std::int64_t n : tokens) {
    std::vector<std::string> row = {std::to_string(n)};
    for (const Shown& s : shown) {
      std::string cell = fixed(s.model->expert_time_s(n) * 1e6, 3);
      if (const auto* p = dynamic_cast<const ProfiledCostModel*>(s.model.get());
          p && n > p->table().max_tokens()) {
        cell += '*';
        extrapolated = true;
      }
      row.push_back(cell);
    }
    cells.push_back(row);
  }
  std::vector<std::size_t> width(cells[0].size(), 0);
  for (const auto& row : cells)
    for (std::size_t c = 0; c < row.size(); ++c)
      width[c] = std::max(width[c], row[c].size() - (row[c].back() == '*'));
  for (const auto& row : cells) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      // Right-aligned numbers; a '*' hangs past the column so the digits stay aligned.
      const bool star = row[c].back() == '*';
      const std::size_t len = row[c].size() - (star ? 1 : 0);
      line += (c == 0 ? "" : "   ") + std::string(width[c] - len, ' ') + row[c] + (star ? "" : " ");
    }
    line.erase(line.find_last_not_of(' ') + 1);
    out << line << '\n';
  }
  if (extrapolated) out << "* past the table's last measured token count: extrapolated\n";
  out << '\n';
  std::size_t kind_width = 0;
  for (const Shown& s : shown) kind_width = std::max(kind_width, s.kind.size());
  for (const Shown& s : shown)
    out << s.kind << std::string(kind_width + 2 - s.kind.size(), ' ') << describe(*s.model, spec, shape.dtype)
        << '\n';
  if (!ref) {
    out << "\nno measured table for " << gpu << " under " << (models_root() / gpu).string()
        << ": no profiled or fitted model, no error figures\n";
    return;
  }
  bool any_error = false;
  for (const Shown& s : shown) any_error = any_error || s.error.has_value();
  if (!any_error) return;
  out << "\nerror against " << display(ref->table.file) << " (" << ref->table.tokens.size() << " rows";
  if (ref->shape) out << ", measured for experts " << shape_text(*ref->shape);
  out << (ref->for_model ? "" : "; not this model's experts: the models are evaluated for the table's shape")
      << "):\n";
  for (const Shown& s : shown) {
    if (!s.error) continue;
    out << "  " << s.kind << std::string(kind_width + 2 - s.kind.size(), ' ') << "MAPE "
        << fixed(100 * s.error->mape, 2) << " %, max " << fixed(100 * s.error->max_error, 2) << " % at "
        << s.error->max_error_tokens << " tokens\n";
  }
}

}  // namespace

int verb_cost(const std::vector<std::string>& args, std::ostream& out) {
  po::options_description opts("cost options");
  std::string gpu, model_name, tokens_text, format = "table", table_option, cost_json;
  opts.add_options()("gpu", po::value(&gpu)->value_name("NAME"), "GPU config name (tailsim list gpus; required)")(
      "model", po::value(&model_name)->value_name("NAME"),
      "MoE model config name, the expert shape (tailsim list models; required)")(
      "tokens", po::value(&tokens_text)->value_name("1,8,64,512"),
      "comma-separated token counts (default: 1,8,64,256,512,1024,2048,4096)")(
      "format", po::value(&format)->value_name("table|csv"), "table, or csv: kind,tokens,time_us (default: table)")(
      "table", po::value(&table_option)->value_name("FILE"),
      "a measured table to use instead of models/<gpu>/<model>_expert_ffn.csv")(
      "cost", po::value(&cost_json)->value_name("JSON"),
      "one cost model as in a scenario's \"cost\" object, instead of the defaults");
  if (wants_help(args)) return print_verb_help(out, "cost", opts);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(opts).run(), vm);
  po::notify(vm);
  if (gpu.empty()) throw InputError("", "--gpu", "cost needs --gpu NAME; valid: " + join(gpu_names()));
  if (model_name.empty())
    throw InputError("", "--model", "cost needs --model NAME; valid: " + join(moe_model_names()));
  if (format != "table" && format != "csv")
    throw InputError("", "--format", "unknown format '" + format + "'; valid: table, csv");
  const std::vector<std::int64_t> tokens = vm.count("tokens") ? parse_tokens(tokens_text) : kDefaultTokens;

  const Json gpu_name(gpu), model_json(model_name);
  const ConfigDoc gpu_doc = load_config(JsonReader(gpu_name, "", "--gpu"), "gpus", gpu);
  const GpuSpec spec = parse_gpu_spec(JsonReader(gpu_doc.json, gpu_doc.file));
  const MoeModel model = parse_moe_model(JsonReader(model_json, "", "--model"));
  const CostContext context{spec, model.expert_shape()};
  const std::optional<Reference> ref = find_reference(table_option, gpu, model.name, context.shape);

  std::vector<std::pair<Json, std::string>> specs;  // (spec, where its errors point)
  if (!cost_json.empty()) {
    specs.emplace_back(parse_json_text(cost_json, "--cost"), "--cost");
  } else {
    if (ref && ref->for_model)
      specs.emplace_back(Json{{"type", "profiled"}, {"table", ref->table.file}}, "profiled");
    specs.emplace_back(Json{{"type", "roofline"}}, "roofline");
    if (ref && ref->shape) specs.emplace_back(Json{{"type", "fitted"}, {"table", ref->table.file}}, "fitted");
  }
  std::vector<Shown> shown;
  for (const auto& [s, where] : specs) {
    Shown item;
    item.model = build(s, where, context);
    item.kind = item.model->kind();
    if (ref && item.kind != "profiled") {
      const ExpertShape& measured = ref->error_shape;
      const bool same = same_shape(measured, context.shape) &&
                        peak_flops_for(spec, measured.dtype) == peak_flops_for(spec, context.shape.dtype);
      item.error =
          table_error(same ? *item.model : *build(s, where, CostContext{spec, measured}), ref->table);
    }
    shown.push_back(std::move(item));
  }

  if (format == "csv") {
    out << "kind,tokens,time_us\n";
    for (const Shown& s : shown)
      for (const std::int64_t n : tokens)
        out << s.kind << ',' << n << ',' << fixed(s.model->expert_time_s(n) * 1e6, 3) << '\n';
    return 0;
  }
  print_table(out, shown, tokens, gpu, model, spec, ref);
  return 0;
}

}  // namespace tailsim
