#include "sim/scenario/scenario.hpp"

#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>

#include "sim/config/configs.hpp"
#include "sim/config/files.hpp"

namespace tailsim {

namespace {

const std::vector<std::string> kTopKeys = {"name",     "description", "seed",     "steps", "replications", "cluster",
                                           "workload", "policy",      "policies", "sweep", "expect",       "baseline"};
const std::vector<std::string> kPointKeys = {"cluster", "workload", "policy", "policies"};  // read per sweep point

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;  // commas inside [] or {} belong to the value
  for (const char c : text) {
    if (c == '[' || c == '{') ++depth;
    if (c == ']' || c == '}') --depth;
    if (c == sep && depth == 0) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

std::pair<std::string, std::string> split_assignment(const std::string& arg, const std::string& flag) {
  const auto eq = arg.find('=');
  if (eq == std::string::npos || eq == 0)
    throw InputError("", flag, "expected PATH=VALUE (e.g. cluster.gpus=64), got '" + arg + "'");
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

// True when `text` is well-formed UTF-8 (what JSON text must be; a stray byte would fail only when written).
bool valid_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    const std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > text.size()) return false;
    for (std::size_t j = 1; j < n; ++j)
      if ((static_cast<unsigned char>(text[i + j]) >> 6) != 0x2) return false;
    i += n;
  }
  return true;
}
}  // namespace

Json parse_cli_value(const std::string& text) {
  if (!valid_utf8(text)) {
    std::string shown;  // the text with its non-ASCII bytes as \xNN, so the message itself is valid UTF-8
    for (const char c : text) {
      const auto u = static_cast<unsigned char>(c);
      if (u >= 0x20 && u < 0x7f) {
        shown += c;
      } else {
        const char* hex = "0123456789abcdef";
        shown += {'\\', 'x', hex[u >> 4], hex[u & 15]};
      }
    }
    throw InputError("", "'" + shown + "'", "expected UTF-8 text, found an invalid byte sequence");
  }
  const Json parsed = Json::parse(text, json_input_guard("'" + text.substr(0, 40) + "'"), false);
  return parsed.is_discarded() ? Json(text) : parsed;
}

void set_dotted(Json& doc, const std::string& dotted, const Json& value, const std::string& origin) {
  Json* node = &doc;
  std::string walked;
  const std::vector<std::string> tokens = split(dotted, '.');
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const std::string& t = tokens[i];
    if (t.empty()) throw InputError("", origin, "empty component in path '" + dotted + "'");
    walked += "/" + pointer_token(t);
    const bool last = i + 1 == tokens.size();
    if (node->is_array()) {
      const bool digits = std::all_of(t.begin(), t.end(), [](unsigned char c) { return std::isdigit(c); });
      if (!digits || std::stoul(t) >= node->size())
        throw InputError("", origin, "'" + dotted + "': " + walked + " is not an index of an array of " +
                                         std::to_string(node->size()));
      node = &(*node)[std::stoul(t)];
    } else {
      if (node->is_null()) *node = Json::object();
      if (!node->is_object())
        throw InputError("", origin, "'" + dotted + "': cannot set a key inside " + brief(*node));
      node = &(*node)[t];
    }
    if (last) *node = value;
  }
}

Scenario load_scenario(const std::string& file, const ScenarioOptions& options) {
  return load_scenario_json(parse_json_file(file), file, options);
}

