// A cluster object: link figures carry their units (a bare number is refused, an implausible figure warned
// about), and "gpu" is needed only where a workload reads the GPU's figures.
#include <doctest/doctest.h>

#include <memory>
#include <sstream>
#include <string>

#include "sim/cluster/cluster.hpp"
#include "sim/config/error.hpp"
#include "sim/workload/workload.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace {

ClusterSpec cluster_with(const std::string& link_key, const Json& link) {
  const Json c = {{"gpus", 16}, {"gpu", "h100-sxm"}, {link_key, link}};
  return parse_cluster(JsonReader(c, "s.json", "/cluster"));
}

std::string message(const Json& link) {
  try {
    cluster_with("nic", link);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("link bandwidths and latencies are read in the units people write") {
  struct Case {
    std::string text;
    double bytes_per_s;
  };
  for (const Case& c : {Case{"400Gbps", 50e9}, Case{"400Gb/s", 50e9}, Case{"400Gbit/s", 50e9}, Case{"50GB/s", 50e9},
                        Case{"1.8TB/s", 1.8e12}, Case{"3.2Tbps", 400e9}, Case{"25 GB/s", 25e9}}) {
    INFO(c.text);
    CHECK(cluster_with("nic", {{"bandwidth", c.text}}).nic.bandwidth_bytes_per_s == doctest::Approx(c.bytes_per_s));
  }
  struct Latency {
    std::string text;
    double seconds;
  };
  for (const Latency& c : {Latency{"5us", 5e-6}, Latency{"5µs", 5e-6}, Latency{"5μs", 5e-6}, Latency{"800ns", 8e-7},
                           Latency{"0.5ms", 5e-4}}) {
    INFO(c.text);
    CHECK(cluster_with("nvlink", {{"latency", c.text}}).nvlink.latency_s == doctest::Approx(c.seconds));
  }
  // Left out, a figure keeps its default.
  const ClusterSpec defaults = cluster_with("nic", Json::object());
  CHECK(defaults.nic.bandwidth_bytes_per_s == doctest::Approx(50e9));
  CHECK(defaults.nic.latency_s == doctest::Approx(5e-6));
  CHECK(defaults.nvlink.bandwidth_bytes_per_s == doctest::Approx(450e9));
}

TEST_CASE("a bare number for a link bandwidth or latency is refused, naming its path and the units to use") {
  CHECK(message({{"bandwidth", 400}}) ==
        "s.json: /cluster/nic/bandwidth: expected a bandwidth with a unit such as \"400Gbps\" or \"50GB/s\", got 400");
  CHECK(message({{"latency", 5}}) ==
        "s.json: /cluster/nic/latency: expected a latency with a unit such as \"5us\" or \"500ns\", got 5");
  CHECK(message({{"latency", true}}).find("/cluster/nic/latency: expected a latency with a unit") != std::string::npos);
  CHECK(message({{"bandwidth", "400Gbpss"}}).find("/cluster/nic/bandwidth: unknown unit 'Gbpss'") != std::string::npos);
  CHECK(message({{"bandwidth", "0Gbps"}}).find("/cluster/nic/bandwidth: expected a bandwidth") != std::string::npos);
}

TEST_CASE("an implausible link figure is warned about, naming its JSON path, and still used") {
  struct Case {
    std::string key, text;
    bool warned;
  };
  for (const Case& c : {Case{"bandwidth", "400B/s", true}, Case{"bandwidth", "20TB/s", true},
                        Case{"bandwidth", "1GB/s", false}, Case{"bandwidth", "10TB/s", false},
                        Case{"latency", "5s", true}, Case{"latency", "50ns", true}, Case{"latency", "100ns", false},
                        Case{"latency", "1ms", false}}) {
    INFO(c.key << " " << c.text);
    const std::vector<std::string> warnings = cluster_with("nic", {{c.key, c.text}}).warnings;
    REQUIRE(warnings.size() == (c.warned ? 1 : 0));
    if (c.warned)
      CHECK(warnings[0].starts_with("s.json: /cluster/nic/" + c.key + ": \"" + c.text + "\" is implausible for a GPU link"));
  }
  const ClusterSpec slow = cluster_with("nvlink", {{"bandwidth", "400B/s"}});
  CHECK(slow.nvlink.bandwidth_bytes_per_s == 400);
  REQUIRE(slow.warnings.size() == 1);
  CHECK(slow.warnings[0].ends_with("(expected 1 GB/s to 10 TB/s); is its unit right?"));

  // The command line logs it as a warning, once however many sweep points share it.
  const std::string file = test::write_temp("slow_nic.json", R"({"steps": 10,
    "cluster": {"gpus": 4, "gpu": "h100-sxm", "nic": {"bandwidth": "400B/s", "latency": "5s"}},
    "workload": {"type": "bsp", "compute": {"type": "constant", "value": 1}}, "policy": {"type": "none"},
    "sweep": {"cluster.gpus": [1, 2, 4]}})");
  const auto r = test::run_cli("validate " + file);
  CHECK(r.exit_code == 0);
  CHECK(r.err == "[warning] " + file + ": /cluster/nic/bandwidth: \"400B/s\" is implausible for a GPU link (expected "
                 "1 GB/s to 10 TB/s); is its unit right?\n[warning] " + file + ": /cluster/nic/latency: \"5s\" is "
                 "implausible for a GPU link (expected 100 ns to 1 ms); is its unit right?\n");
}

TEST_CASE("a bsp cluster may leave out its gpu; a workload that reads the GPU's figures still needs it") {
  const auto dir = test::temp_dir("nogpu");
  const std::string bsp = (dir / "bsp.json").string();
  std::ofstream(bsp) << R"({"steps": 10, "cluster": {"gpus": 4},
    "workload": {"type": "bsp", "compute": {"type": "constant", "value": 1}}, "policy": {"type": "none"}})";
  const auto ok = test::run_cli("validate " + bsp);
  CHECK(ok.exit_code == 0);
  CHECK(ok.out == bsp + ": ok (1 point; gpu: not needed (compute is a distribution); engine: order_statistics)\n");
  const auto with_gpu = test::run_cli("validate " + std::string(TAILSIM_SOURCE_DIR) + "/scenarios/textbook/deterministic_skew.json");
  CHECK(with_gpu.exit_code == 0);
  CHECK(with_gpu.out.find("gpu:") == std::string::npos);

  const std::string moe = (dir / "moe.json").string();
  std::ofstream(moe) << R"({"steps": 10, "cluster": {"gpus": 8},
    "workload": {"type": "moe", "model": "mixtral-8x7b"}, "policy": {"type": "none"}})";
  const auto refused = test::run_cli("validate " + moe);
  CHECK(refused.exit_code == 2);
  CHECK(refused.err.find(moe + ": /cluster: missing required key 'gpu' (the moe workload's cost models read the GPU's "
                               "figures; see `tailsim list gpus`)") != std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace tailsim
