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

namespace {

// Every key of a cluster object, known from the start: 'gpu' is read first and 'gpus' last, and neither
// is offered as a misspelling of the other when one is missing.
const std::vector<std::string> kClusterKeys = {"gpus_per_node", "gpu", "gpus", "nvlink", "nic", "noise", "slow_gpus"};

LinkSpec parse_link(const JsonReader& n, LinkSpec defaults) {
  n.expect_object();
  LinkSpec l;
  l.bandwidth_bytes_per_s = n.bandwidth_bytes_per_s("bandwidth", defaults.bandwidth_bytes_per_s, above(0));
  l.latency_s = n.duration_s("latency", defaults.latency_s, at_least(0));
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
  n.mark_known(kClusterKeys);
  c.gpus_per_node = n.integer("gpus_per_node", 8, Range{1.0, 1024.0});
  {
    const JsonReader gpu = n.child("gpu");
    if (gpu.is_string()) {
      const ConfigDoc doc = load_config(gpu, "gpus", n.string("gpu"));
      c.gpu = parse_gpu_spec(JsonReader(doc.json, doc.file));
    } else {
      c.gpu = parse_gpu_spec(gpu);
    }
  }
  c.nvlink = {c.gpu.nvlink_bandwidth_bytes_per_s / 2, 2e-6};
  c.nic = {400e9 / 8, 5e-6};
  if (const auto link = n.optional_child("nvlink")) c.nvlink = parse_link(*link, c.nvlink);
  if (const auto link = n.optional_child("nic")) c.nic = parse_link(*link, c.nic);
  // Read last, so that a misspelt 'gpus' is found among keys nobody asked for.
  c.gpus = n.integer("gpus", {}, Range{1.0, static_cast<double>(kMaxGpus)});
  if (const auto noise = n.optional_child("noise")) {
    std::optional<ConfigDoc> doc;
    JsonReader node = *noise;
    if (noise->is_string()) {
      doc = load_config(*noise, "noise", n.string("noise"));
      node = JsonReader(doc->json, doc->file);
      node.mark_read("description");
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