namespace {

// Whether dotted `path` is `prefix` or lies inside it.
bool path_under(const std::string& path, const std::string& prefix) {
  return path == prefix || path.starts_with(prefix + ".");
}

// Replaces a cluster named from configs/ (or {"config": NAME, ...overrides}) by its content, then applies --set.
void resolve_and_set(Json& doc, const std::string& file, const std::vector<std::string>& sets) {
  if (doc.is_object() && doc.contains("cluster")) {
    const JsonReader root(doc, file);
    doc["cluster"] = resolve_cluster_config(root.child("cluster"));
  }
  for (const std::string& s : sets) {
    const auto [path, value] = split_assignment(s, "--set");
    set_dotted(doc, path, parse_cli_value(value), "--set " + s);
  }
}

// The scenario's own sweep axes, less those a --set path fixes (a --set inside a swept value is an error).
std::vector<SweepAxis> scenario_axes(const Json& doc, const std::string& file, const std::vector<std::string>& set_paths) {
  std::vector<SweepAxis> axes;
  const JsonReader root(doc, file);
  root.expect_object();
  const auto sweep = root.optional_child("sweep");
  if (!sweep) return axes;
  sweep->expect_object();
  for (auto it = sweep->value().begin(); it != sweep->value().end(); ++it) {
    const JsonReader axis = sweep->child(it.key());
    if (!axis.value().is_array() || axis.value().empty()) axis.fail_expected("a non-empty array of values");
    const auto fixed = std::find_if(set_paths.begin(), set_paths.end(), [&](const std::string& p) { return path_under(it.key(), p); });
    if (fixed != set_paths.end()) {
      spdlog::info("--set {} replaces the scenario's sweep of '{}'", *fixed, it.key());
      continue;
    }
    for (const std::string& p : set_paths)
      if (path_under(p, it.key()))
        throw InputError("", "--set " + p,
                         "'" + p + "' lies inside '" + it.key() + "', which the scenario sweeps (each point would "
                         "replace it); set or sweep '" + it.key() + "' as a whole");
    axes.push_back({it.key(), std::vector<Json>(axis.value().begin(), axis.value().end())});
  }
  return axes;
}

// Adds the --sweep axes, each replacing a scenario axis of the same path.
void add_cli_sweeps(std::vector<SweepAxis>& axes, const std::vector<std::string>& sweeps,
                    const std::vector<std::string>& set_paths) {
  for (const std::string& s : sweeps) {
    const auto [path, list] = split_assignment(s, "--sweep");
    SweepAxis axis{path, {}};
    for (const std::string& v : split(list, ',')) {
      if (v.empty()) throw InputError("", "--sweep " + s, "empty value in the list (expected PATH=V1,V2,...)");
      axis.values.push_back(parse_cli_value(v));
    }
    for (const std::string& p : set_paths)
      if (path_under(p, path) || path_under(path, p))
        throw InputError("", "--sweep " + s, "'" + path + "' is also given by --set " + p + "; use one or the other");
    auto same = std::find_if(axes.begin(), axes.end(), [&](const SweepAxis& a) { return a.path == axis.path; });
    if (same != axes.end()) *same = axis;
    else axes.push_back(axis);
  }
}

// 'seed': any integer from 0 to 2^64 - 1 (JsonReader::integer stops at 9e15, where doubles stop being exact).
std::uint64_t read_seed(const JsonReader& root) {
  if (!root.has("seed")) return 1;
  const JsonReader c = root.child("seed");
  const Json& v = c.value();
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer() && v.get<std::int64_t>() >= 0) return static_cast<std::uint64_t>(v.get<std::int64_t>());
  if (v.is_number_float()) {  // 1e3 is fine; 18446744073709551616 and beyond arrive here as doubles
    const double d = v.get<double>();
    if (d >= 0 && d < 18446744073709551616.0 && d == std::floor(d)) return static_cast<std::uint64_t>(d);
  }
  c.fail_expected("an integer from 0 to 18446744073709551615");
  return 0;
}

// The keys read once per run (name, seed, steps, replications, expect); rejects unknown top-level keys.
void read_run_keys(Scenario& sc, const Json& doc, const std::string& file) {
  const JsonReader root(doc, file);
  const std::string stem = std::filesystem::path(file).stem().string();
  sc.name = root.string("name", valid_utf8(stem) ? stem : "scenario");
  root.string("description", "");
  sc.seed = read_seed(root);
  sc.steps = root.integer("steps", {}, Range{1.0, 1e12});
  sc.replications = root.integer("replications", 1, Range{1.0, 1e6});
  if (sc.replications > sc.steps)
    root.child("replications").fail("expected at most 'steps' (" + std::to_string(sc.steps) + ") replications, got " +
                                    std::to_string(sc.replications));
  if (root.has("expect")) sc.expect = root.child("expect").value();
  if (root.has("baseline")) sc.baseline = root.string("baseline");
  root.finish(kTopKeys);  // cluster, workload and policies are read per point (build_point)
}

