#include "sim/cluster/cluster.hpp"

#include "sim/config/configs.hpp"

namespace tailsim {

std::vector<WorkerGroup> ClusterSpec::groups() const {
  std::int64_t slow_total = 0;
  for (const SlowGpus& s : slow_gpus) slow_total += s.count;
  std::vector<WorkerGroup> out;
  if (gpus - slow_total > 0) out.push_back({0, gpus - slow_total, 1.0});
  std::int64_t first = gpus - slow_total;
  for (const SlowGpus& s : slow_gpus) {
    if (s.count > 0) out.push_back({first, s.count, s.factor});
    first += s.count;
  }
  return out;
}

void ClusterSpec::require_gpu(const std::string& user) const {
  if (!gpu_given)
    throw InputError(file, path.empty() ? "/" : path,
                     "missing required key 'gpu' (" + user + "; see `tailsim list gpus`)");
}

namespace {

// Every key of a cluster object, known from the start: 'gpu' is read first and 'gpus' last, and neither
// is offered as a misspelling of the other when one is missing.
const std::vector<std::string> kClusterKeys = {"gpus_per_node", "gpu", "gpus", "nvlink", "nic", "noise", "slow_gpus"};

// A link figure and the range where it is plausible for a GPU link (NVLink, PCIe, InfiniBand, Ethernet).
struct LinkFigure {
  const char* key;
  bool bandwidth;        // bytes/s; else a latency in seconds
  const char* expected;  // what a bare number or another type is refused for
  double low, high;      // outside: warned about, as a likely wrong unit
  const char* plausible;
};
constexpr LinkFigure kLinkBandwidth{"bandwidth", true, "a bandwidth with a unit such as \"400Gbps\" or \"50GB/s\"", 1e9,
                                    1e13, "1 GB/s to 10 TB/s"};
constexpr LinkFigure kLinkLatency{"latency", false, "a latency with a unit such as \"5us\" or \"500ns\"", 1e-7, 1e-3,
                                  "100 ns to 1 ms"};

// A link figure must carry its unit: a bare 400 was 400 bytes/s, a bare 5 five seconds, silently.
double link_figure(const JsonReader& link, const LinkFigure& f, double fallback, std::vector<std::string>& warnings) {
  if (!link.has(f.key)) return fallback;
  const JsonReader at = link.child(f.key);
  if (!at.is_string()) at.fail_expected(f.expected);
  const double v = f.bandwidth ? link.bandwidth_bytes_per_s(f.key, {}, above(0)) : link.duration_s(f.key, {}, at_least(0));
  if (v < f.low * (1 - 1e-9) || v > f.high * (1 + 1e-9))  // the bounds themselves pass, whatever the rounding
    warnings.push_back(at.file() + ": " + at.path() + ": " + at.value().dump() + " is implausible for a GPU link (expected " +
                       f.plausible + "); is its unit right?");
  return v;
}

LinkSpec parse_link(const JsonReader& n, LinkSpec defaults, std::vector<std::string>& warnings) {
  n.expect_object();
  LinkSpec l;
  l.bandwidth_bytes_per_s = link_figure(n, kLinkBandwidth, defaults.bandwidth_bytes_per_s, warnings);
  l.latency_s = link_figure(n, kLinkLatency, defaults.latency_s, warnings);
  n.finish();
  return l;
}

}  // namespace

Json resolve_cluster_config(const JsonReader& n) {
  if (n.is_string()) {
    const ConfigDoc doc = load_config(n, "clusters", n.value().get<std::string>());
    Json out = doc.json;
    out.erase("description");
    out.erase("source");
    return out;
  }
  if (!n.value().is_object() || !n.has("config")) return n.value();
  const ConfigDoc doc = load_config(n.child("config"), "clusters", n.string("config"));
  Json out = doc.json;
  out.erase("description");
  out.erase("source");
  for (auto it = n.value().begin(); it != n.value().end(); ++it)
    if (it.key() != "config") out[it.key()] = it.value();
  return out;
}

ClusterSpec parse_cluster(const JsonReader& n) {
  n.expect_object();
  ClusterSpec c;
  c.file = n.file();
  c.path = n.path();
  c.gpu_given = false;
  n.mark_known(kClusterKeys);
  c.gpus_per_node = n.integer("gpus_per_node", 8, Range{1.0, 1024.0});
  // Optional here: a workload that uses the GPU's figures asks for it (require_gpu).
  if (const auto gpu_node = n.optional_child("gpu")) {
    const JsonReader& gpu = *gpu_node;
    c.gpu_given = true;
    if (gpu.is_string()) {
      const ConfigDoc doc = load_config(gpu, "gpus", n.string("gpu"));
      c.gpu = parse_gpu_spec(JsonReader(doc.json, doc.file));
    } else {
      c.gpu = parse_gpu_spec(gpu);
    }
  }
  c.nvlink = {c.gpu.nvlink_bandwidth_bytes_per_s / 2, 2e-6};
  c.nic = {400e9 / 8, 5e-6};
  if (const auto link = n.optional_child("nvlink")) c.nvlink = parse_link(*link, c.nvlink, c.warnings);
  if (const auto link = n.optional_child("nic")) c.nic = parse_link(*link, c.nic, c.warnings);
  // Read last, so that a misspelt 'gpus' is found among keys nobody asked for.
  c.gpus = n.integer("gpus", {}, Range{1.0, static_cast<double>(kMaxGpus)});
  if (const auto noise = n.optional_child("noise")) {
    std::optional<ConfigDoc> doc;
    JsonReader node = *noise;
    if (noise->is_string()) {
      doc = load_config(*noise, "noise", n.string("noise"));
      node = JsonReader(doc->json, doc->file);
      node.mark_read("description");
      if (node.has("fail_slow"))
        noise->fail("'" + n.string("noise") + "' is a preset of fail-slow episodes, not a noise distribution: give it "
                    "to the pipeline workload as \"fail_slow\": {\"preset\": \"" + n.string("noise") + "\", \"step_s\": S}");
    }
    node.expect_object();
    if (node.has("type") && node.value().at("type") == "none") {
      node.mark_read("type");
      node.finish();
    } else {
      if (node.has("type") && node.value().at("type").is_string() &&
          !distribution_registry().find(node.value().at("type").get<std::string>())) {
        std::vector<std::string> names = distribution_registry().names();
        names.insert(names.begin(), "none");
        node.string("type", std::nullopt, names);
      }
      c.noise = make_distribution(node);
      if (c.noise->min_value() < 0) node.fail("noise factors must be >= 0");
    }
  }
  if (const auto slow = n.optional_child("slow_gpus")) {
    std::int64_t total = 0;
    for (const JsonReader& s : slow->elements()) {
      s.expect_object();
      SlowGpus g;
      g.count = s.integer("count", {}, at_least(0));
      g.factor = s.number("factor", {}, above(0));
      s.finish();
      total += g.count;
      if (total > c.gpus)
        s.fail("slow_gpus add up to " + std::to_string(total) + " GPUs but the cluster has only " +
               std::to_string(c.gpus));
      c.slow_gpus.push_back(g);
    }
  }
  n.finish();
  return c;
}

}  // namespace tailsim