// A swept path must start at a key read per point: a misspelt one ("cduster.gpus") would otherwise add
// a key nobody reads, and an axis that changes nothing (found by fuzzing); 'steps', 'seed' and the like
// are read once per run.
void check_swept_paths(const std::vector<SweepAxis>& axes, const std::string& file) {
  for (const SweepAxis& a : axes) {
    const std::string head = a.path.substr(0, a.path.find('.'));
    if (std::find(kPointKeys.begin(), kPointKeys.end(), head) == kPointKeys.end()) {
      const bool known = std::find(kTopKeys.begin(), kTopKeys.end(), head) != kTopKeys.end();
      const std::string hint = known ? "" : closest_match(head, kTopKeys);
      throw InputError(file, "/sweep/" + pointer_token(a.path),
                       (known ? "'" + head + "' is read once per run and cannot be swept"
                              : "unknown key '" + head + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)")) +
                           "; a swept path starts with one of: cluster, workload, policy, policies");
    }
  }
}

// The number of points of the cartesian product, refused when too many or too big to hold in memory.
std::size_t count_points(const std::vector<SweepAxis>& axes, const Json& doc, const std::string& file,
                         const ScenarioOptions& options) {
  std::size_t total = 1;
  for (const SweepAxis& a : axes)  // checked as it grows: 64 axes of 2 values would wrap around to 0
    if ((total *= a.values.size()) > kMaxSweepPoints)
      throw InputError(file, "/sweep", "the sweep expands to more than 1,000,000 points");
  // Every point holds its own copy of the scenario, and later its built model: about 10 bytes of memory per
  // byte of JSON text, plus a few KiB (measured: 100,000 points of the textbook scenario peaked at 560 MB).
  if (total > 1000) {
    // A point's copy leaves out the sweep (its size grew with the axes: a quadratic guess for long axes)
    // and holds one value of each axis.
    Json base = doc;
    base.erase("sweep");
    double point_text = static_cast<double>(base.dump().size());
    for (const SweepAxis& a : axes) {
      std::size_t largest = 0;
      for (const Json& v : a.values) largest = std::max(largest, v.dump().size());
      point_text += static_cast<double>(largest);
    }
    const double per_point = 10.0 * point_text + 4096.0;
    const double needed = per_point * static_cast<double>(total);
    const std::optional<std::uint64_t> available = options.max_memory ? options.max_memory : available_memory_bytes();
    if (available && needed > static_cast<double>(*available))
      throw InputError(file, "/sweep",
                       "the sweep's " + std::to_string(total) + " points would need about " +
                           std::to_string(static_cast<long long>(needed / (1 << 20))) + " MiB to hold, more than the " +
                           std::to_string(*available >> 20) + " MiB " +
                           (options.max_memory ? "allowed by --max-memory" : "of memory available") +
                           "; sweep fewer values");
  }
  return total;
}

// The `total` points of the cartesian product of `axes`, last axis varying fastest.
std::vector<ScenarioPoint> expand_points(const Json& doc, const std::vector<SweepAxis>& axes, std::size_t total) {
  std::vector<ScenarioPoint> points;
  points.reserve(total);
  // Each point copies the scenario without its sweep: copying the sweep too made loading quadratic in the
  // length of an axis (20,000 values: 56 s).
  Json base = doc;
  base.erase("sweep");
  std::vector<std::size_t> digits(axes.size());
  for (std::size_t index = 0; index < total; ++index) {
    ScenarioPoint p;
    p.doc = base;
    std::size_t rest = index;
    for (std::size_t a = axes.size(); a-- > 0;) {
      digits[a] = rest % axes[a].values.size();
      rest /= axes[a].values.size();
    }
    for (std::size_t a = 0; a < axes.size(); ++a) {
      const Json& v = axes[a].values[digits[a]];
      set_dotted(p.doc, axes[a].path, v, "/sweep/" + pointer_token(axes[a].path));
      p.params.emplace_back(axes[a].path, v);
    }
    points.push_back(std::move(p));
  }
  return points;
}

}  // namespace

Scenario load_scenario_json(Json doc, const std::string& file, const ScenarioOptions& options) {
  resolve_and_set(doc, file, options.sets);
  Scenario sc;
  sc.file = file;
  // Sweep axes: the scenario's, less those a --set fixes, then the command line's (which replace a scenario
  // axis of the same path).
  std::vector<std::string> set_paths;
  for (const std::string& s : options.sets) set_paths.push_back(split_assignment(s, "--set").first);
  sc.axes = scenario_axes(doc, file, set_paths);
  add_cli_sweeps(sc.axes, options.sweeps, set_paths);
  if (options.seed) doc["seed"] = *options.seed;
  if (options.replications) doc["replications"] = *options.replications;
  read_run_keys(sc, doc, file);
  check_swept_paths(sc.axes, file);
  sc.points = expand_points(doc, sc.axes, count_points(sc.axes, doc, file, options));
  return sc;
}

std::vector<const Policy*> PointModel::policy_views() const {
  std::vector<const Policy*> out;
  for (const auto& p : policies) out.push_back(p.get());
  return out;
}

namespace {

// A point's model; its errors are not yet labelled with the sweep point (build_point adds that).
PointModel build_point_unlabelled(const Scenario& sc, const ScenarioPoint& point) {
  const JsonReader root(point.doc, sc.file);
  PointModel m;
  m.cluster = parse_cluster(root.child("cluster"));
  m.workload = workload_registry().build(root.child("workload"), m.cluster);
  if (root.has("policy") == root.has("policies"))
    root.fail("expected exactly one of 'policy' (an object) or 'policies' (a list)");
  if (root.has("policy")) {
    m.policies.push_back(make_policy(root.child("policy")));
  } else {
    const auto list = root.array("policies");
    if (list.empty()) root.child("policies").fail_expected("a non-empty list of policies");
    for (const JsonReader& p : list) m.policies.push_back(make_policy(p));
  }
  std::vector<std::string> labels;
  for (const auto& p : m.policies) {
    if (std::find(labels.begin(), labels.end(), p->label()) != labels.end())
      p->fail("", "policy label '" + p->label() + "' is used twice; give each policy a unique \"name\"");
    labels.push_back(p->label());
    m.workload->check_policy(*p);
  }
  if (const Workload::GpuLimit limit = m.workload->gpu_limit(m.policy_views()); m.cluster.gpus > limit.most)
    throw InputError(sc.file, "/cluster/gpus",
                     "expected at most " + std::to_string(limit.most) + " GPUs here (" + limit.why + "), got " +
                         std::to_string(m.cluster.gpus));
  if (sc.baseline) {
    const auto it = std::find(labels.begin(), labels.end(), *sc.baseline);
    if (it == labels.end()) {
      const std::string hint = closest_match(*sc.baseline, labels);
      throw InputError(sc.file, "/baseline",
                       "expected the label of one of the policies, got '" + *sc.baseline + "'" +
                           (hint.empty() ? "" : " (did you mean '" + hint + "'?)") + "; valid: " + join(labels));
    }
    m.baseline = static_cast<std::size_t>(it - labels.begin());
  }
  return m;
}

// The JSON pointer a dotted path sets ("policies.1.copies" -> "/policies/1/copies").
std::string dotted_pointer(const std::string& dotted) {
  std::string out;
  for (const std::string& t : split(dotted, '.')) out += "/" + pointer_token(t);
  return out;
}

// A key that a swept path added is the sweep entry's fault, not the object's it landed in: blames it there.
void blame_swept_key(const Scenario& sc, const ScenarioPoint& point, const UnknownKeyError& e) {
  if (e.file() != sc.file) return;  // in a configs/ file or another file the scenario names
  const std::string added = (e.path() == "/" ? "" : e.path()) + "/" + pointer_token(e.key());
  for (const auto& [path, value] : point.params) {
    const std::string swept = dotted_pointer(path);
    if (swept == added || swept.starts_with(added + "/"))
      throw InputError(sc.file, "/sweep/" + pointer_token(path),
                       "the swept path names a key nobody reads: " + e.path() + ": " + e.message());
  }
}

}  // namespace

PointModel build_point(const Scenario& sc, const ScenarioPoint& point, std::set<std::string>* warned) {
  try {
    PointModel m = build_point_unlabelled(sc, point);
    for (const std::string& w : m.cluster.warnings)
      if (!warned || warned->insert(w).second) spdlog::warn("{}", w);
    return m;
  } catch (const InputError& e) {
    if (const auto* unknown = dynamic_cast<const UnknownKeyError*>(&e)) blame_swept_key(sc, point, *unknown);
    if (point.params.empty()) throw;
    throw InputError(e.file(), e.path(), e.message() + " (at sweep point " + point.label() + ")");
  }
}

std::string ScenarioPoint::label() const {
  std::string out;
  for (const auto& [path, value] : params)
    out += (out.empty() ? "" : ", ") + path + "=" + (value.is_string() ? value.get<std::string>() : value.dump());
  return out;
}

}  // namespace tailsim
